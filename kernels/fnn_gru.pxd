# Declarations of the GRU cell kernels (kernels/c/fnn_gru.h).
from fnn_gemm cimport fnn_int

cdef extern from "fnn_gru.h" nogil:
    void fnn_gru_cell_f32(fnn_int m, fnn_int hidden, fnn_int j0, fnn_int j1, float *gates, const float *gh,
                          const float *b_hn, const float *h_prev, float *ghn, float *h_next)
    void fnn_gru_cell_f64(fnn_int m, fnn_int hidden, fnn_int j0, fnn_int j1, double *gates, const double *gh,
                          const double *b_hn, const double *h_prev, double *ghn, double *h_next)
    void fnn_gru_cell_backward_f32(fnn_int m, fnn_int hidden, fnn_int j0, fnn_int j1, const float *gates,
                                   const float *ghn, const float *h_prev, const float *grad_h, float *carry,
                                   int has_carry, float *grad_gi, float *grad_gh, double *grad_b)
    void fnn_gru_cell_backward_f64(fnn_int m, fnn_int hidden, fnn_int j0, fnn_int j1, const double *gates,
                                   const double *ghn, const double *h_prev, const double *grad_h, double *carry,
                                   int has_carry, double *grad_gi, double *grad_gh, double *grad_b)
