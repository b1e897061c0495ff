/*
 * Bodies of the GRU cell kernels (see fnn_gru.h) for one dtype: fnn_gru.c includes this file
 * with T, FNN_SFX(name), FNN_SIGMOID and FNN_TANH defined. Each loop runs over units j with
 * the gates as separate streams, which the compiler vectorises; variants for absent operands
 * are separate loops (a constant flag each, folded when inlined).
 */
#include <string.h>

/* Every stream is its own restrict parameter (see backward_row). */
static FNN_FORCE_INLINE void FNN_SFX(cell_row)(const int has_gh, const int has_bias, const int has_h_prev,
                                               const int keep_ghn, const int keep_h, fnn_int j0, fnn_int j1,
                                               T *FNN_RESTRICT gr, T *FNN_RESTRICT gz, T *FNN_RESTRICT gn,
                                               const T *FNN_RESTRICT hr, const T *FNN_RESTRICT hz,
                                               const T *FNN_RESTRICT hn_, const T *FNN_RESTRICT b_hn,
                                               const T *FNN_RESTRICT h_prev, T *FNN_RESTRICT ghn,
                                               T *FNN_RESTRICT h_next)
{
    fnn_int j;
    for (j = j0; j < j1; j++) {
        const T r = FNN_SIGMOID(has_gh ? gr[j] + hr[j] : gr[j]);
        const T z = FNN_SIGMOID(has_gh ? gz[j] + hz[j] : gz[j]);
        const T hn = has_gh ? (has_bias ? hn_[j] + b_hn[j] : hn_[j]) : (has_bias ? b_hn[j] : (T)0);
        const T n = FNN_TANH(gn[j] + r * hn);
        const T hp = has_h_prev ? h_prev[j] : (T)0;
        gr[j] = r;
        gz[j] = z;
        gn[j] = n;
        if (keep_ghn)
            ghn[j] = hn;
        if (keep_h)
            h_next[j] = n + z * (hp - n);
    }
}

static FNN_FORCE_INLINE void FNN_SFX(cell)(fnn_int m, fnn_int hidden, fnn_int j0, fnn_int j1, T *gates,
                                           const T *gh, const T *b_hn, const T *h_prev, T *ghn, T *h_next)
{
    const fnn_int H = hidden;
    fnn_int r;
    for (r = 0; r < m; r++) {
        T *g = gates + r * 3 * H;
        const T *hr = gh != NULL ? gh + r * 3 * H : NULL;
        const T *hz = hr != NULL ? hr + H : NULL, *hn = hr != NULL ? hr + 2 * H : NULL;
        const T *hp = h_prev != NULL ? h_prev + r * H : NULL;
        T *kn = ghn != NULL ? ghn + r * H : NULL;
        T *hx = h_next != NULL ? h_next + r * H : NULL;
        /* The forward's variants get their own loops; the rest (recomputing gates) share one. */
        if (hr != NULL && b_hn != NULL && hp != NULL && kn != NULL && hx != NULL)
            FNN_SFX(cell_row)(1, 1, 1, 1, 1, j0, j1, g, g + H, g + 2 * H, hr, hz, hn, b_hn, hp, kn, hx);
        else if (hr != NULL && b_hn != NULL && hp != NULL && kn == NULL && hx != NULL)
            FNN_SFX(cell_row)(1, 1, 1, 0, 1, j0, j1, g, g + H, g + 2 * H, hr, hz, hn, b_hn, hp, NULL, hx);
        else if (hr != NULL && b_hn == NULL && hp != NULL && hx != NULL)
            FNN_SFX(cell_row)(1, 0, 1, kn != NULL, 1, j0, j1, g, g + H, g + 2 * H, hr, hz, hn, NULL, hp, kn, hx);
        else
            FNN_SFX(cell_row)(hr != NULL, b_hn != NULL, hp != NULL, kn != NULL, hx != NULL, j0, j1, g, g + H,
                              g + 2 * H, hr, hz, hn, b_hn, hp, kn, hx);
    }
}

/* Every stream is its own restrict parameter: pointers derived from one restrict pointer may
 * alias each other as far as the compiler knows, and checking that at run time for this many
 * streams is more than gcc does (the loop would stay scalar). */
static FNN_FORCE_INLINE void FNN_SFX(backward_row)(const int has_h_prev, const int has_carry, const int has_b,
                                                   fnn_int j0, fnn_int j1, const T *FNN_RESTRICT gr,
                                                   const T *FNN_RESTRICT gz, const T *FNN_RESTRICT gn,
                                                   const T *FNN_RESTRICT ghn, const T *FNN_RESTRICT h_prev,
                                                   const T *FNN_RESTRICT grad_h, T *FNN_RESTRICT carry,
                                                   T *FNN_RESTRICT dir, T *FNN_RESTRICT diz, T *FNN_RESTRICT din,
                                                   T *FNN_RESTRICT dhn, double *FNN_RESTRICT br,
                                                   double *FNN_RESTRICT bz, double *FNN_RESTRICT bn,
                                                   double *FNN_RESTRICT bhn)
{
    fnn_int j;
    for (j = j0; j < j1; j++) {
        const T r = gr[j], z = gz[j], n = gn[j];
        const T dh = has_carry ? grad_h[j] + carry[j] : grad_h[j];
        const T hp = has_h_prev ? h_prev[j] : (T)0;
        const T d_n = dh * (1 - z) * (1 - n * n);
        const T d_z = dh * (hp - n) * z * (1 - z);
        const T d_r = d_n * ghn[j] * r * (1 - r);
        const T d_hn = d_n * r;
        dir[j] = d_r;
        diz[j] = d_z;
        din[j] = d_n;
        dhn[j] = d_hn;
        carry[j] = dh * z;
        if (has_b) {
            br[j] += (double)d_r;
            bz[j] += (double)d_z;
            bn[j] += (double)d_n;
            bhn[j] += (double)d_hn;
        }
    }
}

static FNN_FORCE_INLINE void FNN_SFX(backward)(fnn_int m, fnn_int hidden, fnn_int j0, fnn_int j1, const T *gates,
                                               const T *ghn, const T *h_prev, const T *grad_h, T *carry,
                                               int has_carry, T *grad_gi, T *grad_gh, double *grad_b)
{
    const fnn_int H = hidden;
    double *b = grad_b;
    fnn_int r;
    for (r = 0; r < m; r++) {
        const fnn_int s = r * H, g3 = r * 3 * H;
        const T *g = gates + g3;
        T *di = grad_gi + g3, *dh = grad_gh + g3;
        const T *hp = h_prev != NULL ? h_prev + s : NULL;
        if (hp != NULL && has_carry && b != NULL)
            FNN_SFX(backward_row)(1, 1, 1, j0, j1, g, g + H, g + 2 * H, ghn + s, hp, grad_h + s, carry + s, di,
                                  di + H, di + 2 * H, dh + 2 * H, b, b + H, b + 2 * H, b + 3 * H);
        else if (b != NULL)
            FNN_SFX(backward_row)(hp != NULL, has_carry, 1, j0, j1, g, g + H, g + 2 * H, ghn + s, hp, grad_h + s,
                                  carry + s, di, di + H, di + 2 * H, dh + 2 * H, b, b + H, b + 2 * H, b + 3 * H);
        else
            FNN_SFX(backward_row)(hp != NULL, has_carry, 0, j0, j1, g, g + H, g + 2 * H, ghn + s, hp, grad_h + s,
                                  carry + s, di, di + H, di + 2 * H, dh + 2 * H, NULL, NULL, NULL, NULL);
        /* the hidden side's r and z gradients are the input side's */
        memcpy(dh + j0, di + j0, (size_t)(j1 - j0) * sizeof(T));
        memcpy(dh + H + j0, di + H + j0, (size_t)(j1 - j0) * sizeof(T));
    }
}
