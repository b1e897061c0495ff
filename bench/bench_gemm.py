"""fastnn's GEMM core (fastnn._kernels.gemm) against NumPy's matmul and torch.mm.

Square 2048^3 and conv-shaped products, outputs preallocated; plus 2048^3 on every dispatch
path the CPU has (fastnn only, 1 thread). "numpy" here is numpy.matmul (OpenBLAS). Run:
    PYTHONPATH=. pytest bench/bench_gemm.py --benchmark-only [--bench-threads 1,2]
"""
import pytest

from conftest import cached_case, run_benchmark
from compare import GEMM_CASES, GEMM_PATH_CASE, cpu_paths


@pytest.mark.parametrize("name", list(GEMM_CASES))
def test_gemm(benchmark, name, impl, threads):
    run_benchmark(benchmark, cached_case("gemm", name), impl, threads)


@pytest.mark.parametrize("path", cpu_paths())
def test_gemm_cpu_path(benchmark, path):
    case = cached_case("gemm", GEMM_PATH_CASE, "float32", path)
    run_benchmark(benchmark, case, "fastnn", 1)
