"""Helpers shared by the oracle test files (test_reference and each family's own): central
finite differences and the recorded PyTorch fixtures (tests/fixtures/*.npz).

Importable because conftest.py puts this folder on sys.path (pytest's importlib mode does not).
"""
import json
import pathlib

import numpy as np

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"


def numerical_grad(loss, arrays, index, eps=1e-6):
    """Central finite-difference gradient of ``loss(*arrays)`` w.r.t. ``arrays[index]``."""
    arrays = [None if a is None else a.copy() for a in arrays]
    target = arrays[index]
    grad = np.zeros_like(target)
    for i in np.ndindex(target.shape):
        saved = target[i]
        target[i] = saved + eps
        plus = loss(*arrays)
        target[i] = saved - eps
        minus = loss(*arrays)
        target[i] = saved
        grad[i] = (plus - minus) / (2 * eps)
    return grad


def load_cases(filename):
    """``{case name: {field: array}}`` from a fixture file, with its config decoded."""
    cases = {}
    with np.load(FIXTURES / filename) as data:
        for key in data.files:
            name, field = key.split("/")
            cases.setdefault(name, {})[field] = data[key]
    for fields in cases.values():
        fields["config"] = json.loads(str(fields["config"]))
    return cases
