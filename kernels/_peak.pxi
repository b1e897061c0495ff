# The FMA peak probe's driver: register-only multiply-add chains (kernels/c/fnn_peak.c) on a
# team of threads, one chain set per thread, for fastnn._runtime.fma_peak.


def peak_shape(str isa, bint f64):
    """(chains, lanes) of one step of the probe at this level: 2 * chains * lanes FLOPs."""
    cdef int level = ISA_NAMES.index(isa)
    return fnn_peak_chain_count(), (fnn_peak_lanes_f64(level) if f64 else fnn_peak_lanes_f32(level))


def peak_run(str isa, bint f64, int threads, long long steps):
    """Run `steps` steps of the chains on each of `threads` threads at once (GIL released).

    Returns (threads that really ran, the chains' sum). The caller checked `isa` against the
    CPU and times the call; each thread's sum is kept so no chain can be optimised away."""
    cdef int level = ISA_NAMES.index(isa)
    cdef Py_ssize_t t
    cdef double total = 0.0
    cdef double *sums = <double *>malloc(max(threads, 1) * sizeof(double))
    if sums == NULL:
        raise MemoryError()
    reset_team_size()
    # One iteration per thread (chunk 1): each thread runs one chain set, all at the same time.
    for t in prange(threads, nogil=True, num_threads=threads, schedule="static", chunksize=1):
        _note_team()
        if f64:
            sums[t] = fnn_peak_chains_f64(level, steps)
        else:
            sums[t] = fnn_peak_chains_f32(level, steps)
    for t in range(threads):
        total += sums[t]
    free(sums)
    return max(last_team_size(), 1), total
