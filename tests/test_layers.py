"""Tests of the layer API: fastnn.Conv2d and fastnn.RNN.

Gradients are checked against float64 central finite differences of a random linear loss
``sum(out * G)``, and the layers against PyTorch: through a stored fixture
(tests/fixtures/layers_torch.npz, made by tests/fixtures/make_layer_fixtures.py; no torch needed)
and, when torch is installed, live.
"""
import json
import math
import os

import numpy as np
import pytest

import fastnn
from fastnn import reference

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "layers_torch.npz")


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def rnn_keys(num_layers, bidirectional, bias):
    """PyTorch's state_dict keys for torch.nn.RNN, in its order (written out independently)."""
    keys = []
    for layer in range(num_layers):
        for suffix in ("", "_reverse") if bidirectional else ("",):
            names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if bias else [])
            keys += [f"{name}_l{layer}{suffix}" for name in names]
    return keys


def numerical_grad(f, array, eps=1e-6):
    """Central differences of the scalar f() with respect to every element of ``array``,
    which is perturbed in place (and restored)."""
    grad = np.empty_like(array)
    flat, gflat = array.reshape(-1), grad.reshape(-1)
    assert np.shares_memory(flat, array)  # a view, so perturbing flat perturbs array
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = f()
        flat[i] = old - eps
        minus = f()
        flat[i] = old
        gflat[i] = (plus - minus) / (2 * eps)
    return grad


def assert_grad_close(analytic, numeric, name):
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7, err_msg=name)


# ---------------------------------------------------------------------------------------------
# Conv2d
# ---------------------------------------------------------------------------------------------

def conv_out_size(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


@pytest.mark.parametrize("kwargs, x_shape", [
    (dict(in_channels=3, out_channels=5, kernel_size=3), (2, 3, 8, 9)),
    (dict(in_channels=4, out_channels=6, kernel_size=(3, 2), stride=(2, 1), padding=(1, 2),
          dilation=(1, 2), groups=2), (2, 4, 7, 6)),
    (dict(in_channels=2, out_channels=4, kernel_size=(1, 3), stride=3, padding=2, bias=False),
     (1, 2, 5, 11)),
    (dict(in_channels=6, out_channels=6, kernel_size=3, groups=6, padding=1), (3, 6, 4, 4)),
])
def test_conv2d_shapes(kwargs, x_shape):
    conv = fastnn.Conv2d(**kwargs, rng=0)
    kh, kw = (kwargs["kernel_size"],) * 2 if np.ndim(kwargs["kernel_size"]) == 0 \
        else kwargs["kernel_size"]
    cin, cout, groups = kwargs["in_channels"], kwargs["out_channels"], kwargs.get("groups", 1)
    assert list(conv.params) == (["weight", "bias"] if kwargs.get("bias", True) else ["weight"])
    assert conv.params["weight"].shape == (cout, cin // groups, kh, kw)
    assert conv.params["weight"].dtype == np.float32
    x = np.random.default_rng(1).standard_normal(x_shape).astype(np.float32)
    y = conv(x)
    pair = lambda v: (v, v) if np.ndim(v) == 0 else tuple(v)  # noqa: E731
    (sh, sw), (ph, pw), (dh, dw) = (pair(kwargs.get(k, d)) for k, d in
                                    (("stride", 1), ("padding", 0), ("dilation", 1)))
    expected = (x_shape[0], cout, conv_out_size(x_shape[2], kh, sh, ph, dh),
                conv_out_size(x_shape[3], kw, sw, pw, dw))
    assert y.shape == expected and y.dtype == np.float32
    grad_x = conv.backward(np.ones_like(y))
    assert grad_x.shape == x.shape and grad_x.dtype == np.float32
    for key, value in conv.params.items():
        assert conv.grads[key].shape == value.shape


def test_conv2d_matches_kernel_and_padding_strings():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 6, 7))
    conv = fastnn.Conv2d(3, 4, (3, 2), padding="same", dtype=np.float64, rng=3)
    y = conv(x)
    assert y.shape == (2, 4, 6, 7)
    expected = reference.conv2d(x, conv.params["weight"], conv.params["bias"], padding="same")
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    conv = fastnn.Conv2d(3, 4, 3, padding="valid", dtype=np.float64, rng=3)
    assert conv(x).shape == (2, 4, 4, 5)


def test_conv2d_unbatched_and_input_cast():
    conv = fastnn.Conv2d(2, 3, 3, padding=1, dtype=np.float64, rng=0)
    x = np.random.default_rng(0).standard_normal((2, 5, 5))
    y = conv(x)
    assert y.shape == (3, 5, 5)
    np.testing.assert_allclose(y, conv(x[None])[0], rtol=1e-12)
    conv(x)
    assert conv.backward(np.ones_like(y)).shape == x.shape
    # float32 layer, float64 (or int) input: computed in float32
    conv32 = fastnn.Conv2d(2, 3, 3, rng=0)
    assert conv32(x[None]).dtype == np.float32
    assert conv32(np.ones((1, 2, 4, 4), dtype=np.int64)).dtype == np.float32


@pytest.mark.parametrize("kwargs, x_shape", [
    (dict(in_channels=3, out_channels=2, kernel_size=(3, 2)), (2, 3, 5, 4)),
    (dict(in_channels=4, out_channels=6, kernel_size=(2, 3), stride=(2, 1), padding=(1, 2),
          dilation=(2, 1), groups=2), (2, 4, 6, 5)),
    (dict(in_channels=2, out_channels=3, kernel_size=3, padding="same", bias=False),
     (1, 2, 4, 5)),
])
def test_conv2d_gradients_finite_differences(kwargs, x_shape):
    rng = np.random.default_rng(10)
    conv = fastnn.Conv2d(**kwargs, dtype=np.float64, rng=rng)
    x = rng.standard_normal(x_shape)
    G = rng.standard_normal(conv(x).shape)

    def loss():
        return float(np.sum(conv.forward(x) * G))

    conv.forward(x)
    grad_x = conv.backward(G)
    grads = {k: v.copy() for k, v in conv.grads.items()}
    assert_grad_close(grad_x, numerical_grad(loss, x), "x")
    for key, value in conv.params.items():
        assert_grad_close(grads[key], numerical_grad(loss, value), key)


def test_conv2d_backward_overwrites_and_skips_input_grad():
    conv = fastnn.Conv2d(2, 3, 3, dtype=np.float64, rng=0)
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 5))
    y = conv(x)
    grad_arrays = dict(conv.grads)
    conv.backward(np.ones_like(y))
    first = {k: v.copy() for k, v in conv.grads.items()}
    assert conv.backward(np.ones_like(y), needs_input_grad=False) is None
    for key in first:
        assert conv.grads[key] is grad_arrays[key]          # same arrays, written in place
        np.testing.assert_array_equal(conv.grads[key], first[key])  # overwritten, not summed


def test_conv2d_errors():
    conv = fastnn.Conv2d(2, 3, 3, rng=0)
    with pytest.raises(RuntimeError, match="before forward"):
        conv.backward(np.ones((1, 3, 2, 2), np.float32))
    with pytest.raises(ValueError, match="channels"):
        conv(np.ones((1, 4, 5, 5), np.float32))
    with pytest.raises(ValueError, match="4-D"):
        conv(np.ones((5, 5), np.float32))
    y = conv(np.ones((1, 2, 5, 5), np.float32))
    with pytest.raises(ValueError, match="grad_y"):
        conv.backward(np.ones((1, 3, 2, 2), np.float32))
    assert conv.backward(np.ones_like(y)).shape == (1, 2, 5, 5)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(in_channels=3, out_channels=4, kernel_size=3, groups=2), ValueError, "in_channels"),
    (dict(in_channels=4, out_channels=3, kernel_size=3, groups=2), ValueError, "out_channels"),
    (dict(in_channels=0, out_channels=3, kernel_size=3), ValueError, "in_channels"),
    (dict(in_channels=2, out_channels=3, kernel_size=0), ValueError, "kernel_size"),
    (dict(in_channels=2, out_channels=3, kernel_size=(3, -1)), ValueError, "kernel_size"),
    (dict(in_channels=2, out_channels=3, kernel_size=(1, 2, 3)), ValueError, "kernel_size"),
    (dict(in_channels=2, out_channels=3, kernel_size=2.5), TypeError, "kernel_size"),
    (dict(in_channels=2, out_channels=3, kernel_size=3, stride=0), ValueError, "stride"),
    (dict(in_channels=2, out_channels=3, kernel_size=3, padding=-1), ValueError, "padding"),
    (dict(in_channels=2, out_channels=3, kernel_size=3, padding="full"), ValueError, "padding"),
    (dict(in_channels=2, out_channels=3, kernel_size=3, padding="same", stride=2), ValueError,
     "same"),
    (dict(in_channels=2, out_channels=3, kernel_size=3, dilation=0), ValueError, "dilation"),
    (dict(in_channels=2, out_channels=3, kernel_size=3, groups=0), ValueError, "groups"),
    (dict(in_channels=2.0, out_channels=3, kernel_size=3), TypeError, "in_channels"),
    (dict(in_channels=2, out_channels=3, kernel_size=3, bias="yes"), TypeError, "bias"),
    (dict(in_channels=2, out_channels=3, kernel_size=3, dtype=np.float16), TypeError, "dtype"),
    (dict(in_channels=2, out_channels=3, kernel_size=3, dtype=np.int32), TypeError, "dtype"),
    (dict(in_channels=2, out_channels=3, kernel_size=3, rng="seed"), TypeError, "rng"),
])
def test_conv2d_constructor_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        fastnn.Conv2d(**kwargs)


def test_conv2d_init_bounds_and_reproducibility():
    conv = fastnn.Conv2d(6, 63, (3, 2), groups=3, rng=0)
    bound = 1 / math.sqrt(6 // 3 * 3 * 2)
    for value in conv.params.values():
        assert np.all(np.abs(value) <= bound)
    w = conv.params["weight"]
    assert w.max() > 0.9 * bound and w.min() < -0.9 * bound  # spread over the whole range
    assert abs(w.mean()) < 0.1 * bound
    again = fastnn.Conv2d(6, 63, (3, 2), groups=3, rng=0)
    from_gen = fastnn.Conv2d(6, 63, (3, 2), groups=3, rng=np.random.default_rng(0))
    other = fastnn.Conv2d(6, 63, (3, 2), groups=3, rng=1)
    for key in conv.params:
        np.testing.assert_array_equal(conv.params[key], again.params[key])
        np.testing.assert_array_equal(conv.params[key], from_gen.params[key])
        assert not np.array_equal(conv.params[key], other.params[key])
    fastnn.Conv2d(6, 64, 3, rng=None)  # fresh entropy works too


# ---------------------------------------------------------------------------------------------
# RNN
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_rnn_shapes(num_layers, bidirectional, batch_first, bias):
    T, N, I, H = 4, 3, 5, 6
    D = 2 if bidirectional else 1
    rnn = fastnn.RNN(I, H, num_layers, "tanh", bias, batch_first, bidirectional, rng=0)
    assert list(rnn.params) == rnn_keys(num_layers, bidirectional, bias)
    assert list(rnn.grads) == list(rnn.params)
    for key, value in rnn.params.items():
        layer = int(key.split("_l")[1][0])
        if key.startswith("weight_ih"):
            assert value.shape == (H, I if layer == 0 else D * H)
        elif key.startswith("weight_hh"):
            assert value.shape == (H, H)
        else:
            assert value.shape == (H,)
        assert value.dtype == np.float32
    x = np.random.default_rng(0).standard_normal((N, T, I) if batch_first else (T, N, I))
    output, h_n = rnn(x)
    assert output.shape == ((N, T, D * H) if batch_first else (T, N, D * H))
    assert output.dtype == h_n.dtype == np.float32
    assert h_n.shape == (num_layers * D, N, H)
    # h_n is the last layer's final state: time T-1 forward, time 0 reverse
    out_tnf = output.transpose(1, 0, 2) if batch_first else output
    np.testing.assert_array_equal(h_n[(num_layers - 1) * D], out_tnf[-1, :, :H])
    if bidirectional:
        np.testing.assert_array_equal(h_n[-1], out_tnf[0, :, H:])
    grad_x, grad_h0 = rnn.backward(np.ones_like(output), np.ones_like(h_n))
    assert grad_x.shape == x.shape and grad_h0.shape == h_n.shape
    assert grad_x.dtype == np.float32


@pytest.mark.parametrize("bidirectional", [False, True])
def test_rnn_unbatched(bidirectional):
    rnn = fastnn.RNN(3, 4, 2, bidirectional=bidirectional, dtype=np.float64, rng=0)
    D = 2 if bidirectional else 1
    rng = np.random.default_rng(1)
    x, h0 = rng.standard_normal((5, 3)), rng.standard_normal((2 * D, 4))
    output, h_n = rnn(x, h0)
    assert output.shape == (5, D * 4) and h_n.shape == (2 * D, 4)
    batched_out, batched_h_n = rnn(x[:, None], h0[:, None])
    np.testing.assert_allclose(output, batched_out[:, 0], rtol=1e-12)
    np.testing.assert_allclose(h_n, batched_h_n[:, 0], rtol=1e-12)
    G, Gh = rng.standard_normal(batched_out.shape), rng.standard_normal(batched_h_n.shape)
    gx_b, gh0_b = rnn.backward(G, Gh)
    rnn(x, h0)
    gx, gh0 = rnn.backward(G[:, 0], Gh[:, 0])
    assert gx.shape == x.shape and gh0.shape == h0.shape
    np.testing.assert_allclose(gx, gx_b[:, 0], rtol=1e-12)
    np.testing.assert_allclose(gh0, gh0_b[:, 0], rtol=1e-12)


def test_rnn_single_layer_matches_kernel():
    rng = np.random.default_rng(0)
    rnn = fastnn.RNN(3, 4, nonlinearity="relu", dtype=np.float64, rng=rng)
    x, h0 = rng.standard_normal((6, 2, 3)), rng.standard_normal((1, 2, 4))
    output, h_n = rnn(x, h0)
    p = rnn.params
    expected = reference.rnn_forward(x, h0[0], p["weight_ih_l0"], p["weight_hh_l0"],
                                     p["bias_ih_l0"], p["bias_hh_l0"], "relu")
    np.testing.assert_allclose(output, expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h_n[0], expected[-1], rtol=1e-12, atol=1e-14)


def test_rnn_reverse_direction_is_the_reversed_sequence():
    """A bidirectional layer's reverse half = a one-way RNN with the reverse weights run on
    x[::-1], flipped back."""
    rng = np.random.default_rng(0)
    bi = fastnn.RNN(3, 4, bidirectional=True, dtype=np.float64, rng=rng)
    fwd = fastnn.RNN(3, 4, dtype=np.float64)
    rev = fastnn.RNN(3, 4, dtype=np.float64)
    fwd.load_state_dict({k: v for k, v in bi.params.items() if "reverse" not in k})
    rev.load_state_dict({k.replace("_reverse", ""): v for k, v in bi.params.items()
                         if "reverse" in k})
    x, h0 = rng.standard_normal((5, 2, 3)), rng.standard_normal((2, 2, 4))
    output, h_n = bi(x, h0)
    out_f, h_f = fwd(x, h0[:1])
    out_r, h_r = rev(x[::-1], h0[1:])
    np.testing.assert_allclose(output[:, :, :4], out_f, rtol=1e-12)
    np.testing.assert_allclose(output[:, :, 4:], out_r[::-1], rtol=1e-12)
    np.testing.assert_allclose(h_n, np.concatenate([h_f, h_r]), rtol=1e-12)


RNN_GRAD_CASES = [
    # (num_layers, bidirectional, batch_first, bias, nonlinearity, with h0, loss on output, on h_n)
    (1, False, False, True, "tanh", True, True, True),
    (2, True, False, True, "tanh", True, True, True),
    (3, True, True, True, "tanh", True, True, True),
    (2, True, False, False, "tanh", False, True, False),
    (2, True, True, True, "tanh", True, False, True),
    (2, False, False, True, "relu", True, True, True),
]


@pytest.mark.parametrize("case", RNN_GRAD_CASES, ids=lambda c: "-".join(map(str, c)))
def test_rnn_gradients_finite_differences(case):
    num_layers, bidirectional, batch_first, bias, nonlinearity, with_h0, on_out, on_hn = case
    T, N, I, H = 4, 2, 3, 3
    D = 2 if bidirectional else 1
    rng = np.random.default_rng(RNN_GRAD_CASES.index(case))
    rnn = fastnn.RNN(I, H, num_layers, nonlinearity, bias, batch_first, bidirectional,
                     dtype=np.float64, rng=rng)
    x = rng.standard_normal((N, T, I) if batch_first else (T, N, I))
    h0 = rng.standard_normal((num_layers * D, N, H)) if with_h0 else None
    output, h_n = rnn(x, h0)
    G = rng.standard_normal(output.shape) if on_out else None
    Gh = rng.standard_normal(h_n.shape) if on_hn else None

    def loss():
        out, hn = rnn.forward(x, h0)
        return float((np.sum(out * G) if on_out else 0.0) + (np.sum(hn * Gh) if on_hn else 0.0))

    rnn.forward(x, h0)
    grad_x, grad_h0 = rnn.backward(G, Gh)
    grads = {k: v.copy() for k, v in rnn.grads.items()}
    assert_grad_close(grad_x, numerical_grad(loss, x), "x")
    if with_h0:
        assert_grad_close(grad_h0, numerical_grad(loss, h0), "h0")
    for key, value in rnn.params.items():
        assert_grad_close(grads[key], numerical_grad(loss, value), key)
    if bias:
        for key in grads:
            if key.startswith("bias_ih"):
                np.testing.assert_array_equal(grads[key], grads[key.replace("_ih", "_hh")])


def test_rnn_grad_h0_without_h0_is_gradient_at_zero_state():
    rng = np.random.default_rng(0)
    rnn = fastnn.RNN(3, 4, 2, bidirectional=True, dtype=np.float64, rng=rng)
    x = rng.standard_normal((5, 2, 3))
    G = rng.standard_normal((5, 2, 8))
    rnn(x)
    gx, gh0 = rnn.backward(G)
    rnn(x, np.zeros((4, 2, 4)))
    gx2, gh02 = rnn.backward(G)
    np.testing.assert_array_equal(gx, gx2)
    np.testing.assert_array_equal(gh0, gh02)


def test_rnn_backward_overwrites_grads():
    rnn = fastnn.RNN(3, 4, 2, dtype=np.float64, rng=0)
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    output, _ = rnn(x)
    arrays = dict(rnn.grads)
    rnn.backward(np.ones_like(output))
    first = {k: v.copy() for k, v in rnn.grads.items()}
    rnn.backward(np.ones_like(output))
    for key in first:
        assert rnn.grads[key] is arrays[key]
        np.testing.assert_array_equal(rnn.grads[key], first[key])


def test_rnn_errors():
    rnn = fastnn.RNN(3, 4, 2, bidirectional=True, rng=0)
    with pytest.raises(RuntimeError, match="before forward"):
        rnn.backward(np.ones((5, 2, 8), np.float32))
    with pytest.raises(ValueError, match="input_size"):
        rnn(np.ones((5, 2, 2), np.float32))
    with pytest.raises(ValueError, match="h0"):
        rnn(np.ones((5, 2, 3), np.float32), np.zeros((2, 2, 4), np.float32))
    with pytest.raises(ValueError, match="time step"):
        rnn(np.ones((0, 2, 3), np.float32))
    with pytest.raises(ValueError, match="3-D"):
        rnn(np.ones((1, 5, 2, 3), np.float32))
    output, h_n = rnn(np.ones((5, 2, 3), np.float32))
    with pytest.raises(ValueError, match="grad_output"):
        rnn.backward(np.ones((5, 2, 4), np.float32))
    with pytest.raises(ValueError, match="grad_h_n"):
        rnn.backward(output, np.ones((2, 2, 4), np.float32))
    rnn.backward(output, h_n)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(input_size=0, hidden_size=4), ValueError, "input_size"),
    (dict(input_size=3, hidden_size=0), ValueError, "hidden_size"),
    (dict(input_size=3, hidden_size=4, num_layers=0), ValueError, "num_layers"),
    (dict(input_size=3, hidden_size=4, num_layers=1.0), TypeError, "num_layers"),
    (dict(input_size=3, hidden_size=4, nonlinearity="sigmoid"), ValueError, "nonlinearity"),
    (dict(input_size=3, hidden_size=4, dropout=1.5), ValueError, "dropout"),
    (dict(input_size=3, hidden_size=4, bidirectional=1), TypeError, "bidirectional"),
    (dict(input_size=3, hidden_size=4, batch_first="no"), TypeError, "batch_first"),
    (dict(input_size=3, hidden_size=4, bias=None), TypeError, "bias"),
    (dict(input_size=3, hidden_size=4, dtype=np.float16), TypeError, "dtype"),
    (dict(input_size=3, hidden_size=4, dtype="complex128"), TypeError, "dtype"),
    (dict(input_size=3, hidden_size=4, rng=1.5), TypeError, "rng"),
])
def test_rnn_constructor_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        fastnn.RNN(**kwargs)


def test_rnn_accepts_zero_dropout_keyword():
    rnn = fastnn.RNN(3, 4, dropout=0.0, rng=0)
    assert rnn.params["weight_ih_l0"].shape == (4, 3)


def test_rnn_init_bounds_and_reproducibility():
    rnn = fastnn.RNN(5, 64, 2, bidirectional=True, rng=0)
    bound = 1 / math.sqrt(64)
    for key, value in rnn.params.items():
        assert np.all(np.abs(value) <= bound), key
    w = rnn.params["weight_hh_l1_reverse"]
    assert w.max() > 0.9 * bound and w.min() < -0.9 * bound
    same = fastnn.RNN(5, 64, 2, bidirectional=True, rng=np.random.default_rng(0))
    other = fastnn.RNN(5, 64, 2, bidirectional=True, rng=1)
    for key in rnn.params:
        np.testing.assert_array_equal(rnn.params[key], same.params[key])
        assert not np.array_equal(rnn.params[key], other.params[key])
    # every parameter gets its own draws
    assert not np.array_equal(rnn.params["bias_ih_l0"], rnn.params["bias_hh_l0"])


def test_float32_layers_agree_with_float64():
    rng = np.random.default_rng(0)
    rnn64 = fastnn.RNN(3, 8, 2, bidirectional=True, dtype=np.float64, rng=1)
    rnn32 = fastnn.RNN(3, 8, 2, bidirectional=True, rng=1)
    x = rng.standard_normal((7, 2, 3))
    np.testing.assert_allclose(rnn32(x)[0], rnn64(x)[0], rtol=1e-4, atol=1e-5)
    conv64 = fastnn.Conv2d(3, 4, 3, dtype=np.float64, rng=1)
    conv32 = fastnn.Conv2d(3, 4, 3, rng=1)
    x = rng.standard_normal((2, 3, 6, 6))
    np.testing.assert_allclose(conv32(x), conv64(x), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# state_dict
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: fastnn.Conv2d(2, 3, 3, rng=0),
    lambda: fastnn.RNN(3, 4, 2, bidirectional=True, rng=0),
], ids=["conv2d", "rnn"])
def test_state_dict_round_trip(make):
    layer = make()
    sd = layer.state_dict()
    assert list(sd) == list(layer.params)
    for key, value in sd.items():
        assert value is not layer.params[key]
        assert not np.shares_memory(value, layer.params[key])
        np.testing.assert_array_equal(value, layer.params[key])
    sd[next(iter(sd))] += 1.0
    assert not np.array_equal(sd[next(iter(sd))], layer.params[next(iter(sd))])

    other = make()
    for value in other.params.values():
        value[...] = 0
    identities = {key: id(value) for key, value in other.params.items()}
    # float64 values (as from a float64 PyTorch model) are cast to the layer dtype
    other.load_state_dict({k: v.astype(np.float64) for k, v in layer.state_dict().items()})
    for key, value in other.params.items():
        assert id(value) == identities[key]  # loaded in place
        assert value.dtype == np.float32
        np.testing.assert_array_equal(value, layer.params[key])


def test_load_state_dict_errors_leave_params_unchanged():
    rnn = fastnn.RNN(3, 4, 2, rng=0)
    before = rnn.state_dict()
    good = fastnn.RNN(3, 4, 2, rng=1).state_dict()

    missing = dict(good)
    del missing["bias_hh_l1"]
    with pytest.raises(ValueError, match="missing.*bias_hh_l1"):
        rnn.load_state_dict(missing)
    with pytest.raises(ValueError, match="unexpected.*weight_ih_l2"):
        rnn.load_state_dict({**good, "weight_ih_l2": np.zeros((4, 4))})
    bad_shape = {**good, "weight_hh_l1": np.zeros((4, 5))}
    with pytest.raises(ValueError, match="weight_hh_l1.*shape"):
        rnn.load_state_dict(bad_shape)
    with pytest.raises(TypeError, match="weight_hh_l1"):
        rnn.load_state_dict({**good, "weight_hh_l1": np.full((4, 4), "a")})
    for key, value in rnn.params.items():
        np.testing.assert_array_equal(value, before[key])  # nothing half-loaded

    rnn.load_state_dict({"weight_hh_l1": good["weight_hh_l1"], "extra": 1.0}, strict=False)
    np.testing.assert_array_equal(rnn.params["weight_hh_l1"], good["weight_hh_l1"])
    np.testing.assert_array_equal(rnn.params["weight_hh_l0"], before["weight_hh_l0"])

    conv = fastnn.Conv2d(2, 3, 3, bias=False, rng=0)
    with pytest.raises(ValueError, match="unexpected.*bias"):
        conv.load_state_dict({"weight": np.zeros((3, 2, 3, 3)), "bias": np.zeros(3)})


def test_training_step_in_place_is_seen_by_forward():
    conv = fastnn.Conv2d(1, 1, 1, bias=False, dtype=np.float64, rng=0)
    conv.params["weight"][...] = 2.0
    np.testing.assert_array_equal(conv(np.ones((1, 1, 2, 2))), np.full((1, 1, 2, 2), 2.0))


# ---------------------------------------------------------------------------------------------
# PyTorch: stored fixture (no torch needed) and live comparison
# ---------------------------------------------------------------------------------------------

def _fixture(prefix):
    data = np.load(FIXTURE)
    config = json.loads(str(data[f"{prefix}__config"]))
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}

    def group(kind):
        start = f"{prefix}__{kind}__"
        return {k[len(start):]: data[k] for k in data.files if k.startswith(start)}

    return config, group("param"), group("grad"), group("io")


def assert_torch_close(actual, expected, name):
    np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=1e-12, err_msg=name)


def test_rnn_matches_torch_fixture():
    config, params, grads, io = _fixture("rnn")
    rnn = fastnn.RNN(**config, dtype=np.float64, rng=0)
    assert list(rnn.params) == list(params)  # same keys, same order as torch's state_dict
    rnn.load_state_dict(params)
    output, h_n = rnn(io["x"], io["h0"])
    assert_torch_close(output, io["output"], "output")
    assert_torch_close(h_n, io["h_n"], "h_n")
    grad_x, grad_h0 = rnn.backward(io["grad_output"], io["grad_h_n"])
    assert_torch_close(grad_x, io["grad_x"], "grad_x")
    assert_torch_close(grad_h0, io["grad_h0"], "grad_h0")
    for key in params:
        assert_torch_close(rnn.grads[key], grads[key], key)


def test_conv2d_matches_torch_fixture():
    config, params, grads, io = _fixture("conv")
    conv = fastnn.Conv2d(**config, dtype=np.float64, rng=0)
    assert list(conv.params) == list(params)
    conv.load_state_dict(params)
    assert_torch_close(conv(io["x"]), io["y"], "y")
    assert_torch_close(conv.backward(io["grad_y"]), io["grad_x"], "grad_x")
    for key in params:
        assert_torch_close(conv.grads[key], grads[key], key)


@pytest.mark.parametrize("kwargs, unbatched", [
    (dict(num_layers=2, nonlinearity="relu", bias=False, batch_first=True, bidirectional=True),
     False),
    (dict(num_layers=3, batch_first=True), False),
    (dict(num_layers=2, bidirectional=True), True),
])
def test_rnn_matches_torch_live(kwargs, unbatched):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    trnn = torch.nn.RNN(3, 5, **kwargs, dtype=torch.float64)
    rnn = fastnn.RNN(3, 5, **kwargs, dtype=np.float64, rng=0)
    rnn.load_state_dict({k: v.detach().numpy() for k, v in trnn.state_dict().items()})
    D = 2 if kwargs.get("bidirectional") else 1
    L = kwargs["num_layers"]
    x_shape = (6, 3) if unbatched else ((2, 6, 3) if kwargs.get("batch_first") else (6, 2, 3))
    x = torch.randn(*x_shape, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(L * D, *(() if unbatched else (2,)), 5, dtype=torch.float64,
                     requires_grad=True)
    output, h_n = trnn(x, h0)
    grad_output, grad_h_n = torch.randn_like(output), torch.randn_like(h_n)
    ((output * grad_output).sum() + (h_n * grad_h_n).sum()).backward()

    ours, ours_h_n = rnn(x.detach().numpy(), h0.detach().numpy())
    assert_torch_close(ours, output.detach().numpy(), "output")
    assert_torch_close(ours_h_n, h_n.detach().numpy(), "h_n")
    grad_x, grad_h0 = rnn.backward(grad_output.numpy(), grad_h_n.numpy())
    assert_torch_close(grad_x, x.grad.numpy(), "grad_x")
    assert_torch_close(grad_h0, h0.grad.numpy(), "grad_h0")
    for key, p in trnn.named_parameters():
        assert_torch_close(rnn.grads[key], p.grad.numpy(), key)


@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=(2, 3), padding="same", dilation=(2, 1)),
    dict(kernel_size=3, stride=(1, 2), padding=(0, 1), groups=3, bias=False),
])
def test_conv2d_matches_torch_live(kwargs):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    tconv = torch.nn.Conv2d(3, 6, **kwargs, dtype=torch.float64)
    conv = fastnn.Conv2d(3, 6, **kwargs, dtype=np.float64, rng=0)
    conv.load_state_dict(tconv.state_dict())  # torch tensors convert through np.asarray
    x = torch.randn(2, 3, 7, 8, dtype=torch.float64, requires_grad=True)
    y = tconv(x)
    grad_y = torch.randn_like(y)
    (y * grad_y).sum().backward()
    assert_torch_close(conv(x.detach().numpy()), y.detach().numpy(), "y")
    assert_torch_close(conv.backward(grad_y.numpy()), x.grad.numpy(), "grad_x")
    for key, p in tconv.named_parameters():
        assert_torch_close(conv.grads[key], p.grad.numpy(), key)
