"""fastnn's LSTM kernels: validate, normalise, then run the compiled driver.

torch.nn.LSTMCell / torch.nn.LSTM's layout: gates i, f, g, o stacked in w_ih (4H, I),
w_hh (4H, H) and the biases (4H,). The compiled drivers (fastnn._kernels) trust their
arguments; everything they rely on is checked here. When the extension is missing,
fastnn.reference does the work instead.
"""
import numpy as np

from fastnn import _runtime
from fastnn import _validation as v
from fastnn import reference
from fastnn._gates import check_states, forward_flops, gated_inputs, maybe, summed_bias
from fastnn import _lengths
from fastnn._lengths import head

__all__ = ["lstm_step", "lstm_step_backward", "lstm_forward", "lstm_backward"]

_kernels = _runtime._kernels
GATES = 4


def _outs(out, shape, dtype, inputs):
    """(hs_out, cs_out) from lstm_forward's out: None, or a pair of None / ndarray."""
    if out is None:
        return None, None
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError(f"out must be None or a pair (hs_out, cs_out), got {type(out).__name__}")
    hs_out, cs_out = out
    if hs_out is not None:
        v.check_out(hs_out, shape, dtype, inputs, name="out[0]")
    if cs_out is not None:
        v.check_out(cs_out, shape, dtype, inputs + (hs_out,), name="out[1]")
    return hs_out, cs_out


def _forward_checked(dtype, x, h0, c0, w_ih, w_hh, b_ih, b_hh, outs=(None, None), gates=None, lengths=None):
    """lstm_forward on validated arrays: x (T, N, I), h0, c0 (N, H) or None. gates: None, or a
    C-contiguous (T, N, 4H) array of dtype to receive the activated gates (the compiled path
    only; with lengths, packed: its first sum(lengths) 4H values). lengths: None or what
    _validation.sequence_lengths returned."""
    steps, batch, features = x.shape
    hidden = w_hh.shape[1]
    shape = (steps, batch, hidden)
    v.check_size("hs", shape, dtype.itemsize)
    v.check_size("the gates", (steps, batch, GATES * hidden), dtype.itemsize)
    hs = outs[0] if outs[0] is not None else np.empty(shape, dtype)
    cs = outs[1] if outs[1] is not None else np.empty(shape, dtype)
    if hs.size == 0:
        return hs, cs
    if _kernels is None:
        hs[...], cs[...] = reference.lstm_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths=lengths)
        return hs, cs
    if lengths is not None:  # the live rows only, packed (see fastnn._lengths), in one compiled call
        total = int(lengths.sum())
        _kernels.lstm_forward_lengths(
            v.contiguous(x, dtype), maybe(h0, dtype), maybe(c0, dtype), v.contiguous(w_ih, dtype),
            v.contiguous(w_hh, dtype), maybe(summed_bias(dtype, b_ih, b_hh), dtype), hs, cs,
            head(gates, total * GATES * hidden), _runtime.threads_for(forward_flops(total, 1, features, hidden, GATES)),
            lengths,
        )
        return hs, cs
    _kernels.lstm_forward(
        v.contiguous(x, dtype), maybe(h0, dtype), maybe(c0, dtype), v.contiguous(w_ih, dtype),
        v.contiguous(w_hh, dtype), maybe(summed_bias(dtype, b_ih, b_hh), dtype), hs, cs, gates,
        _runtime.threads_for(forward_flops(steps, batch, features, hidden, GATES)),
    )
    return hs, cs


def _backward_checked(dtype, grad_hs, grad_c_n, x, h0, c0, hs, cs, w_ih, w_hh, b_ih, b_hh, gates=None,
                      lengths=None):
    """lstm_backward on validated arrays of matching shapes; gates: what _forward_checked
    filled (with the same lengths), or None to recompute them."""
    steps, batch, features = x.shape
    hidden = w_hh.shape[1]
    v.check_size("grad_x", x.shape, dtype.itemsize)
    v.check_size("the gates", (steps, batch, GATES * hidden), dtype.itemsize)
    if _kernels is None:
        grads = reference.lstm_backward(grad_hs, x, h0, c0, hs, cs, w_ih, w_hh, b_ih, b_hh, grad_c_n=grad_c_n,
                                        lengths=lengths)
        return tuple(np.asarray(g, dtype) for g in grads)
    grad_x = np.empty(x.shape, dtype)
    grad_h0 = np.empty((batch, hidden), dtype)
    grad_c0 = np.empty((batch, hidden), dtype)
    grad_w_ih = np.empty(w_ih.shape, dtype)
    grad_w_hh = np.empty(w_hh.shape, dtype)
    grad_b = np.empty(GATES * hidden, dtype)
    grads = (grad_x, grad_h0, grad_c0, grad_w_ih, grad_w_hh, grad_b)
    if steps * batch * hidden == 0:  # nothing reaches any gradient, except c_n's to c0 at T = 0
        for g in grads:
            g[...] = 0
        if steps == 0 and grad_c_n is not None:
            grad_c0[...] = grad_c_n
        return grads
    recompute = 1 if gates is None else 0
    if lengths is not None:  # the live rows only, packed (see fastnn._lengths), in one compiled call
        total = int(lengths.sum())
        _kernels.lstm_backward_lengths(
            v.contiguous(grad_hs, dtype), maybe(grad_c_n, dtype), v.contiguous(x, dtype), maybe(h0, dtype),
            maybe(c0, dtype), v.contiguous(hs, dtype), v.contiguous(cs, dtype), head(gates, total * GATES * hidden),
            v.contiguous(w_ih, dtype), v.contiguous(w_hh, dtype),
            maybe(summed_bias(dtype, b_ih, b_hh), dtype) if recompute else None, *grads,
            _runtime.threads_for((2 + recompute) * forward_flops(total, 1, features, hidden, GATES)), lengths,
        )
        return grads
    _kernels.lstm_backward(
        v.contiguous(grad_hs, dtype), maybe(grad_c_n, dtype), v.contiguous(x, dtype), maybe(h0, dtype),
        maybe(c0, dtype), v.contiguous(hs, dtype), v.contiguous(cs, dtype), gates, v.contiguous(w_ih, dtype),
        v.contiguous(w_hh, dtype), maybe(summed_bias(dtype, b_ih, b_hh), dtype) if recompute else None, *grads,
        _runtime.threads_for((2 + recompute) * forward_flops(steps, batch, features, hidden, GATES)),
    )
    return grads


def lstm_forward(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, *, out=None, lengths=None):
    """Run an LSTM over a whole sequence, as a one-layer torch.nn.LSTM.

    Every step: gates = x_t w_ih^T + b_ih + h_{t-1} w_hh^T + b_hh, split into i, f, g, o;
    c_t = sigmoid(f) c_{t-1} + sigmoid(i) tanh(g), h_t = sigmoid(o) tanh(c_t).

    Parameters
    ----------
    x : array_like, (T, N, I), float32 or float64
    h0, c0 : array_like (N, H) or None (zeros)
    w_ih : array_like (4H, I); w_hh : array_like (4H, H); b_ih, b_hh : array_like (4H,) or None
        torch.nn.LSTM's layout for one layer and direction (gates i, f, g, o stacked).
    out : None, or a pair (hs_out, cs_out), either of them None or an ndarray (T, N, H) to be
        written in place and returned (each checked like rnn_forward's out).
    lengths : None, or N ints (a list, tuple or integer ndarray), 1 <= lengths[b] <= T, in any
        order: sequence b is x[:lengths[b], b]. None: every sequence has length T.

    Returns
    -------
    hs, cs : ndarray (T, N, H), every step's hidden and cell state; hs[-1], cs[-1] are the
        final ones. T = 0 is allowed. With lengths, hs[t, b] and cs[t, b] are zero for
        t >= lengths[b] (also in `out`); sequence b's final states are at step lengths[b] - 1.

    Raises
    ------
    TypeError
        Non-float or mixed dtypes; out not None or a pair; lengths not None or ints.
    ValueError
        Wrong ndim or shapes, a bad out[0] or out[1]; lengths not N values in 1..T.

    Notes
    -----
    Costs 2 T N 4H (I + H) floating-point operations: one GEMM over all steps for the input
    side, then T products of the state with w_hh (packed once), each fused with its cell
    update. Memory: the outputs, and scratch of 4 T N H values kept between calls.

    With lengths, padded steps are skipped, not computed: the batch is ordered by length (as
    PyTorch's packed sequences) and each step runs over the sequences still live, so the work
    is that of sum(lengths) steps of one sequence, plus copying x, hs and cs to and from that
    packed order (about (I + 2H) sum(lengths) values each way).
    """
    if _kernels is not None and out is None:
        states = _kernels.lstm_forward_fast(x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths)
        if states is not None:
            return states
    dtype, hidden, x, w_ih, w_hh, b_ih, b_hh, extra = gated_inputs(
        x, 3, GATES, w_ih, w_hh, b_ih, b_hh, optional=("h0", "c0"), h0=(h0, 2), c0=(c0, 2))
    h0, c0 = extra["h0"], extra["c0"]
    check_states(hidden, x.shape[1], h0=h0, c0=c0)
    outs = _outs(out, (x.shape[0], x.shape[1], hidden), dtype, (x, h0, c0, w_ih, w_hh, b_ih, b_hh))
    lengths = _lengths.sequence_lengths(lengths, x.shape[0], x.shape[1])
    return _forward_checked(dtype, x, h0, c0, w_ih, w_hh, b_ih, b_hh, outs, lengths=lengths)


def lstm_backward(grad_hs, x, h0, c0, hs, cs, w_ih, w_hh, b_ih=None, b_hh=None, *, grad_c_n=None, lengths=None):
    """Backpropagation through time for `lstm_forward`.

    Parameters
    ----------
    grad_hs : array_like (T, N, H)
        Loss gradient for every step's hidden state (add a gradient for the final state alone
        into grad_hs[-1]).
    x, h0, c0, w_ih, w_hh, b_ih, b_hh
        As given to `lstm_forward` (h0, c0 may be None: zeros). The biases are needed to
        recompute the gates.
    hs, cs : array_like (T, N, H)
        What `lstm_forward` returned.
    grad_c_n : array_like (N, H) or None (zeros)
        Loss gradient for the final cell state cs[-1] (with lengths: grad_c_n[b] for
        cs[lengths[b] - 1, b]).
    lengths : None, or N ints in 1..T, as given to `lstm_forward`. grad_hs[t, b] for
        t >= lengths[b] is ignored; a gradient for sequence b's final hidden state goes into
        grad_hs[lengths[b] - 1, b].

    Returns
    -------
    grad_x : (T, N, I); grad_h0, grad_c0 : (N, H) (also when h0, c0 are None);
    grad_w_ih : (4H, I); grad_w_hh : (4H, H); grad_b : (4H,), the gradient of b_ih and of b_hh
    alike. With lengths, grad_x is zero past each sequence's end and the rest sum over the
    real steps only.

    Raises
    ------
    TypeError, ValueError
        As `lstm_forward`; ValueError also when hs, cs or grad_hs is not (T, N, H) or
        grad_c_n not (N, H).

    Notes
    -----
    Costs 3 x the forward's 2 T N 4H (I + H) operations: the gates are recomputed from hs in
    two GEMMs over all steps (the forward's work, without its recurrence), then T products of
    the gates' gradient with w_hh, and one GEMM each for grad_x, grad_w_ih and grad_w_hh.
    With lengths, as `lstm_forward`: the work of sum(lengths) steps, the padded ones skipped.
    """
    dtype, hidden, x, w_ih, w_hh, b_ih, b_hh, extra = gated_inputs(
        x, 3, GATES, w_ih, w_hh, b_ih, b_hh, optional=("h0", "c0", "grad_c_n"), grad_hs=(grad_hs, 3),
        h0=(h0, 2), c0=(c0, 2), hs=(hs, 3), cs=(cs, 3), grad_c_n=(grad_c_n, 2))
    steps, batch, _ = x.shape
    check_states(hidden, batch, h0=extra["h0"], c0=extra["c0"], grad_c_n=extra["grad_c_n"])
    for name in ("hs", "cs", "grad_hs"):
        v.check_shape(name, extra[name], (steps, batch, hidden))
    lengths = _lengths.sequence_lengths(lengths, steps, batch)
    return _backward_checked(dtype, extra["grad_hs"], extra["grad_c_n"], x, extra["h0"], extra["c0"], extra["hs"],
                             extra["cs"], w_ih, w_hh, b_ih, b_hh, lengths=lengths)


def lstm_step(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    """One LSTM step, as torch.nn.LSTMCell.

    Parameters
    ----------
    x : array_like (N, I); h, c : array_like (N, H); w_ih (4H, I); w_hh (4H, H);
    b_ih, b_hh (4H,) or None

    Returns
    -------
    h_next, c_next : ndarray (N, H)

    Raises
    ------
    TypeError, ValueError
        As `lstm_forward`.

    Notes
    -----
    Costs 2 N 4H (I + H) operations (`lstm_forward` with T = 1).
    """
    if _kernels is not None and h is not None and c is not None and type(x) is np.ndarray and x.ndim == 2:
        states = _kernels.lstm_forward_fast(x[None], h, c, w_ih, w_hh, b_ih, b_hh)
        if states is not None:
            return states[0][0], states[1][0]
    dtype, hidden, x, w_ih, w_hh, b_ih, b_hh, extra = gated_inputs(x, 2, GATES, w_ih, w_hh, b_ih, b_hh,
                                                                   h=(h, 2), c=(c, 2))
    check_states(hidden, x.shape[0], h=extra["h"], c=extra["c"])
    hs, cs = _forward_checked(dtype, x[None], extra["h"], extra["c"], w_ih, w_hh, b_ih, b_hh)
    return hs[0], cs[0]


def lstm_step_backward(grad_h_next, x, h, c, h_next, c_next, w_ih, w_hh, b_ih=None, b_hh=None, *,
                       grad_c_next=None):
    """Gradients of `lstm_step`.

    Parameters
    ----------
    grad_h_next : array_like (N, H); x : (N, I); h, c : (N, H), the state the step started from;
    h_next, c_next : (N, H), what lstm_step returned; w_ih, w_hh, b_ih, b_hh : as given to it;
    grad_c_next : array_like (N, H) or None (zeros), the loss gradient for c_next.

    Returns
    -------
    grad_x (N, I), grad_h (N, H), grad_c (N, H), grad_w_ih (4H, I), grad_w_hh (4H, H),
    grad_b (4H,)

    Raises
    ------
    TypeError, ValueError
        As `lstm_backward`.

    Notes
    -----
    Costs 3 x 2 N 4H (I + H) operations (the gates are recomputed).
    """
    dtype, hidden, x, w_ih, w_hh, b_ih, b_hh, extra = gated_inputs(
        x, 2, GATES, w_ih, w_hh, b_ih, b_hh, optional=("grad_c_next",), grad_h_next=(grad_h_next, 2),
        h=(h, 2), c=(c, 2), h_next=(h_next, 2), c_next=(c_next, 2), grad_c_next=(grad_c_next, 2))
    check_states(hidden, x.shape[0], **{name: extra[name] for name in
                                        ("h", "c", "h_next", "c_next", "grad_h_next", "grad_c_next")})
    grad_x, grad_h, grad_c, grad_w_ih, grad_w_hh, grad_b = _backward_checked(
        dtype, extra["grad_h_next"][None], extra["grad_c_next"], x[None], extra["h"], extra["c"],
        extra["h_next"][None], extra["c_next"][None], w_ih, w_hh, b_ih, b_hh)
    return grad_x[0], grad_h, grad_c, grad_w_ih, grad_w_hh, grad_b
