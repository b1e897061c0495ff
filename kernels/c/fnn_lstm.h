/*
 * LSTM cell kernels, elementwise over rows and a range of hidden units: one time step's gate
 * activations and state update, its backward, and the activations alone (for a backward that
 * recomputes the gates). The matrix products around them are the drivers' (GEMM core and
 * fnn_gates.h).
 *
 * Layout: gates i, f, g, o of a row side by side, each H wide (torch.nn.LSTM's order), rows
 * 4H apart; states (m, H). A unit range [j0, j1) touches only its own columns of every gate,
 * so threads that own disjoint ranges never share an element.
 */
#ifndef FNN_LSTM_H
#define FNN_LSTM_H

#include "fnn_gemm.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Rows [0, m), units [j0, j1): gates holds the pre-activations x w_ih^T + h w_hh^T + b and
 * is overwritten with the activated gates (i, f, g, o), which the backward reads; then
 * c_next = f * c_prev + i * g and h_next = o * tanh(c_next). c_prev NULL means zeros (still
 * multiplied: an Inf or NaN forget gate gives NaN, as it does with explicit zeros).
 */
void fnn_lstm_cell_f32(fnn_int m, fnn_int hidden, fnn_int j0, fnn_int j1, float *gates,
                       const float *c_prev, float *c_next, float *h_next);
void fnn_lstm_cell_f64(fnn_int m, fnn_int hidden, fnn_int j0, fnn_int j1, double *gates,
                       const double *c_prev, double *c_next, double *h_next);

/* Rows [0, m), all units: the pre-activations in gates replaced by the activated gates. */
void fnn_lstm_activate_f32(fnn_int m, fnn_int hidden, float *gates);
void fnn_lstm_activate_f64(fnn_int m, fnn_int hidden, double *gates);

/*
 * The backward of fnn_lstm_cell for rows [0, m), units [j0, j1): with the step's activated
 * gates, c_prev (NULL: zeros) and c (= c_next), and the gradients arriving at h (grad_h, plus
 * grad_h_rec unless NULL) and at c (grad_c), write the pre-activation gradients into
 * grad_gates (rows 4H apart) and overwrite grad_c with the gradient at c_prev. grad_b, unless
 * NULL, accumulates (in double) the column sums of grad_gates over the rows, row by row in
 * order.
 */
void fnn_lstm_cell_backward_f32(fnn_int m, fnn_int hidden, fnn_int j0, fnn_int j1, const float *gates,
                                const float *c_prev, const float *c, const float *grad_h,
                                const float *grad_h_rec, float *grad_c, float *grad_gates, double *grad_b);
void fnn_lstm_cell_backward_f64(fnn_int m, fnn_int hidden, fnn_int j0, fnn_int j1, const double *gates,
                                const double *c_prev, const double *c, const double *grad_h,
                                const double *grad_h_rec, double *grad_c, double *grad_gates, double *grad_b);

#ifdef __cplusplus
}
#endif
#endif /* FNN_LSTM_H */
