"""conv1d's cases: the forward (`conv1d`) and backward (`conv1d_backward`, all three gradients)
on layers of audio and sequence models (wav2vec 2.0's feature encoder, Conformer/TTS depthwise
convolutions, WaveNet's dilated ones), and a few small ones for the main job."""
import math

import numpy as np

import fastnn
from fastnn import reference
from fastnn._cases._case import Case, Instance, case_rng, tolerance, torch_module, uniform

ORDER = 12

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
ALL = {"suite", "bench"}

# name: (N, C_in, C_out, L, k, stride, padding, dilation, groups), tags, dtypes benchmarked
SHAPES = {
    "tiny": ((1, 4, 8, 32, 3, 1, 1, 1, 1), {"quick", "suite", "bench"}, (F32,)),
    # wav2vec 2.0's feature encoder on 1 s of 16 kHz audio: a 1-channel k10 s5 layer, then k3 s2
    # and k2 s2 layers of 512 channels (lengths 3199, 1599, ..., 99, 49)
    "wav2vec_conv0": ((4, 1, 512, 16000, 10, 5, 0, 1, 1), ALL, (F32,)),
    "wav2vec_conv1": ((2, 512, 512, 3199, 3, 2, 0, 1, 1), ALL, (F32, F64)),
    "wav2vec_conv4": ((4, 512, 512, 399, 3, 2, 0, 1, 1), ALL, (F32,)),
    "wav2vec_conv6": ((8, 512, 512, 99, 2, 2, 0, 1, 1), {"bench"}, (F32,)),
    # depthwise convolutions of Conformer blocks and TTS / ASR encoders (QuartzNet, FastPitch)
    "depthwise_k3": ((8, 256, 256, 400, 3, 1, 1, 1, 256), {"bench"}, (F32,)),
    "depthwise_k15": ((8, 256, 256, 400, 15, 1, 7, 1, 256), ALL, (F32,)),
    "conformer_k31": ((8, 256, 256, 400, 31, 1, 15, 1, 256), ALL, (F32,)),
    # a dense TTS encoder convolution (FastSpeech 2: 256 channels, k9)
    "tts_k9": ((16, 256, 256, 200, 9, 1, 4, 1, 1), {"bench"}, (F32,)),
    # WaveNet's dilated convolutions (64 residual channels to 128, filter and gate; k2, valid)
    "wavenet_d1": ((4, 64, 128, 8193, 2, 1, 0, 1, 1), ALL, (F32,)),
    "wavenet_d32": ((4, 64, 128, 8224, 2, 1, 0, 32, 1), {"bench"}, (F32,)),
    "wavenet_d512": ((4, 64, 128, 8704, 2, 1, 0, 512, 1), ALL, (F32,)),
    # the main job: a dense layer, a strided 1-channel one, depthwise, dilated
    "small": ((2, 16, 32, 64, 3, 1, 1, 1, 1), {"quick"}, (F32,)),
    "small_strided": ((2, 1, 16, 200, 10, 5, 0, 1, 1), {"quick"}, (F32,)),
    "small_depthwise": ((2, 32, 32, 64, 15, 1, 7, 1, 32), {"quick"}, (F32,)),
    "small_dilated": ((2, 8, 16, 72, 2, 1, 0, 8, 1), {"quick"}, (F32,)),
}


def geometry(n, c_in, c_out, length, k, stride, pad, dilation, groups):
    return dict(n=n, c_in=c_in, c_out=c_out, length=length, k=k, stride=stride, padding=pad,
                dilation=dilation, groups=groups)


def output_length(p):
    return (p["length"] + 2 * p["padding"] - p["dilation"] * (p["k"] - 1) - 1) // p["stride"] + 1


def forward_flops(p):
    return 2 * p["n"] * p["c_out"] * output_length(p) * (p["c_in"] // p["groups"]) * p["k"]


def describe(p):
    s = f"{p['n']}x{p['c_in']}x{p['length']} -> {p['c_out']}x{output_length(p)}, k{p['k']} s{p['stride']}"
    s += f" p{p['padding']}"
    if p["dilation"] != 1:
        s += f" d{p['dilation']}"
    return s + (f" g{p['groups']}" if p["groups"] > 1 else "")


def cases():
    out = []
    for name, (spec, tags, dtypes) in SHAPES.items():
        p = geometry(*spec)
        flops = forward_flops(p)
        shape = describe(p)
        out.append(Case("conv1d", name, "fwd", ("conv1d",), shape, p, flops, dtypes, tags, _build))
        out.append(Case("conv1d", name, "bwd", ("conv1d_backward",), shape, p, 2 * flops, dtypes, tags, _build))
    return out


def _magnitudes(x, w, p, dy=None):
    """The tolerances' magnitudes: the forward of |x|, |w|, or the backward of |dy|."""
    args = (p["stride"], p["padding"], p["dilation"], p["groups"])
    torch = torch_module()
    if torch is not None:  # much faster than the reference on the large cases
        tx, tw = torch.from_numpy(np.abs(x)), torch.from_numpy(np.abs(w))
        if dy is None:
            return torch.nn.functional.conv1d(tx, tw, None, *args).numpy()
        gi, gw, _ = torch.ops.aten.convolution_backward(
            torch.from_numpy(np.abs(dy)), tx, tw, [p["c_out"]], [p["stride"]], [p["padding"]],
            [p["dilation"]], False, [0], p["groups"], [True, True, False])
        return gi.numpy(), gw.numpy()
    if dy is None:
        return reference.conv1d(np.abs(x), np.abs(w), None, *args)
    gi, gw, _ = reference.conv1d_backward(np.abs(dy), np.abs(x), np.abs(w), *args, needs_bias_grad=False)
    return gi, gw


def _build(case, dtype):
    p = case.params
    n, c_in, c_out, g, k = p["n"], p["c_in"], p["c_out"], p["groups"], p["k"]
    s, pad, d = p["stride"], p["padding"], p["dilation"]
    rng = case_rng("conv1d", case.name)
    bound = 1.0 / math.sqrt(c_in // g * k)  # PyTorch's default initialisation
    x = rng.standard_normal((n, c_in, p["length"])).astype(dtype)
    w = uniform(rng, (c_out, c_in // g, k), bound, dtype)
    b = uniform(rng, (c_out,), bound, dtype)
    length_out = output_length(p)
    dy = rng.standard_normal((n, c_out, length_out)).astype(dtype)
    f64 = [a.astype(np.float64) for a in (x, w, b, dy)]

    if case.direction == "fwd":
        def torch_impl():
            torch = torch_module()
            tx, tw, tb = (torch.from_numpy(a) for a in (x, w, b))
            return lambda: (torch.nn.functional.conv1d(tx, tw, tb, s, pad, d, g),)

        def truth():
            y = reference.conv1d(f64[0], f64[1], f64[2], s, pad, d, g)
            mag = _magnitudes(x, w, p).astype(np.float64) + np.abs(f64[2])[:, None]
            return [("y", y, tolerance(mag, c_in // g * k + 1, dtype))]

        return Instance(case, dtype,
                        fastnn=lambda: (fastnn.conv1d(x, w, b, s, pad, d, g),),
                        numpy=lambda: (reference.conv1d(x, w, b, s, pad, d, g),),
                        torch=torch_impl, truth=truth)

    def torch_impl():
        torch = torch_module()
        tx, tw, tdy = (torch.from_numpy(a) for a in (x, w, dy))
        return lambda: torch.ops.aten.convolution_backward(
            tdy, tx, tw, [c_out], [s], [pad], [d], False, [0], g, [True, True, True])

    def truth():
        gi, gw, gb = reference.conv1d_backward(f64[3], f64[0], f64[1], s, pad, d, g)
        mag_i, mag_w = (m.astype(np.float64) for m in _magnitudes(x, w, p, dy))
        return [("grad_input", gi, tolerance(mag_i, c_out // g * k, dtype)),
                ("grad_weight", gw, tolerance(mag_w, n * length_out, dtype)),
                ("grad_bias", gb, tolerance(np.abs(f64[3]).sum(axis=(0, 2)), n * length_out, dtype))]

    return Instance(case, dtype,
                    fastnn=lambda: fastnn.conv1d_backward(dy, x, w, s, pad, d, g),
                    numpy=lambda: reference.conv1d_backward(dy, x, w, s, pad, d, g),
                    torch=torch_impl, truth=truth)
