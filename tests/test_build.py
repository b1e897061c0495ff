"""The installed package is the compiled, OpenMP-enabled build."""
import os

import fastnn
from fastnn import _runtime


def test_compiled_extension_loaded():
    assert _runtime._kernels is not None, f"compiled kernels did not load: {_runtime.LOAD_ERROR}"
    assert fastnn.show_config(print_out=False)["compiled"] is True


def test_built_with_openmp():
    # A deliberate no-OpenMP build (FASTNN_NO_OPENMP=1) is tested with FASTNN_EXPECT_NO_OPENMP=1.
    expected = os.environ.get("FASTNN_EXPECT_NO_OPENMP", "") in ("", "0")
    assert fastnn.show_config(print_out=False)["openmp"] is expected


def test_show_config_prints_and_returns(capsys):
    info = fastnn.show_config()
    out = capsys.readouterr().out
    for key in ("version", "compiled", "openmp", "cpu_path", "num_threads"):
        assert key in info and key in out
    assert info["version"] == fastnn.__version__
    assert info["cpu_path"] in ("portable", "avx2", "avx512")
    assert info["num_threads"] == fastnn.get_num_threads() >= 1
