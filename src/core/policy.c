/*
 * The policy handle: creation, the per-token protocol (append, observe,
 * step) and the slot bookkeeping shared by every policy.
 *
 * Everything is allocated in ikv_policy_create(); the per-token path only
 * reads and writes those buffers.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

int ikv_fail(ikv_policy *p, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof p->err, fmt, ap);
    va_end(ap);
    return status;
}

const ikv_policy_ops *ikv_ops_for(ikv_policy_kind kind)
{
    switch (kind) {
    case IKV_POLICY_FULL: return &ikv_full_ops;
    case IKV_POLICY_RANDOM: return &ikv_random_ops;
    case IKV_POLICY_STREAMING: return &ikv_streaming_ops;
    case IKV_POLICY_H2O: return &ikv_h2o_ops;
    case IKV_POLICY_TOVA: return &ikv_tova_ops;
    case IKV_POLICY_SNAPKV: return &ikv_snapkv_ops;
    case IKV_POLICY_PYRAMIDKV: return &ikv_pyramidkv_ops;
    case IKV_POLICY_INFOKV: return &ikv_infokv_ops;
    case IKV_POLICY_ORACLE: return &ikv_oracle_ops;
    default: return NULL;
    }
}

/* State the policy keeps, which may depend on the scenario (InfoKV scores
 * attention like SnapKV in prefill and like H2O in decode). */
static unsigned policy_state(const ikv_policy *p)
{
    unsigned state = p->ops->state;
    if (p->params.policy == IKV_POLICY_INFOKV)
        state |= p->params.scenario == IKV_SCENARIO_DECODE ? IKV_STATE_ACC : IKV_STATE_WIN;
    return state;
}

static void *alloc_array(size_t count, size_t size, int *failed)
{
    if (*failed)
        return NULL;
    void *ptr = calloc(count ? count : 1, size);
    if (!ptr)
        *failed = 1;
    return ptr;
}

void ikv_policy_free(ikv_policy *p)
{
    if (!p)
        return;
    if (p->layers) {
        for (int l = 0; l < p->shape.layer_count; l++) {
            ikv_layer_state *L = &p->layers[l];
            free(L->pos);
            free(L->acc);
            free(L->win);
            free(L->future);
            free(L->evolution);
            free(L->moves);
            free(L->n_moves);
            free(L->evicted);
            free(L->n_evicted);
            free(L->rng);
        }
        free(p->layers);
    }
    free(p->appended);
    free(p->entropy);
    free(p->ranks);
    free(p->score);
    free(p->aux);
    free(p->aux2);
    free(p->mark);
    free(p->victims);
    free(p->model_budgets);
    free(p);
}

static int check_params(const ikv_params *pr, char *err, size_t errlen)
{
    if ((unsigned)pr->policy >= IKV_POLICY_COUNT)
        return ikv_set_error(err, errlen, IKV_EINVAL, "unknown policy %d", (int)pr->policy);
    if ((unsigned)pr->scenario > IKV_SCENARIO_DECODE ||
        (unsigned)pr->allocation > IKV_ALLOC_PYRAMID ||
        (unsigned)pr->aggregation > IKV_AGG_SUM ||
        (unsigned)pr->snapkv.pool > IKV_POOL_NONE ||
        (unsigned)pr->infokv.entropy_at > IKV_ENTROPY_SELF)
        return ikv_set_error(err, errlen, IKV_EINVAL, "%s: an enumerated parameter is out of range",
                             ikv_policy_name(pr->policy));
    if (pr->budget.is_fraction ? !(pr->budget.value > 0.0 && pr->budget.value <= 1.0)
                               : !(pr->budget.value >= 1.0 && pr->budget.value <= 1e9))
        return ikv_set_error(err, errlen, IKV_EINVAL, "%s: budget %g is out of range",
                             ikv_policy_name(pr->policy), pr->budget.value);
    if (pr->interval < 1)
        return ikv_set_error(err, errlen, IKV_EINVAL, "%s: interval must be >= 1",
                             ikv_policy_name(pr->policy));
    if (!(pr->pyramid_beta >= 1.0))
        return ikv_set_error(err, errlen, IKV_EINVAL, "%s: pyramid_beta must be >= 1",
                             ikv_policy_name(pr->policy));
    if (pr->streaming.sinks < 0 || !(pr->h2o.heavy >= 0.0 && pr->h2o.heavy <= 1.0))
        return ikv_set_error(err, errlen, IKV_EINVAL, "%s: sinks must be >= 0 and heavy in [0, 1]",
                             ikv_policy_name(pr->policy));
    if (pr->snapkv.window < 1 || pr->snapkv.kernel < 1 || pr->snapkv.kernel % 2 == 0)
        return ikv_set_error(err, errlen, IKV_EINVAL, "%s: window must be >= 1 and kernel odd",
                             ikv_policy_name(pr->policy));
    if (!(pr->infokv.alpha >= 0.0 && pr->infokv.alpha <= 1.0) ||
        !(pr->infokv.beta >= 0.0 && pr->infokv.beta <= 1.0) || pr->infokv.topk < 0)
        return ikv_set_error(err, errlen, IKV_EINVAL, "%s: alpha and beta must be in [0, 1], k >= 0",
                             ikv_policy_name(pr->policy));
    return IKV_OK;
}

int ikv_policy_create(ikv_policy **out, const ikv_params *params,
                      const ikv_shape *shape, char *err, size_t errlen)
{
    if (!out)
        return ikv_set_error(err, errlen, IKV_EINVAL, "ikv_policy_create: no output handle");
    *out = NULL;
    if (!params || !shape)
        return ikv_set_error(err, errlen, IKV_EINVAL, "ikv_policy_create: missing params or shape");
    int rc = check_params(params, err, errlen);
    if (rc != IKV_OK)
        return rc;
    ikv_shape s = *shape;
    if (s.n_layers < 1 || s.n_heads < 1 || s.n_kv_heads < 1 || s.n_heads % s.n_kv_heads != 0)
        return ikv_set_error(err, errlen, IKV_EINVAL,
                             "shape: need n_layers, n_heads, n_kv_heads >= 1 with n_heads a multiple of n_kv_heads (got %d, %d, %d)",
                             s.n_layers, s.n_heads, s.n_kv_heads);
    if (s.layer_count == 0)
        s.layer_count = s.n_layers - s.layer_first;
    if (s.layer_first < 0 || s.layer_count < 1 || s.layer_first + s.layer_count > s.n_layers)
        return ikv_set_error(err, errlen, IKV_EINVAL,
                             "shape: layers [%d, %d) are not within the model's %d",
                             s.layer_first, s.layer_first + s.layer_count, s.n_layers);
    /* Bound the products below so that no size computation can overflow. */
    if (s.capacity < 1 || s.capacity > (1 << 28) || s.n_heads > 4096 || s.n_layers > 4096)
        return ikv_set_error(err, errlen, IKV_EINVAL,
                             "shape: capacity %d (or heads/layers) out of range", s.capacity);
    if (params->policy == IKV_POLICY_SNAPKV || params->policy == IKV_POLICY_PYRAMIDKV ||
        (params->policy == IKV_POLICY_INFOKV && params->scenario == IKV_SCENARIO_PREFILL)) {
        if (params->scenario == IKV_SCENARIO_DECODE && params->snapkv.window > params->interval)
            return ikv_set_error(err, errlen, IKV_EINVAL,
                                 "%s: window (%d) must not exceed interval (%d) in decode: the window is observed between two compressions",
                                 ikv_policy_name(params->policy), params->snapkv.window, params->interval);
    }

    ikv_policy *p = calloc(1, sizeof *p);
    if (!p)
        return ikv_set_error(err, errlen, IKV_ENOMEM, "out of memory");
    p->params = *params;
    p->shape = s;
    p->group = s.n_heads / s.n_kv_heads;
    p->capacity = s.capacity;
    p->ops = ikv_ops_for(params->policy);

    const size_t cap = (size_t)s.capacity;
    const size_t H = (size_t)s.n_heads, G = (size_t)s.n_kv_heads;
    const unsigned state = policy_state(p);
    int failed = 0;
    p->layers = alloc_array((size_t)s.layer_count, sizeof *p->layers, &failed);
    for (int l = 0; !failed && l < s.layer_count; l++) {
        ikv_layer_state *L = &p->layers[l];
        L->pos = alloc_array(G * cap, sizeof *L->pos, &failed);
        if (state & IKV_STATE_ACC)
            L->acc = alloc_array(H * cap, sizeof *L->acc, &failed);
        if (state & IKV_STATE_WIN)
            L->win = alloc_array(H * cap, sizeof *L->win, &failed);
        if (state & IKV_STATE_FUTURE)
            L->future = alloc_array(G * cap, sizeof *L->future, &failed);
        if (state & IKV_STATE_INFO)
            L->evolution = alloc_array(cap, sizeof *L->evolution, &failed);
        L->moves = alloc_array(G * cap, sizeof *L->moves, &failed);
        L->n_moves = alloc_array(G, sizeof *L->n_moves, &failed);
        L->evicted = alloc_array(G * cap, sizeof *L->evicted, &failed);
        L->n_evicted = alloc_array(G, sizeof *L->n_evicted, &failed);
        L->rng = alloc_array(G, sizeof *L->rng, &failed);
    }
    p->appended = alloc_array(cap, sizeof *p->appended, &failed);
    if (state & IKV_STATE_INFO)
        p->entropy = alloc_array(cap, sizeof *p->entropy, &failed);
    p->ranks = alloc_array(cap, sizeof *p->ranks, &failed);
    p->score = alloc_array(cap, sizeof *p->score, &failed);
    p->aux = alloc_array(cap, sizeof *p->aux, &failed);
    p->aux2 = alloc_array(cap, sizeof *p->aux2, &failed);
    p->mark = alloc_array(cap, sizeof *p->mark, &failed);
    p->victims = alloc_array(cap, sizeof *p->victims, &failed);
    p->model_budgets = alloc_array((size_t)s.n_layers, sizeof *p->model_budgets, &failed);
    if (failed) {
        ikv_policy_free(p);
        return ikv_set_error(err, errlen, IKV_ENOMEM,
                             "out of memory for a %s policy of capacity %d",
                             ikv_policy_name(params->policy), s.capacity);
    }
    *out = p;
    return IKV_OK;
}

const char *ikv_policy_error(const ikv_policy *p)
{
    return p ? p->err : "no policy";
}

unsigned ikv_policy_needs(const ikv_policy *p)
{
    if (!p)
        return 0u;
    unsigned needs = p->ops->needs;
    if (p->params.policy == IKV_POLICY_INFOKV) {
        /* The information score is skipped when it has no weight, and each
         * of its parts when the other has all of it. */
        if (p->params.infokv.alpha == 0.0 || p->params.infokv.beta == 1.0)
            needs &= ~(unsigned)IKV_NEED_ENTROPY;
        if (p->params.infokv.alpha == 0.0 || p->params.infokv.beta == 0.0)
            needs &= ~(unsigned)IKV_NEED_EVOLUTION;
    }
    return needs;
}

const ikv_params *ikv_policy_params(const ikv_policy *p)
{
    return p ? &p->params : NULL;
}

int ikv_policy_entropy_topk(const ikv_policy *p)
{
    return p ? p->params.infokv.topk : 0;
}

static int reserved_slots(const ikv_policy *p)
{
    return p->ops->reserved ? p->ops->reserved(p) : 0;
}

/* Queries before a compression whose attention rows count in `win`. */
static int observation_window(const ikv_policy *p)
{
    if (p->params.policy == IKV_POLICY_TOVA)
        return 1; /* TOVA scores with the last query only */
    if (p->params.policy == IKV_POLICY_SNAPKV || p->params.policy == IKV_POLICY_PYRAMIDKV ||
        p->params.policy == IKV_POLICY_INFOKV)
        return p->params.snapkv.window;
    return 0;
}

int ikv_policy_begin(ikv_policy *p, int n_prompt, int n_total)
{
    if (!p)
        return IKV_EINVAL;
    p->began = 0;
    p->err[0] = '\0';
    if (n_prompt < 1 || n_prompt > p->capacity)
        return ikv_fail(p, IKV_EINVAL, "prompt length %d is outside [1, %d]", n_prompt, p->capacity);
    if (n_total != 0 && (n_total < n_prompt || n_total > p->capacity))
        return ikv_fail(p, IKV_EINVAL, "sequence length %d is outside [%d, %d]", n_total, n_prompt, p->capacity);

    const ikv_params *pr = &p->params;
    const char *name = ikv_policy_name(pr->policy);
    int budget = 0;
    if (pr->policy != IKV_POLICY_FULL) {
        if (pr->budget.is_fraction) {
            int ref = pr->scenario == IKV_SCENARIO_PREFILL ? n_prompt : n_total;
            if (ref == 0)
                return ikv_fail(p, IKV_EBUDGET,
                                "%s: a fractional budget in decode needs the sequence length", name);
            budget = (int)ceil(pr->budget.value * ref - 1e-9);
            if (budget < 1)
                budget = 1;
        } else {
            budget = (int)pr->budget.value;
        }
    }
    p->budget = budget;

    int reserved = reserved_slots(p);
    for (int l = 0; l < p->shape.layer_count; l++)
        p->layers[l].budget = budget;
    if (budget > 0) {
        /* Allocate over the whole model, then keep the managed layers. */
        int rc = ikv_allocate_budgets(pr->allocation, budget, p->shape.n_layers, reserved,
                                      pr->pyramid_beta, p->model_budgets);
        if (rc != IKV_OK)
            return ikv_fail(p, rc, "%s: cannot allocate budget %d over %d layers", name,
                            budget, p->shape.n_layers);
        for (int l = 0; l < p->shape.layer_count; l++) {
            int b = p->model_budgets[p->shape.layer_first + l];
            int layer = p->shape.layer_first + l;
            p->layers[l].budget = b;
            if (pr->policy == IKV_POLICY_STREAMING && b < reserved)
                return ikv_fail(p, IKV_EBUDGET,
                                "streaming: budget %d at layer %d is below the %d sink tokens; raise the budget or lower sinks=",
                                b, layer, reserved);
            if (b < reserved)
                return ikv_fail(p, IKV_EBUDGET,
                                "%s: budget %d at layer %d is below the observation window (%d); raise the budget or lower window=",
                                name, b, layer, reserved);
        }
    }

    /* Reset the sequence. */
    const size_t cap = (size_t)p->capacity;
    const size_t H = (size_t)p->shape.n_heads, G = (size_t)p->shape.n_kv_heads;
    for (int l = 0; l < p->shape.layer_count; l++) {
        ikv_layer_state *L = &p->layers[l];
        L->n = 0;
        if (L->acc)
            memset(L->acc, 0, H * cap * sizeof *L->acc);
        if (L->win)
            memset(L->win, 0, H * cap * sizeof *L->win);
        L->future_valid = 0;
        if (L->evolution)
            for (size_t i = 0; i < cap; i++)
                L->evolution[i] = NAN;
        for (size_t g = 0; g < G; g++) {
            L->n_moves[g] = 0;
            L->n_evicted[g] = 0;
            int layer = p->shape.layer_first + l;
            uint64_t seed = pr->random.seed ^ (0xA0761D6478BD642Full * (uint64_t)(layer + 1)) ^
                            (0xE7037ED1A0B428DBull * (uint64_t)(g + 1));
            L->rng[g] = seed;
            (void)ikv_rng_next(&L->rng[g]);
        }
    }
    if (p->entropy)
        for (size_t i = 0; i < cap; i++)
            p->entropy[i] = NAN;
    memset(p->mark, 0, cap);
    p->n_appended = 0;
    p->n_prompt = n_prompt;
    p->n_total = n_total;
    p->prefill_done = 0;
    p->next_compress = n_prompt;
    p->began = 1;
    return IKV_OK;
}

static ikv_layer_state *layer_of(const ikv_policy *p, int layer)
{
    int l = layer - p->shape.layer_first;
    if (l < 0 || l >= p->shape.layer_count)
        return NULL;
    return &p->layers[l];
}

int ikv_policy_layer_budget(const ikv_policy *p, int layer)
{
    const ikv_layer_state *L = p ? layer_of(p, layer) : NULL;
    return L ? L->budget : 0;
}

/* Append index of a position (binary search over the append log), or -1. */
static int append_index(const ikv_policy *p, int32_t pos)
{
    int lo = 0, hi = p->n_appended;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (p->appended[mid] < pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (lo < p->n_appended && p->appended[lo] == pos) ? lo : -1;
}

/* Whether a compression may still happen in this sequence. */
static int compressions_ahead(const ikv_policy *p)
{
    if (p->params.policy == IKV_POLICY_FULL)
        return 0;
    return !p->prefill_done || p->params.scenario == IKV_SCENARIO_DECODE;
}

static int in_window(const ikv_policy *p, int qi)
{
    int w = observation_window(p);
    return w > 0 && qi >= p->next_compress - w && qi < p->next_compress;
}

int ikv_policy_wants_row(const ikv_policy *p, int layer, int32_t query_pos)
{
    if (!p || !p->began || !layer_of(p, layer) || !compressions_ahead(p))
        return 0;
    const ikv_layer_state *L = layer_of(p, layer);
    if (L->acc)
        return 1;
    if (!L->win)
        return 0;
    int qi = append_index(p, query_pos);
    return qi >= 0 && in_window(p, qi);
}

int ikv_policy_append(ikv_policy *p, int32_t pos)
{
    if (!p)
        return IKV_EINVAL;
    if (!p->began)
        return ikv_fail(p, IKV_ESTATE, "append before begin");
    if (pos < 0 || pos >= p->capacity)
        return ikv_fail(p, IKV_ECAPACITY, "position %d is outside the capacity [0, %d)",
                        (int)pos, p->capacity);
    if (p->n_appended > 0 && pos <= p->appended[p->n_appended - 1])
        return ikv_fail(p, IKV_EINVAL, "position %d does not follow %d", (int)pos,
                        (int)p->appended[p->n_appended - 1]);
    for (int l = 0; l < p->shape.layer_count; l++) {
        if (p->layers[l].n >= p->capacity)
            return ikv_fail(p, IKV_ECAPACITY, "layer %d holds %d slots already",
                            p->shape.layer_first + l, p->layers[l].n);
    }
    const size_t cap = (size_t)p->capacity;
    for (int l = 0; l < p->shape.layer_count; l++) {
        ikv_layer_state *L = &p->layers[l];
        int slot = L->n++;
        for (int g = 0; g < p->shape.n_kv_heads; g++)
            L->pos[(size_t)g * cap + (size_t)slot] = pos;
        for (int h = 0; h < p->shape.n_heads; h++) {
            if (L->acc)
                L->acc[(size_t)h * cap + (size_t)slot] = 0.0f;
            if (L->win)
                L->win[(size_t)h * cap + (size_t)slot] = 0.0f;
        }
        L->future_valid = 0;
    }
    p->appended[p->n_appended++] = pos;
    return IKV_OK;
}

int ikv_policy_observe_attention(ikv_policy *p, int layer, int32_t query_pos,
                                 const float *probs, int n_keys, int stride)
{
    if (!p)
        return IKV_EINVAL;
    if (!p->began)
        return ikv_fail(p, IKV_ESTATE, "observe_attention before begin");
    ikv_layer_state *L = layer_of(p, layer);
    if (!L)
        return ikv_fail(p, IKV_EINVAL, "layer %d is not managed by this policy", layer);
    if (!probs || n_keys < 0 || n_keys > L->n || stride < n_keys)
        return ikv_fail(p, IKV_EINVAL,
                        "attention row at layer %d: %d keys (stride %d) for %d slots", layer,
                        n_keys, stride, L->n);
    int qi = append_index(p, query_pos);
    if (qi < 0)
        return ikv_fail(p, IKV_EINVAL, "query position %d was not appended", (int)query_pos);
    if (!compressions_ahead(p))
        return IKV_OK;
    const size_t cap = (size_t)p->capacity;
    const int H = p->shape.n_heads;
    if (L->acc)
        for (int h = 0; h < H; h++)
            ikv_row_add(L->acc + (size_t)h * cap, probs + (size_t)h * (size_t)stride, n_keys);
    if (L->win && in_window(p, qi)) {
        for (int h = 0; h < H; h++) {
            float *dst = L->win + (size_t)h * cap;
            const float *src = probs + (size_t)h * (size_t)stride;
            if (p->params.policy == IKV_POLICY_TOVA) {
                /* TOVA: the latest query's row replaces the previous one. */
                for (int i = 0; i < n_keys; i++)
                    dst[i] = src[i];
                for (int i = n_keys; i < L->n; i++)
                    dst[i] = 0.0f;
            } else {
                ikv_row_add(dst, src, n_keys);
            }
        }
    }
    return IKV_OK;
}

int ikv_policy_observe_entropy(ikv_policy *p, int32_t pos, float nats)
{
    if (!p)
        return IKV_EINVAL;
    if (!p->began)
        return ikv_fail(p, IKV_ESTATE, "observe_entropy before begin");
    if (pos < 0 || pos >= p->capacity)
        return ikv_fail(p, IKV_ECAPACITY, "entropy position %d outside [0, %d)", (int)pos, p->capacity);
    if (!isfinite(nats) || nats < 0.0f)
        return ikv_fail(p, IKV_EINVAL, "entropy %g at position %d is not a finite non-negative number",
                        (double)nats, (int)pos);
    if (p->entropy)
        p->entropy[pos] = nats;
    return IKV_OK;
}

int ikv_policy_observe_evolution(ikv_policy *p, int layer, int32_t pos,
                                 float evolution)
{
    if (!p)
        return IKV_EINVAL;
    if (!p->began)
        return ikv_fail(p, IKV_ESTATE, "observe_evolution before begin");
    ikv_layer_state *L = layer_of(p, layer);
    if (!L)
        return ikv_fail(p, IKV_EINVAL, "layer %d is not managed by this policy", layer);
    if (pos < 0 || pos >= p->capacity)
        return ikv_fail(p, IKV_ECAPACITY, "evolution position %d outside [0, %d)", (int)pos, p->capacity);
    if (!isfinite(evolution))
        return ikv_fail(p, IKV_EINVAL, "evolution at layer %d position %d is not finite", layer, (int)pos);
    if (L->evolution)
        L->evolution[pos] = evolution;
    return IKV_OK;
}

int ikv_policy_observe_future(ikv_policy *p, int layer, const float *scores,
                              int stride)
{
    if (!p)
        return IKV_EINVAL;
    if (!p->began)
        return ikv_fail(p, IKV_ESTATE, "observe_future before begin");
    ikv_layer_state *L = layer_of(p, layer);
    if (!L)
        return ikv_fail(p, IKV_EINVAL, "layer %d is not managed by this policy", layer);
    if (!scores || stride < L->n)
        return ikv_fail(p, IKV_EINVAL, "future scores at layer %d: stride %d for %d slots",
                        layer, stride, L->n);
    if (!L->future)
        return IKV_OK;
    const size_t cap = (size_t)p->capacity;
    for (int g = 0; g < p->shape.n_kv_heads; g++)
        memcpy(L->future + (size_t)g * cap, scores + (size_t)g * (size_t)stride,
               (size_t)L->n * sizeof *scores);
    L->future_valid = 1;
    return IKV_OK;
}

int ikv_policy_step(ikv_policy *p, int *n_evicted)
{
    if (n_evicted)
        *n_evicted = 0;
    if (!p)
        return IKV_EINVAL;
    if (!p->began)
        return ikv_fail(p, IKV_ESTATE, "step before begin");
    for (int l = 0; l < p->shape.layer_count; l++) {
        ikv_layer_state *L = &p->layers[l];
        for (int g = 0; g < p->shape.n_kv_heads; g++) {
            L->n_moves[g] = 0;
            L->n_evicted[g] = 0;
        }
    }
    if (p->params.policy == IKV_POLICY_FULL)
        return IKV_OK;
    int due = 0;
    if (!p->prefill_done) {
        if (p->n_appended >= p->n_prompt) {
            due = 1;
            p->prefill_done = 1;
        }
    } else if (p->params.scenario == IKV_SCENARIO_DECODE && p->n_appended >= p->next_compress) {
        due = 1;
    }
    if (!due)
        return IKV_OK;
    p->next_compress = p->n_appended + p->params.interval;

    int total = 0;
    for (int l = 0; l < p->shape.layer_count; l++) {
        ikv_layer_state *L = &p->layers[l];
        if (L->n > L->budget) {
            int rc = p->ops->compress(p, p->shape.layer_first + l);
            if (rc != IKV_OK)
                return rc;
            /* Every KV head of a layer keeps the layer's budget, so all
             * evict the same count and the layer keeps one length. */
            int evicted = L->n_evicted[0];
            for (int g = 0; g < p->shape.n_kv_heads; g++) {
                if (L->n_evicted[g] != evicted)
                    return ikv_fail(p, IKV_ESTATE, "internal: KV heads of layer %d evicted %d and %d slots",
                                    p->shape.layer_first + l, evicted, L->n_evicted[g]);
                total += L->n_evicted[g];
            }
            L->n -= evicted;
        }
        /* The observation window restarts after every compression point. */
        if (L->win)
            memset(L->win, 0, (size_t)p->shape.n_heads * (size_t)p->capacity * sizeof *L->win);
        L->future_valid = 0;
    }
    if (n_evicted)
        *n_evicted = total;
    return IKV_OK;
}

int ikv_policy_moves(const ikv_policy *p, int layer, int kv_head,
                     const ikv_move **moves, int *n_moves)
{
    const ikv_layer_state *L = p ? layer_of(p, layer) : NULL;
    if (!L || kv_head < 0 || kv_head >= p->shape.n_kv_heads || !moves || !n_moves)
        return IKV_EINVAL;
    *moves = L->moves + (size_t)kv_head * (size_t)p->capacity;
    *n_moves = L->n_moves[kv_head];
    return IKV_OK;
}

int ikv_policy_evicted(const ikv_policy *p, int layer, int kv_head,
                       const int32_t **positions, int *n)
{
    const ikv_layer_state *L = p ? layer_of(p, layer) : NULL;
    if (!L || kv_head < 0 || kv_head >= p->shape.n_kv_heads || !positions || !n)
        return IKV_EINVAL;
    *positions = L->evicted + (size_t)kv_head * (size_t)p->capacity;
    *n = L->n_evicted[kv_head];
    return IKV_OK;
}

int ikv_policy_cache_len(const ikv_policy *p, int layer)
{
    const ikv_layer_state *L = p ? layer_of(p, layer) : NULL;
    return L ? L->n : -1;
}

const int32_t *ikv_policy_positions(const ikv_policy *p, int layer, int kv_head)
{
    const ikv_layer_state *L = p ? layer_of(p, layer) : NULL;
    if (!L || kv_head < 0 || kv_head >= p->shape.n_kv_heads)
        return NULL;
    return L->pos + (size_t)kv_head * (size_t)p->capacity;
}

/* ---- helpers shared by the policies ---- */

int32_t ikv_recent_threshold(const ikv_policy *p, int recent)
{
    if (recent <= 0)
        return INT32_MAX;
    if (recent >= p->n_appended)
        return INT32_MIN;
    return p->appended[p->n_appended - recent];
}

void ikv_aggregate(const ikv_policy *p, const float *per_head, int g, int n,
                   float *out)
{
    const size_t cap = (size_t)p->capacity;
    const int group = p->group;
    const float *first = per_head + (size_t)g * (size_t)group * cap;
    memcpy(out, first, (size_t)n * sizeof *out);
    for (int j = 1; j < group; j++) {
        const float *row = first + (size_t)j * cap;
        if (p->params.aggregation == IKV_AGG_MAX)
            ikv_row_max(out, row, n);
        else
            ikv_row_add(out, row, n);
    }
    if (p->params.aggregation == IKV_AGG_MEAN && group > 1)
        ikv_row_scale(out, 1.0f / (float)group, n);
}

void ikv_evict_slots(ikv_policy *p, int layer, int g, const int32_t *slots,
                     int n_slots)
{
    ikv_layer_state *L = layer_of(p, layer);
    const size_t cap = (size_t)p->capacity;
    const int n = L->n;
    const int new_n = n - n_slots;
    int32_t *pos = L->pos + (size_t)g * cap;
    ikv_move *moves = L->moves + (size_t)g * cap;
    int32_t *evicted = L->evicted + (size_t)g * cap;
    uint8_t *mark = p->mark;

    int n_ev = L->n_evicted[g];
    for (int i = 0; i < n_slots; i++) {
        mark[slots[i]] = 1;
        evicted[n_ev++] = pos[slots[i]];
    }
    L->n_evicted[g] = n_ev;

    /* Pair holes below new_n with survivors at or above it, both ascending. */
    int n_moves = 0;
    int src = new_n;
    for (int dst = 0; dst < new_n; dst++) {
        if (!mark[dst])
            continue;
        while (mark[src])
            src++;
        moves[n_moves++] = (ikv_move){.dst = dst, .src = src};
        src++;
    }
    for (int i = 0; i < n_slots; i++)
        mark[slots[i]] = 0;

    /* Apply the moves to our own per-slot state. */
    const int group = p->group;
    for (int m = 0; m < n_moves; m++) {
        int32_t d = moves[m].dst, s = moves[m].src;
        pos[d] = pos[s];
        for (int j = 0; j < group; j++) {
            size_t h = (size_t)g * (size_t)group + (size_t)j;
            if (L->acc)
                L->acc[h * cap + (size_t)d] = L->acc[h * cap + (size_t)s];
            if (L->win)
                L->win[h * cap + (size_t)d] = L->win[h * cap + (size_t)s];
        }
        if (L->future)
            L->future[(size_t)g * cap + (size_t)d] = L->future[(size_t)g * cap + (size_t)s];
    }
    L->n_moves[g] = n_moves;
}

int ikv_keep_recent_and_top(ikv_policy *p, int layer, int g, int recent,
                            const float *score)
{
    ikv_layer_state *L = layer_of(p, layer);
    const size_t cap = (size_t)p->capacity;
    const int n = L->n, budget = L->budget;
    const int32_t *pos = L->pos + (size_t)g * cap;
    if (recent > budget)
        recent = budget;
    int32_t threshold = ikv_recent_threshold(p, recent);

    int n_cand = 0, n_forced = 0;
    for (int i = 0; i < n; i++) {
        if (pos[i] >= threshold) {
            n_forced++;
            continue;
        }
        float s = score[i];
        p->ranks[n_cand++] = (ikv_rank){.score = s == s ? s : -INFINITY, .pos = pos[i], .slot = i};
    }
    int keep = budget - n_forced;
    if (keep < 0)
        return ikv_fail(p, IKV_EBUDGET, "layer %d: %d recent tokens exceed the budget %d", layer,
                        n_forced, budget);
    if (keep >= n_cand)
        return IKV_OK;
    ikv_select_top(p->ranks, n_cand, keep);
    int n_victims = 0;
    for (int i = keep; i < n_cand; i++)
        p->victims[n_victims++] = p->ranks[i].slot;
    ikv_evict_slots(p, layer, g, p->victims, n_victims);
    return IKV_OK;
}

static int compare_rank_pos(const void *a, const void *b)
{
    int32_t x = ((const ikv_rank *)a)->pos, y = ((const ikv_rank *)b)->pos;
    return (x > y) - (x < y);
}

void ikv_pool_along_keys(ikv_policy *p, int layer, int g, float *score,
                         ikv_pooling pool, int kernel)
{
    if (pool == IKV_POOL_NONE || kernel <= 1)
        return;
    ikv_layer_state *L = layer_of(p, layer);
    const int32_t *pos = L->pos + (size_t)g * (size_t)p->capacity;
    /* Candidates (unmarked slots) in position order. */
    int m = 0;
    for (int i = 0; i < L->n; i++)
        if (!p->mark[i])
            p->ranks[m++] = (ikv_rank){.score = score[i], .pos = pos[i], .slot = i};
    qsort(p->ranks, (size_t)m, sizeof *p->ranks, compare_rank_pos);
    int half = kernel / 2;
    float *pooled = p->aux2;
    for (int c = 0; c < m; c++) {
        int lo = c - half < 0 ? 0 : c - half;
        int hi = c + half >= m ? m - 1 : c + half;
        float acc = pool == IKV_POOL_MAX ? p->ranks[lo].score : 0.0f;
        for (int j = lo; j <= hi; j++) {
            float v = p->ranks[j].score;
            if (pool == IKV_POOL_MAX)
                acc = v > acc ? v : acc;
            else
                acc += v;
        }
        pooled[c] = pool == IKV_POOL_AVG ? acc / (float)kernel : acc;
    }
    for (int c = 0; c < m; c++)
        score[p->ranks[c].slot] = pooled[c];
}
