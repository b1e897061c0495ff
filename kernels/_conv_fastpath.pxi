# conv2d's fast path for small calls (see _fastpath.pxi): plain arguments checked in C, else
# None and fastnn.conv's full validation.

cdef bint plain_conv(object x, object weight, object stride, object padding, object dilation,
                     object groups, int type_num, ConvGeom *g):
    """Whether a convolution's arguments are plain (and valid); fills g when they are."""
    cdef fnn_int span_h, span_w
    cdef cnp.ndarray xa, wa
    if not (plain_array(x, 4, type_num) and plain_array(weight, 4, type_num)):
        return False
    if type(groups) is not int or not (1 <= groups <= (1 << 30)):
        return False
    if not (small_int_pair(stride, 1, &g.sh, &g.sw) and small_int_pair(padding, 0, &g.pt, &g.pl)
            and small_int_pair(dilation, 1, &g.dh, &g.dw)):
        return False
    xa = <cnp.ndarray>x
    wa = <cnp.ndarray>weight
    g.n, g.c_in, g.h, g.w = xa.shape[0], xa.shape[1], xa.shape[2], xa.shape[3]
    g.c_out, g.kh, g.kw = wa.shape[0], wa.shape[2], wa.shape[3]
    g.groups = groups
    if g.c_in % g.groups or g.c_out % g.groups or wa.shape[1] != g.c_in // g.groups:
        return False
    g.cin_g = g.c_in // g.groups
    g.cout_g = g.c_out // g.groups
    span_h = g.dh * (g.kh - 1) + 1
    span_w = g.dw * (g.kw - 1) + 1
    if g.kh < 1 or g.kw < 1 or g.h + 2 * g.pt < span_h or g.w + 2 * g.pl < span_w:
        return False
    g.h_out = (g.h + 2 * g.pt - span_h) // g.sh + 1
    g.w_out = (g.w + 2 * g.pl - span_w) // g.sw + 1
    g.kg = g.cin_g * g.kh * g.kw
    g.p = g.h_out * g.w_out
    # Empty results, zero-length reductions and huge outputs are the full path's business.
    return g.n >= 1 and g.c_out >= 1 and g.kg >= 1 and g.n <= _SIZE_LIMIT // (g.c_out * g.p)


def conv2d_fast(x, weight, bias, stride, padding, dilation, groups, out):
    """fastnn.conv2d for plain arguments, or None to send the call down the full path."""
    cdef ConvGeom g
    cdef int type_num = float_type(x)
    cdef cnp.npy_intp shape[4]
    cdef cnp.ndarray y
    if type_num < 0 or not plain_conv(x, weight, stride, padding, dilation, groups, type_num, &g):
        return None
    if bias is not None and not (plain_array(bias, 1, type_num) and (<cnp.ndarray>bias).shape[0] == g.c_out):
        return None
    shape[0] = g.n
    shape[1] = g.c_out
    shape[2] = g.h_out
    shape[3] = g.w_out
    if out is None:
        y = cnp.PyArray_EMPTY(4, shape, type_num, 0)
    else:
        if not plain_array(out, 4, type_num) or not cnp.PyArray_ISWRITEABLE(<cnp.ndarray>out):
            return None
        y = <cnp.ndarray>out
        if (y.shape[0] != shape[0] or y.shape[1] != shape[1] or y.shape[2] != shape[2]
                or y.shape[3] != shape[3]):
            return None
        if not (disjoint(y, x) and disjoint(y, weight) and disjoint(y, bias)):
            return None
    if run_forward(&g, <cnp.ndarray>x, <cnp.ndarray>weight, bias, y,
                   _threads_for(2 * g.n * g.c_out * g.p * g.kg)) == 0:
        return None
    return y


def conv2d_backward_fast(grad_output, x, weight, stride, padding, dilation, groups,
                         bint needs_input_grad, bint needs_weight_grad, bint needs_bias_grad):
    """fastnn.conv2d_backward for plain arguments, or None to send the call down the full path."""
    cdef ConvGeom g
    cdef int type_num = float_type(x)
    cdef int nthreads
    cdef cnp.ndarray dy
    cdef object grad_input = None, grad_weight = None, grad_bias = None
    cdef cnp.npy_intp dims[1]
    if type_num < 0 or not plain_conv(x, weight, stride, padding, dilation, groups, type_num, &g):
        return None
    if not plain_array(grad_output, 4, type_num):
        return None
    dy = <cnp.ndarray>grad_output
    if dy.shape[0] != g.n or dy.shape[1] != g.c_out or dy.shape[2] != g.h_out or dy.shape[3] != g.w_out:
        return None
    nthreads = _threads_for(4 * g.n * g.c_out * g.p * g.kg)
    dims[0] = g.c_out
    if needs_bias_grad:
        grad_bias = cnp.PyArray_EMPTY(1, dims, type_num, 0)
    if needs_input_grad and needs_weight_grad:
        grad_input = cnp.PyArray_EMPTY(4, (<cnp.ndarray>x).shape, type_num, 0)
        grad_weight = cnp.PyArray_EMPTY(4, (<cnp.ndarray>weight).shape, type_num, 0)
        if conv2d_backward_depthwise(dy, <cnp.ndarray>x, <cnp.ndarray>weight, grad_input, grad_weight,
                                     grad_bias, (g.sh, g.sw), (g.pt, g.pl), (g.dh, g.dw), g.groups,
                                     nthreads):
            return grad_input, grad_weight, grad_bias
    if needs_weight_grad:  # first: it may decline (Inf/NaN meeting padding), sending all down the full path
        if grad_weight is None:
            grad_weight = cnp.PyArray_EMPTY(4, (<cnp.ndarray>weight).shape, type_num, 0)
        if not conv2d_grad_weight(dy, <cnp.ndarray>x, grad_weight, (g.sh, g.sw), (g.pt, g.pl),
                                  (g.dh, g.dw), g.groups, nthreads, grad_bias):
            return None
    elif needs_bias_grad:
        conv2d_grad_bias(dy, grad_bias, nthreads)
    if needs_input_grad:
        if grad_input is None:
            grad_input = cnp.PyArray_EMPTY(4, (<cnp.ndarray>x).shape, type_num, 0)
        conv2d_grad_input(dy, <cnp.ndarray>weight, grad_input, (g.sh, g.sw), (g.pt, g.pl),
                          (g.dh, g.dw), g.groups, nthreads)
    return grad_input, grad_weight, grad_bias
