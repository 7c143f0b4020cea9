/*
 * Attention arithmetic shared by the simulator's reference pass and its
 * replays, so that "full cache" and "kept keys" are computed by the same
 * code in the same order: keeping every key reproduces the reference
 * exactly (recall 1, output error 0).
 *
 * Keys are used transposed, kt[j][slot] with row stride ld, so a query's
 * scores are a sum of d scaled rows (vectorised over keys, no horizontal
 * reductions); the queries of a GQA group share each loaded row. Values
 * are rows of a KV head's [T][d] array selected through position lists.
 */
#ifndef IKV_SIM_ATTENTION_H
#define IKV_SIM_ATTENTION_H

#include <stddef.h>
#include <stdint.h>

/* Most queries scored together (a GQA group up to this size is one pass). */
#define IKV_ATTN_MAX_GROUP 16

/* Keys scored per block: kt rows must be readable (and finite) up to n
 * rounded up to a multiple of this, i.e. ld >= ikv_attn_ld(n). */
#define IKV_ATTN_KEY_BLOCK 32
#define ikv_attn_ld(n) ((((size_t)(n)) + IKV_ATTN_KEY_BLOCK - 1) / IKV_ATTN_KEY_BLOCK * IKV_ATTN_KEY_BLOCK)

/* out[qi * out_stride + i] = scale * q[qi] . K(slot i) for i < n, with
 * K(slot i) = column i of kt [d][ld], for nq <= IKV_ATTN_MAX_GROUP queries.
 * Reads kt columns up to ikv_attn_ld(n) (padding), writes only i < n. */
void ikv_attn_scores(const float *const *q, int nq, const float *kt /* [d][ld] */,
                     size_t ld, int n, int d, float scale, float *out, size_t out_stride);

/* exp(x) elementwise, in place: a vectorisable polynomial, relative error
 * below 2e-7 over the float range, 0 below -87.3 (e^-87.3 ~ 1e-38). */
void ikv_attn_exp(float *x, int n);

/* x becomes softmax(x); returns log-sum-exp of the original x. */
float ikv_attn_softmax(float *x, int n);

/* probs[i] = exp(scores[i] - lse); may alias. */
void ikv_attn_probs(const float *scores, int n, float lse, float *probs);

/* out[qi][:] = sum_i p[qi * p_stride + i] * V[pos[i]][:] for nq queries. */
void ikv_attn_mix(const float *p, size_t p_stride, int nq, const float *values /* [T][d] */,
                  const int32_t *pos /* [n] */, int n, int d, float *out /* [nq][d] */);

/* |a - b| / |b| (0 when both are zero, |a| when b is zero). */
float ikv_attn_rel_error(const float *a, const float *b, int d);

/* kt[j][t] = k[t][j]: a KV head's keys [T][d] transposed into [d][ld]. */
void ikv_attn_transpose(const float *k /* [T][d] */, int T, int d, float *kt, size_t ld);

#endif
