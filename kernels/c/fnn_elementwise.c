/*
 * Elementwise kernels.
 *
 * tanh for the recurrent kernels. The C library's tanhf is scalar (about 20 ns a call), which
 * would cost more than a batch-1 RNN step's matrix product; this float32 version is a
 * branch-free rational approximation (the one Eigen uses) that the compiler vectorises.
 */
#include <math.h>

#include "fnn_elementwise.h"
#include "fnn_isa.h"

static FNN_FORCE_INLINE void tanh_f32(float *FNN_RESTRICT v, fnn_int n)
{
    /* tanh(x) = x * P(x^2) / Q(x^2) on [-c, c]; beyond c, tanh rounds to +-1 in float32. */
    const float clamp = 7.90531110763549805f;
    const float a1 = 4.89352455891786e-03f, a3 = 6.37261928875436e-04f, a5 = 1.48572235717979e-05f,
                a7 = 5.12229709037114e-08f, a9 = -8.60467152213735e-11f, a11 = 2.00018790482477e-13f,
                a13 = -2.76076847742355e-16f;
    const float b0 = 4.89352518554385e-03f, b2 = 2.26843463243900e-03f, b4 = 1.18534705686654e-04f,
                b6 = 1.19825839466702e-06f;
    fnn_int i;
    for (i = 0; i < n; i++) {
        float x = v[i];
        float xc = x > clamp ? clamp : (x < -clamp ? -clamp : x);
        float x2 = xc * xc;
        float p = x2 * a13 + a11;
        float q = x2 * b6 + b4;
        float r;
        p = p * x2 + a9;
        p = p * x2 + a7;
        p = p * x2 + a5;
        p = p * x2 + a3;
        p = p * x2 + a1;
        p = p * xc;
        q = q * x2 + b2;
        q = q * x2 + b0;
        r = p / q;
        /* tiny |x|: tanh(x) rounds to x; NaN compares false everywhere and is kept as is. */
        v[i] = (x != x || (x < 0.0004f && x > -0.0004f)) ? x : r;
    }
}

static void tanh_f32_portable(float *v, fnn_int n) { tanh_f32(v, n); }
#ifdef FNN_X86_64
static FNN_TARGET_AVX2 void tanh_f32_avx2(float *v, fnn_int n) { tanh_f32(v, n); }
static FNN_TARGET_AVX512 void tanh_f32_avx512(float *v, fnn_int n) { tanh_f32(v, n); }
#endif

void fnn_tanh_f32(float *v, fnn_int n)
{
    FNN_DISPATCH(tanh_f32, (v, n))
}

void fnn_tanh_f64(double *v, fnn_int n)
{
    fnn_int i;
    for (i = 0; i < n; i++)
        v[i] = tanh(v[i]);
}

/* 0 * x is NaN exactly when x is Inf or NaN, so a sum of such products finds both without a
 * branch per element; sixteen lanes keep it vectorisable without reassociating a sum. */
static FNN_FORCE_INLINE int all_finite_f32(const float *FNN_RESTRICT v, fnn_int n)
{
    float lanes[16] = {0};
    fnn_int i = 0;
    int l;
    for (; i + 16 <= n; i += 16)
        for (l = 0; l < 16; l++)
            lanes[l] += v[i + l] * 0.0f;
    for (; i < n; i++)
        lanes[0] += v[i] * 0.0f;
    for (l = 0; l < 16; l++)
        if (lanes[l] != lanes[l])
            return 0;
    return 1;
}

static FNN_FORCE_INLINE int all_finite_f64(const double *FNN_RESTRICT v, fnn_int n)
{
    double lanes[8] = {0};
    fnn_int i = 0;
    int l;
    for (; i + 8 <= n; i += 8)
        for (l = 0; l < 8; l++)
            lanes[l] += v[i + l] * 0.0;
    for (; i < n; i++)
        lanes[0] += v[i] * 0.0;
    for (l = 0; l < 8; l++)
        if (lanes[l] != lanes[l])
            return 0;
    return 1;
}

static int all_finite_f32_portable(const float *v, fnn_int n) { return all_finite_f32(v, n); }
static int all_finite_f64_portable(const double *v, fnn_int n) { return all_finite_f64(v, n); }
#ifdef FNN_X86_64
static FNN_TARGET_AVX2 int all_finite_f32_avx2(const float *v, fnn_int n) { return all_finite_f32(v, n); }
static FNN_TARGET_AVX2 int all_finite_f64_avx2(const double *v, fnn_int n) { return all_finite_f64(v, n); }
static FNN_TARGET_AVX512 int all_finite_f32_avx512(const float *v, fnn_int n) { return all_finite_f32(v, n); }
static FNN_TARGET_AVX512 int all_finite_f64_avx512(const double *v, fnn_int n) { return all_finite_f64(v, n); }
#endif

int fnn_all_finite_f32(const float *v, fnn_int n)
{
    FNN_DISPATCH_RETURN(all_finite_f32, (v, n))
}

int fnn_all_finite_f64(const double *v, fnn_int n)
{
    FNN_DISPATCH_RETURN(all_finite_f64, (v, n))
}

/* Sums in double over FNN_SUM_LANES interleaved lanes, added together in order at the end:
 * that many independent chains keep the vector adder busy (one chain would wait out its
 * latency at every step), and the order is fixed, so the result is too. */
#define FNN_SUM_LANES 64

static FNN_FORCE_INLINE double sum_f32(const float *FNN_RESTRICT v, fnn_int n)
{
    double lanes[FNN_SUM_LANES] = {0}, total = 0;
    fnn_int i = 0;
    int l;
    for (; i + FNN_SUM_LANES <= n; i += FNN_SUM_LANES)
        for (l = 0; l < FNN_SUM_LANES; l++)
            lanes[l] += (double)v[i + l];
    for (; i < n; i++)
        lanes[i % FNN_SUM_LANES] += (double)v[i];
    for (l = 0; l < FNN_SUM_LANES; l++)
        total += lanes[l];
    return total;
}

static FNN_FORCE_INLINE double sum_f64(const double *FNN_RESTRICT v, fnn_int n)
{
    double lanes[FNN_SUM_LANES] = {0}, total = 0;
    fnn_int i = 0;
    int l;
    for (; i + FNN_SUM_LANES <= n; i += FNN_SUM_LANES)
        for (l = 0; l < FNN_SUM_LANES; l++)
            lanes[l] += v[i + l];
    for (; i < n; i++)
        lanes[i % FNN_SUM_LANES] += v[i];
    for (l = 0; l < FNN_SUM_LANES; l++)
        total += lanes[l];
    return total;
}

static double sum_f32_portable(const float *v, fnn_int n) { return sum_f32(v, n); }
static double sum_f64_portable(const double *v, fnn_int n) { return sum_f64(v, n); }
#ifdef FNN_X86_64
static FNN_TARGET_AVX2 double sum_f32_avx2(const float *v, fnn_int n) { return sum_f32(v, n); }
static FNN_TARGET_AVX2 double sum_f64_avx2(const double *v, fnn_int n) { return sum_f64(v, n); }
static FNN_TARGET_AVX512 double sum_f32_avx512(const float *v, fnn_int n) { return sum_f32(v, n); }
static FNN_TARGET_AVX512 double sum_f64_avx512(const double *v, fnn_int n) { return sum_f64(v, n); }
#endif

double fnn_sum_f32(const float *v, fnn_int n)
{
    FNN_DISPATCH_RETURN(sum_f32, (v, n))
}

double fnn_sum_f64(const double *v, fnn_int n)
{
    FNN_DISPATCH_RETURN(sum_f64, (v, n))
}
