"""Tests of fastnn.reference.conv_transpose2d and conv_transpose2d_backward, the oracle of the
compiled transposed convolution.

Independent checks, each of which could catch the oracle wrong:

* the forward against a naive scatter written here (loops over every input pixel, tap and
  output channel), finite values and Inf/NaN alike;
* the backward against float64 central finite differences of a random linear loss;
* the adjoint relation with conv2d's oracle (a separate derivation: a transposed convolution is
  the adjoint of the convolution with the same weight), <conv_transpose2d(x), u> = <x, conv2d(u)>;
* fixtures recorded from PyTorch (tests/fixtures/conv_transpose2d.npz, written by
  tests/fixtures/make_conv_family_fixtures.py), always;
* PyTorch itself, live, when it is installed.
"""
import itertools

import numpy as np
import pytest

from fastnn import reference

from oracle_helpers import load_cases, numerical_grad

TOL64 = dict(rtol=1e-10, atol=1e-12)


def _pair(v):
    return (v, v) if np.ndim(v) == 0 else tuple(v)


def naive_conv_transpose2d(x, weight, bias, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """The scatter definition, one term at a time: each input pixel adds its value times each
    tap's weight into the output position that tap writes, if it lies inside the output."""
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = map(_pair, (stride, padding, output_padding, dilation))
    n, c_in, h, w = x.shape
    _, og, kh, kw = weight.shape
    cg = c_in // groups
    out_h = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    out_w = (w - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    y = np.zeros((n, groups * og, out_h, out_w))
    for b, c, iy, ix in itertools.product(range(n), range(c_in), range(h), range(w)):
        g = c // cg
        for o, i, j in itertools.product(range(og), range(kh), range(kw)):
            oy, ox = iy * sh - ph + i * dh, ix * sw - pw + j * dw
            if 0 <= oy < out_h and 0 <= ox < out_w:
                y[b, g * og + o, oy, ox] += x[b, c, iy, ix] * weight[c, o, i, j]
    if bias is not None:
        y += np.asarray(bias).reshape(1, -1, 1, 1)
    return y


# (N, C_in, H, W), (C_out, kH, kW), keyword arguments
CASES = {
    "basic": ((2, 3, 4, 5), (4, 3, 3), dict()),
    "stride2_output_padding1": ((2, 2, 3, 4), (3, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    "stride_pair": ((1, 2, 3, 4), (2, 2, 3), dict(stride=(3, 2), padding=(1, 0), output_padding=(2, 1))),
    "nonsquare_kernel": ((2, 3, 4, 3), (2, 2, 4), dict(stride=(1, 2), padding=(0, 1))),
    "dilation2": ((2, 2, 4, 4), (3, 3, 3), dict(dilation=2, padding=1)),
    "dilation_output_padding": ((1, 2, 4, 3), (2, 2, 3), dict(dilation=(3, 2), output_padding=(2, 1))),
    "groups2": ((2, 4, 3, 4), (6, 3, 3), dict(groups=2, padding=1)),
    "depthwise": ((2, 3, 4, 4), (3, 3, 3), dict(groups=3, stride=2, padding=1, output_padding=1)),
    "depthwise_multiplier": ((1, 2, 3, 3), (4, 2, 2), dict(groups=2, stride=2)),
    "padding_crops_most": ((1, 2, 3, 3), (2, 3, 3), dict(padding=2)),
    "all_mixed": ((2, 4, 5, 4), (6, 3, 2), dict(stride=(2, 1), padding=(1, 0), output_padding=(1, 0),
                                                 groups=2, dilation=(1, 2))),
}


def problem(name, seed):
    x_shape, (c_out, kh, kw), kwargs = CASES[name]
    rng = np.random.default_rng(seed)
    groups = kwargs.get("groups", 1)
    x = rng.standard_normal(x_shape)
    weight = rng.standard_normal((x_shape[1], c_out // groups, kh, kw))
    bias = rng.standard_normal(c_out)
    return rng, x, weight, bias, kwargs


# ---- the definition -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_matches_naive_scatter(name):
    _, x, weight, bias, kwargs = problem(name, 1)
    np.testing.assert_allclose(reference.conv_transpose2d(x, weight, bias, **kwargs),
                               naive_conv_transpose2d(x, weight, bias, **kwargs), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_backward_matches_finite_differences(name):
    rng, x, weight, bias, kwargs = problem(name, 2)
    g = rng.standard_normal(reference.conv_transpose2d(x, weight, bias, **kwargs).shape)

    def loss(x, weight, bias):
        return np.sum(g * reference.conv_transpose2d(x, weight, bias, **kwargs))

    grads = reference.conv_transpose2d_backward(g, x, weight, **kwargs)
    # The loss is linear in each argument, so central differences are exact for any step: a
    # large one keeps the rounding error small.
    for index, analytic in enumerate(grads):
        numeric = numerical_grad(loss, [x, weight, bias], index, eps=0.5)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-10, atol=1e-11)


@pytest.mark.parametrize("name", [n for n in sorted(CASES) if n != "dilation_output_padding"])
def test_adjoint_of_conv2d(name):
    """<conv_transpose2d(x, w), u> = <x, conv2d(u, w)> for the same stride, padding, dilation and
    groups (output_padding smaller than the stride: conv2d of u has x's shape then)."""
    rng, x, weight, _, kwargs = problem(name, 3)
    geo = {k: kwargs[k] for k in ("stride", "padding", "dilation", "groups") if k in kwargs}
    y = reference.conv_transpose2d(x, weight, None, **kwargs)
    u = rng.standard_normal(y.shape)
    back = reference.conv2d(u, weight, None, **geo)
    assert back.shape == x.shape
    np.testing.assert_allclose(np.vdot(y, u), np.vdot(x, back), rtol=1e-12)
    # and conv2d's backward is this forward and backward, read the other way round
    grad_input, grad_weight, _ = reference.conv2d_backward(x, u, weight, **geo)
    np.testing.assert_allclose(grad_input, y, rtol=1e-12, atol=1e-12)
    gi, gw, _ = reference.conv_transpose2d_backward(u, x, weight, **kwargs)
    np.testing.assert_allclose(gi, back, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gw, grad_weight, rtol=1e-12, atol=1e-12)


def test_output_padding_adds_rows_that_only_the_crop_reaches():
    # stride 2, padding 1, kernel 3: the full scatter of a 2-row input has 5 rows, the crop of 1
    # keeps 3 of them; output_padding=1 keeps a 4th, which the last input row writes with tap 2.
    x = np.arange(1.0, 5.0).reshape(1, 1, 2, 2)
    weight = np.zeros((1, 1, 3, 3))
    weight[0, 0, 2, 2] = 1.0  # input (iy, ix) writes (2*iy + 2 - 1, 2*ix + 2 - 1)
    y = reference.conv_transpose2d(x, weight, stride=2, padding=1, output_padding=1)
    assert y.shape == (1, 1, 4, 4)
    expected = np.zeros((4, 4))
    expected[1::2, 1::2] = x[0, 0]
    np.testing.assert_array_equal(y[0, 0], expected)
    cut = reference.conv_transpose2d(x, weight, stride=2, padding=1)
    np.testing.assert_array_equal(cut[0, 0], expected[:3, :3])  # the last row and column are gone


def test_cropped_writes_are_absent_not_zero_times_weight():
    # An Inf weight whose tap writes only into the cropped border leaves every output finite;
    # one whose tap writes some outputs reaches exactly those.
    x = np.ones((1, 1, 3, 3))
    weight = np.ones((1, 1, 3, 3))
    weight[0, 0, 0, 0] = np.inf  # input (iy, ix) writes (iy - 1, ix - 1): row/column 0 cropped
    y = reference.conv_transpose2d(x, weight, padding=1)
    expected = np.isinf(naive_conv_transpose2d(x, weight, None, padding=1))
    np.testing.assert_array_equal(np.isinf(y), expected)
    np.testing.assert_array_equal(expected[0, 0], [[1, 1, 0], [1, 1, 0], [0, 0, 0]])
    assert not np.isnan(y).any()
    # Inf in grad_output at an output that a tap reaches from no input: no trace in grad_weight
    g = np.zeros((1, 1, 3, 3))
    g[0, 0, 2, 2] = np.inf  # tap (0, 0) would need input (3, 3): outside x
    _, grad_weight, grad_bias = reference.conv_transpose2d_backward(g, x, np.ones((1, 1, 3, 3)), padding=1)
    assert np.isfinite(grad_weight[0, 0, 0, 0]) and np.isinf(grad_weight[0, 0, 2, 2])
    assert np.isinf(grad_bias[0])


@pytest.mark.parametrize("name", ["stride2_output_padding1", "groups2", "depthwise_multiplier", "all_mixed"])
def test_nonfinite_values_match_naive_scatter(name):
    _, x, weight, bias, kwargs = problem(name, 4)
    x[0, 0, 1, 2] = np.nan
    weight[0, 0, 0, 0] = np.inf
    weight[-1, -1, -1, -1] = -np.inf
    with np.errstate(invalid="ignore"):
        expected = naive_conv_transpose2d(x, weight, bias, **kwargs)
    np.testing.assert_allclose(reference.conv_transpose2d(x, weight, bias, **kwargs), expected,
                               rtol=1e-12, atol=1e-12)


# ---- the API ------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keeps_dtype_and_inputs(dtype):
    _, x, weight, bias, kwargs = problem("all_mixed", 5)
    x, weight, bias = (a.astype(dtype) for a in (x, weight, bias))
    copies = [a.copy() for a in (x, weight, bias)]
    y = reference.conv_transpose2d(x, weight, bias, **kwargs)
    assert y.dtype == dtype
    grads = reference.conv_transpose2d_backward(np.ones_like(y), x, weight, **kwargs)
    assert all(g.dtype == dtype for g in grads)
    for a, b in zip((x, weight, bias), copies):
        np.testing.assert_array_equal(a, b)


def test_out_argument_and_needs_flags():
    rng, x, weight, bias, kwargs = problem("groups2", 6)
    y = reference.conv_transpose2d(x, weight, bias, **kwargs)
    out = np.full(y.shape, np.nan)
    assert reference.conv_transpose2d(x, weight, bias, **kwargs, out=out) is out
    np.testing.assert_array_equal(out, y)
    g = rng.standard_normal(y.shape)
    full = reference.conv_transpose2d_backward(g, x, weight, **kwargs)
    for mask in itertools.product((False, True), repeat=3):
        got = reference.conv_transpose2d_backward(g, x, weight, **kwargs, needs_input_grad=mask[0],
                                                  needs_weight_grad=mask[1], needs_bias_grad=mask[2])
        for wanted, a, b in zip(mask, got, full):
            if wanted:
                np.testing.assert_array_equal(a, b)
            else:
                assert a is None
    np.testing.assert_array_equal(full[2], g.sum(axis=(0, 2, 3)))


@pytest.mark.parametrize("n, c_in, c_out, h", [(0, 2, 4, 3), (2, 0, 4, 3), (2, 2, 0, 3), (2, 2, 4, 0)])
def test_empty_sizes(n, c_in, c_out, h):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n, c_in, h, 4))
    weight = rng.standard_normal((c_in, c_out // (2 if c_in else 1), 3, 2)) if c_out else np.zeros((c_in, 0, 3, 2))
    groups = 2 if c_in and c_out else 1
    bias = rng.standard_normal(groups * weight.shape[1])
    y = reference.conv_transpose2d(x, weight, bias, stride=2, groups=groups)
    assert y.shape == (n, groups * weight.shape[1], (h - 1) * 2 + 2 + 1, (4 - 1) * 2 + 1 + 1)
    if x.size == 0 and y.size:  # nothing scatters: the bias everywhere
        np.testing.assert_array_equal(y, np.broadcast_to(bias.reshape(1, -1, 1, 1), y.shape))
    g = rng.standard_normal(y.shape)
    grad_input, grad_weight, grad_bias = reference.conv_transpose2d_backward(g, x, weight, stride=2, groups=groups)
    assert grad_input.shape == x.shape and grad_weight.shape == weight.shape
    np.testing.assert_array_equal(grad_bias, g.sum(axis=(0, 2, 3)))
    if x.size == 0:
        np.testing.assert_array_equal(grad_weight, 0)


def test_bad_arguments():
    x = np.ones((1, 2, 3, 3))
    weight = np.ones((2, 1, 3, 3))
    with pytest.raises(ValueError, match="output_padding"):
        reference.conv_transpose2d(x, weight, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="size"):
        reference.conv_transpose2d(x, weight, padding=3)  # 3 + 2 - 6 = -1 rows
    with pytest.raises(ValueError, match="input channels"):
        reference.conv_transpose2d(x, np.ones((3, 1, 3, 3)))


# ---- PyTorch ----------------------------------------------------------------------------------------

FIXTURES = load_cases("conv_transpose2d.npz")


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_matches_torch_fixture(name):
    case = FIXTURES[name]
    kwargs = case["config"]
    y = reference.conv_transpose2d(case["x"], case["weight"], case.get("bias"), **kwargs)
    np.testing.assert_allclose(y, case["y"], **TOL64)
    grads = reference.conv_transpose2d_backward(case["grad_output"], case["x"], case["weight"], **kwargs)
    for got, field in zip(grads, ("grad_input", "grad_weight", "grad_bias")):
        np.testing.assert_allclose(got, case[field], **TOL64)


def test_fixture_covers_the_issue_cases():
    configs = [case["config"] for case in FIXTURES.values()]
    assert any(c.get("stride") == 2 and c.get("output_padding") == 1 for c in configs)
    assert any(c.get("groups") == 2 for c in configs)
    assert any(c.get("dilation") == 2 for c in configs)
    assert any(case["weight"].shape[2] != case["weight"].shape[3] for case in FIXTURES.values())


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def random_case(rng):
    groups = int(rng.choice([1, 1, 2, 3]))
    c_in, c_out = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
    kh, kw = (int(k) for k in rng.integers(1, 5, size=2))
    stride = tuple(int(s) for s in rng.integers(1, 4, size=2))
    dilation = tuple(int(d) for d in rng.integers(1, 3, size=2))
    output_padding = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation))
    h, w = (int(s) for s in rng.integers(1, 6, size=2))
    spans = [d * (k - 1) + 1 + (s - 1) * (size - 1) for d, k, s, size in zip(dilation, (kh, kw), stride, (h, w))]
    padding = tuple(int(rng.integers(0, (span - 1) // 2 + 1)) for span in spans)  # never crops it all
    kwargs = dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups, dilation=dilation)
    return (int(rng.integers(1, 4)), c_in, h, w), (c_in, c_out // groups, kh, kw), kwargs


@pytest.mark.parametrize("seed", range(16))
def test_random_cases_match_torch(torch, seed):
    rng = np.random.default_rng(2000 + seed)
    x_shape, w_shape, kwargs = random_case(rng)
    x, weight = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    bias = rng.standard_normal(w_shape[1] * kwargs["groups"])
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, weight, bias))
    yt = torch.nn.functional.conv_transpose2d(xt, wt, bt, **kwargs)
    g = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(reference.conv_transpose2d(x, weight, bias, **kwargs), yt.detach().numpy(), **TOL64)
    for got, expected in zip(reference.conv_transpose2d_backward(g, x, weight, **kwargs), (xt, wt, bt)):
        np.testing.assert_allclose(got, expected.grad.numpy(), **TOL64)


def test_backward_matches_aten_convolution_backward(torch):
    _, x, weight, _, kwargs = problem("all_mixed", 8)
    y = reference.conv_transpose2d(x, weight, None, **kwargs)
    g = np.random.default_rng(9).standard_normal(y.shape)
    for mask in ([True, True, True], [True, False, False], [False, True, True]):
        expected = torch.ops.aten.convolution_backward(
            torch.tensor(g), torch.tensor(x), torch.tensor(weight), [y.shape[1]], list(kwargs["stride"]),
            list(kwargs["padding"]), list(kwargs["dilation"]), True, list(kwargs["output_padding"]),
            kwargs["groups"], mask)
        got = reference.conv_transpose2d_backward(g, x, weight, **kwargs, needs_input_grad=mask[0],
                                                  needs_weight_grad=mask[1], needs_bias_grad=mask[2])
        for wanted, a, b in zip(mask, got, expected):
            if wanted:
                np.testing.assert_allclose(a, b.numpy(), **TOL64)
            else:
                assert a is None


def nonfinite_torch_case(torch, dtype):
    """Inf/NaN in x, weight and grad_output of a cropped transposed convolution: (ours, torch's)."""
    _, x, weight, bias, kwargs = problem("stride2_output_padding1", 10)
    x, weight, bias = (a.astype(dtype) for a in (x, weight, bias))
    x[1, 0, 2, 3] = np.nan
    weight[0, 1, 0, 0] = np.inf
    weight[1, 2, 2, 1] = -np.inf
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, weight, bias))
    yt = torch.nn.functional.conv_transpose2d(xt, wt, bt, **kwargs)
    g = np.random.default_rng(11).standard_normal(tuple(yt.shape)).astype(dtype)
    g[0, 1, 0, 0] = np.inf
    yt.backward(torch.tensor(g))
    with np.errstate(invalid="ignore", over="ignore"):
        ours = (reference.conv_transpose2d(x, weight, bias, **kwargs),
                *reference.conv_transpose2d_backward(g, x, weight, **kwargs))
    return ours, [t.detach().numpy() for t in (yt, xt.grad, wt.grad, bt.grad)]


def test_nonfinite_values_match_torch_float32(torch):
    # torch's float32 transposed convolution (oneDNN) puts no term in the cropped border either:
    # the NaN and Inf patterns agree exactly.
    for got, expected in zip(*nonfinite_torch_case(torch, np.float32)):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_nonfinite_values_vs_torch_float64(torch):
    # torch's float64 input gradient is its im2col conv2d (Slow2d), which multiplies the cropped
    # border (conv2d's zero padding there) by the Inf weight: extra NaNs, and only those.
    ours, theirs = nonfinite_torch_case(torch, np.float64)
    for got, expected in zip(ours, theirs):
        extra = np.isnan(expected) & ~np.isnan(got)
        np.testing.assert_allclose(got[~extra], expected[~extra], **TOL64)
    assert np.isnan(theirs[1]).sum() > np.isnan(ours[1]).sum()  # grad_input
