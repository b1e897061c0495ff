"""Tests of the layers fastnn.ConvTranspose2d and fastnn.Conv1d.

Gradients against float64 central finite differences of a random linear loss ``sum(y * G)``;
PyTorch's parameter names, shapes, initialisation bounds and conventions (ConvTranspose2d's
``output_size``, unbatched inputs); and PyTorch's results, through a stored fixture
(tests/fixtures/layers_conv_family.npz, made by tests/fixtures/make_conv_family_fixtures.py;
no torch needed) and, when torch is installed, live.
"""
import json
import math

import numpy as np
import pytest

import fastnn
from fastnn import reference

from oracle_helpers import FIXTURES, numerical_grad


def layer_fd_check(layer, x, rng):
    """The layer's backward against central differences of sum(layer(x) * G) (linear in each
    argument: exact for a large step)."""
    G = rng.standard_normal(layer(x).shape)
    layer.forward(x)
    grad_x = layer.backward(G)
    grads = {k: v.copy() for k, v in layer.grads.items()}

    def loss(x, *params):
        for value, target in zip(params, layer.params.values()):
            target[...] = value
        return float(np.sum(layer.forward(x) * G))

    arrays = [x] + [v.copy() for v in layer.params.values()]
    for index, (name, analytic) in enumerate([("x", grad_x)] + list(grads.items())):
        np.testing.assert_allclose(analytic, numerical_grad(loss, arrays, index, eps=0.5), rtol=1e-9,
                                   atol=1e-10, err_msg=name)


def assert_torch_close(actual, expected, name):
    np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=1e-12, err_msg=name)


# ---------------------------------------------------------------------------------------------
# ConvTranspose2d
# ---------------------------------------------------------------------------------------------

TRANSPOSE_LAYERS = [
    (dict(in_channels=3, out_channels=5, kernel_size=3), (2, 3, 4, 5)),
    (dict(in_channels=4, out_channels=6, kernel_size=(3, 2), stride=(2, 1), padding=(1, 0),
          output_padding=(1, 0), groups=2, dilation=(1, 2)), (2, 4, 5, 4)),
    (dict(in_channels=2, out_channels=4, kernel_size=4, stride=2, padding=1, bias=False), (1, 2, 3, 3)),
    (dict(in_channels=6, out_channels=6, kernel_size=3, groups=6, stride=2, output_padding=1), (3, 6, 3, 3)),
]


@pytest.mark.parametrize("kwargs, x_shape", TRANSPOSE_LAYERS)
def test_conv_transpose2d_layer_shapes_and_kernel(kwargs, x_shape):
    layer = fastnn.ConvTranspose2d(**kwargs, dtype=np.float64, rng=0)
    groups = kwargs.get("groups", 1)
    kh, kw = layer.kernel_size
    assert list(layer.params) == (["weight", "bias"] if kwargs.get("bias", True) else ["weight"])
    assert layer.weight.shape == (kwargs["in_channels"], kwargs["out_channels"] // groups, kh, kw)
    x = np.random.default_rng(1).standard_normal(x_shape)
    y = layer(x)
    expected = reference.conv_transpose2d(x, layer.weight, layer.bias, layer.stride, layer.padding,
                                          layer.output_padding, groups, layer.dilation)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    grad_x = layer.backward(np.ones_like(y))
    assert grad_x.shape == x.shape
    for key, value in layer.params.items():
        assert layer.grads[key].shape == value.shape


@pytest.mark.parametrize("kwargs, x_shape", TRANSPOSE_LAYERS[:3])
def test_conv_transpose2d_layer_finite_differences(kwargs, x_shape):
    rng = np.random.default_rng(10)
    layer_fd_check(fastnn.ConvTranspose2d(**kwargs, dtype=np.float64, rng=rng), rng.standard_normal(x_shape), rng)


def test_conv_transpose2d_output_size():
    layer = fastnn.ConvTranspose2d(3, 4, 3, stride=(2, 3), padding=1, dtype=np.float64, rng=0)
    x = np.random.default_rng(2).standard_normal((2, 3, 5, 4))
    # smallest: (5-1)*2 - 2 + 2 + 1 = 9 rows, (4-1)*3 - 2 + 2 + 1 = 10 columns; up to + stride - 1
    assert layer(x).shape == (2, 4, 9, 10)
    for size in [(9, 10), (10, 12), (10, 11), (2, 4, 10, 12)]:
        y = layer(x, output_size=size)
        assert y.shape[2:] == tuple(size[-2:])
        op = (size[-2] - 9, size[-1] - 10)
        np.testing.assert_allclose(y, reference.conv_transpose2d(x, layer.weight, layer.bias, (2, 3), 1, op),
                                   rtol=1e-12, atol=1e-12)
        grad_x = layer.backward(np.ones_like(y))  # the backward uses that call's output_padding
        np.testing.assert_allclose(grad_x, reference.conv_transpose2d_backward(
            np.ones_like(y), x, layer.weight, (2, 3), 1, op)[0], rtol=1e-12, atol=1e-12)
    assert layer(x[0], output_size=(4, 10, 11)).shape == (4, 10, 11)  # unbatched, (C, H, W)
    for bad in [(11, 10), (8, 10), (9, 13)]:
        with pytest.raises(ValueError, match=r"output_size of .* valid sizes range from \(9, 10\) to \(10, 12\)"):
            layer(x, output_size=bad)
    with pytest.raises(ValueError, match="output_size must have 2 or 4 elements"):
        layer(x, output_size=(1, 9, 10))
    with pytest.raises(TypeError, match="output_size"):
        layer(x, output_size=9)


def test_conv_transpose2d_unbatched_cast_and_overwrite():
    layer = fastnn.ConvTranspose2d(2, 3, 3, stride=2, dtype=np.float64, rng=0)
    x = np.random.default_rng(0).standard_normal((2, 4, 5))
    y = layer(x)
    assert y.shape == (3, 9, 11)
    np.testing.assert_allclose(y, layer(x[None])[0], rtol=1e-12)
    layer(x)
    assert layer.backward(np.ones_like(y)).shape == x.shape
    assert fastnn.ConvTranspose2d(2, 3, 3, rng=0)(np.ones((1, 2, 3, 3), np.int64)).dtype == np.float32
    grad_arrays = dict(layer.grads)
    layer.backward(np.ones_like(y))
    first = {k: v.copy() for k, v in layer.grads.items()}
    assert layer.backward(np.ones_like(y), needs_input_grad=False) is None
    for key in first:
        assert layer.grads[key] is grad_arrays[key]
        np.testing.assert_array_equal(layer.grads[key], first[key])  # overwritten, not summed


def test_conv_transpose2d_layer_errors():
    layer = fastnn.ConvTranspose2d(2, 3, 3, rng=0)
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones((1, 3, 5, 5), np.float32))
    with pytest.raises(ValueError, match="channels"):
        layer(np.ones((1, 4, 3, 3), np.float32))
    with pytest.raises(ValueError, match="3-D or 4-D"):
        layer(np.ones((3, 3), np.float32))
    y = layer(np.ones((1, 2, 3, 3), np.float32))
    with pytest.raises(ValueError, match="grad_y"):
        layer.backward(np.ones((1, 3, 4, 4), np.float32))
    assert layer.backward(np.ones_like(y)).shape == (1, 2, 3, 3)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(padding="same"), TypeError, "padding"),
    (dict(padding="valid"), TypeError, "padding"),
    (dict(padding=-1), ValueError, "padding"),
    (dict(output_padding=1), ValueError, "output_padding must be smaller than the stride or the dilation"),
    (dict(stride=2, output_padding=2), ValueError, "output_padding"),
    (dict(stride=2, output_padding=(1, 2)), ValueError, "output_padding"),
    (dict(output_padding=-1, stride=2), ValueError, "output_padding"),
    (dict(groups=4), ValueError, "in_channels"),
    (dict(groups=2, out_channels=3), ValueError, "out_channels"),
    (dict(kernel_size=0), ValueError, "kernel_size"),
    (dict(kernel_size=(1, 2, 3)), ValueError, "kernel_size"),
    (dict(stride=0), ValueError, "stride"),
    (dict(dilation=(1, 0)), ValueError, "dilation"),
    (dict(in_channels=2.0), TypeError, "in_channels"),
    (dict(bias=1), TypeError, "bias"),
    (dict(dtype=np.float16), TypeError, "dtype"),
    (dict(rng="seed"), TypeError, "rng"),
])
def test_conv_transpose2d_constructor_validation(kwargs, error, match):
    args = dict(in_channels=2, out_channels=4, kernel_size=3)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        fastnn.ConvTranspose2d(**args)
    # output_padding below the dilation is allowed even at stride 1
    assert fastnn.ConvTranspose2d(2, 4, 3, output_padding=1, dilation=2, rng=0).output_padding == (1, 1)


def test_conv_transpose2d_init_bounds_and_reproducibility():
    # PyTorch takes the fan-in from weight.shape[1] * kH * kW: C_out // groups here
    layer = fastnn.ConvTranspose2d(6, 30, (3, 2), groups=3, rng=0)
    bound = 1 / math.sqrt(30 // 3 * 3 * 2)
    for value in layer.params.values():
        assert np.all(np.abs(value) <= bound)
    w = layer.weight
    assert w.shape == (6, 10, 3, 2)
    assert w.max() > 0.9 * bound and w.min() < -0.9 * bound
    again = fastnn.ConvTranspose2d(6, 30, (3, 2), groups=3, rng=0)
    other = fastnn.ConvTranspose2d(6, 30, (3, 2), groups=3, rng=1)
    for key in layer.params:
        np.testing.assert_array_equal(layer.params[key], again.params[key])
        assert not np.array_equal(layer.params[key], other.params[key])


# ---------------------------------------------------------------------------------------------
# Conv1d
# ---------------------------------------------------------------------------------------------

CONV1D_LAYERS = [
    (dict(in_channels=3, out_channels=5, kernel_size=3), (2, 3, 9)),
    (dict(in_channels=4, out_channels=6, kernel_size=4, padding="same", dilation=2, groups=2), (2, 4, 11)),
    (dict(in_channels=1, out_channels=4, kernel_size=(10,), stride=(5,), bias=False), (2, 1, 33)),
    (dict(in_channels=6, out_channels=6, kernel_size=5, groups=6, padding=(2,)), (3, 6, 8)),
]


@pytest.mark.parametrize("kwargs, x_shape", CONV1D_LAYERS)
def test_conv1d_layer_shapes_and_kernel(kwargs, x_shape):
    layer = fastnn.Conv1d(**kwargs, dtype=np.float64, rng=0)
    groups = kwargs.get("groups", 1)
    assert layer.weight.shape == (kwargs["out_channels"], kwargs["in_channels"] // groups, layer.kernel_size[0])
    assert isinstance(layer.stride, tuple) and len(layer.stride) == 1
    x = np.random.default_rng(1).standard_normal(x_shape)
    y = layer(x)
    padding = layer.padding if isinstance(layer.padding, str) else layer.padding[0]
    expected = reference.conv1d(x, layer.weight, layer.bias, layer.stride[0], padding, layer.dilation[0], groups)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    assert layer.backward(np.ones_like(y)).shape == x.shape


@pytest.mark.parametrize("kwargs, x_shape", CONV1D_LAYERS[:3])
def test_conv1d_layer_finite_differences(kwargs, x_shape):
    rng = np.random.default_rng(11)
    layer_fd_check(fastnn.Conv1d(**kwargs, dtype=np.float64, rng=rng), rng.standard_normal(x_shape), rng)


def test_conv1d_unbatched_cast_and_errors():
    layer = fastnn.Conv1d(2, 3, 3, padding=1, dtype=np.float64, rng=0)
    x = np.random.default_rng(0).standard_normal((2, 7))
    y = layer(x)
    assert y.shape == (3, 7)
    np.testing.assert_allclose(y, layer(x[None])[0], rtol=1e-12)
    layer(x)
    assert layer.backward(np.ones_like(y)).shape == x.shape
    assert fastnn.Conv1d(2, 3, 3, rng=0)(np.ones((1, 2, 5), np.int64)).dtype == np.float32
    fresh = fastnn.Conv1d(2, 3, 3, rng=0)
    with pytest.raises(RuntimeError, match="before forward"):
        fresh.backward(np.ones((1, 3, 5), np.float32))
    with pytest.raises(ValueError, match="channels"):
        fresh(np.ones((1, 4, 5), np.float32))
    with pytest.raises(ValueError, match="2-D or 3-D"):
        fresh(np.ones((1, 2, 1, 5), np.float32))
    fresh(np.ones((1, 2, 5), np.float32))
    with pytest.raises(ValueError, match="grad_y"):
        fresh.backward(np.ones((1, 3, 5), np.float32))


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(kernel_size=(3, 3)), ValueError, "kernel_size must be an int or a 1-tuple"),
    (dict(kernel_size=0), ValueError, "kernel_size"),
    (dict(kernel_size=2.5), TypeError, "kernel_size"),
    (dict(stride=(1, 1)), ValueError, "stride"),
    (dict(stride=0), ValueError, "stride"),
    (dict(padding=(1, 1)), ValueError, "padding"),
    (dict(padding="full"), ValueError, "padding"),
    (dict(padding="same", stride=2), ValueError, "same"),
    (dict(dilation=0), ValueError, "dilation"),
    (dict(groups=4), ValueError, "in_channels"),
    (dict(groups=2, out_channels=3), ValueError, "out_channels"),
    (dict(bias="no"), TypeError, "bias"),
    (dict(dtype=np.int32), TypeError, "dtype"),
])
def test_conv1d_constructor_validation(kwargs, error, match):
    args = dict(in_channels=2, out_channels=4, kernel_size=3)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        fastnn.Conv1d(**args)


def test_conv1d_init_bounds():
    layer = fastnn.Conv1d(6, 40, 5, groups=2, rng=0)
    bound = 1 / math.sqrt(6 // 2 * 5)
    for value in layer.params.values():
        assert np.all(np.abs(value) <= bound)
    assert layer.weight.max() > 0.9 * bound and layer.weight.min() < -0.9 * bound
    np.testing.assert_array_equal(layer.weight, fastnn.Conv1d(6, 40, 5, groups=2, rng=0).weight)


@pytest.mark.parametrize("make", [lambda: fastnn.ConvTranspose2d(2, 4, 3, groups=2, rng=0),
                                  lambda: fastnn.Conv1d(2, 4, 3, rng=0)], ids=["conv_transpose2d", "conv1d"])
def test_state_dict_round_trip(make):
    layer, other = make(), make()
    for value in other.params.values():
        value[...] = 0
    other.load_state_dict({k: v.astype(np.float64) for k, v in layer.state_dict().items()})
    for key, value in other.params.items():
        assert value.dtype == np.float32
        np.testing.assert_array_equal(value, layer.params[key])


# ---------------------------------------------------------------------------------------------
# PyTorch: stored fixture (no torch needed) and live comparison
# ---------------------------------------------------------------------------------------------

def _fixture(prefix):
    with np.load(FIXTURES / "layers_conv_family.npz") as data:
        stored = {k: data[k] for k in data.files}
    config = json.loads(str(stored[f"{prefix}__config"]))
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}

    def group(kind):
        start = f"{prefix}__{kind}__"
        return {k[len(start):]: v for k, v in stored.items() if k.startswith(start)}

    return config, group("param"), group("grad"), group("io"), stored


@pytest.mark.parametrize("prefix", ["conv_transpose", "conv1d"])
def test_layers_match_torch_fixture(prefix):
    config, params, grads, io, stored = _fixture(prefix)
    make = fastnn.ConvTranspose2d if prefix == "conv_transpose" else fastnn.Conv1d
    layer = make(**config, dtype=np.float64, rng=0)
    assert list(layer.params) == list(params)  # torch's state_dict keys, in its order
    layer.load_state_dict(params)
    size = stored.get(f"{prefix}__output_size")
    y = layer(io["x"]) if size is None else layer(io["x"], output_size=tuple(size))
    assert_torch_close(y, io["y"], "y")
    assert_torch_close(layer.backward(io["grad_y"]), io["grad_x"], "grad_x")
    for key in params:
        assert_torch_close(layer.grads[key], grads[key], key)


@pytest.mark.parametrize("kwargs, size", [
    (dict(kernel_size=(3, 4), stride=(2, 3), padding=(1, 2), groups=3, dilation=(2, 1)), (14, 13)),
    (dict(kernel_size=4, stride=2, padding=1, bias=False), None),
    (dict(kernel_size=3, stride=2, padding=1, output_padding=1), None),
])
def test_conv_transpose2d_matches_torch_live(kwargs, size):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    tlayer = torch.nn.ConvTranspose2d(3, 6, **kwargs, dtype=torch.float64)
    layer = fastnn.ConvTranspose2d(3, 6, **kwargs, dtype=np.float64, rng=0)
    layer.load_state_dict(tlayer.state_dict())
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64, requires_grad=True)
    y = tlayer(x, output_size=size)
    grad_y = torch.randn_like(y)
    (y * grad_y).sum().backward()
    assert_torch_close(layer(x.detach().numpy(), output_size=size), y.detach().numpy(), "y")
    assert_torch_close(layer.backward(grad_y.numpy()), x.grad.numpy(), "grad_x")
    for key, p in tlayer.named_parameters():
        assert_torch_close(layer.grads[key], p.grad.numpy(), key)


@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=4, padding="same", dilation=3),
    dict(kernel_size=5, stride=2, padding=2, groups=3, bias=False),
])
def test_conv1d_matches_torch_live(kwargs):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    tlayer = torch.nn.Conv1d(3, 6, **kwargs, dtype=torch.float64)
    layer = fastnn.Conv1d(3, 6, **kwargs, dtype=np.float64, rng=0)
    assert (layer.kernel_size, layer.stride, layer.dilation) == (tlayer.kernel_size, tlayer.stride, tlayer.dilation)
    assert layer.padding == tlayer.padding
    layer.load_state_dict(tlayer.state_dict())
    x = torch.randn(3, 13, dtype=torch.float64, requires_grad=True)  # unbatched, as torch allows
    y = tlayer(x)
    grad_y = torch.randn_like(y)
    (y * grad_y).sum().backward()
    assert_torch_close(layer(x.detach().numpy()), y.detach().numpy(), "y")
    assert_torch_close(layer.backward(grad_y.numpy()), x.grad.numpy(), "grad_x")
    for key, p in tlayer.named_parameters():
        assert_torch_close(layer.grads[key], p.grad.numpy(), key)


def test_conv_transpose2d_init_matches_torch_bound():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    tlayer = torch.nn.ConvTranspose2d(8, 12, (3, 2), groups=2)
    ours = fastnn.ConvTranspose2d(8, 12, (3, 2), groups=2, rng=0)
    bound = 1 / math.sqrt(12 // 2 * 3 * 2)  # weight.shape[1] * kH * kW
    for key, p in tlayer.named_parameters():
        theirs = p.detach().numpy()
        assert ours.params[key].shape == theirs.shape
        assert np.abs(theirs).max() <= bound and np.abs(ours.params[key]).max() <= bound
    # 288 weights each: both spread up to the same bound
    assert np.abs(ours.weight).max() > 0.95 * bound and np.abs(tlayer.weight.detach().numpy()).max() > 0.95 * bound
