"""Argument checking and normalisation, for every kernel family and every layer.

Everything the compiled drivers trust is established here: dtypes, shapes, and C-contiguous,
native-endian arrays. Every error names the argument it is about. The layers' constructor and
input checks are at the end.
"""
import numbers
import operator
import sys

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_float_array(name, value, ndim):
    """value as an ndarray of float32/float64 with the given ndim (no copy yet)."""
    if value is None:
        raise TypeError(f"{name} must be float32 or float64, got None")
    arr = np.asarray(value)
    dt = arr.dtype
    if dt.kind != "f" or dt.itemsize not in (4, 8):
        raise TypeError(f"{name} must be float32 or float64, got dtype {dt}")
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    return arr


def common_dtype(**arrays):
    """The one float dtype shared by all given arrays (None values are skipped)."""
    dtype = None
    first = None
    for name, arr in arrays.items():
        if arr is None:
            continue
        dt = arr.dtype.newbyteorder("=")
        if dtype is None:
            dtype, first = dt, name
        elif dt != dtype:
            raise TypeError(f"{name} has dtype {arr.dtype} but {first} has {dtype}: mixed dtypes are not allowed")
    return dtype


def contiguous(arr, dtype):
    """C-contiguous, aligned, native-endian array of dtype; a copy only when needed. Inputs
    are never written."""
    out = np.ascontiguousarray(arr, dtype=dtype)
    if not out.flags.aligned:  # ascontiguousarray keeps a misaligned buffer as it is
        out = out.copy()
    return out


def int_pair(name, value, minimum):
    """An int or a pair of ints, each >= minimum, as a 2-tuple."""
    if type(value) is int and value >= minimum:  # the common case, checked cheaply
        return (value, value)
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
        items = tuple(value)
    else:
        items = (value, value)
    out = []
    for item in items:
        if isinstance(item, (bool, np.bool_)):
            raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
        try:
            v = operator.index(item)
        except TypeError:
            raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}") from None
        if v < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
        out.append(v)
    return tuple(out)


def positive_int(name, value):
    if type(value) is int and value >= 1:
        return value
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(value).__name__}") from None
    if v < 1:
        raise ValueError(f"{name} must be >= 1, got {v}")
    return v


def conv_padding(padding, kernel, dilation, stride):
    """((top, bottom), (left, right)) from an int, a pair, 'valid' or 'same' (torch's rule:
    total d*(k-1) per axis, before = total // 2, the extra one after)."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(f"padding='same' needs stride 1, got stride={stride}")
            pads = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                pads.append((total // 2, total - total // 2))
            return tuple(pads)
        raise ValueError(f"padding must be an int, a pair of ints, 'same' or 'valid', got {padding!r}")
    ph, pw = int_pair("padding", padding, 0)
    return (ph, ph), (pw, pw)


def conv_output_size(name, size, pad, kernel, stride, dilation):
    span = dilation * (kernel - 1) + 1
    padded = size + pad[0] + pad[1]
    if padded < span:
        raise ValueError(
            f"weight's kernel {name} {kernel} (dilation {dilation}, span {span}) is larger than "
            f"x's padded {name} {padded} (padding {pad[0]} + {pad[1]})"
        )
    return (padded - span) // stride + 1


def int_single(name, value, minimum):
    """An int or a 1-tuple (or 1-list) of one int, >= minimum, as an int (conv1d's forms)."""
    if type(value) is int and value >= minimum:
        return value
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError(f"{name} must be an int or a 1-tuple of ints, got {value!r}")
        item = value[0]
    else:
        item = value
    if isinstance(item, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int or a 1-tuple of ints, got {value!r}")
    try:
        v = operator.index(item)
    except TypeError:
        raise TypeError(f"{name} must be an int or a 1-tuple of ints, got {value!r}") from None
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return v


def conv1d_padding(padding, kernel, dilation, stride):
    """(left, right) from an int, a 1-tuple, 'valid' or 'same' (torch's rule, as conv_padding)."""
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0
        if padding == "same":
            if stride != 1:
                raise ValueError(f"padding='same' needs stride 1, got stride={stride}")
            total = dilation * (kernel - 1)
            return total // 2, total - total // 2
        raise ValueError(f"padding must be an int, a 1-tuple of ints, 'same' or 'valid', got {padding!r}")
    p = int_single("padding", padding, 0)
    return p, p


def output_padding_pair(output_padding, stride, dilation):
    """output_padding as a pair, each smaller than its axis's stride or dilation (PyTorch's rule:
    larger would add rows no input pixel can reach)."""
    op = int_pair("output_padding", output_padding, 0)
    for o, s, d in zip(op, stride, dilation):
        if not (o < s or o < d):
            raise ValueError(f"output_padding must be smaller than the stride or the dilation on each "
                             f"axis, got output_padding={op}, stride={stride}, dilation={dilation}")
    return op


def transposed_output_size(name, size, pad, kernel, stride, dilation, output_padding):
    """A transposed convolution's output size on one axis; ValueError when the padding crops
    all of it."""
    out = (size - 1) * stride - 2 * pad + dilation * (kernel - 1) + output_padding + 1
    if out < 1:
        raise ValueError(
            f"padding {pad} crops the whole output {name}: x's {name} {size} with stride {stride}, "
            f"kernel {kernel}, dilation {dilation} and output_padding {output_padding} gives {out}"
        )
    return out


def check_size(name, shape, itemsize):
    """ValueError before allocating an array that could never exist."""
    total = 1
    for s in shape:
        total *= int(s)
    if total * itemsize > sys.maxsize:
        raise ValueError(f"{name} of shape {tuple(shape)} would need {total * itemsize} bytes: too large")
    return total


def check_out(out, shape, dtype, inputs, name="out"):
    """out must be a writeable, C-contiguous ndarray of the result's shape and dtype, not
    overlapping any input; name is what the messages call it (an LSTM's out[0], say)."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name} has shape {out.shape}, expected {tuple(shape)}")
    if out.dtype != dtype:
        raise ValueError(f"{name} has dtype {out.dtype}, expected {dtype}")
    if not out.flags.c_contiguous or not out.dtype.isnative:
        raise ValueError(f"{name} must be C-contiguous and native-endian")
    if not out.flags.writeable:
        raise ValueError(f"{name} must be writeable")
    for arr in inputs:
        if arr is not None and np.may_share_memory(out, arr):
            raise ValueError(f"{name} must not overlap an input")
    return out


def check_shape(name, arr, shape):
    """ValueError unless arr (None passes) has exactly this shape."""
    if arr is not None and arr.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {arr.shape}")


def sequence_lengths(lengths, steps, batch):
    """The recurrent kernels' `lengths`: None (every sequence has length T) stays None; else N
    ints, each 1 <= length <= T, in any order, as an intp ndarray (a copy).

    A list of ints or an integer ndarray is taken, as the layers take it (tuples, bools, floats,
    strings and anything else: TypeError); a wrong count or a value outside 1..T: ValueError.
    Both name `lengths`."""
    if lengths is None:
        return None
    if isinstance(lengths, np.ndarray):
        if lengths.dtype.kind not in "iu":
            raise TypeError(f"lengths must be a list or ndarray of ints, got an ndarray of {lengths.dtype}")
        if lengths.ndim != 1:
            raise ValueError(f"lengths must be 1-D, one length per sequence, got shape {lengths.shape}")
        values = lengths
    elif isinstance(lengths, list):
        for item in lengths:
            if isinstance(item, (bool, np.bool_)) or not isinstance(item, numbers.Integral):
                raise TypeError(f"lengths must hold ints, got {type(item).__name__} {item!r}")
        values = lengths
    else:
        raise TypeError(f"lengths must be None or a list or ndarray of ints, got {type(lengths).__name__}")
    if len(values) != batch:
        raise ValueError(f"lengths must have one length per sequence ({batch}), got {len(values)}")
    if batch == 0:
        return np.zeros(0, np.intp)
    if isinstance(values, np.ndarray):
        low, high = int(values.min()), int(values.max())
    else:
        low, high = int(min(values)), int(max(values))
    if low < 1 or high > steps:
        bad = low if low < 1 else high
        raise ValueError(f"lengths must lie in 1..{steps} (1..T), got {bad}")
    return np.array(values, dtype=np.intp)


def nonlinearity_is_relu(nonlinearity):
    if isinstance(nonlinearity, str) and nonlinearity in ("tanh", "relu"):
        return nonlinearity == "relu"
    raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")


# ---- layer arguments: constructors (ints, pairs, bools, dtype, rng) and forward inputs ----

def layer_int(name, value, minimum):
    """Return ``value`` as an int, or raise TypeError/ValueError naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def layer_int_pair(name, value, minimum):
    """Return ``value`` (an int or a pair of ints) as a pair of ints, each >= ``minimum``."""
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        value = (value, value)
    try:
        pair = tuple(value)
    except TypeError:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}") from None
    if len(pair) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return tuple(layer_int(name, v, minimum) for v in pair)


def layer_int_single(name, value, minimum):
    """Return ``value`` (an int or a 1-tuple of one int) as an int >= ``minimum`` (Conv1d's forms)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError(f"{name} must be an int or a 1-tuple of ints, got {value!r}")
        value = value[0]
    return layer_int(name, value, minimum)


def layer_dtype(dtype):
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def layer_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def layer_rng(rng):
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, (bool, np.bool_)):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be a numpy.random.Generator, an int seed or None, got {rng!r}")


def layer_input(name, x, dtype, ndims):
    """``x`` as an ndarray of the layer's dtype, with one of the allowed numbers of dimensions."""
    x = np.asarray(x)
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise TypeError(f"{name} must hold real numbers, got dtype {x.dtype}")
    if x.ndim not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{name} must be {want}, got shape {x.shape}")
    return x.astype(dtype, copy=False)
