"""conv1d forward and backward (all three gradients) on layers of audio and sequence models:
wav2vec 2.0's feature encoder, Conformer/TTS depthwise convolutions, WaveNet's dilated ones.

Each case is timed for fastnn, PyTorch (when installed) and fastnn.reference (NumPy), in one
pytest-benchmark group per case; GFLOP/s go into extra_info. The cases are the registry's
(fastnn._cases.conv1d). Run:
    pytest bench/bench_conv1d.py --benchmark-only [--bench-threads 1,2]
"""
FAMILY = "conv1d"


def test_conv1d(run_case, case, dtype, impl, threads):
    run_case(case, dtype, impl, threads)
