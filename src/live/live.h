/*
 * Live eviction: a policy of the eviction core (infokv/core.h) driving an
 * engine session's KV cache, so that offline numbers can be checked
 * against a real compressed run.
 *
 * The session's observer feeds the policy exactly the signals replay
 * feeds it: attention rows over the current cache slots (only those the
 * policy wants), the entropy of each next-token distribution in the
 * flavour the policy asks for, and each layer's representation evolution.
 * After every prefill chunk and decode token the policy steps, and its
 * moves compact the session's cache: memory falls with the budget, and
 * positions (hence RoPE) stay those of the original tokens.
 *
 *   ikv_live_create(&lv, session, &params, err, sizeof err);
 *   ikv_live_begin(lv, n_prompt, n_total);
 *   ikv_live_prefill(lv, prompt, n_prompt);     // may be called in chunks
 *   for (...) ikv_live_decode(lv, token);
 */
#ifndef IKV_LIVE_LIVE_H
#define IKV_LIVE_LIVE_H

#include <stddef.h>
#include <stdint.h>

#include "infokv/core.h"
#include "model/observer.h"
#include "model/session.h"

typedef struct ikv_live ikv_live;

typedef struct ikv_live_stats {
    uint64_t cache_bytes;      /* keys + values held now (float32) */
    uint64_t peak_cache_bytes; /* the most held after any step */
    uint64_t full_cache_bytes; /* what a full cache holds now */
    long evicted;              /* slots evicted, all layers and KV heads */
    int compressions;          /* steps that evicted something */
    double bookkeeping_s;      /* time in the policy and in compaction */
    double forward_s;          /* time in the session's forward calls */
} ikv_live_stats;

/* Attaches to `session` (its observer is replaced; a previous observer
 * can be chained with ikv_live_chain_observer). The session must be empty. */
int ikv_live_create(ikv_live **out, ikv_session *session, const ikv_params *params,
                    char *err, size_t errlen);
void ikv_live_free(ikv_live *lv);

/* Also forwards every callback to `other` (e.g. a trace recorder). */
int ikv_live_chain_observer(ikv_live *lv, const ikv_observer *other);

/* Starts a sequence (see ikv_policy_begin: fractions resolve against
 * n_prompt in prefill, n_total in decode). Resets the session. */
int ikv_live_begin(ikv_live *lv, int n_prompt, int n_total);

/* Starts a sequence over what the session already holds: its n_past
 * positions, still in position order (nothing evicted yet), count as the
 * prompt. The policy has not seen their signals, so its first step
 * compresses them by position alone (ties); afterwards it sees everything.
 * For benchmarks that reuse one long prefill. */
int ikv_live_attach(ikv_live *lv, int n_total);

/* Runs tokens at the next positions (a prefill chunk), then steps the
 * policy and compacts the cache. */
int ikv_live_prefill(ikv_live *lv, const int32_t *tokens, int n);
/* One token at the next position, then a step. */
int ikv_live_decode(ikv_live *lv, int32_t token);

const float *ikv_live_logits(const ikv_live *lv); /* [V] */
const ikv_live_stats *ikv_live_stats_of(const ikv_live *lv);
const ikv_policy *ikv_live_policy(const ikv_live *lv);
/* Slots held by a layer (all its KV heads alike). */
int ikv_live_cache_len(const ikv_live *lv, int layer);
const char *ikv_live_error(const ikv_live *lv);

#endif
