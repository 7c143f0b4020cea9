/*
 * Sessions: buffers, the KV cache and its bookkeeping (eviction moves,
 * truncation), argument checks of the forward calls, the observer.
 */
#include "config.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "model/session_internal.h"
#include "util/bigalloc.h"

int ikv_session_fail(ikv_session *s, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
    return status;
}

const char *ikv_session_error(const ikv_session *s)
{
    return s->err;
}

/* Zeroed, 64-byte aligned; sets *failed instead of returning NULL quietly. */
static void *alloc_array(size_t count, size_t size, int *failed)
{
    if (*failed)
        return NULL;
    size_t bytes = (count * size + 63) / 64 * 64;
    void *p = aligned_alloc(64, bytes ? bytes : 64);
    if (!p)
        *failed = 1;
    else
        memset(p, 0, bytes ? bytes : 64);
    return p;
}

/* The observer's prompt logits and attention rows: the engine writes
 * each row before it is reported, so they need no zeroing, and a large
 * model's (Llama-3.2-1B: 16 MiB of logits) come on huge pages: zeroing
 * them with 4 KiB faults cost a 1B capture 25 ms before its first token. */
static size_t logit_rows_bytes(const ikv_session *s)
{
    return (size_t)IKV_LOGIT_ROWS * (size_t)s->V * sizeof(float);
}

static size_t probs_bytes(const ikv_session *s)
{
    return (size_t)s->probs_rows * (size_t)s->H * (size_t)s->capacity * sizeof(float);
}

void ikv_session_free(ikv_session *s)
{
    if (!s)
        return;
    free(s->k_cache);
    free(s->v_cache);
    free(s->positions);
    free(s->len);
    free(s->logits);
    free(s->pos);
    free(s->x);
    free(s->xb);
    free(s->q);
    free(s->k);
    free(s->v);
    free(s->att);
    free(s->hb);
    free(s->hb2);
    free(s->rope_cos);
    free(s->rope_sin);
    free(s->scores);
    free(s->tiles);
    free(s->before);
    ikv_big_free(s->probs, probs_bytes(s));
    ikv_big_free(s->logit_rows, logit_rows_bytes(s));
    ikv_workspace_free(&s->ws);
    free(s);
}

/* The largest workspace any product of a forward call needs, so that
 * products never fail for memory half-way through a call. */
static size_t workspace_need(const ikv_session *s)
{
    const ikv_model *m = s->m;
    const ikv_layer_weights *lw = &m->layers[0];
    const ikv_matrix *mats[] = {&lw->wq, &lw->wk, &lw->wv, &lw->wo, &lw->w_gate, &lw->w_up, &lw->w_down};
    size_t need = 0;
    for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) {
        size_t w = ikv_matmul_workspace(mats[i], s->batch, s->n_threads);
        need = w > need ? w : need;
    }
    size_t w = ikv_matmul_workspace(&m->output, IKV_LOGIT_ROWS, s->n_threads);
    need = w > need ? w : need;
    w = ikv_matvec_workspace(&m->output); /* the last position's logits */
    return w > need ? w : need;
}

int ikv_session_create(ikv_session **out, const ikv_model *m, int max_seq, int n_threads, char *err,
                       size_t errlen)
{
    *out = NULL;
    const ikv_model_details *info = ikv_model_info(m);
    if (max_seq <= 0)
        max_seq = info->max_seq_len;
    if (n_threads <= 0) {
#ifdef _OPENMP
        n_threads = omp_get_max_threads();
#else
        n_threads = 1;
#endif
    }
    if (n_threads > 1024)
        n_threads = 1024;
    /* keys and values of every slot must be addressable */
    double cache_bytes = 2.0 * info->n_layers * info->n_kv_heads * (double)max_seq * info->head_dim * sizeof(float);
    if (max_seq > (1 << 30) || cache_bytes > (double)(SIZE_MAX / 4)) {
        snprintf(err, errlen, "session: a cache of %d positions is too large", max_seq);
        return IKV_ENOMEM;
    }
    ikv_session *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "session: out of memory");
        return IKV_ENOMEM;
    }
    s->m = m;
    s->capacity = max_seq;
    s->n_threads = n_threads;
    s->L = info->n_layers;
    s->H = info->n_heads;
    s->G = info->n_kv_heads;
    s->d = info->head_dim;
    s->D = info->dim;
    s->F = info->hidden_dim;
    s->V = info->vocab_size;
    s->qd = s->H * s->d;
    s->kvd = s->G * s->d;
    s->batch = max_seq < IKV_PREFILL_BATCH ? max_seq : IKV_PREFILL_BATCH;

    size_t slots = (size_t)s->L * s->G * (size_t)s->capacity;
    size_t half = (size_t)info->rope_dim / 2;
    size_t B = (size_t)s->batch;
    int failed = 0;
    /* calloc: the caches are mostly untouched pages until used */
    s->k_cache = calloc(slots * s->d, sizeof *s->k_cache);
    s->v_cache = calloc(slots * s->d, sizeof *s->v_cache);
    s->positions = calloc(slots, sizeof *s->positions);
    failed = !s->k_cache || !s->v_cache || !s->positions;
    s->len = alloc_array((size_t)s->L * s->G, sizeof *s->len, &failed);
    s->logits = alloc_array((size_t)s->V, sizeof(float), &failed);
    s->pos = alloc_array(B, sizeof *s->pos, &failed);
    s->x = alloc_array(B * s->D, sizeof(float), &failed);
    s->xb = alloc_array(B * s->D, sizeof(float), &failed);
    s->q = alloc_array(B * s->qd, sizeof(float), &failed);
    s->k = alloc_array(B * s->kvd, sizeof(float), &failed);
    s->v = alloc_array(B * s->kvd, sizeof(float), &failed);
    s->att = alloc_array(B * s->qd, sizeof(float), &failed);
    s->hb = alloc_array(B * s->F, sizeof(float), &failed);
    s->hb2 = alloc_array(B * s->F, sizeof(float), &failed);
    s->rope_cos = alloc_array(B * half, sizeof(float), &failed);
    s->rope_sin = alloc_array(B * half, sizeof(float), &failed);
    s->scores = alloc_array((size_t)n_threads * s->capacity, sizeof(float), &failed);
    if (s->d <= IKV_TILE_MAX_HEAD)
        s->tiles = alloc_array((size_t)n_threads * ((size_t)s->capacity + 2 * (size_t)s->d) * IKV_QUERY_TILE,
                               sizeof(float), &failed);
    if (!failed && ikv_workspace_reserve(&s->ws, workspace_need(s)) != IKV_OK)
        failed = 1;
    if (failed) {
        snprintf(err, errlen, "session: out of memory for a cache of %d positions (%.1f MiB)",
                 max_seq, 2.0 * (double)slots * s->d * sizeof(float) / (1 << 20));
        ikv_session_free(s);
        return IKV_ENOMEM;
    }
    *out = s;
    return IKV_OK;
}

void ikv_session_reset(ikv_session *s)
{
    memset(s->len, 0, (size_t)s->L * s->G * sizeof *s->len);
    s->n_past = 0;
    s->has_logits = 0;
    s->err[0] = '\0';
}

int ikv_session_set_observer(ikv_session *s, const ikv_observer *obs)
{
    if (!obs) {
        memset(&s->obs, 0, sizeof s->obs);
        s->has_obs = 0;
        return IKV_OK;
    }
    int failed = 0;
    if (obs->on_residual && !s->before)
        s->before = alloc_array((size_t)s->batch * s->D, sizeof(float), &failed);
    if (obs->on_logits && !s->logit_rows && !(s->logit_rows = ikv_big_alloc(logit_rows_bytes(s))))
        failed = 1;
    if (obs->on_attention && !s->probs) {
        size_t row = (size_t)s->H * s->capacity * sizeof(float);
        size_t rows = IKV_PROBS_BYTES / row;
        s->probs_rows = rows < 1 ? 1 : rows > (size_t)s->batch ? s->batch : (int)rows;
        if (!(s->probs = ikv_big_alloc(probs_bytes(s))))
            failed = 1;
    }
    if (failed)
        return ikv_session_fail(s, IKV_ENOMEM, "observer: out of memory");
    s->obs = *obs;
    s->has_obs = 1;
    return IKV_OK;
}

/* Checks shared by the forward calls: tokens, cache room, equal lengths. */
static int check_forward(ikv_session *s, const int32_t *tokens, int n)
{
    if (n < 1 || !tokens)
        return ikv_session_fail(s, IKV_EINVAL, "no tokens to process");
    for (int t = 0; t < n; t++)
        if (tokens[t] < 0 || tokens[t] >= s->V)
            return ikv_session_fail(s, IKV_EINVAL, "token id %d is outside the vocabulary (0..%d)",
                                    (int)tokens[t], s->V - 1);
    for (int l = 0; l < s->L; l++) {
        const int *len = s->len + (size_t)l * s->G;
        for (int g = 1; g < s->G; g++)
            if (len[g] != len[0])
                return ikv_session_fail(s, IKV_ESTATE,
                                        "layer %d: KV heads hold different slot counts (%d and %d); "
                                        "apply the moves of every KV head first", l, len[0], len[g]);
        if (len[0] > s->capacity - n)
            return ikv_session_fail(s, IKV_ECAPACITY,
                                    "layer %d: %d cached + %d new slots exceed the capacity %d", l,
                                    len[0], n, s->capacity);
    }
    return IKV_OK;
}

/* Runs tokens at consecutive positions from `first`, batch by batch. */
static int run(ikv_session *s, const int32_t *tokens, int n, int32_t first)
{
    if ((int64_t)first + n > INT32_MAX)
        return ikv_session_fail(s, IKV_EINVAL, "position %lld is too large", (long long)first + n);
    int32_t positions[IKV_PREFILL_BATCH];
    for (int t0 = 0; t0 < n; t0 += s->batch) {
        int nb = n - t0 < s->batch ? n - t0 : s->batch;
        for (int t = 0; t < nb; t++)
            positions[t] = first + t0 + t;
        ikv_forward(s, tokens + t0, positions, nb);
    }
    s->err[0] = '\0';
    return IKV_OK;
}

int ikv_session_prefill(ikv_session *s, const int32_t *tokens, int n)
{
    int rc = check_forward(s, tokens, n);
    return rc ? rc : run(s, tokens, n, s->n_past);
}

int ikv_session_decode(ikv_session *s, int32_t token)
{
    return ikv_session_prefill(s, &token, 1);
}

int ikv_session_decode_at(ikv_session *s, int32_t token, int32_t pos)
{
    if (pos < s->n_past)
        return ikv_session_fail(s, IKV_EINVAL, "position %d is not after the cached positions (next is %d)",
                                (int)pos, s->n_past);
    int rc = check_forward(s, &token, 1);
    return rc ? rc : run(s, &token, 1, pos);
}

int ikv_session_truncate(ikv_session *s, int n)
{
    if (n < 0 || n > s->n_past)
        return ikv_session_fail(s, IKV_EINVAL, "cannot truncate to %d positions (%d processed)", n,
                                s->n_past);
    size_t caches = (size_t)s->L * s->G;
    for (size_t c = 0; c < caches; c++) {
        const int32_t *pos = s->positions + c * s->capacity;
        for (int i = 1; i < s->len[c]; i++)
            if (pos[i] <= pos[i - 1])
                return ikv_session_fail(s, IKV_ESTATE,
                                        "cannot truncate: layer %d KV head %d was compacted (slots are "
                                        "not in position order)", (int)(c / s->G), (int)(c % s->G));
    }
    for (size_t c = 0; c < caches; c++) {
        const int32_t *pos = s->positions + c * s->capacity;
        int keep = s->len[c];
        while (keep > 0 && pos[keep - 1] >= n)
            keep--;
        s->len[c] = keep;
    }
    s->n_past = n;
    s->has_logits = 0;
    s->err[0] = '\0';
    return IKV_OK;
}

int ikv_session_copy_cache(ikv_session *dst, const ikv_session *src)
{
    if (dst->m != src->m)
        return ikv_session_fail(dst, IKV_EINVAL, "cannot copy a cache between sessions of different models");
    size_t caches = (size_t)src->L * src->G;
    for (size_t c = 0; c < caches; c++)
        if (src->len[c] > dst->capacity)
            return ikv_session_fail(dst, IKV_ECAPACITY, "the cache holds %d slots, this session %d",
                                    src->len[c], dst->capacity);
    const size_t d = (size_t)src->d;
    for (size_t c = 0; c < caches; c++) {
        size_t n = (size_t)src->len[c];
        memcpy(dst->k_cache + c * (size_t)dst->capacity * d, src->k_cache + c * (size_t)src->capacity * d,
               n * d * sizeof *src->k_cache);
        memcpy(dst->v_cache + c * (size_t)dst->capacity * d, src->v_cache + c * (size_t)src->capacity * d,
               n * d * sizeof *src->v_cache);
        memcpy(dst->positions + c * (size_t)dst->capacity, src->positions + c * (size_t)src->capacity,
               n * sizeof *src->positions);
        dst->len[c] = src->len[c];
    }
    dst->n_past = src->n_past;
    dst->has_logits = src->has_logits;
    memcpy(dst->logits, src->logits, (size_t)src->V * sizeof *src->logits);
    dst->err[0] = '\0';
    return IKV_OK;
}

const float *ikv_session_logits(const ikv_session *s)
{
    return s->has_logits ? s->logits : NULL;
}

int ikv_session_n_past(const ikv_session *s)
{
    return s->n_past;
}

static int valid_cache(const ikv_session *s, int layer, int kv_head)
{
    return layer >= 0 && layer < s->L && kv_head >= 0 && kv_head < s->G;
}

int ikv_session_apply_moves(ikv_session *s, int layer, int kv_head, const ikv_move *moves,
                            int n_moves, int new_len)
{
    if (!valid_cache(s, layer, kv_head))
        return ikv_session_fail(s, IKV_EINVAL, "no cache for layer %d KV head %d", layer, kv_head);
    size_t c = (size_t)layer * s->G + kv_head;
    int len = s->len[c];
    if (new_len < 0 || new_len > len || n_moves < 0 || (n_moves > 0 && !moves))
        return ikv_session_fail(s, IKV_EINVAL, "layer %d KV head %d: new length %d with %d moves "
                                "(the cache holds %d)", layer, kv_head, new_len, n_moves, len);
    for (int i = 0; i < n_moves; i++)
        if (moves[i].dst < 0 || moves[i].dst >= new_len || moves[i].src < new_len || moves[i].src >= len)
            return ikv_session_fail(s, IKV_EINVAL, "layer %d KV head %d: move %d -> %d is outside "
                                    "[0, %d) <- [%d, %d)", layer, kv_head, (int)moves[i].src,
                                    (int)moves[i].dst, new_len, new_len, len);
    size_t d = (size_t)s->d;
    float *kc = s->k_cache + c * s->capacity * d, *vc = s->v_cache + c * s->capacity * d;
    int32_t *pos = s->positions + c * s->capacity;
    for (int i = 0; i < n_moves; i++) {
        memcpy(kc + moves[i].dst * d, kc + moves[i].src * d, d * sizeof *kc);
        memcpy(vc + moves[i].dst * d, vc + moves[i].src * d, d * sizeof *vc);
        pos[moves[i].dst] = pos[moves[i].src];
    }
    s->len[c] = new_len;
    return IKV_OK;
}

int ikv_session_cache_len(const ikv_session *s, int layer, int kv_head)
{
    return valid_cache(s, layer, kv_head) ? s->len[(size_t)layer * s->G + kv_head] : -1;
}

const int32_t *ikv_session_positions(const ikv_session *s, int layer, int kv_head)
{
    if (!valid_cache(s, layer, kv_head))
        return NULL;
    return s->positions + ((size_t)layer * s->G + kv_head) * s->capacity;
}

const float *ikv_session_keys(const ikv_session *s, int layer, int kv_head)
{
    if (!valid_cache(s, layer, kv_head))
        return NULL;
    return s->k_cache + ((size_t)layer * s->G + kv_head) * s->capacity * s->d;
}

const float *ikv_session_values(const ikv_session *s, int layer, int kv_head)
{
    if (!valid_cache(s, layer, kv_head))
        return NULL;
    return s->v_cache + ((size_t)layer * s->G + kv_head) * s->capacity * s->d;
}

int ikv_session_capacity(const ikv_session *s)
{
    return s->capacity;
}

int ikv_session_threads(const ikv_session *s)
{
    return s->n_threads;
}

const ikv_model *ikv_session_model(const ikv_session *s)
{
    return s->m;
}
