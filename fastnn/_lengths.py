"""Variable-length batches in the recurrent kernels (rnn, lstm, gru; `lengths=`): the packed
layout the compiled drivers run on, and the moves between it and the padded (T, N, ...) arrays.

As PyTorch's packed sequences: the batch is ordered by length, longest first (stable, so ties
keep their order), and only the live (step, sequence) pairs are stored, step by step. Step t
then holds the n_t sequences still running, which are a prefix of the order: rows
offs[t] .. offs[t + 1] - 1 of a packed array, and the previous state of its row j is row
offs[t - 1] + j (h0's row j at step 0). Every product of a step runs over its n_t rows only,
and the GEMMs over all steps over the sum(lengths) live rows.
"""
import numpy as np


class Packing:
    """The packed layout of a batch of N sequences of the given lengths within T steps.

    order : (N,) the sequences, longest first; sorted position j is sequence order[j]
    offs : (T + 1,) intp, step t's rows offs[t] .. offs[t + 1] - 1; rows = offs[T]
    rows : (R,) for each packed row, its index t * N + b into the padded (T * N) rows
    slot : (T * N,) for each padded row, its packed row, or R (a row of zeros) past the end
    prev : (R - N,) for each packed row after step 0's, the packed row of its previous state
    """

    def __init__(self, lengths, steps):
        batch = len(lengths)
        self.steps, self.batch = steps, batch
        self.order = np.argsort(-lengths, kind="stable")
        counts = np.bincount(lengths, minlength=steps + 1)[::-1].cumsum()[::-1][1:]  # n_t = #(lengths > t)
        self.offs = np.zeros(steps + 1, np.intp)
        np.cumsum(counts, out=self.offs[1:])
        total = int(self.offs[-1])
        self.total = total
        step_of = np.repeat(np.arange(steps, dtype=np.intp), counts)
        within = np.arange(total, dtype=np.intp) - self.offs[step_of]
        self.rows = step_of * batch + self.order[within]
        self.slot = np.full(steps * batch, total, np.intp)
        self.slot[self.rows] = np.arange(total, dtype=np.intp)
        self.prev = self.offs[step_of[batch:] - 1] + within[batch:]

    def gather(self, a, dtype):
        """(T, N, K) -> its live rows (R, K), C-contiguous, of dtype."""
        flat = a.reshape(self.steps * self.batch, a.shape[-1])
        return np.ascontiguousarray(np.take(flat, self.rows, axis=0), dtype=dtype)

    def sorted_states(self, a, dtype):
        """(N, K) or None -> in the packed order, C-contiguous, of dtype."""
        return None if a is None else np.ascontiguousarray(np.take(a, self.order, axis=0), dtype=dtype)

    def unsorted_states(self, a):
        """(N, K) in the packed order -> in the batch's order."""
        out = np.empty_like(a)
        out[self.order] = a
        return out

    def padded_buffer(self, width, dtype):
        """An (R + 1, width) array for packed results; its last row, zeros, fills the padding."""
        buf = np.empty((self.total + 1, width), dtype)
        buf[-1] = 0
        return buf

    def scatter(self, packed, out):
        """Packed results (from padded_buffer) into out (T, N, K), zeros past each sequence's end."""
        np.take(packed, self.slot, axis=0, out=out.reshape(self.steps * self.batch, out.shape[-1]), mode="clip")
        return out

    def previous(self, packed_states):
        """The previous state of every packed row after step 0's, (R - N, K)."""
        return np.take(packed_states, self.prev, axis=0)


def head(buf, size):
    """None, or the first `size` values of a C-contiguous buffer (T, N, K) as a flat view: a
    packed array of R rows of K fits in the first R K values of its padded form."""
    return None if buf is None else buf.reshape(-1)[:size]
