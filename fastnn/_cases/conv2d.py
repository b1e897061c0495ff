"""conv2d's cases: the forward (`conv2d`) and backward (`conv2d_backward`, all three
gradients) on layer shapes from real networks, and a few small ones for the main job."""
import math

import numpy as np

import fastnn
from fastnn import reference
from fastnn._cases._case import Case, Instance, case_rng, tolerance, torch_module, uniform

ORDER = 10

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)

# name: (N, C_in, C_out, H=W, k, stride, pad, groups), tags, dtypes benchmarked
SHAPES = {
    "tiny": ((1, 3, 8, 16, 3, 1, 1, 1), {"quick", "suite", "bench"}, (F32,)),
    "mnist": ((64, 1, 32, 28, 3, 1, 1, 1), {"suite", "bench"}, (F32,)),
    "cifar": ((32, 64, 64, 32, 3, 1, 1, 1), {"suite", "bench"}, (F32,)),
    "resnet28": ((8, 128, 128, 28, 3, 1, 1, 1), {"suite", "bench"}, (F32, F64)),
    "resnet14": ((8, 256, 256, 14, 3, 1, 1, 1), {"suite", "bench"}, (F32, F64)),
    "pointwise": ((8, 256, 64, 28, 1, 1, 0, 1), {"suite", "bench"}, (F32, F64)),
    "strided": ((8, 64, 128, 56, 3, 2, 1, 1), {"suite", "bench"}, (F32,)),
    "depthwise": ((8, 128, 128, 56, 3, 1, 1, 128), {"suite", "bench"}, (F32,)),
    "stem": ((8, 3, 64, 224, 7, 2, 3, 1), {"suite", "bench"}, (F32,)),
    # the main job's short run: one of each driver (GEMM, strided GEMM, depthwise), in seconds
    "small": ((4, 32, 32, 28, 3, 1, 1, 1), {"quick"}, (F32,)),
    "small_strided": ((2, 64, 128, 28, 3, 2, 1, 1), {"quick"}, (F32,)),
    "small_depthwise": ((2, 64, 64, 28, 3, 1, 1, 64), {"quick"}, (F32,)),
}


def geometry(n, c_in, c_out, hw, k, stride, pad, groups):
    """The params of a square layer: sizes, and stride/padding as PyTorch's pairs."""
    return dict(n=n, c_in=c_in, c_out=c_out, h=hw, w=hw, kh=k, kw=k, stride=(stride, stride),
                padding=(pad, pad), dilation=(1, 1), groups=groups)


def output_size(p):
    h_out = (p["h"] + 2 * p["padding"][0] - p["dilation"][0] * (p["kh"] - 1) - 1) // p["stride"][0] + 1
    w_out = (p["w"] + 2 * p["padding"][1] - p["dilation"][1] * (p["kw"] - 1) - 1) // p["stride"][1] + 1
    return h_out, w_out


def forward_flops(p):
    h_out, w_out = output_size(p)
    return 2 * p["n"] * p["c_out"] * h_out * w_out * (p["c_in"] // p["groups"]) * p["kh"] * p["kw"]


def describe(p):
    s = f"{p['n']}x{p['c_in']}x{p['h']}x{p['w']} -> {p['c_out']}, k{p['kh']}"
    if p["kw"] != p["kh"]:
        s += f"x{p['kw']}"
    s += f" s{p['stride'][0]} p{p['padding'][0]}"
    if p["dilation"] != (1, 1):
        s += f" d{p['dilation'][0]}"
    return s + (f" g{p['groups']}" if p["groups"] > 1 else "")


def cases():
    out = []
    for name, (spec, tags, dtypes) in SHAPES.items():
        p = geometry(*spec)
        flops = forward_flops(p)
        shape = describe(p)
        out.append(Case("conv2d", name, "fwd", ("conv2d",), shape, p, flops, dtypes, tags, _build))
        out.append(Case("conv2d", name, "bwd", ("conv2d_backward",), shape, p, 2 * flops, dtypes, tags, _build))
    return out


def _conv_abs(x, w, p, dy=None):
    """Magnitudes for the tolerances: conv of |x|, |w| (forward) or the backward of |dy|."""
    s, pad, d, g = p["stride"], p["padding"], p["dilation"], p["groups"]
    torch = torch_module()
    if torch is not None:  # much faster than the reference on the large cases
        tx, tw = torch.from_numpy(np.abs(x)), torch.from_numpy(np.abs(w))
        if dy is None:
            return torch.nn.functional.conv2d(tx, tw, None, s, pad, d, g).numpy()
        gi, gw, _ = torch.ops.aten.convolution_backward(
            torch.from_numpy(np.abs(dy)), tx, tw, [w.shape[0]], list(s), list(pad), list(d), False,
            [0, 0], g, [True, True, False])
        return gi.numpy(), gw.numpy()
    if dy is None:
        return reference.conv2d(np.abs(x), np.abs(w), None, s, pad, d, g)
    gi, gw, _ = reference.conv2d_backward(np.abs(dy), np.abs(x), np.abs(w), s, pad, d, g,
                                          needs_bias_grad=False)
    return gi, gw


def _build(case, dtype):
    p = case.params
    n, c_in, c_out, g = p["n"], p["c_in"], p["c_out"], p["groups"]
    kh, kw = p["kh"], p["kw"]
    s, pad, d = p["stride"], p["padding"], p["dilation"]
    rng = case_rng("conv", case.name)
    bound = 1.0 / math.sqrt(c_in // g * kh * kw)  # PyTorch's default initialisation
    x = rng.standard_normal((n, c_in, p["h"], p["w"])).astype(dtype)
    w = uniform(rng, (c_out, c_in // g, kh, kw), bound, dtype)
    b = uniform(rng, (c_out,), bound, dtype)
    h_out, w_out = output_size(p)
    dy = rng.standard_normal((n, c_out, h_out, w_out)).astype(dtype)
    f64 = [a.astype(np.float64) for a in (x, w, b, dy)]
    terms = c_in // g * kh * kw
    # The calls take an int where both axes agree, as a user writes them.
    s1, pad1, d1 = (v[0] if v[0] == v[1] else v for v in (s, pad, d))

    if case.direction == "fwd":
        def torch_impl():
            torch = torch_module()
            tx, tw, tb = (torch.from_numpy(a) for a in (x, w, b))
            return lambda: (torch.nn.functional.conv2d(tx, tw, tb, s1, pad1, d1, g),)

        def truth():
            y = reference.conv2d(f64[0], f64[1], f64[2], s1, pad1, d1, g)
            mag = _conv_abs(x, w, p).astype(np.float64) + np.abs(f64[2])[:, None, None]
            return [("y", y, tolerance(mag, terms, dtype))]

        return Instance(case, dtype,
                        fastnn=lambda: (fastnn.conv2d(x, w, b, s1, pad1, d1, g),),
                        numpy=lambda: (reference.conv2d(x, w, b, s1, pad1, d1, g),),
                        torch=torch_impl, truth=truth)

    def torch_impl():
        torch = torch_module()
        tx, tw, tdy = (torch.from_numpy(a) for a in (x, w, dy))
        return lambda: torch.ops.aten.convolution_backward(
            tdy, tx, tw, [c_out], list(s), list(pad), list(d), False, [0, 0], g, [True, True, True])

    def truth():
        gi, gw, gb = reference.conv2d_backward(f64[3], f64[0], f64[1], s1, pad1, d1, g)
        mag_i, mag_w = (m.astype(np.float64) for m in _conv_abs(x, w, p, dy))
        pixels = n * h_out * w_out
        return [("grad_input", gi, tolerance(mag_i, c_out // g * kh * kw, dtype)),
                ("grad_weight", gw, tolerance(mag_w, pixels, dtype)),
                ("grad_bias", gb, tolerance(np.abs(f64[3]).sum(axis=(0, 2, 3)), pixels, dtype))]

    return Instance(case, dtype,
                    fastnn=lambda: fastnn.conv2d_backward(dy, x, w, s1, pad1, d1, g),
                    numpy=lambda: reference.conv2d_backward(dy, x, w, s1, pad1, d1, g),
                    torch=torch_impl, truth=truth)
