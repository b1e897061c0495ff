/*
 * fastnn GEMM core, BLIS-style: register-blocked micro-kernels with one fixed
 * signature, packing routines, and a cache-blocked loop nest.
 *
 * No Python.h, no OpenMP, no allocation here: the Cython drivers own scratch
 * memory and threads, and call these on the blocks they hand to each thread.
 *
 * Conventions
 * - Matrices are addressed with element strides (rs = row stride, cs = column
 *   stride), so a transposed or sliced operand is packed without a copy first.
 * - C is row-major with leading dimension ldc (column stride 1).
 * - A packed A block holds ceil(m/MR) micro-panels of MR rows, k-major:
 *   panel[p*MR + i] = A[i, p]; rows past m are zero.
 * - A packed B block holds ceil(n/NR) micro-panels of NR columns, k-major:
 *   panel[p*NR + j] = B[p, j]; columns past n are zero.
 * - Sizes are ptrdiff_t throughout, so index arithmetic is 64-bit.
 */
#ifndef FNN_GEMM_H
#define FNN_GEMM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef ptrdiff_t fnn_int;

/* Epilogue flags for the micro-kernel's store. */
enum {
    FNN_ACCUMULATE = 1, /* C += A*B instead of C = A*B                   */
    FNN_BIAS_ROW = 2,   /* then C[i, j] += bias[i] (conv: per channel)   */
    FNN_BIAS_COL = 4    /* then C[i, j] += bias[j]                       */
};

/* Instruction-set levels, lowest first; a level runs on every CPU that has it. */
enum {
    FNN_ISA_PORTABLE = 0,
    FNN_ISA_AVX2 = 1,   /* AVX2 + FMA */
    FNN_ISA_AVX512 = 2  /* AVX-512F   */
};

/*
 * Micro-kernel: the m x n corner (m <= MR, n <= NR) of the MR x NR tile
 * A_panel (MR x k) * B_panel (k x NR), stored to c with row stride ldc and
 * the epilogue that flags asks for. bias points at the tile's first row's
 * (FNN_BIAS_ROW) or first column's (FNN_BIAS_COL) value. k may be 0.
 */
typedef void (*fnn_ukernel_f32)(fnn_int k, const float *a, const float *b,
                                float *c, fnn_int ldc, int m, int n,
                                int flags, const float *bias);
typedef void (*fnn_ukernel_f64)(fnn_int k, const double *a, const double *b,
                                double *c, fnn_int ldc, int m, int n,
                                int flags, const double *bias);

/* One instruction set's kernel for one dtype, with its cache blocking. */
typedef struct {
    const char *name; /* e.g. "fnn_f32_gemm_ukernel_6x64_avx512" */
    int isa;          /* FNN_ISA_* */
    int mr, nr;       /* register tile */
    fnn_int mc, kc, nc; /* cache blocks: mc % mr == 0, nc % nr == 0 */
    fnn_ukernel_f32 ukernel;
} fnn_gemm_desc_f32;

typedef struct {
    const char *name;
    int isa;
    int mr, nr;
    fnn_int mc, kc, nc;
    fnn_ukernel_f64 ukernel;
} fnn_gemm_desc_f64;

/* ---- dispatch ---------------------------------------------------------- */

/* Highest level this CPU (and its OS, for the wide registers) supports. */
int fnn_cpu_isa(void);
/* Level in use; starts at min(fnn_cpu_isa(), FASTNN_CPU env var if set). */
int fnn_active_isa(void);
/* Use a level <= fnn_cpu_isa(); returns the level now active, or -1 if refused. */
int fnn_set_isa(int isa);
const char *fnn_isa_name(int isa); /* "portable", "avx2", "avx512" */

/* The active level's descriptors. */
const fnn_gemm_desc_f32 *fnn_gemm_f32_desc(void);
const fnn_gemm_desc_f64 *fnn_gemm_f64_desc(void);

/* ---- packing ----------------------------------------------------------- */

void fnn_pack_a_f32(int mr, fnn_int m, fnn_int k, const float *a, fnn_int rs,
                    fnn_int cs, float *dst);
void fnn_pack_a_f64(int mr, fnn_int m, fnn_int k, const double *a, fnn_int rs,
                    fnn_int cs, double *dst);
/* Six rows src[i*ld + p] (i < 6, p < k) interleaved as dst[p*6 + i]: one full A micro-panel
 * for MR = 6, as fnn_pack_a_* makes it, for drivers that gather the rows themselves. */
void fnn_pack_6rows_f32(fnn_int k, const float *src, fnn_int ld, float *dst);
void fnn_pack_6rows_f64(fnn_int k, const double *src, fnn_int ld, double *dst);
/* dst[j*ldd + i] = src[i*lds + j] for i < rows, j < cols: in register blocks, as the
 * transposed-B packer, for drivers that hand a transposed tile back (a weight gradient). */
void fnn_transpose_f32(fnn_int rows, fnn_int cols, const float *src, fnn_int lds, float *dst,
                       fnn_int ldd);
void fnn_transpose_f64(fnn_int rows, fnn_int cols, const double *src, fnn_int lds, double *dst,
                       fnn_int ldd);
void fnn_pack_b_f32(int nr, fnn_int k, fnn_int n, const float *b, fnn_int rs,
                    fnn_int cs, float *dst);
void fnn_pack_b_f64(int nr, fnn_int k, fnn_int n, const double *b, fnn_int rs,
                    fnn_int cs, double *dst);
/* Row-major B whose row p is row row_at[p] of b (rs apart): the packed rows of a variable-length
 * batch read straight from its padded arrays, with no gathered copy. */
void fnn_pack_b_gather_f32(int nr, fnn_int k, fnn_int n, const float *b, fnn_int rs,
                           const fnn_int *row_at, float *dst);
void fnn_pack_b_gather_f64(int nr, fnn_int k, fnn_int n, const double *b, fnn_int rs,
                           const fnn_int *row_at, double *dst);

/* ---- loop nest --------------------------------------------------------- */

/*
 * Macro-kernel: C (m x n) op= packed A block (m x k) * packed B block
 * (k x n), micro-tile by micro-tile (loop over n in NR-wide panels, then m in
 * MR-tall panels). bias is the block's first row's/column's value.
 */
void fnn_gemm_macro_f32(const fnn_gemm_desc_f32 *d, fnn_int m, fnn_int n,
                        fnn_int k, const float *apack, const float *bpack,
                        float *c, fnn_int ldc, int flags, const float *bias);
/*
 * fnn_gemm_macro_f32 without bias that also prefetches into L2 the B micro-panel after the
 * one it computes (the next in bpack; `after`, or NULL for none, past the last), where the
 * kernel can (AVX-512); the same results. For B blocks streamed from L3 once per use.
 */
void fnn_gemm_macro_pf_f32(const fnn_gemm_desc_f32 *d, fnn_int m, fnn_int n,
                           fnn_int k, const float *apack, const float *bpack,
                           float *c, fnn_int ldc, int flags, const float *after);
void fnn_gemm_macro_f64(const fnn_gemm_desc_f64 *d, fnn_int m, fnn_int n,
                        fnn_int k, const double *apack, const double *bpack,
                        double *c, fnn_int ldc, int flags, const double *bias);

/*
 * Whole single-threaded GEMM, C (m x n) op= A (m x k) * B (k x n), with
 * generic strides for A and B. The flags apply to the whole product (bias
 * once, whatever the k blocking). scratch holds at least
 * fnn_gemm_scratch_f32(d) floats (packed A and B blocks); the caller owns it.
 */
fnn_int fnn_gemm_scratch_f32(const fnn_gemm_desc_f32 *d);
fnn_int fnn_gemm_scratch_f64(const fnn_gemm_desc_f64 *d);
/*
 * Depth of the k block that starts at pc in fnn_gemm_*'s k loop: k is cut
 * into ceil(k / kc) nearly equal blocks, the first k % nblocks one deeper.
 * A driver running its own loop nest uses this to get bit-identical results
 * (the bias goes in with the last block).
 */
fnn_int fnn_gemm_kblock(fnn_int k, fnn_int kc, fnn_int pc);
void fnn_gemm_f32(const fnn_gemm_desc_f32 *d, fnn_int m, fnn_int n, fnn_int k,
                  const float *a, fnn_int rs_a, fnn_int cs_a,
                  const float *b, fnn_int rs_b, fnn_int cs_b,
                  float *c, fnn_int ldc, int flags, const float *bias,
                  float *scratch);
void fnn_gemm_f64(const fnn_gemm_desc_f64 *d, fnn_int m, fnn_int n, fnn_int k,
                  const double *a, fnn_int rs_a, fnn_int cs_a,
                  const double *b, fnn_int rs_b, fnn_int cs_b,
                  double *c, fnn_int ldc, int flags, const double *bias,
                  double *scratch);

#ifdef __cplusplus
}
#endif
#endif /* FNN_GEMM_H */
