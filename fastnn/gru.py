"""fastnn's GRU kernels: validate, normalise, then run the compiled driver.

torch.nn.GRUCell / torch.nn.GRU's layout: gates r, z, n stacked in w_ih (3H, I), w_hh (3H, H)
and the biases (3H,); the n gate's hidden part, b_hn included, sits inside the reset product.
The compiled drivers (fastnn._kernels) trust their arguments; everything they rely on is
checked here. When the extension is missing, fastnn.reference does the work instead.
"""
import numpy as np

from fastnn import _runtime
from fastnn import _validation as v
from fastnn import reference
from fastnn._gates import check_states, forward_flops, gated_inputs, maybe
from fastnn import _lengths
from fastnn._lengths import head

__all__ = ["gru_step", "gru_step_backward", "gru_forward", "gru_backward"]

_kernels = _runtime._kernels
GATES = 3


def _driver_biases(dtype, hidden, b_ih, b_hh):
    """(input-side bias, b_hn) as the drivers take them: b_ih + b_hh in the r and z parts and
    b_in in the n part, added once for every step; b_hn alone, inside the reset product."""
    if b_ih is None and b_hh is None:
        return None, None
    total = np.zeros(GATES * hidden, dtype)
    if b_ih is not None:
        total += b_ih
    if b_hh is not None:
        total[:2 * hidden] += b_hh[:2 * hidden]
    return total, None if b_hh is None else v.contiguous(b_hh[2 * hidden:], dtype)


def _forward_checked(dtype, x, h0, w_ih, w_hh, b_ih, b_hh, out=None, saved=None, lengths=None):
    """gru_forward on validated arrays: x (T, N, I), h0 (N, H) or None. saved: None, or C-contiguous
    (gates (T, N, 3H), ghn (T, N, H)) of dtype to receive what the backward needs (the compiled
    path only; with lengths, packed: the first sum(lengths) rows' values of each). lengths:
    None or what _validation.sequence_lengths returned."""
    steps, batch, features = x.shape
    hidden = w_hh.shape[1]
    shape = (steps, batch, hidden)
    v.check_size("hs", shape, dtype.itemsize)
    v.check_size("the gates", (steps, batch, GATES * hidden), dtype.itemsize)
    hs = out if out is not None else np.empty(shape, dtype)
    if hs.size == 0:
        return hs
    if _kernels is None:
        hs[...] = reference.gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh, lengths=lengths)
        return hs
    bias, b_hn = _driver_biases(dtype, hidden, b_ih, b_hh)
    gates, ghn = (None, None) if saved is None else saved
    if lengths is not None:  # the live rows only, packed (see fastnn._lengths), in one compiled call
        total = int(lengths.sum())
        _kernels.gru_forward_lengths(
            v.contiguous(x, dtype), maybe(h0, dtype), v.contiguous(w_ih, dtype), v.contiguous(w_hh, dtype), bias,
            b_hn, hs, head(gates, total * GATES * hidden), head(ghn, total * hidden),
            _runtime.threads_for(forward_flops(total, 1, features, hidden, GATES)), lengths,
        )
        return hs
    _kernels.gru_forward(
        v.contiguous(x, dtype), maybe(h0, dtype), v.contiguous(w_ih, dtype), v.contiguous(w_hh, dtype),
        bias, b_hn, hs, gates, ghn, _runtime.threads_for(forward_flops(steps, batch, features, hidden, GATES)),
    )
    return hs


def _backward_checked(dtype, grad_hs, x, h0, hs, w_ih, w_hh, b_ih, b_hh, saved=None, lengths=None):
    """gru_backward on validated arrays of matching shapes; saved: what _forward_checked filled
    (with the same lengths), or None to recompute it."""
    steps, batch, features = x.shape
    hidden = w_hh.shape[1]
    v.check_size("grad_x", x.shape, dtype.itemsize)
    v.check_size("the gates", (steps, batch, GATES * hidden), dtype.itemsize)
    if _kernels is None:
        grads = reference.gru_backward(grad_hs, x, h0, hs, w_ih, w_hh, b_ih, b_hh, lengths=lengths)
        return tuple(np.asarray(g, dtype) for g in grads)
    grads = (np.empty(x.shape, dtype), np.empty((batch, hidden), dtype), np.empty(w_ih.shape, dtype),
             np.empty(w_hh.shape, dtype), np.empty(GATES * hidden, dtype), np.empty(GATES * hidden, dtype))
    if steps * batch * hidden == 0:  # nothing reaches any gradient
        for g in grads:
            g[...] = 0
        return grads
    recompute = 1 if saved is None else 0
    bias, b_hn = _driver_biases(dtype, hidden, b_ih, b_hh) if recompute else (None, None)
    gates, ghn = (None, None) if saved is None else saved
    if lengths is not None:  # the live rows only, packed (see fastnn._lengths), in one compiled call
        total = int(lengths.sum())
        _kernels.gru_backward_lengths(
            v.contiguous(grad_hs, dtype), v.contiguous(x, dtype), maybe(h0, dtype), v.contiguous(hs, dtype),
            head(gates, total * GATES * hidden), head(ghn, total * hidden), v.contiguous(w_ih, dtype),
            v.contiguous(w_hh, dtype), bias, b_hn, *grads,
            _runtime.threads_for((2 + recompute) * forward_flops(total, 1, features, hidden, GATES)), lengths,
        )
        return grads
    _kernels.gru_backward(
        v.contiguous(grad_hs, dtype), v.contiguous(x, dtype), maybe(h0, dtype), v.contiguous(hs, dtype), gates,
        ghn, v.contiguous(w_ih, dtype), v.contiguous(w_hh, dtype), bias, b_hn, *grads,
        _runtime.threads_for((2 + recompute) * forward_flops(steps, batch, features, hidden, GATES)),
    )
    return grads


def gru_forward(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, *, out=None, lengths=None):
    """Run a GRU over a whole sequence, as a one-layer torch.nn.GRU.

    Every step: r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr), z likewise,
    n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn)), h_t = (1 - z) * n + z * h_{t-1}.

    Parameters
    ----------
    x : array_like, (T, N, I), float32 or float64
    h0 : array_like (N, H) or None (zeros)
    w_ih : array_like (3H, I); w_hh : array_like (3H, H); b_ih, b_hh : array_like (3H,) or None
        torch.nn.GRU's layout for one layer and direction (gates r, z, n stacked).
    out : ndarray (T, N, H), optional, written in place and returned
    lengths : None, or N ints (a list, tuple or integer ndarray), 1 <= lengths[b] <= T, in any
        order: sequence b is x[:lengths[b], b]. None: every sequence has length T.

    Returns
    -------
    hs : ndarray (T, N, H), every step's hidden state; hs[-1] is the last. T = 0 is allowed.
        With lengths, hs[t, b] is zero for t >= lengths[b] (also in `out`), and sequence b's
        final state is hs[lengths[b] - 1, b].

    Raises
    ------
    TypeError
        Non-float or mixed dtypes; lengths not None or ints.
    ValueError
        Wrong ndim or shapes, a bad `out`; lengths not N values in 1..T.

    Notes
    -----
    Costs 2 T N 3H (I + H) floating-point operations: one GEMM over all steps for the input
    side, then T products of the state with w_hh (packed once), each fused with its cell
    update. Memory: the output, and scratch of 3 T N H values kept between calls.

    With lengths, padded steps are skipped, not computed: the batch is ordered by length (as
    PyTorch's packed sequences) and each step runs over the sequences still live, so the work
    is that of sum(lengths) steps of one sequence, plus copying x and hs to and from that packed
    order (about (I + H) sum(lengths) values each way).
    """
    if _kernels is not None and out is None:
        hs = _kernels.gru_forward_fast(x, h0, w_ih, w_hh, b_ih, b_hh, lengths)
        if hs is not None:
            return hs
    dtype, hidden, x, w_ih, w_hh, b_ih, b_hh, extra = gated_inputs(
        x, 3, GATES, w_ih, w_hh, b_ih, b_hh, optional=("h0",), h0=(h0, 2))
    h0 = extra["h0"]
    check_states(hidden, x.shape[1], h0=h0)
    shape = (x.shape[0], x.shape[1], hidden)
    if out is not None:
        v.check_out(out, shape, dtype, (x, h0, w_ih, w_hh, b_ih, b_hh))
    lengths = _lengths.sequence_lengths(lengths, x.shape[0], x.shape[1])
    return _forward_checked(dtype, x, h0, w_ih, w_hh, b_ih, b_hh, out, lengths=lengths)


def gru_backward(grad_hs, x, h0, hs, w_ih, w_hh, b_ih=None, b_hh=None, *, lengths=None):
    """Backpropagation through time for `gru_forward`.

    Parameters
    ----------
    grad_hs : array_like (T, N, H)
        Loss gradient for every step's hidden state (add a gradient for the final state alone
        into grad_hs[-1]).
    x, h0, w_ih, w_hh, b_ih, b_hh
        As given to `gru_forward` (h0 may be None: zeros). The biases are needed to recompute
        the gates.
    hs : array_like (T, N, H)
        What `gru_forward` returned.
    lengths : None, or N ints in 1..T, as given to `gru_forward`. grad_hs[t, b] for
        t >= lengths[b] is ignored; a gradient for sequence b's final state goes into
        grad_hs[lengths[b] - 1, b].

    Returns
    -------
    grad_x : (T, N, I); grad_h0 : (N, H) (also when h0 is None); grad_w_ih : (3H, I);
    grad_w_hh : (3H, H); grad_b_ih, grad_b_hh : (3H,). They differ in the n part: b_hn sits
    inside the reset product. With lengths, grad_x is zero past each sequence's end and the
    rest sum over the real steps only.

    Raises
    ------
    TypeError, ValueError
        As `gru_forward`; ValueError also when hs or grad_hs is not (T, N, H).

    Notes
    -----
    Costs 3 x the forward's 2 T N 3H (I + H) operations: the gates are recomputed from hs in
    two GEMMs over all steps (the forward's work, without its recurrence), then T products of
    the gates' gradient with w_hh, and one GEMM each for grad_x, grad_w_ih and grad_w_hh.
    With lengths, as `gru_forward`: the work of sum(lengths) steps, the padded ones skipped.
    """
    dtype, hidden, x, w_ih, w_hh, b_ih, b_hh, extra = gated_inputs(
        x, 3, GATES, w_ih, w_hh, b_ih, b_hh, optional=("h0",), grad_hs=(grad_hs, 3), h0=(h0, 2), hs=(hs, 3))
    steps, batch, _ = x.shape
    check_states(hidden, batch, h0=extra["h0"])
    for name in ("hs", "grad_hs"):
        v.check_shape(name, extra[name], (steps, batch, hidden))
    lengths = _lengths.sequence_lengths(lengths, steps, batch)
    return _backward_checked(dtype, extra["grad_hs"], x, extra["h0"], extra["hs"], w_ih, w_hh, b_ih, b_hh,
                             lengths=lengths)


def gru_step(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """One GRU step, as torch.nn.GRUCell.

    Parameters
    ----------
    x : array_like (N, I); h : array_like (N, H); w_ih (3H, I); w_hh (3H, H); b_ih, b_hh (3H,) or None

    Returns
    -------
    h_next : ndarray (N, H)

    Raises
    ------
    TypeError, ValueError
        As `gru_forward`.

    Notes
    -----
    Costs 2 N 3H (I + H) operations (`gru_forward` with T = 1).
    """
    if _kernels is not None and h is not None and type(x) is np.ndarray and x.ndim == 2:
        hs = _kernels.gru_forward_fast(x[None], h, w_ih, w_hh, b_ih, b_hh)
        if hs is not None:
            return hs[0]
    dtype, hidden, x, w_ih, w_hh, b_ih, b_hh, extra = gated_inputs(x, 2, GATES, w_ih, w_hh, b_ih, b_hh, h=(h, 2))
    check_states(hidden, x.shape[0], h=extra["h"])
    return _forward_checked(dtype, x[None], extra["h"], w_ih, w_hh, b_ih, b_hh)[0]


def gru_step_backward(grad_h_next, x, h, h_next, w_ih, w_hh, b_ih=None, b_hh=None):
    """Gradients of `gru_step`.

    Parameters
    ----------
    grad_h_next : array_like (N, H); x : (N, I); h : (N, H), the state the step started from;
    h_next : (N, H), what gru_step returned; w_ih, w_hh, b_ih, b_hh : as given to it.

    Returns
    -------
    grad_x (N, I), grad_h (N, H), grad_w_ih (3H, I), grad_w_hh (3H, H), grad_b_ih (3H,),
    grad_b_hh (3H,)

    Raises
    ------
    TypeError, ValueError
        As `gru_backward`.

    Notes
    -----
    Costs 3 x 2 N 3H (I + H) operations (the gates are recomputed).
    """
    dtype, hidden, x, w_ih, w_hh, b_ih, b_hh, extra = gated_inputs(
        x, 2, GATES, w_ih, w_hh, b_ih, b_hh, grad_h_next=(grad_h_next, 2), h=(h, 2), h_next=(h_next, 2))
    check_states(hidden, x.shape[0], **{name: extra[name] for name in ("h", "h_next", "grad_h_next")})
    grad_x, grad_h, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh = _backward_checked(
        dtype, extra["grad_h_next"][None], x[None], extra["h"], extra["h_next"][None], w_ih, w_hh, b_ih, b_hh)
    return grad_x[0], grad_h, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh
