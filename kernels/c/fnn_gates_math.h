/*
 * The activations of the recurrent kernels, as always-inline scalar functions for loops the
 * compiler vectorises: tanh (the RNN's, LSTM's and GRU's) and the sigmoid (LSTM, GRU gates).
 *
 * float32: the C library's tanhf and expf are scalar calls (about 20 ns each), more than a
 * batch-1 recurrent step's whole matrix product; these are branch-free polynomial forms
 * within a few ulp. float64: the C library's, exactly as NumPy computes them.
 *
 * Written so that gcc vectorises them: every select has plain values in both arms, so no
 * floating-point operation is conditional (a conditional one "could trap" and blocks
 * if-conversion). A file whose loops call these must also be compiled without
 * -ftrapping-math semantics (FNN_NO_TRAPPING_MATH below): otherwise gcc threads the clamps'
 * constants into the arithmetic after them, making it conditional again. Traps are never
 * enabled around these kernels (NumPy reads the status flags of its own loops only), so this
 * changes no result.
 */
#ifndef FNN_GATES_MATH_H
#define FNN_GATES_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fnn_gemm_internal.h"

#if defined(__GNUC__) && !defined(__clang__)
#define FNN_NO_TRAPPING_MATH _Pragma("GCC optimize(\"no-trapping-math\")")
#else
#define FNN_NO_TRAPPING_MATH /* clang does not assume traps when vectorising; MSVC does not vectorise these */
#endif

/* tanh(x) = x * P(x^2) / Q(x^2) on [-c, c] (the rational form Eigen uses); beyond c, tanh
 * rounds to +-1 in float32. Tiny |x|: tanh(x) rounds to x. NaN gives NaN, +-Inf give +-1. */
static FNN_FORCE_INLINE float fnn_tanh1_f32(float x)
{
    const float clamp = 7.90531110763549805f;
    const float a1 = 4.89352455891786e-03f, a3 = 6.37261928875436e-04f, a5 = 1.48572235717979e-05f,
                a7 = 5.12229709037114e-08f, a9 = -8.60467152213735e-11f, a11 = 2.00018790482477e-13f,
                a13 = -2.76076847742355e-16f;
    const float b0 = 4.89352518554385e-03f, b2 = 2.26843463243900e-03f, b4 = 1.18534705686654e-04f,
                b6 = 1.19825839466702e-06f;
    float xc = x, x2, p, q, r, ax;
    int keep;
    xc = xc > clamp ? clamp : xc;
    xc = xc < -clamp ? -clamp : xc;
    x2 = xc * xc;
    p = x2 * a13 + a11;
    q = x2 * b6 + b4;
    p = p * x2 + a9;
    p = p * x2 + a7;
    p = p * x2 + a5;
    p = p * x2 + a3;
    p = p * x2 + a1;
    p = p * xc;
    q = q * x2 + b2;
    q = q * x2 + b0;
    r = p / q;
    ax = x < 0 ? -x : x;
    keep = (x != x) | (ax < 0.0004f); /* NaN compares false everywhere and is kept as is */
    return keep ? x : r;
}

/* exp(x) over the whole float range, Cephes' degree-6 polynomial after x = n ln2 + r,
 * |r| <= ln2 / 2: within 2 ulp, overflowing to Inf above ln(FLT_MAX) and underflowing through
 * the denormals to 0 below. 2^n is applied as 2^(n/2) * 2^(n - n/2), both halves normal
 * numbers for every n in [-150, 128]. NaN gives NaN. */
static FNN_FORCE_INLINE float fnn_exp1_f32(float x)
{
    const float log2e = 1.44269504088896341f, ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
    const float round_magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float xc = x, n, r, p, y, s1, s2;
    int32_t ni, n1, b1, b2;
    xc = xc > 88.8f ? 88.8f : xc;     /* exp(88.8) is already Inf */
    xc = xc < -104.0f ? -104.0f : xc; /* exp(-104) is already 0 */
    n = (xc * log2e + round_magic) - round_magic;
    r = xc - n * ln2_hi;
    r = r - n * ln2_lo;
    p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    y = p * (r * r) + r + 1.0f;
    ni = (int32_t)n; /* NaN: garbage bits here, but y is NaN */
    n1 = ni >> 1;
    b1 = (int32_t)((uint32_t)(n1 + 127) << 23);
    b2 = (int32_t)((uint32_t)(ni - n1 + 127) << 23);
    memcpy(&s1, &b1, sizeof s1);
    memcpy(&s2, &b2, sizeof s2);
    return y * s1 * s2;
}

/* 1 / (1 + exp(-x)): within 3 ulp, exactly 0 below x = -88.7 (as 1 / (1 + Inf)) and 1 above
 * 17 (as 1 / (1 + tiny)), like the formula in float32 arithmetic. NaN gives NaN. */
static FNN_FORCE_INLINE float fnn_sigmoid1_f32(float x)
{
    return 1.0f / (1.0f + fnn_exp1_f32(-x));
}

static FNN_FORCE_INLINE double fnn_tanh1_f64(double x) { return tanh(x); }
static FNN_FORCE_INLINE double fnn_sigmoid1_f64(double x) { return 1.0 / (1.0 + exp(-x)); }

#endif /* FNN_GATES_MATH_H */
