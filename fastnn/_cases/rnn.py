"""The Elman RNN's cases: a whole sequence forward (`rnn_forward`), forward + BPTT, BPTT alone
(`rnn_backward`), one step (`rnn_step`) and its gradients (`rnn_step_backward`); and the
variable-length batches (`small_len`, `large_len`: the small and large shapes with lengths
spread evenly from T/2 to T, 75% of the steps real), forward and forward + BPTT, PyTorch's side
through its packed sequences."""
import math

import numpy as np

import fastnn
from fastnn import reference
from fastnn._cases._case import Case, Instance, case_rng, tolerance, torch_module, uniform

ORDER = 20

F32 = np.dtype(np.float32)

# name: (T, N, I, H)
SHAPES = {
    "latency": (100, 1, 32, 64),
    "small": (50, 32, 64, 128),
    "large": (20, 64, 256, 512),
}

# direction: (the kernels it calls, FLOPs in forwards, shapes with the tags each has there)
DIRECTIONS = {
    "fwd": (("rnn_forward",), 1, {"latency": {"quick", "suite", "bench"}, "small": {"quick", "suite", "bench"},
                                  "large": {"suite", "bench"}}),
    "fwdbwd": (("rnn_forward", "rnn_backward"), 3, {name: {"suite", "bench"} for name in SHAPES}),
    # the main job's checks of the other kernels
    "bwd": (("rnn_backward",), 2, {"latency": {"quick"}, "small": {"quick"}}),
    "step": (("rnn_step",), 1, {"latency": {"quick"}, "small": {"quick"}}),
    "stepbwd": (("rnn_step_backward",), 2, {"latency": {"quick"}, "small": {"quick"}}),
}


# name: the shape whose batch gets lengths spread evenly from T/2 to T (in a shuffled order)
LENGTH_SHAPES = {"small_len": "small", "large_len": "large"}
# direction: (the kernels it calls, FLOPs in forwards, tags)
LENGTH_DIRECTIONS = {"fwd": (("rnn_forward",), 1, {"suite", "bench"}),
                     "fwdbwd": (("rnn_forward", "rnn_backward"), 3, {"suite", "bench"})}


def forward_flops(t, n, i, h):
    return 2 * t * n * h * (i + h)


def spread_lengths(t, n, *key):
    """n lengths spread evenly from T/2 to T, about 75% of the steps real, in an order drawn from
    the key (the same in every process). A tuple, so the case's params stay immutable; the
    kernels take lengths as a list or an integer array."""
    lengths = np.linspace(t / 2, t, n).round().astype(np.int64)
    return tuple(int(v) for v in case_rng(*key, "lengths").permutation(lengths))


def length_cases(family, kernels_of, flops_of, build):
    """The variable-length cases of a family: kernels_of(direction) -> its kernels, flops_of(t, n, i, h)
    -> one forward's FLOPs, counted over the real steps only (t n replaced by sum(lengths))."""
    out = []
    for name, base in LENGTH_SHAPES.items():
        t, n, i, h = SHAPES[base]
        lengths = spread_lengths(t, n, family, name)
        for direction, (_, forwards, tags) in LENGTH_DIRECTIONS.items():
            params = dict(t=t, n=n, i=i, h=h, lengths=lengths)
            shape = f"T{t} N{n} I{i} H{h}, lengths {min(lengths)}..{max(lengths)}"
            out.append(Case(family, name, direction, kernels_of(direction), shape, params,
                            forwards * flops_of(1, sum(lengths), i, h), (F32,), tags, build))
    return out


def cases():
    out = []
    for direction, (kernels, forwards, tagged) in DIRECTIONS.items():
        for name, tags in tagged.items():
            t, n, i, h = SHAPES[name]
            if direction.startswith("step"):
                t = 1
            params = dict(t=SHAPES[name][0], n=n, i=i, h=h)
            flops = forwards * forward_flops(t, n, i, h)
            shape = f"N{n} I{i} H{h}, one step" if direction.startswith("step") else f"T{t} N{n} I{i} H{h}"
            out.append(Case("rnn", name, direction, kernels, shape, params, flops, (F32,), tags, _build))
    return out + length_cases("rnn", lambda d: LENGTH_DIRECTIONS[d][0], forward_flops, _build_lengths)


def _build_lengths(case, dtype):
    """A variable-length case: fwd (hs) or fwdbwd (the loss the sum of every real hidden state)."""
    p = case.params
    t, n, i, h, lengths = p["t"], p["n"], p["i"], p["h"], list(p["lengths"])
    rng = case_rng("rnn", case.name)
    bound = 1.0 / math.sqrt(h)
    x = rng.standard_normal((t, n, i)).astype(dtype)
    h0 = rng.standard_normal((n, h)).astype(dtype) * 0.5
    weights = tuple(uniform(rng, shape, bound, dtype) for shape in ((h, i), (h, h), (h,), (h,)))
    f64 = [a.astype(np.float64) for a in (x, h0) + weights]
    lens = np.array(lengths)
    k_len = t * (n + i + h)
    ones = np.ones((t, n, h), dtype)

    def normwise(label, want):
        return label, want, tolerance(np.full(want.shape, max(np.abs(want).max(), 1e-30)), k_len, dtype)

    def torch_packed(grads):
        """PyTorch's packed sequences: pack_padded_sequence(enforce_sorted=False), the module,
        pad_packed_sequence(total_length=T)."""
        torch = torch_module()
        from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
        rnn = torch.nn.RNN(i, h, nonlinearity="tanh", dtype=torch.float32 if dtype == np.float32 else torch.float64)
        with torch.no_grad():
            for name, value in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), weights):
                getattr(rnn, f"{name}_l0").copy_(torch.from_numpy(value))
        tx, th0, tl = torch.from_numpy(x), torch.from_numpy(h0)[None], torch.from_numpy(lens)

        def hidden_states(xin, hin):
            out, _ = rnn(pack_padded_sequence(xin, tl, enforce_sorted=False), hin)
            return pad_packed_sequence(out, total_length=t)[0]

        def forward():
            with torch.no_grad():
                return (hidden_states(tx, th0),)

        def forward_backward():
            rnn.zero_grad(set_to_none=True)
            xg, hg = tx.detach().requires_grad_(), th0.detach().requires_grad_()
            hidden_states(xg, hg).sum().backward()
            return (xg.grad, hg.grad[0], rnn.weight_ih_l0.grad, rnn.weight_hh_l0.grad, rnn.bias_ih_l0.grad)
        return forward_backward if grads else forward

    if case.direction == "fwd":
        return Instance(case, dtype,
                        fastnn=lambda: (fastnn.rnn_forward(x, h0, *weights, lengths=lengths),),
                        numpy=lambda: (reference.rnn_forward(x, h0, *weights, lengths=lengths),),
                        torch=lambda: torch_packed(False),
                        truth=lambda: [normwise("hs", reference.rnn_forward(*f64, lengths=lengths))])

    def fwdbwd(mod):
        hs = mod.rnn_forward(x, h0, *weights, lengths=lengths)
        return mod.rnn_backward(ones, x, h0, hs, weights[0], weights[1], lengths=lengths)

    def truth():
        hs = reference.rnn_forward(*f64, lengths=lengths)
        grads = reference.rnn_backward(np.ones((t, n, h)), f64[0], f64[1], hs, f64[2], f64[3], lengths=lengths)
        labels = ("grad_x", "grad_h0", "grad_w_ih", "grad_w_hh", "grad_b")
        return [normwise(label, g) for label, g in zip(labels, grads)]

    return Instance(case, dtype, fastnn=lambda: fwdbwd(fastnn), numpy=lambda: fwdbwd(reference),
                    torch=lambda: torch_packed(True), truth=truth)


def _build(case, dtype):
    p = case.params
    t, n, i, h = p["t"], p["n"], p["i"], p["h"]
    rng = case_rng("rnn", case.name)
    bound = 1.0 / math.sqrt(h)  # PyTorch's default initialisation
    x = rng.standard_normal((t, n, i)).astype(dtype)
    h0 = rng.standard_normal((n, h)).astype(dtype) * 0.5
    w_ih, w_hh = uniform(rng, (h, i), bound, dtype), uniform(rng, (h, h), bound, dtype)
    b_ih, b_hh = uniform(rng, (h,), bound, dtype), uniform(rng, (h,), bound, dtype)
    f64 = [a.astype(np.float64) for a in (x, h0, w_ih, w_hh, b_ih, b_hh)]
    weights = (w_ih, w_hh, b_ih, b_hh)
    step = case.direction.startswith("step")
    # Magnitudes are normwise: a recurrence has no simple elementwise bound. K counts the
    # longest chain of sums an output sees: the features of one step, over the steps of the
    # sequence, and for the weight gradients over the batch too.
    k_len = (1 if step else t) * (n + i + h)

    def normwise(label, want):
        return label, want, tolerance(np.full(want.shape, max(np.abs(want).max(), 1e-30)), k_len, dtype)

    def torch_rnn(cell):
        torch = torch_module()
        tdtype = torch.float32 if dtype == np.float32 else torch.float64
        module = (torch.nn.RNNCell if cell else torch.nn.RNN)(i, h, nonlinearity="tanh", dtype=tdtype)
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        with torch.no_grad():
            for name, value in zip(names, weights):
                getattr(module, name if cell else f"{name}_l0").copy_(torch.from_numpy(value))
        return torch, module

    if case.direction == "fwd":
        def torch_impl():
            torch, rnn = torch_rnn(cell=False)
            tx, th0 = torch.from_numpy(x), torch.from_numpy(h0)[None]

            def run():
                with torch.no_grad():
                    return (rnn(tx, th0)[0],)
            return run

        return Instance(case, dtype,
                        fastnn=lambda: (fastnn.rnn_forward(x, h0, *weights),),
                        numpy=lambda: (reference.rnn_forward(x, h0, *weights),),
                        torch=torch_impl, truth=lambda: [normwise("hs", reference.rnn_forward(*f64))])

    grad_labels = ("grad_x", "grad_h0", "grad_w_ih", "grad_w_hh", "grad_b")
    if case.direction == "fwdbwd":  # the loss is the sum of every hidden state
        ones = np.ones((t, n, h), dtype)

        def fastnn_fwdbwd():
            hs = fastnn.rnn_forward(x, h0, *weights)
            return fastnn.rnn_backward(ones, x, h0, hs, w_ih, w_hh)

        def numpy_fwdbwd():
            hs = reference.rnn_forward(x, h0, *weights)
            return reference.rnn_backward(ones, x, h0, hs, w_ih, w_hh)

        def torch_impl():
            torch, rnn = torch_rnn(cell=False)
            tx, th0 = torch.from_numpy(x), torch.from_numpy(h0)[None]

            def run():
                rnn.zero_grad(set_to_none=True)
                xg = tx.detach().requires_grad_()
                hg = th0.detach().requires_grad_()
                rnn(xg, hg)[0].sum().backward()
                return (xg.grad, hg.grad[0], rnn.weight_ih_l0.grad, rnn.weight_hh_l0.grad, rnn.bias_ih_l0.grad)
            return run

        def truth():
            hs = reference.rnn_forward(*f64)
            grads = reference.rnn_backward(np.ones((t, n, h)), f64[0], f64[1], hs, f64[2], f64[3])
            return [normwise(label, g) for label, g in zip(grad_labels, grads)]

        return Instance(case, dtype, fastnn=fastnn_fwdbwd, numpy=numpy_fwdbwd, torch=torch_impl, truth=truth)

    grad = rng.standard_normal((t, n, h)).astype(dtype)
    if case.direction == "bwd":  # torch has no backward without its forward: no torch here
        hs = reference.rnn_forward(x, h0, *weights)

        def truth():
            grads = reference.rnn_backward(grad.astype(np.float64), f64[0], f64[1], reference.rnn_forward(*f64),
                                           f64[2], f64[3])
            return [normwise(label, g) for label, g in zip(grad_labels, grads)]

        return Instance(case, dtype,
                        fastnn=lambda: fastnn.rnn_backward(grad, x, h0, hs, w_ih, w_hh),
                        numpy=lambda: reference.rnn_backward(grad, x, h0, hs, w_ih, w_hh),
                        truth=truth)

    if case.direction == "step":
        def torch_impl():
            torch, cell = torch_rnn(cell=True)
            tx, th0 = torch.from_numpy(x[0]), torch.from_numpy(h0)

            def run():
                with torch.no_grad():
                    return (cell(tx, th0),)
            return run

        return Instance(case, dtype,
                        fastnn=lambda: (fastnn.rnn_step(x[0], h0, *weights),),
                        numpy=lambda: (reference.rnn_step(x[0], h0, *weights),),
                        torch=torch_impl,
                        truth=lambda: [normwise("h_next", reference.rnn_step(f64[0][0], *f64[1:]))])

    # stepbwd; torch has no backward without its forward: no torch here
    h_next = reference.rnn_step(x[0], h0, *weights)

    def truth():
        h_next64 = reference.rnn_step(f64[0][0], *f64[1:])
        grads = reference.rnn_step_backward(grad[0].astype(np.float64), f64[0][0], f64[1], h_next64, f64[2], f64[3])
        return [normwise(label, g) for label, g in zip(("grad_x", "grad_h") + grad_labels[2:], grads)]

    return Instance(case, dtype,
                    fastnn=lambda: fastnn.rnn_step_backward(grad[0], x[0], h0, h_next, w_ih, w_hh),
                    numpy=lambda: reference.rnn_step_backward(grad[0], x[0], h0, h_next, w_ih, w_hh),
                    truth=truth)
