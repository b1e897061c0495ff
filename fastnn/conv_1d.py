"""fastnn's 1-D convolution kernels: validate with conv1d's own words, then run conv2d.

A 1-D convolution is a 2-D one on images one row high: x (N, C_in, L) is viewed as
(N, C_in, 1, L) and the weight (C_out, C_in // groups, K) as (C_out, C_in // groups, 1, K),
with stride (1, s), padding (0, p) and dilation (1, d); the views share the arrays' memory,
so nothing is copied that conv2d would not copy. conv2d then picks its compiled path (its
small-call fast path, direct kernels for depthwise layers, implicit GEMM for the rest), and
falls back to its own oracle exactly where conv2d would.

Three routes of its own come first: plain small calls go straight to conv2d's dispatch
(_kernels.conv1d_fast); layers where conv2d's implicit GEMM measured faster than the direct
convolution tiles its dispatch would pick run on it through an entry point of their own
(_gemm_route: strided layers with long outputs, short kernels at stride 1); and a one-channel
unpadded layer's backward
(wav2vec 2.0's first layer) is plain GEMMs over strided views of the signal (_one_channel).

Every argument is checked here first, so that errors speak of lengths, 3-D arrays and
1-tuples, never of conv2d's heights and widths.
"""
import numpy as np
from numpy.lib.stride_tricks import as_strided

from fastnn import _runtime
from fastnn import _validation as v
from fastnn import conv as _conv
from fastnn import reference

__all__ = ["conv1d", "conv1d_backward"]

_kernels = _runtime._kernels


class _Conv1dSpec:
    """The validated geometry of one 1-D convolution, and the conv2d arguments it becomes."""

    __slots__ = ("stride", "padding", "dilation", "groups", "out_shape")

    def __init__(self, x_shape, w_shape, stride, padding, dilation, groups):
        n, c_in, length = x_shape
        c_out, cin_g, kernel = w_shape
        self.stride = v.int_single("stride", stride, 1)
        self.dilation = v.int_single("dilation", dilation, 1)
        self.groups = v.positive_int("groups", groups)
        if kernel < 1:
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
        pads = v.conv1d_padding(padding, kernel, self.dilation, self.stride)
        length_out = v.conv_output_size("length", length, pads, kernel, self.stride, self.dilation)
        self.out_shape = (n, c_out, length_out)
        # one int for both ends, or 'same' where they differ (an even kernel)
        self.padding = pads[0] if pads[0] == pads[1] else "same"

    def conv2d_args(self):
        """(stride, padding, dilation, groups) of the unit-height conv2d."""
        padding = "same" if self.padding == "same" else (0, self.padding)
        return (1, self.stride), padding, (1, self.dilation), self.groups

    def reference_args(self):
        return self.stride, self.padding, self.dilation, self.groups

    def flops(self, w_shape):
        n, c_out, length_out = self.out_shape
        return 2 * n * c_out * length_out * w_shape[1] * w_shape[2]


# Channels per group from which the GEMM route pays (conv2d's tiles' own domain), and the
# output length from which a strided layer's im2col panels are full enough to beat the tiles.
_GEMM_MIN_CHANNELS = 16
_GEMM_MIN_STRIDED_LENGTH = 128


def _gemm_route(x_shape, w_shape, spec):
    """Whether the forward runs on conv2d's implicit GEMM itself (_kernels.conv1d_forward_gemm)
    rather than on the direct convolution tiles conv2d's dispatch would take for many channels.
    Measured side by side on unit-height rows: the GEMM wins on strided layers with long
    outputs (wav2vec 2.0's k3 s2 on 199 positions: 1.1-1.6x) and on short kernels at stride 1
    (WaveNet's dilated k2: 1.4-1.6x); the tiles win on long kernels (k9: 1.1x) and on short
    strided outputs (49 positions: 1.2x). kernels/_conv1d.pxi's conv1d_fast mirrors this test
    (it leaves these layers to this module)."""
    if x_shape[1] // spec.groups < _GEMM_MIN_CHANNELS or w_shape[0] // spec.groups < _GEMM_MIN_CHANNELS:
        return False
    if spec.stride >= 2:
        return spec.out_shape[2] >= _GEMM_MIN_STRIDED_LENGTH
    return w_shape[2] <= 3


def _one_channel(x_shape, w_shape, spec):
    """Whether the backward runs as plain GEMMs over strided views of the signal: one input
    channel, many outputs, no padding (wav2vec 2.0's first layer). The im2col matrix of one
    image is then a view, cols[k, t] = x[t*stride + k*dilation], and every product is a real
    term, so the GEMM's Inf/NaN are the oracle's."""
    return spec.groups == 1 and x_shape[1] == 1 and spec.padding == 0 and w_shape[0] >= 8


def _signal_cols(x_img, kernel, length_out, spec):
    """The (K, L_out) im2col view of one contiguous 1-D signal (no padding): read-only, no copy."""
    item = x_img.itemsize
    return as_strided(x_img, (kernel, length_out), (spec.dilation * item, spec.stride * item), writeable=False)


def _one_channel_backward(dy, x, weight, spec, needs_input_grad, needs_weight_grad, threads):
    """(grad_input, grad_weight) of a one-channel, unpadded conv1d (see _one_channel), per image:
    cols = W^T dY[n] (a GEMM over the output channels) added back tap by tap, and
    dW^T = sum over images, in order, of cols[n] dY[n]^T (a GEMM over the output positions).
    The order of every sum depends on the shape only, never on the thread count."""
    n, _, length = x.shape
    c_out, _, kernel = weight.shape
    length_out = dy.shape[2]
    s, d = spec.stride, spec.dilation
    grad_input = grad_weight = None
    if needs_input_grad:
        grad_input = np.zeros(x.shape, x.dtype)
        cols = np.empty((kernel, length_out), x.dtype)
        w_t = weight.reshape(c_out, kernel).T
        for img in range(n):
            _kernels.gemm(w_t, dy[img], cols, num_threads=threads)
            row = grad_input[img, 0]
            for tap in range(kernel):
                row[tap * d:tap * d + s * (length_out - 1) + 1:s] += cols[tap]
    if needs_weight_grad:
        grad_wt = np.zeros((kernel, c_out), x.dtype)
        for img in range(n):
            _kernels.gemm(_signal_cols(x[img, 0], kernel, length_out, spec), dy[img].T, grad_wt,
                          accumulate=img > 0, num_threads=threads)
        grad_weight = np.ascontiguousarray(grad_wt.T).reshape(c_out, 1, kernel)
    return grad_input, grad_weight


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, out=None):
    """1-D convolution (cross-correlation), as torch.nn.functional.conv1d.

    y[n, o, t] = bias[o] + sum over c, k of weight[o, c, k] * x[n, g*Cg + c, t*stride + k*dilation - left]
    for output channel o of group g (Cg = C_in // groups); padded positions are absent.

    Parameters
    ----------
    x : array_like, (N, C_in, L), float32 or float64
    weight : array_like, (C_out, C_in // groups, K), same dtype
    bias : array_like, (C_out,), same dtype, or None
    stride, dilation : int or (int,), >= 1
    padding : int or (int,) >= 0, 'valid', or 'same' (stride 1 only; the odd extra position
        goes at the end, as in PyTorch)
    groups : int >= 1 dividing C_in and C_out
    out : ndarray (N, C_out, L_out), optional
        Written in place and returned: C-contiguous, of x's dtype, not overlapping an input.

    Returns
    -------
    y : ndarray (N, C_out, L_out), x's dtype
        L_out = (L + left + right - dilation*(K - 1) - 1) // stride + 1.

    Raises
    ------
    TypeError
        Non-float or mixed dtypes, non-integer stride/padding/dilation/groups.
    ValueError
        Wrong ndim or shapes, bad stride/padding/dilation/groups, a kernel longer than the
        padded input, an output too large to exist, a bad `out`.
    """
    if _kernels is not None:
        y = _kernels.conv1d_fast(x, weight, bias, stride, padding, dilation, groups, out)
        if y is not None:
            return y
    x = v.as_float_array("x", x, 3)
    weight = v.as_float_array("weight", weight, 3)
    if bias is not None:
        bias = v.as_float_array("bias", bias, 1)
    dtype = v.common_dtype(x=x, weight=weight, bias=bias)
    spec = _Conv1dSpec(x.shape, weight.shape, stride, padding, dilation, groups)
    v.check_shape("bias", bias, spec.out_shape[1:2])
    v.check_size("conv1d's output for this x, weight, stride, padding and dilation", spec.out_shape,
                 dtype.itemsize)
    if out is not None:
        v.check_out(out, spec.out_shape, dtype, (x, weight, bias))
    if _kernels is None:
        return reference.conv1d(x, weight, bias, *spec.reference_args(), out=out)
    if _gemm_route(x.shape, weight.shape, spec) and x.size and weight.size:
        y = out if out is not None else np.empty(spec.out_shape, dtype)
        if y.size == 0 or _kernels.conv1d_forward_gemm(
                v.contiguous(x, dtype)[:, :, None, :], v.contiguous(weight, dtype)[:, :, None, :],
                None if bias is None else v.contiguous(bias, dtype), y[:, :, None, :],
                (1, spec.stride), (0, spec.padding), (1, spec.dilation), spec.groups,
                _runtime.threads_for(spec.flops(weight.shape))):
            return y
    y = _conv.conv2d(x[:, :, None, :], weight[:, :, None, :], bias, *spec.conv2d_args(),
                     out=None if out is None else out[:, :, None, :])
    return out if out is not None else y[:, :, 0, :]


def conv1d_backward(grad_output, x, weight, stride=1, padding=0, dilation=1, groups=1, *,
                    needs_input_grad=True, needs_weight_grad=True, needs_bias_grad=True):
    """Gradients of conv1d with respect to its input, weight and bias.

    Parameters
    ----------
    grad_output : array_like, (N, C_out, L_out)
        Gradient of the loss with respect to conv1d's output.
    x, weight, stride, padding, dilation, groups
        As given to `conv1d`.
    needs_input_grad, needs_weight_grad, needs_bias_grad : bool
        Which gradients to compute; the others are returned as None.

    Returns
    -------
    grad_input : ndarray (N, C_in, L) or None
    grad_weight : ndarray (C_out, C_in // groups, K) or None
    grad_bias : ndarray (C_out,) or None, grad_output.sum(axis=(0, 2))

    Raises
    ------
    TypeError, ValueError
        As `conv1d`; ValueError also when grad_output's shape is not conv1d's output shape.
    """
    grad_output = v.as_float_array("grad_output", grad_output, 3)
    x = v.as_float_array("x", x, 3)
    weight = v.as_float_array("weight", weight, 3)
    dtype = v.common_dtype(grad_output=grad_output, x=x, weight=weight)
    spec = _Conv1dSpec(x.shape, weight.shape, stride, padding, dilation, groups)
    if grad_output.shape != spec.out_shape:
        raise ValueError(f"grad_output must have shape {spec.out_shape} (conv1d's output), got {grad_output.shape}")
    if _kernels is None:
        return reference.conv1d_backward(
            grad_output, x, weight, *spec.reference_args(), needs_input_grad=needs_input_grad,
            needs_weight_grad=needs_weight_grad, needs_bias_grad=needs_bias_grad)
    if _one_channel(x.shape, weight.shape, spec):
        dy = v.contiguous(grad_output, dtype)
        threads = _runtime.threads_for(spec.flops(weight.shape))
        grad_input, grad_weight = _one_channel_backward(dy, v.contiguous(x, dtype), v.contiguous(weight, dtype),
                                                        spec, needs_input_grad, needs_weight_grad, threads)
        grad_bias = None
        if needs_bias_grad:
            grad_bias = _kernels.conv2d_grad_bias(dy[:, :, None, :], np.empty(dy.shape[1], dtype), threads)
        return grad_input, grad_weight, grad_bias
    grad_input, grad_weight, grad_bias = _conv.conv2d_backward(
        grad_output[:, :, None, :], x[:, :, None, :], weight[:, :, None, :], *spec.conv2d_args(),
        needs_input_grad=needs_input_grad, needs_weight_grad=needs_weight_grad,
        needs_bias_grad=needs_bias_grad)
    return (None if grad_input is None else grad_input[:, :, 0, :],
            None if grad_weight is None else grad_weight[:, :, 0, :], grad_bias)
