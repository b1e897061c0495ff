"""Depthwise convolutions beyond 3x3 stride 1: 5x5, 7x7 and non-square kernels, stride 2 (and
(2, 1), (1, 2)), dilation, any padding, on every dispatch path and dtype.

On AVX-512 and AVX2 these run the general kernels of kernels/c/fnn_dw_body.h (fnn_dw_avx512.c,
fnn_dw_avx2.c; on AVX2 in 4-row blocks and 8-tap passes; 3x3 stride-1 planes too there):
the forward in 8-row blocks (the last one overlapping; under 8 rows one block storing only
the rows there are; specialised for 3, 5 and 7 kernel rows with stride 1, any row dilation, and stride 2),
a general block for other kernels, the input gradient gathered (stride-2 columns in two phases
interleaved when stored), and the weight gradient's lanes in passes of 16 taps; padding is
read through masks. The portable path runs fnn_direct_body.h's kernels. Small integers make every
result exact, so any dropped, repeated or misplaced term shows.
"""
import itertools

import numpy as np
import pytest

import fastnn
from fastnn import reference

from conv_helpers import at_threads, conftest_module, expected_all, run_all, small_ints

DTYPES = [np.float32, np.float64]
NAMES = ("y", "grad_input", "grad_weight", "grad_bias")

# (x shape, kernel (kh, kw), stride, padding, dilation, channel multiplier)
CASES = {
    # 5x5 and 7x7, stride 1: rows in blocks of 8 (+ an overlapping one), 4, or one at a time
    "k5_s1_p2_h14": ((2, 3, 14, 14), (5, 5), 1, 2, 1, 1),
    "k7_s1_p3_h14": ((2, 3, 14, 14), (7, 7), 1, 3, 1, 1),
    "k7_s1_p3_h56_b1": ((1, 2, 56, 56), (7, 7), 1, 3, 1, 1),
    "k5_s1_p0_odd": ((1, 2, 19, 37), (5, 5), 1, 0, 1, 1),
    "k5_s1_p1_h6": ((2, 2, 6, 9), (5, 5), 1, 1, 1, 1),          # 4 output rows
    "k7_s1_p3_h2_w3": ((1, 2, 2, 3), (7, 7), 1, 3, 1, 1),       # map smaller than the kernel
    "k5_s1_p3_wide_pad": ((1, 2, 5, 11), (5, 5), 1, 3, 1, 1),   # padding wider than half the kernel
    "k7_s1_p03": ((1, 2, 12, 17), (7, 7), 1, (0, 3), 1, 1),     # asymmetric
    "k7_s1_p30": ((1, 2, 12, 17), (7, 7), 1, (3, 0), 1, 1),
    "k5_s1_mult2": ((2, 2, 11, 20), (5, 5), 1, 2, 1, 2),        # two output planes per dX plane
    # stride 2: every other column of a two-vector window
    "k5_s2_p2_h14": ((2, 3, 14, 14), (5, 5), 2, 2, 1, 1),       # 7 x 7
    "k5_s2_p2_h56": ((1, 2, 56, 56), (5, 5), 2, 2, 1, 1),       # 28 x 28
    "k3_s2_p1_h33": ((2, 2, 33, 35), (3, 3), 2, 1, 1, 1),       # 17 x 18; dX two 32-wide blocks
    "k7_s2_p3_odd": ((1, 2, 23, 45), (7, 7), 2, 3, 1, 1),
    "k5_s2_p0": ((1, 2, 17, 21), (5, 5), 2, 0, 1, 1),
    "k5_s2_p1": ((1, 2, 16, 18), (5, 5), 2, 1, 1, 1),           # odd padding: the other column phase
    "k3_s2_p2_small": ((2, 2, 3, 4), (3, 3), 2, 2, 1, 1),
    "k7_s2_p3_h1": ((1, 2, 1, 9), (7, 7), 2, 3, 1, 1),          # one input row
    "k5_s2_mult2": ((2, 2, 13, 15), (5, 5), 2, 2, 1, 2),
    "k5_s2_p21": ((1, 2, 15, 40), (5, 5), 2, (2, 1), 1, 1),
    # mixed strides
    "k5_s21": ((1, 3, 15, 22), (5, 5), (2, 1), 2, 1, 1),
    "k5_s12": ((1, 3, 15, 37), (5, 5), (1, 2), 2, 1, 1),
    "k7_s21_p3": ((2, 2, 20, 9), (7, 7), (2, 1), 3, 1, 1),
    # dilation
    "k3_d2_p2": ((2, 2, 33, 33), (3, 3), 1, 2, 2, 1),
    "k3_d4_p4": ((1, 2, 21, 19), (3, 3), 1, 4, 4, 1),
    "k5_d2_p4": ((1, 2, 17, 23), (5, 5), 1, 4, 2, 1),
    "k3_d21": ((1, 2, 16, 17), (3, 3), 1, (2, 1), (2, 1), 1),
    "k3_d12_s2": ((1, 2, 16, 21), (3, 3), 2, (1, 2), (1, 2), 1),
    "k5_d2_s2": ((1, 2, 21, 21), (5, 5), 2, 4, 2, 1),            # the general (table) block
    # non-square and other sizes: the general block
    "k53_s1": ((2, 3, 13, 17), (5, 3), 1, (2, 1), 1, 1),
    "k53_s2": ((1, 3, 17, 29), (5, 3), 2, (2, 1), 1, 1),
    "k35_s21": ((1, 2, 14, 18), (3, 5), (2, 1), (1, 2), 1, 1),
    "k17": ((2, 2, 9, 20), (1, 7), 1, (0, 3), 1, 1),
    "k71": ((2, 2, 20, 9), (7, 1), 1, (3, 0), 1, 1),
    "k4_s2_p1": ((1, 2, 16, 16), (4, 4), 2, 1, 1, 1),
    "k9_s1_p4": ((1, 2, 18, 20), (9, 9), 1, 4, 1, 1),
    "k3_s3": ((1, 2, 19, 20), (3, 3), (3, 2), 1, 1, 1),          # row stride 3: the general block
}


def _problem(case, dtype, seed):
    x_shape, (kh, kw), stride, padding, dilation, mult = CASES[case]
    rng = np.random.default_rng(seed)
    c = x_shape[1]
    x = small_ints(rng, x_shape, dtype)
    w = small_ints(rng, (c * mult, 1, kh, kw), dtype)
    b = small_ints(rng, (c * mult,), dtype)
    y_shape = reference.conv2d(x.astype(np.float64), w.astype(np.float64), None, stride, padding,
                               dilation, c).shape
    dy = small_ints(rng, y_shape, dtype)
    return x, w, b, dy, stride, padding, dilation, c


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_depthwise_general_exact(compiled_only, cpu_path, case, dtype):
    x, w, b, dy, stride, padding, dilation, groups = _problem(case, dtype, sorted(CASES).index(case))
    want = expected_all(x, w, b, dy, stride, padding, dilation, groups)
    for threads in (1, 3):
        got = at_threads(threads, lambda: run_all(x, w, b, dy, stride, padding, dilation, groups))
        for name, g, e in zip(NAMES, got, want):
            assert g.dtype == dtype
            np.testing.assert_array_equal(g, e, err_msg=f"{case} {name} threads={threads}")
        # each gradient on its own (the separate passes, not the one-pass depthwise backward)
        gi = at_threads(threads, lambda: fastnn.conv2d_backward(
            dy, x, w, stride, padding, dilation, groups, needs_weight_grad=False, needs_bias_grad=False))[0]
        gw = at_threads(threads, lambda: fastnn.conv2d_backward(
            dy, x, w, stride, padding, dilation, groups, needs_input_grad=False, needs_bias_grad=False))[1]
        np.testing.assert_array_equal(gi, want[1], err_msg=f"{case} grad_input alone threads={threads}")
        np.testing.assert_array_equal(gw, want[2], err_msg=f"{case} grad_weight alone threads={threads}")


def test_depthwise_grid_exact(compiled_only, cpu_path):
    """A grid of kernel, stride, dilation, padding and map sizes, float32 and float64, against the
    reference: every combination whose output exists."""
    rng = np.random.default_rng(99)
    grid = itertools.product([(3, 3), (5, 5), (7, 7), (5, 3)], [1, 2, (2, 1)], [1, 2], [0, 1, 2, 3],
                             [(5, 4), (13, 17), (18, 33)])
    checked = 0
    for (kh, kw), stride, dilation, padding, (h, w_) in grid:
        if h + 2 * padding < (kh - 1) * dilation + 1 or w_ + 2 * padding < (kw - 1) * dilation + 1:
            continue
        for dtype in DTYPES:
            x = small_ints(rng, (2, 2, h, w_), dtype)
            w = small_ints(rng, (2, 1, kh, kw), dtype)
            b = small_ints(rng, (2,), dtype)
            y_shape = reference.conv2d(x.astype(np.float64), w.astype(np.float64), None, stride, padding,
                                       dilation, 2).shape
            dy = small_ints(rng, y_shape, dtype)
            want = expected_all(x, w, b, dy, stride, padding, dilation, 2)
            got = run_all(x, w, b, dy, stride, padding, dilation, 2)
            for name, g, e in zip(NAMES, got, want):
                np.testing.assert_array_equal(
                    g, e, err_msg=f"k{kh}x{kw} s{stride} d{dilation} p{padding} {h}x{w_} {dtype.__name__} {name}")
            checked += 1
    assert checked > 300


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["k5_s2_p2_h56", "k7_s1_p3_h56_b1", "k3_d2_p2", "k53_s2", "k5_s21"])
def test_depthwise_random_floats_within_tolerance(cpu_path, case, dtype):
    """Random values against the float64 oracle, with the suite's tolerance (about sqrt(K) *
    eps * sum |terms|)."""
    tol = conftest_module().float_tolerance
    x_shape, (kh, kw), stride, padding, dilation, mult = CASES[case]
    rng = np.random.default_rng(5)
    c = x_shape[1]
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal((c * mult, 1, kh, kw)).astype(dtype)
    b = rng.standard_normal(c * mult).astype(dtype)
    y = fastnn.conv2d(x, w, b, stride, padding, dilation, c)
    dy = rng.standard_normal(y.shape).astype(dtype)
    got = (y,) + tuple(fastnn.conv2d_backward(dy, x, w, stride, padding, dilation, c))
    want = expected_all(x, w, b, dy, stride, padding, dilation, c)
    mags = expected_all(np.abs(x), np.abs(w), np.abs(b), np.abs(dy), stride, padding, dilation, c)
    terms = (kh * kw, kh * kw * mult, dy.shape[0] * dy.shape[2] * dy.shape[3], dy.size // dy.shape[1])
    for name, g, e, m, k in zip(NAMES, got, want, mags, terms):
        assert g.dtype == dtype
        assert np.all(np.abs(g - e) <= tol(dtype, k, m)), f"{case} {name}"


@pytest.mark.parametrize("dtype", DTYPES)
def test_depthwise_threads_bit_identical(cpu_path, dtype):
    """Random floats: every output the same to the bit on 1, 2 and 3 threads."""
    rng = np.random.default_rng(11)
    for (kh, kw), stride, padding, dilation in (((5, 5), 2, 2, 1), ((7, 7), 1, 3, 1), ((3, 3), 1, 2, 2),
                                                 ((5, 3), (2, 1), (2, 1), 1)):
        x = rng.standard_normal((3, 5, 19, 23)).astype(dtype)
        w = rng.standard_normal((5, 1, kh, kw)).astype(dtype)
        b = rng.standard_normal(5).astype(dtype)
        y = fastnn.conv2d(x, w, b, stride, padding, dilation, 5)
        dy = rng.standard_normal(y.shape).astype(dtype)
        runs = [at_threads(t, lambda: run_all(x, w, b, dy, stride, padding, dilation, 5)) for t in (1, 2, 3)]
        for other in runs[1:]:
            for name, a, o in zip(NAMES, runs[0], other):
                assert a.tobytes() == o.tobytes(), f"k{kh}x{kw} s{stride} {name}"


@pytest.mark.parametrize("dtype", DTYPES)
def test_depthwise_layouts_and_batches(compiled_only, cpu_path, dtype):
    """Non-contiguous, Fortran-ordered and read-only inputs give the contiguous results; batch 1
    and batch 0 work."""
    x, w, b, dy, stride, padding, dilation, groups = _problem("k5_s2_p2_h14", dtype, 3)
    want = run_all(x, w, b, dy, stride, padding, dilation, groups)
    wide = np.zeros(x.shape[:3] + (2 * x.shape[3],), dtype)
    wide[..., ::2] = x
    ro = x.copy()
    ro.flags.writeable = False
    for variant in (wide[..., ::2], np.asfortranarray(x), ro):
        got = run_all(variant, np.asfortranarray(w), b, np.asfortranarray(dy), stride, padding, dilation, groups)
        for name, g, e in zip(NAMES, got, want):
            np.testing.assert_array_equal(g, e, err_msg=name)
    got = run_all(x[:1], w, b, dy[:1], stride, padding, dilation, groups)
    for name, g, e in zip(NAMES, got, expected_all(x[:1], w, b, dy[:1], stride, padding, dilation, groups)):
        np.testing.assert_array_equal(g, e, err_msg=f"batch 1 {name}")
    y, gi, gw, gb = run_all(x[:0], w, b, dy[:0], stride, padding, dilation, groups)
    assert y.shape == (0,) + dy.shape[1:] and gi.shape == x[:0].shape
    np.testing.assert_array_equal(gw, np.zeros_like(w))
    np.testing.assert_array_equal(gb, np.zeros_like(b))


# (kernel, stride, padding, dilation) with an Inf or NaN weight in the corner tap, which only
# padding meets in the first rows and columns: the reference's padding is absent, so those
# outputs (and the input-gradient elements that see the weight only through dY's padding) stay
# finite. Both use the edge-aware kernels, not the masked ones (0 * Inf would be NaN).
NONFINITE = {
    "k5_s1": ((5, 5), 1, 2, 1),
    "k7_s2": ((7, 7), 2, 3, 1),
    "k5_s2_p1": ((5, 5), 2, 1, 1),
    "k3_d2": ((3, 3), 1, 2, 2),
    "k53_s21": ((5, 3), (2, 1), (2, 1), 1),
}


@pytest.mark.parametrize("value", [np.nan, np.inf], ids=["nan", "inf"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(NONFINITE))
def test_depthwise_nonfinite_weight_matches_reference(compiled_only, cpu_path, case, dtype, value):
    (kh, kw), stride, padding, dilation = NONFINITE[case]
    rng = np.random.default_rng(50 + sorted(NONFINITE).index(case))
    x = small_ints(rng, (2, 2, 13, 21), dtype)
    w = small_ints(rng, (2, 1, kh, kw), dtype)
    w[-1, 0, 0, 0] = value
    b = small_ints(rng, (2,), dtype)
    y_shape = reference.conv2d(x.astype(np.float64), w.astype(np.float64), None, stride, padding,
                               dilation, 2).shape
    dy = small_ints(rng, y_shape, dtype)
    want = expected_all(x, w, b, dy, stride, padding, dilation, 2)
    assert not np.isfinite(want[0]).all() and np.isfinite(want[0]).any()
    for threads in (1, 3):
        got = at_threads(threads, lambda: run_all(x, w, b, dy, stride, padding, dilation, 2))
        for name, g, e in zip(NAMES, got, want):
            np.testing.assert_array_equal(g, e, err_msg=f"{case} {name} threads={threads}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(NONFINITE))
def test_depthwise_nonfinite_dy_matches_reference(compiled_only, cpu_path, case, dtype):
    """Inf and NaN in dY: the weight gradient's masked kernel would multiply them by padded
    zeros, so they take the edge-aware kernel; the results equal the reference's."""
    (kh, kw), stride, padding, dilation = NONFINITE[case]
    rng = np.random.default_rng(60 + sorted(NONFINITE).index(case))
    x = small_ints(rng, (2, 2, 13, 21), dtype)
    w = small_ints(rng, (2, 1, kh, kw), dtype)
    b = small_ints(rng, (2,), dtype)
    y_shape = reference.conv2d(x.astype(np.float64), w.astype(np.float64), None, stride, padding,
                               dilation, 2).shape
    dy = small_ints(rng, y_shape, dtype)
    dy[0, 1, 0, 0] = np.inf
    dy[-1, -1, -1, -1] = np.nan
    want = expected_all(x, w, b, dy, stride, padding, dilation, 2)
    assert not np.isfinite(want[2]).all() and np.isfinite(want[2]).any()
    for threads in (1, 3):
        got = at_threads(threads, lambda: run_all(x, w, b, dy, stride, padding, dilation, 2))
        for name, g, e in zip(NAMES, got, want):
            np.testing.assert_array_equal(g, e, err_msg=f"{case} {name} threads={threads}")
