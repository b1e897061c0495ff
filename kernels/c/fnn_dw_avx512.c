/*
 * AVX-512F kernels for the direct convolutions that fnn_direct_avx512.c's 3x3 stride-1
 * kernel does not cover: any kernel size (kW up to FNN_DW_MAX_KW) and dilation, any row
 * stride, column stride 1 or 2 (the depthwise layers of MobileNet, EfficientNet, MnasNet,
 * ConvNeXt and DeepLab). The forward (and the stride-1 input gradient), the gathered input
 * gradient of any stride, and the weight gradient's lanes; each reads the padding itself
 * through masks. fnn_direct.c routes here where fnn_plane_dw_reads_padding_itself says so.
 * The bodies are in fnn_dw_body.h, once per dtype (fnn_dw_avx2.c compiles them for AVX2).
 * On other architectures this file is empty.
 */
#include "fnn_direct.h"
#include "fnn_gemm_internal.h"

#ifdef FNN_X86_64
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "fnn_dw_span.h"

#define DW_TARGET FNN_TARGET_AVX512
#define DW_R 8
#define DW_TB 16

#define T float
#define VT __m512
#define MASKT __mmask16
#define LANES 16
#define SFX(name) name##_f32_avx512
#define MASK_BITS(bits) ((__mmask16)(bits))
#define LOADZ _mm512_maskz_loadu_ps
#define STOREM _mm512_mask_storeu_ps
#define LOADU _mm512_loadu_ps
#define STOREU _mm512_storeu_ps
#define FMADD _mm512_fmadd_ps
#define SET1 _mm512_set1_ps
#define SETZERO _mm512_setzero_ps
#define ADD _mm512_add_ps
#define EVEN2(lo, hi) \
    _mm512_permutex2var_ps(lo, _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0), hi)
#define ILV_LO2(a, b) \
    _mm512_permutex2var_ps(a, _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0), b)
#define ILV_HI2(a, b) \
    _mm512_permutex2var_ps(a, _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8), b)
#include "fnn_dw_body.h"
#include "fnn_dw_undef.h"

#define T double
#define VT __m512d
#define MASKT __mmask8
#define LANES 8
#define SFX(name) name##_f64_avx512
#define MASK_BITS(bits) ((__mmask8)(bits))
#define LOADZ _mm512_maskz_loadu_pd
#define STOREM _mm512_mask_storeu_pd
#define LOADU _mm512_loadu_pd
#define STOREU _mm512_storeu_pd
#define FMADD _mm512_fmadd_pd
#define SET1 _mm512_set1_pd
#define SETZERO _mm512_setzero_pd
#define ADD _mm512_add_pd
#define EVEN2(lo, hi) _mm512_permutex2var_pd(lo, _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0), hi)
#define ILV_LO2(a, b) _mm512_permutex2var_pd(a, _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0), b)
#define ILV_HI2(a, b) _mm512_permutex2var_pd(a, _mm512_set_epi64(15, 7, 14, 6, 13, 5, 12, 4), b)
#include "fnn_dw_body.h"
#include "fnn_dw_undef.h"

#endif /* FNN_X86_64 */
