"""The FMA peak probe (fastnn.fma_peak, kernels/c/fnn_peak.c): each path's chains do exactly
the arithmetic they claim (so the FLOP count behind every share of peak is right), on as many
threads as asked, and bad arguments are refused by name."""
import ctypes
import os
import pathlib
import platform
import shutil
import subprocess

import numpy as np
import pytest
from conv_helpers import conftest_module

import fastnn
from fastnn import _runtime

KERNELS = conftest_module().KERNELS
available_cpu_paths = conftest_module().available_cpu_paths

STEPS = 1000
X86 = platform.machine().lower() in ("x86_64", "amd64")
ARM64 = platform.machine().lower() in ("aarch64", "arm64")


def expected_sum(chains, lanes, dtype, steps, fused):
    """The probe's sum, recomputed: chain i, lane j starts at i + j and steps acc * b + c."""
    dtype = np.dtype(dtype)
    b, c = dtype.type(0.9999999), dtype.type(1e-7)
    acc = np.add.outer(np.arange(chains), np.arange(lanes)).astype(dtype)
    for _ in range(steps):
        if dtype == np.float32 and fused:
            # a float32 product and sum of these sizes is exact in float64: one rounding, as fused
            acc = (acc.astype(np.float64) * np.float64(b) + np.float64(c)).astype(np.float32)
        else:
            acc = acc * b + c  # a rounding after the product and after the sum
    return float(acc.astype(np.float64).sum())


def fused_on(isa):
    """Whether this path's chains are fused multiply-adds here (None: either is fine)."""
    if isa != "portable":
        return True
    return False if X86 else (True if ARM64 else None)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("isa", available_cpu_paths())
def test_chains_compute_what_the_flop_count_says(isa, dtype):
    f64 = dtype == "float64"
    chains, lanes = KERNELS.peak_shape(isa, f64)
    # vector registers of the path: 16 bytes portable, 32 AVX2, 64 AVX-512
    want_bytes = {"portable": 16, "avx2": 32, "avx512": 64}[isa]
    assert lanes * np.dtype(dtype).itemsize == want_bytes or (isa == "portable" and lanes == 1)
    assert chains >= 8  # enough independent chains to fill two FMA units of latency 4
    team, total = KERNELS.peak_run(isa, f64, 1, STEPS)
    assert team == 1
    fused = fused_on(isa)
    candidates = [fused] if fused is not None else [True, False]
    sums = [expected_sum(chains, lanes, dtype, STEPS, f) for f in candidates]
    # float64 chains are not emulated bit for bit (NumPy has no fused multiply-add): their
    # rounding is ~1e-16 a step, far below the change one step more or less makes.
    rtol = 1e-12 if dtype == "float32" else 1e-10
    assert any(abs(total - s) <= rtol * abs(s) for s in sums), (total, sums)
    # and one step fewer is told apart
    assert all(abs(total - expected_sum(chains, lanes, dtype, STEPS - 1, f)) > rtol * abs(total)
               for f in candidates)


def test_every_thread_runs_its_chains():
    isa = KERNELS.cpu_isa()
    _, one = KERNELS.peak_run(isa, False, 1, STEPS)
    team, two = KERNELS.peak_run(isa, False, 2, STEPS)
    assert team == (2 if KERNELS.openmp_enabled() else 1)
    assert two == 2 * one


@pytest.mark.parametrize("dtype", ["float32", np.float64])
def test_fma_peak_is_a_rate(dtype):
    gflops = fastnn.fma_peak(1, dtype, seconds=0.01, repeats=2)
    assert isinstance(gflops, float) and 0.1 < gflops < 1e5


def test_fma_peak_follows_the_active_path(cpu_path):
    assert fastnn.fma_peak(1, seconds=0.005, repeats=1) > 0  # runs on the forced path
    # a path above the CPU's best is refused, whatever path is active
    best = KERNELS.cpu_isa()
    if best != "avx512":
        with pytest.raises(ValueError, match="isa 'avx512' is not supported"):
            fastnn.fma_peak(1, isa="avx512")


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    (dict(threads=0), ValueError, "threads must be >= 1"),
    (dict(threads=1.5), TypeError, "threads must be an int"),
    (dict(threads=True), TypeError, "threads must be an int"),
    (dict(dtype="float16"), ValueError, "dtype must be float32 or float64"),
    (dict(dtype=np.int32), ValueError, "dtype must be float32 or float64"),
    (dict(isa="sse4"), ValueError, "isa must be one of"),
    (dict(seconds=0), ValueError, "seconds must be > 0"),
    (dict(repeats=0), ValueError, "repeats must be an int >= 1"),
])
def test_fma_peak_refuses_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        fastnn.fma_peak(**kwargs)


def test_show_config_measures_the_peak_only_when_asked(capsys):
    assert "fma_peak" not in fastnn.show_config(print_out=False)
    info = fastnn.show_config(peak=True)
    peak = info["fma_peak"]
    assert peak["isa"] == info["cpu_path"] and peak["threads"] == info["num_threads"]
    assert peak["float32"] > 0 and peak["float64"] > 0
    assert "fma_peak" in capsys.readouterr().out


def test_fma_peak_without_the_compiled_kernels(monkeypatch):
    monkeypatch.setattr(_runtime, "_kernels", None)
    with pytest.raises(RuntimeError, match="compiled kernels are not loaded"):
        fastnn.fma_peak()
    assert fastnn.show_config(print_out=False, peak=True)["fma_peak"] is None


PEAK_SOURCE = pathlib.Path(__file__).resolve().parents[1] / "kernels" / "c" / "fnn_peak.c"


@pytest.fixture(scope="module")
def intrinsics_build(tmp_path_factory):
    """kernels/c/fnn_peak.c built with FNN_PEAK_INTRINSICS: the source MSVC compiles (which
    has no vector extensions), run here through gcc. Needs the checkout and a C compiler."""
    cc = os.environ.get("CC") or "gcc"
    if not PEAK_SOURCE.exists():
        pytest.skip("kernels/c/fnn_peak.c is not here (tests run outside the checkout)")
    if shutil.which(cc) is None or subprocess.run([cc, "--version"], capture_output=True).returncode:
        pytest.skip(f"no working C compiler ({cc})")
    lib = tmp_path_factory.mktemp("peak") / "libpeak.so"
    subprocess.run([cc, "-O2", "-fPIC", "-shared", "-DFNN_PEAK_INTRINSICS", "-I", str(PEAK_SOURCE.parent),
                    str(PEAK_SOURCE), "-o", str(lib)], check=True)
    so = ctypes.CDLL(str(lib))
    for name in ("fnn_peak_chains_f32", "fnn_peak_chains_f64"):
        getattr(so, name).restype = ctypes.c_double
        getattr(so, name).argtypes = [ctypes.c_int, ctypes.c_longlong]
    return so


@pytest.mark.skipif(not X86, reason="the intrinsics branch differs from the vector one on x86-64 only")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("isa", available_cpu_paths())
def test_intrinsics_branch_computes_the_same_chains(intrinsics_build, isa, dtype):
    f64 = dtype == "float64"
    level = KERNELS.ISA_NAMES.index(isa)
    chains = getattr(intrinsics_build, f"fnn_peak_chains_{'f64' if f64 else 'f32'}")(level, STEPS)
    assert chains == KERNELS.peak_run(isa, f64, 1, STEPS)[1]
