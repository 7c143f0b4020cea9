/*
 * infokv/core.h: the infokv eviction core.
 *
 * A KV-cache eviction policy as a small C11 library with no I/O, no global
 * state and no allocation after ikv_policy_create(). The same code serves
 * offline replay (infokv-sim feeds it signals read from a trace) and live
 * use inside an inference engine (infokv-capture feeds it what its forward
 * pass computes). Link with `pkg-config --cflags --libs infokv`.
 *
 * Vocabulary
 *   position  index of a token in the sequence (0 = first prompt token)
 *   slot      index into the cache of one (layer, KV head); a slot holds one
 *             position. Slots are not kept in position order: eviction fills
 *             holes from the tail so that compaction moves O(evicted) rows.
 *   budget B  slots kept per (layer, KV head) after a compression.
 *
 * Protocol for one sequence (all calls return an ikv_status):
 *
 *   ikv_policy_create(&p, &params, &shape, err, sizeof err);
 *   ikv_policy_begin(p, n_prompt, n_total);      // resolves the budget
 *   for each token, in order of position:
 *       ikv_policy_append(p, pos);                // enters every layer's cache
 *       ikv_policy_observe_*(p, ...);             // attention rows, entropy,
 *                                                 // evolution, future scores
 *       ikv_policy_step(p, &n_evicted);           // evicts where due
 *       if (n_evicted) for each layer l, KV head g:
 *           ikv_policy_moves(p, l, g, &moves, &n_moves);
 *           apply K[m.dst] = K[m.src], V[m.dst] = V[m.src] for each move,
 *           then the cache of layer l holds ikv_policy_cache_len(p, l) slots.
 *   ikv_policy_free(p);
 *
 * Prefill may append all prompt tokens first and observe their rows
 * afterwards; compression happens at the first step() once n_prompt tokens
 * have been appended. In scenario "prefill" nothing is evicted after that;
 * in scenario "decode" the cache is brought back to B every `interval` steps.
 * While a token attends, a layer holds at most B + interval slots.
 */
#ifndef INFOKV_CORE_H
#define INFOKV_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IKV_CORE_VERSION_MAJOR 0
#define IKV_CORE_VERSION_MINOR 1

/* Status codes: 0 is success, failures are negative. */
typedef enum ikv_status {
    IKV_OK = 0,
    IKV_EINVAL = -1,    /* bad argument, unknown name or bad parameter value */
    IKV_ENOMEM = -2,    /* allocation failed (only in create) */
    IKV_EBUDGET = -3,   /* budget impossible for this policy/sequence */
    IKV_ESTATE = -4,    /* call out of protocol order */
    IKV_ECAPACITY = -5  /* more positions or slots than the shape's capacity */
} ikv_status;

/* Short English text for a status code (static storage). */
const char *ikv_strerror(int status);

typedef enum ikv_policy_kind {
    IKV_POLICY_FULL = 0,  /* keep everything: the reference */
    IKV_POLICY_RANDOM,    /* seeded uniform choice: the floor */
    IKV_POLICY_STREAMING, /* StreamingLLM: sinks + most recent */
    IKV_POLICY_H2O,       /* accumulated attention: heavy hitters + recent */
    IKV_POLICY_TOVA,      /* last query's attention, averaged over heads */
    IKV_POLICY_SNAPKV,    /* observation-window attention, pooled */
    IKV_POLICY_PYRAMIDKV, /* SnapKV scores, pyramid layer budgets */
    IKV_POLICY_INFOKV,    /* attention fused with entropy and evolution */
    IKV_POLICY_ORACLE,    /* hindsight: future attention (replay only) */
    IKV_POLICY_COUNT
} ikv_policy_kind;

typedef enum ikv_scenario {
    IKV_SCENARIO_PREFILL = 0, /* compress the prompt once, then let it grow */
    IKV_SCENARIO_DECODE       /* also evict back to B during decode */
} ikv_scenario;

typedef enum ikv_allocation {
    IKV_ALLOC_UNIFORM = 0, /* every layer keeps B */
    IKV_ALLOC_PYRAMID      /* lower layers keep more, same total (PyramidKV) */
} ikv_allocation;

typedef enum ikv_aggregation {
    IKV_AGG_MEAN = 0, /* GQA: mean of the group's query-head scores */
    IKV_AGG_MAX,
    IKV_AGG_SUM
} ikv_aggregation;

typedef enum ikv_pooling {
    IKV_POOL_MAX = 0, /* max over a window of neighbouring keys */
    IKV_POOL_AVG,     /* mean over the kernel, zero padded at the ends */
    IKV_POOL_NONE
} ikv_pooling;

typedef enum ikv_entropy_at {
    IKV_ENTROPY_PREV = 0, /* the distribution that produced the token (t-1) */
    IKV_ENTROPY_SELF      /* the distribution computed at the token (t) */
} ikv_entropy_at;

/* A budget: a count of slots, or a fraction of a reference length (the
 * prompt in scenario prefill, the whole sequence in scenario decode). */
typedef struct ikv_budget {
    double value;    /* count (>= 1) or fraction in (0, 1] */
    int is_fraction; /* 0: count, 1: fraction */
} ikv_budget;

/* Per-policy parameters. Each has a *_default_params() below; the keys in
 * brackets are the names used by ikv_params_set() and on command lines. */
typedef struct ikv_random_params {
    uint64_t seed; /* [seed] stream seed; each (layer, KV head) derives its own */
} ikv_random_params;

typedef struct ikv_streaming_params {
    int sinks; /* [sinks] first tokens always kept (4, StreamingLLM) */
} ikv_streaming_params;

typedef struct ikv_h2o_params {
    double heavy; /* [heavy] share of the budget for heavy hitters; the rest
                     is the recent window (0.5: H2O's 1:1 split) */
} ikv_h2o_params;

typedef struct ikv_snapkv_params {
    int window;       /* [window] observation window, always kept (32) */
    int kernel;       /* [kernel] pooling kernel along keys, odd (7) */
    ikv_pooling pool; /* [pool] max|avg|none (max) */
} ikv_snapkv_params;

typedef struct ikv_infokv_params {
    double alpha;              /* [alpha] weight of the information score (0.3) */
    double beta;               /* [beta] weight of evolution within it (0.5) */
    int topk;                  /* [k] entropy over the top-k probabilities
                                  renormalised; 0 = full distribution (20) */
    ikv_entropy_at entropy_at; /* [entropy_at] prev|self (prev) */
} ikv_infokv_params;

/* Everything that configures a policy instance. */
typedef struct ikv_params {
    ikv_policy_kind policy;
    ikv_budget budget;           /* [budget] 128 or 25% (128) */
    ikv_scenario scenario;       /* [scenario] prefill|decode (prefill) */
    ikv_allocation allocation;   /* [alloc] uniform|pyramid */
    double pyramid_beta;         /* [pyramid_beta] smallest layer budget is
                                    (B - window) / beta above the window (20) */
    ikv_aggregation aggregation; /* [agg] mean|max|sum (mean) */
    int interval;                /* [interval] decode eviction period in steps;
                                    1 for per-step policies, 128 for SnapKV */
    ikv_random_params random;
    ikv_streaming_params streaming;
    ikv_h2o_params h2o;          /* also InfoKV's decode attention score */
    ikv_snapkv_params snapkv;    /* also PyramidKV's and InfoKV's prefill score */
    ikv_infokv_params infokv;
} ikv_params;

ikv_random_params ikv_random_default_params(void);
ikv_streaming_params ikv_streaming_default_params(void);
ikv_h2o_params ikv_h2o_default_params(void);
ikv_snapkv_params ikv_snapkv_default_params(void);
ikv_infokv_params ikv_infokv_default_params(void);

/* Defaults for a policy: the common settings plus every per-policy struct. */
ikv_params ikv_default_params(ikv_policy_kind kind);

/* Policy names: "full", "random", "streaming", "h2o", "tova", "snapkv",
 * "pyramidkv", "infokv", "oracle". Unknown names give IKV_EINVAL. */
const char *ikv_policy_name(ikv_policy_kind kind);
int ikv_policy_from_name(const char *name, ikv_policy_kind *kind);

/* Set one parameter by key (keys listed above and by ikv_param_info_at()).
 * A key the policy does not use, or a bad value, gives IKV_EINVAL and a
 * message in err. */
int ikv_params_set(ikv_params *params, const char *key, const char *value,
                   char *err, size_t errlen);

/* Parse "key=value,key=value" (an empty string is fine). */
int ikv_params_parse(ikv_params *params, const char *list, char *err,
                     size_t errlen);

/* Parse a budget: "128" (count) or "25%" / "0.25" (fraction). */
int ikv_budget_parse(const char *text, ikv_budget *budget, char *err,
                     size_t errlen);

/* Canonical "key=value,..." of the policy-specific parameters that differ
 * from the defaults (budget and scenario excluded); "" when none. Returns
 * the length it needed, like snprintf. */
int ikv_params_format(const ikv_params *params, char *buf, size_t buflen);

/* Introspection for --help: the i-th key a policy accepts, NULL past the end. */
typedef struct ikv_param_info {
    const char *key;
    const char *default_text; /* default as it would be written on a command line */
    const char *help;
} ikv_param_info;
const ikv_param_info *ikv_param_info_at(ikv_policy_kind kind, int index);

/* Model shape and the part of it one instance manages. */
typedef struct ikv_shape {
    int n_layers;    /* layers of the model (for pyramid allocation) */
    int n_heads;     /* query heads H */
    int n_kv_heads;  /* KV heads G; H % G == 0 */
    int layer_first; /* first layer this instance manages */
    int layer_count; /* layers managed; 0 means n_layers - layer_first */
    int capacity;    /* max positions in a sequence (positions < capacity) */
} ikv_shape;

typedef struct ikv_policy ikv_policy; /* opaque */

/* Signals a policy needs (bit mask from ikv_policy_needs()). */
enum {
    IKV_NEED_ATTENTION = 1u << 0, /* ikv_policy_observe_attention */
    IKV_NEED_ENTROPY = 1u << 1,   /* ikv_policy_observe_entropy */
    IKV_NEED_EVOLUTION = 1u << 2, /* ikv_policy_observe_evolution */
    IKV_NEED_FUTURE = 1u << 3     /* ikv_policy_observe_future (oracle) */
};

/* Allocates everything the instance will ever need. On failure *out is NULL
 * and err holds one line. */
int ikv_policy_create(ikv_policy **out, const ikv_params *params,
                      const ikv_shape *shape, char *err, size_t errlen);
void ikv_policy_free(ikv_policy *policy);

/* Starts a sequence: clears every cache and score, resolves the budget
 * (fractions against n_prompt in prefill, n_total in decode) and checks it
 * is possible (e.g. not below SnapKV's window). n_total may be 0 when
 * unknown and the budget is a count. */
int ikv_policy_begin(ikv_policy *policy, int n_prompt, int n_total);

/* The message of the latest failure of a call on this handle ("" if none). */
const char *ikv_policy_error(const ikv_policy *policy);

unsigned ikv_policy_needs(const ikv_policy *policy);
const ikv_params *ikv_policy_params(const ikv_policy *policy);

/* Entropy flavour the policy expects in observe_entropy(): 0 for the full
 * distribution, k for top-k renormalised (see ikv_entropy_topk()). */
int ikv_policy_entropy_topk(const ikv_policy *policy);

/* Resolved budget of a layer (valid after begin; 0 for "full"). */
int ikv_policy_layer_budget(const ikv_policy *policy, int layer);

/* Whether an attention row of this query would change any score: callers
 * may skip computing rows that do not (e.g. SnapKV outside its window). */
int ikv_policy_wants_row(const ikv_policy *policy, int layer, int32_t query_pos);

/* The token at `pos` enters the cache of every managed layer as the last
 * slot. Positions must be strictly increasing and below capacity. */
int ikv_policy_append(ikv_policy *policy, int32_t pos);

/* Attention of query `query_pos` at `layer`: probs holds one row per query
 * head h, over the first n_keys slots of KV head h / (H / G), rows `stride`
 * floats apart. In decode n_keys is the current cache length. */
int ikv_policy_observe_attention(ikv_policy *policy, int layer,
                                 int32_t query_pos,
                                 const float *probs /* [H][stride] */,
                                 int n_keys, int stride);

/* Entropy in nats of the next-token distribution computed at `pos`. */
int ikv_policy_observe_entropy(ikv_policy *policy, int32_t pos, float nats);

/* Representation evolution of the token at `pos` through `layer`:
 * 1 - cos(residual before the layer, residual after it). */
int ikv_policy_observe_evolution(ikv_policy *policy, int layer, int32_t pos,
                                 float evolution);

/* Oracle only: hindsight score of every current slot of every KV head of
 * `layer` (higher = more future attention). */
int ikv_policy_observe_future(ikv_policy *policy, int layer,
                              const float *scores /* [G][stride] */,
                              int stride);

/* Ends the current token: evicts where due. *n_evicted (may be NULL) is the
 * number of slots evicted over all managed layers and KV heads. */
int ikv_policy_step(ikv_policy *policy, int *n_evicted);

/* Slot moves of the latest step for (layer, kv_head): apply
 * slot[dst] = slot[src] for each, in any order; then the cache is
 * ikv_policy_cache_len() long. Every src >= the new length > every dst. */
typedef struct ikv_move {
    int32_t dst;
    int32_t src;
} ikv_move;
int ikv_policy_moves(const ikv_policy *policy, int layer, int kv_head,
                     const ikv_move **moves, int *n_moves);

/* Positions evicted at (layer, kv_head) by the latest step. */
int ikv_policy_evicted(const ikv_policy *policy, int layer, int kv_head,
                       const int32_t **positions, int *n);

/* Current slot count of a layer (the same for all its KV heads). */
int ikv_policy_cache_len(const ikv_policy *policy, int layer);

/* Position held by each slot of (layer, kv_head), cache_len entries. */
const int32_t *ikv_policy_positions(const ikv_policy *policy, int layer,
                                    int kv_head);

/* Signals shared by replay and live use, so both compute them alike. */

/* Entropy (nats) of the distribution given by n log-probabilities (or any
 * logits: they are renormalised), e.g. the top-k of a distribution. */
float ikv_entropy_from_logits(const float *logits /* [n] */, int n);

/* Both summaries of a logit vector in one pass: log Z = log sum exp(x_i)
 * (+inf or NaN when the largest logit is) and the entropy as above.
 * Either output may be NULL. */
void ikv_logits_summary(const float *logits /* [n] */, int n, float *log_z, float *entropy);

/* KL(p || q) in nats between the distributions softmax(p) and softmax(q)
 * of two logit (or log-probability) vectors, summed in double: 0 when
 * they are equal up to a constant, +inf when q gives no mass where p
 * gives some; NaN if either holds a NaN or +inf, or p is all -inf. */
double ikv_kl_logits(const float *p /* [n] */, const float *q /* [n] */, int n);

/* Indices of the k largest of x, largest first; equal values in index
 * order and NaN after every number. Needs 1 <= k <= n (else out is left
 * as it is) and scratch of n entries. O(n) plus O(m log k) for the m
 * values above a floor found in one pass (usually a few times k). */
void ikv_top_k(const float *x /* [n] */, int n, int k, int32_t *out /* [k] */,
               int32_t *scratch /* [n] */);

/* 1 - cos(a, b); 0 when either vector is zero. */
float ikv_evolution(const float *a /* [n] */, const float *b /* [n] */, int n);

#ifdef __cplusplus
}
#endif
#endif /* INFOKV_CORE_H */
