"""LSTM over a whole sequence: forward (`lstm_forward`), and forward + BPTT through the
one-layer `fastnn.LSTM` layer (loss = sum of all hidden states).

Against torch.nn.LSTM (forward under no_grad; forward + backward through autograd) and
fastnn.reference. The cases are the registry's (fastnn._cases.lstm). Run:
    pytest bench/bench_lstm.py --benchmark-only [--bench-threads 1,2]
"""
FAMILY = "lstm"


def test_lstm(run_case, case, dtype, impl, threads):
    run_case(case, dtype, impl, threads)
