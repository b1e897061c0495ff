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


# ---- the small-call fast path ------------------------------------------------------------------

cdef inline bint small_int(object v, fnn_int minimum, fnn_int *out):
    """An int in [minimum, 2**30]."""
    if type(v) is not int or not (minimum <= v <= (1 << 30)):
        return False
    out[0] = v
    return True


def conv1d_fast(x, weight, bias, stride, padding, dilation, groups, out):
    """fastnn.conv1d for plain arguments (see _fastpath.pxi: exact C-contiguous native arrays,
    ints for the geometry), run on conv2d's dispatch as the unit-height conv2d it is; None
    sends the call down fastnn.conv_1d's full path, which also takes the layers of its GEMM
    route (fastnn.conv_1d._gemm_route), so this path decides nothing differently."""
    cdef ConvGeom g
    cdef int type_num = float_type(x)
    cdef fnn_int span
    cdef cnp.npy_intp shape[3]
    cdef cnp.ndarray xa, wa, y
    if type_num < 0 or not (plain_array(x, 3, type_num) and plain_array(weight, 3, type_num)):
        return None
    if type(groups) is not int or not (1 <= groups <= (1 << 30)):
        return None
    if not (small_int(stride, 1, &g.sw) and small_int(padding, 0, &g.pl) and small_int(dilation, 1, &g.dw)):
        return None
    xa = <cnp.ndarray>x
    wa = <cnp.ndarray>weight
    g.n, g.c_in, g.h, g.w = xa.shape[0], xa.shape[1], 1, xa.shape[2]
    g.c_out, g.kh, g.kw = wa.shape[0], 1, wa.shape[2]
    g.sh, g.pt, g.dh = 1, 0, 1
    g.groups = groups
    if g.c_in % g.groups or g.c_out % g.groups or wa.shape[1] != g.c_in // g.groups:
        return None
    g.cin_g = g.c_in // g.groups
    g.cout_g = g.c_out // g.groups
    span = g.dw * (g.kw - 1) + 1
    if g.kw < 1 or g.w + 2 * g.pl < span:
        return None
    g.h_out = 1
    g.w_out = (g.w + 2 * g.pl - span) // g.sw + 1
    g.kg = g.cin_g * g.kw
    g.p = g.w_out
    if not (g.n >= 1 and g.c_out >= 1 and g.kg >= 1 and g.n <= _SIZE_LIMIT // (g.c_out * g.p)):
        return None
    # fastnn.conv_1d._gemm_route's layers go down the full path
    if g.cin_g >= 16 and g.cout_g >= 16 and ((g.sw >= 2 and g.w_out >= 128) or (g.sw == 1 and g.kw <= 3)):
        return None
    if bias is not None and not (plain_array(bias, 1, type_num) and (<cnp.ndarray>bias).shape[0] == g.c_out):
        return None
    shape[0] = g.n
    shape[1] = g.c_out
    shape[2] = g.w_out
    if out is None:
        y = cnp.PyArray_EMPTY(3, shape, type_num, 0)
    else:
        if not plain_array(out, 3, type_num) or not cnp.PyArray_ISWRITEABLE(<cnp.ndarray>out):
            return None
        y = <cnp.ndarray>out
        if y.shape[0] != shape[0] or y.shape[1] != shape[1] or y.shape[2] != shape[2]:
            return None
        if not (disjoint(y, x) and disjoint(y, weight) and disjoint(y, bias)):
            return None
    if run_forward(&g, xa, wa, bias, y, _threads_for(2 * g.n * g.c_out * g.p * g.kg)) == 0:
        return None
    return y
