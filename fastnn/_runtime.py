"""Loading the compiled kernels, thread counts, the CPU path and fork safety."""
import os
import threading
import time
import warnings

from fastnn._version import __version__

# The distribution that installs the `fastnn` package (`pip install fastnn-kernels`): the
# Package Index name `fastnn` belongs to an unrelated project.
DISTRIBUTION = "fastnn-kernels"

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


PEAK_DTYPES = ("float32", "float64")


def fma_peak(threads=None, dtype="float32", isa=None, *, seconds=0.05, repeats=5):
    """This machine's floating-point peak for fastnn's kernels, in GFLOP/s.

    Independent multiply-add chains held in registers (no memory traffic), compiled for each
    instruction-set path as the kernels are, run on `threads` threads at once; the best of
    `repeats` runs of about `seconds` each. A fused multiply-add counts two FLOPs, as in every
    FLOP count fastnn reports, so a kernel's GFLOP/s divided by this is its share of peak.

    Parameters
    ----------
    threads : int >= 1 or None
        Threads running chains at once (default: `get_num_threads()`).
    dtype : "float32" or "float64" (or the NumPy dtype)
    isa : "portable", "avx2", "avx512" or None
        The instruction-set path (default: the one the kernels use now, `cpu_path()`); at
        most the CPU's best.
    seconds : float > 0
        Length of one timed run.
    repeats : int >= 1

    Raises
    ------
    RuntimeError
        The compiled kernels are not loaded, or this is a forked child in which GNU OpenMP
        cannot start a team (see `get_num_threads`) and `threads` > 1.
    """
    if _kernels is None:
        raise RuntimeError(f"fastnn: compiled kernels are not loaded ({LOAD_ERROR})")
    if threads is None:
        threads = get_num_threads()
    elif isinstance(threads, bool) or not isinstance(threads, int):
        raise TypeError(f"threads must be an int or None, got {type(threads).__name__}")
    elif threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    name = getattr(dtype, "name", None) or getattr(dtype, "__name__", None) or str(dtype)
    if name not in PEAK_DTYPES:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    if isa is None:
        isa = cpu_path()
    names = _kernels.ISA_NAMES
    if isa not in names:
        raise ValueError(f"isa must be one of {names}, got {isa!r}")
    if names.index(isa) > names.index(_kernels.cpu_isa()):
        raise ValueError(f"isa {isa!r} is not supported by this CPU (best: {_kernels.cpu_isa()!r})")
    if not seconds > 0:
        raise ValueError(f"seconds must be > 0, got {seconds!r}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an int >= 1, got {repeats!r}")
    if threads > 1:
        if _dead_pool_in_child and _gnu_openmp_loaded():
            raise RuntimeError("fastnn: GNU OpenMP cannot start threads in this forked process "
                               "(see get_num_threads); measure with threads=1")
        _team_leaders.add(threading.get_ident())
    f64 = name == "float64"
    chains, lanes = _kernels.peak_shape(isa, f64)
    flop_per_step = 2 * chains * lanes

    def rate(steps):
        t0 = time.perf_counter()
        _kernels.peak_run(isa, f64, threads, steps)
        elapsed = time.perf_counter() - t0
        return threads * steps * flop_per_step / elapsed / 1e9, elapsed

    # Size the runs to `seconds` each from a run of at least a tenth of that: a shorter one
    # would be timed mostly by how fast the team wakes up (a thread that waits for a busy core
    # makes a millisecond run look a hundred times slower than the chains are).
    steps = 20_000
    while True:
        _, elapsed = rate(steps)
        if elapsed >= seconds / 10 or steps >= 1 << 40:
            break
        steps *= 4
    steps = max(steps, int(steps * seconds / max(elapsed, 1e-6)))
    return max(rate(steps)[0] for _ in range(repeats))


def show_config(print_out=True, peak=False):
    """Print and return fastnn's build and runtime configuration.

    Parameters
    ----------
    print_out : bool
        Print it too.
    peak : bool
        Also measure the FMA peak (`fma_peak`) of the active path at the current thread
        count, float32 and float64 (about half a second each).

    Returns
    -------
    dict with keys: distribution ("fastnn-kernels"), version, compiled (bool), load_error (str or None), openmp (bool),
    cpu_path (active instruction-set path), cpu_best (best the CPU supports), num_threads,
    gemm_kernels (per-dtype micro-kernel names and blocking); with `peak`, fma_peak: a dict
    of isa, threads and GFLOP/s per dtype (None without the compiled kernels).
    """
    info = {
        "distribution": DISTRIBUTION,
        "version": __version__,
        "compiled": _kernels is not None,
        "load_error": LOAD_ERROR,
        "openmp": bool(_kernels.openmp_enabled()) if _kernels is not None else False,
        "cpu_path": cpu_path(),
        "cpu_best": _kernels.cpu_isa() if _kernels is not None else None,
        "num_threads": get_num_threads(),
        "gemm_kernels": _kernels.gemm_kernels() if _kernels is not None else None,
    }
    if peak:
        info["fma_peak"] = None if _kernels is None else {
            "isa": info["cpu_path"], "threads": info["num_threads"],
            **{d: round(fma_peak(info["num_threads"], d), 1) for d in PEAK_DTYPES}}
    if print_out:
        width = max(map(len, info))
        for key, value in info.items():
            print(f"{key:<{width}} : {value}")
    return info
