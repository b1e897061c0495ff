# What the LSTM and GRU drivers share: the recurrent weights packed once per call for every
# step's product, that product over a range of hidden units, the split of the units among a
# team, and one call's scratch carved out of one buffer.
#
# Every step multiplies the previous state (or, backwards, the gates' gradient) by the
# recurrent weights, then runs the cell's elementwise update. Both are split among a team by
# hidden units: a thread owns the same columns of every gate, so it can run its units' cell
# update right after its part of the product, with no barrier in between; the step's end (the
# team's join) is the only synchronisation, and no element is ever reduced by two threads.

# Rows of state at or below which a step's product runs row by row on 64-byte panels
# (fnn_gates.h): the GEMM core's MR-row micro-kernel would compute mostly padding.
cdef enum:
    GATES_ROWS_PATH_MAX = 2

# Elements (rows x hidden units) below which the gates of all rows at once (the backward's
# recomputed gates) are activated on one thread. 1e5 left a GRU backward of 24 steps of 32 x
# 128 with its gates on one thread while the other waited, 183 us a step at 2 threads against
# 145 for 50 steps (152 with 1.6e4; Emerald Rapids). A block of 64 rows costs tens of
# microseconds, a team's fork and join a few.
cdef double gates_serial_elems = 1.6e4

# Multiply-adds in one step below which its team is one thread (a fork and join costs about
# as much as this much arithmetic). 2e6 (tuned on Zen 4) left the GRU's and LSTM's 16-32-row
# steps with H = 128 on one thread on Emerald Rapids, where two ran them 1.2-1.5x faster
# (forward; the backward no slower).
cdef double gates_serial_step_fmas = 0.5e6


def set_gates_serial_step_fmas(double fmas):
    """Set the per-step size below which a recurrence runs on one thread; returns the old value
    (for tests that must see teams on small problems)."""
    global gates_serial_step_fmas
    old = gates_serial_step_fmas
    gates_serial_step_fmas = fmas
    return old


cdef struct StepWeights:
    # C[:, q*n + j] (+)= A @ B_q[:, j] for blocks q < blocks (a gate each, n = H columns),
    # B_q (k x n) packed once per call: row by row on 64-byte panels (rows_path) or in the GEMM
    # core's KC x NR layout. A split of the columns starts at multiples of `unit`.
    Tiling t
    fnn_int k
    fnn_int n
    int blocks
    bint rows_path
    fnn_int unit
    fnn_int block_elems
    void *packed


cdef inline void step_weights_init(StepWeights *w, const floating *dtype_tag, fnn_int m, fnn_int k, fnn_int n,
                                   int blocks) noexcept nogil:
    w.t = active_tiling(dtype_tag)
    w.k = k
    w.n = n
    w.blocks = blocks
    w.rows_path = m <= GATES_ROWS_PATH_MAX
    if w.rows_path:
        w.unit = FNN_GATES_PANEL_F32 if floating is float else FNN_GATES_PANEL_F64
    else:
        w.unit = w.t.nr
    w.block_elems = round_up(n, w.unit) * k
    w.packed = NULL


cdef void step_weights_pack(StepWeights *w, const floating *b, fnn_int block_offset, fnn_int rs, fnn_int cs,
                            floating *dst) noexcept nogil:
    """Pack block q = b + q * block_offset, element (p, j) at p * rs + j * cs, into dst."""
    cdef int q
    w.packed = dst
    for q in range(w.blocks):
        if not w.rows_path:
            pack_b_whole(&w.t, w.k, w.n, b + q * block_offset, rs, cs, dst + q * w.block_elems)
        elif floating is float:
            fnn_pack_b_f32(<int>w.unit, w.k, w.n, b + q * block_offset, rs, cs, dst + q * w.block_elems)
        else:
            fnn_pack_b_f64(<int>w.unit, w.k, w.n, b + q * block_offset, rs, cs, dst + q * w.block_elems)


cdef inline fnn_int step_apack_elems(const StepWeights *w, fnn_int m) noexcept nogil:
    return round_up(min(m, w.t.mc), w.t.mr) * w.t.kc


cdef int step_apack(const StepWeights *w, fnn_int m, floating **apack) noexcept nogil:
    """This thread's packing buffer for A (none on the rows path); -1 if out of memory."""
    apack[0] = NULL
    if w.rows_path:
        return 0
    apack[0] = <floating *>fnn_thread_scratch(FNN_SCRATCH_OWN, step_apack_elems(w, m) * sizeof(floating))
    return 0 if apack[0] != NULL else -1


cdef void step_product(const StepWeights *w, fnn_int m, const floating *a, fnn_int lda, floating *c, fnn_int ldc,
                       fnn_int c0, fnn_int c1, bint accumulate, bint reverse, floating *apack) noexcept nogil:
    """Columns [c0, c1) of every block: C[:, q*n + c0 : q*n + c1] (+)= A (m x k, row-major) @
    B_q[:, c0:c1]; c0 a multiple of w.unit. reverse walks the blocks (and panels) backwards:
    consecutive steps alternate, so each starts with the weights the last one ended with."""
    cdef const floating *packed = <const floating *>w.packed
    cdef fnn_int i, s, q, q2, ic, mcb, pc, kcb, jc, ncb, ic_blk, pc_blk, jc_blk
    cdef int flags
    cdef const float *after
    if c0 >= c1 or m <= 0:
        return
    if w.rows_path:
        for i in range(m):
            for s in range(w.blocks):
                q = w.blocks - 1 - s if reverse else s
                if floating is float:
                    fnn_gates_gemv_f32(w.k, a + i * lda, packed + q * w.block_elems + c0 * w.k, c1 - c0,
                                       c + i * ldc + q * w.n + c0, accumulate, reverse)
                else:
                    fnn_gates_gemv_f64(w.k, a + i * lda, packed + q * w.block_elems + c0 * w.k, c1 - c0,
                                       c + i * ldc + q * w.n + c0, accumulate, reverse)
        return
    if w.k == 0:
        if not accumulate:
            for i in range(m):
                for q in range(w.blocks):
                    memset(c + i * ldc + q * w.n + c0, 0, (c1 - c0) * sizeof(floating))
        return
    # loop over m in MC-row blocks, then k in KC blocks (pack A once), then every block's columns
    for ic_blk in range(ceil_div(m, w.t.mc)):
        ic = ic_blk * w.t.mc
        mcb = min(w.t.mc, m - ic)
        for pc_blk in range(ceil_div(w.k, w.t.kc)):
            pc = pc_blk * w.t.kc
            kcb = min(w.t.kc, w.k - pc)
            pack_a(&w.t, mcb, kcb, a + ic * lda + pc, lda, 1, apack)
            flags = FNN_ACCUMULATE if (accumulate or pc > 0) else 0
            for s in range(w.blocks):
                q = w.blocks - 1 - s if reverse else s
                for jc_blk in range(ceil_div(c1 - c0, w.t.nc)):
                    jc = c0 + jc_blk * w.t.nc
                    ncb = min(w.t.nc, c1 - jc)
                    if floating is float:
                        # the weights (MiBs, from L3 each step): fetch the panel used next
                        # while computing this one
                        after = NULL
                        if jc + ncb < c1:
                            after = packed + q * w.block_elems + pc * round_up(w.n, w.t.nr) + (jc + ncb) * kcb
                        elif s + 1 < w.blocks:
                            q2 = w.blocks - 2 - s if reverse else s + 1
                            after = packed + q2 * w.block_elems + pc * round_up(w.n, w.t.nr) + c0 * kcb
                        fnn_gemm_macro_pf_f32(<const fnn_gemm_desc_f32 *>w.t.desc, mcb, ncb, kcb, apack,
                                              packed + q * w.block_elems + pc * round_up(w.n, w.t.nr) + jc * kcb,
                                              c + ic * ldc + q * w.n + jc, ldc, flags, after)
                    else:
                        macro(&w.t, mcb, ncb, kcb, apack,
                              packed + q * w.block_elems + pc * round_up(w.n, w.t.nr) + jc * kcb,
                              c + ic * ldc + q * w.n + jc, ldc, flags, <floating *>NULL)


cdef int step_team(const StepWeights *w, fnn_int m, int nthreads) noexcept nogil:
    """Threads for each step of a recurrence: one for small steps and for fewer than two units'
    worth of columns (the result does not depend on it)."""
    if nthreads <= 1 or <double>m * w.blocks * w.n * w.k < gates_serial_step_fmas or w.n < 2 * w.unit:
        return 1
    return <int>min(<fnn_int>nthreads, ceil_div(w.n, w.unit))


# Packed weights up to which a team may split a step by rows, each thread running every unit
# of its rows and so reading all of them each step (from its own L2): the split by units
# makes every thread read the whole previous state, half of it just written by the other.
cdef size_t rows_split_max_bytes = 512 * 1024


def set_rows_split_max_bytes(size_t limit):
    """Set the packed-weight size up to which steps may split by rows; returns the old value
    (0: always by units, for tests and side-by-side timings)."""
    global rows_split_max_bytes
    old = rows_split_max_bytes
    rows_split_max_bytes = limit
    return old


cdef int step_team_rows(const StepWeights *w, fnn_int m, int nthreads, size_t itemsize) noexcept nogil:
    """Threads for each step of a recurrence of up to m rows split by rows, or 0 where the
    steps are split by units (step_team) or run on one thread: rows where the weights fit in
    L2 beside the rest, with two micro-panels of rows per thread at least."""
    cdef fnn_int team
    if (nthreads <= 1 or <double>m * w.blocks * w.n * w.k < gates_serial_step_fmas or w.rows_path
            or <size_t>w.blocks * w.block_elems * itemsize > rows_split_max_bytes):
        return 0
    team = min(<fnn_int>nthreads, m // (2 * w.t.mr))
    return <int>team if team >= 2 else 0


cdef int step_team_split(const StepWeights *w, fnn_int m, int nthreads, size_t itemsize,
                         bint *by_rows) noexcept nogil:
    """Threads for each step of a recurrence of up to m rows, and whether they split the
    steps by rows (step_team_rows) or by units (step_team)."""
    cdef int team = step_team_rows(w, m, nthreads, itemsize)
    by_rows[0] = team > 0
    return team if team > 0 else step_team(w, m, nthreads)


cdef inline void step_rows_split(const StepWeights *w, fnn_int m, int part, int parts, fnn_int *r0,
                                 fnn_int *r1) noexcept nogil:
    """Part `part` of `parts` of a step's m rows: as even as whole rows allow, the same cut for
    the same m."""
    r0[0] = m * part // parts
    r1[0] = m * (part + 1) // parts


cdef inline fnn_int step_share(const StepWeights *w, int team) noexcept nogil:
    """Hidden units per thread: whole units (panels / NR columns) each."""
    return round_up(ceil_div(w.n, team), w.unit)


cdef inline size_t carve_bytes(fnn_int elems, size_t itemsize) noexcept nogil:
    """Bytes one carved region takes: a whole number of 64-byte lines."""
    return (<size_t>elems * itemsize + 63) // 64 * 64


cdef inline void *carve(char **cursor, fnn_int elems, size_t itemsize) noexcept nogil:
    """The next region of a scratch buffer (64-byte aligned when the buffer is)."""
    cdef void *region = cursor[0]
    cursor[0] += carve_bytes(elems, itemsize)
    return region


cdef inline void cast_sums(const double *sums, fnn_int elems, floating *out) noexcept nogil:
    cdef fnn_int j
    for j in range(elems):
        out[j] = <floating>sums[j]
