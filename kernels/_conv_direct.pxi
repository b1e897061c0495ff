# Direct convolution for output channels that each read one input channel (C_in / groups == 1:
# depthwise, and 1-channel inputs), where the reduction is only kH*kW long: whole planes go to
# the C kernels in kernels/c/fnn_direct.c, one plane per work item.

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


cdef inline void plane_pad(const fnn_plane_geom *pg, const floating *x, floating *xp) noexcept nogil:
    if floating is float:
        fnn_plane_pad_f32(pg, x, xp)
    else:
        fnn_plane_pad_f64(pg, x, xp)


cdef inline bint plane_reads_padding(const fnn_plane_geom *pg) noexcept nogil:
    return (pg.pt > 0 or pg.pl > 0
            or (pg.h_out - 1) * pg.sh - pg.pt + (pg.kh - 1) * pg.dh >= pg.h
            or (pg.w_out - 1) * pg.sw - pg.pl + (pg.kw - 1) * pg.dw >= pg.w)


cdef inline fnn_int padded_elems(const fnn_plane_geom *pg) noexcept nogil:
    """Elements of one plane padded by plane_pad."""
    cdef fnn_plane_geom gp = fnn_plane_padded_geom(pg)
    return gp.h * gp.w


cdef int direct_forward_impl(const ConvGeom *g, const floating *x, const floating *w,
                             const floating *bias, floating *y, int nthreads) noexcept nogil:
    """Items are (image, input channel): output channels ci*C_out/groups.. each read input
    channel ci. Where the kernel reads padding and the weights are all finite, the item
    first copies its input plane zero-padded (padding * weight is then an exact 0), so the
    C kernel never meets an edge; Inf/NaN weights take the edge-aware kernel directly."""
    cdef fnn_plane_geom pg = plane_geom(g)
    cdef fnn_plane_geom gp
    cdef fnn_int taps = g.kh * g.kw, plane_in = g.h * g.w
    cdef fnn_int items = g.n * g.c_in, item, img, ci, j, co
    cdef int team = <int>min(<fnn_int>nthreads, items)
    cdef bint pad = plane_reads_padding(&pg) and all_finite(w, g.c_out * taps)
    cdef floating *xp = NULL
    cdef int failed = 0
    cdef int *failed_p = &failed
    gp = fnn_plane_padded_geom(&pg)
    with parallel(num_threads=max(team, 1)):
        _note_team()
        if pad:
            xp = <floating *>fnn_thread_scratch(FNN_SCRATCH_OWN, padded_elems(&pg) * sizeof(floating))
            if xp == NULL:
                failed_p[0] = 1
        for item in prange(items, schedule='static'):
            img = item // g.c_in
            ci = item - img * g.c_in
            if not pad:
                for j in range(g.cout_g):
                    co = ci * g.cout_g + j
                    plane_conv(&pg, x + item * plane_in, 1, 0, w + co * taps,
                               bias + co if bias != NULL else NULL, y + (img * g.c_out + co) * g.p)
            elif xp != NULL:
                plane_pad(&pg, x + item * plane_in, xp)
                for j in range(g.cout_g):
                    co = ci * g.cout_g + j
                    plane_conv(&gp, xp, 1, 0, w + co * taps,
                               bias + co if bias != NULL else NULL, y + (img * g.c_out + co) * g.p)
    return -1 if failed else 0


cdef int direct_grad_input_impl(const ConvGeom *g, const floating *dy, const floating *w,
                                floating *dx, int nthreads) noexcept nogil:
    """Items are (image, input channel) planes of dx, each summing its output channels in order.
    Stride 1 gathers (a convolution of the group's dY planes with flipped kernels, every dX
    element written once from registers; the planes zero-padded first when the weights are
    all finite, as in the forward); other strides scatter-add plane by plane."""
    cdef fnn_plane_geom pg = plane_geom(g)
    cdef fnn_plane_geom fg = flipped_geom(g)
    cdef fnn_plane_geom gp
    cdef fnn_int taps = g.kh * g.kw, plane_in = g.h * g.w
    cdef fnn_int items = g.n * g.c_in, item, img, ci, j, co, t, pe = 0
    cdef int team = <int>min(<fnn_int>nthreads, items)
    cdef bint gather = g.sh == 1 and g.sw == 1
    cdef bint pad = gather and plane_reads_padding(&fg) and all_finite(w, g.c_out * taps)
    cdef floating *wflip = NULL
    cdef floating *xp = NULL
    cdef int failed = 0
    cdef int *failed_p = &failed
    if gather:
        wflip = <floating *>fnn_thread_scratch(FNN_SCRATCH_SHARED, g.c_out * taps * sizeof(floating))
        if wflip == NULL:
            return -1
        for co in range(g.c_out):
            for t in range(taps):
                wflip[co * taps + t] = w[co * taps + taps - 1 - t]
    gp = fnn_plane_padded_geom(&fg)
    if pad:
        pe = padded_elems(&fg)
    with parallel(num_threads=max(team, 1)):
        _note_team()
        if pad:
            xp = <floating *>fnn_thread_scratch(FNN_SCRATCH_OWN, g.cout_g * pe * sizeof(floating))
            if xp == NULL:
                failed_p[0] = 1
        for item in prange(items, schedule='static'):
            img = item // g.c_in
            ci = item - img * g.c_in
            if pad:
                if xp != NULL:
                    for j in range(g.cout_g):
                        plane_pad(&fg, dy + (img * g.c_out + ci * g.cout_g + j) * g.p, xp + j * pe)
                    plane_conv(&gp, xp, g.cout_g, pe, wflip + ci * g.cout_g * taps, NULL, dx + item * plane_in)
            elif gather:
                plane_conv(&fg, dy + (img * g.c_out + ci * g.cout_g) * g.p, g.cout_g, g.p,
                           wflip + ci * g.cout_g * taps, NULL, dx + item * plane_in)
            else:
                memset(dx + item * plane_in, 0, plane_in * sizeof(floating))
                for j in range(g.cout_g):
                    co = ci * g.cout_g + j
                    plane_grad_input(&pg, dy + (img * g.c_out + co) * g.p, w + co * taps, dx + item * plane_in)
    return -1 if failed else 0


cdef int direct_grad_weight_impl(const ConvGeom *g, const floating *dy, const floating *x,
                                 floating *dw, int nthreads) noexcept nogil:
    """Items are output channels. Each keeps one lane per (tap, output column) summed down
    the rows of every image in order, then adds its lanes across the columns in order: the
    result does not depend on the thread count. x planes are zero-padded first when dY is
    all finite (as in the forward)."""
    cdef fnn_plane_geom pg = plane_geom(g)
    cdef fnn_plane_geom gp
    cdef fnn_int taps = g.kh * g.kw, plane_in = g.h * g.w
    cdef fnn_int co, img, t, ow, lane_elems = taps * g.w_out
    cdef floating *lanes
    cdef floating *xp
    cdef floating s
    cdef int failed = 0
    cdef int *failed_p = &failed
    cdef int team = <int>min(<fnn_int>nthreads, g.c_out)
    cdef bint pad = plane_reads_padding(&pg) and all_finite(dy, g.n * g.c_out * g.p)
    cdef fnn_int pe = padded_elems(&pg) if pad else 0
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
                        plane_pad(&pg, x + (img * g.c_in + co // g.cout_g) * plane_in, xp)
                        plane_grad_weight_lanes(&gp, dy + (img * g.c_out + co) * g.p, xp, lanes)
                    else:
                        plane_grad_weight_lanes(&pg, dy + (img * g.c_out + co) * g.p,
                                                x + (img * g.c_in + co // g.cout_g) * plane_in, lanes)
                for t in range(taps):
                    s = 0
                    for ow in range(g.w_out):
                        s = s + lanes[t * g.w_out + ow]
                    dw[co * taps + t] = s
    return -1 if failed else 0
