"""conv2d forward and backward (all three gradients) on shapes from real networks.

Each case is timed for fastnn, PyTorch (when installed) and fastnn.reference (NumPy), in one
pytest-benchmark group per case; GFLOP/s go into extra_info. The cases are the registry's
(fastnn._cases.conv2d). Run:
    pytest bench/bench_conv2d.py --benchmark-only [--bench-threads 1,2]
"""
FAMILY = "conv2d"


def test_conv2d(run_case, case, dtype, impl, threads):
    run_case(case, dtype, impl, threads)
