/*
 * Kernels of the forward pass (see kernels.h for the plan).
 *
 * Prefill product, per call:
 *   1. X [n][cols] is packed column-major by tiles of TW tokens:
 *      xp[tile][k][j] = X[tile * TW + j][k] (zero past n).
 *   2. Each thread takes blocks of MR weight rows; for every chunk of KC
 *      columns it converts those rows to float once (wb [MR][KC]), then runs
 *      the register tile over every token tile: for each column k, MR
 *      broadcasts of W[r][k] times one TW-wide vector of X[.][k]. The tile's
 *      sums go to Y^T [rows][n_pad], accumulated across chunks.
 *   3. Y^T is transposed into Y [n][rows].
 * Every weight is read and converted once per call however many tokens
 * there are; X's chunk stays in cache across a thread's row blocks.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/half.h"
#include "model/kernels.h"
#include "model/kernels_bf16.h"
#include "model/kernels_q8.h"
#include "model/status.h"

#if defined(IKV_SIMD512)
#define MR 8  /* weight rows per register tile */
#define TW 32 /* tokens per register tile (two vectors) */
#elif defined(IKV_SIMD256)
#define MR 6
#define TW 16
#else
#define MR 4
#define TW 8
#endif
#define KC 256 /* columns per chunk: a multiple of the Q8_0 block */

#define UNROLL(n) IKV_UNROLL(n)

/* Below this many tokens a product is done as that many matrix-vector
 * products: padding a token tile would waste more than it saves. */
#define MATMUL_MIN_TOKENS 4

const char *ikv_kernels_isa(void)
{
#if defined(IKV_VNNI)
    return "avx512-vnni";
#elif defined(IKV_SIMD512)
    return "avx512";
#elif defined(IKV_SIMD256)
    return "avx2";
#else
    return "portable";
#endif
}

void ikv_workspace_free(ikv_workspace *ws)
{
    free(ws->buf);
    ws->buf = NULL;
    ws->cap = 0;
}

int ikv_workspace_reserve(ikv_workspace *ws, size_t floats)
{
    if (floats <= ws->cap)
        return IKV_OK;
    size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
    float *buf = aligned_alloc(64, bytes);
    if (!buf)
        return IKV_ENOMEM;
    free(ws->buf);
    ws->buf = buf;
    ws->cap = bytes / sizeof(float);
    return IKV_OK;
}

/* ---- dot products of one weight row with x (decode) ---- */

#if defined(IKV_SIMD256)
static inline __m256 load_f16x8(const uint8_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

static inline __m256 load_bf16x8(const uint8_t *p)
{
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

static inline __m256 load_q8x8(const int8_t *q)
{
    __m128i b = _mm_loadl_epi64((const __m128i *)q);
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b));
}

#if defined(IKV_SIMD512)
static inline __m512 load_q8x16(const int8_t *q)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)q)));
}
#endif
#endif

float ikv_dot_f32(const float *a, const float *b, int n)
{
    int i = 0;
    float sum = 0.0f;
#if defined(IKV_SIMD256)
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    sum = ikv_hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
#else
    /* Eight independent partial sums: vectorisable without reassociation. */
    float part[8] = {0};
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            part[j] += a[i + j] * b[i + j];
    for (int j = 0; j < 8; j++)
        sum += part[j];
#endif
    for (; i < n; i++)
        sum += a[i] * b[i];
    return sum;
}

static float dot_f16(const uint8_t *w, const float *x, int n)
{
    int i = 0;
    float sum = 0.0f;
#if defined(IKV_SIMD256)
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(load_f16x8(w + 2 * i), _mm256_loadu_ps(x + i), s0);
        s1 = _mm256_fmadd_ps(load_f16x8(w + 2 * i + 16), _mm256_loadu_ps(x + i + 8), s1);
        s2 = _mm256_fmadd_ps(load_f16x8(w + 2 * i + 32), _mm256_loadu_ps(x + i + 16), s2);
        s3 = _mm256_fmadd_ps(load_f16x8(w + 2 * i + 48), _mm256_loadu_ps(x + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(load_f16x8(w + 2 * i), _mm256_loadu_ps(x + i), s0);
    sum = ikv_hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
#else
    float part[8] = {0};
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            part[j] += ikv_f16_to_f32(ikv_load_u16(w + 2 * (i + j))) * x[i + j];
    for (int j = 0; j < 8; j++)
        sum += part[j];
#endif
    for (; i < n; i++)
        sum += ikv_f16_to_f32(ikv_load_u16(w + 2 * i)) * x[i];
    return sum;
}

static float dot_bf16(const uint8_t *w, const float *x, int n)
{
    int i = 0;
    float sum = 0.0f;
#if defined(IKV_SIMD256)
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(load_bf16x8(w + 2 * i), _mm256_loadu_ps(x + i), s0);
        s1 = _mm256_fmadd_ps(load_bf16x8(w + 2 * i + 16), _mm256_loadu_ps(x + i + 8), s1);
        s2 = _mm256_fmadd_ps(load_bf16x8(w + 2 * i + 32), _mm256_loadu_ps(x + i + 16), s2);
        s3 = _mm256_fmadd_ps(load_bf16x8(w + 2 * i + 48), _mm256_loadu_ps(x + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(load_bf16x8(w + 2 * i), _mm256_loadu_ps(x + i), s0);
    sum = ikv_hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
#else
    float part[8] = {0};
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            part[j] += ikv_bf16_to_f32(ikv_load_u16(w + 2 * (i + j))) * x[i + j];
    for (int j = 0; j < 8; j++)
        sum += part[j];
#endif
    for (; i < n; i++)
        sum += ikv_bf16_to_f32(ikv_load_u16(w + 2 * i)) * x[i];
    return sum;
}

/* Q8_0: products q * x are independent; only the accumulation of
 * scale * product carries a dependency, spread over several accumulators
 * (a chain of multiply-adds inside a block would bound the speed by
 * latency, not by memory). */
static float dot_q8_0(const uint8_t *w, const float *x, int n)
{
    const int nb = n / IKV_Q8_0_BLOCK;
#if defined(IKV_SIMD512)
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int b = 0;
    for (; b + 2 <= nb; b += 2) {
        const uint8_t *b0 = w + (size_t)b * IKV_Q8_0_BYTES, *b1 = b0 + IKV_Q8_0_BYTES;
        const float *x0 = x + b * IKV_Q8_0_BLOCK;
        __m512 d0 = _mm512_set1_ps(ikv_q8_scale(b0)), d1 = _mm512_set1_ps(ikv_q8_scale(b1));
        __m512 t0 = _mm512_mul_ps(load_q8x16((const int8_t *)(b0 + 2)), _mm512_loadu_ps(x0));
        __m512 t1 = _mm512_mul_ps(load_q8x16((const int8_t *)(b0 + 18)), _mm512_loadu_ps(x0 + 16));
        __m512 t2 = _mm512_mul_ps(load_q8x16((const int8_t *)(b1 + 2)), _mm512_loadu_ps(x0 + 32));
        __m512 t3 = _mm512_mul_ps(load_q8x16((const int8_t *)(b1 + 18)), _mm512_loadu_ps(x0 + 48));
        a0 = _mm512_fmadd_ps(d0, t0, a0);
        a1 = _mm512_fmadd_ps(d0, t1, a1);
        a2 = _mm512_fmadd_ps(d1, t2, a2);
        a3 = _mm512_fmadd_ps(d1, t3, a3);
    }
    for (; b < nb; b++) {
        const uint8_t *b0 = w + (size_t)b * IKV_Q8_0_BYTES;
        const float *x0 = x + b * IKV_Q8_0_BLOCK;
        __m512 d0 = _mm512_set1_ps(ikv_q8_scale(b0));
        a0 = _mm512_fmadd_ps(d0, _mm512_mul_ps(load_q8x16((const int8_t *)(b0 + 2)), _mm512_loadu_ps(x0)), a0);
        a1 = _mm512_fmadd_ps(d0, _mm512_mul_ps(load_q8x16((const int8_t *)(b0 + 18)), _mm512_loadu_ps(x0 + 16)), a1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
#elif defined(IKV_SIMD256)
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int b = 0; b < nb; b++) {
        const uint8_t *b0 = w + (size_t)b * IKV_Q8_0_BYTES;
        const int8_t *q = (const int8_t *)(b0 + 2);
        const float *x0 = x + b * IKV_Q8_0_BLOCK;
        __m256 d = _mm256_set1_ps(ikv_q8_scale(b0));
        a0 = _mm256_fmadd_ps(d, _mm256_mul_ps(load_q8x8(q), _mm256_loadu_ps(x0)), a0);
        a1 = _mm256_fmadd_ps(d, _mm256_mul_ps(load_q8x8(q + 8), _mm256_loadu_ps(x0 + 8)), a1);
        a2 = _mm256_fmadd_ps(d, _mm256_mul_ps(load_q8x8(q + 16), _mm256_loadu_ps(x0 + 16)), a2);
        a3 = _mm256_fmadd_ps(d, _mm256_mul_ps(load_q8x8(q + 24), _mm256_loadu_ps(x0 + 24)), a3);
    }
    return ikv_hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
#else
    float sum = 0.0f;
    for (int b = 0; b < nb; b++) {
        const uint8_t *blk = w + (size_t)b * IKV_Q8_0_BYTES;
        const int8_t *q = (const int8_t *)(blk + 2);
        const float *xb = x + b * IKV_Q8_0_BLOCK;
        float part[8] = {0};
        for (int i = 0; i < IKV_Q8_0_BLOCK; i += 8)
            for (int j = 0; j < 8; j++)
                part[j] += (float)q[i + j] * xb[i + j];
        float s = 0.0f;
        for (int j = 0; j < 8; j++)
            s += part[j];
        sum += ikv_q8_scale(blk) * s;
    }
    return sum;
#endif
}

static float dot_row(const ikv_matrix *w, int r, const float *x)
{
    const uint8_t *row = w->data + (size_t)r * w->row_bytes;
    switch (w->type) {
    case IKV_WTYPE_F32: return ikv_dot_f32((const float *)(const void *)row, x, w->cols);
    case IKV_WTYPE_F16: return dot_f16(row, x, w->cols);
    case IKV_WTYPE_BF16: return dot_bf16(row, x, w->cols);
    case IKV_WTYPE_Q8_0: return dot_q8_0(row, x, w->cols);
    default: return 0.0f;
    }
}

/* e^x = 2^n p(r): n = x / ln 2 rounded, r = x - n ln 2 (ln 2 in two parts),
 * p the degree-6 polynomial of the Cephes library's expf. n stays in
 * -126..0 for x in [-87, 0], so 2^n is a normal float built from its
 * exponent bits. */
#define EXP_LOW -87.0f
#if defined(IKV_SIMD512)
static inline __m512 exp_nonpositive16(__m512 x)
{
    const __mmask16 in_range = _mm512_cmp_ps_mask(x, _mm512_set1_ps(EXP_LOW), _CMP_GE_OQ);
    const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    const __m512 xc = _mm512_max_ps(x, _mm512_set1_ps(EXP_LOW)); /* NaN -> -87 */
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), xc);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    const __m512 e = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    const __m512 y = _mm512_maskz_mov_ps(in_range, _mm512_mul_ps(e, _mm512_castsi512_ps(bits)));
    return _mm512_mask_mov_ps(y, nan, x);
}
#endif

void ikv_exp_nonpositive(float *x, int n)
{
    int i = 0;
#if defined(IKV_SIMD512)
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(x + i, exp_nonpositive16(_mm512_loadu_ps(x + i)));
    if (i < n) {
        const __mmask16 tail = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(x + i, tail, exp_nonpositive16(_mm512_maskz_loadu_ps(tail, x + i)));
        i = n;
    }
#endif
    for (; i < n; i++)
        x[i] = x[i] >= EXP_LOW ? expf(x[i]) : x[i] != x[i] ? x[i] : 0.0f;
}

void ikv_axpy(float a, const float *x, float *y, int n)
{
    int i = 0;
#if defined(IKV_SIMD256)
    __m256 va = _mm256_set1_ps(a);
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
#endif
    for (; i < n; i++)
        y[i] += a * x[i];
}

/* Four rows at once, `stride` rows apart: each vector of x is loaded once
 * for four rows of weights (x is read from cache), and the weights stream
 * from four distant parts of the matrix, which keeps more misses in
 * flight than one stream does (see kernels_bf16.c). */
#if defined(IKV_SIMD512)
static inline __m512 load_f32x16(const uint8_t *row, int i)
{
    return _mm512_loadu_ps((const float *)(const void *)row + i);
}

static inline __m512 load_f16x16(const uint8_t *row, int i)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(row + 2 * (size_t)i)));
}

static inline __m512 load_bf16x16(const uint8_t *row, int i)
{
    __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(row + 2 * (size_t)i)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}

/* One function per float type, so that the loop holds no type test. */
#define DOT4_FLOAT(NAME, LOAD)                                                              \
    static void NAME(const ikv_matrix *w, int r0, int stride, const float *x, float *y)     \
    {                                                                                       \
        const size_t step = (size_t)stride * w->row_bytes;                                  \
        const uint8_t *r0p = w->data + (size_t)r0 * w->row_bytes;                           \
        const uint8_t *r1p = r0p + step, *r2p = r1p + step, *r3p = r2p + step;              \
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                         \
        const int n16 = w->cols / 16 * 16;                                                  \
        for (int i = 0; i < n16; i += 16) {                                                 \
            __m512 xv = _mm512_loadu_ps(x + i);                                             \
            a0 = _mm512_fmadd_ps(LOAD(r0p, i), xv, a0);                                     \
            a1 = _mm512_fmadd_ps(LOAD(r1p, i), xv, a1);                                     \
            a2 = _mm512_fmadd_ps(LOAD(r2p, i), xv, a2);                                     \
            a3 = _mm512_fmadd_ps(LOAD(r3p, i), xv, a3);                                     \
        }                                                                                   \
        y[r0 + 0 * stride] = _mm512_reduce_add_ps(a0);                                      \
        y[r0 + 1 * stride] = _mm512_reduce_add_ps(a1);                                      \
        y[r0 + 2 * stride] = _mm512_reduce_add_ps(a2);                                      \
        y[r0 + 3 * stride] = _mm512_reduce_add_ps(a3);                                      \
        if (n16 < w->cols) {                                                                \
            float tail[16];                                                                 \
            for (int k = 0; k < 4; k++) {                                                   \
                row_to_f32(w, r0 + k * stride, n16, w->cols - n16, tail);                   \
                for (int j = n16; j < w->cols; j++)                                         \
                    y[r0 + k * stride] += tail[j - n16] * x[j];                             \
            }                                                                               \
        }                                                                                   \
    }

static void row_to_f32(const ikv_matrix *w, int r, int k0, int n, float *out);
DOT4_FLOAT(dot4_f32, load_f32x16)
DOT4_FLOAT(dot4_f16, load_f16x16)
DOT4_FLOAT(dot4_bf16, load_bf16x16)

static void dot4_q8_0(const ikv_matrix *w, int r0, int stride, const float *x, float *y)
{
    const uint8_t *rows[4];
    for (int k = 0; k < 4; k++)
        rows[k] = w->data + (size_t)(r0 + k * stride) * w->row_bytes;
    /* two accumulators per row: halves of each block (see dot_q8_0) */
    __m512 lo[4], hi[4];
    UNROLL(4)
    for (int k = 0; k < 4; k++)
        lo[k] = hi[k] = _mm512_setzero_ps();
    for (int b = 0; b < w->cols / IKV_Q8_0_BLOCK; b++) {
        const size_t off = (size_t)b * IKV_Q8_0_BYTES;
        if ((b & 1) == 0 && off + 16 * IKV_Q8_0_BYTES < w->row_bytes) {
            /* rows are short streams: fetch ahead of the hardware */
            UNROLL(4)
            for (int k = 0; k < 4; k++)
                _mm_prefetch((const char *)rows[k] + off + 16 * IKV_Q8_0_BYTES, _MM_HINT_T0);
        }
        __m512 x0 = _mm512_loadu_ps(x + b * IKV_Q8_0_BLOCK);
        __m512 x1 = _mm512_loadu_ps(x + b * IKV_Q8_0_BLOCK + 16);
        UNROLL(4)
        for (int k = 0; k < 4; k++) {
            const uint8_t *blk = rows[k] + off;
            __m512 d = _mm512_set1_ps(ikv_q8_scale(blk));
            lo[k] = _mm512_fmadd_ps(d, _mm512_mul_ps(load_q8x16((const int8_t *)(blk + 2)), x0), lo[k]);
            hi[k] = _mm512_fmadd_ps(d, _mm512_mul_ps(load_q8x16((const int8_t *)(blk + 18)), x1), hi[k]);
        }
    }
    UNROLL(4)
    for (int k = 0; k < 4; k++)
        y[r0 + k * stride] = _mm512_reduce_add_ps(_mm512_add_ps(lo[k], hi[k]));
}

/* y[r0 + k stride] for k < 4 */
static void dot4(const ikv_matrix *w, int r0, int stride, const float *x, float *y)
{
    switch (w->type) {
    case IKV_WTYPE_F32: dot4_f32(w, r0, stride, x, y); break;
    case IKV_WTYPE_F16: dot4_f16(w, r0, stride, x, y); break;
    case IKV_WTYPE_BF16: dot4_bf16(w, r0, stride, x, y); break;
    case IKV_WTYPE_Q8_0: dot4_q8_0(w, r0, stride, x, y); break;
    default: break;
    }
}
#else
static void dot4(const ikv_matrix *w, int r0, int stride, const float *x, float *y)
{
    for (int k = 0; k < 4; k++)
        y[r0 + k * stride] = dot_row(w, r0 + k * stride, x);
}
#endif

/* Row r of each quarter of the matrix together (four streams), then the
 * rest one by one. */
static void matvec_float(const ikv_matrix *w, const float *x, float *y, int n_threads)
{
    const int rows = w->rows, quarter = rows / 4;
    if (n_threads <= 1 || (int64_t)rows * w->cols < IKV_PARALLEL_MIN_WEIGHTS) {
        /* no parallel region at all: even an inactive one costs time */
        for (int r = 0; r < quarter; r++)
            dot4(w, r, quarter, x, y);
        for (int r = 4 * quarter; r < rows; r++)
            y[r] = dot_row(w, r, x);
        return;
    }
    /* Dynamic chunks of rows: on a shared machine a thread that loses its
     * core holds up only its current chunk, not a fixed half of the rows. */
#pragma omp parallel num_threads(n_threads)
    {
#pragma omp for schedule(dynamic, 16) nowait
        for (int r = 0; r < quarter; r++)
            dot4(w, r, quarter, x, y);
#pragma omp for schedule(dynamic, 64)
        for (int r = 4 * quarter; r < rows; r++)
            y[r] = dot_row(w, r, x);
    }
}

/* Q8_0 activations as every build computes with them, dequantised:
 * out = d q (see kernels_q8.h). */
void ikv_q8_activations(const float *x, int cols, float *out)
{
    int8_t q[IKV_Q8_0_BLOCK];
    for (int b = 0; b < cols / IKV_Q8_0_BLOCK; b++) {
        float d;
        ikv_q8_quantize(x + b * IKV_Q8_0_BLOCK, IKV_Q8_0_BLOCK, q, &d);
        for (int i = 0; i < IKV_Q8_0_BLOCK; i++)
            out[b * IKV_Q8_0_BLOCK + i] = d * (float)q[i];
    }
}

size_t ikv_matvec_workspace(const ikv_matrix *w)
{
#if defined(IKV_BF16DP)
    if (w->type == IKV_WTYPE_BF16)
        return ikv_bf16_matvec_scratch(w->cols);
#endif
    if (w->type != IKV_WTYPE_Q8_0)
        return 0;
#if defined(IKV_VNNI)
    return ikv_q8_matvec_scratch(w->cols);
#else
    return (size_t)w->cols;
#endif
}

int ikv_matvec(const ikv_matrix *w, const float *x, float *y, int n_threads, ikv_workspace *ws)
{
#if defined(IKV_BF16DP)
    if (w->type == IKV_WTYPE_BF16) {
        if (ikv_workspace_reserve(ws, ikv_bf16_matvec_scratch(w->cols)) != IKV_OK)
            return IKV_ENOMEM;
        ikv_bf16_matvec(w, x, y, n_threads, ws->buf);
        return IKV_OK;
    }
#endif
    if (w->type != IKV_WTYPE_Q8_0) {
        matvec_float(w, x, y, n_threads);
        return IKV_OK;
    }
    if (ikv_workspace_reserve(ws, ikv_matvec_workspace(w)) != IKV_OK)
        return IKV_ENOMEM;
#if defined(IKV_VNNI)
    ikv_q8_matvec(w, x, y, n_threads, ws->buf);
#else
    ikv_q8_activations(x, w->cols, ws->buf);
    matvec_float(w, ws->buf, y, n_threads);
#endif
    return IKV_OK;
}

int ikv_matvec_group(const ikv_matrix *const *w, int n, const float *x, float *const *y, int n_threads,
                     ikv_workspace *ws)
{
    int same = n > 0;
    for (int i = 1; i < n; i++)
        same &= w[i]->type == w[0]->type && w[i]->cols == w[0]->cols;
#if defined(IKV_BF16DP)
    if (same && w[0]->type == IKV_WTYPE_BF16) {
        if (ikv_workspace_reserve(ws, ikv_bf16_matvec_scratch(w[0]->cols)) != IKV_OK)
            return IKV_ENOMEM;
        ikv_bf16_matvec_group(w, n, x, y, n_threads, ws->buf);
        return IKV_OK;
    }
#endif
#if defined(IKV_VNNI)
    if (same && w[0]->type == IKV_WTYPE_Q8_0) {
        if (ikv_workspace_reserve(ws, ikv_matvec_workspace(w[0])) != IKV_OK)
            return IKV_ENOMEM;
        ikv_q8_matvec_group(w, n, x, y, n_threads, ws->buf);
        return IKV_OK;
    }
#endif
    (void)same;
    for (int i = 0; i < n; i++)
        if (ikv_matvec(w[i], x, y[i], n_threads, ws) != IKV_OK)
            return IKV_ENOMEM;
    return IKV_OK;
}

void ikv_scaled_scores(const float *q, const float *k, int n, int d, float scale, float *row)
{
#if defined(IKV_SIMD256)
    if (d == 8) {
        /* short heads (stories260K): one vector a key, no call; the same
         * product and lane sum as ikv_dot_f32's */
        const __m256 qv = _mm256_loadu_ps(q);
        for (int j = 0; j < n; j++)
            row[j] = ikv_hsum256(_mm256_mul_ps(qv, _mm256_loadu_ps(k + (size_t)j * 8))) * scale;
        return;
    }
#endif
    for (int j = 0; j < n; j++)
        row[j] = ikv_dot_f32(q, k + (size_t)j * d, d) * scale;
}

void ikv_swiglu(float *gate, const float *up, size_t n)
{
    size_t i = 0;
#if defined(IKV_SIMD512)
    /* silu(g) = g / (1 + e^-g) from e = e^-|g| (never overflows):
     * g / (1 + e) for g >= 0, g e / (1 + e) below */
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    const __m512 one = _mm512_set1_ps(1.0f);
    for (; i + 16 <= n; i += 16) {
        const __m512 g = _mm512_loadu_ps(gate + i);
        const __m512 e = exp_nonpositive16(_mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(g), sign)));
        const __mmask16 negative = _mm512_cmp_ps_mask(g, _mm512_setzero_ps(), _CMP_LT_OQ);
        const __m512 num = _mm512_mask_mul_ps(g, negative, g, e);
        _mm512_storeu_ps(gate + i, _mm512_mul_ps(_mm512_div_ps(num, _mm512_add_ps(one, e)), _mm512_loadu_ps(up + i)));
    }
#endif
    for (; i < n; i++)
        gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

/* out[0..d) = sum_j p[j] * v[j][0..d): the value half of attention, with
 * the output held in registers across all rows (d up to 128 per pass). */
void ikv_weighted_rows(const float *p, const float *v, int n, int d, float *out)
{
    int c0 = 0;
#if defined(IKV_SIMD512)
    while (d - c0 >= 16) {
        const int vecs = (d - c0) / 16 < 8 ? (d - c0) / 16 : 8;
        __m512 acc[8];
        UNROLL(8)
        for (int k = 0; k < 8; k++)
            acc[k] = _mm512_setzero_ps();
        for (int j = 0; j < n; j++) {
            const float *row = v + (size_t)j * d + c0;
            __m512 pj = _mm512_set1_ps(p[j]);
            UNROLL(8)
            for (int k = 0; k < 8; k++)
                if (k < vecs)
                    acc[k] = _mm512_fmadd_ps(pj, _mm512_loadu_ps(row + 16 * k), acc[k]);
        }
        UNROLL(8)
        for (int k = 0; k < 8; k++)
            if (k < vecs)
                _mm512_storeu_ps(out + c0 + 16 * k, acc[k]);
        c0 += 16 * vecs;
    }
#endif
#if defined(IKV_SIMD256)
    if (d - c0 == 8) { /* short heads: the sum stays in a register (as axpy's) */
        __m256 acc = _mm256_setzero_ps();
        for (int j = 0; j < n; j++)
            acc = _mm256_fmadd_ps(_mm256_set1_ps(p[j]), _mm256_loadu_ps(v + (size_t)j * d + c0), acc);
        _mm256_storeu_ps(out + c0, acc);
        return;
    }
#endif
    /* columns left over (or every column without AVX-512) */
    for (int c = c0; c < d; c++)
        out[c] = 0.0f;
    for (int j = 0; j < n; j++)
        if (c0 < d)
            ikv_axpy(p[j], v + (size_t)j * d + c0, out + c0, d - c0);
}

/* ---- row conversion (prefill weight blocks, embeddings) ---- */

/* Columns [k0, k0 + n) of row r as floats. */
static void row_to_f32(const ikv_matrix *w, int r, int k0, int n, float *out)
{
    const uint8_t *row = w->data + (size_t)r * w->row_bytes;
    int i = 0;
    switch (w->type) {
    case IKV_WTYPE_F32:
        memcpy(out, row + 4 * (size_t)k0, (size_t)n * sizeof *out);
        return;
    case IKV_WTYPE_F16:
#if defined(IKV_SIMD256)
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(out + i, load_f16x8(row + 2 * (size_t)(k0 + i)));
#endif
        for (; i < n; i++)
            out[i] = ikv_f16_to_f32(ikv_load_u16(row + 2 * (size_t)(k0 + i)));
        return;
    case IKV_WTYPE_BF16:
#if defined(IKV_SIMD256)
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(out + i, load_bf16x8(row + 2 * (size_t)(k0 + i)));
#endif
        for (; i < n; i++)
            out[i] = ikv_bf16_to_f32(ikv_load_u16(row + 2 * (size_t)(k0 + i)));
        return;
    case IKV_WTYPE_Q8_0:
        for (int b = 0; b < n / IKV_Q8_0_BLOCK; b++) {
            const uint8_t *blk = row + (size_t)(k0 / IKV_Q8_0_BLOCK + b) * IKV_Q8_0_BYTES;
            const int8_t *q = (const int8_t *)(blk + 2);
            float d = ikv_q8_scale(blk);
            float *o = out + b * IKV_Q8_0_BLOCK;
#if defined(IKV_SIMD256)
            __m256 vd = _mm256_set1_ps(d);
            for (int j = 0; j < IKV_Q8_0_BLOCK; j += 8)
                _mm256_storeu_ps(o + j, _mm256_mul_ps(vd, load_q8x8(q + j)));
#else
            for (int j = 0; j < IKV_Q8_0_BLOCK; j++)
                o[j] = d * (float)q[j];
#endif
        }
        return;
    default:
        memset(out, 0, (size_t)n * sizeof *out);
        return;
    }
}

void ikv_matrix_row(const ikv_matrix *w, int r, float *out)
{
    row_to_f32(w, r, 0, w->cols, out);
}

/* ---- the register tile (prefill) ---- */

#define UNROLL_MR UNROLL(8)

/* yt[r][0..TW) (+)= sum_k wb[r][k] * xp[k][0..TW) for r < nr; rows of wb
 * past nr are readable (zeros or real rows) and their sums are dropped. */
static void tile(const float *wb, size_t ldw, const float *xp, int kc, float *yt, size_t ldy,
                 int nr, int accumulate)
{
#if defined(IKV_SIMD512)
    __m512 c0[MR], c1[MR];
    UNROLL_MR
    for (int r = 0; r < MR; r++) {
        if (accumulate && r < nr) {
            c0[r] = _mm512_load_ps(yt + r * ldy);
            c1[r] = _mm512_load_ps(yt + r * ldy + 16);
        } else {
            c0[r] = _mm512_setzero_ps();
            c1[r] = _mm512_setzero_ps();
        }
    }
    for (int k = 0; k < kc; k++) {
        __m512 x0 = _mm512_load_ps(xp + (size_t)k * TW);
        __m512 x1 = _mm512_load_ps(xp + (size_t)k * TW + 16);
        UNROLL_MR
        for (int r = 0; r < MR; r++) {
            __m512 b = _mm512_set1_ps(wb[r * ldw + k]);
            c0[r] = _mm512_fmadd_ps(b, x0, c0[r]);
            c1[r] = _mm512_fmadd_ps(b, x1, c1[r]);
        }
    }
    UNROLL_MR
    for (int r = 0; r < nr; r++) {
        _mm512_store_ps(yt + r * ldy, c0[r]);
        _mm512_store_ps(yt + r * ldy + 16, c1[r]);
    }
#elif defined(IKV_SIMD256)
    __m256 c0[MR], c1[MR];
    UNROLL_MR
    for (int r = 0; r < MR; r++) {
        if (accumulate && r < nr) {
            c0[r] = _mm256_load_ps(yt + r * ldy);
            c1[r] = _mm256_load_ps(yt + r * ldy + 8);
        } else {
            c0[r] = _mm256_setzero_ps();
            c1[r] = _mm256_setzero_ps();
        }
    }
    for (int k = 0; k < kc; k++) {
        __m256 x0 = _mm256_load_ps(xp + (size_t)k * TW);
        __m256 x1 = _mm256_load_ps(xp + (size_t)k * TW + 8);
        UNROLL_MR
        for (int r = 0; r < MR; r++) {
            __m256 b = _mm256_broadcast_ss(wb + r * ldw + k);
            c0[r] = _mm256_fmadd_ps(b, x0, c0[r]);
            c1[r] = _mm256_fmadd_ps(b, x1, c1[r]);
        }
    }
    UNROLL_MR
    for (int r = 0; r < nr; r++) {
        _mm256_store_ps(yt + r * ldy, c0[r]);
        _mm256_store_ps(yt + r * ldy + 8, c1[r]);
    }
#else
    float c[MR][TW];
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < TW; j++)
            c[r][j] = accumulate && r < nr ? yt[r * ldy + j] : 0.0f;
    for (int k = 0; k < kc; k++) {
        const float *xk = xp + (size_t)k * TW;
        for (int r = 0; r < MR; r++) {
            float b = wb[r * ldw + k];
            for (int j = 0; j < TW; j++)
                c[r][j] += b * xk[j];
        }
    }
    for (int r = 0; r < nr; r++)
        for (int j = 0; j < TW; j++)
            yt[r * ldy + j] = c[r][j];
#endif
}

/* The three steps of ikv_matmul (see the top of this file); run by every
 * thread of a parallel region, or alone (orphaned loops run serially). */
typedef struct matmul_job {
    const ikv_matrix *w;
    const float *x;
    float *y;
    int n, n_tiles, n_chunks, n_blocks;
    size_t n_pad, wb_size;
    float *xp, *yt, *wb_all;
} matmul_job;

static void matmul_steps(const matmul_job *jb)
{
    const ikv_matrix *w = jb->w;
    const float *x = jb->x;
    float *y = jb->y, *xp = jb->xp, *yt = jb->yt, *wb_all = jb->wb_all;
    const int rows = w->rows, cols = w->cols, n = jb->n;
    const int n_tiles = jb->n_tiles, n_chunks = jb->n_chunks, n_blocks = jb->n_blocks;
    const size_t n_pad = jb->n_pad, wb_size = jb->wb_size;
    /* 1. pack X by token tiles and column chunks */
#pragma omp for schedule(static)
    for (int job = 0; job < n_tiles * n_chunks; job++) {
        int tile_i = job / n_chunks, k0 = (job % n_chunks) * KC;
        int kc = cols - k0 < KC ? cols - k0 : KC;
        float *dst = xp + ((size_t)tile_i * cols + k0) * TW;
        for (int j = 0; j < TW; j++) {
            int t = tile_i * TW + j;
            if (t < n) {
                const float *src = x + (size_t)t * cols + k0;
                for (int k = 0; k < kc; k++)
                    dst[(size_t)k * TW + j] = src[k];
            } else {
                for (int k = 0; k < kc; k++)
                    dst[(size_t)k * TW + j] = 0.0f;
            }
        }
    }

    /* 2. row blocks x column chunks x token tiles (dynamic: see matvec) */
    float *wb = wb_all + wb_size * (size_t)ikv_thread_id();
#pragma omp for schedule(dynamic, 4)
    for (int blk = 0; blk < n_blocks; blk++) {
        int r0 = blk * MR;
        int nr = rows - r0 < MR ? rows - r0 : MR;
        for (int k0 = 0; k0 < cols; k0 += KC) {
            int kc = cols - k0 < KC ? cols - k0 : KC;
            const float *wrows;
            size_t ldw;
            if (w->type == IKV_WTYPE_F32 && nr == MR) {
                wrows = (const float *)(const void *)(w->data + (size_t)r0 * w->row_bytes) + k0;
                ldw = (size_t)cols;
            } else {
                for (int r = 0; r < MR; r++) {
                    if (r < nr)
                        row_to_f32(w, r0 + r, k0, kc, wb + (size_t)r * KC);
                    else
                        memset(wb + (size_t)r * KC, 0, (size_t)kc * sizeof *wb);
                }
                wrows = wb;
                ldw = KC;
            }
            for (int tile_i = 0; tile_i < n_tiles; tile_i++)
                tile(wrows, ldw, xp + ((size_t)tile_i * cols + k0) * TW, kc,
                     yt + (size_t)r0 * n_pad + (size_t)tile_i * TW, n_pad, nr, k0 > 0);
        }
    }

    /* 3. Y = (Y^T)^T */
    ikv_transpose_rows(yt, n_pad, rows, n, y);
}

/* In 16 x 16 blocks; an orphaned loop, shared out inside a parallel
 * region. */
void ikv_transpose_rows(const float *yt, size_t n_pad, int rows, int n, float *y)
{
    const int n_rblocks = (rows + 15) / 16;
#pragma omp for schedule(static)
    for (int rb = 0; rb < n_rblocks; rb++) {
        int r_end = rb * 16 + 16 < rows ? rb * 16 + 16 : rows;
        for (int t0 = 0; t0 < n; t0 += 16) {
            int t_end = t0 + 16 < n ? t0 + 16 : n;
            for (int t = t0; t < t_end; t++)
                for (int r = rb * 16; r < r_end; r++)
                    y[(size_t)t * rows + r] = yt[(size_t)r * n_pad + t];
        }
    }
}

/* The float product's parts, each rounded to 16 floats (64 bytes). */
static size_t float_matmul_need(int rows, int cols, int n, int n_threads)
{
    size_t n_pad = (size_t)(n + TW - 1) / TW * TW;
    size_t threads = n_threads > 1 ? (size_t)n_threads : 1;
    return n_pad * (size_t)cols + (size_t)rows * n_pad + (size_t)MR * KC * threads;
}

size_t ikv_matmul_workspace(const ikv_matrix *w, int n, int n_threads)
{
    if (n < MATMUL_MIN_TOKENS)
        return ikv_matvec_workspace(w);
    if (w->type != IKV_WTYPE_Q8_0)
        return float_matmul_need(w->rows, w->cols, n, n_threads);
#if defined(IKV_VNNI)
    return ikv_q8_matmul_scratch(w->rows, w->cols, n, n_threads);
#else
    /* the dequantised activations, then the float product */
    return (size_t)n * w->cols + float_matmul_need(w->rows, w->cols, n, n_threads);
#endif
}

/* The float path: X packed by token tiles, weights converted by blocks. */
static void matmul_float(const ikv_matrix *w, const float *x, int n, float *y, int n_threads, float *buf)
{
    const int rows = w->rows, cols = w->cols;
    const int n_tiles = (n + TW - 1) / TW;
    const size_t n_pad = (size_t)n_tiles * TW;
    const int n_chunks = (cols + KC - 1) / KC;
    const int n_blocks = (rows + MR - 1) / MR;
    /* sizes are multiples of 16 floats: every part stays 64-byte aligned */
    const size_t xp_size = n_pad * (size_t)cols;
    const size_t yt_size = (size_t)rows * n_pad;
    const size_t wb_size = (size_t)MR * KC;
    float *xp = buf, *yt = xp + xp_size, *wb_all = yt + yt_size;
    matmul_job jb = {w, x, y, n, n_tiles, n_chunks, n_blocks, n_pad, wb_size, xp, yt, wb_all};
    if (n_threads > 1 && (int64_t)rows * cols * n >= IKV_PARALLEL_MIN_MACS) {
#pragma omp parallel num_threads(n_threads)
        matmul_steps(&jb);
    } else {
        matmul_steps(&jb);
    }
}

int ikv_matmul_group(const ikv_matrix *const *w, int count, const float *x, int n, float *const *y,
                     int n_threads, ikv_workspace *ws)
{
    if (n >= MATMUL_MIN_TOKENS) {
        for (int i = 0; i < count; i++)
            if (ikv_matmul(w[i], x, n, y[i], n_threads, ws) != IKV_OK)
                return IKV_ENOMEM;
        return IKV_OK;
    }
    enum { MAX_GROUP = 8 };
    if (count > MAX_GROUP)
        return IKV_EINVAL;
    for (int t = 0; t < n; t++) {
        float *yt[MAX_GROUP];
        for (int i = 0; i < count; i++)
            yt[i] = y[i] + (size_t)t * (size_t)w[i]->rows;
        if (ikv_matvec_group(w, count, x + (size_t)t * (size_t)w[0]->cols, yt, n_threads, ws) != IKV_OK)
            return IKV_ENOMEM;
    }
    return IKV_OK;
}

int ikv_matmul(const ikv_matrix *w, const float *x, int n, float *y, int n_threads,
               ikv_workspace *ws)
{
    const int rows = w->rows, cols = w->cols;
    if (n < MATMUL_MIN_TOKENS) {
        for (int t = 0; t < n; t++)
            if (ikv_matvec(w, x + (size_t)t * cols, y + (size_t)t * rows, n_threads, ws) != IKV_OK)
                return IKV_ENOMEM;
        return IKV_OK;
    }
    if (n_threads < 1)
        n_threads = 1;
    if (ikv_workspace_reserve(ws, ikv_matmul_workspace(w, n, n_threads)) != IKV_OK)
        return IKV_ENOMEM;
    if (w->type != IKV_WTYPE_Q8_0) {
        matmul_float(w, x, n, y, n_threads, ws->buf);
        return IKV_OK;
    }
#if defined(IKV_VNNI)
    ikv_q8_matmul(w, x, n, y, n_threads, ws->buf);
#else
    float *xq = ws->buf; /* n * cols: a multiple of 32 floats */
    for (int t = 0; t < n; t++)
        ikv_q8_activations(x + (size_t)t * cols, cols, xq + (size_t)t * cols);
    matmul_float(w, xq, n, y, n_threads, xq + (size_t)n * cols);
#endif
    return IKV_OK;
}
