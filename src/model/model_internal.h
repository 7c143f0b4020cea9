/*
 * The model struct, shared by the loaders (llama2c.c, gguf_model.c,
 * synthetic.c), model.c and the forward pass. Not a public header.
 */
#ifndef IKV_MODEL_MODEL_INTERNAL_H
#define IKV_MODEL_MODEL_INTERNAL_H

#include <stdarg.h>

#include "model/kernels.h"
#include "model/mapfile.h"
#include "model/model.h"

typedef struct ikv_layer_weights {
    const float *attn_norm; /* [D] */
    const float *ffn_norm;  /* [D] */
    ikv_matrix wq;          /* [H*d][D] */
    ikv_matrix wk;          /* [G*d][D] */
    ikv_matrix wv;          /* [G*d][D] */
    ikv_matrix wo;          /* [D][H*d] */
    ikv_matrix w_gate;      /* [F][D] */
    ikv_matrix w_up;        /* [F][D] */
    ikv_matrix w_down;      /* [D][F] */
    const float *bq;        /* [H*d] or NULL */
    const float *bk;        /* [G*d] or NULL */
    const float *bv;        /* [G*d] or NULL */
} ikv_layer_weights;

struct ikv_model {
    ikv_model_details info;
    ikv_matrix tok_embd;       /* [V][D] */
    ikv_matrix output;         /* [V][D]; the same bytes as tok_embd if tied */
    const float *final_norm;   /* [D] */
    ikv_layer_weights *layers; /* [L] */
    const float *rope_factors; /* [rope_dim/2] divisors (FREQ_FACTORS scaling) or NULL */
    double *inv_freq;          /* [rope_dim/2] radians per position, scaling applied */
    ikv_tokenizer *tokenizer;
    ikv_mapfile map;           /* the model file, if any */
    void **owned;              /* buffers freed with the model */
    int n_owned, cap_owned;
    char *path;
    char name[256];
    char weight_type[16];
    char sha256[65];
};

/* Allocates memory released by ikv_model_free (zeroed, 64-byte aligned). */
void *ikv_model_alloc(ikv_model *m, size_t bytes);
/* The same, not zeroed: for buffers the caller fills entirely. */
void *ikv_model_alloc_uninit(ikv_model *m, size_t bytes);

/* A new, empty model (info fields -1/0) or NULL. */
ikv_model *ikv_model_new(void);

/* Checks the shape in m->info, computes RoPE frequencies, the weight
 * statistics and (for small files) the SHA-256. Called by every loader
 * once the weights are in place. */
int ikv_model_finish(ikv_model *m, char *err, size_t errlen);

/* Formats "PATH: message" into err and returns status. */
int ikv_model_fail(char *err, size_t errlen, int status, const char *path, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

/* Loaders behind ikv_model_load(); m->map holds the mapped file. */
int ikv_load_llama2c(ikv_model *m, const char *tokenizer_path, char *err, size_t errlen);
int ikv_load_gguf(ikv_model *m, char *err, size_t errlen);

#endif
