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

/* The vector-extension helpers in fnn_direct_body.h pass 64-byte vectors between
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

/* ---- one compiled copy per instruction-set level, and the entry points ----------------- */

#define FNN_PLANE_VARIANTS(suffix, attr)                                                              \
    static attr void conv_f32_##suffix(const fnn_plane_geom *g, const float *x, fnn_int nc,             \
                                       fnn_int xs, const float *wt, const float *bias, float *y)         \
    { conv_f32(g, x, nc, xs, wt, bias, y); }                                                           \
    static attr void conv_f64_##suffix(const fnn_plane_geom *g, const double *x, fnn_int nc,            \
                                       fnn_int xs, const double *wt, const double *bias, double *y)      \
    { conv_f64(g, x, nc, xs, wt, bias, y); }                                                           \
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
    static attr void pad_plane_f32_##suffix(const fnn_plane_geom *g, const float *x, float *xp)         \
    { pad_plane_f32(g, x, xp); }                                                                       \
    static attr void pad_plane_f64_##suffix(const fnn_plane_geom *g, const double *x, double *xp)       \
    { pad_plane_f64(g, x, xp); }

FNN_PLANE_VARIANTS(portable, )
#ifdef FNN_X86_64
FNN_PLANE_VARIANTS(avx2, FNN_TARGET_AVX2)
FNN_PLANE_VARIANTS(avx512, FNN_TARGET_AVX512)
#endif

void fnn_plane_conv_f32(const fnn_plane_geom *g, const float *x, fnn_int nc, fnn_int xs,
                        const float *wt, const float *bias, float *y)
{
    FNN_DISPATCH(conv_f32, (g, x, nc, xs, wt, bias, y))
}

void fnn_plane_conv_f64(const fnn_plane_geom *g, const double *x, fnn_int nc, fnn_int xs,
                        const double *wt, const double *bias, double *y)
{
    FNN_DISPATCH(conv_f64, (g, x, nc, xs, wt, bias, y))
}

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

void fnn_plane_pad_f32(const fnn_plane_geom *g, const float *x, float *xp)
{
    FNN_DISPATCH(pad_plane_f32, (g, x, xp))
}

void fnn_plane_pad_f64(const fnn_plane_geom *g, const double *x, double *xp)
{
    FNN_DISPATCH(pad_plane_f64, (g, x, xp))
}
