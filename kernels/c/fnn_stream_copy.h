/*
 * dst[0:n] = src[0:n] with non-temporal stores for the 64-byte-aligned lines of dst (plain
 * stores for the ragged ends), then a store fence: an output written once and read much
 * later skips the read-for-ownership of every line, a third of a depthwise layer's memory
 * traffic. Instantiated per instruction-set level (TARGET, the name's suffix SFX) by the
 * files that include immintrin.h.
 */
#ifndef FNN_STREAM_COPY_H
#define FNN_STREAM_COPY_H

#define FNN_STREAM_COPY(TARGET, SFX, T, LANES, LOADU, STREAM)                                      \
    TARGET void fnn_stream_copy_##SFX(T *dst, const T *src, fnn_int n)                             \
    {                                                                                              \
        fnn_int i = 0;                                                                             \
        while (i < n && ((size_t)(dst + i) & 63) != 0) {                                           \
            dst[i] = src[i];                                                                       \
            i++;                                                                                   \
        }                                                                                          \
        for (; i + LANES <= n; i += LANES)                                                         \
            STREAM(dst + i, LOADU(src + i));                                                       \
        for (; i < n; i++)                                                                         \
            dst[i] = src[i];                                                                       \
        _mm_sfence();                                                                              \
    }

#endif /* FNN_STREAM_COPY_H */
