#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim/attention.h"
#include "sim/reference.h"

uint64_t ikv_sim_reference_bytes(int H, int T, int d)
{
    return (uint64_t)H * (uint64_t)T * ((uint64_t)d + 3u) * sizeof(float);
}

int ikv_sim_reference_alloc(ikv_sim_reference *ref, int H, int T, int d)
{
    memset(ref, 0, sizeof *ref);
    ref->H = H;
    ref->T = T;
    ref->d = d;
    size_t ht = (size_t)H * (size_t)T;
    ref->lse = malloc(ht * sizeof *ref->lse);
    ref->out = malloc(ht * (size_t)d * sizeof *ref->out);
    ref->future = malloc(ht * sizeof *ref->future);
    ref->received = malloc(ht * sizeof *ref->received);
    if (!ref->lse || !ref->out || !ref->future || !ref->received) {
        ikv_sim_reference_free(ref);
        return -1;
    }
    return 0;
}

void ikv_sim_reference_free(ikv_sim_reference *ref)
{
    free(ref->lse);
    free(ref->out);
    free(ref->future);
    free(ref->received);
    memset(ref, 0, sizeof *ref);
}

int ikv_sim_reference_compute(const ikv_sim_layer *L, ikv_sim_reference *ref)
{
    int failed = 0;
    const int H = L->H, T = L->T, d = L->d, group = L->H / L->G;
    const float scale = 1.0f / sqrtf((float)d);
#pragma omp parallel
    {
        float *scores = malloc((size_t)T * sizeof *scores);
        int32_t *identity = malloc((size_t)T * sizeof *identity);
        double *received = malloc((size_t)T * sizeof *received);
        double *future = malloc((size_t)T * sizeof *future);
        int ok = scores && identity && received && future;
        if (!ok) {
#pragma omp atomic write
            failed = 1;
        }
        for (int i = 0; ok && i < T; i++)
            identity[i] = i;
#pragma omp for schedule(dynamic, 1)
        for (int h = 0; h < H; h++) {
            if (!ok)
                continue;
            const int g = h / group;
            const float *keys = L->k + (size_t)g * (size_t)T * (size_t)d;
            const float *values = L->v + (size_t)g * (size_t)T * (size_t)d;
            for (int j = 0; j < T; j++)
                received[j] = future[j] = 0.0;
            for (int t = 0; t < T; t++) {
                const float *q = L->q + ((size_t)h * (size_t)T + (size_t)t) * (size_t)d;
                int n = t + 1;
                ikv_attn_scores(q, keys, identity, n, d, scale, scores);
                float lse = ikv_attn_logsumexp(scores, n);
                ikv_attn_probs(scores, n, lse, scores);
                ikv_attn_mix(scores, values, identity, n, d,
                             ref->out + ((size_t)h * (size_t)T + (size_t)t) * (size_t)d);
                ref->lse[(size_t)h * (size_t)T + (size_t)t] = lse;
                for (int j = 0; j < n; j++)
                    received[j] += scores[j];
                if (t >= L->n_prompt)
                    for (int j = 0; j < n; j++)
                        future[j] += scores[j];
            }
            for (int j = 0; j < T; j++) {
                ref->received[(size_t)h * (size_t)T + (size_t)j] = (float)received[j];
                ref->future[(size_t)h * (size_t)T + (size_t)j] = (float)future[j];
            }
        }
        free(scores);
        free(identity);
        free(received);
        free(future);
    }
    return failed ? -1 : 0;
}
