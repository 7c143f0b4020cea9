/*
 * Live eviction against the plain engine and against replay, on a small
 * synthetic model (no files needed):
 *   - `full`, or a budget at least the sequence, changes nothing: same
 *     logits bit for bit, the cache is never compacted;
 *   - the cache never holds more than budget + interval - 1 slots after a
 *     step, and memory falls with the budget;
 *   - the kept set at the first compression equals what replay of the same
 *     run's q/k/v keeps.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "live/live.h"
#include "model/model.h"
#include "model/session.h"
#include "runner.h"
#include "sim/reference.h"
#include "sim/replay.h"

enum { PROMPT = 40, TOTAL = 96 };

static ikv_model *model;
static int32_t tokens[TOTAL];

static int setup(void)
{
    ikv_model_shape shape;
    if (ikv_model_shape_preset("tiny", &shape) != IKV_OK)
        return -1;
    shape.max_seq_len = 256;
    char err[256];
    if (ikv_model_synthetic(&model, &shape, IKV_WTYPE_F32, 7, err, sizeof err) != IKV_OK)
        return -1;
    uint64_t s = 12345;
    for (int i = 0; i < TOTAL; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        tokens[i] = (int32_t)((s >> 33) % (uint64_t)shape.vocab_size);
    }
    return 0;
}

static ikv_params params_of(const char *policy, const char *list)
{
    ikv_policy_kind kind;
    ikv_policy_from_name(policy, &kind);
    ikv_params p = ikv_default_params(kind);
    char err[256];
    if (ikv_params_parse(&p, list, err, sizeof err) != IKV_OK)
        printf("\n    params '%s': %s\n", list, err);
    return p;
}

/* Logits of every step of a run, plain or live (lv may be NULL). */
static void run(ikv_session *s, ikv_live *lv, float *logits /* [TOTAL - PROMPT + 1][V] */, int V)
{
    if (lv) {
        CU_ASSERT_EQUAL_FATAL(ikv_live_begin(lv, PROMPT, TOTAL), IKV_OK);
        CU_ASSERT_EQUAL_FATAL(ikv_live_prefill(lv, tokens, PROMPT), IKV_OK);
    } else {
        CU_ASSERT_EQUAL_FATAL(ikv_session_prefill(s, tokens, PROMPT), IKV_OK);
    }
    memcpy(logits, ikv_session_logits(s), (size_t)V * sizeof *logits);
    for (int t = PROMPT; t < TOTAL; t++) {
        int rc = lv ? ikv_live_decode(lv, tokens[t]) : ikv_session_decode(s, tokens[t]);
        CU_ASSERT_EQUAL_FATAL(rc, IKV_OK);
        memcpy(logits + (size_t)(t - PROMPT + 1) * (size_t)V, ikv_session_logits(s), (size_t)V * sizeof *logits);
    }
}

static void test_keep_all_is_identical(void)
{
    const int V = ikv_model_info(model)->vocab_size;
    size_t n = (size_t)(TOTAL - PROMPT + 1) * (size_t)V;
    float *plain = malloc(n * sizeof *plain), *live = malloc(n * sizeof *live);
    char err[256];
    ikv_session *s;
    CU_ASSERT_EQUAL_FATAL(ikv_session_create(&s, model, TOTAL, 1, err, sizeof err), IKV_OK);
    run(s, NULL, plain, V);
    ikv_session_free(s);
    const char *cases[][2] = {
        {"full", "scenario=decode"},
        {"h2o", "budget=96,scenario=decode"},   /* budget = the sequence */
        {"snapkv", "budget=200,window=4,scenario=decode,interval=8"},
        {"infokv", "budget=100%,scenario=decode"},
        {"infokv", "budget=100%,scenario=decode,alpha=0"},
        {"infokv", "budget=100%,scenario=decode,beta=1"},
        {"infokv", "budget=100%,scenario=decode,beta=0"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        ikv_params p = params_of(cases[c][0], cases[c][1]);
        ikv_live *lv;
        CU_ASSERT_EQUAL_FATAL(ikv_session_create(&s, model, TOTAL, 1, err, sizeof err), IKV_OK);
        CU_ASSERT_EQUAL_FATAL(ikv_live_create(&lv, s, &p, err, sizeof err), IKV_OK);
        run(s, lv, live, V);
        int same = memcmp(plain, live, n * sizeof *plain) == 0;
        CU_ASSERT(same);
        if (!same) {
            size_t first = 0;
            while (first < n && plain[first] == live[first])
                first++;
            printf("\n    %s %s: logits differ first at step %zu (%g vs %g)\n", cases[c][0], cases[c][1],
                   first / (size_t)V, (double)plain[first], (double)live[first]);
        }
        CU_ASSERT_EQUAL(ikv_live_stats_of(lv)->evicted, 0);
        CU_ASSERT_EQUAL(ikv_live_stats_of(lv)->cache_bytes, ikv_live_stats_of(lv)->full_cache_bytes);
        ikv_live_free(lv);
        ikv_session_free(s);
    }
    free(plain);
    free(live);
}

/* After every step, no layer holds more than budget + interval - 1 slots;
 * with interval 1, exactly min(position + 1, budget). */
static void test_cache_bounds(void)
{
    const char *cases[][2] = {
        {"h2o", "budget=16,scenario=decode"},
        {"tova", "budget=12,scenario=decode"},
        {"streaming", "budget=10,scenario=decode"},
        {"snapkv", "budget=16,window=4,interval=8,scenario=decode"},
        {"pyramidkv", "budget=16,window=4,interval=8,scenario=decode"},
        {"infokv", "budget=16,scenario=decode"},
        {"random", "budget=8,scenario=decode"},
    };
    char err[256];
    const ikv_model_details *info = ikv_model_info(model);
    uint64_t peak_small = 0, peak_large = 0;
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        ikv_params p = params_of(cases[c][0], cases[c][1]);
        ikv_session *s;
        ikv_live *lv;
        CU_ASSERT_EQUAL_FATAL(ikv_session_create(&s, model, TOTAL, 1, err, sizeof err), IKV_OK);
        CU_ASSERT_EQUAL_FATAL(ikv_live_create(&lv, s, &p, err, sizeof err), IKV_OK);
        CU_ASSERT_EQUAL_FATAL(ikv_live_begin(lv, 8, TOTAL), IKV_OK);
        CU_ASSERT_EQUAL_FATAL(ikv_live_prefill(lv, tokens, 8), IKV_OK);
        int bad = 0;
        for (int t = 8; t < TOTAL; t++) {
            CU_ASSERT_EQUAL_FATAL(ikv_live_decode(lv, tokens[t]), IKV_OK);
            for (int l = 0; l < info->n_layers; l++) {
                int b = ikv_policy_layer_budget(ikv_live_policy(lv), l);
                int len = ikv_live_cache_len(lv, l);
                for (int g = 0; g < info->n_kv_heads; g++)
                    bad += ikv_session_cache_len(s, l, g) != len; /* session and policy agree */
                if (p.interval == 1)
                    bad += len != (t + 1 < b ? t + 1 : b);
                else
                    bad += len > b + p.interval - 1;
            }
        }
        CU_ASSERT_EQUAL(bad, 0);
        if (bad)
            printf("\n    %s: %d bound violations\n", cases[c][0], bad);
        if (c == 0)
            peak_small = ikv_live_stats_of(lv)->peak_cache_bytes;
        ikv_live_free(lv);
        ikv_session_free(s);
    }
    /* memory falls with the budget */
    ikv_params p = params_of("h2o", "budget=32,scenario=decode");
    ikv_session *s;
    ikv_live *lv;
    CU_ASSERT_EQUAL_FATAL(ikv_session_create(&s, model, TOTAL, 1, err, sizeof err), IKV_OK);
    CU_ASSERT_EQUAL_FATAL(ikv_live_create(&lv, s, &p, err, sizeof err), IKV_OK);
    CU_ASSERT_EQUAL_FATAL(ikv_live_begin(lv, 8, TOTAL), IKV_OK);
    CU_ASSERT_EQUAL_FATAL(ikv_live_prefill(lv, tokens, 8), IKV_OK);
    for (int t = 8; t < TOTAL; t++)
        CU_ASSERT_EQUAL_FATAL(ikv_live_decode(lv, tokens[t]), IKV_OK);
    peak_large = ikv_live_stats_of(lv)->peak_cache_bytes;
    CU_ASSERT(peak_small < peak_large);
    CU_ASSERT(peak_large < ikv_live_stats_of(lv)->full_cache_bytes);
    ikv_live_free(lv);
    ikv_session_free(s);
}

/* ---- replay of the same run ---- */

typedef struct qkv_log {
    int L, H, G, d, T;
    float *q, *k, *v; /* [L][H|G][T][d] */
    float *evolution; /* [L][T] */
    int D;
} qkv_log;

static void log_qkv(void *user, int layer, int pos, const float *q, const float *k, const float *v)
{
    qkv_log *g = user;
    for (int h = 0; h < g->H; h++)
        memcpy(g->q + (((size_t)layer * g->H + h) * g->T + pos) * g->d, q + (size_t)h * g->d, (size_t)g->d * sizeof *q);
    for (int h = 0; h < g->G; h++) {
        memcpy(g->k + (((size_t)layer * g->G + h) * g->T + pos) * g->d, k + (size_t)h * g->d, (size_t)g->d * sizeof *k);
        memcpy(g->v + (((size_t)layer * g->G + h) * g->T + pos) * g->d, v + (size_t)h * g->d, (size_t)g->d * sizeof *v);
    }
}

static void log_residual(void *user, int layer, int pos, const float *before, const float *after)
{
    qkv_log *g = user;
    g->evolution[(size_t)layer * g->T + pos] = ikv_evolution(before, after, g->D);
}

typedef struct first_step {
    int L, G, T;
    uint8_t *kept; /* [L][G][T] after step 0 */
    int layer;
} first_step;

static void on_step(void *user, int step, const ikv_policy *p)
{
    first_step *f = user;
    if (step != 0)
        return;
    for (int g = 0; g < f->G; g++) {
        const int32_t *pos = ikv_policy_positions(p, f->layer, g);
        int n = ikv_policy_cache_len(p, f->layer);
        for (int i = 0; i < n; i++)
            f->kept[((size_t)f->layer * f->G + g) * f->T + pos[i]] = 1;
    }
}

static void test_first_compression_matches_replay(void)
{
    const ikv_model_details *info = ikv_model_info(model);
    const int L = info->n_layers, H = info->n_heads, G = info->n_kv_heads, d = info->head_dim, T = TOTAL;
    qkv_log lg = {L, H, G, d, T, NULL, NULL, NULL, NULL, info->dim};
    lg.q = calloc((size_t)L * H * T * d, sizeof(float));
    lg.k = calloc((size_t)L * G * T * d, sizeof(float));
    lg.v = calloc((size_t)L * G * T * d, sizeof(float));
    lg.evolution = calloc((size_t)L * T, sizeof(float));
    char err[256];
    ikv_session *s;
    CU_ASSERT_EQUAL_FATAL(ikv_session_create(&s, model, T, 1, err, sizeof err), IKV_OK);
    ikv_observer obs = {&lg, log_qkv, NULL, log_residual, NULL, NULL};
    ikv_session_set_observer(s, &obs);
    CU_ASSERT_EQUAL_FATAL(ikv_session_prefill(s, tokens, T), IKV_OK);
    ikv_session_free(s);

    const char *cases[][2] = {
        {"h2o", "budget=16"},
        {"snapkv", "budget=16,window=4"},
        {"pyramidkv", "budget=16,window=4"},
        {"tova", "budget=12"},
        {"streaming", "budget=10"},
        {"infokv", "budget=16,window=4,beta=1,alpha=0.5"},
        {"h2o", "budget=20,scenario=decode"},
    };
    first_step replay = {L, G, T, calloc((size_t)L * G * T, 1), 0};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        ikv_params p = params_of(cases[c][0], cases[c][1]);
        memset(replay.kept, 0, (size_t)L * G * T);
        for (int l = 0; l < L; l++) {
            ikv_sim_layer layer = {l, L, H, G, d, T, PROMPT,
                                   lg.q + (size_t)l * H * T * d, lg.k + (size_t)l * G * T * d,
                                   lg.v + (size_t)l * G * T * d, lg.evolution + (size_t)l * T};
            ikv_sim_reference ref;
            CU_ASSERT_EQUAL_FATAL(ikv_sim_reference_alloc(&ref, H, G, T, d), 0);
            ikv_sim_reference_compute(&layer, &ref);
            replay.layer = l;
            ikv_sim_stats st;
            memset(&st, 0, sizeof st);
            ikv_sim_replay_input in = {&layer, &ref, NULL, NULL, on_step, &replay};
            int rc = ikv_sim_replay(&in, &p, NULL, &st, NULL, err, sizeof err);
            if (rc)
                printf("\n    replay: %s\n", err);
            CU_ASSERT_EQUAL(rc, 0);
            ikv_sim_reference_free(&ref);
        }
        ikv_live *lv;
        CU_ASSERT_EQUAL_FATAL(ikv_session_create(&s, model, T, 1, err, sizeof err), IKV_OK);
        CU_ASSERT_EQUAL_FATAL(ikv_live_create(&lv, s, &p, err, sizeof err), IKV_OK);
        CU_ASSERT_EQUAL_FATAL(ikv_live_begin(lv, PROMPT, T), IKV_OK);
        CU_ASSERT_EQUAL_FATAL(ikv_live_prefill(lv, tokens, PROMPT), IKV_OK);
        int differ = 0, total = 0;
        for (int l = 0; l < L; l++) {
            for (int g = 0; g < G; g++) {
                const int32_t *pos = ikv_policy_positions(ikv_live_policy(lv), l, g);
                int n = ikv_live_cache_len(lv, l);
                int count = 0;
                for (int i = 0; i < n; i++) {
                    differ += !replay.kept[((size_t)l * G + g) * T + pos[i]];
                    count++;
                }
                for (int t = 0; t < T; t++)
                    count -= replay.kept[((size_t)l * G + g) * T + t];
                differ += count != 0;
                total += n;
            }
        }
        CU_ASSERT_EQUAL(differ, 0);
        if (differ)
            printf("\n    %s %s: %d of %d kept slots differ from replay\n", cases[c][0], cases[c][1], differ, total);
        ikv_live_free(lv);
        ikv_session_free(s);
    }
    free(replay.kept);
    free(lg.q);
    free(lg.k);
    free(lg.v);
    free(lg.evolution);
}

static void test_oracle_is_refused(void)
{
    ikv_params p = params_of("oracle", "budget=8");
    char err[256] = "";
    ikv_session *s;
    ikv_live *lv = (ikv_live *)1;
    CU_ASSERT_EQUAL_FATAL(ikv_session_create(&s, model, TOTAL, 1, err, sizeof err), IKV_OK);
    CU_ASSERT_EQUAL(ikv_live_create(&lv, s, &p, err, sizeof err), IKV_EINVAL);
    CU_ASSERT_PTR_NULL(lv);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "replay"));
    ikv_session_free(s);
}

static void add_suites(void)
{
    static const ikv_test_case cases[] = {
        {"keeping everything changes nothing, bit for bit", test_keep_all_is_identical},
        {"cache bounds and memory", test_cache_bounds},
        {"first compression equals replay's", test_first_compression_matches_replay},
        {"the oracle is replay only", test_oracle_is_refused},
        {NULL, NULL},
    };
    ikv_test_suite("live eviction", cases);
}

int main(int argc, char **argv)
{
    if (setup() != 0) {
        fprintf(stderr, "test_live: cannot build the synthetic model\n");
        return 1;
    }
    int rc = ikv_test_main(argc, argv, add_suites);
    ikv_model_free(model);
    return rc;
}
