"""The compiled conv_transpose2d and conv_transpose2d_backward against their oracle,
fastnn.reference (itself checked in test_conv_transpose2d_reference.py).

As test_kernels does for conv2d: hypothesis draws geometries (odd sizes, non-square kernels,
every stride/padding/output_padding/dilation/groups combination, depthwise and channel
multipliers) and hands the inputs over in awkward memory layouts; a seeded grid runs on every
CPU path, past the GEMM core's blocking; then out=, empty sizes, the needs_* flags,
bit-identical results across thread counts, Inf/NaN and bad arguments. The oracle runs in
float64, and the `compiled_only` fixture makes a silent fallback to it fail the test.
"""
import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastnn
from fastnn import _cases, reference

from conv_helpers import conftest_module
from kernel_helpers import (DTYPES, LAYOUTS, PARAM_LAYOUTS, Unmodified, absf64, assert_close, assert_nonfinite_like,
                            bad_outs, check_deterministic, f64, fixture_settings, int_or_pair, run_settings, running,
                            values, with_layout)

float_tolerance = conftest_module().float_tolerance

pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning",
                                        "ignore:overflow encountered:RuntimeWarning")


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def output_hw(cfg):
    kw = cfg["kwargs"]
    return tuple((size - 1) * s - 2 * p + d * (k - 1) + op + 1 for size, k, s, p, op, d in zip(
        cfg["x_shape"][2:], cfg["w_shape"][2:], _pair(kw["stride"]), _pair(kw["padding"]),
        _pair(kw["output_padding"]), _pair(kw["dilation"])))


def out_shape(cfg):
    c_out = cfg["w_shape"][1] * cfg["kwargs"]["groups"]
    return (cfg["x_shape"][0], c_out) + output_hw(cfg)


@st.composite
def transpose_configs(draw):
    """Geometry of one transposed convolution, as keyword arguments plus shapes."""
    kind = draw(st.sampled_from(["plain", "grouped", "depthwise", "multiplier"]))
    if kind == "plain":
        groups, c_in, c_out = 1, draw(st.integers(1, 5)), draw(st.integers(1, 5))
    elif kind == "grouped":
        groups = draw(st.integers(2, 3))
        c_in, c_out = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    elif kind == "depthwise":
        groups = draw(st.integers(1, 6))
        c_in = c_out = groups
    else:  # each input channel to several outputs
        groups = draw(st.integers(1, 4))
        c_in, c_out = groups, groups * draw(st.integers(2, 3))
    n = draw(st.sampled_from([0, 1, 1, 2, 3]))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride, dilation = draw(int_or_pair(1, 3)), draw(int_or_pair(1, 3))
    (sh, sw), (dh, dw) = _pair(stride), _pair(dilation)
    # output_padding below the stride or the dilation, on each axis
    op = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in ((sh, dh), (sw, dw)))
    output_padding = op[0] if op[0] == op[1] and draw(st.booleans()) else op
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    # padding that leaves at least one output row and column
    limits = [((size - 1) * s + d * (k - 1) + o) // 2 for size, s, d, k, o in
              ((h, sh, dh, kh, op[0]), (w, sw, dw, kw, op[1]))]
    padding = (draw(st.integers(0, limits[0])), draw(st.integers(0, limits[1])))
    if padding[0] == padding[1] and draw(st.booleans()):
        padding = padding[0]
    return dict(x_shape=(n, c_in, h, w), w_shape=(c_in, c_out // groups, kh, kw),
                kwargs=dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups,
                            dilation=dilation))


def inputs(seed, cfg, dtype, layouts, bias):
    """x, weight, bias (or None), grad_output in the given layouts."""
    rng = np.random.default_rng(seed)
    x = with_layout(values(rng, cfg["x_shape"], dtype), layouts[0])
    weight = with_layout(values(rng, cfg["w_shape"], dtype), layouts[1])
    b = with_layout(values(rng, out_shape(cfg)[1:2], dtype), layouts[2]) if bias else None
    dy = with_layout(values(rng, out_shape(cfg), dtype), layouts[3])
    return x, weight, b, dy


def check_forward(cfg, dtype, x, weight, b, use_out):
    out = np.full(out_shape(cfg), np.nan, dtype) if use_out else None
    guard = Unmodified(x=x, weight=weight, bias=b)
    y = fastnn.conv_transpose2d(x, weight, b, **cfg["kwargs"], out=out)
    guard.check()
    if use_out:
        assert y is out, "conv_transpose2d(out=...) must return out itself"
    assert y.dtype == dtype and y.shape == out_shape(cfg)
    expected = reference.conv_transpose2d(f64(x), f64(weight), f64(b), **cfg["kwargs"])
    magnitude = reference.conv_transpose2d(absf64(x), absf64(weight), absf64(b), **cfg["kwargs"])
    c_in, _, kh, kw = weight.shape
    terms = c_in // cfg["kwargs"]["groups"] * kh * kw + 1
    assert_close(y, expected, float_tolerance(dtype, terms, magnitude), "conv_transpose2d")


def check_backward(cfg, dtype, x, weight, dy, needs):
    guard = Unmodified(x=x, weight=weight, grad_output=dy)
    grads = fastnn.conv_transpose2d_backward(dy, x, weight, **cfg["kwargs"], needs_input_grad=needs[0],
                                             needs_weight_grad=needs[1], needs_bias_grad=needs[2])
    guard.check()
    assert isinstance(grads, tuple) and len(grads) == 3
    expected = reference.conv_transpose2d_backward(f64(dy), f64(x), f64(weight), **cfg["kwargs"])
    magnitude = reference.conv_transpose2d_backward(absf64(dy), absf64(x), absf64(weight), **cfg["kwargs"])
    n, _, h, w = x.shape
    _, cout_g, kh, kw = weight.shape
    terms = (cout_g * kh * kw, n * h * w, n * dy.shape[2] * dy.shape[3])
    for name, need, got, exp, mag, k in zip(("grad_input", "grad_weight", "grad_bias"), needs, grads,
                                           expected, magnitude, terms):
        if not need:
            assert got is None, f"{name} was not asked for, so it must be None"
            continue
        assert got.dtype == dtype, f"{name} has dtype {got.dtype}"
        assert_close(got, exp, float_tolerance(dtype, k, mag), name)


@fixture_settings
@given(cfg=transpose_configs(), dtype=st.sampled_from(DTYPES), bias=st.booleans(), use_out=st.booleans(),
       layouts=st.tuples(st.sampled_from(LAYOUTS), st.sampled_from(PARAM_LAYOUTS),
                         st.sampled_from(PARAM_LAYOUTS), st.sampled_from(LAYOUTS)),
       run=run_settings, seed=st.integers(0, 2**32 - 1))
def test_forward_matches_reference(compiled_only, cfg, dtype, bias, use_out, layouts, run, seed):
    x, weight, b, _ = inputs(seed, cfg, dtype, layouts, bias)
    with running(**run):
        check_forward(cfg, dtype, x, weight, b, use_out)


@fixture_settings
@given(cfg=transpose_configs(), dtype=st.sampled_from(DTYPES),
       needs=st.tuples(st.booleans(), st.booleans(), st.booleans()),
       layouts=st.tuples(st.sampled_from(LAYOUTS), st.sampled_from(PARAM_LAYOUTS),
                         st.just("c"), st.sampled_from(LAYOUTS)),
       run=run_settings, seed=st.integers(0, 2**32 - 1))
def test_backward_matches_reference(compiled_only, cfg, dtype, needs, layouts, run, seed):
    x, weight, _, dy = inputs(seed, cfg, dtype, layouts, False)
    with running(**run):
        check_backward(cfg, dtype, x, weight, dy, needs)


# ---- seeded grid on every dispatch path --------------------------------------------------------

def case(x_shape, w_shape, **kwargs):
    kwargs = dict(dict(stride=1, padding=0, output_padding=0, groups=1, dilation=1), **kwargs)
    return dict(x_shape=x_shape, w_shape=w_shape, kwargs=kwargs)


GRID = {
    # stride 2: conv2d's input gradient scatters (col2im)
    "k4_s2_p1": case((2, 5, 4, 5), (5, 3, 4, 4), stride=2, padding=1),
    "k3_s2_p1_output_padding1": case((2, 3, 5, 4), (3, 4, 3, 3), stride=2, padding=1, output_padding=1),
    "nonsquare_stride_pair": case((1, 4, 3, 6), (4, 2, 2, 5), stride=(3, 2), padding=(1, 2), output_padding=(2, 0)),
    # stride 1: a gather, conv2d's forward with the flipped kernel
    "stride1_padded": case((2, 4, 6, 5), (4, 3, 3, 2), padding=(1, 0)),
    # output_padding from the dilation (>= the stride): rows the kernel does not reach
    "output_padding_from_dilation": case((2, 3, 4, 5), (3, 2, 3, 2), dilation=(3, 2), output_padding=(2, 1)),
    "dilated_strided": case((1, 2, 5, 4), (2, 3, 3, 3), stride=2, dilation=2, padding=2, output_padding=1),
    "grouped": case((2, 6, 4, 4), (6, 2, 3, 3), groups=3, stride=2, padding=1, output_padding=1),
    "depthwise_s1": case((2, 5, 6, 6), (5, 1, 3, 3), groups=5, padding=1),
    "depthwise_s2": case((2, 4, 5, 5), (4, 1, 4, 4), groups=4, stride=2, padding=1),
    "multiplier": case((1, 3, 4, 5), (3, 3, 2, 3), groups=3, stride=(1, 2)),
    "one_output_channel": case((2, 6, 4, 4), (6, 1, 3, 3), stride=2),
    "padding_crops_most": case((1, 3, 3, 4), (3, 2, 3, 3), padding=2),
    "one_by_one_input": case((3, 4, 1, 1), (4, 5, 4, 4)),
    # a 1x1 input with no crop: the per-group GEMM (DCGAN's latent projection); odd sizes,
    # groups, a stride that changes nothing, one image, one tap; with a crop or dilation
    # gaps it stays on conv2d's drivers
    "one_pixel_odd": case((5, 7, 1, 1), (7, 3, 3, 5), stride=2),
    "one_pixel_grouped": case((3, 6, 1, 1), (6, 4, 2, 3), groups=3),
    "one_pixel_one_image_one_tap": case((1, 3, 1, 1), (3, 2, 1, 1)),
    "one_pixel_cropped": case((2, 4, 1, 1), (4, 3, 4, 4), padding=1),
    "one_pixel_dilated": case((2, 4, 1, 1), (4, 3, 3, 3), dilation=2),
    "one_pixel_past_blocking": case((40, 300, 1, 1), (300, 70, 3, 3)),
    # several small images (at most 32 pixels): folded into one tall image with gap rows that
    # catch every tap landing outside its own image (strides, crops, dilation, output_padding)
    "folded_dilated_cropped": case((3, 4, 3, 4), (4, 5, 3, 4), stride=(2, 3), padding=(2, 1), dilation=(2, 1),
                                   output_padding=(1, 2)),
    "folded_stride_past_kernel": case((4, 3, 2, 3), (3, 2, 2, 2), stride=3),
    "folded_grouped_one_row": case((5, 6, 1, 7), (6, 2, 3, 3), groups=3, stride=2, padding=1),
    # strided with >= 16 channels per group and >= 2 taps per phase: the forward by output
    # phases, each a stride-1 conv2d forward (asymmetric pads, odd sizes, groups, stride 3)
    "phases_k4_s2": case((1, 16, 5, 6), (16, 16, 4, 4), stride=2, padding=1),
    "phases_odd_grouped": case((2, 32, 7, 6), (32, 16, 5, 4), groups=2, stride=2, padding=(1, 2),
                               output_padding=1),
    "phases_stride3": case((1, 16, 4, 5), (16, 17, 6, 7), stride=3, padding=2, output_padding=2),
    "phases_stride_pair": case((2, 16, 3, 12), (16, 16, 4, 6), stride=(2, 3), padding=(0, 1)),
    # past the GEMM core's blocking: the reduction (C_in) past KC, rows (C_out/g * taps) past MC,
    # output pixels past NC
    "reduction_past_kc": case((2, 300, 3, 3), (300, 4, 3, 3), stride=2, padding=1),
    "rows_past_mc": case((1, 5, 4, 4), (5, 64, 3, 3), stride=2),
    "pixels_past_nc": case((1, 3, 40, 70), (3, 2, 2, 2), stride=2),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(GRID))
def test_grid_on_every_path(compiled_only, cpu_path, name, dtype):
    cfg = GRID[name]
    seed = sorted(GRID).index(name)
    x, weight, b, dy = inputs(seed, cfg, dtype, ("c", "c", "c", "c"), True)
    check_forward(cfg, dtype, x, weight, b, use_out=False)
    check_backward(cfg, dtype, x, weight, dy, (True, True, True))
    # teams of threads on every problem, in awkward layouts
    x, weight, b, dy = inputs(seed, cfg, dtype, ("reversed", "strided", "broadcast_first", "permuted"), True)
    with running(cpu_path, threads=3, parallel=True):
        check_forward(cfg, dtype, x, weight, b, use_out=True)
        check_backward(cfg, dtype, x, weight, dy, (True, True, False))


def test_grid_selects_the_new_paths():
    """The grid's one_pixel_*, folded_* and phases_* entries reach the paths they are named for."""
    from fastnn import conv_transpose as ct
    for name, cfg in GRID.items():
        x_shape, w_shape, kw = cfg["x_shape"], cfg["w_shape"], cfg["kwargs"]
        spec = ct._TransposeSpec(x_shape, w_shape, kw["stride"], kw["padding"], kw["output_padding"],
                                 kw["groups"], kw["dilation"])
        one_pixel = ct._one_pixel_taps(x_shape, spec)
        folded = ct._fold_gap(x_shape, w_shape, spec, out_shape(cfg)[2]) is not None
        phases = ct._phases(x_shape, w_shape, spec, out_shape(cfg)[2:]) is not None
        if name.startswith("one_pixel_") and name not in ("one_pixel_cropped", "one_pixel_dilated"):
            assert one_pixel, name
        if name.startswith("folded_"):
            assert folded and not one_pixel, name
        if name.startswith("phases_"):
            assert phases and not folded, name


@pytest.mark.parametrize("needs", list(itertools.product((False, True), repeat=3)))
def test_each_needs_combination(compiled_only, cpu_path, needs):
    cfg = GRID["dilated_strided"]
    x, weight, _, dy = inputs(11, cfg, np.float32, ("c", "fortran", "c", "misaligned"), False)
    check_backward(cfg, np.float32, x, weight, dy, needs)


def test_exact_on_small_integers(compiled_only, cpu_path):
    """Integers in [-4, 4]: every sum is exact in float32, so the result must equal the oracle."""
    rng = np.random.default_rng(12)
    for name in ("k4_s2_p1", "stride1_padded", "grouped", "output_padding_from_dilation"):
        cfg = GRID[name]
        x = rng.integers(-4, 5, cfg["x_shape"]).astype(np.float32)
        w = rng.integers(-4, 5, cfg["w_shape"]).astype(np.float32)
        dy = rng.integers(-4, 5, out_shape(cfg)).astype(np.float32)
        np.testing.assert_array_equal(fastnn.conv_transpose2d(x, w, **cfg["kwargs"]),
                                      reference.conv_transpose2d(f64(x), f64(w), **cfg["kwargs"]), err_msg=name)
        for got, want in zip(fastnn.conv_transpose2d_backward(dy, x, w, **cfg["kwargs"]),
                             reference.conv_transpose2d_backward(f64(dy), f64(x), f64(w), **cfg["kwargs"])):
            np.testing.assert_array_equal(got, want, err_msg=name)


# ---- out= and empty sizes -------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_out_refused_and_left_alone(compiled_only, dtype):
    rng = np.random.default_rng(5)
    x, w = values(rng, (2, 3, 4, 5), dtype), values(rng, (3, 4, 3, 3), dtype)
    for what, out in bad_outs((2, 4, 9, 11), dtype):
        before = out.copy()
        with pytest.raises(ValueError, match="out"):
            fastnn.conv_transpose2d(x, w, stride=2, output_padding=(0, 0), out=out)
        assert np.array_equal(out, before), f"conv_transpose2d wrote into a refused out ({what})"
    # an out that is x's own buffer: a 1x1 kernel from 4 channels to 4 keeps x's shape
    xx = values(rng, (1, 4, 3, 3), dtype)
    before = xx.copy()
    with pytest.raises(ValueError, match="out must not overlap"):
        fastnn.conv_transpose2d(xx, values(rng, (4, 4, 1, 1), dtype), out=xx)
    assert np.array_equal(xx, before)


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_is_written_and_returned(compiled_only, cpu_path, dtype):
    rng = np.random.default_rng(6)
    x, w, b = values(rng, (2, 3, 4, 5), dtype), values(rng, (3, 2, 3, 3), dtype), values(rng, (2,), dtype)
    out = np.full((2, 2, 8, 10), np.nan, dtype)
    assert fastnn.conv_transpose2d(x, w, b, 2, 1, 1, out=out) is out
    assert np.array_equal(out, fastnn.conv_transpose2d(x, w, b, 2, 1, 1))


# (N, C_in, H, W), (C_in, C_out/g, kH, kW), keyword arguments
EMPTY = {
    "no_images": ((0, 3, 4, 4), (3, 2, 3, 3), dict(stride=2)),
    "no_input_channels": ((2, 0, 4, 4), (0, 2, 3, 3), dict(padding=1)),
    "no_output_channels": ((2, 3, 4, 4), (3, 0, 3, 3), dict()),
    "no_input_rows": ((2, 3, 0, 4), (3, 2, 3, 3), dict(stride=2)),
    "no_input_columns": ((1, 2, 3, 0), (2, 2, 2, 4), dict(dilation=2)),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(EMPTY))
def test_empty_sizes(compiled_only, name, dtype):
    x_shape, w_shape, kwargs = EMPTY[name]
    rng = np.random.default_rng(7)
    x, w = values(rng, x_shape, dtype), values(rng, w_shape, dtype)
    b = values(rng, (w_shape[1],), dtype, zeros=0)
    y = fastnn.conv_transpose2d(x, w, b, **kwargs)
    expected = reference.conv_transpose2d(f64(x), f64(w), f64(b), **kwargs)
    assert y.shape == expected.shape and y.dtype == dtype
    np.testing.assert_array_equal(y, expected)  # the bias broadcast where no pixel scatters
    dy = values(rng, y.shape, dtype)
    for got, want in zip(fastnn.conv_transpose2d_backward(dy, x, w, **kwargs),
                         reference.conv_transpose2d_backward(f64(dy), f64(x), f64(w), **kwargs)):
        assert got.shape == want.shape and got.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


# ---- thread count does not change a bit ------------------------------------------------------------

THREAD_CASES = {
    "k4_s2_p1": case((4, 24, 9, 7), (24, 16, 4, 4), stride=2, padding=1),
    "stride1": case((3, 16, 11, 13), (16, 12, 3, 2), padding=1),
    "output_padding_grouped": case((2, 12, 8, 9), (12, 4, 3, 3), stride=2, padding=1, output_padding=1, groups=3),
    "depthwise": case((2, 8, 10, 9), (8, 1, 3, 3), groups=8, stride=2, padding=1),
    "one_pixel": case((13, 24, 1, 1), (24, 16, 4, 4)),
    "folded": case((5, 24, 4, 5), (24, 16, 4, 4), stride=2, padding=1),
    "phases": case((2, 16, 6, 7), (16, 16, 4, 4), stride=2, padding=1),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(THREAD_CASES))
def test_bit_identical_across_thread_counts(name, dtype, cpu_path, parallel_everything, compiled_only):
    cfg = THREAD_CASES[name]
    x, w, b, dy = inputs(3, cfg, dtype, ("c",) * 4, True)
    kw = cfg["kwargs"]
    calls = {
        # without a bias: the bias add's own team would hide a serial transposed convolution
        "forward": lambda: fastnn.conv_transpose2d(x, w, None, **kw),
        "forward_bias": lambda: fastnn.conv_transpose2d(x, w, b, **kw),
        "grad_input": lambda: fastnn.conv_transpose2d_backward(dy, x, w, **kw, needs_weight_grad=False,
                                                               needs_bias_grad=False)[0],
        "grad_weight": lambda: fastnn.conv_transpose2d_backward(dy, x, w, **kw, needs_input_grad=False,
                                                                needs_bias_grad=False)[1],
        "grad_bias": lambda: fastnn.conv_transpose2d_backward(dy, x, w, **kw)[2],
    }
    results = check_deterministic(calls)
    # and the deterministic answer is the right one
    expected = reference.conv_transpose2d(f64(x), f64(w), f64(b), **kw)
    magnitude = reference.conv_transpose2d(absf64(x), absf64(w), absf64(b), **kw)
    terms = w.shape[0] // kw["groups"] * w.shape[2] * w.shape[3] + 1
    assert_close(results["forward_bias"], expected, float_tolerance(dtype, terms, magnitude), "forward")


# ---- NaN and Inf ----------------------------------------------------------------------------------------

NONFINITE = {
    # scatter (stride 2) with a crop and output_padding, groups
    "scatter": case((2, 4, 4, 5), (4, 3, 3, 2), stride=2, padding=(1, 0), output_padding=(1, 0), groups=2),
    # gather (stride 1) with a crop: conv2d's forward over padding in the input gradient
    "gather": case((2, 3, 5, 4), (3, 2, 3, 3), padding=1),
    # one output channel per group: conv2d's direct kernels
    "depthwise": case((2, 3, 5, 5), (3, 1, 3, 3), groups=3, stride=2, padding=1, output_padding=1),
    # by output phases: an Inf/NaN weight meeting padding sends it back to the scatter
    "phases": case((2, 16, 6, 6), (16, 16, 4, 4), stride=2, padding=1),
}


def nonfinite_problem(name, dtype):
    cfg = NONFINITE[name]
    rng = np.random.default_rng(0)

    def magnitudes(shape):  # no exact zeros: 0 * Inf never occurs
        return ((rng.random(shape) + 0.5) * rng.choice([-1, 1], shape)).astype(dtype)
    x, w = magnitudes(cfg["x_shape"]), magnitudes(cfg["w_shape"])
    b, dy = magnitudes(out_shape(cfg)[1:2]), magnitudes(out_shape(cfg))
    return x, w, b, dy, cfg["kwargs"]


def writes(cfg):
    """Brute force: {(iy, ix, i, j): (oy, ox)} for every tap write that lands in the output."""
    kw = cfg["kwargs"]
    (sh, sw), (ph, pw), (dh, dw) = _pair(kw["stride"]), _pair(kw["padding"]), _pair(kw["dilation"])
    h_out, w_out = output_hw(cfg)
    found = {}
    for iy, ix, i, j in itertools.product(range(cfg["x_shape"][2]), range(cfg["x_shape"][3]),
                                          range(cfg["w_shape"][2]), range(cfg["w_shape"][3])):
        oy, ox = iy * sh - ph + i * dh, ix * sw - pw + j * dw
        if 0 <= oy < h_out and 0 <= ox < w_out:
            found[iy, ix, i, j] = (oy, ox)
    return found


@pytest.fixture
def count_fallbacks(monkeypatch):
    """{name: calls} of the reference functions the transposed kernels fell back to."""
    calls = {}
    for module in (fastnn.conv_transpose, fastnn.conv):
        real = module.reference

        class Spy:
            def __getattr__(self, attr, real=real):
                fn = getattr(real, attr)

                def wrapper(*args, **kwargs):
                    calls[attr] = calls.get(attr, 0) + 1
                    return fn(*args, **kwargs)
                return wrapper

        monkeypatch.setattr(module, "reference", Spy())
    return calls


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(NONFINITE))
def test_nonfinite_input_pixel(name, dtype, bad, cpu_path, compiled_only):
    x, w, b, dy, kw = nonfinite_problem(name, dtype)
    c0, i0, j0 = x.shape[1] - 1, 1, 2
    x[1, c0, i0, j0] = bad
    y = fastnn.conv_transpose2d(x, w, b, **kw)
    assert_nonfinite_like(y, reference.conv_transpose2d(x, w, b, **kw), "forward")
    # independently: exactly the outputs the pixel writes, in its group's output channels
    cout_g = w.shape[1]
    group = c0 // (x.shape[1] // kw["groups"])
    expect = np.zeros(y.shape, bool)
    for (iy, ix, _, _), (oy, ox) in writes(NONFINITE[name]).items():
        if (iy, ix) == (i0, j0):
            expect[1, group * cout_g:(group + 1) * cout_g, oy, ox] = True
    assert expect.any()
    np.testing.assert_array_equal(~np.isfinite(y), expect)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(NONFINITE))
def test_nonfinite_weight(name, dtype, bad, cpu_path, compiled_only):
    x, w, b, dy, kw = nonfinite_problem(name, dtype)
    c0, o0, a0, b0 = 0, w.shape[1] - 1, 0, w.shape[3] - 1
    w[c0, o0, a0, b0] = bad
    y = fastnn.conv_transpose2d(x, w, b, **kw)
    assert_nonfinite_like(y, reference.conv_transpose2d(x, w, b, **kw), "forward")
    expect = np.zeros(y.shape, bool)
    for (_, _, i, j), (oy, ox) in writes(NONFINITE[name]).items():
        if (i, j) == (a0, b0):
            expect[:, o0, oy, ox] = True  # c0 = 0 is in group 0
    np.testing.assert_array_equal(~np.isfinite(y), expect)
    assert not expect.all(), "the bad tap should write into the cropped border somewhere"


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", DTYPES)
def test_nonfinite_bias(dtype, bad, compiled_only):
    x, w, b, _, kw = nonfinite_problem("scatter", dtype)
    b[1] = bad
    y = fastnn.conv_transpose2d(x, w, b, **kw)
    expect = np.zeros(y.shape, bool)
    expect[:, 1] = True
    np.testing.assert_array_equal(~np.isfinite(y), expect)


def backward_both(dy, x, w, kw):
    got = fastnn.conv_transpose2d_backward(dy, x, w, **kw)
    want = reference.conv_transpose2d_backward(dy, x, w, **kw)
    for label, g, r in zip(("grad_input", "grad_weight", "grad_bias"), got, want):
        assert_nonfinite_like(g, r.astype(g.dtype), label)
    return got


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(NONFINITE))
def test_backward_nonfinite_grad_output(name, dtype, bad, cpu_path, count_fallbacks):
    x, w, b, dy, kw = nonfinite_problem(name, dtype)
    o0, oy0, ox0 = 0, 1, 1
    dy[0, o0, oy0, ox0] = bad
    gi, gw, gb = backward_both(dy, x, w, kw)
    cg = x.shape[1] // kw["groups"]
    expect_gi = np.zeros(gi.shape, bool)
    expect_gw = np.zeros(gw.shape, bool)
    for (iy, ix, i, j), out in writes(NONFINITE[name]).items():
        if out == (oy0, ox0):  # o0 = 0 is in group 0, whose input channels are 0..cg-1
            expect_gi[0, :cg, iy, ix] = True
            expect_gw[:cg, o0, i, j] = True
    np.testing.assert_array_equal(~np.isfinite(gi), expect_gi, err_msg="grad_input mask")
    np.testing.assert_array_equal(~np.isfinite(gw), expect_gw, err_msg="grad_weight mask")
    np.testing.assert_array_equal(~np.isfinite(gb), np.arange(gb.size) == o0)
    # finite weights and x: conv2d's kernels take Inf/NaN in the image they convolve (here dY)
    # themselves, so nothing falls back
    assert count_fallbacks == {}


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(NONFINITE))
def test_backward_nonfinite_input_pixel_and_weight(name, dtype, bad, cpu_path):
    x, w, b, dy, kw = nonfinite_problem(name, dtype)
    x[0, 0, 1, 1] = bad
    gi, gw, gb = backward_both(dy, x, w, kw)
    assert np.isfinite(gi).all() and np.isfinite(gb).all()  # neither depends on x
    x, w, b, dy, kw = nonfinite_problem(name, dtype)
    w[0, 0, 0, 0] = bad
    gi, gw, gb = backward_both(dy, x, w, kw)
    assert np.isfinite(gw).all() and np.isfinite(gb).all()  # neither depends on the weight
    expect = np.zeros(gi.shape, bool)
    for (iy, ix, i, j) in writes(NONFINITE[name]):
        if (i, j) == (0, 0):
            expect[:, 0, iy, ix] = True
    np.testing.assert_array_equal(~np.isfinite(gi), expect, err_msg="grad_input mask")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", DTYPES)
def test_nonfinite_one_pixel(dtype, bad, cpu_path, count_fallbacks):
    """The 1x1-input GEMM: every product is a real term, so an Inf/NaN spreads exactly as in the
    oracle (x: its image's row of outputs in its group; weight: one output pixel of every image;
    dY: its image's input gradient in its group, the weight gradient's tap)."""
    cfg = case((3, 4, 1, 1), (4, 3, 2, 3), groups=2, stride=2)
    rng = np.random.default_rng(1)
    x, w, b, dy = ((rng.random(s) + 0.5).astype(dtype) for s in (cfg["x_shape"], cfg["w_shape"], (6,),
                                                                  out_shape(cfg)))
    kw = cfg["kwargs"]
    x[1, 3, 0, 0] = bad
    y = fastnn.conv_transpose2d(x, w, b, **kw)
    assert_nonfinite_like(y, reference.conv_transpose2d(x, w, b, **kw), "forward")
    expect = np.zeros(y.shape, bool)
    expect[1, 3:] = True
    np.testing.assert_array_equal(~np.isfinite(y), expect)
    backward_both(dy, x, w, kw)
    x[1, 3, 0, 0] = 1.0
    w[0, 2, 1, 0] = bad
    y = fastnn.conv_transpose2d(x, w, b, **kw)
    assert_nonfinite_like(y, reference.conv_transpose2d(x, w, b, **kw), "forward")
    expect = np.zeros(y.shape, bool)
    expect[:, 2, 1, 0] = True
    np.testing.assert_array_equal(~np.isfinite(y), expect)
    backward_both(dy, x, w, kw)
    w[0, 2, 1, 0] = 1.0
    dy[2, 4, 0, 1] = bad
    gi, gw, gb = backward_both(dy, x, w, kw)
    assert (~np.isfinite(gi)).sum() == 2 and not np.isfinite(gi[2, 2:]).any()
    assert (~np.isfinite(gw)).sum() == 2 and not np.isfinite(gw[2:, 1, 0, 1]).any()
    assert count_fallbacks == {}


def test_finite_problems_never_fall_back(cpu_path, count_fallbacks):
    for name in sorted(NONFINITE):
        x, w, b, dy, kw = nonfinite_problem(name, np.float32)
        fastnn.conv_transpose2d(x, w, b, **kw)
        fastnn.conv_transpose2d_backward(dy, x, w, **kw)
    assert count_fallbacks == {}


# ---- bad arguments --------------------------------------------------------------------------------------

def z(*shape, dtype=np.float32):
    return np.zeros(shape, dtype)


X, W = z(2, 4, 5, 6), z(4, 3, 3, 3)  # output (2, 3, 7, 8)
DY = z(2, 3, 7, 8)


def call(**kw):
    args = dict(x=X, weight=W)
    args.update(kw)
    return lambda: fastnn.conv_transpose2d(**args)


def call_back(**kw):
    args = dict(grad_output=DY, x=X, weight=W)
    args.update(kw)
    return lambda: fastnn.conv_transpose2d_backward(**args)


def readonly(a):
    a.setflags(write=False)
    return a


ERRORS = [
    ("x 3-D", call(x=z(4, 5, 6)), ValueError, r"\bx must be 4-D"),
    ("weight 5-D", call(weight=z(4, 3, 3, 3, 1)), ValueError, r"weight must be 4-D"),
    ("bias 2-D", call(bias=z(3, 1)), ValueError, r"bias must be 1-D"),
    ("bias wrong length", call(bias=z(4)), ValueError, r"bias must have shape \(3,\)"),
    ("weight's channels are x's", call(weight=z(3, 4, 3, 3)), ValueError,
     r"weight has 3 input channels \(its first axis.*x has 4"),
    ("groups don't divide C_in", call(groups=3, weight=z(4, 1, 3, 3)), ValueError,
     r"groups=3 does not divide the input channels of x \(4\)"),
    ("empty kernel", call(weight=z(4, 3, 0, 3)), ValueError, r"weight has an empty kernel"),
    ("groups 0", call(groups=0), ValueError, r"groups must be >= 1"),
    ("groups float", call(groups=1.0), TypeError, r"groups must be an int"),
    ("stride 0", call(stride=0), ValueError, r"stride must be >= 1"),
    ("stride triple", call(stride=(1, 1, 1)), ValueError, r"stride must be an int or a pair"),
    ("stride float", call(stride=1.5), TypeError, r"stride must be an int or a pair"),
    ("dilation 0", call(dilation=(1, 0)), ValueError, r"dilation must be >= 1"),
    ("padding -1", call(padding=-1), ValueError, r"padding must be >= 0"),
    ("padding same", call(padding="same"), TypeError, r"padding must be an int or a pair of ints, got 'same'"),
    ("padding None", call(padding=None), TypeError, r"padding must be an int or a pair"),
    ("padding crops everything", call(padding=(4, 0)), ValueError,
     r"padding 4 crops the whole output height"),
    ("output_padding >= stride and dilation", call(stride=2, output_padding=2), ValueError,
     r"output_padding must be smaller than the stride or the dilation"),
    ("output_padding at stride 1", call(output_padding=(0, 1)), ValueError,
     r"output_padding must be smaller than the stride or the dilation"),
    ("output_padding -1", call(stride=2, output_padding=-1), ValueError, r"output_padding must be >= 0"),
    ("output_padding str", call(output_padding="1"), TypeError, r"output_padding must be an int or a pair"),
    ("output too large", call(stride=2**30, weight=z(4, 3, 1, 1), x=np.broadcast_to(z(1, 4, 1, 1), (1, 4, 2**20, 2**20))),
     ValueError, r"output .*too large"),
    ("x int", call(x=X.astype(np.int32)), TypeError, r"\bx must be float32 or float64"),
    ("x float16", call(x=X.astype(np.float16)), TypeError, r"\bx must be float32 or float64"),
    ("weight None", call(weight=None), TypeError, r"weight must be float32 or float64"),
    ("mixed dtypes", call(weight=W.astype(np.float64)), TypeError, r"weight has dtype float64 but x has float32"),
    ("mixed bias", call(bias=z(3, dtype=np.float64)), TypeError, r"bias has dtype float64"),
    ("out wrong shape", call(out=z(2, 3, 7, 7)), ValueError, r"out has shape \(2, 3, 7, 7\), expected \(2, 3, 7, 8\)"),
    ("out read-only", call(out=readonly(z(2, 3, 7, 8))), ValueError, r"out must be writeable"),
    ("out a list", call(out=[0.0]), TypeError, r"out must be a numpy.ndarray"),
    ("back grad_output wrong shape", call_back(grad_output=z(2, 3, 7, 7)), ValueError,
     r"grad_output must have shape \(2, 3, 7, 8\)"),
    ("back grad_output 3-D", call_back(grad_output=z(3, 7, 8)), ValueError, r"grad_output must be 4-D"),
    ("back grad_output int", call_back(grad_output=DY.astype(np.int64)), TypeError,
     r"grad_output must be float32 or float64"),
    ("back mixed grad_output", call_back(grad_output=DY.astype(np.float64)), TypeError,
     r"x has dtype float32 but grad_output has float64"),
    ("back output_padding", call_back(output_padding=1), ValueError, r"output_padding must be smaller"),
    ("back padding str", call_back(padding="valid"), TypeError, r"padding must be an int or a pair"),
]


@pytest.mark.parametrize("name, fn, exception, pattern", ERRORS, ids=[e[0] for e in ERRORS])
def test_invalid_arguments_raise_naming_the_argument(name, fn, exception, pattern):
    with pytest.raises(exception, match=pattern):
        fn()


# ---- the registered cases -----------------------------------------------------------------------------

@pytest.mark.parametrize("case", _cases.select(family="conv_transpose2d"), ids=lambda c: c.key)
def test_registered_case_flops_and_shapes(case):
    """2 x multiply-adds of the scatter (every input element times each tap and output channel
    of its group; a backward counts twice), and the output shape fastnn gives."""
    p = case.params
    x = np.zeros((1, p["c_in"], p["h"], p["w"]), np.float32)
    w = np.zeros((p["c_in"], p["c_out"] // p["groups"], p["kh"], p["kw"]), np.float32)
    y = fastnn.conv_transpose2d(x, w, None, p["stride"], p["padding"], p["output_padding"], p["groups"],
                                p["dilation"])
    assert y.shape[1] == p["c_out"] and y.shape[2] == (p["h"] - 1) * p["stride"][0] - 2 * p["padding"][0] + \
        p["kh"] + p["output_padding"][0]
    forwards = 1 if case.direction == "fwd" else 2
    assert case.flops == forwards * 2 * p["n"] * x.size * w[0].size
