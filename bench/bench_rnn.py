"""Elman RNN over a whole sequence: forward, and forward + BPTT (loss = sum of all hidden states).

fastnn's rnn_forward + rnn_backward(grad_hs=ones) against torch.nn.RNN (forward under no_grad;
forward + backward through autograd) and fastnn.reference. The cases are the registry's
(fastnn._cases.rnn). Run:
    pytest bench/bench_rnn.py --benchmark-only [--bench-threads 1,2]
"""
FAMILY = "rnn"


def test_rnn(run_case, case, dtype, impl, threads):
    run_case(case, dtype, impl, threads)
