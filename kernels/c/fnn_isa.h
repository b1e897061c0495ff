/*
 * Compiling one always-inline body once per instruction-set level and calling the copy for
 * the active level: for kernels simple enough that the compiler's vectoriser does the work.
 */
#ifndef FNN_ISA_H
#define FNN_ISA_H

#include "fnn_gemm_internal.h"

#ifdef FNN_X86_64
#define FNN_DISPATCH(name, args)                     \
    switch (fnn_active_isa()) {                      \
    case FNN_ISA_AVX512: name##_avx512 args; return; \
    case FNN_ISA_AVX2: name##_avx2 args; return;     \
    default: name##_portable args; return;           \
    }
#define FNN_DISPATCH_RETURN(name, args)               \
    switch (fnn_active_isa()) {                        \
    case FNN_ISA_AVX512: return name##_avx512 args;    \
    case FNN_ISA_AVX2: return name##_avx2 args;        \
    default: return name##_portable args;              \
    }
#else
#define FNN_DISPATCH(name, args) name##_portable args;
#define FNN_DISPATCH_RETURN(name, args) return name##_portable args;
#endif

#endif /* FNN_ISA_H */
