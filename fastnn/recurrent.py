"""fastnn's Elman RNN kernels: validate, normalise, then run the compiled driver.

The compiled drivers (fastnn._kernels) trust their arguments; everything they rely on is
checked here. When the extension is missing, fastnn.reference does the work instead.
"""
import numpy as np

from fastnn import _runtime
from fastnn import _validation as v
from fastnn import reference
from fastnn import _lengths

__all__ = ["rnn_step", "rnn_step_backward", "rnn_forward", "rnn_backward"]

_kernels = _runtime._kernels

def _rnn_weights(x_features, w_ih, w_hh, b_ih, b_hh):
    """Check the torch.nn.RNNCell-layout weights; return hidden size H."""
    hidden = w_ih.shape[0]
    if w_ih.shape[1] != x_features:
        raise ValueError(f"w_ih must have shape (H, {x_features}) to match x's features, got {w_ih.shape}")
    if w_hh.shape != (hidden, hidden):
        raise ValueError(f"w_hh must have shape ({hidden}, {hidden}) to match w_ih, got {w_hh.shape}")
    for name, b in (("b_ih", b_ih), ("b_hh", b_hh)):
        if b is not None and b.shape != (hidden,):
            raise ValueError(f"{name} must have shape ({hidden},), got {b.shape}")
    return hidden


def _rnn_inputs(x, x_ndim, w_ih, w_hh, b_ih=None, b_hh=None, **others):
    """Arrays for an RNN kernel, with one common dtype; x has x_ndim dims, others named
    (array, ndim). Of the others only h0 may be None (zeros)."""
    x = v.as_float_array("x", x, x_ndim)
    w_ih = v.as_float_array("w_ih", w_ih, 2)
    w_hh = v.as_float_array("w_hh", w_hh, 2)
    b_ih = None if b_ih is None else v.as_float_array("b_ih", b_ih, 1)
    b_hh = None if b_hh is None else v.as_float_array("b_hh", b_hh, 1)
    arrays = {name: None if a is None and name == "h0" else v.as_float_array(name, a, nd)
              for name, (a, nd) in others.items()}
    dtype = v.common_dtype(x=x, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh, **arrays)
    hidden = _rnn_weights(x.shape[-1], w_ih, w_hh, b_ih, b_hh)
    return dtype, hidden, x, w_ih, w_hh, b_ih, b_hh, arrays


def _forward_checked(relu, nonlinearity, dtype, x, h0, w_ih, w_hh, b_ih, b_hh, out, lengths=None):
    """rnn_forward on validated arrays: x (T, N, I), h0 (N, H) or None; lengths None or what
    _validation.sequence_lengths returned."""
    steps, batch, features = x.shape
    hidden = w_ih.shape[0]
    shape = (steps, batch, hidden)
    v.check_size("hs", shape, dtype.itemsize)
    hs = v.check_out(out, shape, dtype, (x, h0, w_ih, w_hh, b_ih, b_hh)) if out is not None else np.empty(shape, dtype)
    if hs.size == 0:
        return hs
    if _kernels is None:
        hs[...] = reference.rnn_forward(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity, lengths=lengths)
        return hs
    bias = b_ih if b_hh is None else (b_hh if b_ih is None else b_ih.astype(dtype) + b_hh.astype(dtype))
    if lengths is not None:  # the live rows only (see fastnn._lengths), in one compiled call
        _kernels.rnn_forward_lengths(
            v.contiguous(x, dtype), None if h0 is None else v.contiguous(h0, dtype), v.contiguous(w_ih, dtype),
            v.contiguous(w_hh, dtype), None if bias is None else v.contiguous(bias, dtype), hs, relu,
            _runtime.threads_for(2 * int(lengths.sum()) * hidden * (features + hidden)), lengths,
        )
        return hs
    flops = 2 * steps * batch * hidden * (features + hidden)
    _kernels.rnn_forward(
        v.contiguous(x, dtype), None if h0 is None else v.contiguous(h0, dtype),
        v.contiguous(w_ih, dtype), v.contiguous(w_hh, dtype),
        None if bias is None else v.contiguous(bias, dtype), hs, relu, _runtime.threads_for(flops),
    )
    return hs


def _backward_checked(relu, nonlinearity, dtype, grad_hs, x, h0, hs, w_ih, w_hh, lengths=None):
    """rnn_backward on validated arrays of matching shapes; lengths as for _forward_checked."""
    steps, batch, features = x.shape
    hidden = w_ih.shape[0]
    if _kernels is None:
        grads = reference.rnn_backward(grad_hs, x, h0, hs, w_ih, w_hh, nonlinearity, lengths=lengths)
        return tuple(np.asarray(g, dtype) for g in grads)
    if lengths is not None and batch * hidden > 0:
        return _backward_packed(relu, dtype, grad_hs, x, h0, hs, w_ih, w_hh, lengths)
    dz = np.empty((steps, batch, hidden), dtype)
    grad_x = np.empty(x.shape, dtype)
    grad_h0 = np.empty((batch, hidden), dtype)
    grad_w_ih = np.empty(w_ih.shape, dtype)
    grad_w_hh = np.empty(w_hh.shape, dtype)
    flops = 6 * steps * batch * hidden * (features + hidden)
    _kernels.rnn_backward(
        v.contiguous(grad_hs, dtype), v.contiguous(x, dtype),
        None if h0 is None else v.contiguous(h0, dtype), v.contiguous(hs, dtype),
        v.contiguous(w_ih, dtype), v.contiguous(w_hh, dtype), relu,
        dz, grad_x, grad_h0, grad_w_ih, grad_w_hh, _runtime.threads_for(flops),
    )
    grad_b = dz.sum(axis=(0, 1), dtype=dtype)
    return grad_x, grad_h0, grad_w_ih, grad_w_hh, grad_b


def _backward_packed(relu, dtype, grad_hs, x, h0, hs, w_ih, w_hh, lengths):
    """_backward_checked with variable lengths: the live rows only, packed (see
    fastnn._lengths), in one compiled call; dz comes back in the packed order."""
    batch, features = x.shape[1], x.shape[2]
    hidden = w_ih.shape[0]
    total = int(lengths.sum())
    dz = np.empty((total, hidden), dtype)
    grad_x = np.empty(x.shape, dtype)
    grad_h0 = np.empty((batch, hidden), dtype)
    grad_w_ih = np.empty(w_ih.shape, dtype)
    grad_w_hh = np.empty(w_hh.shape, dtype)
    _kernels.rnn_backward_lengths(
        v.contiguous(grad_hs, dtype), v.contiguous(x, dtype), None if h0 is None else v.contiguous(h0, dtype),
        v.contiguous(hs, dtype), v.contiguous(w_ih, dtype), v.contiguous(w_hh, dtype), relu, dz, grad_x, grad_h0,
        grad_w_ih, grad_w_hh, _runtime.threads_for(6 * total * hidden * (features + hidden)), lengths,
    )
    return grad_x, grad_h0, grad_w_ih, grad_w_hh, dz.sum(axis=0, dtype=dtype)


def rnn_forward(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh", *, out=None, lengths=None):
    """Run an Elman RNN over a whole sequence: h_t = act(x_t w_ih^T + b_ih + h_{t-1} w_hh^T + b_hh).

    Parameters
    ----------
    x : array_like, (T, N, I), float32 or float64
    h0 : array_like (N, H) or None (zeros)
    w_ih : array_like (H, I); w_hh : array_like (H, H); b_ih, b_hh : array_like (H,) or None
        torch.nn.RNN's layout for one layer and direction.
    nonlinearity : 'tanh' or 'relu'
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
        Wrong ndim or shapes, an unknown nonlinearity, a bad `out`; lengths not N values in 1..T.

    Notes
    -----
    With lengths, padded steps are skipped, not computed: the batch is ordered by length (as
    PyTorch's packed sequences) and each step runs over the sequences still live, so the work
    is that of sum(lengths) steps of one sequence, plus copying x and hs to and from that packed
    order (about (I + H) sum(lengths) values each way).
    """
    if _kernels is not None:
        hs = _kernels.rnn_forward_fast(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity, out, lengths)
        if hs is not None:
            return hs
    relu = v.nonlinearity_is_relu(nonlinearity)
    dtype, hidden, x, w_ih, w_hh, b_ih, b_hh, extra = _rnn_inputs(x, 3, w_ih, w_hh, b_ih, b_hh, h0=(h0, 2))
    h0 = extra["h0"]
    v.check_shape("h0", h0, (x.shape[1], hidden))
    lengths = _lengths.sequence_lengths(lengths, x.shape[0], x.shape[1])
    return _forward_checked(relu, nonlinearity, dtype, x, h0, w_ih, w_hh, b_ih, b_hh, out, lengths)


def rnn_backward(grad_hs, x, h0, hs, w_ih, w_hh, nonlinearity="tanh", *, lengths=None):
    """Backpropagation through time for `rnn_forward`.

    Parameters
    ----------
    grad_hs : array_like (T, N, H)
        Loss gradient for every step's hidden state (add a gradient for the final state alone
        into grad_hs[-1]).
    x, h0, w_ih, w_hh, nonlinearity
        As given to `rnn_forward` (h0 may be None: zeros).
    hs : array_like (T, N, H)
        What `rnn_forward` returned.
    lengths : None, or N ints in 1..T, as given to `rnn_forward`. grad_hs[t, b] for
        t >= lengths[b] is ignored; a gradient for sequence b's final state goes into
        grad_hs[lengths[b] - 1, b].

    Returns
    -------
    grad_x : (T, N, I); grad_h0 : (N, H) (also when h0 is None); grad_w_ih : (H, I);
    grad_w_hh : (H, H); grad_b : (H,), the gradient of b_ih and of b_hh alike. With lengths,
    grad_x is zero past each sequence's end and the rest sum over the real steps only.

    Raises
    ------
    TypeError, ValueError
        As `rnn_forward`; ValueError also when hs or grad_hs is not (T, N, H).

    Notes
    -----
    With lengths, as `rnn_forward`: the work of sum(lengths) steps, the padded ones skipped.
    """
    relu = v.nonlinearity_is_relu(nonlinearity)
    dtype, hidden, x, w_ih, w_hh, _, _, extra = _rnn_inputs(
        x, 3, w_ih, w_hh, grad_hs=(grad_hs, 3), h0=(h0, 2), hs=(hs, 3))
    steps, batch, _ = x.shape
    v.check_shape("h0", extra["h0"], (batch, hidden))
    v.check_shape("hs", extra["hs"], (steps, batch, hidden))
    v.check_shape("grad_hs", extra["grad_hs"], (steps, batch, hidden))
    lengths = _lengths.sequence_lengths(lengths, steps, batch)
    return _backward_checked(relu, nonlinearity, dtype, extra["grad_hs"], x, extra["h0"], extra["hs"], w_ih, w_hh,
                             lengths)


def rnn_step(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    """One Elman RNN step, as torch.nn.RNNCell: act(x w_ih^T + b_ih + h w_hh^T + b_hh).

    Parameters
    ----------
    x : array_like (N, I); h : array_like (N, H); w_ih (H, I); w_hh (H, H); b_ih, b_hh (H,) or None
    nonlinearity : 'tanh' or 'relu'

    Returns
    -------
    h_next : ndarray (N, H)

    Raises
    ------
    TypeError, ValueError
        As `rnn_forward`.
    """
    if _kernels is not None and h is not None and type(x) is np.ndarray and x.ndim == 2:
        hs = _kernels.rnn_forward_fast(x[None], h, w_ih, w_hh, b_ih, b_hh, nonlinearity, None)
        if hs is not None:
            return hs[0]
    relu = v.nonlinearity_is_relu(nonlinearity)
    dtype, hidden, x, w_ih, w_hh, b_ih, b_hh, extra = _rnn_inputs(x, 2, w_ih, w_hh, b_ih, b_hh, h=(h, 2))
    h = extra["h"]
    v.check_shape("h", h, (x.shape[0], hidden))
    return _forward_checked(relu, nonlinearity, dtype, x[None], h, w_ih, w_hh, b_ih, b_hh, None)[0]


def rnn_step_backward(grad_h_next, x, h, h_next, w_ih, w_hh, nonlinearity="tanh"):
    """Gradients of `rnn_step`.

    Parameters
    ----------
    grad_h_next : array_like (N, H); x : (N, I); h : (N, H); h_next : (N, H), what rnn_step returned
    w_ih, w_hh, nonlinearity : as given to rnn_step

    Returns
    -------
    grad_x (N, I), grad_h (N, H), grad_w_ih (H, I), grad_w_hh (H, H), grad_b (H,)

    Raises
    ------
    TypeError, ValueError
        As `rnn_forward`.
    """
    relu = v.nonlinearity_is_relu(nonlinearity)
    dtype, hidden, x, w_ih, w_hh, _, _, extra = _rnn_inputs(
        x, 2, w_ih, w_hh, grad_h_next=(grad_h_next, 2), h=(h, 2), h_next=(h_next, 2))
    shape = (x.shape[0], hidden)
    for name in ("h", "h_next", "grad_h_next"):
        v.check_shape(name, extra[name], shape)
    grad_x, grad_h, grad_w_ih, grad_w_hh, grad_b = _backward_checked(
        relu, nonlinearity, dtype, extra["grad_h_next"][None], x[None], extra["h"], extra["h_next"][None], w_ih, w_hh)
    return grad_x[0], grad_h, grad_w_ih, grad_w_hh, grad_b
