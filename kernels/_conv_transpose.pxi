# conv_transpose2d's one step of its own: its forward runs as conv2d's input gradient
# (fastnn.conv_transpose), which has no bias, so the bias is added after, plane by plane.

cdef void channel_bias_impl(floating *y, const floating *bias, fnn_int n, fnn_int channels,
                            fnn_int plane, int nthreads) noexcept nogil:
    cdef fnn_int item, i
    cdef floating b
    cdef floating *row
    cdef int team = <int>min(<fnn_int>nthreads, n * channels)
    if team <= 1:
        _note_serial()
        for item in range(n * channels):
            b = bias[item % channels]
            row = y + item * plane
            for i in range(plane):
                row[i] = row[i] + b
        return
    with parallel(num_threads=team):
        _note_team()
        for item in prange(n * channels, schedule='static'):
            b = bias[item % channels]
            row = y + item * plane
            for i in range(plane):
                row[i] = row[i] + b


def add_channel_bias(cnp.ndarray y, cnp.ndarray bias, int num_threads):
    """y (N, C, H, W, C-contiguous) += bias (C,) per channel, in place; one dtype."""
    cdef fnn_int n = y.shape[0], channels = y.shape[1], plane = y.shape[2] * y.shape[3]
    if cnp.PyArray_TYPE(y) == cnp.NPY_FLOAT32:
        with nogil:
            channel_bias_impl(<float *>y.data, <float *>bias.data, n, channels, plane, num_threads)
    else:
        with nogil:
            channel_bias_impl(<double *>y.data, <double *>bias.data, n, channels, plane, num_threads)
    return y


def finite_array(cnp.ndarray a):
    """Whether every element of a (C-contiguous, float32 or float64) is finite: one pass, in C."""
    cdef fnn_int count = a.size
    cdef bint ok
    if cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT32:
        with nogil:
            ok = all_finite(<float *>a.data, count)
    else:
        with nogil:
            ok = all_finite(<double *>a.data, count)
    return ok


cdef void phase_weight_impl(const floating *w, floating *dst, fnn_int groups, fnn_int cin_g, fnn_int cout_g,
                            fnn_int kh, fnn_int kw, fnn_int i_last, fnn_int si, fnn_int j_last, fnn_int sj,
                            fnn_int tr, fnn_int tc) noexcept nogil:
    cdef fnn_int gi, c, o, a, b
    cdef const floating *src
    cdef floating *out
    for gi in range(groups):
        for c in range(cin_g):
            for o in range(cout_g):
                src = w + ((gi * cin_g + c) * cout_g + o) * kh * kw
                out = dst + ((gi * cout_g + o) * cin_g + c) * tr * tc
                for a in range(tr):
                    for b in range(tc):
                        out[a * tc + b] = src[(i_last - a * si) * kw + j_last - b * sj]


def phase_weight(cnp.ndarray w, cnp.ndarray out, fnn_int groups, fnn_int i_last, fnn_int si, fnn_int j_last,
                 fnn_int sj):
    """One output phase's conv2d weight from a transposed convolution's (fastnn.conv_transpose):
    out[g*Og + o, c, a, b] = w[g*Cg + c, o, i_last - a*si, j_last - b*sj], the phase's taps
    (every s-th, from its last) flipped, the channel axes swapped; w (C_in, Og, kH, kW) and out
    (groups*Og, Cg, Tr, Tc) C-contiguous, one dtype."""
    cdef fnn_int cin_g = w.shape[0] // groups, cout_g = w.shape[1], kh = w.shape[2], kw = w.shape[3]
    cdef fnn_int tr = out.shape[2], tc = out.shape[3]
    if cnp.PyArray_TYPE(w) == cnp.NPY_FLOAT32:
        with nogil:
            phase_weight_impl(<float *>w.data, <float *>out.data, groups, cin_g, cout_g, kh, kw,
                              i_last, si, j_last, sj, tr, tc)
    else:
        with nogil:
            phase_weight_impl(<double *>w.data, <double *>out.data, groups, cin_g, cout_g, kh, kw,
                              i_last, si, j_last, sj, tr, tc)
    return out


cdef void phase_store_impl(const floating *src, floating *y, fnn_int planes, fnn_int rows, fnn_int cols,
                           fnn_int h, fnn_int w, fnn_int r0, fnn_int sr, fnn_int c0, fnn_int sc,
                           int nthreads) noexcept nogil:
    cdef fnn_int plane, m, l
    cdef const floating *s
    cdef floating *d
    cdef int team = <int>min(<fnn_int>nthreads, planes)
    if team <= 1:
        _note_serial()
        for plane in range(planes):
            for m in range(rows):
                s = src + (plane * rows + m) * cols
                d = y + plane * h * w + (r0 + m * sr) * w + c0
                for l in range(cols):
                    d[l * sc] = s[l]
        return
    with parallel(num_threads=team):
        _note_team()
        for plane in prange(planes, schedule='static'):
            for m in range(rows):
                s = src + (plane * rows + m) * cols
                d = y + plane * h * w + (r0 + m * sr) * w + c0
                for l in range(cols):
                    d[l * sc] = s[l]


def phase_store(cnp.ndarray src, cnp.ndarray y, fnn_int r0, fnn_int sr, fnn_int c0, fnn_int sc, int num_threads):
    """y[:, :, r0::sr, c0::sc] = src (N, C, rows, cols): one output phase of a transposed
    convolution (fastnn.conv_transpose) into its place; both C-contiguous, one dtype."""
    cdef fnn_int planes = src.shape[0] * src.shape[1], rows = src.shape[2], cols = src.shape[3]
    cdef fnn_int h = y.shape[2], w = y.shape[3]
    if cnp.PyArray_TYPE(y) == cnp.NPY_FLOAT32:
        with nogil:
            phase_store_impl(<float *>src.data, <float *>y.data, planes, rows, cols, h, w, r0, sr, c0, sc, num_threads)
    else:
        with nogil:
            phase_store_impl(<double *>src.data, <double *>y.data, planes, rows, cols, h, w, r0, sr, c0, sc,
                             num_threads)
    return y
