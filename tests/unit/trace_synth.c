#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "trace_synth.h"

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

float ikv_synth_value(uint32_t seed, int kind, int64_t a, int64_t b, int64_t c, int64_t d)
{
    uint64_t h = mix(((uint64_t)seed << 8) ^ (uint64_t)kind);
    h = mix(h ^ (uint64_t)a);
    h = mix(h ^ (uint64_t)b);
    h = mix(h ^ (uint64_t)c);
    h = mix(h ^ (uint64_t)d);
    /* 24 random bits: exact in float32. */
    return (float)(h >> 40) * (1.0f / 8388608.0f) - 1.0f;
}

ikv_trace_meta ikv_synth_small_meta(void)
{
    ikv_trace_meta m;
    memset(&m, 0, sizeof m);
    strcpy(m.model_name, "synthetic-260K");
    strcpy(m.arch, "llama");
    m.n_layers = 5;
    m.n_heads = 8;
    m.n_kv_heads = 4;
    m.head_dim = 8;
    m.dim = 64;
    m.hidden_dim = 172;
    m.vocab_size = 512;
    m.rope_theta = 10000.0;
    m.norm_eps = 1e-5;
    m.n_prompt = 8;
    strcpy(m.model_sha256, "0000000000000000000000000000000000000000000000000000000000000000");
    strcpy(m.command, "synthetic test trace");
    return m;
}

void ikv_synth_free(ikv_synth *s)
{
    free(s->q);
    free(s->k);
    free(s->v);
    free(s->lse);
    free(s->out);
    free(s->probs);
    free(s->evol);
    free(s->states);
    free(s->logits);
    free(s->prev_logits);
    free(s->topk_ids);
    free(s->topk_lp);
    free(s->scratch);
    free(s->order);
    memset(s, 0, sizeof *s);
}

int ikv_synth_init(ikv_synth *s, const ikv_trace_meta *meta, const int *layers, int n_slots,
                   int T, int topk, int entropy_k, uint32_t seed, int attention)
{
    memset(s, 0, sizeof *s);
    s->meta = *meta;
    s->n_slots = layers ? n_slots : meta->n_layers;
    if (s->n_slots > 64 || meta->head_dim > 1024)
        return -1;
    for (int i = 0; i < s->n_slots; i++)
        s->layers[i] = layers ? layers[i] : i;
    s->T = T;
    s->topk = topk;
    s->entropy_k = entropy_k;
    s->seed = seed;
    s->attention = attention;
    s->q_scale = 3.0f;
    size_t L = (size_t)s->n_slots, H = (size_t)meta->n_heads, G = (size_t)meta->n_kv_heads;
    size_t d = (size_t)meta->head_dim, V = (size_t)meta->vocab_size;
    s->q = malloc(sizeof(float) * (size_t)T * L * H * d);
    s->k = malloc(sizeof(float) * (size_t)T * L * G * d);
    s->v = malloc(sizeof(float) * (size_t)T * L * G * d);
    s->lse = malloc(sizeof(float) * L * H);
    s->out = malloc(sizeof(float) * L * H * d);
    s->probs = malloc(sizeof(float) * L * H * (size_t)T);
    s->evol = malloc(sizeof(float) * L);
    s->states = malloc(sizeof(float) * (L + 1) * (size_t)meta->dim);
    s->logits = malloc(sizeof(float) * V);
    s->prev_logits = malloc(sizeof(float) * V);
    s->topk_ids = malloc(sizeof(int32_t) * (size_t)(topk > 0 ? topk : 1));
    s->topk_lp = malloc(sizeof(float) * (size_t)(topk > 0 ? topk : 1));
    s->scratch = malloc(sizeof(float) * (V > (size_t)T ? V : (size_t)T));
    s->order = malloc(sizeof(int32_t) * V);
    if (!s->q || !s->k || !s->v || !s->lse || !s->out || !s->probs || !s->evol || !s->states ||
        !s->logits || !s->prev_logits || !s->topk_ids || !s->topk_lp || !s->scratch || !s->order) {
        ikv_synth_free(s);
        return -1;
    }
    /* Keys and values of every position, so attention rows are cheap. */
    for (int t = 0; t < T; t++)
        for (size_t l = 0; l < L; l++) {
            for (size_t h = 0; h < H; h++)
                for (size_t i = 0; i < d; i++)
                    s->q[(((size_t)t * L + l) * H + h) * d + i] =
                        s->q_scale * ikv_synth_value(seed, SYN_Q, s->layers[l], (int64_t)h, t, (int64_t)i);
            for (size_t g = 0; g < G; g++)
                for (size_t i = 0; i < d; i++) {
                    size_t o = (((size_t)t * L + l) * G + g) * d + i;
                    s->k[o] = ikv_synth_value(seed, SYN_K, s->layers[l], (int64_t)g, t, (int64_t)i);
                    s->v[o] = ikv_synth_value(seed, SYN_V, s->layers[l], (int64_t)g, t, (int64_t)i);
                }
        }
    return 0;
}

static void hashed_logits(const ikv_synth *s, int t, float *out)
{
    for (int i = 0; i < s->meta.vocab_size; i++)
        out[i] = 4.0f * ikv_synth_value(s->seed, SYN_LOGITS, t, i, 0, 0);
}

static double log_sum_exp(const float *x, int n)
{
    double m = -INFINITY;
    for (int i = 0; i < n; i++)
        if (x[i] > m)
            m = x[i];
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += exp(x[i] - m);
    return m + log(sum);
}

/* The n largest logits, largest first (ties: lower id first), by
 * insertion into a short sorted list: O(V n) without sorting V. */
static void top_n(const float *x, int V, int n, int32_t *ids)
{
    int have = 0;
    for (int i = 0; i < V; i++) {
        if (have == n && x[i] <= x[ids[n - 1]])
            continue;
        int pos = have < n ? have++ : n - 1;
        while (pos > 0 && x[ids[pos - 1]] < x[i]) {
            ids[pos] = ids[pos - 1];
            pos--;
        }
        ids[pos] = i;
    }
}

static int synth_token(const ikv_synth *s, int t)
{
    float u = ikv_synth_value(s->seed, SYN_TOKEN, t, 0, 0, 0);
    int id = (int)((u + 1.0f) * 0.5f * (float)s->meta.vocab_size);
    return id < s->meta.vocab_size ? id : s->meta.vocab_size - 1;
}

static void logit_summary(ikv_synth *s, int t, ikv_trace_row *row)
{
    int V = s->meta.vocab_size;
    hashed_logits(s, t, s->logits);
    double lse = log_sum_exp(s->logits, V);
    double ent = 0;
    for (int i = 0; i < V; i++) {
        double lp = s->logits[i] - lse;
        ent -= exp(lp) * lp;
    }
    row->entropy = (float)ent;
    int n = s->topk > s->entropy_k ? s->topk : s->entropy_k;
    top_n(s->logits, V, n, s->order);
    for (int i = 0; i < s->topk; i++) {
        s->topk_ids[i] = s->order[i];
        s->topk_lp[i] = (float)(s->logits[s->order[i]] - lse);
    }
    /* Top-k entropy: renormalise the k largest probabilities. */
    int k = s->entropy_k;
    for (int i = 0; i < k; i++)
        s->scratch[i] = s->logits[s->order[i]];
    double lk = log_sum_exp(s->scratch, k);
    double ek = 0;
    for (int i = 0; i < k; i++) {
        double lp = s->scratch[i] - lk;
        ek -= exp(lp) * lp;
    }
    row->entropy_topk = (float)ek;
    if (t == 0) {
        row->logprob = NAN;
    } else {
        hashed_logits(s, t - 1, s->prev_logits);
        row->logprob = (float)(s->prev_logits[row->token] - log_sum_exp(s->prev_logits, V));
    }
}

static void attention_row(ikv_synth *s, int t)
{
    int L = s->n_slots, H = s->meta.n_heads, G = s->meta.n_kv_heads, d = s->meta.head_dim;
    int group = H / G;
    double scale = 1.0 / sqrt((double)d);
    for (int l = 0; l < L; l++)
        for (int h = 0; h < H; h++) {
            const float *q = s->q + (((size_t)t * L + l) * H + h) * d;
            float *p = s->probs + ((size_t)l * H + h) * (size_t)(t + 1);
            float *o = s->out + ((size_t)l * H + h) * d;
            int g = h / group;
            if (!s->attention) {
                s->lse[l * H + h] = ikv_synth_value(s->seed, SYN_Q, l, h, t, -1);
                for (int i = 0; i < d; i++)
                    o[i] = ikv_synth_value(s->seed, SYN_V, l, h, t, -1 - i);
                for (int j = 0; j <= t; j++)
                    p[j] = 1.0f / (float)(t + 1);
                continue;
            }
            double m = -INFINITY;
            for (int j = 0; j <= t; j++) {
                const float *k = s->k + (((size_t)j * L + l) * G + g) * d;
                double dot = 0;
                for (int i = 0; i < d; i++)
                    dot += (double)q[i] * k[i];
                s->scratch[j] = (float)(dot * scale);
                if (dot * scale > m)
                    m = dot * scale;
            }
            double sum = 0;
            for (int j = 0; j <= t; j++)
                sum += exp(s->scratch[j] - m);
            double lse = m + log(sum);
            s->lse[l * H + h] = (float)lse;
            double acc[1024];
            for (int i = 0; i < d; i++)
                acc[i] = 0;
            for (int j = 0; j <= t; j++) {
                double pj = exp(s->scratch[j] - lse);
                p[j] = (float)pj;
                const float *v = s->v + (((size_t)j * L + l) * G + g) * d;
                for (int i = 0; i < d; i++)
                    acc[i] += pj * v[i];
            }
            for (int i = 0; i < d; i++)
                o[i] = (float)acc[i];
        }
}

void ikv_synth_row(ikv_synth *s, int t, ikv_trace_row *row)
{
    int L = s->n_slots, H = s->meta.n_heads, G = s->meta.n_kv_heads, d = s->meta.head_dim;
    memset(row, 0, sizeof *row);
    row->token = synth_token(s, t);
    logit_summary(s, t, row); /* leaves logits of t in s->logits */
    row->topk_ids = s->topk_ids;
    row->topk_logprobs = s->topk_lp;
    for (int l = 0; l < L; l++)
        s->evol[l] = 0.5f + 0.5f * ikv_synth_value(s->seed, SYN_EVOL, s->layers[l], t, 0, 0);
    row->evolution = s->evol;
    for (int l = 0; l <= L; l++)
        for (int i = 0; i < s->meta.dim; i++)
            s->states[(size_t)l * s->meta.dim + i] =
                ikv_synth_value(s->seed, SYN_STATES, l < L ? s->layers[l] : -1, t, i, 0);
    row->states = s->states;
    row->logits = s->logits;
    row->q = s->q + (size_t)t * L * H * d;
    row->k = s->k + (size_t)t * L * G * d;
    row->v = s->v + (size_t)t * L * G * d;
    attention_row(s, t);
    row->lse = s->lse;
    row->out = s->out;
    row->probs = s->probs;
}
