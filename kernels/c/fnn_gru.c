/*
 * GRU cell kernels (see fnn_gru.h). The bodies live in fnn_gru_body.h, written once and
 * included per dtype; thin wrappers compile them for each instruction-set level, where the
 * compiler vectorises the loops over hidden units (the activations are fnn_gates_math.h's).
 */
#include "fnn_gru.h"
#include "fnn_gates_math.h"
#include "fnn_isa.h"

FNN_NO_TRAPPING_MATH

#define T float
#define FNN_SFX(name) name##_f32
#define FNN_SIGMOID fnn_sigmoid1_f32
#define FNN_TANH fnn_tanh1_f32
#include "fnn_gru_body.h"
#undef T
#undef FNN_SFX
#undef FNN_SIGMOID
#undef FNN_TANH

#define T double
#define FNN_SFX(name) name##_f64
#define FNN_SIGMOID fnn_sigmoid1_f64
#define FNN_TANH fnn_tanh1_f64
#include "fnn_gru_body.h"
#undef T
#undef FNN_SFX
#undef FNN_SIGMOID
#undef FNN_TANH

#define FNN_GRU_VARIANTS(suffix, attr, T, S)                                                                 \
    static attr void cell_##S##_##suffix(fnn_int m, fnn_int hidden, fnn_int j0, fnn_int j1, T *gates,       \
                                         const T *gh, const T *b_hn, const T *h_prev, T *ghn, T *h_next)     \
    { cell_##S(m, hidden, j0, j1, gates, gh, b_hn, h_prev, ghn, h_next); }                                  \
    static attr void backward_##S##_##suffix(fnn_int m, fnn_int hidden, fnn_int j0, fnn_int j1,            \
                                             const T *gates, const T *ghn, const T *h_prev, const T *grad_h,  \
                                             T *carry, int has_carry, T *grad_gi, T *grad_gh, double *grad_b) \
    { backward_##S(m, hidden, j0, j1, gates, ghn, h_prev, grad_h, carry, has_carry, grad_gi, grad_gh, grad_b); }

FNN_GRU_VARIANTS(portable, , float, f32)
FNN_GRU_VARIANTS(portable, , double, f64)
#ifdef FNN_X86_64
FNN_GRU_VARIANTS(avx2, FNN_TARGET_AVX2, float, f32)
FNN_GRU_VARIANTS(avx2, FNN_TARGET_AVX2, double, f64)
FNN_GRU_VARIANTS(avx512, FNN_TARGET_AVX512, float, f32)
FNN_GRU_VARIANTS(avx512, FNN_TARGET_AVX512, double, f64)
#endif

void fnn_gru_cell_f32(fnn_int m, fnn_int hidden, fnn_int j0, fnn_int j1, float *gates, const float *gh,
                      const float *b_hn, const float *h_prev, float *ghn, float *h_next)
{
    FNN_DISPATCH(cell_f32, (m, hidden, j0, j1, gates, gh, b_hn, h_prev, ghn, h_next))
}

void fnn_gru_cell_f64(fnn_int m, fnn_int hidden, fnn_int j0, fnn_int j1, double *gates, const double *gh,
                      const double *b_hn, const double *h_prev, double *ghn, double *h_next)
{
    FNN_DISPATCH(cell_f64, (m, hidden, j0, j1, gates, gh, b_hn, h_prev, ghn, h_next))
}

void fnn_gru_cell_backward_f32(fnn_int m, fnn_int hidden, fnn_int j0, fnn_int j1, const float *gates,
                               const float *ghn, const float *h_prev, const float *grad_h, float *carry,
                               int has_carry, float *grad_gi, float *grad_gh, double *grad_b)
{
    FNN_DISPATCH(backward_f32, (m, hidden, j0, j1, gates, ghn, h_prev, grad_h, carry, has_carry, grad_gi, grad_gh,
                                grad_b))
}

void fnn_gru_cell_backward_f64(fnn_int m, fnn_int hidden, fnn_int j0, fnn_int j1, const double *gates,
                               const double *ghn, const double *h_prev, const double *grad_h, double *carry,
                               int has_carry, double *grad_gi, double *grad_gh, double *grad_b)
{
    FNN_DISPATCH(backward_f64, (m, hidden, j0, j1, gates, ghn, h_prev, grad_h, carry, has_carry, grad_gi, grad_gh,
                                grad_b))
}
