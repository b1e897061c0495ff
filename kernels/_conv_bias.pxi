# grad_bias = grad_output.sum(axis=(0, 2, 3)): one channel per work item, its planes summed in
# image order with double accumulators, so the result is the same for any thread count.

cdef inline double plane_sum(const floating *v, fnn_int count) noexcept nogil:
    if floating is float:
        return fnn_sum_f32(v, count)
    else:
        return fnn_sum_f64(v, count)


cdef void channel_sums_impl(const floating *dy, fnn_int n, fnn_int channels, fnn_int plane,
                            floating *out, int nthreads) noexcept nogil:
    cdef fnn_int c, img
    cdef double total
    cdef int team = <int>min(<fnn_int>nthreads, channels)
    with parallel(num_threads=max(team, 1)):
        if team > 1:
            _note_team()
        for c in prange(channels, schedule='static'):
            total = 0
            for img in range(n):
                total = total + plane_sum(dy + (img * channels + c) * plane, plane)
            out[c] = <floating>total


def conv2d_grad_bias(cnp.ndarray dy, cnp.ndarray out, int num_threads):
    """out (C,) = dy (N, C, H, W, C-contiguous) summed over all but the channel axis."""
    cdef fnn_int n = dy.shape[0], channels = dy.shape[1], plane = dy.shape[2] * dy.shape[3]
    if cnp.PyArray_TYPE(dy) == cnp.NPY_FLOAT32:
        with nogil:
            channel_sums_impl(<float *>dy.data, n, channels, plane, <float *>out.data, num_threads)
    else:
        with nogil:
            channel_sums_impl(<double *>dy.data, n, channels, plane, <double *>out.data, num_threads)
    return out
