/* Elementwise kernels, vectorised per instruction-set level: activations and input checks. */
#ifndef FNN_ELEMENTWISE_H
#define FNN_ELEMENTWISE_H

#include "fnn_gemm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* v[i] = tanh(v[i]). float32: a rational approximation within a few ulp of the exact value,
 * NaN in gives NaN out, +-Inf give +-1. float64: the C library's tanh. */
void fnn_tanh_f32(float *v, fnn_int n);
void fnn_tanh_f64(double *v, fnn_int n);

/* 1 when every element is finite, else 0 (whether a padded tap may multiply an Inf or NaN). */
int fnn_all_finite_f32(const float *v, fnn_int n);
int fnn_all_finite_f64(const double *v, fnn_int n);

/* The sum of v[0:n], accumulated in double in sixteen interleaved lanes (a fixed order, so
 * the same inputs always give the same bits), then the lanes in order. */
double fnn_sum_f32(const float *v, fnn_int n);
double fnn_sum_f64(const double *v, fnn_int n);

#ifdef __cplusplus
}
#endif
#endif /* FNN_ELEMENTWISE_H */
