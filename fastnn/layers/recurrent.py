"""The Elman RNN layers, :class:`RNN` (``torch.nn.RNN``) and :class:`RNNCell`
(``torch.nn.RNNCell``), over fastnn's RNN kernels."""
import numpy as np

from fastnn.layers._recurrent import _RecurrentCell, _StackedRecurrent, check_dropout
from fastnn.recurrent import rnn_backward, rnn_forward, rnn_step, rnn_step_backward

__all__ = ["RNN", "RNNCell"]


def _check_nonlinearity(nonlinearity):
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    return nonlinearity


class RNN(_StackedRecurrent):
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
        self._init_layers(input_size, hidden_size, num_layers, bias, batch_first, bidirectional, dtype)
        self.nonlinearity = _check_nonlinearity(nonlinearity)
        check_dropout(dropout)
        self._init_params_from(rng)

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
        output, (h_n,) = self._forward(x, (h0,))
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
        grad_x, (grad_h0,) = self._backward(grad_output, (grad_h_n,))
        return grad_x, grad_h0

    def _run_direction(self, layer, suffix, inp, states):
        (h0,) = states
        if h0 is None:
            h0 = np.zeros((inp.shape[1], self.hidden_size), dtype=self.dtype)
        hs = rnn_forward(inp, h0, *self._layer_params(layer, suffix), nonlinearity=self.nonlinearity)
        return hs, (hs[-1],), (inp, h0, hs)

    def _back_direction(self, layer, suffix, saved, grad_hs, grad_finals):
        inp, h0, hs = saved
        w_ih, w_hh, _, _ = self._layer_params(layer, suffix)
        gx, gh0, gw_ih, gw_hh, gb = rnn_backward(grad_hs, inp, h0, hs, w_ih, w_hh, nonlinearity=self.nonlinearity)
        self._store_grads(layer, suffix, gw_ih, gw_hh, gb, gb)
        return gx, (gh0,)

    def _repr_extra(self):
        return f", nonlinearity={self.nonlinearity!r}" if self.nonlinearity != "tanh" else ""


class RNNCell(_RecurrentCell):
    """One Elman RNN step, like ``torch.nn.RNNCell``: ``h' = act(x w_ih^T + b_ih + h w_hh^T + b_hh)``.

    For loops the caller drives (a decoder): every forward is remembered until its backward,
    most recent first; see :class:`fastnn.layers._recurrent._RecurrentCell` for how ``grads``
    fills over a sequence of backwards.

    Parameters
    ----------
    input_size, hidden_size : int
    bias : bool, default True
    nonlinearity : {'tanh', 'relu'}, default 'tanh'
    dtype : {np.float32, np.float64}, default np.float32
    rng : numpy.random.Generator or int or None, default None
        Source of the initial weights, U(-1/sqrt(H), 1/sqrt(H)) as PyTorch's.

    Attributes
    ----------
    params, grads : dict of str to ndarray
        ``weight_ih`` (H, I), ``weight_hh`` (H, H), and if ``bias`` ``bias_ih``, ``bias_hh`` (H,).
    """

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", *, dtype=np.float32, rng=None):
        self.nonlinearity = _check_nonlinearity(nonlinearity)
        self._init_cell(input_size, hidden_size, bias, dtype, rng)

    def forward(self, x, h=None):
        """One step: x (N, I) or (I,) unbatched, h (N, H) or (H,), None for zeros -> h_next."""
        (h_next,) = self._cell_forward(x, (h,))
        return h_next

    def backward(self, grad_h_next):
        """Back through the most recent forward not yet gone back through: (grad_x, grad_h)."""
        grad_x, (grad_h,) = self._cell_backward((grad_h_next,))
        return grad_x, grad_h

    def _step(self, x, states):
        return (rnn_step(x, states[0], *self._weights(), nonlinearity=self.nonlinearity),)

    def _step_back(self, x, states, nexts, grad_nexts):
        w_ih, w_hh, _, _ = self._weights()
        gx, gh, gw_ih, gw_hh, gb = rnn_step_backward(grad_nexts[0], x, states[0], nexts[0], w_ih, w_hh,
                                                     nonlinearity=self.nonlinearity)
        return gx, (gh,), gw_ih, gw_hh, gb, gb

    def _repr_extra(self):
        return f", nonlinearity={self.nonlinearity!r}" if self.nonlinearity != "tanh" else ""
