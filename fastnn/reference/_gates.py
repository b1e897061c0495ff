"""What the gated recurrent oracles (LSTM, GRU) share: the sigmoid, and the gate pre-activations
of one step in torch.nn.LSTMCell / torch.nn.GRUCell's stacked layout."""
import numpy as np

from fastnn.reference._common import compute_dtype


def sigmoid(v):
    """1 / (1 + exp(-v)): relative accuracy at both ends (exp overflows to inf for v < -88 in
    float32, giving the right limit 0), NaN stays NaN."""
    return 1 / (1 + np.exp(-v))


def as_dtype(dtype, *arrays):
    """The arrays (None passes) as ndarrays of dtype."""
    return tuple(None if a is None else np.asarray(a).astype(dtype, copy=False) for a in arrays)


def step_dtype(*arrays):
    """The dtype a step computes in (see compute_dtype), from its non-None arguments."""
    return compute_dtype(*(np.asarray(a) for a in arrays if a is not None))


def input_part(x, w_ih, b_ih):
    """x @ w_ih.T (+ b_ih): the input side of every gate, (..., G*H)."""
    pre = x @ w_ih.T
    return pre if b_ih is None else pre + b_ih


def hidden_part(h, w_hh, b_hh):
    """h @ w_hh.T (+ b_hh): the hidden side of every gate, (..., G*H)."""
    pre = h @ w_hh.T
    return pre if b_hh is None else pre + b_hh


def split_gates(pre, count):
    """The `count` gates stacked along the last axis, as views."""
    return np.split(pre, count, axis=-1)
