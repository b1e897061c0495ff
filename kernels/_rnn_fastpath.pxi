# The Elman RNN's fast path for small calls (see _fastpath.pxi): plain arguments checked in C,
# else None and fastnn.recurrent's full validation.

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


def rnn_forward_fast(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity, out, lengths=None):
    """fastnn.rnn_forward for plain arguments, or None to send the call down the full path."""
    cdef int type_num, act
    cdef fnn_int steps, n, inp, hid
    cdef cnp.npy_intp dims[3]
    cdef cnp.ndarray xa, hs, plain = None
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
    if lengths is not None:
        plain = plain_lengths(lengths, steps, n)
        if plain is None:
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
    if plain is not None:
        return rnn_forward_lengths(xa, h0, <cnp.ndarray>w_ih, <cnp.ndarray>w_hh,
                                   summed_bias(b_ih, b_hh, type_num, hid), hs, act == ACT_RELU,
                                   _threads_for(2 * plain_rows(plain) * hid * (inp + hid)), plain)
    return rnn_forward(xa, h0, <cnp.ndarray>w_ih, <cnp.ndarray>w_hh, summed_bias(b_ih, b_hh, type_num, hid),
                       hs, act == ACT_RELU, _threads_for(2 * steps * n * hid * (inp + hid)))
