"""Timing registered cases side by side: thread counts held for every library, implementations
alternating round by round (see shared/BUILD-NOTES.md, "Measuring speed").

threadpoolctl and torch are optional: without threadpoolctl OpenBLAS keeps its own thread
count; without torch there is no torch implementation to hold.
"""
import gc
import math
import time

import fastnn
from fastnn._cases._case import IMPLS, torch_module

# Pause before each implementation's turn. fastnn, PyTorch (its own bundled libgomp) and
# OpenBLAS each keep worker threads that spin for a while after a parallel call; on a 2-core
# machine the previous library's spinning workers would steal the cores from the next one's
# team. After this pause they are all asleep, so each library is timed as if it were alone.
SETTLE_SECONDS = 0.1


class Threads:
    """Set every library's thread count to n (fastnn, torch, OpenBLAS and OpenMP via threadpoolctl)."""

    def __init__(self, n):
        self.n = n
        self._limits = None

    def __enter__(self):
        try:
            import threadpoolctl
        except ImportError:
            threadpoolctl = None
        if threadpoolctl is not None:
            self._limits = threadpoolctl.threadpool_limits(limits=self.n)
        fastnn.set_num_threads(self.n)
        torch = torch_module()
        if torch is not None:
            torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc):
        if self._limits is not None:
            self._limits.restore_original_limits()
        fastnn.set_num_threads(None)


def best_of(fn, calls):
    """The fastest of `calls` calls of fn, in seconds."""
    best = math.inf
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def calls_per_round(seconds, target, min_calls):
    """Enough calls to fill `target` seconds, at least min_calls (fewer for calls over 0.1 s)."""
    if seconds > 0.3:
        min_calls = 1
    elif seconds > 0.1:
        min_calls = min(min_calls, 2)
    return int(min(1000, max(min_calls, math.ceil(target / max(seconds, 1e-7)))))


def time_alternating(impls, rounds, target=0.05, min_calls=3, settle=SETTLE_SECONDS):
    """({impl: [best seconds of each round]}, {impl: calls per round}), the implementations
    alternating round by round, `settle` seconds of pause before each one's turn."""
    order = [k for k in IMPLS if k in impls]
    calls = {}
    for k in order:  # warm-up call, which also sizes the rounds
        calls[k] = calls_per_round(best_of(impls[k], 1), target, min_calls)
    times = {k: [] for k in order}
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            for k in order:
                if len(order) > 1 and settle > 0:
                    time.sleep(settle)
                times[k].append(best_of(impls[k], calls[k]))
    finally:
        if gc_was:
            gc.enable()
    return times, calls
