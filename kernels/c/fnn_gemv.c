/* Row-times-packed-panel products (see fnn_gemv.h), vectorised per instruction-set level. */
#include "fnn_gemv.h"
#include "fnn_isa.h"

#define FNN_GEMV_MAX_NR 64

static FNN_FORCE_INLINE void gemv_packed_f32(fnn_int k, const float *FNN_RESTRICT a,
                                             const float *FNN_RESTRICT b, fnn_int n, int nr,
                                             float *FNN_RESTRICT c)
{
    float acc[FNN_GEMV_MAX_NR];
    fnn_int panel, p;
    int j, jn;
    for (panel = 0; panel * nr < n; panel++) {
        const float *FNN_RESTRICT bp = b + panel * k * nr;
        jn = n - panel * nr < nr ? (int)(n - panel * nr) : nr;
        for (j = 0; j < nr; j++)
            acc[j] = 0;
        for (p = 0; p < k; p++) {
            float av = a[p];
            for (j = 0; j < nr; j++)
                acc[j] += av * bp[p * nr + j];
        }
        for (j = 0; j < jn; j++)
            c[panel * nr + j] += acc[j];
    }
}

static FNN_FORCE_INLINE void gemv_packed_f64(fnn_int k, const double *FNN_RESTRICT a,
                                             const double *FNN_RESTRICT b, fnn_int n, int nr,
                                             double *FNN_RESTRICT c)
{
    double acc[FNN_GEMV_MAX_NR];
    fnn_int panel, p;
    int j, jn;
    for (panel = 0; panel * nr < n; panel++) {
        const double *FNN_RESTRICT bp = b + panel * k * nr;
        jn = n - panel * nr < nr ? (int)(n - panel * nr) : nr;
        for (j = 0; j < nr; j++)
            acc[j] = 0;
        for (p = 0; p < k; p++) {
            double av = a[p];
            for (j = 0; j < nr; j++)
                acc[j] += av * bp[p * nr + j];
        }
        for (j = 0; j < jn; j++)
            c[panel * nr + j] += acc[j];
    }
}

static void gemv_packed_f32_portable(fnn_int k, const float *a, const float *b, fnn_int n, int nr, float *c)
{
    gemv_packed_f32(k, a, b, n, nr, c);
}
static void gemv_packed_f64_portable(fnn_int k, const double *a, const double *b, fnn_int n, int nr, double *c)
{
    gemv_packed_f64(k, a, b, n, nr, c);
}
#ifdef FNN_X86_64
static FNN_TARGET_AVX2 void gemv_packed_f32_avx2(fnn_int k, const float *a, const float *b, fnn_int n, int nr, float *c)
{
    gemv_packed_f32(k, a, b, n, nr, c);
}
static FNN_TARGET_AVX2 void gemv_packed_f64_avx2(fnn_int k, const double *a, const double *b, fnn_int n, int nr, double *c)
{
    gemv_packed_f64(k, a, b, n, nr, c);
}
static FNN_TARGET_AVX512 void gemv_packed_f32_avx512(fnn_int k, const float *a, const float *b, fnn_int n, int nr, float *c)
{
    gemv_packed_f32(k, a, b, n, nr, c);
}
static FNN_TARGET_AVX512 void gemv_packed_f64_avx512(fnn_int k, const double *a, const double *b, fnn_int n, int nr, double *c)
{
    gemv_packed_f64(k, a, b, n, nr, c);
}
#endif

void fnn_gemv_packed_f32(fnn_int k, const float *a, const float *b, fnn_int n, int nr, float *c)
{
    FNN_DISPATCH(gemv_packed_f32, (k, a, b, n, nr, c))
}

void fnn_gemv_packed_f64(fnn_int k, const double *a, const double *b, fnn_int n, int nr, double *c)
{
    FNN_DISPATCH(gemv_packed_f64, (k, a, b, n, nr, c))
}
