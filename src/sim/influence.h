/*
 * Trace Forward Influence (open loop, first order): how much removing key j
 * would change the attention output of a later query t, from one layer and
 * head of a full-cache trace. With a = p_full(t, j) and o_t the output,
 * removing j renormalises the rest: o' - o_t = a (o_t - v_j) / (1 - a), so
 *   FI(t, j) = a / (1 - a) * |v_j - o_t| / |o_t|
 * (relative, like the output error). Reported per token set and distance
 * bucket b = floor(log2(t - j)): 1, 2-3, 4-7, ...
 */
#ifndef IKV_SIM_INFLUENCE_H
#define IKV_SIM_INFLUENCE_H

#include <stdint.h>

#include "sim/reference.h"

#define IKV_FI_BUCKETS 24

typedef struct ikv_fi_acc {
    double sum[IKV_FI_BUCKETS];
    long n[IKV_FI_BUCKETS];
} ikv_fi_acc;

/* Bucket of a distance >= 1. */
int ikv_fi_bucket(int distance);

/* Adds FI(t, j) for every token pos[i] (seen by the query heads of KV head
 * kv[i], or by every head when kv is NULL or kv[i] < 0) and later queries
 * t. Buckets with more than `per_bucket` queries are sampled at evenly
 * spaced distances (0 = every query). */
void ikv_fi_accumulate(const ikv_sim_layer *layer, const ikv_sim_reference *ref,
                       const int32_t *pos, const int32_t *kv, int n, int per_bucket,
                       ikv_fi_acc *acc);

/* out[t] += weight * (mean over the layer's query heads of FI(t, j)) for
 * every later query t < T: the first-order estimate compared with exact
 * influence probes. */
void ikv_fi_row(const ikv_sim_layer *layer, const ikv_sim_reference *ref, int32_t j, double weight,
                double *out /* [T] */);

/* Token sets, written to out (at most n, count returned). Only tokens with
 * at least one later query (positions < T - 1) qualify. */

/* Highest attention received, summed over the layer's heads. */
int ikv_fi_top_attention(const ikv_sim_reference *ref, int T, int n, int32_t *out);
/* Highest predictive entropy of the distribution that produced them
 * (entropy[p - 1]; position 0 never qualifies). */
int ikv_fi_top_entropy(const float *entropy /* [T] */, int T, int n, int32_t *out);
/* Uniform sample without replacement, seeded. */
int ikv_fi_random(int T, int n, uint64_t seed, int32_t *out);

#endif
