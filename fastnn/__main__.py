"""`python -m fastnn`: check every compiled kernel against its NumPy oracle and time both.

The cases are the case registry's `quick` ones (fastnn._cases), in float32 and float64: each
compiled result is compared with the NumPy reference run in float64 on the same inputs.

Exits non-zero when the compiled kernels are missing or any result disagrees with the oracle.
"""
import argparse
import sys
import time

import numpy as np

import fastnn
from fastnn import _cases, _runtime
from fastnn._cases._timing import best_of

# Every quick case is checked and timed in both dtypes: the registry benchmarks most of them in
# float32 alone, but each compiled kernel has a float64 path to check too.
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


# NumPy's OpenBLAS keeps its worker threads spinning for a while after a threaded call (the
# oracles make such calls); on a machine with few cores they take the cores from fastnn's
# team, and a fastnn call timed then measures that contention (16 ms instead of 0.3 ms was
# seen on 2 cores). fastnn is timed only after this pause.
SETTLE_SECONDS = 0.2


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastnn", description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed calls per kernel (best is shown)")
    args = parser.parse_args(argv)
    info = fastnn.show_config()
    print()
    if not info["compiled"]:
        print("FAIL: the compiled kernels are not loaded; only the NumPy reference is available")
        return 1
    failures = 0
    print(f"{'case':<60} {'dtype':<8} {'fastnn ms':>10} {'numpy ms':>10} {'speedup':>8}  result")
    for dtype in DTYPES:
        for case in _cases.select(tags="quick"):
            inst = case.instance(dtype)
            fast, slow = inst.impl("fastnn"), inst.impl("numpy")
            inst.truth()
            time.sleep(SETTLE_SECONDS)
            ok = inst.check(only=("fastnn",))["fastnn"] <= 1.0
            failures += not ok
            t_fast = best_of(fast, args.repeat)
            t_slow = best_of(slow, args.repeat)
            time.sleep(SETTLE_SECONDS)
            name = f"{case.key} ({case.shape})"
            print(f"{name:<60} {dtype.name:<8} {t_fast * 1e3:>10.3f} {t_slow * 1e3:>10.3f} "
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
