# GRU drivers: a whole sequence in one call, and backpropagation through time. The input
# projection of every step is one GEMM; the recurrence then runs with w_hh packed once for all
# steps, each step's product fused with its cell update per range of hidden units (see
# _gates.pxi). BPTT's input and weight gradients are one GEMM each over all steps.

cdef struct GruCall:
    fnn_int steps, n, inp, hid
    const fnn_int *offs      # NULL: every step N rows; else the packed layout of variable
                             # lengths (see step_start, sequence_layout): the live rows only
    fnn_int rows             # rows in all: T N, or offs[T]
    const void *hprev        # (rows - N, H): the previous state of every row after step 0's,
                             # read by the backward (hs itself when offs is NULL)
    const fnn_int *order     # with offs, the forward's padded output hs_out (T, N, H) or NULL:
    void *hs_out             # sorted position r is sequence order[r]. With hs_out the states go
    void *hrows              # straight there, h0 is read in the batch's order, and each thread
                             # gathers a step's previous states into its own N H values of
                             # hrows (thread i at i N H) for the product and the cell
    const void *x            # (T, N, I)
    const void *h0           # (N, H), or NULL: zeros
    const void *w_ih         # (3H, I)
    const void *w_hh         # (3H, H)
    const void *bias         # (3H,): b_ih + b_hh in the r and z parts, b_in in the n part; or NULL
    const void *b_hn         # (H,), or NULL
    void *gates              # (T, N, 3H): r, z, n out of the forward, into the backward;
                             # NULL: the driver's own scratch (forward), recomputed (backward)
    void *ghn                # (T, N, H): h w_hn^T + b_hn, kept with gates (or NULL with it)
    void *hs                 # (T, N, H)
    int nthreads


cdef struct GruGrads:
    const void *grad_hs      # (T, N, H)
    void *grad_x             # (T, N, I)
    void *grad_h0            # (N, H)
    void *grad_w_ih          # (3H, I)
    void *grad_w_hh          # (3H, H)
    void *grad_b_ih          # (3H,)
    void *grad_b_hh          # (3H,)


cdef int gru_forward_step(const StepWeights *w, const GruCall *a, floating *gates, floating *ghn, floating *gh,
                          const floating *h0, fnn_int t, fnn_int j0, fnn_int j1, int part=0,
                          int parts=1) noexcept nogil:
    """Units [j0, j1) of step t: gh = h_{t-1} @ w_hh^T, then the cell update; with parts > 1,
    all units of this part's share of the step's rows (see step_rows_split)."""
    cdef fnn_int n = a.n, hid = a.hid, m = step_rows(a.offs, a.n, t)
    cdef fnn_int r0 = 0, r1 = m
    cdef fnn_int first = step_start(a.offs, a.n, t) * hid
    cdef floating *hs = <floating *>a.hs
    cdef const floating *h_prev = hs + step_start(a.offs, n, t - 1) * hid if t > 0 else h0
    cdef const floating *gh_in = NULL
    cdef floating *apack
    if step_apack(w, n, &apack) != 0:
        return -1
    if parts > 1:
        step_rows_split(w, m, part, parts, &r0, &r1)
    if a.hs_out != NULL:
        return gru_forward_step_padded(w, a, gates + 3 * first, ghn + first if ghn != NULL else NULL, gh, h0, t, m,
                                       r0, r1, j0, j1, part == parts - 1, apack)
    if j0 >= j1 or r0 >= r1:
        return 0
    if h_prev != NULL:
        step_product(w, r1 - r0, h_prev + r0 * hid, hid, gh + r0 * 3 * hid, 3 * hid, j0, j1, False, t & 1, apack)
        gh_in = gh + r0 * 3 * hid
    if floating is float:
        fnn_gru_cell_f32(r1 - r0, hid, j0, j1, gates + 3 * (first + r0 * hid), gh_in, <const float *>a.b_hn,
                         h_prev + r0 * hid if h_prev != NULL else NULL,
                         ghn + first + r0 * hid if ghn != NULL else NULL, hs + first + r0 * hid)
    else:
        fnn_gru_cell_f64(r1 - r0, hid, j0, j1, gates + 3 * (first + r0 * hid), gh_in, <const double *>a.b_hn,
                         h_prev + r0 * hid if h_prev != NULL else NULL,
                         ghn + first + r0 * hid if ghn != NULL else NULL, hs + first + r0 * hid)
    return 0


cdef int gru_forward_step_padded(const StepWeights *w, const GruCall *a, floating *g, floating *ghn, floating *gh,
                                 const floating *h0, fnn_int t, fnn_int m, fnn_int r0, fnn_int r1, fnn_int j0,
                                 fnn_int j1, bint last_part, floating *apack) noexcept nogil:
    """gru_forward_step's rows [r0, r1) of m (packed gates at g, ghn) with the states in the
    padded hs_out: the previous states gathered for the product and the cell, each row's cell
    writing its own padded row; the last part also zeroes the ended sequences' rows (see
    lstm_forward_step_padded)."""
    cdef fnn_int n = a.n, hid = a.hid, i
    cdef floating *hs_t = <floating *>a.hs_out + t * n * hid
    cdef const floating *h_src = <const floating *>a.hs_out + (t - 1) * n * hid if t > 0 else h0
    cdef floating *h_rows = <floating *>a.hrows + omp_get_thread_num() * n * hid
    cdef const floating *h_prev = NULL
    cdef const floating *gh_row = NULL
    if j0 >= j1:
        return 0
    if last_part:
        zero_ended_rows(hs_t, m, n, a.order, hid, j0, j1)
    if r0 >= r1:
        return 0
    if h_src != NULL:
        gather_state_rows(h_src, a.order, r0, r1, hid, h_rows)
        step_product(w, r1 - r0, h_rows + r0 * hid, hid, gh + r0 * 3 * hid, 3 * hid, j0, j1, False, t & 1, apack)
    for i in range(r0, r1):
        if h_src != NULL:
            h_prev, gh_row = h_rows + i * hid, gh + i * 3 * hid
        if floating is float:
            fnn_gru_cell_f32(1, hid, j0, j1, g + 3 * i * hid, gh_row, <const float *>a.b_hn, h_prev,
                             ghn + i * hid if ghn != NULL else NULL, hs_t + a.order[i] * hid)
        else:
            fnn_gru_cell_f64(1, hid, j0, j1, g + 3 * i * hid, gh_row, <const double *>a.b_hn, h_prev,
                             ghn + i * hid if ghn != NULL else NULL, hs_t + a.order[i] * hid)
    return 0


cdef int gru_forward_run(const GruCall *a, const floating *dtype_tag) noexcept nogil:
    cdef fnn_int steps = a.steps, n = a.n, inp = a.inp, hid = a.hid, g3 = 3 * a.hid, rows = a.rows
    cdef StepWeights w
    cdef char *cursor
    cdef floating *gates
    cdef floating *packed
    cdef floating *gh
    cdef floating *zeros
    cdef const floating *h0 = <const floating *>a.h0
    cdef fnn_int t
    cdef int team, rc
    cdef fnn_int width
    cdef bint by_rows
    cdef int failed = 0
    cdef int *failed_p = &failed
    step_weights_init(&w, dtype_tag, n, hid, hid, 3)
    cursor = <char *>fnn_thread_scratch(
        FNN_SCRATCH_SHARED, carve_bytes(3 * w.block_elems, sizeof(floating)) + carve_bytes(n * g3, sizeof(floating))
        + carve_bytes(n * hid, sizeof(floating))
        + (carve_bytes(rows * g3, sizeof(floating)) if a.gates == NULL else 0))
    if cursor == NULL:
        return -1
    packed = <floating *>carve(&cursor, 3 * w.block_elems, sizeof(floating))
    gh = <floating *>carve(&cursor, n * g3, sizeof(floating))
    zeros = <floating *>carve(&cursor, n * hid, sizeof(floating))
    gates = <floating *>a.gates if a.gates != NULL else <floating *>carve(&cursor, rows * g3, sizeof(floating))
    # Zeros stand for h0 = None, skipped in the product, unless w_hh holds an Inf or NaN.
    if h0 == NULL and not all_finite(<const floating *>a.w_hh, g3 * hid):
        memset(zeros, 0, n * hid * sizeof(floating))
        h0 = zeros
    rc = gemm_parallel(rows, g3, inp, <const floating *>a.x, inp, 1, <const floating *>a.w_ih, 1, inp,
                       gates, g3, FNN_BIAS_COL if a.bias != NULL else 0, <const floating *>a.bias, a.nthreads)
    if rc != 0:
        return rc
    step_weights_pack(&w, <const floating *>a.w_hh, hid * hid, 1, hid, packed)
    team = step_team_split(&w, n, a.nthreads, sizeof(floating), &by_rows)
    width = step_share(&w, team)
    for t in range(steps):
        if team <= 1:
            if gru_forward_step(&w, a, gates, <floating *>a.ghn, gh, h0, t, 0, hid) != 0:
                return -1
        elif by_rows:
            with parallel(num_threads=team):
                _note_team()
                if gru_forward_step(&w, a, gates, <floating *>a.ghn, gh, h0, t, 0, hid, omp_get_thread_num(),
                                    omp_get_num_threads()) != 0:
                    failed_p[0] = 1
            if failed:
                return -1
        else:
            with parallel(num_threads=team):
                _note_team()
                if gru_forward_step(&w, a, gates, <floating *>a.ghn, gh, h0, t, min(hid, omp_get_thread_num() * width),
                                    min(hid, (omp_get_thread_num() + 1) * width)) != 0:
                    failed_p[0] = 1
            if failed:
                return -1
    return 0


cdef inline void gru_gates_of_rows(fnn_int m, fnn_int hid, floating *gates, const floating *gh,
                                   const floating *b_hn, const floating *h_prev, floating *ghn) noexcept nogil:
    if floating is float:
        fnn_gru_cell_f32(m, hid, 0, hid, gates, gh, b_hn, h_prev, ghn, NULL)
    else:
        fnn_gru_cell_f64(m, hid, 0, hid, gates, gh, b_hn, h_prev, ghn, NULL)


cdef void gru_cell_rows(fnn_int rows, fnn_int hid, floating *gates, const floating *gh, const floating *b_hn,
                        const floating *h_prev, floating *ghn, int nthreads) noexcept nogil:
    """The cell's gates (no new state) for every row, in blocks of rows."""
    cdef fnn_int block = 64
    cdef fnn_int b, r0
    cdef fnn_int blocks = ceil_div(rows, block)
    if nthreads <= 1 or <double>rows * hid < gates_serial_elems:
        gru_gates_of_rows(rows, hid, gates, gh, b_hn, h_prev, ghn)
        return
    with parallel(num_threads=nthreads):
        _note_team()
        for b in prange(blocks, schedule='static'):
            r0 = b * block
            gru_gates_of_rows(min(block, rows - r0), hid, gates + r0 * 3 * hid,
                              gh + r0 * 3 * hid if gh != NULL else NULL, b_hn,
                              h_prev + r0 * hid if h_prev != NULL else NULL, ghn + r0 * hid)


cdef int gru_recompute_gates(const GruCall *a, floating *gates, floating *ghn, floating *gh,
                             const floating *h0) noexcept nogil:
    """The forward's r, z, n and hn from its states: no recurrence, as h_{t-1} is known."""
    cdef fnn_int steps = a.steps, n = a.n, inp = a.inp, hid = a.hid, g3 = 3 * a.hid, rows = a.rows
    cdef const floating *hs = <const floating *>a.hprev
    cdef const floating *b_hn = <const floating *>a.b_hn
    cdef int rc
    rc = gemm_parallel(rows, g3, inp, <const floating *>a.x, inp, 1, <const floating *>a.w_ih, 1, inp,
                       gates, g3, FNN_BIAS_COL if a.bias != NULL else 0, <const floating *>a.bias, a.nthreads)
    if rc == 0:
        rc = gemm_parallel(rows - n, g3, hid, hs, hid, 1, <const floating *>a.w_hh, 1, hid, gh + n * g3, g3,
                           0, <const floating *>NULL, a.nthreads)
    if rc == 0 and h0 != NULL:
        rc = gemm_parallel(n, g3, hid, h0, hid, 1, <const floating *>a.w_hh, 1, hid, gh, g3, 0,
                           <const floating *>NULL, a.nthreads)
    if rc != 0:
        return rc
    # step 0 from h0 (None: zeros, not multiplied unless needed), later steps from hs
    gru_cell_rows(n, hid, gates, gh if h0 != NULL else NULL, b_hn, h0, ghn, a.nthreads)
    gru_cell_rows(rows - n, hid, gates + n * g3, gh + n * g3, b_hn, hs, ghn + n * hid, a.nthreads)
    return 0


cdef int gru_backward_step(const StepWeights *w, const GruCall *a, const GruGrads *gr, const floating *gates,
                           const floating *ghn, floating *dgi, floating *dgh, floating *carry, double *bsum,
                           fnn_int s, fnn_int j0, fnn_int j1) noexcept nogil:
    """Units [j0, j1) of step t = T-1-s: the gradient from step t+1 through w_hh added to its
    direct part, then the cell's backward. With variable lengths, of step t's m live rows the
    first m_next are live at step t+1 too and carry its gradient; the rest end at t."""
    cdef fnn_int n = a.n, hid = a.hid, g3 = 3 * a.hid
    cdef fnn_int t = a.steps - 1 - s
    cdef fnn_int m = step_rows(a.offs, n, t)
    cdef fnn_int m_next = step_rows(a.offs, n, t + 1) if t < a.steps - 1 else 0
    cdef fnn_int first = step_start(a.offs, n, t) * hid
    # hprev's row first/hid - n holds the previous state of step t's row 0 (both layouts)
    cdef const floating *h_prev = (<const floating *>a.hprev + first - n * hid if t > 0
                                   else <const floating *>a.h0)
    cdef floating *apack
    if step_apack(w, n, &apack) != 0:
        return -1
    if j0 >= j1:
        return 0
    if m_next > 0:
        step_product(w, m_next, dgh + 3 * step_start(a.offs, n, t + 1) * hid, g3, carry, hid, j0, j1, True, s & 1,
                     apack)
    gru_cell_backward_rows(0, m_next, True, hid, j0, j1, gates + 3 * first, ghn + first, h_prev,
                           <const floating *>gr.grad_hs + first, carry, dgi + 3 * first, dgh + 3 * first, bsum)
    gru_cell_backward_rows(m_next, m, False, hid, j0, j1, gates + 3 * first, ghn + first, h_prev,
                           <const floating *>gr.grad_hs + first, carry, dgi + 3 * first, dgh + 3 * first, bsum)
    return 0


cdef inline void gru_cell_backward_rows(fnn_int r0, fnn_int r1, bint has_carry, fnn_int hid, fnn_int j0,
                                        fnn_int j1, const floating *gates, const floating *ghn,
                                        const floating *h_prev, const floating *grad_h, floating *carry,
                                        floating *dgi, floating *dgh, double *bsum) noexcept nogil:
    """The cell's backward for rows [r0, r1) of one step (pointers at the step's row 0)."""
    cdef fnn_int s = r0 * hid
    if r1 <= r0:
        return
    if floating is float:
        fnn_gru_cell_backward_f32(r1 - r0, hid, j0, j1, gates + 3 * s, ghn + s, h_prev + s if h_prev != NULL else NULL,
                                  grad_h + s, carry + s, has_carry, dgi + 3 * s, dgh + 3 * s, bsum)
    else:
        fnn_gru_cell_backward_f64(r1 - r0, hid, j0, j1, gates + 3 * s, ghn + s, h_prev + s if h_prev != NULL else NULL,
                                  grad_h + s, carry + s, has_carry, dgi + 3 * s, dgh + 3 * s, bsum)


cdef int gru_backward_run(const GruCall *a, const GruGrads *gr, const floating *dtype_tag) noexcept nogil:
    cdef fnn_int steps = a.steps, n = a.n, inp = a.inp, hid = a.hid, nh = a.n * a.hid, g3 = 3 * a.hid
    cdef fnn_int rows = a.rows
    cdef StepWeights w
    cdef char *cursor
    cdef floating *gates
    cdef floating *ghn
    cdef floating *dgi
    cdef floating *dgh
    cdef floating *packed
    cdef floating *carry
    cdef floating *zeros
    cdef double *bsum
    cdef const floating *h0 = <const floating *>a.h0
    cdef const floating *w_hh = <const floating *>a.w_hh
    cdef floating *grad_b_hh = <floating *>gr.grad_b_hh
    cdef fnn_int s
    cdef int team, rc = 0
    cdef fnn_int width
    cdef int failed = 0
    cdef int *failed_p = &failed
    step_weights_init(&w, dtype_tag, n, g3, hid, 1)
    cursor = <char *>fnn_thread_scratch(
        FNN_SCRATCH_SHARED, carve_bytes(w.block_elems, sizeof(floating))
        + carve_bytes(rows * g3, sizeof(floating)) * (4 if a.gates == NULL else 2)
        + (carve_bytes(rows * hid, sizeof(floating)) if a.gates == NULL else 0)
        + 2 * carve_bytes(nh, sizeof(floating)) + carve_bytes(4 * hid, sizeof(double)))
    if cursor == NULL:
        return -1
    packed = <floating *>carve(&cursor, w.block_elems, sizeof(floating))
    dgi = <floating *>carve(&cursor, rows * g3, sizeof(floating))
    dgh = <floating *>carve(&cursor, rows * g3, sizeof(floating))
    carry = <floating *>carve(&cursor, nh, sizeof(floating))
    zeros = <floating *>carve(&cursor, nh, sizeof(floating))
    bsum = <double *>carve(&cursor, 4 * hid, sizeof(double))
    memset(zeros, 0, nh * sizeof(floating))
    if a.gates != NULL:
        gates, ghn = <floating *>a.gates, <floating *>a.ghn
    else:
        gates = <floating *>carve(&cursor, rows * g3, sizeof(floating))
        ghn = <floating *>carve(&cursor, rows * hid, sizeof(floating))
        rc = gru_recompute_gates(a, gates, ghn, <floating *>carve(&cursor, rows * g3, sizeof(floating)),
                                 h0 if (h0 != NULL or all_finite(w_hh, g3 * hid)) else zeros)
        if rc != 0:
            return rc
    memset(bsum, 0, 4 * hid * sizeof(double))
    step_weights_pack(&w, w_hh, 0, hid, 1, packed)
    team = step_team(&w, n, a.nthreads)
    width = step_share(&w, team)
    for s in range(steps):
        if team <= 1:
            if gru_backward_step(&w, a, gr, gates, ghn, dgi, dgh, carry, bsum, s, 0, hid) != 0:
                return -1
        else:
            with parallel(num_threads=team):
                _note_team()
                if gru_backward_step(&w, a, gr, gates, ghn, dgi, dgh, carry, bsum, s,
                                     min(hid, omp_get_thread_num() * width),
                                     min(hid, (omp_get_thread_num() + 1) * width)) != 0:
                    failed_p[0] = 1
            if failed:
                return -1
    # the hidden side's bias gradient equals the input side's in r and z; in n it is r times it
    cast_sums(bsum, g3, <floating *>gr.grad_b_ih)
    cast_sums(bsum, 2 * hid, grad_b_hh)
    cast_sums(bsum + g3, hid, grad_b_hh + 2 * hid)
    # grad_h0 = carry + dgh[0] @ w_hh; grad_x = dgi @ w_ih; grad_w_ih = dgi^T x;
    # grad_w_hh = dgh^T [h0, hs[:-1]] (h0 = None: zeros, which matter only against an Inf or NaN)
    memcpy(gr.grad_h0, carry, nh * sizeof(floating))
    rc = gemm_parallel(n, hid, g3, dgh, g3, 1, w_hh, hid, 1, <floating *>gr.grad_h0, hid, FNN_ACCUMULATE,
                       <const floating *>NULL, a.nthreads)
    if rc == 0:
        rc = gemm_parallel(rows, inp, g3, dgi, g3, 1, <const floating *>a.w_ih, inp, 1,
                           <floating *>gr.grad_x, inp, 0, <const floating *>NULL, a.nthreads)
    if rc == 0:
        rc = gemm_parallel(g3, inp, rows, dgi, 1, g3, <const floating *>a.x, inp, 1,
                           <floating *>gr.grad_w_ih, inp, 0, <const floating *>NULL, a.nthreads)
    if rc == 0:
        rc = gemm_parallel(g3, hid, rows - n, dgh + n * g3, 1, g3, <const floating *>a.hprev, hid, 1,
                           <floating *>gr.grad_w_hh, hid, 0, <const floating *>NULL, a.nthreads)
    if rc == 0 and h0 == NULL and not all_finite(dgh, n * g3):
        h0 = zeros
    if rc == 0 and h0 != NULL:
        rc = gemm_parallel(g3, hid, n, dgh, 1, g3, h0, hid, 1, <floating *>gr.grad_w_hh, hid, FNN_ACCUMULATE,
                           <const floating *>NULL, a.nthreads)
    return rc


cdef void gru_call_layout(GruCall *a, cnp.ndarray x, cnp.ndarray hs):
    """A call on the plain layout: every step N rows of the (T, N, ...) arrays."""
    a.rows = sequence_layout(hs, None, &a.steps, &a.n, &a.offs)
    a.inp, a.hid = x.shape[x.ndim - 1], hs.shape[hs.ndim - 1]
    a.hprev = <const void *>hs.data
    a.order, a.hs_out, a.hrows = NULL, NULL, NULL


def gru_forward(cnp.ndarray x, h0, cnp.ndarray w_ih, cnp.ndarray w_hh, bias, b_hn, cnp.ndarray hs, gates, ghn,
                int num_threads):
    """hs (T, N, H) = every hidden state. bias (3H,): b_ih + b_hh in the r and z parts, b_in in
    the n part (or None); b_hn (H,) or None. gates (T, N, 3H) and ghn (T, N, H), both or
    neither, receive what the backward needs (else scratch is used). All C-contiguous, one
    dtype, T, N, H >= 1. (Variable lengths: gru_forward_lengths.)"""
    cdef GruCall a
    cdef int rc
    gru_call_layout(&a, x, hs)
    a.x, a.h0, a.w_ih, a.w_hh = x.data, data_or_null(h0), w_ih.data, w_hh.data
    a.bias, a.b_hn, a.hs = data_or_null(bias), data_or_null(b_hn), hs.data
    a.gates, a.ghn = <void *>data_or_null(gates), <void *>data_or_null(ghn)
    a.nthreads = num_threads
    if cnp.PyArray_TYPE(hs) == cnp.NPY_FLOAT32:
        with nogil:
            rc = gru_forward_run(&a, <float *>NULL)
    else:
        with nogil:
            rc = gru_forward_run(&a, <double *>NULL)
    if rc != 0:
        raise MemoryError("fastnn.gru_forward: could not allocate scratch memory")


def gru_backward(cnp.ndarray grad_hs, cnp.ndarray x, h0, cnp.ndarray hs, gates, ghn, cnp.ndarray w_ih,
                 cnp.ndarray w_hh, bias, b_hn, cnp.ndarray grad_x, cnp.ndarray grad_h0, cnp.ndarray grad_w_ih,
                 cnp.ndarray grad_w_hh, cnp.ndarray grad_b_ih, cnp.ndarray grad_b_hh, int num_threads):
    """BPTT into preallocated outputs. gates, ghn: what gru_forward(gates=..., ghn=...) filled,
    or None to recompute them from hs (and bias, b_hn, only then read). All C-contiguous, one
    dtype, T, N, H >= 1. (Variable lengths: gru_backward_lengths.)"""
    cdef GruCall a
    cdef GruGrads g
    cdef int rc
    gru_call_layout(&a, x, hs)
    a.x, a.h0, a.w_ih, a.w_hh = x.data, data_or_null(h0), w_ih.data, w_hh.data
    a.bias, a.b_hn, a.hs = data_or_null(bias), data_or_null(b_hn), hs.data
    a.gates, a.ghn = <void *>data_or_null(gates), <void *>data_or_null(ghn)
    a.nthreads = num_threads
    g.grad_hs, g.grad_x, g.grad_h0 = grad_hs.data, grad_x.data, grad_h0.data
    g.grad_w_ih, g.grad_w_hh, g.grad_b_ih, g.grad_b_hh = grad_w_ih.data, grad_w_hh.data, grad_b_ih.data, grad_b_hh.data
    if cnp.PyArray_TYPE(hs) == cnp.NPY_FLOAT32:
        with nogil:
            rc = gru_backward_run(&a, &g, <float *>NULL)
    else:
        with nogil:
            rc = gru_backward_run(&a, &g, <double *>NULL)
    if rc != 0:
        raise MemoryError("fastnn.gru_backward: could not allocate scratch memory")


cdef int gru_forward_lengths_run(GruCall *a, const fnn_int *length, const floating *dtype_tag) noexcept nogil:
    """gru_forward_run on the packed layout of these lengths, a holding the padded arrays (x, h0
    in the batch's order, hs_out): the plan, the packed x and the threads' gathered states in
    this thread's FNN_SCRATCH_SEQUENCES buffer."""
    cdef SequencePlan p
    cdef fnn_int n = a.n, hid = a.hid
    cdef char *cursor
    cdef void *packed_x
    cdef int rc
    if sequence_plan(&p, length, n, a.steps) != 0:
        return -1
    cursor = <char *>fnn_thread_scratch(FNN_SCRATCH_SEQUENCES, carve_bytes(p.total * a.inp, sizeof(floating))
                                        + carve_bytes(max(a.nthreads, 1) * n * hid, sizeof(floating)))
    if cursor == NULL:
        free(p.order)
        return -1
    packed_x = carve(&cursor, p.total * a.inp, sizeof(floating))
    gather_packed(<const char *>a.x, a.steps, n, p.rank, p.offs, a.inp * sizeof(floating), <char *>packed_x,
                  a.nthreads)
    a.x = packed_x
    a.hrows = carve(&cursor, max(a.nthreads, 1) * n * hid, sizeof(floating))
    a.offs, a.order, a.rows, a.hprev, a.hs = p.offs, p.order, p.total, NULL, NULL
    rc = gru_forward_run(a, dtype_tag)
    free(p.order)
    return rc


def gru_forward_lengths(cnp.ndarray x, h0, cnp.ndarray w_ih, cnp.ndarray w_hh, bias, b_hn, cnp.ndarray hs, gates,
                        ghn, int num_threads, cnp.ndarray lengths):
    """gru_forward for sequences of these lengths (N intp, each in 1..T, checked by the caller):
    x (T, N, I), hs (T, N, H) padded, in the batch's order, zeros past each sequence's end; h0
    (N, H) or None; bias and b_hn as for gru_forward; gates and ghn both None, or sum(lengths)
    rows (3H, H values) to receive what gru_backward_lengths needs, in the packed order. All
    C-contiguous, one dtype, T, N, H >= 1."""
    cdef GruCall a
    cdef const fnn_int *length = <const fnn_int *>lengths.data
    cdef int rc
    a.steps, a.n, a.inp, a.hid = hs.shape[0], hs.shape[1], x.shape[2], hs.shape[2]
    a.x, a.h0, a.w_ih, a.w_hh = x.data, data_or_null(h0), w_ih.data, w_hh.data
    a.bias, a.b_hn, a.hs_out = data_or_null(bias), data_or_null(b_hn), hs.data
    a.gates, a.ghn = <void *>data_or_null(gates), <void *>data_or_null(ghn)
    a.nthreads = num_threads
    if cnp.PyArray_TYPE(hs) == cnp.NPY_FLOAT32:
        with nogil:
            rc = gru_forward_lengths_run(&a, length, <float *>NULL)
    else:
        with nogil:
            rc = gru_forward_lengths_run(&a, length, <double *>NULL)
    if rc != 0:
        raise MemoryError("fastnn.gru_forward: could not allocate scratch memory")


cdef int gru_backward_lengths_run(GruCall *a, GruGrads *gr, const fnn_int *length,
                                  const floating *dtype_tag) noexcept nogil:
    """gru_backward_run on the packed layout of these lengths, a and gr holding the padded arrays
    (x, hs, grad_hs, grad_x, and h0, grad_h0 in the batch's order): the plan and the packed
    copies in this thread's FNN_SCRATCH_SEQUENCES buffer."""
    cdef SequencePlan p
    cdef fnn_int n = a.n, hid = a.hid, inp = a.inp
    cdef size_t row = hid * sizeof(floating)
    cdef char *cursor
    cdef void *grad_x_out = gr.grad_x
    cdef void *grad_h0_out = gr.grad_h0
    cdef void *region
    cdef int rc
    if sequence_plan(&p, length, n, a.steps) != 0:
        return -1
    cursor = <char *>fnn_thread_scratch(
        FNN_SCRATCH_SEQUENCES, 2 * carve_bytes(p.total * inp, sizeof(floating))
        + carve_bytes(p.total * hid, sizeof(floating)) + carve_bytes((p.total - n) * hid, sizeof(floating))
        + 2 * carve_bytes(n * hid, sizeof(floating)))
    if cursor == NULL:
        free(p.order)
        return -1
    region = carve(&cursor, p.total * inp, sizeof(floating))
    gather_packed(<const char *>a.x, a.steps, n, p.rank, p.offs, inp * sizeof(floating), <char *>region, a.nthreads)
    a.x = region
    region = carve(&cursor, p.total * hid, sizeof(floating))
    gather_packed(<const char *>gr.grad_hs, a.steps, n, p.rank, p.offs, row, <char *>region, a.nthreads)
    gr.grad_hs = region
    region = carve(&cursor, (p.total - n) * hid, sizeof(floating))
    gather_previous(<const char *>a.hs, a.steps, n, p.rank, p.offs, row, <char *>region, a.nthreads)
    a.hprev = region
    gr.grad_x = carve(&cursor, p.total * inp, sizeof(floating))
    gr.grad_h0 = carve(&cursor, n * hid, sizeof(floating))
    region = carve(&cursor, n * hid, sizeof(floating))
    if a.h0 != NULL:
        sort_states(<const char *>a.h0, n, p.rank, row, <char *>region)
        a.h0 = region
    a.offs, a.rows, a.hs = p.offs, p.total, NULL
    rc = gru_backward_run(a, gr, dtype_tag)
    if rc == 0:
        scatter_packed(<const char *>gr.grad_x, a.steps, n, p.rank, p.offs, inp * sizeof(floating),
                       <char *>grad_x_out, a.nthreads)
        unsort_states(<const char *>gr.grad_h0, n, p.rank, row, <char *>grad_h0_out)
    free(p.order)
    return rc


def gru_backward_lengths(cnp.ndarray grad_hs, cnp.ndarray x, h0, cnp.ndarray hs, gates, ghn, cnp.ndarray w_ih,
                         cnp.ndarray w_hh, bias, b_hn, cnp.ndarray grad_x, cnp.ndarray grad_h0,
                         cnp.ndarray grad_w_ih, cnp.ndarray grad_w_hh, cnp.ndarray grad_b_ih,
                         cnp.ndarray grad_b_hh, int num_threads, cnp.ndarray lengths):
    """gru_backward for sequences of these lengths (N intp, each in 1..T, checked by the
    caller): grad_hs, x, hs, grad_x (T, ...) padded, in the batch's order (grad_x zero past each
    sequence's end), h0 and grad_h0 (N, H); gates, ghn what gru_forward_lengths(gates=...,
    ghn=...) filled, or None to recompute them (and bias, b_hn, only then read). All
    C-contiguous, one dtype, T, N, H >= 1."""
    cdef GruCall a
    cdef GruGrads g
    cdef const fnn_int *length = <const fnn_int *>lengths.data
    cdef int rc
    a.steps, a.n, a.inp, a.hid = hs.shape[0], hs.shape[1], x.shape[2], hs.shape[2]
    a.x, a.h0, a.w_ih, a.w_hh = x.data, data_or_null(h0), w_ih.data, w_hh.data
    a.bias, a.b_hn, a.hs = data_or_null(bias), data_or_null(b_hn), hs.data
    a.gates, a.ghn = <void *>data_or_null(gates), <void *>data_or_null(ghn)
    a.order, a.hs_out, a.hrows, a.nthreads = NULL, NULL, NULL, num_threads
    g.grad_hs, g.grad_x, g.grad_h0 = grad_hs.data, grad_x.data, grad_h0.data
    g.grad_w_ih, g.grad_w_hh, g.grad_b_ih, g.grad_b_hh = grad_w_ih.data, grad_w_hh.data, grad_b_ih.data, grad_b_hh.data
    if cnp.PyArray_TYPE(hs) == cnp.NPY_FLOAT32:
        with nogil:
            rc = gru_backward_lengths_run(&a, &g, length, <float *>NULL)
    else:
        with nogil:
            rc = gru_backward_lengths_run(&a, &g, length, <double *>NULL)
    if rc != 0:
        raise MemoryError("fastnn.gru_backward: could not allocate scratch memory")
