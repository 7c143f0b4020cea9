/*
 * Hand-computed cases that pin each policy's kept set. The numbers are
 * chosen as binary fractions (or with wide margins) so that the expected
 * rankings hold exactly in float arithmetic; each case says how its answer
 * was computed.
 */
#include "config.h"

#include <string.h>

#include "core_fixture.h"
#include "runner.h"

#define MAXT 12

/* Attention table for hand cases: value[head][query][key]; 0 elsewhere. */
static float hand[4][MAXT][MAXT];

static float hand_attention(const fx_signals *s, int layer, int head, int32_t q, int32_t k)
{
    (void)s;
    (void)layer;
    return hand[head][q][k];
}

static float hand_entropy_values[MAXT];
static float hand_evolution_values[MAXT];

static float hand_entropy(const fx_signals *s, int32_t pos)
{
    (void)s;
    return hand_entropy_values[pos];
}

static float hand_evolution(const fx_signals *s, int layer, int32_t pos)
{
    (void)s;
    (void)layer;
    return hand_evolution_values[pos];
}

static float hand_future_values[MAXT];

static float hand_future(const fx_signals *s, int layer, int g, int32_t q, int32_t k)
{
    (void)s;
    (void)layer;
    (void)g;
    (void)q;
    return hand_future_values[k];
}

static fx_signals hand_signals(void)
{
    fx_signals s = {hand_attention, hand_entropy, hand_evolution, hand_future, 0, NULL};
    return s;
}

static void set_row(int head, int q, const float *values)
{
    for (int k = 0; k <= q; k++)
        hand[head][q][k] = values[k];
}

static int kept_equals(const fx_run *r, int layer, int g, const int32_t *want, int n_want)
{
    int32_t got[64];
    int n = fx_kept(r, layer, g, got);
    if (n != n_want)
        return 0;
    for (int i = 0; i < n; i++)
        if (got[i] != want[i])
            return 0;
    return 1;
}

#define ASSERT_KEPT(r, layer, g, ...)                                               \
    do {                                                                            \
        static const int32_t want_[] = {__VA_ARGS__};                               \
        int ok_ = kept_equals(r, layer, g, want_, (int)(sizeof want_ / sizeof *want_)); \
        if (!ok_) {                                                                 \
            int32_t got_[64];                                                       \
            int n_ = fx_kept(r, layer, g, got_);                                    \
            printf("\n    %s:%d kept:", __FILE__, __LINE__);                        \
            for (int i_ = 0; i_ < n_; i_++)                                         \
                printf(" %d", got_[i_]);                                            \
        }                                                                           \
        CU_ASSERT(ok_);                                                             \
    } while (0)

static void test_full_keeps_everything(void)
{
    memset(hand, 0, sizeof hand);
    fx_signals s = hand_signals();
    ikv_params p = ikv_default_params(IKV_POLICY_FULL);
    p.scenario = IKV_SCENARIO_DECODE;
    fx_run r;
    CU_ASSERT_EQUAL_FATAL(fx_create(&r, &p, fx_shape(2, 2, 1, MAXT)), IKV_OK);
    CU_ASSERT_EQUAL(fx_prefill(&r, &s, 5, 0), IKV_OK);
    for (int t = 5; t < MAXT; t++)
        CU_ASSERT_EQUAL(fx_decode(&r, &s, t), IKV_OK);
    ASSERT_KEPT(&r, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11);
    ASSERT_KEPT(&r, 1, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11);
    CU_ASSERT_EQUAL(ikv_policy_layer_budget(r.policy, 0), 0);
    CU_ASSERT_EQUAL(r.failures, 0);
    fx_destroy(&r);
}

/* StreamingLLM, sinks=2, budget=5, prompt of 10: keeps 0,1 and the last 3.
 * A decode token then pushes out the oldest recent one. */
static void test_streaming(void)
{
    fx_signals s = hand_signals();
    ikv_params p = ikv_default_params(IKV_POLICY_STREAMING);
    p.streaming.sinks = 2;
    p.budget.value = 5;
    p.scenario = IKV_SCENARIO_DECODE;
    fx_run r;
    CU_ASSERT_EQUAL_FATAL(fx_create(&r, &p, fx_shape(1, 2, 2, MAXT)), IKV_OK);
    CU_ASSERT_EQUAL(fx_prefill(&r, &s, 10, 12), IKV_OK);
    ASSERT_KEPT(&r, 0, 0, 0, 1, 7, 8, 9);
    ASSERT_KEPT(&r, 0, 1, 0, 1, 7, 8, 9);
    CU_ASSERT_EQUAL(fx_decode(&r, &s, 10), IKV_OK);
    ASSERT_KEPT(&r, 0, 0, 0, 1, 8, 9, 10);
    const int32_t *ev;
    int n_ev;
    ikv_policy_evicted(r.policy, 0, 1, &ev, &n_ev);
    CU_ASSERT_EQUAL(n_ev, 1);
    CU_ASSERT_EQUAL(ev[0], 7);
    CU_ASSERT_EQUAL(r.failures, 0);
    fx_destroy(&r);
}

/* H2O on 6 prompt tokens, two query heads in one GQA group, budget 4:
 * recent share 2 (positions 4, 5), 2 heavy hitters among 0..3.
 * Column sums of keys 0..3 over queries 0..5:
 *   head 0: 2.4, 1.4, 1.1, 0.8      head 1: 3.3, 0.5, 0.8, 1.3
 *   mean:   2.85 0.95 0.95 1.05  -> keys 0, 3
 *   max:    3.3  1.4  1.1  1.3   -> keys 0, 1 */
static void load_h2o_rows(void)
{
    memset(hand, 0, sizeof hand);
    static const float h0[6][6] = {
        {1}, {0.5f, 0.5f}, {0.2f, 0.6f, 0.2f}, {0.1f, 0.1f, 0.7f, 0.1f},
        {0.1f, 0.1f, 0.1f, 0.6f, 0.1f}, {0.5f, 0.1f, 0.1f, 0.1f, 0.1f, 0.1f}};
    static const float h1[6][6] = {
        {1}, {0.9f, 0.1f}, {0.5f, 0.1f, 0.4f}, {0.2f, 0.1f, 0.2f, 0.5f},
        {0.3f, 0.1f, 0.1f, 0.4f, 0.1f}, {0.4f, 0.1f, 0.1f, 0.4f, 0.0f, 0.0f}};
    for (int q = 0; q < 6; q++) {
        set_row(0, q, h0[q]);
        set_row(1, q, h1[q]);
    }
    /* Decode query 6, over positions 0..6. */
    static const float d0[7] = {0.2f, 0, 0, 0.5f, 0.1f, 0.1f, 0.1f};
    static const float d1[7] = {0.1f, 0, 0, 0.6f, 0.1f, 0.1f, 0.1f};
    set_row(0, 6, d0);
    set_row(1, 6, d1);
}

static void test_h2o_mean(void)
{
    load_h2o_rows();
    fx_signals s = hand_signals();
    ikv_params p = ikv_default_params(IKV_POLICY_H2O);
    p.budget.value = 4;
    p.scenario = IKV_SCENARIO_DECODE;
    fx_run r;
    CU_ASSERT_EQUAL_FATAL(fx_create(&r, &p, fx_shape(1, 2, 1, MAXT)), IKV_OK);
    CU_ASSERT_EQUAL(fx_prefill(&r, &s, 6, 0), IKV_OK);
    ASSERT_KEPT(&r, 0, 0, 0, 3, 4, 5);
    /* Fill compaction: slots 1, 2 (positions 1, 2) are refilled from the
     * tail slots 4, 5. */
    const ikv_move *m;
    int n;
    ikv_policy_moves(r.policy, 0, 0, &m, &n);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT(n == 2 && m[0].dst == 1 && m[0].src == 4 && m[1].dst == 2 && m[1].src == 5);
    const int32_t *pos = ikv_policy_positions(r.policy, 0, 0);
    CU_ASSERT(pos[0] == 0 && pos[1] == 4 && pos[2] == 5 && pos[3] == 3);
    /* Decode 6: accumulated means of 0, 4, 3 (5, 6 are recent):
     * pos 0: (2.6 + 3.4)/2 = 3.0, pos 4: (0.3 + 0.2)/2 = 0.25,
     * pos 3: (1.3 + 1.9)/2 = 1.6 -> position 4 goes. */
    CU_ASSERT_EQUAL(fx_decode(&r, &s, 6), IKV_OK);
    ASSERT_KEPT(&r, 0, 0, 0, 3, 5, 6);
    ikv_policy_moves(r.policy, 0, 0, &m, &n);
    CU_ASSERT(n == 1 && m[0].dst == 1 && m[0].src == 4);
    CU_ASSERT_EQUAL(r.failures, 0);
    fx_destroy(&r);
}

static void test_h2o_aggregation(void)
{
    load_h2o_rows();
    fx_signals s = hand_signals();
    ikv_aggregation aggs[3] = {IKV_AGG_MAX, IKV_AGG_SUM, IKV_AGG_MEAN};
    int32_t expect_second[3] = {1, 3, 3};
    for (int a = 0; a < 3; a++) {
        ikv_params p = ikv_default_params(IKV_POLICY_H2O);
        p.budget.value = 4;
        p.aggregation = aggs[a];
        fx_run r;
        CU_ASSERT_EQUAL_FATAL(fx_create(&r, &p, fx_shape(1, 2, 1, MAXT)), IKV_OK);
        CU_ASSERT_EQUAL(fx_prefill(&r, &s, 6, 0), IKV_OK);
        int32_t got[8];
        int n = fx_kept(&r, 0, 0, got);
        CU_ASSERT_EQUAL(n, 4);
        CU_ASSERT(got[0] == 0 && got[1] == expect_second[a] && got[2] == 4 && got[3] == 5);
        fx_destroy(&r);
    }
    /* heavy = 0.25 of 4: one heavy hitter (key 0), three recent (3, 4, 5). */
    ikv_params p = ikv_default_params(IKV_POLICY_H2O);
    p.budget.value = 4;
    p.h2o.heavy = 0.25;
    fx_run r;
    CU_ASSERT_EQUAL_FATAL(fx_create(&r, &p, fx_shape(1, 2, 1, MAXT)), IKV_OK);
    CU_ASSERT_EQUAL(fx_prefill(&r, &s, 6, 0), IKV_OK);
    ASSERT_KEPT(&r, 0, 0, 0, 3, 4, 5);
    fx_destroy(&r);
}

/* TOVA, two KV heads of one query head each, prompt 5, budget 3. Last
 * query rows (binary fractions):
 *   head 0: .25 .25 .25 .25 0      head 1: .5 0 .5 0 0
 *   mean:   .375 .125 .375 .125 0 -> keys 0, 2, then 3 beats 1 on the tie
 * (the more recent token wins). Both KV heads keep the same tokens. */
static void test_tova(void)
{
    memset(hand, 0, sizeof hand);
    static const float r0[5] = {0.25f, 0.25f, 0.25f, 0.25f, 0};
    static const float r1[5] = {0.5f, 0, 0.5f, 0, 0};
    set_row(0, 4, r0);
    set_row(1, 4, r1);
    /* Earlier rows would make key 1 heavy: TOVA must ignore them. */
    static const float early[4] = {0, 1, 0, 0};
    set_row(0, 3, early);
    set_row(1, 3, early);
    /* Decode 5 over slots holding 0, 3, 2, 5:
     *   head 0: pos0 .5, pos3 .25, pos2 0, pos5 .25
     *   head 1: pos0 .5, pos3 .25, pos2 .25, pos5 0
     *   mean: 0 .5, 3 .25, 2 .125, 5 .125 -> 2 goes (tie, less recent). */
    static const float d0[6] = {0.5f, 0, 0, 0.25f, 0, 0.25f};
    static const float d1[6] = {0.5f, 0, 0.25f, 0.25f, 0, 0};
    set_row(0, 5, d0);
    set_row(1, 5, d1);
    fx_signals s = hand_signals();
    ikv_params p = ikv_default_params(IKV_POLICY_TOVA);
    p.budget.value = 3;
    p.scenario = IKV_SCENARIO_DECODE;
    fx_run r;
    CU_ASSERT_EQUAL_FATAL(fx_create(&r, &p, fx_shape(1, 2, 2, MAXT)), IKV_OK);
    CU_ASSERT_EQUAL(fx_prefill(&r, &s, 5, 0), IKV_OK);
    ASSERT_KEPT(&r, 0, 0, 0, 2, 3);
    ASSERT_KEPT(&r, 0, 1, 0, 2, 3);
    CU_ASSERT(ikv_policy_wants_row(r.policy, 0, 4) == 0); /* compression done */
    CU_ASSERT_EQUAL(fx_decode(&r, &s, 5), IKV_OK);
    ASSERT_KEPT(&r, 0, 0, 0, 3, 5);
    ASSERT_KEPT(&r, 0, 1, 0, 3, 5);
    CU_ASSERT_EQUAL(r.failures, 0);
    fx_destroy(&r);
}

/* SnapKV, window 2, kernel 3, budget 4, prompt 8, one head. Window queries
 * 6 and 7 give keys 0..5 the sums .25 0 0 .25 0 .125; max pooling (kernel
 * 3) spreads them to .25 .25 .25 .25 .25 .125, and the tie among 0..4 goes
 * to the most recent: 4 and 3. Without pooling: 0 and 3. Rows of queries
 * 0..5 (outside the window) put everything on key 1 and must not count. */
static void load_snapkv_rows(void)
{
    memset(hand, 0, sizeof hand);
    static const float q6[7] = {0.125f, 0, 0, 0.25f, 0, 0, 0.625f};
    static const float q7[8] = {0.125f, 0, 0, 0, 0, 0.125f, 0.25f, 0.5f};
    set_row(0, 6, q6);
    set_row(0, 7, q7);
    for (int q = 1; q < 6; q++)
        hand[0][q][1] = 1.0f;
}

static void test_snapkv_pooling(void)
{
    load_snapkv_rows();
    fx_signals s = hand_signals();
    ikv_pooling pools[3] = {IKV_POOL_MAX, IKV_POOL_NONE, IKV_POOL_AVG};
    /* avg (kernel 3, zero padded, /3): .083 .083 .083 .083 .125 .042 -> 4, 3 */
    int32_t want[3][4] = {{3, 4, 6, 7}, {0, 3, 6, 7}, {3, 4, 6, 7}};
    for (int i = 0; i < 3; i++) {
        ikv_params p = ikv_default_params(IKV_POLICY_SNAPKV);
        p.snapkv.window = 2;
        p.snapkv.kernel = 3;
        p.snapkv.pool = pools[i];
        p.budget.value = 4;
        fx_run r;
        CU_ASSERT_EQUAL_FATAL(fx_create(&r, &p, fx_shape(1, 1, 1, MAXT)), IKV_OK);
        CU_ASSERT_EQUAL(ikv_policy_begin(r.policy, 8, 0), IKV_OK);
        for (int t = 0; t < 8; t++)
            ikv_policy_append(r.policy, t);
        CU_ASSERT_FALSE(ikv_policy_wants_row(r.policy, 0, 5));
        CU_ASSERT_TRUE(ikv_policy_wants_row(r.policy, 0, 6));
        CU_ASSERT_TRUE(ikv_policy_wants_row(r.policy, 0, 7));
        fx_destroy(&r);

        CU_ASSERT_EQUAL_FATAL(fx_create(&r, &p, fx_shape(1, 1, 1, MAXT)), IKV_OK);
        CU_ASSERT_EQUAL(fx_prefill(&r, &s, 8, 0), IKV_OK);
        CU_ASSERT(kept_equals(&r, 0, 0, want[i], 4));
        CU_ASSERT_EQUAL(r.failures, 0);
        /* Prefill scenario: decode tokens are kept, nothing more evicted. */
        CU_ASSERT_EQUAL(fx_decode(&r, &s, 8), IKV_OK);
        CU_ASSERT_EQUAL(ikv_policy_cache_len(r.policy, 0), 5);
        fx_destroy(&r);
    }
}

/* PyramidKV: SnapKV selection with per-layer budgets. 4 layers, budget 8,
 * window 2, beta 2: selectable 6, extras from 12 - 3 = 9 down to 3 in
 * steps of 2: budgets 11, 9, 7, 5. */
static void test_pyramidkv_budgets(void)
{
    memset(hand, 0, sizeof hand);
    fx_signals s = fx_random_signals(7);
    ikv_params p = ikv_default_params(IKV_POLICY_PYRAMIDKV);
    p.snapkv.window = 2;
    p.pyramid_beta = 2.0;
    p.budget.value = 8;
    fx_run r;
    CU_ASSERT_EQUAL_FATAL(fx_create(&r, &p, fx_shape(4, 2, 1, 32)), IKV_OK);
    CU_ASSERT_EQUAL(fx_prefill(&r, &s, 20, 0), IKV_OK);
    int want[4] = {11, 9, 7, 5};
    for (int l = 0; l < 4; l++) {
        CU_ASSERT_EQUAL(ikv_policy_layer_budget(r.policy, l), want[l]);
        CU_ASSERT_EQUAL(ikv_policy_cache_len(r.policy, l), want[l]);
        /* The window (18, 19) is always kept. */
        int32_t kept[32];
        int n = fx_kept(&r, l, 0, kept);
        CU_ASSERT(n >= 2 && kept[n - 2] == 18 && kept[n - 1] == 19);
    }
    CU_ASSERT_EQUAL(r.failures, 0);
    fx_destroy(&r);
}

/* InfoKV in prefill, one head, window 1 (no pooling), budget 3, prompt 5:
 * candidates 0..3, two are kept besides the window (4).
 *   attention A (query 4):      .4  .3  .2  .1
 *   entropy at position p:      2.0 0.5 3.0 1.0 (and 0 at 4)
 *   token entropy (prev):       0   2.0 0.5 3.0   normalised 0 .667 .167 1
 *   evolution:                  .1  .2  .9  .4    normalised 0 .125 1 .375
 *   A normalised:               1   .667 .333 0
 * alpha 0              -> A:            0, 1
 * alpha 1, beta 0      -> entropy:      3, 1
 * alpha 1, beta 1      -> evolution:    2, 3
 * alpha .7, beta .5    -> .3 A' + .7 (H' + E')/2 = .300 .477 .508 .481: 2, 3
 * alpha 1, beta 0, entropy_at=self -> 2.0 .5 3.0 1.0: 2, 0 */
static void test_infokv_fusion(void)
{
    memset(hand, 0, sizeof hand);
    static const float q4[5] = {0.4f, 0.3f, 0.2f, 0.1f, 0.0f};
    set_row(0, 4, q4);
    static const float ent[5] = {2.0f, 0.5f, 3.0f, 1.0f, 0.0f};
    static const float evo[5] = {0.1f, 0.2f, 0.9f, 0.4f, 0.0f};
    memcpy(hand_entropy_values, ent, sizeof ent);
    memcpy(hand_evolution_values, evo, sizeof evo);
    fx_signals s = hand_signals();
    struct {
        double alpha, beta;
        ikv_entropy_at at;
        int32_t want[3];
    } cases[] = {
        {0.0, 0.5, IKV_ENTROPY_PREV, {0, 1, 4}},
        {1.0, 0.0, IKV_ENTROPY_PREV, {1, 3, 4}},
        {1.0, 1.0, IKV_ENTROPY_PREV, {2, 3, 4}},
        {0.7, 0.5, IKV_ENTROPY_PREV, {2, 3, 4}},
        {1.0, 0.0, IKV_ENTROPY_SELF, {0, 2, 4}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ikv_params p = ikv_default_params(IKV_POLICY_INFOKV);
        p.infokv.alpha = cases[i].alpha;
        p.infokv.beta = cases[i].beta;
        p.infokv.entropy_at = cases[i].at;
        p.snapkv.window = 1;
        p.snapkv.pool = IKV_POOL_NONE;
        p.budget.value = 3;
        fx_run r;
        CU_ASSERT_EQUAL_FATAL(fx_create(&r, &p, fx_shape(1, 1, 1, MAXT)), IKV_OK);
        CU_ASSERT_EQUAL(fx_prefill(&r, &s, 5, 0), IKV_OK);
        int ok = kept_equals(&r, 0, 0, cases[i].want, 3);
        if (!ok) {
            int32_t got[8];
            int n = fx_kept(&r, 0, 0, got);
            printf("\n    case %zu kept:", i);
            for (int j = 0; j < n; j++)
                printf(" %d", got[j]);
        }
        CU_ASSERT(ok);
        fx_destroy(&r);
    }
}

/* The oracle keeps the keys with the highest hindsight scores. */
static void test_oracle(void)
{
    static const float fut[6] = {0.9f, 0.1f, 0.8f, 0.2f, 0.05f, 0.3f};
    memcpy(hand_future_values, fut, sizeof fut);
    fx_signals s = hand_signals();
    ikv_params p = ikv_default_params(IKV_POLICY_ORACLE);
    p.budget.value = 3;
    fx_run r;
    CU_ASSERT_EQUAL_FATAL(fx_create(&r, &p, fx_shape(1, 2, 2, MAXT)), IKV_OK);
    CU_ASSERT_EQUAL(fx_prefill(&r, &s, 6, 0), IKV_OK);
    ASSERT_KEPT(&r, 0, 0, 0, 2, 5);
    ASSERT_KEPT(&r, 0, 1, 0, 2, 5);
    fx_destroy(&r);
}

/* Random: same seed, same choice; over many seeds every token is kept
 * with probability budget / n (binomial: 4000 draws, p = 0.4, sd 31). */
static void test_random_uniform_and_seeded(void)
{
    fx_signals s = hand_signals();
    int counts[10] = {0};
    for (int seed = 0; seed < 4000; seed++) {
        ikv_params p = ikv_default_params(IKV_POLICY_RANDOM);
        p.budget.value = 4;
        p.random.seed = (uint64_t)seed;
        fx_run r;
        CU_ASSERT_EQUAL_FATAL(fx_create(&r, &p, fx_shape(1, 1, 1, MAXT)), IKV_OK);
        CU_ASSERT_EQUAL(fx_prefill(&r, &s, 10, 0), IKV_OK);
        int32_t got[10];
        int n = fx_kept(&r, 0, 0, got);
        CU_ASSERT_EQUAL(n, 4);
        for (int i = 0; i < n; i++)
            counts[got[i]]++;
        CU_ASSERT_EQUAL(r.failures, 0);
        fx_destroy(&r);
    }
    for (int i = 0; i < 10; i++)
        CU_ASSERT(counts[i] > 1600 - 155 && counts[i] < 1600 + 155);
}

static void add_suites(void)
{
    static const ikv_test_case cases[] = {
        {"full keeps everything", test_full_keeps_everything},
        {"streaming sinks and recent", test_streaming},
        {"h2o hand case, decode and moves", test_h2o_mean},
        {"h2o aggregation and heavy share", test_h2o_aggregation},
        {"tova last query, shared across KV heads", test_tova},
        {"snapkv window and pooling", test_snapkv_pooling},
        {"pyramidkv layer budgets", test_pyramidkv_budgets},
        {"infokv fusion", test_infokv_fusion},
        {"oracle", test_oracle},
        {"random uniform and seeded", test_random_uniform_and_seeded},
        {NULL, NULL},
    };
    ikv_test_suite("core policies", cases);
}

int main(int argc, char **argv)
{
    return ikv_test_main(argc, argv, add_suites);
}
