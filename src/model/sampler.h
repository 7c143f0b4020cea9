/*
 * Next-token sampling: greedy (temperature 0), temperature, and top-p
 * (nucleus) sampling, with a seeded generator kept in the handle (no
 * global state: two samplers with the same seed draw the same tokens).
 */
#ifndef IKV_MODEL_SAMPLER_H
#define IKV_MODEL_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

typedef struct ikv_sampler_params {
    float temperature; /* 0: greedy (argmax); else logits / temperature */
    float top_p;       /* in (0, 1): nucleus sampling; <= 0 or >= 1: whole distribution */
    uint64_t seed;
} ikv_sampler_params;

/* temperature 1, top_p 0.9, seed 0 (llama2.c run's defaults, bar the seed). */
ikv_sampler_params ikv_sampler_default_params(void);

typedef struct ikv_sampler ikv_sampler; /* opaque */

/* IKV_EINVAL for a negative or non-finite temperature or n_vocab < 1. */
int ikv_sampler_create(ikv_sampler **out, int n_vocab, const ikv_sampler_params *params, char *err,
                       size_t errlen);
void ikv_sampler_free(ikv_sampler *s);

/* Draws a token id from logits [n_vocab] (not modified). */
int ikv_sampler_sample(ikv_sampler *s, const float *logits);

/* The index of the largest value (the first one on ties). */
int ikv_argmax(const float *x, int n);

#endif
