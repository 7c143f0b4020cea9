/*
 * A session: one sequence running through a model, with its KV cache.
 *
 * KV cache layout, per layer l and KV head g, `capacity` slots:
 *   k, v      float [L][G][capacity][d]   keys after RoPE at their own
 *                                         position, values
 *   positions int32 [L][G][capacity]      position held by each slot
 *   length    per (layer, KV head)        slots in use: 0..length-1
 * A query attends to slots 0..length-1 of its KV head, whatever positions
 * they hold, so an eviction policy may compact a cache in any order
 * (ikv_session_apply_moves) and the next tokens see only what it kept.
 * Every KV head of a layer must hold the same count when a forward call
 * starts.
 *
 *   ikv_session *s;
 *   ikv_session_create(&s, model, 4096, 2, err, sizeof err);
 *   ikv_session_prefill(s, prompt, n_prompt);      // positions 0..n-1
 *   int next = argmax(ikv_session_logits(s));
 *   ikv_session_decode(s, next);                   // position n
 *   ikv_session_free(s);
 *
 * Calls return IKV_OK or a negative status (model/status.h) with a line in
 * ikv_session_error(). A failed call leaves the session as it was: every
 * argument is checked and every buffer allocated before a forward call
 * changes anything. A session is used by one thread at a time (its work
 * runs on n_threads OpenMP threads); sessions on one model are
 * independent.
 */
#ifndef IKV_MODEL_SESSION_H
#define IKV_MODEL_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "model/observer.h"

typedef struct ikv_session ikv_session; /* opaque */

/* max_seq: cache capacity in slots per (layer, KV head) (<= 0: the
 * model's max_seq_len). n_threads <= 0: OpenMP's default. */
int ikv_session_create(ikv_session **out, const ikv_model *m, int max_seq, int n_threads,
                       char *err, size_t errlen);
void ikv_session_free(ikv_session *s);

/* Forgets the sequence: empty caches, n_past 0. The observer stays. */
void ikv_session_reset(ikv_session *s);

/* Runs tokens[0..n) at positions n_past..n_past+n-1, causally, batched
 * (matrix-matrix work). Afterwards n_past += n and ikv_session_logits()
 * holds the logits of the last position. */
int ikv_session_prefill(ikv_session *s, const int32_t *tokens, int n);

/* One token at position n_past; then n_past += 1. */
int ikv_session_decode(ikv_session *s, int32_t token);

/* One token at an explicit position `pos`, which must be greater than
 * every cached position; then n_past = pos + 1. Rerunning a sequence with
 * a token left out (Forward Influence) keeps the later positions. */
int ikv_session_decode_at(ikv_session *s, int32_t token, int32_t pos);

/* Forgets positions >= n: only while every cache's slots are still in
 * increasing position order (nothing compacted); IKV_ESTATE otherwise.
 * Then n_past = n. The logits are no longer valid. */
int ikv_session_truncate(ikv_session *s, int n);

/* Makes dst's cache, positions, n_past and logits a copy of src's (same
 * model; dst's capacity must hold every cache): one prefill can serve many
 * runs that then diverge (benchmarks, probes). The observer stays. */
int ikv_session_copy_cache(ikv_session *dst, const ikv_session *src);

/* Logits [V] of the last processed position (NULL before any). */
const float *ikv_session_logits(const ikv_session *s);

/* One more than the last processed position (0 when empty). */
int ikv_session_n_past(const ikv_session *s);

/* Eviction: slot[dst] = slot[src] (keys, values, positions) for each
 * move of one (layer, KV head), then the cache holds new_len slots. The
 * moves are the eviction core's (ikv_policy_moves() in infokv/core.h):
 * every src >= new_len > every dst, new_len <= the current length
 * (checked; IKV_EINVAL otherwise). Lengths are kept per KV head, so a
 * step's moves are applied head by head. */
int ikv_session_apply_moves(ikv_session *s, int layer, int kv_head, const ikv_move *moves,
                            int n_moves, int new_len);

/* Slots in use of (layer, KV head), and the position each holds. */
int ikv_session_cache_len(const ikv_session *s, int layer, int kv_head);
const int32_t *ikv_session_positions(const ikv_session *s, int layer,
                                     int kv_head); /* [cache_len] */

/* Read-only views of a (layer, KV head) cache (tests, capture). */
const float *ikv_session_keys(const ikv_session *s, int layer, int kv_head);   /* [cache_len][d] */
const float *ikv_session_values(const ikv_session *s, int layer, int kv_head); /* [cache_len][d] */

int ikv_session_capacity(const ikv_session *s);
int ikv_session_threads(const ikv_session *s);
const ikv_model *ikv_session_model(const ikv_session *s);

/* Attaches an observer (copied), or detaches with NULL. IKV_ENOMEM if the
 * buffers that attention rows need cannot be allocated. */
int ikv_session_set_observer(ikv_session *s, const ikv_observer *obs);

/* The message of the latest failure ("" if none). */
const char *ikv_session_error(const ikv_session *s);

#endif
