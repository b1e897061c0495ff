/*
 * AVX2 (with FMA) builds of the general direct plane kernels of fnn_dw_body.h (see
 * fnn_dw_avx512.c): 8 float or 4 double lanes, masks as lane vectors (vmaskmov loads and
 * stores, which never touch a masked-off lane's memory), 4-row blocks and weight-gradient
 * passes of up to 9 taps (a 3x3 kernel's in one: 9 accumulators, the vector of dY and a load)
 * for the 16 registers. On other architectures this file is empty.
 */
#include "fnn_direct.h"
#include "fnn_gemm_internal.h"

#ifdef FNN_X86_64
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "fnn_dw_span.h"
#include "fnn_stream_copy.h"

FNN_STREAM_COPY(FNN_TARGET_AVX2, f32_avx2, float, 8, _mm256_loadu_ps, _mm256_stream_ps)
FNN_STREAM_COPY(FNN_TARGET_AVX2, f64_avx2, double, 4, _mm256_loadu_pd, _mm256_stream_pd)

/* The lanes whose bit is set in bits (bit l: lane l), as 32-bit and 64-bit lane masks. */
FNN_TARGET_AVX2 static inline __m256i fnn_dw_mask8x32(uint64_t bits)
{
    const __m256i sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)(bits & 0xFF)), sel), sel);
}

FNN_TARGET_AVX2 static inline __m256i fnn_dw_mask4x64(uint64_t bits)
{
    const __m256i sel = _mm256_setr_epi64x(1, 2, 4, 8);
    return _mm256_cmpeq_epi64(_mm256_and_si256(_mm256_set1_epi64x((long long)(bits & 0xF)), sel), sel);
}

/* lanes 0, 2, 4, 6 of lo then of hi (floats); a and b interleaved, first and second halves */
FNN_TARGET_AVX2 static inline __m256 fnn_dw_even_ps(__m256 lo, __m256 hi)
{
    const __m256 t = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0)); /* lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6 */
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), 0xD8));
}

FNN_TARGET_AVX2 static inline __m256d fnn_dw_even_pd(__m256d lo, __m256d hi)
{
    return _mm256_permute4x64_pd(_mm256_unpacklo_pd(lo, hi), 0xD8); /* lo0 hi0 lo2 hi2 -> lo0 lo2 hi0 hi2 */
}

/*
 * vmaskmov stores cost AMD's Zen 2 and 3 about 20 cycles each (a plain store: 1), and their
 * masked loads are slower than plain ones too; most vectors of a plane lie wholly inside
 * their row, so those take the plain instruction. The masks are loop-invariant in the row
 * blocks, so the test is hoisted out of the multiply-add loops. Measured on Zen 3, one
 * thread: the 8x128x56x56 3x3 depthwise forward 13.5 -> 6.9 ms.
 */
FNN_TARGET_AVX2 static FNN_FORCE_INLINE int fnn_dw_full(__m256i m)
{
    return _mm256_movemask_epi8(m) == -1;
}

#define DW_TARGET FNN_TARGET_AVX2
#define DW_R 4
#define DW_TB 9

#define T float
#define VT __m256
#define MASKT __m256i
#define LANES 8
#define SFX(name) name##_f32_avx2
#define MASK_BITS(bits) fnn_dw_mask8x32(bits)
#define LOADZ(m, p) (fnn_dw_full(m) ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, m))
#define STOREM(p, m, v) (fnn_dw_full(m) ? _mm256_storeu_ps(p, v) : _mm256_maskstore_ps(p, m, v))
#define LOADU _mm256_loadu_ps
#define STOREU _mm256_storeu_ps
#define FMADD _mm256_fmadd_ps
#define SET1 _mm256_set1_ps
#define SETZERO _mm256_setzero_ps
#define ADD _mm256_add_ps
#define EVEN2(lo, hi) fnn_dw_even_ps(lo, hi)
#define ILV_LO2(a, b) _mm256_permute2f128_ps(_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b), 0x20)
#define ILV_HI2(a, b) _mm256_permute2f128_ps(_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b), 0x31)
#include "fnn_dw_body.h"
#include "fnn_dw_undef.h"

#define T double
#define VT __m256d
#define MASKT __m256i
#define LANES 4
#define SFX(name) name##_f64_avx2
#define MASK_BITS(bits) fnn_dw_mask4x64(bits)
#define LOADZ(m, p) (fnn_dw_full(m) ? _mm256_loadu_pd(p) : _mm256_maskload_pd(p, m))
#define STOREM(p, m, v) (fnn_dw_full(m) ? _mm256_storeu_pd(p, v) : _mm256_maskstore_pd(p, m, v))
#define LOADU _mm256_loadu_pd
#define STOREU _mm256_storeu_pd
#define FMADD _mm256_fmadd_pd
#define SET1 _mm256_set1_pd
#define SETZERO _mm256_setzero_pd
#define ADD _mm256_add_pd
#define EVEN2(lo, hi) fnn_dw_even_pd(lo, hi)
#define ILV_LO2(a, b) _mm256_permute2f128_pd(_mm256_unpacklo_pd(a, b), _mm256_unpackhi_pd(a, b), 0x20)
#define ILV_HI2(a, b) _mm256_permute2f128_pd(_mm256_unpacklo_pd(a, b), _mm256_unpackhi_pd(a, b), 0x31)
#include "fnn_dw_body.h"
#include "fnn_dw_undef.h"

#endif /* FNN_X86_64 */
