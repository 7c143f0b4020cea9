#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/influence.h"
#include "sim/reference.h"
#include "sim/run.h"
#include "trace/trace.h"

const char *const ikv_fi_set_names[3] = {"top-attention", "top-entropy", "random"};
const char *const ikv_probe_set_names[3] = {"attention", "entropy", "random"};

ikv_sim_options ikv_sim_default_options(void)
{
    ikv_sim_options o;
    memset(&o, 0, sizeof o);
    o.fi_tokens = 16;
    o.fi_per_bucket = 64;
    o.seed = 1;
    return o;
}

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}

static void warn(const ikv_sim_options *opt, const char *fmt, ...)
{
    if (!opt->warn)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    opt->warn(opt->user, msg);
}

static void free_trace_result(ikv_sim_trace_result *t)
{
    free(t->layers);
    free(t->skipped);
    free(t->skip_reason);
    free(t->budget_tokens);
    free(t->layer_budget);
    free(t->cells);
    free(t->step_recall);
    free(t->step_err);
    free(t->fi_evicted);
    free(t->tokens);
    free(t->entropy);
    free(t->entropy_topk);
    free(t->received);
    free(t->evolution);
    free(t->live);
    free(t->probe_pos);
    free(t->probe_set);
    free(t->probe_kl);
    free(t->probe_fo);
}

void ikv_sim_results_free(ikv_sim_results *res)
{
    for (int i = 0; i < res->n_traces; i++)
        free_trace_result(&res->traces[i]);
    free(res->traces);
    memset(res, 0, sizeof *res);
}

static void base_name(const char *path, char *out, size_t n)
{
    const char *slash = strrchr(path, '/');
    snprintf(out, n, "%s", slash ? slash + 1 : path);
    size_t len = strlen(out);
    if (len > 3 && strcmp(out + len - 3, ".h5") == 0)
        out[len - 3] = '\0';
}

/* Entropy arrays by the flavour each job asks for (k = 0: full). */
typedef struct entropy_table {
    int k[32];
    float *values[32]; /* [T] each */
    int n;
} entropy_table;

static void entropy_table_free(entropy_table *e)
{
    for (int i = 0; i < e->n; i++)
        free(e->values[i]);
    e->n = 0;
}

static const float *entropy_for(const entropy_table *e, int k)
{
    for (int i = 0; i < e->n; i++)
        if (e->k[i] == k)
            return e->values[i];
    return NULL;
}

/* Reads or derives the entropy of flavour k; NULL with a message when the
 * trace cannot provide it. */
static int load_entropy(ikv_trace_reader *r, const ikv_trace_spec *spec, int T, int k,
                        entropy_table *e, char *why, size_t whylen)
{
    if (entropy_for(e, k) || e->n == 32)
        return 0;
    float *out = malloc((size_t)T * sizeof *out);
    if (!out)
        return snprintf(why, whylen, "out of memory"), -1;
    int rc = -1;
    if (k == 0 && ikv_trace_has(r, "logits/entropy")) {
        rc = ikv_trace_read_entropy(r, 0, out);
    } else if (k > 0 && k == spec->entropy_k && ikv_trace_has(r, "logits/entropy_topk")) {
        rc = ikv_trace_read_entropy(r, k, out);
    } else if (k > 0 && k <= spec->topk && ikv_trace_has(r, "logits/topk_logprobs")) {
        int K = spec->topk;
        float *lp = malloc((size_t)T * (size_t)K * sizeof *lp);
        if (lp && ikv_trace_read_topk(r, NULL, lp) == 0) {
            for (int t = 0; t < T; t++)
                out[t] = ikv_entropy_from_logits(lp + (size_t)t * (size_t)K, k);
            rc = 0;
        }
        free(lp);
    } else {
        snprintf(why, whylen,
                 k == 0 ? "needs /logits/entropy (full-distribution entropy)"
                        : "needs the entropy over the top %d log-probabilities (/logits/entropy_topk with k=%d, or /logits/topk_logprobs with K >= %d)",
                 k, k, k);
        free(out);
        return -1;
    }
    if (rc != 0) {
        snprintf(why, whylen, "%s", ikv_trace_reader_error(r));
        free(out);
        return -1;
    }
    e->k[e->n] = k;
    e->values[e->n++] = out;
    return 0;
}

/* The oracle replays of a layer, one per distinct (scenario, budget). */
typedef struct oracle_key {
    ikv_scenario scenario;
    int budget;
    ikv_evict_log log;
    int failed;
    char err[256];
} oracle_key;

static int oracle_index(const oracle_key *keys, int n, ikv_scenario s, int budget)
{
    for (int i = 0; i < n; i++)
        if (keys[i].scenario == s && keys[i].budget == budget)
            return i;
    return -1;
}

/* Per-layer budgets of a job on a trace (all model layers), or an error. */
static int resolve_budgets(const ikv_params *params, const ikv_trace_meta *m, int T, int P,
                           int *out /* [n_layers] */, char *why, size_t whylen)
{
    ikv_shape shape = {m->n_layers, m->n_heads, m->n_kv_heads, 0, 0, T};
    ikv_policy *p;
    if (ikv_policy_create(&p, params, &shape, why, whylen) != IKV_OK)
        return -1;
    if (ikv_policy_begin(p, P, T) != IKV_OK) {
        snprintf(why, whylen, "%s", ikv_policy_error(p));
        ikv_policy_free(p);
        return -1;
    }
    for (int l = 0; l < m->n_layers; l++)
        out[l] = ikv_policy_layer_budget(p, l);
    ikv_policy_free(p);
    return 0;
}

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Up to n (KV head, position) pairs among a job's evictions, chosen by a
 * seeded shuffle. */
static int sample_evicted(const uint8_t *marks /* [G][T] */, int G, int T, int n, uint64_t seed,
                          int32_t *pos, int32_t *kv)
{
    int count = 0;
    for (int g = 0; g < G; g++)
        for (int t = 0; t < T - 1; t++)
            count += marks[(size_t)g * (size_t)T + (size_t)t];
    if (count == 0)
        return 0;
    int k = 0;
    /* Reservoir sampling keeps memory at n entries. */
    int seen = 0;
    uint64_t state = seed;
    for (int g = 0; g < G; g++) {
        for (int t = 0; t < T - 1; t++) {
            if (!marks[(size_t)g * (size_t)T + (size_t)t])
                continue;
            if (k < n) {
                pos[k] = t;
                kv[k] = g;
                k++;
            } else {
                state = mix64(state + 0x9E3779B97F4A7C15ull);
                int j = (int)(state % (uint64_t)(seen + 1));
                if (j < n) {
                    pos[j] = t;
                    kv[j] = g;
                }
            }
            seen++;
        }
    }
    return k;
}

static void fi_add(ikv_fi_acc *into, const ikv_fi_acc *from)
{
    for (int b = 0; b < IKV_FI_BUCKETS; b++) {
        into->sum[b] += from->sum[b];
        into->n[b] += from->n[b];
    }
}

typedef struct layer_bufs {
    float *q, *k, *v;
    ikv_sim_reference ref;
} layer_bufs;

static void layer_bufs_free(layer_bufs *b)
{
    free(b->q);
    free(b->k);
    free(b->v);
    ikv_sim_reference_free(&b->ref);
    memset(b, 0, sizeof *b);
}

/* The live runs a trace holds (live/run0, live/run1, ...). */
static int read_live(ikv_trace_reader *r, ikv_sim_live **out, int *n_out, char *err, size_t errlen)
{
    *out = NULL;
    *n_out = 0;
    int n = 0;
    char path[64];
    for (;; n++) {
        snprintf(path, sizeof path, "live/run%d/kl", n);
        if (!ikv_trace_has(r, path))
            break;
    }
    if (n == 0)
        return 0;
    ikv_sim_live *live = calloc((size_t)n, sizeof *live);
    if (!live)
        return snprintf(err, errlen, "out of memory"), IKV_SIM_ERUNTIME;
    for (int i = 0; i < n; i++) {
        ikv_sim_live *lv = &live[i];
        char group[32];
        snprintf(group, sizeof group, "live/run%d", i);
        int64_t divergence = -1, compared = 0, peak = 0, full = 0;
        if (ikv_trace_attr_string(r, group, "policy", lv->policy, sizeof lv->policy) != 0 ||
            ikv_trace_attr_string(r, group, "params", lv->params, sizeof lv->params) != 0 ||
            ikv_trace_attr_string(r, group, "budget", lv->budget, sizeof lv->budget) != 0 ||
            ikv_trace_attr_string(r, group, "scenario", lv->scenario, sizeof lv->scenario) != 0 ||
            ikv_trace_attr_double(r, group, "mean_kl", &lv->mean_kl) != 0 ||
            ikv_trace_attr_double(r, group, "agreement", &lv->agreement) != 0) {
            free(live);
            snprintf(err, errlen, "%s: /%s lacks the attributes of a live run: %s", ikv_trace_path(r), group,
                     ikv_trace_reader_error(r));
            return IKV_SIM_EINPUT;
        }
        ikv_trace_attr_int(r, group, "divergence_step", &divergence);
        ikv_trace_attr_int(r, group, "compared_steps", &compared);
        ikv_trace_attr_int(r, group, "peak_cache_bytes", &peak);
        ikv_trace_attr_int(r, group, "full_cache_bytes", &full);
        ikv_trace_attr_double(r, group, "bookkeeping_s", &lv->bookkeeping_s);
        ikv_trace_attr_double(r, group, "forward_s", &lv->forward_s);
        lv->divergence = (int)divergence;
        lv->compared = (int)compared;
        lv->peak_cache_bytes = (double)peak;
        lv->full_cache_bytes = (double)full;
        lv->job = -1;
    }
    *out = live;
    *n_out = n;
    return 0;
}

/* The exact influence probes a trace holds (influence/pos, set, kl). */
static int read_probes(ikv_trace_reader *r, int T, ikv_sim_trace_result *res, char *err, size_t errlen)
{
    if (!ikv_trace_has(r, "influence/pos") || !ikv_trace_has(r, "influence/kl"))
        return 0;
    int64_t dp[IKV_TRACE_MAX_RANK], dk[IKV_TRACE_MAX_RANK], ds[IKV_TRACE_MAX_RANK];
    if (ikv_trace_dims(r, "influence/pos", dp) != 1 || ikv_trace_dims(r, "influence/kl", dk) != 2 ||
        ikv_trace_dims(r, "influence/set", ds) != 1 || dk[0] != dp[0] || ds[0] != dp[0] || dk[1] != T ||
        dp[0] < 0 || dp[0] > 1000000) {
        snprintf(err, errlen, "%s: /influence datasets do not fit the trace (pos [N], set [N], kl [N][%d])",
                 ikv_trace_path(r), T);
        return IKV_SIM_EINPUT;
    }
    int n = (int)dp[0];
    res->probe_pos = malloc((size_t)(n ? n : 1) * sizeof *res->probe_pos);
    res->probe_set = malloc((size_t)(n ? n : 1) * sizeof *res->probe_set);
    res->probe_kl = malloc((size_t)(n ? n : 1) * (size_t)T * sizeof *res->probe_kl);
    res->probe_fo = calloc((size_t)(n ? n : 1) * (size_t)T, sizeof *res->probe_fo);
    if (!res->probe_pos || !res->probe_set || !res->probe_kl || !res->probe_fo)
        return snprintf(err, errlen, "out of memory"), IKV_SIM_ERUNTIME;
    int64_t start[2] = {0, 0}, c1[1] = {n}, c2[2] = {n, T};
    if (n > 0 && (ikv_trace_read_i32(r, "influence/pos", start, c1, res->probe_pos) != 0 ||
                  ikv_trace_read_i32(r, "influence/set", start, c1, res->probe_set) != 0 ||
                  ikv_trace_read_f32(r, "influence/kl", start, c2, res->probe_kl) != 0)) {
        snprintf(err, errlen, "%s", ikv_trace_reader_error(r));
        return IKV_SIM_EINPUT;
    }
    for (int i = 0; i < n; i++)
        if (res->probe_pos[i] < 0 || res->probe_pos[i] >= T || res->probe_set[i] < 0 || res->probe_set[i] > 2) {
            snprintf(err, errlen, "%s: /influence/pos or /influence/set out of range at entry %d",
                     ikv_trace_path(r), i);
            return IKV_SIM_EINPUT;
        }
    res->n_probes = n;
    return 0;
}

int ikv_sim_add_live_jobs(const char *const *paths, int n_paths, ikv_sim_jobs *jobs, char *err,
                          size_t errlen)
{
    for (int i = 0; i < n_paths; i++) {
        ikv_trace_reader *r;
        char msg[512];
        if (ikv_trace_open(&r, paths[i], msg, sizeof msg) != 0) {
            snprintf(err, errlen, "%s", msg);
            return IKV_SIM_EINPUT;
        }
        ikv_sim_live *live;
        int n;
        int rc = read_live(r, &live, &n, err, errlen);
        for (int k = 0; rc == 0 && k < n; k++) {
            const ikv_sim_live *lv = &live[k];
            if (ikv_sim_jobs_find(jobs, lv->policy, lv->params, lv->budget, lv->scenario) >= 0)
                continue;
            char e[256];
            if (ikv_sim_jobs_add(jobs, lv->policy, lv->params, lv->budget, lv->scenario, e, sizeof e) < 0) {
                snprintf(err, errlen, "%s: live run %d: %s", paths[i], k, e);
                rc = IKV_SIM_EINPUT;
            }
        }
        free(live);
        ikv_trace_close(r);
        if (rc)
            return rc;
    }
    return 0;
}

static int run_trace(const char *path, const ikv_sim_jobs *jobs, const ikv_sim_options *opt,
                     ikv_sim_trace_result *res, int64_t *unit, int64_t *done, int64_t total_units,
                     char *err, size_t errlen)
{
    ikv_trace_reader *r = NULL;
    char msg[512];
    if (ikv_trace_open(&r, path, msg, sizeof msg) != 0)
        return fail(err, errlen, IKV_SIM_EINPUT, "%s", msg);
    const ikv_trace_meta *m = ikv_trace_meta_of(r);
    const ikv_trace_spec *spec = ikv_trace_spec_of(r);
    const int T = m->n_tokens, P = m->n_prompt, H = m->n_heads, G = m->n_kv_heads, d = m->head_dim;
    const int n_jobs = jobs->n;
    int rc = IKV_SIM_OK;
    entropy_table ent = {{0}, {0}, 0};
    int *model_budgets = NULL;
    layer_bufs lb;
    memset(&lb, 0, sizeof lb);
    oracle_key *keys = NULL;
    uint8_t *marks = NULL;
    float *evolution = NULL;
    char (*job_err)[256] = NULL;

    snprintf(res->path, sizeof res->path, "%s", path);
    base_name(path, res->name, sizeof res->name);
    snprintf(res->model, sizeof res->model, "%s", m->model_name);
    res->T = T;
    res->P = P;
    res->H = H;
    res->G = G;
    res->d = d;

    if (!ikv_trace_has(r, "qkv/q") || !ikv_trace_has(r, "qkv/k") || !ikv_trace_has(r, "qkv/v")) {
        rc = fail(err, errlen, IKV_SIM_EINPUT,
                  "%s: the trace has no /qkv/q, /qkv/k, /qkv/v (capture it with --save qkv)", path);
        goto done;
    }
    if (P < 1 || T <= P) {
        rc = fail(err, errlen, IKV_SIM_EINPUT,
                  "%s: %d positions with a prompt of %d: replay needs generated positions after the prompt",
                  path, T, P);
        goto done;
    }

    /* Layers to replay: the requested ones among those stored. */
    res->layers = malloc((size_t)spec->n_layers * sizeof *res->layers);
    int *slots = malloc((size_t)spec->n_layers * sizeof *slots);
    if (!res->layers || !slots) {
        free(slots);
        rc = fail(err, errlen, IKV_SIM_ERUNTIME, "out of memory");
        goto done;
    }
    for (int s = 0; s < spec->n_layers; s++) {
        int layer = spec->layers ? spec->layers[s] : s;
        int wanted = !opt->layers;
        for (int i = 0; opt->layers && i < opt->n_layers; i++)
            wanted |= opt->layers[i] == layer;
        if (wanted) {
            slots[res->n_layers] = s;
            res->layers[res->n_layers++] = layer;
        }
    }
    if (res->n_layers == 0) {
        free(slots);
        rc = fail(err, errlen, IKV_SIM_EINPUT, "%s: none of the requested layers is stored in the trace", path);
        goto done;
    }

    /* Results and per-trace signals. */
    size_t steps = (size_t)(T - P);
    res->skipped = calloc((size_t)n_jobs, sizeof *res->skipped);
    res->skip_reason = calloc((size_t)n_jobs, sizeof *res->skip_reason);
    res->budget_tokens = calloc((size_t)n_jobs, sizeof *res->budget_tokens);
    res->layer_budget = calloc((size_t)n_jobs * (size_t)res->n_layers, sizeof *res->layer_budget);
    res->cells = calloc((size_t)n_jobs * (size_t)res->n_layers, sizeof *res->cells);
    res->step_recall = calloc((size_t)n_jobs * steps, sizeof *res->step_recall);
    res->step_err = calloc((size_t)n_jobs * steps, sizeof *res->step_err);
    res->fi_evicted = calloc((size_t)n_jobs, sizeof *res->fi_evicted);
    res->tokens = calloc((size_t)T, sizeof *res->tokens);
    res->entropy = malloc((size_t)T * sizeof *res->entropy);
    res->entropy_topk = malloc((size_t)T * sizeof *res->entropy_topk);
    res->received = calloc((size_t)T, sizeof *res->received);
    res->evolution = calloc((size_t)T, sizeof *res->evolution);
    model_budgets = malloc((size_t)n_jobs * (size_t)m->n_layers * sizeof *model_budgets);
    job_err = calloc((size_t)n_jobs, sizeof *job_err);
    if (!res->skipped || !res->skip_reason || !res->budget_tokens || !res->layer_budget || !res->cells || !res->step_recall ||
        !res->step_err || !res->fi_evicted || !res->tokens || !res->entropy || !res->entropy_topk ||
        !res->received || !res->evolution || !model_budgets || !job_err) {
        free(slots);
        rc = fail(err, errlen, IKV_SIM_ERUNTIME, "%s: out of memory for the results of %d jobs", path, n_jobs);
        goto done;
    }
    if (ikv_trace_read_tokens(r, res->tokens) != 0) {
        free(slots);
        rc = fail(err, errlen, IKV_SIM_EINPUT, "%s", ikv_trace_reader_error(r));
        goto done;
    }
    for (int t = 0; t < T; t++)
        res->entropy[t] = res->entropy_topk[t] = NAN;
    if (ikv_trace_has(r, "logits/entropy") && ikv_trace_read_entropy(r, 0, res->entropy) != 0)
        for (int t = 0; t < T; t++)
            res->entropy[t] = NAN;
    if (ikv_trace_has(r, "logits/entropy_topk") &&
        ikv_trace_read_entropy(r, spec->entropy_k, res->entropy_topk) != 0)
        for (int t = 0; t < T; t++)
            res->entropy_topk[t] = NAN;
    if (ikv_trace_has(r, "hidden/evolution")) {
        evolution = malloc((size_t)spec->n_layers * (size_t)T * sizeof *evolution);
        if (!evolution || ikv_trace_read_evolution(r, evolution) != 0) {
            free(slots);
            rc = fail(err, errlen, IKV_SIM_EINPUT, "%s: cannot read /hidden/evolution: %s", path,
                      ikv_trace_reader_error(r));
            goto done;
        }
    }

    {
        int rl = read_live(r, &res->live, &res->n_live, err, errlen);
        if (rl == 0)
            rl = read_probes(r, T, res, err, errlen);
        if (rl != 0) {
            free(slots);
            rc = rl;
            goto done;
        }
        for (int i = 0; i < res->n_live; i++) {
            const ikv_sim_live *lv = &res->live[i];
            res->live[i].job = ikv_sim_jobs_find(jobs, lv->policy, lv->params, lv->budget, lv->scenario);
        }
    }

    /* Budgets and signals per job; impossible ones are errors or skipped. */
    for (int j = 0; j < n_jobs; j++) {
        const ikv_params *pr = &jobs->jobs[j].params;
        char why[400] = "";
        int bad = resolve_budgets(pr, m, T, P, model_budgets + (size_t)j * (size_t)m->n_layers, why,
                                  sizeof why) != 0;
        ikv_policy *probe = NULL;
        if (!bad) {
            ikv_shape shape = {m->n_layers, H, G, 0, 1, T};
            char e2[256];
            if (ikv_policy_create(&probe, pr, &shape, e2, sizeof e2) == IKV_OK) {
                unsigned needs = ikv_policy_needs(probe);
                if ((needs & IKV_NEED_ENTROPY) &&
                    load_entropy(r, spec, T, ikv_policy_entropy_topk(probe), &ent, why, sizeof why) != 0)
                    bad = 1;
                if ((needs & IKV_NEED_EVOLUTION) && !evolution) {
                    snprintf(why, sizeof why, "needs /hidden/evolution (capture with --save evolution)");
                    bad = 1;
                }
                ikv_policy_free(probe);
            }
        }
        if (!bad) {
            /* Allocation keeps the total: the mean over the model's layers
             * is the resolved B. */
            long total = 0;
            for (int l = 0; l < m->n_layers; l++)
                total += model_budgets[(size_t)j * (size_t)m->n_layers + (size_t)l];
            res->budget_tokens[j] = (int)((total + m->n_layers / 2) / m->n_layers);
            for (int li = 0; li < res->n_layers; li++)
                res->layer_budget[(size_t)j * (size_t)res->n_layers + (size_t)li] =
                    model_budgets[(size_t)j * (size_t)m->n_layers + (size_t)res->layers[li]];
        }
        if (bad) {
            const ikv_sim_job *job = &jobs->jobs[j];
            if (!opt->skip_impossible) {
                free(slots);
                rc = fail(err, errlen, IKV_SIM_EINPUT, "%s: %s at budget %s (%s): %s", path, job->policy,
                          job->budget_text, job->scenario, why);
                goto done;
            }
            res->skipped[j] = 1;
            snprintf(res->skip_reason[j], sizeof res->skip_reason[j], "%s", why);
            warn(opt, "%s: skipping %s at budget %s (%s): %s", res->name, job->policy, job->budget_text,
                 job->scenario, why);
        }
    }

    /* Layer by layer. */
    size_t q_elems = (size_t)H * (size_t)T * (size_t)d, kv_elems = (size_t)G * (size_t)T * (size_t)d;
    lb.q = malloc(q_elems * sizeof *lb.q);
    lb.k = malloc(kv_elems * sizeof *lb.k);
    lb.v = malloc(kv_elems * sizeof *lb.v);
    keys = calloc((size_t)n_jobs + 1, sizeof *keys);
    marks = calloc((size_t)n_jobs * (size_t)G * (size_t)T, 1);
    if (!lb.q || !lb.k || !lb.v || !keys || !marks ||
        ikv_sim_reference_alloc(&lb.ref, H, G, T, d) != 0) {
        free(slots);
        rc = fail(err, errlen, IKV_SIM_ERUNTIME,
                  "%s: out of memory for one layer (%.0f MB of q/k/v and reference)", path,
                  (double)((q_elems + 2 * kv_elems) * 4 + ikv_sim_reference_bytes(H, G, T, d)) / 1e6);
        goto done;
    }
    for (int li = 0; li < res->n_layers && rc == IKV_SIM_OK; li++) {
        const int slot = slots[li], layer = res->layers[li];
        if (opt->owns_unit && !opt->owns_unit(opt->user, (*unit)++))
            continue;
        if (opt->should_stop && opt->should_stop()) {
            rc = fail(err, errlen, IKV_SIM_ESTOPPED, "stopped");
            break;
        }
        if (ikv_trace_read_layer(r, "qkv/q", slot, lb.q) != 0 ||
            ikv_trace_read_layer(r, "qkv/k", slot, lb.k) != 0 ||
            ikv_trace_read_layer(r, "qkv/v", slot, lb.v) != 0) {
            rc = fail(err, errlen, IKV_SIM_EINPUT, "%s", ikv_trace_reader_error(r));
            break;
        }
        ikv_sim_layer L = {layer, m->n_layers, H, G, d, T, P, lb.q, lb.k, lb.v,
                           evolution ? evolution + (size_t)slot * (size_t)T : NULL};
        if (ikv_sim_reference_compute(&L, &lb.ref) != 0) {
            rc = fail(err, errlen, IKV_SIM_ERUNTIME, "out of memory in the reference pass");
            break;
        }

        /* Oracles at every (scenario, budget) of this layer. */
        int n_keys = 0;
        for (int j = 0; j < n_jobs; j++) {
            const ikv_params *pr = &jobs->jobs[j].params;
            if (res->skipped[j] || pr->policy == IKV_POLICY_FULL)
                continue;
            int b = model_budgets[(size_t)j * (size_t)m->n_layers + (size_t)layer];
            if (oracle_index(keys, n_keys, pr->scenario, b) < 0) {
                memset(&keys[n_keys], 0, sizeof keys[n_keys]);
                keys[n_keys].scenario = pr->scenario;
                keys[n_keys].budget = b;
                n_keys++;
            }
        }
#pragma omp parallel for schedule(dynamic, 1)
        for (int i = 0; i < n_keys; i++) {
            ikv_params op = ikv_default_params(IKV_POLICY_ORACLE);
            op.scenario = keys[i].scenario;
            op.budget = (ikv_budget){(double)keys[i].budget, 0};
            ikv_sim_stats scratch;
            memset(&scratch, 0, sizeof scratch);
            ikv_sim_replay_input in = {&L, &lb.ref, NULL, NULL, NULL, NULL};
            if (ikv_sim_replay(&in, &op, &keys[i].log, &scratch, NULL, keys[i].err, sizeof keys[i].err) != 0)
                keys[i].failed = 1;
        }
        for (int i = 0; i < n_keys; i++)
            if (keys[i].failed && rc == IKV_SIM_OK)
                rc = fail(err, errlen, IKV_SIM_ERUNTIME, "%s: oracle at layer %d: %s", path, layer, keys[i].err);

        /* The jobs. */
        memset(marks, 0, (size_t)n_jobs * (size_t)G * (size_t)T);
        int stop_now = rc != IKV_SIM_OK;
#pragma omp parallel for schedule(dynamic, 1)
        for (int j = 0; j < n_jobs; j++) {
            if (stop_now || res->skipped[j])
                continue;
            const ikv_params *pr = &jobs->jobs[j].params;
            int b = model_budgets[(size_t)j * (size_t)m->n_layers + (size_t)layer];
            int oi = pr->policy == IKV_POLICY_FULL ? -1 : oracle_index(keys, n_keys, pr->scenario, b);
            int k = pr->policy == IKV_POLICY_INFOKV ? pr->infokv.topk : 0;
            ikv_sim_stats *st = &res->cells[(size_t)j * (size_t)res->n_layers + (size_t)li];
            st->step_recall = res->step_recall + (size_t)j * steps;
            st->step_err = res->step_err + (size_t)j * steps;
            ikv_sim_replay_input in = {&L, &lb.ref, entropy_for(&ent, k), oi >= 0 ? &keys[oi].log : NULL,
                                       NULL, NULL};
            if (ikv_sim_replay(&in, pr, NULL, st, marks + (size_t)j * (size_t)G * (size_t)T, job_err[j],
                               sizeof job_err[j]) != 0)
                st->n_pairs = -1;
            st->step_recall = st->step_err = NULL;
        }
        for (int j = 0; j < n_jobs && rc == IKV_SIM_OK; j++) {
            ikv_sim_stats *st = &res->cells[(size_t)j * (size_t)res->n_layers + (size_t)li];
            if (st->n_pairs < 0)
                rc = fail(err, errlen, IKV_SIM_EINPUT, "%s: %s at budget %s, layer %d: %s", path,
                          jobs->jobs[j].policy, jobs->jobs[j].budget_text, layer, job_err[j]);
        }
        for (int i = 0; i < n_keys; i++)
            ikv_evict_log_free(&keys[i].log);
        if (rc != IKV_SIM_OK)
            break;

        /* Forward Influence of the token sets, and of what each job evicted. */
        if (opt->fi_tokens > 0) {
            int n = opt->fi_tokens;
            int32_t *set = malloc((size_t)(4 * n) * sizeof *set);
            if (!set) {
                rc = fail(err, errlen, IKV_SIM_ERUNTIME, "out of memory");
                break;
            }
            int counts[3];
            counts[0] = ikv_fi_top_attention(&lb.ref, T, n, set);
            const float *tok_entropy = entropy_for(&ent, 0);
            if (!tok_entropy)
                tok_entropy = isnan(res->entropy_topk[0]) ? NULL : res->entropy_topk;
            if (!tok_entropy && !isnan(res->entropy[0]))
                tok_entropy = res->entropy;
            counts[1] = ikv_fi_top_entropy(tok_entropy, T, n, set + n);
            counts[2] = ikv_fi_random(T, n, opt->seed * 1000003u + (uint64_t)layer, set + 2 * n);
            ikv_fi_acc layer_acc[3];
            memset(layer_acc, 0, sizeof layer_acc);
#pragma omp parallel for schedule(dynamic, 1)
            for (int s = 0; s < 3; s++)
                ikv_fi_accumulate(&L, &lb.ref, set + s * n, NULL, counts[s], opt->fi_per_bucket, &layer_acc[s]);
            for (int s = 0; s < 3; s++)
                fi_add(&res->fi_sets[s], &layer_acc[s]);
            free(set);
            int fail_alloc = 0;
#pragma omp parallel for schedule(dynamic, 1)
            for (int j = 0; j < n_jobs; j++) {
                if (res->skipped[j] || jobs->jobs[j].params.policy == IKV_POLICY_FULL)
                    continue;
                int32_t *pos = malloc((size_t)n * 2 * sizeof *pos);
                if (!pos) {
#pragma omp atomic write
                    fail_alloc = 1;
                    continue;
                }
                int c = sample_evicted(marks + (size_t)j * (size_t)G * (size_t)T, G, T, n,
                                       mix64(opt->seed + (uint64_t)j * 7919u + (uint64_t)layer), pos, pos + n);
                ikv_fi_acc acc;
                memset(&acc, 0, sizeof acc);
                ikv_fi_accumulate(&L, &lb.ref, pos, pos + n, c, opt->fi_per_bucket, &acc);
                fi_add(&res->fi_evicted[j], &acc);
                free(pos);
            }
            if (fail_alloc) {
                rc = fail(err, errlen, IKV_SIM_ERUNTIME, "out of memory");
                break;
            }
        }

        /* First-order estimate of each exact probe's influence. */
        if (res->n_probes > 0) {
#pragma omp parallel for schedule(dynamic, 1)
            for (int i = 0; i < res->n_probes; i++)
                ikv_fi_row(&L, &lb.ref, res->probe_pos[i], 1.0 / (double)res->n_layers,
                           res->probe_fo + (size_t)i * (size_t)T);
        }

        /* Along the sequence: attention received per later query. */
        for (int t = 0; t < T; t++) {
            double s = 0.0;
            for (int h = 0; h < H; h++)
                s += lb.ref.received[(size_t)h * (size_t)T + (size_t)t];
            res->received[t] += (float)(s / (double)H / (double)(T - t) / (double)res->n_layers);
            if (L.evolution)
                res->evolution[t] += L.evolution[t] / (float)res->n_layers;
        }
        *done += 1;
        if (opt->progress)
            opt->progress(opt->user, *done, total_units);
    }
    if (!evolution)
        for (int t = 0; t < T; t++)
            res->evolution[t] = NAN;
    free(slots);

done:
    free(job_err);
    free(marks);
    free(keys);
    free(evolution);
    free(model_budgets);
    layer_bufs_free(&lb);
    entropy_table_free(&ent);
    ikv_trace_close(r);
    return rc;
}

int ikv_sim_run(const char *const *paths, int n_paths, const ikv_sim_jobs *jobs,
                const ikv_sim_options *opt, ikv_sim_results *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    res->jobs = jobs;
    if (n_paths < 1 || jobs->n < 1)
        return fail(err, errlen, IKV_SIM_EINPUT, "nothing to do: no trace or no job");
    res->traces = calloc((size_t)n_paths, sizeof *res->traces);
    if (!res->traces)
        return fail(err, errlen, IKV_SIM_ERUNTIME, "out of memory");
    /* Progress counts layers; open each trace once to know its layers. */
    int64_t total = 0, done = 0;
    for (int i = 0; i < n_paths; i++) {
        ikv_trace_reader *r;
        char msg[512];
        if (ikv_trace_open(&r, paths[i], msg, sizeof msg) != 0) {
            ikv_sim_results_free(res);
            return fail(err, errlen, IKV_SIM_EINPUT, "%s", msg);
        }
        int n = ikv_trace_spec_of(r)->n_layers;
        total += opt->layers ? (opt->n_layers < n ? opt->n_layers : n) : n;
        ikv_trace_close(r);
    }
    if (opt->owns_unit) { /* progress counts this process's units */
        int64_t mine = 0;
        for (int64_t u = 0; u < total; u++)
            mine += opt->owns_unit(opt->user, u) != 0;
        total = mine;
    }
    int64_t unit = 0;
    for (int i = 0; i < n_paths; i++) {
        res->n_traces = i + 1;
        int rc = run_trace(paths[i], jobs, opt, &res->traces[i], &unit, &done, total, err, errlen);
        if (rc != IKV_SIM_OK) {
            ikv_sim_results_free(res);
            return rc;
        }
    }
    return IKV_SIM_OK;
}

int ikv_sim_results_visit_sums(ikv_sim_results *res, ikv_sum_visitor fn, void *user)
{
    const int n_jobs = res->jobs->n;
    for (int i = 0; i < res->n_traces; i++) {
        ikv_sim_trace_result *t = &res->traces[i];
        size_t cells = (size_t)n_jobs * (size_t)t->n_layers;
        /* the cells' sums, packed by type */
        double *d = malloc((cells ? cells : 1) * 4 * sizeof *d);
        long *l = malloc((cells ? cells : 1) * 3 * sizeof *l);
        if (!d || !l) {
            free(d);
            free(l);
            return IKV_SIM_ERUNTIME;
        }
        for (size_t c = 0; c < cells; c++) {
            const ikv_sim_stats *st = &t->cells[c];
            d[4 * c] = st->recall_sum;
            d[4 * c + 1] = st->err_sum;
            d[4 * c + 2] = st->overlap_sum;
            d[4 * c + 3] = st->kept_sum;
            l[3 * c] = st->n_pairs;
            l[3 * c + 1] = st->n_overlap;
            l[3 * c + 2] = st->n_kept;
        }
        fn(user, d, cells * 4, 'd');
        fn(user, l, cells * 3, 'l');
        for (size_t c = 0; c < cells; c++) {
            ikv_sim_stats *st = &t->cells[c];
            st->recall_sum = d[4 * c];
            st->err_sum = d[4 * c + 1];
            st->overlap_sum = d[4 * c + 2];
            st->kept_sum = d[4 * c + 3];
            st->n_pairs = l[3 * c];
            st->n_overlap = l[3 * c + 1];
            st->n_kept = l[3 * c + 2];
        }
        free(d);
        free(l);
        size_t steps = (size_t)n_jobs * (size_t)(t->T - t->P);
        fn(user, t->step_recall, steps, 'd');
        fn(user, t->step_err, steps, 'd');
        for (int s = 0; s < 3; s++) {
            fn(user, t->fi_sets[s].sum, IKV_FI_BUCKETS, 'd');
            fn(user, t->fi_sets[s].n, IKV_FI_BUCKETS, 'l');
        }
        for (int j = 0; j < n_jobs; j++) {
            fn(user, t->fi_evicted[j].sum, IKV_FI_BUCKETS, 'd');
            fn(user, t->fi_evicted[j].n, IKV_FI_BUCKETS, 'l');
        }
        fn(user, t->received, (size_t)t->T, 'f');
        fn(user, t->evolution, (size_t)t->T, 'f');
        if (t->n_probes > 0)
            fn(user, t->probe_fo, (size_t)t->n_probes * (size_t)t->T, 'd');
    }
    return IKV_SIM_OK;
}
