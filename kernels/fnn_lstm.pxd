# Declarations of the LSTM cell kernels (kernels/c/fnn_lstm.h).
from fnn_gemm cimport fnn_int

cdef extern from "fnn_lstm.h" nogil:
    void fnn_lstm_cell_f32(fnn_int m, fnn_int hidden, fnn_int j0, fnn_int j1, float *gates,
                           const float *c_prev, float *c_next, float *h_next)
    void fnn_lstm_cell_f64(fnn_int m, fnn_int hidden, fnn_int j0, fnn_int j1, double *gates,
                           const double *c_prev, double *c_next, double *h_next)
    void fnn_lstm_activate_f32(fnn_int m, fnn_int hidden, float *gates)
    void fnn_lstm_activate_f64(fnn_int m, fnn_int hidden, double *gates)
    void fnn_lstm_cell_backward_f32(fnn_int m, fnn_int hidden, fnn_int j0, fnn_int j1, const float *gates,
                                    const float *c_prev, const float *c, const float *grad_h,
                                    const float *grad_h_rec, float *grad_c, float *grad_gates, double *grad_b)
    void fnn_lstm_cell_backward_f64(fnn_int m, fnn_int hidden, fnn_int j0, fnn_int j1, const double *gates,
                                    const double *c_prev, const double *c, const double *grad_h,
                                    const double *grad_h_rec, double *grad_c, double *grad_gates, double *grad_b)
