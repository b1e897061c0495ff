/*
 * Direct convolution of single channel planes, for convolutions whose output channels each
 * read one input channel (C_in / groups == 1: depthwise, and 1-channel inputs). Their
 * reduction is only kH*kW long, too short for the GEMM core to pay off.
 *
 * Taps that fall into the padding are skipped, never multiplied by zero, so an Inf or NaN
 * weight reaches only outputs that really see an input through it. No allocation, no
 * threads: the Cython driver hands planes to threads.
 */
#ifndef FNN_DIRECT_H
#define FNN_DIRECT_H

#include "fnn_gemm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    fnn_int h, w;         /* input plane */
    fnn_int h_out, w_out; /* output plane */
    fnn_int kh, kw;       /* kernel */
    fnn_int sh, sw;       /* stride */
    fnn_int pt, pl;       /* padding before (top, left); may be negative (a crop); after is
                             implied by h_out, w_out */
    fnn_int dh, dw;       /* dilation */
} fnn_plane_geom;

/* Steps t in [*lo, *hi) of a run of `length` output columns have input column iw0 + t*sw
 * inside [0, w); the rest of the run reads padding. Shared by the direct and im2col kernels. */
static inline void fnn_valid_span(fnn_int iw0, fnn_int sw, fnn_int w, fnn_int length,
                                  fnn_int *lo, fnn_int *hi)
{
    fnn_int l = 0, h = 0;
    if (sw == 1) { /* the common case, without divisions */
        l = iw0 < 0 ? -iw0 : 0;
        h = w - iw0 > 0 ? w - iw0 : 0;
    } else {
        if (iw0 < 0)
            l = (-iw0 + sw - 1) / sw;
        if (iw0 <= w - 1)
            h = (w - 1 - iw0) / sw + 1;
    }
    if (l > length)
        l = length;
    if (h > length)
        h = length;
    if (h < l)
        h = l;
    *lo = l;
    *hi = h;
}

/*
 * y = sum over channels c < nc and taps (a, b) of wt[c*kh*kw + a*kw + b] *
 * x[c*xs + oh*sh - pt + a*dh, ow*sw - pl + b*dw], then + *bias (when bias is not NULL).
 * Each y element sums from zero, channel by channel, taps in (a, b) order; y is written,
 * not added to. nc = 1 is a forward plane; the input gradient of a stride-1 convolution is
 * this with the kernel flipped (see fnn_flip_geom in the driver) over a group's dy planes.
 */
void fnn_plane_conv_f32(const fnn_plane_geom *g, const float *x, fnn_int nc, fnn_int xs,
                        const float *wt, const float *bias, float *y);
void fnn_plane_conv_f64(const fnn_plane_geom *g, const double *x, fnn_int nc, fnn_int xs,
                        const double *wt, const double *bias, double *y);

/* Whether the active instruction-set level has kernels that read this geometry's padding
 * themselves (AVX-512, 3x3, stride and dilation 1): fnn_plane_conv then needs no zero-padded
 * copy (fnn_plane_pad), and fnn_plane_grad_weight_unpadded may be called. */
int fnn_plane_reads_padding_itself(const fnn_plane_geom *g);

/* Whether the active level has the general kernels of fnn_dw_body.h for this geometry
 * (AVX-512 or AVX2; column stride 1 or 2, kW <= FNN_DW_MAX_KW, an 8-row block spanning at most
 * FNN_DW_MAX_SPAN input rows; 3x3 stride-1 undilated planes excepted, which
 * fnn_plane_reads_padding_itself's kernel takes): they read padding themselves, so
 * fnn_plane_conv needs no zero-padded copy, fnn_plane_grad_weight_unpadded may be called
 * (for all-finite dY), and fnn_plane_grad_input_gather runs on whole vectors. */
int fnn_plane_dw_reads_padding_itself(const fnn_plane_geom *g);
/* Whether the forward of this geometry is faster on a zero-padded copy through
 * fnn_direct_body.h's kernels than through fnn_dw_body.h's masked ones: AVX2's 3x3 stride-1
 * undilated planes. fnn_plane_conv takes the body's kernel for them, and the forward and
 * stride-1 input-gradient drivers pad them (the fused depthwise backward passes unpadded planes,
 * whose edge columns the body computes in scalar code: still faster there, measured). */
int fnn_plane_conv_prefers_padded(const fnn_plane_geom *g);
#define FNN_DW_MAX_KW 16
#define FNN_DW_MAX_SPAN 128

/* dx = the input gradient of nc planes at once, gathered (each dx element written once):
 * dx[ih, iw] = sum over c < nc, then taps (a, b), of wt[c*kh*kw + a*kw + b] *
 * dy[c*dys + oh*w_out + ow] where oh*sh = ih + pt - a*dh and ow*sw = iw + pl - b*dw fall
 * inside dY. Any stride; on whole vectors where fnn_plane_dw_reads_padding_itself and the
 * weights are all finite (dY's padding is then a multiplied 0), elsewhere fnn_plane_grad_input
 * plane by plane after clearing dx. */
void fnn_plane_grad_input_gather_f32(const fnn_plane_geom *g, const float *dy, fnn_int nc, fnn_int dys,
                                     const float *wt, float *dx);
void fnn_plane_grad_input_gather_f64(const fnn_plane_geom *g, const double *dy, fnn_int nc, fnn_int dys,
                                     const double *wt, double *dx);

/* Four fnn_plane_conv outputs from the same input planes at once: weights wt + q*wcs, bias
 * bias + q (bias may be NULL), output y + q*ys, q < 4. On AVX-512 3x3 stride-1 planes each
 * input vector then serves four outputs; elsewhere it is four fnn_plane_conv calls. */
void fnn_plane_conv4_f32(const fnn_plane_geom *g, const float *x, fnn_int nc, fnn_int xs,
                         const float *wt, fnn_int wcs, const float *bias, float *y, fnn_int ys);
void fnn_plane_conv4_f64(const fnn_plane_geom *g, const double *x, fnn_int nc, fnn_int xs,
                         const double *wt, fnn_int wcs, const double *bias, double *y, fnn_int ys);

/* dst[0:n] = src[0:n], bypassing the caches where the level has streaming stores (AVX-512),
 * for outputs written once and not read again soon. */
void fnn_stream_copy_f32(float *dst, const float *src, fnn_int n);
void fnn_stream_copy_f64(double *dst, const double *src, fnn_int n);

/* dx += the transposed convolution of dy with wt (dx is not cleared): any stride. */
void fnn_plane_grad_input_f32(const fnn_plane_geom *g, const float *dy, const float *wt, float *dx);
void fnn_plane_grad_input_f64(const fnn_plane_geom *g, const double *dy, const double *wt, double *dx);

/* lanes[tap*w_out + ow] += sum over output rows oh, in order, of dy[oh, ow] * x at that tap
 * (lanes: kh*kw*w_out elements, not cleared). A caller sums the lanes across ow in order at
 * the end: a fixed order for every element, however the planes are shared among threads. */
void fnn_plane_grad_weight_lanes_f32(const fnn_plane_geom *g, const float *dy, const float *x, float *lanes);
void fnn_plane_grad_weight_lanes_f64(const fnn_plane_geom *g, const double *dy, const double *x, double *lanes);

/* The kernels' vectors: 64 bytes at every instruction-set level (16 floats, 8 doubles). */
#define FNN_PLANE_VECTOR_BYTES 64
/* Bytes a buffer written by fnn_plane_pad needs past its last row (see there). */
#define FNN_PLANE_SLACK_BYTES FNN_PLANE_VECTOR_BYTES

/* The same convolution over the part of its input plane that it reads, zero-padded: no
 * padding, every tap of every output inside ((h_out-1)*sh + (kh-1)*dh + 1 rows, likewise
 * columns). The kernels above then run on whole vector chunks only. */
fnn_plane_geom fnn_plane_padded_geom(const fnn_plane_geom *g);
/* That padded plane of x, into xp with rows xs elements apart (xs >= its width; zeros fill
 * each row's end). xp needs FNN_PLANE_SLACK_BYTES past its last row. Padding becomes a
 * multiplied zero there, so callers pad only when the other operand is all finite. */
void fnn_plane_pad_f32(const fnn_plane_geom *g, const float *x, float *xp, fnn_int xs);
void fnn_plane_pad_f64(const fnn_plane_geom *g, const double *x, double *xp, fnn_int xs);

/* fnn_plane_grad_weight_lanes for stride-1 columns on whole vectors, for finite planes
 * copied by fnn_plane_pad: g padded (fnn_plane_padded_geom) with sw == 1; dy: h_out rows
 * dys >= wc elements apart, zeros from w_out to wc, wc = w_out rounded up to a multiple of
 * the vector; xp: xs >= wc + (kw-1)*dw. lanes: kh*kw*wc elements, lane t*wc + ow; those
 * from w_out on stay 0. The same sums in the same order, with the accumulators in
 * registers: the edge-aware kernel reads and writes its lanes at every tap of every row. */
void fnn_plane_grad_weight_wide_f32(const fnn_plane_geom *g, const float *dy, fnn_int dys,
                                    const float *xp, fnn_int xs, float *lanes);
void fnn_plane_grad_weight_wide_f64(const fnn_plane_geom *g, const double *dy, fnn_int dys,
                                    const double *xp, fnn_int xs, double *lanes);
/* The same lanes from the planes as they are (dy: h_out x w_out, x: h x w), for all-finite dy
 * and only where fnn_plane_reads_padding_itself(g) or fnn_plane_dw_reads_padding_itself(g). */
void fnn_plane_grad_weight_unpadded_f32(const fnn_plane_geom *g, const float *dy, const float *x,
                                        float *lanes);
void fnn_plane_grad_weight_unpadded_f64(const fnn_plane_geom *g, const double *dy, const double *x,
                                        double *lanes);

/* Asks for [p, p + bytes) to be brought into L2, line by line: for a plane that a loop will
 * reach after the current one, when the two are far apart in memory (the hardware
 * prefetchers follow runs of adjacent lines, not jumps of megabytes). */
void fnn_prefetch_l2(const void *p, fnn_int bytes);

#ifdef __cplusplus
}
#endif
#endif /* FNN_DIRECT_H */
