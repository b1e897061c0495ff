/*
 * Direct single-plane convolution kernels (see fnn_direct.h).
 *
 * Each body is written once per dtype as an always-inline function; thin wrappers compile it
 * for each instruction-set level (target attributes), where the compiler vectorises the
 * inner loops over output columns. The entry points pick the wrapper for the active level.
 */
#include "fnn_direct.h"
#include "fnn_isa.h"

/* Output columns [lo, hi) have input column ow*sw + iw0 inside [0, w). */
static FNN_FORCE_INLINE void fnn_column_span(fnn_int iw0, fnn_int sw, fnn_int w, fnn_int w_out,
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
    if (l > w_out)
        l = w_out;
    if (h > w_out)
        h = w_out;
    if (h < l)
        h = l;
    *lo = l;
    *hi = h;
}

/* ---- float32 bodies ------------------------------------------------------------------- */

static FNN_FORCE_INLINE void forward_f32(const fnn_plane_geom *g, const float *FNN_RESTRICT x,
                                         const float *FNN_RESTRICT wt, float bias, float *FNN_RESTRICT y)
{
    fnn_int oh, ow, a, b, lo, hi;
    for (oh = 0; oh < g->h_out; oh++) {
        float *FNN_RESTRICT yrow = y + oh * g->w_out;
        for (ow = 0; ow < g->w_out; ow++)
            yrow[ow] = 0;
        for (a = 0; a < g->kh; a++) {
            fnn_int ih = oh * g->sh - g->pt + a * g->dh;
            const float *FNN_RESTRICT xrow;
            if ((size_t)ih >= (size_t)g->h)
                continue;
            xrow = x + ih * g->w;
            for (b = 0; b < g->kw; b++) {
                float wv = wt[a * g->kw + b];
                fnn_int iw0 = b * g->dw - g->pl;
                fnn_column_span(iw0, g->sw, g->w, g->w_out, &lo, &hi);
                if (g->sw == 1) {
                    for (ow = lo; ow < hi; ow++)
                        yrow[ow] += wv * xrow[ow + iw0];
                } else {
                    for (ow = lo; ow < hi; ow++)
                        yrow[ow] += wv * xrow[ow * g->sw + iw0];
                }
            }
        }
        for (ow = 0; ow < g->w_out; ow++)
            yrow[ow] += bias;
    }
}

static FNN_FORCE_INLINE void grad_input_f32(const fnn_plane_geom *g, const float *FNN_RESTRICT dy,
                                            const float *FNN_RESTRICT wt, float *FNN_RESTRICT dx)
{
    fnn_int oh, ow, a, b, lo, hi;
    for (oh = 0; oh < g->h_out; oh++) {
        const float *FNN_RESTRICT dyrow = dy + oh * g->w_out;
        for (a = 0; a < g->kh; a++) {
            fnn_int ih = oh * g->sh - g->pt + a * g->dh;
            float *FNN_RESTRICT dxrow;
            if ((size_t)ih >= (size_t)g->h)
                continue;
            dxrow = dx + ih * g->w;
            for (b = 0; b < g->kw; b++) {
                float wv = wt[a * g->kw + b];
                fnn_int iw0 = b * g->dw - g->pl;
                fnn_column_span(iw0, g->sw, g->w, g->w_out, &lo, &hi);
                if (g->sw == 1) {
                    for (ow = lo; ow < hi; ow++)
                        dxrow[ow + iw0] += wv * dyrow[ow];
                } else {
                    for (ow = lo; ow < hi; ow++)
                        dxrow[ow * g->sw + iw0] += wv * dyrow[ow];
                }
            }
        }
    }
}

static FNN_FORCE_INLINE void grad_weight_f32(const fnn_plane_geom *g, const float *FNN_RESTRICT dy,
                                             const float *FNN_RESTRICT x, float *FNN_RESTRICT dwt,
                                             float *FNN_RESTRICT lanes)
{
    fnn_int oh, ow, a, b, lo, hi, tap, taps = g->kh * g->kw;
    for (ow = 0; ow < taps * g->w_out; ow++)
        lanes[ow] = 0;
    for (oh = 0; oh < g->h_out; oh++) {
        const float *FNN_RESTRICT dyrow = dy + oh * g->w_out;
        for (a = 0; a < g->kh; a++) {
            fnn_int ih = oh * g->sh - g->pt + a * g->dh;
            const float *FNN_RESTRICT xrow;
            if ((size_t)ih >= (size_t)g->h)
                continue;
            xrow = x + ih * g->w;
            for (b = 0; b < g->kw; b++) {
                float *FNN_RESTRICT lane = lanes + (a * g->kw + b) * g->w_out;
                fnn_int iw0 = b * g->dw - g->pl;
                fnn_column_span(iw0, g->sw, g->w, g->w_out, &lo, &hi);
                if (g->sw == 1) {
                    for (ow = lo; ow < hi; ow++)
                        lane[ow] += dyrow[ow] * xrow[ow + iw0];
                } else {
                    for (ow = lo; ow < hi; ow++)
                        lane[ow] += dyrow[ow] * xrow[ow * g->sw + iw0];
                }
            }
        }
    }
    for (tap = 0; tap < taps; tap++) {
        float s = 0;
        for (ow = 0; ow < g->w_out; ow++)
            s += lanes[tap * g->w_out + ow];
        dwt[tap] += s;
    }
}

/* ---- float64 bodies: the same arithmetic ------------------------------------------------ */

static FNN_FORCE_INLINE void forward_f64(const fnn_plane_geom *g, const double *FNN_RESTRICT x,
                                         const double *FNN_RESTRICT wt, double bias, double *FNN_RESTRICT y)
{
    fnn_int oh, ow, a, b, lo, hi;
    for (oh = 0; oh < g->h_out; oh++) {
        double *FNN_RESTRICT yrow = y + oh * g->w_out;
        for (ow = 0; ow < g->w_out; ow++)
            yrow[ow] = 0;
        for (a = 0; a < g->kh; a++) {
            fnn_int ih = oh * g->sh - g->pt + a * g->dh;
            const double *FNN_RESTRICT xrow;
            if ((size_t)ih >= (size_t)g->h)
                continue;
            xrow = x + ih * g->w;
            for (b = 0; b < g->kw; b++) {
                double wv = wt[a * g->kw + b];
                fnn_int iw0 = b * g->dw - g->pl;
                fnn_column_span(iw0, g->sw, g->w, g->w_out, &lo, &hi);
                if (g->sw == 1) {
                    for (ow = lo; ow < hi; ow++)
                        yrow[ow] += wv * xrow[ow + iw0];
                } else {
                    for (ow = lo; ow < hi; ow++)
                        yrow[ow] += wv * xrow[ow * g->sw + iw0];
                }
            }
        }
        for (ow = 0; ow < g->w_out; ow++)
            yrow[ow] += bias;
    }
}

static FNN_FORCE_INLINE void grad_input_f64(const fnn_plane_geom *g, const double *FNN_RESTRICT dy,
                                            const double *FNN_RESTRICT wt, double *FNN_RESTRICT dx)
{
    fnn_int oh, ow, a, b, lo, hi;
    for (oh = 0; oh < g->h_out; oh++) {
        const double *FNN_RESTRICT dyrow = dy + oh * g->w_out;
        for (a = 0; a < g->kh; a++) {
            fnn_int ih = oh * g->sh - g->pt + a * g->dh;
            double *FNN_RESTRICT dxrow;
            if ((size_t)ih >= (size_t)g->h)
                continue;
            dxrow = dx + ih * g->w;
            for (b = 0; b < g->kw; b++) {
                double wv = wt[a * g->kw + b];
                fnn_int iw0 = b * g->dw - g->pl;
                fnn_column_span(iw0, g->sw, g->w, g->w_out, &lo, &hi);
                if (g->sw == 1) {
                    for (ow = lo; ow < hi; ow++)
                        dxrow[ow + iw0] += wv * dyrow[ow];
                } else {
                    for (ow = lo; ow < hi; ow++)
                        dxrow[ow * g->sw + iw0] += wv * dyrow[ow];
                }
            }
        }
    }
}

static FNN_FORCE_INLINE void grad_weight_f64(const fnn_plane_geom *g, const double *FNN_RESTRICT dy,
                                             const double *FNN_RESTRICT x, double *FNN_RESTRICT dwt,
                                             double *FNN_RESTRICT lanes)
{
    fnn_int oh, ow, a, b, lo, hi, tap, taps = g->kh * g->kw;
    for (ow = 0; ow < taps * g->w_out; ow++)
        lanes[ow] = 0;
    for (oh = 0; oh < g->h_out; oh++) {
        const double *FNN_RESTRICT dyrow = dy + oh * g->w_out;
        for (a = 0; a < g->kh; a++) {
            fnn_int ih = oh * g->sh - g->pt + a * g->dh;
            const double *FNN_RESTRICT xrow;
            if ((size_t)ih >= (size_t)g->h)
                continue;
            xrow = x + ih * g->w;
            for (b = 0; b < g->kw; b++) {
                double *FNN_RESTRICT lane = lanes + (a * g->kw + b) * g->w_out;
                fnn_int iw0 = b * g->dw - g->pl;
                fnn_column_span(iw0, g->sw, g->w, g->w_out, &lo, &hi);
                if (g->sw == 1) {
                    for (ow = lo; ow < hi; ow++)
                        lane[ow] += dyrow[ow] * xrow[ow + iw0];
                } else {
                    for (ow = lo; ow < hi; ow++)
                        lane[ow] += dyrow[ow] * xrow[ow * g->sw + iw0];
                }
            }
        }
    }
    for (tap = 0; tap < taps; tap++) {
        double s = 0;
        for (ow = 0; ow < g->w_out; ow++)
            s += lanes[tap * g->w_out + ow];
        dwt[tap] += s;
    }
}

/* ---- one compiled copy per instruction-set level, and the entry points ----------------- */

#define FNN_PLANE_VARIANTS(suffix, attr)                                                           \
    static attr void forward_f32_##suffix(const fnn_plane_geom *g, const float *x, const float *wt, \
                                          float bias, float *y) { forward_f32(g, x, wt, bias, y); } \
    static attr void forward_f64_##suffix(const fnn_plane_geom *g, const double *x, const double *wt, \
                                          double bias, double *y) { forward_f64(g, x, wt, bias, y); } \
    static attr void grad_input_f32_##suffix(const fnn_plane_geom *g, const float *dy, const float *wt, \
                                             float *dx) { grad_input_f32(g, dy, wt, dx); }           \
    static attr void grad_input_f64_##suffix(const fnn_plane_geom *g, const double *dy, const double *wt, \
                                             double *dx) { grad_input_f64(g, dy, wt, dx); }          \
    static attr void grad_weight_f32_##suffix(const fnn_plane_geom *g, const float *dy, const float *x, \
                                              float *dwt, float *lanes) { grad_weight_f32(g, dy, x, dwt, lanes); } \
    static attr void grad_weight_f64_##suffix(const fnn_plane_geom *g, const double *dy, const double *x, \
                                              double *dwt, double *lanes) { grad_weight_f64(g, dy, x, dwt, lanes); }

FNN_PLANE_VARIANTS(portable, )
#ifdef FNN_X86_64
FNN_PLANE_VARIANTS(avx2, FNN_TARGET_AVX2)
FNN_PLANE_VARIANTS(avx512, FNN_TARGET_AVX512)
#endif

void fnn_plane_forward_f32(const fnn_plane_geom *g, const float *x, const float *wt, float bias, float *y)
{
    FNN_DISPATCH(forward_f32, (g, x, wt, bias, y))
}

void fnn_plane_forward_f64(const fnn_plane_geom *g, const double *x, const double *wt, double bias, double *y)
{
    FNN_DISPATCH(forward_f64, (g, x, wt, bias, y))
}

void fnn_plane_grad_input_f32(const fnn_plane_geom *g, const float *dy, const float *wt, float *dx)
{
    FNN_DISPATCH(grad_input_f32, (g, dy, wt, dx))
}

void fnn_plane_grad_input_f64(const fnn_plane_geom *g, const double *dy, const double *wt, double *dx)
{
    FNN_DISPATCH(grad_input_f64, (g, dy, wt, dx))
}

void fnn_plane_grad_weight_f32(const fnn_plane_geom *g, const float *dy, const float *x, float *dwt, float *lanes)
{
    FNN_DISPATCH(grad_weight_f32, (g, dy, x, dwt, lanes))
}

void fnn_plane_grad_weight_f64(const fnn_plane_geom *g, const double *dy, const double *x, double *dwt, double *lanes)
{
    FNN_DISPATCH(grad_weight_f64, (g, dy, x, dwt, lanes))
}
