/*
 * Vector kernels of the simulator. Loops are written so that the compiler
 * vectorises them (`omp simd`, fixed-size register blocks) without
 * -ffast-math; the order of every sum is fixed for a given build, which is
 * all the exactness argument above needs.
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "sim/attention.h"

/* GCC/Clang vector extensions: locals of vector type stay in registers,
 * which plain arrays of accumulators do not. v16 is one AVX-512 register
 * or two AVX2 ones; v16u loads and stores it at any float alignment. */
typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));

static inline v16 load16(const float *p)
{
    return *(const v16u *)p;
}

static inline void store16(float *p, v16 x)
{
    *(v16u *)p = x;
}

static inline v16 splat16(float x)
{
    return (v16){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x};
}

/* One block of IKV_ATTN_KEY_BLOCK keys for NQ queries (a compile-time
 * constant at each call, so the 2 NQ accumulators are registers). Writes
 * `keep` outputs per query (the block may run past n into padding). */
static inline __attribute__((always_inline)) void score_block(const float *const *q, int NQ,
                                                              const float *kt, size_t ld, int i0,
                                                              int keep, int d, float scale,
                                                              float *out, size_t out_stride)
{
    v16 acc[4][2];
#pragma GCC unroll 4
    for (int a = 0; a < NQ; a++)
        acc[a][0] = acc[a][1] = splat16(0.0f);
    for (int j = 0; j < d; j++) {
        const float *row = kt + (size_t)j * ld + (size_t)i0;
        v16 r0 = load16(row), r1 = load16(row + 16);
#pragma GCC unroll 4
        for (int a = 0; a < NQ; a++) {
            v16 qa = splat16(q[a][j]);
            acc[a][0] += qa * r0;
            acc[a][1] += qa * r1;
        }
    }
    const v16 sc = splat16(scale);
#pragma GCC unroll 4
    for (int a = 0; a < NQ; a++) {
        float *o = out + (size_t)a * out_stride + (size_t)i0;
        if (keep == IKV_ATTN_KEY_BLOCK) {
            store16(o, acc[a][0] * sc);
            store16(o + 16, acc[a][1] * sc);
        } else {
            float tmp[IKV_ATTN_KEY_BLOCK];
            store16(tmp, acc[a][0] * sc);
            store16(tmp + 16, acc[a][1] * sc);
            for (int i = 0; i < keep; i++)
                o[i] = tmp[i];
        }
    }
}

void ikv_attn_scores(const float *const *q, int nq, const float *kt, size_t ld, int n, int d,
                     float scale, float *out, size_t out_stride)
{
    for (int i0 = 0; i0 < n; i0 += IKV_ATTN_KEY_BLOCK) {
        int keep = n - i0 < IKV_ATTN_KEY_BLOCK ? n - i0 : IKV_ATTN_KEY_BLOCK;
        for (int q0 = 0; q0 < nq; q0 += 4) {
            const float *const *qq = q + q0;
            float *o = out + (size_t)q0 * out_stride;
            switch (nq - q0 < 4 ? nq - q0 : 4) {
            case 1: score_block(qq, 1, kt, ld, i0, keep, d, scale, o, out_stride); break;
            case 2: score_block(qq, 2, kt, ld, i0, keep, d, scale, o, out_stride); break;
            case 3: score_block(qq, 3, kt, ld, i0, keep, d, scale, o, out_stride); break;
            default: score_block(qq, 4, kt, ld, i0, keep, d, scale, o, out_stride); break;
            }
        }
    }
}

/* e^x = 2^k e^f with k = round(x / ln 2), |f| <= ln2 / 2; e^f by its Taylor
 * series to degree 7 (truncation error < 3e-9 relative). */
static inline float exp_one(float x)
{
    x = x < -87.3f ? -87.3f : x;
    x = x > 88.0f ? 88.0f : x;
    float k = floorf(x * 1.44269504088896341f + 0.5f);
    float f = x - k * 0.693145751953125f;   /* ln 2, high part */
    f = f - k * 1.42860682030941723e-6f;     /* ln 2, low part */
    float p = 1.0f / 5040.0f;
    p = p * f + 1.0f / 720.0f;
    p = p * f + 1.0f / 120.0f;
    p = p * f + 1.0f / 24.0f;
    p = p * f + 1.0f / 6.0f;
    p = p * f + 0.5f;
    p = p * f + 1.0f;
    p = p * f + 1.0f;
    union {
        int32_t i;
        float f;
    } scale = {.i = ((int32_t)k + 127) << 23};
    float r = p * scale.f;
    return x <= -87.3f ? 0.0f : r;
}

void ikv_attn_exp(float *x, int n)
{
#pragma omp simd
    for (int i = 0; i < n; i++)
        x[i] = exp_one(x[i]);
}

float ikv_attn_softmax(float *x, int n)
{
    if (n <= 0)
        return -INFINITY;
    float mx = x[0];
#pragma omp simd reduction(max : mx)
    for (int i = 0; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    float z = 0.0f;
#pragma omp simd reduction(+ : z)
    for (int i = 0; i < n; i++) {
        x[i] = exp_one(x[i] - mx);
        z += x[i];
    }
    const float inv = 1.0f / z;
#pragma omp simd
    for (int i = 0; i < n; i++)
        x[i] *= inv;
    return mx + logf(z);
}

void ikv_attn_probs(const float *scores, int n, float lse, float *probs)
{
#pragma omp simd
    for (int i = 0; i < n; i++)
        probs[i] = exp_one(scores[i] - lse);
}

/* out[a][c0..c0+64) for NQ queries over all keys: 4 NQ accumulators in
 * registers, each value row chunk loaded once for the group. */
#define MIX_CHUNK 64
static inline __attribute__((always_inline)) void mix_chunk(const float *p, size_t p_stride, int NQ,
                                                            const float *values, const int32_t *pos,
                                                            int n, int d, int c0, float *out)
{
    v16 acc[4][4];
#pragma GCC unroll 4
    for (int a = 0; a < NQ; a++)
        acc[a][0] = acc[a][1] = acc[a][2] = acc[a][3] = splat16(0.0f);
    for (int i = 0; i < n; i++) {
        const float *v = values + (size_t)pos[i] * (size_t)d + c0;
        v16 v0 = load16(v), v1 = load16(v + 16), v2 = load16(v + 32), v3 = load16(v + 48);
#pragma GCC unroll 4
        for (int a = 0; a < NQ; a++) {
            v16 w = splat16(p[(size_t)a * p_stride + (size_t)i]);
            acc[a][0] += w * v0;
            acc[a][1] += w * v1;
            acc[a][2] += w * v2;
            acc[a][3] += w * v3;
        }
    }
#pragma GCC unroll 4
    for (int a = 0; a < NQ; a++) {
        float *o = out + (size_t)a * (size_t)d + c0;
        store16(o, acc[a][0]);
        store16(o + 16, acc[a][1]);
        store16(o + 32, acc[a][2]);
        store16(o + 48, acc[a][3]);
    }
}

void ikv_attn_mix(const float *p, size_t p_stride, int nq, const float *values,
                  const int32_t *pos, int n, int d, float *out)
{
    int c0 = 0;
    for (; c0 + MIX_CHUNK <= d; c0 += MIX_CHUNK) {
        for (int q0 = 0; q0 < nq; q0 += 4) {
            const float *pp = p + (size_t)q0 * p_stride;
            float *o = out + (size_t)q0 * (size_t)d;
            switch (nq - q0 < 4 ? nq - q0 : 4) {
            case 1: mix_chunk(pp, p_stride, 1, values, pos, n, d, c0, o); break;
            case 2: mix_chunk(pp, p_stride, 2, values, pos, n, d, c0, o); break;
            case 3: mix_chunk(pp, p_stride, 3, values, pos, n, d, c0, o); break;
            default: mix_chunk(pp, p_stride, 4, values, pos, n, d, c0, o); break;
            }
        }
    }
    if (c0 < d) { /* head dims that are not a multiple of 64 */
        for (int a = 0; a < nq; a++)
            for (int c = c0; c < d; c++)
                out[(size_t)a * (size_t)d + (size_t)c] = 0.0f;
        for (int i = 0; i < n; i++) {
            const float *v = values + (size_t)pos[i] * (size_t)d;
            for (int a = 0; a < nq; a++) {
                const float w = p[(size_t)a * p_stride + (size_t)i];
                for (int c = c0; c < d; c++)
                    out[(size_t)a * (size_t)d + (size_t)c] += w * v[c];
            }
        }
    }
}

float ikv_attn_rel_error(const float *a, const float *b, int d)
{
    double diff = 0.0, norm = 0.0;
    for (int j = 0; j < d; j++) {
        double e = (double)a[j] - (double)b[j];
        diff += e * e;
        norm += (double)b[j] * (double)b[j];
    }
    if (norm == 0.0)
        return diff == 0.0 ? 0.0f : (float)sqrt(diff);
    return (float)sqrt(diff / norm);
}

void ikv_attn_transpose(const float *k, int T, int d, float *kt, size_t ld)
{
    /* Blocks of 16 x 16 keep both sides in cache. */
    for (int t0 = 0; t0 < T; t0 += 16)
        for (int j0 = 0; j0 < d; j0 += 16)
            for (int t = t0; t < t0 + 16 && t < T; t++)
                for (int j = j0; j < j0 + 16 && j < d; j++)
                    kt[(size_t)j * ld + (size_t)t] = k[(size_t)t * (size_t)d + (size_t)j];
}
