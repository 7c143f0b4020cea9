#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim/influence.h"

int ikv_fi_bucket(int distance)
{
    int b = 0;
    while (distance > 1 && b < IKV_FI_BUCKETS - 1) {
        distance >>= 1;
        b++;
    }
    return b;
}

static float norm_diff(const float *a, const float *b, int d)
{
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int j = 0; j < d; j++)
        s += (a[j] - b[j]) * (a[j] - b[j]);
    return sqrtf(s);
}

static float dot(const float *a, const float *b, int d)
{
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int j = 0; j < d; j++)
        s += a[j] * b[j];
    return s;
}

/* FI(t, j) for query head h; negative when undefined (j is the only key). */
static float pair_fi(const ikv_sim_layer *L, const ikv_sim_reference *ref, int h, int32_t j, int32_t t)
{
    const int d = L->d, T = L->T, g = h / (L->H / L->G);
    const float *q = L->q + ((size_t)h * (size_t)T + (size_t)t) * (size_t)d;
    const float *k = L->k + ((size_t)g * (size_t)T + (size_t)j) * (size_t)d;
    const float *v = L->v + ((size_t)g * (size_t)T + (size_t)j) * (size_t)d;
    const float *o = ref->out + ((size_t)h * (size_t)T + (size_t)t) * (size_t)d;
    float a = expf(dot(q, k, d) / sqrtf((float)d) - ref->lse[(size_t)h * (size_t)T + (size_t)t]);
    float on = ref->out_norm[(size_t)h * (size_t)T + (size_t)t];
    if (!(a < 1.0f) || on == 0.0f)
        return -1.0f;
    return a / (1.0f - a) * norm_diff(v, o, d) / on;
}

void ikv_fi_row(const ikv_sim_layer *L, const ikv_sim_reference *ref, int32_t j, double weight, double *out)
{
    for (int32_t t = j + 1; t < L->T; t++) {
        double s = 0.0;
        int n = 0;
        for (int h = 0; h < L->H; h++) {
            float fi = pair_fi(L, ref, h, j, t);
            if (fi >= 0.0f) {
                s += fi;
                n++;
            }
        }
        if (n > 0)
            out[t] += weight * s / n;
    }
}

static void add_pair(const ikv_sim_layer *L, const ikv_sim_reference *ref, int h, int32_t j,
                     int32_t t, ikv_fi_acc *acc)
{
    float fi = pair_fi(L, ref, h, j, t);
    if (fi < 0.0f)
        return;
    int b = ikv_fi_bucket(t - j);
    acc->sum[b] += fi;
    acc->n[b]++;
}

void ikv_fi_accumulate(const ikv_sim_layer *L, const ikv_sim_reference *ref, const int32_t *pos,
                       const int32_t *kv, int n, int per_bucket, ikv_fi_acc *acc)
{
    const int group = L->H / L->G;
    for (int i = 0; i < n; i++) {
        int32_t j = pos[i];
        int h0 = 0, h1 = L->H;
        if (kv && kv[i] >= 0) {
            h0 = kv[i] * group;
            h1 = h0 + group;
        }
        for (int b = 0; b < IKV_FI_BUCKETS; b++) {
            long lo = 1L << b, hi = (2L << b) - 1; /* distances */
            if (j + lo >= L->T)
                break;
            if (j + hi >= L->T)
                hi = L->T - 1 - j;
            long count = hi - lo + 1;
            long samples = per_bucket > 0 && count > per_bucket ? per_bucket : count;
            for (long s = 0; s < samples; s++) {
                long dist = samples == count ? lo + s : lo + (s * (count - 1)) / (samples - 1 > 0 ? samples - 1 : 1);
                for (int h = h0; h < h1; h++)
                    add_pair(L, ref, h, j, (int32_t)(j + dist), acc);
            }
        }
    }
}

typedef struct scored {
    float score;
    int32_t pos;
} scored;

static int by_score_desc(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

static int top_n(scored *s, int m, int n, int32_t *out)
{
    qsort(s, (size_t)m, sizeof *s, by_score_desc);
    int k = m < n ? m : n;
    for (int i = 0; i < k; i++)
        out[i] = s[i].pos;
    return k;
}

int ikv_fi_top_attention(const ikv_sim_reference *ref, int T, int n, int32_t *out)
{
    scored *s = malloc((size_t)T * sizeof *s);
    if (!s)
        return 0;
    int m = 0;
    for (int32_t p = 0; p < T - 1; p++) {
        float total = 0.0f;
        for (int h = 0; h < ref->H; h++)
            total += ref->received[(size_t)h * (size_t)T + (size_t)p];
        s[m++] = (scored){total, p};
    }
    int k = top_n(s, m, n, out);
    free(s);
    return k;
}

int ikv_fi_top_entropy(const float *entropy, int T, int n, int32_t *out)
{
    if (!entropy)
        return 0;
    scored *s = malloc((size_t)T * sizeof *s);
    if (!s)
        return 0;
    int m = 0;
    for (int32_t p = 1; p < T - 1; p++)
        s[m++] = (scored){entropy[p - 1], p};
    int k = top_n(s, m, n, out);
    free(s);
    return k;
}

int ikv_fi_random(int T, int n, uint64_t seed, int32_t *out)
{
    int m = T - 1;
    if (m <= 0)
        return 0;
    int32_t *all = malloc((size_t)m * sizeof *all);
    if (!all)
        return 0;
    for (int i = 0; i < m; i++)
        all[i] = i;
    uint64_t state = seed ^ 0x9E3779B97F4A7C15ull;
    int k = m < n ? m : n;
    for (int i = 0; i < k; i++) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        int j = i + (int)(state % (uint64_t)(m - i));
        int32_t t = all[i];
        all[i] = all[j];
        all[j] = t;
        out[i] = all[i];
    }
    free(all);
    return k;
}
