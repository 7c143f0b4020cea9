/*
 * Vector kernels of the simulator. Reductions use `omp simd` so the
 * compiler may vectorise them without -ffast-math; the order is fixed for
 * a given build, which is all the exactness argument above needs.
 */
#include "config.h"

#include <math.h>

#include "sim/attention.h"

void ikv_attn_scores(const float *q, const float *keys, const int32_t *idx, int n, int d,
                     float scale, float *scores)
{
    for (int i = 0; i < n; i++) {
        const float *k = keys + (size_t)idx[i] * (size_t)d;
        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
        for (int j = 0; j < d; j++)
            acc += q[j] * k[j];
        scores[i] = acc * scale;
    }
}

float ikv_attn_logsumexp(const float *scores, int n)
{
    if (n <= 0)
        return -INFINITY;
    float mx = scores[0];
    for (int i = 1; i < n; i++)
        mx = scores[i] > mx ? scores[i] : mx;
    double z = 0.0;
    for (int i = 0; i < n; i++)
        z += exp((double)(scores[i] - mx));
    return mx + (float)log(z);
}

void ikv_attn_probs(const float *scores, int n, float lse, float *probs)
{
    for (int i = 0; i < n; i++)
        probs[i] = expf(scores[i] - lse);
}

void ikv_attn_mix(const float *probs, const float *values, const int32_t *idx, int n, int d,
                  float *out)
{
    for (int j = 0; j < d; j++)
        out[j] = 0.0f;
    for (int i = 0; i < n; i++) {
        const float *v = values + (size_t)idx[i] * (size_t)d;
        const float p = probs[i];
#pragma omp simd
        for (int j = 0; j < d; j++)
            out[j] += p * v[j];
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
