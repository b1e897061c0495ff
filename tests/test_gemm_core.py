"""The GEMM core on its own, through fastnn._kernels.gemm, on every dispatch path.

XNNPACK's tester idea: sizes are chosen around the active micro-kernel's tile (MR x NR) and
cache blocking (MC, KC, NC), read from gemm_kernels() for the path under test, so every fringe
(partial tile, partial block, more than one block) is hit; C sits between guard cells so a write
outside it shows. Values are small integers, so the float32 and float64 results must equal NumPy's
float64 product exactly; random floats then check that each dtype really computes in its own
precision. The thread count must not change a single bit.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastnn import _runtime

KERNELS = _runtime._kernels
DTYPES = (np.float32, np.float64)
GUARD = 17  # cells before and after C, filled with a sentinel

fixture_settings = settings(
    suppress_health_check=list(settings().suppress_health_check) + [HealthCheck.function_scoped_fixture])


def paths():
    if KERNELS is None:
        return ["portable"]
    return list(KERNELS.ISA_NAMES[: KERNELS.ISA_NAMES.index(KERNELS.cpu_isa()) + 1])


def tiling(dtype):
    """The active micro-kernel's {mr, nr, mc, kc, nc} for dtype (keys upper-cased)."""
    info = KERNELS.gemm_kernels()[np.dtype(dtype).name]
    return {key.upper(): info[key] for key in ("mr", "nr", "mc", "kc", "nc")}


# ---- operands ----------------------------------------------------------------------------------

LAYOUTS = ("c", "transposed", "strided", "reversed", "misaligned", "broadcast", "byte_offset_row")


def operand(values, layout):
    """values (a C-contiguous 2-D array) in a memory layout the core must read by strides."""
    rows, cols = values.shape
    if layout == "c":
        return values.copy()
    if layout == "transposed":  # column-major: the transpose of a C array
        return np.ascontiguousarray(values.T).T
    if layout == "strided":  # every other row, every third column of a bigger NaN buffer
        big = np.full((2 * rows + 1, 3 * cols + 2), np.nan, values.dtype)
        view = big[1::2, 2::3]
        view[...] = values
        return view
    if layout == "reversed":  # negative strides on both axes
        return values[::-1, ::-1].copy()[::-1, ::-1]
    if layout == "misaligned":  # float data starting one byte into a buffer
        if values.size == 0:
            return values.copy()
        buf = np.zeros(values.nbytes + 1, np.uint8)
        view = np.frombuffer(buf, values.dtype, count=values.size, offset=1).reshape(values.shape)
        view[...] = values
        return view
    if layout == "broadcast":  # stride 0 along the rows: every row is row 0
        if rows == 0:
            return values.copy()
        return np.broadcast_to(values[:1], values.shape)
    if layout == "byte_offset_row":  # rows further apart than the row length (a padded leading dim)
        big = np.full((rows, cols + 5), np.nan, values.dtype)
        view = big[:, 3:3 + cols]
        view[...] = values
        return view
    raise AssertionError(layout)


def small_ints(rng, shape, dtype, bound=4):
    a = rng.integers(-bound, bound + 1, size=shape).astype(dtype)
    a[rng.random(shape) < 0.2] = 0
    return a


def guarded_c(initial):
    """A C-contiguous C (a copy of initial) with sentinel cells right before and after it."""
    m, n = initial.shape
    flat = np.full(m * n + 2 * GUARD, -12345.0, initial.dtype)
    c = flat[GUARD:GUARD + m * n].reshape(m, n)
    c[...] = initial
    assert c.flags.c_contiguous
    return flat, c


def run_gemm(a, b, c0, accumulate, bias, bias_axis, num_threads=1):
    """Call the core on a guarded copy of c0; check guards and inputs; return the new C."""
    flat, c = guarded_c(c0)
    saved = [(x, x.copy()) for x in (a, b, bias) if x is not None]
    got = KERNELS.gemm(a, b, c, accumulate=accumulate, bias=bias, bias_axis=bias_axis, num_threads=num_threads)
    assert got is c
    assert (flat[:GUARD] == -12345.0).all() and (flat[-GUARD:] == -12345.0).all(), "gemm wrote outside C"
    for x, before in saved:
        assert np.array_equal(x, before, equal_nan=True), "gemm modified an input"
    return c


def expected_gemm(a, b, c0, accumulate, bias, bias_axis):
    m, n = c0.shape
    want = np.asarray(a, np.float64) @ np.asarray(b, np.float64) if a.shape[1] else np.zeros((m, n))
    if accumulate:
        want = want + c0
    if bias is not None:
        want = want + (bias[:, None] if bias_axis == 0 else bias[None, :])
    return want


def assert_exact(got, want, what):
    assert np.array_equal(got, want.astype(got.dtype)), (
        f"{what}: {np.sum(got != want)} of {got.size} elements differ, max |err| "
        f"{np.max(np.abs(got - want), initial=0)}")


# ---- sizes around the blocking ----------------------------------------------------------------

# (m, n, k) as expressions in MR, NR, MC, KC, NC of the path under test.
SIZE_CASES = [
    # m around the register tile and the MC block
    ("0", "NR+1", "5"), ("1", "NR+1", "5"), ("MR-1", "NR+1", "5"), ("MR", "NR+1", "5"),
    ("MR+1", "NR+1", "5"), ("2*MR+1", "NR", "7"), ("13", "NR-1", "3"), ("MC", "3", "4"),
    ("MC+1", "NR+3", "17"), ("2*MC+MR+1", "5", "3"),
    # n around NR and the NC panel
    ("MR+1", "0", "5"), ("MR+1", "1", "5"), ("MR+1", "NR-1", "5"), ("MR+1", "NR", "5"),
    ("MR+1", "2*NR+1", "5"), ("7", "31", "5"), ("5", "NC", "3"), ("MR+1", "NC+1", "5"), ("3", "2*NC+NR+1", "2"),
    # k: empty, tiny, around KC
    ("MR+1", "NR+1", "0"), ("MR+1", "NR+1", "1"), ("MR+1", "NR+1", "2"), ("11", "13", "KC-1"),
    ("11", "13", "KC"), ("MR+1", "NR+1", "KC+1"), ("7", "NR+1", "2*KC+3"),
    # everything past its block at once
    ("MC+1", "NC+1", "KC+1"),
]


def sizes(case, dtype):
    t = tiling(dtype)
    return tuple(int(eval(expr, {}, t)) for expr in case)  # noqa: S307 - our own table


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", SIZE_CASES, ids=["x".join(c) for c in SIZE_CASES])
def test_gemm_sizes_exact(cpu_path, case, dtype):
    m, n, k = sizes(case, dtype)
    index = SIZE_CASES.index(case)
    rng = np.random.default_rng(index)
    a, b = small_ints(rng, (m, k), dtype), small_ints(rng, (k, n), dtype)
    c0 = small_ints(rng, (m, n), dtype)
    row_bias, col_bias = small_ints(rng, (m,), dtype), small_ints(rng, (n,), dtype)
    # Every size runs plainly, then in rotating layouts with an epilogue (accumulate, bias).
    variants = [("c", "c", False, None, 0)]
    la, lb = LAYOUTS[index % len(LAYOUTS)], LAYOUTS[(3 * index + 1) % len(LAYOUTS)]
    variants += [(la, lb, True, None, 0), (lb, la, False, row_bias, 0), (la, "transposed", True, col_bias, 1)]
    for layout_a, layout_b, accumulate, bias, axis in variants:
        a_op, b_op = operand(a, layout_a), operand(b, layout_b)
        got = run_gemm(a_op, b_op, c0, accumulate, bias, axis)
        want = expected_gemm(a_op, b_op, c0, accumulate, bias, axis)
        assert_exact(got, want, f"m,n,k={m},{n},{k} A {layout_a}, B {layout_b}, accumulate={accumulate}, "
                                f"bias={'none' if bias is None else ('row', 'col')[axis]}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_thread_count_is_bit_identical(cpu_path, dtype):
    """Random floats, shapes that split into several work items (rows past MC, columns past NC;
    rows past MC for every thread but no more rows than columns, which splits by columns):
    1, 2 and 3 threads give the same bits, and the teams really ran."""
    t = tiling(dtype)
    rng = np.random.default_rng(1)
    for m, n, k in ((2 * t["MC"] + 5, 3 * t["NR"] + 1, t["KC"] + 7), (t["MR"] + 1, t["NC"] + 5, t["KC"] + 1),
                    (t["MC"] + 1, t["NC"] + 1, 3), (3 * t["MC"] + 2, 3 * t["MC"] + t["NR"] + 3, 9)):
        a = operand(rng.standard_normal((m, k)).astype(dtype), "transposed")
        b = rng.standard_normal((k, n)).astype(dtype)
        c0 = rng.standard_normal((m, n)).astype(dtype)
        bias = rng.standard_normal(n).astype(dtype)
        results = []
        for threads in (1, 2, 3):
            KERNELS.reset_team_size()
            results.append(run_gemm(a, b, c0, True, bias, 1, num_threads=threads))
            if threads > 1:
                assert KERNELS.last_team_size() > 1, f"{m}x{n}x{k} with {threads} threads ran on one"
        for threads, c in zip((2, 3), results[1:]):
            assert np.array_equal(c, results[0]), f"{m}x{n}x{k}: {threads} threads differ from 1"
        want = expected_gemm(a, b, c0, True, bias, 1)
        magnitude = np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64)) + np.abs(c0) + np.abs(bias)
        tol = 4 * np.sqrt(k + 2) * np.finfo(dtype).eps * magnitude
        assert (np.abs(results[0] - want) <= tol).all(), f"{m}x{n}x{k}: not within rounding of the float64 product"


@fixture_settings
@given(path=st.sampled_from(paths()), dtype=st.sampled_from(DTYPES), data=st.data(),
       layouts=st.tuples(st.sampled_from(LAYOUTS), st.sampled_from(LAYOUTS)),
       accumulate=st.booleans(), bias_axis=st.sampled_from([None, 0, 1]), integers=st.booleans(),
       threads=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
def test_gemm_random_shapes(path, dtype, data, layouts, accumulate, bias_axis, integers, threads, seed):
    before = KERNELS.active_isa()
    _runtime.set_cpu_path(path)
    try:
        t = tiling(dtype)
        m = data.draw(st.integers(0, 3 * t["MR"] + 2), label="m")
        n = data.draw(st.integers(0, 3 * t["NR"] + 2), label="n")
        k = data.draw(st.integers(0, 40), label="k")
        rng = np.random.default_rng(seed)
        if integers:
            make = lambda shape: small_ints(rng, shape, dtype)  # noqa: E731
        else:
            make = lambda shape: rng.uniform(-1, 1, shape).astype(dtype)  # noqa: E731
        a, b, c0 = operand(make((m, k)), layouts[0]), operand(make((k, n)), layouts[1]), make((m, n))
        bias = None if bias_axis is None else make((m,) if bias_axis == 0 else (n,))
        got = run_gemm(a, b, c0, accumulate, bias, bias_axis or 0, num_threads=threads)
    finally:
        _runtime.set_cpu_path(before)
    want = expected_gemm(a, b, c0, accumulate, bias, bias_axis or 0)
    if integers:
        assert_exact(got, want, f"{path} {m}x{n}x{k}")
    else:
        # Rounding of a k-term sum in dtype: a float64 kernel that rounds through float32 fails.
        mag = np.abs(np.asarray(a, np.float64)) @ np.abs(np.asarray(b, np.float64)) if k else np.zeros((m, n))
        mag = mag + (np.abs(c0) if accumulate else 0)
        if bias is not None:
            mag = mag + np.abs(bias[:, None] if bias_axis == 0 else bias[None, :])
        tol = 4 * np.sqrt(k + 2) * np.finfo(dtype).eps * mag
        assert (np.abs(got - want) <= tol).all(), f"{path} {m}x{n}x{k}: max |err| {np.max(np.abs(got - want))}"
