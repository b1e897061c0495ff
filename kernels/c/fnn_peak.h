/*
 * The floating-point peak fastnn's kernels could reach on this machine: independent chains of
 * multiply-adds held in registers (no memory traffic), compiled per instruction-set level as
 * the kernels are. fastnn divides every GFLOP/s it reports by this figure to give a "share of
 * peak"; NumPy's GEMM is not a peak (its BLAS may run a narrower kernel than the CPU has).
 */
#ifndef FNN_PEAK_H
#define FNN_PEAK_H

#ifdef __cplusplus
extern "C" {
#endif

/* Runs `iters` steps of the level's chains on the calling thread and returns their sum (a
 * value the caller keeps, so the work cannot be optimised away). isa: FNN_ISA_*, at most the
 * CPU's (the caller checks); a level this build has no code for runs the portable chains. */
double fnn_peak_chains_f32(int isa, long long iters);
double fnn_peak_chains_f64(int isa, long long iters);

/* One step is fnn_peak_chain_count() multiply-adds, each on a vector of fnn_peak_lanes_*(isa)
 * elements: 2 * chains * lanes FLOPs (a fused multiply-add counts two, as in every FLOP count
 * fastnn reports). Chain i, lane j starts at i + j and steps acc = acc * b + c, with
 * b = (T)0.9999999 and c = (T)1e-7. */
int fnn_peak_chain_count(void);
int fnn_peak_lanes_f32(int isa);
int fnn_peak_lanes_f64(int isa);

#ifdef __cplusplus
}
#endif
#endif /* FNN_PEAK_H */
