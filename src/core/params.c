/*
 * Policy names, default parameters and key=value parsing.
 *
 * Every key has one row in a table: its name, the policies that accept it, a
 * default as written on a command line, a help line and a setter that checks
 * the value's range. Parsing, formatting and --help all read that table.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

const char *ikv_strerror(int status)
{
    switch (status) {
    case IKV_OK: return "success";
    case IKV_EINVAL: return "invalid argument";
    case IKV_ENOMEM: return "out of memory";
    case IKV_EBUDGET: return "impossible budget";
    case IKV_ESTATE: return "call out of order";
    case IKV_ECAPACITY: return "capacity exceeded";
    default: return "unknown status";
    }
}

int ikv_set_error(char *err, size_t errlen, int status, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return status;
}

static const char *const policy_names[IKV_POLICY_COUNT] = {
    "full", "random", "streaming", "h2o", "tova",
    "snapkv", "pyramidkv", "infokv", "oracle",
};

const char *ikv_policy_name(ikv_policy_kind kind)
{
    if ((unsigned)kind >= IKV_POLICY_COUNT)
        return "unknown";
    return policy_names[kind];
}

int ikv_policy_from_name(const char *name, ikv_policy_kind *kind)
{
    if (!name || !kind)
        return IKV_EINVAL;
    for (int i = 0; i < IKV_POLICY_COUNT; i++) {
        if (strcmp(name, policy_names[i]) == 0) {
            *kind = (ikv_policy_kind)i;
            return IKV_OK;
        }
    }
    return IKV_EINVAL;
}

/* Defaults. Sources: StreamingLLM (Xiao et al. 2023) keeps 4 sink tokens;
 * H2O (Zhang et al. 2023) splits the cache 1:1 between heavy hitters and a
 * recent window; SnapKV (Li et al. 2024) observes the last 32 queries and
 * pools keys with a kernel of 7 (the reference code offers max and avg);
 * PyramidKV (Cai et al. 2024) uses beta = 20 for its schedule. The InfoKV
 * weights are ours (the paper's exact recipe is not public): see
 * policy_infokv.c. */
ikv_random_params ikv_random_default_params(void)
{
    return (ikv_random_params){.seed = 1};
}

ikv_streaming_params ikv_streaming_default_params(void)
{
    return (ikv_streaming_params){.sinks = 4};
}

ikv_h2o_params ikv_h2o_default_params(void)
{
    return (ikv_h2o_params){.heavy = 0.5};
}

ikv_snapkv_params ikv_snapkv_default_params(void)
{
    return (ikv_snapkv_params){.window = 32, .kernel = 7, .pool = IKV_POOL_MAX};
}

ikv_infokv_params ikv_infokv_default_params(void)
{
    return (ikv_infokv_params){
        .alpha = 0.3, .beta = 0.5, .topk = 20, .entropy_at = IKV_ENTROPY_PREV};
}

ikv_params ikv_default_params(ikv_policy_kind kind)
{
    ikv_params p;
    memset(&p, 0, sizeof p);
    p.policy = kind;
    p.budget = (ikv_budget){.value = 128, .is_fraction = 0};
    p.scenario = IKV_SCENARIO_PREFILL;
    p.allocation = kind == IKV_POLICY_PYRAMIDKV ? IKV_ALLOC_PYRAMID : IKV_ALLOC_UNIFORM;
    p.pyramid_beta = 20.0;
    p.aggregation = IKV_AGG_MEAN;
    /* SnapKV-style policies re-compress every 128 decode steps (the
     * observation window must fit between two compressions); the others
     * evict one token per step as their papers do. */
    p.interval = (kind == IKV_POLICY_SNAPKV || kind == IKV_POLICY_PYRAMIDKV) ? 128 : 1;
    p.random = ikv_random_default_params();
    p.streaming = ikv_streaming_default_params();
    p.h2o = ikv_h2o_default_params();
    p.snapkv = ikv_snapkv_default_params();
    p.infokv = ikv_infokv_default_params();
    return p;
}

/* ---- value parsers ---- */

static int parse_int(const char *key, const char *text, long lo, long hi,
                     long *out, char *err, size_t errlen)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end != '\0')
        return ikv_set_error(err, errlen, IKV_EINVAL,
                             "%s: '%s' is not an integer", key, text);
    if (v < lo || v > hi)
        return ikv_set_error(err, errlen, IKV_EINVAL,
                             "%s: %ld is out of range [%ld, %ld]", key, v, lo, hi);
    *out = v;
    return IKV_OK;
}

static int parse_real(const char *key, const char *text, double lo, double hi,
                      double *out, char *err, size_t errlen)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end != '\0' || !isfinite(v))
        return ikv_set_error(err, errlen, IKV_EINVAL,
                             "%s: '%s' is not a finite number", key, text);
    if (v < lo || v > hi)
        return ikv_set_error(err, errlen, IKV_EINVAL,
                             "%s: %g is out of range [%g, %g]", key, v, lo, hi);
    *out = v;
    return IKV_OK;
}

static int parse_choice(const char *key, const char *text,
                        const char *const *names, int n, int *out, char *err,
                        size_t errlen)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(text, names[i]) == 0) {
            *out = i;
            return IKV_OK;
        }
    }
    char list[128] = "";
    for (int i = 0; i < n; i++) {
        strncat(list, names[i], sizeof list - strlen(list) - 1);
        if (i + 1 < n)
            strncat(list, "|", sizeof list - strlen(list) - 1);
    }
    return ikv_set_error(err, errlen, IKV_EINVAL, "%s: '%s' is not one of %s",
                         key, text, list);
}

int ikv_budget_parse(const char *text, ikv_budget *budget, char *err,
                     size_t errlen)
{
    if (!text || !budget)
        return ikv_set_error(err, errlen, IKV_EINVAL, "budget: missing value");
    size_t len = strlen(text);
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || !isfinite(v))
        return ikv_set_error(err, errlen, IKV_EINVAL,
                             "budget: '%s' is neither a count (128) nor a fraction (25%% or 0.25)",
                             text);
    if (*end == '%' && end[1] == '\0' && len > 1) {
        if (!(v > 0.0 && v <= 100.0))
            return ikv_set_error(err, errlen, IKV_EINVAL,
                                 "budget: '%s' must be a percentage in (0%%, 100%%]", text);
        *budget = (ikv_budget){.value = v / 100.0, .is_fraction = 1};
        return IKV_OK;
    }
    if (*end != '\0')
        return ikv_set_error(err, errlen, IKV_EINVAL,
                             "budget: '%s' is neither a count (128) nor a fraction (25%% or 0.25)",
                             text);
    if (v > 0.0 && v < 1.0) {
        *budget = (ikv_budget){.value = v, .is_fraction = 1};
        return IKV_OK;
    }
    if (v < 1.0 || v != floor(v) || v > 1e9)
        return ikv_set_error(err, errlen, IKV_EINVAL,
                             "budget: '%s' must be a whole count >= 1 or a fraction in (0, 1)",
                             text);
    *budget = (ikv_budget){.value = v, .is_fraction = 0};
    return IKV_OK;
}

/* ---- the key table ---- */

#define P(kind) (1u << (kind))
#define ALL_POLICIES ((1u << IKV_POLICY_COUNT) - 1u)
#define SNAP_FAMILY (P(IKV_POLICY_SNAPKV) | P(IKV_POLICY_PYRAMIDKV) | P(IKV_POLICY_INFOKV))

static const char *const scenario_names[] = {"prefill", "decode"};
static const char *const alloc_names[] = {"uniform", "pyramid"};
static const char *const agg_names[] = {"mean", "max", "sum"};
static const char *const pool_names[] = {"max", "avg", "none"};
static const char *const entropy_at_names[] = {"prev", "self"};

typedef int (*setter_fn)(ikv_params *p, const char *key, const char *v,
                         char *err, size_t errlen);
typedef int (*getter_fn)(const ikv_params *p, char *buf, size_t n);

typedef struct key_row {
    ikv_param_info info;
    unsigned policies; /* P(kind) mask of the policies accepting the key */
    setter_fn set;
    getter_fn get;
} key_row;

static int set_budget(ikv_params *p, const char *k, const char *v, char *e, size_t n)
{
    (void)k;
    return ikv_budget_parse(v, &p->budget, e, n);
}
static int get_budget(const ikv_params *p, char *b, size_t n)
{
    if (p->budget.is_fraction)
        return snprintf(b, n, "%g%%", p->budget.value * 100.0);
    return snprintf(b, n, "%.0f", p->budget.value);
}

#define CHOICE_KEY(fn, field, type, names)                                     \
    static int set_##fn(ikv_params *p, const char *k, const char *v, char *e,  \
                        size_t n)                                              \
    {                                                                          \
        int c, rc = parse_choice(k, v, names, (int)(sizeof names / sizeof *names), &c, e, n); \
        if (rc == IKV_OK)                                                      \
            p->field = (type)c;                                                \
        return rc;                                                             \
    }                                                                          \
    static int get_##fn(const ikv_params *p, char *b, size_t n)                \
    {                                                                          \
        return snprintf(b, n, "%s", names[p->field]);                          \
    }

#define INT_KEY(fn, field, lo, hi)                                             \
    static int set_##fn(ikv_params *p, const char *k, const char *v, char *e,  \
                        size_t n)                                              \
    {                                                                          \
        long x;                                                                \
        int rc = parse_int(k, v, lo, hi, &x, e, n);                            \
        if (rc == IKV_OK)                                                      \
            p->field = (int)x;                                                 \
        return rc;                                                             \
    }                                                                          \
    static int get_##fn(const ikv_params *p, char *b, size_t n)                \
    {                                                                          \
        return snprintf(b, n, "%d", p->field);                                 \
    }

#define REAL_KEY(fn, field, lo, hi)                                            \
    static int set_##fn(ikv_params *p, const char *k, const char *v, char *e,  \
                        size_t n)                                              \
    {                                                                          \
        return parse_real(k, v, lo, hi, &p->field, e, n);                      \
    }                                                                          \
    static int get_##fn(const ikv_params *p, char *b, size_t n)                \
    {                                                                          \
        return format_real(b, n, p->field);                                    \
    }

/* The shortest text that reads back as exactly v ("0.3", not
 * "0.29999999999999999"): the canonical text of a job's parameters must
 * tell apart values that %g would print alike. */
static int format_real(char *b, size_t n, double v)
{
    char text[40];
    for (int digits = 6; digits <= 17; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, v);
        if (strtod(text, NULL) == v)
            break;
    }
    return snprintf(b, n, "%s", text);
}

CHOICE_KEY(scenario, scenario, ikv_scenario, scenario_names)
CHOICE_KEY(alloc, allocation, ikv_allocation, alloc_names)
CHOICE_KEY(agg, aggregation, ikv_aggregation, agg_names)
CHOICE_KEY(pool, snapkv.pool, ikv_pooling, pool_names)
CHOICE_KEY(entropy_at, infokv.entropy_at, ikv_entropy_at, entropy_at_names)
REAL_KEY(pyramid_beta, pyramid_beta, 1.0, 1e6)
INT_KEY(interval, interval, 1, 1000000000L)
INT_KEY(sinks, streaming.sinks, 0, 1000000000L)
REAL_KEY(heavy, h2o.heavy, 0.0, 1.0)
INT_KEY(window, snapkv.window, 1, 1000000000L)
REAL_KEY(alpha, infokv.alpha, 0.0, 1.0)
REAL_KEY(beta, infokv.beta, 0.0, 1.0)
INT_KEY(topk, infokv.topk, 0, 1000000000L)

static int set_kernel(ikv_params *p, const char *k, const char *v, char *e, size_t n)
{
    long x;
    int rc = parse_int(k, v, 1, 1001, &x, e, n);
    if (rc != IKV_OK)
        return rc;
    if (x % 2 == 0)
        return ikv_set_error(e, n, IKV_EINVAL, "%s: %ld must be odd (the pooling window is centred)", k, x);
    p->snapkv.kernel = (int)x;
    return IKV_OK;
}
static int get_kernel(const ikv_params *p, char *b, size_t n)
{
    return snprintf(b, n, "%d", p->snapkv.kernel);
}

static int set_seed(ikv_params *p, const char *k, const char *v, char *e, size_t n)
{
    char *end;
    errno = 0;
    if (*v == '-')
        return ikv_set_error(e, n, IKV_EINVAL, "%s: '%s' must be a non-negative integer", k, v);
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || end == v || *end != '\0')
        return ikv_set_error(e, n, IKV_EINVAL, "%s: '%s' must be a non-negative integer", k, v);
    p->random.seed = (uint64_t)x;
    return IKV_OK;
}
static int get_seed(const ikv_params *p, char *b, size_t n)
{
    return snprintf(b, n, "%llu", (unsigned long long)p->random.seed);
}

static const key_row key_table[] = {
    {{"budget", "128", "slots kept per (layer, KV head): a count or a fraction (25%)"},
     ALL_POLICIES, set_budget, get_budget},
    {{"scenario", "prefill", "prefill: compress the prompt once; decode: also evict while generating"},
     ALL_POLICIES, set_scenario, get_scenario},
    {{"alloc", "uniform", "per-layer budgets: uniform, or pyramid (lower layers keep more)"},
     ALL_POLICIES & ~P(IKV_POLICY_FULL), set_alloc, get_alloc},
    {{"pyramid_beta", "20", "pyramid: the top layer keeps (B - window) / beta above the window"},
     ALL_POLICIES & ~P(IKV_POLICY_FULL), set_pyramid_beta, get_pyramid_beta},
    {{"agg", "mean", "GQA: how the query heads of a group combine scores (mean|max|sum)"},
     P(IKV_POLICY_H2O) | SNAP_FAMILY, set_agg, get_agg},
    {{"interval", "1", "decode: evict every N steps (SnapKV-style policies: 128)"},
     ALL_POLICIES & ~P(IKV_POLICY_FULL), set_interval, get_interval},
    {{"seed", "1", "random: seed of the per-(layer, head) streams"},
     P(IKV_POLICY_RANDOM), set_seed, get_seed},
    {{"sinks", "4", "streaming: first tokens always kept"},
     P(IKV_POLICY_STREAMING), set_sinks, get_sinks},
    {{"heavy", "0.5", "share of the budget for heavy hitters; the rest is the recent window"},
     P(IKV_POLICY_H2O) | P(IKV_POLICY_INFOKV), set_heavy, get_heavy},
    {{"window", "32", "observation window: the last queries whose attention scores keys; always kept"},
     SNAP_FAMILY, set_window, get_window},
    {{"kernel", "7", "pooling kernel along keys (odd)"},
     SNAP_FAMILY, set_kernel, get_kernel},
    {{"pool", "max", "pooling along keys: max|avg|none"},
     SNAP_FAMILY, set_pool, get_pool},
    {{"alpha", "0.3", "infokv: weight of the information score against attention"},
     P(IKV_POLICY_INFOKV), set_alpha, get_alpha},
    {{"beta", "0.5", "infokv: weight of layer-wise evolution against entropy in the information score"},
     P(IKV_POLICY_INFOKV), set_beta, get_beta},
    {{"k", "20", "infokv: entropy over the top-k probabilities renormalised (0: full distribution)"},
     P(IKV_POLICY_INFOKV), set_topk, get_topk},
    {{"entropy_at", "prev", "infokv: prev = the distribution that produced the token, self = the one at it"},
     P(IKV_POLICY_INFOKV), set_entropy_at, get_entropy_at},
};
#define N_KEYS ((int)(sizeof key_table / sizeof *key_table))

const ikv_param_info *ikv_param_info_at(ikv_policy_kind kind, int index)
{
    if ((unsigned)kind >= IKV_POLICY_COUNT || index < 0)
        return NULL;
    for (int i = 0, seen = 0; i < N_KEYS; i++) {
        if (!(key_table[i].policies & P(kind)))
            continue;
        if (seen++ == index)
            return &key_table[i].info;
    }
    return NULL;
}

int ikv_params_set(ikv_params *params, const char *key, const char *value,
                   char *err, size_t errlen)
{
    if (!params || !key || !value)
        return ikv_set_error(err, errlen, IKV_EINVAL, "missing parameter key or value");
    if ((unsigned)params->policy >= IKV_POLICY_COUNT)
        return ikv_set_error(err, errlen, IKV_EINVAL, "unknown policy");
    for (int i = 0; i < N_KEYS; i++) {
        if (strcmp(key_table[i].info.key, key) != 0)
            continue;
        if (!(key_table[i].policies & P(params->policy)))
            break;
        return key_table[i].set(params, key, value, err, errlen);
    }
    char known[256] = "";
    for (int i = 0; i < N_KEYS; i++) {
        if (!(key_table[i].policies & P(params->policy)))
            continue;
        if (known[0])
            strncat(known, ", ", sizeof known - strlen(known) - 1);
        strncat(known, key_table[i].info.key, sizeof known - strlen(known) - 1);
    }
    return ikv_set_error(err, errlen, IKV_EINVAL,
                         "unknown parameter '%s' for policy %s (known: %s)", key,
                         ikv_policy_name(params->policy), known);
}

int ikv_params_parse(ikv_params *params, const char *list, char *err,
                     size_t errlen)
{
    if (!params)
        return ikv_set_error(err, errlen, IKV_EINVAL, "missing parameters");
    if (!list)
        return IKV_OK;
    const char *s = list;
    while (*s) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        char item[256];
        if (len >= sizeof item)
            return ikv_set_error(err, errlen, IKV_EINVAL,
                                 "parameter '%.32s...' is too long", s);
        memcpy(item, s, len);
        item[len] = '\0';
        if (len > 0) {
            char *eq = strchr(item, '=');
            if (!eq || eq == item || eq[1] == '\0')
                return ikv_set_error(err, errlen, IKV_EINVAL,
                                     "parameter '%s' is not of the form key=value", item);
            *eq = '\0';
            int rc = ikv_params_set(params, item, eq + 1, err, errlen);
            if (rc != IKV_OK)
                return rc;
        }
        if (!comma)
            break;
        s = comma + 1;
    }
    return IKV_OK;
}

int ikv_params_format(const ikv_params *params, char *buf, size_t buflen)
{
    if (!params || (unsigned)params->policy >= IKV_POLICY_COUNT)
        return -1;
    ikv_params defaults = ikv_default_params(params->policy);
    size_t used = 0;
    if (buf && buflen)
        buf[0] = '\0';
    for (int i = 0; i < N_KEYS; i++) {
        const key_row *row = &key_table[i];
        if (!(row->policies & P(params->policy)))
            continue;
        if (row->set == set_budget || row->set == set_scenario)
            continue;
        char mine[64], dflt[64];
        row->get(params, mine, sizeof mine);
        row->get(&defaults, dflt, sizeof dflt);
        if (strcmp(mine, dflt) == 0)
            continue;
        char item[160];
        int len = snprintf(item, sizeof item, "%s%s=%s", used ? "," : "",
                           row->info.key, mine);
        if (buf && used + (size_t)len < buflen)
            memcpy(buf + used, item, (size_t)len + 1);
        used += (size_t)len;
    }
    if (buf && buflen && used >= buflen)
        buf[buflen - 1] = '\0';
    return (int)used;
}
