"""`python -m fastnn` (fastnn/_report.py): its figures follow from its raw numbers, a wrong
kernel fails it, every registered family is in it, and its options behave."""
import json
import math
import statistics
import subprocess
import sys

import numpy as np
import pytest

import fastnn
from fastnn import _cases, _report, _runtime
from fastnn._cases._case import Case, Instance, tolerance

# Small, quick cases of two families: the report's whole path in a few seconds.
CASES = "conv2d/tiny/*,rnn/latency/fwd"


def run_report(tmp_path, *args):
    """In-process run: (exit status, stdout, the JSON report)."""
    path = tmp_path / "report.json"
    argv = ["--quick", "--no-progress-bar", "--json", str(path), *args]
    from io import StringIO
    out = StringIO()
    status = _report.run(_report.parse_args(argv), argv, out=out)
    report = json.loads(path.read_text()) if path.exists() else None
    return status, out.getvalue(), report


def test_json_figures_recompute_from_the_raw_numbers(tmp_path):
    # a subprocess, as a user runs it (from a folder with no checkout in it): the entry
    # point's exit status is the report's
    path = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-m", "fastnn", "--quick", "--threads", "1",
                           "--cases", CASES, "--json", str(path), "--no-progress-bar"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(path.read_text())
    meta = report["meta"]
    for key in ("cpu", "cpu_flags", "cores", "cpu_path", "cpu_best", "python", "numpy", "fastnn",
                "torch", "command", "threads"):
        assert key in meta, key
    assert meta["compiled"] and meta["fastnn"] == fastnn.__version__ and meta["numpy"] == np.__version__
    assert meta["cpu_path"] == _runtime.cpu_path() and meta["peak"]["isa"] == meta["cpu_path"]
    if sys.platform.startswith("linux") and _runtime._kernels.cpu_isa() != "portable":
        assert {"avx2", "fma"} <= set(meta["cpu_flags"])
    peaks = meta["peak"]["gflops"]
    assert set(peaks) == {"1"} and all(peaks["1"][d] > 0 for d in ("float32", "float64"))

    rows = report["rows"]
    want = {c.key for c in _cases.select(tags="quick", patterns=CASES.split(","))}
    assert {r["case"] for r in rows} == want and len(want) == 3
    assert {c["case"] for c in report["checks"]} == want and len(report["checks"]) == 2 * len(want)
    for r in rows:
        assert r["agree"] and r["threads"] == 1
        assert r["flops"] == _cases.get(r["case"]).flops
        assert r["fastnn_s"] == statistics.median(r["fastnn_rounds_s"])
        assert math.isclose(r["gflops"], r["flops"] / r["fastnn_s"] / 1e9, rel_tol=1e-12)
        assert r["peak_gflops"] == peaks["1"][r["dtype"]]
        assert math.isclose(r["share"], r["gflops"] / peaks["1"][r["dtype"]], rel_tol=1e-12)
        assert math.isclose(r["speedup_numpy"], r["numpy_s"] / r["fastnn_s"], rel_tol=1e-12)
        if "torch_s" in r:
            ratios = [t / f for t, f in zip(r["torch_rounds_s"], r["fastnn_rounds_s"])]
            assert math.isclose(r["speedup_torch"], statistics.median(ratios), rel_tol=1e-12)
        # the printed table shows the same figures
        line = next(ln for ln in proc.stdout.splitlines() if ln.startswith(r["case"] + " "))
        cells = line.split()
        assert cells[3:6] == [f"{r['fastnn_s'] * 1e3:.3f}", f"{r['gflops']:.1f}", f"{r['share']:.0%}"]
        assert cells[6].rstrip("*") == f"{r['speedup_numpy']:.2f}x"
    assert "all compiled kernels agree" in proc.stdout


@pytest.mark.parametrize("wrong", ["value", "raises"])
def test_a_wrong_kernel_fails_the_report(tmp_path, monkeypatch, wrong):
    right = fastnn.conv2d

    def conv2d(*args, **kwargs):
        if wrong == "raises":
            raise RuntimeError("broken kernel")
        y = right(*args, **kwargs)
        y.flat[3] += 1e-2 * (1 + abs(y.flat[3]))
        return y

    monkeypatch.setattr(fastnn, "conv2d", conv2d)
    status, out, report = run_report(tmp_path, "--cases", CASES, "--threads", "1")
    assert status == 1
    assert "FAIL" in out and "DISAGREES" in out
    bad = {(c["case"], c["dtype"]) for c in report["checks"] if not c["agree"]}
    assert bad == {("conv2d/tiny/fwd", "float32"), ("conv2d/tiny/fwd", "float64")}
    # the others still ran and agree: only the wrong kernel is reported
    assert all(r["agree"] for r in report["rows"] if r["case"] != "conv2d/tiny/fwd")
    assert not next(r for r in report["rows"] if r["case"] == "conv2d/tiny/fwd")["agree"]


def test_a_family_registered_later_is_in_the_report(tmp_path, monkeypatch):
    def build(case, dtype):
        a = np.linspace(-1, 1, 64, dtype=dtype)
        a64 = a.astype(np.float64)
        return Instance(case, dtype, fastnn=lambda: (np.cumsum(a),), numpy=lambda: (np.cumsum(a),),
                        truth=lambda: [("y", np.cumsum(a64), tolerance(np.cumsum(np.abs(a64)), 64, dtype))])

    newcomer = Case("newfamily", "demo", "fwd", (), "64", {}, 64, (np.float32,),
                    {"quick", "suite"}, build)
    registered = _cases.all_cases()
    monkeypatch.setattr(_cases, "all_cases", lambda: registered + (newcomer,))
    status, out, report = run_report(tmp_path, "--cases", "newfamily/*,conv2d/tiny/fwd", "--threads", "1")
    assert status == 0, out
    assert [r["case"] for r in report["rows"]] == ["conv2d/tiny/fwd", "newfamily/demo/fwd"]
    assert "newfamily/demo/fwd" in out
    summary = out.split("per family:")[1].splitlines()
    assert any(line.split()[1:3] == ["newfamily", "1"] for line in summary[2:] if line.strip())


def test_threads_list_and_progress_lines(tmp_path, capsys):
    status, _, report = run_report(tmp_path, "--cases", "conv2d/tiny/fwd", "--threads", "1,2")
    assert status == 0
    assert [r["threads"] for r in report["rows"]] == [1, 2]
    assert set(report["meta"]["peak"]["gflops"]) == {"1", "2"}
    err = capsys.readouterr().err
    assert "checking [  1/2] conv2d/tiny/fwd float32: ok" in err
    assert "timing [  2/2] conv2d/tiny/fwd float32 t2:" in err


def test_markdown_table(tmp_path):
    status, out, _ = run_report(tmp_path, "--cases", "conv2d/tiny/fwd", "--threads", "1", "--markdown")
    assert status == 0
    lines = [ln for ln in out.splitlines() if ln.startswith("|")]
    assert lines[0].startswith("| case | dtype | threads | fastnn ms | GFLOP/s | share of peak |")
    assert lines[2].startswith("| conv2d/tiny/fwd | float32 | 1 | ")


def test_plot(tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "speedups.png"
    status, _, _ = run_report(tmp_path, "--cases", "conv2d/tiny/fwd", "--threads", "1", "--plot", str(png))
    assert status == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_plot_without_matplotlib_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(SystemExit) as exc:
        _report.parse_args(["--plot", "out.png"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--plot needs matplotlib" in err and "pip install 'fastnn-kernels[plot]'" in err


@pytest.mark.parametrize("argv", [["--threads", "0"], ["--threads", "two"], ["--family", "nosuch"]])
def test_bad_arguments(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        _report.parse_args(argv)
    assert exc.value.code == 2
    assert argv[0] in capsys.readouterr().err


def test_without_the_compiled_kernels(tmp_path, monkeypatch):
    monkeypatch.setattr(_runtime, "_kernels", None)
    monkeypatch.setattr(_runtime, "LOAD_ERROR", "ImportError: test")
    status, out, report = run_report(tmp_path, "--cases", "conv2d/tiny/fwd")
    assert status == 1 and "compiled kernels are not loaded" in out and report is None
