#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/influence.h"
#include "sim/inputs.h"
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

static void base_name(const char *path, char *out, size_t n)
{
    const char *slash = strrchr(path, '/');
    snprintf(out, n, "%s", slash ? slash + 1 : path);
    size_t len = strlen(out);
    if (len > 3 && strcmp(out + len - 3, ".h5") == 0)
        out[len - 3] = '\0';
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

/* One trace being replayed: what every layer of it shares. */
typedef struct trace_run {
    const char *path;
    const ikv_sim_jobs *jobs;
    const ikv_sim_options *opt;
    ikv_sim_trace_result *res;
    ikv_trace_reader *r;
    const ikv_trace_meta *m;
    const ikv_trace_spec *spec;
    int T, P, H, G, d;
    int *slots;             /* [n_layers] stored slot of each replayed layer */
    int *model_budgets;     /* [n_jobs][model layers] */
    float *evolution;       /* [stored layers][T], or NULL */
    ikv_entropy_table ent;
    layer_bufs lb;
    oracle_key *keys;       /* [n_jobs + 1] */
    uint8_t *marks;         /* [n_jobs][G][T] evicted positions of each job */
    char (*job_err)[256];   /* [n_jobs] */
    char *err;
    size_t errlen;
} trace_run;

static void trace_run_free(trace_run *tr)
{
    free(tr->slots);
    free(tr->job_err);
    free(tr->marks);
    free(tr->keys);
    free(tr->evolution);
    free(tr->model_budgets);
    layer_bufs_free(&tr->lb);
    ikv_entropy_table_free(&tr->ent);
    ikv_trace_close(tr->r);
}

/* The layers to replay: the requested ones among those stored. */
static int choose_layers(trace_run *tr)
{
    ikv_sim_trace_result *res = tr->res;
    const ikv_trace_spec *spec = tr->spec;
    res->layers = malloc((size_t)spec->n_layers * sizeof *res->layers);
    tr->slots = malloc((size_t)spec->n_layers * sizeof *tr->slots);
    if (!res->layers || !tr->slots)
        return fail(tr->err, tr->errlen, IKV_SIM_ERUNTIME, "out of memory");
    for (int s = 0; s < spec->n_layers; s++) {
        int layer = spec->layers ? spec->layers[s] : s;
        int wanted = !tr->opt->layers;
        for (int i = 0; tr->opt->layers && i < tr->opt->n_layers; i++)
            wanted |= tr->opt->layers[i] == layer;
        if (wanted) {
            tr->slots[res->n_layers] = s;
            res->layers[res->n_layers++] = layer;
        }
    }
    if (res->n_layers == 0)
        return fail(tr->err, tr->errlen, IKV_SIM_EINPUT, "%s: none of the requested layers is stored in the trace",
                    tr->path);
    return IKV_SIM_OK;
}

/* Result arrays, and the per-trace signals: tokens, entropy, evolution,
 * live runs and probes. */
static int read_signals(trace_run *tr)
{
    ikv_sim_trace_result *res = tr->res;
    const int T = tr->T, n_jobs = tr->jobs->n;
    size_t steps = (size_t)(T - tr->P);
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
    tr->model_budgets = malloc((size_t)n_jobs * (size_t)tr->m->n_layers * sizeof *tr->model_budgets);
    tr->job_err = calloc((size_t)n_jobs, sizeof *tr->job_err);
    if (!res->skipped || !res->skip_reason || !res->budget_tokens || !res->layer_budget || !res->cells ||
        !res->step_recall || !res->step_err || !res->fi_evicted || !res->tokens || !res->entropy ||
        !res->entropy_topk || !res->received || !res->evolution || !tr->model_budgets || !tr->job_err)
        return fail(tr->err, tr->errlen, IKV_SIM_ERUNTIME, "%s: out of memory for the results of %d jobs",
                    tr->path, n_jobs);
    if (ikv_trace_read_tokens(tr->r, res->tokens) != 0)
        return fail(tr->err, tr->errlen, IKV_SIM_EINPUT, "%s", ikv_trace_reader_error(tr->r));
    for (int t = 0; t < T; t++)
        res->entropy[t] = res->entropy_topk[t] = NAN;
    if (ikv_trace_has(tr->r, "logits/entropy") && ikv_trace_read_entropy(tr->r, 0, res->entropy) != 0)
        for (int t = 0; t < T; t++)
            res->entropy[t] = NAN;
    if (ikv_trace_has(tr->r, "logits/entropy_topk") &&
        ikv_trace_read_entropy(tr->r, tr->spec->entropy_k, res->entropy_topk) != 0)
        for (int t = 0; t < T; t++)
            res->entropy_topk[t] = NAN;
    if (ikv_trace_has(tr->r, "hidden/evolution")) {
        tr->evolution = malloc((size_t)tr->spec->n_layers * (size_t)T * sizeof *tr->evolution);
        if (!tr->evolution || ikv_trace_read_evolution(tr->r, tr->evolution) != 0)
            return fail(tr->err, tr->errlen, IKV_SIM_EINPUT, "%s: cannot read /hidden/evolution: %s", tr->path,
                        ikv_trace_reader_error(tr->r));
    } else {
        for (int t = 0; t < T; t++)
            res->evolution[t] = NAN;
    }
    int rc = ikv_sim_read_live(tr->r, &res->live, &res->n_live, tr->err, tr->errlen);
    if (rc == IKV_SIM_OK)
        rc = ikv_sim_read_probes(tr->r, T, res, tr->err, tr->errlen);
    for (int i = 0; rc == IKV_SIM_OK && i < res->n_live; i++) {
        ikv_sim_live *lv = &res->live[i];
        lv->job = ikv_sim_jobs_find(tr->jobs, lv->policy, lv->params, lv->budget, lv->scenario);
    }
    return rc;
}

/* Budgets and signals per job; impossible ones are errors or skipped. */
static int check_jobs(trace_run *tr)
{
    ikv_sim_trace_result *res = tr->res;
    const ikv_trace_meta *m = tr->m;
    const int L = m->n_layers;
    for (int j = 0; j < tr->jobs->n; j++) {
        const ikv_sim_job *job = &tr->jobs->jobs[j];
        const ikv_params *pr = &job->params;
        int *budgets = tr->model_budgets + (size_t)j * (size_t)L;
        char why[400] = "";
        int bad = resolve_budgets(pr, m, tr->T, tr->P, budgets, why, sizeof why) != 0;
        ikv_policy *probe = NULL;
        ikv_shape shape = {L, tr->H, tr->G, 0, 1, tr->T};
        char e2[256];
        if (!bad && ikv_policy_create(&probe, pr, &shape, e2, sizeof e2) == IKV_OK) {
            unsigned needs = ikv_policy_needs(probe);
            if ((needs & IKV_NEED_ENTROPY) &&
                ikv_entropy_load(tr->r, tr->spec, tr->T, ikv_policy_entropy_topk(probe), &tr->ent, why,
                                 sizeof why) != 0)
                bad = 1;
            if ((needs & IKV_NEED_EVOLUTION) && !tr->evolution) {
                snprintf(why, sizeof why, "needs /hidden/evolution (capture with --save evolution)");
                bad = 1;
            }
            ikv_policy_free(probe);
        }
        if (!bad) {
            /* Allocation keeps the total: the mean over layers is B. */
            long total = 0;
            for (int l = 0; l < L; l++)
                total += budgets[l];
            res->budget_tokens[j] = (int)((total + L / 2) / L);
            for (int li = 0; li < res->n_layers; li++)
                res->layer_budget[(size_t)j * (size_t)res->n_layers + (size_t)li] = budgets[res->layers[li]];
            continue;
        }
        if (!tr->opt->skip_impossible)
            return fail(tr->err, tr->errlen, IKV_SIM_EINPUT, "%s: %s at budget %s (%s): %s", tr->path,
                        job->policy, job->budget_text, job->scenario, why);
        res->skipped[j] = 1;
        snprintf(res->skip_reason[j], sizeof res->skip_reason[j], "%s", why);
        warn(tr->opt, "%s: skipping %s at budget %s (%s): %s", res->name, job->policy, job->budget_text,
             job->scenario, why);
    }
    return IKV_SIM_OK;
}

static int open_trace(trace_run *tr)
{
    char msg[512];
    if (ikv_trace_open(&tr->r, tr->path, msg, sizeof msg) != 0)
        return fail(tr->err, tr->errlen, IKV_SIM_EINPUT, "%s", msg);
    tr->m = ikv_trace_meta_of(tr->r);
    tr->spec = ikv_trace_spec_of(tr->r);
    ikv_sim_trace_result *res = tr->res;
    tr->T = res->T = tr->m->n_tokens;
    tr->P = res->P = tr->m->n_prompt;
    tr->H = res->H = tr->m->n_heads;
    tr->G = res->G = tr->m->n_kv_heads;
    tr->d = res->d = tr->m->head_dim;
    snprintf(res->path, sizeof res->path, "%s", tr->path);
    base_name(tr->path, res->name, sizeof res->name);
    snprintf(res->model, sizeof res->model, "%s", tr->m->model_name);
    if (!ikv_trace_has(tr->r, "qkv/q") || !ikv_trace_has(tr->r, "qkv/k") || !ikv_trace_has(tr->r, "qkv/v"))
        return fail(tr->err, tr->errlen, IKV_SIM_EINPUT,
                    "%s: the trace has no /qkv/q, /qkv/k, /qkv/v (capture it with --save qkv)", tr->path);
    if (tr->P < 1 || tr->T <= tr->P)
        return fail(tr->err, tr->errlen, IKV_SIM_EINPUT,
                    "%s: %d positions with a prompt of %d: replay needs generated positions after the prompt",
                    tr->path, tr->T, tr->P);
    int rc = choose_layers(tr);
    if (rc == IKV_SIM_OK)
        rc = read_signals(tr);
    if (rc == IKV_SIM_OK)
        rc = check_jobs(tr);
    if (rc != IKV_SIM_OK)
        return rc;
    /* One layer's buffers, reused layer after layer. */
    const size_t q_elems = (size_t)tr->H * (size_t)tr->T * (size_t)tr->d;
    const size_t kv_elems = (size_t)tr->G * (size_t)tr->T * (size_t)tr->d;
    tr->lb.q = malloc(q_elems * sizeof *tr->lb.q);
    tr->lb.k = malloc(kv_elems * sizeof *tr->lb.k);
    tr->lb.v = malloc(kv_elems * sizeof *tr->lb.v);
    tr->keys = calloc((size_t)tr->jobs->n + 1, sizeof *tr->keys);
    tr->marks = calloc((size_t)tr->jobs->n * (size_t)tr->G * (size_t)tr->T, 1);
    if (!tr->lb.q || !tr->lb.k || !tr->lb.v || !tr->keys || !tr->marks ||
        ikv_sim_reference_alloc(&tr->lb.ref, tr->H, tr->G, tr->T, tr->d) != 0)
        return fail(tr->err, tr->errlen, IKV_SIM_ERUNTIME,
                    "%s: out of memory for one layer (%.0f MB of q/k/v and reference)", tr->path,
                    (double)((q_elems + 2 * kv_elems) * 4 + ikv_sim_reference_bytes(tr->H, tr->G, tr->T, tr->d)) /
                        1e6);
    return IKV_SIM_OK;
}

/* The oracles of a layer, one per (scenario, budget) some job needs. */
static int run_oracles(trace_run *tr, const ikv_sim_layer *L, int *n_keys_out)
{
    const int layer = L->layer, L_model = tr->m->n_layers;
    oracle_key *keys = tr->keys;
    int n_keys = 0;
    for (int j = 0; j < tr->jobs->n; j++) {
        const ikv_params *pr = &tr->jobs->jobs[j].params;
        if (tr->res->skipped[j] || pr->policy == IKV_POLICY_FULL)
            continue;
        int b = tr->model_budgets[(size_t)j * (size_t)L_model + (size_t)layer];
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
        ikv_sim_replay_input in = {L, &tr->lb.ref, NULL, NULL, NULL, NULL};
        if (ikv_sim_replay(&in, &op, &keys[i].log, &scratch, NULL, keys[i].err, sizeof keys[i].err) != 0)
            keys[i].failed = 1;
    }
    *n_keys_out = n_keys;
    for (int i = 0; i < n_keys; i++)
        if (keys[i].failed)
            return fail(tr->err, tr->errlen, IKV_SIM_ERUNTIME, "%s: oracle at layer %d: %s", tr->path, layer,
                        keys[i].err);
    return IKV_SIM_OK;
}

/* Every job on a layer, in parallel. */
static int run_jobs(trace_run *tr, const ikv_sim_layer *L, int li, int n_keys)
{
    ikv_sim_trace_result *res = tr->res;
    const int n_jobs = tr->jobs->n, G = tr->G, T = tr->T, layer = L->layer;
    const size_t steps = (size_t)(T - tr->P);
    memset(tr->marks, 0, (size_t)n_jobs * (size_t)G * (size_t)T);
#pragma omp parallel for schedule(dynamic, 1)
    for (int j = 0; j < n_jobs; j++) {
        if (res->skipped[j])
            continue;
        const ikv_params *pr = &tr->jobs->jobs[j].params;
        int b = tr->model_budgets[(size_t)j * (size_t)tr->m->n_layers + (size_t)layer];
        int oi = pr->policy == IKV_POLICY_FULL ? -1 : oracle_index(tr->keys, n_keys, pr->scenario, b);
        int k = pr->policy == IKV_POLICY_INFOKV ? pr->infokv.topk : 0;
        ikv_sim_stats *st = &res->cells[(size_t)j * (size_t)res->n_layers + (size_t)li];
        st->step_recall = res->step_recall + (size_t)j * steps;
        st->step_err = res->step_err + (size_t)j * steps;
        ikv_sim_replay_input in = {L, &tr->lb.ref, ikv_entropy_for(&tr->ent, k),
                                   oi >= 0 ? &tr->keys[oi].log : NULL, NULL, NULL};
        if (ikv_sim_replay(&in, pr, NULL, st, tr->marks + (size_t)j * (size_t)G * (size_t)T, tr->job_err[j],
                           sizeof tr->job_err[j]) != 0)
            st->n_pairs = -1;
        st->step_recall = st->step_err = NULL;
    }
    for (int j = 0; j < n_jobs; j++) {
        if (res->cells[(size_t)j * (size_t)res->n_layers + (size_t)li].n_pairs < 0)
            return fail(tr->err, tr->errlen, IKV_SIM_EINPUT, "%s: %s at budget %s, layer %d: %s", tr->path,
                        tr->jobs->jobs[j].policy, tr->jobs->jobs[j].budget_text, layer, tr->job_err[j]);
    }
    return IKV_SIM_OK;
}

/* Forward Influence of the token sets, of what each job evicted, and the
 * first-order estimate of each exact probe. */
static int run_influence(trace_run *tr, const ikv_sim_layer *L)
{
    ikv_sim_trace_result *res = tr->res;
    const ikv_sim_options *opt = tr->opt;
    const int T = tr->T, G = tr->G, layer = L->layer, n_jobs = tr->jobs->n;
    if (opt->fi_tokens > 0) {
        int n = opt->fi_tokens;
        int32_t *set = malloc((size_t)(4 * n) * sizeof *set);
        if (!set)
            return fail(tr->err, tr->errlen, IKV_SIM_ERUNTIME, "out of memory");
        int counts[3];
        counts[0] = ikv_fi_top_attention(&tr->lb.ref, T, n, set);
        const float *tok_entropy = ikv_entropy_for(&tr->ent, 0);
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
            ikv_fi_accumulate(L, &tr->lb.ref, set + s * n, NULL, counts[s], opt->fi_per_bucket, &layer_acc[s]);
        for (int s = 0; s < 3; s++)
            fi_add(&res->fi_sets[s], &layer_acc[s]);
        free(set);
        int fail_alloc = 0;
#pragma omp parallel for schedule(dynamic, 1)
        for (int j = 0; j < n_jobs; j++) {
            if (res->skipped[j] || tr->jobs->jobs[j].params.policy == IKV_POLICY_FULL)
                continue;
            int32_t *pos = malloc((size_t)n * 2 * sizeof *pos);
            if (!pos) {
#pragma omp atomic write
                fail_alloc = 1;
                continue;
            }
            int c = sample_evicted(tr->marks + (size_t)j * (size_t)G * (size_t)T, G, T, n,
                                   mix64(opt->seed + (uint64_t)j * 7919u + (uint64_t)layer), pos, pos + n);
            ikv_fi_acc acc;
            memset(&acc, 0, sizeof acc);
            ikv_fi_accumulate(L, &tr->lb.ref, pos, pos + n, c, opt->fi_per_bucket, &acc);
            fi_add(&res->fi_evicted[j], &acc);
            free(pos);
        }
        if (fail_alloc)
            return fail(tr->err, tr->errlen, IKV_SIM_ERUNTIME, "out of memory");
    }
    if (res->n_probes > 0) {
#pragma omp parallel for schedule(dynamic, 1)
        for (int i = 0; i < res->n_probes; i++)
            ikv_fi_row(L, &tr->lb.ref, res->probe_pos[i], 1.0 / (double)res->n_layers,
                       res->probe_fo + (size_t)i * (size_t)T);
    }
    return IKV_SIM_OK;
}

/* Everything about one replayed layer. */
static int run_layer(trace_run *tr, int li)
{
    ikv_sim_trace_result *res = tr->res;
    const int slot = tr->slots[li], layer = res->layers[li], T = tr->T, H = tr->H;
    if (ikv_trace_read_layer(tr->r, "qkv/q", slot, tr->lb.q) != 0 ||
        ikv_trace_read_layer(tr->r, "qkv/k", slot, tr->lb.k) != 0 ||
        ikv_trace_read_layer(tr->r, "qkv/v", slot, tr->lb.v) != 0)
        return fail(tr->err, tr->errlen, IKV_SIM_EINPUT, "%s", ikv_trace_reader_error(tr->r));
    ikv_sim_layer L = {layer, tr->m->n_layers, H, tr->G, tr->d, T, tr->P, tr->lb.q, tr->lb.k, tr->lb.v,
                       tr->evolution ? tr->evolution + (size_t)slot * (size_t)T : NULL};
    if (ikv_sim_reference_compute(&L, &tr->lb.ref) != 0)
        return fail(tr->err, tr->errlen, IKV_SIM_ERUNTIME, "out of memory in the reference pass");
    int n_keys = 0;
    int rc = run_oracles(tr, &L, &n_keys);
    if (rc == IKV_SIM_OK)
        rc = run_jobs(tr, &L, li, n_keys);
    for (int i = 0; i < n_keys; i++)
        ikv_evict_log_free(&tr->keys[i].log);
    if (rc == IKV_SIM_OK)
        rc = run_influence(tr, &L);
    if (rc != IKV_SIM_OK)
        return rc;
    /* Along the sequence: attention received per later query. */
    for (int t = 0; t < T; t++) {
        double s = 0.0;
        for (int h = 0; h < H; h++)
            s += tr->lb.ref.received[(size_t)h * (size_t)T + (size_t)t];
        res->received[t] += (float)(s / (double)H / (double)(T - t) / (double)res->n_layers);
        if (L.evolution)
            res->evolution[t] += L.evolution[t] / (float)res->n_layers;
    }
    return IKV_SIM_OK;
}

static int run_trace(const char *path, const ikv_sim_jobs *jobs, const ikv_sim_options *opt,
                     ikv_sim_trace_result *res, int64_t *unit, int64_t *done, int64_t total_units,
                     char *err, size_t errlen)
{
    trace_run tr;
    memset(&tr, 0, sizeof tr);
    tr.path = path;
    tr.jobs = jobs;
    tr.opt = opt;
    tr.res = res;
    tr.err = err;
    tr.errlen = errlen;
    int rc = open_trace(&tr);
    for (int li = 0; rc == IKV_SIM_OK && li < res->n_layers; li++) {
        if (opt->owns_unit && !opt->owns_unit(opt->user, (*unit)++))
            continue;
        if (opt->should_stop && opt->should_stop()) {
            rc = fail(err, errlen, IKV_SIM_ESTOPPED, "stopped");
            break;
        }
        rc = run_layer(&tr, li);
        *done += 1;
        if (rc == IKV_SIM_OK && opt->progress)
            opt->progress(opt->user, *done, total_units);
    }
    trace_run_free(&tr);
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

