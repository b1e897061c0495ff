/*
 * AVX-512F kernels for the direct convolutions that fnn_direct_avx512.c's 3x3 stride-1
 * kernel does not cover: any kernel size (kW up to FNN_DW_MAX_KW) and dilation, any row
 * stride, column stride 1 or 2 (the depthwise layers of MobileNet, EfficientNet, MnasNet,
 * ConvNeXt and DeepLab). The forward (and the stride-1 input gradient), the gathered input
 * gradient of any stride, and the weight gradient's lanes; each reads the padding itself
 * through masks. fnn_direct.c routes here where fnn_plane_dw_reads_padding_itself says so.
 * The bodies are in fnn_dw_avx512_body.h, once per dtype. On other architectures this file
 * is empty.
 */
#include "fnn_direct.h"
#include "fnn_gemm_internal.h"

#ifdef FNN_X86_64
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

/* Bits [lo, hi) of a 64-bit mask, the bounds clamped to [0, 64] first. */
static inline uint64_t fnn_dw_span64(fnn_int lo, fnn_int hi)
{
    uint64_t below_hi, below_lo;
    lo = lo < 0 ? 0 : lo > 64 ? 64 : lo;
    hi = hi < 0 ? 0 : hi > 64 ? 64 : hi;
    if (hi <= lo)
        return 0u;
    below_hi = hi == 64 ? ~0ull : (1ull << hi) - 1u;
    below_lo = (1ull << lo) - 1u; /* lo < hi <= 64 */
    return below_hi & ~below_lo;
}

#define T float
#define VT __m512
#define MASKT __mmask16
#define LANES 16
#define SFX(name) name##_f32_avx512
#define LOADZ _mm512_maskz_loadu_ps
#define STOREM _mm512_mask_storeu_ps
#define FMADD _mm512_fmadd_ps
#define SET1 _mm512_set1_ps
#define SETZERO _mm512_setzero_ps
#define ADD _mm512_add_ps
#define PERM2 _mm512_permutex2var_ps
#define EVEN_IDX _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0)
#define ILV_LO _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0)
#define ILV_HI _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8)
#include "fnn_dw_avx512_body.h"
#undef T
#undef VT
#undef MASKT
#undef LANES
#undef SFX
#undef LOADZ
#undef STOREM
#undef FMADD
#undef SET1
#undef SETZERO
#undef ADD
#undef PERM2
#undef EVEN_IDX
#undef ILV_LO
#undef ILV_HI

#define T double
#define VT __m512d
#define MASKT __mmask8
#define LANES 8
#define SFX(name) name##_f64_avx512
#define LOADZ _mm512_maskz_loadu_pd
#define STOREM _mm512_mask_storeu_pd
#define FMADD _mm512_fmadd_pd
#define SET1 _mm512_set1_pd
#define SETZERO _mm512_setzero_pd
#define ADD _mm512_add_pd
#define PERM2 _mm512_permutex2var_pd
#define EVEN_IDX _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0)
#define ILV_LO _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0)
#define ILV_HI _mm512_set_epi64(15, 7, 14, 6, 13, 5, 12, 4)
#include "fnn_dw_avx512_body.h"

#endif /* FNN_X86_64 */
