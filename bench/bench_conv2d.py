"""conv2d forward and backward (all three gradients) on shapes from real networks.

Each case is timed for fastnn, PyTorch (when installed) and fastnn.reference (NumPy), in one
pytest-benchmark group per case; GFLOP/s go into extra_info. Run:
    PYTHONPATH=. pytest bench/bench_conv2d.py --benchmark-only [--bench-threads 1,2]
"""
import numpy as np
import pytest

from conftest import cached_case, run_benchmark
from compare import CONV64_CASES, CONV_CASES


@pytest.mark.parametrize("direction", ["fwd", "bwd"])
@pytest.mark.parametrize("name", list(CONV_CASES))
def test_conv2d_float32(benchmark, name, direction, impl, threads):
    run_benchmark(benchmark, cached_case("conv", name, direction, np.float32), impl, threads)


@pytest.mark.parametrize("direction", ["fwd", "bwd"])
@pytest.mark.parametrize("name", list(CONV64_CASES))
def test_conv2d_float64(benchmark, name, direction, impl, threads):
    run_benchmark(benchmark, cached_case("conv", name, direction, np.float64), impl, threads)
