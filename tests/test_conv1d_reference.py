"""Tests of fastnn.reference.conv1d and conv1d_backward, the oracle of the compiled conv1d.

Independent checks, each of which could catch the oracle wrong:

* the forward against a naive direct sum written here, finite values and Inf/NaN alike;
* the backward against float64 central finite differences of a random linear loss;
* conv2d's oracle (a separate derivation) on images one row high;
* fixtures recorded from PyTorch (tests/fixtures/conv1d.npz, written by
  tests/fixtures/make_conv_family_fixtures.py), always;
* PyTorch itself, live, when it is installed.
"""
import itertools
import warnings

import numpy as np
import pytest

from fastnn import reference

from oracle_helpers import load_cases, numerical_grad

TOL64 = dict(rtol=1e-10, atol=1e-12)


def _single(v):
    return v if np.ndim(v) == 0 else v[0]


def naive_conv1d(x, weight, bias, stride=1, padding=0, dilation=1, groups=1):
    """conv1d as a direct sum over every output position, skipping padded inputs."""
    stride, dilation = _single(stride), _single(dilation)
    n, c_in, length = x.shape
    c_out, cg, k = weight.shape
    og = c_out // groups
    if padding == "same":
        left = dilation * (k - 1) // 2
        length_out = length
    else:
        left = 0 if padding == "valid" else _single(padding)
        length_out = (length + 2 * left - dilation * (k - 1) - 1) // stride + 1
    y = np.zeros((n, c_out, length_out))
    for b, o, t in itertools.product(range(n), range(c_out), range(length_out)):
        total = 0.0 if bias is None else bias[o]
        for c, tap in itertools.product(range(cg), range(k)):
            i = t * stride + tap * dilation - left
            if 0 <= i < length:
                total += weight[o, c, tap] * x[b, (o // og) * cg + c, i]
        y[b, o, t] = total
    return y


# (N, C_in, L), (C_out, K), keyword arguments
CASES = {
    "basic": ((2, 3, 9), (4, 3), dict()),
    "stride2_pad1": ((2, 3, 11), (4, 3), dict(stride=2, padding=1)),
    "same_even": ((2, 2, 9), (3, 4), dict(padding="same")),
    "same_even_dilated": ((1, 2, 10), (3, 2), dict(padding="same", dilation=3)),
    "valid": ((2, 3, 8), (2, 1), dict(padding="valid")),
    "dilation2_pad": ((2, 2, 10), (3, 3), dict(dilation=2, padding=3)),
    "groups2": ((2, 4, 9), (6, 3), dict(groups=2, padding=1)),
    "depthwise": ((2, 3, 10), (3, 5), dict(groups=3, padding=2, stride=3)),
    "depthwise_multiplier": ((1, 2, 8), (4, 3), dict(groups=2)),
    "one_tuples": ((2, 2, 9), (2, 3), dict(stride=(2,), padding=(1,), dilation=(2,))),
    "long_kernel_stride": ((1, 1, 31), (3, 10), dict(stride=5)),
}


def problem(name, seed):
    x_shape, (c_out, k), kwargs = CASES[name]
    rng = np.random.default_rng(seed)
    groups = kwargs.get("groups", 1)
    x = rng.standard_normal(x_shape)
    weight = rng.standard_normal((c_out, x_shape[1] // groups, k))
    bias = rng.standard_normal(c_out)
    return rng, x, weight, bias, kwargs


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_matches_direct_sum(name):
    _, x, weight, bias, kwargs = problem(name, 1)
    np.testing.assert_allclose(reference.conv1d(x, weight, bias, **kwargs),
                               naive_conv1d(x, weight, bias, **kwargs), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_backward_matches_finite_differences(name):
    rng, x, weight, bias, kwargs = problem(name, 2)
    g = rng.standard_normal(reference.conv1d(x, weight, bias, **kwargs).shape)

    def loss(x, weight, bias):
        return np.sum(g * reference.conv1d(x, weight, bias, **kwargs))

    grads = reference.conv1d_backward(g, x, weight, **kwargs)
    for index, analytic in enumerate(grads):  # linear loss: exact for any step
        numeric = numerical_grad(loss, [x, weight, bias], index, eps=0.5)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-10, atol=1e-11)


@pytest.mark.parametrize("name", sorted(CASES))
def test_is_conv2d_one_row_high(name):
    rng, x, weight, bias, kwargs = problem(name, 3)
    geo = dict(stride=(1, _single(kwargs.get("stride", 1))), dilation=(1, _single(kwargs.get("dilation", 1))),
               groups=kwargs.get("groups", 1))
    padding = kwargs.get("padding", 0)
    geo["padding"] = padding if isinstance(padding, str) else (0, _single(padding))
    y = reference.conv1d(x, weight, bias, **kwargs)
    np.testing.assert_allclose(y, reference.conv2d(x[:, :, None], weight[:, :, None], bias, **geo)[:, :, 0],
                               rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(y.shape)
    for got, expected in zip(reference.conv1d_backward(g, x, weight, **kwargs),
                             reference.conv2d_backward(g[:, :, None], x[:, :, None], weight[:, :, None], **geo)):
        np.testing.assert_allclose(got, expected.reshape(got.shape), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("k, dilation", [(1, 1), (2, 1), (3, 1), (4, 1), (4, 3), (5, 2), (2, 2)])
def test_same_keeps_the_length_and_puts_the_odd_one_at_the_end(k, dilation):
    x = np.arange(1.0, 8.0).reshape(1, 1, 7)
    weight = np.zeros((1, 1, k))
    weight[0, 0, -1] = 1.0  # the last tap: x shifted left by the padding after
    y = reference.conv1d(x, weight, padding="same", dilation=dilation)
    assert y.shape == x.shape
    after = dilation * (k - 1) - dilation * (k - 1) // 2
    expected = np.zeros(7)
    expected[: 7 - after] = x[0, 0, after:]
    np.testing.assert_array_equal(y[0, 0], expected)


def test_padding_is_absent_not_zero_times_weight():
    x = np.ones((1, 1, 5))
    weight = np.ones((1, 1, 3))
    weight[0, 0, 0] = np.inf  # reads x[t - 1]: padding at t = 0
    np.testing.assert_array_equal(reference.conv1d(x, weight, padding=1)[0, 0], [2, np.inf, np.inf, np.inf, np.inf])
    g = np.zeros((1, 1, 5))
    g[0, 0, 0] = np.inf  # output 0 reads x[-1] (padding), x[0], x[1]
    grad_input, grad_weight, grad_bias = reference.conv1d_backward(g, x, np.ones((1, 1, 3)), padding=1)
    np.testing.assert_array_equal(grad_weight[0, 0], [0, np.inf, np.inf])
    np.testing.assert_array_equal(grad_input[0, 0], [np.inf, np.inf, 0, 0, 0])
    assert np.isinf(grad_bias[0])


@pytest.mark.parametrize("name", ["stride2_pad1", "same_even", "groups2", "depthwise"])
def test_nonfinite_values_match_direct_sum(name):
    _, x, weight, bias, kwargs = problem(name, 4)
    x[0, 0, 2] = np.nan
    weight[0, 0, 0] = np.inf
    weight[-1, -1, -1] = -np.inf
    with np.errstate(invalid="ignore"):
        expected = naive_conv1d(x, weight, bias, **kwargs)
    np.testing.assert_allclose(reference.conv1d(x, weight, bias, **kwargs), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keeps_dtype_and_inputs(dtype):
    _, x, weight, bias, kwargs = problem("groups2", 5)
    x, weight, bias = (a.astype(dtype) for a in (x, weight, bias))
    copies = [a.copy() for a in (x, weight, bias)]
    y = reference.conv1d(x, weight, bias, **kwargs)
    assert y.dtype == dtype
    assert all(g.dtype == dtype for g in reference.conv1d_backward(np.ones_like(y), x, weight, **kwargs))
    for a, b in zip((x, weight, bias), copies):
        np.testing.assert_array_equal(a, b)


def test_out_argument_and_needs_flags():
    rng, x, weight, bias, kwargs = problem("same_even", 6)
    y = reference.conv1d(x, weight, bias, **kwargs)
    out = np.full(y.shape, np.nan)
    assert reference.conv1d(x, weight, bias, **kwargs, out=out) is out
    np.testing.assert_array_equal(out, y)
    g = rng.standard_normal(y.shape)
    full = reference.conv1d_backward(g, x, weight, **kwargs)
    for mask in itertools.product((False, True), repeat=3):
        got = reference.conv1d_backward(g, x, weight, **kwargs, needs_input_grad=mask[0],
                                        needs_weight_grad=mask[1], needs_bias_grad=mask[2])
        for wanted, a, b in zip(mask, got, full):
            if wanted:
                np.testing.assert_array_equal(a, b)
            else:
                assert a is None
    np.testing.assert_array_equal(full[2], g.sum(axis=(0, 2)))


@pytest.mark.parametrize("n, c_in, c_out", [(0, 3, 4), (2, 0, 4), (2, 3, 0)])
def test_empty_sizes(n, c_in, c_out):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n, c_in, 6))
    weight = rng.standard_normal((c_out, c_in, 3))
    bias = rng.standard_normal(c_out)
    y = reference.conv1d(x, weight, bias, padding=1)
    assert y.shape == (n, c_out, 6)
    if c_in == 0:
        np.testing.assert_array_equal(y, np.broadcast_to(bias.reshape(1, -1, 1), y.shape))
    g = rng.standard_normal(y.shape)
    grad_input, grad_weight, grad_bias = reference.conv1d_backward(g, x, weight, padding=1)
    assert grad_input.shape == x.shape and grad_weight.shape == weight.shape and grad_bias.shape == (c_out,)
    if n == 0:
        np.testing.assert_array_equal(grad_weight, 0)


def test_bad_arguments():
    x, weight = np.ones((1, 1, 5)), np.ones((1, 1, 3))
    with pytest.raises(ValueError):
        reference.conv1d(x, weight, padding="same", stride=2)
    with pytest.raises(ValueError):
        reference.conv1d(x, weight, padding="full")
    with pytest.raises(ValueError):
        reference.conv1d(x, np.ones((1, 1, 6)))  # longer than the input


# ---- PyTorch ----------------------------------------------------------------------------------------

FIXTURES = load_cases("conv1d.npz")


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_matches_torch_fixture(name):
    case = FIXTURES[name]
    kwargs = case["config"]
    y = reference.conv1d(case["x"], case["weight"], case.get("bias"), **kwargs)
    np.testing.assert_allclose(y, case["y"], **TOL64)
    grads = reference.conv1d_backward(case["grad_output"], case["x"], case["weight"], **kwargs)
    for got, field in zip(grads, ("grad_input", "grad_weight", "grad_bias")):
        np.testing.assert_allclose(got, case[field], **TOL64)


def test_fixture_covers_same_with_an_even_kernel():
    assert any(case["config"].get("padding") == "same" and case["weight"].shape[2] % 2 == 0
               for case in FIXTURES.values())


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("seed", range(16))
def test_random_cases_match_torch(torch, seed):
    rng = np.random.default_rng(3000 + seed)
    groups = int(rng.choice([1, 1, 2, 3]))
    c_in, c_out = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
    k, dilation = int(rng.integers(1, 7)), int(rng.integers(1, 4))
    if rng.random() < 0.3:
        stride, padding = 1, str(rng.choice(["same", "valid"]))
    else:
        stride, padding = int(rng.integers(1, 6)), int(rng.integers(0, 4))
    length = dilation * (k - 1) + 1 + int(rng.integers(0, 9))
    x = rng.standard_normal((int(rng.integers(1, 4)), c_in, length))
    weight = rng.standard_normal((c_out, c_in // groups, k))
    bias = rng.standard_normal(c_out)
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, weight, bias))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # 'same' with an even kernel
        yt = torch.nn.functional.conv1d(xt, wt, bt, **kwargs)
    g = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(reference.conv1d(x, weight, bias, **kwargs), yt.detach().numpy(), **TOL64)
    for got, expected in zip(reference.conv1d_backward(g, x, weight, **kwargs), (xt, wt, bt)):
        np.testing.assert_allclose(got, expected.grad.numpy(), **TOL64)


def test_backward_matches_aten_convolution_backward(torch):
    _, x, weight, _, kwargs = problem("depthwise", 8)
    y = reference.conv1d(x, weight, None, **kwargs)
    g = np.random.default_rng(9).standard_normal(y.shape)
    for mask in ([True, True, True], [True, False, False], [False, True, True]):
        expected = torch.ops.aten.convolution_backward(
            torch.tensor(g), torch.tensor(x), torch.tensor(weight), [y.shape[1]], [kwargs["stride"]],
            [kwargs["padding"]], [1], False, [0], kwargs["groups"], mask)
        got = reference.conv1d_backward(g, x, weight, **kwargs, needs_input_grad=mask[0],
                                        needs_weight_grad=mask[1], needs_bias_grad=mask[2])
        for wanted, a, b in zip(mask, got, expected):
            if wanted:
                np.testing.assert_allclose(a, b.numpy(), **TOL64)
            else:
                assert a is None


def test_nonfinite_values_match_torch_float32(torch):
    # torch's float32 conv1d (oneDNN) treats padding as absent too: the patterns agree exactly.
    _, x, weight, bias, kwargs = problem("stride2_pad1", 10)
    x, weight, bias = (a.astype(np.float32) for a in (x, weight, bias))
    x[1, 0, 4] = np.nan
    weight[0, 1, 0] = np.inf
    weight[3, 2, 2] = -np.inf
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, weight, bias))
    yt = torch.nn.functional.conv1d(xt, wt, bt, **kwargs)
    g = np.random.default_rng(11).standard_normal(tuple(yt.shape)).astype(np.float32)
    g[0, 1, 0] = np.inf
    yt.backward(torch.tensor(g))
    with np.errstate(invalid="ignore", over="ignore"):
        ours = (reference.conv1d(x, weight, bias, **kwargs), *reference.conv1d_backward(g, x, weight, **kwargs))
    for got, expected in zip(ours, (yt, xt.grad, wt.grad, bt.grad)):
        np.testing.assert_allclose(got, expected.detach().numpy(), rtol=1e-4, atol=1e-4)
