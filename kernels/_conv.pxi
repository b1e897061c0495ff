# conv2d drivers: implicit GEMM. Images are packed straight into the GEMM core's B panels
# (im2col one cache-sized block at a time), so no column matrix of the whole batch exists.
#
# Per group g and image n the forward is Y[n, g] (C_out/g x P) = W[g] (C_out/g x K) * cols (K x P),
# with K = C_in/g * kH * kW indexed (ci, a, b) and P = H_out * W_out indexed (oh, ow).
# grad_weight is dW[g]^T = sum_n cols * dY[n, g]^T (cols as A: contiguous rows interleaved;
# the transpose falls on dY); a stride-1 grad_input is a forward conv of dY with the flipped
# kernel; other strides scatter cols = W^T dY back (col2im). The gathers and the scatter are
# C (kernels/c/fnn_im2col.c), compiled per instruction set so the copies vectorise.

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


# Runs of consecutive output pixels within one output row (fnn_row_run in fnn_im2col.h):
# the im2col entries of one kernel tap over them come from one input row.
ctypedef fnn_row_run RowRun


cdef inline fnn_int max_row_runs(fnn_int count) noexcept nogil:
    return FNN_IM2COL_MAX_RUNS(count)


cdef inline fnn_plane_geom im2col_geom(const ConvGeom *g) noexcept nogil:
    """The one-channel-plane geometry the C im2col routines take (channels are h*w apart)."""
    cdef fnn_plane_geom pg
    pg.h, pg.w, pg.h_out, pg.w_out = g.h, g.w, g.h_out, g.w_out
    pg.kh, pg.kw, pg.sh, pg.sw = g.kh, g.kw, g.sh, g.sw
    pg.pt, pg.pl, pg.dh, pg.dw = g.pt, g.pl, g.dh, g.dw
    return pg


cdef inline bint is_pointwise(const ConvGeom *g) noexcept nogil:
    """A 1x1, stride-1, unpadded conv: cols[k, p] = X[k, p], (C_in/g x P) row-major, so the
    GEMM core packs the image itself and no im2col is needed."""
    return (g.kh == 1 and g.kw == 1 and g.sh == 1 and g.sw == 1 and g.pt == 0 and g.pl == 0
            and g.h_out == g.h and g.w_out == g.w)


cdef inline void pack_b_im2col(const Tiling *t, const ConvGeom *g, const fnn_plane_geom *pg,
                               const floating *xg, fnn_int k0, fnn_int kcb, fnn_int p0,
                               fnn_int ncols, RowRun *runs, floating *dst) noexcept nogil:
    """Pack cols[k0:k0+kcb, p0:p0+ncols] of one image group (xg: its first channel) into
    NR-wide k-major panels, zero-filled past ncols."""
    cdef fnn_int n_runs
    if is_pointwise(g):
        pack_b(t, kcb, ncols, xg + k0 * g.p + p0, g.p, 1, dst)
        return
    n_runs = fnn_im2col_row_runs(pg, p0, ncols, t.nr, runs)
    if floating is float:
        fnn_im2col_pack_b_f32(pg, xg, k0, kcb, ncols, t.nr, runs, n_runs, dst)
    else:
        fnn_im2col_pack_b_f64(pg, xg, k0, kcb, ncols, t.nr, runs, n_runs, dst)


cdef inline fnn_int elems_for_runs(fnn_int count, size_t elem_size) noexcept nogil:
    """Floating-point elements of scratch that hold the row runs of `count` pixels."""
    return <fnn_int>((max_row_runs(count) * sizeof(RowRun) + elem_size - 1) // elem_size)


cdef inline fnn_int split_width(fnn_int total, fnn_int cap, fnn_int parts, int align) noexcept nogil:
    """A block width <= cap, a multiple of align, cutting total into about `parts` pieces."""
    cdef fnn_int width = round_up(ceil_div(total, max(<fnn_int>1, parts)), align)
    return max(<fnn_int>align, min(cap, width))


# ---- forward -----------------------------------------------------------------------------

# ---- several small maps side by side in one B panel -----------------------------------

cdef inline void copy_block(floating *dst, fnn_int dst_ld, const floating *src, fnn_int src_ld, fnn_int rows,
                            fnn_int cols) noexcept nogil:
    """dst[r, :cols] = src[r, :cols] for rows r < rows, each side's rows ld elements apart."""
    cdef fnn_int r
    for r in range(rows):
        memcpy(dst + r * dst_ld, src + r * src_ld, cols * sizeof(floating))


cdef inline void zero_panel_tails(floating *bpack, fnn_int kcb, fnn_int nr, fnn_int count, fnn_int ipp,
                                  fnn_int p) noexcept nogil:
    """Zeros past the images in each of the panels (kcb x nr, k-major) holding `count` images
    of p columns, ipp of them to a panel."""
    cdef fnn_int q, r, used
    for q in range(ceil_div(count, ipp)):
        used = min(ipp, count - q * ipp) * p
        if used < nr:
            for r in range(kcb):
                memset(bpack + (q * kcb + r) * nr + used, 0, (nr - used) * sizeof(floating))


cdef inline fnn_int images_per_panel(fnn_int p, fnn_int nr, fnn_int n, fnn_int other_items,
                                     int nthreads) noexcept nogil:
    """Images of p output pixels to put side by side in one NR-wide panel (1: none), so that
    a small map does not leave most of the kernel's vector columns empty; no more than
    leaves the team two items a thread, with other_items per group of images."""
    cdef fnn_int ipp = nr // p if p > 0 and 2 * p <= nr else 1
    while ipp > 1 and ceil_div(n, ipp) * other_items < 2 * nthreads:
        ipp -= 1
    return ipp


cdef int forward_images_side_by_side(const ConvGeom *g, const Tiling *t, const fnn_plane_geom *pg,
                                     const floating *x, const floating *apack, fnn_int mpad,
                                     const floating *bias, fnn_int ipp, fnn_int panels, floating *y,
                                     int nthreads) noexcept nogil:
    """conv2d_forward_impl's work items for small output maps (ipp * P <= NR): each takes up to
    ipp * panels images of one group, ipp side by side in each of `panels` B panels (image j in
    panel j // ipp from column (j % ipp) * P; each packed on its own, then its P columns moved
    into place), into a C of panels * NR columns that is then copied out image by image. Every
    column's sums are those of one image an item."""
    cdef fnn_int ic_blk, pc_blk
    cdef fnn_int items, item, ig, img0, count, grp, pc, kcb, ic, mcb, j, width
    cdef fnn_int imgs = ipp * panels
    cdef fnn_int wide = panels * t.nr
    cdef floating *buf
    cdef floating *bpack
    cdef floating *one
    cdef floating *cblock
    cdef RowRun *runs
    cdef int failed = 0
    cdef int *failed_p = &failed
    cdef int team, flags
    cdef fnn_int own_elems = (wide + t.nr) * t.kc + mpad * wide + elems_for_runs(g.p, sizeof(floating))
    items = ceil_div(g.n, imgs) * g.groups
    team = <int>min(<fnn_int>nthreads, items)
    with parallel(num_threads=max(team, 1)):
        _note_team()
        buf = <floating *>fnn_thread_scratch(FNN_SCRATCH_OWN, own_elems * sizeof(floating))
        if buf == NULL:
            failed_p[0] = 1
        bpack = buf
        one = buf + wide * t.kc
        cblock = one + t.nr * t.kc
        runs = <RowRun *>(cblock + mpad * wide)
        for item in prange(items, schedule='static'):
            if buf != NULL:
                ig = item // g.groups
                grp = item % g.groups
                img0 = ig * imgs
                count = min(imgs, g.n - img0)
                # columns through the last used panel (the macro-kernel skips none inside it)
                width = ((count - 1) // ipp) * t.nr + ((count - 1) % ipp + 1) * g.p
                for pc_blk in range(ceil_div(g.kg, t.kc)):
                    pc = pc_blk * t.kc
                    kcb = min(t.kc, g.kg - pc)
                    for j in range(count):
                        pack_b_im2col(t, g, pg, x + ((img0 + j) * g.c_in + grp * g.cin_g) * g.h * g.w, pc, kcb,
                                      0, g.p, runs, one)
                        copy_block(bpack + (j // ipp) * t.nr * kcb + (j % ipp) * g.p, t.nr, one, t.nr, kcb, g.p)
                    zero_panel_tails(bpack, kcb, t.nr, count, ipp, g.p)
                    flags = kblock_flags(FNN_BIAS_ROW if bias != NULL else 0, pc, kcb, g.kg)
                    for ic_blk in range(ceil_div(g.cout_g, t.mc)):
                        ic = ic_blk * t.mc
                        mcb = min(t.mc, g.cout_g - ic)
                        macro(t, mcb, width, kcb, apack + grp * mpad * g.kg + pc * mpad + ic * kcb, bpack,
                              cblock + ic * wide, wide, flags, bias + grp * g.cout_g + ic if bias != NULL else NULL)
                for j in range(count):
                    copy_block(y + ((img0 + j) * g.c_out + grp * g.cout_g) * g.p, g.p,
                               cblock + (j // ipp) * t.nr + (j % ipp) * g.p, wide, g.cout_g, g.p)
    return -1 if failed else 0


cdef int conv2d_forward_impl(const ConvGeom *g, const floating *x, const floating *w,
                             const floating *bias, floating *y, int nthreads) noexcept nogil:
    cdef fnn_int ic_blk, pc_blk
    cdef Tiling t = active_tiling(x)
    cdef fnn_int mpad = round_up(g.cout_g, t.mr)
    cdef fnn_int gi, pc, kcb, nb, items, item, n_pb, img, grp, jc, ncols, ic, mcb, ipp, panels
    cdef floating *apack
    cdef floating *buf
    cdef RowRun *runs
    cdef int failed = 0
    cdef int *failed_p = &failed
    cdef int team, flags
    cdef fnn_int own_elems
    cdef fnn_plane_geom pg = im2col_geom(g)
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
    # Output maps of at most half a micro-panel: several images side by side in each panel
    # (see grad_input_images_side_by_side), up to 4 panels an item so that each pass over the
    # packed weights serves 256 columns, fewer where the team would go short of items.
    if g.kg > 0 and 0 < 2 * g.p <= t.nr:
        ipp = images_per_panel(g.p, t.nr, g.n, g.groups, nthreads)
        panels = 4
        while panels > 1 and ceil_div(g.n, ipp * panels) * g.groups < 2 * nthreads:
            panels -= 1
        if ipp * panels > 1:
            return forward_images_side_by_side(g, &t, &pg, x, apack, mpad, bias, ipp, panels, y, nthreads)
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
                    pack_b_im2col(&t, g, &pg, x + (img * g.c_in + grp * g.cin_g) * g.h * g.w, pc, kcb,
                                  jc, ncols, runs, buf)
                    flags = kblock_flags(FNN_BIAS_ROW if bias != NULL else 0, pc, kcb, g.kg)
                    for ic_blk in range(ceil_div(g.cout_g, t.mc)):
                        ic = ic_blk * t.mc
                        mcb = min(t.mc, g.cout_g - ic)
                        macro(&t, mcb, ncols, kcb, apack + grp * mpad * g.kg + pc * mpad + ic * kcb, buf,
                              y + (img * g.c_out + grp * g.cout_g + ic) * g.p + jc, g.p, flags,
                              bias + grp * g.cout_g + ic if bias != NULL else NULL)
    return -1 if failed else 0


# ---- grad_input: cols = W^T dY, scattered back (col2im) ---------------------------------

cdef inline void col2im_add(const fnn_plane_geom *pg, const floating *cols, fnn_int ldc, fnn_int k0,
                            fnn_int rows, fnn_int p0, fnn_int ncols, RowRun *runs,
                            floating *dxg) noexcept nogil:
    """dX[ci, ih, iw] += cols[k, p] for kernel rows k0.. and pixels p0.. that land inside the image."""
    cdef fnn_int n_runs = fnn_im2col_row_runs(pg, p0, ncols, 0, runs)
    if floating is float:
        fnn_col2im_add_f32(pg, cols, ldc, k0, rows, runs, n_runs, dxg)
    else:
        fnn_col2im_add_f64(pg, cols, ldc, k0, rows, runs, n_runs, dxg)


cdef int grad_input_images_side_by_side(const ConvGeom *g, const Tiling *t, const fnn_plane_geom *pg,
                                        const floating *dy, const floating *apack, fnn_int ch_per_item,
                                        fnn_int n_chunks, fnn_int rows_pad, fnn_int chunk_elems, fnn_int imgs,
                                        floating *dx, int nthreads) noexcept nogil:
    """conv2d_grad_input_impl's work items for small maps (imgs * P <= NR): each takes `imgs`
    images at once, their pixels side by side in one B panel, for one (group, channel chunk).
    Every column's sums are those of one image an item, so are the results."""
    cdef fnn_int ic_blk, pc_blk
    cdef fnn_int items, item, ig, img0, count, grp, chunk, ci0, ci1, k0, k1, pc, kcb, ic, mcb, j
    cdef fnn_int taps = g.kh * g.kw
    cdef fnn_int plane = g.h * g.w
    cdef const floating *abase
    cdef floating *buf
    cdef floating *bpack
    cdef floating *cols
    cdef RowRun *runs
    cdef int failed = 0
    cdef int *failed_p = &failed
    cdef int team
    cdef fnn_int n_groups = ceil_div(g.n, imgs)
    cdef fnn_int own_elems = t.nr * t.kc + rows_pad * t.nr + elems_for_runs(g.p, sizeof(floating))
    items = n_groups * g.groups * n_chunks
    team = <int>min(<fnn_int>nthreads, items)
    with parallel(num_threads=max(team, 1)):
        _note_team()
        buf = <floating *>fnn_thread_scratch(FNN_SCRATCH_OWN, own_elems * sizeof(floating))
        if buf == NULL:
            failed_p[0] = 1
        bpack = buf
        cols = buf + t.nr * t.kc
        runs = <RowRun *>(cols + rows_pad * t.nr)
        for item in prange(items, schedule='static'):
            if buf != NULL:
                ig = item // (g.groups * n_chunks)
                grp = (item // n_chunks) % g.groups
                chunk = item % n_chunks
                img0 = ig * imgs
                count = min(imgs, g.n - img0)
                ci0 = chunk * ch_per_item
                ci1 = min(g.cin_g, ci0 + ch_per_item)
                k0 = ci0 * taps
                k1 = ci1 * taps
                abase = apack + (grp * n_chunks + chunk) * chunk_elems
                for j in range(count):
                    memset(dx + ((img0 + j) * g.c_in + grp * g.cin_g + ci0) * plane, 0,
                           (ci1 - ci0) * plane * sizeof(floating))
                if g.cout_g > 0:
                    for pc_blk in range(ceil_div(g.cout_g, t.kc)):
                        pc = pc_blk * t.kc
                        kcb = min(t.kc, g.cout_g - pc)
                        for j in range(count):
                            copy_block(bpack + j * g.p, t.nr, dy + ((img0 + j) * g.c_out + grp * g.cout_g + pc) * g.p,
                                       g.p, kcb, g.p)
                        zero_panel_tails(bpack, kcb, t.nr, count, imgs, g.p)
                        for ic_blk in range(ceil_div(k1 - k0, t.mc)):
                            ic = ic_blk * t.mc
                            mcb = min(t.mc, k1 - k0 - ic)
                            macro(t, mcb, count * g.p, kcb, abase + pc * rows_pad + ic * kcb, bpack,
                                  cols + ic * t.nr, t.nr, FNN_ACCUMULATE if pc > 0 else 0, NULL)
                    for j in range(count):
                        col2im_add(pg, cols + j * g.p, t.nr, k0, k1 - k0, 0, g.p, runs,
                                   dx + ((img0 + j) * g.c_in + grp * g.cin_g) * plane)
    return -1 if failed else 0


cdef int conv2d_grad_input_impl(const ConvGeom *g, const floating *dy, const floating *w,
                                floating *dx, int nthreads) noexcept nogil:
    cdef fnn_int ic_blk, jc_blk, pc_blk
    cdef Tiling t = active_tiling(dy)
    cdef fnn_int gi, pc, kcb, items, item, img, grp, chunk, ci0, ci1, k0, k1, ic, mcb, jc, ncols
    cdef fnn_int taps = g.kh * g.kw
    cdef fnn_int ch_per_item, n_chunks, nb, rows_pad, chunk_elems, imgs
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
    cdef fnn_plane_geom pg = im2col_geom(g)
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
    # Maps of at most half a micro-panel (a 4x4 dY): several images side by side in each B
    # panel, or the kernel would run a quarter of its vector columns. Not so many that the
    # team would go short of items (results are the same either way).
    imgs = images_per_panel(g.p, t.nr, g.n, g.groups * n_chunks, nthreads)
    if imgs > 1:
        return grad_input_images_side_by_side(g, &t, &pg, dy, apack, ch_per_item, n_chunks, rows_pad,
                                              chunk_elems, imgs, dx, nthreads)
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
                        col2im_add(&pg, cols, nb, k0, k1 - k0, jc, ncols, runs,
                                   dx + (img * g.c_in + grp * g.cin_g) * g.h * g.w)
    return -1 if failed else 0


cdef inline ConvGeom transposed_geom(const ConvGeom *g) noexcept nogil:
    """For stride 1: dX is the forward convolution of dY with the kernel flipped and its
    channel axes swapped, W'[g][ci, co, a, b] = W[g][co, ci, kh-1-a, kw-1-b], padded by
    (k-1)*d - pad (negative: a crop), same dilation."""
    cdef ConvGeom t = g[0]
    t.c_in, t.h, t.w = g.c_out, g.h_out, g.w_out
    t.c_out, t.h_out, t.w_out = g.c_in, g.h, g.w
    t.pt = (g.kh - 1) * g.dh - g.pt
    t.pl = (g.kw - 1) * g.dw - g.pl
    t.cin_g, t.cout_g = g.cout_g, g.cin_g
    t.kg = t.cin_g * g.kh * g.kw
    t.p = g.h * g.w
    return t


cdef int grad_input_as_forward(const ConvGeom *g, const ConvGeom *gt, const floating *dy,
                               const floating *w, floating *dx, int nthreads) noexcept nogil:
    """Stride-1 grad_input as a forward convolution (see transposed_geom): the forward's
    packed GEMM runs at its full rate with no col2im scatter. W' is built in this thread's
    own scratch, which conv2d_forward_impl reads only while packing A, before its parallel
    region asks that slot for its own buffers."""
    cdef fnn_int taps = g.kh * g.kw
    cdef fnn_int gi, co, ci, a, b
    cdef const floating *src
    cdef floating *dst
    cdef floating *wt
    if floating is float:
        if tiles_apply(gt, True):  # the tiles' weight layout is built from w itself
            return tile_forward_impl(gt, dy, w, NULL, dx, nthreads, True)
    wt = <floating *>fnn_thread_scratch(FNN_SCRATCH_OWN, g.c_out * g.kg * sizeof(floating))
    if wt == NULL:
        return -1
    for gi in range(g.groups):
        for co in range(g.cout_g):
            for ci in range(g.cin_g):
                src = w + ((gi * g.cout_g + co) * g.cin_g + ci) * taps
                dst = wt + ((gi * g.cin_g + ci) * g.cout_g + co) * taps + taps - 1
                for a in range(g.kh):
                    for b in range(g.kw):
                        dst[-(a * g.kw + b)] = src[a * g.kw + b]
    return conv2d_forward_impl(gt, dy, wt, NULL, dx, nthreads)


# ---- grad_weight: dW[g]^T = sum over images of cols dY[n, g]^T -----------------------------

cdef void pack_a_im2col(const Tiling *t, const ConvGeom *g, const fnn_plane_geom *pg,
                        const floating *xg, fnn_int k0, fnn_int m, fnn_int p0, fnn_int kcb,
                        fnn_int n_runs, const RowRun *runs, floating *rows,
                        floating *dst) noexcept nogil:
    """Pack cols[k0:k0+m, p0:p0+kcb] (runs: those pixels' row runs) as MR-row panels: MR
    rows gathered contiguous first (rows: MR x kcb scratch; each is a few runs of input
    rows), then interleaved by the core's row packer."""
    cdef fnn_int panel, i0, mrows
    cdef const floating *src
    cdef fnn_int ld = kcb
    for panel in range(ceil_div(m, t.mr)):
        i0 = panel * t.mr
        mrows = min(<fnn_int>t.mr, m - i0)
        if is_pointwise(g):
            # cols is the image itself: its rows need no gathering
            src = xg + (k0 + i0) * g.p + p0
            ld = g.p
        else:
            if floating is float:
                fnn_im2col_rows_f32(pg, xg, k0 + i0, mrows, runs, n_runs, rows, kcb)
            else:
                fnn_im2col_rows_f64(pg, xg, k0 + i0, mrows, runs, n_runs, rows, kcb)
            src = rows
        if t.mr == 6 and mrows == 6:
            if floating is float:
                fnn_pack_6rows_f32(kcb, src, ld, dst + i0 * kcb)
            else:
                fnn_pack_6rows_f64(kcb, src, ld, dst + i0 * kcb)
        else:
            pack_a(t, mrows, kcb, src, ld, 1, dst + i0 * kcb)


cdef inline void store_dwt(const ConvGeom *g, const floating *ct, fnn_int krows, fnn_int ncb,
                           floating *dwt) noexcept nogil:
    """A weight-gradient tile of dW^T (krows x ncb, row-major) into dW: dwt[j*kg + i] = ct[i, j]
    (in register blocks: element by element, striding through a tile of up to 4 MiB, this
    was two thirds of a batch-1 7x7 layer's weight gradient)."""
    if floating is float:
        fnn_transpose_f32(krows, ncb, ct, ncb, dwt, g.kg)
    else:
        fnn_transpose_f64(krows, ncb, ct, ncb, dwt, g.kg)


cdef void grad_weight_split(const ConvGeom *g, const Tiling *t, int nthreads, fnn_int *nbc,
                           fnn_int *n_jb, fnn_int *kchunk, fnn_int *n_kb) noexcept nogil:
    """The weight gradient's tiles of dW^T (K x C_out/g): output-channel blocks of nbc (n_jb
    of them) times K ranges of kchunk rows (n_kb of them), per group. Output channels are the
    GEMM's N: one NC-wide block or fewer. The K ranges are cut to feed the team (the split
    changes no element's order, only who computes it): one range per thread where the dW^T
    tile (krows x nbc, scratch) stays under 2^20 elements, as every range packs the same
    dY^T blocks again (4 MC blocks per range measured 3% slower than 12 on 128 -> 128
    channels)."""
    cdef fnn_int krows_cap, kb
    nbc[0] = min(t.nc, round_up(g.cout_g, t.nr))
    n_jb[0] = ceil_div(g.cout_g, nbc[0])
    krows_cap = max(t.mc, min(12 * t.mc, (<fnn_int>1 << 20) // nbc[0]))
    kb = max(ceil_div(g.kg, krows_cap), ceil_div(nthreads, g.groups * n_jb[0]))
    # a whole number of items per thread where K allows (3 ranges on 2 threads ran at 2/3)
    while (g.groups * n_jb[0] * kb) % nthreads != 0 and kb * t.mr < g.kg:
        kb += 1
    kchunk[0] = max(<fnn_int>t.mr, round_up(ceil_div(g.kg, kb), t.mr))
    n_kb[0] = ceil_div(g.kg, kchunk[0])


cdef int conv2d_grad_weight_impl(const ConvGeom *g, const floating *dy, const floating *x,
                                 floating *dw, int nthreads) noexcept nogil:
    """dW^T (K x C_out/g) = sum over images and pixel blocks of cols (K x P) * dY^T (P x C_out/g):
    the transpose falls on dY (packed once per pixel block for a whole K range, by the core's
    transposed-B packer) and cols is packed as A, a cheap interleave of MR contiguous rows.
    Each item owns a (K range, output-channel block) tile of dW^T in scratch, reduces it over
    every image and KC pixel block in one fixed order and transposes it into dW at the end,
    so each dW element's sum is the same for any thread count and any split of the tiles."""
    cdef fnn_int pc_blk, ic_blk
    cdef Tiling t = active_tiling(dy)
    cdef fnn_int nbc, n_jb, kchunk, n_kb, items, item, grp, kb, jb, k_lo, krows, jc, ncb
    cdef fnn_int img, pc, kcb, ic, mcb, n_runs
    cdef floating *buf
    cdef floating *apack
    cdef floating *bpack
    cdef floating *rows
    cdef floating *ct
    cdef const floating *xg
    cdef RowRun *runs
    cdef int failed = 0
    cdef int *failed_p = &failed
    cdef int team, flags
    cdef fnn_int own_elems
    cdef fnn_plane_geom pg = im2col_geom(g)
    grad_weight_split(g, &t, nthreads, &nbc, &n_jb, &kchunk, &n_kb)
    items = g.groups * n_kb * n_jb
    team = <int>min(<fnn_int>nthreads, items)
    own_elems = (nbc * t.kc + round_up(t.mc, t.mr) * t.kc + t.mr * t.kc + kchunk * nbc
                 + elems_for_runs(t.kc, sizeof(floating)))
    with parallel(num_threads=max(team, 1)):
        _note_team()
        buf = <floating *>fnn_thread_scratch(FNN_SCRATCH_OWN, own_elems * sizeof(floating))
        if buf == NULL:
            failed_p[0] = 1
        bpack = buf
        apack = bpack + nbc * t.kc
        rows = apack + round_up(t.mc, t.mr) * t.kc
        ct = rows + t.mr * t.kc
        runs = <RowRun *>(ct + kchunk * nbc)
        for item in prange(items, schedule='static'):
            if buf != NULL:
                grp = item // (n_kb * n_jb)
                kb = (item // n_jb) % n_kb
                jb = item % n_jb
                k_lo = kb * kchunk
                krows = min(kchunk, g.kg - k_lo)
                jc = jb * nbc
                ncb = min(nbc, g.cout_g - jc)
                if g.n == 0 or g.p == 0:
                    macro(&t, krows, ncb, 0, apack, bpack, ct, ncb, 0, NULL)
                flags = 0
                # loop over images, then P in KC blocks (the reduction), then K in MC blocks
                for img in range(g.n):
                    xg = x + (img * g.c_in + grp * g.cin_g) * g.h * g.w
                    for pc_blk in range(ceil_div(g.p, t.kc)):
                        pc = pc_blk * t.kc
                        kcb = min(t.kc, g.p - pc)
                        n_runs = fnn_im2col_row_runs(&pg, pc, kcb, 0, runs)
                        pack_b(&t, kcb, ncb, dy + (img * g.c_out + grp * g.cout_g + jc) * g.p + pc,
                               1, g.p, bpack)
                        for ic_blk in range(ceil_div(krows, t.mc)):
                            ic = ic_blk * t.mc
                            mcb = min(t.mc, krows - ic)
                            pack_a_im2col(&t, g, &pg, xg, k_lo + ic, mcb, pc, kcb, n_runs, runs, rows, apack)
                            macro(&t, mcb, ncb, kcb, apack, bpack, ct + ic * ncb, ncb, flags, NULL)
                        flags = FNN_ACCUMULATE
                store_dwt(g, ct, krows, ncb, dw + (grp * g.cout_g + jc) * g.kg + k_lo)
    return -1 if failed else 0


# ---- Python entry points (arguments already validated by fastnn.conv) ----------------------

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
    # One input channel with many outputs goes to the GEMM, whose register tiles share each
    # packed input among outputs, unless the direct kernels can do that too (small_direct:
    # fnn_plane_conv4 on AVX-512).
    cdef bint direct = (g.cin_g == 1 and g.cout_g < 8) or small_direct(g)
    cdef bint is_f32 = cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32
    if not direct and reads_padding(g):
        if not (all_finite(<float *>w.data, w.size) if is_f32 else all_finite(<double *>w.data, w.size)):
            return 0
    if is_f32:
        with nogil:
            if direct:
                rc = direct_forward_impl(g, <float *>x.data, <float *>w.data,
                                         <float *>b.data if bias is not None else NULL, <float *>y.data, num_threads)
            elif tiles_apply(g, True):
                rc = tile_forward_impl(g, <float *>x.data, <float *>w.data,
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


cdef inline bint few_input_channels(const ConvGeom *g) noexcept nogil:
    """Whether a stride-1 input gradient with few input channels per group (the forward form's
    GEMM rows) is faster in the col2im form: below 8 (no tiles: M = C_in/g of the GEMM's 6-row
    panels, each im2col column of C_out/g kH kW values used that few times), or below 16
    with 32 or more output channels per group (half-empty narrow tiles). The col2im form's
    GEMM has C_in/g kH kW rows. Measured (8 images, 1 thread): the CIFAR 5x5 stem's dX 8.6 ->
    1.9 ms, a 3-channel 7x7 stem at batch 1 58 -> 9.8 ms, 8 -> 64 channels 5x5 10.8 -> 6.1,
    12 -> 64 3x3 4.0 -> 3.4; 12 -> 12 and 16 -> 64 stay faster in the forward form. A pointwise
    conv's forward form needs no im2col and stays."""
    return (not is_pointwise(g) and g.cout_g > 0
            and (g.cin_g < 8 or (g.cin_g < 16 and g.cout_g >= 32)))


def conv2d_grad_input(cnp.ndarray dy, cnp.ndarray w, cnp.ndarray dx, tuple stride, tuple pad,
                      tuple dil, fnn_int groups, int num_threads):
    cdef ConvGeom g = make_geom(dx.shape, w.shape, stride, pad, dil, groups, dy.shape)
    cdef ConvGeom gt
    cdef int rc
    cdef bint direct = g.cin_g == 1 or small_direct(&g)
    cdef bint is_f32 = cnp.PyArray_TYPE(dy) == cnp.NPY_FLOAT32
    cdef bint as_forward = False
    # (With no output channels the forward form's reduction is empty and it would write nothing.)
    if not direct and g.sh == 1 and g.sw == 1 and g.cout_g > 0 and not few_input_channels(&g):
        # The forward form multiplies dY's padding by W: only where that is 0 * finite (the
        # col2im form never touches positions outside dY).
        gt = transposed_geom(&g)
        as_forward = not reads_padding(&gt) or (
            all_finite(<float *>w.data, w.size) if is_f32 else all_finite(<double *>w.data, w.size))
    if not as_forward and not direct and is_f32 and phases_apply(&g) and all_finite(<float *>w.data, w.size):
        with nogil:
            rc = tile_grad_input_phases(&g, <float *>dy.data, <float *>w.data, <float *>dx.data, num_threads)
    elif as_forward:
        with nogil:
            if is_f32:
                rc = grad_input_as_forward(&g, &gt, <float *>dy.data, <float *>w.data, <float *>dx.data, num_threads)
            else:
                rc = grad_input_as_forward(&g, &gt, <double *>dy.data, <double *>w.data, <double *>dx.data, num_threads)
    elif is_f32:
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
                       tuple dil, fnn_int groups, int num_threads, cnp.ndarray db=None):
    """dw = the weight gradient, and db (C_out,) = the bias gradient when db is given (the
    direct kernels sum dY's planes as they pass); returns False, computing nothing, when
    padding would meet an Inf or NaN in dy (see conv2d_forward)."""
    cdef ConvGeom g = make_geom(x.shape, dw.shape, stride, pad, dil, groups, dy.shape)
    cdef int rc
    cdef bint is_f32 = cnp.PyArray_TYPE(dy) == cnp.NPY_FLOAT32
    # dY's finiteness, where some path needs it: one pass over dY, not one per question
    cdef bint finite = True
    cdef bint direct
    if g.cin_g == 1 or small_direct(&g) or reads_padding(&g):
        finite = all_finite(<float *>dy.data, dy.size) if is_f32 else all_finite(<double *>dy.data, dy.size)
    direct = g.cin_g == 1 or (small_direct(&g) and finite)
    if not direct and reads_padding(&g) and not finite:
        return False
    if is_f32:
        with nogil:
            if direct:
                rc = direct_grad_weight_impl(&g, <float *>dy.data, <float *>x.data, <float *>dw.data,
                                             <float *>db.data if db is not None else NULL, finite, num_threads)
            else:
                if tiles_apply(&g, True) and g.n > 0 and g.p > 0:
                    rc = grad_weight_rows_impl(&g, <float *>dy.data, <float *>x.data, <float *>dw.data,
                                               num_threads)
                else:
                    rc = conv2d_grad_weight_impl(&g, <float *>dy.data, <float *>x.data, <float *>dw.data,
                                                 num_threads)
                if db is not None:
                    channel_sums_impl(<float *>dy.data, g.n, g.c_out, g.p, <float *>db.data, num_threads)
    else:
        with nogil:
            if direct:
                rc = direct_grad_weight_impl(&g, <double *>dy.data, <double *>x.data, <double *>dw.data,
                                             <double *>db.data if db is not None else NULL, finite, num_threads)
            else:
                rc = conv2d_grad_weight_impl(&g, <double *>dy.data, <double *>x.data, <double *>dw.data, num_threads)
                if db is not None:
                    channel_sums_impl(<double *>dy.data, g.n, g.c_out, g.p, <double *>db.data, num_threads)
    if rc != 0:
        raise MemoryError("fastnn.conv2d_backward: could not allocate packing buffers")
    return True
