# Declarations of the gated recurrent families' small-batch product (kernels/c/fnn_gates.h).
from fnn_gemm cimport fnn_int

cdef extern from "fnn_gates.h" nogil:
    enum:
        FNN_GATES_PANEL_F32
        FNN_GATES_PANEL_F64
    void fnn_gates_gemv_f32(fnn_int k, const float *a, const float *b, fnn_int n, float *c, int accumulate,
                            int reverse)
    void fnn_gates_gemv_f64(fnn_int k, const double *a, const double *b, fnn_int n, double *c, int accumulate,
                            int reverse)
