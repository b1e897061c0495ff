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
    fnn_int pt, pl;       /* padding before (top, left); after is implied by h_out, w_out */
    fnn_int dh, dw;       /* dilation */
} fnn_plane_geom;

/* y = sum over taps (a, b) of wt[a*kw + b] * x[oh*sh - pt + a*dh, ow*sw - pl + b*dw], + bias. */
void fnn_plane_forward_f32(const fnn_plane_geom *g, const float *x, const float *wt, float bias, float *y);
void fnn_plane_forward_f64(const fnn_plane_geom *g, const double *x, const double *wt, double bias, double *y);

/* dx += the transposed convolution of dy with wt (dx is not cleared). */
void fnn_plane_grad_input_f32(const fnn_plane_geom *g, const float *dy, const float *wt, float *dx);
void fnn_plane_grad_input_f64(const fnn_plane_geom *g, const double *dy, const double *wt, double *dx);

/* dwt[tap] += sum over the plane of dy * x at that tap. lanes: scratch of kh*kw*w_out
 * elements, whose use makes the sums' order fixed: per tap and output column down the rows,
 * then across the columns in order. */
void fnn_plane_grad_weight_f32(const fnn_plane_geom *g, const float *dy, const float *x, float *dwt, float *lanes);
void fnn_plane_grad_weight_f64(const fnn_plane_geom *g, const double *dy, const double *x, double *dwt, double *lanes);

#ifdef __cplusplus
}
#endif
#endif /* FNN_DIRECT_H */
