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
