/*
 * im2col packing for the implicit-GEMM convolutions: the column matrix of one image group,
 * cols[k, p] = x[ci, oh*sh - pt + a*dh, ow*sw - pl + b*dw] with k = (ci, a, b) and
 * p = (oh, ow), is never formed whole; these routines copy cache-sized blocks of it
 * straight into the GEMM core's packed layouts (see fnn_gemm.h), and scatter a block of
 * column gradients back into dX (col2im).
 *
 * Padding becomes packed zeros: a driver must not use these where a zero would meet an Inf
 * or NaN in the other operand (padding is absent, not 0 * Inf = NaN).
 *
 * Pixels are handled in row runs: consecutive output pixels within one output row, whose
 * entries for one kernel tap come from one input row at columns iw, iw + sw, ... The driver
 * cuts a block's pixels into runs once (fnn_im2col_row_runs) and every tap reuses them.
 * No allocation, no threads: the Cython drivers own scratch and threads.
 */
#ifndef FNN_IM2COL_H
#define FNN_IM2COL_H

#include "fnn_direct.h" /* fnn_plane_geom */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    fnn_int j;      /* first pixel, counted from the block's first */
    fnn_int length; /* pixels */
    fnn_int ih;     /* oh * sh - pt: input row before the tap's dilation offset */
    fnn_int iw;     /* the first pixel's ow * sw - pl */
} fnn_row_run;

/* Runs a block of count pixels can need (an upper bound, for sizing scratch). */
#define FNN_IM2COL_MAX_RUNS(count) (2 * (count) + 2)

/* Cut pixels p0 .. p0+count-1 into runs within one output row and, when split > 0, within
 * one split-wide panel (a run never crosses a panel edge). Returns the number of runs. */
fnn_int fnn_im2col_row_runs(const fnn_plane_geom *g, fnn_int p0, fnn_int count, fnn_int split,
                            fnn_row_run *runs);

/*
 * B panels for the forward: cols[k0:k0+kcb, p0:p0+ncols] of the image group whose first
 * channel is x (channels h*w apart), as nr-wide k-major panels, zero past ncols. runs: the
 * block's pixels cut with split = nr.
 */
void fnn_im2col_pack_b_f32(const fnn_plane_geom *g, const float *x, fnn_int k0, fnn_int kcb,
                           fnn_int ncols, int nr, const fnn_row_run *runs, fnn_int n_runs,
                           float *dst);
void fnn_im2col_pack_b_f64(const fnn_plane_geom *g, const double *x, fnn_int k0, fnn_int kcb,
                           fnn_int ncols, int nr, const fnn_row_run *runs, fnn_int n_runs,
                           double *dst);

/*
 * Rows k0 .. k0+m-1 of cols over a block's pixels (runs cut with split = 0), each row
 * contiguous: dst[i*ld + j]. The weight gradient interleaves these into A panels.
 */
void fnn_im2col_rows_f32(const fnn_plane_geom *g, const float *x, fnn_int k0, fnn_int m,
                         const fnn_row_run *runs, fnn_int n_runs, float *dst, fnn_int ld);
void fnn_im2col_rows_f64(const fnn_plane_geom *g, const double *x, fnn_int k0, fnn_int m,
                         const fnn_row_run *runs, fnn_int n_runs, double *dst, fnn_int ld);

/*
 * col2im: dx[ci, ih, iw] += cols[kk*ldc + j] for kernel rows k0 .. k0+rows-1 and the
 * block's pixels (runs cut with split = 0) that land inside the image; dx is the image
 * group's first channel. Terms go in (row, run, pixel) order, so each dx element sums in a
 * fixed order.
 */
void fnn_col2im_add_f32(const fnn_plane_geom *g, const float *cols, fnn_int ldc, fnn_int k0,
                        fnn_int rows, const fnn_row_run *runs, fnn_int n_runs, float *dx);
void fnn_col2im_add_f64(const fnn_plane_geom *g, const double *cols, fnn_int ldc, fnn_int k0,
                        fnn_int rows, const fnn_row_run *runs, fnn_int n_runs, double *dx);

#ifdef __cplusplus
}
#endif

#endif /* FNN_IM2COL_H */
