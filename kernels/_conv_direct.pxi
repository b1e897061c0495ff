# Direct convolution for output channels that each read one input channel (C_in / groups == 1:
# depthwise, and 1-channel inputs), where the reduction is only kH*kW long: whole planes go to
# the C kernels in kernels/c/fnn_direct.c, one plane per work item.

cdef inline fnn_plane_geom plane_geom(const ConvGeom *g) noexcept nogil:
    cdef fnn_plane_geom pg
    pg.h = g.h; pg.w = g.w; pg.h_out = g.h_out; pg.w_out = g.w_out
    pg.kh = g.kh; pg.kw = g.kw; pg.sh = g.sh; pg.sw = g.sw
    pg.pt = g.pt; pg.pl = g.pl; pg.dh = g.dh; pg.dw = g.dw
    return pg


cdef inline void plane_forward(const fnn_plane_geom *pg, const floating *x, const floating *wt,
                               floating bias, floating *y) noexcept nogil:
    if floating is float:
        fnn_plane_forward_f32(pg, x, wt, bias, y)
    else:
        fnn_plane_forward_f64(pg, x, wt, bias, y)


cdef inline void plane_grad_input(const fnn_plane_geom *pg, const floating *dy, const floating *wt,
                                  floating *dx) noexcept nogil:
    if floating is float:
        fnn_plane_grad_input_f32(pg, dy, wt, dx)
    else:
        fnn_plane_grad_input_f64(pg, dy, wt, dx)


cdef inline void plane_grad_weight(const fnn_plane_geom *pg, const floating *dy, const floating *x,
                                   floating *dwt, floating *lanes) noexcept nogil:
    if floating is float:
        fnn_plane_grad_weight_f32(pg, dy, x, dwt, lanes)
    else:
        fnn_plane_grad_weight_f64(pg, dy, x, dwt, lanes)


cdef int direct_forward_impl(const ConvGeom *g, const floating *x, const floating *w,
                             const floating *bias, floating *y, int nthreads) noexcept nogil:
    """Items are (image, output channel) planes; output channel co reads input channel co // (C_out/groups)."""
    cdef fnn_plane_geom pg = plane_geom(g)
    cdef fnn_int taps = g.kh * g.kw, plane_in = g.h * g.w
    cdef fnn_int items = g.n * g.c_out, item, img, co
    cdef int team = <int>min(<fnn_int>nthreads, items)
    with parallel(num_threads=max(team, 1)):
        _note_team()
        for item in prange(items, schedule='static'):
            img = item // g.c_out
            co = item - img * g.c_out
            plane_forward(&pg, x + (img * g.c_in + co // g.cout_g) * plane_in, w + co * taps,
                          bias[co] if bias != NULL else 0, y + item * g.p)
    return 0


cdef int direct_grad_input_impl(const ConvGeom *g, const floating *dy, const floating *w,
                                floating *dx, int nthreads) noexcept nogil:
    """Items are (image, input channel) planes of dx, each summing its output channels in order."""
    cdef fnn_plane_geom pg = plane_geom(g)
    cdef fnn_int taps = g.kh * g.kw, plane_in = g.h * g.w
    cdef fnn_int items = g.n * g.c_in, item, img, ci, j, co
    cdef int team = <int>min(<fnn_int>nthreads, items)
    with parallel(num_threads=max(team, 1)):
        _note_team()
        for item in prange(items, schedule='static'):
            img = item // g.c_in
            ci = item - img * g.c_in
            memset(dx + item * plane_in, 0, plane_in * sizeof(floating))
            for j in range(g.cout_g):
                co = ci * g.cout_g + j
                plane_grad_input(&pg, dy + (img * g.c_out + co) * g.p, w + co * taps, dx + item * plane_in)
    return 0


cdef int direct_grad_weight_impl(const ConvGeom *g, const floating *dy, const floating *x,
                                 floating *dw, int nthreads) noexcept nogil:
    """Items are output channels; each sums over the images in order, so the result does not
    depend on the thread count."""
    cdef fnn_plane_geom pg = plane_geom(g)
    cdef fnn_int taps = g.kh * g.kw, plane_in = g.h * g.w
    cdef fnn_int co, img, t
    cdef floating *lanes
    cdef int failed = 0
    cdef int *failed_p = &failed
    cdef int team = <int>min(<fnn_int>nthreads, g.c_out)
    with parallel(num_threads=max(team, 1)):
        _note_team()
        lanes = <floating *>fnn_thread_scratch(FNN_SCRATCH_OWN, taps * g.w_out * sizeof(floating) + 64)
        if lanes == NULL:
            failed_p[0] = 1
        for co in prange(g.c_out, schedule='static'):
            if lanes != NULL:
                for t in range(taps):
                    dw[co * taps + t] = 0
                for img in range(g.n):
                    plane_grad_weight(&pg, dy + (img * g.c_out + co) * g.p,
                                      x + (img * g.c_in + co // g.cout_g) * plane_in, dw + co * taps, lanes)
    return -1 if failed else 0
