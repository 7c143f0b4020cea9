/*
 * BF16 matrix-vector products with vdpbf16ps (see kernels_bf16.h): the
 * decode path of BF16 models. On one Zen 4 core the float kernel widened
 * each weight (zero-extend, shift) before its multiply-add and ran close
 * to compute-bound; here 32 weights take one load and two dot-product
 * instructions, so the product waits on memory instead.
 */
#include "config.h"

#include "model/half.h"
#include "model/kernels_bf16.h"

#if defined(IKV_BF16DP)

#define SPLIT_STEP 32 /* columns per vdpbf16ps */

size_t ikv_bf16_matvec_scratch(int cols)
{
    /* hi and lo: cols bfloat16 each, rounded up to whole 64-byte parts */
    const size_t padded = ((size_t)cols + SPLIT_STEP - 1) / SPLIT_STEP * SPLIT_STEP;
    return padded; /* 2 * padded bfloat16 = padded floats */
}

/* The 16 floats of a bfloat16 vector. */
static inline __m512 widen(__m256bh h)
{
    const __m512i v = _mm512_cvtepu16_epi32((__m256i)h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}

/* hi = bf16(x), lo = bf16(x - hi) over whole steps of 32 columns. */
static void split(const float *x, int n32, uint16_t *hi, uint16_t *lo)
{
    for (int i = 0; i < n32; i += 16) {
        const __m512 v = _mm512_loadu_ps(x + i);
        const __m256bh h = _mm512_cvtneps_pbh(v);
        const __m256bh l = _mm512_cvtneps_pbh(_mm512_sub_ps(v, widen(h)));
        _mm256_storeu_si256((__m256i *)(void *)(hi + i), (__m256i)h);
        _mm256_storeu_si256((__m256i *)(void *)(lo + i), (__m256i)l);
    }
}

/* One row: the whole steps through the split x, the tail in float. */
static float dot_row(const uint8_t *row, const uint16_t *hi, const uint16_t *lo, const float *x, int cols)
{
    const int n32 = cols / SPLIT_STEP * SPLIT_STEP;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, b0 = a0, b1 = a0;
    int i = 0;
    for (; i + 2 * SPLIT_STEP <= n32; i += 2 * SPLIT_STEP) {
        const __m512bh w0 = (__m512bh)_mm512_loadu_si512(row + 2 * (size_t)i);
        const __m512bh w1 = (__m512bh)_mm512_loadu_si512(row + 2 * (size_t)i + 64);
        a0 = _mm512_dpbf16_ps(a0, w0, (__m512bh)_mm512_loadu_si512(hi + i));
        b0 = _mm512_dpbf16_ps(b0, w0, (__m512bh)_mm512_loadu_si512(lo + i));
        a1 = _mm512_dpbf16_ps(a1, w1, (__m512bh)_mm512_loadu_si512(hi + i + SPLIT_STEP));
        b1 = _mm512_dpbf16_ps(b1, w1, (__m512bh)_mm512_loadu_si512(lo + i + SPLIT_STEP));
    }
    if (i < n32) {
        const __m512bh w0 = (__m512bh)_mm512_loadu_si512(row + 2 * (size_t)i);
        a0 = _mm512_dpbf16_ps(a0, w0, (__m512bh)_mm512_loadu_si512(hi + i));
        b0 = _mm512_dpbf16_ps(b0, w0, (__m512bh)_mm512_loadu_si512(lo + i));
    }
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(b0, b1)));
    for (int c = n32; c < cols; c++)
        sum += ikv_bf16_to_f32(ikv_load_u16(row + 2 * (size_t)c)) * x[c];
    return sum;
}

/* Four rows at once, `stride` rows apart: each step of the split x is
 * loaded once for four rows (the x loads, not the dot products, were the
 * limit on one row on a hot cache), and the rows come from four distant
 * parts of the matrix. One core's bandwidth from memory is bounded by the
 * misses it keeps in flight, and the hardware prefetcher follows each
 * stream on its own: on a 1 GiB matrix of 2048 columns (Zen 4, one core)
 * four distant rows read 34 GB/s, one row at a time 29, and four adjacent
 * rows 28. */
static void dot_rows4(const ikv_matrix *w, int r0, int stride, const uint16_t *hi, const uint16_t *lo,
                      const float *x, float *y)
{
    const int cols = w->cols, n32 = cols / SPLIT_STEP * SPLIT_STEP;
    const uint8_t *rows[4];
    __m512 a[4], b[4];
    IKV_UNROLL(4)
    for (int k = 0; k < 4; k++) {
        rows[k] = w->data + (size_t)(r0 + k * stride) * w->row_bytes;
        a[k] = b[k] = _mm512_setzero_ps();
    }
    for (int i = 0; i < n32; i += SPLIT_STEP) {
        const __m512bh xh = (__m512bh)_mm512_loadu_si512(hi + i);
        const __m512bh xl = (__m512bh)_mm512_loadu_si512(lo + i);
        IKV_UNROLL(4)
        for (int k = 0; k < 4; k++) {
            const __m512bh wk = (__m512bh)_mm512_loadu_si512(rows[k] + 2 * (size_t)i);
            a[k] = _mm512_dpbf16_ps(a[k], wk, xh);
            b[k] = _mm512_dpbf16_ps(b[k], wk, xl);
        }
    }
    IKV_UNROLL(4)
    for (int k = 0; k < 4; k++) {
        float sum = _mm512_reduce_add_ps(_mm512_add_ps(a[k], b[k]));
        for (int c = n32; c < cols; c++)
            sum += ikv_bf16_to_f32(ikv_load_u16(rows[k] + 2 * (size_t)c)) * x[c];
        y[r0 + k * stride] = sum;
    }
}

/* Row r of each quarter of the matrix together, then the rest one by one;
 * static, so that each thread reads one contiguous range of every
 * quarter. An orphaned loop: shared out inside a parallel region, serial
 * outside. */
static void matvec_rows(const ikv_matrix *w, const uint16_t *hi, const uint16_t *lo, const float *x, float *y)
{
    const int quarter = w->rows / 4;
#pragma omp for schedule(static) nowait
    for (int r = 0; r < quarter; r++)
        dot_rows4(w, r, quarter, hi, lo, x, y);
#pragma omp for schedule(static) nowait
    for (int r = 4 * quarter; r < w->rows; r++)
        y[r] = dot_row(w->data + (size_t)r * w->row_bytes, hi, lo, x, w->cols);
}

void ikv_bf16_matvec_group(const ikv_matrix *const *w, int n, const float *x, float *const *y, int n_threads,
                           float *scratch)
{
    const size_t padded = ikv_bf16_matvec_scratch(w[0]->cols);
    uint16_t *hi = (uint16_t *)(void *)scratch, *lo = hi + padded;
    split(x, w[0]->cols / SPLIT_STEP * SPLIT_STEP, hi, lo);
    int64_t weights = 0;
    for (int i = 0; i < n; i++)
        weights += (int64_t)w[i]->rows * w[i]->cols;
    if (n_threads <= 1 || weights < IKV_PARALLEL_MIN_WEIGHTS) {
        for (int i = 0; i < n; i++)
            matvec_rows(w[i], hi, lo, x, y[i]);
        return;
    }
    /* every thread goes through the matrices in order (nowait loops) */
#pragma omp parallel num_threads(n_threads)
    for (int i = 0; i < n; i++)
        matvec_rows(w[i], hi, lo, x, y[i]);
}

void ikv_bf16_matvec(const ikv_matrix *w, const float *x, float *y, int n_threads, float *scratch)
{
    ikv_bf16_matvec_group(&w, 1, x, &y, n_threads, scratch);
}

#endif
