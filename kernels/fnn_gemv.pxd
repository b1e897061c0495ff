# Declarations of the row-times-packed-panel products (kernels/c/fnn_gemv.h).
from fnn_gemm cimport fnn_int

cdef extern from "fnn_gemv.h" nogil:
    void fnn_gemv_packed_f32(fnn_int k, const float *a, const float *b, fnn_int n, int nr, float *c)
    void fnn_gemv_packed_f64(fnn_int k, const double *a, const double *b, fnn_int n, int nr, double *c)
