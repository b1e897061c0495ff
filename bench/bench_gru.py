"""GRU over a whole sequence: forward (`gru_forward`), and forward + BPTT through the
one-layer `fastnn.GRU` layer (loss = sum of all hidden states).

Against torch.nn.GRU (forward under no_grad; forward + backward through autograd) and
fastnn.reference. The cases are the registry's (fastnn._cases.gru). Run:
    pytest bench/bench_gru.py --benchmark-only [--bench-threads 1,2]
"""
FAMILY = "gru"


def test_gru(run_case, case, dtype, impl, threads):
    run_case(case, dtype, impl, threads)
