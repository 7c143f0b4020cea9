/*
 * The session observer: callback order, attention rows (sum to one, equal
 * to a softmax recomputed from the reported queries and the cached keys),
 * q/k/v against the cache, residual chaining, per-position logits against
 * decode, rows after eviction, rows reported in groups (long prompts with
 * a large cache), on_tokens, and detaching.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/session.h"
#include "model_fixture.h"
#include "runner.h"

enum { EV_QKV = 1, EV_ATT, EV_RES, EV_LOGITS };

typedef struct event {
    int kind, layer, pos;
} event;

typedef struct recorder {
    ikv_session *s;
    int L, H, G, d, D, V;
    event *events;
    int n_events, cap_events;
    float *q;             /* [L][H][d] queries of the latest on_qkv per layer */
    int *q_pos;           /* [L] */
    float *after;         /* [L][P][D] residual leaving each layer */
    int P;
    float *logits;        /* [P][V] */
    double worst_sum, worst_recompute, worst_kv, worst_chain;
    int bad_keys;         /* rows whose n_keys was not what the cache implies */
    int expect_len0;      /* slots cached before the call (for n_keys) */
    int first_pos;        /* position of the call's first token */
} recorder;

static void log_event(recorder *r, int kind, int layer, int pos)
{
    if (r->n_events == r->cap_events) {
        r->cap_events = r->cap_events ? 2 * r->cap_events : 256;
        r->events = realloc(r->events, (size_t)r->cap_events * sizeof *r->events);
    }
    r->events[r->n_events++] = (event){kind, layer, pos};
}

static void on_qkv(void *user, int layer, int pos, const float *q, const float *k, const float *v)
{
    recorder *r = user;
    log_event(r, EV_QKV, layer, pos);
    memcpy(r->q + (size_t)layer * r->H * r->d, q, (size_t)r->H * r->d * sizeof *q);
    r->q_pos[layer] = pos;
    /* k and v are what the cache holds at the slot of this position */
    for (int g = 0; g < r->G; g++) {
        int len = ikv_session_cache_len(r->s, layer, g);
        const int32_t *positions = ikv_session_positions(r->s, layer, g);
        int slot = -1;
        for (int i = 0; i < len; i++)
            if (positions[i] == pos)
                slot = i;
        if (slot < 0) {
            r->worst_kv = INFINITY;
            continue;
        }
        const float *kc = ikv_session_keys(r->s, layer, g) + (size_t)slot * r->d;
        const float *vc = ikv_session_values(r->s, layer, g) + (size_t)slot * r->d;
        for (int i = 0; i < r->d; i++) {
            r->worst_kv = fmax(r->worst_kv, fabs(kc[i] - k[(size_t)g * r->d + i]));
            r->worst_kv = fmax(r->worst_kv, fabs(vc[i] - v[(size_t)g * r->d + i]));
        }
    }
}

static void on_attention(void *user, int layer, int pos, const float *probs, int n_keys, int stride)
{
    recorder *r = user;
    log_event(r, EV_ATT, layer, pos);
    if (n_keys != r->expect_len0 + (pos - r->first_pos) + 1 || stride < n_keys)
        r->bad_keys++;
    if (r->q_pos[layer] != pos) {
        r->worst_recompute = INFINITY;
        return;
    }
    double *row = malloc((size_t)n_keys * sizeof *row);
    for (int h = 0; h < r->H; h++) {
        const float *p = probs + (size_t)h * stride;
        double sum = 0.0;
        for (int j = 0; j < n_keys; j++)
            sum += p[j];
        r->worst_sum = fmax(r->worst_sum, fabs(sum - 1.0));
        /* softmax(q . k / sqrt(d)) over the cache slots of the KV head */
        int g = h / (r->H / r->G);
        const float *keys = ikv_session_keys(r->s, layer, g);
        const float *q = r->q + ((size_t)layer * r->H + h) * r->d;
        double max = -INFINITY, total = 0.0;
        for (int j = 0; j < n_keys; j++) {
            double dot = 0.0;
            for (int i = 0; i < r->d; i++)
                dot += (double)q[i] * keys[(size_t)j * r->d + i];
            row[j] = dot / sqrt((double)r->d);
            max = fmax(max, row[j]);
        }
        for (int j = 0; j < n_keys; j++)
            total += (row[j] = exp(row[j] - max));
        for (int j = 0; j < n_keys; j++)
            r->worst_recompute = fmax(r->worst_recompute, fabs(row[j] / total - p[j]));
    }
    free(row);
}

static void on_residual(void *user, int layer, int pos, const float *before, const float *after)
{
    recorder *r = user;
    log_event(r, EV_RES, layer, pos);
    if (pos >= r->P)
        return;
    if (layer > 0) {
        const float *prev = r->after + ((size_t)(layer - 1) * r->P + pos) * r->D;
        for (int i = 0; i < r->D; i++)
            r->worst_chain = fmax(r->worst_chain, fabs(prev[i] - before[i]));
    }
    memcpy(r->after + ((size_t)layer * r->P + pos) * r->D, after, (size_t)r->D * sizeof *after);
}

static void on_logits(void *user, int pos, const float *logits)
{
    recorder *r = user;
    log_event(r, EV_LOGITS, -1, pos);
    if (pos < r->P)
        memcpy(r->logits + (size_t)pos * r->V, logits, (size_t)r->V * sizeof *logits);
}

static void recorder_init(recorder *r, ikv_session *s, const ikv_model *m, int P)
{
    const ikv_model_details *i = ikv_model_info(m);
    memset(r, 0, sizeof *r);
    r->s = s;
    r->L = i->n_layers;
    r->H = i->n_heads;
    r->G = i->n_kv_heads;
    r->d = i->head_dim;
    r->D = i->dim;
    r->V = i->vocab_size;
    r->P = P;
    r->q = calloc((size_t)r->L * r->H * r->d, sizeof *r->q);
    r->q_pos = calloc((size_t)r->L, sizeof *r->q_pos);
    r->after = calloc((size_t)r->L * P * r->D, sizeof *r->after);
    r->logits = calloc((size_t)P * r->V, sizeof *r->logits);
    for (int l = 0; l < r->L; l++)
        r->q_pos[l] = -1;
}

static void recorder_free(recorder *r)
{
    free(r->events);
    free(r->q);
    free(r->q_pos);
    free(r->after);
    free(r->logits);
}

static ikv_observer observer_of(recorder *r)
{
    ikv_observer obs = {r, on_qkv, on_attention, on_residual, on_logits, NULL};
    return obs;
}

/* The event list of one call: per (layer, position) qkv < attention <
 * residual; layers in order; logits last, for `n_logits` positions. */
static int order_ok(const recorder *r, int first, int n, int n_logits)
{
    int expected = r->L * n * 3 + n_logits;
    if (r->n_events != expected)
        return 0;
    int last_layer = 0;
    for (int e = 0; e < r->n_events; e++) {
        const event *ev = &r->events[e];
        if (e >= r->L * n * 3) {
            if (ev->kind != EV_LOGITS || ev->pos != first + n - n_logits + (e - r->L * n * 3))
                return 0;
            continue;
        }
        if (ev->kind == EV_LOGITS || ev->layer < last_layer || ev->pos < first || ev->pos >= first + n)
            return 0;
        last_layer = ev->layer;
        /* its predecessor kind for the same (layer, pos) came earlier */
        if (ev->kind != EV_QKV) {
            int found = 0;
            for (int k = 0; k < e && !found; k++)
                found = r->events[k].kind == ev->kind - 1 && r->events[k].layer == ev->layer &&
                        r->events[k].pos == ev->pos;
            if (!found)
                return 0;
        }
    }
    return 1;
}

static ikv_model *fixture_model(char *path, size_t len, ref_options *o)
{
    ref_temp_path(path, len, "obs.gguf");
    CU_ASSERT_FATAL(ref_build(o, path, NULL, NULL) == 0);
    ikv_model *m;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(ikv_model_load(&m, path, NULL, err, sizeof err), IKV_OK);
    return m;
}

static void test_prefill_and_decode(void)
{
    char path[256], err[256];
    ref_options o = ref_default_options();
    o.n_heads = 4;
    o.n_kv_heads = 2;
    o.type = GW_BF16;
    ikv_model *m = fixture_model(path, sizeof path, &o);
    const int n = 14, P = 20;
    int32_t tokens[20];
    for (int i = 0; i < 20; i++)
        tokens[i] = (i * 7 + 3) % o.vocab_size;
    ikv_session *s, *plain;
    CU_ASSERT_EQUAL_FATAL(ikv_session_create(&s, m, 32, 2, err, sizeof err), IKV_OK);
    CU_ASSERT_EQUAL_FATAL(ikv_session_create(&plain, m, 32, 1, err, sizeof err), IKV_OK);
    recorder r;
    recorder_init(&r, s, m, P);
    ikv_observer obs = observer_of(&r);
    CU_ASSERT_EQUAL(ikv_session_set_observer(s, &obs), IKV_OK);

    r.expect_len0 = 0;
    r.first_pos = 0;
    CU_ASSERT_EQUAL(ikv_session_prefill(s, tokens, n), IKV_OK);
    CU_ASSERT(order_ok(&r, 0, n, n));
    /* decode: one position, logits once */
    for (int t = n; t < P; t++) {
        r.n_events = 0;
        r.expect_len0 = t;
        r.first_pos = t;
        CU_ASSERT_EQUAL(ikv_session_decode(s, tokens[t]), IKV_OK);
        CU_ASSERT(order_ok(&r, t, 1, 1));
    }
    CU_ASSERT(r.worst_sum < 1e-5);
    CU_ASSERT(r.worst_recompute < 1e-5);
    CU_ASSERT(r.worst_kv == 0.0);
    CU_ASSERT(r.worst_chain == 0.0);
    CU_ASSERT_EQUAL(r.bad_keys, 0);
    /* every position's logits equal a plain session's decode */
    double worst = 0.0;
    for (int t = 0; t < P; t++) {
        CU_ASSERT_EQUAL(ikv_session_decode(plain, tokens[t]), IKV_OK);
        const float *l = ikv_session_logits(plain);
        for (int i = 0; i < r.V; i++)
            worst = fmax(worst, fabs(l[i] - r.logits[(size_t)t * r.V + i]));
    }
    CU_ASSERT(worst < 1e-4);

    /* after eviction, rows cover the kept slots plus the new one */
    for (int l = 0; l < r.L; l++)
        for (int g = 0; g < r.G; g++) {
            ikv_move mv[2] = {{2, (int32_t)(P - 1)}, {5, (int32_t)(P - 2)}};
            CU_ASSERT_EQUAL(ikv_session_apply_moves(s, l, g, mv, 2, P - 2), IKV_OK);
        }
    r.n_events = 0;
    r.expect_len0 = P - 2;
    r.first_pos = P;
    CU_ASSERT_EQUAL(ikv_session_decode(s, tokens[3]), IKV_OK);
    CU_ASSERT(order_ok(&r, P, 1, 1));
    CU_ASSERT_EQUAL(r.bad_keys, 0);
    CU_ASSERT(r.worst_recompute < 1e-5);

    /* detached: nothing reported */
    CU_ASSERT_EQUAL(ikv_session_set_observer(s, NULL), IKV_OK);
    r.n_events = 0;
    CU_ASSERT_EQUAL(ikv_session_decode(s, tokens[4]), IKV_OK);
    CU_ASSERT_EQUAL(r.n_events, 0);
    recorder_free(&r);
    ikv_session_free(s);
    ikv_session_free(plain);
    ikv_model_free(m);
    unlink(path);
}

/* on_tokens: first in every call, with the call's positions and tokens,
 * while ikv_session_logits() still holds the call before's last logits. */
typedef struct token_log {
    const ikv_session *s;
    int V, calls, announced_ok, positions_ok, logits_ok;
    int32_t next_pos;
    const int32_t *expect; /* [16] the tokens given to the session */
    float last[4096];      /* logits of the latest on_logits */
    int have_last;
} token_log;

static void tl_on_tokens(void *user, const int32_t *positions, const int32_t *tokens, int n)
{
    token_log *t = user;
    t->calls++;
    for (int i = 0; i < n; i++)
        t->positions_ok &= positions[i] == t->next_pos + i && tokens[i] == t->expect[t->next_pos + i];
    t->next_pos += n;
    const float *before = ikv_session_logits(t->s);
    if (t->have_last)
        t->logits_ok &= before && memcmp(before, t->last, (size_t)t->V * sizeof *before) == 0;
}

static void tl_on_qkv(void *user, int layer, int pos, const float *q, const float *k, const float *v)
{
    (void)layer, (void)q, (void)k, (void)v;
    token_log *t = user;
    t->announced_ok &= pos < t->next_pos; /* on_tokens came first */
}

static void tl_on_logits(void *user, int pos, const float *logits)
{
    token_log *t = user;
    t->announced_ok &= pos < t->next_pos;
    memcpy(t->last, logits, (size_t)t->V * sizeof *logits);
    t->have_last = 1;
}

static void test_tokens_first(void)
{
    char path[256], err[256];
    ref_options o = ref_default_options();
    ikv_model *m = fixture_model(path, sizeof path, &o);
    ikv_session *s;
    CU_ASSERT_EQUAL_FATAL(ikv_session_create(&s, m, 16, 2, err, sizeof err), IKV_OK);
    const int32_t tokens[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    token_log t = {s, ikv_model_info(m)->vocab_size, 0, 1, 1, 1, 0, tokens, {0}, 0};
    CU_ASSERT_FATAL(t.V <= 4096);
    ikv_observer obs = {&t, tl_on_qkv, NULL, NULL, tl_on_logits, tl_on_tokens};
    CU_ASSERT_EQUAL(ikv_session_set_observer(s, &obs), IKV_OK);
    CU_ASSERT_EQUAL(ikv_session_prefill(s, tokens, 5), IKV_OK);
    CU_ASSERT_EQUAL(ikv_session_prefill(s, tokens + 5, 3), IKV_OK);
    for (int i = 8; i < 12; i++)
        CU_ASSERT_EQUAL(ikv_session_decode(s, tokens[i]), IKV_OK);
    CU_ASSERT_EQUAL(t.calls, 6);
    CU_ASSERT_EQUAL(t.next_pos, 12);
    CU_ASSERT(t.announced_ok);
    CU_ASSERT(t.positions_ok);
    CU_ASSERT(t.logits_ok);
    ikv_session_free(s);
    ikv_model_free(m);
    unlink(path);
}

/* Only some callbacks: the others stay silent; prefill then reports the
 * last position's logits only when on_logits is unset. */
static void test_partial_observer(void)
{
    char path[256], err[256];
    ref_options o = ref_default_options();
    ikv_model *m = fixture_model(path, sizeof path, &o);
    ikv_session *s;
    CU_ASSERT_EQUAL_FATAL(ikv_session_create(&s, m, 16, 2, err, sizeof err), IKV_OK);
    recorder r;
    recorder_init(&r, s, m, 16);
    ikv_observer obs = {&r, NULL, NULL, on_residual, NULL, NULL};
    CU_ASSERT_EQUAL(ikv_session_set_observer(s, &obs), IKV_OK);
    int32_t tokens[6] = {1, 2, 3, 4, 5, 6};
    CU_ASSERT_EQUAL(ikv_session_prefill(s, tokens, 6), IKV_OK);
    CU_ASSERT_EQUAL(r.n_events, r.L * 6);
    for (int e = 0; e < r.n_events; e++)
        CU_ASSERT_EQUAL(r.events[e].kind, EV_RES);
    CU_ASSERT(r.worst_chain == 0.0);
    recorder_free(&r);
    ikv_session_free(s);
    ikv_model_free(m);
    unlink(path);
}

/* A cache so large that one prefill's attention rows do not fit the
 * observer's buffer at once: they are reported in groups. */
static void test_rows_in_groups(void)
{
    char path[256], err[256];
    ref_options o = ref_default_options();
    o.n_layers = 1;
    o.context = 20000;
    ikv_model *m = fixture_model(path, sizeof path, &o);
    ikv_session *s;
    CU_ASSERT_EQUAL_FATAL(ikv_session_create(&s, m, 16384, 2, err, sizeof err), IKV_OK);
    const int n = 200;
    recorder r;
    recorder_init(&r, s, m, n);
    ikv_observer obs = observer_of(&r);
    CU_ASSERT_EQUAL(ikv_session_set_observer(s, &obs), IKV_OK);
    int32_t *tokens = malloc(n * sizeof *tokens);
    for (int i = 0; i < n; i++)
        tokens[i] = (i * 13 + 1) % o.vocab_size;
    r.expect_len0 = 0;
    r.first_pos = 0;
    CU_ASSERT_EQUAL(ikv_session_prefill(s, tokens, n), IKV_OK);
    CU_ASSERT(order_ok(&r, 0, n, n));
    CU_ASSERT_EQUAL(r.bad_keys, 0);
    CU_ASSERT(r.worst_sum < 1e-5);
    CU_ASSERT(r.worst_recompute < 1e-5);
    free(tokens);
    recorder_free(&r);
    ikv_session_free(s);
    ikv_model_free(m);
    unlink(path);
}

static void add_suites(void)
{
    static const ikv_test_case cases[] = {
        {"prefill and decode: order, rows, q/k/v, residuals, logits", test_prefill_and_decode},
        {"only some callbacks", test_partial_observer},
        {"tokens announced first, the logits before still there", test_tokens_first},
        {"attention rows reported in groups", test_rows_in_groups},
        {NULL, NULL}};
    ikv_test_suite("observer", cases);
}

int main(int argc, char **argv)
{
    return ikv_test_main(argc, argv, add_suites);
}
