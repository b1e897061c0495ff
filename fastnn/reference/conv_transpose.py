"""Pure-NumPy conv_transpose2d and conv_transpose2d_backward: the oracles of fastnn's
transposed 2-D convolution kernels.

The definition is the scatter one: every input pixel ``x[n, c, iy, ix]`` adds its value
times the kernel into the output window it owns,

    y[n, g*Og + o, iy*sh - ph + i*dh, ix*sw - pw + j*dw] += x[n, c, iy, ix] * weight[c, o, i, j]

for the input channel ``c`` of group ``g`` (``Og = C_out / groups``), every kernel tap
``(i, j)`` and every output channel ``o`` of that group. The output is
``H_out = (H - 1)*sh - 2*ph + dh*(kH - 1) + output_padding_h + 1`` rows (likewise columns):
``padding`` crops that many rows and columns off each side of the full scatter, and
``output_padding`` adds rows and columns at the bottom and right that only the crop's far
side can reach.

Inf and NaN: there is no padding to meet. A term exists only where an input pixel scatters
into an output position inside the result; a term that would land in the cropped border is
not computed at all. So an Inf weight reaches exactly the outputs its tap writes from real
input pixels, and an Inf in ``grad_output`` reaches ``grad_weight`` only at taps that wrote
that output. (PyTorch's oneDNN deconvolution agrees; its float64 im2col path agrees too,
since a transposed convolution's forward is a scatter there as well.)

This module is written from the definition above, independently of ``fastnn.reference.conv``:
it shares no code with conv2d's oracle, so the two check each other.
"""

import numpy as np

from fastnn.reference._common import compute_dtype, int_pair, quiet_ieee, store_result

__all__ = ["conv_transpose2d", "conv_transpose2d_backward"]


def _transpose_geometry(x_shape, w_shape, stride, padding, output_padding, groups, dilation):
    """Normalised (stride, padding, dilation, (H_out, W_out)) of a transposed convolution."""
    stride, padding = int_pair(stride), int_pair(padding)
    output_padding, dilation = int_pair(output_padding), int_pair(dilation)
    if x_shape[1] != w_shape[0]:
        raise ValueError(f"weight has {w_shape[0]} input channels, x has {x_shape[1]}")
    if x_shape[1] % groups:
        raise ValueError(f"groups={groups} does not divide the input channels ({x_shape[1]})")
    out_hw = []
    for size, k, s, p, op, d in zip(x_shape[2:], w_shape[2:], stride, padding, output_padding, dilation):
        if not (op < s or op < d):
            raise ValueError(f"output_padding {op} must be smaller than the stride {s} or the dilation {d}")
        out = (size - 1) * s - 2 * p + d * (k - 1) + op + 1
        if out < 1:
            raise ValueError(f"the output would have size {out} (input {size}, kernel {k}, "
                             f"stride {s}, padding {p}, dilation {d}, output_padding {op})")
        out_hw.append(out)
    return stride, padding, dilation, tuple(out_hw)


def _scatter_slices(offset, pad, size, stride, out_size):
    """Which input positions a kernel tap scatters inside the output, along one axis.

    Input ``i`` writes output ``i * stride + offset - pad`` with this tap (``offset = kernel
    index * dilation``); the write exists only inside ``[0, out_size)``. Those inputs are
    consecutive: the answer is ``(inputs, outputs)``, slices of equal length, or None.
    """
    writes = np.arange(size) * stride + offset - pad
    inside = np.flatnonzero((writes >= 0) & (writes < out_size))
    if inside.size == 0:
        return None
    first, last = inside[0], inside[-1]
    return slice(first, last + 1), slice(writes[first], writes[last] + 1, stride)


def _scatter_taps(kernel_size, stride, padding, dilation, in_hw, out_hw):
    """Yield ``(i, j, in_rows, in_cols, out_rows, out_cols)`` for every kernel tap that
    writes at least one output pixel."""
    for i in range(kernel_size[0]):
        rows = _scatter_slices(i * dilation[0], padding[0], in_hw[0], stride[0], out_hw[0])
        for j in range(kernel_size[1]):
            cols = _scatter_slices(j * dilation[1], padding[1], in_hw[1], stride[1], out_hw[1])
            if rows is not None and cols is not None:
                yield i, j, rows[0], cols[0], rows[1], cols[1]


def _grouped_weight(weight, groups):
    """weight (C_in, Og, kH, kW) as (G, Cg, Og, kH, kW): the channel matrices of each group."""
    c_in, og, kh, kw = weight.shape
    return weight.reshape(groups, c_in // groups, og, kh, kw)


@quiet_ieee
def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, *, out=None):
    """Transposed 2-D convolution, as ``torch.nn.functional.conv_transpose2d``.

    Each input pixel adds its value times the kernel into its output window (see the module
    notes for the formula); ``padding`` crops the result, ``output_padding`` extends it at the
    bottom and right.

    Parameters
    ----------
    x : array_like, shape (N, C_in, H, W), float32 or float64
    weight : array_like, shape (C_in, C_out // groups, kH, kW)
    bias : array_like, shape (C_out,), or None
    stride : int or (int, int), >= 1
    padding : int or (int, int), >= 0
    output_padding : int or (int, int), each smaller than the stride or the dilation
    groups : int, divides C_in and C_out
    dilation : int or (int, int), >= 1
    out : ndarray, shape (N, C_out, H_out, W_out), optional
        Preallocated result, written into and returned.

    Returns
    -------
    y : ndarray, shape (N, C_out, H_out, W_out), dtype of the inputs
        ``H_out = (H - 1)*sh - 2*ph + dh*(kH - 1) + output_padding_h + 1``, likewise W_out.

    Raises
    ------
    ValueError
        If the channels do not match, output_padding is too large, or the output would be empty.
    """
    x = np.asarray(x)
    weight = np.asarray(weight)
    dtype = compute_dtype(x, weight)
    n, c_in, h, w = x.shape
    _, og, kh, kw = weight.shape
    cg = c_in // groups
    stride, padding, dilation, (out_h, out_w) = _transpose_geometry(
        x.shape, weight.shape, stride, padding, output_padding, groups, dilation)

    xg = x.astype(dtype, copy=False).reshape(n, groups, cg, h, w)
    wg = _grouped_weight(weight.astype(dtype, copy=False), groups)
    y = np.zeros((n, groups, og, out_h, out_w), dtype=dtype)
    # Loop over the kernel taps; each scatters weight[:, :, i, j]^T @ x (per image and group)
    # into the outputs its input pixels write.
    for i, j, in_rows, in_cols, out_rows, out_cols in _scatter_taps(
            (kh, kw), stride, padding, dilation, (h, w), (out_h, out_w)):
        x_tap = xg[:, :, :, in_rows, in_cols]  # (N, G, Cg, rows, cols)
        rows, cols = x_tap.shape[3:]
        w_tap = np.ascontiguousarray(wg[:, :, :, i, j].transpose(0, 2, 1))  # (G, Og, Cg)
        contribution = np.matmul(w_tap, x_tap.reshape(n, groups, cg, rows * cols))
        y[:, :, :, out_rows, out_cols] += contribution.reshape(n, groups, og, rows, cols)
    y = y.reshape(n, groups * og, out_h, out_w)
    if bias is not None:
        y += np.asarray(bias, dtype=dtype).reshape(1, -1, 1, 1)
    return store_result(y, out)


@quiet_ieee
def conv_transpose2d_backward(grad_output, x, weight, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1, *, needs_input_grad=True,
                              needs_weight_grad=True, needs_bias_grad=True):
    """Gradients of :func:`conv_transpose2d` with respect to its input, weight and bias.

    The forward's terms, differentiated one by one: ``grad_input[n, c, iy, ix]`` gathers
    ``weight[c, o, i, j] * grad_output`` from every output its pixel wrote, and
    ``grad_weight[c, o, i, j]`` sums ``x * grad_output`` over every (input, output) pair that
    tap joined. Cropped writes have no term, so they add nothing.

    Parameters
    ----------
    grad_output : array_like, shape (N, C_out, H_out, W_out)
    x : array_like, shape (N, C_in, H, W)
    weight : array_like, shape (C_in, C_out // groups, kH, kW)
    stride, padding, output_padding, groups, dilation
        As in :func:`conv_transpose2d`.
    needs_input_grad, needs_weight_grad, needs_bias_grad : bool
        Which gradients to compute; one not asked for is returned as None.

    Returns
    -------
    grad_input : ndarray, shape (N, C_in, H, W), or None
    grad_weight : ndarray, shape (C_in, C_out // groups, kH, kW), or None
    grad_bias : ndarray, shape (C_out,), or None
        ``grad_output.sum(axis=(0, 2, 3))``.
    """
    grad_output = np.asarray(grad_output)
    x = np.asarray(x)
    weight = np.asarray(weight)
    dtype = compute_dtype(grad_output, x, weight)
    n, c_in, h, w = x.shape
    _, og, kh, kw = weight.shape
    cg = c_in // groups
    stride, padding, dilation, (out_h, out_w) = _transpose_geometry(
        x.shape, weight.shape, stride, padding, output_padding, groups, dilation)
    if grad_output.shape != (n, groups * og, out_h, out_w):
        raise ValueError(f"grad_output has shape {grad_output.shape}, expected {(n, groups * og, out_h, out_w)}")
    taps = list(_scatter_taps((kh, kw), stride, padding, dilation, (h, w), (out_h, out_w)))
    dyg = grad_output.astype(dtype, copy=False).reshape(n, groups, og, out_h, out_w)
    xg = x.astype(dtype, copy=False).reshape(n, groups, cg, h, w)
    grad_input = grad_weight = grad_bias = None

    if needs_bias_grad:
        grad_bias = grad_output.astype(dtype, copy=False).sum(axis=(0, 2, 3))

    if needs_input_grad:
        # grad_input gathers, per tap, weight[:, :, i, j] @ dy at the outputs its pixels wrote
        wg = _grouped_weight(weight.astype(dtype, copy=False), groups)
        grad_input = np.zeros((n, groups, cg, h, w), dtype=dtype)
        for i, j, in_rows, in_cols, out_rows, out_cols in taps:
            dy_tap = dyg[:, :, :, out_rows, out_cols]  # (N, G, Og, rows, cols)
            rows, cols = dy_tap.shape[3:]
            w_tap = np.ascontiguousarray(wg[:, :, :, i, j])  # (G, Cg, Og)
            contribution = np.matmul(w_tap, dy_tap.reshape(n, groups, og, rows * cols))
            grad_input[:, :, :, in_rows, in_cols] += contribution.reshape(n, groups, cg, rows, cols)
        grad_input = grad_input.reshape(n, c_in, h, w)

    if needs_weight_grad:
        # grad_weight[g, :, :, i, j] = x_tap (Cg, pixels) @ dy_tap^T (pixels, Og), over images
        grad_weight = np.zeros((groups, cg, og, kh, kw), dtype=dtype)
        for i, j, in_rows, in_cols, out_rows, out_cols in taps:
            x_tap = xg[:, :, :, in_rows, in_cols]      # (N, G, Cg, rows, cols)
            dy_tap = dyg[:, :, :, out_rows, out_cols]  # (N, G, Og, rows, cols)
            pixels = n * x_tap.shape[3] * x_tap.shape[4]
            x_mat = x_tap.transpose(1, 2, 0, 3, 4).reshape(groups, cg, pixels)
            dy_mat = dy_tap.transpose(1, 0, 3, 4, 2).reshape(groups, pixels, og)
            grad_weight[:, :, :, i, j] = np.matmul(x_mat, dy_mat)
        grad_weight = grad_weight.reshape(c_in, og, kh, kw)

    return grad_input, grad_weight, grad_bias
