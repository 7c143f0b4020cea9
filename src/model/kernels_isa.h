/*
 * The vector code the kernels compile to, chosen once for every kernel
 * file: AVX-512F (with VNNI for Q8_0 products and BF16 for bfloat16
 * products when the compiler targets them), else AVX2+FMA+F16C, else portable C (also forced by defining
 * IKV_PORTABLE_KERNELS, which the tests use to check one against the
 * other). Also the helpers the kernels and the forward pass share.
 * Private to src/model.
 */
#ifndef IKV_MODEL_KERNELS_ISA_H
#define IKV_MODEL_KERNELS_ISA_H

#include <stddef.h>
#include <stdint.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "model/half.h"

#if !defined(IKV_PORTABLE_KERNELS) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define IKV_SIMD256 1
#if defined(__AVX512F__)
#define IKV_SIMD512 1
#if defined(__AVX512VNNI__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define IKV_VNNI 1 /* int8 dot products: vpdpbusd */
#endif
#if defined(__AVX512BF16__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define IKV_BF16DP 1 /* bfloat16 dot products: vdpbf16ps */
#endif
#endif
#include <immintrin.h>

/* The sum of the eight lanes. */
static inline float ikv_hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#endif

/* Accumulators kept in small arrays stay in registers only if the loops
 * over them are unrolled completely. */
#if defined(__GNUC__)
#define IKV_PRAGMA(x) _Pragma(#x)
#define IKV_UNROLL(n) IKV_PRAGMA(GCC unroll n)
#else
#define IKV_UNROLL(n)
#endif

/* Index of the calling thread in its parallel region (0 outside one):
 * the slot of per-thread scratch. */
static inline int ikv_thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* The F16 scale of a Q8_0 block (by the F16C instruction where compiled
 * in). */
static inline float ikv_q8_scale(const uint8_t *blk)
{
#if defined(IKV_SIMD256)
    return _cvtsh_ss(ikv_load_u16(blk));
#else
    return ikv_f16_to_f32(ikv_load_u16(blk));
#endif
}

/* Matrices smaller than this (weights) are not worth a parallel region,
 * nor products of fewer multiply-adds than IKV_PARALLEL_MIN_MACS: waking
 * a passive OpenMP thread on a VM costs tens of microseconds, and
 * stories260K's prefill on 2 threads ran at 60% of its 1-thread speed
 * with the limit at 2^20. */
#define IKV_PARALLEL_MIN_WEIGHTS 65536
#define IKV_PARALLEL_MIN_MACS (1 << 23)

/* Y[t][r] = Y^T[r][t] for t < n, r < rows (one thread's share of the
 * rows when called inside a parallel region). */
void ikv_transpose_rows(const float *yt /* [rows][n_pad] */, size_t n_pad, int rows, int n,
                        float *y /* [n][rows] */);

#endif
