# Direct convolution, for output channels that each read one input channel (C_in / groups
# == 1: depthwise, and 1-channel inputs), where the reduction is only kH*kW long, and for
# groups of a few input channels where the active level has a kernel that reads padding
# itself (small_direct: AVX-512, 3x3, stride and dilation 1): whole planes go to the C
# kernels in kernels/c/fnn_direct.c, one output plane per work item.

# Input channels per group up to which small_direct convolutions skip the GEMM path: its
# packing costs more than the arithmetic there (a 3-channel first layer on a small image).
cdef fnn_int SMALL_DIRECT_CIN = 4
# Wider groups still skip it while they are narrow on both sides: with C_out/groups rows
# (M, padded to the micro-kernel's 6) and 9 * C_in/groups columns (K) the GEMM uses each
# im2col element a few times only. RegNetY's 8-channel groups ran 0.40x PyTorch forward and
# 0.26x backward on the GEMM path, 1.7x and 1.0x direct (1 thread); at 16 channels per group
# the GEMM is the faster one again, and so it is for 6-8 input channels with 64+ outputs.
cdef fnn_int GROUP_DIRECT_CIN = 8
cdef fnn_int GROUP_DIRECT_COUT = 16


cdef inline fnn_plane_geom plane_geom(const ConvGeom *g) noexcept nogil:
    cdef fnn_plane_geom pg
    pg.h = g.h; pg.w = g.w; pg.h_out = g.h_out; pg.w_out = g.w_out
    pg.kh = g.kh; pg.kw = g.kw; pg.sh = g.sh; pg.sw = g.sw
    pg.pt = g.pt; pg.pl = g.pl; pg.dh = g.dh; pg.dw = g.dw
    return pg


cdef inline fnn_plane_geom flipped_geom(const ConvGeom *g) noexcept nogil:
    """For stride 1, dX = a convolution of dY with the kernel flipped in both directions:
    dX[ih, iw] = sum_ab w[kh-1-a, kw-1-b] * dY[ih - pt' + a*dh, iw - pl' + b*dw] with
    pt' = (kh-1)*dh - pt (negative when the padding is wider than the kernel: a crop)."""
    cdef fnn_plane_geom pg
    pg.h = g.h_out; pg.w = g.w_out; pg.h_out = g.h; pg.w_out = g.w
    pg.kh = g.kh; pg.kw = g.kw; pg.sh = 1; pg.sw = 1
    pg.pt = (g.kh - 1) * g.dh - g.pt; pg.pl = (g.kw - 1) * g.dw - g.pl
    pg.dh = g.dh; pg.dw = g.dw
    return pg


cdef inline void plane_conv(const fnn_plane_geom *pg, const floating *x, fnn_int nc, fnn_int xs,
                            const floating *wt, const floating *bias, floating *y) noexcept nogil:
    if floating is float:
        fnn_plane_conv_f32(pg, x, nc, xs, wt, bias, y)
    else:
        fnn_plane_conv_f64(pg, x, nc, xs, wt, bias, y)


cdef inline void plane_grad_input(const fnn_plane_geom *pg, const floating *dy, const floating *wt,
                                  floating *dx) noexcept nogil:
    if floating is float:
        fnn_plane_grad_input_f32(pg, dy, wt, dx)
    else:
        fnn_plane_grad_input_f64(pg, dy, wt, dx)


cdef inline void plane_grad_weight_lanes(const fnn_plane_geom *pg, const floating *dy, const floating *x,
                                         floating *lanes) noexcept nogil:
    if floating is float:
        fnn_plane_grad_weight_lanes_f32(pg, dy, x, lanes)
    else:
        fnn_plane_grad_weight_lanes_f64(pg, dy, x, lanes)


cdef inline void plane_grad_weight_wide(const fnn_plane_geom *gp, const floating *dy, fnn_int dys,
                                        const floating *xp, fnn_int xs, floating *lanes) noexcept nogil:
    if floating is float:
        fnn_plane_grad_weight_wide_f32(gp, dy, dys, xp, xs, lanes)
    else:
        fnn_plane_grad_weight_wide_f64(gp, dy, dys, xp, xs, lanes)


cdef inline void plane_grad_weight_unpadded(const fnn_plane_geom *pg, const floating *dy,
                                            const floating *x, floating *lanes) noexcept nogil:
    if floating is float:
        fnn_plane_grad_weight_unpadded_f32(pg, dy, x, lanes)
    else:
        fnn_plane_grad_weight_unpadded_f64(pg, dy, x, lanes)


cdef inline void plane_pad(const fnn_plane_geom *pg, const floating *x, floating *xp, fnn_int xs) noexcept nogil:
    if floating is float:
        fnn_plane_pad_f32(pg, x, xp, xs)
    else:
        fnn_plane_pad_f64(pg, x, xp, xs)


cdef inline bint plane_reads_padding(const fnn_plane_geom *pg) noexcept nogil:
    return (pg.pt > 0 or pg.pl > 0
            or (pg.h_out - 1) * pg.sh - pg.pt + (pg.kh - 1) * pg.dh >= pg.h
            or (pg.w_out - 1) * pg.sw - pg.pl + (pg.kw - 1) * pg.dw >= pg.w)


cdef inline fnn_int padded_elems(const fnn_plane_geom *pg, fnn_int itemsize) noexcept nogil:
    """Elements of a buffer for one plane padded by plane_pad (rows as wide as the plane's)."""
    cdef fnn_plane_geom gp = fnn_plane_padded_geom(pg)
    return gp.h * gp.w + FNN_PLANE_SLACK_BYTES // itemsize


cdef inline bint reads_padding_itself(const fnn_plane_geom *pg) noexcept nogil:
    """Whether the active level's kernels for this geometry read padding themselves (the 3x3
    stride-1 kernel or the general ones of fnn_dw_body.h): no zero-padded copies needed."""
    return fnn_plane_reads_padding_itself(pg) != 0 or fnn_plane_dw_reads_padding_itself(pg) != 0


cdef inline void plane_grad_input_gather(const fnn_plane_geom *pg, const floating *dy, fnn_int nc,
                                         fnn_int dys, const floating *wt, floating *dx) noexcept nogil:
    if floating is float:
        fnn_plane_grad_input_gather_f32(pg, dy, nc, dys, wt, dx)
    else:
        fnn_plane_grad_input_gather_f64(pg, dy, nc, dys, wt, dx)


cdef inline bint small_direct(const ConvGeom *g) noexcept nogil:
    """Whether a convolution with a few input channels per group runs on the direct kernels."""
    cdef fnn_plane_geom pg = plane_geom(g)
    return ((g.cin_g <= SMALL_DIRECT_CIN
             or (g.cin_g <= GROUP_DIRECT_CIN and g.cout_g <= GROUP_DIRECT_COUT))
            and fnn_plane_reads_padding_itself(&pg) != 0)


cdef inline void plane_conv4(const fnn_plane_geom *pg, const floating *x, fnn_int nc, fnn_int xs,
                             const floating *wt, fnn_int wcs, const floating *bias, floating *y,
                             fnn_int ys) noexcept nogil:
    if floating is float:
        fnn_plane_conv4_f32(pg, x, nc, xs, wt, wcs, bias, y, ys)
    else:
        fnn_plane_conv4_f64(pg, x, nc, xs, wt, wcs, bias, y, ys)


# Outputs at least this large are written with streaming stores (fnn_stream_copy): they
# outgrow the caches that would keep them for the next layer, so keeping them there only
# costs a read of every line before it is written.
cdef size_t STREAM_MIN_BYTES = 8 << 20


cdef inline void plane_stream_copy(floating *dst, const floating *src, fnn_int n) noexcept nogil:
    if floating is float:
        fnn_stream_copy_f32(dst, src, n)
    else:
        fnn_stream_copy_f64(dst, src, n)


cdef inline void direct_forward_item(const ConvGeom *g, const fnn_plane_geom *pg,
                                     const fnn_plane_geom *gp, fnn_int per, fnn_int nq, fnn_int pe,
                                     const floating *x, const floating *w, const floating *bias,
                                     floating *y, floating *xp, floating *tmp, fnn_int item) noexcept nogil:
    """Item `item` of direct_forward_impl; xp: this thread's padded planes, NULL for none;
    tmp: a plane to compute single outputs into and stream out from, NULL to write them."""
    cdef fnn_int plane_in = g.h * g.w
    cdef fnn_int img = item // (g.groups * nq)
    cdef fnn_int grp = (item // nq) % g.groups
    cdef fnn_int co0 = grp * g.cout_g + (item % nq) * per
    cdef fnn_int cnt = min(per, (grp + 1) * g.cout_g - co0)
    cdef const floating *xg = x + (img * g.c_in + grp * g.cin_g) * plane_in
    cdef fnn_int co, c
    if xp == NULL:
        if cnt == 4:
            plane_conv4(pg, xg, g.cin_g, plane_in, w + co0 * g.kg, g.kg,
                        bias + co0 if bias != NULL else NULL, y + (img * g.c_out + co0) * g.p, g.p)
        else:
            for co in range(co0, co0 + cnt):
                if tmp != NULL:
                    plane_conv(pg, xg, g.cin_g, plane_in, w + co * g.kg,
                               bias + co if bias != NULL else NULL, tmp)
                    plane_stream_copy(y + (img * g.c_out + co) * g.p, tmp, g.p)
                else:
                    plane_conv(pg, xg, g.cin_g, plane_in, w + co * g.kg,
                               bias + co if bias != NULL else NULL, y + (img * g.c_out + co) * g.p)
    else:
        for c in range(g.cin_g):
            plane_pad(pg, xg + c * plane_in, xp + c * pe, gp.w)
        for co in range(co0, co0 + cnt):
            plane_conv(gp, xp, g.cin_g, pe, w + co * g.kg,
                       bias + co if bias != NULL else NULL, y + (img * g.c_out + co) * g.p)


cdef int direct_forward_impl(const ConvGeom *g, const floating *x, const floating *w,
                             const floating *bias, floating *y, int nthreads) noexcept nogil:
    """Items are (image, output channel) planes, each summing its group's input channels, or
    (image, four output channels of a group) where the active level has the kernel that
    computes four planes from one pass over their input (fnn_plane_conv4). Where the kernel
    reads padding, the weights are all finite and the active level's kernel does not read
    padding itself, the item first copies its input planes zero-padded (padding * weight is
    then an exact 0), so the C kernel never meets an edge; Inf/NaN weights take the
    edge-aware kernel directly. One thread runs the items outside OpenMP: a team of one
    still pays futex system calls at the region's end (two per call, measured with strace)."""
    cdef fnn_plane_geom pg = plane_geom(g)
    cdef fnn_plane_geom gp = fnn_plane_padded_geom(&pg)
    # four planes per item where that leaves an item for every thread
    cdef fnn_int per = 4 if (fnn_plane_reads_padding_itself(&pg) and g.cout_g >= 4
                             and g.n * g.groups * ceil_div(g.cout_g, 4) >= nthreads) else 1
    cdef fnn_int nq = ceil_div(g.cout_g, per)
    cdef fnn_int items = g.n * g.groups * nq, item, pe = 0
    cdef int team = <int>min(<fnn_int>nthreads, items)
    cdef bint pad = (plane_reads_padding(&pg)
                     and (not reads_padding_itself(&pg) or fnn_plane_conv_prefers_padded(&pg) != 0)
                     and all_finite(w, g.c_out * g.kg))
    cdef bint stream = not pad and per == 1 and g.n * g.c_out * g.p * sizeof(floating) >= STREAM_MIN_BYTES
    cdef floating *xp = NULL
    cdef floating *tmp = NULL
    cdef floating *scratch
    cdef int failed = 0
    cdef int *failed_p = &failed
    if pad:
        pe = padded_elems(&pg, sizeof(floating))
    if team <= 1:
        _note_serial()
        if pad or stream:
            scratch = <floating *>fnn_thread_scratch(FNN_SCRATCH_OWN, (g.cin_g * pe if pad else g.p) * sizeof(floating))
            if scratch == NULL:
                return -1
            if pad:
                xp = scratch
            else:
                tmp = scratch
        for item in range(items):
            direct_forward_item(g, &pg, &gp, per, nq, pe, x, w, bias, y, xp, tmp, item)
        return 0
    with parallel(num_threads=team):
        _note_team()
        scratch = NULL
        if pad or stream:
            scratch = <floating *>fnn_thread_scratch(FNN_SCRATCH_OWN, (g.cin_g * pe if pad else g.p) * sizeof(floating))
            if scratch == NULL:
                failed_p[0] = 1
        xp = scratch if pad else NULL
        tmp = scratch if stream else NULL
        for item in prange(items, schedule='static'):
            if not (pad or stream) or scratch != NULL:
                direct_forward_item(g, &pg, &gp, per, nq, pe, x, w, bias, y, xp, tmp, item)
    return -1 if failed else 0


cdef inline void direct_grad_input_item(const ConvGeom *g, const fnn_plane_geom *pg,
                                        const fnn_plane_geom *fg, const fnn_plane_geom *gp,
                                        bint gather, fnn_int pe, const floating *dy,
                                        const floating *w, const floating *wflip, floating *dx,
                                        floating *xp, fnn_int item) noexcept nogil:
    """Item `item` of direct_grad_input_impl; xp: this thread's padded planes, NULL for none."""
    cdef fnn_int taps = g.kh * g.kw, plane_in = g.h * g.w
    cdef fnn_int img = item // g.c_in
    cdef fnn_int ci = item - img * g.c_in
    cdef fnn_int grp = ci // g.cin_g
    cdef fnn_int j, co
    if xp != NULL:
        for j in range(g.cout_g):
            plane_pad(fg, dy + (img * g.c_out + grp * g.cout_g + j) * g.p, xp + j * pe, gp.w)
        plane_conv(gp, xp, g.cout_g, pe, wflip + ci * g.cout_g * taps, NULL, dx + item * plane_in)
    elif gather:
        plane_conv(fg, dy + (img * g.c_out + grp * g.cout_g) * g.p, g.cout_g, g.p,
                   wflip + ci * g.cout_g * taps, NULL, dx + item * plane_in)
    elif g.cin_g == 1 and fnn_plane_dw_reads_padding_itself(pg):
        # strided, one input channel per group (ci == grp): its output channels' planes
        # gathered at once, every dX element written once from registers
        plane_grad_input_gather(pg, dy + (img * g.c_out + ci * g.cout_g) * g.p, g.cout_g, g.p,
                                w + ci * g.cout_g * taps, dx + item * plane_in)
    else:
        memset(dx + item * plane_in, 0, plane_in * sizeof(floating))
        for j in range(g.cout_g):
            co = ci * g.cout_g + j
            plane_grad_input(pg, dy + (img * g.c_out + co) * g.p, w + co * taps, dx + item * plane_in)


cdef int direct_grad_input_impl(const ConvGeom *g, const floating *dy, const floating *w,
                                floating *dx, int nthreads) noexcept nogil:
    """Items are (image, input channel) planes of dx, each summing its group's output channels
    in order. Stride 1 gathers (a convolution of the group's dY planes with flipped kernels,
    every dX element written once from registers; the planes zero-padded first when the
    weights are all finite and the kernel does not read padding itself, as in the forward);
    other strides (C_in / groups == 1 only) gather too where the general kernels (AVX-512,
    AVX2) apply (fnn_plane_grad_input_gather), and elsewhere scatter-add plane by plane. One
    thread runs the items outside OpenMP, as in direct_forward_impl."""
    cdef fnn_plane_geom pg = plane_geom(g)
    cdef fnn_plane_geom fg = flipped_geom(g)
    cdef fnn_plane_geom gp = fnn_plane_padded_geom(&fg)
    cdef fnn_int taps = g.kh * g.kw
    cdef fnn_int items = g.n * g.c_in, item, ci, j, co, t, pe = 0, grp
    cdef int team = <int>min(<fnn_int>nthreads, items)
    cdef bint gather = g.sh == 1 and g.sw == 1
    cdef bint pad = (gather and plane_reads_padding(&fg)
                     and (not reads_padding_itself(&fg) or fnn_plane_conv_prefers_padded(&fg) != 0)
                     and all_finite(w, g.c_out * g.kg))
    cdef floating *wflip = NULL
    cdef floating *xp = NULL
    cdef int failed = 0
    cdef int *failed_p = &failed
    if gather:
        # wflip[(ci*cout_g + j)*taps + t]: output channel j of ci's group, its kernel for ci
        # flipped, so each dX plane's kernels are contiguous
        wflip = <floating *>fnn_thread_scratch(FNN_SCRATCH_SHARED, g.c_out * g.kg * sizeof(floating))
        if wflip == NULL:
            return -1
        for ci in range(g.c_in):
            grp = ci // g.cin_g
            for j in range(g.cout_g):
                co = grp * g.cout_g + j
                for t in range(taps):
                    wflip[(ci * g.cout_g + j) * taps + t] = w[(co * g.cin_g + ci - grp * g.cin_g) * taps + taps - 1 - t]
    if pad:
        pe = padded_elems(&fg, sizeof(floating))
    if team <= 1:
        _note_serial()
        if pad:
            xp = <floating *>fnn_thread_scratch(FNN_SCRATCH_OWN, g.cout_g * pe * sizeof(floating))
            if xp == NULL:
                return -1
        for item in range(items):
            direct_grad_input_item(g, &pg, &fg, &gp, gather, pe, dy, w, wflip, dx, xp, item)
        return 0
    with parallel(num_threads=team):
        _note_team()
        if pad:
            xp = <floating *>fnn_thread_scratch(FNN_SCRATCH_OWN, g.cout_g * pe * sizeof(floating))
            if xp == NULL:
                failed_p[0] = 1
        for item in prange(items, schedule='static'):
            if not pad or xp != NULL:
                direct_grad_input_item(g, &pg, &fg, &gp, gather, pe, dy, w, wflip, dx, xp, item)
    return -1 if failed else 0


cdef inline void sum_lanes(const floating *lanes, fnn_int taps, fnn_int lane_stride, fnn_int w_out,
                           floating *dw) noexcept nogil:
    """dw[t] = lanes[t*lane_stride + 0] + ... + lanes[t*lane_stride + w_out-1], in that order:
    the last step of every direct weight gradient (a fixed order whatever the threads)."""
    cdef fnn_int t, ow
    cdef floating s
    for t in range(taps):
        s = 0
        for ow in range(w_out):
            s = s + lanes[t * lane_stride + ow]
        dw[t] = s


# Output channels per work item of the stride-1 weight gradient: they share their input
# channel's padded plane, copied once per image for all of them.
cdef fnn_int WIDE_CHANNELS_PER_ITEM = 8


cdef inline void grad_weight_wide_item(const ConvGeom *g, const fnn_plane_geom *pg,
                                       const fnn_plane_geom *gp, const fnn_plane_geom *rows_geom,
                                       bint unpadded, fnn_int per_item, fnn_int blocks,
                                       const floating *dy, const floating *x, floating *dw,
                                       floating *db, double *bsums, fnn_int item) noexcept nogil:
    """Item `item` of direct_grad_weight_wide; bsums: this thread's scratch (see there)."""
    cdef fnn_int vl = FNN_PLANE_VECTOR_BYTES // sizeof(floating)
    cdef fnn_int slack = FNN_PLANE_SLACK_BYTES // sizeof(floating)
    cdef fnn_int wc = round_up(g.w_out, vl)
    cdef fnn_int xs = wc + (g.kw - 1) * g.dw
    cdef fnn_int x_elems = gp.h * xs + slack, dy_elems = g.h_out * wc + slack
    cdef fnn_int taps = g.kh * g.kw, plane_in = g.h * g.w, lane_elems = taps * wc
    cdef fnn_int dy_total = g.n * g.c_out * g.p
    cdef floating *xp = <floating *>(bsums + WIDE_CHANNELS_PER_ITEM)
    cdef floating *dyp = xp + x_elems
    cdef floating *lanes = dyp + dy_elems
    cdef fnn_int c = item % g.cin_g  # the input channel within the group
    cdef fnn_int grp = item // (blocks * g.cin_g)
    cdef fnn_int co0 = grp * g.cout_g + (item // g.cin_g - grp * blocks) * per_item
    cdef fnn_int co_end = min(co0 + per_item, (grp + 1) * g.cout_g)
    cdef fnn_int co, img, at
    cdef const floating *xc
    cdef floating *lane_co
    cdef floating s
    memset(lanes, 0, (co_end - co0) * lane_elems * sizeof(floating))
    memset(bsums, 0, WIDE_CHANNELS_PER_ITEM * sizeof(double))
    for img in range(g.n):
        xc = x + (img * g.c_in + grp * g.cin_g + c) * plane_in
        if img + 1 < g.n:  # the item's planes in the next image, megabytes away
            fnn_prefetch_l2(xc + g.c_in * plane_in, plane_in * sizeof(floating))
            fnn_prefetch_l2(dy + ((img + 1) * g.c_out + co0) * g.p, (co_end - co0) * g.p * sizeof(floating))
        if not unpadded:
            plane_pad(pg, xc, xp, xs)
        for co in range(co0, co_end):
            at = (img * g.c_out + co) * g.p
            lane_co = lanes + (co - co0) * lane_elems
            # The wide kernel reads whole vectors: up to wc - w_out elements past the
            # plane's last row, and those columns' lanes are never summed. That is
            # inside the array but for the last plane, which is copied first.
            if unpadded:
                plane_grad_weight_unpadded(pg, dy + at, xc, lane_co)
            elif at + g.p + wc - g.w_out <= dy_total:
                plane_grad_weight_wide(gp, dy + at, g.w_out, xp, xs, lane_co)
            else:
                plane_pad(rows_geom, dy + at, dyp, wc)
                plane_grad_weight_wide(gp, dyp, wc, xp, xs, lane_co)
            if db != NULL and c == 0:
                bsums[co - co0] = bsums[co - co0] + plane_sum(dy + at, g.p)
    for co in range(co0, co_end):
        if db != NULL and c == 0:
            db[co] = <floating>bsums[co - co0]
        sum_lanes(lanes + (co - co0) * lane_elems, taps, wc, g.w_out, dw + (co * g.cin_g + c) * taps)


cdef int direct_grad_weight_wide(const ConvGeom *g, const floating *dy, const floating *x,
                                 floating *dw, floating *db, int nthreads) noexcept nogil:
    """The stride-1 weight gradient, for all-finite dY: items are up to WIDE_CHANNELS_PER_ITEM
    output channels of one group with one of its input channels; per image, the input plane
    is zero-padded once into rows of whole vectors (unless the kernel reads padding itself)
    and each output channel's lanes (one per tap and output column, summed down the rows of
    every image in order) gather in registers (fnn_plane_grad_weight_wide / _unpadded).
    The lanes are then added across the columns in order: the same sums as the edge-aware
    kernel's, whatever the thread count. db (may be NULL) gets the bias gradient from the
    dY planes while they are in cache, summed as channel_sums_impl sums them. One thread
    runs the items outside OpenMP, as in direct_forward_impl."""
    cdef fnn_plane_geom pg = plane_geom(g)
    cdef fnn_plane_geom gp = fnn_plane_padded_geom(&pg)
    cdef fnn_plane_geom rows_geom   # dY plane copied as it is, its rows widened to wc
    cdef fnn_int vl = FNN_PLANE_VECTOR_BYTES // sizeof(floating)
    cdef fnn_int slack = FNN_PLANE_SLACK_BYTES // sizeof(floating)
    cdef fnn_int wc = round_up(g.w_out, vl)
    cdef fnn_int xs = wc + (g.kw - 1) * g.dw
    cdef fnn_int x_elems = gp.h * xs + slack, dy_elems = g.h_out * wc + slack
    cdef fnn_int lane_elems = g.kh * g.kw * wc
    cdef fnn_int per_item = min(g.cout_g, WIDE_CHANNELS_PER_ITEM)
    cdef fnn_int blocks = ceil_div(g.cout_g, per_item)
    cdef fnn_int items = g.groups * blocks * g.cin_g, item
    # WIDE_CHANNELS_PER_ITEM bias sums (64 bytes), then the planes and lanes
    cdef size_t scratch_bytes = 64 + (x_elems + dy_elems + per_item * lane_elems) * sizeof(floating)
    cdef double *bsums
    cdef int failed = 0
    cdef int *failed_p = &failed
    cdef int team = <int>min(<fnn_int>nthreads, items)
    cdef bint unpadded = reads_padding_itself(&pg)
    rows_geom.h = rows_geom.h_out = g.h_out
    rows_geom.w = rows_geom.w_out = g.w_out
    rows_geom.kh = rows_geom.kw = rows_geom.sh = rows_geom.sw = rows_geom.dh = rows_geom.dw = 1
    rows_geom.pt = rows_geom.pl = 0
    if team <= 1:
        _note_serial()
        bsums = <double *>fnn_thread_scratch(FNN_SCRATCH_OWN, scratch_bytes)
        if bsums == NULL:
            return -1
        for item in range(items):
            grad_weight_wide_item(g, &pg, &gp, &rows_geom, unpadded, per_item, blocks, dy, x, dw, db,
                                  bsums, item)
        return 0
    with parallel(num_threads=team):
        _note_team()
        bsums = <double *>fnn_thread_scratch(FNN_SCRATCH_OWN, scratch_bytes)
        if bsums == NULL:
            failed_p[0] = 1
        for item in prange(items, schedule='static'):
            if bsums != NULL:
                grad_weight_wide_item(g, &pg, &gp, &rows_geom, unpadded, per_item, blocks, dy, x, dw,
                                      db, bsums, item)
    return -1 if failed else 0


cdef int direct_grad_weight_impl(const ConvGeom *g, const floating *dy, const floating *x,
                                 floating *dw, floating *db, bint finite_dy, int nthreads) noexcept nogil:
    """Items are output channels. Each keeps one lane per (tap, output column) summed down
    the rows of every image in order, then adds its lanes across the columns in order: the
    result does not depend on the thread count. x planes are zero-padded first when dY is
    all finite (as in the forward; finite_dy: whether it is, which the caller has checked).
    Groups of more than one input channel come here only
    as small_direct convolutions with all-finite dY, which the wide form takes."""
    cdef fnn_plane_geom pg = plane_geom(g)
    cdef fnn_plane_geom gp
    cdef fnn_int taps = g.kh * g.kw, plane_in = g.h * g.w
    cdef fnn_int co, img, t, ow, lane_elems = taps * g.w_out
    cdef floating *lanes
    cdef floating *xp
    cdef int failed = 0
    cdef int *failed_p = &failed
    cdef int team = <int>min(<fnn_int>nthreads, g.c_out)
    cdef bint pad = plane_reads_padding(&pg) and finite_dy
    cdef fnn_int pe = padded_elems(&pg, sizeof(floating)) if pad else 0
    if finite_dy and (g.sw == 1 or fnn_plane_dw_reads_padding_itself(&pg)):
        return direct_grad_weight_wide(g, dy, x, dw, db, nthreads)
    if db != NULL:
        channel_sums_impl(dy, g.n, g.c_out, g.p, db, nthreads)
    gp = fnn_plane_padded_geom(&pg)
    with parallel(num_threads=max(team, 1)):
        _note_team()
        lanes = <floating *>fnn_thread_scratch(FNN_SCRATCH_OWN, (round_up(lane_elems, 16) + pe) * sizeof(floating))
        if lanes == NULL:
            failed_p[0] = 1
        xp = lanes + round_up(lane_elems, 16)
        for co in prange(g.c_out, schedule='static'):
            if lanes != NULL:
                memset(lanes, 0, lane_elems * sizeof(floating))
                for img in range(g.n):
                    if pad:
                        plane_pad(&pg, x + (img * g.c_in + co // g.cout_g) * plane_in, xp, gp.w)
                        plane_grad_weight_lanes(&gp, dy + (img * g.c_out + co) * g.p, xp, lanes)
                    else:
                        plane_grad_weight_lanes(&pg, dy + (img * g.c_out + co) * g.p,
                                                x + (img * g.c_in + co // g.cout_g) * plane_in, lanes)
                sum_lanes(lanes, taps, g.w_out, g.w_out, dw + co * taps)
    return -1 if failed else 0


cdef int depthwise_backward_impl(const ConvGeom *g, const floating *dy, const floating *x,
                                 const floating *w, floating *dx, floating *dw, floating *db,
                                 int nthreads) noexcept nogil:
    """All three gradients of a depthwise convolution (one input and one output channel per
    group) in one pass over dY: items are blocks of channels (one channel on large planes),
    image by image, and per image each channel's dY plane, once in cache, gives its dX plane
    (the flipped-kernel convolution), its weight-gradient lanes and its bias sum. The
    separate passes would each read dY from memory. The sums are theirs, in the same order.
    Only where reads_padding_itself (any stride the general AVX-512 and AVX2 kernels take: dX
    is then gathered, fnn_plane_grad_input_gather), and for all-finite dY, which each
    plane's bias sum tells (a double sum of floats is finite exactly when they
    all are; of doubles it may overflow, which only costs the fallback): returns 1, with the
    outputs garbage, where some plane is not, and the caller takes the separate passes."""
    cdef fnn_plane_geom pg = plane_geom(g)
    cdef fnn_plane_geom fg = flipped_geom(g)
    cdef fnn_int vl = FNN_PLANE_VECTOR_BYTES // sizeof(floating)
    cdef fnn_int wc = round_up(g.w_out, vl)
    cdef fnn_int taps = g.kh * g.kw, plane_in = g.h * g.w, lane_elems = taps * wc
    cdef fnn_int tr = round_up(taps, vl)
    cdef fnn_int c, img, t, at, xat, blk, c0, c1, cb, n_blk
    cdef char *scratch
    cdef double *bsums
    cdef floating *wflips
    cdef floating *wflip
    cdef floating *lane_all
    cdef floating *lanes
    cdef double plane_total
    cdef floating *tmp
    cdef bint stream = g.n * g.c_in * plane_in * sizeof(floating) >= STREAM_MIN_BYTES
    cdef int failed = 0, nonfinite = 0
    cdef int *failed_p = &failed
    cdef int *nonfinite_p = &nonfinite
    cdef int team = <int>min(<fnn_int>nthreads, g.c_out)
    cdef size_t head
    # Channels per item: enough that one image's planes of the item are a few KB in a row
    # (small planes, one channel at a time, jump megabytes from image to image at every
    # plane, and run at memory latency), while every thread gets items. Each channel's sums
    # are the same for any block size.
    cb = max(<fnn_int>1, min(<fnn_int>64, 4096 // (g.p * <fnn_int>sizeof(floating))))
    while cb > 1 and ceil_div(g.c_out, cb) < 4 * team:
        cb = cb // 2
    n_blk = ceil_div(g.c_out, cb)
    head = <size_t>round_up(cb * <fnn_int>sizeof(double), 64)
    with parallel(num_threads=max(team, 1)):
        _note_team()
        # per channel of the item: its bias sum (double), its flipped kernel (taps, rounded
        # to a vector) and its lanes; then a dX plane to stream out from (see STREAM_MIN_BYTES)
        scratch = <char *>fnn_thread_scratch(
            FNN_SCRATCH_OWN, head + (cb * (tr + lane_elems) + plane_in) * sizeof(floating))
        if scratch == NULL:
            failed_p[0] = 1
        bsums = <double *>scratch
        wflips = <floating *>(scratch + head)
        lane_all = wflips + cb * tr
        tmp = lane_all + cb * lane_elems
        for blk in prange(n_blk, schedule='static'):
            if scratch == NULL:
                continue
            c0 = blk * cb
            c1 = min(g.c_out, c0 + cb)
            for c in range(c0, c1):
                for t in range(taps):
                    wflips[(c - c0) * tr + t] = w[c * taps + taps - 1 - t]
                bsums[c - c0] = 0
            memset(lane_all, 0, (c1 - c0) * lane_elems * sizeof(floating))
            for img in range(g.n):
                if img + 1 < g.n:  # the item's planes in the next image, megabytes away
                    fnn_prefetch_l2(dy + ((img + 1) * g.c_out + c0) * g.p, (c1 - c0) * g.p * sizeof(floating))
                    fnn_prefetch_l2(x + ((img + 1) * g.c_in + c0) * plane_in, (c1 - c0) * plane_in * sizeof(floating))
                for c in range(c0, c1):
                    at = (img * g.c_out + c) * g.p
                    xat = (img * g.c_in + c) * plane_in
                    wflip = wflips + (c - c0) * tr
                    lanes = lane_all + (c - c0) * lane_elems
                    if g.sh != 1 or g.sw != 1:
                        plane_grad_input_gather(&pg, dy + at, 1, g.p, w + c * taps, tmp if stream else dx + xat)
                    elif stream:
                        plane_conv(&fg, dy + at, 1, g.p, wflip, NULL, tmp)
                    else:
                        plane_conv(&fg, dy + at, 1, g.p, wflip, NULL, dx + xat)
                    if stream:
                        plane_stream_copy(dx + xat, tmp, plane_in)
                    plane_grad_weight_unpadded(&pg, dy + at, x + xat, lanes)
                    plane_total = plane_sum(dy + at, g.p)
                    if plane_total - plane_total != 0:  # Inf or NaN
                        nonfinite_p[0] = 1
                    bsums[c - c0] = bsums[c - c0] + plane_total
            for c in range(c0, c1):
                if db != NULL:
                    db[c] = <floating>bsums[c - c0]
                sum_lanes(lane_all + (c - c0) * lane_elems, taps, wc, g.w_out, dw + c * taps)
    return -1 if failed else nonfinite


def conv2d_backward_depthwise(cnp.ndarray dy, cnp.ndarray x, cnp.ndarray w, cnp.ndarray dx,
                              cnp.ndarray dw, cnp.ndarray db, tuple stride, tuple pad, tuple dil,
                              fnn_int groups, int num_threads):
    """dx, dw and db (db may be None) of a depthwise convolution in one pass, where
    depthwise_backward_impl applies; returns False, computing nothing, elsewhere."""
    cdef ConvGeom g = make_geom(x.shape, w.shape, stride, pad, dil, groups, dy.shape)
    cdef fnn_plane_geom pg = plane_geom(&g)
    cdef bint is_f32 = cnp.PyArray_TYPE(dy) == cnp.NPY_FLOAT32
    cdef int rc
    if not (g.cin_g == 1 and g.cout_g == 1 and reads_padding_itself(&pg)):
        return False
    with nogil:
        if is_f32:
            rc = depthwise_backward_impl(&g, <float *>dy.data, <float *>x.data, <float *>w.data,
                                         <float *>dx.data, <float *>dw.data,
                                         <float *>db.data if db is not None else NULL, num_threads)
        else:
            rc = depthwise_backward_impl(&g, <double *>dy.data, <double *>x.data, <double *>w.data,
                                         <double *>dx.data, <double *>dw.data,
                                         <double *>db.data if db is not None else NULL, num_threads)
    if rc < 0:
        raise MemoryError("fastnn.conv2d_backward: could not allocate scratch buffers")
    return rc == 0

