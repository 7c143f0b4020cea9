/*
 * The trace schema, version 1, as data: every dataset's path, signal,
 * axes and meaning, shared by the writer (which creates them) and the
 * reader (which checks them). traces/SCHEMA.md documents the same table.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "trace/internal.h"

const ikv_dset_def ikv_dset_defs[IKV_N_DSETS] = {
    {"/tokens", IKV_TRACE_TOKENS, 1, {IKV_AX_T}, 1, 0, 0, "token id",
     "token ids, prompt then generated"},
    {"/logits/entropy", IKV_TRACE_LOGITS_SUMMARY, 1, {IKV_AX_T}, 0, 0, 0, "nats",
     "entropy of the full next-token distribution computed at position t"},
    {"/logits/entropy_topk", IKV_TRACE_LOGITS_SUMMARY, 1, {IKV_AX_T}, 0, 0, 0, "nats",
     "entropy of the top-k probabilities (attribute k) renormalised, at position t"},
    {"/logits/logprob", IKV_TRACE_LOGITS_SUMMARY, 1, {IKV_AX_T}, 0, 0, 0, "nats",
     "log p(token t | tokens < t); NaN at t = 0"},
    {"/logits/topk_ids", IKV_TRACE_LOGITS_SUMMARY, 2, {IKV_AX_T, IKV_AX_K}, 1, 0, 0, "token id",
     "the K most probable next tokens at position t, most probable first"},
    {"/logits/topk_logprobs", IKV_TRACE_LOGITS_SUMMARY, 2, {IKV_AX_T, IKV_AX_K}, 0, 0, 0, "nats",
     "log probabilities of topk_ids"},
    {"/logits/full", IKV_TRACE_LOGITS_FULL, 2, {IKV_AX_T, IKV_AX_V}, 0, 1, 0, "logit",
     "full next-token logits at position t"},
    {"/hidden/evolution", IKV_TRACE_EVOLUTION, 2, {IKV_AX_L, IKV_AX_T}, 0, 0, 0, "1 - cosine",
     "1 - cos(residual entering layer l, residual leaving layer l) at position t"},
    {"/hidden/states", IKV_TRACE_STATES, 3, {IKV_AX_L1, IKV_AX_T, IKV_AX_DIM}, 0, 1, 0, "",
     "residual stream entering each stored layer, then the final residual"},
    {"/qkv/q", IKV_TRACE_QKV, 4, {IKV_AX_L, IKV_AX_H, IKV_AX_T, IKV_AX_HD}, 0, 1, 1, "",
     "queries after RoPE"},
    {"/qkv/k", IKV_TRACE_QKV, 4, {IKV_AX_L, IKV_AX_G, IKV_AX_T, IKV_AX_HD}, 0, 1, 1, "",
     "keys after RoPE"},
    {"/qkv/v", IKV_TRACE_QKV, 4, {IKV_AX_L, IKV_AX_G, IKV_AX_T, IKV_AX_HD}, 0, 1, 1, "",
     "values"},
    {"/attn/lse", IKV_TRACE_ATTN_STATS, 3, {IKV_AX_L, IKV_AX_H, IKV_AX_T}, 0, 0, 1, "nats",
     "log-sum-exp of the scores q.k/sqrt(d) of query t over keys 0..t"},
    {"/attn/out", IKV_TRACE_ATTN_STATS, 4, {IKV_AX_L, IKV_AX_H, IKV_AX_T, IKV_AX_HD}, 0, 1, 1, "",
     "attention output of each head, softmax(scores) . V, before the output projection"},
    {"/attn/probs", IKV_TRACE_ATTN_PROBS, 4, {IKV_AX_L, IKV_AX_H, IKV_AX_T, IKV_AX_T}, 0, 1, 1,
     "probability", "causal attention of query t (row) on key j (column); zero for j > t"},
};

const char *const ikv_root_attr_names[] = {
    "format", "version", "model_name", "arch", "n_layers", "n_heads", "n_kv_heads",
    "head_dim", "dim", "hidden_dim", "vocab_size", "rope_theta", "norm_eps", "n_prompt",
    "n_tokens", "complete", "producer", "created", "model_sha256", "command", "layers",
    "dtype", NULL};

int ikv_is_root_attr(const char *name)
{
    for (int i = 0; ikv_root_attr_names[i]; i++)
        if (strcmp(ikv_root_attr_names[i], name) == 0)
            return 1;
    return 0;
}

void ikv_abs_path(const char *path, char *buf, size_t buflen)
{
    snprintf(buf, buflen, "%s%s", path[0] == '/' ? "" : "/", path);
}

int ikv_dset_index(const char *path)
{
    char abs[512];
    if (!path)
        return -1;
    ikv_abs_path(path, abs, sizeof abs);
    for (int i = 0; i < IKV_N_DSETS; i++)
        if (strcmp(ikv_dset_defs[i].path, abs) == 0)
            return i;
    return -1;
}

const ikv_dset_def *ikv_dset_find(const char *path)
{
    int i = ikv_dset_index(path);
    return i < 0 ? NULL : &ikv_dset_defs[i];
}

int64_t ikv_axis_size(ikv_axis ax, const ikv_trace_meta *meta, int n_stored_layers, int topk,
                      int64_t n_tokens)
{
    switch (ax) {
    case IKV_AX_T: return n_tokens;
    case IKV_AX_L: return n_stored_layers;
    case IKV_AX_L1: return (int64_t)n_stored_layers + 1;
    case IKV_AX_H: return meta->n_heads;
    case IKV_AX_G: return meta->n_kv_heads;
    case IKV_AX_HD: return meta->head_dim;
    case IKV_AX_DIM: return meta->dim;
    case IKV_AX_V: return meta->vocab_size;
    case IKV_AX_K: return topk;
    }
    return 0;
}

static int check_range(const char *name, int64_t v, int64_t lo, int64_t hi, char *what,
                       size_t wlen)
{
    if (v >= lo && v <= hi)
        return 0;
    snprintf(what, wlen, "%s = %lld out of range [%lld, %lld]", name, (long long)v,
             (long long)lo, (long long)hi);
    return -1;
}

int ikv_check_meta(const ikv_trace_meta *m, char *what, size_t wlen)
{
    if (check_range("n_layers", m->n_layers, 1, IKV_MAX_LAYERS, what, wlen) ||
        check_range("n_heads", m->n_heads, 1, IKV_MAX_HEADS, what, wlen) ||
        check_range("n_kv_heads", m->n_kv_heads, 1, m->n_heads, what, wlen) ||
        check_range("head_dim", m->head_dim, 1, IKV_MAX_HEAD_DIM, what, wlen) ||
        check_range("dim", m->dim, 1, IKV_MAX_DIM, what, wlen) ||
        check_range("hidden_dim", m->hidden_dim, 0, IKV_MAX_HIDDEN, what, wlen) ||
        check_range("vocab_size", m->vocab_size, 1, IKV_MAX_VOCAB, what, wlen) ||
        check_range("n_prompt", m->n_prompt, 0, IKV_MAX_TOKENS, what, wlen) ||
        check_range("n_tokens", m->n_tokens, 0, IKV_MAX_TOKENS, what, wlen) ||
        check_range("complete", m->complete, 0, 1, what, wlen))
        return -1;
    if (m->n_heads % m->n_kv_heads != 0) {
        snprintf(what, wlen, "n_heads = %d is not a multiple of n_kv_heads = %d", m->n_heads,
                 m->n_kv_heads);
        return -1;
    }
    return 0;
}

int64_t ikv_checked_product(const int64_t *dims, int n, int64_t elem)
{
    const int64_t limit = INT64_MAX / 2;
    int64_t p = elem;
    for (int i = 0; i < n; i++) {
        if (dims[i] < 0)
            return -1;
        if (dims[i] != 0 && p > limit / dims[i])
            return -1;
        p *= dims[i];
    }
    return p;
}

const char *ikv_trace_strerror(int status)
{
    switch (status) {
    case IKV_TRACE_OK: return "success";
    case IKV_TRACE_EINVAL: return "invalid argument";
    case IKV_TRACE_EIO: return "input/output error";
    case IKV_TRACE_EFORMAT: return "not a valid infokv trace";
    case IKV_TRACE_ENOMEM: return "out of memory";
    case IKV_TRACE_EABSENT: return "dataset not in the trace";
    case IKV_TRACE_ESTATE: return "call out of order";
    }
    return "unknown error";
}

ikv_trace_spec ikv_trace_writer_default_spec(void)
{
    ikv_trace_spec s;
    memset(&s, 0, sizeof s);
    s.signals = IKV_TRACE_DEFAULT;
    s.topk = 20;
    s.entropy_k = 20;
    s.dtype = IKV_TRACE_F32;
    s.layers = NULL;
    s.n_layers = 0;
    s.expected_tokens = 0;
    s.chunk_tokens = 0;
    s.chunk_all_heads = 1;
    s.deflate_level = 1;
    return s;
}
