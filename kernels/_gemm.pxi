# Dtype-generic access to the C GEMM core, and the multi-threaded GEMM driver.

cdef struct Tiling:
    int mr, nr
    fnn_int mc, kc, nc
    const void *desc   # fnn_gemm_desc_f32 or _f64, by the dtype it was made for


cdef inline Tiling active_tiling(const floating *dtype_tag) noexcept nogil:
    """The active micro-kernel's tiling for this dtype (the pointer only selects the dtype)."""
    cdef Tiling t
    cdef const fnn_gemm_desc_f32 *s
    cdef const fnn_gemm_desc_f64 *d
    if floating is float:
        s = fnn_gemm_f32_desc()
        t.mr = s.mr; t.nr = s.nr; t.mc = s.mc; t.kc = s.kc; t.nc = s.nc; t.desc = s
    else:
        d = fnn_gemm_f64_desc()
        t.mr = d.mr; t.nr = d.nr; t.mc = d.mc; t.kc = d.kc; t.nc = d.nc; t.desc = d
    return t


cdef inline fnn_int round_up(fnn_int x, fnn_int step) noexcept nogil:
    return (x + step - 1) // step * step


cdef inline fnn_int ceil_div(fnn_int x, fnn_int step) noexcept nogil:
    return (x + step - 1) // step


cdef inline void pack_a(const Tiling *t, fnn_int m, fnn_int k, const floating *a,
                        fnn_int rs, fnn_int cs, floating *dst) noexcept nogil:
    if floating is float:
        fnn_pack_a_f32(t.mr, m, k, a, rs, cs, dst)
    else:
        fnn_pack_a_f64(t.mr, m, k, a, rs, cs, dst)


cdef inline void pack_b(const Tiling *t, fnn_int k, fnn_int n, const floating *b,
                        fnn_int rs, fnn_int cs, floating *dst) noexcept nogil:
    if floating is float:
        fnn_pack_b_f32(t.nr, k, n, b, rs, cs, dst)
    else:
        fnn_pack_b_f64(t.nr, k, n, b, rs, cs, dst)


cdef inline void macro(const Tiling *t, fnn_int m, fnn_int n, fnn_int k, const floating *apack,
                       const floating *bpack, floating *c, fnn_int ldc, int flags,
                       const floating *bias) noexcept nogil:
    if floating is float:
        fnn_gemm_macro_f32(<const fnn_gemm_desc_f32 *>t.desc, m, n, k, apack, bpack, c, ldc, flags, bias)
    else:
        fnn_gemm_macro_f64(<const fnn_gemm_desc_f64 *>t.desc, m, n, k, apack, bpack, c, ldc, flags, bias)


cdef inline int kblock_flags(int flags, fnn_int pc, fnn_int kc, fnn_int k) noexcept nogil:
    """Epilogue flags for the k block starting at pc: the caller's accumulate on the first
    block, accumulate after it, the bias once on the last, so it lands on the full sum."""
    cdef int f = flags & FNN_ACCUMULATE
    if pc > 0:
        f = FNN_ACCUMULATE
    if pc + kc >= k:
        f |= flags & (FNN_BIAS_ROW | FNN_BIAS_COL)
    return f


cdef inline const floating *block_bias(const floating *bias, int flags, fnn_int ic, fnn_int jc) noexcept nogil:
    if bias == NULL:
        return NULL
    if flags & FNN_BIAS_ROW:
        return bias + ic
    return bias + jc


cdef void gemm_block_column(const Tiling *t, fnn_int m, fnn_int n, fnn_int k,
                            fnn_int ic_begin, fnn_int ic_end, fnn_int jc,
                            const floating *a, fnn_int rs_a, fnn_int cs_a,
                            const floating *b, fnn_int rs_b, fnn_int cs_b, const fnn_int *b_rows,
                            floating *c, fnn_int ldc, int flags, const floating *bias,
                            floating *bpack, floating *apack) noexcept nogil:
    """Rows [ic_begin, ic_end) of one NC-wide column panel of C: loop over k in KC blocks
    (pack B), then over m in MC blocks (pack A), then the macro-kernel. b_rows: NULL, or B's
    row p is row b_rows[p] of b (cs_b = 1)."""
    cdef fnn_int ic_blk, pc_blk
    cdef fnn_int nc = min(t.nc, n - jc)
    cdef fnn_int pc, kc, ic, mc
    cdef fnn_int kstep = t.kc
    if k == 0:
        for ic_blk in range(ceil_div(ic_end - ic_begin, t.mc)):
            ic = ic_begin + ic_blk * t.mc
            mc = min(t.mc, ic_end - ic)
            macro(t, mc, nc, 0, apack, bpack, c + ic * ldc + jc, ldc, flags, block_bias(bias, flags, ic, jc))
        return
    for pc_blk in range(ceil_div(k, kstep)):
        pc = pc_blk * kstep
        kc = min(kstep, k - pc)
        if b_rows == NULL:
            pack_b(t, kc, nc, b + pc * rs_b + jc * cs_b, rs_b, cs_b, bpack)
        elif floating is float:
            fnn_pack_b_gather_f32(t.nr, kc, nc, b + jc, rs_b, b_rows + pc, bpack)
        else:
            fnn_pack_b_gather_f64(t.nr, kc, nc, b + jc, rs_b, b_rows + pc, bpack)
        for ic_blk in range(ceil_div(ic_end - ic_begin, t.mc)):
            ic = ic_begin + ic_blk * t.mc
            mc = min(t.mc, ic_end - ic)
            pack_a(t, mc, kc, a + ic * rs_a + pc * cs_a, rs_a, cs_a, apack)
            macro(t, mc, nc, kc, apack, bpack, c + ic * ldc + jc, ldc,
                  kblock_flags(flags, pc, kc, k), block_bias(bias, flags, ic, jc))


# Multiply-adds below which a GEMM inside a larger kernel runs on one thread.
cdef double serial_gemm_fmas = 5.0e5


def set_serial_gemm_fmas(double fmas):
    """Set the size below which inner GEMMs run serially; returns the old value (for tests
    that must see teams on small problems)."""
    global serial_gemm_fmas
    old = serial_gemm_fmas
    serial_gemm_fmas = fmas
    return old


cdef fnn_int gemm_scratch_elems(const Tiling *t) noexcept nogil:
    return round_up(t.nc, t.nr) * t.kc + round_up(t.mc, t.mr) * t.kc


cdef int gemm_parallel(fnn_int m, fnn_int n, fnn_int k,
                       const floating *a, fnn_int rs_a, fnn_int cs_a,
                       const floating *b, fnn_int rs_b, fnn_int cs_b,
                       floating *c, fnn_int ldc, int flags, const floating *bias,
                       int nthreads, const fnn_int *b_rows=NULL) noexcept nogil:
    """C (m x n, row-major, ldc) op= A (m x k) * B (k x n) on up to nthreads threads. b_rows:
    NULL, or B's row p is row b_rows[p] of b (B row-major, cs_b = 1): rows gathered as packed.

    Each C element is reduced in the same order whatever the split into work items, so
    results do not depend on the thread count. Returns 0, or -1 when scratch memory could
    not be had."""
    cdef fnn_int jc_blk
    cdef Tiling t = active_tiling(a)
    cdef fnn_int n_jc, n_ic, ic_parts, items, item, jc, part, ic_begin, ic_end
    cdef fnn_int elems
    cdef floating *buf
    cdef int failed = 0
    cdef int *failed_p = &failed
    cdef int team
    if m <= 0 or n <= 0:
        return 0
    # Work items are (column panel, share of the rows). Few rows, or no more rows than
    # columns: narrower column panels, one per thread (a thread sharing the rows packs all
    # of B, one sharing the columns all of A: the smaller copy is made twice). Few panels:
    # the rows are shared out in whole MR-row micro-panels (not MC blocks, which would leave
    # 96 rows against 32 for M = 128 on two threads).
    n_ic = ceil_div(m, t.mr)
    if m < t.mc * nthreads or n >= m:
        t.nc = min(t.nc, round_up(ceil_div(n, nthreads), t.nr))
    elems = gemm_scratch_elems(&t)
    n_jc = ceil_div(n, t.nc)
    ic_parts = 1
    if n_jc < nthreads:
        ic_parts = min(n_ic, ceil_div(nthreads, n_jc))
    items = n_jc * ic_parts
    team = <int>min(<fnn_int>nthreads, items)
    # Waking a team costs microseconds: a product of a few microseconds runs on one thread
    # (results do not depend on the team, so this changes speed only).
    if <double>m * n * k < serial_gemm_fmas:
        team = 1
    if team <= 1:
        buf = <floating *>fnn_thread_scratch(FNN_SCRATCH_OWN, elems * sizeof(floating))
        if buf == NULL:
            return -1
        for jc_blk in range(ceil_div(n, t.nc)):
            jc = jc_blk * t.nc
            gemm_block_column(&t, m, n, k, 0, m, jc, a, rs_a, cs_a, b, rs_b, cs_b, b_rows,
                              c, ldc, flags, bias, buf, buf + round_up(t.nc, t.nr) * t.kc)
        return 0
    with parallel(num_threads=team):
        _note_team()
        buf = <floating *>fnn_thread_scratch(FNN_SCRATCH_OWN, elems * sizeof(floating))
        if buf == NULL:
            failed_p[0] = 1
        for item in prange(items, schedule='static'):
            if buf != NULL:
                jc = (item // ic_parts) * t.nc
                part = item % ic_parts
                ic_begin = (part * n_ic // ic_parts) * t.mr
                ic_end = min(m, ((part + 1) * n_ic // ic_parts) * t.mr)
                gemm_block_column(&t, m, n, k, ic_begin, ic_end, jc, a, rs_a, cs_a, b, rs_b, cs_b, b_rows,
                                  c, ldc, flags, bias, buf, buf + round_up(t.nc, t.nr) * t.kc)
    return -1 if failed else 0


def gemm(a, b, c, *, bint accumulate=False, bias=None, int bias_axis=0, int num_threads=1):
    """C op= A @ B through the GEMM core, for tests and benchmarks of the core itself.

    a (m, k) and b (k, n): any element strides; c (m, n) C-contiguous, written in place;
    bias (m,) when bias_axis == 0 else (n,). All float32 or all float64."""
    cdef cnp.ndarray A = a, B = b, C = c
    cdef cnp.ndarray BIAS = bias
    cdef int flags = FNN_ACCUMULATE if accumulate else 0
    cdef fnn_int m = C.shape[0], n = C.shape[1], k = A.shape[1]
    cdef fnn_int isz = A.itemsize
    cdef int rc
    if bias is not None:
        flags |= FNN_BIAS_ROW if bias_axis == 0 else FNN_BIAS_COL
    if cnp.PyArray_TYPE(A) == cnp.NPY_FLOAT32:
        with nogil:
            rc = gemm_parallel(m, n, k, <float *>A.data, A.strides[0] // isz, A.strides[1] // isz,
                               <float *>B.data, B.strides[0] // isz, B.strides[1] // isz,
                               <float *>C.data, C.strides[0] // isz, flags,
                               <float *>BIAS.data if bias is not None else NULL, num_threads)
    else:
        with nogil:
            rc = gemm_parallel(m, n, k, <double *>A.data, A.strides[0] // isz, A.strides[1] // isz,
                               <double *>B.data, B.strides[0] // isz, B.strides[1] // isz,
                               <double *>C.data, C.strides[0] // isz, flags,
                               <double *>BIAS.data if bias is not None else NULL, num_threads)
    if rc != 0:
        raise MemoryError("fastnn: could not allocate GEMM scratch")
    return c
