"""The direct (C_in/groups == 1) conv kernels' special paths, on every dispatch path and dtype.

fnn_direct.c runs planes in whole-vector column chunks with the last chunk overlapping, four
output rows at a time; it zero-pads a plane first when the other operand is all finite, and
otherwise handles the edges tap by tap; the stride-1 input gradient is a convolution of dY
with the flipped kernel (a crop when the padding is wider than the kernel). These shapes
put rows wider and narrower than one vector through each of those branches. Small integers
make every result exact, so any dropped, repeated or misplaced term shows.
"""
import numpy as np
import pytest

import fastnn
from fastnn import _runtime, reference

DTYPES = [np.float32, np.float64]

# (x shape, w shape, stride, padding, dilation, groups)
CASES = {
    "depthwise_wide": ((2, 3, 37, 41), (3, 1, 3, 3), 1, 1, 1, 3),
    "one_channel_many_out": ((3, 1, 28, 28), (5, 1, 3, 3), 1, 1, 1, 1),
    "multiplier_2": ((1, 2, 19, 23), (4, 1, 5, 3), 1, (2, 1), 1, 2),
    "narrow_rows": ((2, 2, 9, 6), (2, 1, 3, 3), 1, 1, 1, 2),
    "crop_padding": ((1, 2, 7, 20), (4, 1, 1, 2), 1, (3, 2), 1, 2),
    "dilated": ((1, 3, 21, 35), (3, 1, 3, 3), 1, 2, 2, 3),
    "strided": ((2, 2, 17, 40), (2, 1, 3, 3), 2, 1, 1, 2),
    "no_padding": ((1, 1, 12, 50), (3, 1, 3, 3), 1, 0, 1, 1),
}


def small_ints(rng, shape, dtype):
    return rng.integers(-6, 7, size=shape).astype(dtype)


def run_all(x, w, b, dy, stride, padding, dilation, groups):
    y = fastnn.conv2d(x, w, b, stride, padding, dilation, groups)
    return (y,) + tuple(fastnn.conv2d_backward(dy, x, w, stride, padding, dilation, groups))


def expected_all(x, w, b, dy, stride, padding, dilation, groups):
    f = [a.astype(np.float64) for a in (x, w, b, dy)]
    y = reference.conv2d(f[0], f[1], f[2], stride, padding, dilation, groups)
    return (y,) + tuple(reference.conv2d_backward(f[3], f[0], f[1], stride, padding, dilation, groups))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_direct_paths_exact(compiled_only, cpu_path, case, dtype):
    x_shape, w_shape, stride, padding, dilation, groups = CASES[case]
    rng = np.random.default_rng(sorted(CASES).index(case))
    x, w = small_ints(rng, x_shape, dtype), small_ints(rng, w_shape, dtype)
    b = small_ints(rng, w_shape[:1], dtype)
    y_shape = reference.conv2d(x.astype(np.float64), w.astype(np.float64), None, stride, padding,
                               dilation, groups).shape
    dy = small_ints(rng, y_shape, dtype)
    want = expected_all(x, w, b, dy, stride, padding, dilation, groups)
    for threads in (1, 3):
        fastnn.set_num_threads(threads)
        before = _runtime.serial_threshold
        _runtime.serial_threshold = 0
        try:
            got = run_all(x, w, b, dy, stride, padding, dilation, groups)
        finally:
            _runtime.serial_threshold = before
            fastnn.set_num_threads(None)
        for name, g, e in zip(("y", "grad_input", "grad_weight", "grad_bias"), got, want):
            assert g.dtype == dtype
            np.testing.assert_array_equal(g, e, err_msg=f"{case} {name} threads={threads}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_direct_edges_keep_padding_absent(cpu_path, dtype):
    """An Inf weight (or Inf in dY) makes the kernels skip the zero-padded copy: outputs that
    see the Inf only through padding stay finite, as in the reference."""
    rng = np.random.default_rng(7)
    x = small_ints(rng, (1, 2, 6, 40), dtype)
    w = small_ints(rng, (2, 1, 3, 3), dtype)
    w[0, 0, 0, 0] = np.inf
    y = fastnn.conv2d(x, w, None, 1, 1, 1, 2)
    want = reference.conv2d(x, w, None, 1, 1, 1, 2)
    np.testing.assert_array_equal(np.isfinite(y), np.isfinite(want))
    np.testing.assert_array_equal(y[np.isfinite(want)], want[np.isfinite(want)])
    dy = small_ints(rng, y.shape, dtype)
    gi = fastnn.conv2d_backward(dy, x, w, 1, 1, 1, 2)[0]
    gi_want = reference.conv2d_backward(dy, x, w, 1, 1, 1, 2)[0]
    np.testing.assert_array_equal(np.isnan(gi), np.isnan(gi_want))
    dy[0, 1, 0, 0] = np.inf
    gw = fastnn.conv2d_backward(dy, x, np.ones_like(w), 1, 1, 1, 2)[1]
    gw_want = reference.conv2d_backward(dy, x, np.ones_like(w), 1, 1, 1, 2)[1]
    np.testing.assert_array_equal(np.isnan(gw), np.isnan(gw_want))
    np.testing.assert_array_equal(gw[np.isfinite(gw_want)], gw_want[np.isfinite(gw_want)])


# ---- implicit-GEMM paths (C_in/groups > 1): fnn_im2col.c packers and the driver forms ----
#
# conv2d_forward: pointwise convs pack the image itself; others pack im2col panels with
# stride-1, stride-2 and general-stride gathers, row runs cut at NR-wide panel edges.
# grad_weight: dW^T = cols * dY^T, K cut into ranges for the team. grad_input: stride 1 runs
# as a forward conv of dY with the flipped, channel-swapped kernel (crop when the padding is
# wider than the kernel); other strides scatter with col2im (stride 2 and general).
# (x shape, w shape, stride, padding, dilation, groups)
GEMM_CASES = {
    "pointwise": ((2, 14, 7, 9), (4, 14, 1, 1), 1, 0, 1, 1),
    "pointwise_strided": ((2, 14, 7, 9), (4, 14, 1, 1), 2, 0, 1, 1),
    "stride1_padded": ((2, 4, 9, 13), (5, 4, 3, 3), 1, 1, 1, 1),
    "crop_padding": ((2, 3, 6, 10), (3, 3, 2, 3), 1, (3, 0), 1, 1),
    "dilated_groups": ((1, 6, 11, 12), (4, 3, 3, 2), 1, (2, 1), (2, 1), 2),
    "stride2": ((2, 3, 15, 21), (6, 3, 3, 3), 2, 1, 1, 1),
    "stride_2_3": ((2, 2, 13, 17), (3, 2, 2, 4), (2, 3), (1, 2), 1, 1),
    "wide_rows": ((1, 3, 5, 70), (4, 3, 3, 3), 1, 1, 1, 1),
    "tall_k": ((2, 40, 8, 8), (8, 40, 3, 3), 1, 1, 1, 1),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(GEMM_CASES))
def test_gemm_paths_exact(compiled_only, cpu_path, parallel_everything, case, dtype):
    x_shape, w_shape, stride, padding, dilation, groups = GEMM_CASES[case]
    rng = np.random.default_rng(100 + sorted(GEMM_CASES).index(case))
    x, w = small_ints(rng, x_shape, dtype), small_ints(rng, w_shape, dtype)
    b = small_ints(rng, w_shape[:1], dtype)
    y_shape = reference.conv2d(x.astype(np.float64), w.astype(np.float64), None, stride, padding,
                               dilation, groups).shape
    dy = small_ints(rng, y_shape, dtype)
    want = expected_all(x, w, b, dy, stride, padding, dilation, groups)
    kernels = _runtime._kernels
    for threads in (1, 3):
        fastnn.set_num_threads(threads)
        before = _runtime.serial_threshold
        _runtime.serial_threshold = 0
        try:
            got = run_all(x, w, b, dy, stride, padding, dilation, groups)
            # each kernel on its own, so the team it ran on can be checked
            for name, call in (
                ("y", lambda: fastnn.conv2d(x, w, b, stride, padding, dilation, groups)),
                ("grad_input", lambda: fastnn.conv2d_backward(dy, x, w, stride, padding, dilation,
                                                              groups, needs_input_grad=True,
                                                              needs_weight_grad=False,
                                                              needs_bias_grad=False)[0]),
                ("grad_weight", lambda: fastnn.conv2d_backward(dy, x, w, stride, padding, dilation,
                                                               groups, needs_input_grad=False,
                                                               needs_weight_grad=True,
                                                               needs_bias_grad=False)[1]),
            ):
                kernels.reset_team_size()
                again = call()
                if threads > 1:
                    assert kernels.last_team_size() > 1, f"{case} {name} ran on one thread"
                np.testing.assert_array_equal(again, got[("y", "grad_input", "grad_weight").index(name)])
        finally:
            _runtime.serial_threshold = before
            fastnn.set_num_threads(None)
        for name, g, e in zip(("y", "grad_input", "grad_weight", "grad_bias"), got, want):
            assert g.dtype == dtype
            np.testing.assert_array_equal(g, e, err_msg=f"{case} {name} threads={threads}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_paths_bit_identical_across_threads(cpu_path, parallel_everything, dtype):
    """Random (inexact) values: every gradient element sums in the same order on any team."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 40, 10, 9)).astype(dtype)
    w = rng.standard_normal((7, 40, 3, 3)).astype(dtype)
    dy = rng.standard_normal((3, 7, 10, 9)).astype(dtype)
    results = []
    for threads in (1, 2, 3):
        fastnn.set_num_threads(threads)
        before = _runtime.serial_threshold
        _runtime.serial_threshold = 0
        try:
            results.append((fastnn.conv2d(x, w, None, 1, 1),) + tuple(fastnn.conv2d_backward(dy, x, w, 1, 1)))
        finally:
            _runtime.serial_threshold = before
            fastnn.set_num_threads(None)
    for other in results[1:]:
        for a, c in zip(results[0], other):
            np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("dtype", DTYPES)
def test_grad_input_inf_weight_keeps_padding_absent(cpu_path, dtype):
    """An Inf weight rules out the stride-1 forward form of grad_input where dY's padding would
    meet it (0 * Inf): the col2im form runs instead and matches the reference's NaN pattern."""
    rng = np.random.default_rng(5)
    x = small_ints(rng, (1, 3, 6, 7), dtype)
    w = small_ints(rng, (4, 3, 3, 3), dtype)
    w[1, 2, 0, 0] = np.inf
    dy = small_ints(rng, (1, 4, 6, 7), dtype)
    gi = fastnn.conv2d_backward(dy, x, w, 1, 1)[0]
    gi_want = reference.conv2d_backward(dy, x, w, 1, 1)[0]
    np.testing.assert_array_equal(np.isnan(gi), np.isnan(gi_want))
    np.testing.assert_array_equal(gi[np.isfinite(gi_want)], gi_want[np.isfinite(gi_want)])
