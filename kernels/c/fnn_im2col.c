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

/* SSE2 is baseline on x86-64 (as in fnn_gemm.c): the 6-row interleave uses it unconditionally. */
#if defined(FNN_X86_64) && (defined(__SSE2__) || defined(_MSC_VER))
#include <emmintrin.h>
#define FNN_IM2COL_SSE2 1
#endif

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

/*
 * 6-row interleave, dst[p*6 + i] = src[i*ld + p]: the GEMM core's A panel for MR = 6. The
 * weight gradient gathers six contiguous cols rows and interleaves them here. SSE2: rows
 * 0-3 go through a 4x4 register transpose and rows 4-5 through unpacks, four pixels at a
 * time (a third of the scalar loads and stores; the core's packer, compiled for baseline
 * x86-64, did this element by element: 9% of a 3x3 weight gradient).
 */
void fnn_im2col_interleave6_f32(fnn_int k, const float *src, fnn_int ld, float *dst)
{
    const float *r0 = src, *r1 = src + ld, *r2 = src + 2 * ld;
    const float *r3 = src + 3 * ld, *r4 = src + 4 * ld, *r5 = src + 5 * ld;
    fnn_int p = 0;
#ifdef FNN_IM2COL_SSE2
    for (; p + 4 <= k; p += 4) {
        __m128 a0 = _mm_loadu_ps(r0 + p), a1 = _mm_loadu_ps(r1 + p);
        __m128 a2 = _mm_loadu_ps(r2 + p), a3 = _mm_loadu_ps(r3 + p);
        const __m128 a4 = _mm_loadu_ps(r4 + p), a5 = _mm_loadu_ps(r5 + p);
        const __m128 lo45 = _mm_unpacklo_ps(a4, a5); /* r4[p] r5[p] r4[p+1] r5[p+1] */
        const __m128 hi45 = _mm_unpackhi_ps(a4, a5);
        float *d = dst + 6 * p;
        _MM_TRANSPOSE4_PS(a0, a1, a2, a3); /* a_j = rows 0-3 at pixel p + j */
        _mm_storeu_ps(d + 0, a0);
        _mm_storel_pi((__m64 *)(d + 4), lo45);
        _mm_storeu_ps(d + 6, a1);
        _mm_storeh_pi((__m64 *)(d + 10), lo45);
        _mm_storeu_ps(d + 12, a2);
        _mm_storel_pi((__m64 *)(d + 16), hi45);
        _mm_storeu_ps(d + 18, a3);
        _mm_storeh_pi((__m64 *)(d + 22), hi45);
    }
#endif
    for (; p < k; p++) {
        dst[6 * p + 0] = r0[p];
        dst[6 * p + 1] = r1[p];
        dst[6 * p + 2] = r2[p];
        dst[6 * p + 3] = r3[p];
        dst[6 * p + 4] = r4[p];
        dst[6 * p + 5] = r5[p];
    }
}

void fnn_im2col_interleave6_f64(fnn_int k, const double *src, fnn_int ld, double *dst)
{
    const double *r0 = src, *r1 = src + ld, *r2 = src + 2 * ld;
    const double *r3 = src + 3 * ld, *r4 = src + 4 * ld, *r5 = src + 5 * ld;
    fnn_int p = 0;
#ifdef FNN_IM2COL_SSE2
    for (; p + 2 <= k; p += 2) {
        const __m128d a0 = _mm_loadu_pd(r0 + p), a1 = _mm_loadu_pd(r1 + p);
        const __m128d a2 = _mm_loadu_pd(r2 + p), a3 = _mm_loadu_pd(r3 + p);
        const __m128d a4 = _mm_loadu_pd(r4 + p), a5 = _mm_loadu_pd(r5 + p);
        double *d = dst + 6 * p;
        _mm_storeu_pd(d + 0, _mm_unpacklo_pd(a0, a1));
        _mm_storeu_pd(d + 2, _mm_unpacklo_pd(a2, a3));
        _mm_storeu_pd(d + 4, _mm_unpacklo_pd(a4, a5));
        _mm_storeu_pd(d + 6, _mm_unpackhi_pd(a0, a1));
        _mm_storeu_pd(d + 8, _mm_unpackhi_pd(a2, a3));
        _mm_storeu_pd(d + 10, _mm_unpackhi_pd(a4, a5));
    }
#endif
    for (; p < k; p++) {
        dst[6 * p + 0] = r0[p];
        dst[6 * p + 1] = r1[p];
        dst[6 * p + 2] = r2[p];
        dst[6 * p + 3] = r3[p];
        dst[6 * p + 4] = r4[p];
        dst[6 * p + 5] = r5[p];
    }
}
