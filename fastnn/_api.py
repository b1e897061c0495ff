"""fastnn's public kernels: validate, normalise, then run the compiled driver.

The compiled drivers (fastnn._kernels) trust their arguments; everything they rely on is
checked here. When the extension is missing, fastnn.reference does the work instead.
"""
import numpy as np

from fastnn import _runtime
from fastnn import _validation as v
from fastnn import reference

_kernels = _runtime._kernels


# ---- conv2d ---------------------------------------------------------------------------------

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


# ---- Elman RNN ------------------------------------------------------------------------------

def _rnn_weights(x_features, w_ih, w_hh, b_ih, b_hh):
    """Check the torch.nn.RNNCell-layout weights; return hidden size H."""
    hidden = w_ih.shape[0]
    if w_ih.shape[1] != x_features:
        raise ValueError(f"w_ih must have shape (H, {x_features}) to match x's features, got {w_ih.shape}")
    if w_hh.shape != (hidden, hidden):
        raise ValueError(f"w_hh must have shape ({hidden}, {hidden}) to match w_ih, got {w_hh.shape}")
    for name, b in (("b_ih", b_ih), ("b_hh", b_hh)):
        if b is not None and b.shape != (hidden,):
            raise ValueError(f"{name} must have shape ({hidden},), got {b.shape}")
    return hidden


def _rnn_inputs(x, x_ndim, w_ih, w_hh, b_ih=None, b_hh=None, **others):
    """Arrays for an RNN kernel, with one common dtype; x has x_ndim dims, others named
    (array, ndim). Of the others only h0 may be None (zeros)."""
    x = v.as_float_array("x", x, x_ndim)
    w_ih = v.as_float_array("w_ih", w_ih, 2)
    w_hh = v.as_float_array("w_hh", w_hh, 2)
    b_ih = None if b_ih is None else v.as_float_array("b_ih", b_ih, 1)
    b_hh = None if b_hh is None else v.as_float_array("b_hh", b_hh, 1)
    arrays = {name: None if a is None and name == "h0" else v.as_float_array(name, a, nd)
              for name, (a, nd) in others.items()}
    dtype = v.common_dtype(x=x, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh, **arrays)
    hidden = _rnn_weights(x.shape[-1], w_ih, w_hh, b_ih, b_hh)
    return dtype, hidden, x, w_ih, w_hh, b_ih, b_hh, arrays


def _check_shape(name, arr, shape):
    if arr is not None and arr.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {arr.shape}")


def _forward_checked(relu, nonlinearity, dtype, x, h0, w_ih, w_hh, b_ih, b_hh, out):
    """rnn_forward on validated arrays: x (T, N, I), h0 (N, H) or None."""
    steps, batch, features = x.shape
    hidden = w_ih.shape[0]
    shape = (steps, batch, hidden)
    v.check_size("hs", shape, dtype.itemsize)
    hs = v.check_out(out, shape, dtype, (x, h0, w_ih, w_hh, b_ih, b_hh)) if out is not None else np.empty(shape, dtype)
    if hs.size == 0:
        return hs
    if _kernels is None:
        hs[...] = reference.rnn_forward(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity)
        return hs
    bias = b_ih if b_hh is None else (b_hh if b_ih is None else b_ih.astype(dtype) + b_hh.astype(dtype))
    flops = 2 * steps * batch * hidden * (features + hidden)
    _kernels.rnn_forward(
        v.contiguous(x, dtype), None if h0 is None else v.contiguous(h0, dtype),
        v.contiguous(w_ih, dtype), v.contiguous(w_hh, dtype),
        None if bias is None else v.contiguous(bias, dtype), hs, relu, _runtime.threads_for(flops),
    )
    return hs


def _backward_checked(relu, nonlinearity, dtype, grad_hs, x, h0, hs, w_ih, w_hh):
    """rnn_backward on validated arrays of matching shapes."""
    steps, batch, features = x.shape
    hidden = w_ih.shape[0]
    if _kernels is None:
        grads = reference.rnn_backward(grad_hs, x, h0, hs, w_ih, w_hh, nonlinearity)
        return tuple(np.asarray(g, dtype) for g in grads)
    dz = np.empty((steps, batch, hidden), dtype)
    grad_x = np.empty(x.shape, dtype)
    grad_h0 = np.empty((batch, hidden), dtype)
    grad_w_ih = np.empty(w_ih.shape, dtype)
    grad_w_hh = np.empty(w_hh.shape, dtype)
    flops = 6 * steps * batch * hidden * (features + hidden)
    _kernels.rnn_backward(
        v.contiguous(grad_hs, dtype), v.contiguous(x, dtype),
        None if h0 is None else v.contiguous(h0, dtype), v.contiguous(hs, dtype),
        v.contiguous(w_ih, dtype), v.contiguous(w_hh, dtype), relu,
        dz, grad_x, grad_h0, grad_w_ih, grad_w_hh, _runtime.threads_for(flops),
    )
    grad_b = dz.sum(axis=(0, 1), dtype=dtype)
    return grad_x, grad_h0, grad_w_ih, grad_w_hh, grad_b


def rnn_forward(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh", *, out=None):
    """Run an Elman RNN over a whole sequence: h_t = act(x_t w_ih^T + b_ih + h_{t-1} w_hh^T + b_hh).

    Parameters
    ----------
    x : array_like, (T, N, I), float32 or float64
    h0 : array_like (N, H) or None (zeros)
    w_ih : array_like (H, I); w_hh : array_like (H, H); b_ih, b_hh : array_like (H,) or None
        torch.nn.RNN's layout for one layer and direction.
    nonlinearity : 'tanh' or 'relu'
    out : ndarray (T, N, H), optional, written in place and returned

    Returns
    -------
    hs : ndarray (T, N, H), every step's hidden state; hs[-1] is the last. T = 0 is allowed.

    Raises
    ------
    TypeError
        Non-float or mixed dtypes.
    ValueError
        Wrong ndim or shapes, an unknown nonlinearity, a bad `out`.
    """
    if _kernels is not None:
        hs = _kernels.rnn_forward_fast(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity, out)
        if hs is not None:
            return hs
    relu = v.nonlinearity_is_relu(nonlinearity)
    dtype, hidden, x, w_ih, w_hh, b_ih, b_hh, extra = _rnn_inputs(x, 3, w_ih, w_hh, b_ih, b_hh, h0=(h0, 2))
    h0 = extra["h0"]
    _check_shape("h0", h0, (x.shape[1], hidden))
    return _forward_checked(relu, nonlinearity, dtype, x, h0, w_ih, w_hh, b_ih, b_hh, out)


def rnn_backward(grad_hs, x, h0, hs, w_ih, w_hh, nonlinearity="tanh"):
    """Backpropagation through time for `rnn_forward`.

    Parameters
    ----------
    grad_hs : array_like (T, N, H)
        Loss gradient for every step's hidden state (add a gradient for the final state alone
        into grad_hs[-1]).
    x, h0, w_ih, w_hh, nonlinearity
        As given to `rnn_forward` (h0 may be None: zeros).
    hs : array_like (T, N, H)
        What `rnn_forward` returned.

    Returns
    -------
    grad_x : (T, N, I); grad_h0 : (N, H) (also when h0 is None); grad_w_ih : (H, I);
    grad_w_hh : (H, H); grad_b : (H,), the gradient of b_ih and of b_hh alike.

    Raises
    ------
    TypeError, ValueError
        As `rnn_forward`; ValueError also when hs or grad_hs is not (T, N, H).
    """
    relu = v.nonlinearity_is_relu(nonlinearity)
    dtype, hidden, x, w_ih, w_hh, _, _, extra = _rnn_inputs(
        x, 3, w_ih, w_hh, grad_hs=(grad_hs, 3), h0=(h0, 2), hs=(hs, 3))
    steps, batch, _ = x.shape
    _check_shape("h0", extra["h0"], (batch, hidden))
    _check_shape("hs", extra["hs"], (steps, batch, hidden))
    _check_shape("grad_hs", extra["grad_hs"], (steps, batch, hidden))
    return _backward_checked(relu, nonlinearity, dtype, extra["grad_hs"], x, extra["h0"], extra["hs"], w_ih, w_hh)


def rnn_step(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    """One Elman RNN step, as torch.nn.RNNCell: act(x w_ih^T + b_ih + h w_hh^T + b_hh).

    Parameters
    ----------
    x : array_like (N, I); h : array_like (N, H); w_ih (H, I); w_hh (H, H); b_ih, b_hh (H,) or None
    nonlinearity : 'tanh' or 'relu'

    Returns
    -------
    h_next : ndarray (N, H)

    Raises
    ------
    TypeError, ValueError
        As `rnn_forward`.
    """
    if _kernels is not None and h is not None and type(x) is np.ndarray and x.ndim == 2:
        hs = _kernels.rnn_forward_fast(x[None], h, w_ih, w_hh, b_ih, b_hh, nonlinearity, None)
        if hs is not None:
            return hs[0]
    relu = v.nonlinearity_is_relu(nonlinearity)
    dtype, hidden, x, w_ih, w_hh, b_ih, b_hh, extra = _rnn_inputs(x, 2, w_ih, w_hh, b_ih, b_hh, h=(h, 2))
    h = extra["h"]
    _check_shape("h", h, (x.shape[0], hidden))
    return _forward_checked(relu, nonlinearity, dtype, x[None], h, w_ih, w_hh, b_ih, b_hh, None)[0]


def rnn_step_backward(grad_h_next, x, h, h_next, w_ih, w_hh, nonlinearity="tanh"):
    """Gradients of `rnn_step`.

    Parameters
    ----------
    grad_h_next : array_like (N, H); x : (N, I); h : (N, H); h_next : (N, H), what rnn_step returned
    w_ih, w_hh, nonlinearity : as given to rnn_step

    Returns
    -------
    grad_x (N, I), grad_h (N, H), grad_w_ih (H, I), grad_w_hh (H, H), grad_b (H,)

    Raises
    ------
    TypeError, ValueError
        As `rnn_forward`.
    """
    relu = v.nonlinearity_is_relu(nonlinearity)
    dtype, hidden, x, w_ih, w_hh, _, _, extra = _rnn_inputs(
        x, 2, w_ih, w_hh, grad_h_next=(grad_h_next, 2), h=(h, 2), h_next=(h_next, 2))
    shape = (x.shape[0], hidden)
    for name in ("h", "h_next", "grad_h_next"):
        _check_shape(name, extra[name], shape)
    grad_x, grad_h, grad_w_ih, grad_w_hh, grad_b = _backward_checked(
        relu, nonlinearity, dtype, extra["grad_h_next"][None], x[None], extra["h"], extra["h_next"][None], w_ih, w_hh)
    return grad_x[0], grad_h, grad_w_ih, grad_w_hh, grad_b
