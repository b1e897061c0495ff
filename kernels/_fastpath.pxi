# Fast paths for small calls: when every argument is already in the plain form the drivers
# want (exact ndarrays, one native float dtype, C-contiguous, ints for the geometry), they are
# checked here in C in well under a microsecond. Anything else, including every invalid
# argument, returns None and goes through fastnn._api's full validation, which also words the
# errors. These functions decide nothing that path would decide differently.

# Set by fastnn._runtime at import: resolves the thread count for a problem's FLOPs.
_threads_for = None

cdef fnn_int _SIZE_LIMIT = (<fnn_int>1) << 40


cdef inline bint plain_array(object a, int ndim, int type_num):
    """An exact ndarray of this dtype, native-endian, aligned and C-contiguous."""
    cdef cnp.ndarray arr
    if type(a) is not cnp.ndarray:
        return False
    arr = <cnp.ndarray>a
    return (cnp.PyArray_NDIM(arr) == ndim and cnp.PyArray_TYPE(arr) == type_num
            and cnp.PyArray_ISCARRAY_RO(arr) and cnp.PyArray_ISNOTSWAPPED(arr))


cdef inline bint small_int_pair(object v, fnn_int minimum, fnn_int *first, fnn_int *second):
    """An int or a 2-tuple of ints, each in [minimum, 2**30]."""
    if type(v) is int:
        if not (minimum <= v <= (1 << 30)):
            return False
        first[0] = second[0] = v
        return True
    if type(v) is tuple and len(<tuple>v) == 2:
        return (small_int_pair((<tuple>v)[0], minimum, first, first)
                and small_int_pair((<tuple>v)[1], minimum, second, second))
    return False


cdef inline bint disjoint(cnp.ndarray a, object b):
    """Whether a and the C-contiguous array b (or None) occupy different memory."""
    cdef cnp.ndarray other
    cdef char *lo
    cdef char *hi
    if b is None:
        return True
    other = <cnp.ndarray>b
    lo = <char *>other.data
    hi = lo + cnp.PyArray_NBYTES(other)
    return <char *>a.data + cnp.PyArray_NBYTES(a) <= lo or <char *>a.data >= hi


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


cdef inline int float_type(object x):
    """x's dtype number when it is an ndarray of float32 or float64, else -1."""
    cdef int type_num
    if type(x) is not cnp.ndarray:
        return -1
    type_num = cnp.PyArray_TYPE(<cnp.ndarray>x)
    return type_num if type_num == cnp.NPY_FLOAT32 or type_num == cnp.NPY_FLOAT64 else -1


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


cdef inline int activation_code(object nonlinearity):
    """ACT_TANH or ACT_RELU for the two known names, -1 for anything else."""
    if type(nonlinearity) is str:
        if nonlinearity == "tanh":
            return ACT_TANH
        if nonlinearity == "relu":
            return ACT_RELU
    return -1


cdef inline bint plain_or_none(object a, int ndim, int type_num, fnn_int d0, fnn_int d1):
    """None, or a plain array whose first dimensions are d0 (and d1 when ndim == 2)."""
    if a is None:
        return True
    if not plain_array(a, ndim, type_num) or (<cnp.ndarray>a).shape[0] != d0:
        return False
    return ndim == 1 or (<cnp.ndarray>a).shape[1] == d1


cdef object summed_bias(object b_ih, object b_hh, int type_num, fnn_int hid):
    """b_ih + b_hh (either may be None), added once for every step."""
    cdef cnp.npy_intp dims[1]
    cdef cnp.ndarray total
    cdef fnn_int j
    if b_ih is None or b_hh is None:
        return b_hh if b_ih is None else b_ih
    dims[0] = hid
    total = cnp.PyArray_EMPTY(1, dims, type_num, 0)
    if type_num == cnp.NPY_FLOAT32:
        for j in range(hid):
            (<float *>total.data)[j] = (<float *>(<cnp.ndarray>b_ih).data)[j] + (<float *>(<cnp.ndarray>b_hh).data)[j]
    else:
        for j in range(hid):
            (<double *>total.data)[j] = (<double *>(<cnp.ndarray>b_ih).data)[j] + (<double *>(<cnp.ndarray>b_hh).data)[j]
    return total


def rnn_forward_fast(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity, out):
    """fastnn.rnn_forward for plain arguments, or None to send the call down the full path."""
    cdef int type_num, act
    cdef fnn_int steps, n, inp, hid
    cdef cnp.npy_intp dims[3]
    cdef cnp.ndarray xa, hs
    act = activation_code(nonlinearity)
    if act < 0 or type(x) is not cnp.ndarray:
        return None
    type_num = cnp.PyArray_TYPE(<cnp.ndarray>x)
    if type_num != cnp.NPY_FLOAT32 and type_num != cnp.NPY_FLOAT64:
        return None
    if not (plain_array(x, 3, type_num) and plain_array(w_ih, 2, type_num) and plain_array(w_hh, 2, type_num)):
        return None
    xa = <cnp.ndarray>x
    steps, n, inp = xa.shape[0], xa.shape[1], xa.shape[2]
    hid = (<cnp.ndarray>w_ih).shape[0]
    if ((<cnp.ndarray>w_ih).shape[1] != inp or not plain_or_none(w_hh, 2, type_num, hid, hid)
            or not plain_or_none(h0, 2, type_num, n, hid) or not plain_or_none(b_ih, 1, type_num, hid, 0)
            or not plain_or_none(b_hh, 1, type_num, hid, 0)):
        return None
    # Empty results and huge ones are the full path's business.
    if steps < 1 or n < 1 or hid < 1 or steps > _SIZE_LIMIT // (n * hid):
        return None
    dims[0] = steps
    dims[1] = n
    dims[2] = hid
    if out is None:
        hs = cnp.PyArray_EMPTY(3, dims, type_num, 0)
    else:
        if not plain_array(out, 3, type_num) or not cnp.PyArray_ISWRITEABLE(<cnp.ndarray>out):
            return None
        hs = <cnp.ndarray>out
        if hs.shape[0] != steps or hs.shape[1] != n or hs.shape[2] != hid:
            return None
        if not (disjoint(hs, x) and disjoint(hs, h0) and disjoint(hs, w_ih) and disjoint(hs, w_hh)
                and disjoint(hs, b_ih) and disjoint(hs, b_hh)):
            return None
    return rnn_forward(xa, h0, <cnp.ndarray>w_ih, <cnp.ndarray>w_hh, summed_bias(b_ih, b_hh, type_num, hid),
                       hs, act == ACT_RELU, _threads_for(2 * steps * n * hid * (inp + hid)))
