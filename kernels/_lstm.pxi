# LSTM drivers: a whole sequence in one call, and backpropagation through time. The input
# projection of every step is one GEMM; the recurrence then runs with w_hh packed once for all
# steps, each step's product fused with its cell update per range of hidden units (see
# _gates.pxi). BPTT's input and weight gradients are one GEMM each over all steps.

cdef struct LstmCall:
    fnn_int steps, n, inp, hid
    const fnn_int *offs      # NULL: every step N rows; else the packed layout of variable
                             # lengths (see step_start, sequence_layout): the live rows only
    fnn_int rows             # rows in all: T N, or offs[T]
    const void *hprev        # (rows - N, H): the previous state of every row after step 0's,
                             # read by the backward (hs itself when offs is NULL)
    const fnn_int *order     # with offs, the forward's padded outputs hs_out, cs_out (T, N, H)
    void *hs_out             # or NULL: sorted position r is sequence order[r]. With hs_out the
    void *cs_out             # states go straight there, h0 and c0 are read in the batch's order,
    void *hrows              # and each thread gathers a step's previous states into its own N H
                             # values of hrows (thread i at i N H) for the product
    const void *x            # (T, N, I)
    const void *h0           # (N, H), or NULL: zeros
    const void *c0           # (N, H), or NULL: zeros
    const void *w_ih         # (4H, I)
    const void *w_hh         # (4H, H)
    const void *bias         # (4H,) = b_ih + b_hh, or NULL
    void *gates              # (T, N, 4H): activated gates out of the forward, into the backward;
                             # NULL: the driver's own scratch (forward), recomputed (backward)
    void *hs                 # (T, N, H)
    void *cs                 # (T, N, H)
    int nthreads


cdef struct LstmGrads:
    const void *grad_hs      # (T, N, H)
    const void *grad_c_n     # (N, H), or NULL: zeros
    void *grad_x             # (T, N, I)
    void *grad_h0            # (N, H)
    void *grad_c0            # (N, H)
    void *grad_w_ih          # (4H, I)
    void *grad_w_hh          # (4H, H)
    void *grad_b             # (4H,)


cdef int lstm_forward_step(const StepWeights *w, const LstmCall *a, floating *gates, const floating *h0,
                           fnn_int t, fnn_int j0, fnn_int j1, int part=0, int parts=1) noexcept nogil:
    """Units [j0, j1) of step t: gates[t] += h_{t-1} @ w_hh^T, then the cell update; with
    parts > 1, all units of this part's share of the step's rows (see step_rows_split)."""
    cdef fnn_int n = a.n, hid = a.hid, m = step_rows(a.offs, a.n, t)
    cdef fnn_int r0 = 0, r1 = m
    cdef fnn_int first = step_start(a.offs, a.n, t) * hid
    cdef fnn_int before = step_start(a.offs, a.n, t - 1) * hid if t > 0 else 0
    cdef floating *hs = <floating *>a.hs
    cdef floating *cs = <floating *>a.cs
    cdef floating *g = gates + 4 * first
    cdef const floating *h_prev = hs + before if t > 0 else h0
    cdef const floating *c_prev = cs + before if t > 0 else <const floating *>a.c0
    cdef floating *apack
    if step_apack(w, n, &apack) != 0:
        return -1
    if parts > 1:
        step_rows_split(w, m, part, parts, &r0, &r1)
    if a.hs_out != NULL:
        return lstm_forward_step_padded(w, a, g, h0, t, m, r0, r1, j0, j1, part == parts - 1, apack)
    if j0 >= j1 or r0 >= r1:
        return 0
    if h_prev != NULL:
        step_product(w, r1 - r0, h_prev + r0 * hid, hid, g + r0 * 4 * hid, 4 * hid, j0, j1, True, t & 1, apack)
    if floating is float:
        fnn_lstm_cell_f32(r1 - r0, hid, j0, j1, g + r0 * 4 * hid, c_prev + r0 * hid if c_prev != NULL else NULL,
                          cs + first + r0 * hid, hs + first + r0 * hid)
    else:
        fnn_lstm_cell_f64(r1 - r0, hid, j0, j1, g + r0 * 4 * hid, c_prev + r0 * hid if c_prev != NULL else NULL,
                          cs + first + r0 * hid, hs + first + r0 * hid)
    return 0


cdef int lstm_forward_step_padded(const StepWeights *w, const LstmCall *a, floating *g, const floating *h0,
                                  fnn_int t, fnn_int m, fnn_int r0, fnn_int r1, fnn_int j0, fnn_int j1,
                                  bint last_part, floating *apack) noexcept nogil:
    """lstm_forward_step's rows [r0, r1) of m (packed gates at g) with the states in the padded
    hs_out, cs_out: the previous hidden states gathered for the product, each row's cell
    reading and writing its own padded rows; the last part also zeroes the ended sequences'
    rows. The cells write straight into the outputs, amid the arithmetic, where a copy after
    the step would wait on every line of them (6% of a small variable-length forward)."""
    cdef fnn_int n = a.n, hid = a.hid, i, b
    cdef floating *hs_t = <floating *>a.hs_out + t * n * hid
    cdef floating *cs_t = <floating *>a.cs_out + t * n * hid
    cdef const floating *h_src = <const floating *>a.hs_out + (t - 1) * n * hid if t > 0 else h0
    cdef const floating *c_src = <const floating *>a.cs_out + (t - 1) * n * hid if t > 0 else <const floating *>a.c0
    cdef floating *h_rows = <floating *>a.hrows + omp_get_thread_num() * n * hid
    if j0 >= j1:
        return 0
    if last_part:
        zero_ended_rows(hs_t, m, n, a.order, hid, j0, j1)
        zero_ended_rows(cs_t, m, n, a.order, hid, j0, j1)
    if r0 >= r1:
        return 0
    if h_src != NULL:
        gather_state_rows(h_src, a.order, r0, r1, hid, h_rows)
        step_product(w, r1 - r0, h_rows + r0 * hid, hid, g + r0 * 4 * hid, 4 * hid, j0, j1, True, t & 1, apack)
    for i in range(r0, r1):
        b = a.order[i]
        if floating is float:
            fnn_lstm_cell_f32(1, hid, j0, j1, g + i * 4 * hid, c_src + b * hid if c_src != NULL else NULL,
                              cs_t + b * hid, hs_t + b * hid)
        else:
            fnn_lstm_cell_f64(1, hid, j0, j1, g + i * 4 * hid, c_src + b * hid if c_src != NULL else NULL,
                              cs_t + b * hid, hs_t + b * hid)
    return 0


cdef int lstm_forward_run(const LstmCall *a, const floating *dtype_tag) noexcept nogil:
    cdef fnn_int steps = a.steps, n = a.n, inp = a.inp, hid = a.hid, g4 = 4 * a.hid, rows = a.rows
    cdef StepWeights w
    cdef char *cursor
    cdef floating *gates
    cdef floating *packed
    cdef const floating *h0 = <const floating *>a.h0
    cdef floating *zeros
    cdef fnn_int t
    cdef int team, rc
    cdef fnn_int width
    cdef bint by_rows
    cdef int failed = 0
    cdef int *failed_p = &failed
    step_weights_init(&w, dtype_tag, n, hid, hid, 4)
    cursor = <char *>fnn_thread_scratch(
        FNN_SCRATCH_SHARED, carve_bytes(4 * w.block_elems, sizeof(floating)) + carve_bytes(n * hid, sizeof(floating))
        + (carve_bytes(rows * g4, sizeof(floating)) if a.gates == NULL else 0))
    if cursor == NULL:
        return -1
    packed = <floating *>carve(&cursor, 4 * w.block_elems, sizeof(floating))
    zeros = <floating *>carve(&cursor, n * hid, sizeof(floating))
    gates = <floating *>a.gates if a.gates != NULL else <floating *>carve(&cursor, rows * g4, sizeof(floating))
    # Zeros stand for h0 = None, skipped in the product, unless w_hh holds an Inf or NaN
    # (0 * Inf is NaN, as in the oracle and PyTorch).
    if h0 == NULL and not all_finite(<const floating *>a.w_hh, g4 * hid):
        memset(zeros, 0, n * hid * sizeof(floating))
        h0 = zeros
    # the input projection of every step, both biases included
    rc = gemm_parallel(rows, g4, inp, <const floating *>a.x, inp, 1, <const floating *>a.w_ih, 1, inp,
                       gates, g4, FNN_BIAS_COL if a.bias != NULL else 0, <const floating *>a.bias, a.nthreads)
    if rc != 0:
        return rc
    # w_hh^T, one block per gate: block q is rows q*H .. of w_hh, transposed
    step_weights_pack(&w, <const floating *>a.w_hh, hid * hid, 1, hid, packed)
    team = step_team_split(&w, n, a.nthreads, sizeof(floating), &by_rows)
    width = step_share(&w, team)
    for t in range(steps):
        if team <= 1:
            if lstm_forward_step(&w, a, gates, h0, t, 0, hid) != 0:
                return -1
        elif by_rows:
            with parallel(num_threads=team):
                _note_team()
                if lstm_forward_step(&w, a, gates, h0, t, 0, hid, omp_get_thread_num(), omp_get_num_threads()) != 0:
                    failed_p[0] = 1
            if failed:
                return -1
        else:
            with parallel(num_threads=team):
                _note_team()
                if lstm_forward_step(&w, a, gates, h0, t, min(hid, omp_get_thread_num() * width),
                                     min(hid, (omp_get_thread_num() + 1) * width)) != 0:
                    failed_p[0] = 1
            if failed:
                return -1
    return 0


cdef void lstm_activate_all(fnn_int rows, fnn_int hid, floating *gates, int nthreads) noexcept nogil:
    """Every row's pre-activations replaced by the activated gates, in blocks of rows."""
    cdef fnn_int block = 64
    cdef fnn_int b, r0
    cdef fnn_int blocks = ceil_div(rows, block)
    cdef int team = nthreads if <double>rows * hid >= gates_serial_elems else 1
    if team <= 1:
        if floating is float:
            fnn_lstm_activate_f32(rows, hid, gates)
        else:
            fnn_lstm_activate_f64(rows, hid, gates)
        return
    with parallel(num_threads=team):
        _note_team()
        for b in prange(blocks, schedule='static'):
            r0 = b * block
            if floating is float:
                fnn_lstm_activate_f32(min(block, rows - r0), hid, gates + r0 * 4 * hid)
            else:
                fnn_lstm_activate_f64(min(block, rows - r0), hid, gates + r0 * 4 * hid)


cdef int lstm_recompute_gates(const LstmCall *a, floating *gates, const floating *h0) noexcept nogil:
    """The forward's activated gates from its states: no recurrence, as h_{t-1} is known."""
    cdef fnn_int steps = a.steps, n = a.n, inp = a.inp, hid = a.hid, g4 = 4 * a.hid, rows = a.rows
    cdef int rc
    rc = gemm_parallel(rows, g4, inp, <const floating *>a.x, inp, 1, <const floating *>a.w_ih, 1, inp,
                       gates, g4, FNN_BIAS_COL if a.bias != NULL else 0, <const floating *>a.bias, a.nthreads)
    if rc == 0 and rows > n:
        rc = gemm_parallel(rows - n, g4, hid, <const floating *>a.hprev, hid, 1, <const floating *>a.w_hh, 1,
                           hid, gates + n * g4, g4, FNN_ACCUMULATE, <const floating *>NULL, a.nthreads)
    if rc == 0 and h0 != NULL:
        rc = gemm_parallel(n, g4, hid, h0, hid, 1, <const floating *>a.w_hh, 1, hid, gates, g4, FNN_ACCUMULATE,
                           <const floating *>NULL, a.nthreads)
    if rc == 0:
        lstm_activate_all(rows, hid, gates, a.nthreads)
    return rc


cdef int lstm_backward_step(const StepWeights *w, const LstmCall *a, const LstmGrads *gr, const floating *gates,
                            floating *dgates, floating *rec, floating *dc, double *bsum, fnn_int s,
                            fnn_int j0, fnn_int j1) noexcept nogil:
    """Units [j0, j1) of step t = T-1-s: the gradient from step t+1 through w_hh, then the cell's
    backward. With variable lengths, of step t's m live rows the first m_next are live at step
    t+1 too and get its gradient; the rest end at t (their grad_c is grad_c_n's, untouched)."""
    cdef fnn_int n = a.n, hid = a.hid, g4 = 4 * a.hid
    cdef fnn_int t = a.steps - 1 - s
    cdef fnn_int m = step_rows(a.offs, n, t)
    cdef fnn_int m_next = step_rows(a.offs, n, t + 1) if t < a.steps - 1 else 0
    cdef fnn_int first = step_start(a.offs, n, t) * hid
    cdef const floating *cs = <const floating *>a.cs
    cdef const floating *c_prev = cs + step_start(a.offs, n, t - 1) * hid if t > 0 else <const floating *>a.c0
    cdef floating *apack
    if step_apack(w, n, &apack) != 0:
        return -1
    if j0 >= j1:
        return 0
    if m_next > 0:
        step_product(w, m_next, dgates + 4 * step_start(a.offs, n, t + 1) * hid, g4, rec, hid, j0, j1, False,
                     s & 1, apack)
    lstm_cell_backward_rows(0, m_next, hid, j0, j1, gates + 4 * first, c_prev, cs + first,
                            <const floating *>gr.grad_hs + first, rec, dc, dgates + 4 * first, bsum)
    lstm_cell_backward_rows(m_next, m, hid, j0, j1, gates + 4 * first, c_prev, cs + first,
                            <const floating *>gr.grad_hs + first, NULL, dc, dgates + 4 * first, bsum)
    return 0


cdef inline void lstm_cell_backward_rows(fnn_int r0, fnn_int r1, fnn_int hid, fnn_int j0, fnn_int j1,
                                         const floating *gates, const floating *c_prev, const floating *c,
                                         const floating *grad_h, const floating *rec, floating *dc,
                                         floating *dgates, double *bsum) noexcept nogil:
    """The cell's backward for rows [r0, r1) of one step (pointers at the step's row 0; rec
    NULL: no gradient from the next step)."""
    cdef fnn_int s = r0 * hid
    if r1 <= r0:
        return
    if floating is float:
        fnn_lstm_cell_backward_f32(r1 - r0, hid, j0, j1, gates + 4 * s, c_prev + s if c_prev != NULL else NULL,
                                   c + s, grad_h + s, rec + s if rec != NULL else NULL, dc + s, dgates + 4 * s, bsum)
    else:
        fnn_lstm_cell_backward_f64(r1 - r0, hid, j0, j1, gates + 4 * s, c_prev + s if c_prev != NULL else NULL,
                                   c + s, grad_h + s, rec + s if rec != NULL else NULL, dc + s, dgates + 4 * s, bsum)


cdef int lstm_backward_run(const LstmCall *a, const LstmGrads *gr, const floating *dtype_tag) noexcept nogil:
    cdef fnn_int steps = a.steps, n = a.n, inp = a.inp, hid = a.hid, nh = a.n * a.hid, g4 = 4 * a.hid
    cdef fnn_int rows = a.rows
    cdef StepWeights w
    cdef char *cursor
    cdef floating *gates
    cdef floating *dgates
    cdef floating *packed
    cdef floating *rec
    cdef floating *dc
    cdef floating *zeros
    cdef double *bsum
    cdef const floating *h0 = <const floating *>a.h0
    cdef const floating *w_hh = <const floating *>a.w_hh
    cdef fnn_int s
    cdef int team, rc = 0
    cdef fnn_int width
    cdef int failed = 0
    cdef int *failed_p = &failed
    # B of the chain is w_hh itself (k = 4H, n = H): the gradient at h_{t-1} is dgates[t] @ w_hh
    step_weights_init(&w, dtype_tag, n, g4, hid, 1)
    cursor = <char *>fnn_thread_scratch(
        FNN_SCRATCH_SHARED, carve_bytes(w.block_elems, sizeof(floating))
        + carve_bytes(rows * g4, sizeof(floating)) * (2 if a.gates == NULL else 1)
        + 3 * carve_bytes(nh, sizeof(floating)) + carve_bytes(g4, sizeof(double)))
    if cursor == NULL:
        return -1
    packed = <floating *>carve(&cursor, w.block_elems, sizeof(floating))
    dgates = <floating *>carve(&cursor, rows * g4, sizeof(floating))
    rec = <floating *>carve(&cursor, nh, sizeof(floating))
    dc = <floating *>carve(&cursor, nh, sizeof(floating))
    zeros = <floating *>carve(&cursor, nh, sizeof(floating))
    bsum = <double *>carve(&cursor, g4, sizeof(double))
    memset(zeros, 0, nh * sizeof(floating))
    if a.gates != NULL:
        gates = <floating *>a.gates
    else:
        gates = <floating *>carve(&cursor, rows * g4, sizeof(floating))
        rc = lstm_recompute_gates(a, gates, h0 if (h0 != NULL or all_finite(w_hh, g4 * hid)) else zeros)
        if rc != 0:
            return rc
    if gr.grad_c_n != NULL:
        memcpy(dc, gr.grad_c_n, nh * sizeof(floating))
    else:
        memset(dc, 0, nh * sizeof(floating))
    memset(bsum, 0, g4 * sizeof(double))
    step_weights_pack(&w, w_hh, 0, hid, 1, packed)
    team = step_team(&w, n, a.nthreads)
    width = step_share(&w, team)
    for s in range(steps):
        if team <= 1:
            if lstm_backward_step(&w, a, gr, gates, dgates, rec, dc, bsum, s, 0, hid) != 0:
                return -1
        else:
            with parallel(num_threads=team):
                _note_team()
                if lstm_backward_step(&w, a, gr, gates, dgates, rec, dc, bsum, s,
                                      min(hid, omp_get_thread_num() * width),
                                      min(hid, (omp_get_thread_num() + 1) * width)) != 0:
                    failed_p[0] = 1
            if failed:
                return -1
    memcpy(gr.grad_c0, dc, nh * sizeof(floating))
    cast_sums(bsum, g4, <floating *>gr.grad_b)
    # grad_h0 = dgates[0] @ w_hh; grad_x = dgates @ w_ih; grad_w_ih = dgates^T x;
    # grad_w_hh = dgates^T [h0, hs[:-1]] (h0 = None: zeros, which matter only against an Inf or NaN)
    rc = gemm_parallel(n, hid, g4, dgates, g4, 1, w_hh, hid, 1, <floating *>gr.grad_h0, hid, 0,
                       <const floating *>NULL, a.nthreads)
    if rc == 0:
        rc = gemm_parallel(rows, inp, g4, dgates, g4, 1, <const floating *>a.w_ih, inp, 1,
                           <floating *>gr.grad_x, inp, 0, <const floating *>NULL, a.nthreads)
    if rc == 0:
        rc = gemm_parallel(g4, inp, rows, dgates, 1, g4, <const floating *>a.x, inp, 1,
                           <floating *>gr.grad_w_ih, inp, 0, <const floating *>NULL, a.nthreads)
    if rc == 0:
        rc = gemm_parallel(g4, hid, rows - n, dgates + n * g4, 1, g4, <const floating *>a.hprev, hid, 1,
                           <floating *>gr.grad_w_hh, hid, 0, <const floating *>NULL, a.nthreads)
    if rc == 0 and h0 == NULL and not all_finite(dgates, n * g4):
        h0 = zeros
    if rc == 0 and h0 != NULL:
        rc = gemm_parallel(g4, hid, n, dgates, 1, g4, h0, hid, 1, <floating *>gr.grad_w_hh, hid, FNN_ACCUMULATE,
                           <const floating *>NULL, a.nthreads)
    return rc


cdef inline const void *data_or_null(object a):
    return NULL if a is None else <const void *>(<cnp.ndarray>a).data


cdef void call_layout(LstmCall *a, cnp.ndarray x, cnp.ndarray hs):
    """A call on the plain layout: every step N rows of the (T, N, ...) arrays."""
    a.rows = sequence_layout(hs, None, &a.steps, &a.n, &a.offs)
    a.order, a.hs_out, a.cs_out, a.hrows = NULL, NULL, NULL, NULL
    a.inp, a.hid = x.shape[x.ndim - 1], hs.shape[hs.ndim - 1]
    a.hprev = <const void *>hs.data


def lstm_forward(cnp.ndarray x, h0, c0, cnp.ndarray w_ih, cnp.ndarray w_hh, bias, cnp.ndarray hs, cnp.ndarray cs,
                 gates, int num_threads):
    """hs, cs (T, N, H) = every hidden and cell state; bias is b_ih + b_hh (or None); gates, if
    not None, (T, N, 4H) receives the activated gates (else scratch is used). All C-contiguous,
    one dtype, T, N, H >= 1. (Variable lengths: lstm_forward_lengths.)"""
    cdef LstmCall a
    cdef int rc
    call_layout(&a, x, hs)
    a.x, a.h0, a.c0, a.w_ih, a.w_hh = x.data, data_or_null(h0), data_or_null(c0), w_ih.data, w_hh.data
    a.bias, a.gates, a.hs, a.cs = data_or_null(bias), <void *>data_or_null(gates), hs.data, cs.data
    a.nthreads = num_threads
    if cnp.PyArray_TYPE(hs) == cnp.NPY_FLOAT32:
        with nogil:
            rc = lstm_forward_run(&a, <float *>NULL)
    else:
        with nogil:
            rc = lstm_forward_run(&a, <double *>NULL)
    if rc != 0:
        raise MemoryError("fastnn.lstm_forward: could not allocate scratch memory")


def lstm_backward(cnp.ndarray grad_hs, grad_c_n, cnp.ndarray x, h0, c0, cnp.ndarray hs, cnp.ndarray cs, gates,
                  cnp.ndarray w_ih, cnp.ndarray w_hh, bias, cnp.ndarray grad_x, cnp.ndarray grad_h0,
                  cnp.ndarray grad_c0, cnp.ndarray grad_w_ih, cnp.ndarray grad_w_hh, cnp.ndarray grad_b,
                  int num_threads):
    """BPTT into preallocated outputs. gates: what lstm_forward(gates=...) filled, or None to
    recompute them from hs (and bias, only then read). All C-contiguous, one dtype, T, N, H >= 1.
    (Variable lengths: lstm_backward_lengths.)"""
    cdef LstmCall a
    cdef LstmGrads g
    cdef int rc
    call_layout(&a, x, hs)
    a.x, a.h0, a.c0, a.w_ih, a.w_hh = x.data, data_or_null(h0), data_or_null(c0), w_ih.data, w_hh.data
    a.bias, a.gates, a.hs, a.cs = data_or_null(bias), <void *>data_or_null(gates), hs.data, cs.data
    a.nthreads = num_threads
    g.grad_hs, g.grad_c_n = grad_hs.data, data_or_null(grad_c_n)
    g.grad_x, g.grad_h0, g.grad_c0 = grad_x.data, grad_h0.data, grad_c0.data
    g.grad_w_ih, g.grad_w_hh, g.grad_b = grad_w_ih.data, grad_w_hh.data, grad_b.data
    if cnp.PyArray_TYPE(hs) == cnp.NPY_FLOAT32:
        with nogil:
            rc = lstm_backward_run(&a, &g, <float *>NULL)
    else:
        with nogil:
            rc = lstm_backward_run(&a, &g, <double *>NULL)
    if rc != 0:
        raise MemoryError("fastnn.lstm_backward: could not allocate scratch memory")


cdef int lstm_forward_lengths_run(LstmCall *a, const fnn_int *length, const floating *dtype_tag) noexcept nogil:
    """lstm_forward_run on the packed layout of these lengths, a holding the padded arrays (x,
    h0, c0 in the batch's order, hs_out and cs_out): the plan, the packed x and the threads'
    gathered states in this thread's FNN_SCRATCH_SEQUENCES buffer."""
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
    a.offs, a.order, a.rows, a.hprev, a.hs, a.cs = p.offs, p.order, p.total, NULL, NULL, NULL
    rc = lstm_forward_run(a, dtype_tag)
    free(p.order)
    return rc


def lstm_forward_lengths(cnp.ndarray x, h0, c0, cnp.ndarray w_ih, cnp.ndarray w_hh, bias, cnp.ndarray hs,
                         cnp.ndarray cs, gates, int num_threads, cnp.ndarray lengths):
    """lstm_forward for sequences of these lengths (N intp, each in 1..T, checked by the caller):
    x (T, N, I), hs and cs (T, N, H) padded, in the batch's order, zeros past each sequence's
    end; h0, c0 (N, H) or None; bias b_ih + b_hh or None; gates None, or sum(lengths) rows of
    4H values to receive the activated gates in the packed order (for lstm_backward_lengths).
    All C-contiguous, one dtype, T, N, H >= 1."""
    cdef LstmCall a
    cdef const fnn_int *length = <const fnn_int *>lengths.data
    cdef int rc
    a.steps, a.n, a.inp, a.hid = hs.shape[0], hs.shape[1], x.shape[2], hs.shape[2]
    a.x, a.h0, a.c0, a.w_ih, a.w_hh = x.data, data_or_null(h0), data_or_null(c0), w_ih.data, w_hh.data
    a.bias, a.gates, a.hs_out, a.cs_out = data_or_null(bias), <void *>data_or_null(gates), hs.data, cs.data
    a.nthreads = num_threads
    if cnp.PyArray_TYPE(hs) == cnp.NPY_FLOAT32:
        with nogil:
            rc = lstm_forward_lengths_run(&a, length, <float *>NULL)
    else:
        with nogil:
            rc = lstm_forward_lengths_run(&a, length, <double *>NULL)
    if rc != 0:
        raise MemoryError("fastnn.lstm_forward: could not allocate scratch memory")


cdef int lstm_backward_lengths_run(LstmCall *a, LstmGrads *gr, const fnn_int *length,
                                   const floating *dtype_tag) noexcept nogil:
    """lstm_backward_run on the packed layout of these lengths, a and gr holding the padded
    arrays (x, hs, cs, grad_hs, grad_x, and h0, c0, grad_c_n, grad_h0, grad_c0 in the batch's
    order): the plan and the packed copies in this thread's FNN_SCRATCH_SEQUENCES buffer."""
    cdef SequencePlan p
    cdef fnn_int n = a.n, hid = a.hid, inp = a.inp
    cdef size_t row = hid * sizeof(floating)
    cdef char *cursor
    cdef void *grad_x_out = gr.grad_x
    cdef void *grad_h0_out = gr.grad_h0
    cdef void *grad_c0_out = gr.grad_c0
    cdef void *region
    cdef int rc
    if sequence_plan(&p, length, n, a.steps) != 0:
        return -1
    cursor = <char *>fnn_thread_scratch(
        FNN_SCRATCH_SEQUENCES, 2 * carve_bytes(p.total * inp, sizeof(floating))
        + 2 * carve_bytes(p.total * hid, sizeof(floating)) + carve_bytes((p.total - n) * hid, sizeof(floating))
        + 5 * carve_bytes(n * hid, sizeof(floating)))
    if cursor == NULL:
        free(p.order)
        return -1
    region = carve(&cursor, p.total * inp, sizeof(floating))
    gather_packed(<const char *>a.x, a.steps, n, p.rank, p.offs, inp * sizeof(floating), <char *>region, a.nthreads)
    a.x = region
    region = carve(&cursor, p.total * hid, sizeof(floating))
    gather_packed(<const char *>gr.grad_hs, a.steps, n, p.rank, p.offs, row, <char *>region, a.nthreads)
    gr.grad_hs = region
    region = carve(&cursor, p.total * hid, sizeof(floating))
    gather_packed(<const char *>a.cs, a.steps, n, p.rank, p.offs, row, <char *>region, a.nthreads)
    a.cs = region
    region = carve(&cursor, (p.total - n) * hid, sizeof(floating))
    gather_previous(<const char *>a.hs, a.steps, n, p.rank, p.offs, row, <char *>region, a.nthreads)
    a.hprev = region
    gr.grad_x = carve(&cursor, p.total * inp, sizeof(floating))
    gr.grad_h0 = carve(&cursor, n * hid, sizeof(floating))
    gr.grad_c0 = carve(&cursor, n * hid, sizeof(floating))
    region = carve(&cursor, n * hid, sizeof(floating))
    if a.h0 != NULL:
        sort_states(<const char *>a.h0, n, p.rank, row, <char *>region)
        a.h0 = region
    region = carve(&cursor, n * hid, sizeof(floating))
    if a.c0 != NULL:
        sort_states(<const char *>a.c0, n, p.rank, row, <char *>region)
        a.c0 = region
    region = carve(&cursor, n * hid, sizeof(floating))
    if gr.grad_c_n != NULL:
        sort_states(<const char *>gr.grad_c_n, n, p.rank, row, <char *>region)
        gr.grad_c_n = region
    a.offs, a.rows, a.hs = p.offs, p.total, NULL
    rc = lstm_backward_run(a, gr, dtype_tag)
    if rc == 0:
        scatter_packed(<const char *>gr.grad_x, a.steps, n, p.rank, p.offs, inp * sizeof(floating),
                       <char *>grad_x_out, a.nthreads)
        unsort_states(<const char *>gr.grad_h0, n, p.rank, row, <char *>grad_h0_out)
        unsort_states(<const char *>gr.grad_c0, n, p.rank, row, <char *>grad_c0_out)
    free(p.order)
    return rc


def lstm_backward_lengths(cnp.ndarray grad_hs, grad_c_n, cnp.ndarray x, h0, c0, cnp.ndarray hs, cnp.ndarray cs,
                          gates, cnp.ndarray w_ih, cnp.ndarray w_hh, bias, cnp.ndarray grad_x, cnp.ndarray grad_h0,
                          cnp.ndarray grad_c0, cnp.ndarray grad_w_ih, cnp.ndarray grad_w_hh, cnp.ndarray grad_b,
                          int num_threads, cnp.ndarray lengths):
    """lstm_backward for sequences of these lengths (N intp, each in 1..T, checked by the
    caller): grad_hs, x, hs, cs, grad_x (T, ...) padded, in the batch's order (grad_x zero past
    each sequence's end); h0, c0, grad_c_n (or None), grad_h0, grad_c0 (N, H); gates what
    lstm_forward_lengths(gates=...) filled, or None to recompute them (and bias, only then
    read). All C-contiguous, one dtype, T, N, H >= 1."""
    cdef LstmCall a
    cdef LstmGrads g
    cdef const fnn_int *length = <const fnn_int *>lengths.data
    cdef int rc
    a.steps, a.n, a.inp, a.hid = hs.shape[0], hs.shape[1], x.shape[2], hs.shape[2]
    a.x, a.h0, a.c0, a.w_ih, a.w_hh = x.data, data_or_null(h0), data_or_null(c0), w_ih.data, w_hh.data
    a.bias, a.gates, a.hs, a.cs = data_or_null(bias), <void *>data_or_null(gates), hs.data, cs.data
    a.order, a.hs_out, a.cs_out, a.hrows, a.nthreads = NULL, NULL, NULL, NULL, num_threads
    g.grad_hs, g.grad_c_n = grad_hs.data, data_or_null(grad_c_n)
    g.grad_x, g.grad_h0, g.grad_c0 = grad_x.data, grad_h0.data, grad_c0.data
    g.grad_w_ih, g.grad_w_hh, g.grad_b = grad_w_ih.data, grad_w_hh.data, grad_b.data
    if cnp.PyArray_TYPE(hs) == cnp.NPY_FLOAT32:
        with nogil:
            rc = lstm_backward_lengths_run(&a, &g, length, <float *>NULL)
    else:
        with nogil:
            rc = lstm_backward_lengths_run(&a, &g, length, <double *>NULL)
    if rc != 0:
        raise MemoryError("fastnn.lstm_backward: could not allocate scratch memory")
