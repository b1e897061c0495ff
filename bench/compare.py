"""Headline speed tables: fastnn against its NumPy reference and PyTorch, side by side.

Every case is timed in this one process, the implementations alternating round by round
(fastnn, torch, NumPy, fastnn, torch, NumPy, ...; each round is the best of a few calls), and
each speed ratio is the median of the per-round ratios. Before a case is timed, every
implementation's result is checked against the float64 reference (fastnn.reference run on the
same inputs in float64) within a tolerance scaled by the reduction length; a case that fails
the check gets no ratio.

Run from the repository root, with the extension built in place:

    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824 \
        PYTHONPATH=. python bench/compare.py --suite all --threads 1,2

or let the script run itself under both allocator settings (`--allocator both`). See
bench/README.md for what the columns mean. PyTorch is optional: without it the torch columns
are empty. The case lists here are also the parameters of the pytest-benchmark files beside it.
"""
import argparse
import fnmatch
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import zlib

import numpy as np

import fastnn
from fastnn import _runtime
from fastnn import reference

try:
    import torch
except ImportError:  # PyTorch is optional everywhere in fastnn
    torch = None

try:
    import threadpoolctl
except ImportError:
    threadpoolctl = None

TUNED_MALLOC = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824"
IMPLS = ("fastnn", "torch", "numpy")  # the order of the calls inside every round
TOL_FACTOR = 4.0                      # tolerance = TOL_FACTOR * sqrt(K) * eps * magnitude

# ---- the suites -----------------------------------------------------------------------------
# conv: (N, C_in, C_out, H=W, k, stride, pad, groups), shapes from real networks.
CONV_CASES = {
    "tiny": (1, 3, 8, 16, 3, 1, 1, 1),
    "mnist": (64, 1, 32, 28, 3, 1, 1, 1),
    "cifar": (32, 64, 64, 32, 3, 1, 1, 1),
    "resnet28": (8, 128, 128, 28, 3, 1, 1, 1),
    "resnet14": (8, 256, 256, 14, 3, 1, 1, 1),
    "pointwise": (8, 256, 64, 28, 1, 1, 0, 1),
    "strided": (8, 64, 128, 56, 3, 2, 1, 1),
    "depthwise": (8, 128, 128, 56, 3, 1, 1, 128),
    "stem": (8, 3, 64, 224, 7, 2, 3, 1),
}
# float64 versions of a few conv cases: expected at about half the float32 rate.
CONV64_CASES = ("resnet28", "resnet14", "pointwise")
# rnn: (T, N, I, H)
RNN_CASES = {
    "latency": (100, 1, 32, 64),
    "small": (50, 32, 64, 128),
    "large": (20, 64, 256, 512),
}
# gemm: (M, K, N) for C (M, N) = A (M, K) @ B (K, N); the conv-shaped ones are
# C_out x (C_in*3*3) x (output pixels of a batch of one).
GEMM_CASES = {
    "square2048": (2048, 2048, 2048),
    "conv64": (64, 576, 784),
    "conv128": (128, 1152, 196),
    "conv256": (256, 2304, 3136),
}
GEMM_PATH_CASE = "square2048"  # also timed on every dispatch path, at 1 thread
SUITES = ("conv", "conv64", "rnn", "gemm")


class Case:
    """One benchmark: its implementations (zero-argument callables) and its checks.

    impls maps "fastnn" / "torch" / "numpy" to a callable returning a tuple of results
    (ndarrays or tensors), in the order of the (label, truth, tolerance) triples that
    truth() returns. setup/teardown run around the case (a forced dispatch path).
    """

    def __init__(self, suite, name, direction, dtype, flops, impls, truth, shape,
                 setup=None, teardown=None, threads=None):
        self.suite, self.name, self.direction = suite, name, direction
        self.dtype = np.dtype(dtype)
        self.flops = float(flops)
        self.impls = {k: f for k, f in impls.items() if f is not None}
        self._truth_fn = truth
        self._truth = None
        self.shape = shape
        self.setup = setup or (lambda: None)
        self.teardown = teardown or (lambda: None)
        self.threads = threads  # None: every thread count; else only these

    @property
    def key(self):
        return f"{self.suite}/{self.name}/{self.direction}"

    def truth(self):
        if self._truth is None:
            self._truth = self._truth_fn()
        return self._truth

    def check(self, only=None):
        """{impl: worst |result - truth| / tolerance}; <= 1 everywhere means it agrees.

        only: check these implementations alone (default: all)."""
        worst = {}
        for impl, fn in self.impls.items():
            if only is not None and impl not in only:
                continue
            outs = fn()
            ratio = 0.0
            for out, (label, want, tol) in zip(outs, self.truth()):
                got = _to_numpy(out)
                if got.shape != want.shape:
                    ratio = math.inf
                    break
                err = np.abs(got.astype(np.float64) - want)
                if not np.isfinite(err).all():
                    ratio = math.inf
                    break
                ratio = max(ratio, float(np.max(err / tol)) if err.size else 0.0)
            worst[impl] = ratio
        return worst


def _to_numpy(a):
    if torch is not None and isinstance(a, torch.Tensor):
        return a.detach().numpy()
    return np.asarray(a)


def _eps(dtype):
    return float(np.finfo(dtype).eps)


def _tolerance(magnitude, k, dtype):
    """Elementwise tolerance for a sum of k products whose absolute values add to magnitude."""
    tiny = float(np.finfo(dtype).tiny)
    return TOL_FACTOR * math.sqrt(max(k, 1)) * _eps(dtype) * np.asarray(magnitude, np.float64) + tiny


def _rng(*key):
    """A generator seeded by the case's name, the same in every process."""
    return np.random.default_rng(zlib.crc32("/".join(key).encode()))


def _uniform(rng, shape, bound, dtype):
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


# ---- conv2d ---------------------------------------------------------------------------------

def conv_flops(n, c_in, c_out, hw, k, stride, pad, groups):
    h_out = (hw + 2 * pad - k) // stride + 1
    return 2 * n * c_out * h_out * h_out * (c_in // groups) * k * k


def _conv_abs(x, w, stride, pad, groups, dy=None):
    """Magnitudes for the tolerances: conv of |x|, |w| (forward) or the backward of |dy|."""
    if torch is not None:
        tx, tw = torch.from_numpy(np.abs(x)), torch.from_numpy(np.abs(w))
        if dy is None:
            return torch.nn.functional.conv2d(tx, tw, None, stride, pad, 1, groups).numpy()
        gi, gw, _ = torch.ops.aten.convolution_backward(
            torch.from_numpy(np.abs(dy)), tx, tw, [w.shape[0]], [stride, stride], [pad, pad],
            [1, 1], False, [0, 0], groups, [True, True, False])
        return gi.numpy(), gw.numpy()
    if dy is None:
        return reference.conv2d(np.abs(x), np.abs(w), None, stride, pad, 1, groups)
    gi, gw, _ = reference.conv2d_backward(np.abs(dy), np.abs(x), np.abs(w), stride, pad, 1, groups,
                                          needs_bias_grad=False)
    return gi, gw


def conv_case(name, direction, dtype=np.float32, suite=None):
    """The conv2d case `name` ('fwd' or 'bwd'), inputs drawn once."""
    n, c_in, c_out, hw, k, s, p, g = CONV_CASES[name]
    dtype = np.dtype(dtype)
    suite = suite or ("conv" if dtype == np.float32 else "conv64")
    rng = _rng("conv", name)
    bound = 1.0 / math.sqrt(c_in // g * k * k)  # PyTorch's default initialisation
    x = rng.standard_normal((n, c_in, hw, hw)).astype(dtype)
    w = _uniform(rng, (c_out, c_in // g, k, k), bound, dtype)
    b = _uniform(rng, (c_out,), bound, dtype)
    h_out = (hw + 2 * p - k) // s + 1
    dy = rng.standard_normal((n, c_out, h_out, h_out)).astype(dtype)
    flops = conv_flops(n, c_in, c_out, hw, k, s, p, g)
    shape = f"{n}x{c_in}x{hw}x{hw} -> {c_out}, k{k} s{s} p{p}" + (f" g{g}" if g > 1 else "")
    have_torch = torch is not None
    if have_torch:
        tx, tw, tb, tdy = (torch.from_numpy(a) for a in (x, w, b, dy))
    f64 = [a.astype(np.float64) for a in (x, w, b, dy)]

    if direction == "fwd":
        impls = {
            "fastnn": lambda: (fastnn.conv2d(x, w, b, s, p, 1, g),),
            "numpy": lambda: (reference.conv2d(x, w, b, s, p, 1, g),),
            "torch": (lambda: (torch.nn.functional.conv2d(tx, tw, tb, s, p, 1, g),)) if have_torch else None,
        }

        def truth():
            y = reference.conv2d(f64[0], f64[1], f64[2], s, p, 1, g)
            mag = _conv_abs(x, w, s, p, g).astype(np.float64) + np.abs(b.astype(np.float64))[:, None, None]
            return [("y", y, _tolerance(mag, c_in // g * k * k, dtype))]

        return Case(suite, name, "fwd", dtype, flops, impls, truth, shape)

    impls = {
        "fastnn": lambda: fastnn.conv2d_backward(dy, x, w, s, p, 1, g),
        "numpy": lambda: reference.conv2d_backward(dy, x, w, s, p, 1, g),
        "torch": (lambda: torch.ops.aten.convolution_backward(
            tdy, tx, tw, [c_out], [s, s], [p, p], [1, 1], False, [0, 0], g, [True, True, True])
        ) if have_torch else None,
    }

    def truth():
        gi, gw, gb = reference.conv2d_backward(f64[3], f64[0], f64[1], s, p, 1, g)
        mag_i, mag_w = (m.astype(np.float64) for m in _conv_abs(x, w, s, p, g, dy))
        pixels = n * h_out * h_out
        return [("grad_input", gi, _tolerance(mag_i, c_out // g * k * k, dtype)),
                ("grad_weight", gw, _tolerance(mag_w, pixels, dtype)),
                ("grad_bias", gb, _tolerance(np.abs(f64[3]).sum(axis=(0, 2, 3)), pixels, dtype))]

    return Case(suite, name, "bwd", dtype, 2 * flops, impls, truth, shape)


# ---- Elman RNN ------------------------------------------------------------------------------

def rnn_flops(t, n, i, h):
    return 2 * t * n * h * (i + h)


def rnn_case(name, direction, dtype=np.float32):
    """The RNN case `name`: 'fwd' (forward) or 'fwdbwd' (forward + BPTT, loss = sum of hs)."""
    t, n, i, h = RNN_CASES[name]
    dtype = np.dtype(dtype)
    rng = _rng("rnn", name)
    bound = 1.0 / math.sqrt(h)  # PyTorch's default initialisation
    x = rng.standard_normal((t, n, i)).astype(dtype)
    h0 = rng.standard_normal((n, h)).astype(dtype) * 0.5
    w_ih, w_hh = _uniform(rng, (h, i), bound, dtype), _uniform(rng, (h, h), bound, dtype)
    b_ih, b_hh = _uniform(rng, (h,), bound, dtype), _uniform(rng, (h,), bound, dtype)
    ones = np.ones((t, n, h), dtype)
    flops = rnn_flops(t, n, i, h)
    shape = f"T{t} N{n} I{i} H{h}"
    f64 = [a.astype(np.float64) for a in (x, h0, w_ih, w_hh, b_ih, b_hh)]

    if torch is not None:
        rnn = torch.nn.RNN(i, h, nonlinearity="tanh", dtype=torch.float32 if dtype == np.float32 else torch.float64)
        with torch.no_grad():
            for param, value in zip((rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0),
                                    (w_ih, w_hh, b_ih, b_hh)):
                param.copy_(torch.from_numpy(value))
        tx, th0 = torch.from_numpy(x), torch.from_numpy(h0)[None]

    # Magnitudes are normwise here: a recurrence has no simple elementwise bound. K counts the
    # longest chain of sums an output sees: the features of one step, over the steps of the
    # sequence, and for the weight gradients over the batch too.
    k_len = t * (n + i + h)

    def normwise(label, want):
        return label, want, _tolerance(np.full(want.shape, max(np.abs(want).max(), 1e-30)), k_len, dtype)

    if direction == "fwd":
        def torch_fwd():
            with torch.no_grad():
                return (rnn(tx, th0)[0],)

        impls = {
            "fastnn": lambda: (fastnn.rnn_forward(x, h0, w_ih, w_hh, b_ih, b_hh),),
            "numpy": lambda: (reference.rnn_forward(x, h0, w_ih, w_hh, b_ih, b_hh),),
            "torch": torch_fwd if torch is not None else None,
        }

        def truth():
            return [normwise("hs", reference.rnn_forward(*f64))]

        return Case("rnn", name, "fwd", dtype, flops, impls, truth, shape)

    def fastnn_fwdbwd():
        hs = fastnn.rnn_forward(x, h0, w_ih, w_hh, b_ih, b_hh)
        return fastnn.rnn_backward(ones, x, h0, hs, w_ih, w_hh)

    def numpy_fwdbwd():
        hs = reference.rnn_forward(x, h0, w_ih, w_hh, b_ih, b_hh)
        return reference.rnn_backward(ones, x, h0, hs, w_ih, w_hh)

    def torch_fwdbwd():
        rnn.zero_grad(set_to_none=True)
        xg = tx.detach().requires_grad_()
        hg = th0.detach().requires_grad_()
        rnn(xg, hg)[0].sum().backward()
        return (xg.grad, hg.grad[0], rnn.weight_ih_l0.grad, rnn.weight_hh_l0.grad, rnn.bias_ih_l0.grad)

    def truth():
        hs = reference.rnn_forward(*f64)
        grads = reference.rnn_backward(np.ones((t, n, h)), f64[0], f64[1], hs, f64[2], f64[3])
        labels = ("grad_x", "grad_h0", "grad_w_ih", "grad_w_hh", "grad_b")
        return [normwise(lbl, g) for lbl, g in zip(labels, grads)]

    impls = {"fastnn": fastnn_fwdbwd, "numpy": numpy_fwdbwd,
             "torch": torch_fwdbwd if torch is not None else None}
    return Case("rnn", name, "fwdbwd", dtype, 3 * flops, impls, truth, shape)


# ---- the GEMM core --------------------------------------------------------------------------

def gemm_case(name, dtype=np.float32, path=None):
    """fastnn's GEMM core against NumPy's matmul (and torch.mm), outputs preallocated.

    path forces a dispatch path ('avx512', 'avx2', 'portable') for fastnn; such cases run at
    1 thread only and leave torch out.
    """
    m, k, n = GEMM_CASES[name]
    dtype = np.dtype(dtype)
    rng = _rng("gemm", name)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    c_fnn, c_np = np.empty((m, n), dtype), np.empty((m, n), dtype)
    kernels = _runtime._kernels

    def fastnn_gemm():
        return (kernels.gemm(a, b, c_fnn, num_threads=fastnn.get_num_threads()),)

    impls = {"fastnn": fastnn_gemm if kernels is not None else None,
             "numpy": lambda: (np.matmul(a, b, out=c_np),)}
    if torch is not None and path is None:
        ta, tb, tc = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(np.empty((m, n), dtype))
        impls["torch"] = lambda: (torch.mm(ta, tb, out=tc),)

    def truth():
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        return [("c", a64 @ b64, _tolerance(np.abs(a64) @ np.abs(b64), k, dtype))]

    setup = teardown = None
    label = name
    if path is not None:
        label = f"{name}[{path}]"
        saved = []

        def setup():
            saved.append(kernels.active_isa())
            _runtime.set_cpu_path(path)

        def teardown():
            _runtime.set_cpu_path(saved.pop())

    return Case("gemm", label, "fwd", dtype, 2 * m * n * k, impls, truth, f"{m}x{k} @ {k}x{n}",
                setup=setup, teardown=teardown, threads=(1,) if path else None)


def cpu_paths():
    """Dispatch paths this CPU can run, best first."""
    k = _runtime._kernels
    if k is None:
        return []
    names = list(k.ISA_NAMES)
    return names[: names.index(k.cpu_isa()) + 1][::-1]


def build_cases(suites, patterns=None):
    cases = []
    if "conv" in suites:
        cases += [conv_case(nm, d) for nm in CONV_CASES for d in ("fwd", "bwd")]
    if "conv64" in suites:
        cases += [conv_case(nm, d, np.float64) for nm in CONV64_CASES for d in ("fwd", "bwd")]
    if "rnn" in suites:
        cases += [rnn_case(nm, d) for nm in RNN_CASES for d in ("fwd", "fwdbwd")]
    if "gemm" in suites:
        cases += [gemm_case(nm) for nm in GEMM_CASES]
        cases += [gemm_case(GEMM_PATH_CASE, path=p) for p in cpu_paths()]
    if patterns:
        cases = [c for c in cases
                 if any(fnmatch.fnmatch(c.name, pat) or fnmatch.fnmatch(c.key, pat) for pat in patterns)]
    return cases


# ---- timing ---------------------------------------------------------------------------------

class Threads:
    """Set every library's thread count to n (fastnn, torch, OpenBLAS and OpenMP via threadpoolctl)."""

    def __init__(self, n):
        self.n = n
        self._limits = None

    def __enter__(self):
        if threadpoolctl is not None:
            self._limits = threadpoolctl.threadpool_limits(limits=self.n)
        fastnn.set_num_threads(self.n)
        if torch is not None:
            torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc):
        if self._limits is not None:
            self._limits.restore_original_limits()
        fastnn.set_num_threads(None)


def _best_of(fn, calls):
    best = math.inf
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _calls_per_round(seconds, target, min_calls):
    """Enough calls to fill `target` seconds, at least min_calls (fewer for calls over 0.1 s)."""
    if seconds > 0.3:
        min_calls = 1
    elif seconds > 0.1:
        min_calls = min(min_calls, 2)
    return int(min(1000, max(min_calls, math.ceil(target / max(seconds, 1e-7)))))


# Pause before each implementation's turn. fastnn, PyTorch (its own bundled libgomp) and
# OpenBLAS each keep worker threads that spin for a while after a parallel call; on a 2-core
# machine the previous library's spinning workers would steal the cores from the next one's
# team. After this pause they are all asleep, so each library is timed as if it were alone.
SETTLE_SECONDS = 0.1


def time_alternating(impls, rounds, target=0.05, min_calls=3):
    """{impl: [best seconds of each round]}, the implementations alternating round by round."""
    order = [k for k in IMPLS if k in impls]
    calls = {}
    for k in order:  # warm-up call, which also sizes the rounds
        calls[k] = _calls_per_round(_best_of(impls[k], 1), target, min_calls)
    times = {k: [] for k in order}
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            for k in order:
                if len(order) > 1:
                    time.sleep(SETTLE_SECONDS)
                times[k].append(_best_of(impls[k], calls[k]))
    finally:
        if gc_was:
            gc.enable()
    return times, calls


def gemm_rate(rounds, n=2048, dtype=np.float32):
    """The machine's GEMM rate at the current thread count: NumPy matmul on n x n, GFLOP/s."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n)).astype(dtype), rng.standard_normal((n, n)).astype(dtype)
    c = np.empty((n, n), dtype)
    times, _ = time_alternating({"numpy": lambda: np.matmul(a, b, out=c)}, rounds, target=0.3, min_calls=2)
    return 2 * n**3 / statistics.median(times["numpy"]) / 1e9


def run_case(case, threads, rounds, quick, peak):
    row = {"suite": case.suite, "case": case.name, "direction": case.direction,
           "dtype": case.dtype.name, "shape": case.shape, "threads": threads,
           "gflop": case.flops / 1e9}
    case.setup()
    try:
        try:
            worst = case.check()
        except Exception as exc:  # report the case and go on with the others
            row.update(agree=False, check={}, error=f"{type(exc).__name__}: {exc}")
            return row
        row["check"] = worst
        bad = {k: v for k, v in worst.items() if not v <= 1.0}
        if bad:
            row["agree"] = False
            return row
        row["agree"] = True
        times, calls = time_alternating(case.impls, rounds, target=0.01 if quick else 0.05,
                                        min_calls=1 if quick else 3)
    finally:
        case.teardown()
    row["calls_per_round"] = calls
    for k, ts in times.items():
        med = statistics.median(ts)
        row[f"{k}_ms"] = med * 1e3
        row[f"{k}_gflops"] = case.flops / med / 1e9
        if k != "fastnn":
            ratios = [t / f for t, f in zip(ts, times["fastnn"])]
            row[f"{k}/fastnn"] = statistics.median(ratios)
            row[f"{k}/fastnn_range"] = [min(ratios), max(ratios)]
    row["share"] = row["fastnn_gflops"] / peak
    return row


# ---- output ---------------------------------------------------------------------------------

def _fmt(v, spec):
    return "" if v is None else format(v, spec)


def geomean(values):
    values = [v for v in values if v is not None and v > 0]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else None


def markdown(rows, meta):
    out = []
    for threads in meta["threads"]:
        sub = [r for r in rows if r["threads"] == threads]
        if not sub:
            continue
        peak = meta["gemm_rate"][str(threads)]
        out.append(f"\n### {threads} thread{'s' if threads > 1 else ''} "
                   f"(float32 GEMM rate, NumPy matmul 2048^3: {peak:.1f} GFLOP/s)\n")
        out.append("| case | dir | dtype | GFLOP | fastnn ms | torch ms | NumPy ms | fastnn GF/s | "
                   "torch GF/s | NumPy GF/s | fastnn share | torch/fastnn | NumPy/fastnn | check |")
        out.append("|" + "---|" * 14)
        for r in sub:
            check = r.get("check", {})
            chk = " ".join(f"{k[0]}{v:.2f}" for k, v in check.items())
            if not r["agree"]:
                why = f"ERROR, no ratio: {r['error']}" if r.get("error") else f"DISAGREE, no ratio ({chk})"
                out.append(f"| {r['case']} | {r['direction']} | {r['dtype']} | {r['gflop']:.3f} | "
                           + "| " * 9 + why.replace("|", "/") + " |")
                continue
            out.append(
                f"| {r['case']} | {r['direction']} | {r['dtype']} | {r['gflop']:.3f} | "
                f"{_fmt(r.get('fastnn_ms'), '.3f')} | {_fmt(r.get('torch_ms'), '.3f')} | "
                f"{_fmt(r.get('numpy_ms'), '.3f')} | {_fmt(r.get('fastnn_gflops'), '.1f')} | "
                f"{_fmt(r.get('torch_gflops'), '.1f')} | {_fmt(r.get('numpy_gflops'), '.1f')} | "
                f"{_fmt(r.get('share'), '.0%')} | {_fmt(r.get('torch/fastnn'), '.2f')} | "
                f"{_fmt(r.get('numpy/fastnn'), '.2f')} | ok {chk} |")
        out.append("")
        out.append("| geometric mean over | cases | torch/fastnn | NumPy/fastnn |")
        out.append("|---|---|---|---|")
        groups = [(s, [r for r in sub if r["suite"] == s and r["agree"]]) for s in SUITES]
        groups.append(("all", [r for r in sub if r["agree"]]))
        for label, rs in groups:
            if not rs:
                continue
            out.append(f"| {label} | {len(rs)} | {_fmt(geomean([r.get('torch/fastnn') for r in rs]), '.2f')} | "
                       f"{_fmt(geomean([r.get('numpy/fastnn') for r in rs]), '.2f')} |")
    return "\n".join(out)


def machine_meta(args):
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    blas = []
    if threadpoolctl is not None:
        blas = [f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')})"
                for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
    cfg = fastnn.show_config(print_out=False)
    return {
        "cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
        "numpy": np.__version__, "torch": torch.__version__ if torch is not None else None,
        "fastnn": fastnn.__version__, "fastnn_cpu_path": cfg["cpu_path"], "fastnn_compiled": cfg["compiled"],
        "blas": blas, "GLIBC_TUNABLES": os.environ.get("GLIBC_TUNABLES"),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
        "rounds": args.rounds, "quick": args.quick, "threads": args.threads,
        "tolerance": f"{TOL_FACTOR:g} * sqrt(K) * eps * magnitude",
    }


def header(meta):
    tun = meta["GLIBC_TUNABLES"]
    alloc = ("tuned allocator: GLIBC_TUNABLES=" + tun) if tun else "default allocator: GLIBC_TUNABLES not set"
    lines = [
        f"## fastnn {meta['fastnn']} vs NumPy reference vs PyTorch {meta['torch'] or '(not installed)'}",
        "",
        f"- machine: {meta['cpu']}, {meta['cores']} cores; Python {meta['python']}, NumPy {meta['numpy']} "
        f"({'; '.join(meta['blas']) or 'BLAS unknown'}); fastnn path {meta['fastnn_cpu_path']}",
        f"- {alloc}",
        f"- OPENBLAS_CORETYPE={meta['OPENBLAS_CORETYPE']}, OPENBLAS_L2_SIZE={meta['OPENBLAS_L2_SIZE']}",
        f"- {meta['rounds']} alternating rounds per case{' (--quick: smoke test, not figures)' if meta['quick'] else ''}; "
        "times are medians of per-round bests; ratios are medians of per-round ratios (>1: fastnn faster)",
        f"- check: worst |result - float64 reference| / ({meta['tolerance']}); "
        "f = fastnn, t = torch, n = NumPy",
    ]
    return "\n".join(lines)


def run(args):
    suites = SUITES if "all" in args.suite else tuple(args.suite)
    patterns = args.cases.split(",") if args.cases else None
    cases = build_cases(suites, patterns)
    meta = machine_meta(args)
    meta["gemm_rate"] = {}
    print(header(meta), flush=True)
    rows = []
    for threads in args.threads:
        with Threads(threads):
            peak = gemm_rate(args.rounds)
            meta["gemm_rate"][str(threads)] = peak
            print(f"\n[{threads} thread(s)] float32 GEMM rate {peak:.1f} GFLOP/s", file=sys.stderr, flush=True)
            for case in cases:
                if case.threads is not None and threads not in case.threads:
                    continue
                t0 = time.perf_counter()
                row = run_case(case, threads, args.rounds, args.quick, peak)
                rows.append(row)
                print(f"  {case.key} {case.dtype.name}: "
                      + (f"torch/fastnn {row.get('torch/fastnn', float('nan')):.2f} "
                         f"numpy/fastnn {row.get('numpy/fastnn', float('nan')):.2f}"
                         if row["agree"] else row.get("error") or f"DISAGREE {row['check']}")
                      + f" ({time.perf_counter() - t0:.1f} s)", file=sys.stderr, flush=True)
    print(markdown(rows, meta), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)
    return 0 if all(r["agree"] for r in rows) else 1


def run_both(args, argv):
    """Re-run this script under the tuned and the default allocator; print both, then side by side."""
    results = {}
    status = 0
    with tempfile.TemporaryDirectory() as tmp:
        for label, tunables in (("tuned", TUNED_MALLOC), ("default", None)):
            env = dict(os.environ)
            env.pop("GLIBC_TUNABLES", None)
            if tunables:
                env["GLIBC_TUNABLES"] = tunables
            path = os.path.join(tmp, f"{label}.json")
            cmd = [sys.executable, os.path.abspath(__file__), *_strip_allocator(argv), "--allocator", "inherit",
                   "--json", path]
            status |= subprocess.call(cmd, env=env)
            with open(path) as f:
                results[label] = json.load(f)
    tuned, default = results["tuned"]["rows"], results["default"]["rows"]
    dflt = {(r["suite"], r["case"], r["direction"], r["threads"]): r for r in default}
    out = ["\n### Allocator side by side (torch/fastnn; each from its own process, so the "
           "fastnn-time ratio between the two columns carries run-to-run noise)\n",
           "| case | dir | threads | tuned torch/fastnn | default torch/fastnn | "
           "tuned NumPy/fastnn | default NumPy/fastnn | fastnn ms tuned | fastnn ms default |",
           "|" + "---|" * 9]
    for r in tuned:
        d = dflt.get((r["suite"], r["case"], r["direction"], r["threads"]), {})
        out.append(f"| {r['case']} | {r['direction']} | {r['threads']} | "
                   f"{_fmt(r.get('torch/fastnn'), '.2f')} | {_fmt(d.get('torch/fastnn'), '.2f')} | "
                   f"{_fmt(r.get('numpy/fastnn'), '.2f')} | {_fmt(d.get('numpy/fastnn'), '.2f')} | "
                   f"{_fmt(r.get('fastnn_ms'), '.3f')} | {_fmt(d.get('fastnn_ms'), '.3f')} |")
    print("\n".join(out))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return status


def _strip_allocator(argv):
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in ("--allocator", "--json"):
            skip = True
        elif not a.startswith(("--allocator=", "--json=")):
            out.append(a)
    return out


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", default="all",
                   type=lambda s: s.split(","), help="conv, conv64 (float64 conv), rnn, gemm or all; "
                   "comma-separated (default all)")
    p.add_argument("--cases", default=None, help="comma-separated case names or glob patterns "
                   "(matched against NAME or SUITE/NAME/DIR), e.g. 'resnet*,conv/stem/fwd'")
    p.add_argument("--threads", default="1,2", type=lambda s: [int(t) for t in s.split(",")],
                   help="comma-separated thread counts (default 1,2)")
    p.add_argument("--rounds", type=int, default=None, help="alternating rounds per case (default 5; 2 with --quick)")
    p.add_argument("--quick", action="store_true", help="smoke test for CI: few rounds and calls")
    p.add_argument("--json", default=None, metavar="FILE", help="also write every figure as JSON")
    p.add_argument("--allocator", default="inherit", choices=("inherit", "tuned", "default", "both"),
                   help="inherit: as started (default); tuned/default: re-run under that glibc malloc "
                   "setting; both: run under each and print them side by side")
    args = p.parse_args(argv)
    for s in args.suite:
        if s not in SUITES + ("all",):
            p.error(f"unknown suite {s!r}: choose from {', '.join(SUITES + ('all',))}")
    if args.rounds is None:
        args.rounds = 2 if args.quick else 5
    if args.rounds < 1:
        p.error("--rounds must be >= 1")
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.allocator == "both":
        return run_both(args, argv)
    if args.allocator in ("tuned", "default"):
        want = TUNED_MALLOC if args.allocator == "tuned" else None
        if os.environ.get("GLIBC_TUNABLES") != want:  # must be set before Python starts: re-exec
            env = dict(os.environ)
            env.pop("GLIBC_TUNABLES", None)
            if want:
                env["GLIBC_TUNABLES"] = want
            return subprocess.call([sys.executable, os.path.abspath(__file__), *argv], env=env)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
