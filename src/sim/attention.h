/*
 * Attention arithmetic shared by the simulator's reference pass and its
 * replays, so that "full cache" and "kept keys" are computed by the same
 * code in the same order: keeping every key reproduces the reference
 * exactly (recall 1, output error 0).
 *
 * Keys and values are rows of a KV head's [T][d] arrays selected through
 * an index list (the positions a cache holds, in slot order).
 */
#ifndef IKV_SIM_ATTENTION_H
#define IKV_SIM_ATTENTION_H

#include <stddef.h>
#include <stdint.h>

/* scores[i] = scale * q . K[idx[i]] for i < n. */
void ikv_attn_scores(const float *q /* [d] */, const float *keys /* [T][d] */,
                     const int32_t *idx /* [n] */, int n, int d, float scale,
                     float *scores /* [n] */);

/* Log-sum-exp of scores[0..n). */
float ikv_attn_logsumexp(const float *scores, int n);

/* probs[i] = exp(scores[i] - lse); may alias scores. */
void ikv_attn_probs(const float *scores, int n, float lse, float *probs);

/* out = sum_i probs[i] * V[idx[i]]. */
void ikv_attn_mix(const float *probs /* [n] */, const float *values /* [T][d] */,
                  const int32_t *idx /* [n] */, int n, int d, float *out /* [d] */);

/* |a - b| / |b| (0 when both are zero, |a| when b is zero). */
float ikv_attn_rel_error(const float *a, const float *b, int d);

#endif
