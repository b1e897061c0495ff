"""ctypes binding of the standalone GEMM core (kernels/c/*.c built as a shared library).

Used by check_gemm.py and bench_gemm.py while developing the C core, before (and
independently of) the Cython drivers. Not part of the package.

    lib = load()              # builds /tmp/libfnngemm.so with gcc if needed
    lib.set_isa(2); d = lib.desc(np.float32)
    lib.gemm(d, a, b, c, flags=..., bias=...)
"""
import ctypes
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CDIR = os.path.dirname(HERE)

FNN_ACCUMULATE, FNN_BIAS_ROW, FNN_BIAS_COL = 1, 2, 4
ISA_NAMES = {0: "portable", 1: "avx2", 2: "avx512"}

fnn_int = ctypes.c_ssize_t
vp = ctypes.c_void_p


class Desc(ctypes.Structure):
    # Same layout for f32 and f64: the ukernel pointer is kept opaque.
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("isa", ctypes.c_int),
        ("mr", ctypes.c_int),
        ("nr", ctypes.c_int),
        ("mc", fnn_int),
        ("kc", fnn_int),
        ("nc", fnn_int),
        ("ukernel", vp),
    ]

    def __repr__(self):
        return (f"{self.name.decode()} mr={self.mr} nr={self.nr} "
                f"mc={self.mc} kc={self.kc} nc={self.nc}")


UKERNEL = ctypes.CFUNCTYPE(None, fnn_int, vp, vp, vp, fnn_int, ctypes.c_int,
                           ctypes.c_int, ctypes.c_int, vp)


def build(out="/tmp/libfnngemm.so", cc=os.environ.get("CC", "gcc"), extra=()):
    srcs = sorted(os.path.join(CDIR, f) for f in os.listdir(CDIR)
                  if f.startswith("fnn_gemm") and f.endswith(".c"))
    cmd = [cc, "-O3", "-g0", "-fno-math-errno", "-fPIC", "-shared", "-Wall", "-Wextra",
           *extra, "-I", CDIR, *srcs, "-o", out]
    subprocess.check_call(cmd)
    return out


def _ptr(x):
    return None if x is None else x.ctypes.data


class Lib:
    def __init__(self, path):
        self.path = path
        L = self.L = ctypes.CDLL(path)
        for f in ("fnn_cpu_isa", "fnn_active_isa"):
            getattr(L, f).restype = ctypes.c_int
            getattr(L, f).argtypes = []
        L.fnn_set_isa.restype = ctypes.c_int
        L.fnn_set_isa.argtypes = [ctypes.c_int]
        L.fnn_gemm_kblock.restype = fnn_int
        L.fnn_gemm_kblock.argtypes = [fnn_int, fnn_int, fnn_int]
        L.fnn_isa_name.restype = ctypes.c_char_p
        L.fnn_isa_name.argtypes = [ctypes.c_int]
        for t in ("f32", "f64"):
            getattr(L, f"fnn_gemm_{t}_desc").restype = ctypes.POINTER(Desc)
            getattr(L, f"fnn_gemm_{t}_desc").argtypes = []
            getattr(L, f"fnn_gemm_scratch_{t}").restype = fnn_int
            getattr(L, f"fnn_gemm_scratch_{t}").argtypes = [ctypes.POINTER(Desc)]
            for w in ("a", "b"):
                fn = getattr(L, f"fnn_pack_{w}_{t}")
                fn.restype = None
                fn.argtypes = [ctypes.c_int, fnn_int, fnn_int, vp, fnn_int, fnn_int, vp]
            fn = getattr(L, f"fnn_gemm_macro_{t}")
            fn.restype = None
            fn.argtypes = [ctypes.POINTER(Desc), fnn_int, fnn_int, fnn_int, vp, vp, vp,
                           fnn_int, ctypes.c_int, vp]
            fn = getattr(L, f"fnn_gemm_{t}")
            fn.restype = None
            fn.argtypes = [ctypes.POINTER(Desc), fnn_int, fnn_int, fnn_int,
                           vp, fnn_int, fnn_int, vp, fnn_int, fnn_int,
                           vp, fnn_int, ctypes.c_int, vp, vp]

    # dispatch
    def cpu_isa(self):
        return self.L.fnn_cpu_isa()

    def active_isa(self):
        return self.L.fnn_active_isa()

    def set_isa(self, isa):
        return self.L.fnn_set_isa(isa)

    def kblocks(self, k, kc):
        """The k-block depths fnn_gemm uses, in order."""
        out, pc = [], 0
        while True:
            kb = self.L.fnn_gemm_kblock(k, kc, pc)
            out.append(kb)
            pc += kb
            if pc >= k:
                return out

    def isa_name(self, isa):
        return self.L.fnn_isa_name(isa).decode()

    @staticmethod
    def _t(dtype):
        return "f32" if np.dtype(dtype) == np.float32 else "f64"

    def desc(self, dtype):
        """A copy of the active level's descriptor (safe to modify the blocking)."""
        p = getattr(self.L, f"fnn_gemm_{self._t(dtype)}_desc")()
        d = Desc()
        ctypes.pointer(d)[0] = p[0]
        d.dtype = np.dtype(dtype)
        return d

    def scratch(self, d, misalign=0):
        n = getattr(self.L, f"fnn_gemm_scratch_{self._t(d.dtype)}")(ctypes.byref(d))
        buf = np.empty(n + misalign, dtype=d.dtype)
        return buf[misalign:]

    @staticmethod
    def _strides(x):
        return [s // x.itemsize for s in x.strides]

    def gemm(self, d, a, b, c, flags=0, bias=None, scratch=None):
        """C (m x n, rows with unit column stride) op= A @ B with any element strides."""
        m, k = a.shape
        n = b.shape[1]
        assert c.dtype == a.dtype == b.dtype == d.dtype and c.strides[1] == c.itemsize
        if scratch is None:
            scratch = self.scratch(d)
        rs_a, cs_a = self._strides(a)
        rs_b, cs_b = self._strides(b)
        ldc = c.strides[0] // c.itemsize
        getattr(self.L, f"fnn_gemm_{self._t(d.dtype)}")(
            ctypes.byref(d), m, n, k, _ptr(a), rs_a, cs_a, _ptr(b), rs_b, cs_b,
            _ptr(c), ldc, flags, _ptr(bias), _ptr(scratch))

    def pack_a(self, d, a, dst):
        m, k = a.shape
        rs, cs = self._strides(a)
        getattr(self.L, f"fnn_pack_a_{self._t(d.dtype)}")(d.mr, m, k, _ptr(a), rs, cs, _ptr(dst))

    def pack_b(self, d, b, dst):
        k, n = b.shape
        rs, cs = self._strides(b)
        getattr(self.L, f"fnn_pack_b_{self._t(d.dtype)}")(d.nr, k, n, _ptr(b), rs, cs, _ptr(dst))

    def macro(self, d, m, n, k, apack, bpack, c, flags=0, bias=None):
        ldc = c.strides[0] // c.itemsize
        getattr(self.L, f"fnn_gemm_macro_{self._t(d.dtype)}")(
            ctypes.byref(d), m, n, k, _ptr(apack), _ptr(bpack), _ptr(c), ldc, flags, _ptr(bias))

    def ukernel(self, d, k, apanel, bpanel, c, m, n, flags=0, bias=None):
        ldc = c.strides[0] // c.itemsize
        UKERNEL(d.ukernel)(k, _ptr(apanel), _ptr(bpanel), _ptr(c), ldc, m, n, flags, _ptr(bias))


def load(path=None, rebuild=True):
    path = path or os.environ.get("FNN_GEMM_LIB")
    if path is None:
        path = "/tmp/libfnngemm.so"
        if rebuild:
            build(path)
    return Lib(path)


if __name__ == "__main__":
    lib = load(sys.argv[1] if len(sys.argv) > 1 else None)
    print("cpu isa:", lib.isa_name(lib.cpu_isa()), "active:", lib.isa_name(lib.active_isa()))
    for isa in range(lib.cpu_isa() + 1):
        lib.set_isa(isa)
        print(lib.desc(np.float32), "|", lib.desc(np.float64))
