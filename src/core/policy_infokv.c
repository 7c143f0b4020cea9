/*
 * infokv: attention fused with an information score. Our reading of InfoKV
 * (2026), whose exact formulas are not public: every part is a parameter so
 * the simulator can sweep it.
 *
 * For each candidate key at position t of (layer l, KV head g):
 *   A  attention score: SnapKV's (observation window, pooled) in scenario
 *      prefill, H2O's (accumulated over all queries) in scenario decode;
 *   H  predictive entropy of the token (entropy_at=prev: of the
 *      distribution at t-1 that produced it, 0 for t = 0; self: at t),
 *      over the top-k probabilities renormalised (k=20; 0 = full);
 *   E  evolution of the token through layer l: 1 - cos(residual before,
 *      residual after).
 * Each is min-max normalised over the candidates of (l, g), then
 *   info  = (1 - beta) * H' + beta * E'            (beta=0.5)
 *   score = (1 - alpha) * A' + alpha * info        (alpha=0.3)
 * The window (prefill) or recent share (decode, heavy=0.5) is always kept;
 * the best budget - kept candidates by score are kept.
 * alpha = 0 ranks by raw A and so selects exactly as SnapKV (prefill) or
 * H2O (decode); alpha = 1 ranks by info alone. Defaults are ours.
 */
#include <math.h>

#include "core/internal.h"

static int infokv_window(const ikv_policy *p)
{
    return p->params.scenario == IKV_SCENARIO_PREFILL ? p->params.snapkv.window : 0;
}

/* (x - min) / (max - min) over the candidate slots, 0 when flat. */
static void normalise(float *x, const uint8_t *is_candidate, int n)
{
    float lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (!is_candidate[i])
            continue;
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    float range = hi - lo;
    for (int i = 0; i < n; i++)
        x[i] = (is_candidate[i] && range > 0.0f) ? (x[i] - lo) / range : 0.0f;
}

static int infokv_compress(ikv_policy *p, int layer)
{
    ikv_layer_state *L = &p->layers[layer - p->shape.layer_first];
    const ikv_infokv_params *ip = &p->params.infokv;
    const int prefill = p->params.scenario == IKV_SCENARIO_PREFILL;
    const int recent = prefill ? p->params.snapkv.window : ikv_h2o_recent(p, L->budget);
    const unsigned needs = ikv_policy_needs(p);
    const int n = L->n;
    float *score = p->score, *entropy = p->aux, *evolution = p->aux2;

    for (int g = 0; g < p->shape.n_kv_heads; g++) {
        const int32_t *pos = ikv_policy_positions(p, layer, g);
        if (prefill)
            ikv_snapkv_scores(p, layer, g, score);
        else
            ikv_aggregate(p, L->acc, g, n, score);

        if (ip->alpha > 0.0) {
            int32_t recent_from = ikv_recent_threshold(p, recent);
            uint8_t *cand = p->mark;
            for (int i = 0; i < n; i++) {
                cand[i] = pos[i] < recent_from;
                if (!cand[i]) {
                    entropy[i] = evolution[i] = 0.0f;
                    continue;
                }
                entropy[i] = 0.0f;
                if (needs & IKV_NEED_ENTROPY) {
                    int32_t at = ip->entropy_at == IKV_ENTROPY_PREV ? pos[i] - 1 : pos[i];
                    entropy[i] = at < 0 ? 0.0f : p->entropy[at];
                    if (entropy[i] != entropy[i]) {
                        for (int j = 0; j < n; j++)
                            cand[j] = 0;
                        return ikv_fail(p, IKV_ESTATE, "infokv: no entropy observed for position %d",
                                        (int)at);
                    }
                }
                evolution[i] = 0.0f;
                if (needs & IKV_NEED_EVOLUTION) {
                    evolution[i] = L->evolution[pos[i]];
                    if (evolution[i] != evolution[i]) {
                        for (int j = 0; j < n; j++)
                            cand[j] = 0;
                        return ikv_fail(p, IKV_ESTATE,
                                        "infokv: no evolution observed for layer %d position %d",
                                        layer, (int)pos[i]);
                    }
                }
            }
            if (ip->alpha < 1.0)
                normalise(score, cand, n);
            normalise(entropy, cand, n);
            normalise(evolution, cand, n);
            const float a = (float)ip->alpha, b = (float)ip->beta;
            for (int i = 0; i < n; i++) {
                float info = (1.0f - b) * entropy[i] + b * evolution[i];
                score[i] = ip->alpha < 1.0 ? (1.0f - a) * score[i] + a * info : info;
            }
            for (int i = 0; i < n; i++)
                cand[i] = 0;
        }
        int rc = ikv_keep_recent_and_top(p, layer, g, recent, score);
        if (rc != IKV_OK)
            return rc;
    }
    return IKV_OK;
}

const ikv_policy_ops ikv_infokv_ops = {
    .kind = IKV_POLICY_INFOKV,
    .needs = IKV_NEED_ATTENTION | IKV_NEED_ENTROPY | IKV_NEED_EVOLUTION,
    .state = IKV_STATE_INFO, /* plus ACC or WIN by scenario (policy.c) */
    .reserved = infokv_window,
    .compress = infokv_compress,
};
