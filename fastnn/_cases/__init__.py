"""The registry of cases: every standard shape fastnn is checked and timed on, defined once.

One module per kernel family (``conv2d``, ``rnn``, ``gemm``, ...) in this package, each the
only definition of its cases; a module here whose name does not start with ``_`` is a family
and is found without being listed anywhere. A family module defines

    ORDER : int         where its cases come in listings (kernel families first)
    cases() -> [Case]   its cases, in the order tables show them

`python -m fastnn`, bench/compare.py, the pytest-benchmark files (bench/) and the tests all
select from here, so a case registered here is checked and benchmarked by all of them::

    from fastnn import _cases
    for case in _cases.select(tags="bench", family="conv2d"):
        for dtype in case.dtypes:
            inst = case.instance(dtype)     # inputs drawn, implementations ready
            inst.check()                    # {impl: worst error / tolerance}
            inst.impls["fastnn"]()          # one call

Tags: ``quick`` (the main job), ``suite`` (the full report), ``bench`` (the benchmarks).
Importing this package imports no optional dependency; torch is imported when a torch
implementation is first asked for.
"""
import fnmatch
import functools
import importlib
import pkgutil

from fastnn._cases._case import IMPLS, TAGS, Case, Instance, case_rng, tolerance, uniform

__all__ = ["Case", "Instance", "IMPLS", "TAGS", "families", "all_cases", "select", "get",
           "case_rng", "tolerance", "uniform"]


@functools.cache
def _family_modules():
    found = []
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            found.append(importlib.import_module(f"{__name__}.{info.name}"))
    return tuple(sorted(found, key=lambda m: (m.ORDER, m.__name__)))


def families():
    """The registered families' names, in listing order."""
    return tuple(m.__name__.rsplit(".", 1)[1] for m in _family_modules())


@functools.cache
def all_cases():
    """Every registered case, family by family."""
    cases = []
    keys = set()
    for module in _family_modules():
        family = module.__name__.rsplit(".", 1)[1]
        for case in module.cases():
            if case.family != family:
                raise ValueError(f"{module.__name__} registers {case.key}, of another family")
            if case.key in keys:
                raise ValueError(f"case {case.key} is registered twice")
            keys.add(case.key)
            cases.append(case)
    return tuple(cases)


def select(tags=None, family=None, patterns=None, kernel=None):
    """Registered cases with any of `tags`, of `family` (a name or several), matching any of
    `patterns` (globs against the name or the key family/name/direction), calling `kernel`."""
    tags = {tags} if isinstance(tags, str) else (set(tags) if tags is not None else None)
    fams = {family} if isinstance(family, str) else (set(family) if family is not None else None)
    if tags is not None and not tags <= TAGS:
        raise ValueError(f"unknown tags {sorted(tags - TAGS)}: choose from {sorted(TAGS)}")
    if fams is not None and not fams <= set(families()):
        raise ValueError(f"unknown families {sorted(fams - set(families()))}: choose from {families()}")
    out = []
    for case in all_cases():
        if tags is not None and not tags & case.tags:
            continue
        if fams is not None and case.family not in fams:
            continue
        if kernel is not None and kernel not in case.kernels:
            continue
        if patterns is not None and not any(
                fnmatch.fnmatch(case.name, p) or fnmatch.fnmatch(case.key, p) for p in patterns):
            continue
        out.append(case)
    return out


def get(key):
    """The case with this key (family/name/direction)."""
    for case in all_cases():
        if case.key == key:
            return case
    raise KeyError(key)
