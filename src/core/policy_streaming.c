/*
 * streaming: StreamingLLM (Xiao et al. 2023, "Efficient Streaming Language
 * Models with Attention Sinks"). Keeps the first `sinks` tokens (the
 * attention sinks; the paper uses 4) and the budget - sinks most recent
 * tokens. Needs no signal.
 */
#include "core/internal.h"

static int streaming_sinks(const ikv_policy *p)
{
    return p->params.streaming.sinks;
}

static int streaming_compress(ikv_policy *p, int layer)
{
    ikv_layer_state *L = &p->layers[layer - p->shape.layer_first];
    const int sinks = p->params.streaming.sinks;
    /* A slot is a sink iff its position is among the first `sinks`
     * appended; sinks are never evicted, so they are all present. */
    int32_t sink_last = sinks > 0 ? p->appended[(sinks < p->n_appended ? sinks : p->n_appended) - 1]
                                  : INT32_MIN;
    int32_t recent_from = ikv_recent_threshold(p, L->budget - sinks);
    for (int g = 0; g < p->shape.n_kv_heads; g++) {
        const int32_t *pos = ikv_policy_positions(p, layer, g);
        int n_victims = 0;
        for (int i = 0; i < L->n; i++) {
            int is_sink = sinks > 0 && pos[i] <= sink_last;
            if (!is_sink && pos[i] < recent_from)
                p->victims[n_victims++] = i;
        }
        ikv_evict_slots(p, layer, g, p->victims, n_victims);
    }
    return IKV_OK;
}

const ikv_policy_ops ikv_streaming_ops = {
    .kind = IKV_POLICY_STREAMING,
    .needs = 0,
    .state = 0,
    .reserved = streaming_sinks,
    .compress = streaming_compress,
};
