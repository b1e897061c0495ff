/*
 * The small-batch recurrent product (see fnn_gates.h). The body lives in fnn_gates_body.h,
 * included per dtype and vector width; thin wrappers compile it for each instruction-set
 * level, 16-byte vectors for the baseline one and 32-byte vectors for AVX2 and AVX-512 (the
 * same source on both: ymm registers are what this product needs).
 */
#include "fnn_gates.h"
#include "fnn_isa.h"

#include <string.h>

/* gcc warns that passing 32-byte vectors between the always-inline helpers changes the ABI
 * without AVX; no such call survives inlining. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
#if defined(__GNUC__) || defined(__clang__)
#define FNN_VECTOR_EXT 1
#endif

#define T float
#define FNN_VB 16
#define FNN_SFX(name) name##_f32_v16
#include "fnn_gates_body.h"
#undef FNN_VB
#undef FNN_SFX
#define FNN_VB 32
#define FNN_SFX(name) name##_f32_v32
#include "fnn_gates_body.h"
#undef FNN_VB
#undef FNN_SFX
#undef T

#define T double
#define FNN_VB 16
#define FNN_SFX(name) name##_f64_v16
#include "fnn_gates_body.h"
#undef FNN_VB
#undef FNN_SFX
#define FNN_VB 32
#define FNN_SFX(name) name##_f64_v32
#include "fnn_gates_body.h"
#undef FNN_VB
#undef FNN_SFX
#undef T

#define FNN_GEMV_VARIANTS(suffix, attr, width)                                                              \
    static attr void gemv_f32_##suffix(fnn_int k, const float *a, const float *b, fnn_int n, float *c,     \
                                       int accumulate, int reverse)                                          \
    { gemv_f32_##width(k, a, b, n, c, accumulate, reverse); }                                              \
    static attr void gemv_f64_##suffix(fnn_int k, const double *a, const double *b, fnn_int n, double *c,  \
                                       int accumulate, int reverse)                                          \
    { gemv_f64_##width(k, a, b, n, c, accumulate, reverse); }

FNN_GEMV_VARIANTS(portable, , v16)
#ifdef FNN_X86_64
FNN_GEMV_VARIANTS(avx2, FNN_TARGET_AVX2, v32)
FNN_GEMV_VARIANTS(avx512, FNN_TARGET_AVX512, v32)
#endif

void fnn_gates_gemv_f32(fnn_int k, const float *a, const float *b, fnn_int n, float *c, int accumulate,
                        int reverse)
{
    FNN_DISPATCH(gemv_f32, (k, a, b, n, c, accumulate, reverse))
}

void fnn_gates_gemv_f64(fnn_int k, const double *a, const double *b, fnn_int n, double *c, int accumulate,
                        int reverse)
{
    FNN_DISPATCH(gemv_f64, (k, a, b, n, c, accumulate, reverse))
}
