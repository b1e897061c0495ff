"""The Elman RNN layers, :class:`RNN` (``torch.nn.RNN``) and :class:`RNNCell`
(``torch.nn.RNNCell``), over fastnn's RNN kernels."""
import numpy as np

from fastnn.layers._recurrent import _RecurrentCell, _StackedRecurrent, at_last_steps, check_dropout
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
        Keyword only (PyTorch also takes it positionally, before ``bidirectional``).
        Probability of zeroing each element of every layer's output but the last (inverted
        dropout, as ``torch.nn.RNN``: kept elements are scaled by 1/(1-dropout); 1 zeroes
        them), in training mode only (see :meth:`train`), with masks drawn from ``rng``; never
        on the final states. A real number in [0, 1]; with ``num_layers=1`` a value above 0
        warns (UserWarning, PyTorch's) and does nothing.
    dtype : {np.float32, np.float64}, default np.float32
        Dtype of the parameters and of the computation.
    rng : numpy.random.Generator or int or None, default None
        Source of the initial weights and of the dropout masks (an int is a seed; None draws
        fresh entropy); kept as the attribute ``rng``.

    Attributes
    ----------
    params : dict of str to ndarray
        For layer k and direction suffix s ('' forward, '_reverse' reverse), in PyTorch's order:
        ``weight_ih_l{k}{s}`` (H, I) for k = 0 and (H, D*H) above, ``weight_hh_l{k}{s}`` (H, H),
        and if ``bias``, ``bias_ih_l{k}{s}`` (H,) and ``bias_hh_l{k}{s}`` (H,). All initialised
        from U(-1/sqrt(H), 1/sqrt(H)), as PyTorch does.
    grads : dict of str to ndarray
        Same keys and shapes; overwritten by each :meth:`backward`.
    dropout : float
        The constructor's ``dropout``.
    training : bool
        True (training mode, dropout applies) after construction and :meth:`train`, False after
        :meth:`eval`.
    rng : numpy.random.Generator
        The generator that drew the initial weights; each training forward with dropout draws
        its masks from it (assign a new Generator to reseed).
    dropout_masks : list of ndarray
        Read only: the masks the most recent forward applied, one per layer but the last, each
        of that layer's output's shape in the caller's layout, values 0 or 1/(1-dropout) (the
        backward applies the same). Empty after a forward in evaluation mode or without dropout.

    Raises
    ------
    TypeError
        If an argument has the wrong type, or ``dtype`` is not float32/float64.
    ValueError
        If a size is out of range, ``nonlinearity`` is unknown, or ``dropout`` is not a number in
        [0, 1].
    """

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, bidirectional=False, *, dropout=0.0, dtype=np.float32,
                 rng=None):
        self._init_layers(input_size, hidden_size, num_layers, bias, batch_first, bidirectional, dtype)
        self.nonlinearity = _check_nonlinearity(nonlinearity)
        self.dropout = check_dropout(dropout, self.num_layers)
        self._init_params_from(rng)

    def forward(self, x, h0=None, *, lengths=None):
        """Run the RNN over a sequence.

        Parameters
        ----------
        x : array_like, shape (T, N, I), or (N, T, I) if batch_first, or (T, I) unbatched
            Input sequence, T >= 1. Cast to the layer's dtype if it has another.
        h0 : array_like, shape (num_layers*D, N, H), or (num_layers*D, H) unbatched, optional
            Initial hidden state of each layer and direction, ordered [l0, l0_reverse, l1, ...].
            Zeros if omitted.
        lengths : list of int or integer ndarray, shape (N,), optional, keyword only
            Each sequence's length, 1 <= lengths[b] <= T, in any order, ties allowed: sequence b
            is x's steps 0 .. lengths[b]-1, the rest padding. As PyTorch's
            ``pack_padded_sequence(x, lengths, enforce_sorted=False)`` -> module ->
            ``pad_packed_sequence(..., total_length=T)``: output is zero past each sequence's
            end, the final states are the states at its last real step, the reverse direction
            starts at that step, and padding reaches no gradient (:meth:`backward` remembers
            ``lengths``; grad_x is zero there). Not for unbatched input.

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
        TypeError
            If ``lengths`` is not None, a list of ints or an integer array.
        ValueError
            If a shape is wrong, T = 0, or ``lengths`` is wrong (a value outside 1..T, not
            N of them, or given with unbatched input).

        Notes
        -----
        The layer keeps references to its inputs and the hidden states for :meth:`backward`.
        """
        output, (h_n,) = self._forward(x, (h0,), lengths)
        return output, h_n

    def backward(self, grad_output, grad_h_n=None):
        """Back-propagate through the most recent :meth:`forward`.

        It goes back through that forward's dropout masks and ``lengths``: with lengths, the
        gradients at steps past a sequence's end are ignored and grad_x is zero there.

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

    def _run_direction(self, layer, suffix, inp, states, lengths):
        (h0,) = states
        if h0 is None:
            h0 = np.zeros((inp.shape[1], self.hidden_size), dtype=self.dtype)
        hs = rnn_forward(inp, h0, *self._layer_params(layer, suffix), nonlinearity=self.nonlinearity, lengths=lengths)
        return hs, at_last_steps(lengths, hs), (inp, h0, hs)

    def _back_direction(self, layer, suffix, saved, grad_hs, grad_finals, lengths):
        inp, h0, hs = saved
        w_ih, w_hh, _, _ = self._layer_params(layer, suffix)
        gx, gh0, gw_ih, gw_hh, gb = rnn_backward(grad_hs, inp, h0, hs, w_ih, w_hh, nonlinearity=self.nonlinearity,
                                                 lengths=lengths)
        return gx, (gh0,), (gw_ih, gw_hh, gb, gb)

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
