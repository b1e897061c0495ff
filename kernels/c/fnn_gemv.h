/* One row times a packed B block: the recurrent kernels' batch-1 and batch-2 steps, where a
 * register tile of MR rows would compute mostly padding. */
#ifndef FNN_GEMV_H
#define FNN_GEMV_H

#include "fnn_gemm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* c[0:n] += a[0:k] * B, B (k x n) packed by fnn_pack_b_* into NR-wide panels (nr <= 64).
 * Each c element is summed as the micro-kernels do: the products in k order from zero, then
 * added to c; so rows computed here and rows computed by a micro-kernel agree. */
void fnn_gemv_packed_f32(fnn_int k, const float *a, const float *b, fnn_int n, int nr, float *c);
void fnn_gemv_packed_f64(fnn_int k, const double *a, const double *b, fnn_int n, int nr, double *c);

#ifdef __cplusplus
}
#endif
#endif /* FNN_GEMV_H */
