"""Pure-NumPy conv2d and conv2d_backward: the oracles of fastnn's conv2d kernels.

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

from fastnn.reference._common import compute_dtype, int_pair, quiet_ieee, store_result

__all__ = ["conv2d", "conv2d_backward"]


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
    ph, pw = int_pair(padding)
    return (ph, ph), (pw, pw)


def _conv_geometry(x_shape, w_shape, stride, padding, dilation):
    """Normalised (stride, dilation, pad_before, (out_h, out_w)).

    ``pad_before`` is (top, left); the padding after only matters through the
    output size.
    """
    stride = int_pair(stride)
    dilation = int_pair(dilation)
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

@quiet_ieee
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
    dtype = compute_dtype(x, weight)
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
    return store_result(y, out)


@quiet_ieee
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
    dtype = compute_dtype(grad_output, x, weight)
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
