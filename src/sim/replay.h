/*
 * Replay of one layer of a trace under one policy configuration, through
 * the eviction core exactly as an engine would drive it, measuring what
 * the kept cache costs each later query.
 *
 * Per decode query t and query head h, with K the slots kept when t
 * attends (t included):
 *   recall   sum_{j in K} p_full(t, j)  = exp(lse_K - lse_full)
 *   out_err  |o_K - o_full| / |o_full|, o_K with softmax renormalised on K
 * The policy sees the attention rows a live engine would compute over K.
 * Overlap with the hindsight oracle at the same per-layer budget is the
 * share of the oracle's kept tokens the policy also keeps (prefill: over
 * the prompt, once; decode: every step).
 */
#ifndef IKV_SIM_REPLAY_H
#define IKV_SIM_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "infokv/core.h"
#include "sim/reference.h"

/* The evictions of one replay, step by step (step 0: the prompt
 * compression; step s >= 1: decode position n_prompt + s - 1). */
typedef struct ikv_evict_entry {
    int32_t kv_head;
    int32_t pos;
} ikv_evict_entry;

typedef struct ikv_evict_log {
    int n_steps;
    int32_t *step_start;      /* [n_steps + 1] */
    ikv_evict_entry *entries; /* [n_entries] */
    int n_entries;
    int cap_entries;
    int cap_steps;
} ikv_evict_log;

void ikv_evict_log_free(ikv_evict_log *log);

/* Sums over (query head, decode query) pairs and (KV head, step) samples. */
typedef struct ikv_sim_stats {
    double recall_sum;
    double err_sum;
    long n_pairs;
    double overlap_sum;
    long n_overlap;
    double kept_sum;   /* slots attended per (KV head, query) */
    long n_kept;
    double *step_recall; /* [T - n_prompt] per-query sums over heads, or NULL */
    double *step_err;    /* [T - n_prompt] or NULL */
} ikv_sim_stats;

typedef struct ikv_sim_replay_input {
    const ikv_sim_layer *layer;
    const ikv_sim_reference *ref;
    const float *entropy;         /* [T] in the flavour the policy wants, or NULL */
    const ikv_evict_log *oracle;  /* the oracle's evictions at this budget, or NULL */
    /* Optional: called after each step (0 = prompt compression). */
    void (*on_step)(void *user, int step, const ikv_policy *policy);
    void *user;
} ikv_sim_replay_input;

/* Replays `params` on the layer. `record` (may be NULL) receives this
 * replay's evictions; `evicted` (may be NULL, [G][T]) marks every position
 * evicted from each KV head. Stats are added to `stats`. Returns 0, or
 * negative with one line in err (a missing signal, an impossible budget). */
int ikv_sim_replay(const ikv_sim_replay_input *in, const ikv_params *params,
                   ikv_evict_log *record, ikv_sim_stats *stats,
                   uint8_t *evicted, char *err, size_t errlen);

#endif
