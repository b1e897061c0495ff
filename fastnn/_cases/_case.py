"""The Case type of the registry, its bound form (an Instance: inputs drawn, implementations
ready to call) and the tolerance rule every family's checks use."""
import dataclasses
import math
import zlib
from collections.abc import Callable, Mapping

import numpy as np

# What a tag selects: `quick` the main job's short run (`python -m fastnn`), `suite` the full
# report, `bench` the benchmarks (bench/compare.py and the pytest-benchmark files).
TAGS = frozenset({"quick", "suite", "bench"})
# Implementations, in the order of the calls inside every timing round.
IMPLS = ("fastnn", "torch", "numpy")
TOL_FACTOR = 4.0  # tolerance = TOL_FACTOR * sqrt(K) * eps * magnitude


@dataclasses.dataclass(frozen=True, eq=False)
class Case:
    """One registered case: a kernel call on one shape, the only place that shape is defined.

    family : the family module that registers it ("conv2d", "rnn", "gemm", ...)
    name, direction : "resnet28", "fwd"; with the family they make the key
    kernels : the public fastnn functions it calls (by name in fastnn.__all__)
    shape : the geometry in words, for tables
    params : the geometry as numbers, as the family's builder reads them
    flops : 2 x multiply-adds; a backward (input and weight gradient) counts twice its forward
    dtypes : the dtypes it is benchmarked in, the first being the default (any float dtype can
        be instantiated: the main job checks its cases in both)
    tags : a subset of TAGS
    build : build(case, dtype) -> Instance, drawing the inputs
    threads : None for every thread count, else the only ones it runs at
    """

    family: str
    name: str
    direction: str
    kernels: tuple
    shape: str
    params: Mapping
    flops: float
    dtypes: tuple
    tags: frozenset
    build: Callable
    threads: tuple | None = None

    def __post_init__(self):
        unknown = set(self.tags) - TAGS
        if unknown:
            raise ValueError(f"case {self.key}: unknown tags {sorted(unknown)}")
        object.__setattr__(self, "dtypes", tuple(np.dtype(d) for d in self.dtypes))
        object.__setattr__(self, "tags", frozenset(self.tags))

    @property
    def key(self):
        return f"{self.family}/{self.name}/{self.direction}"

    def instance(self, dtype=None):
        """The case bound to a dtype (default: its first): inputs drawn, callables ready."""
        dtype = self.dtypes[0] if dtype is None else np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"case {self.key}: dtype must be float32 or float64, got {dtype}")
        return self.build(self, dtype)


class Instance:
    """A case with its inputs: zero-argument implementations and the float64 truth.

    fastnn, numpy : callables returning a tuple of results, in the order of truth()'s
        (label, want, tolerance) triples
    torch : None, or a factory returning such a callable (it imports torch, so torch is
        imported only when a torch implementation is asked for); a factory returning None
        means torch cannot run this case
    truth : a callable returning [(label, float64 truth, elementwise tolerance), ...]
    setup, teardown : run around the timing (a forced dispatch path)
    """

    def __init__(self, case, dtype, fastnn, numpy, truth, torch=None, setup=None, teardown=None):
        self.case = case
        self.dtype = np.dtype(dtype)
        self._fastnn, self._numpy, self._torch_factory = fastnn, numpy, torch
        self._truth_fn = truth
        self._truth = None
        self._impls = None
        self._torch = None
        self.setup = setup or (lambda: None)
        self.teardown = teardown or (lambda: None)

    @property
    def impls(self):
        """{impl: callable} in IMPLS order, without the ones that cannot run here."""
        if self._impls is None:
            found = {k: self.impl(k) for k in IMPLS}
            self._impls = {k: fn for k, fn in found.items() if fn is not None}
        return self._impls

    def impl(self, name):
        """One implementation's callable, or None; torch is imported only when asked for."""
        if name == "torch":
            if self._torch_factory is None or torch_module() is None:
                return None
            if self._torch is None:
                self._torch = self._torch_factory() or False
            return self._torch or None
        return {"fastnn": self._fastnn, "numpy": self._numpy}[name]

    def truth(self):
        if self._truth is None:
            self._truth = self._truth_fn()
        return self._truth

    def check(self, only=None):
        """{impl: worst |result - truth| / tolerance}; <= 1 everywhere means it agrees.

        only: check these implementations alone (default: all)."""
        worst = {}
        for impl in IMPLS if only is None else only:
            fn = self.impl(impl)
            if fn is not None:
                worst[impl] = worst_error(fn(), self.truth())
        return worst


def worst_error(outs, truth):
    """max |got - want| / tolerance over every output; inf for a wrong shape or a non-finite error."""
    ratio = 0.0
    for out, (_, want, tol) in zip(outs, truth, strict=True):
        got = to_numpy(out)
        if got.shape != want.shape:
            return math.inf
        err = np.abs(got.astype(np.float64) - want)
        if not np.isfinite(err).all():
            return math.inf
        ratio = max(ratio, float(np.max(err / tol)) if err.size else 0.0)
    return ratio


_torch = None


def torch_module():
    """PyTorch, imported on first use, or None when it is not installed."""
    global _torch
    if _torch is None:
        try:
            import torch
        except ImportError:
            _torch = False
        else:
            _torch = torch
    return _torch or None


def to_numpy(a):
    torch = torch_module() if type(a).__module__.startswith("torch") else None
    if torch is not None and isinstance(a, torch.Tensor):
        return a.detach().numpy()
    return np.asarray(a)


def tolerance(magnitude, k, dtype):
    """Elementwise tolerance for a sum of k products whose absolute values add to magnitude."""
    tiny = float(np.finfo(dtype).tiny)
    eps = float(np.finfo(dtype).eps)
    return TOL_FACTOR * math.sqrt(max(k, 1)) * eps * np.asarray(magnitude, np.float64) + tiny


def case_rng(*key):
    """A generator seeded by the case's name, the same in every process."""
    return np.random.default_rng(zlib.crc32("/".join(key).encode()))


def uniform(rng, shape, bound, dtype):
    return rng.uniform(-bound, bound, size=shape).astype(dtype)
