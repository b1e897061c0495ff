/*
 * AVX-512F micro-kernels. As in fnn_gemm_avx2.c, only the functions carry the
 * target attribute, and the dispatcher runs them only on CPUs (and OSes) with
 * AVX-512F. On other architectures this file is empty.
 *
 * Tiles: 6x64 f32 and 6x32 f64, 6 rows x 4 zmm vectors = 24 accumulators of
 * the 32 registers, with 4 for the B row and one for the broadcast A value.
 * Wide rather than tall: per k step the kernel loads 4 B vectors and 6 A
 * scalars for 24 FMAs, so loads never limit it, and fringe columns are
 * handled with masked loads and stores. (8x48 was measured too: slower on
 * both the square and the conv shapes.)
 */
#include "fnn_gemm_internal.h"

#ifdef FNN_X86_64
#include <immintrin.h>

enum { F32_MR = 6, F32_NR = 64, F64_MR = 6, F64_NR = 32 };

/* Lanes of the v-th vector (of `width` lanes) that fall inside n columns. */
static inline unsigned fnn_lane_mask(int n, int v, int width)
{
    const int left = n - v * width;
    if (left >= width)
        return (1u << width) - 1u;
    return left > 0 ? (1u << left) - 1u : 0u;
}

/*
 * The tile body for the first mr of the 6 rows and the first nv of the 4
 * vector columns. Always inlined with constant mr and nv, so each call site
 * becomes its own register-allocated kernel.
 */
FNN_TARGET_AVX512 static FNN_FORCE_INLINE void
fnn_f32_tile_avx512_pf(const int mr, const int nv, fnn_int k,
                       const float *FNN_RESTRICT a, const float *FNN_RESTRICT b,
                       float *c, fnn_int ldc, int m, int n, int flags,
                       const float *bias, const float *pf)
{
    __m512 acc[F32_MR][4];
    __mmask16 mask[4];
    fnn_int p;
    int i, v;

    FNN_UNROLL(6)
    for (i = 0; i < mr; i++) {
        FNN_UNROLL(4)
        for (v = 0; v < nv; v++)
            acc[i][v] = _mm512_setzero_ps();
    }
    /* C is touched only after the k loop; start fetching it now so a tile
       of a C too big for L2 does not stall on L3 misses at the end */
    FNN_UNROLL(6)
    for (i = 0; i < mr; i++) {
        if (i < m) {
            FNN_UNROLL(4)
            for (v = 0; v < nv; v++)
                _mm_prefetch((const char *)(c + i * ldc + 16 * v), _MM_HINT_T0);
        }
    }
    FNN_UNROLL(2)
    for (p = 0; p < k; p++) {
        __m512 bv[4];
        FNN_UNROLL(4)
        for (v = 0; v < nv; v++)
            bv[v] = _mm512_loadu_ps(b + 16 * v);
        if (pf != NULL)
            _mm_prefetch((const char *)(pf + 16 * p), _MM_HINT_T1);
        FNN_UNROLL(6)
        for (i = 0; i < mr; i++) {
            const __m512 ai = _mm512_set1_ps(a[i]);
            FNN_UNROLL(4)
            for (v = 0; v < nv; v++)
                acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
        }
        a += F32_MR;
        b += F32_NR;
    }

    /* Epilogue: rows past m are skipped, columns past n masked off; a masked
       load reads nothing from the masked-off lanes, so C past n is never
       touched. */
    FNN_UNROLL(4)
    for (v = 0; v < nv; v++)
        mask[v] = (__mmask16)fnn_lane_mask(n, v, 16);
    FNN_UNROLL(6)
    for (i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        if (i >= m)
            break;
        FNN_UNROLL(4)
        for (v = 0; v < nv; v++) {
            __m512 r = acc[i][v];
            if (flags & FNN_ACCUMULATE)
                r = _mm512_add_ps(_mm512_maskz_loadu_ps(mask[v], ci + 16 * v), r);
            if (flags & FNN_BIAS_ROW)
                r = _mm512_add_ps(r, _mm512_set1_ps(bias[i]));
            else if (flags & FNN_BIAS_COL)
                r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(mask[v], bias + 16 * v));
            _mm512_mask_storeu_ps(ci + 16 * v, mask[v], r);
        }
    }
}

#define fnn_f32_tile_avx512(mr, nv, k, a, b, c, ldc, m, n, flags, bias) \
    fnn_f32_tile_avx512_pf(mr, nv, k, a, b, c, ldc, m, n, flags, bias, (const float *)NULL)

/*
 * Fringe tiles compute only the rows and vector columns that hold real
 * elements: conv outputs 196 pixels wide would otherwise spend a quarter of
 * their last panel on padding, 64 or 128 channels a few percent on two
 * padding rows. Each computed element still sees the same FMAs in the same
 * order, so its value does not depend on the tile's shape.
 */
FNN_TARGET_AVX512
static void fnn_f32_gemm_ukernel_6x64_avx512(fnn_int k, const float *a,
                                             const float *b, float *c,
                                             fnn_int ldc, int m, int n,
                                             int flags, const float *bias)
{
    if (m == F32_MR) {
        if (n > 48)
            fnn_f32_tile_avx512(6, 4, k, a, b, c, ldc, m, n, flags, bias);
        else if (n > 32)
            fnn_f32_tile_avx512(6, 3, k, a, b, c, ldc, m, n, flags, bias);
        else if (n > 16)
            fnn_f32_tile_avx512(6, 2, k, a, b, c, ldc, m, n, flags, bias);
        else
            fnn_f32_tile_avx512(6, 1, k, a, b, c, ldc, m, n, flags, bias);
        return;
    }
    /* short tiles are one per M block: all 4 columns, whatever n */
    switch (m) {
    case 5:
        fnn_f32_tile_avx512(5, 4, k, a, b, c, ldc, m, n, flags, bias);
        break;
    case 4:
        fnn_f32_tile_avx512(4, 4, k, a, b, c, ldc, m, n, flags, bias);
        break;
    case 3:
        fnn_f32_tile_avx512(3, 4, k, a, b, c, ldc, m, n, flags, bias);
        break;
    case 2:
        fnn_f32_tile_avx512(2, 4, k, a, b, c, ldc, m, n, flags, bias);
        break;
    case 1:
        fnn_f32_tile_avx512(1, 4, k, a, b, c, ldc, m, n, flags, bias);
        break;
    default:
        break;
    }
}

FNN_TARGET_AVX512 static FNN_FORCE_INLINE void
fnn_f64_tile_avx512_pf(const int mr, const int nv, fnn_int k,
                       const double *FNN_RESTRICT a, const double *FNN_RESTRICT b,
                       double *c, fnn_int ldc, int m, int n, int flags,
                       const double *bias, const double *pf)
{
    __m512d acc[F64_MR][4];
    __mmask8 mask[4];
    fnn_int p;
    int i, v;

    FNN_UNROLL(6)
    for (i = 0; i < mr; i++) {
        FNN_UNROLL(4)
        for (v = 0; v < nv; v++)
            acc[i][v] = _mm512_setzero_pd();
    }
    /* C is touched only after the k loop; start fetching it now so a tile
       of a C too big for L2 does not stall on L3 misses at the end */
    FNN_UNROLL(6)
    for (i = 0; i < mr; i++) {
        if (i < m) {
            FNN_UNROLL(4)
            for (v = 0; v < nv; v++)
                _mm_prefetch((const char *)(c + i * ldc + 8 * v), _MM_HINT_T0);
        }
    }
    FNN_UNROLL(2)
    for (p = 0; p < k; p++) {
        __m512d bv[4];
        FNN_UNROLL(4)
        for (v = 0; v < nv; v++)
            bv[v] = _mm512_loadu_pd(b + 8 * v);
        if (pf != NULL)
            _mm_prefetch((const char *)(pf + 8 * p), _MM_HINT_T1);
        FNN_UNROLL(6)
        for (i = 0; i < mr; i++) {
            const __m512d ai = _mm512_set1_pd(a[i]);
            FNN_UNROLL(4)
            for (v = 0; v < nv; v++)
                acc[i][v] = _mm512_fmadd_pd(ai, bv[v], acc[i][v]);
        }
        a += F64_MR;
        b += F64_NR;
    }

    FNN_UNROLL(4)
    for (v = 0; v < nv; v++)
        mask[v] = (__mmask8)fnn_lane_mask(n, v, 8);
    FNN_UNROLL(6)
    for (i = 0; i < mr; i++) {
        double *ci = c + i * ldc;
        if (i >= m)
            break;
        FNN_UNROLL(4)
        for (v = 0; v < nv; v++) {
            __m512d r = acc[i][v];
            if (flags & FNN_ACCUMULATE)
                r = _mm512_add_pd(_mm512_maskz_loadu_pd(mask[v], ci + 8 * v), r);
            if (flags & FNN_BIAS_ROW)
                r = _mm512_add_pd(r, _mm512_set1_pd(bias[i]));
            else if (flags & FNN_BIAS_COL)
                r = _mm512_add_pd(r, _mm512_maskz_loadu_pd(mask[v], bias + 8 * v));
            _mm512_mask_storeu_pd(ci + 8 * v, mask[v], r);
        }
    }
}

#define fnn_f64_tile_avx512(mr, nv, k, a, b, c, ldc, m, n, flags, bias) \
    fnn_f64_tile_avx512_pf(mr, nv, k, a, b, c, ldc, m, n, flags, bias, (const double *)NULL)

FNN_TARGET_AVX512
static void fnn_f64_gemm_ukernel_6x32_avx512(fnn_int k, const double *a,
                                             const double *b, double *c,
                                             fnn_int ldc, int m, int n,
                                             int flags, const double *bias)
{
    if (m == F64_MR) {
        if (n > 24)
            fnn_f64_tile_avx512(6, 4, k, a, b, c, ldc, m, n, flags, bias);
        else if (n > 16)
            fnn_f64_tile_avx512(6, 3, k, a, b, c, ldc, m, n, flags, bias);
        else if (n > 8)
            fnn_f64_tile_avx512(6, 2, k, a, b, c, ldc, m, n, flags, bias);
        else
            fnn_f64_tile_avx512(6, 1, k, a, b, c, ldc, m, n, flags, bias);
        return;
    }
    switch (m) {
    case 5:
        fnn_f64_tile_avx512(5, 4, k, a, b, c, ldc, m, n, flags, bias);
        break;
    case 4:
        fnn_f64_tile_avx512(4, 4, k, a, b, c, ldc, m, n, flags, bias);
        break;
    case 3:
        fnn_f64_tile_avx512(3, 4, k, a, b, c, ldc, m, n, flags, bias);
        break;
    case 2:
        fnn_f64_tile_avx512(2, 4, k, a, b, c, ldc, m, n, flags, bias);
        break;
    case 1:
        fnn_f64_tile_avx512(1, 4, k, a, b, c, ldc, m, n, flags, bias);
        break;
    default:
        break;
    }
}

/*
 * fnn_gemm_macro_f32/_f64 for the 6x64 (6x32) kernel, prefetching into L2, while it
 * computes one B micro-panel, the one after it (bpack + NR k, or `after` past the last panel;
 * NULL: none): the first four row tiles each fetch a quarter of it (NR / 4 values, one line),
 * one line per k step. Without it the next panel comes from L3 on demand at the start of
 * each one (the packed B block of a large product is 4-8 MiB). Same FMAs in the same order
 * as the plain macro-kernel. One body for both dtypes.
 */
#define FNN_MACRO_PF_AVX512(T, NAME, MR, NR, FULL_FROM, TILE_PF, UKERNEL)                        \
    FNN_TARGET_AVX512                                                                             \
    void NAME(fnn_int m, fnn_int n, fnn_int k, const T *apack, const T *bpack, T *c, fnn_int ldc, \
              int flags, const T *bias, const T *after)                                          \
    {                                                                                             \
        fnn_int ir, jr;                                                                           \
        for (jr = 0; jr < n; jr += NR) {                                                          \
            const int nb = n - jr < NR ? (int)(n - jr) : NR;                                      \
            const T *bp = bpack + jr * k;                                                         \
            const T *next = jr + NR < n ? bp + NR * k : after;                                    \
            fnn_int tile = 0;                                                                     \
            for (ir = 0; ir < m; ir += MR, tile++) {                                              \
                const int mb = m - ir < MR ? (int)(m - ir) : MR;                                  \
                const T *pf = (next != NULL && tile < 4) ? next + tile * (NR / 4) * k : NULL;     \
                const T *bias_t = NULL;                                                           \
                if (flags & FNN_BIAS_ROW)                                                         \
                    bias_t = bias + ir;                                                           \
                else if (flags & FNN_BIAS_COL)                                                    \
                    bias_t = bias + jr;                                                           \
                if (mb == MR && nb > FULL_FROM)                                                   \
                    TILE_PF(6, 4, k, apack + ir * k, bp, c + ir * ldc + jr, ldc, mb, nb, flags,   \
                            bias_t, pf);                                                          \
                else                                                                              \
                    UKERNEL(k, apack + ir * k, bp, c + ir * ldc + jr, ldc, mb, nb, flags, bias_t); \
            }                                                                                     \
        }                                                                                         \
    }

FNN_MACRO_PF_AVX512(float, fnn_f32_gemm_macro_pf_avx512, F32_MR, F32_NR, 48, fnn_f32_tile_avx512_pf,
                    fnn_f32_gemm_ukernel_6x64_avx512)
FNN_MACRO_PF_AVX512(double, fnn_f64_gemm_macro_pf_avx512, F64_MR, F64_NR, 24, fnn_f64_tile_avx512_pf,
                    fnn_f64_gemm_ukernel_6x32_avx512)

const fnn_gemm_desc_f32 fnn_gemm_desc_f32_avx512 = {
    "fnn_f32_gemm_ukernel_6x64_avx512", FNN_ISA_AVX512, F32_MR, F32_NR,
    /* mc, kc, nc: A block 192 KiB (L2), B micro-panel 128 KiB streamed
       from L2, B block 8 MiB (L3); larger kc measured faster on Zen 4,
       mostly through fewer C updates */
    16 * F32_MR, 512, 64 * F32_NR,
    fnn_f32_gemm_ukernel_6x64_avx512};

const fnn_gemm_desc_f64 fnn_gemm_desc_f64_avx512 = {
    "fnn_f64_gemm_ukernel_6x32_avx512", FNN_ISA_AVX512, F64_MR, F64_NR,
    /* same B panels in bytes; a 768 KiB A block measured better for f64 */
    32 * F64_MR, 512, 64 * F64_NR,
    fnn_f64_gemm_ukernel_6x32_avx512};

#endif /* FNN_X86_64 */
