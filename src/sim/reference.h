/*
 * One layer of a trace as the simulator uses it, and the reference
 * quantities of the full cache computed from it in one pass.
 */
#ifndef IKV_SIM_REFERENCE_H
#define IKV_SIM_REFERENCE_H

#include <stdint.h>

/* One layer's tensors, float32, owned by the caller. */
typedef struct ikv_sim_layer {
    int layer;              /* model layer index */
    int n_layers;           /* layers of the model (pyramid allocation) */
    int H, G, d;            /* query heads, KV heads, head dim */
    int T;                  /* positions */
    int n_prompt;           /* positions 0..n_prompt-1 are the prompt */
    const float *q;         /* [H][T][d] queries after RoPE */
    const float *k;         /* [G][T][d] keys after RoPE */
    const float *v;         /* [G][T][d] values */
    const float *evolution; /* [T] 1 - cos(residual before, after), or NULL */
} ikv_sim_layer;

/* Full-cache reference of a layer. */
typedef struct ikv_sim_reference {
    int H, G, T, d;
    size_t ld;       /* row stride of kt: T rounded up to the key block */
    float *kt;       /* [G][d][ld] keys transposed (for the attention kernels) */
    float *lse;      /* [H][T] log-sum-exp of query t's scores over keys 0..t */
    float *out;      /* [H][T][d] attention output of query t, full cache */
    float *out_norm; /* [H][T] |out| of query t (Forward Influence divides by it) */
    float *future;   /* [H][T] attention key j receives from queries t >= n_prompt */
    float *received; /* [H][T] attention key j receives from every query */
} ikv_sim_reference;

/* Allocates the arrays (0 or -1 on allocation failure). */
int ikv_sim_reference_alloc(ikv_sim_reference *ref, int H, int G, int T, int d);
void ikv_sim_reference_free(ikv_sim_reference *ref);

/* The full pass: O(T^2 d) per head, heads spread over OpenMP threads.
 * Returns 0, or -1 when scratch memory could not be allocated. */
int ikv_sim_reference_compute(const ikv_sim_layer *layer, ikv_sim_reference *ref);

/* Bytes the reference of a layer takes. */
uint64_t ikv_sim_reference_bytes(int H, int G, int T, int d);

#endif
