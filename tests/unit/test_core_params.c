/*
 * Names, defaults, key=value parsing, budgets and the errors of misuse.
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "core/internal.h"
#include "runner.h"

static void test_names_round_trip(void)
{
    for (int k = 0; k < IKV_POLICY_COUNT; k++) {
        ikv_policy_kind kind;
        CU_ASSERT_EQUAL(ikv_policy_from_name(ikv_policy_name((ikv_policy_kind)k), &kind), IKV_OK);
        CU_ASSERT_EQUAL(kind, k);
    }
    ikv_policy_kind kind;
    CU_ASSERT_EQUAL(ikv_policy_from_name("H2O", &kind), IKV_EINVAL);
    CU_ASSERT_EQUAL(ikv_policy_from_name("", &kind), IKV_EINVAL);
    CU_ASSERT_STRING_EQUAL(ikv_policy_name(IKV_POLICY_PYRAMIDKV), "pyramidkv");
    CU_ASSERT_STRING_EQUAL(ikv_policy_name((ikv_policy_kind)99), "unknown");
}

static void test_defaults(void)
{
    CU_ASSERT_EQUAL(ikv_streaming_default_params().sinks, 4);
    CU_ASSERT_DOUBLE_EQUAL(ikv_h2o_default_params().heavy, 0.5, 0);
    ikv_snapkv_params sp = ikv_snapkv_default_params();
    CU_ASSERT_EQUAL(sp.window, 32);
    CU_ASSERT_EQUAL(sp.kernel, 7);
    CU_ASSERT_EQUAL(sp.pool, IKV_POOL_MAX);
    ikv_infokv_params ip = ikv_infokv_default_params();
    CU_ASSERT_DOUBLE_EQUAL(ip.alpha, 0.3, 0);
    CU_ASSERT_DOUBLE_EQUAL(ip.beta, 0.5, 0);
    CU_ASSERT_EQUAL(ip.topk, 20);
    CU_ASSERT_EQUAL(ip.entropy_at, IKV_ENTROPY_PREV);
    CU_ASSERT_EQUAL(ikv_random_default_params().seed, 1u);

    ikv_params p = ikv_default_params(IKV_POLICY_SNAPKV);
    CU_ASSERT_EQUAL(p.interval, 128);
    CU_ASSERT_EQUAL(p.allocation, IKV_ALLOC_UNIFORM);
    CU_ASSERT_EQUAL(ikv_default_params(IKV_POLICY_PYRAMIDKV).allocation, IKV_ALLOC_PYRAMID);
    CU_ASSERT_EQUAL(ikv_default_params(IKV_POLICY_H2O).interval, 1);
    CU_ASSERT_EQUAL(ikv_default_params(IKV_POLICY_H2O).budget.is_fraction, 0);
    CU_ASSERT_DOUBLE_EQUAL(ikv_default_params(IKV_POLICY_H2O).budget.value, 128, 0);
    CU_ASSERT_EQUAL(ikv_default_params(IKV_POLICY_TOVA).scenario, IKV_SCENARIO_PREFILL);
}

static void test_set_and_parse(void)
{
    char err[256];
    ikv_params p = ikv_default_params(IKV_POLICY_INFOKV);
    CU_ASSERT_EQUAL(ikv_params_parse(&p, "alpha=0.7,beta=0,k=5,entropy_at=self,window=8,kernel=3,pool=avg,agg=max,budget=25%,scenario=decode,heavy=0.25", err, sizeof err), IKV_OK);
    CU_ASSERT_DOUBLE_EQUAL(p.infokv.alpha, 0.7, 0);
    CU_ASSERT_DOUBLE_EQUAL(p.infokv.beta, 0.0, 0);
    CU_ASSERT_EQUAL(p.infokv.topk, 5);
    CU_ASSERT_EQUAL(p.infokv.entropy_at, IKV_ENTROPY_SELF);
    CU_ASSERT_EQUAL(p.snapkv.window, 8);
    CU_ASSERT_EQUAL(p.snapkv.kernel, 3);
    CU_ASSERT_EQUAL(p.snapkv.pool, IKV_POOL_AVG);
    CU_ASSERT_EQUAL(p.aggregation, IKV_AGG_MAX);
    CU_ASSERT_EQUAL(p.budget.is_fraction, 1);
    CU_ASSERT_DOUBLE_EQUAL(p.budget.value, 0.25, 1e-12);
    CU_ASSERT_EQUAL(p.scenario, IKV_SCENARIO_DECODE);
    CU_ASSERT_DOUBLE_EQUAL(p.h2o.heavy, 0.25, 0);
    CU_ASSERT_EQUAL(ikv_params_parse(&p, "", err, sizeof err), IKV_OK);
    CU_ASSERT_EQUAL(ikv_params_parse(&p, "alpha=0.1,,beta=0.2", err, sizeof err), IKV_OK);
    CU_ASSERT_DOUBLE_EQUAL(p.infokv.beta, 0.2, 0);

    ikv_params r = ikv_default_params(IKV_POLICY_RANDOM);
    CU_ASSERT_EQUAL(ikv_params_set(&r, "seed", "18446744073709551615", err, sizeof err), IKV_OK);
    CU_ASSERT_EQUAL(r.random.seed, UINT64_MAX);
}

/* Each bad input gets IKV_EINVAL and a message naming the key. */
static void expect_bad(ikv_policy_kind kind, const char *list, const char *needle)
{
    char err[256] = "";
    ikv_params p = ikv_default_params(kind);
    ikv_params before = p;
    CU_ASSERT_EQUAL(ikv_params_parse(&p, list, err, sizeof err), IKV_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, needle));
    if (!strstr(err, needle))
        printf("\n  '%s' gave '%s'\n", list, err);
    (void)before;
}

static void test_bad_parameters(void)
{
    expect_bad(IKV_POLICY_H2O, "window=8", "unknown parameter 'window' for policy h2o");
    expect_bad(IKV_POLICY_H2O, "nonsense=1", "known: budget, scenario");
    expect_bad(IKV_POLICY_TOVA, "agg=max", "unknown parameter 'agg'");
    expect_bad(IKV_POLICY_FULL, "interval=3", "unknown parameter 'interval'");
    expect_bad(IKV_POLICY_H2O, "heavy=1.5", "heavy: 1.5 is out of range");
    expect_bad(IKV_POLICY_H2O, "heavy=abc", "heavy: 'abc' is not a finite number");
    expect_bad(IKV_POLICY_H2O, "heavy=nan", "heavy: 'nan' is not a finite number");
    expect_bad(IKV_POLICY_SNAPKV, "kernel=4", "must be odd");
    expect_bad(IKV_POLICY_SNAPKV, "window=0", "window: 0 is out of range");
    expect_bad(IKV_POLICY_SNAPKV, "window=12x", "window: '12x' is not an integer");
    expect_bad(IKV_POLICY_SNAPKV, "pool=median", "pool: 'median' is not one of max|avg|none");
    expect_bad(IKV_POLICY_SNAPKV, "agg=median", "agg: 'median' is not one of mean|max|sum");
    expect_bad(IKV_POLICY_SNAPKV, "scenario=online", "scenario: 'online'");
    expect_bad(IKV_POLICY_SNAPKV, "interval=0", "interval: 0 is out of range");
    expect_bad(IKV_POLICY_RANDOM, "seed=-1", "seed: '-1' must be a non-negative integer");
    expect_bad(IKV_POLICY_STREAMING, "sinks=-2", "sinks: -2 is out of range");
    expect_bad(IKV_POLICY_INFOKV, "alpha=2", "alpha: 2 is out of range");
    expect_bad(IKV_POLICY_INFOKV, "k=-1", "k: -1 is out of range");
    expect_bad(IKV_POLICY_INFOKV, "entropy_at=next", "entropy_at: 'next'");
    expect_bad(IKV_POLICY_H2O, "heavy", "not of the form key=value");
    expect_bad(IKV_POLICY_H2O, "=0.5", "not of the form key=value");
    expect_bad(IKV_POLICY_H2O, "heavy=", "not of the form key=value");
    expect_bad(IKV_POLICY_H2O, "budget=0", "budget: '0' must be a whole count");
    expect_bad(IKV_POLICY_H2O, "budget=12.5", "budget: '12.5' must be a whole count");
    expect_bad(IKV_POLICY_H2O, "budget=150%", "percentage in (0%, 100%]");
    expect_bad(IKV_POLICY_H2O, "budget=0%", "percentage in (0%, 100%]");
    expect_bad(IKV_POLICY_H2O, "budget=many", "neither a count");
    expect_bad(IKV_POLICY_H2O, "pyramid_beta=0.5", "pyramid_beta: 0.5 is out of range");
}

static void test_budget_parse(void)
{
    char err[128];
    ikv_budget b;
    CU_ASSERT_EQUAL(ikv_budget_parse("128", &b, err, sizeof err), IKV_OK);
    CU_ASSERT(!b.is_fraction && b.value == 128);
    CU_ASSERT_EQUAL(ikv_budget_parse("1", &b, err, sizeof err), IKV_OK);
    CU_ASSERT(!b.is_fraction && b.value == 1);
    CU_ASSERT_EQUAL(ikv_budget_parse("25%", &b, err, sizeof err), IKV_OK);
    CU_ASSERT(b.is_fraction && fabs(b.value - 0.25) < 1e-12);
    CU_ASSERT_EQUAL(ikv_budget_parse("100%", &b, err, sizeof err), IKV_OK);
    CU_ASSERT(b.is_fraction && b.value == 1.0);
    CU_ASSERT_EQUAL(ikv_budget_parse("0.125", &b, err, sizeof err), IKV_OK);
    CU_ASSERT(b.is_fraction && b.value == 0.125);
    CU_ASSERT_EQUAL(ikv_budget_parse("-3", &b, err, sizeof err), IKV_EINVAL);
    CU_ASSERT_EQUAL(ikv_budget_parse("%", &b, err, sizeof err), IKV_EINVAL);
    CU_ASSERT_EQUAL(ikv_budget_parse("12%%", &b, err, sizeof err), IKV_EINVAL);
    CU_ASSERT_EQUAL(ikv_budget_parse("", &b, err, sizeof err), IKV_EINVAL);
    CU_ASSERT_EQUAL(ikv_budget_parse("1e12", &b, err, sizeof err), IKV_EINVAL);
    CU_ASSERT_EQUAL(ikv_budget_parse(NULL, &b, err, sizeof err), IKV_EINVAL);
}

static void test_format(void)
{
    char buf[256], err[128];
    ikv_params p = ikv_default_params(IKV_POLICY_SNAPKV);
    CU_ASSERT_EQUAL(ikv_params_format(&p, buf, sizeof buf), 0);
    CU_ASSERT_STRING_EQUAL(buf, "");
    ikv_params_parse(&p, "window=16,alloc=pyramid,budget=64,scenario=decode", err, sizeof err);
    ikv_params_format(&p, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "alloc=pyramid,window=16");
    ikv_params q = ikv_default_params(IKV_POLICY_PYRAMIDKV);
    ikv_params_format(&q, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "");
    ikv_params i = ikv_default_params(IKV_POLICY_INFOKV);
    ikv_params_parse(&i, "alpha=0.25,entropy_at=self", err, sizeof err);
    int needed = ikv_params_format(&i, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "alpha=0.25,entropy_at=self");
    CU_ASSERT_EQUAL(needed, (int)strlen("alpha=0.25,entropy_at=self"));
    /* A short buffer is cut at a whole item and still terminated. */
    char small[12];
    CU_ASSERT_EQUAL(ikv_params_format(&i, small, sizeof small), needed);
    CU_ASSERT_STRING_EQUAL(small, "alpha=0.25");
    /* Formatting then parsing gives the same parameters back. */
    ikv_params back = ikv_default_params(IKV_POLICY_INFOKV);
    CU_ASSERT_EQUAL(ikv_params_parse(&back, buf, err, sizeof err), IKV_OK);
    CU_ASSERT_EQUAL(memcmp(&back.infokv, &i.infokv, sizeof back.infokv), 0);
}

static int has_key(ikv_policy_kind kind, const char *key)
{
    for (int i = 0;; i++) {
        const ikv_param_info *info = ikv_param_info_at(kind, i);
        if (!info)
            return 0;
        if (strcmp(info->key, key) == 0)
            return 1;
    }
}

static void test_param_info(void)
{
    CU_ASSERT(has_key(IKV_POLICY_H2O, "heavy"));
    CU_ASSERT(has_key(IKV_POLICY_H2O, "budget"));
    CU_ASSERT(!has_key(IKV_POLICY_TOVA, "agg"));
    CU_ASSERT(!has_key(IKV_POLICY_FULL, "interval"));
    CU_ASSERT(has_key(IKV_POLICY_FULL, "budget"));
    CU_ASSERT(has_key(IKV_POLICY_INFOKV, "k"));
    CU_ASSERT(has_key(IKV_POLICY_INFOKV, "window"));
    CU_ASSERT(!has_key(IKV_POLICY_SNAPKV, "alpha"));
    CU_ASSERT_PTR_NULL(ikv_param_info_at((ikv_policy_kind)42, 0));
    CU_ASSERT_PTR_NULL(ikv_param_info_at(IKV_POLICY_H2O, 1000));
    /* Every accepted key is settable with its documented default. */
    for (int k = 0; k < IKV_POLICY_COUNT; k++) {
        for (int i = 0;; i++) {
            const ikv_param_info *info = ikv_param_info_at((ikv_policy_kind)k, i);
            if (!info)
                break;
            ikv_params p = ikv_default_params((ikv_policy_kind)k);
            char err[256];
            int rc = ikv_params_set(&p, info->key, info->default_text, err, sizeof err);
            CU_ASSERT_EQUAL(rc, IKV_OK);
            CU_ASSERT(strlen(info->help) > 10);
        }
    }
}

static void test_create_errors(void)
{
    char err[256] = "";
    ikv_policy *p = (ikv_policy *)1;
    ikv_params params = ikv_default_params(IKV_POLICY_H2O);
    ikv_shape bad = {2, 6, 4, 0, 0, 64}; /* 6 heads over 4 KV heads */
    CU_ASSERT_EQUAL(ikv_policy_create(&p, &params, &bad, err, sizeof err), IKV_EINVAL);
    CU_ASSERT_PTR_NULL(p);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "multiple of n_kv_heads"));
    ikv_shape no_cap = {2, 4, 2, 0, 0, 0};
    CU_ASSERT_EQUAL(ikv_policy_create(&p, &params, &no_cap, err, sizeof err), IKV_EINVAL);
    ikv_shape outside = {2, 4, 2, 1, 2, 64};
    CU_ASSERT_EQUAL(ikv_policy_create(&p, &params, &outside, err, sizeof err), IKV_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not within the model"));
    ikv_params snap = ikv_default_params(IKV_POLICY_SNAPKV);
    snap.scenario = IKV_SCENARIO_DECODE;
    snap.interval = 16;
    ikv_shape ok = {2, 4, 2, 0, 0, 64};
    CU_ASSERT_EQUAL(ikv_policy_create(&p, &snap, &ok, err, sizeof err), IKV_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "must not exceed interval"));
    ikv_params weird = ikv_default_params(IKV_POLICY_H2O);
    weird.aggregation = (ikv_aggregation)7;
    CU_ASSERT_EQUAL(ikv_policy_create(&p, &weird, &ok, err, sizeof err), IKV_EINVAL);
    CU_ASSERT_EQUAL(ikv_policy_create(NULL, &params, &ok, err, sizeof err), IKV_EINVAL);
}

static void test_begin_errors(void)
{
    char err[256];
    ikv_policy *p;
    ikv_shape shape = {4, 4, 2, 0, 0, 256};

    ikv_params snap = ikv_default_params(IKV_POLICY_SNAPKV);
    snap.budget.value = 16; /* below the window of 32 */
    CU_ASSERT_EQUAL_FATAL(ikv_policy_create(&p, &snap, &shape, err, sizeof err), IKV_OK);
    CU_ASSERT_EQUAL(ikv_policy_begin(p, 100, 0), IKV_EBUDGET);
    CU_ASSERT_PTR_NOT_NULL(strstr(ikv_policy_error(p), "below the observation window (32)"));
    CU_ASSERT_EQUAL(ikv_policy_append(p, 0), IKV_ESTATE);
    ikv_policy_free(p);

    ikv_params st = ikv_default_params(IKV_POLICY_STREAMING);
    st.budget.value = 2;
    CU_ASSERT_EQUAL_FATAL(ikv_policy_create(&p, &st, &shape, err, sizeof err), IKV_OK);
    CU_ASSERT_EQUAL(ikv_policy_begin(p, 100, 0), IKV_EBUDGET);
    CU_ASSERT_PTR_NOT_NULL(strstr(ikv_policy_error(p), "below the 4 sink tokens"));
    ikv_policy_free(p);

    ikv_params frac = ikv_default_params(IKV_POLICY_H2O);
    frac.budget = (ikv_budget){0.25, 1};
    frac.scenario = IKV_SCENARIO_DECODE;
    CU_ASSERT_EQUAL_FATAL(ikv_policy_create(&p, &frac, &shape, err, sizeof err), IKV_OK);
    CU_ASSERT_EQUAL(ikv_policy_begin(p, 100, 0), IKV_EBUDGET);
    CU_ASSERT_PTR_NOT_NULL(strstr(ikv_policy_error(p), "needs the sequence length"));
    CU_ASSERT_EQUAL(ikv_policy_begin(p, 100, 200), IKV_OK);
    CU_ASSERT_EQUAL(ikv_policy_layer_budget(p, 0), 50);
    CU_ASSERT_EQUAL(ikv_policy_begin(p, 0, 200), IKV_EINVAL);
    CU_ASSERT_EQUAL(ikv_policy_begin(p, 100, 50), IKV_EINVAL);
    CU_ASSERT_EQUAL(ikv_policy_begin(p, 300, 0), IKV_EINVAL);
    ikv_policy_free(p);

    /* Fraction in prefill resolves against the prompt, rounding up. */
    ikv_params pf = ikv_default_params(IKV_POLICY_H2O);
    pf.budget = (ikv_budget){0.1, 1};
    CU_ASSERT_EQUAL_FATAL(ikv_policy_create(&p, &pf, &shape, err, sizeof err), IKV_OK);
    CU_ASSERT_EQUAL(ikv_policy_begin(p, 101, 0), IKV_OK);
    CU_ASSERT_EQUAL(ikv_policy_layer_budget(p, 3), 11);
    CU_ASSERT_EQUAL(ikv_policy_begin(p, 5, 0), IKV_OK);
    CU_ASSERT_EQUAL(ikv_policy_layer_budget(p, 3), 1);
    CU_ASSERT_EQUAL(ikv_policy_layer_budget(p, 9), 0); /* not a layer */
    ikv_policy_free(p);
}

static void test_protocol_errors(void)
{
    char err[256];
    ikv_policy *p;
    ikv_shape shape = {1, 2, 1, 0, 0, 8};
    ikv_params h = ikv_default_params(IKV_POLICY_H2O);
    h.budget.value = 2;
    CU_ASSERT_EQUAL_FATAL(ikv_policy_create(&p, &h, &shape, err, sizeof err), IKV_OK);
    float row[16] = {0};
    CU_ASSERT_EQUAL(ikv_policy_step(p, NULL), IKV_ESTATE);
    CU_ASSERT_EQUAL(ikv_policy_observe_entropy(p, 0, 1.0f), IKV_ESTATE);
    CU_ASSERT_EQUAL(ikv_policy_begin(p, 4, 0), IKV_OK);
    CU_ASSERT_EQUAL(ikv_policy_append(p, 3), IKV_OK);
    CU_ASSERT_EQUAL(ikv_policy_append(p, 3), IKV_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(ikv_policy_error(p), "does not follow"));
    CU_ASSERT_EQUAL(ikv_policy_append(p, 8), IKV_ECAPACITY);
    CU_ASSERT_EQUAL(ikv_policy_append(p, -1), IKV_ECAPACITY);
    CU_ASSERT_EQUAL(ikv_policy_observe_attention(p, 0, 3, row, 2, 8), IKV_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(ikv_policy_error(p), "2 keys"));
    CU_ASSERT_EQUAL(ikv_policy_observe_attention(p, 0, 2, row, 1, 8), IKV_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(ikv_policy_error(p), "was not appended"));
    CU_ASSERT_EQUAL(ikv_policy_observe_attention(p, 1, 3, row, 1, 8), IKV_EINVAL);
    CU_ASSERT_EQUAL(ikv_policy_observe_attention(p, 0, 3, row, 1, 0), IKV_EINVAL);
    CU_ASSERT_EQUAL(ikv_policy_observe_attention(p, 0, 3, NULL, 1, 8), IKV_EINVAL);
    CU_ASSERT_EQUAL(ikv_policy_observe_attention(p, 0, 3, row, 1, 8), IKV_OK);
    CU_ASSERT_EQUAL(ikv_policy_observe_entropy(p, 0, NAN), IKV_EINVAL);
    CU_ASSERT_EQUAL(ikv_policy_observe_entropy(p, 0, -1.0f), IKV_EINVAL);
    CU_ASSERT_EQUAL(ikv_policy_observe_entropy(p, 9, 1.0f), IKV_ECAPACITY);
    CU_ASSERT_EQUAL(ikv_policy_observe_evolution(p, 0, 0, INFINITY), IKV_EINVAL);
    CU_ASSERT_EQUAL(ikv_policy_observe_evolution(p, 2, 0, 0.5f), IKV_EINVAL);
    CU_ASSERT_EQUAL(ikv_policy_cache_len(p, 3), -1);
    CU_ASSERT_PTR_NULL(ikv_policy_positions(p, 0, 1));
    const ikv_move *m;
    int n;
    CU_ASSERT_EQUAL(ikv_policy_moves(p, 0, 5, &m, &n), IKV_EINVAL);
    ikv_policy_free(p);
    ikv_policy_free(NULL);

    /* The oracle cannot compress without hindsight scores. */
    ikv_params o = ikv_default_params(IKV_POLICY_ORACLE);
    o.budget.value = 1;
    CU_ASSERT_EQUAL_FATAL(ikv_policy_create(&p, &o, &shape, err, sizeof err), IKV_OK);
    CU_ASSERT_EQUAL(ikv_policy_begin(p, 2, 0), IKV_OK);
    ikv_policy_append(p, 0);
    ikv_policy_append(p, 1);
    CU_ASSERT_EQUAL(ikv_policy_step(p, NULL), IKV_ESTATE);
    CU_ASSERT_PTR_NOT_NULL(strstr(ikv_policy_error(p), "no future scores"));
    ikv_policy_free(p);

    /* InfoKV cannot score without the entropy of its candidates. */
    ikv_params i = ikv_default_params(IKV_POLICY_INFOKV);
    i.budget.value = 2;
    i.snapkv.window = 1;
    i.infokv.beta = 0.0; /* entropy only */
    CU_ASSERT_EQUAL_FATAL(ikv_policy_create(&p, &i, &shape, err, sizeof err), IKV_OK);
    CU_ASSERT_EQUAL(ikv_policy_begin(p, 4, 0), IKV_OK);
    for (int t = 0; t < 4; t++)
        ikv_policy_append(p, t);
    CU_ASSERT_EQUAL(ikv_policy_step(p, NULL), IKV_ESTATE);
    CU_ASSERT_PTR_NOT_NULL(strstr(ikv_policy_error(p), "no entropy observed for position 0"));

    ikv_policy_free(p);
}

static void test_strerror_and_needs(void)
{
    CU_ASSERT_STRING_EQUAL(ikv_strerror(IKV_OK), "success");
    CU_ASSERT_STRING_EQUAL(ikv_strerror(IKV_EBUDGET), "impossible budget");
    CU_ASSERT_STRING_EQUAL(ikv_strerror(12345), "unknown status");
    char err[128];
    ikv_shape shape = {1, 2, 1, 0, 0, 8};
    ikv_policy *p;
    ikv_params i = ikv_default_params(IKV_POLICY_INFOKV);
    ikv_policy_create(&p, &i, &shape, err, sizeof err);
    CU_ASSERT_EQUAL(ikv_policy_needs(p), IKV_NEED_ATTENTION | IKV_NEED_ENTROPY | IKV_NEED_EVOLUTION);
    CU_ASSERT_EQUAL(ikv_policy_entropy_topk(p), 20);
    ikv_policy_free(p);
    i.infokv.alpha = 0;
    ikv_policy_create(&p, &i, &shape, err, sizeof err);
    CU_ASSERT_EQUAL(ikv_policy_needs(p), IKV_NEED_ATTENTION);
    ikv_policy_free(p);
    i.infokv.alpha = 0.5;
    i.infokv.beta = 0;
    ikv_policy_create(&p, &i, &shape, err, sizeof err);
    CU_ASSERT_EQUAL(ikv_policy_needs(p), IKV_NEED_ATTENTION | IKV_NEED_ENTROPY);
    ikv_policy_free(p);
    ikv_params s = ikv_default_params(IKV_POLICY_STREAMING);
    ikv_policy_create(&p, &s, &shape, err, sizeof err);
    CU_ASSERT_EQUAL(ikv_policy_needs(p), 0u);
    ikv_policy_free(p);
    ikv_params o = ikv_default_params(IKV_POLICY_ORACLE);
    ikv_policy_create(&p, &o, &shape, err, sizeof err);
    CU_ASSERT_EQUAL(ikv_policy_needs(p), IKV_NEED_FUTURE);
    ikv_policy_free(p);
}

static void add_suites(void)
{
    static const ikv_test_case cases[] = {
        {"names round trip", test_names_round_trip},
        {"defaults", test_defaults},
        {"set and parse", test_set_and_parse},
        {"bad parameters", test_bad_parameters},
        {"budget parse", test_budget_parse},
        {"format", test_format},
        {"param info", test_param_info},
        {"create errors", test_create_errors},
        {"begin errors", test_begin_errors},
        {"protocol errors", test_protocol_errors},
        {"strerror and needs", test_strerror_and_needs},
        {NULL, NULL},
    };
    ikv_test_suite("core params", cases);
}

int main(int argc, char **argv)
{
    return ikv_test_main(argc, argv, add_suites);
}
