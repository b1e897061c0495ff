# Declarations of the direct convolution tiles (kernels/c/fnn_convtile.h).
from fnn_gemm cimport fnn_int

cdef extern from "fnn_convtile.h" nogil:
    int FNN_CONVTILE_CHANNELS
    int FNN_CONVTILE_PIXELS
    int FNN_CONVTILE_NARROW_CHANNELS
    int FNN_CONVTILE_NARROW_PIXELS
    int FNN_CONVROWS_ROWS
    int FNN_CONVROWS_CHANNELS
    int FNN_CONVROWS_NARROW_ROWS
    int FNN_CONVROWS_NARROW_CHANNELS
    int fnn_convtile_available()
    void fnn_convtile_f32(const float *x, fnn_int cs, fnn_int cin, const fnn_int *off, fnn_int taps,
                          fnn_int wtaps, int sw, int channels, const float *wr, const float *bias,
                          int oc_valid, int np, float *y, fnn_int ys, int accumulate)
    void fnn_convtile_narrow_strided_f32(const float *x, fnn_int cs, fnn_int cin, const fnn_int *off,
                                         fnn_int taps, fnn_int wtaps, const float *wr, int oc_valid, int np,
                                         float *y, fnn_int ys, fnn_int yp, int accumulate)
    void fnn_convrows_f32(const float *const *arow, int m, fnn_int nrows, fnn_int wout, fnn_int pitch,
                          int sw, int channels, const float *b, float *c, fnn_int ldc, int n,
                          int accumulate)
