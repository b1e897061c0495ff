"""The conv2d layer, :class:`Conv2d` (``torch.nn.Conv2d``), over fastnn's conv2d kernels."""
import math

import numpy as np

from fastnn import _validation as v
from fastnn.conv import conv2d, conv2d_backward
from fastnn.layers._base import _Layer

__all__ = ["Conv2d"]


class Conv2d(_Layer):
    """2-D convolution layer, like ``torch.nn.Conv2d`` (cross-correlation, NCHW layout).

    Parameters
    ----------
    in_channels : int
        C_in, channels of the input.
    out_channels : int
        C_out, channels of the output.
    kernel_size : int or (int, int)
        (kH, kW).
    stride : int or (int, int), default 1
    padding : int or (int, int) or {'valid', 'same'}, default 0
        Zero padding on each side (height, width). ``'same'`` pads so that the output has the
        input's size (stride must then be 1); ``'valid'`` means no padding.
    dilation : int or (int, int), default 1
    groups : int, default 1
        Input and output channels are split into ``groups`` groups; each output group sees only
        its input group. Must divide both ``in_channels`` and ``out_channels``.
    bias : bool, default True
        Whether to add a learned bias per output channel.
    dtype : {np.float32, np.float64}, default np.float32
        Dtype of the parameters, and of the arrays ``forward`` and ``backward`` compute in.
    rng : numpy.random.Generator or int or None, default None
        Source of the initial weights (an int is a seed; None draws fresh entropy).

    Attributes
    ----------
    params : dict of str to ndarray
        ``'weight'`` (C_out, C_in // groups, kH, kW) and, if ``bias``, ``'bias'`` (C_out,).
        Initialised from U(-k, k), k = 1 / sqrt(C_in // groups * kH * kW), as PyTorch does.
    grads : dict of str to ndarray
        Same keys and shapes; overwritten by each :meth:`backward`.

    Raises
    ------
    TypeError
        If an argument has the wrong type, or ``dtype`` is not float32/float64.
    ValueError
        If a size is out of range, or ``groups`` does not divide the channel counts, or
        ``padding='same'`` is combined with a stride other than 1.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, *, dtype=np.float32, rng=None):
        self.in_channels = v.layer_int("in_channels", in_channels, 1)
        self.out_channels = v.layer_int("out_channels", out_channels, 1)
        self.kernel_size = v.layer_int_pair("kernel_size", kernel_size, 1)
        self.stride = v.layer_int_pair("stride", stride, 1)
        self.dilation = v.layer_int_pair("dilation", dilation, 1)
        self.groups = v.layer_int("groups", groups, 1)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"padding must be an int, a pair of ints, 'same' or 'valid', "
                                 f"got {padding!r}")
            if padding == "same" and self.stride != (1, 1):
                raise ValueError("padding='same' needs stride=1")
            self.padding = padding
        else:
            self.padding = v.layer_int_pair("padding", padding, 0)
        if self.in_channels % self.groups:
            raise ValueError(f"in_channels ({self.in_channels}) must be divisible by groups "
                             f"({self.groups})")
        if self.out_channels % self.groups:
            raise ValueError(f"out_channels ({self.out_channels}) must be divisible by groups "
                             f"({self.groups})")
        self.dtype = v.layer_dtype(dtype)
        has_bias = v.layer_bool("bias", bias)

        kh, kw = self.kernel_size
        fan_in = self.in_channels // self.groups * kh * kw
        shapes = {"weight": (self.out_channels, self.in_channels // self.groups, kh, kw)}
        if has_bias:
            shapes["bias"] = (self.out_channels,)
        self._init_params(shapes, 1.0 / math.sqrt(fan_in), v.layer_rng(rng))
        self._x = None  # input of the most recent forward, kept for backward
        self._unbatched = False

    @property
    def weight(self):
        """The ``params['weight']`` array, (C_out, C_in // groups, kH, kW)."""
        return self.params["weight"]

    @property
    def bias(self):
        """The ``params['bias']`` array (C_out,), or None when built with ``bias=False``."""
        return self.params.get("bias")

    def forward(self, x):
        """Convolve ``x``.

        Parameters
        ----------
        x : array_like, shape (N, C_in, H, W), or (C_in, H, W) for one unbatched image
            Cast to the layer's dtype if it has another.

        Returns
        -------
        y : ndarray, shape (N, C_out, H_out, W_out), or (C_out, H_out, W_out) if unbatched
            H_out = (H + 2*padH - dilH*(kH-1) - 1) // strideH + 1, and likewise W_out.

        Raises
        ------
        ValueError
            If ``x`` has the wrong number of dimensions or channels, or is smaller than the
            (dilated) kernel after padding.

        Notes
        -----
        The layer keeps a reference to ``x`` (not a copy) for :meth:`backward`: do not change
        ``x`` in place between the two calls.
        """
        x = v.layer_input("x", x, self.dtype, (3, 4))
        unbatched = x.ndim == 3
        if unbatched:
            x = x[None]
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x has {x.shape[1]} channels, expected in_channels="
                             f"{self.in_channels} (x shape {x.shape})")
        y = conv2d(x, self.params["weight"], self.params.get("bias"), stride=self.stride,
                   padding=self.padding, dilation=self.dilation, groups=self.groups)
        self._x = x
        self._y_shape = y.shape
        self._unbatched = unbatched
        return y[0] if unbatched else y

    def backward(self, grad_y, *, needs_input_grad=True):
        """Back-propagate through the most recent :meth:`forward`.

        Parameters
        ----------
        grad_y : array_like, shape of the forward output, (N, C_out, H_out, W_out)
            Gradient of the loss with respect to ``y``.
        needs_input_grad : bool, default True
            False skips computing ``grad_x`` (for a first layer) and returns None.

        Returns
        -------
        grad_x : ndarray, shape of the forward input, or None
            Gradient of the loss with respect to ``x``. ``grads['weight']`` (and
            ``grads['bias']``) are overwritten with the parameter gradients.

        Raises
        ------
        RuntimeError
            If :meth:`forward` has not been called.
        ValueError
            If ``grad_y`` does not have the forward output's shape.
        """
        if self._x is None:
            raise RuntimeError("Conv2d.backward called before forward")
        grad_y = v.layer_input("grad_y", grad_y, self.dtype, (3, 4))
        if self._unbatched and grad_y.ndim == 3:
            grad_y = grad_y[None]
        if grad_y.shape != self._y_shape:
            want = self._y_shape[1:] if self._unbatched else self._y_shape
            raise ValueError(f"grad_y has shape {grad_y.shape}, expected the forward output's "
                             f"shape {want}")
        has_bias = "bias" in self.params
        grad_x, grad_w, grad_b = conv2d_backward(
            grad_y, self._x, self.params["weight"], stride=self.stride, padding=self.padding,
            dilation=self.dilation, groups=self.groups, needs_input_grad=bool(needs_input_grad),
            needs_weight_grad=True, needs_bias_grad=has_bias)
        np.copyto(self.grads["weight"], grad_w)
        if has_bias:
            np.copyto(self.grads["bias"], grad_b)
        if grad_x is not None and self._unbatched:
            grad_x = grad_x[0]
        return grad_x

    def __repr__(self):
        s = f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        s += f", stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding!r}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if "bias" not in self.params:
            s += ", bias=False"
        if self.dtype != np.float32:
            s += f", dtype={self.dtype.name}"
        return s + ")"
