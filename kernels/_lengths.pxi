# Variable-length batches (the recurrent kernels' lengths=): the packed layout's plan and the
# row moves between it and the padded (T, N, K) arrays (see fastnn/_lengths.py). Plain loops of
# memcpy: they run in the time of reading and writing each row once.

cdef inline void unpack_step_rows(const floating *src, fnn_int r0, fnn_int r1, fnn_int zero_from, fnn_int n,
                                  const fnn_int *rank, floating *dst, fnn_int width, fnn_int j0,
                                  fnn_int j1) noexcept nogil:
    """Columns [j0, j1) of one step's packed rows [r0, r1) (the rows one thread of a team
    computed; all the step's live rows: 0, rows) into the padded step at dst (n rows, in batch
    order), and zeros for the sequences at sorted positions zero_from and after (the ended
    ones, for the one thread that writes them; n: none). The forward drivers unpack each
    step's states right after computing them, while they are in cache. Sequence b sits at
    sorted position rank[b]; the padded rows are written in order (the hardware prefetchers
    follow sequential stores, not permuted ones)."""
    cdef fnn_int b, r
    cdef size_t count = (j1 - j0) * sizeof(floating)
    for b in range(n):
        r = rank[b]
        if r0 <= r < r1:
            memcpy(dst + b * width + j0, src + r * width + j0, count)
        elif r >= zero_from:
            memset(dst + b * width + j0, 0, count)


cdef inline void zero_ended_rows(floating *dst, fnn_int m, fnn_int n, const fnn_int *order, fnn_int width,
                                 fnn_int j0, fnn_int j1) noexcept nogil:
    """Columns [j0, j1) of the padded step at dst zeroed for the sequences at sorted positions
    m and after (those ended before this step)."""
    cdef fnn_int i
    for i in range(m, n):
        memset(dst + order[i] * width + j0, 0, (j1 - j0) * sizeof(floating))


cdef inline void gather_state_rows(const floating *src, const fnn_int *order, fnn_int r0, fnn_int r1,
                                   fnn_int width, floating *dst) noexcept nogil:
    """Rows [r0, r1) of dst (packed order) from the padded step at src: row i is src's row
    order[i]."""
    cdef fnn_int i
    for i in range(r0, r1):
        memcpy(dst + i * width, src + order[i] * width, width * sizeof(floating))


cdef inline void pack_step(const floating *src, fnn_int rows, fnn_int n, const fnn_int *rank, floating *dst,
                           fnn_int width) noexcept nogil:
    """One padded step (n rows at src, in batch order) into its packed rows at dst: the live
    ones (sorted position rank[b] < rows), read in order."""
    cdef fnn_int b
    for b in range(n):
        if rank[b] < rows:
            memcpy(dst + rank[b] * width, src + b * width, width * sizeof(floating))


cdef int plan_packing(const fnn_int *length, fnn_int n, fnn_int steps, fnn_int lead, fnn_int *order,
                      fnn_int *rank, fnn_int *offs) noexcept nogil:
    """The packed layout of the steps from `lead` on, every length being above lead (sequence b
    then has length[b] - lead steps), into the caller's buffers: order (n) longest first, ties
    in the batch's order (a stable counting sort), rank (n) its inverse (sequence b at sorted
    position rank[b]), offs (steps - lead + 1), step t's rows offs[t] .. offs[t + 1] - 1.
    Returns -1 when memory could not be had."""
    cdef fnn_int b, t, live = steps - lead
    cdef fnn_int *start = <fnn_int *>malloc((live + 2) * sizeof(fnn_int))
    if start == NULL:
        return -1
    memset(start, 0, (live + 2) * sizeof(fnn_int))
    offs[0] = 0
    for b in range(n):                 # start[L - 1]: how many sequences have length L
        start[length[b] - lead - 1] += 1
    for t in range(live - 1, -1, -1):
        start[t] += start[t + 1]       # now start[t] = #(lengths > t) = rows of step t
    for t in range(live):
        offs[t + 1] = offs[t] + start[t]
    for t in range(live):              # the first sorted position of length t + 1: #(lengths > t + 1)
        start[t] = start[t + 1]
    start[live] = 0
    for b in range(n):
        rank[b] = start[length[b] - lead - 1]
        order[rank[b]] = b
        start[length[b] - lead - 1] += 1
    free(start)
    return 0


cdef enum:
    GATHER_ROWS = 0      # packed[offs[t] + rank[b]] = padded[t, b]
    SCATTER_ROWS = 1     # padded[t, b] = packed[offs[t] + rank[b]], zeros past each end
    GATHER_PREVIOUS = 2  # out[offs[t] - offs[1] + rank[b]] = padded[t - 1, b], t >= 1

# Bytes from which a team moves the rows, steps dealt out in turn: the small shapes' copies are
# a few hundred kilobytes, some tens of microseconds on one core.
cdef size_t row_moves_team_bytes = 256 * 1024


def set_row_moves_team_bytes(size_t limit):
    """Set the size from which a team moves the rows; returns the old value (0: a team
    whenever there are threads, for tests)."""
    global row_moves_team_bytes
    old = row_moves_team_bytes
    row_moves_team_bytes = limit
    return old


cdef inline void move_step_rows(int kind, const char *src, fnn_int t, fnn_int n, const fnn_int *rank,
                                const fnn_int *offs, size_t row, char *dst) noexcept nogil:
    """One step's rows of a move (the padded rows taken in order: the hardware prefetchers
    follow sequential accesses, not permuted ones)."""
    cdef fnn_int b, r, live = offs[t + 1] - offs[t]
    for b in range(n):
        r = rank[b]
        if kind == GATHER_ROWS:
            if r < live:
                memcpy(dst + (offs[t] + r) * row, src + (t * n + b) * row, row)
        elif kind == SCATTER_ROWS:
            if r < live:
                memcpy(dst + (t * n + b) * row, src + (offs[t] + r) * row, row)
            else:
                memset(dst + (t * n + b) * row, 0, row)
        elif t > 0 and r < live:
            memcpy(dst + (offs[t] - offs[1] + r) * row, src + ((t - 1) * n + b) * row, row)


cdef void move_rows(int kind, const char *src, fnn_int steps, fnn_int n, const fnn_int *rank, const fnn_int *offs,
                    size_t row, char *dst, int nthreads) noexcept nogil:
    cdef fnn_int t
    cdef int team = <int>min(<fnn_int>nthreads, steps)
    if team <= 1 or <size_t>(steps * n) * row < row_moves_team_bytes:
        for t in range(steps):
            move_step_rows(kind, src, t, n, rank, offs, row, dst)
        return
    with parallel(num_threads=team):
        _note_team()
        for t in prange(steps, schedule='static', chunksize=1):
            move_step_rows(kind, src, t, n, rank, offs, row, dst)


cdef inline void gather_packed(const char *padded, fnn_int steps, fnn_int n, const fnn_int *rank,
                               const fnn_int *offs, size_t row, char *packed, int nthreads=1) noexcept nogil:
    """packed[offs[t] + rank[b]] = padded[t, b] for every live row, rows of `row` bytes."""
    move_rows(GATHER_ROWS, padded, steps, n, rank, offs, row, packed, nthreads)


cdef inline void scatter_packed(const char *packed, fnn_int steps, fnn_int n, const fnn_int *rank,
                                const fnn_int *offs, size_t row, char *padded, int nthreads=1) noexcept nogil:
    """padded[t, b] = packed[offs[t] + rank[b]] for every live row, zeros everywhere else."""
    move_rows(SCATTER_ROWS, packed, steps, n, rank, offs, row, padded, nthreads)


cdef inline void gather_previous(const char *padded, fnn_int steps, fnn_int n, const fnn_int *rank,
                                 const fnn_int *offs, size_t row, char *out, int nthreads=1) noexcept nogil:
    """out: the previous state of every packed row after step 0's, read from the padded states:
    row offs[t] - offs[1] + rank[b] is padded[t - 1, b]."""
    move_rows(GATHER_PREVIOUS, padded, steps, n, rank, offs, row, out, nthreads)


# A whole call with lengths= in compiled code (the LSTM's and GRU's drivers, as the RNN's): on
# the small recurrent shapes a call is a millisecond or two, and building the plan and the
# packed copies from Python cost a tenth of it.

cdef struct SequencePlan:
    fnn_int *order           # (N,) longest first; the three arrays are one allocation
    fnn_int *rank            # (N,) sequence b at sorted position rank[b]
    fnn_int *offs            # (T + 1,) step t's packed rows offs[t] .. offs[t + 1] - 1
    fnn_int total            # offs[T]


cdef int sequence_plan(SequencePlan *p, const fnn_int *length, fnn_int n, fnn_int steps) noexcept nogil:
    """plan_packing of every step into p (free with free(p.order)); -1 when memory could not be
    had."""
    p.order = <fnn_int *>malloc((2 * n + steps + 1) * sizeof(fnn_int))
    if p.order == NULL:
        return -1
    p.rank, p.offs = p.order + n, p.order + 2 * n
    if plan_packing(length, n, steps, 0, p.order, p.rank, p.offs) != 0:
        free(p.order)
        return -1
    p.total = p.offs[steps]
    return 0


cdef void sort_states(const char *src, fnn_int n, const fnn_int *rank, size_t row, char *dst) noexcept nogil:
    """The N rows of a state (batch order) into the packed order."""
    cdef fnn_int b
    for b in range(n):
        memcpy(dst + rank[b] * row, src + b * row, row)


cdef void unsort_states(const char *src, fnn_int n, const fnn_int *rank, size_t row, char *dst) noexcept nogil:
    """The N rows of a state in the packed order back into the batch's order."""
    cdef fnn_int b
    for b in range(n):
        memcpy(dst + b * row, src + rank[b] * row, row)


cdef object plain_lengths(object lengths, fnn_int steps, fnn_int n):
    """lengths as an intp copy when they are plain (a list of N ints or a 1-D integer ndarray
    of N values, each in 1..steps), else None: the full path checks them and raises."""
    cdef cnp.ndarray out
    cdef cnp.npy_intp dims[1]
    cdef fnn_int *v
    cdef fnn_int b
    if type(lengths) is list:
        if len(<list>lengths) != n:
            return None
        dims[0] = n
        out = cnp.PyArray_EMPTY(1, dims, cnp.NPY_INTP, 0)
        v = <fnn_int *>out.data
        for b in range(n):
            item = (<list>lengths)[b]
            if type(item) is not int:
                return None
            try:
                v[b] = item
            except OverflowError:
                return None
    elif (type(lengths) is cnp.ndarray and (<cnp.ndarray>lengths).ndim == 1
          and (<cnp.ndarray>lengths).dtype.kind in "iu" and (<cnp.ndarray>lengths).shape[0] == n
          and (<cnp.ndarray>lengths).itemsize <= sizeof(fnn_int)):
        out = cnp.PyArray_Cast(<cnp.ndarray>lengths, cnp.NPY_INTP)
        v = <fnn_int *>out.data  # (an unsigned value past the signed range wraps below 1)
    else:
        return None
    for b in range(n):
        if v[b] < 1 or v[b] > steps:
            return None
    return out


cdef fnn_int plain_rows(cnp.ndarray lengths):
    """sum(lengths) of plain_lengths' array: the live rows."""
    cdef const fnn_int *v = <const fnn_int *>lengths.data
    cdef fnn_int b, total = 0
    for b in range(lengths.shape[0]):
        total += v[b]
    return total
