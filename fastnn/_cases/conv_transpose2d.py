"""conv_transpose2d's cases: the forward (`conv_transpose2d`) and backward
(`conv_transpose2d_backward`, all three gradients) on up-sampling layers from real networks (a
DCGAN generator, U-Net's up-sampling, a decoder with output_padding), and a few small ones for
the main job."""
import math

import numpy as np

import fastnn
from fastnn import reference
from fastnn._cases._case import Case, Instance, case_rng, tolerance, torch_module, uniform

ORDER = 11

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
ALL = {"suite", "bench"}

# name: (N, C_in, C_out, H=W of the input, k, stride, padding, output_padding, groups), tags, dtypes
SHAPES = {
    "tiny": ((1, 8, 4, 8, 4, 2, 1, 0, 1), {"quick", "suite", "bench"}, (F32,)),
    # DCGAN's generator (Radford et al.): z (100 x 1 x 1) up to a 64 x 64 RGB image, k4 s2 p1
    "dcgan_z": ((32, 100, 512, 1, 4, 1, 0, 0, 1), ALL, (F32,)),
    "dcgan_8": ((32, 512, 256, 4, 4, 2, 1, 0, 1), ALL, (F32, F64)),
    "dcgan_16": ((32, 256, 128, 8, 4, 2, 1, 0, 1), ALL, (F32,)),
    "dcgan_32": ((32, 128, 64, 16, 4, 2, 1, 0, 1), ALL, (F32,)),
    "dcgan_64": ((32, 64, 3, 32, 4, 2, 1, 0, 1), ALL, (F32,)),
    # U-Net's up-convolutions (k2 s2: every output pixel from one input pixel and one tap)
    "unet_up32": ((8, 512, 256, 16, 2, 2, 0, 0, 1), ALL, (F32,)),
    "unet_up128": ((4, 128, 64, 64, 2, 2, 0, 0, 1), ALL, (F32,)),
    # a decoder doubling the size exactly (k3 s2 p1 output_padding 1)
    "decoder_32": ((16, 128, 64, 16, 3, 2, 1, 1, 1), ALL, (F32,)),
    "decoder_64": ((8, 64, 32, 32, 3, 2, 1, 1, 1), {"bench"}, (F32,)),
    # depthwise up-sampling (a learned, per-channel bilinear-like filter)
    "depthwise_up": ((8, 64, 64, 32, 4, 2, 1, 0, 64), {"bench"}, (F32,)),
    # the main job: the scatter (stride 2), the same with output_padding, stride 1 (a gather)
    "small": ((2, 32, 16, 8, 4, 2, 1, 0, 1), {"quick"}, (F32,)),
    "small_output_padding": ((2, 16, 8, 7, 3, 2, 1, 1, 1), {"quick"}, (F32,)),
    "small_stride1_grouped": ((2, 16, 16, 8, 3, 1, 1, 0, 4), {"quick"}, (F32,)),
}


def geometry(n, c_in, c_out, hw, k, stride, pad, output_padding, groups):
    """The params of a square layer: sizes, and stride/padding/output_padding as pairs."""
    return dict(n=n, c_in=c_in, c_out=c_out, h=hw, w=hw, kh=k, kw=k, stride=(stride, stride),
                padding=(pad, pad), output_padding=(output_padding, output_padding), dilation=(1, 1),
                groups=groups)


def output_size(p):
    return tuple((size - 1) * s - 2 * pad + d * (k - 1) + op + 1 for size, s, pad, d, k, op in zip(
        (p["h"], p["w"]), p["stride"], p["padding"], p["dilation"], (p["kh"], p["kw"]), p["output_padding"]))


def forward_flops(p):
    """2 x multiply-adds: each input element times each output channel of its group and tap."""
    return 2 * p["n"] * p["c_in"] * p["h"] * p["w"] * (p["c_out"] // p["groups"]) * p["kh"] * p["kw"]


def describe(p):
    h_out, w_out = output_size(p)
    s = f"{p['n']}x{p['c_in']}x{p['h']}x{p['w']} -> {p['c_out']}x{h_out}x{w_out}, k{p['kh']}"
    s += f" s{p['stride'][0]} p{p['padding'][0]}"
    if p["output_padding"] != (0, 0):
        s += f" op{p['output_padding'][0]}"
    return s + (f" g{p['groups']}" if p["groups"] > 1 else "")


def cases():
    out = []
    for name, (spec, tags, dtypes) in SHAPES.items():
        p = geometry(*spec)
        flops = forward_flops(p)
        shape = describe(p)
        out.append(Case("conv_transpose2d", name, "fwd", ("conv_transpose2d",), shape, p, flops, dtypes, tags,
                        _build))
        out.append(Case("conv_transpose2d", name, "bwd", ("conv_transpose2d_backward",), shape, p, 2 * flops,
                        dtypes, tags, _build))
    return out


def _magnitudes(x, w, p, dy=None):
    """The tolerances' magnitudes: the forward of |x|, |w|, or the backward of |dy|."""
    args = (p["stride"], p["padding"], p["output_padding"], p["groups"], p["dilation"])
    torch = torch_module()
    if torch is not None:  # much faster than the reference on the large cases
        tx, tw = torch.from_numpy(np.abs(x)), torch.from_numpy(np.abs(w))
        if dy is None:
            return torch.nn.functional.conv_transpose2d(tx, tw, None, *args).numpy()
        gi, gw, _ = torch.ops.aten.convolution_backward(
            torch.from_numpy(np.abs(dy)), tx, tw, [p["c_out"]], list(p["stride"]), list(p["padding"]),
            list(p["dilation"]), True, list(p["output_padding"]), p["groups"], [True, True, False])
        return gi.numpy(), gw.numpy()
    if dy is None:
        return reference.conv_transpose2d(np.abs(x), np.abs(w), None, *args)
    gi, gw, _ = reference.conv_transpose2d_backward(np.abs(dy), np.abs(x), np.abs(w), *args,
                                                    needs_bias_grad=False)
    return gi, gw


def _build(case, dtype):
    p = case.params
    n, c_in, c_out, g = p["n"], p["c_in"], p["c_out"], p["groups"]
    kh, kw = p["kh"], p["kw"]
    rng = case_rng("conv_transpose2d", case.name)
    bound = 1.0 / math.sqrt(c_out // g * kh * kw)  # PyTorch's default initialisation
    x = rng.standard_normal((n, c_in, p["h"], p["w"])).astype(dtype)
    w = uniform(rng, (c_in, c_out // g, kh, kw), bound, dtype)
    b = uniform(rng, (c_out,), bound, dtype)
    h_out, w_out = output_size(p)
    dy = rng.standard_normal((n, c_out, h_out, w_out)).astype(dtype)
    f64 = [a.astype(np.float64) for a in (x, w, b, dy)]
    # The calls take an int where both axes agree, as a user writes them.
    s, pad, op, d = (v[0] if v[0] == v[1] else v for v in (p["stride"], p["padding"], p["output_padding"],
                                                         p["dilation"]))

    if case.direction == "fwd":
        def torch_impl():
            torch = torch_module()
            tx, tw, tb = (torch.from_numpy(a) for a in (x, w, b))
            return lambda: (torch.nn.functional.conv_transpose2d(tx, tw, tb, s, pad, op, g, d),)

        def truth():
            y = reference.conv_transpose2d(f64[0], f64[1], f64[2], s, pad, op, g, d)
            mag = _magnitudes(x, w, p).astype(np.float64) + np.abs(f64[2])[:, None, None]
            # each output sums at most C_in/groups * kH * kW terms, and the bias
            return [("y", y, tolerance(mag, c_in // g * kh * kw + 1, dtype))]

        return Instance(case, dtype,
                        fastnn=lambda: (fastnn.conv_transpose2d(x, w, b, s, pad, op, g, d),),
                        numpy=lambda: (reference.conv_transpose2d(x, w, b, s, pad, op, g, d),),
                        torch=torch_impl, truth=truth)

    def torch_impl():
        torch = torch_module()
        tx, tw, tdy = (torch.from_numpy(a) for a in (x, w, dy))
        return lambda: torch.ops.aten.convolution_backward(
            tdy, tx, tw, [c_out], list(p["stride"]), list(p["padding"]), list(p["dilation"]), True,
            list(p["output_padding"]), g, [True, True, True])

    def truth():
        gi, gw, gb = reference.conv_transpose2d_backward(f64[3], f64[0], f64[1], s, pad, op, g, d)
        mag_i, mag_w = (m.astype(np.float64) for m in _magnitudes(x, w, p, dy))
        return [("grad_input", gi, tolerance(mag_i, c_out // g * kh * kw, dtype)),
                ("grad_weight", gw, tolerance(mag_w, n * p["h"] * p["w"], dtype)),
                ("grad_bias", gb, tolerance(np.abs(f64[3]).sum(axis=(0, 2, 3)), n * h_out * w_out, dtype))]

    return Instance(case, dtype,
                    fastnn=lambda: fastnn.conv_transpose2d_backward(dy, x, w, s, pad, op, g, d),
                    numpy=lambda: reference.conv_transpose2d_backward(dy, x, w, s, pad, op, g, d),
                    torch=torch_impl, truth=truth)
