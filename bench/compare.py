"""Headline speed tables: fastnn against its NumPy reference and PyTorch, side by side.

Every case is timed in this one process, the implementations alternating round by round
(fastnn, torch, NumPy, fastnn, torch, NumPy, ...; each round is the best of a few calls), and
each speed ratio is the median of the per-round ratios. Before a case is timed, every
implementation's result is checked against the float64 reference (fastnn.reference run on the
same inputs in float64) within a tolerance scaled by the reduction length; a case that fails
the check gets no ratio.

Run with fastnn installed (`pip install -e .` from the repository root, or a wheel):

    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824 \
        python bench/compare.py --suite all --threads 1,2

or let the script run itself under both allocator settings (`--allocator both`). See
bench/README.md for what the columns mean. PyTorch is optional: without it the torch columns
are empty. The cases are the registry's `bench` cases (fastnn._cases), the same ones the
pytest-benchmark files beside this script run.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import fastnn
from fastnn import _cases
from fastnn._cases._case import IMPLS, TOL_FACTOR
from fastnn._cases._timing import SETTLE_SECONDS, Threads, time_alternating
from fastnn._report import geomean, machine_info

TUNED_MALLOC = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824"


def suite_label(family, dtype):
    """A table's group: the family, and the dtype when it is not float32 ("conv2d float64")."""
    return family if np.dtype(dtype) == np.float32 else f"{family} {np.dtype(dtype).name}"


def build_cases(families, patterns=None):
    """(case, dtype) for every registered bench case of these families, in each of its dtypes."""
    return [(case, dtype) for case in _cases.select(tags="bench", family=families, patterns=patterns)
            for dtype in case.dtypes]


# ---- timing ---------------------------------------------------------------------------------

def gemm_rate(rounds, n=2048, dtype=np.float32):
    """The machine's GEMM rate at the current thread count: NumPy matmul on n x n, GFLOP/s."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n)).astype(dtype), rng.standard_normal((n, n)).astype(dtype)
    c = np.empty((n, n), dtype)
    times, _ = time_alternating({"numpy": lambda: np.matmul(a, b, out=c)}, rounds, target=0.3, min_calls=2)
    return 2 * n**3 / statistics.median(times["numpy"]) / 1e9


def run_case(case, dtype, threads, rounds, quick, peak, impls=IMPLS):
    row = {"suite": suite_label(case.family, dtype), "case": case.name, "direction": case.direction,
           "dtype": np.dtype(dtype).name, "shape": case.shape, "threads": threads,
           "gflop": case.flops / 1e9}
    inst = case.instance(dtype)
    inst.setup()
    try:
        try:
            worst = inst.check(only=impls)
        except Exception as exc:  # report the case and go on with the others
            row.update(agree=False, check={}, error=f"{type(exc).__name__}: {exc}")
            return row
        row["check"] = worst
        bad = {k: v for k, v in worst.items() if not v <= 1.0}
        if bad:
            row["agree"] = False
            return row
        row["agree"] = True
        chosen = {k: fn for k, fn in inst.impls.items() if k in impls}
        times, calls = time_alternating(chosen, rounds, target=0.01 if quick else 0.05,
                                        min_calls=1 if quick else 3)
    finally:
        inst.teardown()
    row["calls_per_round"] = calls
    for k, ts in times.items():
        med = statistics.median(ts)
        row[f"{k}_ms"] = med * 1e3
        row[f"{k}_gflops"] = case.flops / med / 1e9
        if k != "fastnn":
            ratios = [t / f for t, f in zip(ts, times["fastnn"])]
            row[f"{k}/fastnn"] = statistics.median(ratios)
            row[f"{k}/fastnn_range"] = [min(ratios), max(ratios)]
    row["share"] = row["fastnn_gflops"] / peak[row["dtype"]]
    return row


# ---- output ---------------------------------------------------------------------------------

def _fmt(v, spec):
    return "" if v is None else format(v, spec)


def markdown(rows, meta):
    out = []
    for threads in meta["threads"]:
        sub = [r for r in rows if r["threads"] == threads]
        if not sub:
            continue
        peak = meta["fma_peak"][str(threads)]
        out.append(f"\n### {threads} thread{'s' if threads > 1 else ''} "
                   f"(FMA peak, fastnn.fma_peak on {meta['cpu_path']}: {peak['float32']:.1f} GFLOP/s float32, "
                   f"{peak['float64']:.1f} float64; NumPy matmul 2048^3 float32: "
                   f"{meta['gemm_rate'][str(threads)]:.1f})\n")
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
        labels = list(dict.fromkeys(r["suite"] for r in sub))
        groups = [(s, [r for r in sub if r["suite"] == s and r["agree"]]) for s in labels]
        groups.append(("all", [r for r in sub if r["agree"]]))
        for label, rs in groups:
            if not rs:
                continue
            out.append(f"| {label} | {len(rs)} | {_fmt(geomean([r.get('torch/fastnn') for r in rs]), '.2f')} | "
                       f"{_fmt(geomean([r.get('numpy/fastnn') for r in rs]), '.2f')} |")
    return "\n".join(out)


def machine_meta(args):
    meta = machine_info()  # the same machine facts python -m fastnn records
    meta.update({
        "fastnn_cpu_path": meta["cpu_path"], "fastnn_compiled": meta["compiled"],
        "GLIBC_TUNABLES": os.environ.get("GLIBC_TUNABLES"),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
        "rounds": args.rounds, "quick": args.quick, "threads": args.threads,
        "tolerance": f"{TOL_FACTOR:g} * sqrt(K) * eps * magnitude",
    })
    return meta


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
    families = None if "all" in args.suite else tuple(args.suite)
    patterns = args.cases.split(",") if args.cases else None
    cases = build_cases(families, patterns)
    meta = machine_meta(args)
    meta["gemm_rate"], meta["fma_peak"] = {}, {}
    print(header(meta), flush=True)
    rows = []
    for threads in args.threads:
        with Threads(threads):
            # the peak first: NumPy's spinning OpenBLAS workers would take cores from it
            peak = {d: fastnn.fma_peak(threads, d) for d in ("float32", "float64")}
            meta["fma_peak"][str(threads)] = peak
            meta["gemm_rate"][str(threads)] = gemm_rate(args.rounds)
            time.sleep(SETTLE_SECONDS)
            print(f"\n[{threads} thread(s)] FMA peak {peak['float32']:.1f} GFLOP/s float32, "
                  f"{peak['float64']:.1f} float64; NumPy GEMM rate {meta['gemm_rate'][str(threads)]:.1f}",
                  file=sys.stderr, flush=True)
            for case, dtype in cases:
                if case.threads is not None and threads not in case.threads:
                    continue
                t0 = time.perf_counter()
                row = run_case(case, dtype, threads, args.rounds, args.quick, peak, args.impls)
                rows.append(row)
                print(f"  {case.key} {np.dtype(dtype).name}: "
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
    p.add_argument("--suite", default="all", type=lambda s: s.split(","),
                   help=f"families of the case registry ({', '.join(_cases.families())}) or all; "
                   "comma-separated (default all). A family's cases run in every dtype they are "
                   "registered for")
    p.add_argument("--impls", default=",".join(IMPLS), type=lambda s: tuple(s.split(",")),
                   help="comma-separated implementations to check and time (default all: "
                   "fastnn,torch,numpy); leaving numpy out skips the slow reference")
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
    if not set(args.impls) <= set(IMPLS) or "fastnn" not in args.impls:
        p.error(f"--impls must include fastnn and be among {', '.join(IMPLS)}")
    for s in args.suite:
        if s not in _cases.families() + ("all",):
            p.error(f"unknown suite {s!r}: choose from {', '.join(_cases.families() + ('all',))}")
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
