"""GFLOP/s of the single-threaded C GEMM core against NumPy's matmul at 1 thread.

    python kernels/c/tests/bench_gemm.py [--isa N] [--dtype f32|f64] [--reps R]
        [--shapes MxNxK,...] [--mc MC --kc KC --nc NC]

The default shapes are the registry's GEMM cases (fastnn/_cases/gemm.py).

Runs each case alternating fnn / numpy (this machine is noisy; see
BUILD-NOTES.md) and reports the best time of each and the ratio. Times are
the calling thread's CPU time by default (both run in it at 1 thread), which
other processes on the two cores disturb far less than wall time; --wall
switches to time.perf_counter. Scratch and
outputs are allocated once, as a training loop would keep them.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _gemmlib as G  # noqa: E402

def registry_shapes():
    """The GEMM core's cases of the registry (fastnn._cases.gemm), as (M, N, K): the shapes are
    defined there once."""
    sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))  # the checkout, if fastnn is not installed
    from fastnn._cases.gemm import SHAPES
    return [(m, n, k) for m, k, n in SHAPES.values()]


def parse_shapes(s):
    return [tuple(int(v) for v in x.split("x")) for x in s.split(",")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", default=None)
    ap.add_argument("--isa", type=int, default=None)
    ap.add_argument("--dtype", default="f32,f64")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--shapes", default=None)
    ap.add_argument("--mc", type=int)
    ap.add_argument("--kc", type=int)
    ap.add_argument("--nc", type=int)
    ap.add_argument("--no-numpy", action="store_true")
    ap.add_argument("--wall", action="store_true")
    args = ap.parse_args()

    try:
        from threadpoolctl import threadpool_limits
        limiter = threadpool_limits(1)
    except ImportError:
        limiter = None
        if os.environ.get("OPENBLAS_NUM_THREADS") != "1":
            print("warning: threadpoolctl missing and OPENBLAS_NUM_THREADS != 1")

    clock = time.perf_counter if args.wall else time.thread_time
    lib = G.load(args.lib)
    if args.isa is not None:
        assert lib.set_isa(args.isa) == args.isa
    shapes = parse_shapes(args.shapes) if args.shapes else registry_shapes()
    rng = np.random.default_rng(0)
    for dname in args.dtype.split(","):
        dt = np.float32 if dname == "f32" else np.float64
        d = lib.desc(dt)
        for f in ("mc", "kc", "nc"):
            if getattr(args, f):
                setattr(d, f, getattr(args, f))
        scratch = lib.scratch(d)
        print(f"{d}  (isa {lib.isa_name(lib.active_isa())})")
        for m, n, k in shapes:
            a = rng.standard_normal((m, k)).astype(dt)
            b = rng.standard_normal((k, n)).astype(dt)
            c = np.empty((m, n), dt)
            c2 = np.empty((m, n), dt)
            flop = 2.0 * m * n * k
            inner = max(1, int(2e8 / flop))
            best_f = best_n = float("inf")
            for _ in range(args.reps):
                t = clock()
                for _ in range(inner):
                    lib.gemm(d, a, b, c, 0, None, scratch)
                best_f = min(best_f, (clock() - t) / inner)
                if not args.no_numpy:
                    t = clock()
                    for _ in range(inner):
                        np.matmul(a, b, out=c2)
                    best_n = min(best_n, (clock() - t) / inner)
            gf, gn = flop / best_f / 1e9, flop / best_n / 1e9
            err = ""
            if not args.no_numpy:
                rel = np.max(np.abs(c - c2)) / np.max(np.abs(c2))
                err = f"  maxrel {rel:.1e}"
            print(f"  {m:5d}x{n:5d}x{k:5d}  fnn {gf:7.1f} GF/s  numpy {gn:7.1f} GF/s  "
                  f"ratio {gf / gn:5.3f}{err}", flush=True)
    if limiter is not None:
        limiter.restore_original_limits()


if __name__ == "__main__":
    main()
