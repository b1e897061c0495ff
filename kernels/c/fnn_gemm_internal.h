/*
 * Private declarations shared by the GEMM core's translation units: the
 * per-ISA descriptors that fnn_gemm.c's dispatcher chooses between, and the
 * helpers that let the ISA files be compiled by gcc, clang and MSVC alike.
 */
#ifndef FNN_GEMM_INTERNAL_H
#define FNN_GEMM_INTERNAL_H

#include "fnn_gemm.h"

/* FNN_PORTABLE_ONLY builds what a non-x86 machine gets, to test that path. */
#if (defined(__x86_64__) || defined(_M_X64)) && !defined(FNN_PORTABLE_ONLY)
#define FNN_X86_64 1
#endif

/*
 * gcc and clang compile AVX code only inside functions marked with a target
 * attribute, so the rest of the extension stays baseline x86-64. MSVC has no
 * such attribute and needs none: its intrinsics are always available.
 */
#if defined(_MSC_VER) && !defined(__clang__)
#define FNN_TARGET_AVX2
#define FNN_TARGET_AVX512
#define FNN_ALIGN64 __declspec(align(64))
#define FNN_RESTRICT __restrict
#define FNN_FORCE_INLINE __forceinline
#else
#define FNN_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define FNN_TARGET_AVX512 __attribute__((target("avx512f")))
#define FNN_ALIGN64 __attribute__((aligned(64)))
#define FNN_RESTRICT __restrict__
#define FNN_FORCE_INLINE inline __attribute__((always_inline))
#endif

#ifdef FNN_X86_64
extern const fnn_gemm_desc_f32 fnn_gemm_desc_f32_avx2;
extern const fnn_gemm_desc_f64 fnn_gemm_desc_f64_avx2;
extern const fnn_gemm_desc_f32 fnn_gemm_desc_f32_avx512;
extern const fnn_gemm_desc_f64 fnn_gemm_desc_f64_avx512;
void fnn_f32_gemm_macro_pf_avx512(fnn_int m, fnn_int n, fnn_int k, const float *apack,
                                  const float *bpack, float *c, fnn_int ldc, int flags,
                                  const float *bias, const float *after);
void fnn_f64_gemm_macro_pf_avx512(fnn_int m, fnn_int n, fnn_int k, const double *apack,
                                  const double *bpack, double *c, fnn_int ldc, int flags,
                                  const double *bias, const double *after);
#endif

/*
 * Loop-unrolling hint for the fixed-size tile loops; MSVC ignores it (and
 * would warn about an unknown #pragma written out literally).
 */
#if defined(__GNUC__) || defined(__clang__)
#define FNN_PRAGMA(x) _Pragma(#x)
#define FNN_UNROLL(n) FNN_PRAGMA(GCC unroll n)
#else
#define FNN_UNROLL(n)
#endif

/* A read prefetch into L2 (not L1: the lines are wanted a whole plane of work later); a
 * no-op where there is none. */
#if defined(__GNUC__) || defined(__clang__)
#define FNN_PREFETCH_L2(addr) __builtin_prefetch((addr), 0, 2)
#elif defined(FNN_X86_64)
#include <xmmintrin.h>
#define FNN_PREFETCH_L2(addr) _mm_prefetch((const char *)(addr), _MM_HINT_T1)
#else
#define FNN_PREFETCH_L2(addr) ((void)0)
#endif

/* A read prefetch into all cache levels; a no-op where there is none. */
#if defined(__GNUC__) || defined(__clang__)
#define FNN_PREFETCH(addr) __builtin_prefetch((addr), 0, 3)
#elif defined(FNN_X86_64)
#include <xmmintrin.h>
#define FNN_PREFETCH(addr) _mm_prefetch((const char *)(addr), _MM_HINT_T0)
#else
#define FNN_PREFETCH(addr) ((void)0)
#endif

/*
 * Scalar epilogue for a fringe tile held in a row-major buffer acc (row
 * stride acc_ld): the m x n corner goes to c. The same IEEE additions in the
 * same order as the kernels' vector epilogues, so a C element's value does
 * not depend on whether it fell in a full or a fringe tile. C is read only
 * when accumulating: otherwise it may be uninitialised memory.
 */
static inline void fnn_store_tile_f32(const float *acc, int acc_ld, float *c,
                                      fnn_int ldc, int m, int n, int flags,
                                      const float *bias)
{
    int i, j;
    for (i = 0; i < m; i++) {
        for (j = 0; j < n; j++) {
            float v = acc[i * acc_ld + j];
            if (flags & FNN_ACCUMULATE)
                v = c[i * ldc + j] + v;
            if (flags & FNN_BIAS_ROW)
                v = v + bias[i];
            else if (flags & FNN_BIAS_COL)
                v = v + bias[j];
            c[i * ldc + j] = v;
        }
    }
}

static inline void fnn_store_tile_f64(const double *acc, int acc_ld, double *c,
                                      fnn_int ldc, int m, int n, int flags,
                                      const double *bias)
{
    int i, j;
    for (i = 0; i < m; i++) {
        for (j = 0; j < n; j++) {
            double v = acc[i * acc_ld + j];
            if (flags & FNN_ACCUMULATE)
                v = c[i * ldc + j] + v;
            if (flags & FNN_BIAS_ROW)
                v = v + bias[i];
            else if (flags & FNN_BIAS_COL)
                v = v + bias[j];
            c[i * ldc + j] = v;
        }
    }
}

extern const fnn_gemm_desc_f32 fnn_gemm_desc_f32_portable;
extern const fnn_gemm_desc_f64 fnn_gemm_desc_f64_portable;

#endif /* FNN_GEMM_INTERNAL_H */
