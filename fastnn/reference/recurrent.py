"""Pure-NumPy Elman RNN kernels (torch.nn.RNNCell / torch.nn.RNN layout): the oracles of
fastnn's rnn_step, rnn_step_backward, rnn_forward and rnn_backward."""
import numpy as np

from fastnn.reference._common import compute_dtype, live, quiet_ieee, sequence_lengths, store_result

__all__ = ["rnn_step", "rnn_step_backward", "rnn_forward", "rnn_backward"]


# ---------------------------------------------------------------------------
# RNN
# ---------------------------------------------------------------------------

def _activation(pre, nonlinearity):
    if nonlinearity == "tanh":
        return np.tanh(pre)
    if nonlinearity == "relu":
        return np.maximum(pre, 0)  # propagates NaN, like torch.relu
    raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")


def _through_activation(grad_h_next, h_next, nonlinearity):
    """The gradient at the pre-activation, from the one at the output h_next = act(pre).

    relu's derivative is applied as PyTorch does, as a select: a dead unit passes no gradient
    at all, so an Inf or NaN arriving there stops (a product would make 0 * Inf = NaN)."""
    if nonlinearity == "tanh":
        return grad_h_next * (1 - h_next * h_next)
    if nonlinearity == "relu":
        return np.where(h_next > 0, grad_h_next, 0).astype(grad_h_next.dtype, copy=False)
    raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")


@quiet_ieee
def rnn_step(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    """One step of an Elman RNN, as ``torch.nn.RNNCell``.

    ``h_next = act(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh)``

    Parameters
    ----------
    x : array_like, shape (N, I), float32 or float64
    h : array_like, shape (N, H)
    w_ih : array_like, shape (H, I)
    w_hh : array_like, shape (H, H)
    b_ih, b_hh : array_like, shape (H,), or None
    nonlinearity : {'tanh', 'relu'}

    Returns
    -------
    h_next : ndarray, shape (N, H), dtype of the inputs

    Raises
    ------
    ValueError
        If ``nonlinearity`` is neither 'tanh' nor 'relu'.
    """
    x, h, w_ih, w_hh = (np.asarray(a) for a in (x, h, w_ih, w_hh))
    dtype = compute_dtype(x, h, w_ih, w_hh)
    pre = x.astype(dtype, copy=False) @ w_ih.astype(dtype, copy=False).T
    pre += h.astype(dtype, copy=False) @ w_hh.astype(dtype, copy=False).T
    if b_ih is not None:
        pre += np.asarray(b_ih, dtype=dtype)
    if b_hh is not None:
        pre += np.asarray(b_hh, dtype=dtype)
    return _activation(pre, nonlinearity)


@quiet_ieee
def rnn_step_backward(grad_h_next, x, h, h_next, w_ih, w_hh, nonlinearity="tanh"):
    """Gradients of one :func:`rnn_step`.

    Parameters
    ----------
    grad_h_next : array_like, shape (N, H)
        Gradient of the loss with respect to ``h_next``.
    x : array_like, shape (N, I)
    h : array_like, shape (N, H)
        The hidden state the step started from.
    h_next : array_like, shape (N, H)
        The output of the step (the activation's derivative is computed from
        it: ``tanh' = 1 - h_next**2``, ``relu' = (h_next > 0)``).
    w_ih : array_like, shape (H, I)
    w_hh : array_like, shape (H, H)
    nonlinearity : {'tanh', 'relu'}

    Returns
    -------
    grad_x : ndarray, shape (N, I)
    grad_h : ndarray, shape (N, H)
    grad_w_ih : ndarray, shape (H, I)
    grad_w_hh : ndarray, shape (H, H)
    grad_b : ndarray, shape (H,)
        Gradient of ``b_ih`` and of ``b_hh`` alike.
    """
    grad_h_next, x, h, h_next, w_ih, w_hh = (
        np.asarray(a) for a in (grad_h_next, x, h, h_next, w_ih, w_hh))
    dtype = compute_dtype(grad_h_next, x, h, h_next, w_ih, w_hh)
    grad_h_next, x, h, h_next, w_ih, w_hh = (
        a.astype(dtype, copy=False) for a in (grad_h_next, x, h, h_next, w_ih, w_hh))
    grad_pre = _through_activation(grad_h_next, h_next, nonlinearity)  # (N, H)
    grad_x = grad_pre @ w_ih
    grad_h = grad_pre @ w_hh
    grad_w_ih = grad_pre.T @ x
    grad_w_hh = grad_pre.T @ h
    grad_b = grad_pre.sum(axis=0)
    return grad_x, grad_h, grad_w_ih, grad_w_hh, grad_b


@quiet_ieee
def rnn_forward(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh", *, out=None, lengths=None):
    """An Elman RNN over a whole sequence, as a one-layer ``torch.nn.RNN``.

    ``hs[t] = act(x[t] @ w_ih.T + b_ih + hs[t-1] @ w_hh.T + b_hh)``, with
    ``hs[-1] = h0``.

    Parameters
    ----------
    x : array_like, shape (T, N, I), float32 or float64
        T may be 0.
    h0 : array_like, shape (N, H), or None (zeros)
    w_ih : array_like, shape (H, I)
    w_hh : array_like, shape (H, H)
    b_ih, b_hh : array_like, shape (H,), or None
    nonlinearity : {'tanh', 'relu'}
    out : ndarray, shape (T, N, H), optional
        Preallocated result, written into and returned.
    lengths : None, or N ints in 1..T (a list, tuple or int ndarray)
        Sequence b is ``x[:lengths[b], b]``; None: every sequence has length T.

    Returns
    -------
    hs : ndarray, shape (T, N, H), dtype of the inputs
        Every step's hidden state; with lengths, zero at the steps past a sequence's end.
    """
    x, w_ih, w_hh = (np.asarray(a) for a in (x, w_ih, w_hh))
    dtype = compute_dtype(x, w_ih, w_hh)
    t_len, n = x.shape[:2]
    hidden = w_hh.shape[0]
    lengths = sequence_lengths(lengths, t_len, n)
    if lengths is not None:  # step t runs the sequences still live, the others keep their state
        h = np.zeros((n, hidden), dtype=dtype) if h0 is None else np.array(h0, dtype=dtype)
        hs = np.zeros((t_len, n, hidden), dtype=dtype)
        for t in range(t_len):
            b = live(lengths, t)
            h[b] = hs[t, b] = rnn_step(x[t, b], h[b], w_ih, w_hh, b_ih, b_hh, nonlinearity)
        return store_result(hs, out)
    h = np.zeros((n, hidden), dtype=dtype) if h0 is None else np.asarray(h0, dtype=dtype)
    hs = np.empty((t_len, n, hidden), dtype=dtype)
    for t in range(t_len):
        h = rnn_step(x[t], h, w_ih, w_hh, b_ih, b_hh, nonlinearity)
        hs[t] = h
    return store_result(hs, out)


@quiet_ieee
def rnn_backward(grad_hs, x, h0, hs, w_ih, w_hh, nonlinearity="tanh", *, lengths=None):
    """Back-propagation through time for :func:`rnn_forward`.

    Parameters
    ----------
    grad_hs : array_like, shape (T, N, H)
        Gradient of the loss with respect to every step's hidden state
        (its direct contribution only, not through later steps).
    x : array_like, shape (T, N, I)
    h0 : array_like, shape (N, H), or None (zeros)
    hs : array_like, shape (T, N, H)
        The output of :func:`rnn_forward`.
    w_ih : array_like, shape (H, I)
    w_hh : array_like, shape (H, H)
    nonlinearity : {'tanh', 'relu'}
    lengths : None, or N ints in 1..T, as given to :func:`rnn_forward`
        ``grad_hs[t, b]`` for ``t >= lengths[b]`` is ignored; sequence b's final state is
        ``hs[lengths[b] - 1, b]``.

    Returns
    -------
    grad_x : ndarray, shape (T, N, I)
        With lengths, zero at the steps past a sequence's end.
    grad_h0 : ndarray, shape (N, H)
        Returned even when ``h0`` is None (zeros when T = 0).
    grad_w_ih : ndarray, shape (H, I)
    grad_w_hh : ndarray, shape (H, H)
    grad_b : ndarray, shape (H,)
        Gradient of ``b_ih`` and of ``b_hh`` alike.
    """
    grad_hs, x, hs, w_ih, w_hh = (np.asarray(a) for a in (grad_hs, x, hs, w_ih, w_hh))
    dtype = compute_dtype(grad_hs, x, hs, w_ih, w_hh)
    t_len, n, n_in = x.shape
    hidden = w_hh.shape[0]
    h0 = np.zeros((n, hidden), dtype=dtype) if h0 is None else np.asarray(h0, dtype=dtype)

    grad_x = np.zeros((t_len, n, n_in), dtype=dtype)
    grad_w_ih = np.zeros((hidden, n_in), dtype=dtype)
    grad_w_hh = np.zeros((hidden, hidden), dtype=dtype)
    grad_b = np.zeros(hidden, dtype=dtype)
    grad_h = np.zeros((n, hidden), dtype=dtype)  # gradient flowing back from step t+1
    lengths = sequence_lengths(lengths, t_len, n)
    if lengths is not None:  # step t runs the sequences still live
        for t in reversed(range(t_len)):
            b = live(lengths, t)
            h_prev = hs[t - 1, b] if t > 0 else h0[b]
            grad_x[t, b], grad_h[b], gw_ih, gw_hh, gb = rnn_step_backward(
                grad_hs[t, b] + grad_h[b], x[t, b], h_prev, hs[t, b], w_ih, w_hh, nonlinearity)
            grad_w_ih += gw_ih
            grad_w_hh += gw_hh
            grad_b += gb
        return grad_x, grad_h, grad_w_ih, grad_w_hh, grad_b
    for t in reversed(range(t_len)):
        h_prev = hs[t - 1] if t > 0 else h0
        gx, grad_h, gw_ih, gw_hh, gb = rnn_step_backward(
            grad_hs[t] + grad_h, x[t], h_prev, hs[t], w_ih, w_hh, nonlinearity)
        grad_x[t] = gx
        grad_w_ih += gw_ih
        grad_w_hh += gw_hh
        grad_b += gb
    return grad_x, grad_h, grad_w_ih, grad_w_hh, grad_b
