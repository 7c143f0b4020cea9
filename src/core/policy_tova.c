/*
 * tova: Token Omission Via Attention (Oren et al. 2024, "Transformers are
 * Multi-State RNNs"). Scores every key by the attention of the latest query
 * averaged over all query heads of the layer, and keeps the same tokens for
 * all KV heads. No forced sinks or recent window: the paper finds the
 * policy keeps them when they matter. In decode it evicts every step.
 */
#include <math.h>

#include "core/internal.h"

static int tova_compress(ikv_policy *p, int layer)
{
    ikv_layer_state *L = &p->layers[layer - p->shape.layer_first];
    const size_t cap = (size_t)p->capacity;
    const int H = p->shape.n_heads, n = L->n;
    /* All KV heads share one slot layout (they always evict alike), so one
     * score per slot serves the whole layer. */
    float *score = p->score;
    for (int i = 0; i < n; i++)
        score[i] = 0.0f;
    for (int h = 0; h < H; h++) {
        const float *row = L->win + (size_t)h * cap;
        for (int i = 0; i < n; i++)
            score[i] += row[i];
    }
    const int32_t *pos = ikv_policy_positions(p, layer, 0);
    for (int i = 0; i < n; i++) {
        float s = score[i] / (float)H;
        p->ranks[i] = (ikv_rank){.score = s == s ? s : -INFINITY, .pos = pos[i], .slot = i};
    }
    ikv_select_top(p->ranks, n, L->budget);
    int n_victims = 0;
    for (int i = L->budget; i < n; i++)
        p->victims[n_victims++] = p->ranks[i].slot;
    for (int g = 0; g < p->shape.n_kv_heads; g++)
        ikv_evict_slots(p, layer, g, p->victims, n_victims);
    return IKV_OK;
}

const ikv_policy_ops ikv_tova_ops = {
    .kind = IKV_POLICY_TOVA,
    .needs = IKV_NEED_ATTENTION,
    .state = IKV_STATE_WIN,
    .reserved = NULL,
    .compress = tova_compress,
};
