# Declarations of the FMA peak probe (kernels/c/fnn_peak.h).
cdef extern from "fnn_peak.h" nogil:
    double fnn_peak_chains_f32(int isa, long long iters)
    double fnn_peak_chains_f64(int isa, long long iters)
    int fnn_peak_chain_count()
    int fnn_peak_lanes_f32(int isa)
    int fnn_peak_lanes_f64(int isa)
