/*
 * im2col packing and col2im scatter (see fnn_im2col.h).
 *
 * The bodies live in fnn_im2col_body.h, written once and included per dtype; thin wrappers
 * compile them for each instruction-set level (target attributes) and the entry points
 * call the copy for the active level, as fnn_direct.c does.
 */
#include "fnn_im2col.h"
#include "fnn_isa.h"

#include <string.h>

fnn_int fnn_im2col_row_runs(const fnn_plane_geom *g, fnn_int p0, fnn_int count, fnn_int split,
                            fnn_row_run *runs)
{
    fnn_int n = 0, j = 0;
    while (j < count) {
        const fnn_int p = p0 + j, oh = p / g->w_out, ow = p - oh * g->w_out;
        fnn_int length = g->w_out - ow < count - j ? g->w_out - ow : count - j;
        if (split > 0 && length > split - j % split)
            length = split - j % split;
        runs[n].j = j;
        runs[n].length = length;
        runs[n].ih = oh * g->sh - g->pt;
        runs[n].iw = ow * g->sw - g->pl;
        n++;
        j += length;
    }
    return n;
}

#define T float
#define FNN_SFX(name) name##_f32
#include "fnn_im2col_body.h"
#undef T
#undef FNN_SFX

#define T double
#define FNN_SFX(name) name##_f64
#include "fnn_im2col_body.h"
#undef T
#undef FNN_SFX

/* ---- one compiled copy per instruction-set level, and the entry points ----------------- */

#define FNN_IM2COL_VARIANTS(T, sfx, suffix, attr)                                                 \
    static attr void pack_b_##sfx##_##suffix(const fnn_plane_geom *g, const T *x, fnn_int k0,   \
                                             fnn_int kcb, fnn_int ncols, int nr,                  \
                                             const fnn_row_run *runs, fnn_int n_runs, T *dst)     \
    { pack_b_body_##sfx(g, x, k0, kcb, ncols, nr, runs, n_runs, dst); }                           \
    static attr void rows_##sfx##_##suffix(const fnn_plane_geom *g, const T *x, fnn_int k0,     \
                                           fnn_int m, const fnn_row_run *runs, fnn_int n_runs,   \
                                           T *dst, fnn_int ld)                                    \
    { rows_body_##sfx(g, x, k0, m, runs, n_runs, dst, ld); }                                      \
    static attr void col2im_##sfx##_##suffix(const fnn_plane_geom *g, const T *cols, fnn_int ldc, \
                                             fnn_int k0, fnn_int rows, const fnn_row_run *runs,   \
                                             fnn_int n_runs, T *dx)                               \
    { col2im_body_##sfx(g, cols, ldc, k0, rows, runs, n_runs, dx); }

FNN_IM2COL_VARIANTS(float, f32, portable, )
FNN_IM2COL_VARIANTS(double, f64, portable, )
#ifdef FNN_X86_64
FNN_IM2COL_VARIANTS(float, f32, avx2, FNN_TARGET_AVX2)
FNN_IM2COL_VARIANTS(double, f64, avx2, FNN_TARGET_AVX2)
FNN_IM2COL_VARIANTS(float, f32, avx512, FNN_TARGET_AVX512)
FNN_IM2COL_VARIANTS(double, f64, avx512, FNN_TARGET_AVX512)
#endif

void fnn_im2col_pack_b_f32(const fnn_plane_geom *g, const float *x, fnn_int k0, fnn_int kcb,
                           fnn_int ncols, int nr, const fnn_row_run *runs, fnn_int n_runs,
                           float *dst)
{
    FNN_DISPATCH(pack_b_f32, (g, x, k0, kcb, ncols, nr, runs, n_runs, dst))
}

void fnn_im2col_pack_b_f64(const fnn_plane_geom *g, const double *x, fnn_int k0, fnn_int kcb,
                           fnn_int ncols, int nr, const fnn_row_run *runs, fnn_int n_runs,
                           double *dst)
{
    FNN_DISPATCH(pack_b_f64, (g, x, k0, kcb, ncols, nr, runs, n_runs, dst))
}

void fnn_im2col_rows_f32(const fnn_plane_geom *g, const float *x, fnn_int k0, fnn_int m,
                         const fnn_row_run *runs, fnn_int n_runs, float *dst, fnn_int ld)
{
    FNN_DISPATCH(rows_f32, (g, x, k0, m, runs, n_runs, dst, ld))
}

void fnn_im2col_rows_f64(const fnn_plane_geom *g, const double *x, fnn_int k0, fnn_int m,
                         const fnn_row_run *runs, fnn_int n_runs, double *dst, fnn_int ld)
{
    FNN_DISPATCH(rows_f64, (g, x, k0, m, runs, n_runs, dst, ld))
}

void fnn_col2im_add_f32(const fnn_plane_geom *g, const float *cols, fnn_int ldc, fnn_int k0,
                        fnn_int rows, const fnn_row_run *runs, fnn_int n_runs, float *dx)
{
    FNN_DISPATCH(col2im_f32, (g, cols, ldc, k0, rows, runs, n_runs, dx))
}

void fnn_col2im_add_f64(const fnn_plane_geom *g, const double *cols, fnn_int ldc, fnn_int k0,
                        fnn_int rows, const fnn_row_run *runs, fnn_int n_runs, double *dx)
{
    FNN_DISPATCH(col2im_f64, (g, cols, ldc, k0, rows, runs, n_runs, dx))
}

