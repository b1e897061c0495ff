"""What every reference family shares: the dtype rule, IEEE quietness, int pairs and out=."""
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


def store_result(result, out):
    """Write ``result`` into ``out`` (when given) and return what the caller gets."""
    if out is None:
        return result
    if out.shape != result.shape:
        raise ValueError(f"out has shape {out.shape}, expected {result.shape}")
    out[...] = result
    return out
