"""fastnn's transposed 2-D convolution kernels: validate, normalise, then run conv2d's drivers.

A transposed convolution is conv2d read backwards, so conv2d's compiled entry points compute
it, each with the geometry of the conv2d whose input gradient is this layer's forward (input
H_out x W_out, output H x W, the same stride, padding, dilation, groups and weight):

- the forward is that conv2d's input gradient (conv2d_grad_input, x in the place of dY);
  output_padding is only the extra rows and columns of that conv2d's input, whose last rows
  its kernel then does not reach (a crop the drivers take from the shapes);
- the input gradient is that conv2d's forward (conv2d_forward, grad_output as its input);
- the weight gradient is its weight gradient with x and grad_output in each other's place;
- the bias gradient is conv2d's (grad_output summed per channel).

Where conv2d's drivers would run a transposed layer poorly, it takes one of three routes of
its own first (each bit-identical for any thread count, each falling back to the above where
an Inf or NaN would meet a zero it adds):

- a 1x1 input with no crop (DCGAN's latent projection) is a plain GEMM per group on the GEMM
  core (_one_pixel_taps), forward and backward;
- a batch of tiny images (at most 32 pixels) is folded into one tall image with gap rows
  (_fold_gap), so the drivers' GEMMs span the batch, not 16 pixels;
- a strided forward whose output phases each have >= 2x2 taps (DCGAN's k4 s2) runs as one
  stride-1 conv2d forward per phase (_phases), interleaved into place.

Everything the drivers trust is checked here. When the extension is missing, or where conv2d's
implicit GEMM would multiply an Inf or NaN by padding (the drivers decline), fastnn.reference
does the work instead.
"""
import numpy as np

from fastnn import _runtime
from fastnn import _validation as v
from fastnn import reference

__all__ = ["conv_transpose2d", "conv_transpose2d_backward"]

_kernels = _runtime._kernels


class _TransposeSpec:
    """The validated geometry of one transposed convolution."""

    __slots__ = ("stride", "padding", "output_padding", "dilation", "groups", "out_shape", "terms")

    def __init__(self, x_shape, w_shape, stride, padding, output_padding, groups, dilation):
        n, c_in, h, w = x_shape
        w_in, cout_g, kh, kw = w_shape
        self.stride = v.int_pair("stride", stride, 1)
        self.padding = v.int_pair("padding", padding, 0)
        self.dilation = v.int_pair("dilation", dilation, 1)
        self.output_padding = v.output_padding_pair(output_padding, self.stride, self.dilation)
        self.groups = v.positive_int("groups", groups)
        if kh < 1 or kw < 1:
            raise ValueError(f"weight has an empty kernel: shape {tuple(w_shape)}")
        if c_in % self.groups:
            raise ValueError(f"groups={self.groups} does not divide the input channels of x ({c_in})")
        if w_in != c_in:
            raise ValueError(f"weight has {w_in} input channels (its first axis, (C_in, C_out // groups, "
                             f"kH, kW)), but x has {c_in}")
        h_out, w_out = (
            v.transposed_output_size(name, size, p, k, s, d, op)
            for name, size, p, k, s, d, op in zip(("height", "width"), (h, w), self.padding, (kh, kw),
                                                  self.stride, self.dilation, self.output_padding))
        self.out_shape = (n, self.groups * cout_g, h_out, w_out)
        # multiply-adds per input element: its pixel times each output channel of its group and tap
        self.terms = cout_g * kh * kw

    def flops(self, x_size):
        return 2 * x_size * self.terms

    def driver_args(self):
        """(stride, padding, dilation, groups) of the conv2d these kernels run as."""
        return self.stride, self.padding, self.dilation, self.groups

    def reference_args(self):
        return self.stride, self.padding, self.output_padding, self.groups, self.dilation


def _one_pixel_taps(x_shape, spec):
    """Whether each output pixel is one tap of the input's only pixel (a 1x1 input, no crop,
    no output_padding, no dilation gaps): the layer is then a plain GEMM per group,
    y[n, (o, i, j)] = x[n, :] @ weight[:, (o, i, j)], as DCGAN's projection of its latent vector.
    Every product is a real term (nothing is padding), so the GEMM's Inf/NaN are the oracle's."""
    return (x_shape[2] == 1 and x_shape[3] == 1 and spec.padding == (0, 0)
            and spec.output_padding == (0, 0) and spec.dilation == (1, 1))


def _group_slices(c_in, cols, groups):
    """(input channels, weight columns (o, i, j)) of each group."""
    cin_g = c_in // groups
    return [(slice(g * cin_g, (g + 1) * cin_g), slice(g * cols, (g + 1) * cols)) for g in range(groups)]


def _one_pixel_forward(x, weight, bias, y, groups, threads):
    """y (N, C_out, kH, kW) = the per-group GEMM of a 1x1 input (see _one_pixel_taps); the
    bias rides in the GEMM's epilogue, one value per (o, i, j) column."""
    n, c_in = x.shape[:2]
    cols = weight[0].size  # C_out/g * kH * kW
    taps = weight.shape[2] * weight.shape[3]
    x2, w2, y2 = x.reshape(n, c_in), weight.reshape(c_in, cols), y.reshape(n, groups * cols)
    bias_cols = None if bias is None else np.repeat(bias, taps)
    for chans, outs in _group_slices(c_in, cols, groups):
        _kernels.gemm(x2[:, chans], w2[chans], y2[:, outs], bias=None if bias_cols is None else bias_cols[outs],
                      bias_axis=1, num_threads=threads)
    return y


def _one_pixel_backward(dy, x, weight, grad_input, grad_weight, groups, threads):
    """The input gradient dY @ W^T and the weight gradient X^T @ dY of a 1x1 input (see
    _one_pixel_taps), per group, into the given zero-filled arrays (either may be None)."""
    n, c_in = x.shape[:2]
    cols = weight[0].size
    x2, w2, dy2 = x.reshape(n, c_in), weight.reshape(c_in, cols), dy.reshape(n, groups * cols)
    for chans, outs in _group_slices(c_in, cols, groups):
        if grad_input is not None and cols:
            _kernels.gemm(dy2[:, outs], w2[chans].T, grad_input.reshape(n, c_in)[:, chans], num_threads=threads)
        if grad_weight is not None and n:
            _kernels.gemm(x2[:, chans].T, dy2[:, outs], grad_weight.reshape(c_in, cols)[chans], num_threads=threads)


# Input pixels per image up to which a batch of several images is folded into one tall image:
# conv2d's drivers then see GEMMs whose pixel side spans the batch (a 4x4 image is 16 columns
# of a 64-wide register tile). Measured side by side on DCGAN's layers: 1.15-1.25x on 4x4
# images; slower from 8x8 on (the gap rows' wasted work, the tall image's larger blocks).
_FOLD_MAX_PIXELS = 32
# float32 only: float64's register tiles are half as wide (32 columns on AVX-512), so a 4x4
# image fills half of one and the gap rows' extra work loses (measured 0.84x forward).
_FOLD_DTYPE = np.dtype(np.float32)


def _fold_gap(x_shape, w_shape, spec, h_out):
    """Zero rows to put after each image when the batch is folded into one tall image, or None.

    Image n's input rows start at tall row n*(H + gap), so its output rows start at
    n*s*(H + gap) (s: the row stride); the gap is the least for which every tap that lands
    outside an image's own H_out rows lands in gap rows (discarded), never in a neighbour's:
    s*(H + gap) - padding >= H_out and s*(H - 1) - padding + (kH - 1)*d < s*(H + gap). The zero
    gap rows stand where padding was, so a caller must first know that what meets them is
    finite (0 * Inf would be NaN where the oracle has no term)."""
    n, _, h, w = x_shape
    if n < 2 or h * w > _FOLD_MAX_PIXELS:
        return None
    s, p, d = spec.stride[0], spec.padding[0], spec.dilation[0]
    reach = s * (h - 1) - p + (w_shape[2] - 1) * d
    gap = 0
    while s * (h + gap) - p < h_out or reach >= s * (h + gap):
        gap += 1
    return gap


def _fold(a, rows, gap, dtype):
    """(N, C, rows, W) -> (1, C, N*(rows + gap), W) of dtype: the images stacked, each followed
    by gap zero rows."""
    n, c, _, w = a.shape
    tall = np.empty((c, n, rows + gap, w), dtype)
    tall[:, :, :rows] = a.transpose(1, 0, 2, 3)
    tall[:, :, rows:] = 0
    return tall.reshape(1, c, n * (rows + gap), w)


def _unfold(tall, n, rows, out, bias=None):
    """out (N, C, rows, W) = the images of a tall (1, C, N*stride, W) result (+ bias per channel)."""
    _, c, height, w = tall.shape
    images = tall.reshape(c, n, height // n, w)[:, :, :rows].transpose(1, 0, 2, 3)
    if bias is None:
        np.copyto(out, images)
    else:
        np.add(images, bias[:, None, None], out=out)
    return out


# Channels per group from which the sub-pixel (phase) forward pays: conv2d's tiles' own domain.
_PHASE_MIN_CHANNELS = 16


def _phases(x_shape, w_shape, spec, out_hw):
    """The strided forward split by output phase (sub-pixel convolution), or None.

    With stride s and no dilation, output row oy = s*iy - p + i takes only the taps
    i = i0, i0 + s, ... with i0 = (oy + p) mod s, so the rows of one phase (oy = s*m + r) are a
    stride-1 conv2d of x with those taps flipped, padded by (taps - 1) - (r + p - i0)/s at the
    top: conv2d's forward, its fastest driver, in place of the input gradient's col2im scatter.
    Returns, per phase, (row offset, column offset, row taps, column taps, (pad top, pad left),
    (rows, columns)); None where it does not apply (no stride, dilation, a negative pad, few
    channels) or does not pay: measured side by side, the phases beat the scatter where each
    has at least 2 x 2 taps (DCGAN's k4 s2: up to 1.15x) and lose where they are 1-tap
    (U-Net's k2 s2: 0.75x) or mixed (k3 s2: 0.85x)."""
    (sh, sw), (ph, pw) = spec.stride, spec.padding
    cin_g, cout_g = x_shape[1] // spec.groups, w_shape[1]
    if (sh == 1 and sw == 1) or spec.dilation != (1, 1) or min(cin_g, cout_g) < _PHASE_MIN_CHANNELS:
        return None
    if w_shape[2] < 2 * sh or w_shape[3] < 2 * sw:
        return None
    axes = []
    for s, p, k, size_out in ((sh, ph, w_shape[2], out_hw[0]), (sw, pw, w_shape[3], out_hw[1])):
        per_axis = []
        for r in range(s):
            i0 = (r + p) % s
            taps = list(range(i0, k, s))
            count = -(-(size_out - r) // s)  # output positions s*m + r < size_out
            pad = len(taps) - 1 - (r + p - i0) // s
            if pad < 0:
                return None
            per_axis.append((r, taps, pad, count))
        axes.append(per_axis)
    return [(r, c, taps_r, taps_c, (pad_r, pad_c), (count_r, count_c))
            for r, taps_r, pad_r, count_r in axes[0] for c, taps_c, pad_c, count_c in axes[1]]


def _phase_forward(x, weight, bias, y, spec, phases, threads):
    """y by phases (see _phases); False, with y partly written, where conv2d's driver declines
    (padding meeting an Inf or NaN weight: the caller then takes the scatter path)."""
    groups = spec.groups
    n, c_in = x.shape[:2]
    cout_g = weight.shape[1]
    for r, c, taps_r, taps_c, pad, counts in phases:
        if not taps_r or not taps_c or counts[0] == 0 or counts[1] == 0:
            y[:, :, r::spec.stride[0], c::spec.stride[1]] = 0 if bias is None else bias[:, None, None]
            continue
        # conv2d's (G*Og, Cg, Tr, Tc): the phase's taps flipped, the channel axes swapped
        w_phase = _kernels.phase_weight(weight, np.empty((groups * cout_g, c_in // groups, len(taps_r), len(taps_c)),
                                                         x.dtype),
                                        groups, taps_r[-1], spec.stride[0], taps_c[-1], spec.stride[1])
        tmp = np.empty((n, groups * cout_g) + counts, x.dtype)
        if not _kernels.conv2d_forward(x, w_phase, bias, tmp, (1, 1), pad, (1, 1), groups, threads):
            return False
        _kernels.phase_store(tmp, y, r, spec.stride[0], c, spec.stride[1], threads)
    return True


def _fill_bias(y, bias, dtype):
    y[...] = 0 if bias is None else bias.astype(dtype)[:, None, None]
    return y


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, *, out=None):
    """Transposed 2-D convolution, as torch.nn.functional.conv_transpose2d (note its argument
    order: groups before dilation).

    Each input pixel adds its value times the kernel into its output window:
    y[n, g*Og + o, iy*sh - ph + i*dh, ix*sw - pw + j*dw] += x[n, c, iy, ix] * weight[c, o, i, j]
    for the input channels c of group g, Og = C_out // groups. This is the input gradient of
    conv2d(., weight, stride, padding, dilation, groups) on an H_out x W_out image.

    Parameters
    ----------
    x : array_like, (N, C_in, H, W), float32 or float64
    weight : array_like, (C_in, C_out // groups, kH, kW), same dtype
    bias : array_like, (C_out,), same dtype, or None
    stride, dilation : int or (int, int), >= 1
    padding : int or (int, int), >= 0
        Rows and columns cropped off each side of the full result (a string is a TypeError,
        as in PyTorch).
    output_padding : int or (int, int), >= 0
        Rows and columns added at the bottom and right; each smaller than its axis's stride or
        dilation.
    groups : int >= 1 dividing C_in (C_out is groups * weight.shape[1])
    out : ndarray (N, C_out, H_out, W_out), optional
        Written in place and returned: C-contiguous, of x's dtype, not overlapping an input.

    Returns
    -------
    y : ndarray (N, C_out, H_out, W_out), x's dtype
        H_out = (H - 1)*sh - 2*ph + dh*(kH - 1) + output_padding_h + 1, likewise W_out.

    Raises
    ------
    TypeError
        Non-float or mixed dtypes, non-integer (or string) stride/padding/output_padding/
        dilation/groups.
    ValueError
        Wrong ndim or shapes, bad stride/padding/output_padding/dilation/groups, a padding that
        crops the whole output, an output too large to exist, a bad `out`.
    """
    x = v.as_float_array("x", x, 4)
    weight = v.as_float_array("weight", weight, 4)
    if bias is not None:
        bias = v.as_float_array("bias", bias, 1)
    dtype = v.common_dtype(x=x, weight=weight, bias=bias)
    spec = _TransposeSpec(x.shape, weight.shape, stride, padding, output_padding, groups, dilation)
    v.check_shape("bias", bias, spec.out_shape[1:2])
    v.check_size("conv_transpose2d's output for this x, weight, stride, padding, output_padding and dilation",
                 spec.out_shape, dtype.itemsize)
    if out is not None:
        y = v.check_out(out, spec.out_shape, dtype, (x, weight, bias))
    else:
        y = np.empty(spec.out_shape, dtype)
    if y.size == 0:
        return y
    if x.size == 0:  # no input pixels or channels: nothing scatters, the output is the bias
        return _fill_bias(y, bias, dtype)
    if _kernels is not None:
        threads = _runtime.threads_for(spec.flops(x.size))
        if _one_pixel_taps(x.shape, spec):
            return _one_pixel_forward(v.contiguous(x, dtype), v.contiguous(weight, dtype),
                                      None if bias is None else v.contiguous(bias, dtype), y, spec.groups, threads)
        gap = _fold_gap(x.shape, weight.shape, spec, y.shape[2]) if dtype == _FOLD_DTYPE else None
        weight = v.contiguous(weight, dtype)
        if gap is not None and _kernels.finite_array(weight):
            n, s = x.shape[0], spec.stride[0]
            tall = np.empty((1, y.shape[1], n * s * (x.shape[2] + gap), y.shape[3]), dtype)
            _kernels.conv2d_grad_input(_fold(x, x.shape[2], gap, dtype), weight, tall,
                                       *spec.driver_args(), threads)
            return _unfold(tall, n, y.shape[2], y, None if bias is None else bias.astype(dtype, copy=False))
        phases = _phases(x.shape, weight.shape, spec, y.shape[2:])
        if phases is not None and _phase_forward(v.contiguous(x, dtype), weight,
                                                 None if bias is None else v.contiguous(bias, dtype),
                                                 y, spec, phases, threads):
            return y
        _kernels.conv2d_grad_input(v.contiguous(x, dtype), v.contiguous(weight, dtype), y,
                                   *spec.driver_args(), threads)
        if bias is not None:
            _kernels.add_channel_bias(y, v.contiguous(bias, dtype), threads)
        return y
    y[...] = reference.conv_transpose2d(x, weight, bias, *spec.reference_args())
    return y


def conv_transpose2d_backward(grad_output, x, weight, stride=1, padding=0, output_padding=0, groups=1,
                              dilation=1, *, needs_input_grad=True, needs_weight_grad=True,
                              needs_bias_grad=True):
    """Gradients of conv_transpose2d with respect to its input, weight and bias.

    Parameters
    ----------
    grad_output : array_like, (N, C_out, H_out, W_out)
        Gradient of the loss with respect to conv_transpose2d's output.
    x, weight, stride, padding, output_padding, groups, dilation
        As given to `conv_transpose2d`.
    needs_input_grad, needs_weight_grad, needs_bias_grad : bool
        Which gradients to compute; the others are returned as None.

    Returns
    -------
    grad_input : ndarray (N, C_in, H, W) or None
        conv2d(grad_output, weight, stride, padding, dilation, groups), cut to H x W.
    grad_weight : ndarray (C_in, C_out // groups, kH, kW) or None
    grad_bias : ndarray (C_out,) or None, grad_output.sum(axis=(0, 2, 3))

    Raises
    ------
    TypeError, ValueError
        As `conv_transpose2d`; ValueError also when grad_output's shape is not its output shape.
    """
    grad_output = v.as_float_array("grad_output", grad_output, 4)
    x = v.as_float_array("x", x, 4)
    weight = v.as_float_array("weight", weight, 4)
    dtype = v.common_dtype(grad_output=grad_output, x=x, weight=weight)
    spec = _TransposeSpec(x.shape, weight.shape, stride, padding, output_padding, groups, dilation)
    if grad_output.shape != spec.out_shape:
        raise ValueError(f"grad_output must have shape {spec.out_shape} (conv_transpose2d's output), "
                         f"got {grad_output.shape}")
    dy = v.contiguous(grad_output, dtype)
    threads = _runtime.threads_for(spec.flops(x.size))
    # The reference computes whatever the drivers cannot (or declined to: Inf/NaN meeting padding).
    redo = dict(needs_input_grad=False, needs_weight_grad=False, needs_bias_grad=False)
    grad_input = grad_weight = grad_bias = None
    if _kernels is not None and _one_pixel_taps(x.shape, spec) and (needs_input_grad or needs_weight_grad):
        grad_input = np.zeros(x.shape, dtype) if needs_input_grad else None
        grad_weight = np.zeros(weight.shape, dtype) if needs_weight_grad else None
        _one_pixel_backward(dy, v.contiguous(x, dtype), v.contiguous(weight, dtype), grad_input, grad_weight,
                            spec.groups, threads)
        needs_input_grad = needs_weight_grad = False
    gap = None
    if _kernels is not None and dtype == _FOLD_DTYPE:
        gap = _fold_gap(x.shape, weight.shape, spec, dy.shape[2])
    if gap is not None and (needs_input_grad or needs_weight_grad) and weight.shape[1] and x.size:
        # folded: every tap meets gap zeros somewhere, so the weight (input gradient), and x
        # and dY (weight gradient), must be finite
        weight = v.contiguous(weight, dtype)
        xc = v.contiguous(x, dtype)
        n, h = x.shape[0], x.shape[2]
        dy_ok = _kernels.finite_array(dy)
        fold_input = needs_input_grad and _kernels.finite_array(weight)
        fold_weight = needs_weight_grad and dy_ok and _kernels.finite_array(xc)
        if fold_input or fold_weight:
            dy_tall = _fold(dy, dy.shape[2], spec.stride[0] * (h + gap) - dy.shape[2], dtype)
        if fold_input:
            tall = np.empty((1, x.shape[1], n * (h + gap), x.shape[3]), dtype)
            _kernels.conv2d_forward(dy_tall, weight, None, tall, *spec.driver_args(), threads)
            grad_input = _unfold(tall, n, h, np.empty(x.shape, dtype))
            needs_input_grad = False
        if fold_weight:
            grad_weight = np.zeros(weight.shape, dtype)
            _kernels.conv2d_grad_weight(_fold(xc, h, gap, dtype), dy_tall, grad_weight, *spec.driver_args(), threads)
            needs_weight_grad = False
    if needs_input_grad:
        grad_input = np.zeros(x.shape, dtype)
        # (no output channels: an empty reduction, the zeros stand)
        if grad_input.size and weight.shape[1] and not (_kernels is not None and _kernels.conv2d_forward(
                dy, v.contiguous(weight, dtype), None, grad_input, *spec.driver_args(), threads)):
            redo["needs_input_grad"] = True
    if needs_weight_grad:
        grad_weight = np.zeros(weight.shape, dtype)
        # (no input pixels: every term is absent, the zeros stand)
        if grad_weight.size and x.size and not (_kernels is not None and _kernels.conv2d_grad_weight(
                v.contiguous(x, dtype), dy, grad_weight, *spec.driver_args(), threads)):
            redo["needs_weight_grad"] = True
    if needs_bias_grad:
        if _kernels is not None:
            grad_bias = _kernels.conv2d_grad_bias(dy, np.empty(dy.shape[1], dtype), threads)
        else:
            grad_bias = dy.sum(axis=(0, 2, 3), dtype=dtype)
    if redo["needs_input_grad"] or redo["needs_weight_grad"]:
        ref_input, ref_weight, _ = reference.conv_transpose2d_backward(
            dy, x, weight, *spec.reference_args(), **redo)
        if ref_input is not None:
            grad_input[...] = ref_input
        if ref_weight is not None:
            grad_weight[...] = ref_weight
    return grad_input, grad_weight, grad_bias
