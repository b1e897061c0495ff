/*
 * LSTM cell kernels (see fnn_lstm.h). The bodies live in fnn_lstm_body.h, written once and
 * included per dtype; thin wrappers compile them for each instruction-set level, where the
 * compiler vectorises the loops over hidden units (the activations are fnn_gates_math.h's).
 */
#include "fnn_lstm.h"
#include "fnn_gates_math.h"
#include "fnn_isa.h"

FNN_NO_TRAPPING_MATH

#define T float
#define FNN_SFX(name) name##_f32
#define FNN_SIGMOID fnn_sigmoid1_f32
#define FNN_TANH fnn_tanh1_f32
#include "fnn_lstm_body.h"
#undef T
#undef FNN_SFX
#undef FNN_SIGMOID
#undef FNN_TANH

#define T double
#define FNN_SFX(name) name##_f64
#define FNN_SIGMOID fnn_sigmoid1_f64
#define FNN_TANH fnn_tanh1_f64
#include "fnn_lstm_body.h"
#undef T
#undef FNN_SFX
#undef FNN_SIGMOID
#undef FNN_TANH

#define FNN_LSTM_VARIANTS(suffix, attr, T, S)                                                               \
    static attr void cell_##S##_##suffix(fnn_int m, fnn_int hidden, fnn_int j0, fnn_int j1, T *gates,      \
                                         const T *c_prev, T *c_next, T *h_next)                             \
    { cell_##S(m, hidden, j0, j1, gates, c_prev, c_next, h_next); }                                        \
    static attr void activate_##S##_##suffix(fnn_int m, fnn_int hidden, T *gates)                         \
    { activate_##S(m, hidden, gates); }                                                                    \
    static attr void backward_##S##_##suffix(fnn_int m, fnn_int hidden, fnn_int j0, fnn_int j1,           \
                                             const T *gates, const T *c_prev, const T *c, const T *grad_h,  \
                                             const T *grad_h_rec, T *grad_c, T *grad_gates, double *grad_b) \
    { backward_##S(m, hidden, j0, j1, gates, c_prev, c, grad_h, grad_h_rec, grad_c, grad_gates, grad_b); }

FNN_LSTM_VARIANTS(portable, , float, f32)
FNN_LSTM_VARIANTS(portable, , double, f64)
#ifdef FNN_X86_64
FNN_LSTM_VARIANTS(avx2, FNN_TARGET_AVX2, float, f32)
FNN_LSTM_VARIANTS(avx2, FNN_TARGET_AVX2, double, f64)
FNN_LSTM_VARIANTS(avx512, FNN_TARGET_AVX512, float, f32)
FNN_LSTM_VARIANTS(avx512, FNN_TARGET_AVX512, double, f64)
#endif

void fnn_lstm_cell_f32(fnn_int m, fnn_int hidden, fnn_int j0, fnn_int j1, float *gates,
                       const float *c_prev, float *c_next, float *h_next)
{
    FNN_DISPATCH(cell_f32, (m, hidden, j0, j1, gates, c_prev, c_next, h_next))
}

void fnn_lstm_cell_f64(fnn_int m, fnn_int hidden, fnn_int j0, fnn_int j1, double *gates,
                       const double *c_prev, double *c_next, double *h_next)
{
    FNN_DISPATCH(cell_f64, (m, hidden, j0, j1, gates, c_prev, c_next, h_next))
}

void fnn_lstm_activate_f32(fnn_int m, fnn_int hidden, float *gates)
{
    FNN_DISPATCH(activate_f32, (m, hidden, gates))
}

void fnn_lstm_activate_f64(fnn_int m, fnn_int hidden, double *gates)
{
    FNN_DISPATCH(activate_f64, (m, hidden, gates))
}

void fnn_lstm_cell_backward_f32(fnn_int m, fnn_int hidden, fnn_int j0, fnn_int j1, const float *gates,
                                const float *c_prev, const float *c, const float *grad_h,
                                const float *grad_h_rec, float *grad_c, float *grad_gates, double *grad_b)
{
    FNN_DISPATCH(backward_f32, (m, hidden, j0, j1, gates, c_prev, c, grad_h, grad_h_rec, grad_c, grad_gates, grad_b))
}

void fnn_lstm_cell_backward_f64(fnn_int m, fnn_int hidden, fnn_int j0, fnn_int j1, const double *gates,
                                const double *c_prev, const double *c, const double *grad_h,
                                const double *grad_h_rec, double *grad_c, double *grad_gates, double *grad_b)
{
    FNN_DISPATCH(backward_f64, (m, hidden, j0, j1, gates, c_prev, c, grad_h, grad_h_rec, grad_c, grad_gates, grad_b))
}
