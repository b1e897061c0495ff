# Declarations of the im2col packers and col2im scatter (kernels/c/fnn_im2col.h).
from fnn_gemm cimport fnn_int
from fnn_direct cimport fnn_plane_geom

cdef extern from "fnn_im2col.h" nogil:
    ctypedef struct fnn_row_run:
        fnn_int j, length, ih, iw

    fnn_int FNN_IM2COL_MAX_RUNS(fnn_int count)
    fnn_int fnn_im2col_row_runs(const fnn_plane_geom *g, fnn_int p0, fnn_int count, fnn_int split,
                                fnn_row_run *runs)
    void fnn_im2col_pack_b_f32(const fnn_plane_geom *g, const float *x, fnn_int k0, fnn_int kcb,
                               fnn_int ncols, int nr, const fnn_row_run *runs, fnn_int n_runs,
                               float *dst)
    void fnn_im2col_pack_b_f64(const fnn_plane_geom *g, const double *x, fnn_int k0, fnn_int kcb,
                               fnn_int ncols, int nr, const fnn_row_run *runs, fnn_int n_runs,
                               double *dst)
    void fnn_im2col_rows_f32(const fnn_plane_geom *g, const float *x, fnn_int k0, fnn_int m,
                             const fnn_row_run *runs, fnn_int n_runs, float *dst, fnn_int ld)
    void fnn_im2col_rows_f64(const fnn_plane_geom *g, const double *x, fnn_int k0, fnn_int m,
                             const fnn_row_run *runs, fnn_int n_runs, double *dst, fnn_int ld)
    void fnn_col2im_add_f32(const fnn_plane_geom *g, const float *cols, fnn_int ldc, fnn_int k0,
                            fnn_int rows, const fnn_row_run *runs, fnn_int n_runs, float *dx)
    void fnn_col2im_add_f64(const fnn_plane_geom *g, const double *cols, fnn_int ldc, fnn_int k0,
                            fnn_int rows, const fnn_row_run *runs, fnn_int n_runs, double *dx)
