"""Live comparisons of fastnn.reference against PyTorch (skipped without torch).

The recorded fixtures (tests/fixtures) cover the same ground without torch;
these tests draw fresh random cases and also pin down torch's NaN/Inf
behaviour, which the reference matches.
"""

import warnings

import numpy as np
import pytest

from fastnn import reference

torch = pytest.importorskip("torch")
F = torch.nn.functional

TOL64 = dict(rtol=1e-10, atol=1e-12)


def random_conv_case(rng):
    """A random conv2d configuration: (x shape, weight shape, keyword arguments)."""
    groups = int(rng.choice([1, 1, 2, 3]))
    c_in = groups * int(rng.integers(1, 3))
    c_out = groups * int(rng.integers(1, 3))
    kh, kw = (int(k) for k in rng.integers(1, 5, size=2))
    dilation = tuple(int(d) for d in rng.integers(1, 3, size=2))
    if rng.random() < 0.3:
        stride, padding = 1, str(rng.choice(["same", "valid"]))
    else:
        stride = tuple(int(s) for s in rng.integers(1, 4, size=2))
        padding = tuple(int(p) for p in rng.integers(0, 3, size=2))
    h = dilation[0] * (kh - 1) + 1 + int(rng.integers(0, 6))
    w = dilation[1] * (kw - 1) + 1 + int(rng.integers(0, 6))
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    return (int(rng.integers(1, 4)), c_in, h, w), (c_out, c_in // groups, kh, kw), kwargs


def torch_conv2d_with_grads(x, weight, bias, grad_output_fn, **kwargs):
    """torch's conv2d output and, through autograd, its three gradients."""
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(weight, requires_grad=True)
    bt = torch.tensor(bias, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # 'same' with an even kernel
        y = F.conv2d(xt, wt, bt, **kwargs)
    g = grad_output_fn(tuple(y.shape))
    y.backward(torch.tensor(g))
    return y.detach().numpy(), g, (xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy())


@pytest.mark.parametrize("seed", range(12))
def test_conv2d_random_cases_match_torch(seed):
    rng = np.random.default_rng(1000 + seed)
    x_shape, w_shape, kwargs = random_conv_case(rng)
    x = rng.standard_normal(x_shape)
    weight = rng.standard_normal(w_shape)
    bias = rng.standard_normal(w_shape[0])
    y_t, g, grads_t = torch_conv2d_with_grads(x, weight, bias, rng.standard_normal, **kwargs)
    np.testing.assert_allclose(reference.conv2d(x, weight, bias, **kwargs), y_t, **TOL64)
    for got, expected in zip(reference.conv2d_backward(g, x, weight, **kwargs), grads_t):
        np.testing.assert_allclose(got, expected, **TOL64)


def test_conv2d_backward_matches_aten_convolution_backward():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 4, 9, 7))
    weight = rng.standard_normal((6, 2, 3, 2))
    kwargs = dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
    y = reference.conv2d(x, weight, **kwargs)
    g = rng.standard_normal(y.shape)
    for mask in ([True, True, True], [True, False, False], [False, True, True]):
        expected = torch.ops.aten.convolution_backward(
            torch.tensor(g), torch.tensor(x), torch.tensor(weight), [weight.shape[0]],
            list(kwargs["stride"]), list(kwargs["padding"]), list(kwargs["dilation"]),
            False, [0, 0], kwargs["groups"], mask)
        got = reference.conv2d_backward(g, x, weight, **kwargs, needs_input_grad=mask[0],
                                        needs_weight_grad=mask[1], needs_bias_grad=mask[2])
        for wanted, a, b in zip(mask, got, expected):
            if wanted:
                np.testing.assert_allclose(a, b.numpy(), **TOL64)
            else:
                assert a is None


@pytest.mark.parametrize("kernel, dilation", [((2, 2), 1), ((4, 3), 1), ((2, 3), (3, 2)),
                                              ((3, 4), 2)])
def test_conv2d_same_padding_matches_torch(kernel, dilation):
    # torch puts the odd extra row/column of 'same' padding at the bottom/right
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 3, 7, 6))
    weight = rng.standard_normal((2, 3) + kernel)
    bias = rng.standard_normal(2)
    y_t, g, grads_t = torch_conv2d_with_grads(x, weight, bias, rng.standard_normal,
                                              padding="same", dilation=dilation)
    y = reference.conv2d(x, weight, bias, padding="same", dilation=dilation)
    assert y.shape == (2, 2, 7, 6)
    np.testing.assert_allclose(y, y_t, **TOL64)
    grads = reference.conv2d_backward(g, x, weight, padding="same", dilation=dilation)
    for got, expected in zip(grads, grads_t):
        np.testing.assert_allclose(got, expected, **TOL64)


def nonfinite_conv_case(dtype):
    """A padded, strided convolution with nan/inf in x, weight and grad_output."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 2, 6, 5)).astype(dtype)
    weight = rng.standard_normal((3, 2, 3, 3)).astype(dtype)
    bias = rng.standard_normal(3).astype(dtype)
    x[0, 1, 2, 3] = np.nan
    weight[1, 0, 0, 0] = np.inf
    weight[2, 1, 2, 1] = -np.inf

    def grad_output(shape):
        g = rng.standard_normal(shape).astype(dtype)
        g[1, 0, 0, 0] = np.inf
        return g

    kwargs = dict(stride=(1, 2), padding=1)
    y_t, g, grads_t = torch_conv2d_with_grads(x, weight, bias, grad_output, **kwargs)
    with np.errstate(invalid="ignore"):
        y = reference.conv2d(x, weight, bias, **kwargs)
        grads = reference.conv2d_backward(g, x, weight, **kwargs)
    return x, weight, kwargs, (y,) + grads, (y_t,) + grads_t


def test_conv2d_nonfinite_values_match_torch_onednn():
    # torch's oneDNN backend (most float32 convolutions) treats padding as
    # absent, as the reference does: the nan and inf patterns agree exactly.
    x, weight, kwargs, ours, theirs = nonfinite_conv_case(np.float32)
    select = getattr(torch._C, "_select_conv_backend", None)
    if select is None or torch.backends.mkldnn.is_available() is False:
        pytest.skip("cannot tell which convolution backend torch uses")
    backend = select(torch.tensor(x), torch.tensor(weight), None, list(kwargs["stride"]),
                     [kwargs["padding"]] * 2, [1, 1], False, [0, 0], 1, None)
    if "Mkldnn" not in str(backend):
        pytest.skip(f"torch picks {backend} here, not oneDNN")
    for got, expected in zip(ours, theirs):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_conv2d_nonfinite_values_vs_torch_float64():
    # torch's im2col backend (all float64 convolutions) computes padding as
    # zeros times the weight, so it has extra nans (inf * 0) where a non-finite
    # weight or grad_output meets padding; everywhere else it agrees.
    _, _, _, ours, theirs = nonfinite_conv_case(np.float64)
    for got, expected in zip(ours, theirs):
        extra = np.isnan(expected) & ~np.isnan(got)
        np.testing.assert_allclose(got[~extra], expected[~extra], **TOL64)
    assert np.isnan(theirs[0]).sum() > np.isnan(ours[0]).sum()  # y
    assert np.isnan(theirs[2]).sum() > np.isnan(ours[2]).sum()  # grad_weight


def test_conv2d_float32_matches_torch():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((2, 16, 10, 10)).astype(np.float32)
    weight = rng.standard_normal((8, 16, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(8).astype(np.float32)
    y = reference.conv2d(x, weight, bias, padding=1)
    assert y.dtype == np.float32
    y_t = F.conv2d(torch.tensor(x), torch.tensor(weight), torch.tensor(bias), padding=1).numpy()
    # float32 sums of 144 terms: tolerance scaled by the reduction length
    np.testing.assert_allclose(y, y_t, rtol=1e-5, atol=1e-4)


def test_conv2d_zero_input_channels_is_bias_unlike_torch():
    # torch.nn.functional.conv2d returns an empty (N, 0, ...) tensor when C_in = 0;
    # fastnn returns the mathematically expected (N, C_out, ...) bias broadcast.
    x = np.zeros((2, 0, 5, 5))
    weight = np.zeros((3, 0, 3, 3))
    bias = np.array([1.0, 2.0, 3.0])
    y_t = F.conv2d(torch.tensor(x), torch.tensor(weight), torch.tensor(bias), padding=1)
    y = reference.conv2d(x, weight, bias, padding=1)
    assert y.shape == (2, 3, 5, 5)
    if tuple(y_t.shape) == y.shape:  # should torch ever change, it must agree
        np.testing.assert_array_equal(y, y_t.numpy())


def torch_rnn(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity):
    """A one-layer torch.nn.RNN with the given weights, and its gradients of sum(g * hs)."""
    hidden, n_in = w_ih.shape
    rnn = torch.nn.RNN(n_in, hidden, nonlinearity=nonlinearity, bias=b_ih is not None,
                       dtype=torch.float64)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.tensor(w_ih))
        rnn.weight_hh_l0.copy_(torch.tensor(w_hh))
        if b_ih is not None:
            rnn.bias_ih_l0.copy_(torch.tensor(b_ih))
            rnn.bias_hh_l0.copy_(torch.tensor(b_hh))
    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0[None], requires_grad=True)
    hs, h_last = rnn(xt, h0t)
    return rnn, xt, h0t, hs, h_last


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("with_h0", [True, False])
def test_rnn_matches_torch(nonlinearity, bias, with_h0):
    rng = np.random.default_rng(30)
    t_len, n, n_in, hidden = 5, 3, 4, 6
    x = rng.standard_normal((t_len, n, n_in))
    h0 = rng.standard_normal((n, hidden)) if with_h0 else np.zeros((n, hidden))
    w_ih = rng.standard_normal((hidden, n_in)) * 0.5
    w_hh = rng.standard_normal((hidden, hidden)) * 0.5
    b_ih, b_hh = (rng.standard_normal(hidden), rng.standard_normal(hidden)) if bias else (None, None)
    rnn, xt, h0t, hs_t, h_last = torch_rnn(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity)
    g = rng.standard_normal(hs_t.shape)
    hs_t.backward(torch.tensor(g))

    h0_arg = h0 if with_h0 else None
    hs = reference.rnn_forward(x, h0_arg, w_ih, w_hh, b_ih, b_hh, nonlinearity)
    np.testing.assert_allclose(hs, hs_t.detach().numpy(), **TOL64)
    np.testing.assert_allclose(hs[-1], h_last[0].detach().numpy(), **TOL64)
    grad_x, grad_h0, grad_w_ih, grad_w_hh, grad_b = reference.rnn_backward(
        g, x, h0_arg, hs, w_ih, w_hh, nonlinearity)
    np.testing.assert_allclose(grad_x, xt.grad.numpy(), **TOL64)
    np.testing.assert_allclose(grad_h0, h0t.grad[0].numpy(), **TOL64)
    np.testing.assert_allclose(grad_w_ih, rnn.weight_ih_l0.grad.numpy(), **TOL64)
    np.testing.assert_allclose(grad_w_hh, rnn.weight_hh_l0.grad.numpy(), **TOL64)
    if bias:
        np.testing.assert_allclose(grad_b, rnn.bias_ih_l0.grad.numpy(), **TOL64)
        np.testing.assert_allclose(grad_b, rnn.bias_hh_l0.grad.numpy(), **TOL64)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_step_matches_torch_rnn_cell(nonlinearity):
    rng = np.random.default_rng(31)
    n, n_in, hidden = 4, 5, 3
    cell = torch.nn.RNNCell(n_in, hidden, nonlinearity=nonlinearity, dtype=torch.float64)
    x = rng.standard_normal((n, n_in))
    h = rng.standard_normal((n, hidden))
    xt = torch.tensor(x, requires_grad=True)
    ht = torch.tensor(h, requires_grad=True)
    h_next_t = cell(xt, ht)
    g = rng.standard_normal((n, hidden))
    h_next_t.backward(torch.tensor(g))

    w_ih, w_hh = cell.weight_ih.detach().numpy(), cell.weight_hh.detach().numpy()
    b_ih, b_hh = cell.bias_ih.detach().numpy(), cell.bias_hh.detach().numpy()
    h_next = reference.rnn_step(x, h, w_ih, w_hh, b_ih, b_hh, nonlinearity)
    np.testing.assert_allclose(h_next, h_next_t.detach().numpy(), **TOL64)
    grads = reference.rnn_step_backward(g, x, h, h_next, w_ih, w_hh, nonlinearity)
    expected = (xt.grad, ht.grad, cell.weight_ih.grad, cell.weight_hh.grad, cell.bias_ih.grad)
    for got, exp in zip(grads, expected):
        np.testing.assert_allclose(got, exp.numpy(), **TOL64)


def test_rnn_float32_matches_torch():
    rng = np.random.default_rng(32)
    x = rng.standard_normal((6, 4, 8)).astype(np.float32)
    h0 = rng.standard_normal((4, 16)).astype(np.float32)
    w_ih = (rng.standard_normal((16, 8)) * 0.3).astype(np.float32)
    w_hh = (rng.standard_normal((16, 16)) * 0.3).astype(np.float32)
    b_ih = rng.standard_normal(16).astype(np.float32)
    b_hh = rng.standard_normal(16).astype(np.float32)
    rnn = torch.nn.RNN(8, 16)
    with torch.no_grad():
        for name, value in [("weight_ih_l0", w_ih), ("weight_hh_l0", w_hh),
                            ("bias_ih_l0", b_ih), ("bias_hh_l0", b_hh)]:
            getattr(rnn, name).copy_(torch.tensor(value))
        hs_t, _ = rnn(torch.tensor(x), torch.tensor(h0[None]))
    hs = reference.rnn_forward(x, h0, w_ih, w_hh, b_ih, b_hh)
    assert hs.dtype == np.float32
    np.testing.assert_allclose(hs, hs_t.numpy(), rtol=1e-5, atol=1e-5)
