/*
 * fastnn GEMM core: the portable micro-kernels, packing, the loop nest and
 * the run-time choice of instruction set. See fnn_gemm.h for the contract.
 *
 * The portable kernels are plain C shaped so that gcc and clang vectorise
 * them (SSE2 on baseline x86-64, NEON on arm64): a fixed-size accumulator
 * array, fully unrolled tile loops, restrict-qualified panels.
 *
 * Determinism: every micro-kernel sums a C element's products in k order,
 * starting from zero for each KC block, and the loop nest adds the blocks to C
 * in k order; nothing depends on where the element sits in its tile or which
 * block a caller handed to which thread.
 */
#include <stdlib.h>
#include <string.h>

#include "fnn_gemm.h"
#include "fnn_gemm_internal.h"

#if defined(FNN_X86_64) && defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#endif

/* SSE2 is part of baseline x86-64, so it needs no run-time check. */
#if defined(FNN_X86_64) && (defined(__SSE2__) || defined(_MSC_VER))
#include <emmintrin.h>
#define FNN_SSE2 1
#endif

/* ---- portable micro-kernels ------------------------------------------- */

/*
 * Tiles sized so the accumulators and the temporaries of a separate multiply
 * and add fit the vector registers without spilling: 16 xmm on baseline
 * x86-64 (4x8 f32 = 8 accumulators; gcc spills at 6x8), 32 NEON registers on
 * arm64 (8x8 f32 = 16).
 */
#if defined(__aarch64__) || defined(_M_ARM64)
enum { PF32_MR = 8, PF32_NR = 8, PF64_MR = 8, PF64_NR = 4 };
#define PF32_NAME "fnn_f32_gemm_ukernel_8x8_portable"
#define PF64_NAME "fnn_f64_gemm_ukernel_8x4_portable"
#else
enum { PF32_MR = 4, PF32_NR = 8, PF64_MR = 4, PF64_NR = 4 };
#define PF32_NAME "fnn_f32_gemm_ukernel_4x8_portable"
#define PF64_NAME "fnn_f64_gemm_ukernel_4x4_portable"
#endif

static void fnn_f32_gemm_ukernel_portable(fnn_int k, const float *FNN_RESTRICT a,
                                          const float *FNN_RESTRICT b,
                                          float *c, fnn_int ldc, int m, int n,
                                          int flags, const float *bias)
{
    float acc[PF32_MR][PF32_NR];
    fnn_int p;
    int i, j;

    FNN_UNROLL(8)
    for (i = 0; i < PF32_MR; i++) {
        FNN_UNROLL(12)
        for (j = 0; j < PF32_NR; j++)
            acc[i][j] = 0.0f;
    }
    for (p = 0; p < k; p++) {
        FNN_UNROLL(8)
        for (i = 0; i < PF32_MR; i++) {
            const float ai = a[p * PF32_MR + i];
            FNN_UNROLL(12)
            for (j = 0; j < PF32_NR; j++)
                acc[i][j] += ai * b[p * PF32_NR + j];
        }
    }
    fnn_store_tile_f32(&acc[0][0], PF32_NR, c, ldc, m, n, flags, bias);
}

static void fnn_f64_gemm_ukernel_portable(fnn_int k, const double *FNN_RESTRICT a,
                                          const double *FNN_RESTRICT b,
                                          double *c, fnn_int ldc, int m, int n,
                                          int flags, const double *bias)
{
    double acc[PF64_MR][PF64_NR];
    fnn_int p;
    int i, j;

    FNN_UNROLL(8)
    for (i = 0; i < PF64_MR; i++) {
        FNN_UNROLL(6)
        for (j = 0; j < PF64_NR; j++)
            acc[i][j] = 0.0;
    }
    for (p = 0; p < k; p++) {
        FNN_UNROLL(8)
        for (i = 0; i < PF64_MR; i++) {
            const double ai = a[p * PF64_MR + i];
            FNN_UNROLL(6)
            for (j = 0; j < PF64_NR; j++)
                acc[i][j] += ai * b[p * PF64_NR + j];
        }
    }
    fnn_store_tile_f64(&acc[0][0], PF64_NR, c, ldc, m, n, flags, bias);
}

const fnn_gemm_desc_f32 fnn_gemm_desc_f32_portable = {
    PF32_NAME, FNN_ISA_PORTABLE, PF32_MR, PF32_NR,
    /* mc, kc, nc */ 32 * PF32_MR, 512, 512 * PF32_NR,
    fnn_f32_gemm_ukernel_portable};

const fnn_gemm_desc_f64 fnn_gemm_desc_f64_portable = {
    PF64_NAME, FNN_ISA_PORTABLE, PF64_MR, PF64_NR,
    32 * PF64_MR, 512, 512 * PF64_NR,
    fnn_f64_gemm_ukernel_portable};

/* ---- dispatch ---------------------------------------------------------- */

#ifdef FNN_X86_64
/*
 * The OS must save the wide registers on context switch (XCR0), or using
 * them corrupts state even though CPUID advertises them.
 */
static int fnn_os_saves(unsigned long long mask)
{
#if defined(_MSC_VER) && !defined(__clang__)
    int regs[4];
    __cpuidex(regs, 1, 0);
    if (!(regs[2] & (1 << 27))) /* OSXSAVE */
        return 0;
    return (_xgetbv(0) & mask) == mask;
#else
    unsigned int eax, ebx, ecx, edx, lo, hi;
    __asm__ volatile("cpuid" : "=a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx)
                     : "a"(1), "c"(0));
    if (!(ecx & (1u << 27))) /* OSXSAVE */
        return 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((((unsigned long long)hi << 32) | lo) & mask) == mask;
#endif
}

static int fnn_detect_isa(void)
{
    /* XCR0 bits: 1-2 = SSE/AVX state; 5-7 = AVX-512 opmask and upper zmm. */
    const unsigned long long ymm_state = 0x6, zmm_state = 0xe6;
    int has_avx2, has_fma, has_avx512f;
#if defined(_MSC_VER) && !defined(__clang__)
    int regs[4];
    __cpuidex(regs, 0, 0);
    if (regs[0] < 7)
        return FNN_ISA_PORTABLE;
    __cpuidex(regs, 1, 0);
    has_fma = (regs[2] >> 12) & 1;
    __cpuidex(regs, 7, 0);
    has_avx2 = (regs[1] >> 5) & 1;
    has_avx512f = (regs[1] >> 16) & 1;
#else
    __builtin_cpu_init();
    has_avx2 = __builtin_cpu_supports("avx2");
    has_fma = __builtin_cpu_supports("fma");
    has_avx512f = __builtin_cpu_supports("avx512f");
#endif
    if (!(has_avx2 && has_fma) || !fnn_os_saves(ymm_state))
        return FNN_ISA_PORTABLE;
    if (!has_avx512f || !fnn_os_saves(zmm_state))
        return FNN_ISA_AVX2;
    return FNN_ISA_AVX512;
}
#else
static int fnn_detect_isa(void) { return FNN_ISA_PORTABLE; }
#endif

/*
 * Filled in on first use. Two threads racing here compute and write the same
 * values, so the race is benign; volatile keeps each read a real load.
 */
static volatile int fnn_cpu_level = -1;
static volatile int fnn_active_level = -1;

int fnn_cpu_isa(void)
{
    int level = fnn_cpu_level;
    if (level < 0) {
        level = fnn_detect_isa();
        fnn_cpu_level = level;
    }
    return level;
}

static int fnn_env_isa(void)
{
    const char *s = getenv("FASTNN_CPU");
    if (s == NULL || *s == '\0')
        return FNN_ISA_AVX512;
    if (strcmp(s, "portable") == 0)
        return FNN_ISA_PORTABLE;
    if (strcmp(s, "avx2") == 0)
        return FNN_ISA_AVX2;
    /* "avx512" or anything unrecognised: no cap beyond the CPU's own. */
    return FNN_ISA_AVX512;
}

int fnn_active_isa(void)
{
    int level = fnn_active_level;
    if (level < 0) {
        int cpu = fnn_cpu_isa(), env = fnn_env_isa();
        level = env < cpu ? env : cpu;
        fnn_active_level = level;
    }
    return level;
}

int fnn_set_isa(int isa)
{
    if (isa < FNN_ISA_PORTABLE || isa > fnn_cpu_isa())
        return -1;
    fnn_active_level = isa;
    return isa;
}

const char *fnn_isa_name(int isa)
{
    switch (isa) {
    case FNN_ISA_PORTABLE:
        return "portable";
    case FNN_ISA_AVX2:
        return "avx2";
    case FNN_ISA_AVX512:
        return "avx512";
    default:
        return "unknown";
    }
}

const fnn_gemm_desc_f32 *fnn_gemm_f32_desc(void)
{
    switch (fnn_active_isa()) {
#ifdef FNN_X86_64
    case FNN_ISA_AVX512:
        return &fnn_gemm_desc_f32_avx512;
    case FNN_ISA_AVX2:
        return &fnn_gemm_desc_f32_avx2;
#endif
    default:
        return &fnn_gemm_desc_f32_portable;
    }
}

const fnn_gemm_desc_f64 *fnn_gemm_f64_desc(void)
{
    switch (fnn_active_isa()) {
#ifdef FNN_X86_64
    case FNN_ISA_AVX512:
        return &fnn_gemm_desc_f64_avx512;
    case FNN_ISA_AVX2:
        return &fnn_gemm_desc_f64_avx2;
#endif
    default:
        return &fnn_gemm_desc_f64_portable;
    }
}

/* ---- packing ----------------------------------------------------------- */

/* How many rows ahead pack_b prefetches a row-major B (measured on Zen 4). */
#ifndef FNN_PACK_AHEAD
#define FNN_PACK_AHEAD 8
#endif

/*
 * Columns of a row-major B packed in one sweep down the rows: whole
 * micro-panels covering at least 256 bytes of each row, so rows far apart
 * in memory are still read several cache lines at a time.
 */
#ifndef FNN_B_GROUP_BYTES
#define FNN_B_GROUP_BYTES 256
#endif
static fnn_int fnn_b_group(int nr, size_t elsize)
{
    const fnn_int panel_bytes = (fnn_int)(nr * elsize);
    return nr * ((FNN_B_GROUP_BYTES + panel_bytes - 1) / panel_bytes);
}


/*
 * Each routine walks the source along its unit-stride direction when it has
 * one (reads dominate: the packed destination is small and stays in cache).
 */
/*
 * 6-row interleave, dst[p*6 + i] = src[i*ld + p]: a full A micro-panel for MR = 6, used by
 * fnn_pack_a_* and by the conv weight gradient, which gathers six contiguous cols rows. SSE2: rows
 * 0-3 go through a 4x4 register transpose and rows 4-5 through unpacks, four pixels at a
 * time (a third of the scalar loads and stores; the core's packer, compiled for baseline
 * x86-64, did this element by element: 9% of a 3x3 weight gradient).
 */
void fnn_pack_6rows_f32(fnn_int k, const float *src, fnn_int ld, float *dst)
{
    const float *r0 = src, *r1 = src + ld, *r2 = src + 2 * ld;
    const float *r3 = src + 3 * ld, *r4 = src + 4 * ld, *r5 = src + 5 * ld;
    fnn_int p = 0;
#ifdef FNN_SSE2
    for (; p + 4 <= k; p += 4) {
        __m128 a0 = _mm_loadu_ps(r0 + p), a1 = _mm_loadu_ps(r1 + p);
        __m128 a2 = _mm_loadu_ps(r2 + p), a3 = _mm_loadu_ps(r3 + p);
        const __m128 a4 = _mm_loadu_ps(r4 + p), a5 = _mm_loadu_ps(r5 + p);
        const __m128 lo45 = _mm_unpacklo_ps(a4, a5); /* r4[p] r5[p] r4[p+1] r5[p+1] */
        const __m128 hi45 = _mm_unpackhi_ps(a4, a5);
        float *d = dst + 6 * p;
        _MM_TRANSPOSE4_PS(a0, a1, a2, a3); /* a_j = rows 0-3 at pixel p + j */
        _mm_storeu_ps(d + 0, a0);
        _mm_storel_pi((__m64 *)(d + 4), lo45);
        _mm_storeu_ps(d + 6, a1);
        _mm_storeh_pi((__m64 *)(d + 10), lo45);
        _mm_storeu_ps(d + 12, a2);
        _mm_storel_pi((__m64 *)(d + 16), hi45);
        _mm_storeu_ps(d + 18, a3);
        _mm_storeh_pi((__m64 *)(d + 22), hi45);
    }
#endif
    for (; p < k; p++) {
        dst[6 * p + 0] = r0[p];
        dst[6 * p + 1] = r1[p];
        dst[6 * p + 2] = r2[p];
        dst[6 * p + 3] = r3[p];
        dst[6 * p + 4] = r4[p];
        dst[6 * p + 5] = r5[p];
    }
}

void fnn_pack_a_f32(int mr, fnn_int m, fnn_int k, const float *a, fnn_int rs,
                    fnn_int cs, float *dst)
{
    fnn_int i0, i, p;
    /* loop over m in MR-tall micro-panels */
    for (i0 = 0; i0 < m; i0 += mr) {
        const fnn_int rows = m - i0 < mr ? m - i0 : mr;
        const float *src = a + i0 * rs;
        if (cs == 1 && mr == 6 && rows == 6) {
            fnn_pack_6rows_f32(k, src, rs, dst);
        } else if (rs == 1 && mr == 6 && rows == 6) {
            /* A transposed: each k step is 6 contiguous values */
            for (p = 0; p < k; p++)
                for (i = 0; i < 6; i++)
                    dst[p * 6 + i] = src[i + p * cs];
        } else if (cs == 1) {
            for (i = 0; i < rows; i++)
                for (p = 0; p < k; p++)
                    dst[p * mr + i] = src[i * rs + p];
        } else {
            for (p = 0; p < k; p++)
                for (i = 0; i < rows; i++)
                    dst[p * mr + i] = src[i * rs + p * cs];
        }
        if (rows < mr)
            for (p = 0; p < k; p++)
                for (i = rows; i < mr; i++)
                    dst[p * mr + i] = 0.0f;
        dst += mr * k;
    }
}

void fnn_pack_6rows_f64(fnn_int k, const double *src, fnn_int ld, double *dst)
{
    const double *r0 = src, *r1 = src + ld, *r2 = src + 2 * ld;
    const double *r3 = src + 3 * ld, *r4 = src + 4 * ld, *r5 = src + 5 * ld;
    fnn_int p = 0;
#ifdef FNN_SSE2
    for (; p + 2 <= k; p += 2) {
        const __m128d a0 = _mm_loadu_pd(r0 + p), a1 = _mm_loadu_pd(r1 + p);
        const __m128d a2 = _mm_loadu_pd(r2 + p), a3 = _mm_loadu_pd(r3 + p);
        const __m128d a4 = _mm_loadu_pd(r4 + p), a5 = _mm_loadu_pd(r5 + p);
        double *d = dst + 6 * p;
        _mm_storeu_pd(d + 0, _mm_unpacklo_pd(a0, a1));
        _mm_storeu_pd(d + 2, _mm_unpacklo_pd(a2, a3));
        _mm_storeu_pd(d + 4, _mm_unpacklo_pd(a4, a5));
        _mm_storeu_pd(d + 6, _mm_unpackhi_pd(a0, a1));
        _mm_storeu_pd(d + 8, _mm_unpackhi_pd(a2, a3));
        _mm_storeu_pd(d + 10, _mm_unpackhi_pd(a4, a5));
    }
#endif
    for (; p < k; p++) {
        dst[6 * p + 0] = r0[p];
        dst[6 * p + 1] = r1[p];
        dst[6 * p + 2] = r2[p];
        dst[6 * p + 3] = r3[p];
        dst[6 * p + 4] = r4[p];
        dst[6 * p + 5] = r5[p];
    }
}

void fnn_pack_a_f64(int mr, fnn_int m, fnn_int k, const double *a, fnn_int rs,
                    fnn_int cs, double *dst)
{
    fnn_int i0, i, p;
    for (i0 = 0; i0 < m; i0 += mr) {
        const fnn_int rows = m - i0 < mr ? m - i0 : mr;
        const double *src = a + i0 * rs;
        if (cs == 1 && mr == 6 && rows == 6) {
            fnn_pack_6rows_f64(k, src, rs, dst);
        } else if (rs == 1 && mr == 6 && rows == 6) {
            /* A transposed: each k step is 6 contiguous values */
            for (p = 0; p < k; p++)
                for (i = 0; i < 6; i++)
                    dst[p * 6 + i] = src[i + p * cs];
        } else if (cs == 1) {
            for (i = 0; i < rows; i++)
                for (p = 0; p < k; p++)
                    dst[p * mr + i] = src[i * rs + p];
        } else {
            for (p = 0; p < k; p++)
                for (i = 0; i < rows; i++)
                    dst[p * mr + i] = src[i * rs + p * cs];
        }
        if (rows < mr)
            for (p = 0; p < k; p++)
                for (i = rows; i < mr; i++)
                    dst[p * mr + i] = 0.0;
        dst += mr * k;
    }
}

/*
 * B stored transposed (rs = 1: column j is contiguous along k), as in the
 * weight gradient's X^T: a transpose, done in 4x4 (f32) or 2x2 (f64) register
 * blocks where SSE2 is baseline, element by element elsewhere.
 */
static void fnn_pack_b_transposed_f32(fnn_int nr, fnn_int k, fnn_int cols,
                                      const float *FNN_RESTRICT src, fnn_int cs,
                                      float *FNN_RESTRICT dst)
{
    fnn_int p, j, j0 = 0;
#ifdef FNN_SSE2
    /* 16 columns at a time: 16 source streams, few enough for the hardware
       prefetcher to follow, and each destination row piece is a full line */
    for (; j0 + 16 <= cols; j0 += 16) {
        for (p = 0; p + 4 <= k; p += 4) {
            for (j = j0; j < j0 + 16; j += 4) {
                __m128 r0 = _mm_loadu_ps(src + (j + 0) * cs + p);
                __m128 r1 = _mm_loadu_ps(src + (j + 1) * cs + p);
                __m128 r2 = _mm_loadu_ps(src + (j + 2) * cs + p);
                __m128 r3 = _mm_loadu_ps(src + (j + 3) * cs + p);
                _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
                _mm_storeu_ps(dst + (p + 0) * nr + j, r0);
                _mm_storeu_ps(dst + (p + 1) * nr + j, r1);
                _mm_storeu_ps(dst + (p + 2) * nr + j, r2);
                _mm_storeu_ps(dst + (p + 3) * nr + j, r3);
            }
        }
        for (; p < k; p++)
            for (j = j0; j < j0 + 16; j++)
                dst[p * nr + j] = src[j * cs + p];
    }
#endif
    for (p = 0; p < k; p++)
        for (j = j0; j < cols; j++)
            dst[p * nr + j] = src[j * cs + p];
}

static void fnn_pack_b_transposed_f64(fnn_int nr, fnn_int k, fnn_int cols,
                                      const double *FNN_RESTRICT src, fnn_int cs,
                                      double *FNN_RESTRICT dst)
{
    fnn_int p, j, j0 = 0;
#ifdef FNN_SSE2
    for (; j0 + 8 <= cols; j0 += 8) {
        for (p = 0; p + 2 <= k; p += 2) {
            for (j = j0; j < j0 + 8; j += 2) {
                const __m128d r0 = _mm_loadu_pd(src + (j + 0) * cs + p);
                const __m128d r1 = _mm_loadu_pd(src + (j + 1) * cs + p);
                _mm_storeu_pd(dst + (p + 0) * nr + j, _mm_unpacklo_pd(r0, r1));
                _mm_storeu_pd(dst + (p + 1) * nr + j, _mm_unpackhi_pd(r0, r1));
            }
        }
        for (; p < k; p++)
            for (j = j0; j < j0 + 8; j++)
                dst[p * nr + j] = src[j * cs + p];
    }
#endif
    for (p = 0; p < k; p++)
        for (j = j0; j < cols; j++)
            dst[p * nr + j] = src[j * cs + p];
}

void fnn_transpose_f32(fnn_int rows, fnn_int cols, const float *src, fnn_int lds, float *dst,
                       fnn_int ldd)
{
    fnn_pack_b_transposed_f32(ldd, cols, rows, src, lds, dst);
}

void fnn_transpose_f64(fnn_int rows, fnn_int cols, const double *src, fnn_int lds, double *dst,
                       fnn_int ldd)
{
    fnn_pack_b_transposed_f64(ldd, cols, rows, src, lds, dst);
}

/*
 * Row-major B (cs = 1), one group of panels at a time, row by row. Rows are
 * far apart and this is often B's first touch: fetch a few rows ahead so
 * several misses are in flight.
 */
static void fnn_pack_b_rows_f32(int nr, fnn_int k, fnn_int n,
                               const float *FNN_RESTRICT b, fnn_int rs,
                               const fnn_int *row_at, float *FNN_RESTRICT dst)
{
    const fnn_int gw = fnn_b_group(nr, sizeof(float));
    const fnn_int line = 64 / sizeof(float);
    fnn_int j0, q, j, p;
    /* loop over n in groups of NR-wide micro-panels */
    for (j0 = 0; j0 < n; j0 += gw) {
        const fnn_int gcols = n - j0 < gw ? n - j0 : gw;
        float *gdst = dst + j0 * k; /* the group's first panel */
        for (p = 0; p < k; p++) {
            const float *row = b + (row_at ? row_at[p] : p) * rs + j0;
            if (p + FNN_PACK_AHEAD < k)
                for (j = 0; j < gcols; j += line)
                    FNN_PREFETCH(b + (row_at ? row_at[p + FNN_PACK_AHEAD] : p + FNN_PACK_AHEAD) * rs
                                 + j0 + j);
            for (q = 0; q < gcols; q += nr) {
                const fnn_int cols = gcols - q < nr ? gcols - q : nr;
                float *d = gdst + q * k + p * nr;
                for (j = 0; j < cols; j++)
                    d[j] = row[q + j];
                for (; j < nr; j++)
                    d[j] = 0.0f;
            }
        }
    }
}

void fnn_pack_b_gather_f32(int nr, fnn_int k, fnn_int n, const float *b, fnn_int rs,
                           const fnn_int *row_at, float *dst)
{
    fnn_pack_b_rows_f32(nr, k, n, b, rs, row_at, dst);
}

void fnn_pack_b_f32(int nr, fnn_int k, fnn_int n, const float *b, fnn_int rs,
                    fnn_int cs, float *dst)
{
    fnn_int j0, j, p;
    if (cs == 1) {
        fnn_pack_b_rows_f32(nr, k, n, b, rs, NULL, dst);
        return;
    }
    /* loop over n in NR-wide micro-panels */
    for (j0 = 0; j0 < n; j0 += nr) {
        const fnn_int cols = n - j0 < nr ? n - j0 : nr;
        const float *src = b + j0 * cs;
        if (rs == 1)
            fnn_pack_b_transposed_f32(nr, k, cols, src, cs, dst);
        else
            /* reads walk nr columns at once, each of whose cache lines is
               used up over the next few p; writes stay sequential */
            for (p = 0; p < k; p++)
                for (j = 0; j < cols; j++)
                    dst[p * nr + j] = src[p * rs + j * cs];
        if (cols < nr)
            for (p = 0; p < k; p++)
                for (j = cols; j < nr; j++)
                    dst[p * nr + j] = 0.0f;
        dst += nr * k;
    }
}

/*
 * Row-major B (cs = 1), one group of panels at a time, row by row. Rows are
 * far apart and this is often B's first touch: fetch a few rows ahead so
 * several misses are in flight.
 */
static void fnn_pack_b_rows_f64(int nr, fnn_int k, fnn_int n,
                               const double *FNN_RESTRICT b, fnn_int rs,
                               const fnn_int *row_at, double *FNN_RESTRICT dst)
{
    const fnn_int gw = fnn_b_group(nr, sizeof(double));
    const fnn_int line = 64 / sizeof(double);
    fnn_int j0, q, j, p;
    /* loop over n in groups of NR-wide micro-panels */
    for (j0 = 0; j0 < n; j0 += gw) {
        const fnn_int gcols = n - j0 < gw ? n - j0 : gw;
        double *gdst = dst + j0 * k; /* the group's first panel */
        for (p = 0; p < k; p++) {
            const double *row = b + (row_at ? row_at[p] : p) * rs + j0;
            if (p + FNN_PACK_AHEAD < k)
                for (j = 0; j < gcols; j += line)
                    FNN_PREFETCH(b + (row_at ? row_at[p + FNN_PACK_AHEAD] : p + FNN_PACK_AHEAD) * rs
                                 + j0 + j);
            for (q = 0; q < gcols; q += nr) {
                const fnn_int cols = gcols - q < nr ? gcols - q : nr;
                double *d = gdst + q * k + p * nr;
                for (j = 0; j < cols; j++)
                    d[j] = row[q + j];
                for (; j < nr; j++)
                    d[j] = 0.0;
            }
        }
    }
}

void fnn_pack_b_gather_f64(int nr, fnn_int k, fnn_int n, const double *b, fnn_int rs,
                           const fnn_int *row_at, double *dst)
{
    fnn_pack_b_rows_f64(nr, k, n, b, rs, row_at, dst);
}

void fnn_pack_b_f64(int nr, fnn_int k, fnn_int n, const double *b, fnn_int rs,
                    fnn_int cs, double *dst)
{
    fnn_int j0, j, p;
    if (cs == 1) {
        fnn_pack_b_rows_f64(nr, k, n, b, rs, NULL, dst);
        return;
    }
    /* loop over n in NR-wide micro-panels */
    for (j0 = 0; j0 < n; j0 += nr) {
        const fnn_int cols = n - j0 < nr ? n - j0 : nr;
        const double *src = b + j0 * cs;
        if (rs == 1)
            fnn_pack_b_transposed_f64(nr, k, cols, src, cs, dst);
        else
            /* reads walk nr columns at once, each of whose cache lines is
               used up over the next few p; writes stay sequential */
            for (p = 0; p < k; p++)
                for (j = 0; j < cols; j++)
                    dst[p * nr + j] = src[p * rs + j * cs];
        if (cols < nr)
            for (p = 0; p < k; p++)
                for (j = cols; j < nr; j++)
                    dst[p * nr + j] = 0.0;
        dst += nr * k;
    }
}

/* ---- loop nest --------------------------------------------------------- */

void fnn_gemm_macro_f32(const fnn_gemm_desc_f32 *d, fnn_int m, fnn_int n,
                        fnn_int k, const float *apack, const float *bpack,
                        float *c, fnn_int ldc, int flags, const float *bias)
{
    const int mr = d->mr, nr = d->nr;
    fnn_int ir, jr;
#ifdef FNN_X86_64
    if (d == &fnn_gemm_desc_f32_avx512) {
        fnn_f32_gemm_macro_pf_avx512(m, n, k, apack, bpack, c, ldc, flags, bias, (const float *)NULL);
        return;
    }
#endif
    /* loop over n in NR-wide micro-panels of B; the panel stays in L1/L2 */
    for (jr = 0; jr < n; jr += nr) {
        const int nb = n - jr < nr ? (int)(n - jr) : nr;
        const float *bp = bpack + jr * k;
        /* loop over m in MR-tall micro-panels of A */
        for (ir = 0; ir < m; ir += mr) {
            const int mb = m - ir < mr ? (int)(m - ir) : mr;
            const float *bias_t = NULL;
            if (flags & FNN_BIAS_ROW)
                bias_t = bias + ir;
            else if (flags & FNN_BIAS_COL)
                bias_t = bias + jr;
            d->ukernel(k, apack + ir * k, bp, c + ir * ldc + jr, ldc, mb, nb,
                       flags, bias_t);
        }
    }
}

void fnn_gemm_macro_pf_f32(const fnn_gemm_desc_f32 *d, fnn_int m, fnn_int n,
                           fnn_int k, const float *apack, const float *bpack,
                           float *c, fnn_int ldc, int flags, const float *after)
{
    flags &= FNN_ACCUMULATE;
#ifdef FNN_X86_64
    if (d == &fnn_gemm_desc_f32_avx512) {
        fnn_f32_gemm_macro_pf_avx512(m, n, k, apack, bpack, c, ldc, flags, (const float *)NULL, after);
        return;
    }
#endif
    (void)after;
    fnn_gemm_macro_f32(d, m, n, k, apack, bpack, c, ldc, flags, (const float *)NULL);
}

void fnn_gemm_macro_f64(const fnn_gemm_desc_f64 *d, fnn_int m, fnn_int n,
                        fnn_int k, const double *apack, const double *bpack,
                        double *c, fnn_int ldc, int flags, const double *bias)
{
    const int mr = d->mr, nr = d->nr;
    fnn_int ir, jr;
#ifdef FNN_X86_64
    if (d == &fnn_gemm_desc_f64_avx512) {
        fnn_f64_gemm_macro_pf_avx512(m, n, k, apack, bpack, c, ldc, flags, bias, (const double *)NULL);
        return;
    }
#endif
    for (jr = 0; jr < n; jr += nr) {
        const int nb = n - jr < nr ? (int)(n - jr) : nr;
        const double *bp = bpack + jr * k;
        for (ir = 0; ir < m; ir += mr) {
            const int mb = m - ir < mr ? (int)(m - ir) : mr;
            const double *bias_t = NULL;
            if (flags & FNN_BIAS_ROW)
                bias_t = bias + ir;
            else if (flags & FNN_BIAS_COL)
                bias_t = bias + jr;
            d->ukernel(k, apack + ir * k, bp, c + ir * ldc + jr, ldc, mb, nb,
                       flags, bias_t);
        }
    }
}

/*
 * Scratch is the packed A block (MC x KC) and the packed B panel (KC x NC),
 * plus one cache line of slack for each so both can start 64-byte aligned
 * whatever pointer the caller hands in.
 */
fnn_int fnn_gemm_scratch_f32(const fnn_gemm_desc_f32 *d)
{
    return d->mc * d->kc + d->kc * d->nc + 2 * (64 / (fnn_int)sizeof(float));
}

fnn_int fnn_gemm_scratch_f64(const fnn_gemm_desc_f64 *d)
{
    return d->mc * d->kc + d->kc * d->nc + 2 * (64 / (fnn_int)sizeof(double));
}

/*
 * k is cut into ceil(k / kc) nearly equal blocks rather than full blocks and
 * a thin remainder, whose C update would cost as much as a full block's. The
 * cut depends only on k and kc, so a C element's summation order is the same
 * for every caller.
 */
fnn_int fnn_gemm_kblock(fnn_int k, fnn_int kc, fnn_int pc)
{
    const fnn_int nblocks = (k + kc - 1) / kc;
    fnn_int base, extra;
    if (nblocks <= 0)
        return 0;
    base = k / nblocks;
    extra = k % nblocks; /* the first `extra` blocks take one more */
    return pc < extra * (base + 1) ? base + 1 : base;
}

static void *fnn_align64(void *p)
{
    return (void *)(((size_t)p + 63) & ~(size_t)63);
}

void fnn_gemm_f32(const fnn_gemm_desc_f32 *d, fnn_int m, fnn_int n, fnn_int k,
                  const float *a, fnn_int rs_a, fnn_int cs_a,
                  const float *b, fnn_int rs_b, fnn_int cs_b,
                  float *c, fnn_int ldc, int flags, const float *bias,
                  float *scratch)
{
    float *apack = (float *)fnn_align64(scratch);
    float *bpack = (float *)fnn_align64(apack + d->mc * d->kc);
    fnn_int jc, pc, ic;

    if (m <= 0 || n <= 0)
        return;
    /* loop over n in NC-wide panels */
    for (jc = 0; jc < n; jc += d->nc) {
        const fnn_int nb = n - jc < d->nc ? n - jc : d->nc;
        /* loop over k in KC-deep blocks; runs once, with kb = 0, when k = 0 */
        pc = 0;
        do {
            const fnn_int kb = fnn_gemm_kblock(k, d->kc, pc);
            const int last = pc + kb >= k;
            /* the first block stores or accumulates as asked, later ones add
               to it; the bias goes in once, with the last block */
            const int fl = (pc == 0 ? (flags & FNN_ACCUMULATE) : FNN_ACCUMULATE) |
                           (last ? (flags & (FNN_BIAS_ROW | FNN_BIAS_COL)) : 0);
            /* loop over m in MC-tall blocks */
            for (ic = 0; ic < m; ic += d->mc) {
                const fnn_int mb = m - ic < d->mc ? m - ic : d->mc;
                const float *bias_b = NULL;
                if (fl & FNN_BIAS_ROW)
                    bias_b = bias + ic;
                else if (fl & FNN_BIAS_COL)
                    bias_b = bias + jc;
                fnn_pack_a_f32(d->mr, mb, kb, a + ic * rs_a + pc * cs_a, rs_a,
                               cs_a, apack);
                if (ic == 0) {
                    /* First M block: pack each B micro-panel just before its
                       first use, while it is still in L1/L2, rather than
                       the whole B block up front; when m <= MC (conv with
                       few channels) it is never read back from L3. Later
                       M blocks reuse the packed panels. Narrow panels go in
                       groups, so each row of B is read 256 bytes at a time. */
                    const fnn_int group = fnn_b_group(d->nr, sizeof(float));
                    fnn_int jr;
                    for (jr = 0; jr < nb; jr += group) {
                        const fnn_int nbr = nb - jr < group ? nb - jr : group;
                        fnn_pack_b_f32(d->nr, kb, nbr,
                                       b + pc * rs_b + (jc + jr) * cs_b, rs_b,
                                       cs_b, bpack + jr * kb);
                        fnn_gemm_macro_f32(d, mb, nbr, kb, apack, bpack + jr * kb,
                                           c + ic * ldc + jc + jr, ldc, fl,
                                           (fl & FNN_BIAS_COL) ? bias_b + jr : bias_b);
                    }
                } else {
                    fnn_gemm_macro_f32(d, mb, nb, kb, apack, bpack,
                                       c + ic * ldc + jc, ldc, fl, bias_b);
                }
            }
            pc += kb;
        } while (pc < k);
    }
}

void fnn_gemm_f64(const fnn_gemm_desc_f64 *d, fnn_int m, fnn_int n, fnn_int k,
                  const double *a, fnn_int rs_a, fnn_int cs_a,
                  const double *b, fnn_int rs_b, fnn_int cs_b,
                  double *c, fnn_int ldc, int flags, const double *bias,
                  double *scratch)
{
    double *apack = (double *)fnn_align64(scratch);
    double *bpack = (double *)fnn_align64(apack + d->mc * d->kc);
    fnn_int jc, pc, ic;

    if (m <= 0 || n <= 0)
        return;
    for (jc = 0; jc < n; jc += d->nc) {
        const fnn_int nb = n - jc < d->nc ? n - jc : d->nc;
        pc = 0;
        do {
            const fnn_int kb = fnn_gemm_kblock(k, d->kc, pc);
            const int last = pc + kb >= k;
            const int fl = (pc == 0 ? (flags & FNN_ACCUMULATE) : FNN_ACCUMULATE) |
                           (last ? (flags & (FNN_BIAS_ROW | FNN_BIAS_COL)) : 0);
            for (ic = 0; ic < m; ic += d->mc) {
                const fnn_int mb = m - ic < d->mc ? m - ic : d->mc;
                const double *bias_b = NULL;
                if (fl & FNN_BIAS_ROW)
                    bias_b = bias + ic;
                else if (fl & FNN_BIAS_COL)
                    bias_b = bias + jc;
                fnn_pack_a_f64(d->mr, mb, kb, a + ic * rs_a + pc * cs_a, rs_a,
                               cs_a, apack);
                if (ic == 0) {
                    /* First M block: pack each B micro-panel just before its
                       first use, while it is still in L1/L2, rather than
                       the whole B block up front; when m <= MC (conv with
                       few channels) it is never read back from L3. Later
                       M blocks reuse the packed panels. Narrow panels go in
                       groups, so each row of B is read 256 bytes at a time. */
                    const fnn_int group = fnn_b_group(d->nr, sizeof(double));
                    fnn_int jr;
                    for (jr = 0; jr < nb; jr += group) {
                        const fnn_int nbr = nb - jr < group ? nb - jr : group;
                        fnn_pack_b_f64(d->nr, kb, nbr,
                                       b + pc * rs_b + (jc + jr) * cs_b, rs_b,
                                       cs_b, bpack + jr * kb);
                        fnn_gemm_macro_f64(d, mb, nbr, kb, apack, bpack + jr * kb,
                                           c + ic * ldc + jc + jr, ldc, fl,
                                           (fl & FNN_BIAS_COL) ? bias_b + jr : bias_b);
                    }
                } else {
                    fnn_gemm_macro_f64(d, mb, nb, kb, apack, bpack,
                                       c + ic * ldc + jc, ldc, fl, bias_b);
                }
            }
            pc += kb;
        } while (pc < k);
    }
}
