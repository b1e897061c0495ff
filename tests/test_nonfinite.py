"""NaN and Inf: they reach exactly the outputs that depend on them, as in the NumPy oracle.

Each test puts one NaN or Inf into one input and checks, against fastnn.reference, that the
NaN and Inf masks (and the signs of the infinities) agree exactly and the finite values agree
within a tolerance; where the dependence is simple (a receptive field, later time steps), the
expected mask is also computed here independently of the oracle by brute force.

Padding is absent, not zero: an output that sees only padding equals its bias exactly, even
with an Inf weight at a tap that reads padding there. The implicit-GEMM kernels would compute
0 * Inf = NaN at such taps, so the compiled driver declines (returns False) for a non-finite
weight (forward) or grad_output (weight gradient) when the geometry reads padding, and the API
falls back to the reference; the direct kernel (one input channel per group) skips padding itself.
"""
import itertools

import numpy as np
import pytest

import fastnn
from fastnn import reference

from kernel_helpers import assert_nonfinite_like

DTYPES = [np.float32, np.float64]
# the oracle's NumPy arithmetic on Inf and NaN warns; that is expected here
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning",
                                        "ignore:overflow encountered:RuntimeWarning")

# name: (x shape, weight shape, stride, padding, dilation, groups)
GEOMETRIES = {
    # implicit GEMM over padding: non-square kernel, groups, every parameter asymmetric
    "padded": ((2, 4, 9, 10), (6, 2, 3, 2), (2, 1), (1, 2), (1, 2), 2),
    # implicit GEMM, no padding: the compiled path whatever the values
    "valid": ((2, 3, 8, 9), (4, 3, 3, 2), 1, 0, 1, 1),
    # one input channel per group: the direct kernel, over padding
    "depthwise_padded": ((2, 3, 7, 8), (6, 1, 3, 3), 1, 2, 1, 3),
    "one_channel_padded": ((1, 1, 7, 6), (3, 1, 2, 3), (1, 2), 1, (2, 1), 1),
}


def _pair(v):
    return tuple(v) if isinstance(v, tuple) else (v, v)


def problem(name, dtype, seed=0):
    xs, ws, stride, padding, dilation, groups = GEOMETRIES[name]
    rng = np.random.default_rng(seed)
    # magnitudes in [0.5, 1.5) with random signs: no exact zeros, so 0 * Inf never occurs
    def values(shape):
        return ((rng.random(shape) + 0.5) * rng.choice([-1, 1], shape)).astype(dtype)
    x, w, b = values(xs), values(ws), values(ws[0])
    geo = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    dy = values(reference.conv2d(x, w, b, **geo).shape)
    return x, w, b, dy, geo


def taps_reading(name):
    """Brute force: {(oh, ow, a, b): (ih, iw)} for every tap that reads a real input pixel."""
    xs, ws, stride, padding, dilation, _ = GEOMETRIES[name]
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    h, w = xs[2:]
    kh, kw = ws[2:]
    h_out = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    w_out = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    reads = {}
    for oh, ow, a, b in itertools.product(range(h_out), range(w_out), range(kh), range(kw)):
        ih, iw = oh * sh - ph + a * dh, ow * sw - pw + b * dw
        if 0 <= ih < h and 0 <= iw < w:
            reads[oh, ow, a, b] = (ih, iw)
    return reads, (h_out, w_out)


def must_use_compiled(name, corrupted):
    """Whether the compiled kernel must handle this case itself (no reference fallback)."""
    padded = name != "valid"
    direct = GEOMETRIES[name][1][1] == 1
    return not (padded and not direct and corrupted in ("weight", "grad_output"))


@pytest.fixture
def count_fallbacks(monkeypatch):
    """{name: calls} of the reference functions fastnn.conv fell back to."""
    calls = {}
    real = fastnn.conv.reference

    class Spy:
        def __getattr__(self, attr):
            fn = getattr(real, attr)

            def wrapper(*args, **kwargs):
                calls[attr] = calls.get(attr, 0) + 1
                return fn(*args, **kwargs)
            return wrapper

    monkeypatch.setattr(fastnn.conv, "reference", Spy())
    return calls


# ---------------------------------------------------------------------------------------------
# conv2d forward
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(GEOMETRIES))
def test_conv2d_nonfinite_input_pixel(name, dtype, bad, cpu_path, compiled_only):
    x, w, b, _, geo = problem(name, dtype)
    n0, c0, i0, j0 = 1 % x.shape[0], x.shape[1] - 1, 2, 3
    x[n0, c0, i0, j0] = bad
    y = fastnn.conv2d(x, w, b, **geo)
    assert_nonfinite_like(y, reference.conv2d(x, w, b, **geo), "conv2d")
    # independently: exactly the outputs whose receptive field holds the pixel
    reads, _ = taps_reading(name)
    per_group_out = w.shape[0] // geo["groups"]
    group = c0 // w.shape[1]
    expect = np.zeros(y.shape, bool)
    for (oh, ow, a, b_), pix in reads.items():
        if pix == (i0, j0):
            expect[n0, group * per_group_out:(group + 1) * per_group_out, oh, ow] = True
    assert expect.any()
    np.testing.assert_array_equal(~np.isfinite(y), expect)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(GEOMETRIES))
def test_conv2d_nonfinite_weight(name, dtype, bad, cpu_path, count_fallbacks):
    x, w, b, _, geo = problem(name, dtype)
    o0, a0, b0 = w.shape[0] - 1, w.shape[2] - 1, 0
    w[o0, 0, a0, b0] = bad
    y = fastnn.conv2d(x, w, b, **geo)
    assert_nonfinite_like(y, reference.conv2d(x, w, b, **geo), "conv2d")
    reads, _ = taps_reading(name)
    expect = np.zeros(y.shape, bool)
    for (oh, ow, a, b_) in reads:
        if (a, b_) == (a0, b0):
            expect[:, o0, oh, ow] = True
    np.testing.assert_array_equal(~np.isfinite(y), expect)
    if name != "valid":
        assert not expect.all(), "the geometry should make the bad tap read padding somewhere"
    # the compiled path unless the implicit GEMM would multiply padding by the bad weight
    fell_back = count_fallbacks.get("conv2d", 0) > 0
    assert fell_back == (not must_use_compiled(name, "weight")), count_fallbacks


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["padded", "depthwise_padded"])
def test_conv2d_nonfinite_bias(name, dtype, bad, compiled_only):
    x, w, b, _, geo = problem(name, dtype)
    b[1] = bad
    y = fastnn.conv2d(x, w, b, **geo)
    assert_nonfinite_like(y, reference.conv2d(x, w, b, **geo), "conv2d")
    expect = np.zeros(y.shape, bool)
    expect[:, 1] = True
    np.testing.assert_array_equal(~np.isfinite(y), expect)


# name: (x shape, weight shape, padding, dilation, groups): padding so wide that the corner
# outputs read only padding
PADDING_ONLY = {
    "implicit_gemm": ((1, 2, 4, 4), (3, 2, 3, 3), 3, 1, 1),
    "implicit_gemm_dilated": ((2, 4, 5, 3), (4, 2, 2, 3), (4, 5), (3, 2), 2),
    "direct": ((1, 2, 4, 4), (4, 1, 3, 3), 3, 1, 2),
}


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(PADDING_ONLY))
def test_output_seeing_only_padding_is_exactly_the_bias(name, dtype, with_bias, cpu_path):
    xs, ws, padding, dilation, groups = PADDING_ONLY[name]
    rng = np.random.default_rng(1)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype) if with_bias else None
    geo = dict(padding=padding, dilation=dilation, groups=groups)
    base = np.zeros(ws[0], dtype) if b is None else b
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    for label, w_used in [("finite weights", w), ("Inf weights", np.full_like(w, np.inf)),
                          ("NaN weights", np.full_like(w, np.nan))]:
        y = fastnn.conv2d(x, w_used, b, **geo)
        # output (0, 0) reads rows up to (kH-1)*dh - ph < 0: padding only; likewise the last
        last_h, last_w = y.shape[2] - 1, y.shape[3] - 1
        assert (ws[2] - 1) * dh - ph < 0 and (ws[3] - 1) * dw - pw < 0
        for oh, ow in [(0, 0), (last_h, last_w), (0, last_w), (last_h, 0)]:
            np.testing.assert_array_equal(y[:, :, oh, ow], np.broadcast_to(base, y.shape[:2]),
                                          err_msg=f"{label}: output ({oh}, {ow}) is not exactly the bias")
        assert_nonfinite_like(y, reference.conv2d(x, w_used, b, **geo), label)


# ---------------------------------------------------------------------------------------------
# conv2d backward
# ---------------------------------------------------------------------------------------------

def backward_both(dy, x, w, geo):
    got = fastnn.conv2d_backward(dy, x, w, **geo)
    want = reference.conv2d_backward(dy, x, w, **geo)
    for label, g, r in zip(("grad_input", "grad_weight", "grad_bias"), got, want):
        assert_nonfinite_like(g, r.astype(g.dtype), label)
    return got


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(GEOMETRIES))
def test_conv2d_backward_nonfinite_grad_output(name, dtype, bad, cpu_path, count_fallbacks):
    x, w, b, dy, geo = problem(name, dtype)
    reads, (h_out, w_out) = taps_reading(name)
    n0, o0, oh0, ow0 = 0, 0, h_out // 2, 0
    dy[n0, o0, oh0, ow0] = bad
    gi, gw, gb = backward_both(dy, x, w, geo)
    cin_g = w.shape[1]
    group = o0 // (w.shape[0] // geo["groups"])
    expect_gi = np.zeros(gi.shape, bool)
    expect_gw = np.zeros(gw.shape, bool)
    for (oh, ow, a, b_), (ih, iw) in reads.items():
        if (oh, ow) == (oh0, ow0):
            expect_gi[n0, group * cin_g:(group + 1) * cin_g, ih, iw] = True
            expect_gw[o0, :, a, b_] = True
    np.testing.assert_array_equal(~np.isfinite(gi), expect_gi, err_msg="grad_input mask")
    np.testing.assert_array_equal(~np.isfinite(gw), expect_gw, err_msg="grad_weight mask")
    np.testing.assert_array_equal(~np.isfinite(gb), np.arange(gb.size) == o0)
    fell_back = count_fallbacks.get("conv2d_backward", 0) > 0
    assert fell_back == (not must_use_compiled(name, "grad_output")), count_fallbacks


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(GEOMETRIES))
def test_conv2d_backward_nonfinite_input_pixel(name, dtype, bad, compiled_only):
    x, w, b, dy, geo = problem(name, dtype)
    n0, c0, i0, j0 = 0, x.shape[1] - 1, 1, 2
    x[n0, c0, i0, j0] = bad
    gi, gw, gb = backward_both(dy, x, w, geo)
    assert np.isfinite(gi).all() and np.isfinite(gb).all()  # neither depends on x
    reads, _ = taps_reading(name)
    cin_g = w.shape[1]
    per_group_out = w.shape[0] // geo["groups"]
    group = c0 // cin_g
    expect = np.zeros(gw.shape, bool)
    for (oh, ow, a, b_), pix in reads.items():
        if pix == (i0, j0):
            expect[group * per_group_out:(group + 1) * per_group_out, c0 - group * cin_g, a, b_] = True
    np.testing.assert_array_equal(~np.isfinite(gw), expect, err_msg="grad_weight mask")


@pytest.mark.parametrize("bad", [np.nan, -np.inf])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(GEOMETRIES))
def test_conv2d_backward_nonfinite_weight(name, dtype, bad, compiled_only):
    x, w, b, dy, geo = problem(name, dtype)
    o0, cc0, a0, b0 = 0, w.shape[1] - 1, 0, w.shape[3] - 1
    w[o0, cc0, a0, b0] = bad
    gi, gw, gb = backward_both(dy, x, w, geo)
    assert np.isfinite(gw).all() and np.isfinite(gb).all()  # neither depends on the weight
    reads, _ = taps_reading(name)
    group = o0 // (w.shape[0] // geo["groups"])
    expect = np.zeros(gi.shape, bool)
    for (oh, ow, a, b_), (ih, iw) in reads.items():
        if (a, b_) == (a0, b0):
            expect[:, group * w.shape[1] + cc0, ih, iw] = True
    np.testing.assert_array_equal(~np.isfinite(gi), expect, err_msg="grad_input mask")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(PADDING_ONLY))
def test_inf_grad_at_output_seeing_only_padding_reaches_only_bias(name, dtype, cpu_path):
    xs, ws, padding, dilation, groups = PADDING_ONLY[name]
    rng = np.random.default_rng(2)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    geo = dict(padding=padding, dilation=dilation, groups=groups)
    dy = rng.standard_normal(reference.conv2d(x, w, None, **geo).shape).astype(dtype)
    dy[0, 0, 0, 0] = np.inf  # output (0, 0) reads only padding
    gi, gw, gb = backward_both(dy, x, w, geo)
    assert np.isfinite(gi).all() and np.isfinite(gw).all()
    assert np.isinf(gb[0]) and np.isfinite(gb[1:]).all()
    # and equal to the gradients with that element zeroed
    dy0 = dy.copy()
    dy0[0, 0, 0, 0] = 0
    for got, want in zip((gi, gw), fastnn.conv2d_backward(dy0, x, w, **geo)[:2]):
        assert_nonfinite_like(got, want, "zeroed")


# ---------------------------------------------------------------------------------------------
# RNN
# ---------------------------------------------------------------------------------------------

T, N, I, H = 5, 3, 4, 6


def rnn_problem(dtype, seed=0, with_h0=True):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, N, I)).astype(dtype)
    h0 = rng.standard_normal((N, H)).astype(dtype) if with_h0 else None
    w_ih = (rng.standard_normal((H, I)) * 0.5).astype(dtype)
    w_hh = (rng.standard_normal((H, H)) * 0.5).astype(dtype)
    b_ih = rng.standard_normal(H).astype(dtype)
    b_hh = rng.standard_normal(H).astype(dtype)
    return dict(x=x, h0=h0, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh)


# what: (array, index) to corrupt
RNN_FORWARD_SPOTS = {
    "x": ("x", (2, 1, 3)),
    "h0": ("h0", (1, 4)),
    "w_ih": ("w_ih", (2, 1)),
    "w_hh": ("w_hh", (3, 0)),
    "b_ih": ("b_ih", (5,)),
    "b_hh": ("b_hh", (0,)),
}


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("spot", sorted(RNN_FORWARD_SPOTS))
def test_rnn_forward_nonfinite(spot, dtype, bad, nonlinearity, compiled_only):
    p = rnn_problem(dtype)
    array, index = RNN_FORWARD_SPOTS[spot]
    p[array][index] = bad
    args = (p["x"], p["h0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], nonlinearity)
    hs = fastnn.rnn_forward(*args)
    assert_nonfinite_like(hs, reference.rnn_forward(*args), f"hs ({spot} = {bad})")
    if np.isnan(bad) and spot in ("x", "h0"):
        # independently: that batch row from that step on, all of it after the first step
        t0 = index[0] if spot == "x" else 0
        b0 = index[1] if spot == "x" else index[0]
        expect = np.zeros(hs.shape, bool)
        expect[t0:, b0] = True
        np.testing.assert_array_equal(np.isnan(hs), expect)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_rnn_nonfinite_w_hh_or_grad_with_h0_none(bad, compiled_only):
    """h0=None means a zero state, and 0 * NaN (or 0 * Inf) is NaN: the oracle and PyTorch
    (checked with torch 2.13: torch.nn.RNN with hx=None, NaN in weight_hh_l0 gives NaN at step 0;
    a NaN grad at step 0 gives NaN rows in weight_hh_l0.grad) both multiply the zero state.
    The same holds with an explicit h0 of zeros, which fastnn already gets right."""
    for dtype in DTYPES:
        p = rnn_problem(dtype, with_h0=False)
        zeros = np.zeros((N, H), dtype)
        w_hh = p["w_hh"].copy()
        w_hh[3, 0] = bad
        for h0 in (zeros, None):
            args = (p["x"], h0, p["w_ih"], w_hh, p["b_ih"], p["b_hh"], "tanh")
            assert_nonfinite_like(fastnn.rnn_forward(*args), reference.rnn_forward(*args),
                                  f"hs, {dtype.__name__}, h0={'zeros' if h0 is not None else None}")
        hs = reference.rnn_forward(p["x"], None, p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], "tanh")
        grad_hs = np.random.default_rng(5).standard_normal(hs.shape).astype(dtype)
        grad_hs[0, 1, 2] = bad
        for h0 in (zeros, None):
            args = (grad_hs, p["x"], h0, hs, p["w_ih"], p["w_hh"], "tanh")
            got, want = fastnn.rnn_backward(*args), reference.rnn_backward(*args)
            assert_nonfinite_like(got[3], want[3], f"grad_w_hh, {dtype.__name__}, "
                                                    f"h0={'zeros' if h0 is not None else None}")


RNN_BACKWARD_SPOTS = {
    "grad_hs": ("grad_hs", (3, 2, 1)),
    "grad_hs_last": ("grad_hs", (T - 1, 0, 5)),
    "x": ("x", (1, 0, 2)),
    "h0": ("h0", (2, 3)),
    "w_ih": ("w_ih", (4, 3)),
    "w_hh": ("w_hh", (1, 5)),
}


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("spot", sorted(RNN_BACKWARD_SPOTS))
def test_rnn_backward_nonfinite(spot, dtype, bad, nonlinearity, compiled_only):
    p = rnn_problem(dtype)
    # hs from the clean forward, so only the backward sees the bad value
    hs = reference.rnn_forward(p["x"], p["h0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], nonlinearity)
    p["grad_hs"] = np.random.default_rng(5).standard_normal(hs.shape).astype(dtype)
    array, index = RNN_BACKWARD_SPOTS[spot]
    p[array][index] = bad
    args = (p["grad_hs"], p["x"], p["h0"], hs, p["w_ih"], p["w_hh"], nonlinearity)
    got = fastnn.rnn_backward(*args)
    want = reference.rnn_backward(*args)
    for label, g, r in zip(("grad_x", "grad_h0", "grad_w_ih", "grad_w_hh", "grad_b"), got, want):
        assert_nonfinite_like(g, r, f"{label} ({spot} = {bad}, {nonlinearity})")
    if spot == "grad_hs" and np.isnan(bad) and nonlinearity == "tanh":
        # independently: the bad step and every earlier one, in that batch row only
        t0, b0, _ = index
        expect = np.zeros(got[0].shape, bool)
        expect[: t0 + 1, b0] = True
        np.testing.assert_array_equal(np.isnan(got[0]), expect, err_msg="grad_x mask")
        np.testing.assert_array_equal(np.isnan(got[1]), np.arange(N)[:, None] == b0 + np.zeros((1, H), bool))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_relu_backward_drops_nonfinite_grad_at_dead_units(bad, compiled_only):
    """relu'(pre) is 0 where the output is 0, and PyTorch applies it as a select, not a
    product: torch.relu(x).backward(nan) gives x.grad == 0 where x < 0 (checked with torch
    2.13), so a NaN/Inf gradient stops at dead units; kernel and oracle must both do so
    (a product, NaN * 0 = NaN, would let it through)."""
    dtype = np.float64
    p = rnn_problem(dtype)
    hs = reference.rnn_forward(p["x"], p["h0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], "relu")
    # the first step, so the bad gradient has no earlier step to spread to through w_hh
    t0 = 0
    b0 = next(b for b in range(N) if 0 < (hs[t0, b] == 0).sum() < H)
    dead = hs[t0, b0] == 0
    grad_hs = np.zeros(hs.shape, dtype)
    grad_hs[t0, b0] = bad
    args = (grad_hs, p["x"], p["h0"], hs, p["w_ih"], p["w_hh"], "relu")
    grad_x, grad_h0, grad_w_ih, grad_w_hh, grad_b = fastnn.rnn_backward(*args)
    # independently: only the live units' rows of grad_w_ih / grad_b carry the bad value
    np.testing.assert_array_equal(~np.isfinite(grad_b), ~dead)
    np.testing.assert_array_equal(~np.isfinite(grad_w_ih).any(axis=1), ~dead)
    np.testing.assert_array_equal(grad_w_ih[dead], 0)
    # and the oracle must agree with that
    want = reference.rnn_backward(*args)
    for label, g, r in zip(("grad_x", "grad_h0", "grad_w_ih", "grad_w_hh", "grad_b"),
                           (grad_x, grad_h0, grad_w_ih, grad_w_hh, grad_b), want):
        assert_nonfinite_like(g, r, f"{label}: kernel vs oracle at relu's dead units")
