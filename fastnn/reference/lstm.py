"""Pure-NumPy LSTM kernels (torch.nn.LSTMCell / torch.nn.LSTM layout): the oracles of fastnn's
lstm_step, lstm_step_backward, lstm_forward and lstm_backward.

Gates i, f, g, o are stacked in that order along the first axis of w_ih (4H, I), w_hh (4H, H)
and the biases (4H,)::

    i, f, g, o = sigmoid(.), sigmoid(.), tanh(.), sigmoid(.)  of  x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
    c_next = f * c + i * g
    h_next = o * tanh(c_next)
"""
import numpy as np

from fastnn.reference._common import live, quiet_ieee, sequence_lengths, store_result
from fastnn.reference._gates import as_dtype, hidden_part, input_part, sigmoid, split_gates, step_dtype

__all__ = ["lstm_step", "lstm_step_backward", "lstm_forward", "lstm_backward"]


def _gates(x, h, w_ih, w_hh, b_ih, b_hh):
    """The activated gates (i, f, g, o) of one step, each (N, H)."""
    pre = input_part(x, w_ih, b_ih) + hidden_part(h, w_hh, b_hh)
    i, f, g, o = split_gates(pre, 4)
    return sigmoid(i), sigmoid(f), np.tanh(g), sigmoid(o)


@quiet_ieee
def lstm_step(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    """One LSTM step, as ``torch.nn.LSTMCell``.

    Parameters
    ----------
    x : array_like, shape (N, I), float32 or float64
    h, c : array_like, shape (N, H)
        Hidden and cell state the step starts from.
    w_ih : array_like, shape (4H, I); w_hh : array_like, shape (4H, H)
        Gates i, f, g, o stacked in that order.
    b_ih, b_hh : array_like, shape (4H,), or None

    Returns
    -------
    h_next, c_next : ndarray, shape (N, H), dtype of the inputs
    """
    dtype = step_dtype(x, h, c, w_ih, w_hh)
    x, h, c, w_ih, w_hh, b_ih, b_hh = as_dtype(dtype, x, h, c, w_ih, w_hh, b_ih, b_hh)
    i, f, g, o = _gates(x, h, w_ih, w_hh, b_ih, b_hh)
    c_next = f * c + i * g
    h_next = o * np.tanh(c_next)
    return h_next, c_next


@quiet_ieee
def lstm_step_backward(grad_h_next, x, h, c, h_next, c_next, w_ih, w_hh, b_ih=None, b_hh=None, *,
                       grad_c_next=None):
    """Gradients of one :func:`lstm_step` (the gates are recomputed from x, h and the weights).

    Parameters
    ----------
    grad_h_next : array_like, shape (N, H)
        Gradient of the loss with respect to ``h_next``.
    x, h, c, w_ih, w_hh, b_ih, b_hh
        As given to :func:`lstm_step`.
    h_next, c_next : array_like, shape (N, H)
        What :func:`lstm_step` returned.
    grad_c_next : array_like, shape (N, H), or None (zeros)
        Gradient of the loss with respect to ``c_next`` from outside the step.

    Returns
    -------
    grad_x : (N, I); grad_h : (N, H); grad_c : (N, H); grad_w_ih : (4H, I); grad_w_hh : (4H, H);
    grad_b : (4H,), the gradient of ``b_ih`` and of ``b_hh`` alike.
    """
    dtype = step_dtype(grad_h_next, x, h, c, h_next, c_next, w_ih, w_hh)
    grad_h_next, x, h, c, c_next, w_ih, w_hh, b_ih, b_hh, grad_c_next = as_dtype(
        dtype, grad_h_next, x, h, c, c_next, w_ih, w_hh, b_ih, b_hh, grad_c_next)
    i, f, g, o = _gates(x, h, w_ih, w_hh, b_ih, b_hh)
    tanh_c = np.tanh(c_next)
    grad_o = grad_h_next * tanh_c
    grad_cell = grad_h_next * o * (1 - tanh_c * tanh_c)
    if grad_c_next is not None:
        grad_cell = grad_cell + grad_c_next
    grad_pre = np.concatenate([
        grad_cell * g * i * (1 - i),   # i
        grad_cell * c * f * (1 - f),   # f
        grad_cell * i * (1 - g * g),   # g
        grad_o * o * (1 - o),          # o
    ], axis=-1)
    grad_c = grad_cell * f
    return (grad_pre @ w_ih, grad_pre @ w_hh, grad_c, grad_pre.T @ x, grad_pre.T @ h,
            grad_pre.sum(axis=0))


def _store_pair(results, out):
    """Write (hs, cs) into out = None or a pair (hs_out or None, cs_out or None)."""
    if out is None:
        return results
    return tuple(store_result(r, o) for r, o in zip(results, out))


@quiet_ieee
def lstm_forward(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, *, out=None, lengths=None):
    """An LSTM over a whole sequence, as a one-layer ``torch.nn.LSTM``.

    Parameters
    ----------
    x : array_like, shape (T, N, I), float32 or float64
        T may be 0.
    h0, c0 : array_like, shape (N, H), or None (zeros)
    w_ih, w_hh, b_ih, b_hh
        As for :func:`lstm_step`.
    out : None, or a pair (hs_out, cs_out), either of them None or an ndarray (T, N, H)
        Preallocated results, written into and returned.
    lengths : None, or N ints in 1..T (a list, tuple or int ndarray)
        Sequence b is ``x[:lengths[b], b]``; None: every sequence has length T.

    Returns
    -------
    hs, cs : ndarray, shape (T, N, H), every step's hidden and cell state (with lengths, zero
        at the steps past a sequence's end).
    """
    x, w_ih, w_hh = (np.asarray(a) for a in (x, w_ih, w_hh))
    dtype = step_dtype(x, w_ih, w_hh)
    t_len, n = x.shape[:2]
    hidden = w_hh.shape[1]
    lengths = sequence_lengths(lengths, t_len, n)
    if lengths is not None:  # step t runs the sequences still live, the others keep their state
        h = np.zeros((n, hidden), dtype) if h0 is None else np.array(h0, dtype)
        c = np.zeros((n, hidden), dtype) if c0 is None else np.array(c0, dtype)
        hs = np.zeros((t_len, n, hidden), dtype)
        cs = np.zeros((t_len, n, hidden), dtype)
        for t in range(t_len):
            b = live(lengths, t)
            h[b], c[b] = lstm_step(x[t, b], h[b], c[b], w_ih, w_hh, b_ih, b_hh)
            hs[t, b], cs[t, b] = h[b], c[b]
        return _store_pair((hs, cs), out)
    h = np.zeros((n, hidden), dtype) if h0 is None else np.asarray(h0, dtype)
    c = np.zeros((n, hidden), dtype) if c0 is None else np.asarray(c0, dtype)
    hs = np.empty((t_len, n, hidden), dtype)
    cs = np.empty((t_len, n, hidden), dtype)
    for t in range(t_len):
        h, c = lstm_step(x[t], h, c, w_ih, w_hh, b_ih, b_hh)
        hs[t], cs[t] = h, c
    return _store_pair((hs, cs), out)


@quiet_ieee
def lstm_backward(grad_hs, x, h0, c0, hs, cs, w_ih, w_hh, b_ih=None, b_hh=None, *, grad_c_n=None, lengths=None):
    """Back-propagation through time for :func:`lstm_forward`.

    Parameters
    ----------
    grad_hs : array_like, shape (T, N, H)
        Gradient of the loss with respect to every step's hidden state (its direct
        contribution; a gradient for the final state alone goes into ``grad_hs[-1]``).
    x, h0, c0, w_ih, w_hh, b_ih, b_hh
        As given to :func:`lstm_forward` (h0, c0 may be None: zeros).
    hs, cs : array_like, shape (T, N, H)
        What :func:`lstm_forward` returned.
    grad_c_n : array_like, shape (N, H), or None (zeros)
        Gradient of the loss with respect to the final cell state ``cs[-1]`` (with lengths,
        ``grad_c_n[b]`` is that of ``cs[lengths[b] - 1, b]``).
    lengths : None, or N ints in 1..T, as given to :func:`lstm_forward`
        ``grad_hs[t, b]`` for ``t >= lengths[b]`` is ignored; grad_x is zero there.

    Returns
    -------
    grad_x : (T, N, I); grad_h0, grad_c0 : (N, H) (also when h0, c0 are None; zeros when
    T = 0, grad_c0 then being grad_c_n); grad_w_ih : (4H, I); grad_w_hh : (4H, H);
    grad_b : (4H,), the gradient of ``b_ih`` and of ``b_hh`` alike.
    """
    grad_hs, x, hs, cs, w_ih, w_hh = (np.asarray(a) for a in (grad_hs, x, hs, cs, w_ih, w_hh))
    dtype = step_dtype(grad_hs, x, hs, cs, w_ih, w_hh)
    t_len, n, n_in = x.shape
    hidden = w_hh.shape[1]
    h0 = np.zeros((n, hidden), dtype) if h0 is None else np.asarray(h0, dtype)
    c0 = np.zeros((n, hidden), dtype) if c0 is None else np.asarray(c0, dtype)
    grad_x = np.zeros((t_len, n, n_in), dtype)
    grad_w_ih = np.zeros(w_ih.shape, dtype)
    grad_w_hh = np.zeros(w_hh.shape, dtype)
    grad_b = np.zeros(w_hh.shape[0], dtype)
    grad_h = np.zeros((n, hidden), dtype)  # flowing back from step t+1
    grad_c = np.zeros((n, hidden), dtype) if grad_c_n is None else np.array(grad_c_n, dtype)
    lengths = sequence_lengths(lengths, t_len, n)
    if lengths is not None:  # step t runs the sequences still live
        for t in reversed(range(t_len)):
            b = live(lengths, t)
            h_prev, c_prev = (hs[t - 1, b], cs[t - 1, b]) if t > 0 else (h0[b], c0[b])
            grad_x[t, b], grad_h[b], grad_c[b], gw_ih, gw_hh, gb = lstm_step_backward(
                grad_hs[t, b] + grad_h[b], x[t, b], h_prev, c_prev, hs[t, b], cs[t, b], w_ih, w_hh, b_ih, b_hh,
                grad_c_next=grad_c[b])
            grad_w_ih += gw_ih
            grad_w_hh += gw_hh
            grad_b += gb
        return grad_x, grad_h, grad_c, grad_w_ih, grad_w_hh, grad_b
    for t in reversed(range(t_len)):
        h_prev, c_prev = (hs[t - 1], cs[t - 1]) if t > 0 else (h0, c0)
        gx, grad_h, grad_c, gw_ih, gw_hh, gb = lstm_step_backward(
            grad_hs[t] + grad_h, x[t], h_prev, c_prev, hs[t], cs[t], w_ih, w_hh, b_ih, b_hh,
            grad_c_next=grad_c)
        grad_x[t] = gx
        grad_w_ih += gw_ih
        grad_w_hh += gw_hh
        grad_b += gb
    return grad_x, grad_h, grad_c, grad_w_ih, grad_w_hh, grad_b
