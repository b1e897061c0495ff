/*
 * Direct single-plane convolution kernels (see fnn_direct.h).
 *
 * The bodies live in fnn_direct_body.h, written once and included per dtype; thin wrappers
 * compile them for each instruction-set level (target attributes), where the compiler turns
 * the fixed-width column chunks into vector registers. The entry points pick the wrapper
 * for the active level.
 */
#include "fnn_direct.h"
#include "fnn_isa.h"

#include <string.h>

/* The vector-extension helpers in fnn_direct_body.h pass 64-byte (and 32-byte) vectors between
 * always-inline functions; gcc warns that such a call's ABI differs without AVX-512, which
 * never matters here (no such call survives inlining). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
/* gcc's and clang's vector extensions (see fnn_direct_body.h); MSVC gets plain arrays. */
#if defined(__GNUC__) || defined(__clang__)
#define FNN_VECTOR_EXT 1
#endif

fnn_plane_geom fnn_plane_padded_geom(const fnn_plane_geom *g)
{
    fnn_plane_geom gp = *g;
    gp.h = (g->h_out - 1) * g->sh + (g->kh - 1) * g->dh + 1;
    gp.w = (g->w_out - 1) * g->sw + (g->kw - 1) * g->dw + 1;
    gp.pt = gp.pl = 0;
    return gp;
}

#define FNN_VBYTES 64
#define T float
#define FNN_SFX(name) name##_f32
#include "fnn_direct_body.h"
#undef T
#undef FNN_SFX

#define T double
#define FNN_SFX(name) name##_f64
#include "fnn_direct_body.h"
#undef T
#undef FNN_SFX
#undef FNN_VBYTES

#ifdef FNN_X86_64
/* AVX2's forward runs on one-register (32-byte) vectors: gcc keeps 64-byte vectors, two
 * registers each, on the stack there, and the one-row planes of conv1d's depthwise layers
 * ran at 10 cycles per output (Zen 3; 2x slower than the SSE2 build). Per output the same
 * sums in the same order. Only conv: the weight-gradient forms' lane buffers are laid out
 * in 64-byte vectors. */
#define FNN_VBYTES 32
#define T float
#define FNN_SFX(name) name##_f32_v32
#include "fnn_direct_body.h"
#undef T
#undef FNN_SFX

#define T double
#define FNN_SFX(name) name##_f64_v32
#include "fnn_direct_body.h"
#undef T
#undef FNN_SFX
#undef FNN_VBYTES
#endif

/* ---- one compiled copy per instruction-set level, and the entry points ----------------- */

/* tb: taps whose accumulators the level's vector registers hold at once (the weight
 * gradient keeps tb 64-byte vectors live: one register each with AVX-512, two with AVX2,
 * four with SSE2, out of 32, 16 and 16). conv_width: empty, or _v32 for the 32-byte body's
 * forward (see above). */
#define FNN_PLANE_VARIANTS(suffix, attr, tb, conv_width)                                                  \
    static attr void conv_f32_##suffix(const fnn_plane_geom *g, const float *x, fnn_int nc,             \
                                       fnn_int xs, const float *wt, const float *bias, float *y)         \
    { conv_f32##conv_width(g, x, nc, xs, wt, bias, y); }                                               \
    static attr void conv_f64_##suffix(const fnn_plane_geom *g, const double *x, fnn_int nc,            \
                                       fnn_int xs, const double *wt, const double *bias, double *y)      \
    { conv_f64##conv_width(g, x, nc, xs, wt, bias, y); }                                               \
    static attr void grad_input_scatter_f32_##suffix(const fnn_plane_geom *g, const float *dy,          \
                                                     const float *wt, float *dx)                         \
    { grad_input_scatter_f32(g, dy, wt, dx); }                                                         \
    static attr void grad_input_scatter_f64_##suffix(const fnn_plane_geom *g, const double *dy,         \
                                                     const double *wt, double *dx)                       \
    { grad_input_scatter_f64(g, dy, wt, dx); }                                                         \
    static attr void grad_weight_lanes_f32_##suffix(const fnn_plane_geom *g, const float *dy,           \
                                                    const float *x, float *lanes)                        \
    { grad_weight_lanes_f32(g, dy, x, lanes); }                                                        \
    static attr void grad_weight_lanes_f64_##suffix(const fnn_plane_geom *g, const double *dy,          \
                                                    const double *x, double *lanes)                      \
    { grad_weight_lanes_f64(g, dy, x, lanes); }                                                        \
    static attr void grad_weight_wide_f32_##suffix(const fnn_plane_geom *g, const float *dy, fnn_int dys, \
                                                   const float *xp, fnn_int xs, float *lanes)            \
    { grad_weight_wide_f32(tb, g, dy, dys, xp, xs, lanes); }                                           \
    static attr void grad_weight_wide_f64_##suffix(const fnn_plane_geom *g, const double *dy, fnn_int dys, \
                                                   const double *xp, fnn_int xs, double *lanes)          \
    { grad_weight_wide_f64(tb, g, dy, dys, xp, xs, lanes); }                                           \
    static attr void pad_plane_f32_##suffix(const fnn_plane_geom *g, const float *x, float *xp,         \
                                            fnn_int xs)                                                \
    { pad_plane_f32(g, x, xp, xs); }                                                                   \
    static attr void pad_plane_f64_##suffix(const fnn_plane_geom *g, const double *x, double *xp,       \
                                            fnn_int xs)                                                \
    { pad_plane_f64(g, x, xp, xs); }

FNN_PLANE_VARIANTS(portable, , 3, )
#ifdef FNN_X86_64
FNN_PLANE_VARIANTS(avx2, FNN_TARGET_AVX2, 6, _v32)
FNN_PLANE_VARIANTS(avx512, FNN_TARGET_AVX512, 9, )
#endif

int fnn_plane_reads_padding_itself(const fnn_plane_geom *g)
{
#ifdef FNN_X86_64
    return fnn_active_isa() == FNN_ISA_AVX512 && g->kh == 3 && g->kw == 3 && g->sh == 1 &&
           g->sw == 1 && g->dh == 1 && g->dw == 1;
#else
    (void)g;
    return 0;
#endif
}

/* Whether some tap of some output lands outside the plane. */
static int fnn_plane_reads_padding(const fnn_plane_geom *g)
{
    return !(g->pt <= 0 && g->pl <= 0 && (g->h_out - 1) * g->sh - g->pt + (g->kh - 1) * g->dh < g->h &&
             (g->w_out - 1) * g->sw - g->pl + (g->kw - 1) * g->dw < g->w);
}

int fnn_plane_conv_prefers_padded(const fnn_plane_geom *g)
{
#ifdef FNN_X86_64
    /* Zen 3, one 56x56 plane: 2.0 us on the padded copy (the body's 3x3 blocks on 32-byte
     * vectors) against 3.9 us in the masked kernel; 5x5 and 7x7 gain less than the copy costs,
     * and so do maps under one vector wide (MobileNet v2's 7x7, batch 32: 0.74x torch -> 0.32x) */
    return fnn_active_isa() == FNN_ISA_AVX2 && g->kh == 3 && g->kw == 3 && g->sh == 1 &&
           g->sw == 1 && g->dh == 1 && g->dw == 1 && g->w_out >= 8;
#else
    (void)g;
    return 0;
#endif
}

int fnn_plane_dw_reads_padding_itself(const fnn_plane_geom *g)
{
#ifdef FNN_X86_64
    const int isa = fnn_active_isa();
    /* Not one-row kernels (conv1d's depthwise layers, (N, C, 1, L)): blocks of rows and a
     * column's kh weights in registers gain nothing there, and fnn_direct_body.h's kernels ran
     * them 2-3x faster (Conformer's k3: 0.43 ms forward, 1.4 ms backward against 0.86 and 4.6) */
    return (isa == FNN_ISA_AVX512 || isa == FNN_ISA_AVX2) && !fnn_plane_reads_padding_itself(g) &&
           g->kh > 1 && (g->sw == 1 || g->sw == 2) && g->kw <= FNN_DW_MAX_KW && g->kh < 128 && g->sh <= 16 &&
           7 * g->sh + (g->kh - 1) * g->dh + 1 <= FNN_DW_MAX_SPAN;
#else
    (void)g;
    return 0;
#endif
}

/*
 * The entry points that route to fnn_direct_avx512.c (3x3, stride 1, dilation 1; padding
 * read as 0 * weight, so only where the geometry reads none or the weights are all finite),
 * once per dtype: T the element type, S its suffix.
 */
#ifdef FNN_X86_64
/* fnn_dw_avx512.c's and fnn_dw_avx2.c's kernels (fnn_dw_body.h), and a call to the active
 * level's (where fnn_plane_dw_reads_padding_itself, the level is one of the two) */
#define FNN_DW_DECLS(T, S, isa)                                                                    \
    void fnn_dw_conv_plane_##S##_##isa(const fnn_plane_geom *g, const T *x, fnn_int nc,            \
                                       fnn_int xs, const T *wt, const T *bias, T *y);              \
    void fnn_dw_grad_input_plane_##S##_##isa(const fnn_plane_geom *g, const T *dy, fnn_int nc,     \
                                             fnn_int dys, const T *wt, T *dx);                     \
    void fnn_dw_grad_weight_plane_##S##_##isa(const fnn_plane_geom *g, const T *dy, const T *x,    \
                                              T *lanes);
#define FNN_DW_CALL(name, S, args)                                                                 \
    do {                                                                                           \
        if (fnn_active_isa() == FNN_ISA_AVX512)                                                    \
            name##_##S##_avx512 args;                                                              \
        else                                                                                       \
            name##_##S##_avx2 args;                                                                \
    } while (0)
#define FNN_AVX512_DECLS(T, S)                                                                     \
    void fnn_conv3x3_plane_##S##_avx512(const fnn_plane_geom *g, const T *x, fnn_int nc,           \
                                        fnn_int xs, const T *wt, const T *bias, T *y);             \
    void fnn_conv3x3_planes4_##S##_avx512(const fnn_plane_geom *g, const T *x, fnn_int nc,         \
                                          fnn_int xs, const T *wt, fnn_int wcs, const T *bias,     \
                                          T *y, fnn_int ys);                                       \
    void fnn_grad_weight3x3_plane_##S##_avx512(const fnn_plane_geom *g, const T *dy, const T *x,   \
                                               T *lanes);                                          \
    void fnn_stream_copy_##S##_avx512(T *dst, const T *src, fnn_int n);                        \
    void fnn_stream_copy_##S##_avx2(T *dst, const T *src, fnn_int n);                          \
    FNN_DW_DECLS(T, S, avx512)                                                                     \
    FNN_DW_DECLS(T, S, avx2)
#define FNN_ON_AVX512(stmt) stmt
#else
#define FNN_AVX512_DECLS(T, S)
#define FNN_ON_AVX512(stmt)
#endif

#define FNN_AVX512_ROUTED(T, S)                                                                    \
    FNN_AVX512_DECLS(T, S)                                                                         \
    /* Whether the geometry reads no padding, or the weights are all finite: then a padded   */  \
    /* tap may be computed as 0 * weight. */                                                       \
    static int padding_as_zero_##S(const fnn_plane_geom *g, const T *wt, fnn_int count)            \
    {                                                                                              \
        fnn_int i;                                                                                 \
        int finite = 1;                                                                            \
        if (!fnn_plane_reads_padding(g))                                                           \
            return 1;                                                                              \
        /* no early exit: the compiler vectorises the loop (a plane's few dozen weights are */     \
        /* checked at every call) */                                                               \
        for (i = 0; i < count; i++)                                                                \
            finite &= wt[i] - wt[i] == 0;                                                          \
        return finite;                                                                             \
    }                                                                                              \
    void fnn_plane_conv_##S(const fnn_plane_geom *g, const T *x, fnn_int nc, fnn_int xs,           \
                            const T *wt, const T *bias, T *y)                                      \
    {                                                                                              \
        (void)padding_as_zero_##S; /* unused where there is no AVX-512 */                          \
        FNN_ON_AVX512(if (fnn_plane_reads_padding_itself(g) && padding_as_zero_##S(g, wt, 9 * nc)) { \
            fnn_conv3x3_plane_##S##_avx512(g, x, nc, xs, wt, bias, y);                             \
            return;                                                                                \
        })                                                                                         \
        FNN_ON_AVX512(if (fnn_plane_dw_reads_padding_itself(g) && !fnn_plane_conv_prefers_padded(g) && \
                          padding_as_zero_##S(g, wt, g->kh * g->kw * nc)) {                        \
            FNN_DW_CALL(fnn_dw_conv_plane, S, (g, x, nc, xs, wt, bias, y));                        \
            return;                                                                                \
        })                                                                                         \
        FNN_DISPATCH(conv_##S, (g, x, nc, xs, wt, bias, y))                                        \
    }                                                                                              \
    void fnn_plane_grad_input_gather_##S(const fnn_plane_geom *g, const T *dy, fnn_int nc,         \
                                         fnn_int dys, const T *wt, T *dx)                          \
    {                                                                                              \
        fnn_int c, i, taps = g->kh * g->kw;                                                        \
        (void)i;                                                                                   \
        FNN_ON_AVX512(if (fnn_plane_dw_reads_padding_itself(g)) {                                  \
            int finite = 1;                                                                        \
            for (i = 0; i < taps * nc; i++)                                                        \
                finite &= wt[i] - wt[i] == 0;                                                      \
            if (finite) {                                                                          \
                FNN_DW_CALL(fnn_dw_grad_input_plane, S, (g, dy, nc, dys, wt, dx));                 \
                return;                                                                            \
            }                                                                                      \
        })                                                                                         \
        memset(dx, 0, (size_t)g->h * (size_t)g->w * sizeof(T));                                    \
        for (c = 0; c < nc; c++)                                                                   \
            fnn_plane_grad_input_##S(g, dy + c * dys, wt + c * taps, dx);                          \
    }                                                                                              \
    void fnn_plane_conv4_##S(const fnn_plane_geom *g, const T *x, fnn_int nc, fnn_int xs,          \
                             const T *wt, fnn_int wcs, const T *bias, T *y, fnn_int ys)            \
    {                                                                                              \
        int q;                                                                                     \
        FNN_ON_AVX512(if (fnn_plane_reads_padding_itself(g) &&                                     \
                          padding_as_zero_##S(g, wt, 3 * wcs + 9 * nc)) {                          \
            fnn_conv3x3_planes4_##S##_avx512(g, x, nc, xs, wt, wcs, bias, y, ys);                  \
            return;                                                                                \
        })                                                                                         \
        for (q = 0; q < 4; q++)                                                                    \
            fnn_plane_conv_##S(g, x, nc, xs, wt + q * wcs, bias ? bias + q : NULL, y + q * ys);    \
    }                                                                                              \
    void fnn_stream_copy_##S(T *dst, const T *src, fnn_int n)                                      \
    {                                                                                              \
        FNN_ON_AVX512(if (fnn_active_isa() == FNN_ISA_AVX512) {                                    \
            fnn_stream_copy_##S##_avx512(dst, src, n);                                             \
            return;                                                                                \
        } else if (fnn_active_isa() == FNN_ISA_AVX2) {                                             \
            fnn_stream_copy_##S##_avx2(dst, src, n);                                               \
            return;                                                                                \
        })                                                                                         \
        memcpy(dst, src, (size_t)n * sizeof(T));                                                   \
    }                                                                                              \
    void fnn_plane_grad_weight_unpadded_##S(const fnn_plane_geom *g, const T *dy, const T *x,      \
                                            T *lanes)                                              \
    {                                                                                              \
        (void)g, (void)dy, (void)x, (void)lanes;                                                   \
        FNN_ON_AVX512(if (fnn_plane_reads_padding_itself(g))                                       \
                          fnn_grad_weight3x3_plane_##S##_avx512(g, dy, x, lanes);                  \
                      else                                                                         \
                          FNN_DW_CALL(fnn_dw_grad_weight_plane, S, (g, dy, x, lanes));)            \
    }

FNN_AVX512_ROUTED(float, f32)
FNN_AVX512_ROUTED(double, f64)

void fnn_plane_grad_input_f32(const fnn_plane_geom *g, const float *dy, const float *wt, float *dx)
{
    FNN_DISPATCH(grad_input_scatter_f32, (g, dy, wt, dx))
}

void fnn_plane_grad_input_f64(const fnn_plane_geom *g, const double *dy, const double *wt, double *dx)
{
    FNN_DISPATCH(grad_input_scatter_f64, (g, dy, wt, dx))
}

void fnn_plane_grad_weight_lanes_f32(const fnn_plane_geom *g, const float *dy, const float *x, float *lanes)
{
    FNN_DISPATCH(grad_weight_lanes_f32, (g, dy, x, lanes))
}

void fnn_plane_grad_weight_lanes_f64(const fnn_plane_geom *g, const double *dy, const double *x, double *lanes)
{
    FNN_DISPATCH(grad_weight_lanes_f64, (g, dy, x, lanes))
}

void fnn_plane_grad_weight_wide_f32(const fnn_plane_geom *g, const float *dy, fnn_int dys,
                                    const float *xp, fnn_int xs, float *lanes)
{
    FNN_DISPATCH(grad_weight_wide_f32, (g, dy, dys, xp, xs, lanes))
}

void fnn_plane_grad_weight_wide_f64(const fnn_plane_geom *g, const double *dy, fnn_int dys,
                                    const double *xp, fnn_int xs, double *lanes)
{
    FNN_DISPATCH(grad_weight_wide_f64, (g, dy, dys, xp, xs, lanes))
}

void fnn_plane_pad_f32(const fnn_plane_geom *g, const float *x, float *xp, fnn_int xs)
{
    FNN_DISPATCH(pad_plane_f32, (g, x, xp, xs))
}

void fnn_plane_pad_f64(const fnn_plane_geom *g, const double *x, double *xp, fnn_int xs)
{
    FNN_DISPATCH(pad_plane_f64, (g, x, xp, xs))
}

void fnn_prefetch_l2(const void *p, fnn_int bytes)
{
    const char *c = (const char *)p;
    fnn_int i;
    for (i = 0; i < bytes; i += 64)
        FNN_PREFETCH_L2(c + i);
}
