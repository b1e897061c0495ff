"""What the recurrent layers share: the stacked, optionally bidirectional sequence layers
(:class:`~fastnn.RNN`, :class:`~fastnn.LSTM`, :class:`~fastnn.GRU`) and the one-step cells
(:class:`~fastnn.RNNCell`, :class:`~fastnn.LSTMCell`, :class:`~fastnn.GRUCell`).

A family says how one layer and direction runs over a sequence (``_run_direction``) and back
(``_back_direction``), or one step (``_step`` / ``_step_back``); everything else, the
arguments, the layout (batch_first, unbatched input), the stacking of layers, the two
directions, the states (h, or h and c), dropout between layers and variable-length batches
(``lengths=``), is here once.

Variable lengths reach a family's ``_run_direction`` / ``_back_direction`` as a ``lengths``
argument (sequence b occupies steps 0 .. lengths[b]-1 in processing order), which they hand to
the kernels' own ``lengths=`` (packed like PyTorch's packed sequences: padded steps are skipped,
not computed); reversing each sequence within its length for the reverse direction is here.
"""
import math
import numbers
import warnings

import numpy as np

from fastnn import _validation as v
from fastnn.layers._base import _Layer


def check_dropout(dropout, num_layers):
    """``dropout`` as a float, checked as torch.nn.RNNBase checks it (ValueError unless a real
    number in [0, 1], a bool included; its UserWarning when dropout > 0 with one layer)."""
    if (not isinstance(dropout, numbers.Real) or isinstance(dropout, (bool, np.bool_))
            or not 0 <= dropout <= 1):
        raise ValueError("dropout should be a number in range [0, 1] representing the "
                         f"probability of an element being zeroed, got {dropout!r}")
    dropout = float(dropout)
    if dropout > 0 and num_layers == 1:
        # torch.nn.RNNBase's words; stacklevel: the caller of the layer's constructor
        warnings.warn("dropout option adds dropout after all but last recurrent layer, so "
                      "non-zero dropout expects num_layers greater than 1, but got "
                      f"dropout={dropout} and num_layers={num_layers}", UserWarning, stacklevel=3)
    return dropout


def check_lengths(lengths, unbatched, steps, batch):
    """``lengths`` as an intp array (N,) of values in 1..T (the kernels' check,
    :func:`fastnn._validation.sequence_lengths`), or None (none given, or no sequences)."""
    if lengths is None:
        return None
    if unbatched:
        raise ValueError("lengths needs a batched input (x is unbatched: one sequence has its "
                         "own length)")
    values = v.sequence_lengths(lengths, steps, batch)
    return values if batch else None  # no sequences: nothing to pad


def reverse_within(a, lengths):
    """a (T, N, F) with each sequence's steps 0 .. lengths[b]-1 in reverse order (the steps past
    its end stay where they are); lengths None: the whole sequence reversed. Its own inverse."""
    if lengths is None:
        return a[::-1].copy()
    steps = np.arange(a.shape[0])[:, None]
    order = np.where(steps < lengths, lengths - 1 - steps, steps)  # (T, N)
    return np.take_along_axis(a, order[:, :, None], axis=0)


def at_last_steps(lengths, *seqs):
    """Each (T, N, H) sequence's state after each batch entry's last step: t = T-1, or
    lengths[b]-1 (the kernels leave zeros past a sequence's end, so hs[-1] would be wrong)."""
    if lengths is None:
        return tuple(s[-1] for s in seqs)
    last = (lengths - 1, np.arange(lengths.size))
    return tuple(s[last] for s in seqs)


def gate_param_shapes(prefix_keys, gates, hidden, inputs, has_bias):
    """{key: shape} for one layer and direction: weight_ih (G*H, inputs), weight_hh (G*H, H),
    bias_ih, bias_hh (G*H,), each key being its name followed by the suffix in prefix_keys."""
    shapes = {f"weight_ih{prefix_keys}": (gates * hidden, inputs), f"weight_hh{prefix_keys}": (gates * hidden, hidden)}
    if has_bias:
        shapes[f"bias_ih{prefix_keys}"] = (gates * hidden,)
        shapes[f"bias_hh{prefix_keys}"] = (gates * hidden,)
    return shapes


class _StackedRecurrent(_Layer):
    """Multi-layer, optionally bidirectional recurrent layer over a sequence.

    Subclasses set ``GATES`` (stacked gates per weight, 1 for the Elman RNN), ``STATES`` (the
    names of the initial states: ("h0",) or ("h0", "c0")) and ``FINAL_GRADS`` (the names of
    the final states' gradients in ``backward``), and define

    ``_run_direction(layer, suffix, inp, states, lengths) -> (hs, finals, saved)``
        inp (T, N, F) C-contiguous in processing order; states: a tuple with, per state, its
        (N, H) array or None (omitted: zeros); lengths None, or an int64 array (N,) of values
        in 1..T: sequence b occupies steps 0 .. lengths[b]-1. hs (T, N, H) in processing order
        (zero past each sequence's end), finals the final states (each sequence's state at its
        last step), saved what ``_back_direction`` needs.
    ``_back_direction(layer, suffix, saved, grad_hs, grad_finals, lengths) -> (grad_inp,
    grad_states, (grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh))``
        grad_hs (T, N, H) in processing order, the final hidden state's gradient already added
        at each sequence's last step (steps past its end are to be ignored); grad_finals: the
        gradients of the other final states (the cell state's), each (N, H) or None, applying
        at each sequence's last step. grad_inp is zero past each sequence's end.

    Between layers, in training mode with ``dropout`` > 0, each layer's output but the last is
    multiplied by a fresh mask (inverted dropout) drawn from ``rng``; the backward multiplies
    the gradient going down by the same mask.
    """

    GATES = 1
    STATES = ("h0",)
    FINAL_GRADS = ("grad_h_n",)

    def _init_layers(self, input_size, hidden_size, num_layers, bias, batch_first, bidirectional, dtype):
        self.input_size = v.layer_int("input_size", input_size, 1)
        self.hidden_size = v.layer_int("hidden_size", hidden_size, 1)
        self.num_layers = v.layer_int("num_layers", num_layers, 1)
        has_bias = v.layer_bool("bias", bias)
        self.batch_first = v.layer_bool("batch_first", batch_first)
        self.bidirectional = v.layer_bool("bidirectional", bidirectional)
        self.dtype = v.layer_dtype(dtype)
        self._has_bias = has_bias
        self.dropout = 0.0  # set by the family's constructor (check_dropout)
        self._cache = None  # what the most recent forward leaves for backward
        self._workspace = {}  # scratch kept between forwards (see _buffer)

    def _init_params_from(self, rng):
        H, D = self.hidden_size, self.num_directions
        shapes = {}
        for layer in range(self.num_layers):
            in_features = self.input_size if layer == 0 else D * H
            for suffix in self._suffixes():
                shapes.update(gate_param_shapes(f"_l{layer}{suffix}", self.GATES, H, in_features, self._has_bias))
        self._init_params(shapes, 1.0 / math.sqrt(H), v.layer_rng(rng))

    @property
    def num_directions(self):
        """D: 2 if bidirectional, else 1."""
        return 2 if self.bidirectional else 1

    @property
    def dropout_masks(self):
        """The dropout masks the most recent forward applied, one per layer but the last.

        Each has that layer's output's shape in the caller's layout ((T, N, D*H), or (N, T, D*H)
        if batch_first, or (T, D*H) unbatched), and values 0 (dropped) or 1/(1-dropout) (kept,
        scaled); the backward applies the same masks. An empty list if that forward ran in
        evaluation mode, or with dropout 0 or one layer, or before any forward. Views of what
        the backward uses: do not write to them.
        """
        if self._cache is None:
            return []
        masks, unbatched = self._cache[1], self._cache[3]
        if unbatched:
            return [m[:, 0, :] for m in masks]
        if self.batch_first:
            return [m.transpose(1, 0, 2) for m in masks]
        return list(masks)

    def _suffixes(self):
        return ("", "_reverse") if self.bidirectional else ("",)

    def _layer_params(self, layer, suffix):
        p = self.params
        key = f"l{layer}{suffix}"
        return (p[f"weight_ih_{key}"], p[f"weight_hh_{key}"], p.get(f"bias_ih_{key}"),
                p.get(f"bias_hh_{key}"))

    def _buffer(self, key, shape):
        """A scratch array kept for the next forward of the same shape (no fresh pages each call)."""
        buf = self._workspace.get(key)
        if buf is None or buf.shape != shape:
            buf = self._workspace[key] = np.empty(shape, self.dtype)
        return buf

    def _store_grads(self, layer, suffix, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh):
        key = f"l{layer}{suffix}"
        np.copyto(self.grads[f"weight_ih_{key}"], grad_w_ih)
        np.copyto(self.grads[f"weight_hh_{key}"], grad_w_hh)
        if f"bias_ih_{key}" in self.grads:
            np.copyto(self.grads[f"bias_ih_{key}"], grad_b_ih)
            np.copyto(self.grads[f"bias_hh_{key}"], grad_b_hh)

    def _input(self, x):
        """x as (T, N, F) in the layer's dtype, and whether it was unbatched."""
        x = v.layer_input("x", x, self.dtype, (2, 3))
        unbatched = x.ndim == 2
        if unbatched:
            x = x[:, None, :]
        elif self.batch_first:
            x = x.transpose(1, 0, 2)
        T, N, features = x.shape
        if features != self.input_size:
            raise ValueError(f"x has {features} features, expected input_size={self.input_size}"
                             f" (x shape {x.shape})")
        if T == 0:
            raise ValueError("x must have at least one time step")
        return x, unbatched

    def _stacked_state(self, name, value, unbatched, N):
        """An initial state or a final state's gradient as (L*D, N, H), or None."""
        if value is None:
            return None
        H, D, L = self.hidden_size, self.num_directions, self.num_layers
        value = v.layer_input(name, value, self.dtype, (2,) if unbatched else (3,))
        if unbatched:
            value = value[:, None, :]
        if value.shape != (L * D, N, H):
            want = (L * D, H) if unbatched else (L * D, N, H)
            got = value.shape[::2] if unbatched else value.shape
            raise ValueError(f"{name} has shape {got}, expected (num_layers*D, N, H) = {want}")
        return value

    def _dropout_mask(self, shape):
        """A fresh inverted-dropout mask from ``rng``: 0 with probability p, else 1/(1-p)."""
        p = self.dropout
        if p == 1:
            return np.zeros(shape, self.dtype)
        keep = self.rng.random(shape, dtype=np.float64) >= p
        return keep.astype(self.dtype) * self.dtype.type(1.0 / (1.0 - p))

    def _forward(self, x, states, lengths=None):
        """The stacked run: (output as the caller gave x, final states (L*D, N, H) each)."""
        x, unbatched = self._input(x)
        T, N, _ = x.shape
        lengths = check_lengths(lengths, unbatched, T, N)
        states = [self._stacked_state(name, s, unbatched, N) for name, s in zip(self.STATES, states)]
        H, D, L = self.hidden_size, self.num_directions, self.num_layers
        finals = [np.empty((L * D, N, H), dtype=self.dtype) for _ in self.STATES]
        layer_input = np.ascontiguousarray(x)
        cache = []  # per layer: list of saved per direction
        masks = []  # per layer but the last, when dropout applies
        for layer in range(L):
            outputs = []
            entries = []
            for d, suffix in enumerate(self._suffixes()):
                idx = layer * D + d
                # The reverse direction reads each sequence back to front, from its own last step.
                inp = layer_input if d == 0 else reverse_within(layer_input, lengths)
                starts = tuple(None if s is None else np.ascontiguousarray(s[idx]) for s in states)
                hs, ends, saved = self._run_direction(layer, suffix, inp, starts, lengths)
                for k, end in enumerate(ends):
                    finals[k][idx] = end
                outputs.append(hs if d == 0 else reverse_within(hs, lengths))
                entries.append(saved)
            cache.append(entries)
            layer_input = outputs[0] if D == 1 else np.concatenate(outputs, axis=2)
            if layer < L - 1 and self.training and self.dropout > 0:
                mask = self._dropout_mask(layer_input.shape)
                masks.append(mask)
                layer_input = layer_input * mask

        self._cache = (cache, masks, lengths, unbatched, (T, N))
        output = layer_input
        if unbatched:
            return output[:, 0, :], [f[:, 0, :] for f in finals]
        if self.batch_first:
            output = np.ascontiguousarray(output.transpose(1, 0, 2))
        return output, finals

    def _backward(self, grad_output, grad_finals):
        """The stacked backward: (grad_x as the caller gave x, grads of the initial states)."""
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        cache, masks, lengths, unbatched, (T, N) = self._cache
        H, D, L = self.hidden_size, self.num_directions, self.num_layers

        if grad_output is None:
            grad_out = np.zeros((T, N, D * H), dtype=self.dtype)
        else:
            grad_out = v.layer_input("grad_output", grad_output, self.dtype,
                                     (2,) if unbatched else (3,))
            if unbatched:
                grad_out = grad_out[:, None, :]
            elif self.batch_first:
                grad_out = grad_out.transpose(1, 0, 2)
            if grad_out.shape != (T, N, D * H):
                want = (T, D * H) if unbatched else (
                    (N, T, D * H) if self.batch_first else (T, N, D * H))
                raise ValueError(f"grad_output has shape {np.shape(grad_output)}, expected the "
                                 f"forward output's shape {want}")
        finals = []
        for name, g in zip(self.FINAL_GRADS, grad_finals):
            if g is None:
                finals.append(None)
                continue
            g = v.layer_input(name, g, self.dtype, (2,) if unbatched else (3,))
            if unbatched:
                g = g[:, None, :]
            if g.shape != (L * D, N, H):
                want = (L * D, H) if unbatched else (L * D, N, H)
                state = name[len("grad_"):]
                raise ValueError(f"{name} has shape {np.shape(grad_finals[len(finals)])}, expected the "
                                 f"forward {state}'s shape {want}")
            finals.append(g)

        # h_n is the state after each sequence's last processed step: t = T-1 (or lengths[b]-1)
        # in processing order, for either direction.
        last = (np.full(N, T - 1) if lengths is None else lengths - 1, np.arange(N))
        grad_starts = [np.empty((L * D, N, H), dtype=self.dtype) for _ in self.STATES]
        for layer in range(L - 1, -1, -1):
            if layer < len(masks):
                grad_out = grad_out * masks[layer]  # through the dropout after this layer
            grad_input = None
            for d, suffix in enumerate(self._suffixes()):
                idx = layer * D + d
                # This direction's slice of the output gradient, put in processing order (a
                # fresh contiguous copy, since the h_n gradient is added into it).
                g = grad_out[:, :, d * H:(d + 1) * H]
                grad_hs = (np.array(g, dtype=self.dtype, order="C") if d == 0
                           else reverse_within(g, lengths).astype(self.dtype, copy=False))
                if finals[0] is not None:
                    grad_hs[last] += finals[0][idx]
                others = tuple(None if f is None else np.ascontiguousarray(f[idx]) for f in finals[1:])
                gx, gstarts, param_grads = self._back_direction(layer, suffix, cache[layer][d], grad_hs,
                                                                others, lengths)
                self._store_grads(layer, suffix, *param_grads)
                for k, gs in enumerate(gstarts):
                    grad_starts[k][idx] = gs
                if d == 1:
                    gx = reverse_within(gx, lengths)  # back to original time order
                grad_input = gx if grad_input is None else grad_input + gx
            grad_out = grad_input  # the gradient of the layer below's output

        grad_x = grad_out
        if unbatched:
            return np.ascontiguousarray(grad_x[:, 0, :]), [g[:, 0, :] for g in grad_starts]
        if self.batch_first:
            grad_x = grad_x.transpose(1, 0, 2)
        return np.ascontiguousarray(grad_x), grad_starts

    def _repr_args(self):
        """The constructor's arguments other than the defaults, as PyTorch's repr shows them."""
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        s += self._repr_extra()
        if not self._has_bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s

    def _repr_extra(self):
        """A family's own arguments, right after num_layers (as PyTorch's repr puts them)."""
        return ""

    def __repr__(self):
        s = f"{type(self).__name__}({self._repr_args()}"
        if self.dtype != np.float32:
            s += f", dtype={self.dtype.name}"
        return s + ")"


class _RecurrentCell(_Layer):
    """One step of a recurrent layer, for loops the caller drives (decoders).

    Subclasses set ``GATES``, ``STATES`` (("h",) or ("h", "c")) and define
    ``_step(x, states) -> nexts`` (x (N, I), states (N, H) arrays; nexts a tuple of (N, H)) and
    ``_step_back(x, states, nexts, grad_nexts) -> (grad_x, grad_states, grad_w_ih, grad_w_hh,
    grad_b_ih, grad_b_hh)``.

    Every forward is remembered for its backward, most recent first: run a decoder's T steps
    forwards, then call backward T times from the last step back (backpropagation through
    time). The first backward after a forward overwrites ``grads``; each further backward adds
    its step's gradients, so after the T backwards ``grads`` holds the whole sequence's. In a
    loop that never calls backward (inference), call :meth:`reset` now and then: the remembered
    steps are kept until their backward.
    """

    GATES = 1
    STATES = ("h",)

    def _init_cell(self, input_size, hidden_size, bias, dtype, rng):
        self.input_size = v.layer_int("input_size", input_size, 1)
        self.hidden_size = v.layer_int("hidden_size", hidden_size, 1)
        has_bias = v.layer_bool("bias", bias)
        self.dtype = v.layer_dtype(dtype)
        shapes = gate_param_shapes("", self.GATES, self.hidden_size, self.input_size, has_bias)
        self._init_params(shapes, 1.0 / math.sqrt(self.hidden_size), v.layer_rng(rng))
        self._tape = []
        self._accumulate = False

    def reset(self):
        """Forget every remembered step (their backward can no longer run)."""
        self._tape = []

    def _weights(self):
        p = self.params
        return p["weight_ih"], p["weight_hh"], p.get("bias_ih"), p.get("bias_hh")

    def _cell_forward(self, x, states):
        x = v.layer_input("x", x, self.dtype, (1, 2))
        unbatched = x.ndim == 1
        if unbatched:
            x = x[None]
        N, features = x.shape
        if features != self.input_size:
            raise ValueError(f"x has {features} features, expected input_size={self.input_size}"
                             f" (x shape {x.shape})")
        H = self.hidden_size
        given = []
        for name, s in zip(self.STATES, states):
            if s is None:
                given.append(np.zeros((N, H), self.dtype))
                continue
            s = v.layer_input(name, s, self.dtype, (1,) if unbatched else (2,))
            s = s[None] if unbatched else s
            if s.shape != (N, H):
                want = (H,) if unbatched else (N, H)
                raise ValueError(f"{name} has shape {s.shape[1:] if unbatched else s.shape}, expected {want}")
            given.append(s)
        x = np.ascontiguousarray(x)
        given = tuple(np.ascontiguousarray(s) for s in given)
        nexts = self._step(x, given)
        self._tape.append((x, given, nexts, unbatched))
        self._accumulate = False
        return tuple(n[0] for n in nexts) if unbatched else nexts

    def _cell_backward(self, grad_nexts):
        if not self._tape:
            raise RuntimeError(f"{type(self).__name__}.backward called without a forward to go back through")
        x, states, nexts, unbatched = self._tape[-1]
        N, H = x.shape[0], self.hidden_size
        grads = []
        for name, g in zip(self.STATES, grad_nexts):
            name = f"grad_{name}_next"
            if g is None:
                grads.append(None)
                continue
            g = v.layer_input(name, g, self.dtype, (1,) if unbatched else (2,))
            g = g[None] if unbatched else g
            if g.shape != (N, H):
                want = (H,) if unbatched else (N, H)
                raise ValueError(f"{name} has shape {np.shape(grad_nexts[len(grads)])}, expected the forward's {want}")
            grads.append(g)
        if grads[0] is None:
            grads[0] = np.zeros((N, H), self.dtype)
        self._tape.pop()
        grad_x, grad_states, *param_grads = self._step_back(x, states, nexts, tuple(grads))
        keys = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        for key, g in zip(keys, param_grads):
            if key in self.grads:
                if self._accumulate:
                    self.grads[key] += g
                else:
                    np.copyto(self.grads[key], g)
        self._accumulate = True
        if unbatched:
            return grad_x[0], tuple(g[0] for g in grad_states)
        return grad_x, tuple(grad_states)

    def __repr__(self):
        s = f"{type(self).__name__}({self.input_size}, {self.hidden_size}"
        if "bias_ih" not in self.params:
            s += ", bias=False"
        s += self._repr_extra()
        if self.dtype != np.float32:
            s += f", dtype={self.dtype.name}"
        return s + ")"

    def _repr_extra(self):
        return ""
