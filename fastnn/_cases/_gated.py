"""What the LSTM and GRU families' cases share (fastnn._cases.lstm, fastnn._cases.gru): their
shapes and directions, and one builder for both.

Directions: `fwd`, a whole sequence forward (`<family>_forward`); `fwdbwd`, forward and
backpropagation through time with the loss the sum of every hidden state, through the
one-layer `fastnn.LSTM` / `GRU` layer (which keeps the gates for its backward, as training
does); `bwd`, BPTT alone (`<family>_backward`, which recomputes the gates); `step` and
`stepbwd`, one step and its gradients. PyTorch runs the same numbers through torch.nn.LSTM / GRU (forward under no_grad,
forward + backward through autograd) and torch.nn.LSTMCell / GRUCell.

Variable-length batches (`small_len`, `large_len`, see fastnn._cases.rnn): `fwd`, and `fwdbwd`
through the kernels (`<family>_forward` then `<family>_backward`, which recomputes the gates:
the layers do not take lengths yet); PyTorch through its packed sequences.
"""
import math

import numpy as np

import fastnn
from fastnn import reference
from fastnn._cases._case import Case, Instance, case_rng, tolerance, torch_module, uniform
from fastnn._cases.rnn import SHAPES, length_cases

F32 = np.dtype(np.float32)
GATES = {"lstm": 4, "gru": 3}

# direction: (the kernels it calls, with {family} for the family; FLOPs in forwards; shapes
# with the tags each has there)
DIRECTIONS = {
    "fwd": (("{family}_forward",), 1, {"latency": {"quick", "suite", "bench"}, "small": {"quick", "suite", "bench"},
                                       "large": {"suite", "bench"}}),
    "fwdbwd": ((), 3, {name: {"suite", "bench"} for name in SHAPES}),  # the layer: no public kernel
    # the main job's checks of the other kernels
    "bwd": (("{family}_backward",), 2, {"latency": {"quick"}, "small": {"quick"}}),
    "step": (("{family}_step",), 1, {"latency": {"quick"}, "small": {"quick"}}),
    "stepbwd": (("{family}_step_backward",), 2, {"latency": {"quick"}, "small": {"quick"}}),
}


def forward_flops(family, t, n, i, h):
    return 2 * t * n * GATES[family] * h * (i + h)


def cases(family, build):
    out = []
    for direction, (kernels, forwards, tagged) in DIRECTIONS.items():
        for name, tags in tagged.items():
            t, n, i, h = SHAPES[name]
            step = direction.startswith("step")
            if step:
                t = 1
            params = dict(t=SHAPES[name][0], n=n, i=i, h=h)
            shape = f"N{n} I{i} H{h}, one step" if step else f"T{t} N{n} I{i} H{h}"
            out.append(Case(family, name, direction, tuple(k.format(family=family) for k in kernels), shape,
                            params, forwards * forward_flops(family, t, n, i, h), (F32,), tags, build))
    kernels = {"fwd": (f"{family}_forward",), "fwdbwd": (f"{family}_forward", f"{family}_backward")}
    return out + length_cases(family, kernels.__getitem__, lambda t, n, i, h: forward_flops(family, t, n, i, h),
                              build_lengths(family))


class Problem:
    """A case's inputs in its dtype and in float64, and the calls of each implementation."""

    def __init__(self, case, dtype, family):
        p = case.params
        self.family, self.dtype = family, dtype
        step = case.direction.startswith("step")
        self.t, self.n, self.i, self.h = (1 if step else p["t"]), p["n"], p["i"], p["h"]
        t, n, i, h, g = self.t, self.n, self.i, self.h, GATES[family]
        rng = case_rng(family, case.name)
        bound = 1.0 / math.sqrt(h)  # PyTorch's default initialisation
        self.x = rng.standard_normal((t, n, i)).astype(dtype)
        self.states = [(rng.standard_normal((n, h)) * 0.5).astype(dtype) for _ in range(2 if family == "lstm" else 1)]
        self.weights = [uniform(rng, (g * h, i), bound, dtype), uniform(rng, (g * h, h), bound, dtype),
                        uniform(rng, (g * h,), bound, dtype), uniform(rng, (g * h,), bound, dtype)]
        self.grad_hs = rng.standard_normal((t, n, h)).astype(dtype)
        self.grad_c_n = rng.standard_normal((n, h)).astype(dtype) if family == "lstm" else None
        self.f64 = {k: None if a is None else np.asarray(a, np.float64) for k, a in
                    dict(x=self.x, grad_hs=self.grad_hs, grad_c_n=self.grad_c_n).items()}
        self.states64 = [a.astype(np.float64) for a in self.states]
        self.weights64 = [a.astype(np.float64) for a in self.weights]
        # Normwise magnitudes: a recurrence has no simple elementwise bound. K counts the
        # longest chain of sums an output sees: a gate's features over the steps, and for the
        # weight gradients over the batch too.
        self.k_len = (1 if step else t) * (n + i + g * h)

    def normwise(self, label, want):
        return label, want, tolerance(np.full(want.shape, max(np.abs(want).max(), 1e-30)), self.k_len, self.dtype)

    # ---- the kernels, for fastnn and for the reference, in float64 or the case's dtype ----

    def forward(self, mod, wide=False):
        x = self.f64["x"] if wide else self.x
        states, weights = (self.states64, self.weights64) if wide else (self.states, self.weights)
        return getattr(mod, f"{self.family}_forward")(x, *states, *weights)

    def backward(self, mod, fwd, grad_hs=None, grad_c_n=None, wide=False):
        """mod's backward for the forward results fwd ((hs, cs) or hs)."""
        x = self.f64["x"] if wide else self.x
        states, weights = (self.states64, self.weights64) if wide else (self.states, self.weights)
        if self.family == "lstm":
            return mod.lstm_backward(grad_hs, x, *states, *fwd, *weights, grad_c_n=grad_c_n)
        return mod.gru_backward(grad_hs, x, *states, fwd, *weights)

    def step(self, mod, wide=False):
        x = self.f64["x"] if wide else self.x
        states, weights = (self.states64, self.weights64) if wide else (self.states, self.weights)
        out = getattr(mod, f"{self.family}_step")(x[0], *states, *weights)
        return tuple(out) if self.family == "lstm" else (out,)

    def step_backward(self, mod, nexts, wide=False):
        x = self.f64["x"] if wide else self.x
        states, weights = (self.states64, self.weights64) if wide else (self.states, self.weights)
        g = self.f64["grad_hs"][0] if wide else self.grad_hs[0]
        if self.family == "lstm":
            gc = self.f64["grad_c_n"] if wide else self.grad_c_n
            return mod.lstm_step_backward(g, x[0], *states, *nexts, *weights, grad_c_next=gc)
        return mod.gru_step_backward(g, x[0], *states, *nexts, *weights)

    # ---- PyTorch ----

    def torch_module(self, cell):
        torch = torch_module()
        tdtype = torch.float32 if self.dtype == np.float32 else torch.float64
        name = self.family.upper() + ("Cell" if cell else "")
        module = getattr(torch.nn, name)(self.i, self.h, dtype=tdtype)
        with torch.no_grad():
            for key, value in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), self.weights):
                getattr(module, key if cell else f"{key}_l0").copy_(torch.from_numpy(value))
        return torch, module

    def torch_states(self, torch, requires_grad=False, batched=True):
        states = [torch.from_numpy(s) for s in self.states]
        states = [s[None] if batched else s for s in states]
        if requires_grad:
            states = [s.detach().requires_grad_() for s in states]
        return states

    def torch_call(self, module, x, states):
        """(output, final hidden state[, final cell state]) of a torch.nn.LSTM / GRU."""
        if self.family == "lstm":
            out, (h_n, c_n) = module(x, tuple(states))
            return out, h_n, c_n
        out, h_n = module(x, states[0])
        return out, h_n


def build_lengths(family):
    """The builder of one family's variable-length cases: fwd (hs, and for the LSTM each
    sequence's final cell state) and fwdbwd (the loss the sum of every real hidden state)."""

    def build_case(case, dtype):
        pb = Problem(case, dtype, family)
        lengths = list(case.params["lengths"])
        lens = np.array(lengths)
        last = (lens - 1, np.arange(pb.n))
        lstm = family == "lstm"
        grad_labels = (("grad_x", "grad_h0", "grad_c0", "grad_w_ih", "grad_w_hh", "grad_b") if lstm else
                       ("grad_x", "grad_h0", "grad_w_ih", "grad_w_hh", "grad_b_ih", "grad_b_hh"))

        def forward(mod, wide=False):
            x = pb.f64["x"] if wide else pb.x
            states, weights = (pb.states64, pb.weights64) if wide else (pb.states, pb.weights)
            return getattr(mod, f"{family}_forward")(x, *states, *weights, lengths=lengths)

        def backward(mod, fwd, wide=False):
            x = pb.f64["x"] if wide else pb.x
            states, weights = (pb.states64, pb.weights64) if wide else (pb.states, pb.weights)
            ones = np.ones((pb.t, pb.n, pb.h), np.float64 if wide else dtype)
            if lstm:
                return mod.lstm_backward(ones, x, *states, *fwd, *weights, lengths=lengths)
            return mod.gru_backward(ones, x, *states, fwd, *weights, lengths=lengths)

        def torch_packed(grads):
            """pack_padded_sequence(enforce_sorted=False), the module, pad_packed_sequence(total_length=T)."""
            torch, module = pb.torch_module(cell=False)
            from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
            tx, tl = torch.from_numpy(pb.x), torch.from_numpy(lens)

            def run_module(xin, states):
                got = pb.torch_call(module, pack_padded_sequence(xin, tl, enforce_sorted=False), states)
                return (pad_packed_sequence(got[0], total_length=pb.t)[0],) + tuple(got[1:])

            def forward_only():
                with torch.no_grad():
                    got = run_module(tx, pb.torch_states(torch))
                return (got[0], got[2][0]) if lstm else (got[0],)

            def forward_backward():
                module.zero_grad(set_to_none=True)
                xg = tx.detach().requires_grad_()
                states = pb.torch_states(torch, requires_grad=True)
                run_module(xg, states)[0].sum().backward()
                biases = (module.bias_ih_l0.grad,) if lstm else (module.bias_ih_l0.grad, module.bias_hh_l0.grad)
                return (xg.grad, *(s.grad[0] for s in states), module.weight_ih_l0.grad, module.weight_hh_l0.grad,
                        *biases)
            return forward_backward if grads else forward_only

        if case.direction == "fwd":
            def ours(mod, wide=False):
                fwd = forward(mod, wide)
                return (fwd[0], fwd[1][last]) if lstm else (fwd,)

            return Instance(case, dtype, fastnn=lambda: ours(fastnn), numpy=lambda: ours(reference),
                            torch=lambda: torch_packed(False),
                            truth=lambda: [pb.normwise(label, w) for label, w in
                                           zip(("hs", "c_n"), ours(reference, wide=True))])

        def truth():
            grads = backward(reference, forward(reference, wide=True), wide=True)
            return [pb.normwise(label, g) for label, g in zip(grad_labels, grads)]

        return Instance(case, dtype, fastnn=lambda: backward(fastnn, forward(fastnn)),
                        numpy=lambda: backward(reference, forward(reference)), torch=lambda: torch_packed(True),
                        truth=truth)

    return build_case


def build(family):
    """The builder of one family's cases."""

    def build_case(case, dtype):
        pb = Problem(case, dtype, family)
        lstm = family == "lstm"
        grad_labels = (("grad_x", "grad_h0", "grad_c0", "grad_w_ih", "grad_w_hh", "grad_b") if lstm else
                       ("grad_x", "grad_h0", "grad_w_ih", "grad_w_hh", "grad_b_ih", "grad_b_hh"))

        if case.direction == "fwd":  # hs, and for the LSTM the final cell state
            def ours(mod):
                fwd = pb.forward(mod)
                return (fwd[0], fwd[1][-1]) if lstm else (fwd,)

            def torch_impl():
                torch, module = pb.torch_module(cell=False)
                tx, states = torch.from_numpy(pb.x), pb.torch_states(torch)

                def run():
                    with torch.no_grad():
                        got = pb.torch_call(module, tx, states)
                    return (got[0], got[2][0]) if lstm else (got[0],)
                return run

            def truth():
                fwd = pb.forward(reference, wide=True)
                wants = (fwd[0], fwd[1][-1]) if lstm else (fwd,)
                return [pb.normwise(label, w) for label, w in zip(("hs", "c_n"), wants)]

            return Instance(case, dtype, fastnn=lambda: ours(fastnn), numpy=lambda: ours(reference),
                            torch=torch_impl, truth=truth)

        if case.direction == "fwdbwd":  # the loss is the sum of every hidden state
            ones = np.ones((pb.t, pb.n, pb.h), dtype)
            layer = (fastnn.LSTM if lstm else fastnn.GRU)(pb.i, pb.h, dtype=dtype)
            layer.load_state_dict(dict(zip(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"), pb.weights)))
            stacked = [s[None] for s in pb.states]

            def fastnn_fwdbwd():
                if lstm:
                    layer(pb.x, tuple(stacked))
                    grad_x, (grad_h0, grad_c0) = layer.backward(ones)
                    starts = (grad_h0[0], grad_c0[0])
                else:
                    layer(pb.x, stacked[0])
                    grad_x, grad_h0 = layer.backward(ones)
                    starts = (grad_h0[0],)
                g = layer.grads
                biases = (g["bias_ih_l0"],) if lstm else (g["bias_ih_l0"], g["bias_hh_l0"])
                return (grad_x, *starts, g["weight_ih_l0"], g["weight_hh_l0"], *biases)

            def ours(mod):
                return pb.backward(mod, pb.forward(mod), ones)

            def torch_impl():
                torch, module = pb.torch_module(cell=False)
                tx = torch.from_numpy(pb.x)

                def run():
                    module.zero_grad(set_to_none=True)
                    xg = tx.detach().requires_grad_()
                    states = pb.torch_states(torch, requires_grad=True)
                    pb.torch_call(module, xg, states)[0].sum().backward()
                    biases = ((module.bias_ih_l0.grad,) if lstm else (module.bias_ih_l0.grad, module.bias_hh_l0.grad))
                    return (xg.grad, *(s.grad[0] for s in states), module.weight_ih_l0.grad,
                            module.weight_hh_l0.grad, *biases)
                return run

            def truth():
                grads = pb.backward(reference, pb.forward(reference, wide=True), np.ones((pb.t, pb.n, pb.h)), wide=True)
                return [pb.normwise(label, g) for label, g in zip(grad_labels, grads)]

            return Instance(case, dtype, fastnn=fastnn_fwdbwd, numpy=lambda: ours(reference),
                            torch=torch_impl, truth=truth)

        if case.direction == "bwd":  # torch has no backward without its forward: no torch here
            fwd = pb.forward(reference)

            def truth():
                grads = pb.backward(reference, pb.forward(reference, wide=True), pb.f64["grad_hs"], pb.f64["grad_c_n"],
                                    wide=True)
                return [pb.normwise(label, g) for label, g in zip(grad_labels, grads)]

            return Instance(case, dtype, fastnn=lambda: pb.backward(fastnn, fwd, pb.grad_hs, pb.grad_c_n),
                            numpy=lambda: pb.backward(reference, fwd, pb.grad_hs, pb.grad_c_n), truth=truth)

        if case.direction == "step":
            def torch_impl():
                torch, cell = pb.torch_module(cell=True)
                tx, states = torch.from_numpy(pb.x[0]), pb.torch_states(torch, batched=False)

                def run():
                    with torch.no_grad():
                        out = cell(tx, tuple(states)) if lstm else cell(tx, states[0])
                    return tuple(out) if lstm else (out,)
                return run

            labels = ("h_next", "c_next") if lstm else ("h_next",)
            return Instance(case, dtype, fastnn=lambda: pb.step(fastnn), numpy=lambda: pb.step(reference),
                            torch=torch_impl,
                            truth=lambda: [pb.normwise(label, w) for label, w in zip(labels, pb.step(reference, wide=True))])

        # stepbwd; torch has no backward without its forward: no torch here
        nexts = pb.step(reference)
        step_labels = tuple(label.replace("0", "") for label in grad_labels)

        def truth():
            grads = pb.step_backward(reference, pb.step(reference, wide=True), wide=True)
            return [pb.normwise(label, g) for label, g in zip(step_labels, grads)]

        return Instance(case, dtype, fastnn=lambda: pb.step_backward(fastnn, nexts),
                        numpy=lambda: pb.step_backward(reference, nexts), truth=truth)

    return build_case
