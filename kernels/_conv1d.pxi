# conv1d's own entry point on conv2d's implicit GEMM (fastnn.conv_1d): a 1-D convolution is a
# conv2d on images one row high, and where its stride is 2 or more the GEMM driver's im2col
# packing outruns the direct convolution tiles conv2d's dispatch would pick (wav2vec 2.0's
# k3 s2 layers: about 1.6x), so this calls the GEMM driver itself.

def conv1d_forward_gemm(cnp.ndarray x, cnp.ndarray w, bias, cnp.ndarray y, tuple stride, tuple pad,
                        tuple dil, fnn_int groups, int num_threads):
    """y = conv2d(x, w) + bias on conv2d's implicit GEMM, whatever conv2d's dispatch would pick;
    x (N, C_in, 1, L), w, y C-contiguous, one dtype. Returns False, computing nothing, where
    padding would meet an Inf or NaN weight (the caller then takes conv2d's own way)."""
    cdef ConvGeom g = make_geom(x.shape, w.shape, stride, pad, dil, groups, y.shape)
    cdef cnp.ndarray b = bias
    cdef int rc
    cdef bint is_f32 = cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32
    if reads_padding(&g):
        if not (all_finite(<float *>w.data, w.size) if is_f32 else all_finite(<double *>w.data, w.size)):
            return False
    if is_f32:
        with nogil:
            rc = conv2d_forward_impl(&g, <float *>x.data, <float *>w.data,
                                     <float *>b.data if bias is not None else NULL, <float *>y.data, num_threads)
    else:
        with nogil:
            rc = conv2d_forward_impl(&g, <double *>x.data, <double *>w.data,
                                     <double *>b.data if bias is not None else NULL, <double *>y.data, num_threads)
    if rc != 0:
        raise MemoryError("fastnn.conv1d: could not allocate packing buffers")
    return True
