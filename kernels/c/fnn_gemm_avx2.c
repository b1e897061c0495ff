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

/*
 * The tile body for the first mr of the 6 rows and the first nv of the 2
 * vector columns, always inlined with constant mr and nv. Fringe tiles
 * compute only the rows and vectors that hold real elements (a 196-wide conv
 * output, 64 or 128 channels); each computed element sees the same FMAs in
 * the same order whatever the tile's shape, so results do not change.
 */
FNN_TARGET_AVX2 static FNN_FORCE_INLINE void
fnn_f32_tile_avx2(const int mr, const int nv, fnn_int k,
                  const float *FNN_RESTRICT a, const float *FNN_RESTRICT b,
                  float *c, fnn_int ldc, int m, int n, int flags,
                  const float *bias)
{
    __m256 acc[F32_MR][2];
    fnn_int p;
    int i, v;

    FNN_UNROLL(6)
    for (i = 0; i < mr; i++) {
        FNN_UNROLL(2)
        for (v = 0; v < nv; v++)
            acc[i][v] = _mm256_setzero_ps();
    }
    /* C is touched only after the k loop; start fetching it now so a tile
       of a C too big for L2 does not stall on L3 misses at the end */
    FNN_UNROLL(6)
    for (i = 0; i < mr; i++) {
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + 15), _MM_HINT_T0);
    }
    FNN_UNROLL(4)
    for (p = 0; p < k; p++) {
        __m256 bv[2];
        FNN_UNROLL(2)
        for (v = 0; v < nv; v++)
            bv[v] = _mm256_loadu_ps(b + 8 * v);
        FNN_UNROLL(6)
        for (i = 0; i < mr; i++) {
            const __m256 ai = _mm256_broadcast_ss(a + i);
            FNN_UNROLL(2)
            for (v = 0; v < nv; v++)
                acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
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
        for (i = 0; i < mr; i++) {
            FNN_UNROLL(2)
            for (v = 0; v < nv; v++)
                _mm256_store_ps(tile + i * F32_NR + 8 * v, acc[i][v]);
        }
        fnn_store_tile_f32(tile, F32_NR, c, ldc, m, n, flags, bias);
    }
}

FNN_TARGET_AVX2
static void fnn_f32_gemm_ukernel_6x16_avx2(fnn_int k, const float *a, const float *b,
                                          float *c, fnn_int ldc, int m, int n, int flags,
                                          const float *bias)
{
    if (m == F32_MR) {
        if (n > 8)
            fnn_f32_tile_avx2(6, 2, k, a, b, c, ldc, m, n, flags, bias);
        else
            fnn_f32_tile_avx2(6, 1, k, a, b, c, ldc, m, n, flags, bias);
        return;
    }
    switch (m) {
    case 5:
        fnn_f32_tile_avx2(5, 2, k, a, b, c, ldc, m, n, flags, bias);
        break;
    case 4:
        fnn_f32_tile_avx2(4, 2, k, a, b, c, ldc, m, n, flags, bias);
        break;
    case 3:
        fnn_f32_tile_avx2(3, 2, k, a, b, c, ldc, m, n, flags, bias);
        break;
    case 2:
        fnn_f32_tile_avx2(2, 2, k, a, b, c, ldc, m, n, flags, bias);
        break;
    case 1:
        fnn_f32_tile_avx2(1, 2, k, a, b, c, ldc, m, n, flags, bias);
        break;
    default:
        break;
    }
}

FNN_TARGET_AVX2 static FNN_FORCE_INLINE void
fnn_f64_tile_avx2(const int mr, const int nv, fnn_int k,
                  const double *FNN_RESTRICT a, const double *FNN_RESTRICT b,
                  double *c, fnn_int ldc, int m, int n, int flags,
                  const double *bias)
{
    __m256d acc[F64_MR][2];
    fnn_int p;
    int i, v;

    FNN_UNROLL(6)
    for (i = 0; i < mr; i++) {
        FNN_UNROLL(2)
        for (v = 0; v < nv; v++)
            acc[i][v] = _mm256_setzero_pd();
    }
    /* C is touched only after the k loop; start fetching it now so a tile
       of a C too big for L2 does not stall on L3 misses at the end */
    FNN_UNROLL(6)
    for (i = 0; i < mr; i++) {
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + 7), _MM_HINT_T0);
    }
    FNN_UNROLL(4)
    for (p = 0; p < k; p++) {
        __m256d bv[2];
        FNN_UNROLL(2)
        for (v = 0; v < nv; v++)
            bv[v] = _mm256_loadu_pd(b + 4 * v);
        FNN_UNROLL(6)
        for (i = 0; i < mr; i++) {
            const __m256d ai = _mm256_broadcast_sd(a + i);
            FNN_UNROLL(2)
            for (v = 0; v < nv; v++)
                acc[i][v] = _mm256_fmadd_pd(ai, bv[v], acc[i][v]);
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
        /* Fringe: spill the tile and store its corner in scalar code; AMD's
           vmaskmov stores are slow, and this runs once per tile. */
        FNN_ALIGN64 double tile[F64_MR * F64_NR];
        FNN_UNROLL(6)
        for (i = 0; i < mr; i++) {
            FNN_UNROLL(2)
            for (v = 0; v < nv; v++)
                _mm256_store_pd(tile + i * F64_NR + 4 * v, acc[i][v]);
        }
        fnn_store_tile_f64(tile, F64_NR, c, ldc, m, n, flags, bias);
    }
}

FNN_TARGET_AVX2
static void fnn_f64_gemm_ukernel_6x8_avx2(fnn_int k, const double *a, const double *b,
                                         double *c, fnn_int ldc, int m, int n, int flags,
                                         const double *bias)
{
    if (m == F64_MR) {
        if (n > 4)
            fnn_f64_tile_avx2(6, 2, k, a, b, c, ldc, m, n, flags, bias);
        else
            fnn_f64_tile_avx2(6, 1, k, a, b, c, ldc, m, n, flags, bias);
        return;
    }
    switch (m) {
    case 5:
        fnn_f64_tile_avx2(5, 2, k, a, b, c, ldc, m, n, flags, bias);
        break;
    case 4:
        fnn_f64_tile_avx2(4, 2, k, a, b, c, ldc, m, n, flags, bias);
        break;
    case 3:
        fnn_f64_tile_avx2(3, 2, k, a, b, c, ldc, m, n, flags, bias);
        break;
    case 2:
        fnn_f64_tile_avx2(2, 2, k, a, b, c, ldc, m, n, flags, bias);
        break;
    case 1:
        fnn_f64_tile_avx2(1, 2, k, a, b, c, ldc, m, n, flags, bias);
        break;
    default:
        break;
    }
}

const fnn_gemm_desc_f32 fnn_gemm_desc_f32_avx2 = {
    "fnn_f32_gemm_ukernel_6x16_avx2", FNN_ISA_AVX2, F32_MR, F32_NR,
    /* mc, kc, nc: measured on Zen 4 as for the AVX-512 kernels */
    16 * F32_MR, 512, 256 * F32_NR,
    fnn_f32_gemm_ukernel_6x16_avx2};

const fnn_gemm_desc_f64 fnn_gemm_desc_f64_avx2 = {
    "fnn_f64_gemm_ukernel_6x8_avx2", FNN_ISA_AVX2, F64_MR, F64_NR,
    32 * F64_MR, 512, 256 * F64_NR,
    fnn_f64_gemm_ukernel_6x8_avx2};

#endif /* FNN_X86_64 */
