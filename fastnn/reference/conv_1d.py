"""Pure-NumPy conv1d and conv1d_backward: the oracles of fastnn's 1-D convolution kernels.

``y[n, o, t] = bias[o] + sum_{c, k} weight[o, c, k] * x[n, g*Cg + c, t*stride + k*dilation - pad_left]``
for output channel ``o`` of group ``g`` (``Cg = C_in / groups``), as
``torch.nn.functional.conv1d``. As in conv2d's oracle, padding is *absent*: a term whose
input position is padding is not computed, so an Inf or NaN weight reaching only padding
at some output leaves that output finite (not ``Inf * 0 = NaN``).

Written from this formula, independently of ``fastnn.reference.conv``: it shares no code
with conv2d's oracle, so the compiled conv1d (which runs conv2d's kernels on a unit-height
image) is checked against a separate derivation.
"""

import numpy as np

from fastnn.reference._common import compute_dtype, quiet_ieee, store_result

__all__ = ["conv1d", "conv1d_backward"]


def _single(value):
    """An int, or a 1-tuple/list of one int, as an int."""
    if np.ndim(value) == 0:
        return int(value)
    (item,) = value
    return int(item)


def _geometry(x_shape, w_shape, stride, padding, dilation):
    """Normalised (stride, dilation, pad_left, L_out)."""
    stride, dilation = _single(stride), _single(dilation)
    kernel = w_shape[2]
    if isinstance(padding, str):
        if padding == "valid":
            left = right = 0
        elif padding == "same":
            if stride != 1:
                raise ValueError("padding='same' requires stride 1")
            total = dilation * (kernel - 1)
            left, right = total // 2, total - total // 2  # the odd one after, as torch
        else:
            raise ValueError(f"padding must be 'valid', 'same' or an int, got {padding!r}")
    else:
        left = right = _single(padding)
    span = dilation * (kernel - 1) + 1
    length_out = (x_shape[2] + left + right - span) // stride + 1
    if length_out < 1:
        raise ValueError(f"kernel (dilated extent {span}) does not fit in the padded input "
                         f"(length {x_shape[2]} + padding {left}+{right})")
    return stride, dilation, left, length_out


def _taps(kernel, stride, dilation, left, length, length_out):
    """Yield ``(k, outputs, inputs)``: the slices of outputs whose tap k reads a real input."""
    for k in range(kernel):
        reads = np.arange(length_out) * stride + k * dilation - left
        inside = np.flatnonzero((reads >= 0) & (reads < length))
        if inside.size:
            first, last = inside[0], inside[-1]
            yield k, slice(first, last + 1), slice(reads[first], reads[last] + 1, stride)


@quiet_ieee
def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, out=None):
    """1-D convolution (cross-correlation), as ``torch.nn.functional.conv1d``.

    Parameters
    ----------
    x : array_like, shape (N, C_in, L), float32 or float64
    weight : array_like, shape (C_out, C_in // groups, K)
    bias : array_like, shape (C_out,), or None
    stride, dilation : int or (int,), >= 1
    padding : int or (int,) >= 0, 'valid' or 'same'
        ``'same'`` (stride 1) pads ``dilation * (K - 1)`` in total, the odd one at the end.
    groups : int, divides C_in and C_out
    out : ndarray, shape (N, C_out, L_out), optional
        Preallocated result, written into and returned.

    Returns
    -------
    y : ndarray, shape (N, C_out, L_out), dtype of the inputs
        ``L_out = (L + pad_left + pad_right - dilation * (K - 1) - 1) // stride + 1``.
    """
    x = np.asarray(x)
    weight = np.asarray(weight)
    dtype = compute_dtype(x, weight)
    n, c_in, length = x.shape
    c_out, cg, kernel = weight.shape
    og = c_out // groups
    stride, dilation, left, length_out = _geometry(x.shape, weight.shape, stride, padding, dilation)
    xg = x.astype(dtype, copy=False).reshape(n, groups, cg, length)
    wg = weight.astype(dtype, copy=False).reshape(groups, og, cg, kernel)
    y = np.zeros((n, groups, og, length_out), dtype=dtype)
    # Loop over the taps; each adds (Og, Cg) @ (Cg, outputs) per image and group.
    for k, outputs, inputs in _taps(kernel, stride, dilation, left, length, length_out):
        y[:, :, :, outputs] += np.matmul(np.ascontiguousarray(wg[:, :, :, k]), xg[:, :, :, inputs])
    y = y.reshape(n, c_out, length_out)
    if bias is not None:
        y += np.asarray(bias, dtype=dtype).reshape(1, c_out, 1)
    return store_result(y, out)


@quiet_ieee
def conv1d_backward(grad_output, x, weight, stride=1, padding=0, dilation=1, groups=1, *,
                    needs_input_grad=True, needs_weight_grad=True, needs_bias_grad=True):
    """Gradients of :func:`conv1d` with respect to its input, weight and bias.

    Padded positions have no gradient and contribute nothing to ``grad_weight``.

    Parameters
    ----------
    grad_output : array_like, shape (N, C_out, L_out)
    x : array_like, shape (N, C_in, L)
    weight : array_like, shape (C_out, C_in // groups, K)
    stride, padding, dilation, groups
        As in :func:`conv1d`.
    needs_input_grad, needs_weight_grad, needs_bias_grad : bool
        Which gradients to compute; one not asked for is returned as None.

    Returns
    -------
    grad_input : ndarray, shape (N, C_in, L), or None
    grad_weight : ndarray, shape (C_out, C_in // groups, K), or None
    grad_bias : ndarray, shape (C_out,), or None
        ``grad_output.sum(axis=(0, 2))``.
    """
    grad_output = np.asarray(grad_output)
    x = np.asarray(x)
    weight = np.asarray(weight)
    dtype = compute_dtype(grad_output, x, weight)
    n, c_in, length = x.shape
    c_out, cg, kernel = weight.shape
    og = c_out // groups
    stride, dilation, left, length_out = _geometry(x.shape, weight.shape, stride, padding, dilation)
    if grad_output.shape != (n, c_out, length_out):
        raise ValueError(f"grad_output has shape {grad_output.shape}, expected {(n, c_out, length_out)}")
    taps = list(_taps(kernel, stride, dilation, left, length, length_out))
    dyg = grad_output.astype(dtype, copy=False).reshape(n, groups, og, length_out)
    xg = x.astype(dtype, copy=False).reshape(n, groups, cg, length)
    grad_input = grad_weight = grad_bias = None

    if needs_bias_grad:
        grad_bias = grad_output.astype(dtype, copy=False).sum(axis=(0, 2))

    if needs_input_grad:
        # each tap sends weight[:, :, k]^T @ dy back to the inputs it read
        wg = weight.astype(dtype, copy=False).reshape(groups, og, cg, kernel)
        grad_input = np.zeros((n, groups, cg, length), dtype=dtype)
        for k, outputs, inputs in taps:
            w_tap_t = np.ascontiguousarray(wg[:, :, :, k].transpose(0, 2, 1))  # (G, Cg, Og)
            grad_input[:, :, :, inputs] += np.matmul(w_tap_t, dyg[:, :, :, outputs])
        grad_input = grad_input.reshape(n, c_in, length)

    if needs_weight_grad:
        # grad_weight[g, :, :, k] = sum over images of dy (Og, outputs) @ x_tap^T (outputs, Cg)
        grad_weight = np.zeros((groups, og, cg, kernel), dtype=dtype)
        for k, outputs, inputs in taps:
            per_image = np.matmul(dyg[:, :, :, outputs], xg[:, :, :, inputs].transpose(0, 1, 3, 2))
            grad_weight[:, :, :, k] = per_image.sum(axis=0)
        grad_weight = grad_weight.reshape(c_out, cg, kernel)

    return grad_input, grad_weight, grad_bias
