/*
 * Register-only multiply-add chains, one copy per instruction-set level (see fnn_peak.h).
 *
 * Each step updates CHAINS independent accumulators, acc = acc * b + c: enough chains that a
 * new multiply-add can start on every FMA unit every cycle although each one waits on the
 * previous result of its chain (latency 4-6 cycles, 2-4 units: 8-24 operations in flight).
 * With b just below 1 the values settle near c / (1 - b) = 1: never overflow, never
 * subnormal (which would be slow on some CPUs and measure the wrong thing).
 *
 * Two ways to write one step, the same body around them:
 *   - gcc and clang: their vector extensions, one vector the width of the level's registers
 *     (16 bytes portable, 32 AVX2, 64 AVX-512), a * b + c, which the compiler contracts into
 *     one fused multiply-add where the level has one (FNN_PEAK_CONTRACT; the wheel
 *     pipeline checks the AVX2 and AVX-512 copies really contain vfmadd). The AVX-512 copy
 *     is this same source compiled with a wider vector, as the direct kernels do.
 *   - MSVC (no vector extensions, no contraction): intrinsics; NEON on arm64.
 * FNN_PEAK_INTRINSICS builds the second with gcc too, so tests can run it here.
 */
#include "fnn_peak.h"
#include "fnn_gemm_internal.h"

#include <string.h>

#if (defined(__GNUC__) || defined(__clang__)) && !defined(FNN_PEAK_INTRINSICS)
#define FNN_PEAK_VECTOR_EXT 1
#endif

#if defined(__GNUC__) && !defined(__clang__)
/* gcc contracts a * b + c only in its GNU dialects (-std=gnu*, its default); a build with an
 * ISO -std would measure separate multiplies and adds. */
#define FNN_PEAK_CONTRACT __attribute__((optimize("fp-contract=fast")))
/* 64-byte vectors in a function compiled without AVX-512 only warn about an ABI nobody
 * uses here (every such value stays inside one function). */
#pragma GCC diagnostic ignored "-Wpsabi"
#else
#define FNN_PEAK_CONTRACT
#endif

/* x86 has 16 vector registers below AVX-512: 12 accumulators plus b and c fit. arm64 has
 * 32, and up to four FMA units of latency 4 (16 in flight). */
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
#define FNN_PEAK_CHAINS 12
#else
#define FNN_PEAK_CHAINS 16
#endif

/*
 * One level's chains: static double NAME(long long iters), V the vector type of element T,
 * MADD(a, b, c) = a * b + c in V. Vectors are filled and read through memcpy, which works for
 * both vector extensions and intrinsic types.
 */
#define FNN_PEAK_DEFINE(NAME, ATTR, V, T, MADD)                                 \
    ATTR FNN_PEAK_CONTRACT static double NAME(long long iters)                  \
    {                                                                           \
        enum { LANES = (int)(sizeof(V) / sizeof(T)) };                          \
        V acc[FNN_PEAK_CHAINS], b, c;                                           \
        T lanes[LANES];                                                         \
        double sum = 0.0;                                                       \
        long long k;                                                            \
        int i, j;                                                               \
        for (j = 0; j < LANES; j++)                                             \
            lanes[j] = (T)0.9999999;                                            \
        memcpy(&b, lanes, sizeof b);                                            \
        for (j = 0; j < LANES; j++)                                             \
            lanes[j] = (T)1e-7;                                                 \
        memcpy(&c, lanes, sizeof c);                                            \
        for (i = 0; i < FNN_PEAK_CHAINS; i++) {                                 \
            for (j = 0; j < LANES; j++)                                         \
                lanes[j] = (T)(i + j);                                          \
            memcpy(&acc[i], lanes, sizeof acc[i]);                              \
        }                                                                       \
        for (k = 0; k < iters; k++) {                                           \
            FNN_UNROLL(FNN_PEAK_CHAINS)                                         \
            for (i = 0; i < FNN_PEAK_CHAINS; i++)                               \
                acc[i] = MADD(acc[i], b, c);                                    \
        }                                                                       \
        for (i = 0; i < FNN_PEAK_CHAINS; i++) {                                 \
            memcpy(lanes, &acc[i], sizeof lanes);                               \
            for (j = 0; j < LANES; j++)                                         \
                sum += (double)lanes[j];                                        \
        }                                                                       \
        return sum;                                                             \
    }                                                                           \
    static int NAME##_lanes(void) { return (int)(sizeof(V) / sizeof(T)); }

#ifdef FNN_PEAK_VECTOR_EXT

typedef float fnn_peak_f32x4 __attribute__((vector_size(16)));
typedef double fnn_peak_f64x2 __attribute__((vector_size(16)));
#define FNN_PEAK_MADD(a, b, c) ((a) * (b) + (c))
FNN_PEAK_DEFINE(peak_f32_portable, , fnn_peak_f32x4, float, FNN_PEAK_MADD)
FNN_PEAK_DEFINE(peak_f64_portable, , fnn_peak_f64x2, double, FNN_PEAK_MADD)
#ifdef FNN_X86_64
typedef float fnn_peak_f32x8 __attribute__((vector_size(32)));
typedef double fnn_peak_f64x4 __attribute__((vector_size(32)));
typedef float fnn_peak_f32x16 __attribute__((vector_size(64)));
typedef double fnn_peak_f64x8 __attribute__((vector_size(64)));
FNN_PEAK_DEFINE(peak_f32_avx2, FNN_TARGET_AVX2, fnn_peak_f32x8, float, FNN_PEAK_MADD)
FNN_PEAK_DEFINE(peak_f64_avx2, FNN_TARGET_AVX2, fnn_peak_f64x4, double, FNN_PEAK_MADD)
FNN_PEAK_DEFINE(peak_f32_avx512, FNN_TARGET_AVX512, fnn_peak_f32x16, float, FNN_PEAK_MADD)
FNN_PEAK_DEFINE(peak_f64_avx512, FNN_TARGET_AVX512, fnn_peak_f64x8, double, FNN_PEAK_MADD)
#endif

#elif defined(FNN_X86_64)

#include <immintrin.h>
/* SSE2 has no fused multiply-add: the portable level multiplies, then adds. */
#define FNN_PEAK_MADD_SSE_PS(a, b, c) _mm_add_ps(_mm_mul_ps((a), (b)), (c))
#define FNN_PEAK_MADD_SSE_PD(a, b, c) _mm_add_pd(_mm_mul_pd((a), (b)), (c))
FNN_PEAK_DEFINE(peak_f32_portable, , __m128, float, FNN_PEAK_MADD_SSE_PS)
FNN_PEAK_DEFINE(peak_f64_portable, , __m128d, double, FNN_PEAK_MADD_SSE_PD)
FNN_PEAK_DEFINE(peak_f32_avx2, FNN_TARGET_AVX2, __m256, float, _mm256_fmadd_ps)
FNN_PEAK_DEFINE(peak_f64_avx2, FNN_TARGET_AVX2, __m256d, double, _mm256_fmadd_pd)
FNN_PEAK_DEFINE(peak_f32_avx512, FNN_TARGET_AVX512, __m512, float, _mm512_fmadd_ps)
FNN_PEAK_DEFINE(peak_f64_avx512, FNN_TARGET_AVX512, __m512d, double, _mm512_fmadd_pd)

#elif defined(_M_ARM64) || defined(__aarch64__)

#include <arm_neon.h>
/* vfmaq(c, a, b) = c + a * b, fused */
#define FNN_PEAK_MADD_NEON_F32(a, b, c) vfmaq_f32((c), (a), (b))
#define FNN_PEAK_MADD_NEON_F64(a, b, c) vfmaq_f64((c), (a), (b))
FNN_PEAK_DEFINE(peak_f32_portable, , float32x4_t, float, FNN_PEAK_MADD_NEON_F32)
FNN_PEAK_DEFINE(peak_f64_portable, , float64x2_t, double, FNN_PEAK_MADD_NEON_F64)

#else

/* Any other compiler and CPU: plain scalar chains. */
#define FNN_PEAK_MADD_SCALAR(a, b, c) ((a) * (b) + (c))
FNN_PEAK_DEFINE(peak_f32_portable, , float, float, FNN_PEAK_MADD_SCALAR)
FNN_PEAK_DEFINE(peak_f64_portable, , double, double, FNN_PEAK_MADD_SCALAR)

#endif

#ifdef FNN_X86_64
#define FNN_PEAK_SWITCH(name, sfx, args)                  \
    switch (isa) {                                        \
    case FNN_ISA_AVX512: return name##_avx512##sfx args;  \
    case FNN_ISA_AVX2: return name##_avx2##sfx args;      \
    default: return name##_portable##sfx args;            \
    }
#else
#define FNN_PEAK_SWITCH(name, sfx, args) \
    (void)isa;                           \
    return name##_portable##sfx args;
#endif

double fnn_peak_chains_f32(int isa, long long iters) { FNN_PEAK_SWITCH(peak_f32, , (iters)) }
double fnn_peak_chains_f64(int isa, long long iters) { FNN_PEAK_SWITCH(peak_f64, , (iters)) }
int fnn_peak_chain_count(void) { return FNN_PEAK_CHAINS; }
int fnn_peak_lanes_f32(int isa) { FNN_PEAK_SWITCH(peak_f32, _lanes, ()) }
int fnn_peak_lanes_f64(int isa) { FNN_PEAK_SWITCH(peak_f64, _lanes, ()) }
