"""The GEMM core's cases (fastnn._kernels.gemm, not a public kernel): square and conv-shaped
products against NumPy's matmul and torch.mm, outputs preallocated; and the square one on
every dispatch path this CPU has (fastnn only, 1 thread)."""
import numpy as np

import fastnn
from fastnn import _runtime
from fastnn._cases._case import Case, Instance, case_rng, tolerance, torch_module

ORDER = 90

# name: (M, K, N) for C (M, N) = A (M, K) @ B (K, N); the conv-shaped ones are
# C_out x (C_in*3*3) x (output pixels of a batch of one).
SHAPES = {
    "square2048": (2048, 2048, 2048),
    "conv64": (64, 576, 784),
    "conv128": (128, 1152, 196),
    "conv256": (256, 2304, 3136),
}
PATH_CASE = "square2048"  # also timed on every dispatch path, at 1 thread


def cpu_paths():
    """Dispatch paths this CPU can run, best first."""
    k = _runtime._kernels
    if k is None:
        return []
    names = list(k.ISA_NAMES)
    return names[: names.index(k.cpu_isa()) + 1][::-1]


def cases():
    out = []
    for name, (m, k, n) in SHAPES.items():
        params = dict(m=m, k=k, n=n, path=None)
        out.append(Case("gemm", name, "fwd", (), f"{m}x{k} @ {k}x{n}", params, 2 * m * n * k,
                        (np.float32,), {"bench"}, _build))
    m, k, n = SHAPES[PATH_CASE]
    for path in cpu_paths():
        params = dict(m=m, k=k, n=n, path=path)
        out.append(Case("gemm", f"{PATH_CASE}[{path}]", "fwd", (), f"{m}x{k} @ {k}x{n}", params, 2 * m * n * k,
                        (np.float32,), {"bench"}, _build, threads=(1,)))
    return out


def _build(case, dtype):
    p = case.params
    m, k, n, path = p["m"], p["k"], p["n"], p["path"]
    rng = case_rng("gemm", case.name.split("[")[0])
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    c_fnn, c_np = np.empty((m, n), dtype), np.empty((m, n), dtype)
    kernels = _runtime._kernels

    def fastnn_gemm():
        return (kernels.gemm(a, b, c_fnn, num_threads=fastnn.get_num_threads()),)

    def torch_impl():
        if path is not None:  # a forced fastnn path is compared with NumPy only
            return None
        torch = torch_module()
        ta, tb, tc = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(np.empty((m, n), dtype))
        return lambda: (torch.mm(ta, tb, out=tc),)

    def truth():
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        return [("c", a64 @ b64, tolerance(np.abs(a64) @ np.abs(b64), k, dtype))]

    setup = teardown = None
    if path is not None:
        saved = []

        def setup():
            saved.append(kernels.active_isa())
            _runtime.set_cpu_path(path)

        def teardown():
            _runtime.set_cpu_path(saved.pop())

    return Instance(case, dtype, fastnn=fastnn_gemm if kernels is not None else None,
                    numpy=lambda: (np.matmul(a, b, out=c_np),),
                    torch=torch_impl, truth=truth, setup=setup, teardown=teardown)
