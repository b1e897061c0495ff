"""Loading the compiled kernels, thread counts, the CPU path and fork safety."""
import os
import threading
import warnings

from fastnn._version import __version__

try:
    from fastnn import _kernels
except ImportError as exc:  # pragma: no cover - exercised only by broken installs
    _kernels = None
    LOAD_ERROR = f"{type(exc).__name__}: {exc}"
    warnings.warn(
        f"fastnn: the compiled kernels could not be loaded ({LOAD_ERROR}); "
        "falling back to the slow NumPy reference implementation",
        RuntimeWarning,
        stacklevel=2,
    )
else:
    LOAD_ERROR = None

_requested_threads = None
_forked_serial = False
# Threads (by ident) that have led a kernel's OpenMP team. GNU OpenMP keeps one pool of worker
# threads per team-leading thread; fork() copies that pool's bookkeeping but not its threads,
# so if the forking thread has led a team, the child's next team waits forever on workers
# that do not exist (LLVM's and Intel's runtimes reset themselves at fork; GNU's does not).
_team_leaders = set()
_dead_pool_in_child = False

# Problems below this many floating-point operations run on one thread: waking a team costs
# a few microseconds, more than such a problem's arithmetic. Tests lower it to force teams.
DEFAULT_SERIAL_THRESHOLD = 2_000_000
serial_threshold = DEFAULT_SERIAL_THRESHOLD


def set_num_threads(n):
    """Use n threads in fastnn's kernels from now on; None goes back to OpenMP's default.

    Parameters
    ----------
    n : int >= 1 or None
    """
    global _requested_threads, _forked_serial
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"n must be an int or None, got {type(n).__name__}")
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
    _requested_threads = n
    if _forked_serial and n != 1 and _dead_pool_in_child and _gnu_openmp_loaded():
        warnings.warn(
            "fastnn: this process was forked from a thread that had run fastnn's kernels on "
            "several threads; GNU OpenMP (libgomp) cannot start threads in such a child (it "
            "would hang), so fastnn stays on 1 thread here. Use multiprocessing's 'spawn' or "
            "'forkserver' start method to get threads in worker processes.",
            RuntimeWarning,
            stacklevel=2,
        )
        return
    _forked_serial = False


def get_num_threads():
    """The thread count kernels use now.

    The value given to `set_num_threads` if any, else OpenMP's current maximum, read at each
    call (so OMP_NUM_THREADS and threadpoolctl's limits apply). 1 in a forked child until
    `set_num_threads` is called there: GNU OpenMP's thread pool does not survive fork(). In a
    child forked from a thread that ran a multi-threaded kernel, with GNU OpenMP, it stays 1
    (`set_num_threads` warns): a new team there would never start.
    """
    if _forked_serial:
        return 1
    if _requested_threads is not None:
        return _requested_threads
    if _kernels is None:
        return 1
    return _kernels.max_threads()


def threads_for(flops):
    """Threads to use for a problem of this many FLOPs."""
    if flops < serial_threshold:
        return 1
    n = get_num_threads()
    if n > 1:
        _team_leaders.add(threading.get_ident())
    return n


def _gnu_openmp_loaded():
    """True when GNU OpenMP is mapped into this process (or when that cannot be read)."""
    if _kernels is None or not _kernels.openmp_enabled():
        return False
    try:
        with open("/proc/self/maps") as maps:
            return any("libgomp" in os.path.basename(line.split()[-1]) for line in maps if "/" in line)
    except OSError:
        return True


if _kernels is not None:
    _kernels._threads_for = threads_for


def _after_fork_in_child():
    global _forked_serial, _dead_pool_in_child, _team_leaders
    _forked_serial = True
    # Only the forking thread survives, under the same ident; the other leaders are gone.
    _dead_pool_in_child = _dead_pool_in_child or threading.get_ident() in _team_leaders
    _team_leaders = set()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def cpu_path():
    return _kernels.active_isa() if _kernels is not None else "reference"


def set_cpu_path(name):
    """Force the instruction-set path ('portable', 'avx2', 'avx512') at or below the CPU's."""
    if _kernels is None:
        raise RuntimeError(f"fastnn: compiled kernels are not loaded ({LOAD_ERROR})")
    return _kernels.set_isa(name)


def show_config(print_out=True):
    """Print and return fastnn's build and runtime configuration.

    Returns
    -------
    dict with keys: version, compiled (bool), load_error (str or None), openmp (bool),
    cpu_path (active instruction-set path), cpu_best (best the CPU supports), num_threads,
    gemm_kernels (per-dtype micro-kernel names and blocking).
    """
    info = {
        "version": __version__,
        "compiled": _kernels is not None,
        "load_error": LOAD_ERROR,
        "openmp": bool(_kernels.openmp_enabled()) if _kernels is not None else False,
        "cpu_path": cpu_path(),
        "cpu_best": _kernels.cpu_isa() if _kernels is not None else None,
        "num_threads": get_num_threads(),
        "gemm_kernels": _kernels.gemm_kernels() if _kernels is not None else None,
    }
    if print_out:
        width = max(map(len, info))
        for key, value in info.items():
            print(f"{key:<{width}} : {value}")
    return info
