/*
 * Llama-family models from GGUF: architectures llama, mistral and qwen2,
 * tensors F32/F16/BF16/Q8_0 used in place from the mapped file (1-D
 * tensors are converted to float), every shape checked against the
 * metadata, and the tokenizer built from the tokenizer.ggml.* keys.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/gguf.h"
#include "model/model_internal.h"

typedef struct loader {
    ikv_model *m;
    ikv_gguf *g;
    const char *arch;
    char *err;
    size_t errlen;
} loader;

static int fail_fmt(loader *ld, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static int fail_fmt(loader *ld, int status, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ikv_model_fail(ld->err, ld->errlen, status, ld->m->path, "%s", msg);
}

/* ---- metadata ---- */

static const ikv_gguf_kv *arch_key(loader *ld, const char *suffix)
{
    char key[256];
    snprintf(key, sizeof key, "%s.%s", ld->arch, suffix);
    return ikv_gguf_find(ld->g, key);
}

/* Integer `ARCH.suffix` in [lo, hi]; `dflt` when absent (dflt < lo: required). */
static int get_int(loader *ld, const char *suffix, long dflt, long lo, long hi, int *out)
{
    const ikv_gguf_kv *kv = arch_key(ld, suffix);
    int64_t v;
    if (!kv) {
        if (dflt < lo)
            return fail_fmt(ld, IKV_EFORMAT, "metadata key %s.%s is missing", ld->arch, suffix);
        *out = (int)dflt;
        return IKV_OK;
    }
    if (ikv_gguf_kv_int(kv, &v) != 0)
        return fail_fmt(ld, IKV_EFORMAT, "metadata key %s has type %d, not an integer", kv->key, (int)kv->type);
    if (v < lo || v > hi)
        return fail_fmt(ld, IKV_EFORMAT, "metadata %s = %lld is out of range [%ld, %ld]", kv->key,
                        (long long)v, lo, hi);
    *out = (int)v;
    return IKV_OK;
}

static int get_float(loader *ld, const char *suffix, double dflt, float *out)
{
    const ikv_gguf_kv *kv = arch_key(ld, suffix);
    double v;
    if (!kv) {
        *out = (float)dflt;
        return IKV_OK;
    }
    if (ikv_gguf_kv_float(kv, &v) != 0)
        return fail_fmt(ld, IKV_EFORMAT, "metadata key %s has type %d, not a number", kv->key, (int)kv->type);
    *out = (float)v;
    return IKV_OK;
}

/* A string value compared without NUL termination. */
static int string_is(const ikv_gguf_kv *kv, const char *text)
{
    const char *s;
    uint64_t len;
    return ikv_gguf_kv_string(kv, &s, &len) == 0 && len == strlen(text) && memcmp(s, text, len) == 0;
}

static int read_rope_scaling(loader *ld)
{
    ikv_rope_scaling *s = &ld->m->info.rope_scaling;
    const ikv_gguf_kv *type = arch_key(ld, "rope.scaling.type");
    int rc;
    s->type = IKV_ROPE_SCALING_NONE;
    if (!type || string_is(type, "none"))
        return IKV_OK;
    if (string_is(type, "linear")) {
        s->type = IKV_ROPE_SCALING_LINEAR;
        return get_float(ld, "rope.scaling.factor", 1.0, &s->factor);
    }
    if (string_is(type, "llama3")) {
        s->type = IKV_ROPE_SCALING_LLAMA3;
        if ((rc = get_float(ld, "rope.scaling.factor", 8.0, &s->factor)) ||
            (rc = get_float(ld, "rope.scaling.low_freq_factor", 1.0, &s->low_freq_factor)) ||
            (rc = get_float(ld, "rope.scaling.high_freq_factor", 4.0, &s->high_freq_factor)) ||
            (rc = get_int(ld, "rope.scaling.original_context_length", 8192, 1, 1L << 30,
                          &s->original_context)))
            return rc;
        return IKV_OK;
    }
    const char *str = "?";
    uint64_t len = 1;
    ikv_gguf_kv_string(type, &str, &len);
    return fail_fmt(ld, IKV_EUNSUPPORTED, "RoPE scaling type '%.*s' is not supported yet "
                    "(none, linear, llama3 are)", (int)(len > 64 ? 64 : len), str);
}

/* ---- tensors ---- */

static int wtype_of(uint32_t ggml_type, ikv_wtype *out)
{
    switch (ggml_type) {
    case IKV_GGML_F32: *out = IKV_WTYPE_F32; return 0;
    case IKV_GGML_F16: *out = IKV_WTYPE_F16; return 0;
    case IKV_GGML_BF16: *out = IKV_WTYPE_BF16; return 0;
    case IKV_GGML_Q8_0: *out = IKV_WTYPE_Q8_0; return 0;
    default: return -1;
    }
}

/* Finds a tensor and checks its type and dims {ne0, ne1} (ne1 = 0: 1-D). */
static int find_tensor(loader *ld, const char *name, int64_t ne0, int64_t ne1, int required,
                       const ikv_gguf_tensor **out, ikv_wtype *type)
{
    const ikv_gguf_tensor *t = ikv_gguf_find_tensor(ld->g, name);
    *out = NULL;
    if (!t) {
        if (required)
            return fail_fmt(ld, IKV_EFORMAT, "tensor '%s' is missing", name);
        return IKV_OK;
    }
    if (wtype_of(t->type, type) != 0)
        return fail_fmt(ld, IKV_EUNSUPPORTED, "tensor '%s' has type %s, not supported yet "
                        "(F32, F16, BF16 and Q8_0 are)", name, ikv_gguf_type_name(t->type));
    int dims_ok = ne1 ? (t->n_dims == 2 && (int64_t)t->ne[0] == ne0 && (int64_t)t->ne[1] == ne1)
                      : ((int64_t)t->ne[0] == ne0 && t->ne[1] == 1 && t->ne[2] == 1 && t->ne[3] == 1);
    if (!dims_ok) {
        if (ne1)
            return fail_fmt(ld, IKV_EFORMAT, "tensor '%s' has shape [%llu, %llu, %llu, %llu] (%d dims), "
                            "the metadata implies [%lld, %lld]", name, (unsigned long long)t->ne[0],
                            (unsigned long long)t->ne[1], (unsigned long long)t->ne[2],
                            (unsigned long long)t->ne[3], t->n_dims, (long long)ne0, (long long)ne1);
        return fail_fmt(ld, IKV_EFORMAT, "tensor '%s' has shape [%llu, %llu, %llu, %llu], "
                        "the metadata implies [%lld]", name, (unsigned long long)t->ne[0],
                        (unsigned long long)t->ne[1], (unsigned long long)t->ne[2],
                        (unsigned long long)t->ne[3], (long long)ne0);
    }
    /* Mapped rows are read as floats/halves in place. */
    size_t align = *type == IKV_WTYPE_F32 ? 4 : 2;
    if ((uintptr_t)t->data % align)
        return fail_fmt(ld, IKV_EFORMAT, "tensor '%s' data is not aligned to %zu bytes", name, align);
    *out = t;
    return IKV_OK;
}

/* A weight matrix W[out][in]: GGUF dims {in, out}. */
static int load_matrix(loader *ld, const char *name, int in, int out, int required, ikv_matrix *w)
{
    const ikv_gguf_tensor *t;
    ikv_wtype type;
    int rc = find_tensor(ld, name, in, out, required, &t, &type);
    if (rc || !t)
        return rc;
    w->type = type;
    w->data = t->data;
    w->rows = out;
    w->cols = in;
    w->row_bytes = ikv_wtype_row_bytes(type, in);
    return IKV_OK;
}

/* A vector [n] as float (converted from any supported type). */
static int load_vector(loader *ld, const char *name, int n, int required, const float **v)
{
    const ikv_gguf_tensor *t;
    ikv_wtype type;
    int rc = find_tensor(ld, name, n, 0, required, &t, &type);
    *v = NULL;
    if (rc || !t)
        return rc;
    float *buf = ikv_model_alloc(ld->m, (size_t)n * sizeof *buf);
    if (!buf)
        return fail_fmt(ld, IKV_ENOMEM, "out of memory");
    ikv_wtype_to_f32(type, t->data, 0, n, buf);
    *v = buf;
    return IKV_OK;
}

static int load_layers(loader *ld)
{
    ikv_model *m = ld->m;
    const ikv_model_details *i = &m->info;
    int D = i->dim, F = i->hidden_dim, qd = i->n_heads * i->head_dim, kvd = i->n_kv_heads * i->head_dim;
    m->layers = ikv_model_alloc(m, (size_t)i->n_layers * sizeof *m->layers);
    if (!m->layers)
        return fail_fmt(ld, IKV_ENOMEM, "out of memory");
    for (int l = 0; l < i->n_layers; l++) {
        ikv_layer_weights *lw = &m->layers[l];
        char name[96];
        int rc;
#define NAME(suffix) (snprintf(name, sizeof name, "blk.%d." suffix, l), name)
        if ((rc = load_vector(ld, NAME("attn_norm.weight"), D, 1, &lw->attn_norm)) ||
            (rc = load_vector(ld, NAME("ffn_norm.weight"), D, 1, &lw->ffn_norm)) ||
            (rc = load_matrix(ld, NAME("attn_q.weight"), D, qd, 1, &lw->wq)) ||
            (rc = load_matrix(ld, NAME("attn_k.weight"), D, kvd, 1, &lw->wk)) ||
            (rc = load_matrix(ld, NAME("attn_v.weight"), D, kvd, 1, &lw->wv)) ||
            (rc = load_matrix(ld, NAME("attn_output.weight"), qd, D, 1, &lw->wo)) ||
            (rc = load_matrix(ld, NAME("ffn_gate.weight"), D, F, 1, &lw->w_gate)) ||
            (rc = load_matrix(ld, NAME("ffn_up.weight"), D, F, 1, &lw->w_up)) ||
            (rc = load_matrix(ld, NAME("ffn_down.weight"), F, D, 1, &lw->w_down)) ||
            (rc = load_vector(ld, NAME("attn_q.bias"), qd, 0, &lw->bq)) ||
            (rc = load_vector(ld, NAME("attn_k.bias"), kvd, 0, &lw->bk)) ||
            (rc = load_vector(ld, NAME("attn_v.bias"), kvd, 0, &lw->bv)))
            return rc;
#undef NAME
        if (lw->bq || lw->bk || lw->bv)
            m->info.has_qkv_bias = 1;
    }
    return IKV_OK;
}

/* ---- tokenizer ---- */

static int tokenizer_fail(loader *ld, const char *key, const char *problem)
{
    return fail_fmt(ld, IKV_EFORMAT, "tokenizer metadata %s %s", key, problem);
}

static int load_tokenizer(loader *ld)
{
    ikv_gguf *g = ld->g;
    const ikv_gguf_kv *model = ikv_gguf_find(g, "tokenizer.ggml.model");
    ikv_tokenizer_spec spec;
    memset(&spec, 0, sizeof spec);
    if (!model || string_is(model, "none") || string_is(model, "no_vocab"))
        return IKV_OK; /* runs on token ids only */
    if (string_is(model, "llama")) {
        spec.kind = IKV_TOK_SPM;
    } else if (string_is(model, "gpt2")) {
        spec.kind = IKV_TOK_GPT2;
    } else {
        const char *s = "?";
        uint64_t len = 1;
        ikv_gguf_kv_string(model, &s, &len);
        return fail_fmt(ld, IKV_EUNSUPPORTED, "tokenizer model '%.*s' is not supported yet "
                        "(llama, gpt2 are)", (int)(len > 64 ? 64 : len), s);
    }
    const ikv_gguf_kv *tokens = ikv_gguf_find(g, "tokenizer.ggml.tokens");
    if (!tokens || tokens->type != IKV_GGUF_ARRAY || tokens->elem_type != IKV_GGUF_STRING)
        return tokenizer_fail(ld, "tokenizer.ggml.tokens", "is missing or not an array of strings");
    if (tokens->count != (uint64_t)ld->m->info.vocab_size) {
        char what[96];
        snprintf(what, sizeof what, "has %llu tokens, the model's vocabulary %d",
                 (unsigned long long)tokens->count, ld->m->info.vocab_size);
        return tokenizer_fail(ld, "tokenizer.ggml.tokens", what);
    }
    int n = (int)tokens->count;
    const ikv_gguf_kv *scores = ikv_gguf_find(g, "tokenizer.ggml.scores");
    const ikv_gguf_kv *types = ikv_gguf_find(g, "tokenizer.ggml.token_type");
    const ikv_gguf_kv *merges = ikv_gguf_find(g, "tokenizer.ggml.merges");
    if (scores && (scores->type != IKV_GGUF_ARRAY || scores->count != (uint64_t)n))
        return tokenizer_fail(ld, "tokenizer.ggml.scores", "is not an array of one number per token");
    if (types && (types->type != IKV_GGUF_ARRAY || types->count != (uint64_t)n))
        return tokenizer_fail(ld, "tokenizer.ggml.token_type", "is not an array of one integer per token");
    if (merges && (merges->type != IKV_GGUF_ARRAY || merges->elem_type != IKV_GGUF_STRING ||
                   merges->count > (uint64_t)INT32_MAX))
        return tokenizer_fail(ld, "tokenizer.ggml.merges", "is not an array of strings");
    int n_merges = merges ? (int)merges->count : 0;

    /* temporary arrays: the tokenizer copies what it keeps */
    const char **pieces = malloc((size_t)n * sizeof *pieces);
    uint32_t *piece_lens = malloc((size_t)n * sizeof *piece_lens);
    float *score_v = scores ? malloc((size_t)n * sizeof *score_v) : NULL;
    int32_t *type_v = types ? malloc((size_t)n * sizeof *type_v) : NULL;
    const char **merge_v = n_merges ? malloc((size_t)n_merges * sizeof *merge_v) : NULL;
    uint32_t *merge_lens = n_merges ? malloc((size_t)n_merges * sizeof *merge_lens) : NULL;
    int rc = IKV_OK;
    if (!pieces || !piece_lens || (scores && !score_v) || (types && !type_v) ||
        (n_merges && (!merge_v || !merge_lens))) {
        rc = fail_fmt(ld, IKV_ENOMEM, "out of memory");
        goto done;
    }
    if (ikv_gguf_array_strings(g, tokens, pieces, piece_lens) != 0) {
        rc = tokenizer_fail(ld, "tokenizer.ggml.tokens", "is corrupt");
        goto done;
    }
    if (scores && ikv_gguf_array_f32(g, scores, score_v) != 0) {
        rc = tokenizer_fail(ld, "tokenizer.ggml.scores", "is not an array of numbers");
        goto done;
    }
    if (types && ikv_gguf_array_i32(g, types, type_v) != 0) {
        rc = tokenizer_fail(ld, "tokenizer.ggml.token_type", "is not an array of integers");
        goto done;
    }
    if (n_merges && ikv_gguf_array_strings(g, merges, merge_v, merge_lens) != 0) {
        rc = tokenizer_fail(ld, "tokenizer.ggml.merges", "is corrupt");
        goto done;
    }
    spec.n_vocab = n;
    spec.pieces = pieces;
    spec.piece_lens = piece_lens;
    spec.scores = score_v;
    spec.token_types = type_v;
    spec.n_merges = n_merges;
    spec.merges = merge_v;
    spec.merge_lens = merge_lens;
    const ikv_gguf_kv *pre = ikv_gguf_find(g, "tokenizer.ggml.pre");
    spec.pre = IKV_PRE_DEFAULT;
    if (pre && (string_is(pre, "llama-bpe") || string_is(pre, "llama3") || string_is(pre, "llama-v3")))
        spec.pre = IKV_PRE_LLAMA3;
    else if (pre && string_is(pre, "qwen2"))
        spec.pre = IKV_PRE_QWEN2;
    spec.bos_id = -1;
    spec.eos_id = -1;
    const char *id_keys[2] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"};
    int *ids[2] = {&spec.bos_id, &spec.eos_id};
    for (int k = 0; k < 2; k++) {
        const ikv_gguf_kv *kv = ikv_gguf_find(g, id_keys[k]);
        int64_t v;
        if (!kv)
            continue;
        if (ikv_gguf_kv_int(kv, &v) != 0 || v < 0 || v >= n) {
            rc = tokenizer_fail(ld, id_keys[k], "is not a token id");
            goto done;
        }
        *ids[k] = (int)v;
    }
    /* llama.cpp's defaults: SentencePiece and Llama-3 add BOS, GPT-2 does not */
    spec.add_bos = spec.kind == IKV_TOK_SPM || spec.pre == IKV_PRE_LLAMA3;
    const ikv_gguf_kv *add_bos = ikv_gguf_find(g, "tokenizer.ggml.add_bos_token");
    if (add_bos) {
        int64_t v;
        if (ikv_gguf_kv_int(add_bos, &v) != 0) {
            rc = tokenizer_fail(ld, "tokenizer.ggml.add_bos_token", "is not a boolean");
            goto done;
        }
        spec.add_bos = v != 0;
    }
    char msg[400];
    rc = ikv_tokenizer_create(&ld->m->tokenizer, &spec, msg, sizeof msg);
    if (rc)
        rc = fail_fmt(ld, rc < 0 ? rc : IKV_EFORMAT, "tokenizer: %s", msg);
done:
    free(pieces);
    free(piece_lens);
    free(score_v);
    free(type_v);
    free(merge_v);
    free(merge_lens);
    return rc;
}

/* ---- the model ---- */

static int load(loader *ld)
{
    ikv_model *m = ld->m;
    ikv_model_details *info = &m->info;
    const ikv_gguf_kv *arch = ikv_gguf_find(ld->g, "general.architecture");
    if (!arch)
        return fail_fmt(ld, IKV_EFORMAT, "metadata key general.architecture is missing");
    if (string_is(arch, "llama"))
        ld->arch = "llama";
    else if (string_is(arch, "mistral"))
        ld->arch = "mistral";
    else if (string_is(arch, "qwen2"))
        ld->arch = "qwen2";
    else {
        const char *s = "?";
        uint64_t len = 1;
        ikv_gguf_kv_string(arch, &s, &len);
        return fail_fmt(ld, IKV_EUNSUPPORTED, "architecture '%.*s' is not supported yet "
                        "(llama, mistral, qwen2 are)", (int)(len > 64 ? 64 : len), s);
    }
    info->arch = ld->arch;
    info->format = "gguf";
    info->rope_mode = strcmp(ld->arch, "qwen2") == 0 ? IKV_ROPE_NEOX : IKV_ROPE_NORM;
    const ikv_gguf_kv *name = ikv_gguf_find(ld->g, "general.name");
    const char *s;
    uint64_t len;
    if (name && ikv_gguf_kv_string(name, &s, &len) == 0 && len > 0)
        snprintf(m->name, sizeof m->name, "%.*s", (int)(len > 200 ? 200 : len), s);

    int rc;
    if ((rc = get_int(ld, "embedding_length", -1, 1, 1 << 17, &info->dim)) ||
        (rc = get_int(ld, "feed_forward_length", -1, 1, 1 << 20, &info->hidden_dim)) ||
        (rc = get_int(ld, "block_count", -1, 1, 4096, &info->n_layers)) ||
        (rc = get_int(ld, "attention.head_count", -1, 1, 4096, &info->n_heads)) ||
        (rc = get_int(ld, "attention.head_count_kv", info->n_heads, 1, 4096, &info->n_kv_heads)) ||
        (rc = get_int(ld, "context_length", 2048, 1, 1L << 30, &info->max_seq_len)))
        return rc;
    int value_length;
    if ((rc = get_int(ld, "attention.key_length", info->dim / info->n_heads, 2, 4096, &info->head_dim)) ||
        (rc = get_int(ld, "attention.value_length", info->head_dim, 2, 4096, &value_length)) ||
        (rc = get_int(ld, "rope.dimension_count", info->head_dim, 2, 4096, &info->rope_dim)) ||
        (rc = get_float(ld, "rope.freq_base", 10000.0, &info->rope_theta)) ||
        (rc = get_float(ld, "attention.layer_norm_rms_epsilon", 1e-5, &info->norm_eps)) ||
        (rc = read_rope_scaling(ld)))
        return rc;
    if (value_length != info->head_dim)
        return fail_fmt(ld, IKV_EUNSUPPORTED, "value head size %d differs from key head size %d",
                        value_length, info->head_dim);
    if (info->n_heads % info->n_kv_heads)
        return fail_fmt(ld, IKV_EFORMAT, "head_count %d is not a multiple of head_count_kv %d",
                        info->n_heads, info->n_kv_heads);
    if (info->rope_dim > info->head_dim || info->rope_dim % 2)
        return fail_fmt(ld, IKV_EFORMAT, "rope.dimension_count %d must be even and at most the head "
                        "size %d", info->rope_dim, info->head_dim);

    /* vocabulary size from the embeddings, checked against the metadata */
    const ikv_gguf_tensor *embd = ikv_gguf_find_tensor(ld->g, "token_embd.weight");
    if (!embd)
        return fail_fmt(ld, IKV_EFORMAT, "tensor 'token_embd.weight' is missing");
    if (embd->n_dims != 2 || embd->ne[1] < 1 || embd->ne[1] > (1 << 24))
        return fail_fmt(ld, IKV_EFORMAT, "tensor 'token_embd.weight' is not a [dim, vocab] matrix");
    if ((rc = get_int(ld, "vocab_size", (long)embd->ne[1], 1, 1 << 24, &info->vocab_size)))
        return rc;
    if ((rc = load_matrix(ld, "token_embd.weight", info->dim, info->vocab_size, 1, &m->tok_embd)) ||
        (rc = load_matrix(ld, "output.weight", info->dim, info->vocab_size, 0, &m->output)) ||
        (rc = load_vector(ld, "output_norm.weight", info->dim, 1, &m->final_norm)))
        return rc;
    info->tied_classifier = m->output.data == NULL;
    if (info->tied_classifier)
        m->output = m->tok_embd;

    const float *factors;
    if ((rc = load_vector(ld, "rope_freqs.weight", info->rope_dim / 2, 0, &factors)))
        return rc;
    if (factors) {
        m->rope_factors = factors;
        info->rope_scaling.type = IKV_ROPE_SCALING_FREQ_FACTORS;
    }
    if ((rc = load_layers(ld)))
        return rc;
    return load_tokenizer(ld);
}

int ikv_load_gguf(ikv_model *m, char *err, size_t errlen)
{
    loader ld = {m, NULL, NULL, err, errlen};
    int rc = ikv_gguf_parse(&ld.g, m->map.data, m->map.size, m->path, err, errlen);
    if (rc)
        return rc;
    rc = load(&ld);
    ikv_gguf_close(ld.g);
    return rc;
}
