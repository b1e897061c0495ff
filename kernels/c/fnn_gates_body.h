/*
 * Body of the small-batch recurrent product (see fnn_gates.h) for one dtype and one vector
 * width. fnn_gates.c includes this file with T (the element type), FNN_VB (vector bytes: 16
 * for the baseline level, 32 for AVX2 and AVX-512) and FNN_SFX(name) defined; every function
 * here is always-inline and gets compiled into fnn_gates.c's per-level wrappers.
 *
 * Why this shape: with one row of A, C = a @ B is a chain of k multiply-adds per column; with
 * few accumulators each chain waits out the adder's latency at every k (the RNN's row kernel
 * runs at a quarter of the FMA rate that way). Here eight vectors of columns (two panels'
 * worth with 16-byte vectors, four with 32-byte ones) are accumulated at once, as named
 * registers: an array of vectors would be kept in memory.
 */

#define FNN_PL ((int)(FNN_GATES_PANEL_BYTES / sizeof(T))) /* elements per panel */
#define FNN_VN ((int)(FNN_VB / sizeof(T)))                /* elements per vector */
#define FNN_VP ((int)(FNN_GATES_PANEL_BYTES / FNN_VB))    /* vectors per panel */
/* Vector i of a group of 8: its offset in one k row of the packed panels (panels ps apart),
 * and its first column. */
#define FNN_OFF(i, ps) (((i) / FNN_VP) * (ps) + ((i) % FNN_VP) * FNN_VN)
#define FNN_COL(i) (((i) / FNN_VP) * FNN_PL + ((i) % FNN_VP) * FNN_VN)

#ifdef FNN_VECTOR_EXT

typedef T FNN_SFX(vec) __attribute__((vector_size(FNN_VB)));

static FNN_FORCE_INLINE FNN_SFX(vec) FNN_SFX(vload)(const T *p)
{
    FNN_SFX(vec) v;
    memcpy(&v, p, sizeof v); /* an unaligned vector load */
    return v;
}

/* c[0:cols] (=|+=) v[0:cols], cols <= 0 storing nothing. */
static FNN_FORCE_INLINE void FNN_SFX(vstore)(T *c, const FNN_SFX(vec) *acc, fnn_int cols, int accumulate)
{
    FNN_SFX(vec) v = *acc;
    int j;
    if (cols >= FNN_VN) {
        if (accumulate)
            v += FNN_SFX(vload)(c);
        memcpy(c, &v, sizeof v);
        return;
    }
    for (j = 0; j < cols; j++)
        c[j] = accumulate ? c[j] + v[j] : v[j];
}

/* The 8 vectors of columns starting at panel b (panels ps elements apart), cols of them
 * valid (the rest is packing's zero padding, or past the group). */
static FNN_FORCE_INLINE void FNN_SFX(gemv_group)(fnn_int k, const T *FNN_RESTRICT a, const T *FNN_RESTRICT b,
                                                 fnn_int ps, T *FNN_RESTRICT c, fnn_int cols, int accumulate)
{
    FNN_SFX(vec) a0, a1, a2, a3, a4, a5, a6, a7;
    fnn_int p;
    memset(&a0, 0, sizeof a0);
    a1 = a2 = a3 = a4 = a5 = a6 = a7 = a0;
    for (p = 0; p < k; p++) {
        const T av = a[p];
        const T *FNN_RESTRICT bp = b + p * FNN_PL;
        a0 += av * FNN_SFX(vload)(bp + FNN_OFF(0, ps));
        a1 += av * FNN_SFX(vload)(bp + FNN_OFF(1, ps));
        a2 += av * FNN_SFX(vload)(bp + FNN_OFF(2, ps));
        a3 += av * FNN_SFX(vload)(bp + FNN_OFF(3, ps));
        a4 += av * FNN_SFX(vload)(bp + FNN_OFF(4, ps));
        a5 += av * FNN_SFX(vload)(bp + FNN_OFF(5, ps));
        a6 += av * FNN_SFX(vload)(bp + FNN_OFF(6, ps));
        a7 += av * FNN_SFX(vload)(bp + FNN_OFF(7, ps));
    }
    FNN_SFX(vstore)(c + FNN_COL(0), &a0, cols - FNN_COL(0), accumulate);
    FNN_SFX(vstore)(c + FNN_COL(1), &a1, cols - FNN_COL(1), accumulate);
    FNN_SFX(vstore)(c + FNN_COL(2), &a2, cols - FNN_COL(2), accumulate);
    FNN_SFX(vstore)(c + FNN_COL(3), &a3, cols - FNN_COL(3), accumulate);
    FNN_SFX(vstore)(c + FNN_COL(4), &a4, cols - FNN_COL(4), accumulate);
    FNN_SFX(vstore)(c + FNN_COL(5), &a5, cols - FNN_COL(5), accumulate);
    FNN_SFX(vstore)(c + FNN_COL(6), &a6, cols - FNN_COL(6), accumulate);
    FNN_SFX(vstore)(c + FNN_COL(7), &a7, cols - FNN_COL(7), accumulate);
}

/* One panel (FNN_VP <= 4 vectors), cols of its columns valid. */
static FNN_FORCE_INLINE void FNN_SFX(gemv_panel)(fnn_int k, const T *FNN_RESTRICT a, const T *FNN_RESTRICT b,
                                                 T *FNN_RESTRICT c, fnn_int cols, int accumulate)
{
    FNN_SFX(vec) a0, a1, a2, a3;
    fnn_int p;
    memset(&a0, 0, sizeof a0);
    a1 = a2 = a3 = a0;
    for (p = 0; p < k; p++) {
        const T av = a[p];
        const T *FNN_RESTRICT bp = b + p * FNN_PL;
        a0 += av * FNN_SFX(vload)(bp);
        a1 += av * FNN_SFX(vload)(bp + FNN_VN);
        if (FNN_VP > 2) {
            a2 += av * FNN_SFX(vload)(bp + 2 * FNN_VN);
            a3 += av * FNN_SFX(vload)(bp + 3 * FNN_VN);
        }
    }
    FNN_SFX(vstore)(c, &a0, cols, accumulate);
    FNN_SFX(vstore)(c + FNN_VN, &a1, cols - FNN_VN, accumulate);
    if (FNN_VP > 2) {
        FNN_SFX(vstore)(c + 2 * FNN_VN, &a2, cols - 2 * FNN_VN, accumulate);
        FNN_SFX(vstore)(c + 3 * FNN_VN, &a3, cols - 3 * FNN_VN, accumulate);
    }
}

static FNN_FORCE_INLINE void FNN_SFX(gemv)(fnn_int k, const T *FNN_RESTRICT a, const T *FNN_RESTRICT b,
                                           fnn_int n, T *FNN_RESTRICT c, int accumulate, int reverse)
{
    const fnn_int ps = k * FNN_PL;                   /* elements of one packed panel */
    const fnn_int group_cols = 8 * FNN_VN;           /* = panels per group * FNN_PL */
    const fnn_int group_panels = group_cols / FNN_PL;
    const fnn_int groups = n / group_cols;
    const fnn_int tail_panels = (n - groups * group_cols + FNN_PL - 1) / FNN_PL;
    fnn_int s, g, q;
    /* Walked backwards, the panels used last are the first needed: the previous step's
     * last ones are still in L1 (the weights of a batch-1 step are about twice its size). */
    for (s = 0; s < groups + tail_panels; s++) {
        fnn_int item = reverse ? groups + tail_panels - 1 - s : s;
        if (item < groups) {
            g = item;
            FNN_SFX(gemv_group)(k, a, b + g * group_panels * ps, ps, c + g * group_cols,
                                n - g * group_cols, accumulate);
        } else {
            q = groups * group_panels + (item - groups);
            FNN_SFX(gemv_panel)(k, a, b + q * ps, c + q * FNN_PL, n - q * FNN_PL, accumulate);
        }
    }
}

#else /* no vector extensions (MSVC): the same sums, column by column */

static FNN_FORCE_INLINE void FNN_SFX(gemv)(fnn_int k, const T *FNN_RESTRICT a, const T *FNN_RESTRICT b,
                                           fnn_int n, T *FNN_RESTRICT c, int accumulate, int reverse)
{
    fnn_int j, p;
    (void)reverse;
    for (j = 0; j < n; j++) {
        const T *bp = b + (j / FNN_PL) * k * FNN_PL + j % FNN_PL;
        T acc = 0;
        for (p = 0; p < k; p++)
            acc += a[p] * bp[p * FNN_PL];
        c[j] = accumulate ? c[j] + acc : acc;
    }
}

#endif

#undef FNN_PL
#undef FNN_VN
#undef FNN_VP
#undef FNN_OFF
#undef FNN_COL
