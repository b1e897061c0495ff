"""The 1-D convolution layer, :class:`Conv1d` (``torch.nn.Conv1d``), over fastnn's conv1d kernels."""
import math

import numpy as np

from fastnn import _validation as v
from fastnn.conv_1d import conv1d, conv1d_backward
from fastnn.layers._base import _Layer

__all__ = ["Conv1d"]


class Conv1d(_Layer):
    """1-D convolution layer, like ``torch.nn.Conv1d`` (cross-correlation, NCL layout).

    Parameters
    ----------
    in_channels : int
        C_in, channels of the input.
    out_channels : int
        C_out, channels of the output.
    kernel_size : int or (int,)
        K.
    stride : int or (int,), default 1
    padding : int or (int,) or {'valid', 'same'}, default 0
        Zero padding at each end. ``'same'`` pads so that the output has the input's length
        (stride must then be 1; an odd total puts the extra position at the end); ``'valid'``
        means no padding.
    dilation : int or (int,), default 1
    groups : int, default 1
        Must divide both ``in_channels`` and ``out_channels``.
    bias : bool, default True
        Whether to add a learned bias per output channel.
    dtype : {np.float32, np.float64}, default np.float32
        Dtype of the parameters, and of the arrays ``forward`` and ``backward`` compute in.
    rng : numpy.random.Generator or int or None, default None
        Source of the initial weights (an int is a seed; None draws fresh entropy).

    Attributes
    ----------
    kernel_size, stride, dilation : (int,)
        1-tuples, as PyTorch keeps them; ``padding`` too, or the string given.
    params : dict of str to ndarray
        ``'weight'`` (C_out, C_in // groups, K) and, if ``bias``, ``'bias'`` (C_out,).
        Initialised from U(-k, k), k = 1 / sqrt(C_in // groups * K), as PyTorch does.
    grads : dict of str to ndarray
        Same keys and shapes; overwritten by each :meth:`backward`.

    Raises
    ------
    TypeError
        If an argument has the wrong type, or ``dtype`` is not float32/float64.
    ValueError
        If a size is out of range, ``groups`` does not divide the channel counts, or
        ``padding='same'`` is combined with a stride other than 1.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, *, dtype=np.float32, rng=None):
        self.in_channels = v.layer_int("in_channels", in_channels, 1)
        self.out_channels = v.layer_int("out_channels", out_channels, 1)
        self.kernel_size = (v.layer_int_single("kernel_size", kernel_size, 1),)
        self.stride = (v.layer_int_single("stride", stride, 1),)
        self.dilation = (v.layer_int_single("dilation", dilation, 1),)
        self.groups = v.layer_int("groups", groups, 1)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"padding must be an int, a 1-tuple of ints, 'same' or 'valid', "
                                 f"got {padding!r}")
            if padding == "same" and self.stride != (1,):
                raise ValueError("padding='same' needs stride=1")
            self.padding = padding
        else:
            self.padding = (v.layer_int_single("padding", padding, 0),)
        if self.in_channels % self.groups:
            raise ValueError(f"in_channels ({self.in_channels}) must be divisible by groups "
                             f"({self.groups})")
        if self.out_channels % self.groups:
            raise ValueError(f"out_channels ({self.out_channels}) must be divisible by groups "
                             f"({self.groups})")
        self.dtype = v.layer_dtype(dtype)
        has_bias = v.layer_bool("bias", bias)

        (k,) = self.kernel_size
        shapes = {"weight": (self.out_channels, self.in_channels // self.groups, k)}
        if has_bias:
            shapes["bias"] = (self.out_channels,)
        self._init_params(shapes, 1.0 / math.sqrt(self.in_channels // self.groups * k), v.layer_rng(rng))
        self._x = None  # input of the most recent forward, kept for backward
        self._unbatched = False

    @property
    def weight(self):
        """The ``params['weight']`` array, (C_out, C_in // groups, K)."""
        return self.params["weight"]

    @property
    def bias(self):
        """The ``params['bias']`` array (C_out,), or None when built with ``bias=False``."""
        return self.params.get("bias")

    def _kernel_args(self):
        padding = self.padding if isinstance(self.padding, str) else self.padding[0]
        return dict(stride=self.stride[0], padding=padding, dilation=self.dilation[0], groups=self.groups)

    def forward(self, x):
        """Convolve ``x``.

        Parameters
        ----------
        x : array_like, shape (N, C_in, L), or (C_in, L) for one unbatched sequence
            Cast to the layer's dtype if it has another.

        Returns
        -------
        y : ndarray, shape (N, C_out, L_out), or (C_out, L_out) if unbatched
            L_out = (L + 2*pad - dilation*(K-1) - 1) // stride + 1.

        Raises
        ------
        ValueError
            If ``x`` has the wrong number of dimensions or channels, or is shorter than the
            (dilated) kernel after padding.

        Notes
        -----
        The layer keeps a reference to ``x`` (not a copy) for :meth:`backward`: do not change
        ``x`` in place between the two calls.
        """
        x = v.layer_input("x", x, self.dtype, (2, 3))
        unbatched = x.ndim == 2
        if unbatched:
            x = x[None]
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x has {x.shape[1]} channels, expected in_channels="
                             f"{self.in_channels} (x shape {x.shape})")
        y = conv1d(x, self.params["weight"], self.params.get("bias"), **self._kernel_args())
        self._x = x
        self._y_shape = y.shape
        self._unbatched = unbatched
        return y[0] if unbatched else y

    def backward(self, grad_y, *, needs_input_grad=True):
        """Back-propagate through the most recent :meth:`forward`.

        Parameters
        ----------
        grad_y : array_like, shape of the forward output, (N, C_out, L_out)
            Gradient of the loss with respect to ``y``.
        needs_input_grad : bool, default True
            False skips computing ``grad_x`` (for a first layer) and returns None.

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
            raise RuntimeError("Conv1d.backward called before forward")
        grad_y = v.layer_input("grad_y", grad_y, self.dtype, (2, 3))
        if self._unbatched and grad_y.ndim == 2:
            grad_y = grad_y[None]
        if grad_y.shape != self._y_shape:
            want = self._y_shape[1:] if self._unbatched else self._y_shape
            raise ValueError(f"grad_y has shape {grad_y.shape}, expected the forward output's "
                             f"shape {want}")
        has_bias = "bias" in self.params
        grad_x, grad_w, grad_b = conv1d_backward(
            grad_y, self._x, self.params["weight"], **self._kernel_args(),
            needs_input_grad=bool(needs_input_grad), needs_weight_grad=True, needs_bias_grad=has_bias)
        np.copyto(self.grads["weight"], grad_w)
        if has_bias:
            np.copyto(self.grads["bias"], grad_b)
        if grad_x is not None and self._unbatched:
            grad_x = grad_x[0]
        return grad_x

    def __repr__(self):
        s = f"Conv1d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        s += f", stride={self.stride}"
        if self.padding != (0,):
            s += f", padding={self.padding!r}"
        if self.dilation != (1,):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if "bias" not in self.params:
            s += ", bias=False"
        if self.dtype != np.float32:
            s += f", dtype={self.dtype.name}"
        return s + ")"
