"""`python -m fastnn`: check every compiled kernel against its NumPy oracle and time both.

Exits non-zero when the compiled kernels are missing or any result disagrees with the oracle.
"""
import argparse
import sys
import time

import numpy as np

import fastnn
from fastnn import _runtime, reference


# NumPy's OpenBLAS keeps its worker threads spinning for a while after a threaded call (the
# oracles make such calls); on a machine with few cores they take the cores from fastnn's
# team, and a fastnn call timed then measures that contention (16 ms instead of 0.3 ms was
# seen on 2 cores). fastnn is timed only after this pause.
SETTLE_SECONDS = 0.2


def _best_time(fn, repeat):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _cases(rng, dtype):
    """(name, fastnn call, oracle call, reduction length) for each kernel on a few shapes."""
    def arr(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(dtype)

    cases = []
    for label, (n, c_in, c_out, hw, k, stride, pad, groups) in {
        "conv 3->8 16x16 k3": (1, 3, 8, 16, 3, 1, 1, 1),
        "conv 32->32 28x28 k3": (4, 32, 32, 28, 3, 1, 1, 1),
        "conv 64->128 28x28 k3 s2": (2, 64, 128, 28, 3, 2, 1, 1),
        "conv depthwise 64 28x28 k3": (2, 64, 64, 28, 3, 1, 1, 64),
    }.items():
        x = arr(n, c_in, hw, hw)
        w = arr(c_out, c_in // groups, k, k, scale=1 / np.sqrt(c_in // groups * k * k))
        b = arr(c_out)
        args = (stride, pad, 1, groups)
        y = reference.conv2d(x, w, b, *args)
        dy = arr(*y.shape)
        terms = c_in // groups * k * k
        cases.append((f"{label} forward", lambda x=x, w=w, b=b, a=args: fastnn.conv2d(x, w, b, *a),
                      lambda x=x, w=w, b=b, a=args: reference.conv2d(x, w, b, *a), terms))
        cases.append((f"{label} backward", lambda dy=dy, x=x, w=w, a=args: fastnn.conv2d_backward(dy, x, w, *a),
                      lambda dy=dy, x=x, w=w, a=args: reference.conv2d_backward(dy, x, w, *a),
                      max(terms, n * hw * hw)))
    for label, (t, n, i, h) in {"rnn T50 N32 I64 H128": (50, 32, 64, 128), "rnn T100 N1 I32 H64": (100, 1, 32, 64)}.items():
        x, h0 = arr(t, n, i), arr(n, h, scale=0.5)
        w_ih, w_hh = arr(h, i, scale=1 / np.sqrt(h)), arr(h, h, scale=1 / np.sqrt(h))
        b_ih, b_hh = arr(h, scale=0.1), arr(h, scale=0.1)
        hs = reference.rnn_forward(x, h0, w_ih, w_hh, b_ih, b_hh)
        g = arr(*hs.shape)
        cases.append((f"{label} forward", lambda a=(x, h0, w_ih, w_hh, b_ih, b_hh): fastnn.rnn_forward(*a),
                      lambda a=(x, h0, w_ih, w_hh, b_ih, b_hh): reference.rnn_forward(*a), i + h))
        cases.append((f"{label} backward", lambda a=(g, x, h0, hs, w_ih, w_hh): fastnn.rnn_backward(*a),
                      lambda a=(g, x, h0, hs, w_ih, w_hh): reference.rnn_backward(*a), t * n + h))
        cases.append((f"{label} step", lambda a=(x[0], h0, w_ih, w_hh, b_ih, b_hh): fastnn.rnn_step(*a),
                      lambda a=(x[0], h0, w_ih, w_hh, b_ih, b_hh): reference.rnn_step(*a), i + h))
    return cases


def _agree(got, want, dtype, terms):
    got = [got] if isinstance(got, np.ndarray) else list(got)
    want = [want] if isinstance(want, np.ndarray) else list(want)
    for a, b in zip(got, want):
        if a is None or b is None:
            if a is not b:
                return False
            continue
        scale = max(1.0, float(np.abs(b).max(initial=0)))
        tol = 8 * np.sqrt(terms) * np.finfo(dtype).eps * scale
        if a.shape != b.shape or a.dtype != np.dtype(dtype) or not np.allclose(a, b, rtol=0, atol=tol):
            return False
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastnn", description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed calls per kernel (best is shown)")
    args = parser.parse_args(argv)
    info = fastnn.show_config()
    print()
    if not info["compiled"]:
        print("FAIL: the compiled kernels are not loaded; only the NumPy reference is available")
        return 1
    rng = np.random.default_rng(0)
    failures = 0
    print(f"{'kernel':<44} {'dtype':<8} {'fastnn ms':>10} {'numpy ms':>10} {'speedup':>8}  result")
    for dtype in (np.float32, np.float64):
        for name, fast, slow, terms in _cases(rng, dtype):
            want = slow()
            time.sleep(SETTLE_SECONDS)
            got = fast()
            ok = _agree(got, want, dtype, terms)
            failures += not ok
            t_fast = _best_time(fast, args.repeat)
            t_slow = _best_time(slow, args.repeat)
            time.sleep(SETTLE_SECONDS)
            print(f"{name:<44} {np.dtype(dtype).name:<8} {t_fast * 1e3:>10.3f} {t_slow * 1e3:>10.3f} "
                  f"{t_slow / t_fast:>7.1f}x  {'ok' if ok else 'MISMATCH'}")
    print()
    print(f"threads: {_runtime.get_num_threads()}, CPU path: {_runtime.cpu_path()}")
    if failures:
        print(f"FAIL: {failures} kernel result(s) disagree with the NumPy oracle")
        return 1
    print("all compiled kernels agree with the NumPy oracle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
