"""The transposed 2-D convolution layer, :class:`ConvTranspose2d` (``torch.nn.ConvTranspose2d``),
over fastnn's conv_transpose2d kernels."""
import math

import numpy as np

from fastnn import _validation as v
from fastnn.conv_transpose import conv_transpose2d, conv_transpose2d_backward
from fastnn.layers._base import _Layer

__all__ = ["ConvTranspose2d"]


class ConvTranspose2d(_Layer):
    """Transposed 2-D convolution layer, like ``torch.nn.ConvTranspose2d`` (NCHW layout).

    Parameters
    ----------
    in_channels : int
        C_in, channels of the input.
    out_channels : int
        C_out, channels of the output.
    kernel_size : int or (int, int)
        (kH, kW).
    stride : int or (int, int), default 1
    padding : int or (int, int), default 0
        Rows and columns cropped off each side of the output. A string is a TypeError, as in
        PyTorch (there is no 'same' transposed convolution).
    output_padding : int or (int, int), default 0
        Rows and columns added at the bottom and right of the output; each must be smaller than
        its axis's stride or dilation. ``forward(x, output_size=...)`` overrides it per call.
    groups : int, default 1
        Must divide both ``in_channels`` and ``out_channels``.
    bias : bool, default True
        Whether to add a learned bias per output channel.
    dilation : int or (int, int), default 1
    dtype : {np.float32, np.float64}, default np.float32
        Dtype of the parameters, and of the arrays ``forward`` and ``backward`` compute in.
    rng : numpy.random.Generator or int or None, default None
        Source of the initial weights (an int is a seed; None draws fresh entropy).

    Attributes
    ----------
    params : dict of str to ndarray
        ``'weight'`` (C_in, C_out // groups, kH, kW) and, if ``bias``, ``'bias'`` (C_out,).
        Initialised from U(-k, k), k = 1 / sqrt(C_out // groups * kH * kW): PyTorch takes the
        fan-in from ``weight.shape[1]``, which for this layer is the output channels per group.
    grads : dict of str to ndarray
        Same keys and shapes; overwritten by each :meth:`backward`.

    Raises
    ------
    TypeError
        If an argument has the wrong type (a string padding included), or ``dtype`` is not
        float32/float64.
    ValueError
        If a size is out of range, ``groups`` does not divide the channel counts, or
        ``output_padding`` is not smaller than the stride or the dilation.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                 groups=1, bias=True, dilation=1, *, dtype=np.float32, rng=None):
        self.in_channels = v.layer_int("in_channels", in_channels, 1)
        self.out_channels = v.layer_int("out_channels", out_channels, 1)
        self.kernel_size = v.layer_int_pair("kernel_size", kernel_size, 1)
        self.stride = v.layer_int_pair("stride", stride, 1)
        if isinstance(padding, str):
            raise TypeError(f"padding must be an int or a pair of ints, got {padding!r} "
                            "(a transposed convolution has no padding strings)")
        self.padding = v.layer_int_pair("padding", padding, 0)
        self.dilation = v.layer_int_pair("dilation", dilation, 1)
        self.output_padding = v.output_padding_pair(
            v.layer_int_pair("output_padding", output_padding, 0), self.stride, self.dilation)
        self.groups = v.layer_int("groups", groups, 1)
        if self.in_channels % self.groups:
            raise ValueError(f"in_channels ({self.in_channels}) must be divisible by groups "
                             f"({self.groups})")
        if self.out_channels % self.groups:
            raise ValueError(f"out_channels ({self.out_channels}) must be divisible by groups "
                             f"({self.groups})")
        self.dtype = v.layer_dtype(dtype)
        has_bias = v.layer_bool("bias", bias)

        kh, kw = self.kernel_size
        cout_g = self.out_channels // self.groups
        shapes = {"weight": (self.in_channels, cout_g, kh, kw)}
        if has_bias:
            shapes["bias"] = (self.out_channels,)
        self._init_params(shapes, 1.0 / math.sqrt(cout_g * kh * kw), v.layer_rng(rng))
        self._x = None  # input of the most recent forward, kept for backward
        self._unbatched = False
        self._call_output_padding = self.output_padding

    @property
    def weight(self):
        """The ``params['weight']`` array, (C_in, C_out // groups, kH, kW)."""
        return self.params["weight"]

    @property
    def bias(self):
        """The ``params['bias']`` array (C_out,), or None when built with ``bias=False``."""
        return self.params.get("bias")

    def _output_padding(self, x, output_size):
        """output_padding for this call: the layer's, or what makes the output output_size
        (PyTorch's rule: between the smallest output and that plus stride - 1)."""
        if output_size is None:
            return self.output_padding
        try:
            size = tuple(output_size)
        except TypeError:
            raise TypeError(f"output_size must be a sequence of ints, got {output_size!r}") from None
        if len(size) == x.ndim:  # (N, C, H, W) or (C, H, W): the spatial part is what counts
            size = size[-2:]
        if len(size) != 2:
            raise ValueError(f"output_size must have 2 or {x.ndim} elements, got {output_size!r}")
        size = tuple(v.layer_int("output_size", s, 0) for s in size)
        smallest = tuple((x.shape[-2 + axis] - 1) * self.stride[axis] - 2 * self.padding[axis]
                         + self.dilation[axis] * (self.kernel_size[axis] - 1) + 1 for axis in (0, 1))
        largest = tuple(m + s - 1 for m, s in zip(smallest, self.stride))
        if any(not lo <= s <= hi for s, lo, hi in zip(size, smallest, largest)):
            raise ValueError(f"requested an output_size of {size}, but valid sizes range from "
                             f"{smallest} to {largest} (for an input of {x.shape[-2:]})")
        return tuple(s - lo for s, lo in zip(size, smallest))

    def forward(self, x, output_size=None):
        """Transposed-convolve ``x``.

        Parameters
        ----------
        x : array_like, shape (N, C_in, H, W), or (C_in, H, W) for one unbatched image
            Cast to the layer's dtype if it has another.
        output_size : sequence of ints, optional
            (H_out, W_out), or the whole output shape: picks the output padding that gives it,
            as PyTorch's ``forward(input, output_size)`` does.

        Returns
        -------
        y : ndarray, shape (N, C_out, H_out, W_out), or (C_out, H_out, W_out) if unbatched
            H_out = (H - 1)*strideH - 2*padH + dilH*(kH - 1) + output_padH + 1, likewise W_out.

        Raises
        ------
        ValueError
            If ``x`` has the wrong number of dimensions or channels, the padding crops the whole
            output, or ``output_size`` is out of range.

        Notes
        -----
        The layer keeps a reference to ``x`` (not a copy) for :meth:`backward`: do not change
        ``x`` in place between the two calls.
        """
        x = v.layer_input("x", x, self.dtype, (3, 4))
        unbatched = x.ndim == 3
        if x.shape[-3] != self.in_channels:
            raise ValueError(f"x has {x.shape[-3]} channels, expected in_channels="
                             f"{self.in_channels} (x shape {x.shape})")
        output_padding = self._output_padding(x, output_size)
        if unbatched:
            x = x[None]
        y = conv_transpose2d(x, self.params["weight"], self.params.get("bias"), stride=self.stride,
                             padding=self.padding, output_padding=output_padding, groups=self.groups,
                             dilation=self.dilation)
        self._x = x
        self._y_shape = y.shape
        self._unbatched = unbatched
        self._call_output_padding = output_padding
        return y[0] if unbatched else y

    def backward(self, grad_y, *, needs_input_grad=True):
        """Back-propagate through the most recent :meth:`forward`.

        Parameters
        ----------
        grad_y : array_like, shape of the forward output
            Gradient of the loss with respect to ``y``.
        needs_input_grad : bool, default True
            False skips computing ``grad_x`` and returns None.

        Returns
        -------
        grad_x : ndarray, shape of the forward input, or None
            ``grads['weight']`` (and ``grads['bias']``) are overwritten with the parameter
            gradients.

        Raises
        ------
        RuntimeError
            If :meth:`forward` has not been called.
        ValueError
            If ``grad_y`` does not have the forward output's shape.
        """
        if self._x is None:
            raise RuntimeError("ConvTranspose2d.backward called before forward")
        grad_y = v.layer_input("grad_y", grad_y, self.dtype, (3, 4))
        if self._unbatched and grad_y.ndim == 3:
            grad_y = grad_y[None]
        if grad_y.shape != self._y_shape:
            want = self._y_shape[1:] if self._unbatched else self._y_shape
            raise ValueError(f"grad_y has shape {grad_y.shape}, expected the forward output's "
                             f"shape {want}")
        has_bias = "bias" in self.params
        grad_x, grad_w, grad_b = conv_transpose2d_backward(
            grad_y, self._x, self.params["weight"], stride=self.stride, padding=self.padding,
            output_padding=self._call_output_padding, groups=self.groups, dilation=self.dilation,
            needs_input_grad=bool(needs_input_grad), needs_weight_grad=True,
            needs_bias_grad=has_bias)
        np.copyto(self.grads["weight"], grad_w)
        if has_bias:
            np.copyto(self.grads["bias"], grad_b)
        if grad_x is not None and self._unbatched:
            grad_x = grad_x[0]
        return grad_x

    def __repr__(self):
        s = (f"ConvTranspose2d({self.in_channels}, {self.out_channels}, "
             f"kernel_size={self.kernel_size}, stride={self.stride}")
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.output_padding != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if "bias" not in self.params:
            s += ", bias=False"
        if self.dtype != np.float32:
            s += f", dtype={self.dtype.name}"
        return s + ")"
