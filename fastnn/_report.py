"""`python -m fastnn`: is fastnn right, and how fast is it here, against NumPy and PyTorch?

1. Correctness first: every compiled kernel's `quick` cases from the case registry
   (fastnn._cases), in float32 and float64, against the float64 NumPy oracle.
2. Speed: the registry's `suite` cases (`quick` ones with --quick) of every registered family,
   at each thread count asked for: fastnn and PyTorch (when installed) timed alternating
   round by round, the NumPy reference after them (bounded: a slow call is timed once);
   GFLOP/s as a share of this machine's FMA peak (fastnn.fma_peak, same path, same threads);
   each timed result checked against the float64 oracle again.
3. One table (stdout), optionally JSON (--json) and a chart (--plot, needs matplotlib).

Exit status: 0 when every fastnn result agrees with its oracle, 1 when one does not (or the
compiled kernels are missing), 2 for bad arguments or a missing optional package.
"""
import argparse
import datetime
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import textwrap
import time

import numpy as np

import fastnn
from fastnn import _cases, _runtime
from fastnn._cases._case import TOL_FACTOR, torch_module
from fastnn._cases._timing import SETTLE_SECONDS, Threads, best_of, time_alternating

DISTRIBUTION = _runtime.DISTRIBUTION
# The correctness pass checks every quick case in both dtypes: the registry benchmarks most
# cases in float32 alone, but each compiled kernel has a float64 path to check too.
CHECK_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class Budget:
    """How long each case may take: the full report runs in minutes, --quick in seconds."""

    def __init__(self, quick):
        self.rounds = 3
        # seconds of calls per implementation per round (at least one call)
        self.target = 0.005 if quick else 0.02
        # pause before each implementation's turn inside the rounds: fastnn's and PyTorch's
        # OpenMP workers spin for about a millisecond after a parallel call; OpenBLAS's (the
        # NumPy reference) for up to a tenth of a second, so NumPy runs after the rounds,
        # followed by a full SETTLE_SECONDS.
        self.settle = 0.01
        # NumPy reference: calls within this many seconds, the best one counts; a call
        # longer than half of it is timed once.
        self.numpy_seconds = 0.1 if quick else 0.3
        self.numpy_max_calls = 5
        # FMA peak: runs of this many seconds, the best counts
        self.peak_seconds = 0.05
        self.peak_repeats = 3 if quick else 5


# ---- the machine -----------------------------------------------------------------------------

def cpu_model_and_flags():
    """(CPU model name, its feature flags) as the operating system reports them."""
    model, flags = None, []
    try:
        with open("/proc/cpuinfo") as f:
            info = [line.partition(":") for line in f]
    except OSError:
        info = None
    if info is not None:  # Linux: "model name" and "flags" (x86), "Features" (arm64)
        fields = {}
        for key, _, value in info:
            fields.setdefault(key.strip(), value.strip())
        model = fields.get("model name") or fields.get("Model") or fields.get("Hardware")
        flags = (fields.get("flags") or fields.get("Features") or "").split()
    elif sys.platform == "darwin":
        def sysctl(name):
            try:
                return subprocess.run(["sysctl", "-n", name], capture_output=True, text=True,
                                      timeout=5).stdout.strip()
            except (OSError, subprocess.SubprocessError):
                return ""
        model = sysctl("machdep.cpu.brand_string")
        flags = (sysctl("machdep.cpu.features") + " " + sysctl("machdep.cpu.leaf7_features")).lower().split()
    return model or platform.processor() or platform.machine(), flags


def machine_info():
    """The machine and the software: what a figure from this run depends on."""
    model, flags = cpu_model_and_flags()
    cfg = _runtime.show_config(print_out=False)
    torch = torch_module()
    blas = []
    try:
        import threadpoolctl
    except ImportError:
        threadpoolctl = None
    if threadpoolctl is not None:
        blas = [f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')})"
                for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
    return {
        "cpu": model, "cpu_flags": flags, "cores": os.cpu_count(),
        "platform": platform.platform(), "python": platform.python_version(),
        "fastnn": fastnn.__version__, "numpy": np.__version__,
        "torch": torch.__version__ if torch is not None else None, "blas": blas,
        "compiled": cfg["compiled"], "openmp": cfg["openmp"],
        "cpu_path": cfg["cpu_path"], "cpu_best": cfg["cpu_best"], "gemm_kernels": cfg["gemm_kernels"],
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "FASTNN_CPU", "OPENBLAS_CORETYPE",
                                              "GLIBC_TUNABLES") if os.environ.get(k) is not None},
    }


# ---- the two passes --------------------------------------------------------------------------

def check_pass(progress, family=None, patterns=None):
    """Every quick case (of these families, matching these patterns), both dtypes, fastnn
    against the float64 oracle: [row]."""
    rows = []
    cases = [(case, dtype) for case in _cases.select(tags="quick", family=family, patterns=patterns)
             for dtype in CHECK_DTYPES]
    progress.start("checking", len(cases))
    for case, dtype in cases:
        row = {"case": case.key, "dtype": dtype.name}
        try:
            inst = case.instance(dtype)
            inst.setup()
            try:
                row["error"] = inst.check(only=("fastnn",))["fastnn"]
            finally:
                inst.teardown()
            row["agree"] = row["error"] <= 1.0
        except Exception as exc:  # a crash is a disagreement: report it and go on
            row.update(error=None, agree=False, exception=f"{type(exc).__name__}: {exc}")
        rows.append(row)
        progress.done(f"{case.key} {dtype.name}",
                      "ok" if row["agree"] else f"DISAGREES ({row.get('exception') or row['error']})")
    progress.close()
    return rows


def measure_peaks(thread_counts, budget):
    """{threads: {dtype: GFLOP/s}} of the FMA peak on the active path."""
    return {str(threads): {d: fastnn.fma_peak(threads, d, seconds=budget.peak_seconds,
                                              repeats=budget.peak_repeats)
                           for d in _runtime.PEAK_DTYPES}
            for threads in thread_counts}


def busy_machine_lines(peaks):
    """A warning when the peak at n threads is well below n times the 1-thread peak: other
    work held some of the cores, and every share of peak at that count is overstated."""
    one = peaks["1"]["float32"]
    lines = []
    for threads, by_dtype in peaks.items():
        n = int(threads)
        if 1 < n <= (os.cpu_count() or n) and by_dtype["float32"] < 0.75 * n * one:
            lines.append(f"WARNING: the FMA peak at {n} threads ({by_dtype['float32']:.1f} GFLOP/s) is "
                         f"below {n} x the 1-thread peak ({one:.1f}): other programs were using the "
                         f"cores, so the {n}-thread times are slow and their shares of peak overstated")
    return lines


def numpy_time(fn, budget):
    """(best seconds, calls) of the NumPy reference within the budget; one call if it is slow."""
    times = [best_of(fn, 1)]
    while (times[0] <= budget.numpy_seconds / 2 and sum(times) < budget.numpy_seconds
           and len(times) < budget.numpy_max_calls):
        times.append(best_of(fn, 1))
    return min(times), len(times)


def time_case(case, dtype, thread_counts, peaks, budget):
    """One case at each thread count: [row], each with its times, rates and agreement."""
    rows = []
    t0 = time.perf_counter()
    inst = case.instance(dtype)
    inst.setup()
    try:
        try:
            inst.truth()  # once for every thread count (the float64 reference: the slow part)
        except Exception:  # noqa: BLE001 - raised again, and reported, by the check below
            pass
        truth_s = time.perf_counter() - t0
        for threads in thread_counts:
            t_row = time.perf_counter()
            row = {"case": case.key, "family": case.family, "name": case.name,
                   "direction": case.direction, "shape": case.shape, "dtype": dtype.name,
                   "threads": threads, "flops": case.flops, "truth_s": truth_s}
            rows.append(row)
            if case.threads is not None and threads not in case.threads:
                row.update(skipped=f"runs at {case.threads} thread(s) only", agree=True)
                continue
            with Threads(threads):
                try:
                    worst = inst.check(only=("fastnn", "torch"))
                except Exception as exc:
                    row.update(agree=False, exception=f"{type(exc).__name__}: {exc}")
                    continue
                row["error"] = worst
                row["agree"] = worst["fastnn"] <= 1.0
                row["torch_agree"] = worst["torch"] <= 1.0 if "torch" in worst else None
                if not row["agree"]:
                    continue
                impls = {k: fn for k, fn in inst.impls.items()
                         if k == "fastnn" or (k == "torch" and row["torch_agree"])}
                times, calls = time_alternating(impls, budget.rounds, target=budget.target,
                                                min_calls=1, settle=budget.settle)
                time.sleep(SETTLE_SECONDS)
                row["numpy_s"], row["numpy_calls"] = numpy_time(inst.impls["numpy"], budget)
                time.sleep(SETTLE_SECONDS)
            row["wall_s"] = time.perf_counter() - t_row
            fast = times["fastnn"]
            row["fastnn_s"] = statistics.median(fast)
            row["fastnn_rounds_s"] = fast
            row["calls_per_round"] = calls
            row["gflops"] = case.flops / row["fastnn_s"] / 1e9
            row["peak_gflops"] = peaks[str(threads)][dtype.name]  # final after the second measurement
            row["share"] = row["gflops"] / row["peak_gflops"]
            row["speedup_numpy"] = row["numpy_s"] / row["fastnn_s"]
            if "torch" in times:
                row["torch_s"] = statistics.median(times["torch"])
                row["torch_rounds_s"] = times["torch"]
                # the median of the per-round ratios: each round's two times are neighbours
                row["speedup_torch"] = statistics.median(t / f for t, f in zip(times["torch"], fast))
    finally:
        inst.teardown()
    return rows


# ---- output ----------------------------------------------------------------------------------

def geomean(values):
    values = [v for v in values if v is not None and v > 0]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else None


def _x(v):
    return "" if v is None else f"{v:.2f}x"


def table_lines(rows, markdown=False):
    """The report's table: one line per case and thread count."""
    head = ["case", "dtype", "threads", "fastnn ms", "GFLOP/s", "share of peak",
            "vs NumPy", "vs PyTorch", "agreement"]
    body = []
    for r in rows:
        if r.get("skipped"):
            continue
        if not r["agree"]:
            why = r.get("exception") or f"DISAGREES: {r['error']['fastnn']:.3g} x tolerance"
            body.append([r["case"], r["dtype"], str(r["threads"]), "", "", "", "", "", why])
            continue
        numpy = _x(r["speedup_numpy"]) + ("*" if r["numpy_calls"] == 1 else "")
        torch = _x(r.get("speedup_torch"))
        if r.get("torch_agree") is False:
            torch = f"(torch disagrees: {r['error']['torch']:.3g})"
        body.append([r["case"], r["dtype"], str(r["threads"]), f"{r['fastnn_s'] * 1e3:.3f}",
                     f"{r['gflops']:.1f}", f"{r['share']:.0%}", numpy, torch,
                     f"ok ({r['error']['fastnn']:.2f})"])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if i < 3 else "--:" for i in range(len(head))) + "|"]
        lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in body]
        return lines
    widths = [max(len(h), *(len(row[i]) for row in body)) if body else len(h) for i, h in enumerate(head)]
    fmt = lambda cells: "  ".join(c.ljust(w) if i in (0, 1, 8) else c.rjust(w)
                                  for i, (c, w) in enumerate(zip(cells, widths)))
    return [fmt(head), fmt(["-" * w for w in widths])] + [fmt(row) for row in body]


def summary_lines(rows, thread_counts, markdown=False):
    """Per thread count and family: cases, the median share of peak, and the geometric means
    of the speedups (with the range against PyTorch)."""
    head = ["threads", "family", "cases", "share of peak (median, max)", "vs NumPy (geomean)",
            "vs PyTorch (geomean, range)"]
    body = []
    for threads in thread_counts:
        ok = [r for r in rows if r["threads"] == threads and r["agree"] and not r.get("skipped")]
        for family in dict.fromkeys(r["family"] for r in ok):
            sub = [r for r in ok if r["family"] == family]
            shares = [r["share"] for r in sub]
            torch = [r["speedup_torch"] for r in sub if r.get("speedup_torch")]
            body.append([str(threads), family, str(len(sub)),
                         f"{statistics.median(shares):.0%}, {max(shares):.0%}",
                         _x(geomean([r["speedup_numpy"] for r in sub])),
                         f"{_x(geomean(torch))} ({min(torch):.2f}-{max(torch):.2f}x, {len(torch)} case{'s' * (len(torch) > 1)})"
                         if torch else "-"])
    if markdown:
        return (["| " + " | ".join(head) + " |", "|---|---|--:|--:|--:|--:|"]
                + ["| " + " | ".join(row) + " |" for row in body])
    widths = [max(len(h), *(len(row[i]) for row in body)) if body else len(h) for i, h in enumerate(head)]
    return ["  " + "  ".join(c.ljust(w) if i == 1 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
            for cells in [head] + body]


def write_plot(path, report):
    """The speedups as a chart: per case a bar against PyTorch and one against NumPy, drawn
    from 1x (level) to the right when fastnn is faster and to the left when it is slower, on a
    log scale; one panel per thread count."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator

    meta = report["meta"]
    rows = [r for r in report["rows"] if r["agree"] and not r.get("skipped")]
    thread_counts = list(dict.fromkeys(r["threads"] for r in rows)) or [1]

    def label(r):
        return r["case"] if r["dtype"] == "float32" else f"{r['case']} {r['dtype']}"

    labels = list(dict.fromkeys(label(r) for r in rows))
    values = [v for r in rows for v in (r.get("speedup_torch"), r.get("speedup_numpy")) if v]
    lo, hi = min(values + [0.5]), max(values + [2.0])
    fig, axes = plt.subplots(1, len(thread_counts), figsize=(5.6 * len(thread_counts) + 1.2, 0.25 * len(labels) + 2.6),
                             sharey=True, squeeze=False)
    y = np.arange(len(labels))
    series = ((-0.2, "speedup_torch", f"vs PyTorch {meta['torch'] or ''}".strip(), "#d62728"),
              (0.2, "speedup_numpy", "vs fastnn's NumPy reference", "#9e9e9e"))
    for ax, threads in zip(axes[0], thread_counts):
        by_label = {label(r): r for r in rows if r["threads"] == threads}
        for offset, key, name, color in series:
            v = np.array([by_label.get(lab, {}).get(key) or np.nan for lab in labels], float)
            ax.barh(y + offset, v - 1, left=1, height=0.38, color=color, label=name)
            for yi, vi in zip(y + offset, v):
                if np.isfinite(vi):
                    ax.text(vi * (1.06 if vi >= 1 else 1 / 1.06), yi, f"{vi:.2g}x", va="center",
                            ha="left" if vi >= 1 else "right", fontsize=5.5, color="#333333")
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_xlim(lo / 1.8, hi * 1.8)
        # 1x, 3x, 10x ... while they fit; over a wide range (a busy machine) the 3s would overlap
        decades = math.log10(hi / lo) + 0.5
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 3.0) if decades <= 4 else (1.0,)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        peak = meta["peak"]["gflops"].get(str(threads), {}).get("float32")
        ax.set_title(f"{threads} thread{'s' if threads > 1 else ''}"
                     + (f" (float32 FMA peak {peak:.0f} GFLOP/s)" if peak else ""), fontsize=9)
        ax.set_xlabel("fastnn's speedup: their time / fastnn's time (right of 1x: fastnn is faster)", fontsize=7.5)
        ax.grid(axis="x", which="major", alpha=0.3)
        ax.tick_params(axis="x", labelsize=7)
    axes[0][0].set_yticks(y, labels, fontsize=7)
    axes[0][0].set_ylim(len(labels) - 0.5, -0.5)
    handles, names = axes[0][0].get_legend_handles_labels()
    # a row of its own above the footer, where a long (wrapped) title cannot run into it
    inch = 1.0 / fig.get_figheight()
    fig.legend(handles, names, loc="lower right", bbox_to_anchor=(1, 0.2 * inch), fontsize=8, ncol=2, frameon=False)
    title = (f"fastnn {meta['fastnn']}, {meta['mode']} cases, on {meta['cpu']} ({meta['cores']} cores, "
             f"path {meta['cpu_path']}); NumPy {meta['numpy']}, Python {meta['python']}")
    # about 15 characters of 9-point text per inch of figure width
    fig.suptitle(textwrap.fill(title, int(15 * fig.get_figwidth())), fontsize=9, x=0.01, ha="left")
    fig.text(0.01, 0.06 * inch, f"{meta['command']}   ({meta['date']})", fontsize=6.5, family="monospace")
    fig.tight_layout(rect=(0, 0.5 * inch, 1, 1 - 0.4 * inch))
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---- progress --------------------------------------------------------------------------------

class Progress:
    """A bar (tqdm, from the `report` extra) on a terminal; one plain line per case otherwise."""

    def __init__(self, stream=None, bar=None):
        self.stream = stream or sys.stderr
        self.use_bar = bar if bar is not None else self.stream.isatty()
        self._tqdm = None
        if self.use_bar:
            try:
                from tqdm import tqdm
            except ImportError:
                self.use_bar = False
            else:
                self._tqdm = tqdm
        self.bar = None
        self.count = self.total = 0
        self.t0 = time.perf_counter()

    def start(self, what, total):
        self.what, self.count, self.total, self.t0 = what, 0, total, time.perf_counter()
        if self.use_bar:
            self.bar = self._tqdm(total=total, desc=what, file=self.stream, leave=False,
                                  dynamic_ncols=True)

    def done(self, label, result):
        self.count += 1
        if self.bar is not None:
            self.bar.set_postfix_str(label, refresh=False)
            self.bar.update(1)
        else:
            print(f"  {self.what} [{self.count:3d}/{self.total}] {label}: {result} "
                  f"({time.perf_counter() - self.t0:.1f} s)", file=self.stream, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def row_summary(r):
    if r.get("skipped"):
        return "skipped (" + r["skipped"] + ")"
    if not r["agree"]:
        return "DISAGREES " + (r.get("exception") or f"{r['error']['fastnn']:.3g} x tolerance")
    torch = f", {r['speedup_torch']:.2f}x PyTorch" if r.get("speedup_torch") else ""
    return (f"{r['fastnn_s'] * 1e3:.3f} ms, {r['gflops']:.1f} GFLOP/s ({r['share']:.0%} of peak), "
            f"{r['speedup_numpy']:.1f}x NumPy{torch}")


# ---- main ------------------------------------------------------------------------------------

def thread_list(text):
    try:
        counts = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--threads takes comma-separated ints, got {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"--threads takes ints >= 1, got {text!r}")
    return list(dict.fromkeys(counts))


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m fastnn", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--quick", action="store_true",
                   help="the registry's quick cases, in seconds (default: its suite cases, in minutes)")
    p.add_argument("--threads", type=thread_list, default=None, metavar="N[,N...]",
                   help=f"thread counts to time at, e.g. 1,{os.cpu_count()} (default: fastnn's, "
                   f"now {_runtime.get_num_threads()})")
    p.add_argument("--cases", default=None, metavar="GLOB[,GLOB...]",
                   help="check and time only these cases (globs against NAME or FAMILY/NAME/DIRECTION)")
    p.add_argument("--family", default=None, metavar="NAME[,NAME...]",
                   help=f"check and time only these families ({', '.join(_cases.families())})")
    p.add_argument("--json", default=None, metavar="FILE",
                   help="write every figure and the machine (CPU, flags, path, peak, versions) as JSON")
    p.add_argument("--plot", default=None, metavar="FILE.png",
                   help=f"draw the speedups as a chart (needs matplotlib: pip install '{DISTRIBUTION}[plot]')")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--no-progress-bar", action="store_true",
                   help="one plain line per case on stderr even on a terminal")
    args = p.parse_args(argv)
    if args.family is not None:
        args.family = args.family.split(",")
        unknown = set(args.family) - set(_cases.families())
        if unknown:
            p.error(f"--family: unknown {sorted(unknown)}; choose from {', '.join(_cases.families())}")
    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print(f"python -m fastnn: --plot needs matplotlib, which is not installed: "
                  f"pip install '{DISTRIBUTION}[plot]' (or: pip install matplotlib)", file=sys.stderr)
            raise SystemExit(2)
    return args


def run(args, argv, out=sys.stdout):
    t_start = time.perf_counter()
    budget = Budget(args.quick)
    meta = machine_info()
    meta.update(command="python -m fastnn " + " ".join(shlex.quote(a) for a in argv),
                mode="quick" if args.quick else "suite",
                date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                tolerance=f"{TOL_FACTOR:g} * sqrt(K) * eps * magnitude")
    print(f"fastnn {meta['fastnn']}: compiled {meta['compiled']}, OpenMP {meta['openmp']}, "
          f"CPU path {meta['cpu_path']} (best {meta['cpu_best']}); {meta['cpu']}, {meta['cores']} cores", file=out)
    print(f"NumPy {meta['numpy']}, PyTorch {meta['torch'] or 'not installed'}, Python {meta['python']}",
          file=out, flush=True)
    if not meta["compiled"]:
        print(f"FAIL: the compiled kernels are not loaded ({_runtime.LOAD_ERROR}); "
              "only the NumPy reference is available", file=out)
        return 1
    progress = Progress(bar=False if args.no_progress_bar else None)
    thread_counts = args.threads or [_runtime.get_num_threads()]
    # Measured before anything else runs (NumPy's and PyTorch's spinning worker threads would
    # take cores from it) and again at the end; the higher figure counts.
    # 1 thread too: the yardstick of the busy-machine check below
    peak_threads = sorted(set(thread_counts) | {1})
    peaks = measure_peaks(peak_threads, budget)

    patterns = args.cases.split(",") if args.cases else None
    checks = check_pass(progress, args.family, patterns)
    bad_checks = [c for c in checks if not c["agree"]]
    print(f"\ncorrectness: {len(checks) - len(bad_checks)} of {len(checks)} kernel results "
          f"({'the selected' if patterns or args.family else 'every'} quick case, float32 and float64) "
          "agree with the float64 NumPy oracle", file=out)
    for c in bad_checks:
        print(f"  DISAGREES: {c['case']} {c['dtype']}: "
              f"{c.get('exception') or format(c['error'], '.3g') + ' x tolerance'}", file=out)

    meta["peak"] = {"isa": meta["cpu_path"], "gflops": peaks,
                    "how": "fastnn.fma_peak: register-only multiply-add chains, the best of "
                           f"{budget.peak_repeats} runs of {budget.peak_seconds} s before the "
                           "cases and as many after"}
    meta["threads"] = thread_counts
    meta["budget"] = {k: v for k, v in vars(budget).items()}

    cases = [(case, dtype)
             for case in _cases.select(tags="quick" if args.quick else "suite", family=args.family,
                                       patterns=patterns)
             for dtype in case.dtypes]
    rows = []
    progress.start("timing", len(cases) * len(thread_counts))
    for case, dtype in cases:
        for row in time_case(case, dtype, thread_counts, peaks, budget):
            rows.append(row)
            progress.done(f"{row['case']} {row['dtype']} t{row['threads']}", row_summary(row))
    progress.close()
    rows.sort(key=lambda r: thread_counts.index(r["threads"]))  # stable: registry order per count
    time.sleep(SETTLE_SECONDS)
    later = measure_peaks(peak_threads, budget)
    for threads, by_dtype in peaks.items():
        for dtype in by_dtype:
            by_dtype[dtype] = max(by_dtype[dtype], later[threads][dtype])
    for row in rows:
        if "gflops" in row:
            row["peak_gflops"] = peaks[str(row["threads"])][row["dtype"]]
            row["share"] = row["gflops"] / row["peak_gflops"]
    meta["seconds"] = round(time.perf_counter() - t_start, 1)

    print(file=out)
    peak_text = "; ".join(f"{t} thread(s): {p['float32']:.1f} float32, {p['float64']:.1f} float64"
                          for t, p in peaks.items())
    print(f"FMA peak (fastnn.fma_peak, {meta['cpu_path']}), GFLOP/s: {peak_text}", file=out)
    for line in busy_machine_lines(peaks):
        print(line, file=out)
    for line in table_lines(rows, markdown=args.markdown):
        print(line, file=out)
    print(file=out)
    print(textwrap.fill("share of peak: fastnn's GFLOP/s / the FMA peak of the row's dtype and thread count. "
          "vs NumPy / vs PyTorch: their time / fastnn's (> 1: fastnn faster); fastnn and PyTorch "
          "alternate round by round (median of the per-round ratios); * NumPy timed once (a call "
          "takes over "
          f"{budget.numpy_seconds / 2:g} s). agreement: worst |result - float64 oracle| / tolerance "
          f"({meta['tolerance']}); over 1 disagrees.", width=100), file=out)
    print("\nper family:", file=out)
    for line in summary_lines(rows, thread_counts, markdown=args.markdown):
        print(line, file=out)
    bad_rows = [r for r in rows if not r["agree"]]
    report = {"meta": meta, "checks": checks, "rows": rows}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
        print(f"\nwrote {args.json}", file=out)
    if args.plot:
        write_plot(args.plot, report)
        print(f"wrote {args.plot}", file=out)
    print(f"\n{meta['seconds']:.0f} s", file=out)
    if bad_checks or bad_rows:
        print(f"FAIL: {len(bad_checks) + len(bad_rows)} fastnn result(s) disagree with the NumPy oracle", file=out)
        return 1
    print("all compiled kernels agree with the NumPy oracle", file=out)
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    return run(args, argv)
