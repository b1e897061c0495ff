# Declarations of the vectorised activations (kernels/c/fnn_activation.h).
from fnn_gemm cimport fnn_int

cdef extern from "fnn_activation.h" nogil:
    void fnn_tanh_f32(float *v, fnn_int n)
    void fnn_tanh_f64(double *v, fnn_int n)
