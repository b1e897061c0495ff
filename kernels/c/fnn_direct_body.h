/*
 * Bodies of the direct plane kernels for one dtype. fnn_direct.c includes this file once per
 * dtype with T (the element type) and FNN_SFX(name) (name with the dtype suffix) defined, so
 * float32 and float64 run the same arithmetic; every function here is always-inline and gets
 * compiled into fnn_direct.c's per-instruction-set wrappers.
 *
 * Why this shape: a plane's rows are short (14..56 columns in real networks), so the old
 * row-at-a-time loops spent most of their time in the compiler's scalar remainder loops.
 * Here columns go in fixed-width chunks (a compile-time trip count the compiler turns into
 * whole vector registers), with the accumulators held in registers over every tap, and the
 * row's ragged end covered by one more chunk overlapping the previous one (outputs are
 * written, not added to, so computing a column twice is harmless).
 */

/* Columns per chunk: one 64-byte vector of T (two AVX2 registers, one AVX-512 register). */
#define FNN_VL ((int)(64 / sizeof(T)))
/* Output rows per block: independent accumulator chains (conv_block has four). */
#define FNN_ROWS 4

/*
 * One 64-byte vector of T and its operations, through the compiler's vector extensions
 * (gcc, clang): the same source becomes one AVX-512 register, two AVX2 or four SSE2 ones
 * in fnn_direct.c's per-level wrappers, and a * b + c contracts to a fused multiply-add
 * where the level has one (as the compiler does for scalar code). n < FNN_VL uses the
 * first n elements with scalar code: loads and stores never touch memory past them.
 * MSVC has no vector extensions: there a vector is a plain array the optimiser may
 * vectorise (the same results, possibly slower).
 */
#ifdef FNN_VECTOR_EXT
typedef T FNN_SFX(vec) __attribute__((vector_size(64)));
#define FNN_VE(v, j) (v)[j]
#else
typedef struct {
    T e[64 / sizeof(T)];
} FNN_SFX(vec);
#define FNN_VE(v, j) (v).e[j]
#endif

static FNN_FORCE_INLINE FNN_SFX(vec) FNN_SFX(vzero)(void)
{
    FNN_SFX(vec) v;
    memset(&v, 0, sizeof v);
    return v;
}

/* acc[0:n] += w * p[j*sw] */
static FNN_FORCE_INLINE void FNN_SFX(vfma)(const int n, FNN_SFX(vec) *acc, T w, const T *p, const fnn_int sw)
{
    int j;
#ifdef FNN_VECTOR_EXT
    if (n == FNN_VL && sw == 1) {
        FNN_SFX(vec) v;
        memcpy(&v, p, sizeof v); /* an unaligned vector load */
        *acc += w * v;
        return;
    }
#endif
    for (j = 0; j < n; j++)
        FNN_VE(*acc, j) += w * p[j * sw];
}

/* acc[0:n] += s */
static FNN_FORCE_INLINE void FNN_SFX(vadds)(const int n, FNN_SFX(vec) *acc, T s)
{
    int j;
#ifdef FNN_VECTOR_EXT
    if (n == FNN_VL) {
        *acc += s; /* vector + scalar: the scalar goes to every element */
        return;
    }
#endif
    for (j = 0; j < n; j++)
        FNN_VE(*acc, j) += s;
}

static FNN_FORCE_INLINE void FNN_SFX(vstore)(const int n, T *p, FNN_SFX(vec) v)
{
    int j;
    if (n == FNN_VL)
        memcpy(p, &v, sizeof v);
    else
        for (j = 0; j < n; j++)
            p[j] = FNN_VE(v, j);
}

/*
 * Output rows r < R (1 or 4), columns j < n of one block: y[r*yr + j] = sum over channels
 * c < nc, valid kernel rows a in [a_lo, a_hi) and every kernel column b of
 * wt[c*taps + a*kw + b] * x[c*xs + (ih0 + r*sh + a*dh)*w + iw0 + j*sw + b*dw], then + *bias
 * when bias is not NULL. Every tap is inside the image. R, n and sw are compile-time
 * constants at every call site; n == FNN_VL runs on whole vectors, and R rows give R
 * independent chains of multiply-adds (one chain would wait out the adder's latency at
 * every tap).
 */
static FNN_FORCE_INLINE void FNN_SFX(conv_block)(const int R, const int n, const fnn_int sw,
                                                 const fnn_plane_geom *g, const T *FNN_RESTRICT x,
                                                 fnn_int nc, fnn_int xs, const T *FNN_RESTRICT wt,
                                                 fnn_int a_lo, fnn_int a_hi, fnn_int ih0, fnn_int iw0,
                                                 const T *bias, T *FNN_RESTRICT y, fnn_int yr)
{
    FNN_SFX(vec) acc[4];
    fnn_int c, a, b, taps = g->kh * g->kw, xr_step = g->sh * g->w;
    int r;
    for (r = 0; r < R; r++)
        acc[r] = FNN_SFX(vzero)();
    for (c = 0; c < nc; c++) {
        for (a = a_lo; a < a_hi; a++) {
            const T *FNN_RESTRICT xr = x + c * xs + (ih0 + a * g->dh) * g->w + iw0;
            const T *FNN_RESTRICT wr = wt + c * taps + a * g->kw;
            for (b = 0; b < g->kw; b++) {
                const T wv = wr[b];
                for (r = 0; r < R; r++)
                    FNN_SFX(vfma)(n, &acc[r], wv, xr + r * xr_step + b * g->dw, sw);
            }
        }
    }
    for (r = 0; r < R; r++) {
        if (bias)
            FNN_SFX(vadds)(n, &acc[r], *bias);
        FNN_SFX(vstore)(n, y + r * yr, acc[r]);
    }
}

/* One output column next to the image's edge: taps outside the row are skipped (padding is
 * absent, never a multiplied zero). */
static FNN_FORCE_INLINE void FNN_SFX(conv_edge)(const fnn_plane_geom *g, const T *FNN_RESTRICT x,
                                                fnn_int nc, fnn_int xs, const T *FNN_RESTRICT wt,
                                                fnn_int a_lo, fnn_int a_hi, fnn_int ih0, fnn_int ow,
                                                const T *bias, T *FNN_RESTRICT y)
{
    T acc = 0;
    fnn_int c, a, b, taps = g->kh * g->kw;
    for (c = 0; c < nc; c++) {
        for (a = a_lo; a < a_hi; a++) {
            const T *FNN_RESTRICT xr = x + c * xs + (ih0 + a * g->dh) * g->w;
            for (b = 0; b < g->kw; b++) {
                fnn_int iw = ow * g->sw - g->pl + b * g->dw;
                if ((size_t)iw < (size_t)g->w)
                    acc += wt[c * taps + a * g->kw + b] * xr[iw];
            }
        }
    }
    if (bias)
        acc += *bias;
    y[ow] = acc;
}

/* Interior columns [lo, hi) of R output rows, in chunks; the last chunk overlaps the one
 * before it rather than leaving a ragged end to scalar code. */
static FNN_FORCE_INLINE void FNN_SFX(conv_interior)(const int R, const fnn_int sw, const fnn_plane_geom *g,
                                                    const T *x, fnn_int nc, fnn_int xs, const T *wt,
                                                    fnn_int a_lo, fnn_int a_hi, fnn_int ih0,
                                                    fnn_int lo, fnn_int hi, const T *bias, T *yrow)
{
    const int vl = FNN_VL, half = FNN_VL / 2;
    fnn_int ow = lo;
#define FNN_CHUNK(n, at)                                                                  \
    FNN_SFX(conv_block)(R, n, sw, g, x, nc, xs, wt, a_lo, a_hi, ih0, (at) * sw - g->pl, bias, \
                        yrow + (at), g->w_out)
    for (; hi - ow >= vl; ow += vl)
        FNN_CHUNK(FNN_VL, ow);
    if (ow < hi && hi - lo >= vl) {
        FNN_CHUNK(FNN_VL, hi - vl);
        return;
    }
    if (hi - ow >= half) {
        FNN_CHUNK(FNN_VL / 2, ow);
        ow += half;
    }
    if (ow < hi && hi - lo >= half) {
        FNN_CHUNK(FNN_VL / 2, hi - half);
        return;
    }
    for (; ow < hi; ow++)
        FNN_CHUNK(1, ow);
#undef FNN_CHUNK
}

/* Valid kernel rows [a_lo, a_hi) for the input rows ih0 + a*dh of one output row. */
static FNN_FORCE_INLINE void FNN_SFX(row_taps)(const fnn_plane_geom *g, fnn_int ih0,
                                               fnn_int *a_lo, fnn_int *a_hi)
{
    fnn_int a = 0, e;
    while (a < g->kh && (size_t)(ih0 + a * g->dh) >= (size_t)g->h)
        a++;
    e = a;
    while (e < g->kh && (size_t)(ih0 + e * g->dh) < (size_t)g->h)
        e++;
    *a_lo = a;
    *a_hi = e;
}

/* Output columns [lo, hi) whose every kernel column is inside the input row. */
static FNN_FORCE_INLINE void FNN_SFX(interior_columns)(const fnn_plane_geom *g, fnn_int *lo, fnn_int *hi)
{
    fnn_int l = 0, h, last = g->w - 1 + g->pl - (g->kw - 1) * g->dw; /* ow*sw must be <= last */
    if (g->pl > 0)
        l = (g->pl + g->sw - 1) / g->sw;
    h = last < 0 ? 0 : last / g->sw + 1;
    if (l > g->w_out)
        l = g->w_out;
    if (h > g->w_out)
        h = g->w_out;
    if (h < l)
        h = l;
    *lo = l;
    *hi = h;
}

/* R output rows from oh, with kernel rows [a_lo, a_hi) valid for all of them. */
static FNN_FORCE_INLINE void FNN_SFX(conv_rows)(const int R, const fnn_plane_geom *g, const T *x,
                                                fnn_int nc, fnn_int xs, const T *wt, const T *bias,
                                                fnn_int oh, fnn_int a_lo, fnn_int a_hi,
                                                fnn_int lo, fnn_int hi, T *y)
{
    fnn_int ow, r, ih0 = oh * g->sh - g->pt;
    T *yrow = y + oh * g->w_out;
    for (r = 0; r < R; r++) {
        for (ow = 0; ow < lo; ow++)
            FNN_SFX(conv_edge)(g, x, nc, xs, wt, a_lo, a_hi, ih0 + r * g->sh, ow, bias, yrow + r * g->w_out);
        for (ow = hi; ow < g->w_out; ow++)
            FNN_SFX(conv_edge)(g, x, nc, xs, wt, a_lo, a_hi, ih0 + r * g->sh, ow, bias, yrow + r * g->w_out);
    }
    if (g->sw == 1)
        FNN_SFX(conv_interior)(R, 1, g, x, nc, xs, wt, a_lo, a_hi, ih0, lo, hi, bias, yrow);
    else
        FNN_SFX(conv_interior)(R, g->sw, g, x, nc, xs, wt, a_lo, a_hi, ih0, lo, hi, bias, yrow);
}

static FNN_FORCE_INLINE void FNN_SFX(conv)(const fnn_plane_geom *g, const T *x, fnn_int nc, fnn_int xs,
                                           const T *wt, const T *bias, T *y)
{
    fnn_int oh, lo, hi, a_lo, a_hi, row_lo, row_hi;
    FNN_SFX(interior_columns)(g, &lo, &hi);
    /* Rows [row_lo, row_hi) see every kernel row: they go FNN_ROWS at a time. */
    row_lo = g->pt > 0 ? (g->pt + g->sh - 1) / g->sh : 0;
    row_hi = g->h - 1 + g->pt - (g->kh - 1) * g->dh;
    row_hi = row_hi < 0 ? 0 : row_hi / g->sh + 1;
    if (row_hi > g->h_out)
        row_hi = g->h_out;
    for (oh = 0; oh < g->h_out;) {
        if (oh >= row_lo && oh + FNN_ROWS <= row_hi) {
            FNN_SFX(conv_rows)(FNN_ROWS, g, x, nc, xs, wt, bias, oh, 0, g->kh, lo, hi, y);
            oh += FNN_ROWS;
        } else {
            FNN_SFX(row_taps)(g, oh * g->sh - g->pt, &a_lo, &a_hi);
            FNN_SFX(conv_rows)(1, g, x, nc, xs, wt, bias, oh, a_lo, a_hi, lo, hi, y);
            oh += 1;
        }
    }
}

/* lane[t*w_out + ow0 + j] += dy[j] * x[iw0 + j*sw + b*dw] for the taps t of kernel rows
 * [a_lo, a_hi), j < n: one row's share of the weight gradient over n interior columns. */
static FNN_FORCE_INLINE void FNN_SFX(lanes_chunk)(const int n, const fnn_int sw, const fnn_plane_geom *g,
                                                  const T *FNN_RESTRICT dyrow, const T *FNN_RESTRICT x,
                                                  fnn_int a_lo, fnn_int a_hi, fnn_int ih0, fnn_int ow0,
                                                  T *FNN_RESTRICT lanes)
{
    fnn_int a, b;
    int j;
    for (a = a_lo; a < a_hi; a++) {
        const T *FNN_RESTRICT xr = x + (ih0 + a * g->dh) * g->w + ow0 * sw - g->pl;
        for (b = 0; b < g->kw; b++) {
            T *FNN_RESTRICT lane = lanes + (a * g->kw + b) * g->w_out + ow0;
            const T *FNN_RESTRICT xb = xr + b * g->dw;
#ifdef FNN_VECTOR_EXT
            if (n == FNN_VL && sw == 1) {
                FNN_SFX(vec) l, d, v;
                memcpy(&l, lane, sizeof l);
                memcpy(&d, dyrow + ow0, sizeof d);
                memcpy(&v, xb, sizeof v);
                l += d * v;
                memcpy(lane, &l, sizeof l);
                continue;
            }
#endif
            for (j = 0; j < n; j++)
                lane[j] += dyrow[ow0 + j] * xb[j * sw];
        }
    }
}

static FNN_FORCE_INLINE void FNN_SFX(lanes_interior)(const fnn_int sw, const fnn_plane_geom *g,
                                                     const T *dyrow, const T *x, fnn_int a_lo,
                                                     fnn_int a_hi, fnn_int ih0, fnn_int lo, fnn_int hi,
                                                     T *lanes)
{
    /* Sums are added to, so chunks may not overlap: halves, quarters, then single columns. */
    fnn_int ow = lo;
    for (; hi - ow >= FNN_VL; ow += FNN_VL)
        FNN_SFX(lanes_chunk)(FNN_VL, sw, g, dyrow, x, a_lo, a_hi, ih0, ow, lanes);
    if (hi - ow >= FNN_VL / 2) {
        FNN_SFX(lanes_chunk)(FNN_VL / 2, sw, g, dyrow, x, a_lo, a_hi, ih0, ow, lanes);
        ow += FNN_VL / 2;
    }
    if (hi - ow >= FNN_VL / 4) {
        FNN_SFX(lanes_chunk)(FNN_VL / 4, sw, g, dyrow, x, a_lo, a_hi, ih0, ow, lanes);
        ow += FNN_VL / 4;
    }
    for (; ow < hi; ow++)
        FNN_SFX(lanes_chunk)(1, sw, g, dyrow, x, a_lo, a_hi, ih0, ow, lanes);
}

/* One edge column's share: taps outside the row are skipped. */
static FNN_FORCE_INLINE void FNN_SFX(lanes_edge)(const fnn_plane_geom *g, T d, const T *FNN_RESTRICT x,
                                                 fnn_int a_lo, fnn_int a_hi, fnn_int ih0, fnn_int ow,
                                                 T *FNN_RESTRICT lanes)
{
    fnn_int a, b;
    for (a = a_lo; a < a_hi; a++) {
        const T *FNN_RESTRICT xr = x + (ih0 + a * g->dh) * g->w;
        for (b = 0; b < g->kw; b++) {
            fnn_int iw = ow * g->sw - g->pl + b * g->dw;
            if ((size_t)iw < (size_t)g->w)
                lanes[(a * g->kw + b) * g->w_out + ow] += d * xr[iw];
        }
    }
}

static FNN_FORCE_INLINE void FNN_SFX(grad_weight_lanes)(const fnn_plane_geom *g, const T *FNN_RESTRICT dy,
                                                        const T *FNN_RESTRICT x, T *FNN_RESTRICT lanes)
{
    fnn_int oh, ow, lo, hi, a_lo, a_hi;
    FNN_SFX(interior_columns)(g, &lo, &hi);
    for (oh = 0; oh < g->h_out; oh++) {
        fnn_int ih0 = oh * g->sh - g->pt;
        const T *FNN_RESTRICT dyrow = dy + oh * g->w_out;
        FNN_SFX(row_taps)(g, ih0, &a_lo, &a_hi);
        if (g->sw == 1)
            FNN_SFX(lanes_interior)(1, g, dyrow, x, a_lo, a_hi, ih0, lo, hi, lanes);
        else
            FNN_SFX(lanes_interior)(g->sw, g, dyrow, x, a_lo, a_hi, ih0, lo, hi, lanes);
        for (ow = 0; ow < g->w_out; ow++) {
            if (ow == lo)
                ow = hi; /* skip the interior, done above */
            if (ow < g->w_out)
                FNN_SFX(lanes_edge)(g, dyrow[ow], x, a_lo, a_hi, ih0, ow, lanes);
        }
    }
}

/*
 * The part of plane x that geometry g reads, zero-padded into xp, laid out as
 * fnn_plane_padded_geom(g) describes (no padding, every tap of every output inside), so
 * the kernels above run on whole vector chunks only. Padding becomes a multiplied zero
 * there: callers use this only when the other operand is all finite.
 */
static FNN_FORCE_INLINE void FNN_SFX(pad_plane)(const fnn_plane_geom *g, const T *FNN_RESTRICT x,
                                                T *FNN_RESTRICT xp)
{
    fnn_plane_geom gp = fnn_plane_padded_geom(g);
    fnn_int r, c, lo, hi;
    /* padded column c is input column c - pl: [lo, hi) of them are inside the row */
    lo = g->pl > 0 ? g->pl : 0;
    hi = g->w + g->pl;
    if (lo > gp.w)
        lo = gp.w;
    if (hi > gp.w)
        hi = gp.w;
    if (hi < lo)
        hi = lo;
    for (r = 0; r < gp.h; r++) {
        fnn_int ih = r - g->pt;
        T *FNN_RESTRICT d = xp + r * gp.w;
        if ((size_t)ih >= (size_t)g->h) {
            for (c = 0; c < gp.w; c++)
                d[c] = 0;
            continue;
        }
        for (c = 0; c < lo; c++)
            d[c] = 0;
        /* a plain loop, not memcpy: rows are short and the call would cost more than the
         * copy; the compiler vectorises it for each instruction-set level */
        for (c = lo; c < hi; c++)
            d[c] = x[ih * g->w + c - g->pl];
        for (c = hi; c < gp.w; c++)
            d[c] = 0;
    }
}

/* The scatter form of the input gradient, for strides above 1 (where the gather form's
 * output columns would each see a different subset of taps). */
static FNN_FORCE_INLINE void FNN_SFX(grad_input_scatter)(const fnn_plane_geom *g, const T *FNN_RESTRICT dy,
                                                         const T *FNN_RESTRICT wt, T *FNN_RESTRICT dx)
{
    fnn_int oh, ow, a, b, lo, hi;
    for (oh = 0; oh < g->h_out; oh++) {
        const T *FNN_RESTRICT dyrow = dy + oh * g->w_out;
        for (a = 0; a < g->kh; a++) {
            fnn_int ih = oh * g->sh - g->pt + a * g->dh;
            T *FNN_RESTRICT dxrow;
            if ((size_t)ih >= (size_t)g->h)
                continue;
            dxrow = dx + ih * g->w;
            for (b = 0; b < g->kw; b++) {
                T wv = wt[a * g->kw + b];
                fnn_int iw0 = b * g->dw - g->pl;
                fnn_valid_span(iw0, g->sw, g->w, g->w_out, &lo, &hi);
                for (ow = lo; ow < hi; ow++)
                    dxrow[ow * g->sw + iw0] += wv * dyrow[ow];
            }
        }
    }
}

#undef FNN_VL
#undef FNN_VE
#undef FNN_ROWS
