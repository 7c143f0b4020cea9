#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim/attention.h"
#include "sim/reference.h"

uint64_t ikv_sim_reference_bytes(int H, int G, int T, int d)
{
    return ((uint64_t)H * (uint64_t)T * ((uint64_t)d + 4u) + (uint64_t)G * (uint64_t)d * ikv_attn_ld(T)) *
           sizeof(float);
}

int ikv_sim_reference_alloc(ikv_sim_reference *ref, int H, int G, int T, int d)
{
    memset(ref, 0, sizeof *ref);
    ref->H = H;
    ref->G = G;
    ref->T = T;
    ref->d = d;
    ref->ld = ikv_attn_ld(T);
    size_t ht = (size_t)H * (size_t)T;
    ref->kt = calloc((size_t)G * (size_t)d * ref->ld, sizeof *ref->kt);
    ref->lse = malloc(ht * sizeof *ref->lse);
    ref->out = malloc(ht * (size_t)d * sizeof *ref->out);
    ref->out_norm = malloc(ht * sizeof *ref->out_norm);
    ref->future = malloc(ht * sizeof *ref->future);
    ref->received = malloc(ht * sizeof *ref->received);
    if (!ref->kt || !ref->lse || !ref->out || !ref->out_norm || !ref->future || !ref->received) {
        ikv_sim_reference_free(ref);
        return -1;
    }
    return 0;
}

void ikv_sim_reference_free(ikv_sim_reference *ref)
{
    free(ref->kt);
    free(ref->lse);
    free(ref->out);
    free(ref->out_norm);
    free(ref->future);
    free(ref->received);
    memset(ref, 0, sizeof *ref);
}

static float norm(const float *a, int d)
{
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int j = 0; j < d; j++)
        s += a[j] * a[j];
    return sqrtf(s);
}

int ikv_sim_reference_compute(const ikv_sim_layer *L, ikv_sim_reference *ref)
{
    const int T = L->T, d = L->d, G = L->G, group = L->H / L->G;
    const float scale = 1.0f / sqrtf((float)d);
    int failed = 0;
    if (group > IKV_ATTN_MAX_GROUP)
        return -1;
#pragma omp parallel
    {
        float *probs = malloc((size_t)group * (size_t)T * sizeof *probs);
        int32_t *identity = malloc((size_t)T * sizeof *identity);
        double *received = malloc((size_t)group * (size_t)T * sizeof *received);
        double *future = malloc((size_t)group * (size_t)T * sizeof *future);
        int ok = probs && identity && received && future;
        if (!ok) {
#pragma omp atomic write
            failed = 1;
        }
        for (int i = 0; ok && i < T; i++)
            identity[i] = i;
#pragma omp for schedule(dynamic, 1)
        for (int g = 0; g < G; g++) {
            if (!ok)
                continue;
            float *kt = ref->kt + (size_t)g * (size_t)d * ref->ld;
            const float *keys = L->k + (size_t)g * (size_t)T * (size_t)d;
            const float *values = L->v + (size_t)g * (size_t)T * (size_t)d;
            ikv_attn_transpose(keys, T, d, kt, ref->ld);
            for (size_t j = 0; j < (size_t)group * (size_t)T; j++)
                received[j] = future[j] = 0.0;
            const float *qs[IKV_ATTN_MAX_GROUP];
            for (int t = 0; t < T; t++) {
                const int n = t + 1;
                for (int a = 0; a < group; a++) {
                    int h = g * group + a;
                    qs[a] = L->q + ((size_t)h * (size_t)T + (size_t)t) * (size_t)d;
                }
                ikv_attn_scores(qs, group, kt, ref->ld, n, d, scale, probs, (size_t)T);
                for (int a = 0; a < group; a++) {
                    int h = g * group + a;
                    float *p = probs + (size_t)a * (size_t)T;
                    ref->lse[(size_t)h * (size_t)T + (size_t)t] = ikv_attn_softmax(p, n);
                    double *rec = received + (size_t)a * (size_t)T;
                    for (int j = 0; j < n; j++)
                        rec[j] += p[j];
                    if (t >= L->n_prompt) {
                        double *fut = future + (size_t)a * (size_t)T;
                        for (int j = 0; j < n; j++)
                            fut[j] += p[j];
                    }
                }
                float out[IKV_ATTN_MAX_GROUP * 512];
                if (d <= 512) {
                    ikv_attn_mix(probs, (size_t)T, group, values, identity, n, d, out);
                    for (int a = 0; a < group; a++)
                        memcpy(ref->out + ((size_t)(g * group + a) * (size_t)T + (size_t)t) * (size_t)d,
                               out + (size_t)a * (size_t)d, (size_t)d * sizeof *out);
                } else {
                    for (int a = 0; a < group; a++)
                        ikv_attn_mix(probs + (size_t)a * (size_t)T, (size_t)T, 1, values, identity, n, d,
                                     ref->out + ((size_t)(g * group + a) * (size_t)T + (size_t)t) * (size_t)d);
                }
                for (int a = 0; a < group; a++) {
                    const size_t ht = (size_t)(g * group + a) * (size_t)T + (size_t)t;
                    ref->out_norm[ht] = norm(ref->out + ht * (size_t)d, d);
                }
            }
            for (int a = 0; a < group; a++) {
                int h = g * group + a;
                for (int j = 0; j < T; j++) {
                    ref->received[(size_t)h * (size_t)T + (size_t)j] = (float)received[(size_t)a * (size_t)T + (size_t)j];
                    ref->future[(size_t)h * (size_t)T + (size_t)j] = (float)future[(size_t)a * (size_t)T + (size_t)j];
                }
            }
        }
        free(probs);
        free(identity);
        free(received);
        free(future);
    }
    return failed ? -1 : 0;
}
