/*
 * Internal structures of the eviction core, shared by its source files only.
 */
#ifndef IKV_CORE_INTERNAL_H
#define IKV_CORE_INTERNAL_H

#include <stdarg.h>
#include <stdint.h>

#include "infokv/core.h"

/* Per-slot state a policy keeps (bit mask in ikv_policy_ops.state). */
enum {
    IKV_STATE_ACC = 1u << 0,    /* attention accumulated over every query */
    IKV_STATE_WIN = 1u << 1,    /* attention of the observation window */
    IKV_STATE_FUTURE = 1u << 2, /* caller-supplied hindsight scores */
    IKV_STATE_INFO = 1u << 3    /* entropy by position, evolution by layer */
};

/* One candidate of a selection: ranked by score, then by position (the
 * more recent token wins a tie, so ranking is a total order). */
typedef struct ikv_rank {
    float score;
    int32_t pos;
    int32_t slot;
} ikv_rank;

typedef struct ikv_layer_state {
    int budget;          /* resolved slots kept after a compression */
    int n;               /* current slots, all KV heads alike */
    int32_t *pos;        /* [G][cap] position held by each slot */
    float *acc;          /* [H][cap] IKV_STATE_ACC, else NULL */
    float *win;          /* [H][cap] IKV_STATE_WIN, else NULL */
    float *future;       /* [G][cap] IKV_STATE_FUTURE, else NULL */
    int future_valid;    /* future[] was observed for the current slots */
    float *evolution;    /* [cap] by position, IKV_STATE_INFO, else NULL */
    ikv_move *moves;     /* [G][cap] moves of the latest step */
    int *n_moves;        /* [G] */
    int32_t *evicted;    /* [G][cap] positions evicted by the latest step */
    int *n_evicted;      /* [G] */
    uint64_t *rng;       /* [G] per-KV-head random streams */
} ikv_layer_state;

typedef struct ikv_policy_ops {
    ikv_policy_kind kind;
    unsigned needs;  /* IKV_NEED_* */
    unsigned state;  /* IKV_STATE_* */
    /* Slots kept whatever the scores (SnapKV's window, StreamingLLM's
     * sinks): every layer's budget must hold them, and the pyramid
     * allocation spreads only the rest. NULL means none. */
    int (*reserved)(const ikv_policy *p);
    /* Brings `layer` down to its budget. */
    int (*compress)(ikv_policy *p, int layer);
} ikv_policy_ops;

struct ikv_policy {
    ikv_params params;
    ikv_shape shape;       /* layer_count resolved */
    int group;             /* query heads per KV head */
    int capacity;
    const ikv_policy_ops *ops;
    ikv_layer_state *layers; /* [layer_count] */

    /* sequence state */
    int began;
    int n_prompt;
    int n_total;
    int budget;            /* resolved B before per-layer allocation */
    int32_t *appended;     /* [cap] positions in order of append */
    int n_appended;
    int prefill_done;      /* the prompt compression happened */
    int next_compress;     /* n_appended at which the next compression runs */
    float *entropy;        /* [cap] by position, IKV_STATE_INFO, else NULL */
    int *model_budgets;    /* [n_layers] budgets of every layer of the model */

    /* scratch for one compression, sized for capacity */
    ikv_rank *ranks;       /* [cap] */
    float *score;          /* [cap] by slot */
    float *aux;            /* [cap] by slot */
    float *aux2;           /* [cap] by slot */
    uint8_t *mark;         /* [cap] by slot, kept all-zero between uses */
    int32_t *victims;      /* [cap] slots */

    char err[256];
};

/* Records a message on the handle and returns `status`. */
int ikv_fail(ikv_policy *p, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* snprintf into err/errlen, tolerant of NULL; returns status. */
int ikv_set_error(char *err, size_t errlen, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* The ops table of each policy (policy_*.c). */
extern const ikv_policy_ops ikv_full_ops, ikv_random_ops, ikv_streaming_ops,
    ikv_h2o_ops, ikv_tova_ops, ikv_snapkv_ops, ikv_pyramidkv_ops,
    ikv_infokv_ops, ikv_oracle_ops;
const ikv_policy_ops *ikv_ops_for(ikv_policy_kind kind);

/* select.c: reorders ranks so that ranks[0..k) are the k best. */
void ikv_select_top(ikv_rank *ranks, int n, int k);
/* 1 when a ranks before b. */
int ikv_rank_better(const ikv_rank *a, const ikv_rank *b);

/* budget.c: per-layer budgets of the whole model from B (uniform or
 * pyramid) into out[n_layers]; window is the always-kept part. */
int ikv_allocate_budgets(ikv_allocation allocation, int budget, int n_layers,
                         int window, double pyramid_beta, int *out);

/* policy.c helpers shared by the policies */

/* Slot index threshold: a slot is among the `recent` most recent tokens iff
 * its position >= the returned position (INT32_MAX when recent == 0). */
int32_t ikv_recent_threshold(const ikv_policy *p, int recent);

/* Group score of (layer, g) from a per-query-head array [H][cap] into
 * out[slot], with the configured aggregation. */
void ikv_aggregate(const ikv_policy *p, const float *per_head, int g, int n,
                   float *out);

/* Keeps the recent tokens of (layer, g) plus the top (budget - recent) other
 * slots by score[slot]; evicts the rest. */
int ikv_keep_recent_and_top(ikv_policy *p, int layer, int g, int recent,
                            const float *score);

/* Evicts the given slots of (layer, g) (distinct, any order), filling holes
 * from the tail and recording moves and evicted positions. The layer's
 * length is updated by ikv_policy_step() once every KV head is done, so
 * L->n still reads the old length for the other heads. */
void ikv_evict_slots(ikv_policy *p, int layer, int g, const int32_t *slots,
                     int n_slots);

/* H2O's recent window at budget b: b minus the heavy-hitter share. */
int ikv_h2o_recent(const ikv_policy *p, int budget);

/* SnapKV scoring of (layer, g): window attention aggregated over the group,
 * pooled along the keys outside the window, into score[slot]. */
void ikv_snapkv_scores(ikv_policy *p, int layer, int g, float *score);

/* Max/avg pooling of score[] (by slot) along keys in position order over the
 * slots not marked in p->mark; writes back into score[]. */
void ikv_pool_along_keys(ikv_policy *p, int layer, int g, float *score,
                         ikv_pooling pool, int kernel);

/* splitmix64: a small, well-mixed generator for per-(layer, head) streams. */
static inline uint64_t ikv_rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform integer in [0, bound), bound > 0, without modulo bias. */
static inline uint32_t ikv_rng_below(uint64_t *state, uint32_t bound)
{
    uint32_t threshold = (uint32_t)(-bound) % bound;
    for (;;) {
        uint64_t r = ikv_rng_next(state);
        uint64_t m = (uint64_t)(uint32_t)r * bound;
        if ((uint32_t)m >= threshold)
            return (uint32_t)(m >> 32);
    }
}

/* Element-wise row operations over a score row of n slots, the per-step
 * work of accumulating policies (an H2O step at a 2048-slot budget adds
 * 16 layers x 32 heads of rows). Written as blocks of 16 with restrict so
 * that the compiler vectorises them at -O2 (GCC 12 leaves loops of
 * unknown trip count scalar there); each element is computed as the plain
 * loop would, so results do not change. */
static inline void ikv_row_add(float *restrict dst, const float *restrict src, int n)
{
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++)
            dst[i + j] += src[i + j];
    for (; i < n; i++)
        dst[i] += src[i];
}

static inline void ikv_row_max(float *restrict dst, const float *restrict src, int n)
{
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++)
            dst[i + j] = src[i + j] > dst[i + j] ? src[i + j] : dst[i + j];
    for (; i < n; i++)
        dst[i] = src[i] > dst[i] ? src[i] : dst[i];
}

static inline void ikv_row_scale(float *dst, float a, int n)
{
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++)
            dst[i + j] *= a;
    for (; i < n; i++)
        dst[i] *= a;
}

#endif /* IKV_CORE_INTERNAL_H */
