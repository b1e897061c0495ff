# Declarations of the direct single-plane convolution kernels (kernels/c/fnn_direct.h).
from fnn_gemm cimport fnn_int

cdef extern from "fnn_direct.h" nogil:
    ctypedef struct fnn_plane_geom:
        fnn_int h, w, h_out, w_out, kh, kw, sh, sw, pt, pl, dh, dw

    void fnn_plane_forward_f32(const fnn_plane_geom *g, const float *x, const float *wt, float bias, float *y)
    void fnn_plane_forward_f64(const fnn_plane_geom *g, const double *x, const double *wt, double bias, double *y)
    void fnn_plane_grad_input_f32(const fnn_plane_geom *g, const float *dy, const float *wt, float *dx)
    void fnn_plane_grad_input_f64(const fnn_plane_geom *g, const double *dy, const double *wt, double *dx)
    void fnn_plane_grad_weight_f32(const fnn_plane_geom *g, const float *dy, const float *x, float *dwt, float *lanes)
    void fnn_plane_grad_weight_f64(const fnn_plane_geom *g, const double *dy, const double *x, double *dwt, double *lanes)
