"""conv_transpose2d forward and backward (all three gradients) on up-sampling layers of real
networks: DCGAN's generator, U-Net's up-convolutions, a decoder with output_padding.

Each case is timed for fastnn, PyTorch (when installed) and fastnn.reference (NumPy), in one
pytest-benchmark group per case; GFLOP/s go into extra_info. The cases are the registry's
(fastnn._cases.conv_transpose2d). Run:
    pytest bench/bench_conv_transpose2d.py --benchmark-only [--bench-threads 1,2]
"""
FAMILY = "conv_transpose2d"


def test_conv_transpose2d(run_case, case, dtype, impl, threads):
    run_case(case, dtype, impl, threads)
