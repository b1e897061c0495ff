"""The LSTM layers, :class:`LSTM` (``torch.nn.LSTM``) and :class:`LSTMCell`
(``torch.nn.LSTMCell``), over fastnn's LSTM kernels."""
import numpy as np

from fastnn import _runtime
from fastnn import _validation as v
from fastnn import lstm as kernels
from fastnn.layers._recurrent import _RecurrentCell, _StackedRecurrent, at_last_steps, check_dropout

__all__ = ["LSTM", "LSTMCell"]


def _pair(name, value, first, second):
    """(first, second) parts of an optional pair (either part may be None)."""
    if value is None:
        return None, None
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name} must be None or a pair ({first}, {second}), got {type(value).__name__}")
    return value[0], value[1]


class LSTM(_StackedRecurrent):
    """Multi-layer LSTM, like ``torch.nn.LSTM``.

    Each layer and direction computes, for t = 0 .. T-1, with gates i, f, g, o stacked in the
    weights: ``i, f, o = sigmoid(.)``, ``g = tanh(.)`` of ``x_t w_ih^T + b_ih + h_{t-1} w_hh^T +
    b_hh``, then ``c_t = f c_{t-1} + i g`` and ``h_t = o tanh(c_t)``. Layer l > 0 takes the
    previous layer's output (D*H features) as its input. With ``bidirectional=True`` a second
    direction runs over the reversed sequence; the output holds [forward, reverse] features
    side by side.

    Parameters
    ----------
    input_size : int
        I, features per time step of the input.
    hidden_size : int
        H, features of the hidden and cell states.
    num_layers : int, default 1
    bias : bool, default True
        Whether the layers have ``b_ih`` and ``b_hh``.
    batch_first : bool, default False
        If True, ``forward``'s input and output are (N, T, features) rather than (T, N,
        features). The states are not affected, as in PyTorch.
    dropout : float, default 0.0
        Probability of zeroing each element of every layer's output but the last (inverted
        dropout, as ``torch.nn.LSTM``: kept elements are scaled by 1/(1-dropout); 1 zeroes
        them), in training mode only (see :meth:`train`), with masks drawn from ``rng``; never
        on the final states. A real number in [0, 1]; with ``num_layers=1`` a value above 0
        warns (UserWarning, PyTorch's) and does nothing.
    bidirectional : bool, default False
        Whether each layer also runs right to left (D = 2; else D = 1).
    proj_size : int, default 0
        Accepted for PyTorch parity; LSTMs with projections are not offered yet: any value other
        than 0 raises ValueError.
    dtype : {np.float32, np.float64}, default np.float32
        Dtype of the parameters and of the computation.
    rng : numpy.random.Generator or int or None, default None
        Source of the initial weights and of the dropout masks (an int is a seed; None draws
        fresh entropy); kept as the attribute ``rng``.

    Attributes
    ----------
    params : dict of str to ndarray
        For layer k and direction suffix s ('' forward, '_reverse' reverse), in PyTorch's order:
        ``weight_ih_l{k}{s}`` (4H, I) for k = 0 and (4H, D*H) above, ``weight_hh_l{k}{s}`` (4H, H),
        and if ``bias``, ``bias_ih_l{k}{s}`` and ``bias_hh_l{k}{s}`` (4H,). All initialised from
        U(-1/sqrt(H), 1/sqrt(H)), as PyTorch does: a torch state_dict converted to NumPy loads
        unchanged.
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
        If a size is out of range, ``dropout`` is not a number in [0, 1], or ``proj_size`` is
        not 0.
    """

    GATES = 4
    STATES = ("h0", "c0")
    FINAL_GRADS = ("grad_h_n", "grad_c_n")

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, *, dtype=np.float32, rng=None):
        self._init_layers(input_size, hidden_size, num_layers, bias, batch_first, bidirectional, dtype)
        self.dropout = check_dropout(dropout, self.num_layers)
        if v.layer_int("proj_size", proj_size, 0) != 0:
            raise ValueError(f"proj_size is not offered yet; proj_size must be 0, got {proj_size!r}")
        self._init_params_from(rng)

    def forward(self, x, hx=None, *, lengths=None):
        """Run the LSTM over a sequence.

        Parameters
        ----------
        x : array_like, shape (T, N, I), or (N, T, I) if batch_first, or (T, I) unbatched
            Input sequence, T >= 1. Cast to the layer's dtype if it has another.
        hx : None or a pair (h0, c0), each array_like of shape (num_layers*D, N, H), or
            (num_layers*D, H) unbatched, or None
            Initial hidden and cell states of each layer and direction, ordered [l0,
            l0_reverse, l1, ...]. Zeros where omitted.
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
            The last layer's hidden state at every step (for a bidirectional LSTM the forward
            direction's features first, both indexed by the original time order).
        (h_n, c_n) : ndarrays, shape (num_layers*D, N, H), or (num_layers*D, H) unbatched
            Final hidden and cell states of each layer and direction (for the reverse
            direction, after reading time 0).

        Raises
        ------
        TypeError
            If hx is not None or a pair, or ``lengths`` is not None, a list of ints or an
            integer array.
        ValueError
            If a shape is wrong, T = 0, or ``lengths`` is wrong (a value outside 1..T, not
            N of them, or given with unbatched input).

        Notes
        -----
        The layer keeps references to its inputs and states, and the activated gates, for
        :meth:`backward` (the gates' buffers are reused by the next forward of the same shape).
        """
        output, (h_n, c_n) = self._forward(x, _pair("hx", hx, "h0", "c0"), lengths)
        return output, (h_n, c_n)

    def backward(self, grad_output, grad_hx=None):
        """Back-propagate through the most recent :meth:`forward`.

        It goes back through that forward's dropout masks and ``lengths``: with lengths, the
        gradients at steps past a sequence's end are ignored and grad_x is zero there.

        Parameters
        ----------
        grad_output : array_like or None, shape of the forward ``output``
            Gradient of the loss with respect to ``output``. None means zeros.
        grad_hx : None or a pair (grad_h_n, grad_c_n), each None (zeros) or array_like of the
            forward h_n's / c_n's shape

        Returns
        -------
        grad_x : ndarray, shape of the forward ``x``
        (grad_h0, grad_c0) : ndarrays, shape (num_layers*D, N, H), or (num_layers*D, H)
            unbatched: the gradients of the initial states (also where they were omitted: the
            gradient at the zero state).

        Every entry of ``grads`` is overwritten; ``bias_ih_*`` and ``bias_hh_*`` get the same
        gradient.

        Raises
        ------
        RuntimeError
            If :meth:`forward` has not been called.
        TypeError
            If grad_hx is not None or a pair.
        ValueError
            If a gradient's shape is wrong.
        """
        grad_x, (grad_h0, grad_c0) = self._backward(grad_output, _pair("grad_hx", grad_hx, "grad_h_n", "grad_c_n"))
        return grad_x, (grad_h0, grad_c0)

    def _run_direction(self, layer, suffix, inp, states, lengths):
        h0, c0 = states
        w_ih, w_hh, b_ih, b_hh = self._layer_params(layer, suffix)
        T, N, _ = inp.shape
        gates = (self._buffer((layer, suffix), (T, N, 4 * self.hidden_size))
                 if _runtime._kernels is not None else None)
        hs, cs = kernels._forward_checked(self.dtype, inp, h0, c0, w_ih, w_hh, b_ih, b_hh, gates=gates,
                                          lengths=lengths)
        return hs, at_last_steps(lengths, hs, cs), (inp, h0, c0, hs, cs, gates)

    def _back_direction(self, layer, suffix, saved, grad_hs, grad_finals, lengths):
        inp, h0, c0, hs, cs, gates = saved
        (grad_c_n,) = grad_finals
        w_ih, w_hh, b_ih, b_hh = self._layer_params(layer, suffix)
        gx, gh0, gc0, gw_ih, gw_hh, gb = kernels._backward_checked(
            self.dtype, grad_hs, grad_c_n, inp, h0, c0, hs, cs, w_ih, w_hh, b_ih, b_hh, gates=gates, lengths=lengths)
        return gx, (gh0, gc0), (gw_ih, gw_hh, gb, gb)


class LSTMCell(_RecurrentCell):
    """One LSTM step, like ``torch.nn.LSTMCell`` (the equations of :class:`LSTM`).

    For loops the caller drives (a decoder): every forward is remembered until its backward,
    most recent first; see :class:`fastnn.layers._recurrent._RecurrentCell` for how ``grads``
    fills over a sequence of backwards.

    Parameters
    ----------
    input_size, hidden_size : int
    bias : bool, default True
    dtype : {np.float32, np.float64}, default np.float32
    rng : numpy.random.Generator or int or None, default None
        Source of the initial weights, U(-1/sqrt(H), 1/sqrt(H)) as PyTorch's.

    Attributes
    ----------
    params, grads : dict of str to ndarray
        ``weight_ih`` (4H, I), ``weight_hh`` (4H, H), and if ``bias`` ``bias_ih``, ``bias_hh`` (4H,).
    """

    GATES = 4
    STATES = ("h", "c")

    def __init__(self, input_size, hidden_size, bias=True, *, dtype=np.float32, rng=None):
        self._init_cell(input_size, hidden_size, bias, dtype, rng)

    def forward(self, x, hx=None, *, lengths=None):
        """One step: x (N, I) or (I,) unbatched; hx None or a pair (h, c), each (N, H) / (H,)
        or None (zeros) -> (h_next, c_next)."""
        return self._cell_forward(x, _pair("hx", hx, "h", "c"))

    def backward(self, grad_h_next, grad_c_next=None):
        """Back through the most recent forward not yet gone back through: (grad_x, (grad_h,
        grad_c)). Either gradient may be None (zeros)."""
        return self._cell_backward((grad_h_next, grad_c_next))

    def _step(self, x, states):
        return kernels.lstm_step(x, *states, *self._weights())

    def _step_back(self, x, states, nexts, grad_nexts):
        gx, gh, gc, gw_ih, gw_hh, gb = kernels.lstm_step_backward(grad_nexts[0], x, *states, *nexts, *self._weights(),
                                                                   grad_c_next=grad_nexts[1])
        return gx, (gh, gc), gw_ih, gw_hh, gb, gb
