/* Elementwise activations for the recurrent kernels, vectorised per instruction-set level. */
#ifndef FNN_ACTIVATION_H
#define FNN_ACTIVATION_H

#include "fnn_gemm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* v[i] = tanh(v[i]). float32: a rational approximation within a few ulp of the exact value,
 * NaN in gives NaN out, +-Inf give +-1. float64: the C library's tanh. */
void fnn_tanh_f32(float *v, fnn_int n);
void fnn_tanh_f64(double *v, fnn_int n);

#ifdef __cplusplus
}
#endif
#endif /* FNN_ACTIVATION_H */
