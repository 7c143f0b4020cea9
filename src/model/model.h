/*
 * A Llama-family model: weights (memory-mapped from a llama2.c checkpoint
 * or a GGUF file, or built in memory for benchmarks), its shape and its
 * tokenizer. Read-only once loaded: any number of sessions (session.h)
 * may run on one model at the same time.
 *
 *   ikv_model *m;
 *   char err[256];
 *   if (ikv_model_load(&m, "model.gguf", NULL, err, sizeof err) != 0)
 *       fprintf(stderr, "%s\n", err);
 *   const ikv_model_details *info = ikv_model_info(m);
 *   ...
 *   ikv_model_free(m);
 */
#ifndef IKV_MODEL_MODEL_H
#define IKV_MODEL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "model/status.h"
#include "model/tokenizer.h"
#include "model/wtype.h"

typedef struct ikv_model ikv_model; /* opaque */

/* How RoPE pairs the dimensions of a head. */
typedef enum ikv_rope_mode {
    IKV_ROPE_NORM = 0, /* adjacent pairs (2i, 2i+1): llama2.c, GGUF llama/mistral */
    IKV_ROPE_NEOX = 1  /* halves (i, i + rope_dim/2): GGUF qwen2 */
} ikv_rope_mode;

/* Frequency scaling for contexts longer than the training one. */
typedef enum ikv_rope_scaling_type {
    IKV_ROPE_SCALING_NONE = 0,
    IKV_ROPE_SCALING_LINEAR, /* every frequency divided by factor */
    IKV_ROPE_SCALING_LLAMA3, /* Llama 3.1: low frequencies divided by factor,
                                high ones kept, a smooth ramp between */
    IKV_ROPE_SCALING_FREQ_FACTORS /* per-frequency divisors from the file's
                                     rope_freqs.weight tensor */
} ikv_rope_scaling_type;

typedef struct ikv_rope_scaling {
    ikv_rope_scaling_type type;
    float factor;           /* LINEAR, LLAMA3 */
    float low_freq_factor;  /* LLAMA3 (default 1) */
    float high_freq_factor; /* LLAMA3 (default 4) */
    int original_context;   /* LLAMA3: training context (default 8192) */
} ikv_rope_scaling;

typedef struct ikv_model_details {
    const char *name;        /* general.name, else the file name, or "synthetic" */
    const char *arch;        /* "llama", "mistral", "qwen2" */
    const char *format;      /* "llama2c", "gguf", "synthetic" */
    int dim;                 /* D: residual stream width */
    int hidden_dim;          /* F: feed-forward width */
    int n_layers;            /* L */
    int n_heads;             /* H: query heads */
    int n_kv_heads;          /* G: key/value heads (H % G == 0) */
    int head_dim;            /* d */
    int vocab_size;          /* V */
    int max_seq_len;         /* training context from the file */
    int rope_dim;            /* dimensions of a head that RoPE rotates (<= d) */
    ikv_rope_mode rope_mode;
    float rope_theta;
    ikv_rope_scaling rope_scaling;
    float norm_eps;          /* RMSNorm epsilon */
    int has_qkv_bias;        /* qwen2: biases on q, k, v */
    int tied_classifier;     /* output layer shares the token embeddings */
    int bos_id;              /* -1 if none */
    int eos_id;              /* -1 if none */
    const char *weight_type; /* type holding most of the weight bytes, e.g. "Q8_0" */
    uint64_t weight_bytes;   /* bytes of all weights as stored */
    uint64_t file_bytes;     /* size of the model file (0 for synthetic) */
    const char *sha256;      /* hex digest of the file once known, else "";
                                see ikv_model_sha256() */
} ikv_model_details;

/* Loads a model, choosing the format by the file's first bytes (GGUF
 * magic, else a llama2.c checkpoint). tokenizer_path is for llama2.c
 * checkpoints (NULL: "tokenizer.bin" beside the model, if it exists; a
 * model without a tokenizer still runs on token ids). GGUF files carry
 * their tokenizer in their metadata. Every size in the file is checked
 * before use; errors are one line naming the file and the problem.
 * Returns IKV_OK, or IKV_EIO / IKV_EFORMAT / IKV_EUNSUPPORTED /
 * IKV_ENOMEM with *out NULL. */
int ikv_model_load(ikv_model **out, const char *path, const char *tokenizer_path,
                   char *err, size_t errlen);

/* Shape of a synthetic model. */
typedef struct ikv_model_shape {
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, head_dim, vocab_size;
    int max_seq_len;
    float rope_theta;
    float norm_eps;
    int tied_classifier; /* 1: the classifier is the token embedding matrix */
} ikv_model_shape;

/* Named shapes: "tiny" (a few layers of width 64), "llama-3.2-1b",
 * "llama-3.1-8b". IKV_EINVAL for an unknown name. */
int ikv_model_shape_preset(const char *name, ikv_model_shape *shape);

/* A model of any shape with deterministic pseudo-random weights built in
 * memory (no file, no tokenizer): uniform with the variance of
 * N(0, 1/fan_in), so activations keep a sane scale through the layers;
 * norm weights are 1. The same shape, type and seed always give the same
 * weights, whatever the number of threads (OpenMP's default count
 * fills them). */
int ikv_model_synthetic(ikv_model **out, const ikv_model_shape *shape, ikv_wtype weight_type,
                        uint64_t seed, char *err, size_t errlen);

const ikv_model_details *ikv_model_info(const ikv_model *m);

/* SHA-256 of the model file as hex, computed on the first call for big
 * files (small ones, up to 64 MiB, are hashed at load); "" for synthetic
 * models. The first call writes into the model: make it before sharing
 * the model between threads. */
const char *ikv_model_sha256(ikv_model *m);

/* The model's tokenizer, or NULL when it has none. Owned by the model. */
const ikv_tokenizer *ikv_model_tokenizer(const ikv_model *m);

void ikv_model_free(ikv_model *m);

#endif
