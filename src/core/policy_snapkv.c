/*
 * snapkv: SnapKV (Li et al. 2024, "SnapKV: LLM Knows What You are Looking
 * for Before Generation").
 *
 * Score of a key outside the observation window: the attention it gets from
 * the last `window` queries before a compression (32), summed, combined over
 * the GQA group (agg=mean) and pooled along neighbouring keys (pool=max,
 * kernel=7) so that kept tokens come with their context. The window itself
 * is always kept; the top budget - window other keys by score are kept.
 * In prefill it compresses the prompt once; in decode it re-applies every
 * `interval` steps (128).
 */
#include "core/internal.h"

static int snapkv_window(const ikv_policy *p)
{
    return p->params.snapkv.window;
}

void ikv_snapkv_scores(ikv_policy *p, int layer, int g, float *score)
{
    ikv_layer_state *L = &p->layers[layer - p->shape.layer_first];
    const int32_t *pos = ikv_policy_positions(p, layer, g);
    ikv_aggregate(p, L->win, g, L->n, score);
    /* Pool over the keys outside the window only, as the reference does. */
    int32_t window_from = ikv_recent_threshold(p, p->params.snapkv.window);
    for (int i = 0; i < L->n; i++)
        p->mark[i] = pos[i] >= window_from;
    ikv_pool_along_keys(p, layer, g, score, p->params.snapkv.pool, p->params.snapkv.kernel);
    for (int i = 0; i < L->n; i++)
        p->mark[i] = 0;
}

static int snapkv_compress(ikv_policy *p, int layer)
{
    for (int g = 0; g < p->shape.n_kv_heads; g++) {
        ikv_snapkv_scores(p, layer, g, p->score);
        int rc = ikv_keep_recent_and_top(p, layer, g, p->params.snapkv.window, p->score);
        if (rc != IKV_OK)
            return rc;
    }
    return IKV_OK;
}

const ikv_policy_ops ikv_snapkv_ops = {
    .kind = IKV_POLICY_SNAPKV,
    .needs = IKV_NEED_ATTENTION,
    .state = IKV_STATE_WIN,
    .reserved = snapkv_window,
    .compress = snapkv_compress,
};

/*
 * pyramidkv: PyramidKV (Cai et al. 2024, "PyramidKV: Dynamic KV Cache
 * Compression based on Pyramidal Information Funneling"). SnapKV's scores
 * and window, with layer budgets from the pyramid schedule (alloc=pyramid,
 * pyramid_beta=20; see budget.c): lower layers keep more, the total is the
 * same as uniform allocation.
 */
const ikv_policy_ops ikv_pyramidkv_ops = {
    .kind = IKV_POLICY_PYRAMIDKV,
    .needs = IKV_NEED_ATTENTION,
    .state = IKV_STATE_WIN,
    .reserved = snapkv_window,
    .compress = snapkv_compress,
};
