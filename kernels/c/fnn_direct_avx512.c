/*
 * AVX-512F kernel for the direct convolution's commonest case: a 3x3 kernel with stride and
 * dilation 1, which is what the depthwise and 1-input-channel layers of real networks run
 * (forward, and the input gradient as a convolution with the flipped kernel).
 *
 * Why intrinsics here when fnn_direct_body.h's vector-extension code serves every other
 * case: compilers fold each shifted input load into its multiply-add, so that code issues
 * one load (most of them split across cache lines) per multiply-add and runs at about a
 * third of the FMA rate. Here each input row is loaded once per block, as three shifted
 * vectors in registers, and feeds the multiply-adds of every output row that reads it:
 * 10 rows x 3 loads and 9 weight broadcasts per 8 x 9 multiply-adds.
 *
 * Padding: masked loads give 0 in the lanes whose input column is outside the row, and
 * input rows outside the plane are skipped, so no zero-padded copy of the plane is needed.
 * A padded column then adds 0 * w, which equals leaving the tap out only when w is finite:
 * fnn_direct.c sends planes that read padding here only with all-finite weights.
 *
 * The sums are the generic kernel's, in the same order (from zero, channel by channel, taps
 * in (a, b) order, bias last). On other architectures this file is empty.
 */
#include "fnn_direct.h"
#include "fnn_gemm_internal.h"

#ifdef FNN_X86_64
#include <immintrin.h>

/* Bits [lo, hi) of a 32-bit lane mask, the bounds clamped to [0, 32] first (a shift by 32
 * or more, or by a negative count, is undefined). */
static inline unsigned fnn_span_mask(fnn_int lo, fnn_int hi)
{
    unsigned below_hi, below_lo;
    lo = lo < 0 ? 0 : lo > 32 ? 32 : lo;
    hi = hi < 0 ? 0 : hi > 32 ? 32 : hi;
    if (hi <= lo)
        return 0u;
    below_hi = hi == 32 ? 0xFFFFFFFFu : (1u << hi) - 1u;
    below_lo = (1u << lo) - 1u; /* lo < hi <= 32 */
    return below_hi & ~below_lo;
}

/*
 * R (8, 4 or 1) output rows from oh, one vector of output columns from j: y[r*w_out + l] =
 * sum over c < nc, then a, b < 3 (inside the plane) of wt[c*9 + a*3 + b] *
 * x[c*xs + (oh + r - pt + a)*w + j + l - pl + b], then + *bias. mask[b]: the lanes whose
 * input column for kernel column b is inside the row (and whose output column exists);
 * lanes outside mask[3] are not stored. Always inlined with a constant R: the loops unroll
 * into straight code, accumulators and weights in registers.
 */
#define FNN_CONV3X3_ROWS(SFX, T, VT, MASKT, SETZERO, SET1, LOADZ, FMADD, ADD, STOREM)              \
    FNN_TARGET_AVX512 static FNN_FORCE_INLINE void conv3x3_rows_##SFX(                              \
        const int R, const fnn_plane_geom *g, const T *FNN_RESTRICT x, fnn_int nc, fnn_int xs,      \
        const T *FNN_RESTRICT wt, const MASKT *mask, fnn_int oh, fnn_int nrows, fnn_int j,          \
        const T *bias, T *FNN_RESTRICT y)                                                           \
    {                                                                                               \
        VT acc[8], w[9], v0, v1, v2;                                                                \
        const fnn_int ih0 = oh - g->pt, col = j - g->pl;                                            \
        fnn_int c;                                                                                  \
        int r, i;                                                                                   \
        FNN_UNROLL(8)                                                                               \
        for (r = 0; r < R; r++)                                                                     \
            acc[r] = SETZERO();                                                                     \
        for (c = 0; c < nc; c++) {                                                                  \
            const T *FNN_RESTRICT xc = x + c * xs + col;                                            \
            FNN_UNROLL(9)                                                                           \
            for (i = 0; i < 9; i++)                                                                 \
                w[i] = SET1(wt[c * 9 + i]);                                                         \
            FNN_UNROLL(10)                                                                          \
            for (i = 0; i < R + 2; i++) {                                                           \
                const T *xr = xc + (ih0 + i) * g->w;                                                \
                if ((size_t)(ih0 + i) >= (size_t)g->h)                                              \
                    continue; /* a padded row: its taps are left out */                             \
                v0 = LOADZ(mask[0], xr);                                                            \
                v1 = LOADZ(mask[1], xr + 1);                                                        \
                v2 = LOADZ(mask[2], xr + 2);                                                        \
                /* input row i is kernel row i - r of output row r */                               \
                FNN_UNROLL(8)                                                                       \
                for (r = 0; r < R; r++) {                                                           \
                    if (i - r >= 0 && i - r < 3) {                                                  \
                        acc[r] = FMADD(w[3 * (i - r)], v0, acc[r]);                                 \
                        acc[r] = FMADD(w[3 * (i - r) + 1], v1, acc[r]);                             \
                        acc[r] = FMADD(w[3 * (i - r) + 2], v2, acc[r]);                             \
                    }                                                                               \
                }                                                                                   \
            }                                                                                       \
        }                                                                                           \
        FNN_UNROLL(8)                                                                               \
        for (r = 0; r < R; r++) {                                                                   \
            if (r >= nrows)                                                                         \
                break;                                                                              \
            if (bias)                                                                               \
                acc[r] = ADD(acc[r], SET1(*bias));                                                  \
            STOREM(y + (oh + r) * g->w_out + j, mask[3], acc[r]);                                   \
        }                                                                                           \
    }

/*
 * conv3x3_rows for four output channels at once, which read the same input planes (their
 * weights wcs apart, their outputs ys apart): each input row's three shifted vectors feed
 * 4 x 3 multiply-adds per output row, so a layer with one input channel and many outputs
 * (MNIST's first) runs at the FMA rate, where one channel at a time reloads its input for
 * every output. R (4 or 1) rows; the 36 weights are broadcast from memory as they are used.
 */
#define FNN_CONV3X3_ROWS4(SFX, T, VT, MASKT, SETZERO, SET1, LOADZ, FMADD, ADD, STOREM)             \
    FNN_TARGET_AVX512 static FNN_FORCE_INLINE void conv3x3_rows4_##SFX(                             \
        const int R, const fnn_plane_geom *g, const T *FNN_RESTRICT x, fnn_int nc, fnn_int xs,      \
        const T *FNN_RESTRICT wt, fnn_int wcs, const MASKT *mask, fnn_int oh, fnn_int j,            \
        const T *bias, T *FNN_RESTRICT y, fnn_int ys)                                               \
    {                                                                                               \
        VT acc[4][4], v0, v1, v2;                                                                   \
        const fnn_int ih0 = oh - g->pt, col = j - g->pl;                                            \
        fnn_int c;                                                                                  \
        int r, i, q;                                                                                \
        FNN_UNROLL(4)                                                                               \
        for (q = 0; q < 4; q++) {                                                                   \
            FNN_UNROLL(4)                                                                           \
            for (r = 0; r < R; r++)                                                                 \
                acc[q][r] = SETZERO();                                                              \
        }                                                                                           \
        for (c = 0; c < nc; c++) {                                                                  \
            const T *FNN_RESTRICT xc = x + c * xs + col;                                            \
            const T *FNN_RESTRICT wc = wt + c * 9;                                                  \
            FNN_UNROLL(6)                                                                           \
            for (i = 0; i < R + 2; i++) {                                                           \
                const T *xr = xc + (ih0 + i) * g->w;                                                \
                if ((size_t)(ih0 + i) >= (size_t)g->h)                                              \
                    continue; /* a padded row: its taps are left out */                             \
                v0 = LOADZ(mask[0], xr);                                                            \
                v1 = LOADZ(mask[1], xr + 1);                                                        \
                v2 = LOADZ(mask[2], xr + 2);                                                        \
                FNN_UNROLL(4)                                                                       \
                for (q = 0; q < 4; q++) {                                                           \
                    FNN_UNROLL(4)                                                                   \
                    for (r = 0; r < R; r++) {                                                       \
                        if (i - r >= 0 && i - r < 3) {                                              \
                            const T *wa = wc + q * wcs + 3 * (i - r);                               \
                            acc[q][r] = FMADD(SET1(wa[0]), v0, acc[q][r]);                          \
                            acc[q][r] = FMADD(SET1(wa[1]), v1, acc[q][r]);                          \
                            acc[q][r] = FMADD(SET1(wa[2]), v2, acc[q][r]);                          \
                        }                                                                           \
                    }                                                                               \
                }                                                                                   \
            }                                                                                       \
        }                                                                                           \
        FNN_UNROLL(4)                                                                               \
        for (q = 0; q < 4; q++) {                                                                   \
            FNN_UNROLL(4)                                                                           \
            for (r = 0; r < R; r++) {                                                               \
                if (bias)                                                                           \
                    acc[q][r] = ADD(acc[q][r], SET1(bias[q]));                                      \
                STOREM(y + q * ys + (oh + r) * g->w_out + j, mask[3], acc[q][r]);                   \
            }                                                                                       \
        }                                                                                           \
    }

/* Column vectors, lane masks and row blocks of a plane, for both plane functions below. */
#define FNN_CONV3X3_MASKS(MASKT, LANES)                                                            \
    const fnn_int n = g->w_out - j < LANES ? g->w_out - j : LANES;                                  \
    for (b = 0; b < 3; b++) /* lanes l with 0 <= j + l - pl + b < w */                              \
        mask[b] = (MASKT)fnn_span_mask(g->pl - j - b, g->w + g->pl - j - b) &                       \
                  (MASKT)fnn_span_mask(0, n);                                                       \
    mask[3] = (MASKT)fnn_span_mask(0, n)

/* Four output planes (weights wcs apart, outputs ys apart): rows 4 at a time, then singly. */
#define FNN_CONV3X3_PLANES4(SFX, T, MASKT, LANES)                                                  \
    FNN_TARGET_AVX512 void fnn_conv3x3_planes4_##SFX##_avx512(                                      \
        const fnn_plane_geom *g, const T *x, fnn_int nc, fnn_int xs, const T *wt, fnn_int wcs,      \
        const T *bias, T *y, fnn_int ys)                                                            \
    {                                                                                               \
        fnn_int j, oh, b;                                                                           \
        MASKT mask[4];                                                                              \
        for (j = 0; j < g->w_out; j += LANES) {                                                     \
            FNN_CONV3X3_MASKS(MASKT, LANES);                                                        \
            for (oh = 0; oh + 4 <= g->h_out; oh += 4)                                               \
                conv3x3_rows4_##SFX(4, g, x, nc, xs, wt, wcs, mask, oh, j, bias, y, ys);            \
            for (; oh < g->h_out; oh++)                                                             \
                conv3x3_rows4_##SFX(1, g, x, nc, xs, wt, wcs, mask, oh, j, bias, y, ys);            \
        }                                                                                           \
    }

/* The whole plane: columns in vectors (the last one masked), rows 8 at a time; 5 to 7 rows
 * left go as one 8-row block that stores only those (on a 7-row map one block, not a 4-row
 * one and three single rows, each a chain of nine dependent multiply-adds), 1 to 4 as a
 * 4-row block likewise. Each row's sums are the same whatever its block. Rows outside the
 * plane are never read. */
#define FNN_CONV3X3_PLANE(SFX, T, MASKT, LANES)                                                     \
    FNN_TARGET_AVX512 void fnn_conv3x3_plane_##SFX##_avx512(const fnn_plane_geom *g, const T *x,    \
                                                           fnn_int nc, fnn_int xs, const T *wt,     \
                                                           const T *bias, T *y)                     \
    {                                                                                               \
        fnn_int j, oh, b;                                                                           \
        MASKT mask[4];                                                                              \
        for (j = 0; j < g->w_out; j += LANES) {                                                     \
            FNN_CONV3X3_MASKS(MASKT, LANES);                                                        \
            for (oh = 0; oh + 8 <= g->h_out; oh += 8)                                               \
                conv3x3_rows_##SFX(8, g, x, nc, xs, wt, mask, oh, 8, j, bias, y);                   \
            if (g->h_out - oh > 4)                                                                  \
                conv3x3_rows_##SFX(8, g, x, nc, xs, wt, mask, oh, g->h_out - oh, j, bias, y);       \
            else if (oh < g->h_out)                                                                 \
                conv3x3_rows_##SFX(4, g, x, nc, xs, wt, mask, oh, g->h_out - oh, j, bias, y);       \
        }                                                                                           \
    }

/*
 * The weight gradient's lanes of one plane pair (see fnn_plane_grad_weight_lanes; here the
 * lanes are wc = w_out rounded up to whole vectors apart, as fnn_plane_grad_weight_wide
 * lays them out): lanes[t*wc + ow] += sum over output rows oh, in order, of dy[oh, ow] *
 * x[oh - pt + a, ow - pl + b], t = a*3 + b, taps inside the plane only. Input rows go in
 * order, each loaded once as three shifted vectors and multiplied by the (up to) three dY
 * rows that read it, so the nine accumulators of a column vector stay in registers down
 * the plane. A padded column is a masked 0 times dY: callers pass all-finite dY. Lanes
 * past w_out hold junk and are never summed.
 */
/* dY row oh of the column vector at j, or zeros where it does not exist; ok says which. */
#define FNN_DY_ROW(LOADZ, oh, ok)                                                                       \
    ((ok) = (size_t)(oh) < (size_t)g->h_out, (ok) ? LOADZ(dmask, dy + (oh) * g->w_out + j) : zero)

#define FNN_GRAD_WEIGHT3X3_PLANE(SFX, T, VT, MASKT, LANES, LOADZ, LOADU, STOREU, FMADD, SETZERO)      \
    FNN_TARGET_AVX512 void fnn_grad_weight3x3_plane_##SFX##_avx512(                                  \
        const fnn_plane_geom *g, const T *FNN_RESTRICT dy, const T *FNN_RESTRICT x,                 \
        T *FNN_RESTRICT lanes)                                                                      \
    {                                                                                               \
        const fnn_int wc = (g->w_out + LANES - 1) / LANES * LANES;                                  \
        const VT zero = SETZERO();                                                                  \
        fnn_int j, ih, ih_lo, ih_hi, b;                                                             \
        int a, t, dv[3];                                                                            \
        MASKT mask[3], dmask;                                                                       \
        VT acc[9], xv[3], d[3];                                                                     \
        /* input rows read by some output row: oh - pt + a for oh < h_out, a < 3 */                 \
        ih_lo = -g->pt > 0 ? -g->pt : 0;                                                            \
        ih_hi = g->h_out - 1 - g->pt + 3 < g->h ? g->h_out - 1 - g->pt + 3 : g->h;                  \
        for (j = 0; j < g->w_out; j += LANES) {                                                     \
            const fnn_int n = g->w_out - j < LANES ? g->w_out - j : LANES;                          \
            const T *FNN_RESTRICT xc = x + j - g->pl;                                               \
            for (b = 0; b < 3; b++)                                                                 \
                mask[b] = (MASKT)fnn_span_mask(g->pl - j - b, g->w + g->pl - j - b) &               \
                          (MASKT)fnn_span_mask(0, n);                                               \
            dmask = (MASKT)fnn_span_mask(0, n);                                                     \
            FNN_UNROLL(9)                                                                           \
            for (t = 0; t < 9; t++)                                                                 \
                acc[t] = LOADU(lanes + t * wc + j);                                                 \
            /* d[a]: the dY row oh = ih + pt - a that input row ih meets through kernel row a,
             * if it exists (dv[a]); each new input row shifts the window by one dY row, so
             * every dY row is loaded once per column vector */                             \
            d[0] = FNN_DY_ROW(LOADZ, ih_lo + g->pt - 1, dv[0]);                                          \
            d[1] = FNN_DY_ROW(LOADZ, ih_lo + g->pt - 2, dv[1]);                                          \
            for (ih = ih_lo; ih < ih_hi; ih++) {                                                    \
                const T *FNN_RESTRICT xr = xc + ih * g->w;                                          \
                d[2] = d[1], dv[2] = dv[1];                                                         \
                d[1] = d[0], dv[1] = dv[0];                                                         \
                d[0] = FNN_DY_ROW(LOADZ, ih + g->pt, dv[0]);                                             \
                xv[0] = LOADZ(mask[0], xr);                                                         \
                xv[1] = LOADZ(mask[1], xr + 1);                                                     \
                xv[2] = LOADZ(mask[2], xr + 2);                                                     \
                /* row ih is kernel row a of output row oh = ih + pt - a */                         \
                FNN_UNROLL(3)                                                                       \
                for (a = 0; a < 3; a++) {                                                           \
                    if (!dv[a])                                                                     \
                        continue;                                                                   \
                    acc[3 * a] = FMADD(d[a], xv[0], acc[3 * a]);                                    \
                    acc[3 * a + 1] = FMADD(d[a], xv[1], acc[3 * a + 1]);                            \
                    acc[3 * a + 2] = FMADD(d[a], xv[2], acc[3 * a + 2]);                            \
                }                                                                                   \
            }                                                                                       \
            FNN_UNROLL(9)                                                                           \
            for (t = 0; t < 9; t++)                                                                 \
                STOREU(lanes + t * wc + j, acc[t]);                                                 \
        }                                                                                           \
    }

FNN_CONV3X3_ROWS(f32, float, __m512, __mmask16, _mm512_setzero_ps, _mm512_set1_ps,
                 _mm512_maskz_loadu_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_mask_storeu_ps)
FNN_CONV3X3_ROWS(f64, double, __m512d, __mmask8, _mm512_setzero_pd, _mm512_set1_pd,
                 _mm512_maskz_loadu_pd, _mm512_fmadd_pd, _mm512_add_pd, _mm512_mask_storeu_pd)
FNN_CONV3X3_PLANE(f32, float, __mmask16, 16)
FNN_CONV3X3_PLANE(f64, double, __mmask8, 8)
FNN_CONV3X3_ROWS4(f32, float, __m512, __mmask16, _mm512_setzero_ps, _mm512_set1_ps,
                  _mm512_maskz_loadu_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_mask_storeu_ps)
FNN_CONV3X3_ROWS4(f64, double, __m512d, __mmask8, _mm512_setzero_pd, _mm512_set1_pd,
                  _mm512_maskz_loadu_pd, _mm512_fmadd_pd, _mm512_add_pd, _mm512_mask_storeu_pd)
FNN_CONV3X3_PLANES4(f32, float, __mmask16, 16)
FNN_CONV3X3_PLANES4(f64, double, __mmask8, 8)
FNN_GRAD_WEIGHT3X3_PLANE(f32, float, __m512, __mmask16, 16, _mm512_maskz_loadu_ps, _mm512_loadu_ps,
                         _mm512_storeu_ps, _mm512_fmadd_ps, _mm512_setzero_ps)
FNN_GRAD_WEIGHT3X3_PLANE(f64, double, __m512d, __mmask8, 8, _mm512_maskz_loadu_pd, _mm512_loadu_pd,
                         _mm512_storeu_pd, _mm512_fmadd_pd, _mm512_setzero_pd)

#include "fnn_stream_copy.h"
FNN_STREAM_COPY(FNN_TARGET_AVX512, f32_avx512, float, 16, _mm512_loadu_ps, _mm512_stream_ps)
FNN_STREAM_COPY(FNN_TARGET_AVX512, f64_avx512, double, 8, _mm512_loadu_pd, _mm512_stream_pd)

#endif /* FNN_X86_64 */
