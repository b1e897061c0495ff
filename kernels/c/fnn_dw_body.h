/*
 * Bodies of the general direct plane kernels on AVX-512 and AVX2 (fnn_dw_avx512.c and
 * fnn_dw_avx2.c include this file once per dtype): any kernel size and dilation, any row
 * stride, column stride 1 or 2, the
 * padding read through masks (a padded column is a masked 0 times the other operand, so
 * callers pass only all-finite weights (forward, input gradient) or dY (weight gradient);
 * padded rows are skipped). Defined by the includer: DW_TARGET (the target attribute), T, VT
 * (vector of T), MASKT (a lane mask), LANES, SFX(name), DW_R (output rows per block: 8 or 4)
 * and DW_TB (weight-gradient taps per pass at most: 16 or 9), MASK_BITS(bits) (the mask of lanes
 * whose bit is set), and the operations LOADZ(mask, p), STOREM(p, mask, v), FMADD, SET1,
 * SETZERO, ADD, EVEN2(lo, hi) (lanes 0, 2, 4, ... of two vectors) and ILV_LO2 / ILV_HI2(a, b)
 * (the two halves of a and b interleaved lane by lane).
 *
 * Column stride 2: the input columns a vector needs are every other one of a 2*LANES-wide
 * window, loaded as two masked vectors and compacted with one two-source permute.
 */

/* Lanes l < n of a vector whose lane l reads column base + l*SW of a w-wide row; for SW 2 the
 * two masks of the window's halves (the window's odd elements are loaded too: they lie
 * inside the row or are masked off). */
DW_TARGET static FNN_FORCE_INLINE void SFX(dw_col_masks)(const int SW, fnn_int base, fnn_int w, fnn_int n,
                                              MASKT *m0, MASKT *m1)
{
    uint64_t bits = fnn_dw_span64(-base, w - base) & fnn_dw_span64(0, SW * n - (SW - 1));
    *m0 = MASK_BITS(bits & ((1ull << LANES) - 1));
    *m1 = MASK_BITS((bits >> LANES) & ((1ull << LANES) - 1));
}

DW_TARGET static FNN_FORCE_INLINE VT SFX(dw_load)(const int SW, const T *p, MASKT m0, MASKT m1)
{
    if (SW == 1)
        return LOADZ(m0, p);
    return EVEN2(LOADZ(m0, p), LOADZ(m1, p + LANES));
}

/* dw_load for a window wholly inside its row */
DW_TARGET static FNN_FORCE_INLINE VT SFX(dw_load_inside)(const int SW, const T *p)
{
    if (SW == 1)
        return LOADU(p);
    return EVEN2(LOADU(p), LOADU(p + LANES));
}

/* ---- forward (and the stride-1 input gradient, a convolution with the flipped kernel) ---- */

/*
 * R (8, 4 or 1) output rows from oh, the column vector at j: y[(oh + r)*w_out + j + l] = sum
 * over channels c < nc, kernel rows a, columns b (taps in the padding left out) of
 * wt[c*taps + a*kw + b] * x[c*xs + (oh + r)*sh - pt + a*dh, (j + l)*SW - pl + b*dw], then
 * + *bias. Each input row of the block is loaded once per kernel column and feeds every
 * output row that reads it: krow[i*8 + r] is the kernel row through which block input row i
 * reaches output row r, or -1. Per output, taps arrive channel by channel in (a, b) order.
 */
DW_TARGET static FNN_FORCE_INLINE void SFX(dw_rows)(const int R, const int SW, const fnn_plane_geom *g,
                                          const T *FNN_RESTRICT x, fnn_int nc, fnn_int xs,
                                          const T *FNN_RESTRICT wt, const signed char *krow,
                                          const MASKT *m0, const MASKT *m1, MASKT ymask, fnn_int oh,
                                          fnn_int j, const T *bias, T *FNN_RESTRICT y)
{
    VT acc[8];
    const fnn_int taps = g->kh * g->kw, ih0 = oh * g->sh - g->pt, col = j * SW - g->pl;
    const fnn_int span = (R - 1) * g->sh + (g->kh - 1) * g->dh + 1;
    fnn_int c, i, b;
    int r;
    FNN_UNROLL(8)
    for (r = 0; r < R; r++)
        acc[r] = SETZERO();
    for (c = 0; c < nc; c++) {
        const T *FNN_RESTRICT xc = x + c * xs + col;
        const T *FNN_RESTRICT wc = wt + c * taps;
        for (i = 0; i < span; i++) {
            const T *wr[8];
            const T *FNN_RESTRICT xr = xc + (ih0 + i) * g->w;
            if ((size_t)(ih0 + i) >= (size_t)g->h)
                continue; /* a padded row: its taps are left out */
            FNN_UNROLL(8)
            for (r = 0; r < R; r++)
                wr[r] = krow[i * 8 + r] >= 0 ? wc + krow[i * 8 + r] * g->kw : NULL;
            for (b = 0; b < g->kw; b++) {
                const VT v = SFX(dw_load)(SW, xr + b * g->dw, m0[b], m1[b]);
                FNN_UNROLL(8)
                for (r = 0; r < R; r++)
                    if (wr[r])
                        acc[r] = FMADD(SET1(wr[r][b]), v, acc[r]);
            }
        }
    }
    FNN_UNROLL(8)
    for (r = 0; r < R; r++) {
        if (bias)
            acc[r] = ADD(acc[r], SET1(*bias));
        STOREM(y + (oh + r) * g->w_out + j, ymask, acc[r]);
    }
}

/*
 * dw_rows for a kernel of KH rows and row stride SH, both compile-time, on the output rows
 * oh + r*rs and the input rows ih0 + i*rs: rs = 1 with no row dilation, or, for SH 1, rs = dh
 * (output rows dh apart read input rows dh apart, as an undilated kernel would). Kernel
 * columns go outermost: column b's KH weights are broadcast into registers once, then each
 * input row's vector for that column is loaded once and feeds every output row that reads
 * it, known when compiling (the input rows are unrolled), so no multiply-add waits on a test
 * or a weight load. Per output the taps arrive in (b, a) order (dw_rows: (a, b)); only the
 * first nrows rows are stored.
 */
DW_TARGET static FNN_FORCE_INLINE void SFX(dw_rows_k)(const int R, const int SW, const int SH,
                                                             const int KH, const int INSIDE,
                                                             const fnn_plane_geom *g,
                                                             const T *FNN_RESTRICT x, fnn_int nc, fnn_int xs,
                                                             const T *FNN_RESTRICT wt, const MASKT *m0,
                                                             const MASKT *m1, MASKT ymask, fnn_int rs,
                                                             fnn_int oh, fnn_int nrows, fnn_int j,
                                                             const T *bias, T *FNN_RESTRICT y)
{
    VT acc[8], wv[8];
    const fnn_int kw = g->kw, taps = KH * g->kw, ih0 = oh * SH - g->pt, col = j * SW - g->pl;
    fnn_int c, b;
    int r, i, a;
    FNN_UNROLL(8)
    for (r = 0; r < R; r++)
        acc[r] = SETZERO();
    for (c = 0; c < nc; c++) {
        const T *FNN_RESTRICT xc = x + c * xs + col;
        const T *FNN_RESTRICT wc = wt + c * taps;
        for (b = 0; b < kw; b++) {
            const T *FNN_RESTRICT xb = xc + b * g->dw;
            const MASKT k0 = m0[b], k1 = m1[b];
            FNN_UNROLL(8)
            for (a = 0; a < KH; a++)
                wv[a] = SET1(wc[a * kw + b]);
            FNN_UNROLL(24)
            for (i = 0; i < (R - 1) * SH + KH; i++) {
                VT v;
                if (INSIDE) {
                    v = SFX(dw_load_inside)(SW, xb + (ih0 + i * rs) * g->w);
                } else {
                    if ((size_t)(ih0 + i * rs) >= (size_t)g->h)
                        continue; /* a padded row: its taps are left out */
                    v = SFX(dw_load)(SW, xb + (ih0 + i * rs) * g->w, k0, k1);
                }
                FNN_UNROLL(8)
                for (r = 0; r < R; r++)
                    if (i - r * SH >= 0 && i - r * SH < KH) /* kernel row i - r*SH of output row r */
                        acc[r] = FMADD(wv[i - r * SH], v, acc[r]);
            }
        }
    }
    FNN_UNROLL(8)
    for (r = 0; r < R; r++) {
        if (r >= nrows)
            break;
        if (bias)
            acc[r] = ADD(acc[r], SET1(*bias));
        if (INSIDE)
            STOREU(y + (oh + r * rs) * g->w_out + j, acc[r]);
        else
            STOREM(y + (oh + r * rs) * g->w_out + j, ymask, acc[r]);
    }
}

/* Output rows in blocks of 8; the rows left over are covered by one more block (of 8, or of 4
 * on planes under 8 rows) overlapping the previous one, since outputs are written, not added
 * to; planes under 4 rows go one row at a time. ROWS(R, oh) runs a block. */
#define FNN_DW_ROW_BLOCKS(h, ROWS)                                                                 \
    do {                                                                                           \
        fnn_int oh_;                                                                               \
        if ((h) >= 8) {                                                                            \
            for (oh_ = 0; oh_ + 8 <= (h); oh_ += 8)                                                \
                ROWS(8, oh_);                                                                      \
            if (oh_ < (h))                                                                         \
                ROWS(8, (h) - 8);                                                                  \
        } else if ((h) >= 4) {                                                                     \
            ROWS(4, 0);                                                                            \
            if ((h) > 4)                                                                           \
                ROWS(4, (h) - 4);                                                                  \
        } else {                                                                                   \
            for (oh_ = 0; oh_ < (h); oh_++)                                                        \
                ROWS(1, oh_);                                                                      \
        }                                                                                          \
    } while (0)

DW_TARGET static FNN_FORCE_INLINE void SFX(dw_plane_k)(const int SW, const int SH, const int KH,
                                                              const fnn_plane_geom *g, const T *x,
                                                              fnn_int nc, fnn_int xs, const T *wt,
                                                              const T *bias, T *y)
{
    MASKT m0[FNN_DW_MAX_KW], m1[FNN_DW_MAX_KW];
    const fnn_int rs = SH == 1 ? g->dh : 1; /* row spacing: see dw_rows_k */
    fnn_int j, b, ph;
    for (j = 0; j < g->w_out; j += LANES) {
        const fnn_int n = g->w_out - j < LANES ? g->w_out - j : LANES;
        const MASKT ymask = MASK_BITS(fnn_dw_span64(0, n));
        /* Whole vectors whose every load lies inside its row (the window of SW 2 spans
         * 2*LANES columns) take plain loads and stores where the block's rows are inside the
         * plane too: no masks, no row tests (the masked forms cost AVX2 on AMD several times
         * the plain ones). */
        const int cols_inside = n == LANES && j * SW - g->pl >= 0 &&
                                j * SW - g->pl + (g->kw - 1) * g->dw + SW * LANES <= g->w;
        for (b = 0; b < g->kw; b++)
            SFX(dw_col_masks)(SW, j * SW - g->pl + b * g->dw, g->w, n, &m0[b], &m1[b]);
        /* the output rows ph, ph + rs, ph + 2*rs, ... (count of them), for each phase ph */
        for (ph = 0; ph < rs && ph < g->h_out; ph++) {
            const fnn_int count = (g->h_out - ph + rs - 1) / rs;
            fnn_int k;
            /* blocks of DW_R rows (8 with AVX-512's 32 registers, 4 with AVX2's 16), the last
             * overlapping the one before; under DW_R rows, one block of DW_R or DW_R / 2 that
             * stores only the rows there are */
#define FNN_DW_K_ROWS(R, k, nrows) \
    SFX(dw_rows_k)(R, SW, SH, KH, 0, g, x, nc, xs, wt, m0, m1, ymask, rs, ph + (k) * rs, nrows, j, bias, y)
            if (count >= DW_R) {
                for (k = 0; k + DW_R <= count; k += DW_R) {
                    const fnn_int ih0 = (ph + k * rs) * SH - g->pt;
                    if (cols_inside && ih0 >= 0 && ih0 + ((DW_R - 1) * SH + KH - 1) * rs < g->h)
                        SFX(dw_rows_k)(DW_R, SW, SH, KH, 1, g, x, nc, xs, wt, m0, m1, ymask, rs,
                                       ph + k * rs, DW_R, j, bias, y);
                    else
                        FNN_DW_K_ROWS(DW_R, k, DW_R);
                }
                if (k < count)
                    FNN_DW_K_ROWS(DW_R, count - DW_R, DW_R);
            } else if (count > DW_R / 2) {
                FNN_DW_K_ROWS(DW_R, 0, count);
            } else {
                FNN_DW_K_ROWS(DW_R / 2, 0, count);
            }
#undef FNN_DW_K_ROWS
        }
    }
}

DW_TARGET static FNN_FORCE_INLINE void SFX(dw_plane)(const int SW, const fnn_plane_geom *g, const T *x,
                                           fnn_int nc, fnn_int xs, const T *wt, const T *bias, T *y)
{
    signed char krow[FNN_DW_MAX_SPAN * 8];
    MASKT m0[FNN_DW_MAX_KW], m1[FNN_DW_MAX_KW];
    const fnn_int span = 7 * g->sh + (g->kh - 1) * g->dh + 1; /* an 8-row block's */
    fnn_int a, j, b;
    int r;
    memset(krow, -1, (size_t)span * 8);
    for (r = 0; r < 8; r++)
        for (a = 0; a < g->kh; a++)
            krow[(r * g->sh + a * g->dh) * 8 + r] = (signed char)a;
    for (j = 0; j < g->w_out; j += LANES) {
        const fnn_int n = g->w_out - j < LANES ? g->w_out - j : LANES;
        const MASKT ymask = MASK_BITS(fnn_dw_span64(0, n));
        for (b = 0; b < g->kw; b++)
            SFX(dw_col_masks)(SW, j * SW - g->pl + b * g->dw, g->w, n, &m0[b], &m1[b]);
#define FNN_DW_ROWS(R, oh) SFX(dw_rows)(R, SW, g, x, nc, xs, wt, krow, m0, m1, ymask, oh, j, bias, y)
        FNN_DW_ROW_BLOCKS(g->h_out, FNN_DW_ROWS);
#undef FNN_DW_ROWS
    }
}

DW_TARGET void SFX(fnn_dw_conv_plane)(const fnn_plane_geom *g, const T *x, fnn_int nc,
                                              fnn_int xs, const T *wt, const T *bias, T *y)
{
    /* the layers of real networks: 3x3, 5x5 and 7x7 kernels, stride 1 or 2, rows undilated */
#define FNN_DW_CASE(SW, SH, KH)                                                                    \
    if (g->sw == (SW) && g->sh == (SH) && g->kh == (KH)) {                                               \
        SFX(dw_plane_k)(SW, SH, KH, g, x, nc, xs, wt, bias, y);                                    \
        return;                                                                                    \
    }
    FNN_DW_CASE(1, 1, 3) FNN_DW_CASE(1, 1, 5) FNN_DW_CASE(1, 1, 7)
    FNN_DW_CASE(2, 1, 3) FNN_DW_CASE(2, 1, 5) FNN_DW_CASE(2, 1, 7)
    if (g->dh == 1) {
        FNN_DW_CASE(1, 2, 3) FNN_DW_CASE(1, 2, 5) FNN_DW_CASE(1, 2, 7)
        FNN_DW_CASE(2, 2, 3) FNN_DW_CASE(2, 2, 5) FNN_DW_CASE(2, 2, 7)
    }
#undef FNN_DW_CASE
    if (g->sw == 1)
        SFX(dw_plane)(1, g, x, nc, xs, wt, bias, y);
    else
        SFX(dw_plane)(2, g, x, nc, xs, wt, bias, y);
}

/* ---- input gradient, gathered: any row stride, column stride 1 or 2 ---------------------- */

/*
 * R (4 or 1) rows of dx from ih, the dX columns from j: dx[ih + r, iw] = sum over channels
 * c < nc, kernel rows a, columns b of wt[c*taps + a*kw + b] * dy[c*dys + oh*w_out + ow] for
 * the taps with oh*sh = ih + r + pt - a*dh and ow*SW = iw + pl - b*dw inside dY. SW 1: one
 * vector of columns j + l. SW 2: 2*LANES columns, j + 2l + p in phase p's accumulators; the
 * taps of phase p (bl[p][0..nb[p]), ascending) read dY columns doff[b] + l, so each phase
 * is a stride-1 gather, and the two are interleaved when stored. Per element, taps arrive
 * channel by channel in (a, b) order.
 */
DW_TARGET static FNN_FORCE_INLINE void SFX(dx_rows)(const int R, const int SW, const fnn_plane_geom *g,
                                          const T *FNN_RESTRICT dy, fnn_int nc, fnn_int dys,
                                          const T *FNN_RESTRICT wt, const fnn_int *bl,
                                          const fnn_int *nb, const fnn_int *doff, const MASKT *dm,
                                          const MASKT *sm, fnn_int ih, fnn_int j, T *FNN_RESTRICT dx)
{
    VT acc0[8], acc1[8];
    const fnn_int taps = g->kh * g->kw;
    fnn_int c, a, q;
    int r, p;
    FNN_UNROLL(8)
    for (r = 0; r < R; r++) {
        acc0[r] = SETZERO();
        acc1[r] = SETZERO();
    }
    for (c = 0; c < nc; c++) {
        const T *FNN_RESTRICT dyc = dy + c * dys;
        for (a = 0; a < g->kh; a++) {
            const T *rows[8];
            const T *FNN_RESTRICT wa = wt + c * taps + a * g->kw;
            int any = 0;
            FNN_UNROLL(8)
            for (r = 0; r < R; r++) {
                /* dY row t / sh, if t is a multiple of sh (no division for strides 1 and 2) */
                const fnn_int t = ih + r + g->pt - a * g->dh;
                const fnn_int q = g->sh == 1 ? t : g->sh == 2 ? t >> 1 : t / g->sh;
                rows[r] = NULL;
                if (t >= 0 && q * g->sh == t && q < g->h_out) {
                    rows[r] = dyc + q * g->w_out;
                    any = 1;
                }
            }
            if (!any)
                continue;
            FNN_UNROLL(2)
            for (p = 0; p < SW; p++) {
                for (q = 0; q < nb[p]; q++) {
                    const fnn_int b = bl[p * FNN_DW_MAX_KW + q];
                    const VT wv = SET1(wa[b]);
                    FNN_UNROLL(8)
                    for (r = 0; r < R; r++) {
                        if (rows[r]) {
                            const VT v = LOADZ(dm[b], rows[r] + doff[b]);
                            if (p == 0)
                                acc0[r] = FMADD(wv, v, acc0[r]);
                            else
                                acc1[r] = FMADD(wv, v, acc1[r]);
                        }
                    }
                }
            }
        }
    }
    FNN_UNROLL(8)
    for (r = 0; r < R; r++) {
        T *FNN_RESTRICT out = dx + (ih + r) * g->w + j;
        if (SW == 1) {
            STOREM(out, sm[0], acc0[r]);
        } else {
            STOREM(out, sm[0], ILV_LO2(acc0[r], acc1[r]));
            STOREM(out + LANES, sm[1], ILV_HI2(acc0[r], acc1[r]));
        }
    }
}

DW_TARGET static FNN_FORCE_INLINE void SFX(dx_plane)(const int SW, const fnn_plane_geom *g, const T *dy,
                                           fnn_int nc, fnn_int dys, const T *wt, T *dx)
{
    fnn_int bl[2 * FNN_DW_MAX_KW], nb[2], doff[FNN_DW_MAX_KW];
    MASKT dm[FNN_DW_MAX_KW], sm[2];
    const fnn_int step = SW * LANES; /* dX columns per block */
    fnn_int j, ih, b;
    for (j = 0; j < g->w; j += step) {
        nb[0] = nb[1] = 0;
        for (b = 0; b < g->kw; b++) {
            /* phase p: dX columns j + SW*l + p; the tap's dY column (j + p + pl - b*dw) / SW + l */
            const fnn_int e = g->pl - b * g->dw;
            const int p = SW == 1 ? 0 : (int)(((j + e) % 2 + 2) % 2);
            const fnn_int lanes_p = SW == 1 ? g->w - j : (g->w - j - p + 1) / 2;
            const fnn_int o = (j + p + e) / SW; /* exact: j + p + e is a multiple of SW */
            doff[b] = o;
            dm[b] = MASK_BITS(fnn_dw_span64(-o, g->w_out - o) &
                              fnn_dw_span64(0, lanes_p < LANES ? lanes_p : LANES));
            bl[p * FNN_DW_MAX_KW + nb[p]++] = b;
        }
        sm[0] = MASK_BITS(fnn_dw_span64(0, g->w - j));
        sm[1] = MASK_BITS(fnn_dw_span64(0, g->w - j - LANES));
        /* rows 4 at a time, the last block overlapping the one before (dx is written, not
         * added to); planes under 4 rows one row at a time */
        if (g->h >= 4) {
            for (ih = 0; ih + 4 <= g->h; ih += 4)
                SFX(dx_rows)(4, SW, g, dy, nc, dys, wt, bl, nb, doff, dm, sm, ih, j, dx);
            if (ih < g->h)
                SFX(dx_rows)(4, SW, g, dy, nc, dys, wt, bl, nb, doff, dm, sm, g->h - 4, j, dx);
        } else {
            for (ih = 0; ih < g->h; ih++)
                SFX(dx_rows)(1, SW, g, dy, nc, dys, wt, bl, nb, doff, dm, sm, ih, j, dx);
        }
    }
}

DW_TARGET void SFX(fnn_dw_grad_input_plane)(const fnn_plane_geom *g, const T *dy, fnn_int nc,
                                                    fnn_int dys, const T *wt, T *dx)
{
    if (g->sw == 1)
        SFX(dx_plane)(1, g, dy, nc, dys, wt, dx);
    else
        SFX(dx_plane)(2, g, dy, nc, dys, wt, dx);
}

/* ---- weight gradient lanes -------------------------------------------------------------- */

/*
 * lanes[t*wc + ow] += sum over output rows oh, in order, of dy[oh, ow] * x[oh*sh - pt + a*dh,
 * ow*SW - pl + b*dw] for the taps t = a*kw + b, input rows outside the plane left out, padded
 * columns a masked 0 (dY all finite), wc = w_out rounded up to whole vectors. Taps go in
 * passes of up to DW_TB, their accumulators in registers down a column of vectors; lanes past
 * w_out hold junk and are never summed.
 */
DW_TARGET static FNN_FORCE_INLINE void SFX(dw_lanes_plane)(const int SW, const fnn_plane_geom *g,
                                                 const T *FNN_RESTRICT dy, const T *FNN_RESTRICT x,
                                                 T *FNN_RESTRICT lanes)
{
    enum { TB = DW_TB };
    const fnn_int taps = g->kh * g->kw;
    /* lanes laid out for 64-byte vectors, whatever this level's width (see the driver) */
    const fnn_int wc = (g->w_out + FNN_PLANE_VECTOR_BYTES / (fnn_int)sizeof(T) - 1) /
                       (FNN_PLANE_VECTOR_BYTES / (fnn_int)sizeof(T)) * (FNN_PLANE_VECTOR_BYTES / (fnn_int)sizeof(T));
    fnn_int j, t0, oh;
    int tt;
    for (j = 0; j < g->w_out; j += LANES) {
        const fnn_int n = g->w_out - j < LANES ? g->w_out - j : LANES;
        const MASKT dmask = MASK_BITS(fnn_dw_span64(0, n));
        /* every tap's window inside the row (see dw_plane_k): the rows whose taps are all
         * inside the plane then run with plain loads and no tests */
        const int cols_inside = n == LANES && j * SW - g->pl >= 0 &&
                                j * SW - g->pl + (g->kw - 1) * g->dw + SW * LANES <= g->w;
        /* passes of nearly equal size: a short last pass (9 taps as 8 + 1) would be a lone
         * chain of multiply-adds down the rows, waiting out the adder's latency at each */
        const fnn_int pass = (taps + (taps + TB - 1) / TB - 1) / ((taps + TB - 1) / TB);
        for (t0 = 0; t0 < taps; t0 += pass) {
            const fnn_int nt = taps - t0 < pass ? taps - t0 : pass;
            VT acc[TB];
            MASKT m0[TB], m1[TB];
            fnn_int off[TB], dh_off[TB];
            /* tap t0 + tt is (a, b), stepped without a division per tap (a plane of a few
             * rows spends as long on divisions as on its multiply-adds); the slots past nt
             * repeat tap t0 and are never used */
            fnn_int a = t0 / g->kw, b = t0 - a * g->kw;
            for (tt = 0; tt < TB; tt++) {
                if (tt == nt) {
                    a = t0 / g->kw;
                    b = t0 - a * g->kw;
                }
                SFX(dw_col_masks)(SW, j * SW - g->pl + b * g->dw, g->w, n, &m0[tt], &m1[tt]);
                dh_off[tt] = a * g->dh;
                off[tt] = a * g->dh * g->w + j * SW - g->pl + b * g->dw;
                if (tt < nt && ++b == g->kw) {
                    b = 0;
                    a++;
                }
            }
            FNN_UNROLL(DW_TB)
            for (tt = 0; tt < TB; tt++)
                if (tt < nt)
                    acc[tt] = LOADZ(MASK_BITS(~0ull), lanes + (t0 + tt) * wc + j);
            for (oh = 0; oh < g->h_out; oh++) {
                const fnn_int ih0 = oh * g->sh - g->pt;
                const T *FNN_RESTRICT xr = x + ih0 * g->w;
                if (cols_inside && ih0 >= 0 && ih0 + (g->kh - 1) * g->dh < g->h) {
                    const VT d = LOADU(dy + oh * g->w_out + j);
                    FNN_UNROLL(DW_TB)
                    for (tt = 0; tt < TB; tt++)
                        if (tt < nt)
                            acc[tt] = FMADD(d, SFX(dw_load_inside)(SW, xr + off[tt]), acc[tt]);
                } else {
                    const VT d = LOADZ(dmask, dy + oh * g->w_out + j);
                    FNN_UNROLL(DW_TB)
                    for (tt = 0; tt < TB; tt++) {
                        if (tt < nt && (size_t)(ih0 + dh_off[tt]) < (size_t)g->h)
                            acc[tt] = FMADD(d, SFX(dw_load)(SW, xr + off[tt], m0[tt], m1[tt]), acc[tt]);
                    }
                }
            }
            FNN_UNROLL(DW_TB)
            for (tt = 0; tt < TB; tt++)
                if (tt < nt)
                    STOREM(lanes + (t0 + tt) * wc + j, MASK_BITS(~0ull), acc[tt]);
        }
    }
}

DW_TARGET void SFX(fnn_dw_grad_weight_plane)(const fnn_plane_geom *g, const T *dy, const T *x,
                                                     T *lanes)
{
    if (g->sw == 1)
        SFX(dw_lanes_plane)(1, g, dy, x, lanes);
    else
        SFX(dw_lanes_plane)(2, g, dy, x, lanes);
}
