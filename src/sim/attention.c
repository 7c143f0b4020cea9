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
 * series to degree 7 (truncation error < 3e-9 relative); 0 below -87.3, NaN for NaN.
 * Written on 16-lane vectors: GCC does not vectorise the scalar form (the
 * bit cast that builds 2^k stops it). */
typedef int32_t v16i __attribute__((vector_size(64)));

static inline v16 select16(v16i mask, v16 a, v16 b)
{
    return (v16)(((v16i)a & mask) | ((v16i)b & ~mask));
}

static inline v16 exp16(v16 x)
{
    const v16 lo = splat16(-87.3f), hi = splat16(88.0f);
    /* NaN (a hostile trace) stays NaN; it must not reach the integer
     * conversion, whose result for NaN is undefined. */
    v16i nan = x != x;
    v16 input = x;
    x = select16(nan, splat16(0.0f), x);
    v16i below = x <= lo;
    x = select16(x < lo, lo, x);
    x = select16(x > hi, hi, x);
    /* round to nearest by the 1.5 * 2^23 trick: exact for |t| < 2^22 */
    const v16 magic = splat16(12582912.0f);
    v16 k = (x * splat16(1.44269504088896341f) + magic) - magic;
    v16 f = x - k * splat16(0.693145751953125f);
    f = f - k * splat16(1.42860682030941723e-6f);
    v16 p = splat16(1.0f / 5040.0f);
    p = p * f + splat16(1.0f / 720.0f);
    p = p * f + splat16(1.0f / 120.0f);
    p = p * f + splat16(1.0f / 24.0f);
    p = p * f + splat16(1.0f / 6.0f);
    p = p * f + splat16(0.5f);
    p = p * f + splat16(1.0f);
    p = p * f + splat16(1.0f);
    v16i ki = __builtin_convertvector(k, v16i);
    v16 scale = (v16)((ki + 127) << 23);
    return select16(nan, input, select16(below, splat16(0.0f), p * scale));
}

/* f(x[i]) for i < n through 16-lane blocks; the tail goes through a padded
 * block, so every element takes the same arithmetic. */
#define FOR_EACH_BLOCK(n, body)                                                                  \
    for (int i0 = 0; i0 < (n); i0 += 16) {                                                       \
        int lanes = (n) - i0 < 16 ? (n) - i0 : 16;                                               \
        body                                                                                     \
    }

static inline v16 load_part(const float *p, int lanes, float pad)
{
    if (lanes == 16)
        return load16(p);
    float tmp[16];
    for (int i = 0; i < 16; i++)
        tmp[i] = i < lanes ? p[i] : pad;
    return load16(tmp);
}

static inline void store_part(float *p, v16 x, int lanes)
{
    if (lanes == 16) {
        store16(p, x);
        return;
    }
    float tmp[16];
    store16(tmp, x);
    for (int i = 0; i < lanes; i++)
        p[i] = tmp[i];
}

void ikv_attn_exp(float *x, int n)
{
    FOR_EACH_BLOCK(n, { store_part(x + i0, exp16(load_part(x + i0, lanes, 0.0f)), lanes); })
}

float ikv_attn_softmax(float *x, int n)
{
    if (n <= 0)
        return -INFINITY;
    v16 vmax = splat16(-INFINITY);
    FOR_EACH_BLOCK(n, {
        v16 v = load_part(x + i0, lanes, -INFINITY);
        vmax = select16(v > vmax, v, vmax);
    })
    float mx = vmax[0];
    for (int i = 1; i < 16; i++)
        mx = vmax[i] > mx ? vmax[i] : mx;
    v16 vsum = splat16(0.0f);
    const v16 vmx = splat16(mx);
    FOR_EACH_BLOCK(n, {
        v16 e = exp16(load_part(x + i0, lanes, -INFINITY) - vmx);
        vsum += e;
        store_part(x + i0, e, lanes);
    })
    float z = 0.0f;
    for (int i = 0; i < 16; i++)
        z += vsum[i];
    const v16 inv = splat16(1.0f / z);
    FOR_EACH_BLOCK(n, { store_part(x + i0, load_part(x + i0, lanes, 0.0f) * inv, lanes); })
    return mx + logf(z);
}

void ikv_attn_probs(const float *scores, int n, float lse, float *probs)
{
    const v16 l = splat16(lse);
    FOR_EACH_BLOCK(n, { store_part(probs + i0, exp16(load_part(scores + i0, lanes, 0.0f) - l), lanes); })
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
