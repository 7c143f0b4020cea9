#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "model/sampler.h"
#include "model/status.h"

typedef struct candidate {
    float prob;
    int id;
} candidate;

struct ikv_sampler {
    int n_vocab;
    ikv_sampler_params params;
    uint64_t rng[4];        /* xoshiro256** state */
    float *probs;           /* [n_vocab] */
    candidate *candidates;  /* [n_vocab] */
};

ikv_sampler_params ikv_sampler_default_params(void)
{
    ikv_sampler_params p = {1.0f, 0.9f, 0};
    return p;
}

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256** (Blackman and Vigna): one 64-bit draw. */
static uint64_t next_u64(uint64_t s[4])
{
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1). */
static double next_unit(uint64_t s[4])
{
    return (double)(next_u64(s) >> 11) * 0x1p-53;
}

int ikv_sampler_create(ikv_sampler **out, int n_vocab, const ikv_sampler_params *params, char *err,
                       size_t errlen)
{
    *out = NULL;
    if (n_vocab < 1 || !(params->temperature >= 0.0f) || !isfinite(params->temperature) ||
        isnan(params->top_p)) {
        snprintf(err, errlen, "sampler: bad parameters (vocabulary %d, temperature %g, top-p %g)",
                 n_vocab, (double)params->temperature, (double)params->top_p);
        return IKV_EINVAL;
    }
    ikv_sampler *s = calloc(1, sizeof *s);
    if (s) {
        s->probs = malloc((size_t)n_vocab * sizeof *s->probs);
        s->candidates = malloc((size_t)n_vocab * sizeof *s->candidates);
    }
    if (!s || !s->probs || !s->candidates) {
        ikv_sampler_free(s);
        snprintf(err, errlen, "sampler: out of memory");
        return IKV_ENOMEM;
    }
    s->n_vocab = n_vocab;
    s->params = *params;
    uint64_t seed = params->seed;
    for (int i = 0; i < 4; i++)
        s->rng[i] = splitmix64(&seed);
    *out = s;
    return IKV_OK;
}

void ikv_sampler_free(ikv_sampler *s)
{
    if (!s)
        return;
    free(s->probs);
    free(s->candidates);
    free(s);
}

int ikv_argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

static int by_prob_desc(const void *a, const void *b)
{
    const candidate *x = a, *y = b;
    if (x->prob != y->prob)
        return x->prob < y->prob ? 1 : -1;
    return x->id - y->id; /* deterministic order on ties */
}

int ikv_sampler_sample(ikv_sampler *s, const float *logits)
{
    const int n = s->n_vocab;
    if (s->params.temperature == 0.0f)
        return ikv_argmax(logits, n);
    /* softmax(logits / T), in double for the sum */
    float max = logits[ikv_argmax(logits, n)];
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        s->probs[i] = expf((logits[i] - max) / s->params.temperature);
        sum += s->probs[i];
    }
    for (int i = 0; i < n; i++)
        s->probs[i] = (float)(s->probs[i] / sum);
    double r = next_unit(s->rng);
    const float top_p = s->params.top_p;
    if (top_p <= 0.0f || top_p >= 1.0f) {
        double acc = 0.0;
        for (int i = 0; i < n; i++) {
            acc += s->probs[i];
            if (r < acc)
                return i;
        }
        return n - 1; /* rounding: r landed past the last sum */
    }
    /* Nucleus: the fewest most-likely tokens whose mass exceeds top_p.
     * A token below (1 - top_p) / (n - 1) can never be part of it (the
     * others would already hold more than top_p), so skip sorting those. */
    float cutoff = n > 1 ? (1.0f - top_p) / (float)(n - 1) : 0.0f;
    int m = 0;
    for (int i = 0; i < n; i++)
        if (s->probs[i] >= cutoff)
            s->candidates[m++] = (candidate){s->probs[i], i};
    if (m == 0) /* only when the most likely token alone exceeds top_p */
        return ikv_argmax(logits, n);
    qsort(s->candidates, (size_t)m, sizeof *s->candidates, by_prob_desc);
    double mass = 0.0;
    int last = m - 1;
    for (int i = 0; i < m; i++) {
        mass += s->candidates[i].prob;
        if (mass > top_p) {
            last = i;
            break;
        }
    }
    double target = r * mass, acc = 0.0;
    for (int i = 0; i <= last; i++) {
        acc += s->candidates[i].prob;
        if (target < acc)
            return s->candidates[i].id;
    }
    return s->candidates[last].id;
}
