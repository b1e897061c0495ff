"""pytest-benchmark setup for fastnn's benchmarks (bench/bench_*.py).

The project's pytest config (pyproject.toml) collects test_*.py under tests/ only; this file
makes `pytest bench/` collect bench_*.py here too, and adds three options:

    --bench-threads 1,2   thread counts to run every benchmark at (default 1)
    --bench-impls fastnn,torch,numpy   implementations to time (default all three)
    --bench-short         CI's smoke run: per family its bench cases also tagged quick (else
                          its cheapest one), a few short rounds each; seconds, not figures

Benchmarks fail (they never fall back to the NumPy reference) when the compiled kernels are
not loaded.

The cases (shapes, FLOPs, inputs, the agreement check) come from the registry in the installed
package (fastnn._cases), the same ones bench/compare.py times: nothing here needs the checkout.
A bench file names its family (FAMILY = "conv2d") and takes the fixtures `case`, `dtype`,
`impl`, `threads` and `run_case`; every registered `bench` case of that family, in each dtype
it is registered for, becomes one benchmark per implementation and thread count.
"""
import functools
import math

import pytest

from fastnn import _cases, _runtime
from fastnn._cases import IMPLS
from fastnn._cases._timing import Threads, best_of


def pytest_addoption(parser):
    group = parser.getgroup("fastnn benchmarks")
    group.addoption("--bench-threads", default="1",
                    help="comma-separated thread counts for fastnn, torch and OpenBLAS (default 1)")
    group.addoption("--bench-impls", default=",".join(IMPLS),
                    help="comma-separated implementations to time: fastnn, torch, numpy")
    group.addoption("--bench-short", action="store_true",
                    help="smoke run: per family the bench cases also tagged quick (else the "
                    "cheapest), a few short rounds each")


def pytest_collect_file(file_path, parent):
    """Collect bench_*.py in this folder (the project's python_files is test_*.py)."""
    if (file_path.suffix == ".py" and file_path.name.startswith("bench_")
            and not parent.session.isinitpath(file_path)):  # named on the command line: pytest collects it
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        cases = _cases.select(tags="bench", family=metafunc.module.FAMILY)
        if metafunc.config.getoption("bench_short") and cases:
            cases = [c for c in cases if "quick" in c.tags] or [min(cases, key=lambda c: c.flops)]
        params = [pytest.param(case, dtype, id=f"{case.name}-{case.direction}-{dtype.name}")
                  for case in cases for dtype in case.dtypes]
        metafunc.parametrize(("case", "dtype"), params)
    if "threads" in metafunc.fixturenames:
        counts = [int(t) for t in metafunc.config.getoption("bench_threads").split(",")]
        metafunc.parametrize("threads", counts, ids=[f"t{n}" for n in counts])
    if "impl" in metafunc.fixturenames:
        impls = metafunc.config.getoption("bench_impls").split(",")
        metafunc.parametrize("impl", impls)


@functools.lru_cache(maxsize=None)
def _instance(case, dtype):
    """One instance per case and dtype, shared by its implementations (the float64 truth is cached)."""
    return case.instance(dtype)


@pytest.fixture
def run_case(benchmark, request):
    """run_case(case, dtype, impl, threads): check `impl` against the float64 reference, then
    time it; GFLOP/s into extra_info."""
    short = request.config.getoption("bench_short")

    def run(case, dtype, impl, threads):
        if _runtime._kernels is None:
            pytest.fail(f"fastnn's compiled kernels are not loaded ({_runtime.LOAD_ERROR}): "
                        "fastnn would run its NumPy reference, which is not what is benchmarked")
        inst = _instance(case, dtype)
        fn = inst.impls.get(impl)
        if fn is None:
            pytest.skip(f"{impl} is not available" + (" (PyTorch is not installed)" if impl == "torch" else ""))
        if case.threads is not None and threads not in case.threads:
            pytest.skip(f"{case.name} runs at {case.threads} thread(s) only")
        benchmark.group = f"{case.family} {case.name} {case.direction} {inst.dtype.name} t{threads}"
        benchmark.extra_info.update(impl=impl, shape=case.shape, threads=threads, gflop=case.flops / 1e9)
        inst.setup()
        try:
            with Threads(threads):
                worst = inst.check(only=(impl,))[impl]
                benchmark.extra_info["check"] = worst
                if not worst <= 1.0:
                    pytest.fail(f"{impl} disagrees with the float64 reference: error {worst:.3g} x tolerance")
                seconds = best_of(fn, 1)
                # Enough rounds for about a second of timing, at least 3 (the reference's big cases
                # take seconds a call).
                rounds = int(min(1000, max(3, math.ceil(1.0 / max(seconds, 1e-7)))))
                if short:
                    rounds = int(min(20, max(1, math.ceil(0.02 / max(seconds, 1e-7)))))
                benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1 if seconds < 0.1 else 0)
        finally:
            inst.teardown()
        stats = getattr(benchmark, "stats", None)
        if stats is not None and getattr(stats, "stats", None) is not None:
            benchmark.extra_info["gflops_best"] = case.flops / stats.stats.min / 1e9
            benchmark.extra_info["gflops_median"] = case.flops / stats.stats.median / 1e9
    return run
