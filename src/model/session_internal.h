/*
 * The session struct, shared by session.c (life cycle, cache bookkeeping)
 * and forward.c (the forward pass). Not a public header.
 */
#ifndef IKV_MODEL_SESSION_INTERNAL_H
#define IKV_MODEL_SESSION_INTERNAL_H

#include "model/model_internal.h"
#include "model/session.h"

/* Queries of one head whose prefill attention is computed together, for
 * heads of at most IKV_TILE_MAX_HEAD. Tiles pay off where a key's dot
 * product is too short to amortise a call and a horizontal sum (head size
 * 8: 2x faster prefill); at head size 64 their [d][16] accumulators spill
 * and the per-query path, whose accumulators stay in registers, was 1.7x
 * faster. */
#define IKV_QUERY_TILE 16
#define IKV_TILE_MAX_HEAD 16

/* Tokens a prefill processes at once: longer prompts go in pieces. */
#define IKV_PREFILL_BATCH 256
/* Prompt positions whose logits are computed together for on_logits. */
#define IKV_LOGIT_ROWS 32
/* Memory for attention rows kept for on_attention (bytes). */
#define IKV_PROBS_BYTES (32u << 20)

struct ikv_session {
    const ikv_model *m;
    int capacity;  /* slots per (layer, KV head) */
    int n_threads;
    int L, H, G, d, D, F, V, qd, kvd; /* shape; qd = H*d, kvd = G*d */

    float *k_cache;     /* [L][G][capacity][d] */
    float *v_cache;     /* [L][G][capacity][d] */
    int32_t *positions; /* [L][G][capacity] */
    int *len;           /* [L][G] slots in use */
    int n_past;         /* one more than the last processed position */
    int has_logits;
    float *logits;      /* [V] */

    /* per-batch activations, for up to `batch` tokens */
    int batch;
    int32_t *pos;       /* [batch] positions of the batch */
    float *x;           /* [batch][D] residual stream */
    float *xb;          /* [batch][D] normalised input / projection output */
    float *q;           /* [batch][H*d] */
    float *k;           /* [batch][G*d] */
    float *v;           /* [batch][G*d] */
    float *att;         /* [batch][H*d] attention output */
    float *hb;          /* [batch][F] */
    float *hb2;         /* [batch][F] */
    float *rope_cos;    /* [batch][rope_dim/2] */
    float *rope_sin;    /* [batch][rope_dim/2] */
    float *scores;      /* [n_threads][capacity] attention rows without observer */
    float *tiles;       /* [n_threads][(capacity + 2 d) * IKV_QUERY_TILE]: prefill
                           attention by tiles of queries (forward.c); NULL
                           for heads over IKV_TILE_MAX_HEAD */
    ikv_workspace ws;

    /* observer and what only it needs (allocated when attached) */
    ikv_observer obs;
    int has_obs;
    float *before;      /* [batch][D] residual entering the layer */
    float *probs;       /* [probs_rows][H][capacity] attention rows reported */
    int probs_rows;
    float *logit_rows;  /* [IKV_LOGIT_ROWS][V] prompt logits reported */

    char err[256];
};

/* Records the message and returns status. */
int ikv_session_fail(ikv_session *s, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Runs n tokens at the given positions (increasing, above every cached
 * position; n <= batch; capacity checked by the caller). */
void ikv_forward(ikv_session *s, const int32_t *tokens, const int32_t *positions, int n);

#endif
