/*
 * GRU cell kernels, elementwise over rows and a range of hidden units: one time step's gates
 * and state update, and its backward. The matrix products around them are the drivers'
 * (GEMM core and fnn_gates.h).
 *
 * Layout: gates r, z, n of a row side by side, each H wide (torch.nn.GRU's order), rows 3H
 * apart; states (m, H). A unit range [j0, j1) touches only its own columns of every gate,
 * so threads that own disjoint ranges never share an element.
 */
#ifndef FNN_GRU_H
#define FNN_GRU_H

#include "fnn_gemm.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Rows [0, m), units [j0, j1). gates holds the input side x w_ih^T with, in the r and z
 * columns, both biases (b_ih + b_hh) and in the n columns b_in; gh the hidden side
 * h_prev w_hh^T without bias (NULL: zeros). Then r = sigmoid(gates_r + gh_r),
 * z = sigmoid(gates_z + gh_z), hn = gh_n + b_hn (b_hn NULL: no bias), n = tanh(gates_n + r hn),
 * h_next = n + z (h_prev - n) (h_prev NULL: zeros, still multiplied). gates is overwritten
 * with r, z, n; hn goes to ghn unless NULL, h_next to h_next unless NULL.
 */
void fnn_gru_cell_f32(fnn_int m, fnn_int hidden, fnn_int j0, fnn_int j1, float *gates, const float *gh,
                      const float *b_hn, const float *h_prev, float *ghn, float *h_next);
void fnn_gru_cell_f64(fnn_int m, fnn_int hidden, fnn_int j0, fnn_int j1, double *gates, const double *gh,
                      const double *b_hn, const double *h_prev, double *ghn, double *h_next);

/*
 * The backward of fnn_gru_cell for rows [0, m), units [j0, j1), from its r, z, n (gates), hn
 * (ghn) and h_prev (NULL: zeros). The gradient at h_next is grad_h plus, when has_carry,
 * carry; carry is then overwritten with its direct part toward h_prev (grad_h_next * z), to
 * which the driver adds grad_gh @ w_hh. grad_gi gets the input side's pre-activation
 * gradients (r, z, n), grad_gh the hidden side's (r, z, r * n's). grad_b, unless NULL,
 * accumulates (in double, row by row in order) the column sums of grad_gi (its first 3H
 * entries) and of grad_gh's n part (the next H): grad_gh's r and z parts equal grad_gi's.
 */
void fnn_gru_cell_backward_f32(fnn_int m, fnn_int hidden, fnn_int j0, fnn_int j1, const float *gates,
                               const float *ghn, const float *h_prev, const float *grad_h, float *carry,
                               int has_carry, float *grad_gi, float *grad_gh, double *grad_b);
void fnn_gru_cell_backward_f64(fnn_int m, fnn_int hidden, fnn_int j0, fnn_int j1, const double *gates,
                               const double *ghn, const double *h_prev, const double *grad_h, double *carry,
                               int has_carry, double *grad_gi, double *grad_gh, double *grad_b);

#ifdef __cplusplus
}
#endif
#endif /* FNN_GRU_H */
