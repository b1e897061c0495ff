"""Variable-length batches in the recurrent kernels (rnn, lstm, gru; `lengths=`): the packed
layout the compiled drivers run on, and the moves between it and the padded (T, N, ...) arrays.

As PyTorch's packed sequences: the batch is ordered by length, longest first (stable, so ties
keep their order), and only the live (step, sequence) pairs are stored, step by step. Step t
then holds the n_t sequences still running, which are a prefix of that order: rows
offs[t] .. offs[t + 1] - 1 of a packed array, and the previous state of its row j is row
offs[t - 1] + j (h0's row j at step 0). Every product of a step runs over its n_t rows only,
and the GEMMs over all steps over the sum(lengths) live rows. The plan and the row moves are
compiled loops (kernels/_lengths.pxi): each moves every live row once.
"""
import numpy as np

from fastnn import _runtime
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


class Packing:
    """The packed layout of a batch of N sequences of the given lengths (intp, each in 1..T,
    from _validation.sequence_lengths) within T steps; the compiled path only.

    order : (N,) the sequences, longest first; sorted position j is sequence order[j]
    rank : (N,) its inverse, sequence b's sorted position
    offs : (T + 1,) intp, step t's rows offs[t] .. offs[t + 1] - 1
    total : offs[T] = sum(lengths), the packed rows
    """

    def __init__(self, lengths, steps):
        self.steps, self.batch = steps, len(lengths)
        self.order, self.rank, self.offs = _runtime._kernels.lengths_plan(lengths, steps)
        self.total = int(self.offs[-1])

    def gather(self, a, dtype):
        """(T, N, K) -> its live rows (total, K), C-contiguous, of dtype."""
        packed = np.empty((self.total, a.shape[-1]), dtype)
        _runtime._kernels.pack_rows(v.contiguous(a, dtype), self.rank, self.offs, packed)
        return packed

    def empty(self, width, dtype):
        """An uninitialised packed array (total, width)."""
        return np.empty((self.total, width), dtype)

    def scatter(self, packed, out):
        """Packed rows into out (T, N, K), C-contiguous, with zeros past each sequence's end."""
        _runtime._kernels.unpack_rows(packed, self.rank, self.offs, out)
        return out

    def previous(self, packed):
        """The previous state of every packed row after step 0's, (total - N, K)."""
        out = np.empty((self.total - self.batch, packed.shape[-1]), packed.dtype)
        _runtime._kernels.previous_rows(packed, self.offs, out)
        return out

    def sorted_states(self, a, dtype):
        """(N, K) or None -> in the packed order, C-contiguous, of dtype."""
        return None if a is None else np.ascontiguousarray(np.take(a, self.order, axis=0), dtype=dtype)

    def unsorted_states(self, a):
        """(N, K) in the packed order -> in the batch's order."""
        out = np.empty_like(a)
        out[self.order] = a
        return out


def head(buf, size):
    """None, or the first `size` values of a C-contiguous buffer (T, N, K) as a flat view: a
    packed array of R rows of K fits in the first R K values of its padded form."""
    return None if buf is None else buf.reshape(-1)[:size]
