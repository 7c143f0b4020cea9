/*
 * h2o: Heavy-Hitter Oracle (Zhang et al. 2023, "H2O: Heavy-Hitter Oracle
 * for Efficient Generative Inference of Large Language Models").
 *
 * Score of a key: the attention it received from every query so far
 * (prefill rows and decode rows), accumulated per query head and combined
 * over the GQA group (agg=mean by default). The budget is split between
 * heavy hitters and a recent window: heavy=0.5 is the paper's 1:1 split.
 * In decode it evicts every step (interval=1), as the paper's
 * implementation does.
 */
#include <math.h>

#include "core/internal.h"

int ikv_h2o_recent(const ikv_policy *p, int budget)
{
    int heavy = (int)lround(p->params.h2o.heavy * (double)budget);
    return budget - heavy;
}

static int h2o_compress(ikv_policy *p, int layer)
{
    ikv_layer_state *L = &p->layers[layer - p->shape.layer_first];
    int recent = ikv_h2o_recent(p, L->budget);
    for (int g = 0; g < p->shape.n_kv_heads; g++) {
        ikv_aggregate(p, L->acc, g, L->n, p->score);
        int rc = ikv_keep_recent_and_top(p, layer, g, recent, p->score);
        if (rc != IKV_OK)
            return rc;
    }
    return IKV_OK;
}

const ikv_policy_ops ikv_h2o_ops = {
    .kind = IKV_POLICY_H2O,
    .needs = IKV_NEED_ATTENTION,
    .state = IKV_STATE_ACC,
    .reserved = NULL,
    .compress = h2o_compress,
};
