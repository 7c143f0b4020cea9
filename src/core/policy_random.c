/*
 * random: evicts a uniformly random choice of slots, independently per
 * (layer, KV head). The floor any informed policy must beat.
 *
 * Each (layer, KV head) draws from its own splitmix64 stream seeded from
 * (seed, layer, head) at ikv_policy_begin(), so results do not depend on
 * how layers are split across instances, threads or machines.
 * Default seed=1.
 */
#include "core/internal.h"

static int random_compress(ikv_policy *p, int layer)
{
    ikv_layer_state *L = &p->layers[layer - p->shape.layer_first];
    const int n = L->n, evict = L->n - L->budget;
    for (int g = 0; g < p->shape.n_kv_heads; g++) {
        int32_t *idx = p->victims;
        for (int i = 0; i < n; i++)
            idx[i] = i;
        /* Partial Fisher-Yates: the first `evict` entries are a uniform
         * sample without replacement. */
        for (int i = 0; i < evict; i++) {
            int j = i + (int)ikv_rng_below(&L->rng[g], (uint32_t)(n - i));
            int32_t t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
        }
        ikv_evict_slots(p, layer, g, idx, evict);
    }
    return IKV_OK;
}

const ikv_policy_ops ikv_random_ops = {
    .kind = IKV_POLICY_RANDOM,
    .needs = 0,
    .state = 0,
    .reserved = NULL,
    .compress = random_compress,
};
