"""Helpers shared by test files (the conv ones, test_kernels): conftest's module, exact small-integer
problems, every output of a convolution at once, and a forced thread team.

Importable because conftest.py puts this folder on sys.path (pytest's importlib mode does not).
"""
import importlib.util
import pathlib
import sys

import numpy as np

import fastnn
from fastnn import _runtime, reference


def conftest_module():
    """tests/conftest.py as pytest loaded it, for its helpers in test files (pytest's
    --import-mode=importlib names it tests.conftest; loaded once more only if it is absent)."""
    for name in ("tests.conftest", "conftest"):
        if hasattr(sys.modules.get(name), "float_tolerance"):
            return sys.modules[name]
    path = pathlib.Path(__file__).with_name("conftest.py")
    spec = importlib.util.spec_from_file_location("_fastnn_tests_conftest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def small_ints(rng, shape, dtype=np.float32):
    """Integers in [-6, 6]: every sum a conv test makes is exact in float32."""
    return rng.integers(-6, 7, size=shape).astype(dtype)


def run_all(x, w, b, dy, stride, padding, dilation, groups):
    """(y, grad_input, grad_weight, grad_bias) from fastnn."""
    y = fastnn.conv2d(x, w, b, stride, padding, dilation, groups)
    return (y,) + tuple(fastnn.conv2d_backward(dy, x, w, stride, padding, dilation, groups))


def expected_all(x, w, b, dy, stride, padding, dilation, groups):
    """run_all's outputs from fastnn.reference in float64 (b may be None)."""
    f = [None if a is None else a.astype(np.float64) for a in (x, w, b, dy)]
    y = reference.conv2d(f[0], f[1], f[2], stride, padding, dilation, groups)
    return (y,) + tuple(reference.conv2d_backward(f[3], f[0], f[1], stride, padding, dilation, groups))


def at_threads(threads, call):
    """call() on a team of `threads`, the serial threshold at 0 so that even small problems
    get the team; both restored afterwards."""
    fastnn.set_num_threads(threads)
    before = _runtime.serial_threshold
    _runtime.serial_threshold = 0
    try:
        return call()
    finally:
        _runtime.serial_threshold = before
        fastnn.set_num_threads(None)
