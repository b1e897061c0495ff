"""Pure-NumPy GRU kernels (torch.nn.GRUCell / torch.nn.GRU layout): the oracles of fastnn's
gru_step, gru_step_backward, gru_forward and gru_backward.

Gates r, z, n are stacked in that order along the first axis of w_ih (3H, I), w_hh (3H, H)
and the biases (3H,); the n gate's hidden part, bias included, sits inside the reset product::

    r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr)
    z = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz)
    n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))
    h_next = (1 - z) * n + z * h
"""
import numpy as np

from fastnn.reference._common import live, quiet_ieee, sequence_lengths, store_result
from fastnn.reference._gates import as_dtype, hidden_part, input_part, sigmoid, split_gates, step_dtype

__all__ = ["gru_step", "gru_step_backward", "gru_forward", "gru_backward"]


def _gates(x, h, w_ih, w_hh, b_ih, b_hh):
    """r, z, n and the n gate's hidden part h W_hn^T + b_hn, each (N, H)."""
    i_r, i_z, i_n = split_gates(input_part(x, w_ih, b_ih), 3)
    h_r, h_z, h_n = split_gates(hidden_part(h, w_hh, b_hh), 3)
    r = sigmoid(i_r + h_r)
    z = sigmoid(i_z + h_z)
    n = np.tanh(i_n + r * h_n)
    return r, z, n, h_n


@quiet_ieee
def gru_step(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """One GRU step, as ``torch.nn.GRUCell``.

    Parameters
    ----------
    x : array_like, shape (N, I), float32 or float64
    h : array_like, shape (N, H)
    w_ih : array_like, shape (3H, I); w_hh : array_like, shape (3H, H)
        Gates r, z, n stacked in that order.
    b_ih, b_hh : array_like, shape (3H,), or None

    Returns
    -------
    h_next : ndarray, shape (N, H), dtype of the inputs
    """
    dtype = step_dtype(x, h, w_ih, w_hh)
    x, h, w_ih, w_hh, b_ih, b_hh = as_dtype(dtype, x, h, w_ih, w_hh, b_ih, b_hh)
    r, z, n, _ = _gates(x, h, w_ih, w_hh, b_ih, b_hh)
    return (1 - z) * n + z * h


@quiet_ieee
def gru_step_backward(grad_h_next, x, h, h_next, w_ih, w_hh, b_ih=None, b_hh=None):
    """Gradients of one :func:`gru_step` (the gates are recomputed from x, h and the weights).

    Parameters
    ----------
    grad_h_next : array_like, shape (N, H)
    x, h, w_ih, w_hh, b_ih, b_hh
        As given to :func:`gru_step`.
    h_next : array_like, shape (N, H)
        What :func:`gru_step` returned.

    Returns
    -------
    grad_x : (N, I); grad_h : (N, H); grad_w_ih : (3H, I); grad_w_hh : (3H, H);
    grad_b_ih, grad_b_hh : (3H,). They differ in the n gate: b_hn is inside the reset product.
    """
    dtype = step_dtype(grad_h_next, x, h, h_next, w_ih, w_hh)
    grad_h_next, x, h, w_ih, w_hh, b_ih, b_hh = as_dtype(dtype, grad_h_next, x, h, w_ih, w_hh, b_ih, b_hh)
    r, z, n, h_n = _gates(x, h, w_ih, w_hh, b_ih, b_hh)
    grad_n = grad_h_next * (1 - z) * (1 - n * n)   # at n's pre-activation
    grad_z = grad_h_next * (h - n) * z * (1 - z)
    grad_r = grad_n * h_n * r * (1 - r)
    grad_input_side = np.concatenate([grad_r, grad_z, grad_n], axis=-1)
    grad_hidden_side = np.concatenate([grad_r, grad_z, grad_n * r], axis=-1)
    grad_h = grad_h_next * z + grad_hidden_side @ w_hh
    return (grad_input_side @ w_ih, grad_h, grad_input_side.T @ x, grad_hidden_side.T @ h,
            grad_input_side.sum(axis=0), grad_hidden_side.sum(axis=0))


@quiet_ieee
def gru_forward(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, *, out=None, lengths=None):
    """A GRU over a whole sequence, as a one-layer ``torch.nn.GRU``.

    Parameters
    ----------
    x : array_like, shape (T, N, I), float32 or float64
        T may be 0.
    h0 : array_like, shape (N, H), or None (zeros)
    w_ih, w_hh, b_ih, b_hh
        As for :func:`gru_step`.
    out : ndarray, shape (T, N, H), optional
        Preallocated result, written into and returned.
    lengths : None, or N ints in 1..T (a list, tuple or int ndarray)
        Sequence b is ``x[:lengths[b], b]``; None: every sequence has length T.

    Returns
    -------
    hs : ndarray, shape (T, N, H), every step's hidden state (with lengths, zero at the steps
        past a sequence's end).
    """
    x, w_ih, w_hh = (np.asarray(a) for a in (x, w_ih, w_hh))
    dtype = step_dtype(x, w_ih, w_hh)
    t_len, n = x.shape[:2]
    hidden = w_hh.shape[1]
    lengths = sequence_lengths(lengths, t_len, n)
    if lengths is not None:  # step t runs the sequences still live, the others keep their state
        h = np.zeros((n, hidden), dtype) if h0 is None else np.array(h0, dtype)
        hs = np.zeros((t_len, n, hidden), dtype)
        for t in range(t_len):
            b = live(lengths, t)
            h[b] = hs[t, b] = gru_step(x[t, b], h[b], w_ih, w_hh, b_ih, b_hh)
        return store_result(hs, out)
    h = np.zeros((n, hidden), dtype) if h0 is None else np.asarray(h0, dtype)
    hs = np.empty((t_len, n, hidden), dtype)
    for t in range(t_len):
        h = gru_step(x[t], h, w_ih, w_hh, b_ih, b_hh)
        hs[t] = h
    return store_result(hs, out)


@quiet_ieee
def gru_backward(grad_hs, x, h0, hs, w_ih, w_hh, b_ih=None, b_hh=None, *, lengths=None):
    """Back-propagation through time for :func:`gru_forward`.

    Parameters
    ----------
    grad_hs : array_like, shape (T, N, H)
        Gradient of the loss with respect to every step's hidden state (its direct
        contribution; a gradient for the final state alone goes into ``grad_hs[-1]``).
    x, h0, w_ih, w_hh, b_ih, b_hh
        As given to :func:`gru_forward` (h0 may be None: zeros).
    hs : array_like, shape (T, N, H)
        What :func:`gru_forward` returned.
    lengths : None, or N ints in 1..T, as given to :func:`gru_forward`
        ``grad_hs[t, b]`` for ``t >= lengths[b]`` is ignored; grad_x is zero there.

    Returns
    -------
    grad_x : (T, N, I); grad_h0 : (N, H) (also when h0 is None; zeros when T = 0);
    grad_w_ih : (3H, I); grad_w_hh : (3H, H); grad_b_ih, grad_b_hh : (3H,).
    """
    grad_hs, x, hs, w_ih, w_hh = (np.asarray(a) for a in (grad_hs, x, hs, w_ih, w_hh))
    dtype = step_dtype(grad_hs, x, hs, w_ih, w_hh)
    t_len, n, n_in = x.shape
    hidden = w_hh.shape[1]
    h0 = np.zeros((n, hidden), dtype) if h0 is None else np.asarray(h0, dtype)
    grad_x = np.zeros((t_len, n, n_in), dtype)
    grad_w_ih = np.zeros(w_ih.shape, dtype)
    grad_w_hh = np.zeros(w_hh.shape, dtype)
    grad_b_ih = np.zeros(w_ih.shape[0], dtype)
    grad_b_hh = np.zeros(w_hh.shape[0], dtype)
    grad_h = np.zeros((n, hidden), dtype)  # flowing back from step t+1
    lengths = sequence_lengths(lengths, t_len, n)
    if lengths is not None:  # step t runs the sequences still live
        for t in reversed(range(t_len)):
            b = live(lengths, t)
            h_prev = hs[t - 1, b] if t > 0 else h0[b]
            grad_x[t, b], grad_h[b], gw_ih, gw_hh, gb_ih, gb_hh = gru_step_backward(
                grad_hs[t, b] + grad_h[b], x[t, b], h_prev, hs[t, b], w_ih, w_hh, b_ih, b_hh)
            grad_w_ih += gw_ih
            grad_w_hh += gw_hh
            grad_b_ih += gb_ih
            grad_b_hh += gb_hh
        return grad_x, grad_h, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh
    for t in reversed(range(t_len)):
        h_prev = hs[t - 1] if t > 0 else h0
        gx, grad_h, gw_ih, gw_hh, gb_ih, gb_hh = gru_step_backward(
            grad_hs[t] + grad_h, x[t], h_prev, hs[t], w_ih, w_hh, b_ih, b_hh)
        grad_x[t] = gx
        grad_w_ih += gw_ih
        grad_w_hh += gw_hh
        grad_b_ih += gb_ih
        grad_b_hh += gb_hh
    return grad_x, grad_h, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh
