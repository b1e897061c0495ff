"""conv2d's cases: the forward (`conv2d`) and backward (`conv2d_backward`, all three
gradients) on layer shapes from real networks, and a few small ones for the main job.

SHAPES is the suite (nine layers, the figures in the README) and the main job's small cases;
NETWORKS is a wider set of layers taken from real networks, at batch 1, 8 and 32 with their
odd map sizes, benchmarked only (`python bench/compare.py --suite conv2d --cases 'net_*'`)."""
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


# name: (N, C_in, C_out, H x W, k, stride, padding, groups, dilation); a size, kernel, stride,
# padding or dilation is an int (both axes) or a pair; padding None is PyTorch's usual
# dilation * (k - 1) // 2 per axis.
NETWORKS = {
    # ResNet-18/50 (torchvision): stems, the late small-map 3x3s, strided 3x3s, 1x1s
    "net_resnet50_stem_b1": (1, 3, 64, 224, 7, 2, 3, 1, 1),
    "net_resnet50_l2_1x1": (8, 512, 128, 28, 1, 1, 0, 1, 1),
    "net_resnet50_l3_s2": (8, 256, 256, 28, 3, 2, 1, 1, 1),
    "net_resnet50_l4_s2": (8, 512, 512, 14, 3, 2, 1, 1, 1),
    "net_resnet50_l4": (32, 512, 512, 7, 3, 1, 1, 1, 1),
    "net_resnet18_l4_b1": (1, 512, 512, 7, 3, 1, 1, 1, 1),
    # ConvNeXt-T: 4x4 s4 patchify stem, 7x7 depthwise, 1x1 expansion
    "net_convnext_stem": (8, 3, 96, 224, 4, 4, 0, 1, 1),
    "net_convnext_dw7_56_b1": (1, 96, 96, 56, 7, 1, 3, 96, 1),
    "net_convnext_dw7_14": (8, 384, 384, 14, 7, 1, 3, 384, 1),
    "net_convnext_expand": (8, 192, 768, 28, 1, 1, 0, 1, 1),
    # EfficientNet-B0: 3x3 s2 stem, 5x5 depthwise (stride 1 and 2), 3x3 stride-2 depthwise
    "net_effnet_stem": (8, 3, 32, 224, 3, 2, 1, 1, 1),
    "net_effnet_dw3_s2": (8, 96, 96, 112, 3, 2, 1, 96, 1),
    "net_effnet_dw5_s2": (8, 144, 144, 56, 5, 2, 2, 144, 1),
    "net_effnet_dw5_14": (8, 672, 672, 14, 5, 1, 2, 672, 1),
    "net_effnet_dw5_s2_b32": (32, 672, 672, 14, 5, 2, 2, 672, 1),
    # MobileNet v1 / v2: stride-2 and late depthwise 3x3, pointwise expand / project
    "net_mbv1_dw_s2": (8, 128, 128, 56, 3, 2, 1, 128, 1),
    "net_mbv1_dw_14_b32": (32, 512, 512, 14, 3, 1, 1, 512, 1),
    "net_mbv1_pw_14": (8, 512, 512, 14, 1, 1, 0, 1, 1),
    "net_mbv2_stem_b1": (1, 3, 32, 224, 3, 2, 1, 1, 1),
    "net_mbv2_expand": (8, 24, 144, 56, 1, 1, 0, 1, 1),
    "net_mbv2_dw_7_b32": (32, 960, 960, 7, 3, 1, 1, 960, 1),
    "net_mbv2_project_b32": (32, 960, 160, 7, 1, 1, 0, 1, 1),
    # MnasNet-A1: 5x5 depthwise
    "net_mnasnet_dw5_s2": (8, 240, 240, 28, 5, 2, 2, 240, 1),
    "net_mnasnet_dw5_14_b1": (1, 480, 480, 14, 5, 1, 2, 480, 1),
    # ResNeXt-50 32x4d (4, 16 and 32 channels per group) and RegNetX/Y (group widths 16 and 8)
    "net_resnext_l1_g32": (8, 128, 128, 56, 3, 1, 1, 32, 1),
    "net_resnext_l3_s2_g32": (8, 512, 512, 28, 3, 2, 1, 32, 1),
    "net_resnext_l4_g32": (32, 1024, 1024, 7, 3, 1, 1, 32, 1),
    "net_regnetx_gw16": (8, 128, 128, 28, 3, 1, 1, 8, 1),
    "net_regnety_gw8": (8, 208, 208, 14, 3, 1, 1, 26, 1),
    "net_regnety_gw8_s2": (8, 440, 440, 14, 3, 2, 1, 55, 1),
    # DenseNet-121: growth-rate 3x3s (32 output channels), a 1x1 bottleneck of odd width
    "net_densenet_growth_56": (8, 128, 32, 56, 3, 1, 1, 1, 1),
    "net_densenet_growth_14_b32": (32, 128, 32, 14, 3, 1, 1, 1, 1),
    "net_densenet_bottleneck": (8, 352, 128, 28, 1, 1, 0, 1, 1),
    # SqueezeNet 1.1: the stem (valid, output 111) and fire-module 3x3 expands (few inputs)
    "net_squeezenet_stem": (8, 3, 64, 224, 3, 2, 0, 1, 1),
    "net_squeezenet_expand_55": (8, 16, 64, 55, 3, 1, 1, 1, 1),
    "net_squeezenet_expand_13_b32": (32, 64, 256, 13, 3, 1, 1, 1, 1),
    # CIFAR networks with a 5x5 first layer
    "net_cifar_5x5_stem_b32": (32, 3, 32, 32, 5, 1, 2, 1, 1),
    # HRNet (pose, 256x192 input): a high-resolution branch and a strided fusion, non-square
    "net_hrnet_branch": (8, 32, 32, (64, 48), 3, 1, 1, 1, 1),
    "net_hrnet_fuse_s2": (8, 32, 64, (64, 48), 3, 2, 1, 1, 1),
    # DeepLab v3 / v3+: an atrous 3x3, dilated depthwise (MobileNet v2 backbone at output
    # stride 16, Xception ASPP separable convolutions)
    "net_deeplab_aspp_d12_b1": (1, 2048, 256, 33, 3, 1, 12, 1, 12),
    "net_deeplab_dw_d2": (4, 576, 576, 33, 3, 1, 2, 576, 2),
    "net_deeplab_dw_d4": (2, 960, 960, 33, 3, 1, 4, 960, 4),
    "net_deeplab_aspp_dw_d6_b1": (1, 2048, 2048, 33, 3, 1, 6, 2048, 6),
    # U-Net: a full-resolution 3x3 on a non-square image, the decoder after a skip concat
    "net_unet_enc_b1": (1, 64, 64, (180, 240), 3, 1, 1, 1, 1),
    "net_unet_dec_b1": (1, 1024, 512, 30, 3, 1, 1, 1, 1),
    # Inception v3: factorised 1x7 / 7x1 kernels, a valid stride-2 reduction
    "net_inception_1x7": (8, 128, 128, 17, (1, 7), 1, (0, 3), 1, 1),
    "net_inception_7x1": (8, 128, 192, 17, (7, 1), 1, (3, 0), 1, 1),
    "net_inception_red_s2": (8, 288, 384, 35, 3, 2, 0, 1, 1),
    # FPN and RetinaNet heads on an 800x1088 image (strides 16, 32 and 64): odd non-square maps
    "net_fpn_smooth_b1": (1, 256, 256, (50, 68), 3, 1, 1, 1, 1),
    "net_retinanet_head": (2, 256, 256, (25, 34), 3, 1, 1, 1, 1),
    "net_retinanet_cls": (2, 256, 720, (13, 17), 3, 1, 1, 1, 1),
}


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def geometry(n, c_in, c_out, hw, k, stride, pad, groups, dilation=1):
    """The params of a layer: sizes, and kernel/stride/padding/dilation as PyTorch's pairs."""
    (h, w), (kh, kw), dil = _pair(hw), _pair(k), _pair(dilation)
    padding = tuple(d * (kk - 1) // 2 for d, kk in zip(dil, (kh, kw))) if pad is None else _pair(pad)
    return dict(n=n, c_in=c_in, c_out=c_out, h=h, w=w, kh=kh, kw=kw, stride=_pair(stride),
                padding=padding, dilation=dil, groups=groups)


def output_size(p):
    h_out = (p["h"] + 2 * p["padding"][0] - p["dilation"][0] * (p["kh"] - 1) - 1) // p["stride"][0] + 1
    w_out = (p["w"] + 2 * p["padding"][1] - p["dilation"][1] * (p["kw"] - 1) - 1) // p["stride"][1] + 1
    return h_out, w_out


def forward_flops(p):
    h_out, w_out = output_size(p)
    return 2 * p["n"] * p["c_out"] * h_out * w_out * (p["c_in"] // p["groups"]) * p["kh"] * p["kw"]


def describe(p):
    def axes(pair):
        return f"{pair[0]}" if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"
    s = f"{p['n']}x{p['c_in']}x{p['h']}x{p['w']} -> {p['c_out']}, k{axes((p['kh'], p['kw']))}"
    s += f" s{axes(p['stride'])} p{axes(p['padding'])}"
    if p["dilation"] != (1, 1):
        s += f" d{axes(p['dilation'])}"
    return s + (f" g{p['groups']}" if p["groups"] > 1 else "")


def cases():
    out = []
    layers = [(name, spec, tags, dtypes) for name, (spec, tags, dtypes) in SHAPES.items()]
    layers += [(name, spec, {"bench"}, (F32,)) for name, spec in NETWORKS.items()]
    for name, spec, tags, dtypes in layers:
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
