/*
 * AVX-512F direct convolution tiles for float32 convolutions with many channels (the compute-
 * bound layers of real networks), with no im2col packing.
 *
 * A tile is one block of 32 output channels (two vectors) times up to 14 consecutive output
 * pixels of one row: 28 accumulators, each a vector over output channels for one pixel. Per
 * input channel and kernel tap it loads the two weight vectors and broadcasts each pixel's
 * input value, 2 + np loads for 2 * np multiply-adds, so the multiply-adds, not the loads,
 * set the pace, at any stride (the broadcasts are scalar loads). The implicit GEMM instead
 * packs every image's im2col panels first: 8-15% of a 3x3 layer's time here. Groups of 16
 * output channels (ResNeXt, RegNetX) take narrow tiles, one vector times up to 28 pixels,
 * rather than leave half of every wide tile's multiply-adds on zero weights.
 *
 * The input is a zero-padded copy of the image group (fnn_plane_pad), so every tap is inside;
 * the padding is then a multiplied zero, which the driver allows only for all-finite weights.
 * The weights are rearranged once per call as wr[c][t][32] per block, zero past the last
 * output channel. Each output sums from zero over (c, t) in order, then adds its bias: the
 * order differs from the GEMM path's (K blocks), so results agree to rounding, not bits.
 * On other architectures this file is empty.
 */
#include "fnn_convtile.h"
#include "fnn_gemm_internal.h"

#ifdef FNN_X86_64
#include <immintrin.h>


/*
 * NP pixels at input stride SW (1 or 2) of V vectors (16 V output channels): y[o*ys + p*yp] =
 * bias[o] + sum over c < cin, t < taps of wr[(c*wtaps + t)*16V + o] * x[c*cs + off[t] + p*SW],
 * for output channels o < oc_valid (y += that sum with accumulate): a run of taps used, of
 * the wtaps each channel's weights hold; yp is 1 unless STRIDED. Always inlined with
 * constant V, NP, SW and STRIDED: the pixel loop unrolls into straight code with constant
 * displacements, accumulators in registers (V NP <= 28).
 */
FNN_TARGET_AVX512 static FNN_FORCE_INLINE void
fnn_convtile_body(const int V, const int NP, const int SW, const float *FNN_RESTRICT x, fnn_int cs,
                  fnn_int cin, const fnn_int *off, fnn_int taps, fnn_int wtaps,
                  const float *FNN_RESTRICT wr, const float *bias, int oc_valid, float *y, fnn_int ys,
                  const int STRIDED, fnn_int yp, int accumulate)
{
    const int CH = 16 * V;
    __m512 acc[FNN_CONVTILE_NARROW_PIXELS][2];
    __m512 wv[2], bv[2];
    __mmask16 mask[2];
    FNN_ALIGN64 float buf[FNN_CONVTILE_NARROW_PIXELS * 16];
    fnn_int c, t;
    int p, o, v;
    FNN_UNROLL(2)
    for (v = 0; v < V; v++) {
        const int left = oc_valid - 16 * v;
        mask[v] = (__mmask16)(left >= 16 ? 0xFFFFu : left > 0 ? (1u << left) - 1u : 0u);
    }
    FNN_UNROLL(28)
    for (p = 0; p < NP; p++) {
        FNN_UNROLL(2)
        for (v = 0; v < V; v++)
            acc[p][v] = _mm512_setzero_ps();
    }
    for (c = 0; c < cin; c++) {
        const float *FNN_RESTRICT xc = x + c * cs;
        const float *FNN_RESTRICT wc = wr + c * wtaps * CH;
        for (t = 0; t < taps; t++) {
            const float *FNN_RESTRICT xt = xc + off[t];
            FNN_UNROLL(2)
            for (v = 0; v < V; v++)
                wv[v] = _mm512_load_ps(wc + 16 * v);
            wc += CH;
            FNN_UNROLL(28)
            for (p = 0; p < NP; p++) {
                const __m512 xv = _mm512_set1_ps(xt[p * SW]);
                FNN_UNROLL(2)
                for (v = 0; v < V; v++)
                    acc[p][v] = _mm512_fmadd_ps(wv[v], xv, acc[p][v]);
            }
        }
    }
    /* Epilogue: each accumulator is one pixel across 16 output channels, ys apart in y: via
     * a buffer, transposed into rows of np pixels (scatter stores, the direct way, cost a
     * tenth of a 64-channel 3x3 tile on Zen 4). */
    if (bias) {
        FNN_UNROLL(2)
        for (v = 0; v < V; v++)
            bv[v] = _mm512_maskz_loadu_ps(mask[v], bias + 16 * v);
        FNN_UNROLL(28)
        for (p = 0; p < NP; p++) {
            FNN_UNROLL(2)
            for (v = 0; v < V; v++)
                acc[p][v] = _mm512_add_ps(acc[p][v], bv[v]);
        }
    }
    FNN_UNROLL(28)
    for (p = 0; p < NP; p++) {
        FNN_UNROLL(2)
        for (v = 0; v < V; v++)
            _mm512_store_ps(buf + p * CH + 16 * v, acc[p][v]);
    }
    if (STRIDED) { /* one phase of a strided input gradient: every yp-th pixel of a row */
        for (o = 0; o < oc_valid; o++) {
            FNN_UNROLL(28)
            for (p = 0; p < NP; p++)
                y[o * ys + p * yp] = accumulate ? y[o * ys + p * yp] + buf[p * CH + o] : buf[p * CH + o];
        }
        return;
    }
    if (accumulate) {
        for (o = 0; o < oc_valid; o++) {
            FNN_UNROLL(28)
            for (p = 0; p < NP; p++)
                y[o * ys + p] += buf[p * CH + o];
        }
        return;
    }
    for (o = 0; o < oc_valid; o++) {
        FNN_UNROLL(28)
        for (p = 0; p < NP; p++)
            y[o * ys + p] = buf[p * CH + o];
    }
}

#define FNN_TILE_CASE(v, np)                                                                     \
    case np:                                                                                     \
        if (sw == 1)                                                                             \
            fnn_convtile_body(v, np, 1, x, cs, cin, off, taps, wtaps, wr, bias, oc_valid, y, ys, 0, 1, acc); \
        else                                                                                     \
            fnn_convtile_body(v, np, 2, x, cs, cin, off, taps, wtaps, wr, bias, oc_valid, y, ys, 0, 1, acc); \
        break;

FNN_TARGET_AVX512 static void fnn_convtile_f32_avx512(const float *x, fnn_int cs, fnn_int cin,
                                                      const fnn_int *off, fnn_int taps,
                                                      fnn_int wtaps, int sw,
                                                      int channels, const float *wr,
                                                      const float *bias, int oc_valid, int np,
                                                      float *y, fnn_int ys, int acc)
{
    if (channels == FNN_CONVTILE_NARROW_CHANNELS) {
        switch (np) {
            FNN_TILE_CASE(1, 1) FNN_TILE_CASE(1, 2) FNN_TILE_CASE(1, 3) FNN_TILE_CASE(1, 4)
            FNN_TILE_CASE(1, 5) FNN_TILE_CASE(1, 6) FNN_TILE_CASE(1, 7) FNN_TILE_CASE(1, 8)
            FNN_TILE_CASE(1, 9) FNN_TILE_CASE(1, 10) FNN_TILE_CASE(1, 11) FNN_TILE_CASE(1, 12)
            FNN_TILE_CASE(1, 13) FNN_TILE_CASE(1, 14) FNN_TILE_CASE(1, 15) FNN_TILE_CASE(1, 16)
            FNN_TILE_CASE(1, 17) FNN_TILE_CASE(1, 18) FNN_TILE_CASE(1, 19) FNN_TILE_CASE(1, 20)
            FNN_TILE_CASE(1, 21) FNN_TILE_CASE(1, 22) FNN_TILE_CASE(1, 23) FNN_TILE_CASE(1, 24)
            FNN_TILE_CASE(1, 25) FNN_TILE_CASE(1, 26) FNN_TILE_CASE(1, 27) FNN_TILE_CASE(1, 28)
        default:
            break;
        }
        return;
    }
    switch (np) {
        FNN_TILE_CASE(2, 1) FNN_TILE_CASE(2, 2) FNN_TILE_CASE(2, 3) FNN_TILE_CASE(2, 4)
        FNN_TILE_CASE(2, 5) FNN_TILE_CASE(2, 6) FNN_TILE_CASE(2, 7) FNN_TILE_CASE(2, 8)
        FNN_TILE_CASE(2, 9) FNN_TILE_CASE(2, 10) FNN_TILE_CASE(2, 11) FNN_TILE_CASE(2, 12)
        FNN_TILE_CASE(2, 13) FNN_TILE_CASE(2, 14)
    default:
        break;
    }
}

#define FNN_STRIDED_CASE(np)                                                                     \
    case np:                                                                                     \
        fnn_convtile_body(1, np, 1, x, cs, cin, off, taps, wtaps, wr, NULL, oc_valid, y, ys, 1, yp, acc); \
        break;

/* The narrow tiles storing every yp-th pixel, a dispatcher of their own: the same epilogue
 * inside fnn_convtile_f32_avx512 made its wide tiles 15% slower, for their code's layout. */
FNN_TARGET_AVX512 static void fnn_convtile_narrow_strided_f32_avx512(const float *x, fnn_int cs, fnn_int cin,
                                                                     const fnn_int *off, fnn_int taps,
                                                                     fnn_int wtaps, const float *wr,
                                                                     int oc_valid, int np, float *y,
                                                                     fnn_int ys, fnn_int yp, int acc)
{
    switch (np) {
        FNN_STRIDED_CASE(1) FNN_STRIDED_CASE(2) FNN_STRIDED_CASE(3) FNN_STRIDED_CASE(4)
        FNN_STRIDED_CASE(5) FNN_STRIDED_CASE(6) FNN_STRIDED_CASE(7) FNN_STRIDED_CASE(8)
        FNN_STRIDED_CASE(9) FNN_STRIDED_CASE(10) FNN_STRIDED_CASE(11) FNN_STRIDED_CASE(12)
        FNN_STRIDED_CASE(13) FNN_STRIDED_CASE(14) FNN_STRIDED_CASE(15) FNN_STRIDED_CASE(16)
        FNN_STRIDED_CASE(17) FNN_STRIDED_CASE(18) FNN_STRIDED_CASE(19) FNN_STRIDED_CASE(20)
        FNN_STRIDED_CASE(21) FNN_STRIDED_CASE(22) FNN_STRIDED_CASE(23) FNN_STRIDED_CASE(24)
        FNN_STRIDED_CASE(25) FNN_STRIDED_CASE(26) FNN_STRIDED_CASE(27) FNN_STRIDED_CASE(28)
    default:
        break;
    }
}

/*
 * The weight gradient's GEMM step with its A operand read from the image itself: C (up to
 * R x 16V, ldc apart) (+)= sum over the pixels of nrows output rows of wout pixels of
 * a_i(pixel) * B(pixel, 0:16V), where a_i(r, ow) = arow[i][r*pitch + ow*SW] is the input that
 * conv kernel row i (a channel and tap) meets at that pixel, in a zero-padded image, and B
 * is dY^T packed 16V channels per pixel. The implicit GEMM gathers those rows into a packed
 * A panel first (an im2col of the K range, then a 6-row interleave): a fifth of the weight
 * gradient's time. Rows past m read row 0 and are not stored; columns past n are masked.
 * Always inlined with constant R, V and SW (1 or 2): 6 x 64, or 12 x 16 and 12 x 32 for
 * groups of at most 16 and 32 output channels, which left 3/4 and 1/2 of a 64-wide B on zeros.
 */
FNN_TARGET_AVX512 static FNN_FORCE_INLINE void
fnn_convrows_body(const int R, const int V, const int SW, const float *const *arow, int m,
                  fnn_int nrows, fnn_int wout, fnn_int pitch, const float *FNN_RESTRICT b, float *c,
                  fnn_int ldc, int n, int accumulate)
{
    __m512 acc[FNN_CONVROWS_NARROW_ROWS][4], bv[4];
    __mmask16 mask[4];
    const float *ap[FNN_CONVROWS_NARROW_ROWS];
    fnn_int r, ow;
    int i, v;
    FNN_UNROLL(12)
    for (i = 0; i < R; i++) {
        ap[i] = arow[i < m ? i : 0];
        FNN_UNROLL(4)
        for (v = 0; v < V; v++)
            acc[i][v] = _mm512_setzero_ps();
    }
    for (r = 0; r < nrows; r++) {
        const fnn_int o = r * pitch;
        for (ow = 0; ow < wout; ow++) {
            const fnn_int q = o + ow * SW;
            FNN_UNROLL(4)
            for (v = 0; v < V; v++)
                bv[v] = _mm512_load_ps(b + 16 * v);
            b += 16 * V;
            FNN_UNROLL(12)
            for (i = 0; i < R; i++) {
                const __m512 av = _mm512_set1_ps(ap[i][q]);
                FNN_UNROLL(4)
                for (v = 0; v < V; v++)
                    acc[i][v] = _mm512_fmadd_ps(av, bv[v], acc[i][v]);
            }
        }
    }
    FNN_UNROLL(4)
    for (v = 0; v < V; v++) {
        const int left = n - 16 * v;
        mask[v] = (__mmask16)(left >= 16 ? 0xFFFFu : left > 0 ? (1u << left) - 1u : 0u);
    }
    FNN_UNROLL(12)
    for (i = 0; i < R; i++) {
        if (i >= m)
            break;
        FNN_UNROLL(4)
        for (v = 0; v < V; v++) {
            __m512 t = acc[i][v];
            if (accumulate)
                t = _mm512_add_ps(t, _mm512_maskz_loadu_ps(mask[v], c + i * ldc + 16 * v));
            _mm512_mask_storeu_ps(c + i * ldc + 16 * v, mask[v], t);
        }
    }
}

FNN_TARGET_AVX512 static void fnn_convrows_f32_avx512(const float *const *arow, int m, fnn_int nrows,
                                                      fnn_int wout, fnn_int pitch, int sw,
                                                      int channels, const float *b, float *c,
                                                      fnn_int ldc, int n, int accumulate)
{
    if (channels == FNN_CONVROWS_NARROW_CHANNELS) {
        if (sw == 1)
            fnn_convrows_body(FNN_CONVROWS_NARROW_ROWS, 1, 1, arow, m, nrows, wout, pitch, b, c, ldc, n,
                              accumulate);
        else
            fnn_convrows_body(FNN_CONVROWS_NARROW_ROWS, 1, 2, arow, m, nrows, wout, pitch, b, c, ldc, n,
                              accumulate);
    } else if (channels == 2 * FNN_CONVROWS_NARROW_CHANNELS) {
        if (sw == 1)
            fnn_convrows_body(FNN_CONVROWS_NARROW_ROWS, 2, 1, arow, m, nrows, wout, pitch, b, c, ldc, n,
                              accumulate);
        else
            fnn_convrows_body(FNN_CONVROWS_NARROW_ROWS, 2, 2, arow, m, nrows, wout, pitch, b, c, ldc, n,
                              accumulate);
    } else if (sw == 1) {
        fnn_convrows_body(FNN_CONVROWS_ROWS, 4, 1, arow, m, nrows, wout, pitch, b, c, ldc, n, accumulate);
    } else {
        fnn_convrows_body(FNN_CONVROWS_ROWS, 4, 2, arow, m, nrows, wout, pitch, b, c, ldc, n, accumulate);
    }
}

#endif /* FNN_X86_64 */

int fnn_convtile_available(void)
{
#ifdef FNN_X86_64
    return fnn_active_isa() == FNN_ISA_AVX512;
#else
    return 0;
#endif
}

void fnn_convtile_f32(const float *x, fnn_int cs, fnn_int cin, const fnn_int *off, fnn_int taps,
                      fnn_int wtaps, int sw, int channels, const float *wr, const float *bias,
                      int oc_valid, int np, float *y, fnn_int ys, int accumulate)
{
#ifdef FNN_X86_64
    fnn_convtile_f32_avx512(x, cs, cin, off, taps, wtaps, sw, channels, wr, bias, oc_valid, np, y, ys,
                            accumulate);
#else
    (void)x, (void)cs, (void)cin, (void)off, (void)taps, (void)wtaps, (void)sw;
    (void)channels, (void)wr, (void)bias;
    (void)oc_valid, (void)np, (void)y, (void)ys, (void)accumulate;
#endif
}

void fnn_convtile_narrow_strided_f32(const float *x, fnn_int cs, fnn_int cin, const fnn_int *off,
                                     fnn_int taps, fnn_int wtaps, const float *wr, int oc_valid, int np,
                                     float *y, fnn_int ys, fnn_int yp, int accumulate)
{
#ifdef FNN_X86_64
    fnn_convtile_narrow_strided_f32_avx512(x, cs, cin, off, taps, wtaps, wr, oc_valid, np, y, ys, yp,
                                           accumulate);
#else
    (void)x, (void)cs, (void)cin, (void)off, (void)taps, (void)wtaps, (void)wr;
    (void)oc_valid, (void)np, (void)y, (void)ys, (void)yp, (void)accumulate;
#endif
}

void fnn_convrows_f32(const float *const *arow, int m, fnn_int nrows, fnn_int wout, fnn_int pitch,
                      int sw, int channels, const float *b, float *c, fnn_int ldc, int n,
                      int accumulate)
{
#ifdef FNN_X86_64
    fnn_convrows_f32_avx512(arow, m, nrows, wout, pitch, sw, channels, b, c, ldc, n, accumulate);
#else
    (void)arow, (void)m, (void)nrows, (void)wout, (void)pitch, (void)sw, (void)channels, (void)b, (void)c;
    (void)ldc, (void)n, (void)accumulate;
#endif
}
