/*
 * infokv-capture --policy: closed-loop accuracy of live eviction.
 *
 * Every (policy, budget, parameters, scenario) runs as its own compressed
 * session that follows the full-cache run token by token (teacher
 * forcing): after each prefill chunk and decode token, KL(p_full ||
 * p_compressed) of the next-token distributions and top-1 agreement are
 * taken at the last position, with each layer's cache length. Afterwards a
 * free-running greedy run of each says at which generated token it first
 * departs from the full cache's greedy continuation.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/capture.h"
#include "cli/common.h"
#include "infokv/core.h"
#include "live/live.h"

typedef struct live_run {
    ikv_sim_job job;
    ikv_session *session;
    ikv_live *live;
    float *kl;          /* [steps] NaN where not measured */
    uint8_t *agree;     /* [steps] */
    int32_t *cache_len; /* [L][steps] slots of each layer after position t */
    ikv_live_stats stats;
    int divergence;     /* generated token where free-running greedy departs; -1 none */
    int compared;       /* generated tokens compared */
} live_run;

struct live_set {
    live_run *runs;
    int n;
    int L, V, steps;
};

void live_set_free(live_set *ls)
{
    if (!ls)
        return;
    for (int i = 0; i < ls->n; i++) {
        ikv_live_free(ls->runs[i].live);
        ikv_session_free(ls->runs[i].session);
        free(ls->runs[i].kl);
        free(ls->runs[i].agree);
        free(ls->runs[i].cache_len);
    }
    free(ls->runs);
    free(ls);
}

live_set *live_set_create(const capture_options *o, run_context *rc, char *err, size_t errlen)
{
    if (!o->policies)
        return NULL;
    ikv_sim_jobs jobs;
    if (ikv_sim_jobs_expand(o->policies, o->budgets ? o->budgets : "25%",
                            o->scenarios ? o->scenarios : "prefill", o->sweeps, o->n_sweeps, &jobs, err,
                            errlen) != 0)
        ikv_die(IKV_EXIT_USAGE, "%s", err);
    live_set *ls = calloc(1, sizeof *ls);
    if (!ls)
        ikv_die(IKV_EXIT_RUNTIME, "out of memory");
    ls->L = rc->info->n_layers;
    ls->V = rc->info->vocab_size;
    ls->steps = rc->steps;
    ls->runs = calloc((size_t)jobs.n, sizeof *ls->runs);
    if (!ls->runs)
        ikv_die(IKV_EXIT_RUNTIME, "out of memory");
    for (int i = 0; i < jobs.n; i++) {
        live_run *r = &ls->runs[i];
        ls->n = i + 1;
        r->job = jobs.jobs[i];
        r->divergence = -1;
        if (ikv_session_create(&r->session, rc->model, rc->steps, o->threads, err, errlen) != IKV_OK)
            ikv_die(IKV_EXIT_RUNTIME, "%s", err);
        if (ikv_live_create(&r->live, r->session, &r->job.params, err, errlen) != IKV_OK)
            ikv_die(IKV_EXIT_USAGE, "%s", err);
        if (ikv_live_begin(r->live, rc->n_prompt, rc->steps) != IKV_OK)
            ikv_die(IKV_EXIT_USAGE, "--policy %s --budget %s: %s", r->job.policy, r->job.budget_text,
                    ikv_live_error(r->live));
        r->kl = malloc((size_t)rc->steps * sizeof *r->kl);
        r->agree = calloc((size_t)rc->steps, 1);
        r->cache_len = calloc((size_t)ls->L * (size_t)rc->steps, sizeof *r->cache_len);
        if (!r->kl || !r->agree || !r->cache_len)
            ikv_die(IKV_EXIT_RUNTIME, "out of memory");
        for (int t = 0; t < rc->steps; t++)
            r->kl[t] = NAN;
    }
    ikv_sim_jobs_free(&jobs);
    (void)err;
    return ls;
}

int live_set_advance(live_set *ls, const ikv_session *full, const int32_t *tokens, int from, int to,
                     char *err, size_t errlen)
{
    if (!ls || to <= from)
        return 0;
    const float *pf = ikv_session_logits(full);
    /* the full run's side, the same for every live run */
    const int top_f = ikv_argmax(pf, ls->V);
    for (int i = 0; i < ls->n; i++) {
        live_run *r = &ls->runs[i];
        int rcode = to - from == 1 && from > 0 ? ikv_live_decode(r->live, tokens[from])
                                               : ikv_live_prefill(r->live, tokens + from, to - from);
        if (rcode != IKV_OK) {
            snprintf(err, errlen, "live %s at budget %s: %s", r->job.policy, r->job.budget_text,
                     ikv_live_error(r->live));
            return -1;
        }
        const float *pq = ikv_live_logits(r->live);
        int t = to - 1;
        r->kl[t] = (float)ikv_kl_logits(pf, pq, ls->V);
        r->agree[t] = top_f == ikv_argmax(pq, ls->V);
        for (int l = 0; l < ls->L; l++)
            for (int p = from; p < to; p++)
                r->cache_len[(size_t)l * (size_t)ls->steps + (size_t)p] = ikv_live_cache_len(r->live, l);
        r->stats = *ikv_live_stats_of(r->live);
    }
    return 0;
}

/* The full cache's greedy continuation of the prompt, n_gen tokens. */
static int full_greedy(const capture_options *o, run_context *rc, int n_gen, int32_t *out, char *err,
                       size_t errlen)
{
    ikv_session *s;
    if (ikv_session_create(&s, rc->model, rc->steps, o->threads, err, errlen) != IKV_OK)
        return -1;
    int rcode = ikv_session_prefill(s, rc->tokens, rc->n_prompt);
    int n = 0;
    for (; rcode == IKV_OK && n < n_gen; n++) {
        out[n] = ikv_argmax(ikv_session_logits(s), rc->info->vocab_size);
        if (n + 1 < n_gen)
            rcode = ikv_session_decode(s, out[n]);
    }
    if (rcode != IKV_OK)
        snprintf(err, errlen, "greedy reference: %s", ikv_session_error(s));
    ikv_session_free(s);
    return rcode == IKV_OK ? 0 : -1;
}

/* Generated token (1-based) where a compressed greedy run first departs
 * from `reference`, or -1 if it never does within n_gen tokens. */
static int free_running(live_run *r, run_context *rc, const int32_t *reference, int n_gen, char *err,
                        size_t errlen)
{
    if (ikv_live_begin(r->live, rc->n_prompt, rc->steps) != IKV_OK ||
        ikv_live_prefill(r->live, rc->tokens, rc->n_prompt) != IKV_OK) {
        snprintf(err, errlen, "live %s: %s", r->job.policy, ikv_live_error(r->live));
        return -2;
    }
    r->compared = n_gen;
    for (int n = 0; n < n_gen; n++) {
        int32_t next = ikv_argmax(ikv_live_logits(r->live), rc->info->vocab_size);
        if (next != reference[n])
            return n + 1;
        if (n + 1 < n_gen && ikv_live_decode(r->live, next) != IKV_OK) {
            snprintf(err, errlen, "live %s: %s", r->job.policy, ikv_live_error(r->live));
            return -2;
        }
    }
    return -1;
}

static int write_run(ikv_trace_writer *w, const live_set *ls, int i, int n_run, int n_prompt,
                     double mean_kl, double agreement)
{
    const live_run *r = &ls->runs[i];
    char group[64], path[96];
    snprintf(group, sizeof group, "live/run%d", i);
    int64_t dims1[1] = {n_run}, dims2[2] = {ls->L, n_run};
    int32_t *lens = malloc((size_t)ls->L * (size_t)(n_run > 0 ? n_run : 1) * sizeof *lens);
    if (!lens)
        return -1;
    for (int l = 0; l < ls->L; l++)
        memcpy(lens + (size_t)l * (size_t)n_run, r->cache_len + (size_t)l * (size_t)ls->steps,
               (size_t)n_run * sizeof *lens);
    int rc = ikv_trace_writer_group(w, group);
    snprintf(path, sizeof path, "%s/kl", group);
    rc = rc ? rc : ikv_trace_write_extra(w, path, IKV_TRACE_TYPE_F32, 1, dims1, r->kl);
    snprintf(path, sizeof path, "%s/agree", group);
    rc = rc ? rc : ikv_trace_write_extra(w, path, IKV_TRACE_TYPE_U8, 1, dims1, r->agree);
    snprintf(path, sizeof path, "%s/cache_len", group);
    rc = rc ? rc : ikv_trace_write_extra(w, path, IKV_TRACE_TYPE_I32, 2, dims2, lens);
    free(lens);
    rc = rc ? rc : ikv_trace_writer_attr_string(w, group, "policy", r->job.policy);
    rc = rc ? rc : ikv_trace_writer_attr_string(w, group, "params", r->job.param_text);
    rc = rc ? rc : ikv_trace_writer_attr_string(w, group, "budget", r->job.budget_text);
    rc = rc ? rc : ikv_trace_writer_attr_string(w, group, "scenario", r->job.scenario);
    rc = rc ? rc : ikv_trace_writer_attr_int(w, group, "budget_tokens",
                                             ikv_policy_layer_budget(ikv_live_policy(r->live), 0));
    rc = rc ? rc : ikv_trace_writer_attr_double(w, group, "mean_kl", mean_kl);
    rc = rc ? rc : ikv_trace_writer_attr_double(w, group, "agreement", agreement);
    rc = rc ? rc : ikv_trace_writer_attr_int(w, group, "divergence_step", r->divergence);
    rc = rc ? rc : ikv_trace_writer_attr_int(w, group, "compared_steps", r->compared);
    rc = rc ? rc : ikv_trace_writer_attr_int(w, group, "peak_cache_bytes", (int64_t)r->stats.peak_cache_bytes);
    rc = rc ? rc : ikv_trace_writer_attr_int(w, group, "full_cache_bytes", (int64_t)r->stats.full_cache_bytes);
    rc = rc ? rc : ikv_trace_writer_attr_double(w, group, "bookkeeping_s", r->stats.bookkeeping_s);
    rc = rc ? rc : ikv_trace_writer_attr_double(w, group, "forward_s", r->stats.forward_s);
    (void)n_prompt;
    return rc;
}

int live_set_finish(live_set *ls, const capture_options *o, run_context *rc, int n_run, ikv_trace_writer *w,
                    char *err, size_t errlen)
{
    if (!ls)
        return 0;
    int n_gen = n_run - rc->n_prompt;
    int32_t *reference = malloc((size_t)(n_gen > 0 ? n_gen : 1) * sizeof *reference);
    if (!reference)
        return snprintf(err, errlen, "out of memory"), -1;
    if (n_gen > 0) {
        if (o->temperature == 0.0f)
            memcpy(reference, rc->tokens + rc->n_prompt, (size_t)n_gen * sizeof *reference);
        else if (full_greedy(o, rc, n_gen, reference, err, errlen) != 0) {
            free(reference);
            return -1;
        }
    }
    if (w && ikv_trace_writer_group(w, "live") != 0) {
        snprintf(err, errlen, "%s", ikv_trace_writer_error(w));
        free(reference);
        return -1;
    }
    for (int i = 0; i < ls->n; i++) {
        live_run *r = &ls->runs[i];
        ikv_live_stats lockstep = r->stats;
        if (n_gen > 0) {
            r->divergence = free_running(r, rc, reference, n_gen, err, errlen);
            if (r->divergence == -2) {
                free(reference);
                return -1;
            }
        }
        r->stats = lockstep; /* report the teacher-forced run's memory and time */
        double kl = 0.0, agree = 0.0;
        int n = 0;
        for (int t = rc->n_prompt; t < n_run; t++) {
            if (isnan(r->kl[t]))
                continue;
            kl += r->kl[t];
            agree += r->agree[t];
            n++;
        }
        double mean_kl = n ? kl / n : NAN, agreement = n ? agree / n : NAN;
        if (w && write_run(w, ls, i, n_run, rc->n_prompt, mean_kl, agreement) != 0) {
            snprintf(err, errlen, "%s", ikv_trace_writer_error(w));
            free(reference);
            return -1;
        }
        char divergence[64];
        if (r->divergence > 0)
            snprintf(divergence, sizeof divergence, "departs from the full-cache greedy text at token %d",
                     r->divergence);
        else
            snprintf(divergence, sizeof divergence, "follows the full-cache greedy text for all %d tokens",
                     n_gen);
        double total = r->stats.bookkeeping_s + r->stats.forward_s;
        ikv_note(o->quiet,
                 "live %s%s%s budget %s (%s): KL %.4g nats, top-1 agreement %.1f%% over %d decode steps; "
                 "greedy %s; cache %.1f KiB peak vs %.1f KiB full; eviction bookkeeping %.1f%% of the run",
                 r->job.policy, strcmp(r->job.param_text, "-") ? " " : "",
                 strcmp(r->job.param_text, "-") ? r->job.param_text : "", r->job.budget_text, r->job.scenario,
                 mean_kl, 100.0 * agreement, n, divergence, (double)r->stats.peak_cache_bytes / 1024.0,
                 (double)r->stats.full_cache_bytes / 1024.0,
                 total > 0 ? 100.0 * r->stats.bookkeeping_s / total : 0.0);
    }
    free(reference);
    return 0;
}
