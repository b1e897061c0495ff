# Elman RNN drivers: a whole sequence in one call. The input projection for every step is one
# large GEMM; the recurrence then runs in compiled code with w_hh packed once for all steps.

cdef enum Activation:
    ACT_TANH = 0
    ACT_RELU = 1


cdef inline void activate(floating *v, fnn_int rows, fnn_int ld, fnn_int c0, fnn_int c1, int act) noexcept nogil:
    """v[:, c0:c1] = act(v[:, c0:c1]) in place; NaN stays NaN under both."""
    cdef fnn_int i, j
    cdef floating *row
    for i in range(rows):
        row = v + i * ld
        if act == ACT_TANH:
            if floating is float:
                fnn_tanh_f32(row + c0, c1 - c0)
            else:
                fnn_tanh_f64(row + c0, c1 - c0)
        else:
            for j in range(c0, c1):
                if row[j] < 0:
                    row[j] = 0


cdef inline void activation_grad(floating *dz, const floating *h, fnn_int count, int act) noexcept nogil:
    """dz *= act'(pre-activation), written in terms of the output h = act(pre). relu's is a
    select, as in PyTorch: a dead unit passes nothing on, not even an Inf or NaN."""
    cdef fnn_int i
    if act == ACT_TANH:
        for i in range(count):
            dz[i] = dz[i] * (1 - h[i] * h[i])
    else:
        for i in range(count):
            if not (h[i] > 0):
                dz[i] = 0


cdef inline fnn_int step_start(const fnn_int *offs, fnn_int n, fnn_int t) noexcept nogil:
    """The first row of step t: every step has n rows, or (variable lengths, packed) step t has
    rows offs[t] .. offs[t + 1] - 1, the live sequences, longest first."""
    return offs[t] if offs != NULL else t * n


cdef inline fnn_int step_rows(const fnn_int *offs, fnn_int n, fnn_int t) noexcept nogil:
    """How many rows step t has (see step_start)."""
    return offs[t + 1] - offs[t] if offs != NULL else n


cdef inline fnn_int packed_b_elems(const Tiling *t, fnn_int k, fnn_int n) noexcept nogil:
    return round_up(n, t.nr) * k


cdef void pack_b_whole(const Tiling *t, fnn_int k, fnn_int n, const floating *b, fnn_int rs, fnn_int cs,
                       floating *dst) noexcept nogil:
    """All of B (k x n) in KC blocks; block pc starts at dst + pc * round_up(n, NR)."""
    cdef fnn_int pc_blk
    cdef fnn_int pc, kcb
    for pc_blk in range(ceil_div(k, t.kc)):
        pc = pc_blk * t.kc
        kcb = min(t.kc, k - pc)
        pack_b(t, kcb, n, b + pc * rs, rs, cs, dst + pc * round_up(n, t.nr))


cdef inline void gemv_packed(fnn_int k, const floating *a, const floating *b, fnn_int n, int nr,
                             floating *c) noexcept nogil:
    if floating is float:
        fnn_gemv_packed_f32(k, a, b, n, nr, c)
    else:
        fnn_gemv_packed_f64(k, a, b, n, nr, c)


cdef void product_with_packed_b(const Tiling *t, fnn_int m, fnn_int n, fnn_int k,
                                const floating *a, fnn_int lda, const floating *bpacked,
                                floating *c, fnn_int ldc, fnn_int c0, fnn_int c1,
                                floating *apack) noexcept nogil:
    """C[:, c0:c1] += A (m x k, row-major) * B[:, c0:c1], B packed by pack_b_whole; c0 % NR == 0.

    One or two rows go row by row: an MR-row register tile would compute mostly padding."""
    cdef fnn_int jc_blk, pc_blk
    cdef fnn_int pc, kcb, jc, ncb, i
    for pc_blk in range(ceil_div(k, t.kc)):
        pc = pc_blk * t.kc
        kcb = min(t.kc, k - pc)
        if m <= 2:
            for i in range(m):
                gemv_packed(kcb, a + i * lda + pc, bpacked + pc * round_up(n, t.nr) + c0 * kcb,
                            c1 - c0, t.nr, c + i * ldc + c0)
            continue
        pack_a(t, m, kcb, a + pc, lda, 1, apack)
        for jc_blk in range(ceil_div(c1 - c0, t.nc)):
            jc = c0 + jc_blk * t.nc
            ncb = min(t.nc, c1 - jc)
            macro(t, m, ncb, kcb, apack, bpacked + pc * round_up(n, t.nr) + jc * kcb,
                  c + jc, ldc, FNN_ACCUMULATE, NULL)


cdef int step_columns(const Tiling *t, fnn_int steps, fnn_int n, const fnn_int *offs, fnn_int hid, fnn_int cur,
                      const floating *h0, const floating *bpacked, floating *out, int act,
                      bint forward, fnn_int c0, fnn_int c1, const fnn_int *rank, floating *padded) noexcept nogil:
    """Columns [c0, c1) of one step of the recurrence (see `recurrence`). Returns -1 when
    scratch memory could not be had."""
    cdef fnn_int prev = cur - 1 if forward else cur + 1
    cdef fnn_int rows = step_rows(offs, n, cur)
    cdef fnn_int m = rows
    cdef const floating *h_prev = NULL
    cdef floating *apack = <floating *>fnn_thread_scratch(FNN_SCRATCH_OWN,
                                                          round_up(n, t.mr) * t.kc * sizeof(floating))
    if apack == NULL:
        return -1
    if c0 >= c1:
        return 0
    if 0 <= prev < steps:
        h_prev = out + step_start(offs, n, prev) * hid
        if not forward:  # only the sequences still live at step prev pass a gradient back
            m = step_rows(offs, n, prev)
    elif forward:
        h_prev = h0
    if h_prev != NULL:
        product_with_packed_b(t, m, hid, hid, h_prev, hid, bpacked, out + step_start(offs, n, cur) * hid, hid,
                              c0, c1, apack)
    if forward:
        activate(out + step_start(offs, n, cur) * hid, rows, hid, c0, c1, act)
        if padded != NULL:
            unpack_step_rows(out + step_start(offs, n, cur) * hid, 0, rows, rows, n, rank, padded + cur * n * hid,
                             hid, c0, c1)
    return 0


cdef int recurrence(fnn_int steps, fnn_int n, const fnn_int *offs, fnn_int hid, const floating *h0,
                    const floating *b_src, fnn_int b_rs, fnn_int b_cs, floating *out, const floating *grad_hs, int act,
                    bint forward, int nthreads, const fnn_int *rank, floating *padded,
                    bint b_packed=False) noexcept nogil:
    """The serial chain over time shared by the forward pass and BPTT.

    forward: out[t] (pre-filled with the input projection) += out[t-1] @ B (h0 for t = 0,
    skipped when NULL), then act. backward: out[t] = grad_hs[t] + out[t+1] @ B, then times
    act'(hs[t]), with the hidden states hs passed as h0. B (hid x hid) is read through strides
    b_rs, b_cs and packed once for every step. offs: NULL (n rows a step), or the packed
    layout of variable lengths (see step_start): each step then runs over its live rows only;
    with rank (sequence b at sorted position rank[b]), padded (forward) receives each step's
    states unpacked (see unpack_step), and the backward reads grad_hs and hs (h0) padded,
    (T, N, H) in batch order, each step's live rows straight into place. b_packed: this
    thread's shared scratch still holds B packed by the previous call (same B, same size)."""
    cdef Tiling t = active_tiling(out)
    cdef fnn_int step, cur, width, first, rows, b
    cdef floating *bpacked
    cdef int team = nthreads
    cdef int failed = 0
    cdef int *failed_p = &failed
    bpacked = <floating *>fnn_thread_scratch(FNN_SCRATCH_SHARED, packed_b_elems(&t, hid, hid) * sizeof(floating))
    if bpacked == NULL:
        return -1
    if not b_packed:
        pack_b_whole(&t, hid, hid, b_src, b_rs, b_cs, bpacked)
    # A fork/join per step costs more than a small product: one thread unless each step is big.
    if <double>n * hid * hid < 2.0e6 or hid < 2 * t.nr:
        team = 1
    team = <int>min(<fnn_int>team, ceil_div(hid, t.nr))
    width = round_up(ceil_div(hid, max(team, 1)), t.nr)
    for step in range(steps):
        cur = step if forward else steps - 1 - step
        first = step_start(offs, n, cur) * hid
        rows = step_rows(offs, n, cur)
        if not forward and rank == NULL:
            memcpy(out + first, grad_hs + first, rows * hid * sizeof(floating))
        elif not forward:
            pack_step(grad_hs + cur * n * hid, rows, n, rank, out + first, hid)
        if team <= 1:
            if step_columns(&t, steps, n, offs, hid, cur, h0, bpacked, out, act, forward, 0, hid, rank,
                            padded) != 0:
                return -1
        else:
            with parallel(num_threads=team):
                _note_team()
                if step_columns(&t, steps, n, offs, hid, cur, h0, bpacked, out, act, forward,
                                min(hid, omp_get_thread_num() * width),
                                min(hid, (omp_get_thread_num() + 1) * width), rank, padded) != 0:
                    failed_p[0] = 1
            if failed:
                return -1
        if not forward and rank == NULL:
            activation_grad(out + first, h0 + first, rows * hid, act)
        elif not forward:
            for b in range(n):
                if rank[b] < rows:
                    activation_grad(out + first + rank[b] * hid, h0 + (cur * n + b) * hid, hid, act)
    return 0


cdef bint array_all_finite(cnp.ndarray a, fnn_int offset, fnn_int count):
    """Whether a's C-contiguous elements [offset, offset + count) are all finite."""
    if cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT32:
        return fnn_all_finite_f32(<float *>a.data + offset, count) != 0
    return fnn_all_finite_f64(<double *>a.data + offset, count) != 0


cdef cnp.ndarray zeros_like_state(cnp.ndarray hs, fnn_int n):
    """Zeros of one step's state (N, H): h0 = None stands for these. Multiplying them by an Inf
    or NaN gives NaN, as in the oracle and PyTorch, so they cannot just be skipped then."""
    cdef cnp.npy_intp dims[2]
    dims[0] = n
    dims[1] = hs.shape[hs.ndim - 1]
    return cnp.PyArray_ZEROS(2, dims, cnp.PyArray_TYPE(hs), 0)


cdef fnn_int sequence_layout(cnp.ndarray states, object offs, fnn_int *steps, fnn_int *n,
                             const fnn_int **offp):
    """(steps, batch, offsets) of a driver call; returns its rows in all. offs None: states is
    (T, N, H), every step N rows. Else offs (T + 1,) intp holds the packed layout of variable
    lengths (see step_start): states is (R, H), R >= offs[T] rows, step t's live rows at
    offs[t] .. offs[t + 1] - 1, longest sequence first, N = offs[1] (every sequence is live at
    step 0)."""
    cdef cnp.ndarray o
    if offs is None:
        steps[0], n[0], offp[0] = states.shape[0], states.shape[1], NULL
        return steps[0] * n[0]
    o = <cnp.ndarray>offs
    offp[0] = <const fnn_int *>o.data
    steps[0] = o.shape[0] - 1
    n[0] = offp[0][1] - offp[0][0] if steps[0] > 0 else 0
    return offp[0][steps[0]]


def rnn_forward(cnp.ndarray x, h0, cnp.ndarray w_ih, cnp.ndarray w_hh, bias, cnp.ndarray hs,
                bint relu, int num_threads):
    """hs (T, N, H) = every hidden state; bias is b_ih + b_hh (or None). All C-contiguous.
    (Variable lengths: rnn_forward_lengths.)"""
    cdef fnn_int steps = hs.shape[0], n = hs.shape[1]
    cdef const fnn_int *offp = NULL
    cdef fnn_int rows = steps * n
    cdef fnn_int hid = hs.shape[hs.ndim - 1], inp = x.shape[x.ndim - 1]
    cdef cnp.ndarray h0a, ba = bias
    cdef int act = ACT_RELU if relu else ACT_TANH
    cdef int flags = FNN_BIAS_COL if bias is not None else 0
    cdef int rc = 0
    if h0 is None and not array_all_finite(w_hh, 0, hid * hid):
        h0 = zeros_like_state(hs, n)
    h0a = h0
    if cnp.PyArray_TYPE(hs) == cnp.NPY_FLOAT32:
        with nogil:
            rc = gemm_parallel(rows, hid, inp, <float *>x.data, inp, 1, <float *>w_ih.data, 1, inp,
                               <float *>hs.data, hid, flags, <float *>ba.data if bias is not None else NULL,
                               num_threads)
            if rc == 0:
                rc = recurrence(steps, n, offp, hid, <float *>h0a.data if h0 is not None else NULL,
                                <float *>w_hh.data, 1, hid, <float *>hs.data, NULL, act, True, num_threads,
                                NULL, <float *>NULL)
    else:
        with nogil:
            rc = gemm_parallel(rows, hid, inp, <double *>x.data, inp, 1, <double *>w_ih.data, 1, inp,
                               <double *>hs.data, hid, flags, <double *>ba.data if bias is not None else NULL,
                               num_threads)
            if rc == 0:
                rc = recurrence(steps, n, offp, hid, <double *>h0a.data if h0 is not None else NULL,
                                <double *>w_hh.data, 1, hid, <double *>hs.data, NULL, act, True, num_threads,
                                NULL, <double *>NULL)
    if rc != 0:
        raise MemoryError("fastnn.rnn_forward: could not allocate packing buffers")
    return hs


def rnn_backward(cnp.ndarray grad_hs, cnp.ndarray x, h0, cnp.ndarray hs, cnp.ndarray w_ih,
                 cnp.ndarray w_hh, bint relu, cnp.ndarray dz, cnp.ndarray grad_x, cnp.ndarray grad_h0,
                 cnp.ndarray grad_w_ih, cnp.ndarray grad_w_hh, int num_threads):
    """BPTT into preallocated C-contiguous outputs; dz (T, N, H) receives the gradient at
    every step's pre-activation (its sum over T and N is grad_b, taken by the caller).
    (Variable lengths: rnn_backward_lengths.)"""
    cdef fnn_int steps = hs.shape[0], n = hs.shape[1]
    cdef const fnn_int *offp = NULL
    cdef const fnn_int *rankp = NULL
    cdef fnn_int rows = steps * n
    cdef fnn_int hid = hs.shape[hs.ndim - 1], inp = x.shape[x.ndim - 1]
    cdef cnp.ndarray h0a
    cdef cnp.ndarray hp = hs
    cdef int act = ACT_RELU if relu else ACT_TANH
    cdef int rc = 0
    cdef bint is_f32 = cnp.PyArray_TYPE(hs) == cnp.NPY_FLOAT32
    # The chain backwards: dz[t] = (grad_hs[t] + dz[t+1] @ w_hh) * act'(hs[t]).
    if is_f32:
        with nogil:
            rc = recurrence(steps, n, offp, hid, <float *>hs.data, <float *>w_hh.data, hid, 1, <float *>dz.data,
                            <float *>grad_hs.data, act, False, num_threads, rankp, <float *>NULL)
    else:
        with nogil:
            rc = recurrence(steps, n, offp, hid, <double *>hs.data, <double *>w_hh.data, hid, 1, <double *>dz.data,
                            <double *>grad_hs.data, act, False, num_threads, rankp, <double *>NULL)
    if rc == 0 and h0 is None and steps > 0 and not array_all_finite(dz, 0, n * hid):
        h0 = zeros_like_state(hs, n)
    h0a = h0
    if rc == 0 and is_f32:
        with nogil:
            rc = weight_grads(rows, n, hid, inp, <float *>x.data,
                              <float *>h0a.data if h0 is not None else NULL, <float *>hp.data,
                              <float *>w_ih.data, <float *>w_hh.data, <float *>dz.data,
                              <float *>grad_x.data, <float *>grad_h0.data, <float *>grad_w_ih.data,
                              <float *>grad_w_hh.data, num_threads)
    elif rc == 0:
        with nogil:
            rc = weight_grads(rows, n, hid, inp, <double *>x.data,
                              <double *>h0a.data if h0 is not None else NULL, <double *>hp.data,
                              <double *>w_ih.data, <double *>w_hh.data, <double *>dz.data,
                              <double *>grad_x.data, <double *>grad_h0.data, <double *>grad_w_ih.data,
                              <double *>grad_w_hh.data, num_threads)
    if rc != 0:
        raise MemoryError("fastnn.rnn_backward: could not allocate packing buffers")


cdef int weight_grads(fnn_int rows, fnn_int n, fnn_int hid, fnn_int inp, const floating *x,
                      const floating *h0, const floating *hprev, const floating *w_ih,
                      const floating *w_hh, const floating *dz, floating *grad_x, floating *grad_h0,
                      floating *grad_w_ih, floating *grad_w_hh, int nthreads, const fnn_int *x_rows=NULL,
                      const fnn_int *prev_rows=NULL) noexcept nogil:
    """Everything BPTT needs once dz is known, each as one GEMM over all (live) rows at once:
    rows in all, the first n of them step 0's; hprev holds the previous state of every later
    row (hs[:-1] when every step has n rows). x_rows, prev_rows: NULL, or row j of x, hprev is
    their row x_rows[j], prev_rows[j] (the padded arrays of a variable-length batch)."""
    cdef fnn_int nh = n * hid
    cdef int rc = 0
    # grad_h0 = dz[0] @ w_hh
    if rows > 0:
        rc = gemm_parallel(n, hid, hid, dz, hid, 1, w_hh, hid, 1, grad_h0, hid, 0, <floating *>NULL, nthreads)
    else:
        memset(grad_h0, 0, nh * sizeof(floating))
    # grad_x = dz @ w_ih, grad_w_ih = dz^T x, grad_w_hh = dz^T [h0, hs[:-1]].
    if rc == 0:
        rc = gemm_parallel(rows, inp, hid, dz, hid, 1, w_ih, inp, 1, grad_x, inp, 0, <floating *>NULL, nthreads)
    if rc == 0:
        rc = gemm_parallel(hid, inp, rows, dz, 1, hid, x, inp, 1, grad_w_ih, inp, 0, <floating *>NULL, nthreads,
                           x_rows)
    if rc == 0:
        rc = gemm_parallel(hid, hid, rows - n if rows > 0 else 0, dz + nh, 1, hid, hprev, hid, 1,
                           grad_w_hh, hid, 0, <floating *>NULL, nthreads, prev_rows)
    if rc == 0 and h0 != NULL and rows > 0:
        rc = gemm_parallel(hid, hid, n, dz, 1, hid, h0, hid, 1, grad_w_hh, hid, FNN_ACCUMULATE,
                           <floating *>NULL, nthreads)
    return rc


# Variable lengths (lengths=): the whole call in compiled code, its packed copies in the calling
# thread's FNN_SCRATCH_SEQUENCES buffer, kept between calls (see fastnn/_lengths.py for the
# layout). On the small recurrent shapes a call is a few hundred microseconds, so building the
# plan and the copies from Python cost a tenth of it.

cdef fnn_int leading_steps(const fnn_int *length, fnn_int n, fnn_int steps) noexcept nogil:
    """The leading steps every sequence is live at, but the last such one: they run as the
    uniform path straight on the padded arrays, so that every sequence is live at the packed
    part's first step."""
    cdef fnn_int b, lead = steps
    for b in range(n):
        lead = min(lead, length[b] - 1)
    return max(lead, <fnn_int>0)


cdef int rnn_forward_lengths_run(fnn_int steps, fnn_int n, fnn_int inp, fnn_int hid, const fnn_int *length,
                                 const floating *x, const floating *h0, const floating *w_ih,
                                 const floating *w_hh, const floating *bias, floating *hs, int act,
                                 int nthreads) noexcept nogil:
    cdef fnn_int lead = leading_steps(length, n, steps)
    cdef fnn_int live = steps - lead, total
    cdef int flags = FNN_BIAS_COL if bias != NULL else 0
    cdef int rc = 0
    cdef const floating *h_start = h0
    cdef fnn_int *plan
    cdef char *cursor
    cdef floating *xs
    cdef floating *hp
    cdef floating *h0s = NULL
    if lead > 0:
        rc = gemm_parallel(lead * n, hid, inp, x, inp, 1, w_ih, 1, inp, hs, hid, flags, bias, nthreads)
        if rc != 0:
            return rc
    plan = <fnn_int *>malloc((2 * n + live + 1) * sizeof(fnn_int))
    if plan == NULL:
        return -1
    # plan: order (n), rank (n), offs (live + 1)
    if plan_packing(length, n, steps, lead, plan, plan + n, plan + 2 * n) != 0:
        free(plan)
        return -1
    total = plan[2 * n + live]
    cursor = <char *>fnn_thread_scratch(FNN_SCRATCH_SEQUENCES, carve_bytes(total * inp, sizeof(floating))
                                        + carve_bytes(total * hid, sizeof(floating))
                                        + carve_bytes(n * hid, sizeof(floating)))
    if cursor == NULL:
        free(plan)
        return -1
    xs = <floating *>carve(&cursor, total * inp, sizeof(floating))
    hp = <floating *>carve(&cursor, total * hid, sizeof(floating))
    h0s = <floating *>carve(&cursor, n * hid, sizeof(floating))
    gather_packed(<const char *>(x + lead * n * inp), live, n, plan + n, plan + 2 * n, inp * sizeof(floating),
                  <char *>xs, nthreads)
    # Both input projections before either chain, so that the second chain finds w_hh still
    # packed by the first (the GEMM packs in its own scratch, the chain in the shared one).
    rc = gemm_parallel(total, hid, inp, xs, inp, 1, w_ih, 1, inp, hp, hid, flags, bias, nthreads)
    if rc == 0 and lead > 0:
        rc = recurrence(lead, n, NULL, hid, h0, w_hh, 1, hid, hs, NULL, act, True, nthreads, NULL,
                        <floating *>NULL)
        h_start = hs + (lead - 1) * n * hid
    if h_start != NULL:
        sort_states(<const char *>h_start, n, plan + n, hid * sizeof(floating), <char *>h0s)
    else:
        h0s = NULL
    if rc == 0:
        rc = recurrence(live, n, plan + 2 * n, hid, h0s, w_hh, 1, hid, hp, NULL, act, True, nthreads, plan + n,
                        hs + lead * n * hid, lead > 0)
    free(plan)
    return rc


def rnn_forward_lengths(cnp.ndarray x, h0, cnp.ndarray w_ih, cnp.ndarray w_hh, bias, cnp.ndarray hs,
                        bint relu, int num_threads, cnp.ndarray lengths):
    """rnn_forward for sequences of these lengths (N intp, each in 1..T, checked by the caller):
    x (T, N, I), hs (T, N, H) padded, in batch order, zeros past each sequence's end; h0 (N, H)
    or None; bias b_ih + b_hh or None. All C-contiguous, one dtype, T, N, H >= 1."""
    cdef fnn_int steps = hs.shape[0], n = hs.shape[1], hid = hs.shape[2], inp = x.shape[2]
    cdef const fnn_int *length = <const fnn_int *>lengths.data
    cdef int act = ACT_RELU if relu else ACT_TANH
    cdef cnp.ndarray h0a, ba = bias
    cdef int rc
    if h0 is None and not array_all_finite(w_hh, 0, hid * hid):
        h0 = zeros_like_state(hs, n)
    h0a = h0
    if cnp.PyArray_TYPE(hs) == cnp.NPY_FLOAT32:
        with nogil:
            rc = rnn_forward_lengths_run(steps, n, inp, hid, length, <float *>x.data,
                                         <float *>h0a.data if h0 is not None else NULL, <float *>w_ih.data,
                                         <float *>w_hh.data, <float *>ba.data if bias is not None else NULL,
                                         <float *>hs.data, act, num_threads)
    else:
        with nogil:
            rc = rnn_forward_lengths_run(steps, n, inp, hid, length, <double *>x.data,
                                         <double *>h0a.data if h0 is not None else NULL, <double *>w_ih.data,
                                         <double *>w_hh.data, <double *>ba.data if bias is not None else NULL,
                                         <double *>hs.data, act, num_threads)
    if rc != 0:
        raise MemoryError("fastnn.rnn_forward: could not allocate packing buffers")
    return hs


cdef int rnn_backward_lengths_run(fnn_int steps, fnn_int n, fnn_int inp, fnn_int hid, const fnn_int *length,
                                  const floating *grad_hs, const floating *x, const floating *h0,
                                  const floating *hs, const floating *w_ih, const floating *w_hh, int act,
                                  floating *dz, floating *grad_x, floating *grad_h0, floating *grad_w_ih,
                                  floating *grad_w_hh, int nthreads) noexcept nogil:
    """The weight gradients read x and the previous states straight from the padded arrays
    (their rows gathered as the GEMM packs them); only grad_x goes through a packed copy."""
    cdef SequencePlan p
    cdef size_t row = hid * sizeof(floating)
    cdef fnn_int t, r, j
    cdef int rc
    cdef char *cursor
    cdef fnn_int *padded_row
    cdef floating *gxs
    cdef floating *gh0s
    cdef floating *h0s = NULL
    if sequence_plan(&p, length, n, steps) != 0:
        return -1
    cursor = <char *>fnn_thread_scratch(FNN_SCRATCH_SEQUENCES, carve_bytes(p.total * inp, sizeof(floating))
                                        + 2 * carve_bytes(n * hid, sizeof(floating))
                                        + carve_bytes(2 * p.total, sizeof(fnn_int)))
    if cursor == NULL:
        free(p.order)
        return -1
    gxs = <floating *>carve(&cursor, p.total * inp, sizeof(floating))
    gh0s = <floating *>carve(&cursor, n * hid, sizeof(floating))
    h0s = <floating *>carve(&cursor, n * hid, sizeof(floating))
    # packed row j is padded row padded_row[j]; its previous state's, padded_row[j] - n
    padded_row = <fnn_int *>carve(&cursor, 2 * p.total, sizeof(fnn_int))
    for t in range(steps):
        for r in range(p.offs[t + 1] - p.offs[t]):
            padded_row[p.offs[t] + r] = t * n + p.order[r]
    for j in range(n, p.total):
        padded_row[p.total + j - n] = padded_row[j] - n
    # The chain backwards over the live rows, grad_hs and hs read in place through rank.
    rc = recurrence(steps, n, p.offs, hid, hs, w_hh, hid, 1, dz, grad_hs, act, False, nthreads, p.rank,
                    <floating *>NULL)
    if rc == 0:
        if h0 != NULL:
            sort_states(<const char *>h0, n, p.rank, row, <char *>h0s)
        elif not all_finite(dz, n * hid):  # zeros stand for h0: 0 * Inf is NaN in grad_w_hh
            memset(h0s, 0, n * row)
        else:
            h0s = NULL
        rc = weight_grads(p.total, n, hid, inp, x, h0s, hs, w_ih, w_hh, dz, gxs, gh0s, grad_w_ih, grad_w_hh,
                          nthreads, padded_row, padded_row + p.total)
    if rc == 0:
        scatter_packed(<const char *>gxs, steps, n, p.rank, p.offs, inp * sizeof(floating), <char *>grad_x,
                       nthreads)
        unsort_states(<const char *>gh0s, n, p.rank, row, <char *>grad_h0)
    free(p.order)
    return rc


def rnn_backward_lengths(cnp.ndarray grad_hs, cnp.ndarray x, h0, cnp.ndarray hs, cnp.ndarray w_ih,
                         cnp.ndarray w_hh, bint relu, cnp.ndarray dz, cnp.ndarray grad_x, cnp.ndarray grad_h0,
                         cnp.ndarray grad_w_ih, cnp.ndarray grad_w_hh, int num_threads, cnp.ndarray lengths):
    """rnn_backward for sequences of these lengths (N intp, each in 1..T, checked by the caller):
    grad_hs, x, hs and grad_x (T, ...) padded, in batch order (grad_x zero past each sequence's
    end), h0 and grad_h0 (N, H); dz (sum(lengths), H) receives the gradient at every live
    row's pre-activation, in the packed order (its column sums are grad_b). All C-contiguous,
    one dtype, T, N, H >= 1."""
    cdef fnn_int steps = hs.shape[0], n = hs.shape[1], hid = hs.shape[2], inp = x.shape[2]
    cdef const fnn_int *length = <const fnn_int *>lengths.data
    cdef int act = ACT_RELU if relu else ACT_TANH
    cdef cnp.ndarray h0a = h0
    cdef int rc
    if cnp.PyArray_TYPE(hs) == cnp.NPY_FLOAT32:
        with nogil:
            rc = rnn_backward_lengths_run(steps, n, inp, hid, length, <float *>grad_hs.data, <float *>x.data,
                                          <float *>h0a.data if h0 is not None else NULL, <float *>hs.data,
                                          <float *>w_ih.data, <float *>w_hh.data, act, <float *>dz.data,
                                          <float *>grad_x.data, <float *>grad_h0.data, <float *>grad_w_ih.data,
                                          <float *>grad_w_hh.data, num_threads)
    else:
        with nogil:
            rc = rnn_backward_lengths_run(steps, n, inp, hid, length, <double *>grad_hs.data, <double *>x.data,
                                          <double *>h0a.data if h0 is not None else NULL, <double *>hs.data,
                                          <double *>w_ih.data, <double *>w_hh.data, act, <double *>dz.data,
                                          <double *>grad_x.data, <double *>grad_h0.data,
                                          <double *>grad_w_ih.data, <double *>grad_w_hh.data, num_threads)
    if rc != 0:
        raise MemoryError("fastnn.rnn_backward: could not allocate packing buffers")
