/* Undefines one dtype's parameters of fnn_dw_body.h (see fnn_dw_avx512.c), for the next. */
#undef T
#undef VT
#undef MASKT
#undef LANES
#undef SFX
#undef MASK_BITS
#undef LOADZ
#undef STOREM
#undef LOADU
#undef STOREU
#undef FMADD
#undef SET1
#undef SETZERO
#undef ADD
#undef EVEN2
#undef ILV_LO2
#undef ILV_HI2
