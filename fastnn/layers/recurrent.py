"""The Elman RNN layer, :class:`RNN` (``torch.nn.RNN``), over fastnn's RNN kernels."""
import math
import numbers

import numpy as np

from fastnn import _validation as v
from fastnn.layers._base import _Layer
from fastnn.recurrent import rnn_backward, rnn_forward

__all__ = ["RNN"]


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
        self.input_size = v.layer_int("input_size", input_size, 1)
        self.hidden_size = v.layer_int("hidden_size", hidden_size, 1)
        self.num_layers = v.layer_int("num_layers", num_layers, 1)
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        has_bias = v.layer_bool("bias", bias)
        self.batch_first = v.layer_bool("batch_first", batch_first)
        self.bidirectional = v.layer_bool("bidirectional", bidirectional)
        if not isinstance(dropout, numbers.Real) or dropout != 0:
            raise ValueError(f"dropout is not offered yet; dropout must be 0, got {dropout!r}")
        self.dtype = v.layer_dtype(dtype)

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
        self._init_params(shapes, 1.0 / math.sqrt(H), v.layer_rng(rng))
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
        x = v.layer_input("x", x, self.dtype, (2, 3))
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
            h0 = v.layer_input("h0", h0, self.dtype, (2,) if unbatched else (3,))
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
            grad_out = v.layer_input("grad_output", grad_output, self.dtype,
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
            grad_h_n = v.layer_input("grad_h_n", grad_h_n, self.dtype, (2,) if unbatched else (3,))
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
