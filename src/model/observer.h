/*
 * Observer of a session's forward pass: what capture records and what a
 * live eviction policy needs to see. Every callback is optional (NULL:
 * not wanted, and not computed for it). Callbacks run on the thread that
 * called prefill/decode, never concurrently; the pointers they receive are
 * valid only during the call.
 *
 * Order: on_tokens first, before anything of the call is computed. For
 * one layer and position, on_qkv, then on_attention, then on_residual.
 * In decode, layer by layer, then on_logits. In prefill, a
 * layer's positions may be reported together after that layer's batched
 * work (qkv and attention for a group of positions, then the residuals of
 * all positions), layer after layer, then on_logits for every prompt
 * position in order.
 */
#ifndef IKV_MODEL_OBSERVER_H
#define IKV_MODEL_OBSERVER_H

#include <stdint.h>

typedef struct ikv_observer {
    void *user;
    /* Queries and keys after RoPE, values, of the token at `pos`. */
    void (*on_qkv)(void *user, int layer, int pos, const float *q /* [H][d] */,
                   const float *k /* [G][d] */, const float *v /* [G][d] */);
    /* Softmax probabilities of query `pos` over the layer's cache slots
     * 0..n_keys-1 of each head's KV head, exactly as the forward pass used
     * them (in prefill the causal prefix: slots up to the query's own). */
    void (*on_attention)(void *user, int layer, int pos, const float *probs /* [H][stride] */,
                         int n_keys, int stride);
    /* The residual stream entering layer `layer` and leaving it. */
    void (*on_residual)(void *user, int layer, int pos, const float *before /* [D] */,
                        const float *after /* [D] */);
    /* Next-token logits computed at `pos`. With on_logits set, prefill
     * computes them for every prompt position (else only for the last). */
    void (*on_logits)(void *user, int pos, const float *logits /* [V] */);
    /* The n tokens a call processes and their positions, before anything
     * of it is computed: ikv_session_logits() still holds the logits of
     * the call before (the log-probability of tokens[0] under them). */
    void (*on_tokens)(void *user, const int32_t *positions /* [n] */, const int32_t *tokens /* [n] */,
                      int n);
} ikv_observer;

#endif
