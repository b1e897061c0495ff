/*
 * What the gated recurrent kernels (LSTM, GRU) share in C: the product of one or two rows of
 * hidden state with the packed recurrent weights, each step of a small-batch sequence.
 * (Larger batches go through the GEMM core's macro-kernel instead; the activations are in
 * fnn_gates_math.h.)
 */
#ifndef FNN_GATES_H
#define FNN_GATES_H

#include "fnn_gemm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The weights these products read are packed by fnn_pack_b_* in panels of this many bytes
 * of columns (nr = 16 floats, 8 doubles), k-major. */
#define FNN_GATES_PANEL_BYTES 64
#define FNN_GATES_PANEL_F32 16
#define FNN_GATES_PANEL_F64 8

/*
 * c[0:n] = a[0:k] @ B[0:k, 0:n] (accumulate: c[0:n] += it), B packed as above with b at the
 * panel that holds column 0 (a range of columns starting at a multiple of the panel width
 * is b + start * k). Each column is summed over k in order from zero, whatever n and the
 * range, so splitting columns among threads changes no bit. reverse walks the panels last
 * to first (for caches only; see fnn_gates_body.h). k may be 0.
 */
void fnn_gates_gemv_f32(fnn_int k, const float *a, const float *b, fnn_int n, float *c, int accumulate,
                        int reverse);
void fnn_gates_gemv_f64(fnn_int k, const double *a, const double *b, fnn_int n, double *c, int accumulate,
                        int reverse);

#ifdef __cplusplus
}
#endif
#endif /* FNN_GATES_H */
