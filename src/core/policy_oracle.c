/*
 * oracle: hindsight. Keeps the keys that future queries will attend to
 * most, from scores the caller computes with the whole trace in hand
 * (ikv_policy_observe_future). In scenario prefill, with scores summed over
 * the later queries, it maximises mean attention recall exactly: the
 * ceiling for every policy at the same budget. In decode it is the greedy
 * hindsight choice at each step (not provably optimal there). Replay only.
 */
#include "core/internal.h"

static int oracle_compress(ikv_policy *p, int layer)
{
    ikv_layer_state *L = &p->layers[layer - p->shape.layer_first];
    if (!L->future_valid)
        return ikv_fail(p, IKV_ESTATE,
                        "oracle: no future scores observed for layer %d before this step", layer);
    for (int g = 0; g < p->shape.n_kv_heads; g++) {
        int rc = ikv_keep_recent_and_top(p, layer, g, 0, L->future + (size_t)g * (size_t)p->capacity);
        if (rc != IKV_OK)
            return rc;
    }
    return IKV_OK;
}

const ikv_policy_ops ikv_oracle_ops = {
    .kind = IKV_POLICY_ORACLE,
    .needs = IKV_NEED_FUTURE,
    .state = IKV_STATE_FUTURE,
    .reserved = NULL,
    .compress = oracle_compress,
};
