"""Shared test configuration: hypothesis profiles, build checks, dispatch-path forcing."""
import os
import pathlib
import sys
import types

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import fastnn
from fastnn import _runtime

# Profiles: "ci" keeps the whole suite within minutes on 2 cores; "thorough" is the long
# property run (`pytest --hypothesis-profile=thorough`); "dev" is the default locally.
_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
               print_blob=True)
settings.register_profile("ci", max_examples=40, derandomize=True, **_common)
settings.register_profile("dev", max_examples=60, **_common)
settings.register_profile("thorough", max_examples=1500, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

KERNELS = _runtime._kernels

# Test files import their shared helpers (conv_helpers.py) from this folder, which pytest's
# importlib mode leaves off sys.path.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))


def available_cpu_paths():
    """Every dispatch path this CPU can run, lowest first."""
    if KERNELS is None:
        return []
    names = KERNELS.ISA_NAMES
    return list(names[: names.index(KERNELS.cpu_isa()) + 1])


@pytest.fixture(params=available_cpu_paths() or ["reference"])
def cpu_path(request):
    """Run the test once per dispatch path, asserting show_config() reports the forced one."""
    if request.param == "reference":
        pytest.fail("the compiled kernels did not load: " + str(_runtime.LOAD_ERROR))
    before = KERNELS.active_isa()
    _runtime.set_cpu_path(request.param)
    assert fastnn.show_config(print_out=False)["cpu_path"] == request.param
    yield request.param
    _runtime.set_cpu_path(before)


class _NoReference(types.ModuleType):
    def __getattr__(self, name):
        raise AssertionError(f"fastnn fell back to reference.{name}: the compiled kernel was not tested")


def public_kernel_modules():
    """The modules of the public kernel families (fastnn.conv, fastnn.recurrent, ...): where the
    functions of fastnn.__all__ live, less the runtime controls."""
    names = {getattr(fastnn, name).__module__ for name in fastnn.__all__
             if callable(getattr(fastnn, name)) and not isinstance(getattr(fastnn, name), type)}
    names.discard(_runtime.__name__)
    return [sys.modules[name] for name in sorted(names)]


@pytest.fixture
def compiled_only(monkeypatch):
    """Make any fallback from the public API to the NumPy reference fail the test."""
    assert KERNELS is not None, f"compiled kernels did not load: {_runtime.LOAD_ERROR}"
    modules = public_kernel_modules()
    assert fastnn.conv in modules and fastnn.recurrent in modules, modules
    for module in modules:
        monkeypatch.setattr(module, "reference", _NoReference("no_reference"))


@pytest.fixture
def parallel_everything(monkeypatch):
    """Lower the serial thresholds to 0 so even tiny problems run on a team of threads."""
    monkeypatch.setattr(_runtime, "serial_threshold", 0)
    old = KERNELS.set_serial_gemm_fmas(0)
    yield
    KERNELS.set_serial_gemm_fmas(old)


def float_tolerance(dtype, terms, magnitude):
    """Absolute tolerance for a sum of `terms` products whose |values| sum to `magnitude`:
    about sqrt(K) * eps * sum|x*w| (float32), a few ulps of it in float64."""
    eps = np.finfo(dtype).eps
    return 4 * np.sqrt(max(terms, 1)) * eps * magnitude + np.finfo(dtype).tiny
