# Declarations of the direct single-plane convolution kernels (kernels/c/fnn_direct.h).
from fnn_gemm cimport fnn_int

cdef extern from "fnn_direct.h" nogil:
    ctypedef struct fnn_plane_geom:
        fnn_int h, w, h_out, w_out, kh, kw, sh, sw, pt, pl, dh, dw

    void fnn_plane_conv_f32(const fnn_plane_geom *g, const float *x, fnn_int nc, fnn_int xs,
                            const float *wt, const float *bias, float *y)
    void fnn_plane_conv_f64(const fnn_plane_geom *g, const double *x, fnn_int nc, fnn_int xs,
                            const double *wt, const double *bias, double *y)
    void fnn_plane_conv4_f32(const fnn_plane_geom *g, const float *x, fnn_int nc, fnn_int xs,
                             const float *wt, fnn_int wcs, const float *bias, float *y, fnn_int ys)
    void fnn_plane_conv4_f64(const fnn_plane_geom *g, const double *x, fnn_int nc, fnn_int xs,
                             const double *wt, fnn_int wcs, const double *bias, double *y, fnn_int ys)
    void fnn_stream_copy_f32(float *dst, const float *src, fnn_int n)
    void fnn_stream_copy_f64(double *dst, const double *src, fnn_int n)
    void fnn_plane_grad_input_f32(const fnn_plane_geom *g, const float *dy, const float *wt, float *dx)
    void fnn_plane_grad_input_f64(const fnn_plane_geom *g, const double *dy, const double *wt, double *dx)
    void fnn_plane_grad_weight_lanes_f32(const fnn_plane_geom *g, const float *dy, const float *x, float *lanes)
    void fnn_plane_grad_weight_lanes_f64(const fnn_plane_geom *g, const double *dy, const double *x, double *lanes)
    fnn_plane_geom fnn_plane_padded_geom(const fnn_plane_geom *g)
    void fnn_plane_pad_f32(const fnn_plane_geom *g, const float *x, float *xp, fnn_int xs)
    void fnn_plane_pad_f64(const fnn_plane_geom *g, const double *x, double *xp, fnn_int xs)
    void fnn_plane_grad_weight_wide_f32(const fnn_plane_geom *g, const float *dy, fnn_int dys,
                                        const float *xp, fnn_int xs, float *lanes)
    void fnn_plane_grad_weight_wide_f64(const fnn_plane_geom *g, const double *dy, fnn_int dys,
                                        const double *xp, fnn_int xs, double *lanes)
    int fnn_plane_reads_padding_itself(const fnn_plane_geom *g)
    int fnn_plane_dw_reads_padding_itself(const fnn_plane_geom *g)
    int fnn_plane_conv_prefers_padded(const fnn_plane_geom *g)
    void fnn_plane_grad_input_gather_f32(const fnn_plane_geom *g, const float *dy, fnn_int nc, fnn_int dys,
                                         const float *wt, float *dx)
    void fnn_plane_grad_input_gather_f64(const fnn_plane_geom *g, const double *dy, fnn_int nc, fnn_int dys,
                                         const double *wt, double *dx)
    void fnn_prefetch_l2(const void *p, fnn_int bytes)
    void fnn_plane_grad_weight_unpadded_f32(const fnn_plane_geom *g, const float *dy, const float *x,
                                            float *lanes)
    void fnn_plane_grad_weight_unpadded_f64(const fnn_plane_geom *g, const double *dy, const double *x,
                                            double *lanes)
    int FNN_PLANE_VECTOR_BYTES
    int FNN_PLANE_SLACK_BYTES
