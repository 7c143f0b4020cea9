/*
 * Synthetic models: real shapes with deterministic pseudo-random weights,
 * built in memory, for benchmarks and tests. Each row's values depend only
 * on (seed, tensor, row), so the result is the same for any thread count.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/half.h"
#include "model/model_internal.h"

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Fills an [rows][cols] matrix of `type` with uniform values of variance
 * 1/cols. `tensor` distinguishes the matrices of one model. */
static int fill_matrix(ikv_model *m, ikv_matrix *w, ikv_wtype type, int rows, int cols,
                       uint64_t seed, uint64_t tensor)
{
    w->type = type;
    w->rows = rows;
    w->cols = cols;
    w->row_bytes = ikv_wtype_row_bytes(type, cols);
    uint8_t *data = ikv_model_alloc_uninit(m, (size_t)rows * w->row_bytes); /* every byte set below */
    if (!data)
        return IKV_ENOMEM;
    w->data = data;
    /* uniform in [-a, a) has variance a^2 / 3 = 1 / cols */
    const float amplitude = sqrtf(3.0f / (float)cols);
    int failed = 0;
#pragma omp parallel
    {
        float *row = malloc((size_t)cols * sizeof *row);
        if (!row) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int r = 0; r < rows; r++) {
            if (!row)
                continue;
            uint64_t state = seed ^ (tensor << 40) ^ ((uint64_t)r * 0x2545f4914f6cdd1dull);
            uint64_t x = splitmix64(&state) | 1;
            for (int c = 0; c < cols; c += 2) {
                /* xorshift64*: two 23-bit uniforms per draw, as floats in [1, 2) */
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                uint64_t bits = x * 0x2545f4914f6cdd1dull;
                float u0 = ikv_bits_to_f32(0x3f800000u | (uint32_t)(bits >> 41));
                float u1 = ikv_bits_to_f32(0x3f800000u | ((uint32_t)bits >> 9));
                row[c] = amplitude * (2.0f * u0 - 3.0f);
                if (c + 1 < cols)
                    row[c + 1] = amplitude * (2.0f * u1 - 3.0f);
            }
            ikv_wtype_from_f32(type, row, cols, data + (size_t)r * w->row_bytes);
        }
        free(row);
    }
    return failed ? IKV_ENOMEM : IKV_OK;
}

static const float *ones(ikv_model *m, int n)
{
    float *v = ikv_model_alloc(m, (size_t)n * sizeof *v);
    if (v)
        for (int i = 0; i < n; i++)
            v[i] = 1.0f;
    return v;
}

static int build(ikv_model *m, const ikv_model_shape *s, ikv_wtype type, uint64_t seed, char *err,
                 size_t errlen)
{
    ikv_model_details *info = &m->info;
    if ((unsigned)type >= IKV_WTYPE_COUNT)
        return ikv_model_fail(err, errlen, IKV_EINVAL, "synthetic model", "bad weight type %d", (int)type);
    info->arch = "llama";
    info->format = "synthetic";
    info->dim = s->dim;
    info->hidden_dim = s->hidden_dim;
    info->n_layers = s->n_layers;
    info->n_heads = s->n_heads;
    info->n_kv_heads = s->n_kv_heads;
    info->head_dim = s->head_dim;
    info->vocab_size = s->vocab_size;
    info->max_seq_len = s->max_seq_len;
    info->rope_dim = s->head_dim;
    info->rope_mode = IKV_ROPE_NORM;
    info->rope_theta = s->rope_theta;
    info->norm_eps = s->norm_eps;
    info->tied_classifier = s->tied_classifier != 0;
    snprintf(m->name, sizeof m->name, "synthetic-%dx%d-%s-seed%llu", s->n_layers, s->dim,
             ikv_wtype_name(type), (unsigned long long)seed);
    if (s->dim < 1 || s->hidden_dim < 1 || s->n_layers < 1 || s->n_heads < 1 || s->n_kv_heads < 1 ||
        s->head_dim < 2 || s->vocab_size < 1)
        return ikv_model_fail(err, errlen, IKV_EINVAL, "synthetic model", "every size must be positive");
    int block = ikv_wtype_block_size(type);
    int qd = s->n_heads * s->head_dim, kvd = s->n_kv_heads * s->head_dim;
    if (s->dim % block || s->hidden_dim % block || qd % block)
        return ikv_model_fail(err, errlen, IKV_EINVAL, "synthetic model",
                              "dim, hidden_dim and n_heads * head_dim must be multiples of %d for %s",
                              block, ikv_wtype_name(type));
    /* the shape checks of ikv_model_finish() run later; guard the sizes used now */
    if (s->dim > (1 << 17) || s->hidden_dim > (1 << 20) || s->n_layers > 4096 || qd > (1 << 17) ||
        kvd > (1 << 17) || s->vocab_size > (1 << 24))
        return ikv_model_fail(err, errlen, IKV_EINVAL, "synthetic model", "shape too large");

    m->layers = ikv_model_alloc(m, (size_t)s->n_layers * sizeof *m->layers);
    const float *ones_d = ones(m, s->dim);
    if (!m->layers || !ones_d)
        return ikv_model_fail(err, errlen, IKV_ENOMEM, "synthetic model", "out of memory");
    uint64_t tensor = 1;
    int rc = fill_matrix(m, &m->tok_embd, type, s->vocab_size, s->dim, seed, tensor++);
    if (!rc && !info->tied_classifier)
        rc = fill_matrix(m, &m->output, type, s->vocab_size, s->dim, seed, tensor++);
    if (!rc && info->tied_classifier)
        m->output = m->tok_embd;
    m->final_norm = ones_d;
    for (int l = 0; l < s->n_layers && !rc; l++) {
        ikv_layer_weights *lw = &m->layers[l];
        lw->attn_norm = ones_d;
        lw->ffn_norm = ones_d;
        tensor = 16 + 16 * (uint64_t)l;
        if (!rc) rc = fill_matrix(m, &lw->wq, type, qd, s->dim, seed, tensor++);
        if (!rc) rc = fill_matrix(m, &lw->wk, type, kvd, s->dim, seed, tensor++);
        if (!rc) rc = fill_matrix(m, &lw->wv, type, kvd, s->dim, seed, tensor++);
        if (!rc) rc = fill_matrix(m, &lw->wo, type, s->dim, qd, seed, tensor++);
        if (!rc) rc = fill_matrix(m, &lw->w_gate, type, s->hidden_dim, s->dim, seed, tensor++);
        if (!rc) rc = fill_matrix(m, &lw->w_up, type, s->hidden_dim, s->dim, seed, tensor++);
        if (!rc) rc = fill_matrix(m, &lw->w_down, type, s->dim, s->hidden_dim, seed, tensor++);
    }
    if (rc)
        return ikv_model_fail(err, errlen, rc, "synthetic model", "out of memory for the weights");
    return IKV_OK;
}

int ikv_model_synthetic(ikv_model **out, const ikv_model_shape *shape, ikv_wtype weight_type,
                        uint64_t seed, char *err, size_t errlen)
{
    *out = NULL;
    ikv_model *m = ikv_model_new();
    if (!m)
        return ikv_model_fail(err, errlen, IKV_ENOMEM, "synthetic model", "out of memory");
    int rc = build(m, shape, weight_type, seed, err, errlen);
    if (!rc)
        rc = ikv_model_finish(m, err, errlen);
    if (rc) {
        ikv_model_free(m);
        return rc;
    }
    *out = m;
    return IKV_OK;
}
