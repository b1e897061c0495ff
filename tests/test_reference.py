"""Tests of fastnn.reference, the pure-NumPy oracle.

Three independent checks, none of which needs PyTorch:

* backward passes against float64 central finite differences of a random
  linear loss ``sum(g * f(...))``;
* forward passes against naive definitions (direct sums, repeated steps);
* everything against fixtures recorded from PyTorch (tests/fixtures/*.npz,
  written by tests/fixtures/make_fixtures.py).
"""

import numpy as np
import pytest

from fastnn import reference

from oracle_helpers import load_cases, numerical_grad


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def naive_conv2d(x, weight, bias, stride, padding, dilation, groups):
    """conv2d as a direct sum over every output pixel (int or pair padding only)."""
    sh, sw = (stride, stride) if np.ndim(stride) == 0 else stride
    ph, pw = (padding, padding) if np.ndim(padding) == 0 else padding
    dh, dw = (dilation, dilation) if np.ndim(dilation) == 0 else dilation
    n, c_in, h, w = x.shape
    c_out, cg, kh, kw = weight.shape
    og = c_out // groups
    out_h = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    out_w = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((n, c_out, out_h, out_w))
    for b in range(n):
        for o in range(c_out):
            g = o // og
            for oy in range(out_h):
                for ox in range(out_w):
                    total = 0.0 if bias is None else bias[o]
                    for c in range(cg):
                        for i in range(kh):
                            for j in range(kw):
                                iy = oy * sh + i * dh - ph
                                ix = ox * sw + j * dw - pw
                                if 0 <= iy < h and 0 <= ix < w:
                                    total += weight[o, c, i, j] * x[b, g * cg + c, iy, ix]
                    y[b, o, oy, ox] = total
    return y


# ---------------------------------------------------------------------------
# conv2d: finite differences
# ---------------------------------------------------------------------------

# (N, C_in, H, W), (C_out, kH, kW), keyword arguments
CONV_FD_CASES = {
    "basic": ((2, 3, 5, 6), (4, 3, 3), dict()),
    "stride2_pad1": ((2, 2, 7, 6), (3, 3, 3), dict(stride=2, padding=1)),
    "nonsquare": ((1, 3, 7, 8), (2, 2, 3), dict(stride=(2, 1), padding=(1, 0))),
    "nonsquare_stride": ((2, 2, 8, 9), (2, 3, 2), dict(stride=(1, 3), padding=(0, 2))),
    "same_even": ((2, 2, 5, 6), (3, 2, 4), dict(padding="same")),
    "same_dilated": ((1, 2, 7, 6), (2, 3, 2), dict(padding="same", dilation=2)),
    "valid": ((2, 3, 6, 5), (2, 1, 3), dict(padding="valid")),
    "dilation2": ((2, 2, 9, 8), (2, 3, 3), dict(dilation=2, padding=2)),
    "groups2": ((2, 4, 6, 5), (6, 3, 3), dict(groups=2, padding=1)),
    "depthwise": ((2, 3, 6, 7), (3, 3, 3), dict(groups=3, stride=2, padding=1)),
    "depthwise_multiplier": ((1, 2, 6, 6), (4, 2, 3), dict(groups=2, padding=(1, 0))),
    "odd_sizes": ((1, 3, 7, 5), (2, 3, 1), dict(stride=3, dilation=(2, 1), padding=(1, 2))),
}


@pytest.mark.parametrize("name", sorted(CONV_FD_CASES))
def test_conv2d_backward_matches_finite_differences(name):
    x_shape, (c_out, kh, kw), kwargs = CONV_FD_CASES[name]
    rng = np.random.default_rng(list(CONV_FD_CASES).index(name))
    groups = kwargs.get("groups", 1)
    x = rng.standard_normal(x_shape)
    weight = rng.standard_normal((c_out, x_shape[1] // groups, kh, kw))
    bias = rng.standard_normal(c_out)
    g = rng.standard_normal(reference.conv2d(x, weight, bias, **kwargs).shape)

    def loss(x, weight, bias):
        return np.sum(g * reference.conv2d(x, weight, bias, **kwargs))

    grad_input, grad_weight, grad_bias = reference.conv2d_backward(g, x, weight, **kwargs)
    # The loss is linear in each argument, so central differences are exact
    # for any step: a large one keeps the rounding error small.
    for index, analytic in enumerate((grad_input, grad_weight, grad_bias)):
        numeric = numerical_grad(loss, [x, weight, bias], index, eps=0.5)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-10, atol=1e-11)


# ---------------------------------------------------------------------------
# conv2d: forward semantics
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["basic", "stride2_pad1", "nonsquare", "nonsquare_stride",
                                  "dilation2", "groups2", "depthwise_multiplier"])
def test_conv2d_matches_direct_sum(name):
    x_shape, (c_out, kh, kw), kwargs = CONV_FD_CASES[name]
    rng = np.random.default_rng(7)
    groups = kwargs.get("groups", 1)
    x = rng.standard_normal(x_shape)
    weight = rng.standard_normal((c_out, x_shape[1] // groups, kh, kw))
    bias = rng.standard_normal(c_out)
    expected = naive_conv2d(x, weight, bias, kwargs.get("stride", 1), kwargs.get("padding", 0),
                            kwargs.get("dilation", 1), groups)
    np.testing.assert_allclose(reference.conv2d(x, weight, bias, **kwargs), expected,
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel", [(1, 1), (3, 3), (2, 2), (4, 3), (2, 5)])
@pytest.mark.parametrize("dilation", [1, 2, (1, 3)])
def test_conv2d_same_keeps_spatial_shape(kernel, dilation):
    x = np.ones((2, 3, 7, 6))
    weight = np.ones((4, 3) + kernel)
    y = reference.conv2d(x, weight, padding="same", dilation=dilation)
    assert y.shape == (2, 4, 7, 6)


def test_conv2d_same_even_kernel_pads_extra_after():
    # A 2x2 kernel pads 0 rows/cols before and 1 after (bottom/right), like torch.
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    weight = np.zeros((1, 1, 2, 2))
    weight[0, 0, 0, 0] = 1.0  # picks the top-left of each window: x itself
    np.testing.assert_array_equal(reference.conv2d(x, weight, padding="same"), x)
    weight = np.zeros((1, 1, 2, 2))
    weight[0, 0, 1, 1] = 1.0  # picks x shifted up-left, zeros entering bottom/right
    expected = np.zeros_like(x)
    expected[0, 0, :2, :2] = x[0, 0, 1:, 1:]
    np.testing.assert_array_equal(reference.conv2d(x, weight, padding="same"), expected)


def test_conv2d_padding_forms_agree():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 2, 5, 5))
    weight = rng.standard_normal((2, 2, 3, 3))
    y = reference.conv2d(x, weight, padding=1)
    np.testing.assert_array_equal(reference.conv2d(x, weight, padding=(1, 1)), y)
    np.testing.assert_array_equal(reference.conv2d(x, weight, padding="same"), y)
    np.testing.assert_array_equal(reference.conv2d(x, weight, padding="valid"),
                                  reference.conv2d(x, weight, padding=0))


def test_conv2d_padding_is_absent_not_zero_times_weight():
    # An inf weight whose tap lands on padding leaves that output finite: the
    # padded term is skipped, not computed as inf * 0 = nan.
    x = np.ones((1, 1, 3, 3))
    weight = np.ones((1, 1, 3, 3))
    weight[0, 0, 0, 0] = np.inf  # reads x[oy - 1, ox - 1]: padding on row 0 and column 0
    inf = np.inf
    expected = np.array([[4, 6, 4], [6, inf, inf], [4, inf, inf]])
    np.testing.assert_array_equal(reference.conv2d(x, weight, padding=1)[0, 0], expected)
    # Likewise an inf in grad_output reaches only the taps that read real pixels.
    g = np.zeros((1, 1, 3, 3))
    g[0, 0, 0, 0] = np.inf
    grad_input, grad_weight, _ = reference.conv2d_backward(g, x, np.ones((1, 1, 3, 3)), padding=1)
    expected = np.array([[0, 0, 0], [0, inf, inf], [0, inf, inf]])
    np.testing.assert_array_equal(grad_weight[0, 0], expected)
    np.testing.assert_array_equal(grad_input[0, 0], [[inf, inf, 0], [inf, inf, 0], [0, 0, 0]])


@pytest.mark.parametrize("name", ["stride2_pad1", "nonsquare", "dilation2", "groups2",
                                  "depthwise_multiplier"])
def test_conv2d_nonfinite_values_match_direct_sum(name):
    x_shape, (c_out, kh, kw), kwargs = CONV_FD_CASES[name]
    rng = np.random.default_rng(8)
    groups = kwargs.get("groups", 1)
    x = rng.standard_normal(x_shape)
    weight = rng.standard_normal((c_out, x_shape[1] // groups, kh, kw))
    x[0, 0, 1, 2] = np.nan
    weight[0, 0, 0, 0] = np.inf
    weight[-1, -1, -1, -1] = -np.inf
    weight[c_out // 2, 0, kh // 2, 0] = np.nan
    expected = naive_conv2d(x, weight, None, kwargs.get("stride", 1), kwargs.get("padding", 0),
                            kwargs.get("dilation", 1), groups)
    with np.errstate(invalid="ignore"):
        y = reference.conv2d(x, weight, **kwargs)
    # same nan and inf positions, finite values close
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


def test_conv2d_nan_input_propagates_only_to_its_windows():
    x = np.ones((1, 1, 5, 5))
    x[0, 0, 0, 0] = np.nan
    y = reference.conv2d(x, np.ones((1, 1, 3, 3)), padding=1)[0, 0]
    assert np.isnan(y[:2, :2]).all()
    assert np.isfinite(y).sum() == 25 - 4


def test_conv2d_out_argument():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 5, 5))
    weight = rng.standard_normal((4, 3, 3, 3))
    bias = rng.standard_normal(4)
    out = np.full((2, 4, 3, 3), np.nan)
    result = reference.conv2d(x, weight, bias, out=out)
    assert result is out
    np.testing.assert_array_equal(out, reference.conv2d(x, weight, bias))
    with pytest.raises(ValueError):
        reference.conv2d(x, weight, out=np.empty((2, 4, 5, 5)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_keeps_dtype(dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 6, 6)).astype(dtype)
    weight = rng.standard_normal((6, 2, 3, 3)).astype(dtype)
    bias = rng.standard_normal(6).astype(dtype)
    y = reference.conv2d(x, weight, bias, padding=1, groups=2)
    assert y.dtype == dtype
    grads = reference.conv2d_backward(np.ones_like(y), x, weight, padding=1, groups=2)
    assert all(g.dtype == dtype for g in grads)
    # float32 results agree with the float64 oracle
    y64 = reference.conv2d(x.astype(np.float64), weight.astype(np.float64),
                           bias.astype(np.float64), padding=1, groups=2)
    np.testing.assert_allclose(y, y64, rtol=1e-4, atol=1e-4)


def test_conv2d_accepts_array_likes_and_does_not_modify_inputs():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 2, 4, 4))
    weight = rng.standard_normal((3, 2, 2, 2))
    bias = rng.standard_normal(3)
    g = rng.standard_normal((1, 3, 5, 5))
    copies = [a.copy() for a in (x, weight, bias, g)]
    y = reference.conv2d(x.tolist(), weight.tolist(), bias.tolist(), padding=1)
    np.testing.assert_array_equal(y, reference.conv2d(x, weight, bias, padding=1))
    reference.conv2d_backward(g, x, weight, padding=1)
    for original, copy in zip((x, weight, bias, g), copies):
        np.testing.assert_array_equal(original, copy)


def test_conv2d_backward_only_requested_gradients():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 2, 5, 5))
    weight = rng.standard_normal((3, 2, 3, 3))
    g = rng.standard_normal((2, 3, 3, 3))
    full = reference.conv2d_backward(g, x, weight)
    for mask in [(True, False, False), (False, True, False), (False, False, True),
                 (False, False, False)]:
        grads = reference.conv2d_backward(g, x, weight, needs_input_grad=mask[0],
                                          needs_weight_grad=mask[1], needs_bias_grad=mask[2])
        for wanted, got, expected in zip(mask, grads, full):
            if wanted:
                np.testing.assert_array_equal(got, expected)
            else:
                assert got is None
    np.testing.assert_array_equal(full[2], g.sum(axis=(0, 2, 3)))


@pytest.mark.parametrize("n, c_in, c_out", [(0, 3, 4), (2, 0, 4), (2, 3, 0), (0, 0, 0)])
def test_conv2d_empty_sizes(n, c_in, c_out):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((n, c_in, 5, 4))
    weight = rng.standard_normal((c_out, c_in, 3, 2))
    bias = rng.standard_normal(c_out)
    y = reference.conv2d(x, weight, bias, padding=1)
    assert y.shape == (n, c_out, 5, 5)
    if c_in == 0:  # no input channels: the output is the bias broadcast, or zeros
        np.testing.assert_array_equal(y, np.broadcast_to(bias.reshape(1, -1, 1, 1), y.shape))
        np.testing.assert_array_equal(reference.conv2d(x, weight, padding=1), 0)
    assert reference.conv2d(x, weight, padding=1).shape == y.shape
    g = rng.standard_normal(y.shape)
    grad_input, grad_weight, grad_bias = reference.conv2d_backward(g, x, weight, padding=1)
    assert grad_input.shape == x.shape
    assert grad_weight.shape == weight.shape
    assert grad_bias.shape == (c_out,)
    if n == 0:
        np.testing.assert_array_equal(grad_weight, 0)
        np.testing.assert_array_equal(grad_bias, 0)
    if c_out == 0:
        np.testing.assert_array_equal(grad_input, 0)


def test_conv2d_bad_arguments():
    x = np.ones((1, 1, 5, 5))
    weight = np.ones((1, 1, 3, 3))
    with pytest.raises(ValueError):
        reference.conv2d(x, weight, padding="same", stride=2)
    with pytest.raises(ValueError):
        reference.conv2d(x, weight, padding="full")
    with pytest.raises(ValueError):
        reference.conv2d(x, np.ones((1, 1, 6, 3)))  # kernel taller than the input


# ---------------------------------------------------------------------------
# RNN: finite differences
# ---------------------------------------------------------------------------

def make_rnn(rng, t_len=None, n=2, n_in=3, hidden=4):
    """Random RNN arrays; x is (N, I) when t_len is None, else (T, N, I)."""
    x_shape = (n, n_in) if t_len is None else (t_len, n, n_in)
    return dict(
        x=rng.standard_normal(x_shape),
        h=rng.standard_normal((n, hidden)),
        w_ih=rng.standard_normal((hidden, n_in)) * 0.6,
        w_hh=rng.standard_normal((hidden, hidden)) * 0.6,
        b_ih=rng.standard_normal(hidden) * 0.3,
        b_hh=rng.standard_normal(hidden) * 0.3,
    )


def pre_activations(x, h0, w_ih, w_hh, b_ih, b_hh, hs):
    """The pre-activations of every step of an RNN run, shape (T, N, H)."""
    h_prev = np.concatenate([h0[None], hs[:-1]])
    return x @ w_ih.T + b_ih + h_prev @ w_hh.T + b_hh


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_step_backward_matches_finite_differences(nonlinearity):
    rng = np.random.default_rng(11)
    a = make_rnn(rng)
    args = [a["x"], a["h"], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"]]
    h_next = reference.rnn_step(*args, nonlinearity=nonlinearity)
    if nonlinearity == "relu":  # stay clear of the kink at 0
        pre = pre_activations(a["x"][None], a["h"], a["w_ih"], a["w_hh"], a["b_ih"],
                              a["b_hh"], h_next[None])
        assert np.abs(pre).min() > 1e-3
    g = rng.standard_normal(h_next.shape)

    def loss(*args):
        return np.sum(g * reference.rnn_step(*args, nonlinearity=nonlinearity))

    grads = reference.rnn_step_backward(g, a["x"], a["h"], h_next, a["w_ih"], a["w_hh"],
                                        nonlinearity)
    # grad_b is the gradient of b_ih and of b_hh alike
    for index, analytic in zip(range(6), grads + grads[-1:]):
        numeric = numerical_grad(loss, args, index)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("t_len", [1, 2, 3, 4])
@pytest.mark.parametrize("with_h0", [True, False])
def test_rnn_backward_matches_finite_differences(nonlinearity, t_len, with_h0):
    rng = np.random.default_rng(100 + t_len)
    a = make_rnn(rng, t_len)
    h0 = a["h"] if with_h0 else np.zeros_like(a["h"])
    args = [a["x"], h0, a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"]]
    hs = reference.rnn_forward(a["x"], h0 if with_h0 else None, *args[2:],
                               nonlinearity=nonlinearity)
    if nonlinearity == "relu":  # stay clear of the kink at 0
        assert np.abs(pre_activations(*args, hs)).min() > 1e-3
    g = rng.standard_normal(hs.shape)

    def loss(*args):
        return np.sum(g * reference.rnn_forward(*args, nonlinearity=nonlinearity))

    grads = reference.rnn_backward(g, a["x"], h0 if with_h0 else None, hs, a["w_ih"], a["w_hh"],
                                   nonlinearity)
    # h0=None is the same function as h0=zeros, so finite differences at zeros
    # check grad_h0 in both cases.
    for index, analytic in zip(range(6), grads + grads[-1:]):
        numeric = numerical_grad(loss, args, index)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------------------
# RNN: forward semantics and edge cases
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("bias", [True, False])
def test_rnn_forward_is_repeated_rnn_step(nonlinearity, bias):
    rng = np.random.default_rng(21)
    a = make_rnn(rng, t_len=5)
    b_ih, b_hh = (a["b_ih"], a["b_hh"]) if bias else (None, None)
    hs = reference.rnn_forward(a["x"], a["h"], a["w_ih"], a["w_hh"], b_ih, b_hh, nonlinearity)
    h = a["h"]
    for t in range(5):
        h = reference.rnn_step(a["x"][t], h, a["w_ih"], a["w_hh"], b_ih, b_hh, nonlinearity)
        np.testing.assert_array_equal(hs[t], h)
    # h0=None means zeros
    np.testing.assert_array_equal(
        reference.rnn_forward(a["x"], None, a["w_ih"], a["w_hh"], b_ih, b_hh, nonlinearity),
        reference.rnn_forward(a["x"], np.zeros_like(a["h"]), a["w_ih"], a["w_hh"], b_ih, b_hh,
                              nonlinearity))


def test_rnn_step_formula():
    rng = np.random.default_rng(22)
    a = make_rnn(rng)
    pre = a["x"] @ a["w_ih"].T + a["b_ih"] + a["h"] @ a["w_hh"].T + a["b_hh"]
    args = (a["x"], a["h"], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"])
    np.testing.assert_allclose(reference.rnn_step(*args), np.tanh(pre), rtol=1e-14)
    np.testing.assert_allclose(reference.rnn_step(*args, nonlinearity="relu"),
                               np.maximum(pre, 0), rtol=1e-14)
    with pytest.raises(ValueError):
        reference.rnn_step(*args, nonlinearity="sigmoid")


def test_rnn_backward_single_step_is_rnn_step_backward():
    rng = np.random.default_rng(23)
    a = make_rnn(rng, t_len=1)
    hs = reference.rnn_forward(a["x"], a["h"], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"])
    g = rng.standard_normal(hs.shape)
    seq = reference.rnn_backward(g, a["x"], a["h"], hs, a["w_ih"], a["w_hh"])
    step = reference.rnn_step_backward(g[0], a["x"][0], a["h"], hs[0], a["w_ih"], a["w_hh"])
    np.testing.assert_allclose(seq[0][0], step[0], rtol=1e-14)
    for got, expected in zip(seq[1:], step[1:]):
        np.testing.assert_allclose(got, expected, rtol=1e-14)


def test_rnn_relu_gradient_is_zero_where_output_is_zero():
    x = np.array([[1.0], [-1.0]])
    h = np.zeros((2, 1))
    w_ih, w_hh = np.ones((1, 1)), np.ones((1, 1))
    h_next = reference.rnn_step(x, h, w_ih, w_hh, nonlinearity="relu")
    grad_x = reference.rnn_step_backward(np.ones((2, 1)), x, h, h_next, w_ih, w_hh, "relu")[0]
    np.testing.assert_array_equal(grad_x, [[1.0], [0.0]])


def test_rnn_forward_out_argument():
    rng = np.random.default_rng(24)
    a = make_rnn(rng, t_len=3)
    out = np.full((3, 2, 4), np.nan)
    result = reference.rnn_forward(a["x"], a["h"], a["w_ih"], a["w_hh"], out=out)
    assert result is out
    np.testing.assert_array_equal(out, reference.rnn_forward(a["x"], a["h"], a["w_ih"], a["w_hh"]))


@pytest.mark.parametrize("with_h0", [True, False])
def test_rnn_zero_length_sequence(with_h0):
    rng = np.random.default_rng(25)
    a = make_rnn(rng, t_len=0)
    h0 = a["h"] if with_h0 else None
    hs = reference.rnn_forward(a["x"], h0, a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"])
    assert hs.shape == (0, 2, 4)
    grad_x, grad_h0, grad_w_ih, grad_w_hh, grad_b = reference.rnn_backward(
        np.zeros((0, 2, 4)), a["x"], h0, hs, a["w_ih"], a["w_hh"])
    assert grad_x.shape == (0, 2, 3)
    np.testing.assert_array_equal(grad_h0, np.zeros((2, 4)))
    np.testing.assert_array_equal(grad_w_ih, np.zeros((4, 3)))
    np.testing.assert_array_equal(grad_w_hh, np.zeros((4, 4)))
    np.testing.assert_array_equal(grad_b, np.zeros(4))


def test_rnn_empty_batch():
    rng = np.random.default_rng(26)
    a = make_rnn(rng, t_len=3, n=0)
    hs = reference.rnn_forward(a["x"], None, a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"])
    assert hs.shape == (3, 0, 4)
    grads = reference.rnn_backward(np.zeros_like(hs), a["x"], None, hs, a["w_ih"], a["w_hh"])
    assert [gr.shape for gr in grads] == [(3, 0, 3), (0, 4), (4, 3), (4, 4), (4,)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rnn_keeps_dtype_and_inputs(dtype):
    rng = np.random.default_rng(27)
    a = {k: v.astype(dtype) for k, v in make_rnn(rng, t_len=3).items()}
    copies = {k: v.copy() for k, v in a.items()}
    hs = reference.rnn_forward(a["x"], a["h"], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"])
    assert hs.dtype == dtype
    grads = reference.rnn_backward(np.ones_like(hs), a["x"], a["h"], hs, a["w_ih"], a["w_hh"])
    assert all(g.dtype == dtype for g in grads)
    step = reference.rnn_step_backward(np.ones_like(hs[0]), a["x"][0], a["h"], hs[0],
                                       a["w_ih"], a["w_hh"])
    assert all(g.dtype == dtype for g in step)
    for k in a:
        np.testing.assert_array_equal(a[k], copies[k])


def test_rnn_accepts_array_likes():
    rng = np.random.default_rng(28)
    a = make_rnn(rng, t_len=2)
    expected = reference.rnn_forward(a["x"], a["h"], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"])
    got = reference.rnn_forward(*(a[k].tolist() for k in ("x", "h", "w_ih", "w_hh", "b_ih", "b_hh")))
    np.testing.assert_array_equal(got, expected)


# ---------------------------------------------------------------------------
# PyTorch fixtures
# ---------------------------------------------------------------------------

CONV_FIXTURES = load_cases("conv2d.npz")
RNN_FIXTURES = load_cases("rnn.npz")
FIXTURE_TOL = dict(rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CONV_FIXTURES))
def test_conv2d_matches_torch_fixture(name):
    case = CONV_FIXTURES[name]
    kwargs = case["config"]
    y = reference.conv2d(case["x"], case["weight"], case.get("bias"), **kwargs)
    np.testing.assert_allclose(y, case["y"], **FIXTURE_TOL)
    grads = reference.conv2d_backward(case["grad_output"], case["x"], case["weight"], **kwargs)
    for got, field in zip(grads, ("grad_input", "grad_weight", "grad_bias")):
        np.testing.assert_allclose(got, case[field], **FIXTURE_TOL)


@pytest.mark.parametrize("name", sorted(RNN_FIXTURES))
def test_rnn_matches_torch_fixture(name):
    case = RNN_FIXTURES[name]
    nonlinearity = case["config"]["nonlinearity"]
    h0 = case.get("h0")  # absent: torch started from zeros
    hs = reference.rnn_forward(case["x"], h0, case["w_ih"], case["w_hh"], case.get("b_ih"),
                               case.get("b_hh"), nonlinearity)
    np.testing.assert_allclose(hs, case["hs"], **FIXTURE_TOL)
    grad_x, grad_h0, grad_w_ih, grad_w_hh, grad_b = reference.rnn_backward(
        case["grad_hs"], case["x"], h0, hs, case["w_ih"], case["w_hh"], nonlinearity)
    np.testing.assert_allclose(grad_x, case["grad_x"], **FIXTURE_TOL)
    np.testing.assert_allclose(grad_h0, case["grad_h0"], **FIXTURE_TOL)
    np.testing.assert_allclose(grad_w_ih, case["grad_w_ih"], **FIXTURE_TOL)
    np.testing.assert_allclose(grad_w_hh, case["grad_w_hh"], **FIXTURE_TOL)
    if "grad_b" in case:  # torch has no bias gradient to record for bias=False
        np.testing.assert_allclose(grad_b, case["grad_b"], **FIXTURE_TOL)
