"""Helpers shared by the kernel test files (test_kernels and each family's own): awkward memory
layouts, input guards, tolerance checks, forced dispatch paths and thread teams, and the
hypothesis settings they run under.

Importable because conftest.py puts this folder on sys.path (pytest's importlib mode does not).
"""
import contextlib
import os

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import fastnn
from fastnn import _runtime

from conv_helpers import conftest_module

KERNELS = conftest_module().KERNELS
available_cpu_paths = conftest_module().available_cpu_paths

PATHS = available_cpu_paths() or ["portable"]
DTYPES = (np.float32, np.float64)

# The fixtures compiled_only / cpu_path are set once per test function, which is what we want:
# every example of a test runs under the same patch and path.
fixture_settings = settings(
    suppress_health_check=list(settings().suppress_health_check) + [HealthCheck.function_scoped_fixture])


# ---- memory layouts ---------------------------------------------------------------------------

LAYOUTS = ("c", "fortran", "strided", "reversed", "permuted", "readonly", "byteswapped", "misaligned")
PARAM_LAYOUTS = LAYOUTS + ("broadcast_first", "broadcast_last")


def with_layout(a, layout):
    """a's values (a: C-contiguous, native) in the named memory layout.

    'broadcast_first' / 'broadcast_last' repeat a's first entry along the first / last axis
    with stride 0, so they change the values: give the oracle the returned array.
    """
    if layout == "c":
        return a.copy()
    if layout == "fortran":
        return np.asfortranarray(a)
    if layout == "strided":
        # Every other element of a NaN-filled buffer: a read outside the view shows as NaN.
        big = np.full(tuple(2 * s + 1 for s in a.shape), np.nan, a.dtype)
        view = big[tuple(slice(1, None, 2) for _ in a.shape)]
        view[...] = a
        return view
    if layout == "reversed":
        every_axis = (slice(None, None, -1),) * a.ndim
        return a[every_axis].copy()[every_axis]
    if layout == "permuted":
        # Transposed (axes rolled by one) in memory, transposed back as a view.
        perm = tuple(range(1, a.ndim)) + (0,)
        return np.ascontiguousarray(a.transpose(perm)).transpose(np.argsort(perm))
    if layout == "readonly":
        b = a.copy()
        b.setflags(write=False)
        return b
    if layout == "byteswapped":
        return a.astype(a.dtype.newbyteorder("S"))
    if layout == "misaligned":
        if a.size == 0:
            return a.copy()
        buf = np.zeros(a.nbytes + 1, np.uint8)
        b = np.frombuffer(buf, a.dtype, count=a.size, offset=1).reshape(a.shape)
        b[...] = a
        assert not b.flags.aligned
        return b
    if layout in ("broadcast_first", "broadcast_last"):
        axis = 0 if layout == "broadcast_first" else a.ndim - 1
        if a.shape[axis] == 0:
            return a.copy()
        first = a[(slice(None),) * axis + (slice(0, 1),)]
        b = np.broadcast_to(first, a.shape)
        assert b.strides[axis] == 0 or a.shape[axis] == 1
        return b
    raise AssertionError(layout)


def _root(arr):
    while isinstance(arr.base, np.ndarray):
        arr = arr.base
    return arr


class Unmodified:
    """Snapshots of the inputs (and of the buffers they view) to check after the call."""

    def __init__(self, **arrays):
        self.saved = {name: (a, a.copy(), _root(a).tobytes()) for name, a in arrays.items() if a is not None}

    def check(self):
        for name, (a, values, buffer) in self.saved.items():
            assert np.array_equal(a, values), f"the kernel modified its input {name}"
            assert _root(a).tobytes() == buffer, f"the kernel wrote into the buffer around input {name}"


def f64(a):
    return None if a is None else np.array(a, dtype=np.float64)


def absf64(a):
    return None if a is None else np.abs(np.array(a, dtype=np.float64))


def values(rng, shape, dtype, scale=1.0, zeros=0.2):
    """Uniform(-scale, scale) values of dtype with about `zeros` of them exactly 0."""
    a = rng.uniform(-scale, scale, size=shape)
    a[rng.random(shape) < zeros] = 0
    return a.astype(dtype)


def assert_close(got, expected, tol, what):
    """|got - expected| <= tol elementwise (tol broadcasts against expected); NaN fails."""
    assert got is not None, f"{what}: got None"
    assert isinstance(got, np.ndarray), f"{what}: not an ndarray but {type(got)}"
    assert got.shape == expected.shape, f"{what}: shape {got.shape}, expected {expected.shape}"
    err = np.abs(got.astype(np.float64) - expected)
    tol = np.broadcast_to(tol, expected.shape)
    bad = ~(err <= tol)
    if bad.any():
        i = tuple(np.argwhere(bad)[0])
        raise AssertionError(
            f"{what}: {bad.sum()} of {bad.size} elements off; first at {i}: got {got[i]!r}, "
            f"expected {expected[i]!r}, |err| {err[i]:.3g} > tol {tol[i]:.3g}")


@contextlib.contextmanager
def running(path, threads=None, parallel=False):
    """Run on dispatch `path` with `threads` threads; parallel=True lowers the serial threshold
    to 0 so even tiny problems run on a team. Everything is restored afterwards."""
    isa_before = KERNELS.active_isa()
    threads_before = _runtime._requested_threads
    threshold_before = _runtime.serial_threshold
    _runtime.set_cpu_path(path)
    fastnn.set_num_threads(threads)
    if parallel:
        _runtime.serial_threshold = 0
    try:
        yield
    finally:
        _runtime.serial_threshold = threshold_before
        fastnn.set_num_threads(threads_before)
        _runtime.set_cpu_path(isa_before)


@contextlib.contextmanager
def every_threshold_zero():
    """Teams for everything: whole calls, inner GEMMs, each step of a recurrence and the row
    moves of variable lengths."""
    old = (_runtime.serial_threshold, KERNELS.set_serial_gemm_fmas(0), KERNELS.set_gates_serial_step_fmas(0),
           KERNELS.set_row_moves_team_bytes(0))
    _runtime.serial_threshold = 0
    try:
        yield
    finally:
        _runtime.serial_threshold = old[0]
        KERNELS.set_serial_gemm_fmas(old[1])
        KERNELS.set_gates_serial_step_fmas(old[2])
        KERNELS.set_row_moves_team_bytes(old[3])


@contextlib.contextmanager
def running_recurrent(path, threads=None, parallel=False):
    """running, with parallel=True also putting the inner GEMMs' and the recurrence steps'
    thresholds at 0."""
    with running(path, threads, parallel), (every_threshold_zero() if parallel else contextlib.nullcontext()):
        yield


def int_or_pair(lo, hi):
    return st.one_of(st.integers(lo, hi), st.tuples(st.integers(lo, hi), st.integers(lo, hi)),
                     st.lists(st.integers(lo, hi), min_size=2, max_size=2))


run_settings = st.fixed_dictionaries(dict(
    path=st.sampled_from(PATHS), threads=st.sampled_from([None, 1, 2, 3]), parallel=st.booleans()))


def bad_outs(shape, dtype):
    """(description, out) pairs that conv2d / rnn_forward must refuse with ValueError."""
    other = np.float64 if dtype == np.float32 else np.float32
    readonly = np.zeros(shape, dtype)
    readonly.setflags(write=False)
    noncontiguous = np.zeros(shape[:-1] + (2 * shape[-1],), dtype)[..., ::2]
    return [
        ("wrong shape", np.zeros(shape[:-1] + (shape[-1] + 1,), dtype)),
        ("too few dims", np.zeros(shape[1:], dtype)),
        ("wrong dtype", np.zeros(shape, other)),
        ("byte-swapped", np.zeros(shape, np.dtype(dtype).newbyteorder("S"))),
        ("non-contiguous", noncontiguous),
        ("Fortran order", np.asfortranarray(np.zeros(shape, dtype))),
        ("read-only", readonly),
    ]


def assert_nonfinite_like(got, want, label, rtol=None):
    """Same NaN mask, same Inf mask and signs, finite values close."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, label
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{label}: NaN positions differ")
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want), err_msg=f"{label}: Inf positions differ")
    inf = np.isinf(want)
    np.testing.assert_array_equal(np.sign(got[inf]), np.sign(want[inf]), err_msg=f"{label}: Inf signs differ")
    fin = np.isfinite(want)
    if rtol is None:
        rtol = 1e-4 if got.dtype == np.float32 else 1e-11
    np.testing.assert_allclose(got[fin], want[fin], rtol=rtol, atol=rtol * 10, err_msg=label)


# ---- determinism across thread counts (STYLE.md point 7) --------------------------------------

THREAD_COUNTS = sorted({1, 2, 3, os.cpu_count() or 1})


def team_of(call):
    """(call(), size of the last OpenMP team a kernel ran during the call, 0 if none)."""
    KERNELS.reset_team_size()
    result = call()
    return result, KERNELS.last_team_size()


def assert_bit_identical(got, want, label):
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want), label
        for i, (g, w) in enumerate(zip(got, want)):
            assert_bit_identical(g, w, f"{label}[{i}]")
        return
    assert got.dtype == want.dtype and got.shape == want.shape, label
    assert np.array_equal(got, want), f"{label}: values differ ({np.abs(got - want).max()} max)"
    assert got.tobytes() == want.tobytes(), f"{label}: bytes differ (signed zeros?)"


def check_deterministic(calls, serial_only=()):
    """Run every call at each thread count, twice, and compare bytes with the 1-thread run.
    Asserts that every multi-thread call, except those in serial_only, ran on a real team."""
    baseline = {}
    for n in THREAD_COUNTS:
        fastnn.set_num_threads(n)
        assert fastnn.get_num_threads() == n
        for label, call in calls.items():
            for repeat in range(2):
                result, team = team_of(call)
                if n == 1:
                    assert team <= 1, f"{label}: a team of {team} ran with set_num_threads(1)"
                    if repeat == 0:
                        baseline[label] = result
                elif label not in serial_only:
                    assert team > 1, f"{label}: ran on {team} thread(s) with set_num_threads({n})"
                    assert team <= n, f"{label}: a team of {team} with set_num_threads({n})"
                assert_bit_identical(result, baseline[label], f"{label} at {n} threads, call {repeat}")
    return baseline
