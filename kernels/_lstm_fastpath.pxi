# The LSTM's fast path for small calls (see _fastpath.pxi): plain arguments checked in C, else
# None and fastnn.lstm's full validation.

def lstm_forward_fast(x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths=None):
    """fastnn.lstm_forward (without out=) for plain arguments, or None to send the call down the
    full path."""
    cdef int type_num = float_type(x)
    cdef fnn_int steps, n, inp, hid, g4
    cdef cnp.npy_intp dims[3]
    cdef cnp.ndarray xa, hs, cs, plain
    cdef fnn_int rows
    if type_num < 0:
        return None
    if not (plain_array(x, 3, type_num) and plain_array(w_ih, 2, type_num) and plain_array(w_hh, 2, type_num)):
        return None
    xa = <cnp.ndarray>x
    steps, n, inp = xa.shape[0], xa.shape[1], xa.shape[2]
    g4 = (<cnp.ndarray>w_ih).shape[0]
    hid = g4 // 4
    if (g4 % 4 != 0 or (<cnp.ndarray>w_ih).shape[1] != inp or not plain_or_none(w_hh, 2, type_num, g4, hid)
            or not plain_or_none(h0, 2, type_num, n, hid) or not plain_or_none(c0, 2, type_num, n, hid)
            or not plain_or_none(b_ih, 1, type_num, g4, 0) or not plain_or_none(b_hh, 1, type_num, g4, 0)):
        return None
    # Empty results and huge ones are the full path's business.
    if steps < 1 or n < 1 or hid < 1 or steps > _SIZE_LIMIT // (n * g4):
        return None
    dims[0], dims[1], dims[2] = steps, n, hid
    if lengths is not None:
        plain = plain_lengths(lengths, steps, n)
        if plain is None:
            return None
        rows = plain_rows(plain)
        hs = cnp.PyArray_EMPTY(3, dims, type_num, 0)
        cs = cnp.PyArray_EMPTY(3, dims, type_num, 0)
        lstm_forward_lengths(xa, h0, c0, <cnp.ndarray>w_ih, <cnp.ndarray>w_hh, summed_bias(b_ih, b_hh, type_num, g4),
                             hs, cs, None, _threads_for(2 * rows * g4 * (inp + hid)), plain)
        return hs, cs
    hs = cnp.PyArray_EMPTY(3, dims, type_num, 0)
    cs = cnp.PyArray_EMPTY(3, dims, type_num, 0)
    lstm_forward(xa, h0, c0, <cnp.ndarray>w_ih, <cnp.ndarray>w_hh, summed_bias(b_ih, b_hh, type_num, g4), hs, cs,
                 None, _threads_for(2 * steps * n * g4 * (inp + hid)))
    return hs, cs
