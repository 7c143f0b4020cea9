/*
 * BF16 products with AVX512-BF16 (private to src/model/kernels*.c).
 * vdpbf16ps multiplies 32 bfloat16 pairs per instruction, but both sides
 * must be bfloat16. The activations are therefore split into two
 * bfloat16 vectors,
 *
 *   hi = bf16(x),  lo = bf16(x - hi),   W[r] . x  :=  W[r] . hi + W[r] . lo
 *
 * which carries 16 of x's 24 mantissa bits (|x - hi - lo| <= 2^-18 |x|):
 * against the float kernel (every weight widened to float, one multiply-
 * add per 16), two instructions per 32 weights. Products of bfloat16 are
 * exact in float; the sums are float, as elsewhere. Inputs below 2^-126
 * (denormal floats) count as zero in this path.
 */
#ifndef IKV_MODEL_KERNELS_BF16_H
#define IKV_MODEL_KERNELS_BF16_H

#include "model/kernels.h"
#include "model/kernels_isa.h"

#if defined(IKV_BF16DP)
/* Floats of scratch for one product (a multiple of 16: 64-byte parts). */
size_t ikv_bf16_matvec_scratch(int cols);

/* As ikv_matvec for a BF16 matrix, with scratch of the size above,
 * 64-byte aligned. */
void ikv_bf16_matvec(const ikv_matrix *w, const float *x /* [cols] */, float *y /* [rows] */,
                     int n_threads, float *scratch);
/* As ikv_matvec_group, n BF16 matrices with the same cols. */
void ikv_bf16_matvec_group(const ikv_matrix *const *w, int n, const float *x /* [cols] */,
                           float *const *y /* [n][rows of each] */, int n_threads, float *scratch);
#endif

#endif
