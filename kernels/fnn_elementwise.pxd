# Declarations of the vectorised elementwise kernels (kernels/c/fnn_elementwise.h).
from fnn_gemm cimport fnn_int

cdef extern from "fnn_elementwise.h" nogil:
    void fnn_tanh_f32(float *v, fnn_int n)
    void fnn_tanh_f64(double *v, fnn_int n)
    int fnn_all_finite_f32(const float *v, fnn_int n)
    int fnn_all_finite_f64(const double *v, fnn_int n)
    double fnn_sum_f32(const float *v, fnn_int n)
    double fnn_sum_f64(const double *v, fnn_int n)
