/*
 * Q8_0 products (see kernels_q8.h for what they compute).
 *
 * vpdpbusd multiplies unsigned by signed bytes, and both sides of a Q8_0
 * product are signed. Each kernel offsets one side by 128 and removes the
 * offset's share exactly, in int32, before the block's sum is scaled:
 *
 *   decode (one x, streaming rows): weights + 128 (an xor), so the offset
 *     term 128 * sum(q) depends on x alone and is computed once per block
 *     of x, not once per row;
 *   prefill (a tile of 16 tokens x 8 rows): x + 128, packed once per call,
 *     and the offset term 128 * sum(w) is computed once per row block and
 *     reused across every token tile.
 *
 * Prefill layout, per tile of 16 tokens and block b of 32 columns (512
 * bytes): 8 groups of 4 columns, each 16 tokens x 4 bytes, so that one
 * broadcast of 4 weight bytes meets one vector of 16 tokens.
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "model/half.h"
#include "model/kernels_q8.h"

/* Blocks whose largest magnitude is below this quantise to zero (127 over
 * it would overflow). */
#define Q8_TINY 0x1p-100f

/* One block: q[0..32) and the scale d. A block holding NaN or infinity
 * gets d = NaN (and q = 0), so that the product is NaN as with floats. */
static float quantize_block(const float *x /* [32] */, int8_t *q /* [32] */)
{
    float amax = 0.0f;
    int finite = 1;
    for (int i = 0; i < IKV_Q8_0_BLOCK; i++) {
        float a = fabsf(x[i]);
        finite &= a <= 0x1.fffffep127f; /* false for NaN too */
        amax = a > amax ? a : amax;
    }
    if (!finite || amax < Q8_TINY) {
        memset(q, 0, IKV_Q8_0_BLOCK);
        return finite ? 0.0f : NAN;
    }
    const float id = 127.0f / amax;
#if defined(IKV_SIMD512)
    /* the same product and rounding (to nearest, ties to even) as below */
    __m512 vid = _mm512_set1_ps(id);
    __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x), vid));
    __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + 16), vid));
    _mm_storeu_si128((__m128i *)q, _mm512_cvtepi32_epi8(q0));
    _mm_storeu_si128((__m128i *)(q + 16), _mm512_cvtepi32_epi8(q1));
#else
    for (int i = 0; i < IKV_Q8_0_BLOCK; i++)
        q[i] = (int8_t)lrintf(x[i] * id);
#endif
    return amax / 127.0f;
}

void ikv_q8_quantize(const float *x, int cols, int8_t *q, float *d)
{
    for (int b = 0; b < cols / IKV_Q8_0_BLOCK; b++)
        d[b] = quantize_block(x + b * IKV_Q8_0_BLOCK, q + b * IKV_Q8_0_BLOCK);
}

#if defined(IKV_VNNI)

static inline int32_t load_i32(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static size_t round16(size_t floats)
{
    return (floats + 15) / 16 * 16;
}

/* ---- decode ---- */

/* Scratch of a matrix-vector product: q and d of x, and per block the
 * offset term -128 sum(q) (as a float: it is scaled with the block). */
typedef struct q8_vector {
    const int8_t *q;      /* [cols] */
    const float *d;       /* [nb] */
    const float *offset;  /* [nb] */
} q8_vector;

size_t ikv_q8_matvec_scratch(int cols)
{
    size_t nb = (size_t)cols / IKV_Q8_0_BLOCK;
    return round16((size_t)cols / 4) + 2 * round16(nb);
}

static q8_vector quantize_vector(const float *x, int cols, float *scratch)
{
    const size_t nb = (size_t)cols / IKV_Q8_0_BLOCK;
    int8_t *q = (int8_t *)(void *)scratch;
    float *d = scratch + round16((size_t)cols / 4), *offset = d + round16(nb);
    ikv_q8_quantize(x, cols, q, d);
    for (size_t b = 0; b < nb; b++) {
        int sum = 0;
        for (int i = 0; i < IKV_Q8_0_BLOCK; i++)
            sum += q[b * IKV_Q8_0_BLOCK + i];
        offset[b] = (float)(-128 * sum);
    }
    return (q8_vector){q, d, offset};
}

/* acc += dw d ((qw + 128) . q) for block b of a row; the caller adds the
 * offset term dw d (-128 sum(q)). Returns dw d. */
static inline float block_product(const uint8_t *blk, const q8_vector *v, int b, __m256 *acc)
{
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    __m256i wu = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(blk + 2)), flip);
    __m256i xq = _mm256_load_si256((const __m256i *)(v->q + (size_t)b * IKV_Q8_0_BLOCK));
    __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), wu, xq);
    float scale = ikv_q8_scale(blk) * v->d[b];
    *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(scale), *acc);
    return scale;
}

/* Rows go sixteen blocks at a time, two blocks per 512-bit vector: the
 * 16 F16 scales are gathered and converted at once (dw dx, one vector),
 * and each pair of blocks takes its two scales from it by a permutation,
 * instead of a scalar conversion and broadcast per block. */
#define GROUP 16

static const int32_t pair_lanes[GROUP / 2][16] __attribute__((aligned(64))) = {
    {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3},
    {4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5},
    {6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7},
    {8, 8, 8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 9},
    {10, 10, 10, 10, 10, 10, 10, 10, 11, 11, 11, 11, 11, 11, 11, 11},
    {12, 12, 12, 12, 12, 12, 12, 12, 13, 13, 13, 13, 13, 13, 13, 13},
    {14, 14, 14, 14, 14, 14, 14, 14, 15, 15, 15, 15, 15, 15, 15, 15}};

/* dw[b + i] * dx[b + i] for i < 16, from the block at blk (block b).
 * Block i's scale is 34 i bytes in: in the 64 bytes at blk + 64 j, the
 * scales of blocks 2j and 2j + 1 are words 2j and 2j + 17, so one masked
 * word permutation per 64 bytes moves both into lanes 2j and 2j + 1.
 * (A gather of the 16 scales took as long as the products themselves.) */
static inline __m512 group_scales(const uint8_t *blk, const float *dx)
{
    const __m512i pick = _mm512_setr_epi32(0x00110000, 0x00130002, 0x00150004, 0x00170006, 0x00190008,
                                           0x001b000a, 0x001d000c, 0x001f000e, 0, 0, 0, 0, 0, 0, 0, 0);
    __m512i words = _mm512_setzero_si512();
    IKV_UNROLL(8)
    for (int j = 0; j < GROUP / 2; j++)
        words = _mm512_mask_permutexvar_epi16(words, (__mmask32)(3u << (2 * j)), pick,
                                              _mm512_loadu_si512((const void *)(blk + 64 * j)));
    return _mm512_mul_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(words)), _mm512_loadu_ps(dx));
}

/* acc += scaled (qw + 128) . q of blocks b, b + 1 of a row (pair p of
 * its group). */
static inline __m512 pair_product(const uint8_t *blk, const q8_vector *v, int b, __m512 scales, int p,
                                  __m512 acc)
{
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(blk + 2))),
                                   _mm256_loadu_si256((const __m256i *)(blk + IKV_Q8_0_BYTES + 2)), 1);
    w = _mm512_xor_si512(w, flip);
    __m512i xq = _mm512_load_si512((const void *)(v->q + (size_t)b * IKV_Q8_0_BLOCK));
    __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, xq);
    __m512 pair_scale = _mm512_permutexvar_ps(_mm512_load_si512((const void *)pair_lanes[p]), scales);
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), pair_scale, acc);
}

static float dot_row(const uint8_t *row, const q8_vector *v, int nb)
{
    /* a0, a1: the products; a2: the offset terms, sixteen blocks a step */
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0;
    int b = 0;
    for (; b + GROUP <= nb; b += GROUP) {
        const uint8_t *blk = row + (size_t)b * IKV_Q8_0_BYTES;
        __m512 scales = group_scales(blk, v->d + b);
        a2 = _mm512_fmadd_ps(scales, _mm512_load_ps(v->offset + b), a2);
        IKV_UNROLL(8)
        for (int p = 0; p < GROUP / 2; p += 2) {
            a0 = pair_product(blk + (size_t)2 * p * IKV_Q8_0_BYTES, v, b + 2 * p, scales, p, a0);
            a1 = pair_product(blk + (size_t)(2 * p + 2) * IKV_Q8_0_BYTES, v, b + 2 * p + 2, scales, p + 1, a1);
        }
    }
    __m256 t = _mm256_setzero_ps();
    float tail_offset = 0.0f;
    for (; b < nb; b++)
        tail_offset += block_product(row + (size_t)b * IKV_Q8_0_BYTES, v, b, &t) * v->offset[b];
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), a2)) + ikv_hsum256(t) + tail_offset;
}

/* Four rows at once, `stride` rows apart: each pair of x's blocks is
 * loaded once for four rows, and the rows come from four distant parts of
 * the matrix. One core's bandwidth from memory is bounded by the misses
 * it keeps in flight, and the hardware prefetcher follows each stream on
 * its own, so four distant streams read faster than one (see
 * kernels_bf16.c for the figures). x as bytes (8 KiB for 8192 columns)
 * stays in L1 beside them. */
static void dot_rows4(const ikv_matrix *w, int r0, int stride, const q8_vector *v, float *y)
{
    const int nb = w->cols / IKV_Q8_0_BLOCK;
    const uint8_t *rows[4];
    /* acc: the products; offs: the offset terms, sixteen blocks a step */
    __m512 acc[4], offs[4];
    IKV_UNROLL(4)
    for (int k = 0; k < 4; k++) {
        rows[k] = w->data + (size_t)(r0 + k * stride) * w->row_bytes;
        acc[k] = offs[k] = _mm512_setzero_ps();
    }
    int b = 0;
    for (; b + GROUP <= nb; b += GROUP) {
        __m512 scales[4];
        IKV_UNROLL(4)
        for (int k = 0; k < 4; k++) {
            scales[k] = group_scales(rows[k] + (size_t)b * IKV_Q8_0_BYTES, v->d + b);
            offs[k] = _mm512_fmadd_ps(scales[k], _mm512_load_ps(v->offset + b), offs[k]);
        }
        IKV_UNROLL(8)
        for (int p = 0; p < GROUP / 2; p++) {
            IKV_UNROLL(4)
            for (int k = 0; k < 4; k++)
                acc[k] = pair_product(rows[k] + (size_t)(b + 2 * p) * IKV_Q8_0_BYTES, v, b + 2 * p, scales[k],
                                      p, acc[k]);
        }
    }
    IKV_UNROLL(4)
    for (int k = 0; k < 4; k++) {
        __m256 t = _mm256_setzero_ps();
        float tail_offset = 0.0f;
        for (int c = b; c < nb; c++)
            tail_offset += block_product(rows[k] + (size_t)c * IKV_Q8_0_BYTES, v, c, &t) * v->offset[c];
        y[r0 + k * stride] = _mm512_reduce_add_ps(_mm512_add_ps(acc[k], offs[k])) + ikv_hsum256(t) + tail_offset;
    }
}

/* Row r of each quarter of the matrix together, then the rest one by one.
 * An orphaned loop: shared out inside a parallel region, serial outside;
 * static, so that each thread reads one contiguous range of every
 * quarter. */
static void matvec_rows(const ikv_matrix *w, const q8_vector *v, float *y)
{
    const int rows = w->rows, nb = w->cols / IKV_Q8_0_BLOCK, quarter = rows / 4;
#pragma omp for schedule(static) nowait
    for (int r = 0; r < quarter; r++)
        dot_rows4(w, r, quarter, v, y);
#pragma omp for schedule(static) nowait
    for (int r = 4 * quarter; r < rows; r++)
        y[r] = dot_row(w->data + (size_t)r * w->row_bytes, v, nb);
}

void ikv_q8_matvec_group(const ikv_matrix *const *w, int n, const float *x, float *const *y, int n_threads,
                         float *scratch)
{
    q8_vector v = quantize_vector(x, w[0]->cols, scratch);
    int64_t weights = 0;
    for (int i = 0; i < n; i++)
        weights += (int64_t)w[i]->rows * w[i]->cols;
    if (n_threads <= 1 || weights < IKV_PARALLEL_MIN_WEIGHTS) {
        for (int i = 0; i < n; i++)
            matvec_rows(w[i], &v, y[i]);
        return;
    }
    /* every thread goes through the matrices in order, sharing out each
     * one's rows without waiting for the others (the loops are nowait) */
#pragma omp parallel num_threads(n_threads)
    for (int i = 0; i < n; i++)
        matvec_rows(w[i], &v, y[i]);
}

void ikv_q8_matvec(const ikv_matrix *w, const float *x, float *y, int n_threads, float *scratch)
{
    ikv_q8_matvec_group(&w, 1, x, &y, n_threads, scratch);
}

/* ---- prefill ---- */

#define QTW 16 /* tokens per tile: one vector of int32 sums */
#define QMR 8  /* weight rows per tile */
#define QKB 8  /* blocks per column chunk (256 columns) */
#define TILE_BLOCK_BYTES (QTW * IKV_Q8_0_BLOCK)

typedef struct q8_matmul_job {
    const ikv_matrix *w;
    const float *x;
    float *y;
    int n, nb, n_tiles, n_blocks;
    size_t n_pad;
    uint8_t *xp; /* [n_tiles][nb][8][QTW][4]: q + 128 */
    float *dxp;  /* [n_tiles][nb][QTW]: d of each token's block */
    float *yt;   /* [rows][n_pad] */
    float *per_thread; /* [threads][2][QMR][QKB]: dw, then -128 sum(qw) */
} q8_matmul_job;

size_t ikv_q8_matmul_scratch(int rows, int cols, int n, int n_threads)
{
    const size_t nb = (size_t)cols / IKV_Q8_0_BLOCK;
    const size_t n_tiles = ((size_t)n + QTW - 1) / QTW, n_pad = n_tiles * QTW;
    const size_t threads = n_threads > 1 ? (size_t)n_threads : 1;
    return round16(n_tiles * nb * TILE_BLOCK_BYTES / 4) + round16(n_tiles * nb * QTW) +
           round16((size_t)rows * n_pad) + threads * 2 * QMR * QKB;
}

/* Token t's row of x, quantised into its tile (q + 128, d). */
static void pack_token(const q8_matmul_job *jb, int t)
{
    const int tile = t / QTW, j = t % QTW;
    for (int b = 0; b < jb->nb; b++) {
        int8_t q[IKV_Q8_0_BLOCK];
        float d = 0.0f;
        if (t < jb->n)
            d = quantize_block(jb->x + (size_t)t * jb->w->cols + (size_t)b * IKV_Q8_0_BLOCK, q);
        else
            memset(q, 0, sizeof q);
        const size_t at = (size_t)tile * jb->nb + (size_t)b;
        uint8_t *dst = jb->xp + at * TILE_BLOCK_BYTES + 4 * (size_t)j;
        for (int g = 0; g < IKV_Q8_0_BLOCK / 4; g++)
            for (int i = 0; i < 4; i++)
                dst[g * 4 * QTW + i] = (uint8_t)(q[4 * g + i] + 128);
        jb->dxp[at * QTW + (size_t)j] = d;
    }
}

/* yt[r][0..16) (+)= sum over blocks of dw[r][b] dx[b][.] (qw[r][b] . q[b][.])
 * for r < nr; rows past nr repeat a real row and their sums are dropped. */
static void tile_q8(const uint8_t *const *rows, int b0, int nbk, const float *dw, const int32_t *off,
                    const uint8_t *xpb, const float *dxb, float *yt, size_t ldy, int nr, int accumulate)
{
    __m512 c[QMR];
    IKV_UNROLL(8)
    for (int r = 0; r < QMR; r++)
        c[r] = accumulate && r < nr ? _mm512_load_ps(yt + r * ldy) : _mm512_setzero_ps();
    for (int b = 0; b < nbk; b++) {
        const __m512i *xv = (const __m512i *)(const void *)(xpb + (size_t)b * TILE_BLOCK_BYTES);
        const __m512i x0 = _mm512_load_si512(xv), x1 = _mm512_load_si512(xv + 1);
        const __m512i x2 = _mm512_load_si512(xv + 2), x3 = _mm512_load_si512(xv + 3);
        const __m512i x4 = _mm512_load_si512(xv + 4), x5 = _mm512_load_si512(xv + 5);
        const __m512i x6 = _mm512_load_si512(xv + 6), x7 = _mm512_load_si512(xv + 7);
        const __m512 dx = _mm512_load_ps(dxb + (size_t)b * QTW);
        const size_t at = (size_t)(b0 + b) * IKV_Q8_0_BYTES + 2;
        IKV_UNROLL(8)
        for (int r = 0; r < QMR; r++) {
            const uint8_t *q = rows[r] + at;
            __m512i s = _mm512_set1_epi32(off[r * QKB + b]);
            s = _mm512_dpbusd_epi32(s, x0, _mm512_set1_epi32(load_i32(q)));
            s = _mm512_dpbusd_epi32(s, x1, _mm512_set1_epi32(load_i32(q + 4)));
            s = _mm512_dpbusd_epi32(s, x2, _mm512_set1_epi32(load_i32(q + 8)));
            s = _mm512_dpbusd_epi32(s, x3, _mm512_set1_epi32(load_i32(q + 12)));
            s = _mm512_dpbusd_epi32(s, x4, _mm512_set1_epi32(load_i32(q + 16)));
            s = _mm512_dpbusd_epi32(s, x5, _mm512_set1_epi32(load_i32(q + 20)));
            s = _mm512_dpbusd_epi32(s, x6, _mm512_set1_epi32(load_i32(q + 24)));
            s = _mm512_dpbusd_epi32(s, x7, _mm512_set1_epi32(load_i32(q + 28)));
            __m512 scale = _mm512_mul_ps(dx, _mm512_set1_ps(dw[r * QKB + b]));
            c[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), scale, c[r]);
        }
    }
    IKV_UNROLL(8)
    for (int r = 0; r < nr; r++)
        _mm512_store_ps(yt + r * ldy, c[r]);
}

/* Scales and offset terms of a row block's chunk of blocks. */
static void chunk_terms(const uint8_t *const *rows, int nr, int b0, int nbk, float *dw, int32_t *off)
{
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    for (int r = 0; r < QMR; r++) {
        for (int b = 0; b < nbk; b++) {
            const uint8_t *blk = rows[r] + (size_t)(b0 + b) * IKV_Q8_0_BYTES;
            /* sum of (qw + 128) by sums of absolute differences from 0 */
            __m256i u = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(blk + 2)), flip);
            __m256i sad = _mm256_sad_epu8(u, _mm256_setzero_si256());
            __m128i h = _mm_add_epi64(_mm256_castsi256_si128(sad), _mm256_extracti128_si256(sad, 1));
            int64_t sum_u = _mm_cvtsi128_si64(h) + _mm_extract_epi64(h, 1);
            int32_t sum_w = (int32_t)(sum_u - 128 * IKV_Q8_0_BLOCK);
            dw[r * QKB + b] = r < nr ? ikv_q8_scale(blk) : 0.0f;
            off[r * QKB + b] = -128 * sum_w;
        }
    }
}

static void q8_matmul_steps(const q8_matmul_job *jb)
{
    const ikv_matrix *w = jb->w;
    const int nb = jb->nb;
    /* 1. quantise and pack X, padding tokens included */
#pragma omp for schedule(static)
    for (int t = 0; t < (int)jb->n_pad; t++)
        pack_token(jb, t);

    /* 2. row blocks x column chunks x token tiles (dynamic: a thread that
     *    loses its core holds up only its current block) */
    float *dw = jb->per_thread + (size_t)ikv_thread_id() * 2 * QMR * QKB;
    int32_t *off = (int32_t *)(void *)(dw + QMR * QKB);
#pragma omp for schedule(dynamic, 4)
    for (int blk = 0; blk < jb->n_blocks; blk++) {
        const int r0 = blk * QMR, nr = w->rows - r0 < QMR ? w->rows - r0 : QMR;
        const uint8_t *rows[QMR];
        for (int r = 0; r < QMR; r++)
            rows[r] = w->data + (size_t)(r0 + (r < nr ? r : 0)) * w->row_bytes;
        for (int b0 = 0; b0 < nb; b0 += QKB) {
            const int nbk = nb - b0 < QKB ? nb - b0 : QKB;
            chunk_terms(rows, nr, b0, nbk, dw, off);
            for (int tile = 0; tile < jb->n_tiles; tile++) {
                const size_t at = (size_t)tile * nb + (size_t)b0;
                tile_q8(rows, b0, nbk, dw, off, jb->xp + at * TILE_BLOCK_BYTES, jb->dxp + at * QTW,
                        jb->yt + (size_t)r0 * jb->n_pad + (size_t)tile * QTW, jb->n_pad, nr, b0 > 0);
            }
        }
    }

    /* 3. Y = (Y^T)^T */
    ikv_transpose_rows(jb->yt, jb->n_pad, w->rows, jb->n, jb->y);
}

void ikv_q8_matmul(const ikv_matrix *w, const float *x, int n, float *y, int n_threads, float *scratch)
{
    const int nb = w->cols / IKV_Q8_0_BLOCK;
    const int n_tiles = (n + QTW - 1) / QTW;
    q8_matmul_job jb = {.w = w, .x = x, .y = y, .n = n, .nb = nb, .n_tiles = n_tiles,
                        .n_blocks = (w->rows + QMR - 1) / QMR, .n_pad = (size_t)n_tiles * QTW};
    jb.xp = (uint8_t *)(void *)scratch;
    jb.dxp = scratch + round16((size_t)n_tiles * nb * TILE_BLOCK_BYTES / 4);
    jb.yt = jb.dxp + round16((size_t)n_tiles * nb * QTW);
    jb.per_thread = jb.yt + round16((size_t)w->rows * jb.n_pad);
    if (n_threads > 1 && (int64_t)w->rows * w->cols * n >= IKV_PARALLEL_MIN_MACS) {
#pragma omp parallel num_threads(n_threads)
        q8_matmul_steps(&jb);
    } else {
        q8_matmul_steps(&jb);
    }
}

#endif /* IKV_VNNI */
