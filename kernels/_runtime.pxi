# Build facts, thread counts and the CPU path, for fastnn._runtime.

ctypedef fused floating:
    float
    double

# Team size of the most recent parallel region, for tests that must prove several
# threads really ran. Written by thread 0 of each team; concurrent calls race benignly.
cdef int _last_team_size = 0

cdef inline void _note_team() noexcept nogil:
    global _last_team_size
    if omp_get_thread_num() == 0:
        _last_team_size = omp_get_num_threads()


cdef inline void _note_serial() noexcept nogil:
    """For kernels that ran their items on the calling thread, outside OpenMP."""
    global _last_team_size
    _last_team_size = 1


def last_team_size():
    """Threads in the most recent parallel region a kernel ran (0 before any)."""
    return _last_team_size


def reset_team_size():
    global _last_team_size
    _last_team_size = 0


def openmp_enabled():
    """True when the extension was built with OpenMP."""
    return bool(FNN_HAVE_OPENMP)


def max_threads():
    """OpenMP's current maximum team size (1 without OpenMP); honours OMP_NUM_THREADS and threadpoolctl."""
    return omp_get_max_threads()


ISA_NAMES = ("portable", "avx2", "avx512")


def cpu_isa():
    """Name of the best instruction-set path this CPU supports."""
    return fnn_isa_name(fnn_cpu_isa()).decode()


def active_isa():
    """Name of the instruction-set path the kernels use now."""
    return fnn_isa_name(fnn_active_isa()).decode()


def set_isa(name):
    """Use a path no higher than the CPU's; returns its name. Raises ValueError otherwise."""
    if name not in ISA_NAMES:
        raise ValueError(f"isa must be one of {ISA_NAMES}, got {name!r}")
    if fnn_set_isa(ISA_NAMES.index(name)) < 0:
        raise ValueError(f"isa {name!r} is not supported by this CPU (best: {cpu_isa()!r})")
    return active_isa()


def gemm_kernels():
    """The active micro-kernels' names and blocking, per dtype."""
    cdef const fnn_gemm_desc_f32 *s = fnn_gemm_f32_desc()
    cdef const fnn_gemm_desc_f64 *d = fnn_gemm_f64_desc()
    return {
        "float32": dict(name=s.name.decode(), mr=s.mr, nr=s.nr, mc=s.mc, kc=s.kc, nc=s.nc),
        "float64": dict(name=d.name.decode(), mr=d.mr, nr=d.nr, mc=d.mc, kc=d.kc, nc=d.nc),
    }
