"""Thin stateful layers on top of fastnn's kernels: :class:`Conv2d` and :class:`RNN`.

A layer owns its parameters (``params``) and their gradients (``grads``), both plain dicts of
NumPy arrays keyed exactly like the matching PyTorch module's ``state_dict``. ``forward`` keeps
what ``backward`` needs; ``backward`` overwrites ``grads`` (it never accumulates) and returns the
gradient of the input. There is no autograd: chain layers by hand, and update ``params`` in place
to train::

    conv = fastnn.Conv2d(3, 8, kernel_size=3, padding=1, rng=0)
    y = conv(x)                        # (N, 8, H, W)
    grad_x = conv.backward(grad_y)     # fills conv.grads["weight"], conv.grads["bias"]
    for name, p in conv.params.items():
        p -= 0.01 * conv.grads[name]   # in place: the layer sees the new values

The arrays in ``params`` and ``grads`` are never replaced, only written into, so an optimizer may
keep references to them.
"""
import math
import numbers

import numpy as np

from fastnn._api import conv2d, conv2d_backward, rnn_backward, rnn_forward

__all__ = ["Conv2d", "RNN"]

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


# ---------------------------------------------------------------------------------------------
# argument checking shared by both layers
# ---------------------------------------------------------------------------------------------

def _check_int(name, value, minimum):
    """Return ``value`` as an int, or raise TypeError/ValueError naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _check_pair(name, value, minimum):
    """Return ``value`` (an int or a pair of ints) as a pair of ints, each >= ``minimum``."""
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        value = (value, value)
    try:
        pair = tuple(value)
    except TypeError:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}") from None
    if len(pair) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return tuple(_check_int(name, v, minimum) for v in pair)


def _check_dtype(dtype):
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dt not in _FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def _check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def _make_rng(rng):
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, (bool, np.bool_)):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be a numpy.random.Generator, an int seed or None, got {rng!r}")


def _as_input(name, x, dtype, ndims):
    """``x`` as an ndarray of the layer's dtype, with one of the allowed numbers of dimensions."""
    x = np.asarray(x)
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise TypeError(f"{name} must hold real numbers, got dtype {x.dtype}")
    if x.ndim not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{name} must be {want}, got shape {x.shape}")
    return x.astype(dtype, copy=False)


class _Layer:
    """What both layers share: ``params``/``grads`` dicts and state_dict handling."""

    params: dict
    grads: dict
    dtype: np.dtype

    def _init_params(self, shapes, bound, rng):
        """Fill ``params`` with U(-bound, bound) in the given key order; zero ``grads``."""
        self.params = {}
        self.grads = {}
        for key, shape in shapes.items():
            self.params[key] = rng.uniform(-bound, bound, size=shape).astype(self.dtype)
            self.grads[key] = np.zeros(shape, dtype=self.dtype)

    def state_dict(self):
        """Return copies of the parameters, keyed like PyTorch's ``state_dict``.

        Returns
        -------
        dict of str to ndarray
            A new dict of new arrays: changing them does not change the layer.
        """
        return {key: value.copy() for key, value in self.params.items()}

    def load_state_dict(self, state_dict, strict=True):
        """Copy parameters into the layer, in place.

        Parameters
        ----------
        state_dict : mapping of str to array_like
            Keys as :meth:`state_dict` gives them. A PyTorch module's ``state_dict`` converted to
            NumPy (``{k: v.numpy() for k, v in m.state_dict().items()}``) works as is. Values may
            be any real arrays (anything ``np.asarray`` takes, CPU torch tensors included); they
            are cast to the layer's dtype.
        strict : bool, default True
            If True, the keys must match exactly. If False, missing and unexpected keys are
            ignored.

        Raises
        ------
        ValueError
            If keys are missing or unexpected (naming them) or a value's shape is wrong. Nothing
            is copied unless every value is valid.
        TypeError
            If a value does not hold real numbers.

        Notes
        -----
        Values are copied into the existing ``params`` arrays, so references to them (held by an
        optimizer, say) stay valid.
        """
        keys = set(state_dict)
        missing = [k for k in self.params if k not in keys]
        unexpected = sorted(str(k) for k in keys if k not in self.params)
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing keys {missing}")
            if unexpected:
                parts.append(f"unexpected keys {unexpected}")
            raise ValueError(f"load_state_dict: {'; '.join(parts)}")
        staged = {}
        for key, target in self.params.items():
            if key not in keys:
                continue
            value = np.asarray(state_dict[key])
            if not (np.issubdtype(value.dtype, np.floating)
                    or np.issubdtype(value.dtype, np.integer)):
                raise TypeError(f"load_state_dict: {key} must hold real numbers, "
                                f"got dtype {value.dtype}")
            if value.shape != target.shape:
                raise ValueError(f"load_state_dict: {key} has shape {value.shape}, "
                                 f"expected {target.shape}")
            staged[key] = value
        for key, value in staged.items():
            np.copyto(self.params[key], value, casting="unsafe")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)


# ---------------------------------------------------------------------------------------------
# Conv2d
# ---------------------------------------------------------------------------------------------

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
        self.in_channels = _check_int("in_channels", in_channels, 1)
        self.out_channels = _check_int("out_channels", out_channels, 1)
        self.kernel_size = _check_pair("kernel_size", kernel_size, 1)
        self.stride = _check_pair("stride", stride, 1)
        self.dilation = _check_pair("dilation", dilation, 1)
        self.groups = _check_int("groups", groups, 1)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"padding must be an int, a pair of ints, 'same' or 'valid', "
                                 f"got {padding!r}")
            if padding == "same" and self.stride != (1, 1):
                raise ValueError("padding='same' needs stride=1")
            self.padding = padding
        else:
            self.padding = _check_pair("padding", padding, 0)
        if self.in_channels % self.groups:
            raise ValueError(f"in_channels ({self.in_channels}) must be divisible by groups "
                             f"({self.groups})")
        if self.out_channels % self.groups:
            raise ValueError(f"out_channels ({self.out_channels}) must be divisible by groups "
                             f"({self.groups})")
        self.dtype = _check_dtype(dtype)
        has_bias = _check_bool("bias", bias)

        kh, kw = self.kernel_size
        fan_in = self.in_channels // self.groups * kh * kw
        shapes = {"weight": (self.out_channels, self.in_channels // self.groups, kh, kw)}
        if has_bias:
            shapes["bias"] = (self.out_channels,)
        self._init_params(shapes, 1.0 / math.sqrt(fan_in), _make_rng(rng))
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
        x = _as_input("x", x, self.dtype, (3, 4))
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
        grad_y = _as_input("grad_y", grad_y, self.dtype, (3, 4))
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


# ---------------------------------------------------------------------------------------------
# RNN
# ---------------------------------------------------------------------------------------------

class RNN(_Layer):
    """Multi-layer Elman RNN, like ``torch.nn.RNN``.

    Each layer and direction computes, for t = 0 .. T-1,
    ``h_t = act(x_t @ w_ih.T + b_ih + h_{t-1} @ w_hh.T + b_hh)``, act = tanh or relu.
    Layer l > 0 takes the previous layer's output (D*H features) as its input. With
    ``bidirectional=True`` a second direction runs over the reversed sequence; the output holds
    [forward, reverse] features side by side.

    Parameters
    ----------
    input_size : int
        I, features per time step of the input.
    hidden_size : int
        H, features of the hidden state.
    num_layers : int, default 1
        Number of stacked layers.
    nonlinearity : {'tanh', 'relu'}, default 'tanh'
    bias : bool, default True
        Whether the layers have ``b_ih`` and ``b_hh``.
    batch_first : bool, default False
        If True, ``forward``'s input and output are (N, T, features) rather than
        (T, N, features). ``h0``/``h_n`` are not affected, as in PyTorch.
    bidirectional : bool, default False
        Whether each layer also runs right to left (D = 2; else D = 1).
    dropout : float, default 0.0
        Keyword only (PyTorch also takes it positionally, before ``bidirectional``). Accepted
        for PyTorch parity, but dropout between layers is not offered yet: any value other
        than 0 raises ValueError.
    dtype : {np.float32, np.float64}, default np.float32
        Dtype of the parameters and of the computation.
    rng : numpy.random.Generator or int or None, default None
        Source of the initial weights (an int is a seed; None draws fresh entropy).

    Attributes
    ----------
    params : dict of str to ndarray
        For layer k and direction suffix s ('' forward, '_reverse' reverse), in PyTorch's order:
        ``weight_ih_l{k}{s}`` (H, I) for k = 0 and (H, D*H) above, ``weight_hh_l{k}{s}`` (H, H),
        and if ``bias``, ``bias_ih_l{k}{s}`` (H,) and ``bias_hh_l{k}{s}`` (H,). All initialised
        from U(-1/sqrt(H), 1/sqrt(H)), as PyTorch does.
    grads : dict of str to ndarray
        Same keys and shapes; overwritten by each :meth:`backward`.

    Raises
    ------
    TypeError
        If an argument has the wrong type, or ``dtype`` is not float32/float64.
    ValueError
        If a size is out of range, ``nonlinearity`` is unknown, or ``dropout`` is not 0.
    """

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, bidirectional=False, *, dropout=0.0, dtype=np.float32,
                 rng=None):
        self.input_size = _check_int("input_size", input_size, 1)
        self.hidden_size = _check_int("hidden_size", hidden_size, 1)
        self.num_layers = _check_int("num_layers", num_layers, 1)
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        has_bias = _check_bool("bias", bias)
        self.batch_first = _check_bool("batch_first", batch_first)
        self.bidirectional = _check_bool("bidirectional", bidirectional)
        if not isinstance(dropout, numbers.Real) or dropout != 0:
            raise ValueError(f"dropout is not offered yet; dropout must be 0, got {dropout!r}")
        self.dtype = _check_dtype(dtype)

        H, D = self.hidden_size, self.num_directions
        shapes = {}
        for layer in range(self.num_layers):
            in_features = self.input_size if layer == 0 else D * H
            for suffix in self._suffixes():
                shapes[f"weight_ih_l{layer}{suffix}"] = (H, in_features)
                shapes[f"weight_hh_l{layer}{suffix}"] = (H, H)
                if has_bias:
                    shapes[f"bias_ih_l{layer}{suffix}"] = (H,)
                    shapes[f"bias_hh_l{layer}{suffix}"] = (H,)
        self._init_params(shapes, 1.0 / math.sqrt(H), _make_rng(rng))
        self._cache = None  # what the most recent forward leaves for backward

    @property
    def num_directions(self):
        """D: 2 if bidirectional, else 1."""
        return 2 if self.bidirectional else 1

    def _suffixes(self):
        return ("", "_reverse") if self.bidirectional else ("",)

    def _layer_params(self, layer, suffix):
        p = self.params
        key = f"l{layer}{suffix}"
        return (p[f"weight_ih_{key}"], p[f"weight_hh_{key}"], p.get(f"bias_ih_{key}"),
                p.get(f"bias_hh_{key}"))

    def forward(self, x, h0=None):
        """Run the RNN over a sequence.

        Parameters
        ----------
        x : array_like, shape (T, N, I), or (N, T, I) if batch_first, or (T, I) unbatched
            Input sequence, T >= 1. Cast to the layer's dtype if it has another.
        h0 : array_like, shape (num_layers*D, N, H), or (num_layers*D, H) unbatched, optional
            Initial hidden state of each layer and direction, ordered [l0, l0_reverse, l1, ...].
            Zeros if omitted.

        Returns
        -------
        output : ndarray, shape (T, N, D*H), or (N, T, D*H) if batch_first, or (T, D*H) unbatched
            The last layer's hidden state at every step; for a bidirectional RNN the forward
            direction's features come first, then the reverse direction's (both indexed by the
            original time order).
        h_n : ndarray, shape (num_layers*D, N, H), or (num_layers*D, H) unbatched
            Final hidden state of each layer and direction (for the reverse direction, its state
            after reading time 0).

        Raises
        ------
        ValueError
            If a shape is wrong, or T = 0.

        Notes
        -----
        The layer keeps references to its inputs and the hidden states for :meth:`backward`.
        """
        x = _as_input("x", x, self.dtype, (2, 3))
        unbatched = x.ndim == 2
        if unbatched:
            x = x[:, None, :]
        elif self.batch_first:
            x = x.transpose(1, 0, 2)
        T, N, features = x.shape
        if features != self.input_size:
            raise ValueError(f"x has {features} features, expected input_size={self.input_size}"
                             f" (x shape {x.shape})")
        if T == 0:
            raise ValueError("x must have at least one time step")
        H, D, L = self.hidden_size, self.num_directions, self.num_layers
        if h0 is None:
            h0 = np.zeros((L * D, N, H), dtype=self.dtype)
        else:
            h0 = _as_input("h0", h0, self.dtype, (2,) if unbatched else (3,))
            if unbatched:
                h0 = h0[:, None, :]
            if h0.shape != (L * D, N, H):
                want = (L * D, H) if unbatched else (L * D, N, H)
                got = h0.shape[::2] if unbatched else h0.shape
                raise ValueError(f"h0 has shape {got}, expected (num_layers*D, N, H) = {want}")

        h_n = np.empty((L * D, N, H), dtype=self.dtype)
        layer_input = np.ascontiguousarray(x)
        cache = []  # per layer: list of (input in processing order, h0, hs) per direction
        for layer in range(L):
            outputs = []
            entries = []
            for d, suffix in enumerate(self._suffixes()):
                idx = layer * D + d
                # The reverse direction reads the sequence back to front.
                inp = layer_input if d == 0 else np.ascontiguousarray(layer_input[::-1])
                h0_d = np.ascontiguousarray(h0[idx])
                hs = rnn_forward(inp, h0_d, *self._layer_params(layer, suffix),
                                 nonlinearity=self.nonlinearity)
                h_n[idx] = hs[-1]
                outputs.append(hs if d == 0 else hs[::-1])
                entries.append((inp, h0_d, hs))
            cache.append(entries)
            layer_input = outputs[0] if D == 1 else np.concatenate(outputs, axis=2)

        self._cache = (cache, unbatched, (T, N))
        output = layer_input
        if unbatched:
            return output[:, 0, :], h_n[:, 0, :]
        if self.batch_first:
            output = np.ascontiguousarray(output.transpose(1, 0, 2))
        return output, h_n

    def backward(self, grad_output, grad_h_n=None):
        """Back-propagate through the most recent :meth:`forward`.

        Parameters
        ----------
        grad_output : array_like or None, shape of the forward ``output``
            Gradient of the loss with respect to ``output``: (T, N, D*H), or (N, T, D*H) if
            batch_first, or (T, D*H) unbatched. None means zeros.
        grad_h_n : array_like or None, shape of the forward ``h_n``, optional
            Gradient of the loss with respect to ``h_n``: (num_layers*D, N, H), or
            (num_layers*D, H) unbatched. None means zeros.

        Returns
        -------
        grad_x : ndarray, shape of the forward ``x``
            Gradient of the loss with respect to ``x``.
        grad_h0 : ndarray, shape (num_layers*D, N, H), or (num_layers*D, H) unbatched
            Gradient of the loss with respect to ``h0`` (zeros were used if h0 was omitted).

        Every entry of ``grads`` is overwritten; ``bias_ih_*`` and ``bias_hh_*`` get the same
        gradient.

        Raises
        ------
        RuntimeError
            If :meth:`forward` has not been called.
        ValueError
            If a gradient's shape is wrong.
        """
        if self._cache is None:
            raise RuntimeError("RNN.backward called before forward")
        cache, unbatched, (T, N) = self._cache
        H, D, L = self.hidden_size, self.num_directions, self.num_layers

        if grad_output is None:
            grad_out = np.zeros((T, N, D * H), dtype=self.dtype)
        else:
            grad_out = _as_input("grad_output", grad_output, self.dtype,
                                 (2,) if unbatched else (3,))
            if unbatched:
                grad_out = grad_out[:, None, :]
            elif self.batch_first:
                grad_out = grad_out.transpose(1, 0, 2)
            if grad_out.shape != (T, N, D * H):
                want = (T, D * H) if unbatched else (
                    (N, T, D * H) if self.batch_first else (T, N, D * H))
                raise ValueError(f"grad_output has shape {np.shape(grad_output)}, expected the "
                                 f"forward output's shape {want}")
        if grad_h_n is not None:
            grad_h_n = _as_input("grad_h_n", grad_h_n, self.dtype, (2,) if unbatched else (3,))
            if unbatched:
                grad_h_n = grad_h_n[:, None, :]
            if grad_h_n.shape != (L * D, N, H):
                want = (L * D, H) if unbatched else (L * D, N, H)
                raise ValueError(f"grad_h_n has shape {np.shape(grad_h_n)}, expected the "
                                 f"forward h_n's shape {want}")

        grad_h0 = np.empty((L * D, N, H), dtype=self.dtype)
        for layer in range(L - 1, -1, -1):
            grad_input = None
            for d, suffix in enumerate(self._suffixes()):
                idx = layer * D + d
                inp, h0_d, hs = cache[layer][d]
                # This direction's slice of the output gradient, put in processing order (a
                # fresh contiguous copy, since the h_n gradient is added into it).
                g = grad_out[:, :, d * H:(d + 1) * H]
                grad_hs = np.array(g if d == 0 else g[::-1], dtype=self.dtype, order="C")
                if grad_h_n is not None:
                    # h_n is the state after the last processed step: t = T-1 for the forward
                    # direction, t = 0 (original order) for the reverse one.
                    grad_hs[-1] += grad_h_n[idx]
                w_ih, w_hh, b_ih, b_hh = self._layer_params(layer, suffix)
                gx, gh0, gw_ih, gw_hh, gb = rnn_backward(grad_hs, inp, h0_d, hs, w_ih, w_hh,
                                                         nonlinearity=self.nonlinearity)
                key = f"l{layer}{suffix}"
                np.copyto(self.grads[f"weight_ih_{key}"], gw_ih)
                np.copyto(self.grads[f"weight_hh_{key}"], gw_hh)
                if b_ih is not None:
                    np.copyto(self.grads[f"bias_ih_{key}"], gb)
                    np.copyto(self.grads[f"bias_hh_{key}"], gb)
                grad_h0[idx] = gh0
                if d == 1:
                    gx = gx[::-1]  # back to original time order
                grad_input = gx if grad_input is None else grad_input + gx
            grad_out = grad_input  # the gradient of the layer below's output

        grad_x = grad_out
        if unbatched:
            return np.ascontiguousarray(grad_x[:, 0, :]), grad_h0[:, 0, :]
        if self.batch_first:
            grad_x = grad_x.transpose(1, 0, 2)
        return np.ascontiguousarray(grad_x), grad_h0

    def __repr__(self):
        s = f"RNN({self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.nonlinearity != "tanh":
            s += f", nonlinearity={self.nonlinearity!r}"
        if "bias_ih_l0" not in self.params:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.bidirectional:
            s += ", bidirectional=True"
        if self.dtype != np.float32:
            s += f", dtype={self.dtype.name}"
        return s + ")"
