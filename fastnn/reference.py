"""Pure-NumPy reference implementations of fastnn's public kernels.

This module mirrors fastnn's public kernels one-to-one: same names, same
argument orders, same return values (PyTorch conventions). It is plain,
readable NumPy, and it serves three purposes:

* the correctness oracle the compiled kernels are tested against,
* the fallback used when the compiled extension cannot be loaded,
* the baseline of the benchmarks.

Every function computes in the dtype of its inputs (float32 or float64) and
never modifies its inputs. Validation is deliberately light: the public layer
in ``fastnn`` validates and normalises arguments before calling in here.

Kernels
-------
conv2d, conv2d_backward
    2-D cross-correlation in NCHW layout, as ``torch.nn.functional.conv2d``.
rnn_step, rnn_step_backward, rnn_forward, rnn_backward
    Elman RNN (``torch.nn.RNNCell`` / ``torch.nn.RNN`` layout), one step or a
    whole sequence with back-propagation through time.

Padding, NaN and Inf (checked against PyTorch 2.13)
---------------------------------------------------
A padded position is *absent*: it contributes nothing, not ``0 * weight``.
The convolution is computed tap by tap (one kernel offset ``(i, j)`` at a
time), and each tap only touches the output pixels for which it reads a real
input pixel. So a weight of ``inf`` or ``nan`` whose tap lands on padding does
not turn that output into ``nan``, and neither does an ``inf`` in
``grad_output`` turn ``grad_weight`` into ``nan`` at taps that saw padding.
For finite values this is the same as zero padding.

PyTorch is not consistent here: its oneDNN backend (most float32
convolutions) treats padding as absent, like this module, while its im2col
backend (``_ConvBackend.Slow2d``: every float64 convolution and small float32
ones) multiplies zero padding by the weight and gives ``inf * 0 = nan``.
"""

import numpy as np

__all__ = [
    "conv2d",
    "conv2d_backward",
    "rnn_step",
    "rnn_step_backward",
    "rnn_forward",
    "rnn_backward",
]


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

# Inf and NaN inputs are part of the contract (they must reach exactly the outputs that see
# them); NumPy's warnings about them would only be noise.
_ieee = np.errstate(invalid="ignore", over="ignore", divide="ignore")


def _float_dtype(*arrays):
    """The dtype to compute in: float32 or float64 inputs keep their dtype
    (mixed gives float64); integer inputs are computed in float64."""
    return np.result_type(*arrays, np.float32)


def _pair(value):
    """Normalise an int or a pair of ints to a tuple of two ints."""
    if np.ndim(value) == 0:
        return int(value), int(value)
    a, b = value
    return int(a), int(b)


def _conv_padding(padding, kernel_size, stride, dilation):
    """Padding as ((top, bottom), (left, right)).

    ``'valid'`` is no padding. ``'same'`` (stride 1 only) pads each spatial
    axis by a total of ``dilation * (kernel - 1)``: ``total // 2`` before, and
    the remainder (one more when the total is odd) after, i.e. at the bottom /
    right, exactly as torch.nn.functional.conv2d does.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ValueError("padding='same' requires stride 1")
            pads = []
            for k, d in zip(kernel_size, dilation):
                total = d * (k - 1)
                pads.append((total // 2, total - total // 2))
            return tuple(pads)
        raise ValueError(f"padding must be 'valid', 'same', an int or a pair, got {padding!r}")
    ph, pw = _pair(padding)
    return (ph, ph), (pw, pw)


def _conv_geometry(x_shape, w_shape, stride, padding, dilation):
    """Normalised (stride, dilation, pad_before, (out_h, out_w)).

    ``pad_before`` is (top, left); the padding after only matters through the
    output size.
    """
    stride = _pair(stride)
    dilation = _pair(dilation)
    kernel_size = w_shape[2:]
    pads = _conv_padding(padding, kernel_size, stride, dilation)
    out_hw = []
    for size, (before, after), k, s, d in zip(x_shape[2:], pads, kernel_size, stride, dilation):
        span = d * (k - 1) + 1  # extent of the dilated kernel
        out = (size + before + after - span) // s + 1
        if out < 1:
            raise ValueError(
                f"kernel (dilated extent {span}) does not fit in the padded input "
                f"(size {size} + padding {before}+{after})"
            )
        out_hw.append(out)
    return stride, dilation, (pads[0][0], pads[1][0]), tuple(out_hw)


def _tap_slices(offset, pad_before, size, stride, out_size):
    """Which outputs a kernel tap reads real input for, along one axis.

    Output ``o`` reads input ``o * stride + offset - pad_before`` with this
    tap (``offset = kernel index * dilation``); it is padding unless it lies
    in ``[0, size)``. Those outputs are consecutive, so the answer is a pair
    of slices ``(outputs, inputs)`` of equal length, or None if there are none.
    """
    reads = np.arange(out_size) * stride + offset - pad_before
    inside = np.flatnonzero((reads >= 0) & (reads < size))
    if inside.size == 0:
        return None
    first, last = inside[0], inside[-1]
    return slice(first, last + 1), slice(reads[first], reads[last] + 1, stride)


def _conv_taps(kernel_size, dilation, pad_before, in_hw, stride, out_hw):
    """Yield ``(i, j, out_rows, out_cols, in_rows, in_cols)`` for every kernel
    tap that reads at least one real (non-padding) input pixel."""
    for i in range(kernel_size[0]):
        rows = _tap_slices(i * dilation[0], pad_before[0], in_hw[0], stride[0], out_hw[0])
        for j in range(kernel_size[1]):
            cols = _tap_slices(j * dilation[1], pad_before[1], in_hw[1], stride[1], out_hw[1])
            if rows is not None and cols is not None:
                yield i, j, rows[0], cols[0], rows[1], cols[1]


def _weight_taps(weight, groups):
    """The weight (C_out, Cg, kH, kW) as w_taps (kH, kW, G, Og, Cg): w_taps[i, j]
    is tap (i, j)'s channel-mixing matrix per group, contiguous for BLAS."""
    c_out, cg, kh, kw = weight.shape
    w_taps = weight.reshape(groups, c_out // groups, cg, kh, kw).transpose(3, 4, 0, 1, 2)
    return np.ascontiguousarray(w_taps)


# ---------------------------------------------------------------------------
# conv2d
# ---------------------------------------------------------------------------

@_ieee
def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, out=None):
    """2-D convolution (cross-correlation), as ``torch.nn.functional.conv2d``.

    ``y[n, o, oy, ox] = bias[o] + sum_{c, i, j} weight[o, c, i, j] *
    x[n, g * C_in/groups + c, oy*sh + i*dh - pad_top, ox*sw + j*dw - pad_left]``
    where ``g = o // (C_out/groups)`` is the group of output channel ``o``, and
    the sum skips the terms whose input pixel is padding (see the module notes).

    Parameters
    ----------
    x : array_like, shape (N, C_in, H, W), float32 or float64
    weight : array_like, shape (C_out, C_in // groups, kH, kW)
    bias : array_like, shape (C_out,), or None
    stride : int or (int, int), >= 1
    padding : int or (int, int) >= 0, 'valid' or 'same'
        ``'same'`` (stride 1 only) pads ``dilation * (k - 1)`` in total per
        axis, ``total // 2`` before and the rest after (bottom / right).
    dilation : int or (int, int), >= 1
    groups : int, divides C_in and C_out
    out : ndarray, shape (N, C_out, out_h, out_w), optional
        Preallocated result, written into and returned.

    Returns
    -------
    y : ndarray, shape (N, C_out, out_h, out_w), dtype of the inputs
        ``out_h = (H + pad_top + pad_bottom - dh * (kH - 1) - 1) // sh + 1``,
        and likewise ``out_w``.

    Raises
    ------
    ValueError
        If ``padding`` is an unknown string, ``'same'`` is used with a stride
        other than 1, or the kernel does not fit in the padded input.
    """
    x = np.asarray(x)
    weight = np.asarray(weight)
    dtype = _float_dtype(x, weight)
    n, c_in, h, w = x.shape
    c_out, cg, kh, kw = weight.shape
    og = c_out // groups
    stride, dilation, pad_before, (out_h, out_w) = _conv_geometry(
        x.shape, weight.shape, stride, padding, dilation)

    # Channels split by group: x (N, G, Cg, H, W), and the weight as one
    # contiguous (G, Og, Cg) matrix stack per tap, w_taps (kH, kW, G, Og, Cg)
    xg = x.astype(dtype, copy=False).reshape(n, groups, cg, h, w)
    w_taps = _weight_taps(weight.astype(dtype, copy=False), groups)
    y = np.zeros((n, groups, og, out_h, out_w), dtype=dtype)
    # Loop over the kernel taps; each adds one channel-mixing matrix product
    # (Og, Cg) @ (Cg, pixels) per image and group to the outputs it reaches.
    for i, j, out_rows, out_cols, in_rows, in_cols in _conv_taps(
            (kh, kw), dilation, pad_before, (h, w), stride, (out_h, out_w)):
        x_tap = xg[:, :, :, in_rows, in_cols]  # (N, G, Cg, rows, cols)
        rows, cols = x_tap.shape[3:]
        contribution = np.matmul(w_taps[i, j], x_tap.reshape(n, groups, cg, rows * cols))
        y[:, :, :, out_rows, out_cols] += contribution.reshape(n, groups, og, rows, cols)
    y = y.reshape(n, c_out, out_h, out_w)
    if bias is not None:
        y += np.asarray(bias, dtype=dtype).reshape(1, c_out, 1, 1)
    return _store(y, out)


@_ieee
def conv2d_backward(grad_output, x, weight, stride=1, padding=0, dilation=1, groups=1, *,
                    needs_input_grad=True, needs_weight_grad=True, needs_bias_grad=True):
    """Gradients of :func:`conv2d` with respect to its input, weight and bias.

    Like the forward pass, the sums skip padded input positions: they have no
    gradient, and they contribute nothing to ``grad_weight``.

    Parameters
    ----------
    grad_output : array_like, shape (N, C_out, out_h, out_w)
        Gradient of the loss with respect to the output of :func:`conv2d`.
    x : array_like, shape (N, C_in, H, W)
    weight : array_like, shape (C_out, C_in // groups, kH, kW)
    stride, padding, dilation, groups
        As in :func:`conv2d`.
    needs_input_grad, needs_weight_grad, needs_bias_grad : bool
        Which gradients to compute; one not asked for is returned as None.

    Returns
    -------
    grad_input : ndarray, shape (N, C_in, H, W), or None
    grad_weight : ndarray, shape (C_out, C_in // groups, kH, kW), or None
    grad_bias : ndarray, shape (C_out,), or None
        ``grad_output.sum(axis=(0, 2, 3))``.

    Raises
    ------
    ValueError
        As :func:`conv2d`.
    """
    grad_output = np.asarray(grad_output)
    x = np.asarray(x)
    weight = np.asarray(weight)
    dtype = _float_dtype(grad_output, x, weight)
    n, c_in, h, w = x.shape
    c_out, cg, kh, kw = weight.shape
    og = c_out // groups
    stride, dilation, pad_before, (out_h, out_w) = _conv_geometry(
        x.shape, weight.shape, stride, padding, dilation)
    taps = list(_conv_taps((kh, kw), dilation, pad_before, (h, w), stride, (out_h, out_w)))

    # Channels split by group, as in conv2d
    dyg = grad_output.astype(dtype, copy=False).reshape(n, groups, og, out_h, out_w)
    xg = x.astype(dtype, copy=False).reshape(n, groups, cg, h, w)

    grad_input = grad_weight = grad_bias = None

    if needs_bias_grad:
        grad_bias = grad_output.astype(dtype, copy=False).sum(axis=(0, 2, 3))

    if needs_weight_grad:
        # grad_weight[g, :, :, i, j] = sum over images and pixels of
        # dy (Og, pixels) @ x_tap.T (pixels, Cg)
        grad_weight = np.zeros((groups, og, cg, kh, kw), dtype=dtype)
        for i, j, out_rows, out_cols, in_rows, in_cols in taps:
            dy_tap = dyg[:, :, :, out_rows, out_cols]  # (N, G, Og, rows, cols)
            x_tap = xg[:, :, :, in_rows, in_cols]      # (N, G, Cg, rows, cols)
            pixels = n * dy_tap.shape[3] * dy_tap.shape[4]
            dy_mat = dy_tap.transpose(1, 2, 0, 3, 4).reshape(groups, og, pixels)
            x_mat = x_tap.transpose(1, 0, 3, 4, 2).reshape(groups, pixels, cg)
            grad_weight[:, :, :, i, j] = np.matmul(dy_mat, x_mat)
        grad_weight = grad_weight.reshape(c_out, cg, kh, kw)

    if needs_input_grad:
        # Scatter each tap's weight.T @ dy back onto the input pixels it read
        # (col2im, one kernel offset at a time).
        w_taps = _weight_taps(weight.astype(dtype, copy=False), groups)
        grad_input = np.zeros((n, groups, cg, h, w), dtype=dtype)
        for i, j, out_rows, out_cols, in_rows, in_cols in taps:
            dy_tap = dyg[:, :, :, out_rows, out_cols]  # (N, G, Og, rows, cols)
            rows, cols = dy_tap.shape[3:]
            w_tap_t = w_taps[i, j].transpose(0, 2, 1)  # (G, Cg, Og)
            contribution = np.matmul(w_tap_t, dy_tap.reshape(n, groups, og, rows * cols))
            grad_input[:, :, :, in_rows, in_cols] += contribution.reshape(n, groups, cg, rows, cols)
        grad_input = grad_input.reshape(n, c_in, h, w)

    return grad_input, grad_weight, grad_bias


# ---------------------------------------------------------------------------
# RNN
# ---------------------------------------------------------------------------

def _activation(pre, nonlinearity):
    if nonlinearity == "tanh":
        return np.tanh(pre)
    if nonlinearity == "relu":
        return np.maximum(pre, 0)  # propagates NaN, like torch.relu
    raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")


def _through_activation(grad_h_next, h_next, nonlinearity):
    """The gradient at the pre-activation, from the one at the output h_next = act(pre).

    relu's derivative is applied as PyTorch does, as a select: a dead unit passes no gradient
    at all, so an Inf or NaN arriving there stops (a product would make 0 * Inf = NaN)."""
    if nonlinearity == "tanh":
        return grad_h_next * (1 - h_next * h_next)
    if nonlinearity == "relu":
        return np.where(h_next > 0, grad_h_next, 0).astype(grad_h_next.dtype, copy=False)
    raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")


@_ieee
def rnn_step(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    """One step of an Elman RNN, as ``torch.nn.RNNCell``.

    ``h_next = act(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh)``

    Parameters
    ----------
    x : array_like, shape (N, I), float32 or float64
    h : array_like, shape (N, H)
    w_ih : array_like, shape (H, I)
    w_hh : array_like, shape (H, H)
    b_ih, b_hh : array_like, shape (H,), or None
    nonlinearity : {'tanh', 'relu'}

    Returns
    -------
    h_next : ndarray, shape (N, H), dtype of the inputs

    Raises
    ------
    ValueError
        If ``nonlinearity`` is neither 'tanh' nor 'relu'.
    """
    x, h, w_ih, w_hh = (np.asarray(a) for a in (x, h, w_ih, w_hh))
    dtype = _float_dtype(x, h, w_ih, w_hh)
    pre = x.astype(dtype, copy=False) @ w_ih.astype(dtype, copy=False).T
    pre += h.astype(dtype, copy=False) @ w_hh.astype(dtype, copy=False).T
    if b_ih is not None:
        pre += np.asarray(b_ih, dtype=dtype)
    if b_hh is not None:
        pre += np.asarray(b_hh, dtype=dtype)
    return _activation(pre, nonlinearity)


@_ieee
def rnn_step_backward(grad_h_next, x, h, h_next, w_ih, w_hh, nonlinearity="tanh"):
    """Gradients of one :func:`rnn_step`.

    Parameters
    ----------
    grad_h_next : array_like, shape (N, H)
        Gradient of the loss with respect to ``h_next``.
    x : array_like, shape (N, I)
    h : array_like, shape (N, H)
        The hidden state the step started from.
    h_next : array_like, shape (N, H)
        The output of the step (the activation's derivative is computed from
        it: ``tanh' = 1 - h_next**2``, ``relu' = (h_next > 0)``).
    w_ih : array_like, shape (H, I)
    w_hh : array_like, shape (H, H)
    nonlinearity : {'tanh', 'relu'}

    Returns
    -------
    grad_x : ndarray, shape (N, I)
    grad_h : ndarray, shape (N, H)
    grad_w_ih : ndarray, shape (H, I)
    grad_w_hh : ndarray, shape (H, H)
    grad_b : ndarray, shape (H,)
        Gradient of ``b_ih`` and of ``b_hh`` alike.
    """
    grad_h_next, x, h, h_next, w_ih, w_hh = (
        np.asarray(a) for a in (grad_h_next, x, h, h_next, w_ih, w_hh))
    dtype = _float_dtype(grad_h_next, x, h, h_next, w_ih, w_hh)
    grad_h_next, x, h, h_next, w_ih, w_hh = (
        a.astype(dtype, copy=False) for a in (grad_h_next, x, h, h_next, w_ih, w_hh))
    grad_pre = _through_activation(grad_h_next, h_next, nonlinearity)  # (N, H)
    grad_x = grad_pre @ w_ih
    grad_h = grad_pre @ w_hh
    grad_w_ih = grad_pre.T @ x
    grad_w_hh = grad_pre.T @ h
    grad_b = grad_pre.sum(axis=0)
    return grad_x, grad_h, grad_w_ih, grad_w_hh, grad_b


@_ieee
def rnn_forward(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh", *, out=None):
    """An Elman RNN over a whole sequence, as a one-layer ``torch.nn.RNN``.

    ``hs[t] = act(x[t] @ w_ih.T + b_ih + hs[t-1] @ w_hh.T + b_hh)``, with
    ``hs[-1] = h0``.

    Parameters
    ----------
    x : array_like, shape (T, N, I), float32 or float64
        T may be 0.
    h0 : array_like, shape (N, H), or None (zeros)
    w_ih : array_like, shape (H, I)
    w_hh : array_like, shape (H, H)
    b_ih, b_hh : array_like, shape (H,), or None
    nonlinearity : {'tanh', 'relu'}
    out : ndarray, shape (T, N, H), optional
        Preallocated result, written into and returned.

    Returns
    -------
    hs : ndarray, shape (T, N, H), dtype of the inputs
        Every step's hidden state.
    """
    x, w_ih, w_hh = (np.asarray(a) for a in (x, w_ih, w_hh))
    dtype = _float_dtype(x, w_ih, w_hh)
    t_len, n = x.shape[:2]
    hidden = w_hh.shape[0]
    h = np.zeros((n, hidden), dtype=dtype) if h0 is None else np.asarray(h0, dtype=dtype)
    hs = np.empty((t_len, n, hidden), dtype=dtype)
    for t in range(t_len):
        h = rnn_step(x[t], h, w_ih, w_hh, b_ih, b_hh, nonlinearity)
        hs[t] = h
    return _store(hs, out)


@_ieee
def rnn_backward(grad_hs, x, h0, hs, w_ih, w_hh, nonlinearity="tanh"):
    """Back-propagation through time for :func:`rnn_forward`.

    Parameters
    ----------
    grad_hs : array_like, shape (T, N, H)
        Gradient of the loss with respect to every step's hidden state
        (its direct contribution only, not through later steps).
    x : array_like, shape (T, N, I)
    h0 : array_like, shape (N, H), or None (zeros)
    hs : array_like, shape (T, N, H)
        The output of :func:`rnn_forward`.
    w_ih : array_like, shape (H, I)
    w_hh : array_like, shape (H, H)
    nonlinearity : {'tanh', 'relu'}

    Returns
    -------
    grad_x : ndarray, shape (T, N, I)
    grad_h0 : ndarray, shape (N, H)
        Returned even when ``h0`` is None (zeros when T = 0).
    grad_w_ih : ndarray, shape (H, I)
    grad_w_hh : ndarray, shape (H, H)
    grad_b : ndarray, shape (H,)
        Gradient of ``b_ih`` and of ``b_hh`` alike.
    """
    grad_hs, x, hs, w_ih, w_hh = (np.asarray(a) for a in (grad_hs, x, hs, w_ih, w_hh))
    dtype = _float_dtype(grad_hs, x, hs, w_ih, w_hh)
    t_len, n, n_in = x.shape
    hidden = w_hh.shape[0]
    h0 = np.zeros((n, hidden), dtype=dtype) if h0 is None else np.asarray(h0, dtype=dtype)

    grad_x = np.zeros((t_len, n, n_in), dtype=dtype)
    grad_w_ih = np.zeros((hidden, n_in), dtype=dtype)
    grad_w_hh = np.zeros((hidden, hidden), dtype=dtype)
    grad_b = np.zeros(hidden, dtype=dtype)
    grad_h = np.zeros((n, hidden), dtype=dtype)  # gradient flowing back from step t+1
    for t in reversed(range(t_len)):
        h_prev = hs[t - 1] if t > 0 else h0
        gx, grad_h, gw_ih, gw_hh, gb = rnn_step_backward(
            grad_hs[t] + grad_h, x[t], h_prev, hs[t], w_ih, w_hh, nonlinearity)
        grad_x[t] = gx
        grad_w_ih += gw_ih
        grad_w_hh += gw_hh
        grad_b += gb
    return grad_x, grad_h, grad_w_ih, grad_w_hh, grad_b


def _store(result, out):
    """Write ``result`` into ``out`` (when given) and return what the caller gets."""
    if out is None:
        return result
    if out.shape != result.shape:
        raise ValueError(f"out has shape {out.shape}, expected {result.shape}")
    out[...] = result
    return out
