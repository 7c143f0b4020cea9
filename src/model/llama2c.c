/*
 * llama2.c checkpoints ("legacy" export, version 0): seven int32
 * (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
 * a negative vocab_size means the classifier is stored after the rest),
 * then float32 weights in run.c's order. Weights are used in place from
 * the mapped file.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "model/model_internal.h"

#define HEADER_BYTES 28

static ikv_matrix f32_matrix(const float *data, int rows, int cols)
{
    ikv_matrix w = {IKV_WTYPE_F32, (const uint8_t *)data, rows, cols, (size_t)cols * sizeof(float)};
    return w;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int load_tokenizer(ikv_model *m, const char *tokenizer_path, char *err, size_t errlen)
{
    char beside[4096];
    if (!tokenizer_path) {
        const char *slash = strrchr(m->path, '/');
        int dir_len = slash ? (int)(slash - m->path + 1) : 0;
        if (snprintf(beside, sizeof beside, "%.*stokenizer.bin", dir_len, m->path) >= (int)sizeof beside)
            return IKV_OK;
        if (!file_exists(beside))
            return IKV_OK; /* runs on token ids only */
        tokenizer_path = beside;
    }
    char msg[512];
    int rc = ikv_tokenizer_load_llama2c(&m->tokenizer, tokenizer_path, m->info.vocab_size, msg, sizeof msg);
    if (rc)
        return ikv_model_fail(err, errlen, rc < 0 ? rc : IKV_EFORMAT, NULL, "%s", msg);
    return IKV_OK;
}

int ikv_load_llama2c(ikv_model *m, const char *tokenizer_path, char *err, size_t errlen)
{
    const char *path = m->path;
    const uint8_t *data = m->map.data;
    size_t size = m->map.size;
    if (size >= 4 && memcmp(data, "ak42", 4) == 0)
        return ikv_model_fail(err, errlen, IKV_EUNSUPPORTED, path,
                              "llama2.c version 1/2 exports (magic \"ak42\") are not supported; "
                              "export with --version 0 (legacy)");
    if (size < HEADER_BYTES)
        return ikv_model_fail(err, errlen, IKV_EFORMAT, path,
                              "not a GGUF file, and too small (%zu bytes) for a llama2.c checkpoint", size);
    int32_t h[7];
    memcpy(h, data, sizeof h);
    /* Range checks first, so that the size arithmetic below cannot
     * overflow (every factor is bounded). */
    static const char *names[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads",
                                   "vocab_size", "seq_len"};
    static const int32_t limits[7] = {1 << 16, 1 << 20, 1024, 1024, 1024, 1 << 22, 1 << 24};
    for (int i = 0; i < 7; i++) {
        int32_t v = i == 5 && h[i] < 0 && h[i] != INT32_MIN ? -h[i] : h[i];
        if (v < 1 || v > limits[i])
            return ikv_model_fail(err, errlen, IKV_EFORMAT, path,
                                  "not a GGUF file, and not a llama2.c checkpoint: header %s = %d is "
                                  "out of range [1, %d]", names[i], (int)h[i], (int)limits[i]);
    }
    int dim = h[0], hidden = h[1], n_layers = h[2], n_heads = h[3], n_kv_heads = h[4];
    int shared = h[5] > 0;
    int vocab = shared ? h[5] : -h[5];
    int seq_len = h[6];
    if (dim % n_heads || n_heads % n_kv_heads || (dim / n_heads) % 2)
        return ikv_model_fail(err, errlen, IKV_EFORMAT, path,
                              "llama2.c header: dim %d, n_heads %d, n_kv_heads %d do not divide "
                              "into even heads", dim, n_heads, n_kv_heads);
    int head_size = dim / n_heads;
    int kv_dim = n_kv_heads * head_size;

    uint64_t D = (uint64_t)dim, F = (uint64_t)hidden, L = (uint64_t)n_layers, V = (uint64_t)vocab;
    uint64_t floats = V * D                              /* token embeddings */
                      + L * D                            /* rms_att */
                      + L * D * D + 2 * L * D * kv_dim   /* wq, wk, wv */
                      + L * D * D                        /* wo */
                      + L * D                            /* rms_ffn */
                      + 3 * L * D * F                    /* w1, w2, w3 */
                      + D                                /* rms_final */
                      + (uint64_t)seq_len * head_size    /* freq_cis real + imag */
                      + (shared ? 0 : V * D);            /* classifier */
    uint64_t need = HEADER_BYTES + 4 * floats;
    if (size < need)
        return ikv_model_fail(err, errlen, IKV_EFORMAT, path,
                              "truncated llama2.c checkpoint: header (dim %d, hidden %d, %d layers, "
                              "vocab %d) needs %llu bytes, the file has %zu",
                              dim, hidden, n_layers, vocab, (unsigned long long)need, size);

    ikv_model_details *info = &m->info;
    info->arch = "llama";
    info->format = "llama2c";
    info->dim = dim;
    info->hidden_dim = hidden;
    info->n_layers = n_layers;
    info->n_heads = n_heads;
    info->n_kv_heads = n_kv_heads;
    info->head_dim = head_size;
    info->vocab_size = vocab;
    info->max_seq_len = seq_len;
    info->rope_dim = head_size;
    info->rope_mode = IKV_ROPE_NORM;
    info->rope_theta = 10000.0f;
    info->norm_eps = 1e-5f;
    info->tied_classifier = shared;
    info->bos_id = 1; /* llama2.c's conventions, unless the tokenizer says otherwise */
    info->eos_id = 2;

    m->layers = ikv_model_alloc(m, (size_t)n_layers * sizeof *m->layers);
    if (!m->layers)
        return ikv_model_fail(err, errlen, IKV_ENOMEM, path, "out of memory");
    const float *p = (const float *)(const void *)(data + HEADER_BYTES);
    m->tok_embd = f32_matrix(p, vocab, dim);
    p += V * D;
    for (int l = 0; l < n_layers; l++)
        m->layers[l].attn_norm = p + (size_t)l * dim;
    p += L * D;
    for (int l = 0; l < n_layers; l++)
        m->layers[l].wq = f32_matrix(p + (size_t)l * dim * dim, dim, dim);
    p += L * D * D;
    for (int l = 0; l < n_layers; l++)
        m->layers[l].wk = f32_matrix(p + (size_t)l * kv_dim * dim, kv_dim, dim);
    p += L * D * kv_dim;
    for (int l = 0; l < n_layers; l++)
        m->layers[l].wv = f32_matrix(p + (size_t)l * kv_dim * dim, kv_dim, dim);
    p += L * D * kv_dim;
    for (int l = 0; l < n_layers; l++)
        m->layers[l].wo = f32_matrix(p + (size_t)l * dim * dim, dim, dim);
    p += L * D * D;
    for (int l = 0; l < n_layers; l++)
        m->layers[l].ffn_norm = p + (size_t)l * dim;
    p += L * D;
    for (int l = 0; l < n_layers; l++)
        m->layers[l].w_gate = f32_matrix(p + (size_t)l * hidden * dim, hidden, dim);
    p += L * D * F;
    for (int l = 0; l < n_layers; l++)
        m->layers[l].w_down = f32_matrix(p + (size_t)l * dim * hidden, dim, hidden);
    p += L * D * F;
    for (int l = 0; l < n_layers; l++)
        m->layers[l].w_up = f32_matrix(p + (size_t)l * hidden * dim, hidden, dim);
    p += L * D * F;
    m->final_norm = p;
    p += D;
    p += (uint64_t)seq_len * head_size; /* RoPE tables of old exports: recomputed */
    m->output = shared ? m->tok_embd : f32_matrix(p, vocab, dim);
    return load_tokenizer(m, tokenizer_path, err, errlen);
}
