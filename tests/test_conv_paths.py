"""The direct conv kernels' special paths (C_in/groups == 1, and a few input channels per group
with a 3x3 stride-1 kernel on AVX-512), on every dispatch path and dtype.

fnn_direct.c runs planes in whole-vector column chunks with the last chunk overlapping, four
output rows at a time; it zero-pads a plane first when the other operand is all finite, and
otherwise handles the edges tap by tap; the stride-1 input gradient is a convolution of dY
with the flipped kernel (a crop when the padding is wider than the kernel). On AVX-512, 3x3
stride-1 planes go to fnn_direct_avx512.c instead: 8, 4 and 1-row blocks, a masked last
column vector, padding read through masks. These shapes put rows wider and narrower than one
vector, and heights of every remainder, through each of those branches. Small integers
make every result exact, so any dropped, repeated or misplaced term shows.
"""
import numpy as np
import pytest

import fastnn
from fastnn import _runtime, reference

from conv_helpers import at_threads, expected_all, run_all, small_ints

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
    # fnn_direct_avx512.c (3x3, stride 1, dilation 1; the avx512 path): rows 8, then 4, then
    # one at a time; columns in vectors of 16 (float32) / 8 (float64), the last one masked;
    # padding read through masks. Comments: y's h_out x w_out; the stride-1 input gradient
    # runs the same kernel on dY with padding 2 - p, for a dX of H x W.
    "k3_h8_w16": ((2, 2, 8, 16), (2, 1, 3, 3), 1, 1, 1, 2),                  # 8 x 16
    "k3_h16_w33": ((1, 2, 16, 33), (2, 1, 3, 3), 1, 1, 1, 2),                # 16 x 33
    "k3_h9_w17_pad0": ((1, 2, 11, 19), (2, 1, 3, 3), 1, 0, 1, 2),            # 9 x 17; dX 11 x 19
    "k3_h11_w15_pad2": ((1, 2, 9, 13), (2, 1, 3, 3), 1, 2, 1, 2),            # 11 x 15; dX 9 x 13
    "k3_h6_w17_pad2": ((1, 2, 4, 15), (2, 1, 3, 3), 1, 2, 1, 2),             # last vector: 1 column
    "k3_h12_w31_pad3": ((1, 2, 8, 27), (2, 1, 3, 3), 1, 3, 1, 2),            # 12 x 31; dX cropped
    "k3_h8_w17_pad3": ((1, 2, 4, 13), (2, 1, 3, 3), 1, 3, 1, 2),             # empty masks at column 16
    "k3_h4_w33_pad13": ((1, 2, 4, 29), (2, 1, 3, 3), 1, (1, 3), 1, 2),       # empty masks at column 32
    "k3_h13_w56": ((1, 2, 13, 56), (2, 1, 3, 3), 1, 1, 1, 2),                # 13 x 56
    "k3_h15_w8": ((2, 2, 15, 8), (2, 1, 3, 3), 1, 1, 1, 2),                  # 15 x 8
    "k3_h2_w5": ((2, 3, 2, 5), (3, 1, 3, 3), 1, 1, 1, 3),                    # 2 x 5
    "k3_h1_w4": ((1, 2, 1, 4), (2, 1, 3, 3), 1, 1, 1, 2),                    # 1 x 4
    "k3_h5_w7_pad20": ((1, 2, 3, 9), (2, 1, 3, 3), 1, (2, 0), 1, 2),         # 5 x 7; dX 3 x 9
    "k3_h5_w31_pad02": ((1, 2, 7, 29), (2, 1, 3, 3), 1, (0, 2), 1, 2),       # 5 x 31; dX 7 x 29
    "k3_h7_w17_pad31": ((2, 2, 3, 17), (2, 1, 3, 3), 1, (3, 1), 1, 2),       # rows all padding
    "k3_h3_w104_pad_wide": ((1, 1, 3, 40), (1, 1, 3, 3), 1, (1, 33), 1, 1),  # 33 columns of padding
    "k3_multiplier_2": ((2, 3, 9, 20), (6, 1, 3, 3), 1, 1, 1, 3),            # 9 x 20, 2 planes per dX
    "k3_one_in_3_out": ((2, 1, 11, 17), (3, 1, 3, 3), 1, 1, 1, 1),           # 11 x 17
    "k3_one_in_7_out": ((1, 1, 18, 14), (7, 1, 3, 3), 1, 2, 1, 1),           # 20 x 16; dX 18 x 14
    # direct_grad_weight_wide (column stride 1, finite dY): items of up to 8 output channels of
    # a group; taps in passes of 9/6/3 (avx512/avx2/portable); the array's last dY plane is
    # copied when w_out is not a whole number of vectors. 8+ outputs per 1-channel group run
    # the GEMM forward.
    "wgrad_1x1": ((2, 1, 9, 21), (1, 1, 1, 1), 1, 0, 1, 1),                  # 9 x 21
    "wgrad_cout3_stride21": ((1, 3, 15, 16), (9, 1, 3, 3), (2, 1), 1, 1, 3),  # 8 x 16, batch 1
    "wgrad_cout8_dil21": ((2, 1, 13, 24), (8, 1, 3, 3), 1, 1, (2, 1), 1),    # 11 x 24
    "wgrad_cout9_5x3_dil12": ((1, 2, 12, 19), (18, 1, 5, 3), 1, 2, (1, 2), 2),  # 12 x 19, batch 1
    "wgrad_cout17_7x7": ((1, 1, 10, 29), (17, 1, 7, 7), 1, 3, 1, 1),         # 10 x 29, batch 1
    "wgrad_7x7_stride21": ((2, 2, 17, 27), (2, 1, 7, 7), (2, 1), 3, 1, 2),   # 9 x 27
    "wgrad_5x3_stride21_dil21": ((1, 3, 20, 18), (3, 1, 5, 3), (2, 1), (1, 0), (2, 1), 3),  # 7 x 16
    # 1 input channel, 8+ outputs: the GEMM forward; stride 2: the edge-aware weight gradient
    "gemm1_cout8_stride2": ((2, 1, 11, 14), (8, 1, 3, 3), 2, (0, 2), 1, 1),
    "gemm1_cout12_pad0": ((2, 1, 9, 13), (12, 1, 3, 3), 1, 0, 1, 1),
    # a few input channels per group, 3x3 stride 1: the direct kernels on AVX-512
    # (small_direct), the GEMM path elsewhere
    "small_cin_3": ((2, 3, 16, 16), (8, 3, 3, 3), 1, 1, 1, 1),
    "small_cin_2_groups": ((1, 4, 11, 19), (6, 2, 3, 3), 1, (2, 0), 1, 2),
    "small_cin_4_crop": ((3, 4, 9, 17), (2, 4, 3, 3), 1, 0, 1, 1),
    "small_cin_4_tall": ((1, 4, 21, 40), (9, 4, 3, 3), 1, 3, 1, 1),
    # up to 8 input and 16 output channels per group (RegNet's 8-channel groups) also direct
    "group_cin_8_cout_8": ((2, 24, 13, 18), (24, 8, 3, 3), 1, 1, 1, 3),
    "group_cin_6_cout_16": ((1, 12, 9, 35), (32, 6, 3, 3), 1, (0, 2), 1, 2),
    "group_cin_8_cout_2": ((1, 16, 7, 17), (4, 8, 3, 3), 1, 2, 1, 2),
    "group_cin_5_cout_17_gemm": ((1, 5, 8, 11), (17, 5, 3, 3), 1, 1, 1, 1),
    # four output planes per pass (fnn_plane_conv4 on AVX-512): 4-row blocks and 1-3 left
    "quad_h9_w17_pad2": ((2, 1, 7, 17), (8, 1, 3, 3), 1, 2, 1, 1),
    "quad_groups_w35_pad02": ((1, 2, 6, 33), (8, 1, 3, 3), 1, (0, 2), 1, 2),
    "quad_cin3_h3": ((2, 3, 3, 5), (12, 3, 3, 3), 1, 1, 1, 1),
    "quad_h6_w16_crop": ((2, 1, 8, 18), (7, 1, 3, 3), 1, 0, 1, 1),
}





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
        got = at_threads(threads, lambda: run_all(x, w, b, dy, stride, padding, dilation, groups))
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




# (x shape, w shape, padding, groups) for 3x3 stride-1 convs with a NaN or Inf weight: padding
# 0 reads no padding (the avx512 3x3 kernel multiplies every tap); otherwise the forward's
# padding must stay absent (the 3x3 kernel, which reads padding as 0 * w, is not used), and
# the input gradient's flipped-kernel convolution reads dY's padding 2 - p (p = 2: none, 3: a crop).
NONFINITE_3X3 = {
    "depthwise_pad0": ((1, 2, 9, 20), (2, 1, 3, 3), 0, 2),
    "depthwise_pad1": ((2, 2, 9, 20), (2, 1, 3, 3), 1, 2),
    "depthwise_pad2": ((1, 2, 9, 20), (2, 1, 3, 3), 2, 2),
    "depthwise_pad3": ((1, 2, 9, 20), (2, 1, 3, 3), 3, 2),
    "depthwise_pad02": ((1, 2, 12, 20), (2, 1, 3, 3), (0, 2), 2),
    "one_in_3_out_pad1": ((1, 1, 13, 18), (3, 1, 3, 3), 1, 1),
}


@pytest.mark.parametrize("value", [np.nan, np.inf], ids=["nan", "inf"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(NONFINITE_3X3))
def test_direct_3x3_nonfinite_weight_matches_reference(compiled_only, cpu_path, case, dtype, value):
    """A NaN or Inf weight: y and every gradient equal the reference's, NaN and Inf positions
    included (padding is absent, never 0 * Inf or 0 * NaN)."""
    x_shape, w_shape, padding, groups = NONFINITE_3X3[case]
    rng = np.random.default_rng(20 + sorted(NONFINITE_3X3).index(case))
    x, w = small_ints(rng, x_shape, dtype), small_ints(rng, w_shape, dtype)
    w[-1, 0, 0, 0] = value  # the corner tap: only padding meets it in the first row and column
    w[0, 0, 1, 2] = 5
    b = small_ints(rng, w_shape[:1], dtype)
    y_shape = reference.conv2d(x.astype(np.float64), w.astype(np.float64), None, 1, padding, 1, groups).shape
    dy = small_ints(rng, y_shape, dtype)
    want = expected_all(x, w, b, dy, 1, padding, 1, groups)
    assert not np.isfinite(want[0]).all() and np.isfinite(want[0]).any()
    for threads in (1, 3):
        got = at_threads(threads, lambda: run_all(x, w, b, dy, 1, padding, 1, groups))
        for name, g, e in zip(("y", "grad_input", "grad_weight", "grad_bias"), got, want):
            assert g.dtype == dtype
            np.testing.assert_array_equal(g, e, err_msg=f"{case} {name} threads={threads}")


# (x shape, w shape, stride, padding, dilation, groups): column stride 1, so a finite dY runs
# direct_grad_weight_wide; an Inf or NaN in dY sends the weight gradient to the edge-aware kernel.
NONFINITE_DY = {
    "nine_per_group": ((2, 2, 7, 19), (18, 1, 3, 3), 1, 1, 1, 2),
    "depthwise_5x3_stride21": ((1, 3, 11, 21), (3, 1, 5, 3), (2, 1), 2, 1, 3),
    # a finite dY would take the one-pass depthwise backward (AVX-512)
    "depthwise_3x3": ((2, 3, 10, 19), (3, 1, 3, 3), 1, 1, 1, 3),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(NONFINITE_DY))
def test_grad_weight_nonfinite_dy_matches_reference(compiled_only, cpu_path, case, dtype):
    x_shape, w_shape, stride, padding, dilation, groups = NONFINITE_DY[case]
    rng = np.random.default_rng(30 + sorted(NONFINITE_DY).index(case))
    x, w = small_ints(rng, x_shape, dtype), small_ints(rng, w_shape, dtype)
    b = small_ints(rng, w_shape[:1], dtype)
    y_shape = reference.conv2d(x.astype(np.float64), w.astype(np.float64), None, stride, padding,
                               dilation, groups).shape
    dy = small_ints(rng, y_shape, dtype)
    dy[0, 1, 0, 0] = np.inf  # a corner: the taps that would read it against padding are absent
    dy[-1, -1, -1, -1] = np.nan
    want = expected_all(x, w, b, dy, stride, padding, dilation, groups)
    assert not np.isfinite(want[2]).all() and np.isfinite(want[2]).any()
    for threads in (1, 3):
        got = at_threads(threads, lambda: run_all(x, w, b, dy, stride, padding, dilation, groups))
        for name, g, e in zip(("y", "grad_input", "grad_weight", "grad_bias"), got, want):
            assert g.dtype == dtype
            np.testing.assert_array_equal(g, e, err_msg=f"{case} {name} threads={threads}")


# conv2d_backward's bias gradient: summed in the weight-gradient pass when both are asked for
# (direct_grad_weight_wide, the edge-aware direct kernel, or after the GEMM's), on its own
# otherwise. (x shape, w shape, stride, padding, dilation, groups)
BIAS_CASES = {
    "direct_wide": ((2, 3, 9, 21), (3, 1, 3, 3), 1, 1, 1, 3),
    "direct_wide_9_per_group": ((2, 2, 6, 17), (18, 1, 3, 3), 1, 1, 1, 2),
    "direct_col_stride2": ((2, 2, 9, 21), (4, 1, 3, 3), (1, 2), 1, 1, 2),
    "gemm": ((2, 3, 8, 11), (5, 3, 3, 3), 1, 1, 1, 1),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(BIAS_CASES))
def test_backward_flags_and_bias_grad(compiled_only, cpu_path, case, dtype):
    x_shape, w_shape, stride, padding, dilation, groups = BIAS_CASES[case]
    rng = np.random.default_rng(40 + sorted(BIAS_CASES).index(case))
    x, w = small_ints(rng, x_shape, dtype), small_ints(rng, w_shape, dtype)
    y_shape = reference.conv2d(x.astype(np.float64), w.astype(np.float64), None, stride, padding,
                               dilation, groups).shape
    dy = small_ints(rng, y_shape, dtype)
    want_gi, want_gw, _ = reference.conv2d_backward(
        dy.astype(np.float64), x.astype(np.float64), w.astype(np.float64), stride, padding, dilation, groups)
    want = (want_gi, want_gw, dy.astype(np.float64).sum(axis=(0, 2, 3)))
    assert np.abs(want[2]).min() > 0  # every channel's sum nonzero: an unwritten one shows
    for flags in ((True, False, True), (True, True, True), (False, True, True), (False, False, True),
                  (True, True, False), (False, True, False), (True, False, False)):
        for threads in (1, 3):
            got = at_threads(threads, lambda: fastnn.conv2d_backward(
                dy, x, w, stride, padding, dilation, groups, needs_input_grad=flags[0],
                needs_weight_grad=flags[1], needs_bias_grad=flags[2]))
            for name, asked, g, e in zip(("grad_input", "grad_weight", "grad_bias"), flags, got, want):
                msg = f"{case} {name} flags={flags} threads={threads}"
                if not asked:
                    assert g is None, msg
                    continue
                assert g.dtype == dtype, msg
                np.testing.assert_array_equal(g, e, err_msg=msg)

# ---- implicit-GEMM paths (C_in/groups > 1): fnn_im2col.c packers and the driver forms ----
#
# conv2d_forward: pointwise convs pack the image itself; others pack im2col panels with
# stride-1, stride-2 and general-stride gathers, row runs cut at NR-wide panel edges.
# grad_weight: dW^T = cols * dY^T, K cut into ranges for the team. grad_input: stride 1 runs
# as a forward conv of dY with the flipped, channel-swapped kernel (crop when the padding is
# wider than the kernel), except with few input channels per group (below 8, or below 16 with
# 32 or more outputs: "stride1_padded", "crop_padding" and "wide_rows" take col2im, their
# "_forward_form" twins the forward form); other strides scatter with col2im (stride 2 and
# general).
# (x shape, w shape, stride, padding, dilation, groups)
GEMM_CASES = {
    "pointwise": ((2, 14, 7, 9), (4, 14, 1, 1), 1, 0, 1, 1),
    "pointwise_strided": ((2, 14, 7, 9), (4, 14, 1, 1), 2, 0, 1, 1),
    "stride1_padded": ((2, 4, 9, 13), (5, 4, 3, 3), 1, 1, 1, 1),
    "crop_padding": ((2, 3, 6, 10), (3, 3, 2, 3), 1, (3, 0), 1, 1),
    "crop_padding_forward_form": ((2, 16, 6, 10), (3, 16, 2, 3), 1, (3, 0), 1, 1),
    "stride1_padded_forward_form": ((2, 16, 9, 13), (5, 16, 3, 3), 1, 1, 1, 1),
    "wide_rows_forward_form": ((2, 12, 5, 70), (4, 12, 3, 3), 1, 1, 1, 1),
    "dilated_groups": ((1, 6, 11, 12), (4, 3, 3, 2), 1, (2, 1), (2, 1), 2),
    "stride2": ((2, 3, 15, 21), (6, 3, 3, 3), 2, 1, 1, 1),
    "stride_2_3": ((2, 2, 13, 17), (3, 2, 2, 4), (2, 3), (1, 2), 1, 1),
    "wide_rows": ((2, 3, 5, 70), (4, 3, 3, 3), 1, 1, 1, 1),  # col2im: a team over 2 images
    "tall_k": ((2, 40, 8, 8), (8, 40, 3, 3), 1, 1, 1, 1),
    # col2im with dY maps of at most half a micro-panel: several images side by side in one B
    # panel (fewer of them on a team, which must not go short of items; a ragged last group)
    "small_maps_side_by_side": ((7, 6, 8, 7), (4, 3, 3, 3), 2, 1, 1, 2),  # dY 4 x 4
    "one_pixel_maps_side_by_side": ((9, 5, 3, 3), (6, 5, 3, 3), 2, 0, 1, 1),  # dY 1 x 1
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
        def run_each():
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
            return got
        got = at_threads(threads, run_each)
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
        results.append(at_threads(threads, lambda: (fastnn.conv2d(x, w, None, 1, 1),)
                                  + tuple(fastnn.conv2d_backward(dy, x, w, 1, 1))))
    for other in results[1:]:
        for a, c in zip(results[0], other):
            np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("dtype", DTYPES)
def test_grad_input_inf_weight_keeps_padding_absent(cpu_path, dtype):
    """An Inf weight rules out the stride-1 forward form of grad_input where dY's padding would
    meet it (0 * Inf): the col2im form runs instead and matches the reference's NaN pattern."""
    rng = np.random.default_rng(5)
    x = small_ints(rng, (1, 16, 6, 7), dtype)  # 16 input channels: the forward form's kind
    w = small_ints(rng, (4, 16, 3, 3), dtype)
    w[1, 2, 0, 0] = np.inf
    dy = small_ints(rng, (1, 4, 6, 7), dtype)
    gi = fastnn.conv2d_backward(dy, x, w, 1, 1)[0]
    gi_want = reference.conv2d_backward(dy, x, w, 1, 1)[0]
    np.testing.assert_array_equal(np.isnan(gi), np.isnan(gi_want))
    np.testing.assert_array_equal(gi[np.isfinite(gi_want)], gi_want[np.isfinite(gi_want)])


@pytest.mark.parametrize("value", [np.nan, np.inf], ids=["nan", "inf"])
@pytest.mark.parametrize("padding", [0, 1, (0, 2), (2, 0)], ids=["p0", "p1", "p02", "p20"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_one_channel_many_out_nonfinite_weight(request, cpu_path, dtype, padding, value):
    """1 input channel, 8+ outputs (the GEMM forward): a NaN or Inf weight where padding would
    meet it sends the forward to the reference; without padding the GEMM runs with it. Either
    way y and the gradients equal the reference's, NaN and Inf positions included."""
    if padding == 0:
        request.getfixturevalue("compiled_only")
    rng = np.random.default_rng(50)
    x, w = small_ints(rng, (2, 1, 9, 13), dtype), small_ints(rng, (9, 1, 3, 3), dtype)
    w[3, 0, 0, 0] = value
    b = small_ints(rng, (9,), dtype)
    y_shape = reference.conv2d(x.astype(np.float64), w.astype(np.float64), None, 1, padding).shape
    dy = small_ints(rng, y_shape, dtype)
    want = expected_all(x, w, b, dy, 1, padding, 1, 1)
    assert not np.isfinite(want[0]).all()
    for threads in (1, 3):
        got = at_threads(threads, lambda: run_all(x, w, b, dy, 1, padding, 1, 1))
        for name, g, e in zip(("y", "grad_input", "grad_weight", "grad_bias"), got, want):
            assert g.dtype == dtype
            np.testing.assert_array_equal(g, e, err_msg=f"{padding} {name} threads={threads}")


# (x shape, w shape, padding, groups): a few input channels per group, 3x3 stride 1. On
# AVX-512 these run the direct kernels (small_direct): a NaN/Inf weight sends the planes that
# read padding to the edge-aware kernel, an Inf/NaN in dY sends the weight gradient to the
# GEMM path, which declines where padding would meet it (the reference then computes it).
# Elsewhere they run the GEMM path. Whichever runs, the results equal the reference's.
NONFINITE_SMALL_CIN = {
    "three_in_pad1": ((2, 3, 10, 17), (4, 3, 3, 3), 1, 1),
    "two_in_per_group_pad20": ((1, 4, 11, 9), (6, 2, 3, 3), (2, 0), 2),
    "eight_in_per_group_pad1": ((1, 16, 9, 12), (16, 8, 3, 3), 1, 2),
}


@pytest.mark.parametrize("where", ["weight", "dy"])
@pytest.mark.parametrize("value", [np.nan, np.inf], ids=["nan", "inf"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(NONFINITE_SMALL_CIN))
def test_small_cin_nonfinite_matches_reference(cpu_path, case, dtype, value, where):
    x_shape, w_shape, padding, groups = NONFINITE_SMALL_CIN[case]
    rng = np.random.default_rng(40 + sorted(NONFINITE_SMALL_CIN).index(case))
    x, w = small_ints(rng, x_shape, dtype), small_ints(rng, w_shape, dtype)
    b = small_ints(rng, w_shape[:1], dtype)
    y_shape = reference.conv2d(x.astype(np.float64), w.astype(np.float64), None, 1, padding, 1, groups).shape
    dy = small_ints(rng, y_shape, dtype)
    if where == "weight":
        w[-1, 0, 0, 0] = value  # the corner tap: only padding meets it in the first row and column
    else:
        dy[0, 1, 0, 0] = value
    want = expected_all(x, w, b, dy, 1, padding, 1, groups)
    for threads in (1, 3):
        got = at_threads(threads, lambda: run_all(x, w, b, dy, 1, padding, 1, groups))
        for name, g, e in zip(("y", "grad_input", "grad_weight", "grad_bias"), got, want):
            assert g.dtype == dtype
            np.testing.assert_array_equal(g, e, err_msg=f"{case} {where} {name} threads={threads}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_streamed_outputs(compiled_only, cpu_path, dtype):
    """Outputs of 8 MiB and more leave the direct kernels through streaming stores (whole
    aligned lines; the ragged ends plainly): forward and depthwise backward, into fresh
    arrays and into an `out=` that starts 4 bytes past a line."""
    rng = np.random.default_rng(50)
    n = 2 if dtype == np.float32 else 1
    x = small_ints(rng, (n, 64, 130, 129), dtype)
    w = small_ints(rng, (64, 1, 3, 3), dtype)
    b = small_ints(rng, (64,), dtype)
    dy = small_ints(rng, (n, 64, 130, 129), dtype)
    assert x.nbytes >= 8 << 20
    want = expected_all(x, w, b, dy, 1, 1, 1, 64)
    got = run_all(x, w, b, dy, 1, 1, 1, 64)
    for name, g, e in zip(("y", "grad_input", "grad_weight", "grad_bias"), got, want):
        np.testing.assert_array_equal(g, e, err_msg=name)
    buf = np.empty(x.size + 16, dtype)
    out = buf[1:1 + x.size].reshape(x.shape)
    assert out.ctypes.data % 64 != 0
    fastnn.conv2d(x, w, b, 1, 1, 1, 64, out=out)
    np.testing.assert_array_equal(out, want[0])
