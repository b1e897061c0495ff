"""What every reference family shares: the dtype rule, IEEE quietness, int pairs and out=."""
import numbers

import numpy as np


# Inf and NaN inputs are part of the contract (they must reach exactly the outputs that see
# them); NumPy's warnings about them would only be noise.
quiet_ieee = np.errstate(invalid="ignore", over="ignore", divide="ignore")


def compute_dtype(*arrays):
    """The dtype to compute in: float32 or float64 inputs keep their dtype
    (mixed gives float64); integer inputs are computed in float64."""
    return np.result_type(*arrays, np.float32)


def int_pair(value):
    """Normalise an int or a pair of ints to a tuple of two ints."""
    if np.ndim(value) == 0:
        return int(value), int(value)
    a, b = value
    return int(a), int(b)


def sequence_lengths(lengths, steps, batch):
    """The recurrent oracles' ``lengths``: None, or N ints in 1..T as an int ndarray.

    TypeError unless a list of ints or an integer ndarray (tuples, bools and floats refused);
    ValueError for a wrong count or a value outside 1..T."""
    if lengths is None:
        return None
    if isinstance(lengths, np.ndarray):
        if lengths.dtype.kind not in "iu":
            raise TypeError(f"lengths must hold ints, got dtype {lengths.dtype}")
        if lengths.ndim != 1:
            raise ValueError(f"lengths must be 1-D, got shape {lengths.shape}")
        values = lengths.tolist()
    elif isinstance(lengths, list):
        if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in lengths):
            raise TypeError("lengths must hold ints")
        values = [int(v) for v in lengths]
    else:
        raise TypeError(f"lengths must be a list or ndarray of ints, got {type(lengths).__name__}")
    if len(values) != batch:
        raise ValueError(f"lengths must hold {batch} lengths, got {len(values)}")
    if not all(1 <= v <= steps for v in values):
        raise ValueError(f"lengths must lie in 1..{steps}")
    return np.array(values, dtype=np.int64)


def live(lengths, t):
    """The sequences still running at step t: indices b with t < lengths[b]."""
    return np.flatnonzero(lengths > t)


def store_result(result, out):
    """Write ``result`` into ``out`` (when given) and return what the caller gets."""
    if out is None:
        return result
    if out.shape != result.shape:
        raise ValueError(f"out has shape {out.shape}, expected {result.shape}")
    out[...] = result
    return out
