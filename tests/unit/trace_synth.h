/*
 * Synthetic, self-consistent trace rows for tests, the make_trace helper
 * and the benchmark: q/k/v and the other inputs are a deterministic hash
 * of (seed, signal, indices), so any value can be regenerated to check a
 * read; attention (probs, lse, out) is computed from them exactly as the
 * schema defines it (causal softmax of q.k/sqrt(d), GQA kv_head = h/(H/G)),
 * and the logit summaries from hashed logits.
 */
#ifndef IKV_TESTS_TRACE_SYNTH_H
#define IKV_TESTS_TRACE_SYNTH_H

#include <stdint.h>

#include "trace/trace.h"

/* Signal ids of the hash (the `kind` argument of ikv_synth_value). */
enum {
    SYN_Q = 1, SYN_K, SYN_V, SYN_EVOL, SYN_STATES, SYN_LOGITS, SYN_TOKEN
};

/* Uniform in [-1, 1), exactly representable in float32. */
float ikv_synth_value(uint32_t seed, int kind, int64_t a, int64_t b, int64_t c, int64_t d);

typedef struct ikv_synth {
    ikv_trace_meta meta;
    int n_slots;        /* L' */
    int layers[64];     /* [n_slots] model layer of each slot */
    int T;              /* positions the arrays below are sized for */
    int topk, entropy_k;
    uint32_t seed;
    int attention;      /* 1: probs/lse/out from q/k/v; 0: hashed (fast) */
    float q_scale;      /* sharpens attention (3) */
    float *q;           /* [T][L'][H][d] */
    float *k, *v;       /* [T][L'][G][d] */
    /* row buffers (valid until the next ikv_synth_row) */
    float *lse;         /* [L'][H] */
    float *out;         /* [L'][H][d] */
    float *probs;       /* [L'][H][T] (t+1 used) */
    float *evol;        /* [L'] */
    float *states;      /* [L'+1][D] */
    float *logits;      /* [V] */
    float *prev_logits; /* [V] */
    int32_t *topk_ids;  /* [K] */
    float *topk_lp;     /* [K] */
    float *scratch;     /* [V] */
    int32_t *order;     /* [V] */
} ikv_synth;

/* A small Llama-like shape: stories260K's (L=5, H=8, G=4, d=8, D=64, V=512). */
ikv_trace_meta ikv_synth_small_meta(void);

/* layers == NULL: all. Returns 0 or -1 (allocation). */
int ikv_synth_init(ikv_synth *s, const ikv_trace_meta *meta, const int *layers, int n_slots,
                   int T, int topk, int entropy_k, uint32_t seed, int attention);
void ikv_synth_free(ikv_synth *s);

/* Fills row (pointers into s) for position t < T. */
void ikv_synth_row(ikv_synth *s, int t, ikv_trace_row *row);

#endif
