"""Elman RNN over a whole sequence: forward, and forward + BPTT (loss = sum of all hidden states).

fastnn's rnn_forward + rnn_backward(grad_hs=ones) against torch.nn.RNN (forward under no_grad;
forward + backward through autograd) and fastnn.reference. Run:
    PYTHONPATH=. pytest bench/bench_rnn.py --benchmark-only [--bench-threads 1,2]
"""
import pytest

from conftest import cached_case, run_benchmark
from compare import RNN_CASES


@pytest.mark.parametrize("direction", ["fwd", "fwdbwd"])
@pytest.mark.parametrize("name", list(RNN_CASES))
def test_rnn(benchmark, name, direction, impl, threads):
    run_benchmark(benchmark, cached_case("rnn", name, direction), impl, threads)
