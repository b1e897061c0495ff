"""Variable-length batches in the recurrent kernels (rnn, lstm, gru; `lengths=`): their
checking, and the packed layout the compiled drivers run on.

As PyTorch's packed sequences: the batch is ordered by length, longest first (stable, so ties
keep their order), and only the live (step, sequence) pairs are stored, step by step. Step t
then holds the n_t sequences still running, which are a prefix of that order: rows
offs[t] .. offs[t + 1] - 1 of a packed array, and the previous state of its row j is row
offs[t - 1] + j (h0's row j at step 0). Every product of a step runs over its n_t rows only,
and the GEMMs over all steps over the sum(lengths) live rows. The drivers build the plan and
move the rows between the padded (T, N, ...) arrays and the packed ones in compiled code
(kernels/_lengths.pxi), each live row once each way.
"""
import numpy as np

from fastnn import _validation as v


def sequence_lengths(lengths, steps, batch):
    """_validation.sequence_lengths, with a fast path for the common cases (a list of plain
    ints, or a 1-D integer ndarray, all in 1..steps): the same intp copy. Anything else, or any
    value it would reject, goes to _validation.sequence_lengths, which raises as documented."""
    if lengths is None:
        return None
    kind = type(lengths)
    if kind is list and batch > 0 and len(lengths) == batch:
        if all(type(item) is int for item in lengths) and 1 <= min(lengths) and max(lengths) <= steps:
            return np.array(lengths, dtype=np.intp)
    elif (kind is np.ndarray and batch > 0 and lengths.ndim == 1 and lengths.dtype.kind in "iu"
          and len(lengths) == batch):
        if 1 <= lengths.min() and lengths.max() <= steps:
            return np.array(lengths, dtype=np.intp)
    return v.sequence_lengths(lengths, steps, batch)


def head(buf, size):
    """None, or the first `size` values of a C-contiguous buffer (T, N, K) as a flat view: a
    packed array of R rows of K fits in the first R K values of its padded form."""
    return None if buf is None else buf.reshape(-1)[:size]
