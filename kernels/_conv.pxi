# conv2d drivers: implicit GEMM. Images are packed straight into the GEMM core's B panels
# (im2col one cache-sized block at a time), so no column matrix of the whole batch exists.
#
# Per group g and image n the forward is Y[n, g] (C_out/g x P) = W[g] (C_out/g x K) * cols (K x P),
# with K = C_in/g * kH * kW indexed (ci, a, b) and P = H_out * W_out indexed (oh, ow).

cdef struct ConvGeom:
    fnn_int n, c_in, h, w, c_out, kh, kw
    fnn_int sh, sw, pt, pl, dh, dw, groups
    fnn_int h_out, w_out
    fnn_int cin_g, cout_g, kg, p


cdef ConvGeom make_geom(const cnp.npy_intp *xs, const cnp.npy_intp *ws, tuple stride, tuple pad,
                        tuple dil, fnn_int groups, const cnp.npy_intp *ys):
    cdef ConvGeom g
    g.n, g.c_in, g.h, g.w = xs[0], xs[1], xs[2], xs[3]
    g.c_out = ws[0]
    g.kh, g.kw = ws[2], ws[3]
    g.sh, g.sw = stride
    g.pt, g.pl = pad
    g.dh, g.dw = dil
    g.groups = groups
    g.h_out, g.w_out = ys[2], ys[3]
    g.cin_g = g.c_in // groups
    g.cout_g = g.c_out // groups
    g.kg = g.cin_g * g.kh * g.kw
    g.p = g.h_out * g.w_out
    return g


cdef struct RowRun:
    # Consecutive output pixels in one output row: the im2col entries of one kernel tap over
    # them come from one input row, at input columns iw, iw + sw, ... (clipped to the image).
    fnn_int j        # first pixel, counted from the block's first
    fnn_int length
    fnn_int ih       # oh * sh - pad_top: input row before the tap's dilation offset
    fnn_int iw       # first pixel's ow * sw - pad_left


cdef inline fnn_int max_row_runs(fnn_int count) noexcept nogil:
    return 2 * count + 2


cdef fnn_int row_runs(const ConvGeom *g, fnn_int p0, fnn_int count, fnn_int split,
                      RowRun *runs) noexcept nogil:
    """Cut output pixels p0 .. p0+count-1 into runs within one output row and, when split > 0,
    within one split-wide panel. Returns the number of runs."""
    cdef fnn_int n = 0, j = 0, p, oh, ow, length
    while j < count:
        p = p0 + j
        oh = p // g.w_out
        ow = p - oh * g.w_out
        length = min(g.w_out - ow, count - j)
        if split > 0:
            length = min(length, split - j % split)
        runs[n].j = j
        runs[n].length = length
        runs[n].ih = oh * g.sh - g.pt
        runs[n].iw = ow * g.sw - g.pl
        n += 1
        j += length
    return n


cdef inline void valid_span(fnn_int iw0, fnn_int sw, fnn_int w, fnn_int length,
                            fnn_int *t_lo, fnn_int *t_hi) noexcept nogil:
    """Steps t in [t_lo, t_hi) have 0 <= iw0 + t*sw < w; the rest of [0, length) is padding."""
    cdef fnn_int lo = 0, hi = 0
    if sw == 1:  # the common case, without divisions
        lo = max(<fnn_int>0, -iw0)
        hi = max(<fnn_int>0, w - iw0)
    else:
        if iw0 < 0:
            lo = (-iw0 + sw - 1) // sw
        if iw0 <= w - 1:
            hi = (w - 1 - iw0) // sw + 1
    lo = min(lo, length)
    hi = max(lo, min(hi, length))
    t_lo[0] = lo
    t_hi[0] = hi


cdef inline void gather_run(const floating *row, fnn_int w, fnn_int iw0, fnn_int sw, fnn_int length,
                            floating *d, fnn_int dstride) noexcept nogil:
    """d[t * dstride] = row[iw0 + t * sw], 0 where that is outside the row (padding)."""
    cdef fnn_int t, lo, hi
    valid_span(iw0, sw, w, length, &lo, &hi)
    for t in range(lo):
        d[t * dstride] = 0
    if dstride == 1 and sw == 1:
        # libc's memcpy is vectorised for the CPU at hand, which this baseline build is not.
        memcpy(d + lo, row + iw0 + lo, (hi - lo) * sizeof(floating))
    else:
        for t in range(lo, hi):
            d[t * dstride] = row[iw0 + t * sw]
    for t in range(hi, length):
        d[t * dstride] = 0


cdef inline void zero_run(floating *d, fnn_int dstride, fnn_int length) noexcept nogil:
    cdef fnn_int t
    for t in range(length):
        d[t * dstride] = 0


cdef void pack_b_im2col(const ConvGeom *g, const floating *xg, fnn_int k0, fnn_int kcb,
                        fnn_int p0, fnn_int ncols, int nr, RowRun *runs,
                        floating *dst) noexcept nogil:
    """Pack cols[k0:k0+kcb, p0:p0+ncols] of one image group (xg: its first channel) into
    NR-wide k-major panels, zero-filled past ncols."""
    cdef fnn_int panel, jn, kk, jj, ci, a, b, r, ih, s, first, last
    cdef fnn_int taps = g.kh * g.kw
    cdef fnn_int n_runs = row_runs(g, p0, ncols, nr, runs)
    cdef floating *d
    cdef floating *dk
    cdef const floating *xc
    first = 0
    for panel in range(ceil_div(ncols, nr)):
        jn = min(<fnn_int>nr, ncols - panel * nr)
        last = first
        while last < n_runs and runs[last].j < panel * nr + jn:
            last += 1
        d = dst + panel * kcb * nr
        ci = k0 // taps
        r = k0 - ci * taps
        a = r // g.kw
        b = r - a * g.kw
        for kk in range(kcb):
            xc = xg + ci * g.h * g.w
            dk = d + kk * nr - panel * nr
            for s in range(first, last):
                ih = runs[s].ih + a * g.dh
                if <size_t>ih < <size_t>g.h:
                    gather_run(xc + ih * g.w, g.w, runs[s].iw + b * g.dw, g.sw, runs[s].length,
                               dk + runs[s].j, 1)
                else:
                    zero_run(dk + runs[s].j, 1, runs[s].length)
            for jj in range(jn, nr):
                d[kk * nr + jj] = 0
            b += 1
            if b == g.kw:
                b = 0
                a += 1
                if a == g.kh:
                    a = 0
                    ci += 1
        first = last


cdef void pack_b_im2col_t(const ConvGeom *g, const floating *xg, fnn_int p0, fnn_int kcb,
                          fnn_int k0, fnn_int ncols, int nr, RowRun *runs,
                          floating *dst) noexcept nogil:
    """Pack the transpose, cols^T[p0:p0+kcb, k0:k0+ncols] (pixels are the reduction), into
    NR-wide panels of kernel columns, zero-filled past ncols."""
    cdef fnn_int panel, jn, jj, k, ci, a, b, r, ih, s
    cdef fnn_int taps = g.kh * g.kw
    cdef fnn_int n_runs = row_runs(g, p0, kcb, 0, runs)
    cdef floating *d
    cdef const floating *xc
    for panel in range(ceil_div(ncols, nr)):
        jn = min(<fnn_int>nr, ncols - panel * nr)
        d = dst + panel * kcb * nr
        for jj in range(nr):
            if jj < jn:
                k = k0 + panel * nr + jj
                ci = k // taps
                r = k - ci * taps
                a = r // g.kw
                b = r - a * g.kw
                xc = xg + ci * g.h * g.w
                for s in range(n_runs):
                    ih = runs[s].ih + a * g.dh
                    if <size_t>ih < <size_t>g.h:
                        gather_run(xc + ih * g.w, g.w, runs[s].iw + b * g.dw, g.sw, runs[s].length,
                                   d + runs[s].j * nr + jj, nr)
                    else:
                        zero_run(d + runs[s].j * nr + jj, nr, runs[s].length)
            else:
                zero_run(d + jj, nr, kcb)


cdef inline fnn_int elems_for_runs(fnn_int count, size_t elem_size) noexcept nogil:
    """Floating-point elements of scratch that hold the row runs of `count` pixels."""
    return <fnn_int>((max_row_runs(count) * sizeof(RowRun) + elem_size - 1) // elem_size)


cdef inline fnn_int split_width(fnn_int total, fnn_int cap, fnn_int parts, int align) noexcept nogil:
    """A block width <= cap, a multiple of align, cutting total into about `parts` pieces."""
    cdef fnn_int width = round_up(ceil_div(total, max(<fnn_int>1, parts)), align)
    return max(<fnn_int>align, min(cap, width))


# ---- forward -----------------------------------------------------------------------------

cdef int conv2d_forward_impl(const ConvGeom *g, const floating *x, const floating *w,
                             const floating *bias, floating *y, int nthreads) noexcept nogil:
    cdef fnn_int ic_blk, pc_blk
    cdef Tiling t = active_tiling(x)
    cdef fnn_int mpad = round_up(g.cout_g, t.mr)
    cdef fnn_int gi, pc, kcb, nb, items, item, n_pb, img, grp, jc, ncols, ic, mcb
    cdef floating *apack
    cdef floating *buf
    cdef RowRun *runs
    cdef int failed = 0
    cdef int *failed_p = &failed
    cdef int team, flags
    cdef fnn_int own_elems
    # Pack every group's weights once, in KC blocks, for the whole team to share.
    apack = <floating *>fnn_thread_scratch(FNN_SCRATCH_SHARED, g.groups * mpad * g.kg * sizeof(floating))
    if apack == NULL:
        return -1
    for gi in range(g.groups):
        for pc_blk in range(ceil_div(g.kg, t.kc)):
            pc = pc_blk * t.kc
            kcb = min(t.kc, g.kg - pc)
            pack_a(&t, g.cout_g, kcb, w + gi * g.cout_g * g.kg + pc, g.kg, 1,
                   apack + gi * mpad * g.kg + pc * mpad)
    # Work items: (image, group, block of output pixels); enough of them to feed the team.
    nb = split_width(g.p, t.nc, ceil_div(2 * nthreads, g.n * g.groups), t.nr)
    n_pb = ceil_div(g.p, nb)
    items = g.n * g.groups * n_pb
    team = <int>min(<fnn_int>nthreads, items)
    own_elems = round_up(nb, t.nr) * t.kc + elems_for_runs(nb, sizeof(floating))
    with parallel(num_threads=max(team, 1)):
        _note_team()
        buf = <floating *>fnn_thread_scratch(FNN_SCRATCH_OWN, own_elems * sizeof(floating))
        if buf == NULL:
            failed_p[0] = 1
        runs = <RowRun *>(buf + round_up(nb, t.nr) * t.kc)
        for item in prange(items, schedule='static'):
            if buf != NULL:
                img = item // (g.groups * n_pb)
                grp = (item // n_pb) % g.groups
                jc = (item % n_pb) * nb
                ncols = min(nb, g.p - jc)
                for pc_blk in range(ceil_div(g.kg, t.kc)):
                    pc = pc_blk * t.kc
                    kcb = min(t.kc, g.kg - pc)
                    pack_b_im2col(g, x + (img * g.c_in + grp * g.cin_g) * g.h * g.w, pc, kcb,
                                  jc, ncols, t.nr, runs, buf)
                    flags = kblock_flags(FNN_BIAS_ROW if bias != NULL else 0, pc, kcb, g.kg)
                    for ic_blk in range(ceil_div(g.cout_g, t.mc)):
                        ic = ic_blk * t.mc
                        mcb = min(t.mc, g.cout_g - ic)
                        macro(&t, mcb, ncols, kcb, apack + grp * mpad * g.kg + pc * mpad + ic * kcb, buf,
                              y + (img * g.c_out + grp * g.cout_g + ic) * g.p + jc, g.p, flags,
                              bias + grp * g.cout_g + ic if bias != NULL else NULL)
    return -1 if failed else 0


# ---- grad_input: cols = W^T dY, scattered back (col2im) ---------------------------------

cdef void col2im_add(const ConvGeom *g, const floating *cols, fnn_int ldc, fnn_int k0, fnn_int rows,
                     fnn_int p0, fnn_int ncols, RowRun *runs, floating *dxg) noexcept nogil:
    """dX[ci, ih, iw] += cols[k, p] for kernel rows k0.. and pixels p0.. that land inside the image."""
    cdef fnn_int kk, k, ci, a, b, r, ih, s, t, lo, hi, iw0
    cdef fnn_int taps = g.kh * g.kw
    cdef fnn_int n_runs = row_runs(g, p0, ncols, 0, runs)
    cdef floating *dxrow
    cdef const floating *src
    for kk in range(rows):
        k = k0 + kk
        ci = k // taps
        r = k - ci * taps
        a = r // g.kw
        b = r - a * g.kw
        for s in range(n_runs):
            ih = runs[s].ih + a * g.dh
            if <size_t>ih < <size_t>g.h:
                dxrow = dxg + (ci * g.h + ih) * g.w
                src = cols + kk * ldc + runs[s].j
                iw0 = runs[s].iw + b * g.dw
                valid_span(iw0, g.sw, g.w, runs[s].length, &lo, &hi)
                for t in range(lo, hi):
                    dxrow[iw0 + t * g.sw] += src[t]


cdef int conv2d_grad_input_impl(const ConvGeom *g, const floating *dy, const floating *w,
                                floating *dx, int nthreads) noexcept nogil:
    cdef fnn_int ic_blk, jc_blk, pc_blk
    cdef Tiling t = active_tiling(dy)
    cdef fnn_int gi, pc, kcb, items, item, img, grp, chunk, ci0, ci1, k0, k1, ic, mcb, jc, ncols
    cdef fnn_int taps = g.kh * g.kw
    cdef fnn_int ch_per_item, n_chunks, nb, rows_pad, chunk_elems
    cdef floating *apack
    cdef floating *abase
    cdef floating *buf
    cdef floating *bpack
    cdef floating *cols
    cdef RowRun *runs
    cdef int failed = 0
    cdef int *failed_p = &failed
    cdef int team
    cdef fnn_int own_elems
    # Items own whole input channels of one image (their rows of dX), so scatters never
    # collide. The channel chunking depends on the shape only: each dX element then sums its
    # terms in the same order for any thread count.
    ch_per_item = max(<fnn_int>1, t.mc // taps)
    n_chunks = ceil_div(g.cin_g, ch_per_item)
    rows_pad = round_up(ch_per_item * taps, t.mr)
    chunk_elems = rows_pad * g.cout_g
    # W^T rows of each (group, channel chunk), packed once in KC blocks over the output
    # channels (the reduction), for the whole team to share.
    apack = <floating *>fnn_thread_scratch(FNN_SCRATCH_SHARED, g.groups * n_chunks * chunk_elems * sizeof(floating))
    if apack == NULL:
        return -1
    for gi in range(g.groups):
        for chunk in range(n_chunks):
            k0 = chunk * ch_per_item * taps
            k1 = min(g.cin_g, (chunk + 1) * ch_per_item) * taps
            for pc_blk in range(ceil_div(g.cout_g, t.kc)):
                pc = pc_blk * t.kc
                kcb = min(t.kc, g.cout_g - pc)
                pack_a(&t, k1 - k0, kcb, w + gi * g.cout_g * g.kg + pc * g.kg + k0, 1, g.kg,
                       apack + (gi * n_chunks + chunk) * chunk_elems + pc * rows_pad)
    items = g.n * g.groups * n_chunks
    nb = min(t.nc, round_up(g.p, t.nr))
    team = <int>min(<fnn_int>nthreads, items)
    own_elems = round_up(nb, t.nr) * t.kc + rows_pad * nb + elems_for_runs(nb, sizeof(floating))
    with parallel(num_threads=max(team, 1)):
        _note_team()
        buf = <floating *>fnn_thread_scratch(FNN_SCRATCH_OWN, own_elems * sizeof(floating))
        if buf == NULL:
            failed_p[0] = 1
        bpack = buf
        cols = buf + round_up(nb, t.nr) * t.kc
        runs = <RowRun *>(cols + rows_pad * nb)
        for item in prange(items, schedule='static'):
            if buf != NULL:
                img = item // (g.groups * n_chunks)
                grp = (item // n_chunks) % g.groups
                chunk = item % n_chunks
                ci0 = chunk * ch_per_item
                ci1 = min(g.cin_g, ci0 + ch_per_item)
                k0 = ci0 * taps
                k1 = ci1 * taps
                abase = apack + (grp * n_chunks + chunk) * chunk_elems
                memset(dx + (img * g.c_in + grp * g.cin_g + ci0) * g.h * g.w, 0,
                       (ci1 - ci0) * g.h * g.w * sizeof(floating))
                if g.cout_g > 0:
                    for jc_blk in range(ceil_div(g.p, nb)):
                        jc = jc_blk * nb
                        ncols = min(nb, g.p - jc)
                        for pc_blk in range(ceil_div(g.cout_g, t.kc)):
                            pc = pc_blk * t.kc
                            kcb = min(t.kc, g.cout_g - pc)
                            pack_b(&t, kcb, ncols, dy + (img * g.c_out + grp * g.cout_g + pc) * g.p + jc,
                                   g.p, 1, bpack)
                            for ic_blk in range(ceil_div(k1 - k0, t.mc)):
                                ic = ic_blk * t.mc
                                mcb = min(t.mc, k1 - k0 - ic)
                                macro(&t, mcb, ncols, kcb, abase + pc * rows_pad + ic * kcb, bpack,
                                      cols + ic * nb, nb, FNN_ACCUMULATE if pc > 0 else 0, NULL)
                        col2im_add(g, cols, nb, k0, k1 - k0, jc, ncols, runs,
                                   dx + (img * g.c_in + grp * g.cin_g) * g.h * g.w)
    return -1 if failed else 0


# ---- grad_weight: dW[g] = sum over images of dY[n, g] cols^T --------------------------------

cdef int conv2d_grad_weight_impl(const ConvGeom *g, const floating *dy, const floating *x,
                                 floating *dw, int nthreads) noexcept nogil:
    """Each item owns a tile of dW and reduces over every image and pixel in one fixed order,
    so the result is bit-identical for any thread count, with no per-thread partial sums."""
    cdef fnn_int pc_blk
    cdef Tiling t = active_tiling(dy)
    cdef fnn_int n_ib, n_jb, items, item, grp, ib, jb, ic, mcb, jc, ncb, img, pc, kcb, nbw
    cdef floating *buf
    cdef floating *apack
    cdef floating *bpack
    cdef RowRun *runs
    cdef int failed = 0
    cdef int *failed_p = &failed
    cdef int team, flags
    cdef fnn_int own_elems
    n_ib = ceil_div(g.cout_g, t.mc)
    nbw = split_width(g.kg, t.nc, ceil_div(2 * nthreads, g.groups * n_ib), t.nr)
    n_jb = ceil_div(g.kg, nbw)
    items = g.groups * n_ib * n_jb
    team = <int>min(<fnn_int>nthreads, items)
    own_elems = (round_up(nbw, t.nr) * t.kc + round_up(t.mc, t.mr) * t.kc
                 + elems_for_runs(t.kc, sizeof(floating)))
    with parallel(num_threads=max(team, 1)):
        _note_team()
        buf = <floating *>fnn_thread_scratch(FNN_SCRATCH_OWN, own_elems * sizeof(floating))
        if buf == NULL:
            failed_p[0] = 1
        bpack = buf
        apack = buf + round_up(nbw, t.nr) * t.kc
        runs = <RowRun *>(apack + round_up(t.mc, t.mr) * t.kc)
        for item in prange(items, schedule='static'):
            if buf != NULL:
                grp = item // (n_ib * n_jb)
                ib = (item // n_jb) % n_ib
                jb = item % n_jb
                ic = ib * t.mc
                mcb = min(t.mc, g.cout_g - ic)
                jc = jb * nbw
                ncb = min(nbw, g.kg - jc)
                flags = 0
                if g.n == 0 or g.p == 0:
                    macro(&t, mcb, ncb, 0, apack, bpack, dw + (grp * g.cout_g + ic) * g.kg + jc, g.kg, 0, NULL)
                for img in range(g.n):
                    for pc_blk in range(ceil_div(g.p, t.kc)):
                        pc = pc_blk * t.kc
                        kcb = min(t.kc, g.p - pc)
                        pack_b_im2col_t(g, x + (img * g.c_in + grp * g.cin_g) * g.h * g.w, pc, kcb,
                                        jc, ncb, t.nr, runs, bpack)
                        pack_a(&t, mcb, kcb, dy + (img * g.c_out + grp * g.cout_g + ic) * g.p + pc,
                               g.p, 1, apack)
                        macro(&t, mcb, ncb, kcb, apack, bpack, dw + (grp * g.cout_g + ic) * g.kg + jc,
                              g.kg, flags, NULL)
                        flags = FNN_ACCUMULATE
    return -1 if failed else 0


# ---- Python entry points (arguments already validated by fastnn._api) ----------------------

cdef inline bint reads_padding(const ConvGeom *g) noexcept nogil:
    """Whether some tap of some output lands in the padding."""
    return (g.pt > 0 or g.pl > 0
            or (g.h_out - 1) * g.sh - g.pt + (g.kh - 1) * g.dh >= g.h
            or (g.w_out - 1) * g.sw - g.pl + (g.kw - 1) * g.dw >= g.w)


cdef inline bint all_finite(const floating *v, fnn_int n) noexcept nogil:
    if floating is float:
        return fnn_all_finite_f32(v, n) != 0
    else:
        return fnn_all_finite_f64(v, n) != 0


cdef int run_forward(const ConvGeom *g, cnp.ndarray x, cnp.ndarray w, object bias, cnp.ndarray y,
                     int num_threads) except -1:
    """Returns 1, or 0 without computing when the implicit GEMM would multiply padding by an
    Inf or NaN weight (padding must be absent, not 0 * Inf = NaN): the caller then takes the
    reference's tap-by-tap path."""
    cdef cnp.ndarray b = bias
    cdef int rc
    cdef bint direct = g.cin_g == 1
    cdef bint is_f32 = cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32
    if not direct and reads_padding(g):
        if not (all_finite(<float *>w.data, w.size) if is_f32 else all_finite(<double *>w.data, w.size)):
            return 0
    if is_f32:
        with nogil:
            if direct:
                rc = direct_forward_impl(g, <float *>x.data, <float *>w.data,
                                         <float *>b.data if bias is not None else NULL, <float *>y.data, num_threads)
            else:
                rc = conv2d_forward_impl(g, <float *>x.data, <float *>w.data,
                                         <float *>b.data if bias is not None else NULL, <float *>y.data, num_threads)
    else:
        with nogil:
            if direct:
                rc = direct_forward_impl(g, <double *>x.data, <double *>w.data,
                                         <double *>b.data if bias is not None else NULL, <double *>y.data, num_threads)
            else:
                rc = conv2d_forward_impl(g, <double *>x.data, <double *>w.data,
                                         <double *>b.data if bias is not None else NULL, <double *>y.data, num_threads)
    if rc != 0:
        raise MemoryError("fastnn.conv2d: could not allocate packing buffers")
    return 1


def conv2d_forward(cnp.ndarray x, cnp.ndarray w, bias, cnp.ndarray y, tuple stride, tuple pad,
                   tuple dil, fnn_int groups, int num_threads):
    """y = conv2d(x, w) + bias into the C-contiguous y; all C-contiguous, one dtype.
    Returns False, computing nothing, where padding would meet an Inf or NaN weight."""
    cdef ConvGeom g = make_geom(x.shape, w.shape, stride, pad, dil, groups, y.shape)
    return run_forward(&g, x, w, bias, y, num_threads) == 1


def conv2d_grad_input(cnp.ndarray dy, cnp.ndarray w, cnp.ndarray dx, tuple stride, tuple pad,
                      tuple dil, fnn_int groups, int num_threads):
    cdef ConvGeom g = make_geom(dx.shape, w.shape, stride, pad, dil, groups, dy.shape)
    cdef int rc
    cdef bint direct = g.cin_g == 1
    if cnp.PyArray_TYPE(dy) == cnp.NPY_FLOAT32:
        with nogil:
            if direct:
                rc = direct_grad_input_impl(&g, <float *>dy.data, <float *>w.data, <float *>dx.data, num_threads)
            else:
                rc = conv2d_grad_input_impl(&g, <float *>dy.data, <float *>w.data, <float *>dx.data, num_threads)
    else:
        with nogil:
            if direct:
                rc = direct_grad_input_impl(&g, <double *>dy.data, <double *>w.data, <double *>dx.data, num_threads)
            else:
                rc = conv2d_grad_input_impl(&g, <double *>dy.data, <double *>w.data, <double *>dx.data, num_threads)
    if rc != 0:
        raise MemoryError("fastnn.conv2d_backward: could not allocate packing buffers")
    return dx


def conv2d_grad_weight(cnp.ndarray dy, cnp.ndarray x, cnp.ndarray dw, tuple stride, tuple pad,
                       tuple dil, fnn_int groups, int num_threads):
    """dw = the weight gradient; returns False, computing nothing, when padding would meet an
    Inf or NaN in dy (see conv2d_forward)."""
    cdef ConvGeom g = make_geom(x.shape, dw.shape, stride, pad, dil, groups, dy.shape)
    cdef int rc
    cdef bint direct = g.cin_g == 1
    cdef bint is_f32 = cnp.PyArray_TYPE(dy) == cnp.NPY_FLOAT32
    if not direct and reads_padding(&g):
        if not (all_finite(<float *>dy.data, dy.size) if is_f32 else all_finite(<double *>dy.data, dy.size)):
            return False
    if is_f32:
        with nogil:
            if direct:
                rc = direct_grad_weight_impl(&g, <float *>dy.data, <float *>x.data, <float *>dw.data, num_threads)
            else:
                rc = conv2d_grad_weight_impl(&g, <float *>dy.data, <float *>x.data, <float *>dw.data, num_threads)
    else:
        with nogil:
            if direct:
                rc = direct_grad_weight_impl(&g, <double *>dy.data, <double *>x.data, <double *>dw.data, num_threads)
            else:
                rc = conv2d_grad_weight_impl(&g, <double *>dy.data, <double *>x.data, <double *>dw.data, num_threads)
    if rc != 0:
        raise MemoryError("fastnn.conv2d_backward: could not allocate packing buffers")
    return True
