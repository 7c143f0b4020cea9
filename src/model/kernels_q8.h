/*
 * Q8_0 products (private to src/model/kernels*.c). A Q8_0 weight row is
 * multiplied with activations quantised the same way, per 32 columns:
 *
 *   d = max|x| / 127,  q[i] = x[i] / d rounded to nearest (ties to even),
 *   W[r] . x  :=  sum over blocks b of  dw[r][b] d[b] (qw[r][b] . q[b])
 *
 * as llama.cpp does. With AVX512-VNNI the block products are exact int8
 * dot products (vpdpbusd), four products per instruction; elsewhere the
 * activations are dequantised (x~ = d q) and the float kernels compute the
 * same sums, so every build computes the same function.
 */
#ifndef IKV_MODEL_KERNELS_Q8_H
#define IKV_MODEL_KERNELS_Q8_H

#include "model/kernels.h"
#include "model/kernels_isa.h"

/* q[i] and d[b] of x[cols] (cols a multiple of 32). */
void ikv_q8_quantize(const float *x /* [cols] */, int cols, int8_t *q /* [cols] */,
                     float *d /* [cols/32] */);

#if defined(IKV_VNNI)
/* Floats of scratch for one product (a multiple of 16: 64-byte parts). */
size_t ikv_q8_matvec_scratch(int cols);
size_t ikv_q8_matmul_scratch(int rows, int cols, int n, int n_threads);

/* As ikv_matvec / ikv_matmul (n >= 1), with scratch of the size above,
 * 64-byte aligned. */
void ikv_q8_matvec(const ikv_matrix *w, const float *x /* [cols] */, float *y /* [rows] */,
                   int n_threads, float *scratch);
void ikv_q8_matmul(const ikv_matrix *w, const float *x /* [n][cols] */, int n,
                   float *y /* [n][rows] */, int n_threads, float *scratch);
/* As ikv_matvec_group, n matrices of Q8_0 with the same cols. */
void ikv_q8_matvec_group(const ikv_matrix *const *w, int n, const float *x /* [cols] */,
                         float *const *y /* [n][rows of each] */, int n_threads, float *scratch);
#endif

#endif
