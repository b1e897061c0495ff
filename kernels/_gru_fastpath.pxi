# The GRU's fast path for small calls (see _fastpath.pxi): plain arguments checked in C, else
# None and fastnn.gru's full validation.

cdef object gru_input_bias(object b_ih, object b_hh, int type_num, fnn_int hid):
    """What the input projection adds (3H,): b_ih + b_hh in the r and z parts, b_in in the n
    part (b_hn stays inside the reset product); None when there is no bias at all."""
    cdef cnp.npy_intp dims[1]
    cdef cnp.ndarray total
    cdef fnn_int j, parts
    cdef float *t32
    cdef double *t64
    if b_ih is None and b_hh is None:
        return None
    dims[0] = 3 * hid
    total = cnp.PyArray_ZEROS(1, dims, type_num, 0)
    t32, t64 = <float *>total.data, <double *>total.data
    for b, parts in ((b_ih, 3), (b_hh, 2)):
        if b is None:
            continue
        if type_num == cnp.NPY_FLOAT32:
            for j in range(parts * hid):
                t32[j] += (<float *>(<cnp.ndarray>b).data)[j]
        else:
            for j in range(parts * hid):
                t64[j] += (<double *>(<cnp.ndarray>b).data)[j]
    return total


def gru_forward_fast(x, h0, w_ih, w_hh, b_ih, b_hh, lengths=None):
    """fastnn.gru_forward (without out=) for plain arguments, or None to send the call down the
    full path."""
    cdef int type_num = float_type(x)
    cdef fnn_int steps, n, inp, hid, g3
    cdef cnp.npy_intp dims[3]
    cdef cnp.ndarray xa, hs, plain
    if type_num < 0:
        return None
    if not (plain_array(x, 3, type_num) and plain_array(w_ih, 2, type_num) and plain_array(w_hh, 2, type_num)):
        return None
    xa = <cnp.ndarray>x
    steps, n, inp = xa.shape[0], xa.shape[1], xa.shape[2]
    g3 = (<cnp.ndarray>w_ih).shape[0]
    hid = g3 // 3
    if (g3 % 3 != 0 or (<cnp.ndarray>w_ih).shape[1] != inp or not plain_or_none(w_hh, 2, type_num, g3, hid)
            or not plain_or_none(h0, 2, type_num, n, hid)
            or not plain_or_none(b_ih, 1, type_num, g3, 0) or not plain_or_none(b_hh, 1, type_num, g3, 0)):
        return None
    if steps < 1 or n < 1 or hid < 1 or steps > _SIZE_LIMIT // (n * g3):
        return None
    dims[0], dims[1], dims[2] = steps, n, hid
    hs = cnp.PyArray_EMPTY(3, dims, type_num, 0)
    if lengths is not None:
        plain = plain_lengths(lengths, steps, n)
        if plain is None:
            return None
        gru_forward_lengths(xa, h0, <cnp.ndarray>w_ih, <cnp.ndarray>w_hh, gru_input_bias(b_ih, b_hh, type_num, hid),
                            None if b_hh is None else b_hh[2 * hid:], hs, None, None,
                            _threads_for(2 * plain_rows(plain) * g3 * (inp + hid)), plain)
        return hs
    gru_forward(xa, h0, <cnp.ndarray>w_ih, <cnp.ndarray>w_hh, gru_input_bias(b_ih, b_hh, type_num, hid),
                None if b_hh is None else b_hh[2 * hid:], hs, None, None,
                _threads_for(2 * steps * n * g3 * (inp + hid)))
    return hs
