"""The pytest-benchmark harness (bench/conftest.py): its short mode runs each family's cheap
cases, and a benchmark fails, never falls back to the NumPy reference, when the compiled
kernels are missing. Needs the checkout's bench/ folder (the wheel's tests run without it)."""
import pathlib
import subprocess
import sys

import pytest

BENCH = pathlib.Path(__file__).resolve().parents[1] / "bench"
pytest.importorskip("pytest_benchmark")
if not (BENCH / "conftest.py").exists():
    pytest.skip("bench/ is not here (tests run outside the checkout)", allow_module_level=True)

NO_KERNELS = '''
def pytest_configure(config):
    from fastnn import _runtime
    _runtime._kernels = None  # what an install whose extension failed to load has
    _runtime.LOAD_ERROR = "ImportError: simulated by the test"
'''


def run_bench(tmp_path, *args):
    (tmp_path / "fastnn_no_kernels.py").write_text(NO_KERNELS)
    return subprocess.run([sys.executable, "-m", "pytest", str(BENCH), "--benchmark-only", "--bench-short",
                           "-p", "no:cacheprovider", "-q", "-k", "conv2d and tiny and fwd", *args],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300, check=False)


def test_short_mode_times_the_three_implementations(tmp_path):
    proc = run_bench(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for impl in ("fastnn", "numpy"):
        assert f"test_conv2d[tiny-fwd-float32-t1-{impl}]" in proc.stdout
    assert "benchmark 'conv2d tiny fwd float32 t1'" in proc.stdout


def test_benchmarks_fail_without_the_compiled_kernels(tmp_path):
    proc = run_bench(tmp_path, "-p", "fastnn_no_kernels")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "compiled kernels are not loaded (ImportError: simulated by the test)" in proc.stdout
    assert "failed" in proc.stdout.splitlines()[-1]
