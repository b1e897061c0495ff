"""What the public LSTM and GRU kernels (fastnn.lstm, fastnn.gru) share: checking their arrays
and stacked-gate weights, and the bias and empty-size rules of their drivers.

The compiled drivers trust their arguments; everything they rely on is checked here.
"""
import numpy as np

from fastnn import _validation as v

GATE_NAMES = {4: "i, f, g, o", 3: "r, z, n"}


def gated_weights(x_features, gates, w_ih, w_hh, b_ih, b_hh):
    """Check torch.nn.LSTMCell / GRUCell-layout weights (`gates` gates stacked along the first
    axis); return hidden size H."""
    rows = w_ih.shape[0]
    if rows % gates:
        raise ValueError(f"w_ih must have {gates}H rows (gates {GATE_NAMES[gates]} stacked), got shape "
                         f"{w_ih.shape}")
    hidden = rows // gates
    if w_ih.shape[1] != x_features:
        raise ValueError(f"w_ih must have shape ({gates}H, {x_features}) to match x's features, got {w_ih.shape}")
    if w_hh.shape != (rows, hidden):
        raise ValueError(f"w_hh must have shape ({rows}, {hidden}) to match w_ih, got {w_hh.shape}")
    for name, b in (("b_ih", b_ih), ("b_hh", b_hh)):
        if b is not None and b.shape != (rows,):
            raise ValueError(f"{name} must have shape ({rows},), got {b.shape}")
    return hidden


def gated_inputs(x, x_ndim, gates, w_ih, w_hh, b_ih=None, b_hh=None, *, optional=(), **others):
    """Arrays for an LSTM (gates=4) or GRU (gates=3) kernel with one common dtype: x has x_ndim
    dims, others are named (array, ndim), those named in `optional` may be None. Returns
    (dtype, H, x, w_ih, w_hh, b_ih, b_hh, {name: array or None})."""
    x = v.as_float_array("x", x, x_ndim)
    w_ih = v.as_float_array("w_ih", w_ih, 2)
    w_hh = v.as_float_array("w_hh", w_hh, 2)
    b_ih = None if b_ih is None else v.as_float_array("b_ih", b_ih, 1)
    b_hh = None if b_hh is None else v.as_float_array("b_hh", b_hh, 1)
    arrays = {name: None if a is None and name in optional else v.as_float_array(name, a, nd)
              for name, (a, nd) in others.items()}
    dtype = v.common_dtype(x=x, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh, **arrays)
    hidden = gated_weights(x.shape[-1], gates, w_ih, w_hh, b_ih, b_hh)
    return dtype, hidden, x, w_ih, w_hh, b_ih, b_hh, arrays


def check_states(hidden, batch, **states):
    """Every given state (None passes) must be (batch, hidden)."""
    for name, a in states.items():
        v.check_shape(name, a, (batch, hidden))


def summed_bias(dtype, b_ih, b_hh):
    """b_ih + b_hh (either may be None), added once for every step."""
    if b_ih is None or b_hh is None:
        return b_ih if b_hh is None else b_hh
    return b_ih.astype(dtype) + b_hh.astype(dtype)


def maybe(a, dtype):
    """None, or a as the C-contiguous native array the drivers take."""
    return None if a is None else v.contiguous(a, dtype)


def forward_flops(steps, batch, features, hidden, gates):
    return 2 * steps * batch * gates * hidden * (features + hidden)
