"""fastnn's conv2d kernels: validate, normalise, then run the compiled driver.

The compiled drivers (fastnn._kernels) trust their arguments; everything they rely on is
checked here. When the extension is missing, fastnn.reference does the work instead.
"""
import numpy as np

from fastnn import _runtime
from fastnn import _validation as v
from fastnn import reference

__all__ = ["conv2d", "conv2d_backward"]

_kernels = _runtime._kernels

class _ConvSpec:
    """The validated geometry of one convolution."""

    __slots__ = ("stride", "pad_h", "pad_w", "dilation", "groups", "out_shape", "kernel_len")

    def __init__(self, x_shape, w_shape, stride, padding, dilation, groups):
        n, c_in, h, w = x_shape
        c_out, cin_g, kh, kw = w_shape
        self.stride = v.int_pair("stride", stride, 1)
        self.dilation = v.int_pair("dilation", dilation, 1)
        self.groups = v.positive_int("groups", groups)
        if kh < 1 or kw < 1:
            raise ValueError(f"weight has an empty kernel: shape {tuple(w_shape)}")
        if c_in % self.groups:
            raise ValueError(f"groups={self.groups} does not divide the input channels of x ({c_in})")
        if c_out % self.groups:
            raise ValueError(f"groups={self.groups} does not divide the output channels of weight ({c_out})")
        if cin_g != c_in // self.groups:
            raise ValueError(
                f"weight has {cin_g} input channels per group, but x has {c_in} channels "
                f"and groups={self.groups} (expected {c_in // self.groups})"
            )
        self.pad_h, self.pad_w = v.conv_padding(padding, (kh, kw), self.dilation, self.stride)
        h_out = v.conv_output_size("height", h, self.pad_h, kh, self.stride[0], self.dilation[0])
        w_out = v.conv_output_size("width", w, self.pad_w, kw, self.stride[1], self.dilation[1])
        self.out_shape = (n, c_out, h_out, w_out)
        self.kernel_len = cin_g * kh * kw

    def flops(self):
        n, c_out, h_out, w_out = self.out_shape
        return 2 * n * c_out * h_out * w_out * self.kernel_len

    def driver_args(self):
        return self.stride, (self.pad_h[0], self.pad_w[0]), self.dilation, self.groups


def _padding_arg(spec):
    """An explicit padding the reference accepts, for the geometry already resolved."""
    if spec.pad_h[0] == spec.pad_h[1] and spec.pad_w[0] == spec.pad_w[1]:
        return (spec.pad_h[0], spec.pad_w[0])
    return "same"


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, out=None):
    """2-D convolution (cross-correlation), as torch.nn.functional.conv2d.

    Parameters
    ----------
    x : array_like, (N, C_in, H, W), float32 or float64
    weight : array_like, (C_out, C_in // groups, kH, kW), same dtype
    bias : array_like, (C_out,), same dtype, or None
    stride, dilation : int or (int, int), >= 1
    padding : int or (int, int) >= 0, 'valid', or 'same' (stride 1 only; the odd extra row and
        column go after, as in PyTorch)
    groups : int >= 1 dividing C_in and C_out
    out : ndarray (N, C_out, H_out, W_out), optional
        Written in place and returned: C-contiguous, of x's dtype, not overlapping an input.

    Returns
    -------
    y : ndarray (N, C_out, H_out, W_out), x's dtype

    Raises
    ------
    TypeError
        Non-float or mixed dtypes, non-integer stride/padding/dilation/groups.
    ValueError
        Wrong ndim or shapes, bad stride/padding/dilation/groups, a kernel larger than the
        padded input, an output too large to exist, a bad `out`.
    """
    if _kernels is not None:
        y = _kernels.conv2d_fast(x, weight, bias, stride, padding, dilation, groups, out)
        if y is not None:
            return y
    x = v.as_float_array("x", x, 4)
    weight = v.as_float_array("weight", weight, 4)
    if bias is not None:
        bias = v.as_float_array("bias", bias, 1)
    dtype = v.common_dtype(x=x, weight=weight, bias=bias)
    spec = _ConvSpec(x.shape, weight.shape, stride, padding, dilation, groups)
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"bias must have shape ({weight.shape[0]},), got {bias.shape}")
    v.check_size("conv2d's output for this x, weight, stride, padding and dilation", spec.out_shape, dtype.itemsize)
    if out is not None:
        y = v.check_out(out, spec.out_shape, dtype, (x, weight, bias))
    else:
        y = np.empty(spec.out_shape, dtype)
    if y.size == 0:
        return y
    if spec.kernel_len == 0:
        y[...] = 0 if bias is None else bias.astype(dtype)[:, None, None]
        return y
    if _kernels is not None and _kernels.conv2d_forward(
        v.contiguous(x, dtype), v.contiguous(weight, dtype),
        None if bias is None else v.contiguous(bias, dtype), y,
        *spec.driver_args(), _runtime.threads_for(spec.flops()),
    ):
        return y
    # No compiled kernels, or an Inf/NaN weight where the implicit GEMM would multiply it by
    # padding: the reference's tap-by-tap sum keeps padding absent.
    y[...] = reference.conv2d(x, weight, bias, spec.stride, _padding_arg(spec), spec.dilation, spec.groups)
    return y


def conv2d_backward(grad_output, x, weight, stride=1, padding=0, dilation=1, groups=1, *,
                    needs_input_grad=True, needs_weight_grad=True, needs_bias_grad=True):
    """Gradients of conv2d with respect to its input, weight and bias.

    Parameters
    ----------
    grad_output : array_like, (N, C_out, H_out, W_out)
        Gradient of the loss with respect to conv2d's output.
    x, weight, stride, padding, dilation, groups
        As given to `conv2d`.
    needs_input_grad, needs_weight_grad, needs_bias_grad : bool
        Which gradients to compute; the others are returned as None.

    Returns
    -------
    grad_input : ndarray (N, C_in, H, W) or None
    grad_weight : ndarray (C_out, C_in // groups, kH, kW) or None
    grad_bias : ndarray (C_out,) or None, grad_output.sum(axis=(0, 2, 3))

    Raises
    ------
    TypeError, ValueError
        As `conv2d`; ValueError also when grad_output's shape is not conv2d's output shape.
    """
    if _kernels is not None:
        grads = _kernels.conv2d_backward_fast(grad_output, x, weight, stride, padding, dilation, groups,
                                              needs_input_grad, needs_weight_grad, needs_bias_grad)
        if grads is not None:
            return grads
    grad_output = v.as_float_array("grad_output", grad_output, 4)
    x = v.as_float_array("x", x, 4)
    weight = v.as_float_array("weight", weight, 4)
    dtype = v.common_dtype(grad_output=grad_output, x=x, weight=weight)
    spec = _ConvSpec(x.shape, weight.shape, stride, padding, dilation, groups)
    if grad_output.shape != spec.out_shape:
        raise ValueError(f"grad_output must have shape {spec.out_shape} (conv2d's output), got {grad_output.shape}")
    dy = v.contiguous(grad_output, dtype)
    use_reference = _kernels is None
    threads = _runtime.threads_for(spec.flops())
    grad_input = grad_weight = grad_bias = None
    if needs_input_grad:
        if use_reference:
            grad_input = reference.conv2d_backward(
                dy, x, weight, spec.stride, _padding_arg(spec), spec.dilation, spec.groups,
                needs_input_grad=True, needs_weight_grad=False, needs_bias_grad=False)[0].astype(dtype)
        else:
            grad_input = np.empty(x.shape, dtype)
            if grad_input.size:
                _kernels.conv2d_grad_input(dy, v.contiguous(weight, dtype), grad_input,
                                           *spec.driver_args(), threads)
    if needs_weight_grad:
        grad_weight = np.empty(weight.shape, dtype)
        computed = grad_weight.size == 0 or (not use_reference and _kernels.conv2d_grad_weight(
            dy, v.contiguous(x, dtype), grad_weight, *spec.driver_args(), threads))
        if not computed:
            # No compiled kernels, or an Inf/NaN in grad_output that the implicit GEMM would
            # multiply by padding (0 * Inf = NaN where padding must be absent).
            grad_weight[...] = reference.conv2d_backward(
                dy, x, weight, spec.stride, _padding_arg(spec), spec.dilation, spec.groups,
                needs_input_grad=False, needs_weight_grad=True, needs_bias_grad=False)[1]
    if needs_bias_grad:
        if use_reference:
            grad_bias = dy.sum(axis=(0, 2, 3), dtype=dtype)
        else:
            grad_bias = _kernels.conv2d_grad_bias(dy, np.empty(dy.shape[1], dtype), threads)
    return grad_input, grad_weight, grad_bias
