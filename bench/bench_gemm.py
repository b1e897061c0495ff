"""fastnn's GEMM core (fastnn._kernels.gemm) against NumPy's matmul and torch.mm.

Square 2048^3 and conv-shaped products, outputs preallocated; plus 2048^3 on every dispatch
path the CPU has (fastnn only, 1 thread). "numpy" here is numpy.matmul (OpenBLAS). The cases
are the registry's (fastnn._cases.gemm). Run:
    pytest bench/bench_gemm.py --benchmark-only [--bench-threads 1,2]
"""
import pytest

FAMILY = "gemm"


def test_gemm(run_case, case, dtype, impl, threads):
    if case.params["path"] is not None and impl != "fastnn":
        pytest.skip("a forced dispatch path is timed for fastnn alone")
    run_case(case, dtype, impl, threads)
