/* Shared by fnn_dw_avx512.c and fnn_dw_avx2.c: lane masks as bit spans. */
#ifndef FNN_DW_SPAN_H
#define FNN_DW_SPAN_H

#include <stdint.h>

#include "fnn_gemm.h"

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

#endif /* FNN_DW_SPAN_H */
