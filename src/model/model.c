/*
 * Model handle: format dispatch, shape checks, RoPE frequencies, weight
 * statistics, SHA-256, and release.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef HAVE_MADVISE
#include <sys/mman.h>
#endif

#include "model/model_internal.h"
#include "model/sha256.h"
#include "util/text.h"

/* Files up to this size are hashed at load; bigger ones on request. */
#define HASH_AT_LOAD_MAX (64u << 20)

const char *ikv_model_strerror(int status)
{
    switch (status) {
    case IKV_EIO: return "cannot read file";
    case IKV_EFORMAT: return "invalid or corrupt model file";
    case IKV_EUNSUPPORTED: return "not supported yet";
    default: return ikv_strerror(status);
    }
}

void ikv_message_one_line(char *msg)
{
    ikv_scrub_controls(msg, '?');
}

int ikv_model_fail(char *err, size_t errlen, int status, const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (err && errlen) {
        if (path)
            snprintf(err, errlen, "%s: %s", path, msg);
        else
            snprintf(err, errlen, "%s", msg);
        ikv_message_one_line(err);
    }
    return status;
}

ikv_model *ikv_model_new(void)
{
    ikv_model *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->info.bos_id = -1;
    m->info.eos_id = -1;
    m->info.sha256 = m->sha256;
    m->info.weight_type = m->weight_type;
    m->info.name = m->name;
    return m;
}

static void *alloc(ikv_model *m, size_t bytes, int zero)
{
    if (m->n_owned == m->cap_owned) {
        int cap = m->cap_owned ? 2 * m->cap_owned : 16;
        void **owned = realloc(m->owned, (size_t)cap * sizeof *owned);
        if (!owned)
            return NULL;
        m->owned = owned;
        m->cap_owned = cap;
    }
    /* Big weight buffers go on 2 MiB pages where the system offers them:
     * fewer page faults while filling, fewer TLB misses while streaming. */
    const size_t huge = (size_t)2 << 20;
    size_t align = bytes >= 2 * huge ? huge : 64;
    size_t rounded = (bytes + align - 1) / align * align;
    void *p = aligned_alloc(align, rounded ? rounded : align);
    if (!p)
        return NULL;
#if defined(HAVE_MADVISE) && defined(MADV_HUGEPAGE)
    if (align == huge)
        madvise(p, rounded, MADV_HUGEPAGE); /* advice only: failure is harmless */
#endif
    if (zero)
        memset(p, 0, rounded ? rounded : align);
    m->owned[m->n_owned++] = p;
    return p;
}

void *ikv_model_alloc(ikv_model *m, size_t bytes)
{
    return alloc(m, bytes, 1);
}

void *ikv_model_alloc_uninit(ikv_model *m, size_t bytes)
{
    return alloc(m, bytes, 0);
}

void ikv_model_free(ikv_model *m)
{
    if (!m)
        return;
    ikv_tokenizer_free(m->tokenizer);
    for (int i = 0; i < m->n_owned; i++)
        free(m->owned[i]);
    free(m->owned);
    ikv_mapfile_close(&m->map);
    free(m->path);
    free(m);
}

const ikv_model_details *ikv_model_info(const ikv_model *m)
{
    return &m->info;
}

const ikv_tokenizer *ikv_model_tokenizer(const ikv_model *m)
{
    return m->tokenizer;
}

const char *ikv_model_sha256(ikv_model *m)
{
    if (!m->sha256[0] && m->map.data)
        ikv_sha256_hex(m->map.data, m->map.size, m->sha256);
    return m->sha256;
}

/* Limits that keep every index and size product of the forward pass
 * well inside int and size_t (and reject nonsense headers early). */
static int check_shape(const ikv_model *m, char *err, size_t errlen)
{
    const ikv_model_details *i = &m->info;
    const char *path = m->path;
    struct {
        const char *name;
        long value, lo, hi;
    } checks[] = {
        {"dim", i->dim, 1, 1 << 17},
        {"hidden_dim", i->hidden_dim, 1, 1 << 20},
        {"n_layers", i->n_layers, 1, 4096},
        {"n_heads", i->n_heads, 1, 4096},
        {"n_kv_heads", i->n_kv_heads, 1, 4096},
        {"head_dim", i->head_dim, 2, 4096},
        {"vocab_size", i->vocab_size, 1, 1 << 24},
        {"max_seq_len", i->max_seq_len, 1, 1L << 30},
        {"rope_dim", i->rope_dim, 2, i->head_dim},
    };
    for (size_t k = 0; k < sizeof checks / sizeof checks[0]; k++)
        if (checks[k].value < checks[k].lo || checks[k].value > checks[k].hi)
            return ikv_model_fail(err, errlen, IKV_EFORMAT, path, "%s = %ld is out of range [%ld, %ld]",
                                  checks[k].name, checks[k].value, checks[k].lo, checks[k].hi);
    if (i->n_heads % i->n_kv_heads)
        return ikv_model_fail(err, errlen, IKV_EFORMAT, path,
                              "n_heads = %d is not a multiple of n_kv_heads = %d", i->n_heads,
                              i->n_kv_heads);
    if ((long)i->n_heads * i->head_dim > (1 << 17))
        return ikv_model_fail(err, errlen, IKV_EFORMAT, path, "n_heads * head_dim = %ld is too large",
                              (long)i->n_heads * i->head_dim);
    if (i->rope_dim % 2)
        return ikv_model_fail(err, errlen, IKV_EFORMAT, path, "rope dimension %d is odd", i->rope_dim);
    if (!(i->norm_eps > 0.0f && i->norm_eps < 1.0f))
        return ikv_model_fail(err, errlen, IKV_EFORMAT, path, "RMSNorm epsilon %g is out of range (0, 1)",
                              (double)i->norm_eps);
    if (!(i->rope_theta > 1.0f && isfinite(i->rope_theta)))
        return ikv_model_fail(err, errlen, IKV_EFORMAT, path, "RoPE theta %g is out of range",
                              (double)i->rope_theta);
    const ikv_rope_scaling *s = &i->rope_scaling;
    if ((s->type == IKV_ROPE_SCALING_LINEAR || s->type == IKV_ROPE_SCALING_LLAMA3) &&
        !(s->factor > 0.0f && isfinite(s->factor)))
        return ikv_model_fail(err, errlen, IKV_EFORMAT, path, "RoPE scaling factor %g is out of range",
                              (double)s->factor);
    if (s->type == IKV_ROPE_SCALING_LLAMA3 &&
        !(s->low_freq_factor > 0.0f && s->high_freq_factor > s->low_freq_factor &&
          isfinite(s->high_freq_factor) && s->original_context > 0))
        return ikv_model_fail(err, errlen, IKV_EFORMAT, path,
                              "llama3 RoPE scaling needs 0 < low_freq_factor (%g) < high_freq_factor "
                              "(%g) and original_context_length > 0 (%d)",
                              (double)s->low_freq_factor, (double)s->high_freq_factor,
                              s->original_context);
    return IKV_OK;
}

/* theta^(-2i/rope_dim), then the scaling of the file. */
static int init_rope(ikv_model *m, char *err, size_t errlen)
{
    const ikv_model_details *info = &m->info;
    int half = info->rope_dim / 2;
    m->inv_freq = ikv_model_alloc(m, (size_t)half * sizeof *m->inv_freq);
    if (!m->inv_freq)
        return ikv_model_fail(err, errlen, IKV_ENOMEM, m->path, "out of memory");
    const ikv_rope_scaling *s = &info->rope_scaling;
    for (int i = 0; i < half; i++) {
        double f = pow((double)info->rope_theta, -2.0 * i / info->rope_dim);
        switch (s->type) {
        case IKV_ROPE_SCALING_LINEAR:
            f /= s->factor;
            break;
        case IKV_ROPE_SCALING_LLAMA3: {
            const double two_pi = 6.283185307179586;
            double wavelen = two_pi / f;
            double low_wavelen = s->original_context / (double)s->low_freq_factor;
            double high_wavelen = s->original_context / (double)s->high_freq_factor;
            if (wavelen > low_wavelen) {
                f /= s->factor;
            } else if (wavelen >= high_wavelen) {
                double smooth = (s->original_context / wavelen - s->low_freq_factor) /
                                ((double)s->high_freq_factor - s->low_freq_factor);
                f = (1.0 - smooth) * f / s->factor + smooth * f;
            }
            break;
        }
        case IKV_ROPE_SCALING_FREQ_FACTORS:
            if (!(m->rope_factors[i] > 0.0f && isfinite(m->rope_factors[i])))
                return ikv_model_fail(err, errlen, IKV_EFORMAT, m->path,
                                      "rope_freqs.weight[%d] = %g is not a positive number", i,
                                      (double)m->rope_factors[i]);
            f /= m->rope_factors[i];
            break;
        default:
            break;
        }
        m->inv_freq[i] = f;
    }
    return IKV_OK;
}

static uint64_t matrix_bytes(const ikv_matrix *w)
{
    return (uint64_t)w->rows * w->row_bytes;
}

/* Total weight bytes and the type that holds most of them. */
static void weight_stats(ikv_model *m)
{
    const ikv_model_details *info = &m->info;
    uint64_t by_type[IKV_WTYPE_COUNT] = {0};
    const ikv_matrix *all[2] = {&m->tok_embd, info->tied_classifier ? NULL : &m->output};
    for (int i = 0; i < 2; i++)
        if (all[i])
            by_type[all[i]->type] += matrix_bytes(all[i]);
    for (int l = 0; l < info->n_layers; l++) {
        const ikv_layer_weights *lw = &m->layers[l];
        const ikv_matrix *mats[] = {&lw->wq, &lw->wk, &lw->wv, &lw->wo, &lw->w_gate, &lw->w_up, &lw->w_down};
        for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++)
            by_type[mats[i]->type] += matrix_bytes(mats[i]);
    }
    int best = 0;
    uint64_t total = 0;
    for (int t = 0; t < IKV_WTYPE_COUNT; t++) {
        total += by_type[t];
        if (by_type[t] > by_type[best])
            best = t;
    }
    /* norms and biases, kept as float */
    int biases = info->has_qkv_bias ? (info->n_heads + 2 * info->n_kv_heads) * info->head_dim : 0;
    total += 4 * ((uint64_t)info->dim * (2 * (uint64_t)info->n_layers + 1) + (uint64_t)biases * info->n_layers);
    m->info.weight_bytes = total;
    snprintf(m->weight_type, sizeof m->weight_type, "%s", ikv_wtype_name((ikv_wtype)best));
}

int ikv_model_finish(ikv_model *m, char *err, size_t errlen)
{
    int rc = check_shape(m, err, errlen);
    if (!rc)
        rc = init_rope(m, err, errlen);
    if (rc)
        return rc;
    weight_stats(m);
    m->info.file_bytes = m->map.size;
    if (m->map.data && m->map.size <= HASH_AT_LOAD_MAX)
        ikv_model_sha256(m);
    if (m->tokenizer) {
        if (ikv_tokenizer_n_vocab(m->tokenizer) > m->info.vocab_size)
            return ikv_model_fail(err, errlen, IKV_EFORMAT, m->path,
                                  "the tokenizer has %d tokens, the model only %d",
                                  ikv_tokenizer_n_vocab(m->tokenizer), m->info.vocab_size);
        m->info.bos_id = ikv_tokenizer_bos(m->tokenizer);
        m->info.eos_id = ikv_tokenizer_eos(m->tokenizer);
    }
    return IKV_OK;
}

int ikv_model_load(ikv_model **out, const char *path, const char *tokenizer_path, char *err,
                   size_t errlen)
{
    *out = NULL;
    ikv_model *m = ikv_model_new();
    if (!m || !(m->path = strdup(path))) {
        ikv_model_free(m);
        return ikv_model_fail(err, errlen, IKV_ENOMEM, path, "out of memory");
    }
    int rc = ikv_mapfile_open(&m->map, path, err, errlen);
    if (!rc) {
        const char *base = strrchr(path, '/');
        snprintf(m->name, sizeof m->name, "%s", base ? base + 1 : path);
        if (m->map.size >= 4 && memcmp(m->map.data, "GGUF", 4) == 0)
            rc = ikv_load_gguf(m, err, errlen);
        else
            rc = ikv_load_llama2c(m, tokenizer_path, err, errlen);
    }
    if (!rc)
        rc = ikv_model_finish(m, err, errlen);
    if (rc) {
        ikv_model_free(m);
        return rc;
    }
    *out = m;
    return IKV_OK;
}

int ikv_model_shape_preset(const char *name, ikv_model_shape *shape)
{
    static const struct {
        const char *name;
        ikv_model_shape shape;
    } presets[] = {
        {"tiny", {64, 172, 4, 8, 4, 8, 512, 1024, 10000.0f, 1e-5f, 1}},
        {"llama-3.2-1b", {2048, 8192, 16, 32, 8, 64, 128256, 131072, 500000.0f, 1e-5f, 1}},
        {"llama-3.1-8b", {4096, 14336, 32, 32, 8, 128, 128256, 131072, 500000.0f, 1e-5f, 0}},
    };
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        if (name && strcmp(name, presets[i].name) == 0) {
            *shape = presets[i].shape;
            return IKV_OK;
        }
    }
    return IKV_EINVAL;
}
