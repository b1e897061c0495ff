/*
 * Elementwise kernels.
 *
 * tanh for the recurrent kernels: the float32 one of fnn_gates_math.h, which the compiler
 * vectorises (hence no trapping-math assumptions here, see there).
 */
#include <math.h>

#include "fnn_elementwise.h"
#include "fnn_gates_math.h"
#include "fnn_isa.h"

FNN_NO_TRAPPING_MATH

static FNN_FORCE_INLINE void tanh_f32(float *FNN_RESTRICT v, fnn_int n)
{
    fnn_int i;
    for (i = 0; i < n; i++)
        v[i] = fnn_tanh1_f32(v[i]);
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

/* Under FNN_SUM_LANES elements (a small conv plane, summed once per plane) lane l holds just
 * v[l] and the lanes past n stay +0, which adds nothing to a total that starts at +0: the
 * same total is v[0] + v[1] + ... in order, without clearing and adding all 64 lanes. */
static FNN_FORCE_INLINE double sum_f32(const float *FNN_RESTRICT v, fnn_int n)
{
    double lanes[FNN_SUM_LANES] = {0}, total = 0;
    fnn_int i = 0;
    int l;
    if (n < FNN_SUM_LANES) {
        for (; i < n; i++)
            total += (double)v[i];
        return total;
    }
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
    if (n < FNN_SUM_LANES) {
        for (; i < n; i++)
            total += v[i];
        return total;
    }
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
