"""fastnn's compiled kernels: Cython drivers over the C GEMM core (kernels/c/).

The drivers trust their arguments: fastnn's Python layer has already checked shapes and
dtypes and made every array C-contiguous and native-endian. They release the GIL, run their
loop nests with OpenMP, and keep per-thread packing buffers alive between calls.
"""
cimport numpy as cnp
from cython.parallel cimport parallel, prange
from libc.string cimport memset, memcpy
from libc.stdlib cimport malloc, free

from _openmp cimport FNN_HAVE_OPENMP, omp_get_max_threads, omp_get_thread_num, omp_get_num_threads
from fnn_gemm cimport *
from fnn_direct cimport *
from fnn_elementwise cimport *
from fnn_gemv cimport *
from fnn_im2col cimport *
from fnn_convtile cimport *
from fnn_peak cimport *
from fnn_gates cimport *
from fnn_lstm cimport *
from fnn_gru cimport *

cnp.import_array()

cdef extern from "fnn_scratch.h" nogil:
    void *fnn_thread_scratch(int slot, size_t nbytes)
    enum:
        FNN_SCRATCH_OWN
        FNN_SCRATCH_SHARED
        FNN_SCRATCH_SEQUENCES

# Shared by every family: build facts and the CPU path, the GEMM core, the small-call checks.
include "_runtime.pxi"
include "_gemm.pxi"
include "_fastpath.pxi"
# The FMA peak probe: the denominator of every share of peak fastnn reports.
include "_peak.pxi"

# conv2d: im2col + GEMM drivers, direct kernels, convolution tiles, bias sums, the fast path.
include "_conv.pxi"
include "_conv_direct.pxi"
include "_conv_tile.pxi"
include "_conv_bias.pxi"
include "_conv_fastpath.pxi"

# conv_transpose2d (and conv1d) run on conv2d's entry points; the transposed forward's bias.
include "_conv_transpose.pxi"
include "_conv1d.pxi"

# Variable-length batches: the packed layout's plan and row moves (all three recurrent families).
include "_lengths.pxi"

# Elman RNN: sequence and BPTT drivers, the fast path.
include "_rnn.pxi"
include "_rnn_fastpath.pxi"

# LSTM and GRU: the step machinery they share, sequence and BPTT drivers, the fast paths.
include "_gates.pxi"
include "_lstm.pxi"
include "_lstm_fastpath.pxi"
include "_gru.pxi"
include "_gru_fastpath.pxi"
