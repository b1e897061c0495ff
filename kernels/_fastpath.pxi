# Fast paths for small calls, the checks every family shares: when every argument is already
# in the plain form the drivers want (exact ndarrays, one native float dtype, C-contiguous,
# ints for the geometry), they are checked in C in well under a microsecond. Anything else,
# including every invalid argument, returns None and goes through the family's Python module
# (fastnn.conv, fastnn.recurrent, ...), whose full validation also words the errors. A fast
# path decides nothing that module would decide differently. Each family's fast path is in
# its own _<family>_fastpath.pxi.

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


cdef inline int float_type(object x):
    """x's dtype number when it is an ndarray of float32 or float64, else -1."""
    cdef int type_num
    if type(x) is not cnp.ndarray:
        return -1
    type_num = cnp.PyArray_TYPE(<cnp.ndarray>x)
    return type_num if type_num == cnp.NPY_FLOAT32 or type_num == cnp.NPY_FLOAT64 else -1
