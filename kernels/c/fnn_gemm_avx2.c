/*
 * AVX2 + FMA micro-kernels. Only the functions carry the target attribute
 * (the build passes no -mavx2), so nothing here runs unless the dispatcher in
 * fnn_gemm.c found AVX2 and FMA on the CPU. MSVC compiles the intrinsics
 * without any attribute. On other architectures this file is empty.
 *
 * Tiles: 6x16 f32 and 6x8 f64, i.e. 6 rows x 2 ymm vectors = 12 accumulator
 * registers of the 16, leaving room for the two B vectors and the broadcast.
 */
#include "fnn_gemm_internal.h"

#ifdef FNN_X86_64
#include <immintrin.h>

enum { F32_MR = 6, F32_NR = 16, F64_MR = 6, F64_NR = 8 };

FNN_TARGET_AVX2
static void fnn_f32_gemm_ukernel_6x16_avx2(fnn_int k, const float *FNN_RESTRICT a,
                                           const float *FNN_RESTRICT b,
                                           float *c, fnn_int ldc, int m, int n,
                                           int flags, const float *bias)
{
    __m256 acc[F32_MR][2];
    fnn_int p;
    int i, v;

    FNN_UNROLL(6)
    for (i = 0; i < F32_MR; i++) {
        acc[i][0] = _mm256_setzero_ps();
        acc[i][1] = _mm256_setzero_ps();
    }
    FNN_UNROLL(4)
    for (p = 0; p < k; p++) {
        const __m256 b0 = _mm256_loadu_ps(b);
        const __m256 b1 = _mm256_loadu_ps(b + 8);
        FNN_UNROLL(6)
        for (i = 0; i < F32_MR; i++) {
            const __m256 ai = _mm256_broadcast_ss(a + i);
            acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
        }
        a += F32_MR;
        b += F32_NR;
    }

    if (m == F32_MR && n == F32_NR) {
        FNN_UNROLL(6)
        for (i = 0; i < F32_MR; i++) {
            float *ci = c + i * ldc;
            FNN_UNROLL(2)
            for (v = 0; v < 2; v++) {
                __m256 r = acc[i][v];
                if (flags & FNN_ACCUMULATE)
                    r = _mm256_add_ps(_mm256_loadu_ps(ci + 8 * v), r);
                if (flags & FNN_BIAS_ROW)
                    r = _mm256_add_ps(r, _mm256_broadcast_ss(bias + i));
                else if (flags & FNN_BIAS_COL)
                    r = _mm256_add_ps(r, _mm256_loadu_ps(bias + 8 * v));
                _mm256_storeu_ps(ci + 8 * v, r);
            }
        }
    } else {
        /* Fringe: spill the tile and store its corner in scalar code; AMD's
           vmaskmov stores are slow, and this runs once per tile. */
        FNN_ALIGN64 float tile[F32_MR * F32_NR];
        FNN_UNROLL(6)
        for (i = 0; i < F32_MR; i++) {
            _mm256_store_ps(tile + i * F32_NR, acc[i][0]);
            _mm256_store_ps(tile + i * F32_NR + 8, acc[i][1]);
        }
        fnn_store_tile_f32(tile, F32_NR, c, ldc, m, n, flags, bias);
    }
}

FNN_TARGET_AVX2
static void fnn_f64_gemm_ukernel_6x8_avx2(fnn_int k, const double *FNN_RESTRICT a,
                                          const double *FNN_RESTRICT b,
                                          double *c, fnn_int ldc, int m, int n,
                                          int flags, const double *bias)
{
    __m256d acc[F64_MR][2];
    fnn_int p;
    int i, v;

    FNN_UNROLL(6)
    for (i = 0; i < F64_MR; i++) {
        acc[i][0] = _mm256_setzero_pd();
        acc[i][1] = _mm256_setzero_pd();
    }
    FNN_UNROLL(4)
    for (p = 0; p < k; p++) {
        const __m256d b0 = _mm256_loadu_pd(b);
        const __m256d b1 = _mm256_loadu_pd(b + 4);
        FNN_UNROLL(6)
        for (i = 0; i < F64_MR; i++) {
            const __m256d ai = _mm256_broadcast_sd(a + i);
            acc[i][0] = _mm256_fmadd_pd(ai, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_pd(ai, b1, acc[i][1]);
        }
        a += F64_MR;
        b += F64_NR;
    }

    if (m == F64_MR && n == F64_NR) {
        FNN_UNROLL(6)
        for (i = 0; i < F64_MR; i++) {
            double *ci = c + i * ldc;
            FNN_UNROLL(2)
            for (v = 0; v < 2; v++) {
                __m256d r = acc[i][v];
                if (flags & FNN_ACCUMULATE)
                    r = _mm256_add_pd(_mm256_loadu_pd(ci + 4 * v), r);
                if (flags & FNN_BIAS_ROW)
                    r = _mm256_add_pd(r, _mm256_broadcast_sd(bias + i));
                else if (flags & FNN_BIAS_COL)
                    r = _mm256_add_pd(r, _mm256_loadu_pd(bias + 4 * v));
                _mm256_storeu_pd(ci + 4 * v, r);
            }
        }
    } else {
        FNN_ALIGN64 double tile[F64_MR * F64_NR];
        FNN_UNROLL(6)
        for (i = 0; i < F64_MR; i++) {
            _mm256_store_pd(tile + i * F64_NR, acc[i][0]);
            _mm256_store_pd(tile + i * F64_NR + 4, acc[i][1]);
        }
        fnn_store_tile_f64(tile, F64_NR, c, ldc, m, n, flags, bias);
    }
}

const fnn_gemm_desc_f32 fnn_gemm_desc_f32_avx2 = {
    "fnn_f32_gemm_ukernel_6x16_avx2", FNN_ISA_AVX2, F32_MR, F32_NR,
    /* mc, kc, nc */ 32 * F32_MR, 384, 256 * F32_NR,
    fnn_f32_gemm_ukernel_6x16_avx2};

const fnn_gemm_desc_f64 fnn_gemm_desc_f64_avx2 = {
    "fnn_f64_gemm_ukernel_6x8_avx2", FNN_ISA_AVX2, F64_MR, F64_NR,
    32 * F64_MR, 256, 256 * F64_NR,
    fnn_f64_gemm_ukernel_6x8_avx2};

#endif /* FNN_X86_64 */
