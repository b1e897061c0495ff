"""Build fastnn's compiled kernels: one Cython extension, OpenMP where the compiler has it.

Environment switches (all optional):
  FASTNN_DEBUG=1        Cython bounds/wraparound checks on, -O0 -g: the bounds-checked debug build.
  FASTNN_SANITIZE=address
                        build with AddressSanitizer (run with the ASan runtime preloaded).
  FASTNN_NO_OPENMP=1    build without OpenMP (single-threaded), as a compiler without it would.
"""
import glob
import os
import shlex
import sys
import tempfile
import textwrap

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DEBUG = os.environ.get("FASTNN_DEBUG", "") not in ("", "0")
SANITIZE = os.environ.get("FASTNN_SANITIZE", "")
NO_OPENMP = os.environ.get("FASTNN_NO_OPENMP", "") not in ("", "0")

OPENMP_PROBE = textwrap.dedent(
    """
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        return n > 0 ? 0 : 1;
    }
    """
)


def openmp_flags(compiler):
    """(compile flags, link flags) that turn OpenMP on for this compiler, or None."""
    if NO_OPENMP:
        return None
    ctype = compiler.compiler_type
    if ctype == "msvc":
        candidates = [(["/openmp"], [])]
    elif sys.platform == "darwin":
        # Apple clang has no -fopenmp driver flag; libomp comes from the environment
        # (CPPFLAGS/LDFLAGS pointing at it, as scikit-learn's wheel builds do).
        candidates = [(["-Xpreprocessor", "-fopenmp"], ["-lomp"]), (["-fopenmp"], ["-fopenmp"])]
    else:
        candidates = [(["-fopenmp"], ["-fopenmp"])]
    for cflags, lflags in candidates:
        if _compiles(compiler, OPENMP_PROBE, cflags, lflags):
            return cflags, lflags
    return None


def _compiles(compiler, source, cflags, lflags):
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(source)
        # setuptools leaves LDFLAGS off link_executable; a libomp found through LDFLAGS
        # (Homebrew, conda on macOS) would otherwise look missing.
        extra = [] if compiler.compiler_type == "msvc" else shlex.split(os.environ.get("LDFLAGS", ""))
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=cflags)
            compiler.link_executable(objs, os.path.join(tmp, "probe"), extra_postargs=lflags + extra)
        except Exception:
            return False
    return True


class BuildExt(build_ext):
    def build_extensions(self):
        flags = openmp_flags(self.compiler)
        if flags is None:
            print("fastnn: building WITHOUT OpenMP: kernels will run single-threaded", file=sys.stderr)
        msvc = self.compiler.compiler_type == "msvc"
        for ext in self.extensions:
            if flags is not None:
                ext.extra_compile_args += flags[0]
                ext.extra_link_args += flags[1]
                ext.define_macros.append(("FNN_OPENMP", "1"))
            if msvc:
                ext.extra_compile_args += ["/O2"]
            else:
                if DEBUG:
                    ext.extra_compile_args += ["-O0", "-g"]
                else:
                    # -g0 drops the debug info Python's own flags bring (1.3 MB vs 270 KB);
                    # no -march=native and no -ffast-math: wheels must run on any x86-64/arm64
                    # and must not set flush-to-zero for the whole process.
                    ext.extra_compile_args += ["-O3", "-g0", "-fno-math-errno"]
                # Only the module's init function needs exporting (Python marks it so);
                # hidden fnn_* symbols are called directly, not through the PLT.
                ext.extra_compile_args += ["-fvisibility=hidden"]
                if SANITIZE:
                    ext.extra_compile_args += [f"-fsanitize={SANITIZE}", "-fno-omit-frame-pointer"]
                    ext.extra_link_args += [f"-fsanitize={SANITIZE}"]
        super().build_extensions()


directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": not DEBUG,
    "cpow": True,
}

extensions = [
    Extension(
        "fastnn._kernels",
        sources=["kernels/_kernels.pyx"] + sorted(glob.glob("kernels/c/*.c")),
        include_dirs=[np.get_include(), "kernels", "kernels/c"],
        # Headers too, so editing one alone rebuilds (setuptools tracks only sources).
        depends=sorted(glob.glob("kernels/c/*.h") + glob.glob("kernels/*.h") + glob.glob("kernels/*.pxi")
                       + glob.glob("kernels/*.pxd")),
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        include_path=["kernels"],
    ),
    cmdclass={"build_ext": BuildExt},
)
