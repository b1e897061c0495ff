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

/* Columns per chunk: one FNN_VBYTES-byte vector of T (the includer's choice: 64, one AVX-512
 * register, two AVX2 or four SSE2 ones; or 32 for AVX2's forward, see fnn_direct.c). */
#define FNN_VL ((int)(FNN_VBYTES / sizeof(T)))
/* Output rows per block: independent accumulator chains (conv_block has four). */
#define FNN_ROWS 4

/*
 * One FNN_VBYTES-byte vector of T and its operations, through the compiler's vector extensions
 * (gcc, clang): at 64 bytes the same source becomes one AVX-512 register, two AVX2 or four SSE2 ones
 * in fnn_direct.c's per-level wrappers, and a * b + c contracts to a fused multiply-add
 * where the level has one (as the compiler does for scalar code). n < FNN_VL uses the
 * first n elements with scalar code: loads and stores never touch memory past them.
 * MSVC has no vector extensions: there a vector is a plain array the optimiser may
 * vectorise (the same results, possibly slower).
 */
#ifdef FNN_VECTOR_EXT
typedef T FNN_SFX(vec) __attribute__((vector_size(FNN_VBYTES)));
#define FNN_VE(v, j) (v)[j]
#else
typedef struct {
    T e[FNN_VBYTES / sizeof(T)];
} FNN_SFX(vec);
#define FNN_VE(v, j) (v).e[j]
#endif

static FNN_FORCE_INLINE FNN_SFX(vec) FNN_SFX(vzero)(void)
{
    FNN_SFX(vec) v;
    memset(&v, 0, sizeof v);
    return v;
}

/* p[0:n] in the first n elements, zeros after: whole vectors when n == FNN_VL. */
static FNN_FORCE_INLINE FNN_SFX(vec) FNN_SFX(vload)(const int n, const T *p)
{
    FNN_SFX(vec) v = FNN_SFX(vzero)();
    int j;
    if (n == FNN_VL) {
        memcpy(&v, p, sizeof v); /* an unaligned vector load */
        return v;
    }
    for (j = 0; j < n; j++)
        FNN_VE(v, j) = p[j];
    return v;
}

/* *acc += w * v, and *acc += d * v elementwise: with the vector extensions one fused
 * multiply-add where the level has it; elsewhere (MSVC) a loop over the elements. */
static FNN_FORCE_INLINE void FNN_SFX(vmadd)(FNN_SFX(vec) *acc, T w, FNN_SFX(vec) v)
{
#ifdef FNN_VECTOR_EXT
    *acc += w * v;
#else
    int j;
    for (j = 0; j < FNN_VL; j++)
        FNN_VE(*acc, j) += w * FNN_VE(v, j);
#endif
}

static FNN_FORCE_INLINE void FNN_SFX(vmadd_vv)(FNN_SFX(vec) *acc, FNN_SFX(vec) d, FNN_SFX(vec) v)
{
#ifdef FNN_VECTOR_EXT
    *acc += d * v;
#else
    int j;
    for (j = 0; j < FNN_VL; j++)
        FNN_VE(*acc, j) += FNN_VE(d, j) * FNN_VE(v, j);
#endif
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
                                                 const T *bias, T *FNN_RESTRICT y, fnn_int yr,
                                                 fnn_int xr_step)
{
    FNN_SFX(vec) acc[4];
    fnn_int c, a, b, taps = g->kh * g->kw;
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

/* acc += wr[0] * v[0] + wr[1] * v[1] + wr[2] * v[2], as three multiply-adds in that order. */
static FNN_FORCE_INLINE void FNN_SFX(taps3)(FNN_SFX(vec) *acc, const T *wr, const FNN_SFX(vec) *v)
{
    FNN_SFX(vmadd)(acc, wr[0], v[0]);
    FNN_SFX(vmadd)(acc, wr[1], v[1]);
    FNN_SFX(vmadd)(acc, wr[2], v[2]);
}

/*
 * conv_block for the commonest kernel, 3x3 with stride and dilation 1, FNN_ROWS (4) output
 * rows with every kernel row inside the image: the same sums in the same order, but each
 * input row is loaded once (three shifted vectors) and used by every output row that reads
 * it, where the general block loads them once per tap. Written out row by row: compilers do
 * not reliably unroll the loop over input rows, and without that every tap pays a branch.
 */
static FNN_FORCE_INLINE void FNN_SFX(conv_block3x3)(const int n, const fnn_plane_geom *g,
                                                    const T *FNN_RESTRICT x, fnn_int nc, fnn_int xs,
                                                    const T *FNN_RESTRICT wt, fnn_int ih0, fnn_int iw0,
                                                    const T *bias, T *FNN_RESTRICT y, fnn_int yr)
{
    FNN_SFX(vec) a0 = FNN_SFX(vzero)(), a1 = a0, a2 = a0, a3 = a0, v[3];
    fnn_int c;
    for (c = 0; c < nc; c++) {
        const T *FNN_RESTRICT xc = x + c * xs + ih0 * g->w + iw0;
        const T *FNN_RESTRICT w0 = wt + c * 9, *w1 = w0 + 3, *w2 = w0 + 6;
        /* input row i feeds output row r through kernel row i - r; within every output row
         * the taps still go in (a, b) order */
#define FNN_LOAD_ROW(i)                                      \
        v[0] = FNN_SFX(vload)(n, xc + (i) * g->w);           \
        v[1] = FNN_SFX(vload)(n, xc + (i) * g->w + 1);       \
        v[2] = FNN_SFX(vload)(n, xc + (i) * g->w + 2)
        FNN_LOAD_ROW(0);
        FNN_SFX(taps3)(&a0, w0, v);
        FNN_LOAD_ROW(1);
        FNN_SFX(taps3)(&a0, w1, v);
        FNN_SFX(taps3)(&a1, w0, v);
        FNN_LOAD_ROW(2);
        FNN_SFX(taps3)(&a0, w2, v);
        FNN_SFX(taps3)(&a1, w1, v);
        FNN_SFX(taps3)(&a2, w0, v);
        FNN_LOAD_ROW(3);
        FNN_SFX(taps3)(&a1, w2, v);
        FNN_SFX(taps3)(&a2, w1, v);
        FNN_SFX(taps3)(&a3, w0, v);
        FNN_LOAD_ROW(4);
        FNN_SFX(taps3)(&a2, w2, v);
        FNN_SFX(taps3)(&a3, w1, v);
        FNN_LOAD_ROW(5);
        FNN_SFX(taps3)(&a3, w2, v);
#undef FNN_LOAD_ROW
    }
    if (bias) {
        FNN_SFX(vadds)(n, &a0, *bias);
        FNN_SFX(vadds)(n, &a1, *bias);
        FNN_SFX(vadds)(n, &a2, *bias);
        FNN_SFX(vadds)(n, &a3, *bias);
    }
    FNN_SFX(vstore)(n, y, a0);
    FNN_SFX(vstore)(n, y + yr, a1);
    FNN_SFX(vstore)(n, y + 2 * yr, a2);
    FNN_SFX(vstore)(n, y + 3 * yr, a3);
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
static FNN_FORCE_INLINE void FNN_SFX(conv_interior)(const int R, const fnn_int sw, const int k3x3,
                                                    const fnn_plane_geom *g,
                                                    const T *x, fnn_int nc, fnn_int xs, const T *wt,
                                                    fnn_int a_lo, fnn_int a_hi, fnn_int ih0,
                                                    fnn_int lo, fnn_int hi, const T *bias, T *yrow)
{
    const int vl = FNN_VL, half = FNN_VL / 2;
    fnn_int ow = lo;
#define FNN_CHUNK(n, at)                                                                        \
    do {                                                                                        \
        if (k3x3)                                                                               \
            FNN_SFX(conv_block3x3)(n, g, x, nc, xs, wt, ih0, (at) - g->pl, bias, yrow + (at),    \
                                   g->w_out);                                                   \
        else                                                                                    \
            FNN_SFX(conv_block)(R, n, sw, g, x, nc, xs, wt, a_lo, a_hi, ih0, (at) * sw - g->pl,  \
                                bias, yrow + (at), g->w_out, g->sh * g->w);                     \
    } while (0)
    /* One row alone (conv1d's planes) would be one chain of multiply-adds, waiting out the
     * adder's latency at every tap: four neighbouring chunks go together instead, as the
     * "rows" of one block (Zen 3, AVX2, depthwise 8x256x400: k15 2.68 -> 1.33 ms). */
    if (R == 1 && !k3x3)
        for (; hi - ow >= 4 * vl; ow += 4 * vl)
            FNN_SFX(conv_block)(4, FNN_VL, sw, g, x, nc, xs, wt, a_lo, a_hi, ih0, ow * sw - g->pl,
                                bias, yrow + ow, vl, vl * sw);
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

/* R output rows from oh, with kernel rows [a_lo, a_hi) valid for all of them; k3x3: the
 * kernel is 3x3 with stride and dilation 1 and all three rows are valid. */
static FNN_FORCE_INLINE void FNN_SFX(conv_rows)(const int R, const int k3x3, const fnn_plane_geom *g, const T *x,
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
    if (k3x3)
        FNN_SFX(conv_interior)(R, 1, 1, g, x, nc, xs, wt, a_lo, a_hi, ih0, lo, hi, bias, yrow);
    else if (g->sw == 1)
        FNN_SFX(conv_interior)(R, 1, 0, g, x, nc, xs, wt, a_lo, a_hi, ih0, lo, hi, bias, yrow);
    else
        FNN_SFX(conv_interior)(R, g->sw, 0, g, x, nc, xs, wt, a_lo, a_hi, ih0, lo, hi, bias, yrow);
}

static FNN_FORCE_INLINE void FNN_SFX(conv)(const fnn_plane_geom *g, const T *x, fnn_int nc, fnn_int xs,
                                           const T *wt, const T *bias, T *y)
{
    fnn_int oh, lo, hi, a_lo, a_hi, row_lo, row_hi;
    const int k3x3 = g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1;
    FNN_SFX(interior_columns)(g, &lo, &hi);
    /* Rows [row_lo, row_hi) see every kernel row: they go FNN_ROWS at a time. */
    row_lo = g->pt > 0 ? (g->pt + g->sh - 1) / g->sh : 0;
    row_hi = g->h - 1 + g->pt - (g->kh - 1) * g->dh;
    row_hi = row_hi < 0 ? 0 : row_hi / g->sh + 1;
    if (row_hi > g->h_out)
        row_hi = g->h_out;
    for (oh = 0; oh < g->h_out;) {
        if (oh >= row_lo && oh + FNN_ROWS <= row_hi) {
            if (k3x3)
                FNN_SFX(conv_rows)(FNN_ROWS, 1, g, x, nc, xs, wt, bias, oh, 0, 3, lo, hi, y);
            else
                FNN_SFX(conv_rows)(FNN_ROWS, 0, g, x, nc, xs, wt, bias, oh, 0, g->kh, lo, hi, y);
            oh += FNN_ROWS;
        } else {
            FNN_SFX(row_taps)(g, oh * g->sh - g->pt, &a_lo, &a_hi);
            FNN_SFX(conv_rows)(1, 0, g, x, nc, xs, wt, bias, oh, a_lo, a_hi, lo, hi, y);
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
 * d[0:width] = zeros, then d[lo:hi] = s[0:hi-lo]: one row of a zero-padded copy. d may be
 * written up to FNN_VL elements past width (callers' buffers have FNN_PLANE_SLACK_BYTES
 * more; a row's overrun lands on the next row before that row is written). Whole-vector
 * moves, not loops the compiler would turn into a memcpy call per short row.
 */
static FNN_FORCE_INLINE void FNN_SFX(put_row)(T *FNN_RESTRICT d, fnn_int width, fnn_int lo, fnn_int hi,
                                              const T *FNN_RESTRICT s)
{
    const FNN_SFX(vec) zero = FNN_SFX(vzero)();
    FNN_SFX(vec) v;
    fnn_int c;
    for (c = 0; c < width; c += FNN_VL)
        memcpy(d + c, &zero, sizeof zero);
    for (c = lo; c + FNN_VL <= hi; c += FNN_VL) {
        memcpy(&v, s + (c - lo), sizeof v);
        memcpy(d + c, &v, sizeof v);
    }
    if (c < hi && hi - lo >= FNN_VL) { /* the last vector overlaps the one before */
        memcpy(&v, s + (hi - FNN_VL - lo), sizeof v);
        memcpy(d + hi - FNN_VL, &v, sizeof v);
        return;
    }
    /* a row shorter than a vector: fixed-size pieces (a loop here became a memmove call per
     * row, a tenth of a 14x14 grouped layer's forward) */
    if (hi - c >= 8) {
        memcpy(d + c, s + (c - lo), 8 * sizeof(T));
        c += 8;
    }
    if (hi - c >= 4) {
        memcpy(d + c, s + (c - lo), 4 * sizeof(T));
        c += 4;
    }
    if (hi - c >= 2) {
        memcpy(d + c, s + (c - lo), 2 * sizeof(T));
        c += 2;
    }
    if (hi - c >= 1)
        d[c] = s[c - lo];
}

/*
 * The part of plane x that geometry g reads, zero-padded into xp with rows xs elements
 * apart (xs >= the padded width; the columns past it are zeros too), laid out as
 * fnn_plane_padded_geom(g) describes (no padding, every tap of every output inside), so
 * the kernels above run on whole vector chunks only. Padding becomes a multiplied zero
 * there: callers use this only when the other operand is all finite.
 */
static FNN_FORCE_INLINE void FNN_SFX(pad_plane)(const fnn_plane_geom *g, const T *FNN_RESTRICT x,
                                                T *FNN_RESTRICT xp, fnn_int xs)
{
    fnn_plane_geom gp = fnn_plane_padded_geom(g);
    fnn_int r, lo, hi;
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
        if ((size_t)ih >= (size_t)g->h)
            FNN_SFX(put_row)(xp + r * xs, xs, 0, 0, x);
        else
            FNN_SFX(put_row)(xp + r * xs, xs, lo, hi, x + ih * g->w + lo - g->pl);
    }
}

/*
 * The weight gradient's lanes for stride-1 columns, on whole vectors: lanes[t*wc + j] +=
 * sum over output rows oh, in order, of dy[oh*dys + j] * xp[(oh*sh + a*dh)*xs + j + b*dw]
 * for the taps t = (a, b), j < wc (wc: w_out rounded up to whole vectors). g is a padded
 * geometry (fnn_plane_padded_geom: no padding, sw == 1); dy's rows hold zeros from w_out to
 * wc and xp's from its padded width to xs >= wc + (kw-1)*dw, and both planes are all
 * finite, so the lanes past w_out stay exactly 0. Each lane is the sum the edge-aware
 * grad_weight_lanes forms, in the same order; here up to tb taps' accumulators stay in
 * registers down a whole column of vectors (tb: what the level's register file holds).
 */
static FNN_FORCE_INLINE void FNN_SFX(grad_weight_wide)(const int tb, const fnn_plane_geom *g,
                                                       const T *FNN_RESTRICT dy, fnn_int dys,
                                                       const T *FNN_RESTRICT xp, fnn_int xs,
                                                       T *FNN_RESTRICT lanes)
{
    const fnn_int taps = g->kh * g->kw;
    const fnn_int wc = (g->w_out + FNN_VL - 1) / FNN_VL * FNN_VL;
    fnn_int t0, j, oh;
    int tt;
    for (t0 = 0; t0 < taps; t0 += tb) {
        const fnn_int nt = taps - t0 < tb ? taps - t0 : tb;
        fnn_int off[9];
        for (tt = 0; tt < tb; tt++) {
            fnn_int t = t0 + (tt < nt ? tt : 0);
            off[tt] = (t / g->kw) * g->dh * xs + (t % g->kw) * g->dw;
        }
        for (j = 0; j < wc; j += FNN_VL) {
            FNN_SFX(vec) acc[9];
            for (tt = 0; tt < tb; tt++)
                if (tt < nt)
                    memcpy(&acc[tt], lanes + (t0 + tt) * wc + j, sizeof acc[tt]);
            for (oh = 0; oh < g->h_out; oh++) {
                FNN_SFX(vec) d, v;
                const T *FNN_RESTRICT xr = xp + oh * g->sh * xs + j;
                memcpy(&d, dy + oh * dys + j, sizeof d);
                for (tt = 0; tt < tb; tt++) {
                    if (tt < nt) {
                        memcpy(&v, xr + off[tt], sizeof v);
                        FNN_SFX(vmadd_vv)(&acc[tt], d, v);
                    }
                }
            }
            for (tt = 0; tt < tb; tt++)
                if (tt < nt)
                    memcpy(lanes + (t0 + tt) * wc + j, &acc[tt], sizeof acc[tt]);
        }
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
