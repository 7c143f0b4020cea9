#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "live/live.h"
#include "model/model.h"

struct ikv_live {
    ikv_session *session;
    ikv_policy *policy;
    unsigned needs;
    int entropy_k;
    int L, G, d, D, V;
    int n_past;
    ikv_observer chained;
    int has_chained;
    int failed; /* a callback could not hand a signal to the policy */
    float *topk; /* [k] */
    int32_t *top_ids; /* [k] */
    int32_t *scratch; /* [V] for ikv_top_k */
    ikv_live_stats stats;
    double callback_s; /* policy time spent inside callbacks */
    char err[512];
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int fail(ikv_live *lv, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lv->err, sizeof lv->err, fmt, ap);
    va_end(ap);
    return rc;
}

static void on_qkv(void *user, int layer, int pos, const float *q, const float *k, const float *v)
{
    ikv_live *lv = user;
    if (lv->has_chained && lv->chained.on_qkv)
        lv->chained.on_qkv(lv->chained.user, layer, pos, q, k, v);
}

static void on_attention(void *user, int layer, int pos, const float *probs, int n_keys, int stride)
{
    ikv_live *lv = user;
    if (lv->has_chained && lv->chained.on_attention)
        lv->chained.on_attention(lv->chained.user, layer, pos, probs, n_keys, stride);
    if (lv->failed || !(lv->needs & IKV_NEED_ATTENTION))
        return;
    double t0 = now();
    if (ikv_policy_wants_row(lv->policy, layer, pos) &&
        ikv_policy_observe_attention(lv->policy, layer, pos, probs, n_keys, stride) != IKV_OK) {
        lv->failed = 1;
        fail(lv, IKV_ESTATE, "live: %s", ikv_policy_error(lv->policy));
    }
    lv->callback_s += now() - t0;
}

static void on_residual(void *user, int layer, int pos, const float *before, const float *after)
{
    ikv_live *lv = user;
    if (lv->has_chained && lv->chained.on_residual)
        lv->chained.on_residual(lv->chained.user, layer, pos, before, after);
    if (lv->failed || !(lv->needs & IKV_NEED_EVOLUTION))
        return;
    double t0 = now();
    if (ikv_policy_observe_evolution(lv->policy, layer, pos, ikv_evolution(before, after, lv->D)) != IKV_OK) {
        lv->failed = 1;
        fail(lv, IKV_ESTATE, "live: %s", ikv_policy_error(lv->policy));
    }
    lv->callback_s += now() - t0;
}

static void on_logits(void *user, int pos, const float *logits)
{
    ikv_live *lv = user;
    if (lv->has_chained && lv->chained.on_logits)
        lv->chained.on_logits(lv->chained.user, pos, logits);
    if (lv->failed || !(lv->needs & IKV_NEED_ENTROPY))
        return;
    double t0 = now();
    float h;
    if (lv->entropy_k > 0 && lv->entropy_k < lv->V) {
        ikv_top_k(logits, lv->V, lv->entropy_k, lv->top_ids, lv->scratch);
        for (int i = 0; i < lv->entropy_k; i++)
            lv->topk[i] = logits[lv->top_ids[i]];
        h = ikv_entropy_from_logits(lv->topk, lv->entropy_k);
    } else {
        h = ikv_entropy_from_logits(logits, lv->V);
    }
    if (ikv_policy_observe_entropy(lv->policy, pos, h) != IKV_OK) {
        lv->failed = 1;
        fail(lv, IKV_ESTATE, "live: %s", ikv_policy_error(lv->policy));
    }
    lv->callback_s += now() - t0;
}

static int install_observer(ikv_live *lv)
{
    ikv_observer o;
    memset(&o, 0, sizeof o);
    o.user = lv;
    const ikv_observer *c = lv->has_chained ? &lv->chained : NULL;
    if (c && c->on_qkv)
        o.on_qkv = on_qkv;
    if ((lv->needs & IKV_NEED_ATTENTION) || (c && c->on_attention))
        o.on_attention = on_attention;
    if ((lv->needs & IKV_NEED_EVOLUTION) || (c && c->on_residual))
        o.on_residual = on_residual;
    if ((lv->needs & IKV_NEED_ENTROPY) || (c && c->on_logits))
        o.on_logits = on_logits;
    int any = o.on_qkv || o.on_attention || o.on_residual || o.on_logits;
    if (ikv_session_set_observer(lv->session, any ? &o : NULL) != IKV_OK)
        return fail(lv, IKV_ENOMEM, "live: %s", ikv_session_error(lv->session));
    return IKV_OK;
}

int ikv_live_create(ikv_live **out, ikv_session *session, const ikv_params *params, char *err,
                    size_t errlen)
{
    *out = NULL;
    const ikv_model_details *m = ikv_model_info(ikv_session_model(session));
    ikv_live *lv = calloc(1, sizeof *lv);
    if (!lv) {
        snprintf(err, errlen, "out of memory");
        return IKV_ENOMEM;
    }
    lv->session = session;
    lv->L = m->n_layers;
    lv->G = m->n_kv_heads;
    lv->d = m->head_dim;
    lv->D = m->dim;
    lv->V = m->vocab_size;
    ikv_shape shape = {m->n_layers, m->n_heads, m->n_kv_heads, 0, 0, ikv_session_capacity(session)};
    int rc = ikv_policy_create(&lv->policy, params, &shape, err, errlen);
    if (rc != IKV_OK) {
        free(lv);
        return rc;
    }
    lv->needs = ikv_policy_needs(lv->policy);
    if (lv->needs & IKV_NEED_FUTURE) { /* the oracle: later queries do not exist yet */
        snprintf(err, errlen, "%s needs the future: it runs in replay (infokv-sim) only",
                 ikv_policy_name(params->policy));
        ikv_policy_free(lv->policy);
        free(lv);
        return IKV_EINVAL;
    }
    lv->entropy_k = ikv_policy_entropy_topk(lv->policy);
    if (lv->entropy_k > lv->V)
        lv->entropy_k = lv->V;
    int k = lv->entropy_k > 0 ? lv->entropy_k : 1;
    lv->topk = malloc((size_t)k * sizeof *lv->topk);
    lv->top_ids = malloc((size_t)k * sizeof *lv->top_ids);
    lv->scratch = malloc((size_t)lv->V * sizeof *lv->scratch);
    if (!lv->topk || !lv->top_ids || !lv->scratch || install_observer(lv) != IKV_OK) {
        snprintf(err, errlen, "%s", lv->err[0] ? lv->err : "out of memory");
        ikv_live_free(lv);
        return IKV_ENOMEM;
    }
    *out = lv;
    return IKV_OK;
}

void ikv_live_free(ikv_live *lv)
{
    if (!lv)
        return;
    ikv_session_set_observer(lv->session, NULL);
    ikv_policy_free(lv->policy);
    free(lv->topk);
    free(lv->top_ids);
    free(lv->scratch);
    free(lv);
}

int ikv_live_chain_observer(ikv_live *lv, const ikv_observer *other)
{
    lv->has_chained = other != NULL;
    if (other)
        lv->chained = *other;
    return install_observer(lv);
}

int ikv_live_begin(ikv_live *lv, int n_prompt, int n_total)
{
    ikv_session_reset(lv->session);
    lv->n_past = 0;
    lv->failed = 0;
    lv->err[0] = '\0';
    memset(&lv->stats, 0, sizeof lv->stats);
    lv->callback_s = 0.0;
    if (ikv_policy_begin(lv->policy, n_prompt, n_total) != IKV_OK)
        return fail(lv, IKV_EBUDGET, "%s", ikv_policy_error(lv->policy));
    return IKV_OK;
}

static int step(ikv_live *lv);

int ikv_live_attach(ikv_live *lv, int n_total)
{
    int n = ikv_session_n_past(lv->session);
    for (int l = 0; l < lv->L; l++)
        for (int g = 0; g < lv->G; g++) {
            const int32_t *pos = ikv_session_positions(lv->session, l, g);
            if (ikv_session_cache_len(lv->session, l, g) != n)
                return fail(lv, IKV_ESTATE, "live: attach needs a session that evicted nothing");
            for (int i = 0; i < n; i++)
                if (pos[i] != i)
                    return fail(lv, IKV_ESTATE, "live: attach needs slots in position order");
        }
    lv->failed = 0;
    lv->err[0] = '\0';
    memset(&lv->stats, 0, sizeof lv->stats);
    lv->callback_s = 0.0;
    if (n < 1 || ikv_policy_begin(lv->policy, n, n_total) != IKV_OK)
        return fail(lv, IKV_EBUDGET, "live: %s", n < 1 ? "the session is empty" : ikv_policy_error(lv->policy));
    for (int i = 0; i < n; i++)
        if (ikv_policy_append(lv->policy, i) != IKV_OK)
            return fail(lv, IKV_ECAPACITY, "live: %s", ikv_policy_error(lv->policy));
    lv->n_past = n;
    return step(lv);
}

static void update_bytes(ikv_live *lv)
{
    uint64_t slots = 0;
    for (int l = 0; l < lv->L; l++)
        slots += (uint64_t)ikv_policy_cache_len(lv->policy, l) * (uint64_t)lv->G;
    uint64_t row = 2u * (uint64_t)lv->d * sizeof(float);
    lv->stats.cache_bytes = slots * row;
    lv->stats.full_cache_bytes = (uint64_t)lv->n_past * (uint64_t)lv->L * (uint64_t)lv->G * row;
    if (lv->stats.cache_bytes > lv->stats.peak_cache_bytes)
        lv->stats.peak_cache_bytes = lv->stats.cache_bytes;
}

/* The policy's step and the session's compaction after a forward call. */
static int step(ikv_live *lv)
{
    double t0 = now();
    int evicted = 0;
    if (ikv_policy_step(lv->policy, &evicted) != IKV_OK)
        return fail(lv, IKV_ESTATE, "live: %s", ikv_policy_error(lv->policy));
    for (int l = 0; evicted && l < lv->L; l++) {
        int len = ikv_policy_cache_len(lv->policy, l);
        for (int g = 0; g < lv->G; g++) {
            const ikv_move *moves;
            int n;
            ikv_policy_moves(lv->policy, l, g, &moves, &n);
            if (ikv_session_cache_len(lv->session, l, g) == len)
                continue; /* nothing evicted at this layer */
            if (ikv_session_apply_moves(lv->session, l, g, moves, n, len) != IKV_OK)
                return fail(lv, IKV_ESTATE, "live: %s", ikv_session_error(lv->session));
        }
    }
    if (evicted) {
        lv->stats.evicted += evicted;
        lv->stats.compressions++;
    }
    update_bytes(lv);
    lv->stats.bookkeeping_s += now() - t0;
    return IKV_OK;
}

/* Runs a forward call with the policy's time inside callbacks booked as
 * bookkeeping rather than forward time. */
static int forward(ikv_live *lv, const int32_t *tokens, int n)
{
    double cb0 = lv->callback_s, t0 = now();
    int rc = n == 1 && lv->n_past > 0 ? ikv_session_decode(lv->session, tokens[0])
                                      : ikv_session_prefill(lv->session, tokens, n);
    double spent = now() - t0, in_policy = lv->callback_s - cb0;
    lv->stats.forward_s += spent - in_policy;
    lv->stats.bookkeeping_s += in_policy;
    if (rc != IKV_OK)
        return fail(lv, rc, "live: %s", ikv_session_error(lv->session));
    if (lv->failed)
        return IKV_ESTATE;
    return IKV_OK;
}

int ikv_live_prefill(ikv_live *lv, const int32_t *tokens, int n)
{
    double t0 = now();
    for (int i = 0; i < n; i++)
        if (ikv_policy_append(lv->policy, lv->n_past + i) != IKV_OK)
            return fail(lv, IKV_ECAPACITY, "live: %s", ikv_policy_error(lv->policy));
    lv->stats.bookkeeping_s += now() - t0;
    int rc = forward(lv, tokens, n);
    if (rc != IKV_OK)
        return rc;
    lv->n_past += n;
    return step(lv);
}

int ikv_live_decode(ikv_live *lv, int32_t token)
{
    return ikv_live_prefill(lv, &token, 1);
}

const float *ikv_live_logits(const ikv_live *lv)
{
    return ikv_session_logits(lv->session);
}

const ikv_live_stats *ikv_live_stats_of(const ikv_live *lv)
{
    return &lv->stats;
}

const ikv_policy *ikv_live_policy(const ikv_live *lv)
{
    return lv->policy;
}

int ikv_live_cache_len(const ikv_live *lv, int layer)
{
    return ikv_policy_cache_len(lv->policy, layer);
}

const char *ikv_live_error(const ikv_live *lv)
{
    return lv->err;
}
