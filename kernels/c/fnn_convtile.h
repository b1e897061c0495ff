/*
 * Direct convolution tiles (fnn_convtile_avx512.c): one block of 32 output channels times up
 * to FNN_CONVTILE_PIXELS output pixels of one row, from a zero-padded input, for float32
 * convolutions with many channels on AVX-512 machines. No allocation, no threads.
 */
#ifndef FNN_CONVTILE_H
#define FNN_CONVTILE_H

#include "fnn_gemm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Output channels per tile (the rearranged weights' block) and pixels per tile at most. */
#define FNN_CONVTILE_CHANNELS 32
#define FNN_CONVTILE_PIXELS 14
/* the narrow tiles: one vector of output channels */
#define FNN_CONVTILE_NARROW_CHANNELS 16
#define FNN_CONVTILE_NARROW_PIXELS 28
/* the weight gradient's rows kernel: 6 kernel rows x 64 channels, or 12 x 16 or 12 x 32 */
#define FNN_CONVROWS_ROWS 6
#define FNN_CONVROWS_CHANNELS 64
#define FNN_CONVROWS_NARROW_ROWS 12
#define FNN_CONVROWS_NARROW_CHANNELS 16

/* Whether the active instruction-set level has the tiles (AVX-512). */
int fnn_convtile_available(void);

/*
 * y[o*ys + p] = bias[o] (0 without bias) + sum over c < cin, t < taps of
 * wr[(c*wtaps + t)*channels + o] * x[c*cs + off[t] + p*sw], for o < oc_valid (<= channels),
 * p < np; channels FNN_CONVTILE_CHANNELS (np <= FNN_CONVTILE_PIXELS) or
 * FNN_CONVTILE_NARROW_CHANNELS (np <= FNN_CONVTILE_NARROW_PIXELS); sw 1 or 2; with
 * accumulate, y += that sum (a later range of input channels). wr is 64-byte aligned. Only
 * where fnn_convtile_available().
 */
void fnn_convtile_f32(const float *x, fnn_int cs, fnn_int cin, const fnn_int *off, fnn_int taps,
                      fnn_int wtaps, int sw, int channels, const float *wr, const float *bias,
                      int oc_valid, int np, float *y, fnn_int ys, int accumulate);

/*
 * fnn_convtile_f32 with FNN_CONVTILE_NARROW_CHANNELS channels, input stride 1 and no bias,
 * storing y[o*ys + p*yp]: one phase of a strided input gradient, every yp-th pixel of a row.
 */
void fnn_convtile_narrow_strided_f32(const float *x, fnn_int cs, fnn_int cin, const fnn_int *off,
                                     fnn_int taps, fnn_int wtaps, const float *wr, int oc_valid, int np,
                                     float *y, fnn_int ys, fnn_int yp, int accumulate);

/*
 * c[i*ldc + j] (+)= sum over r < nrows, ow < wout of arow[i][r*pitch + ow*sw] *
 * b[(r*wout + ow)*channels + j], for i < m, j < n (<= channels): the weight gradient's GEMM
 * step with A read from a zero-padded image's rows (one pointer per kernel row, that is per
 * (channel, tap)) and B = dY^T packed `channels` channels per pixel, 64-byte aligned;
 * channels FNN_CONVROWS_CHANNELS (m <= FNN_CONVROWS_ROWS), or FNN_CONVROWS_NARROW_CHANNELS
 * or twice that (m <= FNN_CONVROWS_NARROW_ROWS). + when accumulate, = otherwise. sw 1 or 2. Only where
 * fnn_convtile_available().
 */
void fnn_convrows_f32(const float *const *arow, int m, fnn_int nrows, fnn_int wout, fnn_int pitch,
                      int sw, int channels, const float *b, float *c, fnn_int ldc, int n,
                      int accumulate);

#ifdef __cplusplus
}
#endif
#endif /* FNN_CONVTILE_H */
