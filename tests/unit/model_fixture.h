/*
 * Tiny random Llama-family models for the engine's tests: written as GGUF
 * files through gguf_writer, and run by a plain reference forward pass
 * (double precision, naive loops, no cache tricks) on the weights exactly
 * as the file stores them, or on the original floats before encoding.
 */
#ifndef IKV_TEST_MODEL_FIXTURE_H
#define IKV_TEST_MODEL_FIXTURE_H

#include <stdint.h>

#include "gguf_writer.h"

enum { REF_SCALING_NONE = 0, REF_SCALING_LINEAR, REF_SCALING_LLAMA3, REF_SCALING_FREQS };

typedef struct ref_options {
    const char *arch;   /* "llama", "mistral", "qwen2" */
    uint32_t type;      /* GW_F32, GW_F16, GW_BF16, GW_Q8_0: every matrix */
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, context;
    int rope_dim;       /* 0: head_dim */
    float rope_theta;
    int tied;           /* no output.weight */
    int bias;           /* q/k/v biases */
    int scaling;        /* REF_SCALING_* */
    float factor, low_freq_factor, high_freq_factor;
    int original_context;
    int tokenizer;      /* write an SPM vocabulary (vocab_size >= 259) */
    uint32_t version;   /* GGUF version (3) */
    uint32_t alignment; /* 0: default 32 */
    uint64_t seed;
} ref_options;

/* Defaults: llama, F32, dim 64, hidden 96, 2 layers, 4 heads, 2 KV heads,
 * vocab 80, context 128, theta 10000, seed 1. */
ref_options ref_default_options(void);

typedef struct ref_layer {
    float *attn_norm, *ffn_norm;             /* [D] */
    float *wq, *wk, *wv, *wo;                /* [H*d][D], [G*d][D], [G*d][D], [D][H*d] */
    float *gate, *up, *down;                 /* [F][D], [F][D], [D][F] */
    float *bq, *bk, *bv;                     /* or NULL */
} ref_layer;

typedef struct ref_model {
    ref_options o;
    int D, F, L, H, G, d, V, rope_dim;
    int neox;
    float eps;
    float *embd, *out, *final_norm;          /* out == embd when tied */
    float *rope_factors;                     /* [rope_dim/2] or NULL */
    ref_layer *layers;
    double *inv_freq;                        /* [rope_dim/2] */
    int q8_activations;                      /* quantise inputs of the matrices
                                                as the engine's Q8_0 products do
                                                (stored Q8_0 models only) */
} ref_model;

/* Builds a model and writes it to path. stored: weights as the file holds
 * them (decoded); original: the floats before encoding. Either may be
 * NULL. Returns 0, or -1 if the file cannot be written. */
int ref_build(const ref_options *o, const char *path, ref_model *stored, ref_model *original);
/* The same model as a writer (not yet written), for corruption tests. */
gguf_writer *ref_writer(const ref_options *o, ref_model *stored);
void ref_free(ref_model *m);

/* Reference state: a growing sequence with per-(layer, KV head) slot
 * visibility, to mirror evicted caches. */
typedef struct ref_state {
    const ref_model *m;
    int cap, n;              /* slots allocated, slots used */
    double *K, *V;           /* [L][G][cap][d] keys after RoPE, values */
    int32_t *pos;            /* [cap] position of each slot */
    unsigned char *visible;  /* [L][G][cap] */
} ref_state;

void ref_state_init(ref_state *st, const ref_model *m, int cap);
void ref_state_free(ref_state *st);
/* Runs one token at `pos` (it sees the visible slots and itself), appends
 * its keys/values, writes logits [V]. */
void ref_step(ref_state *st, int token, int pos, double *logits);

/* Largest |a - b| over n, and largest |b|. */
double ref_max_diff(const float *a, const double *b, int n, double *max_ref);

/* A temporary file path under $TMPDIR (caller removes it). */
void ref_temp_path(char *buf, size_t len, const char *tag);

#endif
