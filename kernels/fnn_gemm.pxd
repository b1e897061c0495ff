# Declarations of the C GEMM core (kernels/c/fnn_gemm.h); cimported by the drivers.
cdef extern from "fnn_gemm.h" nogil:
    ctypedef Py_ssize_t fnn_int

    enum:
        FNN_ACCUMULATE
        FNN_BIAS_ROW
        FNN_BIAS_COL
        FNN_ISA_PORTABLE
        FNN_ISA_AVX2
        FNN_ISA_AVX512

    ctypedef void (*fnn_ukernel_f32)(fnn_int k, const float *a, const float *b, float *c,
                                     fnn_int ldc, int m, int n, int flags, const float *bias)
    ctypedef void (*fnn_ukernel_f64)(fnn_int k, const double *a, const double *b, double *c,
                                     fnn_int ldc, int m, int n, int flags, const double *bias)

    ctypedef struct fnn_gemm_desc_f32:
        const char *name
        int isa
        int mr, nr
        fnn_int mc, kc, nc
        fnn_ukernel_f32 ukernel

    ctypedef struct fnn_gemm_desc_f64:
        const char *name
        int isa
        int mr, nr
        fnn_int mc, kc, nc
        fnn_ukernel_f64 ukernel

    int fnn_cpu_isa()
    int fnn_active_isa()
    int fnn_set_isa(int isa)
    const char *fnn_isa_name(int isa)
    const fnn_gemm_desc_f32 *fnn_gemm_f32_desc()
    const fnn_gemm_desc_f64 *fnn_gemm_f64_desc()

    void fnn_pack_a_f32(int mr, fnn_int m, fnn_int k, const float *a, fnn_int rs, fnn_int cs, float *dst)
    void fnn_pack_a_f64(int mr, fnn_int m, fnn_int k, const double *a, fnn_int rs, fnn_int cs, double *dst)
    void fnn_pack_6rows_f32(fnn_int k, const float *src, fnn_int ld, float *dst)
    void fnn_pack_6rows_f64(fnn_int k, const double *src, fnn_int ld, double *dst)
    void fnn_transpose_f32(fnn_int rows, fnn_int cols, const float *src, fnn_int lds, float *dst, fnn_int ldd)
    void fnn_transpose_f64(fnn_int rows, fnn_int cols, const double *src, fnn_int lds, double *dst, fnn_int ldd)
    void fnn_pack_b_f32(int nr, fnn_int k, fnn_int n, const float *b, fnn_int rs, fnn_int cs, float *dst)
    void fnn_pack_b_f64(int nr, fnn_int k, fnn_int n, const double *b, fnn_int rs, fnn_int cs, double *dst)
    void fnn_pack_b_gather_f32(int nr, fnn_int k, fnn_int n, const float *b, fnn_int rs, const fnn_int *row_at,
                               float *dst)
    void fnn_pack_b_gather_f64(int nr, fnn_int k, fnn_int n, const double *b, fnn_int rs, const fnn_int *row_at,
                               double *dst)

    void fnn_gemm_macro_f32(const fnn_gemm_desc_f32 *d, fnn_int m, fnn_int n, fnn_int k,
                            const float *apack, const float *bpack, float *c, fnn_int ldc,
                            int flags, const float *bias)
    void fnn_gemm_macro_pf_f32(const fnn_gemm_desc_f32 *d, fnn_int m, fnn_int n, fnn_int k,
                               const float *apack, const float *bpack, float *c, fnn_int ldc,
                               int flags, const float *after)
    void fnn_gemm_macro_f64(const fnn_gemm_desc_f64 *d, fnn_int m, fnn_int n, fnn_int k,
                            const double *apack, const double *bpack, double *c, fnn_int ldc,
                            int flags, const double *bias)

    fnn_int fnn_gemm_scratch_f32(const fnn_gemm_desc_f32 *d)
    fnn_int fnn_gemm_scratch_f64(const fnn_gemm_desc_f64 *d)
    void fnn_gemm_f32(const fnn_gemm_desc_f32 *d, fnn_int m, fnn_int n, fnn_int k,
                      const float *a, fnn_int rs_a, fnn_int cs_a,
                      const float *b, fnn_int rs_b, fnn_int cs_b,
                      float *c, fnn_int ldc, int flags, const float *bias, float *scratch)
    void fnn_gemm_f64(const fnn_gemm_desc_f64 *d, fnn_int m, fnn_int n, fnn_int k,
                      const double *a, fnn_int rs_a, fnn_int cs_a,
                      const double *b, fnn_int rs_b, fnn_int cs_b,
                      double *c, fnn_int ldc, int flags, const double *bias, double *scratch)
