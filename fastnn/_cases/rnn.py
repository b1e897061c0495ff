"""The Elman RNN's cases: a whole sequence forward (`rnn_forward`), forward + BPTT, BPTT alone
(`rnn_backward`), one step (`rnn_step`) and its gradients (`rnn_step_backward`)."""
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


def forward_flops(t, n, i, h):
    return 2 * t * n * h * (i + h)


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
    return out


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
