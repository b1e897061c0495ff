/*
 * Bodies of the LSTM cell kernels (see fnn_lstm.h) for one dtype: fnn_lstm.c includes this
 * file with T, FNN_SFX(name), FNN_SIGMOID and FNN_TANH defined. Each loop runs over units j
 * with the four gates as four streams, which the compiler vectorises; variants for absent
 * operands are separate loops (a constant flag each, folded when inlined), not a test per
 * element.
 */

/* Every stream is its own restrict parameter: pointers derived from one restrict pointer may
 * alias each other as far as the compiler knows, and it would check that at run time. */
static FNN_FORCE_INLINE void FNN_SFX(cell_row)(const int has_c_prev, fnn_int j0, fnn_int j1, T *FNN_RESTRICT gi,
                                               T *FNN_RESTRICT gf, T *FNN_RESTRICT gg, T *FNN_RESTRICT go,
                                               const T *FNN_RESTRICT c_prev, T *FNN_RESTRICT c_next,
                                               T *FNN_RESTRICT h_next)
{
    fnn_int j;
    for (j = j0; j < j1; j++) {
        const T i = FNN_SIGMOID(gi[j]), f = FNN_SIGMOID(gf[j]), g = FNN_TANH(gg[j]), o = FNN_SIGMOID(go[j]);
        const T c = f * (has_c_prev ? c_prev[j] : (T)0) + i * g;
        gi[j] = i;
        gf[j] = f;
        gg[j] = g;
        go[j] = o;
        c_next[j] = c;
        h_next[j] = o * FNN_TANH(c);
    }
}

static FNN_FORCE_INLINE void FNN_SFX(cell)(fnn_int m, fnn_int hidden, fnn_int j0, fnn_int j1, T *gates,
                                           const T *c_prev, T *c_next, T *h_next)
{
    const fnn_int H = hidden;
    fnn_int r;
    for (r = 0; r < m; r++) {
        T *g = gates + r * 4 * H;
        if (c_prev != NULL)
            FNN_SFX(cell_row)(1, j0, j1, g, g + H, g + 2 * H, g + 3 * H, c_prev + r * H, c_next + r * H, h_next + r * H);
        else
            FNN_SFX(cell_row)(0, j0, j1, g, g + H, g + 2 * H, g + 3 * H, NULL, c_next + r * H, h_next + r * H);
    }
}

static FNN_FORCE_INLINE void FNN_SFX(activate)(fnn_int m, fnn_int hidden, T *FNN_RESTRICT gates)
{
    fnn_int r, j;
    for (r = 0; r < m; r++) {
        T *FNN_RESTRICT gi = gates + r * 4 * hidden;
        for (j = 0; j < 2 * hidden; j++) /* i and f */
            gi[j] = FNN_SIGMOID(gi[j]);
        for (j = 2 * hidden; j < 3 * hidden; j++)
            gi[j] = FNN_TANH(gi[j]);
        for (j = 3 * hidden; j < 4 * hidden; j++)
            gi[j] = FNN_SIGMOID(gi[j]);
    }
}

static FNN_FORCE_INLINE void FNN_SFX(backward_row)(const int has_c_prev, const int has_rec, const int has_b,
                                                   fnn_int j0, fnn_int j1, const T *FNN_RESTRICT gi,
                                                   const T *FNN_RESTRICT gf, const T *FNN_RESTRICT gg,
                                                   const T *FNN_RESTRICT go, const T *FNN_RESTRICT c_prev,
                                                   const T *FNN_RESTRICT c, const T *FNN_RESTRICT grad_h,
                                                   const T *FNN_RESTRICT grad_h_rec, T *FNN_RESTRICT grad_c,
                                                   T *FNN_RESTRICT di, T *FNN_RESTRICT df, T *FNN_RESTRICT dg,
                                                   T *FNN_RESTRICT dout, double *FNN_RESTRICT bi,
                                                   double *FNN_RESTRICT bf, double *FNN_RESTRICT bg,
                                                   double *FNN_RESTRICT bo)
{
    fnn_int j;
    for (j = j0; j < j1; j++) {
        const T i = gi[j], f = gf[j], g = gg[j], o = go[j];
        const T dh = has_rec ? grad_h[j] + grad_h_rec[j] : grad_h[j];
        const T tc = FNN_TANH(c[j]);
        const T dc = grad_c[j] + dh * o * (1 - tc * tc);
        const T cp = has_c_prev ? c_prev[j] : (T)0;
        const T d_i = dc * g * i * (1 - i);
        const T d_f = dc * cp * f * (1 - f);
        const T d_g = dc * i * (1 - g * g);
        const T d_o = dh * tc * o * (1 - o);
        di[j] = d_i;
        df[j] = d_f;
        dg[j] = d_g;
        dout[j] = d_o;
        grad_c[j] = dc * f;
        if (has_b) {
            bi[j] += (double)d_i;
            bf[j] += (double)d_f;
            bg[j] += (double)d_g;
            bo[j] += (double)d_o;
        }
    }
}

static FNN_FORCE_INLINE void FNN_SFX(backward)(fnn_int m, fnn_int hidden, fnn_int j0, fnn_int j1, const T *gates,
                                               const T *c_prev, const T *c, const T *grad_h, const T *grad_h_rec,
                                               T *grad_c, T *grad_gates, double *grad_b)
{
    const fnn_int H = hidden;
    double *b = grad_b;
    fnn_int r;
    for (r = 0; r < m; r++) {
        const fnn_int s = r * H;
        const T *g = gates + r * 4 * H;
        T *d = grad_gates + r * 4 * H;
        const T *cp = c_prev != NULL ? c_prev + s : NULL;
        const T *rec = grad_h_rec != NULL ? grad_h_rec + s : NULL;
        /* the forward-from-h0 shapes (all present) get their own loop; the rest share one */
        if (cp != NULL && rec != NULL && b != NULL)
            FNN_SFX(backward_row)(1, 1, 1, j0, j1, g, g + H, g + 2 * H, g + 3 * H, cp, c + s, grad_h + s, rec,
                                  grad_c + s, d, d + H, d + 2 * H, d + 3 * H, b, b + H, b + 2 * H, b + 3 * H);
        else if (b != NULL)
            FNN_SFX(backward_row)(cp != NULL, rec != NULL, 1, j0, j1, g, g + H, g + 2 * H, g + 3 * H, cp, c + s,
                                  grad_h + s, rec, grad_c + s, d, d + H, d + 2 * H, d + 3 * H, b, b + H, b + 2 * H,
                                  b + 3 * H);
        else
            FNN_SFX(backward_row)(cp != NULL, rec != NULL, 0, j0, j1, g, g + H, g + 2 * H, g + 3 * H, cp, c + s,
                                  grad_h + s, rec, grad_c + s, d, d + H, d + 2 * H, d + 3 * H, NULL, NULL, NULL,
                                  NULL);
    }
}
