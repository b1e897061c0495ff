"""The direct convolution tiles (kernels/c/fnn_convtile_avx512.c, kernels/_conv_tile.pxi): float32
forward convolutions with many channels on AVX-512, and the stride-1 input gradient run as a
forward convolution of dY with the flipped, channel-swapped kernel.

A tile is a block of 32 output channels (zero weights past the group's last channel) times up
to 14 output pixels of one row, or for groups of at most 16 output channels 16 times up to
28 (narrow); a row of W_out pixels is cut into ceil(W_out / 14) (28) nearly equal pieces;
K past 1152 is summed in passes of input channels; the image group is first copied
zero-padded (or cropped, for the input gradient's negative padding); the bias is added in
the epilogue. They run where: float32, the avx512 path, column stride 1 or 2, C_out/groups
>= 8, (C_in/groups)*kH*kW >= 32, not a pointwise conv, not the direct plane kernels'
(C_in/groups == 1 with C_out/groups < 8, or C_in/groups <= 4, or <= 8 with C_out/groups
<= 16, with a 3x3 stride-1 dilation-1 kernel), and, for the forward, all-finite weights
where the conv reads padding.

Every test runs on each dispatch path (the cpu_path fixture): on portable and avx2 the same
shapes take the GEMM path and must give the same results. Small-integer inputs make every
result exact (each sum is far below 2**24), so any dropped, repeated or misplaced term, pixel
or channel shows as an inequality against fastnn.reference in float64.
"""
import functools

import numpy as np
import pytest

import fastnn
from fastnn import _runtime, reference

from conv_helpers import at_threads, conftest_module, expected_all, run_all, small_ints


KERNELS = conftest_module().KERNELS
float_tolerance = conftest_module().float_tolerance
F32 = np.float32
NAMES = ("y", "grad_input", "grad_weight", "grad_bias")


# ---- helpers ----------------------------------------------------------------------------------

def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _geometry(x_shape, w_shape, stride, padding, dilation, groups):
    """The quantities the dispatch looks at, as kernels/_conv.pxi's ConvGeom."""
    n, c_in, h, w = x_shape
    c_out, cin_g, kh, kw = w_shape
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    h_out = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    w_out = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    return dict(h=h, w=w, cin_g=cin_g, cout_g=c_out // groups, kh=kh, kw=kw, sh=sh, sw=sw, ph=ph, pw=pw,
                dh=dh, dw=dw, h_out=h_out, w_out=w_out)


def _tiles_apply(g):
    """kernels/_conv_tile.pxi tiles_apply, on the avx512 path, for the geometry g."""
    pointwise = (g["kh"] == g["kw"] == 1 and g["sh"] == g["sw"] == 1 and g["ph"] == g["pw"] == 0
                 and g["h_out"] == g["h"] and g["w_out"] == g["w"])
    return (g["sw"] in (1, 2) and g["cout_g"] >= 8 and g["cin_g"] * g["kh"] * g["kw"] >= 32
            and not pointwise)


def _small_direct(g):
    narrow = g["cin_g"] <= 4 or (g["cin_g"] <= 8 and g["cout_g"] <= 16)
    return narrow and g["kh"] == g["kw"] == 3 and g["sh"] == g["sw"] == 1 and g["dh"] == g["dw"] == 1


def forward_takes_tiles(*case):
    """Whether the forward of this (finite-weight) case runs on the tiles on the avx512 path."""
    g = _geometry(*case)
    direct = (g["cin_g"] == 1 and g["cout_g"] < 8) or _small_direct(g)
    return not direct and _tiles_apply(g)


def grad_input_takes_tiles(*case):
    """Whether the input gradient of this (finite-weight) case runs on the tiles on avx512:
    stride 1, then the transposed geometry (dY convolved with the flipped kernel) qualifies."""
    g = _geometry(*case)
    if (g["sh"], g["sw"]) != (1, 1) or g["cin_g"] == 1 or _small_direct(g) or g["cout_g"] == 0:
        return False
    pointwise = (g["kh"] == g["kw"] == 1 and g["ph"] == g["pw"] == 0)
    if not pointwise and (g["cin_g"] < 8 or (g["cin_g"] < 16 and g["cout_g"] >= 32)):
        return False  # kernels/_conv.pxi few_input_channels: the col2im form
    t = dict(g, h=g["h_out"], w=g["w_out"], h_out=g["h"], w_out=g["w"], cin_g=g["cout_g"], cout_g=g["cin_g"],
             ph=(g["kh"] - 1) * g["dh"] - g["ph"], pw=(g["kw"] - 1) * g["dw"] - g["pw"])
    return _tiles_apply(t)


def grad_input_takes_phases(*case):
    """Whether the input gradient of this (finite-weight) case runs on the tiles phase by phase
    on avx512 (kernels/_conv_tile.pxi phases_apply): a stride above 1 (at most 4 each way),
    at least 8 input and at most 128 output channels per group, (C_out/groups) kH kW >= 32,
    more taps than phases; past 128 output channels, only where a phase row is one tile of 7
    pixels or more."""
    g = _geometry(*case)
    if (g["sh"], g["sw"]) == (1, 1) or max(g["sh"], g["sw"]) > 4:
        return False
    phase_w = -(-g["w"] // g["sw"])
    one_tile = 7 <= phase_w <= (28 if g["cin_g"] <= 16 else 14)
    return (g["cin_g"] >= 8 and (g["cout_g"] <= 128 or one_tile) and g["cout_g"] * g["kh"] * g["kw"] >= 32
            and g["kh"] * g["kw"] > g["sh"] * g["sw"])


def y_shape(x_shape, w_shape, stride, padding, dilation, groups):
    g = _geometry(x_shape, w_shape, stride, padding, dilation, groups)
    return (x_shape[0], w_shape[0], g["h_out"], g["w_out"])





def without_tiles(call):
    """call() with the tiles forbidden (the GEMM path), the old setting restored after."""
    old = KERNELS.set_conv_tiles(False)
    try:
        return call()
    finally:
        KERNELS.set_conv_tiles(old)


@functools.lru_cache(maxsize=None)
def exact_problem(seed, case):
    """Small-integer x, w, b, dY for a case and their float64 reference results (y with and
    without bias, and the three gradients); cached, as every cpu path uses the same."""
    x_shape, w_shape = case[:2]
    rng = np.random.default_rng(seed)
    x, w, b = small_ints(rng, x_shape), small_ints(rng, w_shape), small_ints(rng, w_shape[:1])
    dy = small_ints(rng, y_shape(*case))
    want = expected_all(x, w, b, dy, *case[2:])
    want_no_bias = want[0] - b.astype(np.float64)[:, None, None]
    for a in (x, w, b, dy) + want:
        a.setflags(write=False)
    return (x, w, b, dy), want, want_no_bias


def check_exact(label, seed, case):
    """y (with and without bias) and all three gradients equal the reference exactly at 1 and
    3 threads, and with the tiles forbidden."""
    inputs, want, want_no_bias = exact_problem(seed, case)
    x, w, b, dy = (a.copy() for a in inputs)  # writeable, as most callers' (the cache is read-only)
    args = case[2:]
    results = {}
    for threads in (1, 3):
        got = at_threads(threads, lambda: run_all(x, w, b, dy, *args))
        y_nb = at_threads(threads, lambda: fastnn.conv2d(x, w, None, *args))
        for name, g, e in zip(NAMES, got, want):
            assert g.dtype == F32, f"{label} {name}"
            np.testing.assert_array_equal(g, e, err_msg=f"{label} {name} threads={threads}")
        np.testing.assert_array_equal(y_nb, want_no_bias, err_msg=f"{label} y without bias threads={threads}")
        results[threads] = got + (y_nb,)
    # the tiles forbidden: the GEMM path (on avx512), the same exact outputs
    off = at_threads(3, lambda: without_tiles(
        lambda: run_all(x, w, b, dy, *args) + (fastnn.conv2d(x, w, None, *args),)))
    for name, g, e in zip(NAMES + ("y without bias",), off, results[3]):
        np.testing.assert_array_equal(g, e, err_msg=f"{label} {name}: tiles forbidden vs allowed")


# ---- 1, 2: exact results on the tile shapes ---------------------------------------------------

# (x shape, w shape, stride, padding, dilation, groups); comments: y's H_out x W_out (row pieces)
CASES = {
    "w56_h7_cout64": ((1, 16, 7, 56), (64, 16, 3, 3), 1, 1, 1, 1),            # 7 x 56 (4 x 14)
    "h1_cout48_stride2_batch3": ((3, 8, 3, 29), (48, 8, 3, 3), 2, 0, 1, 1),  # 1 x 14, blocks 32 + 16
    "h2_cout16_w30": ((1, 16, 2, 30), (16, 16, 3, 3), 1, 1, 1, 1),           # 2 x 30 (3 x 10)
    "cout33_stride21": ((2, 12, 9, 23), (33, 12, 3, 3), (2, 1), 1, 1, 1),    # 5 x 23, blocks 32 + 1
    "cout16_stride12": ((1, 16, 6, 31), (16, 16, 3, 3), (1, 2), 1, 1, 1),    # 6 x 16
    "dil22": ((2, 16, 10, 25), (32, 16, 3, 3), 1, 2, 2, 1),                   # 10 x 25
    "dil13": ((1, 16, 7, 27), (20, 16, 3, 3), 1, (1, 3), (1, 3), 1),         # 7 x 27
    "dil22_crop": ((1, 16, 5, 9), (20, 16, 3, 3), 1, 5, 2, 1),                # 11 x 15; dX: crop 1
    "pad0_batch3": ((3, 16, 7, 20), (32, 16, 3, 3), 1, 0, 1, 1),             # 5 x 18
    "pad3_crop": ((1, 16, 5, 12), (33, 16, 3, 3), 1, 3, 1, 1),                # 9 x 16; dX: crop 1
    "pad02": ((1, 16, 6, 18), (32, 16, 3, 3), 1, (0, 2), 1, 1),               # 4 x 20
    "pad20": ((2, 16, 5, 14), (48, 16, 3, 3), 1, (2, 0), 1, 1),               # 7 x 12
    "k5_cout20": ((1, 16, 9, 21), (20, 16, 5, 5), 1, 2, 1, 1),                # 9 x 21
    "k5_cin2": ((1, 2, 9, 16), (16, 2, 5, 5), 1, 2, 1, 1),                    # 9 x 16, K = 50
    "k7_stem_stride2": ((1, 3, 30, 30), (64, 3, 7, 7), 2, 3, 1, 1),           # 15 x 15
    "k7_stem_stride2_batch3": ((3, 3, 24, 36), (64, 3, 7, 7), 2, 3, 1, 1),    # 12 x 18
    "k7_cin1": ((2, 1, 12, 20), (16, 1, 7, 7), 1, 3, 1, 1),                   # 12 x 20, K = 49
    "k1x3": ((2, 16, 6, 19), (32, 16, 1, 3), 1, (0, 1), 1, 1),               # 6 x 19
    "k3x1": ((1, 16, 8, 13), (16, 16, 3, 1), 1, (1, 0), 1, 1),               # 8 x 13
    "k1x1_stride2": ((2, 32, 9, 27), (48, 32, 1, 1), 2, 0, 1, 1),             # 5 x 14, K = 32
    "k1x1_pad1": ((1, 32, 5, 7), (32, 32, 1, 1), 1, 1, 1, 1),                 # 7 x 9; dX: crop 1
    "cin4_k3_stride2": ((2, 4, 11, 21), (32, 4, 3, 3), 2, 1, 1, 1),           # 6 x 11, K = 36
    "groups2_cout32": ((2, 32, 7, 17), (64, 16, 3, 3), 1, 1, 1, 2),           # 7 x 17
    "groups2_cout20": ((1, 16, 6, 15), (40, 8, 3, 3), 1, 1, 1, 2),            # 6 x 15
    "groups2_stride2_cout33": ((1, 24, 9, 30), (66, 12, 3, 3), 2, 1, 1, 2),   # 5 x 15
    "k_576": ((1, 64, 4, 15), (32, 64, 3, 3), 1, 1, 1, 1),                    # 4 x 15, K = 576 > KC
    "h1_w28": ((1, 16, 3, 30), (32, 16, 3, 3), 1, 0, 1, 1),                   # 1 x 28; dX 3 x 30
    # K over 1152 sums in passes of input channels, later ones adding into y (TILE_PASS_KG)
    "k_1350_passes_75_75": ((1, 150, 3, 17), (40, 150, 3, 3), 1, 1, 1, 1),    # 3 x 17
    "k_2709_passes_101_101_99": ((2, 301, 2, 9), (16, 301, 3, 3), 1, 1, 1, 1),  # 2 x 9
    "groups2_k_1170_passes_65_65": ((2, 260, 3, 11), (40, 130, 3, 3), 1, 1, 1, 2),  # 3 x 11
    "dx_k_1440_passes": ((1, 16, 4, 15), (160, 16, 3, 3), 1, 1, 1, 1),        # 4 x 15; dX K = 1440
    "taps_1225_passes_1_1": ((1, 2, 35, 37), (16, 2, 35, 35), 1, 0, 1, 1),    # 1 x 3, K = 2450
    # narrow tiles in passes: 2 groups of 16 outputs, K = 1188 (2 passes of 66); dX: narrow too
    "narrow_groups2_k_1188_passes": ((2, 264, 3, 31), (32, 132, 3, 3), 1, 1, 1, 2),  # 3 x 31
    "narrow_dx_groups4": ((1, 64, 5, 29), (64, 16, 3, 3), 1, 1, 1, 4),        # 5 x 29; dX 16 per group
    # 8 to 15 output channels per group: narrow tiles with lanes past the group's channels
    "narrow_cout8_stride2_groups4": ((2, 40, 9, 29), (32, 10, 3, 3), 2, 1, 1, 4),  # 5 x 15
    "narrow_cout8_regnety_s2": ((1, 24, 9, 15), (24, 8, 3, 3), 2, 1, 1, 3),   # 5 x 8
    "narrow_cout12_w40": ((1, 12, 6, 40), (12, 12, 3, 3), 1, 1, 1, 1),        # 6 x 40; dX 12 x 12
    "narrow_cout15_k5": ((1, 7, 8, 33), (15, 7, 5, 5), 1, 2, 1, 1),           # 8 x 33, K = 175
}

# W_out from 1 to 30: every row-piece size 1..14 (one piece) and the splits 15 = 8 + 7 up to
# 30 = 3 x 10. "s1": stride 1, H_out 1..3, 20 output channels (dX: the tiles too, 16 channels
# from 20); "s2": column stride 2, 33 output channels (blocks 32 + 1), batch 2.
SWEEP = {}
for _w in range(1, 31):
    SWEEP[f"s1_w{_w:02d}"] = ((1, 16, 1 + _w % 3, _w), (20, 16, 3, 3), 1, 1, 1, 1)
    SWEEP[f"s2_w{_w:02d}"] = ((2, 8, 3, 2 * _w - 1), (33, 8, 3, 3), (1, 2), 1, 1, 1)
# Narrow tiles (groups of at most 16 output channels: 16 channels times up to 28 pixels, a
# row cut into ceil(W_out / 28) pieces): "n1" stride 1, 16 outputs (dX: 12 from 16, the
# GEMM); "n2" column stride 2, 2 groups of 16 outputs from 12 inputs each (dX: the wide
# tiles' stride-1 geometry does not apply), batch 2.
for _w in list(range(1, 31)) + [56, 57]:
    SWEEP[f"n1_w{_w:02d}"] = ((1, 12, 1 + _w % 3, _w), (16, 12, 3, 3), 1, 1, 1, 1)
    SWEEP[f"n2_w{_w:02d}"] = ((2, 24, 3, 2 * _w - 1), (32, 12, 3, 3), (1, 2), 1, 1, 2)
ALL_CASES = {**CASES, **SWEEP}


def test_cases_take_the_tiles():
    """The premise of the shape tables: every forward qualifies for the tiles on avx512, the
    widths and row-piece sizes are all there, and many input gradients qualify too."""
    for name, case in ALL_CASES.items():
        assert forward_takes_tiles(*case), name
    widths = {_geometry(*c)["w_out"] for c in ALL_CASES.values()}
    assert set(range(1, 31)) | {56} <= widths
    heights = {_geometry(*c)["h_out"] for c in ALL_CASES.values()}
    assert {1, 2, 7} <= heights
    narrow_widths = {_geometry(*c)["w_out"] for c in ALL_CASES.values() if _geometry(*c)["cout_g"] <= 16}
    assert set(range(1, 31)) | {56, 57} <= narrow_widths
    couts = {_geometry(*c)["cout_g"] for c in ALL_CASES.values()}
    assert {8, 12, 15, 16, 20, 32, 33, 48, 64} <= couts
    gi = [name for name, c in ALL_CASES.items() if grad_input_takes_tiles(*c)]
    assert {"w56_h7_cout64", "pad3_crop", "dil22_crop", "k1x1_pad1", "groups2_cout32", "s1_w01",
            "s1_w30", "k3x1", "h1_w28", "narrow_dx_groups4", "dx_k_1440_passes"} <= set(gi)
    # the dispatch rules, as the brief gives them: shapes that must not take the tiles
    assert not forward_takes_tiles((1, 4, 8, 8), (32, 4, 3, 3), 1, 1, 1, 1)      # small_direct
    assert not forward_takes_tiles((1, 32, 8, 8), (32, 32, 1, 1), 1, 0, 1, 1)    # pointwise
    assert not forward_takes_tiles((1, 16, 8, 8), (7, 16, 3, 3), 1, 1, 1, 1)     # C_out/g < 8
    assert not forward_takes_tiles((1, 3, 8, 8), (32, 3, 3, 3), 2, 1, 1, 1)      # K = 27 < 32
    assert not forward_takes_tiles((1, 16, 8, 9), (32, 16, 3, 3), 3, 1, 1, 1)    # column stride 3


# Strided input gradients phase by phase (tile_grad_input_phases): dX pixels ph, ph + s, ...
# of a row take the kernel rows a with ph + pad - a d a multiple of s. Strides 2 to 4, odd
# sizes (phases of unequal length), dilations, paddings past the kernel, phases with no tap
# (kernel 2 rows, stride 3: dX's row phase 2 is zero), narrow and wide tiles (8-16 and 17-40
# dX channels per group: the narrow ones store every s-th pixel themselves, the wide ones
# through a scratch row), groups, and 64 output channels of a 5x5 (K = 1600, two passes of 32).
PHASES = {
    "ph_resnext_s2_g2": ((2, 32, 13, 15), (32, 16, 3, 3), 2, 1, 1, 2),
    "ph_regnety_cout8_s2_g3": ((1, 24, 9, 11), (24, 8, 3, 3), 2, 1, 1, 3),
    "ph_wide_cin40_s2_pad0": ((2, 40, 11, 17), (24, 40, 3, 3), 2, 0, 1, 1),
    "ph_k4_s2_dcgan": ((1, 24, 12, 14), (16, 24, 4, 4), 2, 1, 1, 1),
    "ph_k5_s3_pad2": ((1, 16, 14, 19), (16, 16, 5, 5), 3, 2, 1, 1),
    "ph_k2x3_s3x1_empty_phase": ((2, 16, 10, 9), (20, 16, 2, 3), (3, 1), (0, 1), 1, 1),
    "ph_k5_s4_dil2": ((1, 16, 17, 21), (12, 16, 5, 5), 4, 2, 2, 1),
    "ph_k3x5_s2x3_dil31": ((1, 12, 16, 23), (16, 12, 3, 5), (2, 3), (3, 2), (3, 1), 1),
    "ph_s2_w1_h1": ((1, 16, 1, 1), (32, 16, 3, 3), 2, 1, 1, 1),
    "ph_s2_pad_past_kernel": ((1, 16, 5, 6), (16, 16, 3, 3), 2, 3, 1, 1),
    "ph_k3_s2_w57_narrow": ((1, 16, 3, 57), (16, 16, 3, 3), 2, 1, 1, 1),
    "ph_k3_s2_w31_wide": ((1, 33, 4, 31), (16, 33, 3, 3), (1, 2), 1, 1, 1),
    "ph_k_1600_passes": ((1, 16, 9, 11), (64, 16, 5, 5), 2, 2, 1, 1),
    "ph_cout160_rows_of_one_tile": ((2, 40, 6, 27), (160, 40, 3, 3), 2, 1, 1, 1),   # 14-pixel phase rows
    "ph_wide_k_1600_passes": ((2, 24, 9, 11), (64, 24, 5, 5), 2, 2, 1, 1),
}


def test_phase_cases_take_the_phases():
    """The premise of PHASES: every input gradient there runs phase by phase on avx512, and the
    rules as given: none at stride 1, past 128 output channels per group unless each phase row
    is one tile of 7 pixels or more, below 8 input channels per group, or with one tap per
    phase (U-Net's 2x2 stride-2 up-sampling)."""
    for name, case in PHASES.items():
        assert grad_input_takes_phases(*case), name
    assert not grad_input_takes_phases((1, 16, 8, 8), (32, 16, 3, 3), 1, 1, 1, 1)
    assert not grad_input_takes_phases((1, 16, 8, 8), (129, 16, 3, 3), 2, 1, 1, 1)     # 4-pixel phase rows
    assert not grad_input_takes_phases((1, 32, 8, 35), (129, 32, 3, 3), 2, 0, 1, 1)   # 18: two wide tiles
    assert not grad_input_takes_phases((1, 7, 8, 8), (32, 7, 3, 3), 2, 1, 1, 1)
    assert not grad_input_takes_phases((1, 16, 8, 8), (32, 16, 2, 2), 2, 0, 1, 1)
    assert not grad_input_takes_phases((1, 16, 8, 8), (32, 16, 1, 1), 2, 0, 1, 1)


@pytest.mark.parametrize("case", sorted(PHASES))
def test_phases_exact(compiled_only, cpu_path, case):
    inputs, want, _ = exact_problem(2000 + sorted(PHASES).index(case), PHASES[case])
    x, w, _, dy = (a.copy() for a in inputs)
    args = PHASES[case][2:]
    for threads in (1, 3):
        got = at_threads(threads, lambda: fastnn.conv2d_backward(dy, x, w, *args, needs_weight_grad=False,
                                                                 needs_bias_grad=False)[0])
        np.testing.assert_array_equal(got, want[1], err_msg=f"{case} threads={threads}")
    off = at_threads(3, lambda: without_tiles(
        lambda: fastnn.conv2d_backward(dy, x, w, *args, needs_weight_grad=False, needs_bias_grad=False)[0]))
    np.testing.assert_array_equal(off, want[1], err_msg=f"{case}: tiles forbidden")
    old = KERNELS.set_phase_max_cout_g(0)  # the col2im form, the tiles allowed elsewhere
    try:
        scatter = fastnn.conv2d_backward(dy, x, w, *args, needs_weight_grad=False, needs_bias_grad=False)[0]
    finally:
        assert KERNELS.set_phase_max_cout_g(old) == 0
    np.testing.assert_array_equal(scatter, want[1], err_msg=f"{case}: phases switched off")


@pytest.mark.parametrize("case", sorted(CASES))
def test_tile_shapes_exact(compiled_only, cpu_path, case):
    check_exact(case, sorted(CASES).index(case), CASES[case])


@pytest.mark.parametrize("case", sorted(SWEEP))
def test_row_pieces_exact(compiled_only, cpu_path, case):
    check_exact(case, 1000 + sorted(SWEEP).index(case), SWEEP[case])


def test_set_conv_tiles_returns_old_setting():
    old = KERNELS.set_conv_tiles(False)
    try:
        assert old is True or old == 1
        assert not KERNELS.set_conv_tiles(False)
        assert not KERNELS.set_conv_tiles(True)
        assert KERNELS.set_conv_tiles(True)
    finally:
        KERNELS.set_conv_tiles(old)


# ---- 3: NaN and Inf ---------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["weight", "x"])
@pytest.mark.parametrize("value", [np.nan, np.inf], ids=["nan", "inf"])
@pytest.mark.parametrize("padding", [0, 1], ids=["p0", "p1"])
def test_nonfinite_matches_reference(request, cpu_path, padding, value, where):
    """A NaN or Inf weight: without padding the tiles compute it (NaN and Inf land where the
    reference's do); with padding 1 padding must be absent (0 * Inf is no NaN), so the forward
    falls back to the reference. A NaN or Inf in x: the tiles run either way (finite weights
    times padded zeros). y and every gradient equal the reference's, NaN and Inf included."""
    if padding == 0 or where == "x":
        request.getfixturevalue("compiled_only")
    case = ((2, 16, 6, 17), (48, 16, 3, 3), 1, padding, 1, 1)
    assert forward_takes_tiles(*case)
    rng = np.random.default_rng(60 + padding)
    x, w = small_ints(rng, case[0]), small_ints(rng, case[1])
    b = small_ints(rng, case[1][:1])
    dy = small_ints(rng, y_shape(*case))
    if where == "weight":
        w[-1, 0, 0, 0] = value       # the corner tap of the last channel (second block)
        w[5, 2, 2, 2] = -value       # and the opposite corner of one in the first block
    else:
        x[0, 3, 2, 5] = value
        x[1, 15, 0, 16] = -value     # a corner pixel: the padding around it stays zero
    want = expected_all(x, w, b, dy, *case[2:])
    assert not np.isfinite(want[0]).all() and np.isfinite(want[0]).any()
    if where == "weight" and padding == 1:
        # outputs that meet the Inf/NaN tap only through padding are finite in the reference
        assert np.isfinite(want[0][:, -1, 0, :]).all() and np.isfinite(want[0][:, -1, :, 0]).all()
    fallbacks = []
    if where == "weight" and padding == 1:
        # premise: the forward is the reference's (the compiled drivers decline it)
        monkeypatch = request.getfixturevalue("monkeypatch")
        ref_conv2d = reference.conv2d
        monkeypatch.setattr(fastnn.conv.reference, "conv2d",
                            lambda *a, **k: fallbacks.append(1) or ref_conv2d(*a, **k))
    for threads in (1, 3):
        got = at_threads(threads, lambda: run_all(x, w, b, dy, *case[2:]))
        for name, g, e in zip(NAMES, got, want):
            assert g.dtype == F32
            np.testing.assert_array_equal(g, e, err_msg=f"{where} {value} p{padding} {name} threads={threads}")
    if where == "weight" and padding == 1:
        assert len(fallbacks) == 2, "the forward did not fall back to the reference"


# ---- 4: random values on a CIFAR-like layer ---------------------------------------------------

def cifar_problem():
    rng = np.random.default_rng(70)
    x = rng.standard_normal((2, 64, 13, 17)).astype(F32)
    w = rng.standard_normal((64, 64, 3, 3)).astype(F32)
    b = rng.standard_normal(64).astype(F32)
    dy = rng.standard_normal((2, 64, 13, 17)).astype(F32)
    return x, w, b, dy


def test_cifar_layer_random_within_tolerance(cpu_path):
    x, w, b, dy = cifar_problem()
    case = (x.shape, w.shape, 1, 1, 1, 1)
    assert forward_takes_tiles(*case) and grad_input_takes_tiles(*case)
    f = [a.astype(np.float64) for a in (x, w, b, dy)]
    want_y = reference.conv2d(f[0], f[1], f[2], 1, 1)
    want = (want_y,) + tuple(reference.conv2d_backward(f[3], f[0], f[1], 1, 1))
    a = [np.abs(v) for v in f]
    mag_y = reference.conv2d(a[0], a[1], a[2], 1, 1)
    mag = (mag_y,) + tuple(reference.conv2d_backward(a[3], a[0], a[1], 1, 1))
    terms = (64 * 9 + 1, 64 * 9, 2 * 13 * 17, 2 * 13 * 17)
    for threads in (1, 3):
        got = at_threads(threads, lambda: run_all(x, w, b, dy, 1, 1, 1, 1))
        for name, g, e, m, k in zip(NAMES, got, want, mag, terms):
            assert g.dtype == F32
            tol = float_tolerance(F32, k, m)
            err = np.abs(g.astype(np.float64) - e)
            worst = np.unravel_index(np.argmax(err - tol), err.shape)
            assert (err <= tol).all(), (f"{name} threads={threads}: |err| {err[worst]:.3g} > tol "
                                        f"{tol[worst]:.3g} at {worst}")


def test_tiles_engage_only_on_avx512(cpu_path):
    """Premise: the tiles sum each output from zero over all 576 terms, the GEMM in two K
    blocks (KC = 512), so with random values their float32 roundings differ: on avx512 the
    forward and the input gradient are not bit-identical with the tiles forbidden; on the other
    paths set_conv_tiles changes nothing."""
    x, w, b, dy = cifar_problem()

    def both():
        y = fastnn.conv2d(x, w, b, 1, 1)
        gi = fastnn.conv2d_backward(dy, x, w, 1, 1, needs_weight_grad=False, needs_bias_grad=False)[0]
        return y, gi

    on = both()
    off = without_tiles(both)
    for name, a, c in zip(("y", "grad_input"), on, off):
        if cpu_path == "avx512":
            assert (a != c).any(), f"{name}: the tiles did not run (bit-identical to the GEMM path)"
        else:
            np.testing.assert_array_equal(a, c, err_msg=name)


# ---- 5: determinism across thread counts ------------------------------------------------------

def test_bit_identical_across_threads(cpu_path):
    rng = np.random.default_rng(80)
    x = rng.standard_normal((2, 32, 9, 30)).astype(F32)
    w = rng.standard_normal((48, 32, 3, 3)).astype(F32)
    b = rng.standard_normal(48).astype(F32)
    dy = rng.standard_normal((2, 48, 9, 30)).astype(F32)
    assert forward_takes_tiles(x.shape, w.shape, 1, 1, 1, 1)
    assert grad_input_takes_tiles(x.shape, w.shape, 1, 1, 1, 1)
    results = []
    for threads in (1, 2, 3):
        def call():
            KERNELS.reset_team_size()
            y = fastnn.conv2d(x, w, b, 1, 1)
            team = KERNELS.last_team_size()
            gi = fastnn.conv2d_backward(dy, x, w, 1, 1, needs_weight_grad=False, needs_bias_grad=False)[0]
            return y, gi, team
        y, gi, team = at_threads(threads, call)
        if threads > 1:
            assert team > 1, f"the forward ran on one thread at threads={threads}"
        results.append((y, gi))
    for threads, (y, gi) in zip((2, 3), results[1:]):
        assert y.tobytes() == results[0][0].tobytes(), f"y differs at {threads} threads"
        assert gi.tobytes() == results[0][1].tobytes(), f"grad_input differs at {threads} threads"


# ---- 6: layouts the public API copies ---------------------------------------------------------

LAYOUT_CASE = ((2, 16, 7, 19), (33, 16, 3, 3), 1, 1, 1, 1)


def _variant(a, kind):
    if kind == "strided":
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        big[..., ::2] = a
        v = big[..., ::2]
        assert not v.flags.c_contiguous
        return v
    if kind == "fortran":
        v = np.asfortranarray(a)
        assert not v.flags.c_contiguous
        return v
    if kind == "readonly":
        v = a.copy()
        v.setflags(write=False)
        return v
    if kind == "byteswapped":
        return a.astype(a.dtype.newbyteorder())
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["strided", "fortran", "readonly", "byteswapped"])
def test_layouts_equal_contiguous(cpu_path, kind):
    case = LAYOUT_CASE
    assert forward_takes_tiles(*case) and grad_input_takes_tiles(*case)
    inputs, want, _ = exact_problem(90, case)
    x, w, b, dy = (a.copy() for a in inputs)
    base = run_all(x, w, b, dy, *case[2:])
    for name, g, e in zip(NAMES, base, want):
        np.testing.assert_array_equal(g, e, err_msg=f"contiguous {name}")
    xv, wv, dyv = _variant(x, kind), _variant(w, kind), _variant(dy, kind)
    keep = (xv.copy(), wv.copy(), dyv.copy())
    for label, args in (("x", (xv, w, dy)), ("weight", (x, wv, dy)), ("all", (xv, wv, dyv))):
        got = at_threads(3, lambda: run_all(args[0], args[1], b, args[2], *case[2:]))
        for name, g, e in zip(NAMES, got, base):
            assert g.dtype == F32 and g.flags.c_contiguous
            np.testing.assert_array_equal(g, e, err_msg=f"{kind} {label}: {name}")
    for before, after in zip(keep, (xv, wv, dyv)):
        np.testing.assert_array_equal(before, after)  # inputs untouched


def test_out_argument(compiled_only, cpu_path):
    case = LAYOUT_CASE
    inputs, want, _ = exact_problem(91, case)
    x, w, b, dy = (a.copy() for a in inputs)
    out = np.full(y_shape(*case), np.nan, F32)
    y = fastnn.conv2d(x, w, b, *case[2:], out=out)
    assert y is out
    np.testing.assert_array_equal(out, want[0])


def test_weights_rebuilt_before_any_tile_runs(compiled_only, cpu_path):
    """Every tile must see this call's rearranged weights, never a half-written block or the
    previous call's: calls alternate between two weight sets on a team of 2. One 32-channel
    block with a long reduction: one thread rearranges it while the other, with no block to
    rearrange, pads its image and reaches its tiles early."""
    rng = np.random.default_rng(77)
    x = small_ints(rng, (2, 128, 9, 11))
    weights = [small_ints(rng, (32, 128, 3, 3)) for _ in range(2)]
    want = [expected_all(x, w, None, small_ints(rng, (2, 32, 9, 11)), 1, 1, 1, 1)[0] for w in weights]
    for i in range(30):
        y = at_threads(2, lambda: fastnn.conv2d(x, weights[i % 2], None, 1, 1))
        np.testing.assert_array_equal(y, want[i % 2], err_msg=f"call {i}")
