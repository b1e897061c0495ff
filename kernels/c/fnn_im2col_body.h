/*
 * Bodies of the im2col routines for one dtype: fnn_im2col.c includes this file once per
 * dtype with T and FNN_SFX(name) defined. Every function is always-inline and compiled
 * into fnn_im2col.c's per-instruction-set wrappers, where the compiler turns the copy loops
 * into vector code (the Cython drivers are baseline SSE2 and called libc's memcpy per run,
 * and did stride-2 gathers one scalar at a time).
 */

/*
 * Copies and zero fills of n elements, n mostly 1..64 (a run, a padding edge). Written as
 * fixed-size memcpy/memset calls, which the compiler turns into inline vector moves; plain
 * loops get recognised as copies and sent to libc's memmove/memset, whose call overhead
 * dominated at these lengths (10% of a 3x3 forward). Whole 64-byte chunks, then one chunk
 * overlapping the previous (rewriting equal values), or power-of-two pieces when n is short.
 */
#define FNN_CHUNK ((fnn_int)(64 / sizeof(T)))

static FNN_FORCE_INLINE void FNN_SFX(copy_n)(T *FNN_RESTRICT d, const T *FNN_RESTRICT s, fnn_int n)
{
    fnn_int t = 0, c;
    if (n >= FNN_CHUNK) {
        for (; t + FNN_CHUNK <= n; t += FNN_CHUNK)
            memcpy(d + t, s + t, 64);
        if (t < n)
            memcpy(d + n - FNN_CHUNK, s + n - FNN_CHUNK, 64);
        return;
    }
    FNN_UNROLL(4)
    for (c = FNN_CHUNK / 2; c >= 1; c /= 2) {
        if (n & c) {
            memcpy(d + t, s + t, c * sizeof(T));
            t += c;
        }
    }
}

static FNN_FORCE_INLINE void FNN_SFX(zero_n)(T *d, fnn_int n)
{
    fnn_int t = 0, c;
    if (n >= FNN_CHUNK) {
        for (; t + FNN_CHUNK <= n; t += FNN_CHUNK)
            memset(d + t, 0, 64);
        if (t < n)
            memset(d + n - FNN_CHUNK, 0, 64);
        return;
    }
    FNN_UNROLL(4)
    for (c = FNN_CHUNK / 2; c >= 1; c /= 2) {
        if (n & c) {
            memset(d + t, 0, c * sizeof(T));
            t += c;
        }
    }
}

/*
 * d[t] = row[iw0 + t*sw] for t < length, 0 where that is outside [0, w) (padding). The
 * strides real networks use, 1 and 2, get loops with a constant stride, which the
 * compiler vectorises (stride 2 with load-and-permute).
 */
static FNN_FORCE_INLINE void FNN_SFX(gather_run)(const T *FNN_RESTRICT row, fnn_int w, fnn_int iw0,
                                                 fnn_int sw, fnn_int length, T *FNN_RESTRICT d)
{
    fnn_int lo, hi, t;
    fnn_valid_span(iw0, sw, w, length, &lo, &hi);
    FNN_SFX(zero_n)(d, lo);
    if (hi > lo) {
        /* s[u] is the entry for step lo + u: never a pointer before the row's start */
        const T *FNN_RESTRICT s = row + iw0 + lo * sw;
        T *FNN_RESTRICT e = d + lo;
        const fnn_int n = hi - lo;
        if (sw == 1)
            FNN_SFX(copy_n)(e, s, n);
        else if (sw == 2)
            for (t = 0; t < n; t++)
                e[t] = s[2 * t];
        else
            for (t = 0; t < n; t++)
                e[t] = s[t * sw];
    }
    FNN_SFX(zero_n)(d + hi, length - hi);
}

static FNN_FORCE_INLINE void FNN_SFX(zero_run)(T *d, fnn_int length)
{
    FNN_SFX(zero_n)(d, length);
}

static FNN_FORCE_INLINE void FNN_SFX(pack_b_body)(const fnn_plane_geom *g, const T *x, fnn_int k0,
                                                  fnn_int kcb, fnn_int ncols, int nr,
                                                  const fnn_row_run *runs, fnn_int n_runs, T *dst)
{
    const fnn_int taps = g->kh * g->kw, plane = g->h * g->w;
    fnn_int panel, first = 0, last, kk, s;
    /* loop over the block's pixels in nr-wide panels, then over its kernel rows */
    for (panel = 0; panel * nr < ncols; panel++) {
        const fnn_int j0 = panel * nr;
        const fnn_int jn = ncols - j0 < nr ? ncols - j0 : nr;
        T *d = dst + panel * kcb * nr;
        fnn_int ci = k0 / taps, r = k0 - (k0 / taps) * taps;
        fnn_int a = r / g->kw, b = r - (r / g->kw) * g->kw;
        last = first;
        while (last < n_runs && runs[last].j < j0 + jn)
            last++;
        for (kk = 0; kk < kcb; kk++) {
            const T *xc = x + ci * plane;
            T *dk = d + kk * nr - j0;
            const fnn_int dih = a * g->dh, diw = b * g->dw;
            for (s = first; s < last; s++) {
                const fnn_int ih = runs[s].ih + dih;
                if ((size_t)ih < (size_t)g->h)
                    FNN_SFX(gather_run)(xc + ih * g->w, g->w, runs[s].iw + diw, g->sw,
                                        runs[s].length, dk + runs[s].j);
                else
                    FNN_SFX(zero_run)(dk + runs[s].j, runs[s].length);
            }
            if (jn < nr)
                FNN_SFX(zero_n)(d + kk * nr + jn, nr - jn);
            if (++b == g->kw) {
                b = 0;
                if (++a == g->kh) {
                    a = 0;
                    ci++;
                }
            }
        }
        first = last;
    }
}

static FNN_FORCE_INLINE void FNN_SFX(rows_body)(const fnn_plane_geom *g, const T *x, fnn_int k0,
                                                fnn_int m, const fnn_row_run *runs, fnn_int n_runs,
                                                T *dst, fnn_int ld)
{
    const fnn_int taps = g->kh * g->kw, plane = g->h * g->w;
    fnn_int i, s;
    for (i = 0; i < m; i++) {
        const fnn_int k = k0 + i, ci = k / taps, r = k - ci * taps;
        const fnn_int a = r / g->kw, b = r - a * g->kw;
        const T *xc = x + ci * plane;
        T *d = dst + i * ld;
        for (s = 0; s < n_runs; s++) {
            const fnn_int ih = runs[s].ih + a * g->dh;
            if ((size_t)ih < (size_t)g->h)
                FNN_SFX(gather_run)(xc + ih * g->w, g->w, runs[s].iw + b * g->dw, g->sw,
                                    runs[s].length, d + runs[s].j);
            else
                FNN_SFX(zero_run)(d + runs[s].j, runs[s].length);
        }
    }
}

static FNN_FORCE_INLINE void FNN_SFX(col2im_body)(const fnn_plane_geom *g, const T *cols,
                                                  fnn_int ldc, fnn_int k0, fnn_int rows,
                                                  const fnn_row_run *runs, fnn_int n_runs, T *dx)
{
    const fnn_int taps = g->kh * g->kw, plane = g->h * g->w;
    fnn_int kk, s, t;
    for (kk = 0; kk < rows; kk++) {
        const fnn_int k = k0 + kk, ci = k / taps, r = k - ci * taps;
        const fnn_int a = r / g->kw, b = r - a * g->kw;
        for (s = 0; s < n_runs; s++) {
            const fnn_int ih = runs[s].ih + a * g->dh;
            fnn_int lo, hi, iw0;
            if ((size_t)ih >= (size_t)g->h)
                continue;
            iw0 = runs[s].iw + b * g->dw;
            fnn_valid_span(iw0, g->sw, g->w, runs[s].length, &lo, &hi);
            if (hi > lo) {
                /* dx entries of one run are distinct (sw >= 1), so the adds are independent */
                T *FNN_RESTRICT e = dx + ci * plane + ih * g->w + iw0 + lo * g->sw;
                const T *FNN_RESTRICT src = cols + kk * ldc + runs[s].j + lo;
                const fnn_int n = hi - lo;
                if (g->sw == 1)
                    for (t = 0; t < n; t++)
                        e[t] += src[t];
                else if (g->sw == 2)
                    for (t = 0; t < n; t++)
                        e[2 * t] += src[t];
                else
                    for (t = 0; t < n; t++)
                        e[t * g->sw] += src[t];
            }
        }
    }
}

#undef FNN_CHUNK
