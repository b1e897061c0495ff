"""Variable-length batches: what `lengths=` costs against the same batch without it.

For the RNN, LSTM and GRU kernels on the registry's `small` and `large` shapes, with lengths
spread evenly from T/2 to T (75% of the steps real, in a shuffled order: the registry's
`small_len` / `large_len` lengths), times the forward (`<family>_forward`) and the forward +
backward (`<family>_forward` then `<family>_backward`, grad_hs all ones) with and without
lengths, alternating round by round in this one process (each round the best of a few calls,
a pause before each turn, as bench/compare.py does). The ratio is the median of the per-round
ratios: with / without; issue 13 asks for at most 0.85. Beside it, the ratio of the best round
of each (steadier on a busy machine, where a round can lose half its speed to other work).
`--clock cpu` times with the process's CPU time instead of the wall clock: time spent
descheduled by other work on the machine does not count (at one thread; with more, spinning
OpenMP workers do). Run with fastnn installed:

    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824 \\
        python bench/lengths.py --threads 1,2 --rounds 7
"""
import argparse
import gc
import math
import statistics
import time

import numpy as np

import fastnn
from fastnn._cases._timing import SETTLE_SECONDS, Threads, calls_per_round
from fastnn._cases.rnn import LENGTH_SHAPES, SHAPES, spread_lengths

GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def calls(family, name, dtype=np.float32):
    """{direction: fn(lengths)} on the shape of the registry's length case `name`."""
    t, n, i, h = SHAPES[LENGTH_SHAPES[name]]
    rng = np.random.default_rng(0)
    g = GATES[family]
    bound = 1 / math.sqrt(h)
    x = rng.standard_normal((t, n, i)).astype(dtype)
    h0, c0 = ((rng.standard_normal((n, h)) * 0.5).astype(dtype) for _ in range(2))
    w = [rng.uniform(-bound, bound, s).astype(dtype) for s in ((g * h, i), (g * h, h), (g * h,), (g * h,))]
    ones = np.ones((t, n, h), dtype)

    def forward(lengths):
        if family == "rnn":
            return fastnn.rnn_forward(x, h0, *w, lengths=lengths)
        if family == "lstm":
            return fastnn.lstm_forward(x, h0, c0, *w, lengths=lengths)
        return fastnn.gru_forward(x, h0, *w, lengths=lengths)

    def forward_backward(lengths):
        if family == "rnn":
            hs = forward(lengths)
            return fastnn.rnn_backward(ones, x, h0, hs, w[0], w[1], lengths=lengths)
        if family == "lstm":
            hs, cs = forward(lengths)
            return fastnn.lstm_backward(ones, x, h0, c0, hs, cs, *w, lengths=lengths)
        return fastnn.gru_backward(ones, x, h0, forward(lengths), *w, lengths=lengths)

    return {"fwd": forward, "fwdbwd": forward_backward}


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def best_of(fn, calls, clock=time.perf_counter):
    """The fastest of `calls` calls of fn, in seconds of `clock`."""
    best = math.inf
    for _ in range(calls):
        t0 = clock()
        fn()
        best = min(best, clock() - t0)
    return best


def ratio(fn, lengths, rounds, clock=time.perf_counter):
    """(median ms without, median ms with, median of the per-round ratios with / without, their
    range, best with / best without)."""
    pair = {"without": lambda: fn(None), "with": lambda: fn(lengths)}
    per_round = {k: calls_per_round(best_of(f, 1), 0.05, 3) for k, f in pair.items()}
    times = {k: [] for k in pair}
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for r in range(rounds):
            for k in (("without", "with") if r % 2 == 0 else ("with", "without")):
                time.sleep(SETTLE_SECONDS)
                times[k].append(best_of(pair[k], per_round[k], clock))
    finally:
        if gc_was:
            gc.enable()
    ratios = [w / o for w, o in zip(times["with"], times["without"])]
    return (statistics.median(times["without"]) * 1e3, statistics.median(times["with"]) * 1e3,
            statistics.median(ratios), (min(ratios), max(ratios)), min(times["with"]) / min(times["without"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="1", help="comma-separated thread counts (default 1)")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (default 7)")
    parser.add_argument("--families", default="rnn,lstm,gru")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall (default) or cpu: the process's CPU time")
    args = parser.parse_args()
    print(f"{args.clock} clock, {args.rounds} alternating rounds\n")
    print("| threads | case | family | dir | without ms | with ms | with / without | range | best / best |")
    print("|---|---|---|---|---|---|---|---|---|")
    for threads in (int(v) for v in args.threads.split(",")):
        with Threads(threads):
            for name in LENGTH_SHAPES:
                t, n, _, _ = SHAPES[LENGTH_SHAPES[name]]
                for family in args.families.split(","):
                    lengths = list(spread_lengths(t, n, family, name))
                    for direction, fn in calls(family, name).items():
                        without, with_, med, (lo, hi), best = ratio(fn, lengths, args.rounds, CLOCKS[args.clock])
                        print(f"| {threads} | {name} | {family} | {direction} | {without:.3f} | {with_:.3f} | "
                              f"{med:.3f} | {lo:.2f}-{hi:.2f} | {best:.3f} |", flush=True)


if __name__ == "__main__":
    main()
