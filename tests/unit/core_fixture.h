/*
 * Test fixture for the eviction core: drives a policy through a whole
 * sequence (prefill, then decode) with synthetic signals given as functions
 * of positions, and checks the protocol's invariants at every step.
 *
 * A "shadow cache" per (layer, KV head) plays the engine: it stores the
 * position held by each slot, applies the moves the core returns and
 * truncates to the new length; after every step it must equal
 * ikv_policy_positions(). Header-only so each suite stays one file.
 */
#ifndef IKV_TEST_CORE_FIXTURE_H
#define IKV_TEST_CORE_FIXTURE_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "core/internal.h"

/* Signals as functions of (layer, head, query position, key position). */
typedef struct fx_signals {
    float (*attention)(const struct fx_signals *s, int layer, int head, int32_t query, int32_t key);
    float (*entropy)(const struct fx_signals *s, int32_t pos);
    float (*evolution)(const struct fx_signals *s, int layer, int32_t pos);
    /* oracle: hindsight score of `key` for (layer, kv_head) at query `query` */
    float (*future)(const struct fx_signals *s, int layer, int kv_head, int32_t query, int32_t key);
    uint64_t seed;
    const float *table; /* optional explicit values for hand-written cases */
} fx_signals;

/* Deterministic hash -> (0, 1). */
static inline float fx_unit(uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
    uint64_t z = a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull) * 0xBF58476D1CE4E5B9ull ^
                 (c + 0x8CB92BA72F3D8DD7ull) * 0x94D049BB133111EBull ^ (d + 0x1ull) * 0xD6E8FEB86659FD93ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return ((float)(z >> 40) + 0.5f) / 16777216.0f;
}

static inline float fx_random_attention(const fx_signals *s, int layer, int head, int32_t q, int32_t k)
{
    return fx_unit(s->seed, (uint64_t)layer * 1000u + (uint64_t)head, (uint64_t)q, (uint64_t)k);
}

static inline float fx_random_entropy(const fx_signals *s, int32_t pos)
{
    return 4.0f * fx_unit(s->seed ^ 0x5555u, 7u, (uint64_t)pos, 0u);
}

static inline float fx_random_evolution(const fx_signals *s, int layer, int32_t pos)
{
    return fx_unit(s->seed ^ 0xAAAAu, (uint64_t)layer, (uint64_t)pos, 3u);
}

static inline float fx_random_future(const fx_signals *s, int layer, int g, int32_t q, int32_t k)
{
    return fx_unit(s->seed ^ 0x77u, (uint64_t)layer * 100u + (uint64_t)g, (uint64_t)q, (uint64_t)k);
}

static inline fx_signals fx_random_signals(uint64_t seed)
{
    fx_signals s = {fx_random_attention, fx_random_entropy, fx_random_evolution,
                    fx_random_future, seed, NULL};
    return s;
}

typedef struct fx_run {
    ikv_policy *policy;
    ikv_shape shape;
    int n_prompt;
    int n_total;
    int32_t *shadow;   /* [layer_count][G][cap] */
    int *shadow_len;   /* [layer_count] */
    float *row;        /* [H][cap] */
    int max_len_seen;  /* largest cache length after any step */
    int max_len_while_attending; /* largest length a decode query attended over */
    int failures;      /* protocol invariant failures */
} fx_run;

static inline int fx_create(fx_run *r, const ikv_params *params, ikv_shape shape)
{
    memset(r, 0, sizeof *r);
    char err[256];
    int rc = ikv_policy_create(&r->policy, params, &shape, err, sizeof err);
    if (rc != IKV_OK)
        return rc;
    if (shape.layer_count == 0)
        shape.layer_count = shape.n_layers - shape.layer_first;
    r->shape = shape;
    size_t cap = (size_t)shape.capacity;
    r->shadow = calloc((size_t)shape.layer_count * (size_t)shape.n_kv_heads * cap, sizeof *r->shadow);
    r->shadow_len = calloc((size_t)shape.layer_count, sizeof *r->shadow_len);
    r->row = calloc((size_t)shape.n_heads * cap, sizeof *r->row);
    return IKV_OK;
}

static inline void fx_destroy(fx_run *r)
{
    ikv_policy_free(r->policy);
    free(r->shadow);
    free(r->shadow_len);
    free(r->row);
    memset(r, 0, sizeof *r);
}

static inline int32_t *fx_shadow(fx_run *r, int l, int g)
{
    return r->shadow + ((size_t)l * (size_t)r->shape.n_kv_heads + (size_t)g) * (size_t)r->shape.capacity;
}

/* Applies the latest step's moves to the shadow caches and compares them
 * with the core's own positions. */
static inline void fx_sync(fx_run *r)
{
    for (int l = 0; l < r->shape.layer_count; l++) {
        int layer = r->shape.layer_first + l;
        int len = ikv_policy_cache_len(r->policy, layer);
        for (int g = 0; g < r->shape.n_kv_heads; g++) {
            const ikv_move *moves;
            int n_moves;
            ikv_policy_moves(r->policy, layer, g, &moves, &n_moves);
            int32_t *sh = fx_shadow(r, l, g);
            for (int m = 0; m < n_moves; m++) {
                if (!(moves[m].src >= len && moves[m].dst < len))
                    r->failures++;
                sh[moves[m].dst] = sh[moves[m].src];
            }
            const int32_t *pos = ikv_policy_positions(r->policy, layer, g);
            for (int i = 0; i < len; i++)
                if (sh[i] != pos[i])
                    r->failures++;
        }
        r->shadow_len[l] = len;
        if (len > r->max_len_seen)
            r->max_len_seen = len;
    }
}

static inline void fx_append(fx_run *r, int32_t pos)
{
    CU_ASSERT_EQUAL_FATAL(ikv_policy_append(r->policy, pos), IKV_OK);
    for (int l = 0; l < r->shape.layer_count; l++) {
        for (int g = 0; g < r->shape.n_kv_heads; g++)
            fx_shadow(r, l, g)[r->shadow_len[l]] = pos;
        r->shadow_len[l]++;
    }
}

/* Feeds the attention row of `query` over the first n_keys slots of every
 * managed layer, values taken from the signal function by key position. */
static inline void fx_observe_row(fx_run *r, const fx_signals *s, int32_t query, int n_keys_prefill)
{
    const int H = r->shape.n_heads, group = H / r->shape.n_kv_heads;
    const int cap = r->shape.capacity;
    for (int l = 0; l < r->shape.layer_count; l++) {
        int layer = r->shape.layer_first + l;
        int n = n_keys_prefill > 0 ? n_keys_prefill : ikv_policy_cache_len(r->policy, layer);
        if (n_keys_prefill == 0 && n > r->max_len_while_attending)
            r->max_len_while_attending = n;
        for (int h = 0; h < H; h++) {
            const int32_t *pos = ikv_policy_positions(r->policy, layer, h / group);
            for (int i = 0; i < n; i++)
                r->row[(size_t)h * (size_t)cap + (size_t)i] = s->attention(s, layer, h, query, pos[i]);
        }
        CU_ASSERT_EQUAL_FATAL(ikv_policy_observe_attention(r->policy, layer, query, r->row, n, cap), IKV_OK);
    }
}

static inline void fx_observe_token(fx_run *r, const fx_signals *s, int32_t pos)
{
    if (s->entropy)
        CU_ASSERT_EQUAL_FATAL(ikv_policy_observe_entropy(r->policy, pos, s->entropy(s, pos)), IKV_OK);
    if (s->evolution)
        for (int l = 0; l < r->shape.layer_count; l++)
            CU_ASSERT_EQUAL_FATAL(ikv_policy_observe_evolution(r->policy, r->shape.layer_first + l, pos,
                                                               s->evolution(s, r->shape.layer_first + l, pos)),
                                  IKV_OK);
}

static inline void fx_observe_future(fx_run *r, const fx_signals *s, int32_t query)
{
    if (!s->future)
        return;
    const int G = r->shape.n_kv_heads, cap = r->shape.capacity;
    for (int l = 0; l < r->shape.layer_count; l++) {
        int layer = r->shape.layer_first + l;
        int n = ikv_policy_cache_len(r->policy, layer);
        for (int g = 0; g < G; g++) {
            const int32_t *pos = ikv_policy_positions(r->policy, layer, g);
            for (int i = 0; i < n; i++)
                r->row[(size_t)g * (size_t)cap + (size_t)i] = s->future(s, layer, g, query, pos[i]);
        }
        CU_ASSERT_EQUAL_FATAL(ikv_policy_observe_future(r->policy, layer, r->row, cap), IKV_OK);
    }
}

static inline int fx_step(fx_run *r)
{
    int evicted = -1;
    int rc = ikv_policy_step(r->policy, &evicted);
    if (rc == IKV_OK)
        fx_sync(r);
    return rc;
}

/* Prefill: append the prompt, observe every prompt row (causal), the
 * per-token signals, then step (the prompt compression). */
static inline int fx_prefill(fx_run *r, const fx_signals *s, int n_prompt, int n_total)
{
    r->n_prompt = n_prompt;
    r->n_total = n_total;
    int rc = ikv_policy_begin(r->policy, n_prompt, n_total);
    if (rc != IKV_OK)
        return rc;
    for (int l = 0; l < r->shape.layer_count; l++)
        r->shadow_len[l] = 0;
    for (int32_t t = 0; t < n_prompt; t++)
        fx_append(r, t);
    for (int32_t t = 0; t < n_prompt; t++) {
        fx_observe_row(r, s, t, t + 1);
        fx_observe_token(r, s, t);
    }
    fx_observe_future(r, s, n_prompt - 1);
    return fx_step(r);
}

/* One decode token at position t. */
static inline int fx_decode(fx_run *r, const fx_signals *s, int32_t t)
{
    fx_append(r, t);
    fx_observe_row(r, s, t, 0);
    fx_observe_token(r, s, t);
    fx_observe_future(r, s, t);
    return fx_step(r);
}

/* Sorted copy of the kept positions of (layer, g) into out; returns count. */
static inline int fx_kept(const fx_run *r, int layer, int g, int32_t *out)
{
    int n = ikv_policy_cache_len(r->policy, layer);
    const int32_t *pos = ikv_policy_positions(r->policy, layer, g);
    memcpy(out, pos, (size_t)n * sizeof *out);
    for (int i = 1; i < n; i++) {
        int32_t x = out[i];
        int j = i - 1;
        while (j >= 0 && out[j] > x) {
            out[j + 1] = out[j];
            j--;
        }
        out[j + 1] = x;
    }
    return n;
}

static inline ikv_shape fx_shape(int layers, int heads, int kv_heads, int capacity)
{
    ikv_shape s = {layers, heads, kv_heads, 0, 0, capacity};
    return s;
}

#endif
