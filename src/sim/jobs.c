#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/jobs.h"

/* Copies with truncation (names were length-checked by the parsers). */
static void copy_text(char *dst, size_t n, const char *src)
{
    size_t len = strlen(src);
    if (len >= n)
        len = n - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static int err_out(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
    snprintf(err, errlen, fmt, a, b);
    return -1;
}

int ikv_sweep_parse(const char *text, ikv_sweep *sw, char *err, size_t errlen)
{
    memset(sw, 0, sizeof *sw);
    const char *eq = strchr(text, '=');
    if (!eq || eq == text || eq[1] == '\0')
        return err_out(err, errlen, "--param '%s': expected [policy.]key=value[,value...]%s", text, "");
    size_t name_len = (size_t)(eq - text);
    char name[64];
    if (name_len >= sizeof name)
        return err_out(err, errlen, "--param '%s': name too long%s", text, "");
    memcpy(name, text, name_len);
    name[name_len] = '\0';
    char *dot = strchr(name, '.');
    const char *key = name;
    if (dot) {
        *dot = '\0';
        ikv_policy_kind kind;
        if (ikv_policy_from_name(name, &kind) != IKV_OK)
            return err_out(err, errlen, "--param '%s': unknown policy '%s'", text, name);
        copy_text(sw->policy, sizeof sw->policy, name);
        key = dot + 1;
    }
    if (strlen(key) == 0 || strlen(key) >= sizeof sw->key)
        return err_out(err, errlen, "--param '%s': bad key%s", text, "");
    snprintf(sw->key, sizeof sw->key, "%s", key);
    const char *s = eq + 1;
    while (*s) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        if (len == 0 || len >= sizeof sw->values[0])
            return err_out(err, errlen, "--param '%s': empty or too long value%s", text, "");
        if (sw->n_values == (int)(sizeof sw->values / sizeof sw->values[0]))
            return err_out(err, errlen, "--param '%s': more than 16 values%s", text, "");
        memcpy(sw->values[sw->n_values], s, len);
        sw->values[sw->n_values][len] = '\0';
        sw->n_values++;
        if (!comma)
            break;
        s = comma + 1;
    }
    if (sw->n_values == 0)
        return err_out(err, errlen, "--param '%s': no value%s", text, "");
    return 0;
}

void ikv_sim_jobs_free(ikv_sim_jobs *jobs)
{
    free(jobs->jobs);
    jobs->jobs = NULL;
    jobs->n = 0;
}

static int push(ikv_sim_jobs *out, int *cap, const ikv_sim_job *job)
{
    if (out->n == *cap) {
        int c = *cap ? 2 * *cap : 64;
        ikv_sim_job *j = realloc(out->jobs, (size_t)c * sizeof *j);
        if (!j)
            return -1;
        out->jobs = j;
        *cap = c;
    }
    out->jobs[out->n++] = *job;
    return 0;
}

/* Splits a comma list into items (in place copy). */
static int split(const char *list, char items[][32], int max)
{
    int n = 0;
    const char *s = list;
    while (*s && n < max) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        if (len >= 32)
            return -1;
        memcpy(items[n], s, len);
        items[n][len] = '\0';
        if (len > 0)
            n++;
        if (!comma)
            break;
        s = comma + 1;
    }
    return n;
}

int ikv_sim_jobs_expand(const char *policies, const char *budgets, const char *scenarios,
                        const ikv_sweep *sweeps, int n_sweeps, ikv_sim_jobs *out, char *err,
                        size_t errlen)
{
    memset(out, 0, sizeof *out);
    int cap = 0;
    char pol[IKV_POLICY_COUNT * 2][32], bud[64][32], sce[4][32];
    int n_pol, n_bud, n_sce;
    if (strcmp(policies, "all") == 0) {
        n_pol = IKV_POLICY_COUNT;
        for (int k = 0; k < IKV_POLICY_COUNT; k++)
            snprintf(pol[k], sizeof pol[k], "%s", ikv_policy_name((ikv_policy_kind)k));
    } else {
        n_pol = split(policies, pol, (int)(sizeof pol / sizeof pol[0]));
    }
    n_bud = split(budgets, bud, 64);
    n_sce = split(scenarios, sce, 4);
    if (n_pol <= 0)
        return err_out(err, errlen, "--policies '%s': no policy%s", policies, "");
    if (n_bud <= 0)
        return err_out(err, errlen, "--budgets '%s': no budget (at most 64, e.g. 32,64,25%%)%s", budgets, "");
    if (n_sce <= 0)
        return err_out(err, errlen, "--scenario '%s': expected prefill, decode or both%s", scenarios, "");
    for (int s = 0; s < n_sce; s++)
        if (strcmp(sce[s], "prefill") != 0 && strcmp(sce[s], "decode") != 0)
            return err_out(err, errlen, "--scenario: '%s' is not prefill or decode%s", sce[s], "");
    for (int b = 0; b < n_bud; b++) {
        ikv_budget budget;
        char e[160];
        if (ikv_budget_parse(bud[b], &budget, e, sizeof e) != IKV_OK)
            return err_out(err, errlen, "--budgets: %s%s", e, "");
    }
    /* Every sweep must reach at least one listed policy. */
    for (int w = 0; w < n_sweeps; w++) {
        int used = 0;
        for (int p = 0; p < n_pol; p++) {
            ikv_policy_kind kind;
            if (ikv_policy_from_name(pol[p], &kind) != IKV_OK)
                continue;
            if (sweeps[w].policy[0] && strcmp(sweeps[w].policy, pol[p]) != 0)
                continue;
            for (int i = 0; ikv_param_info_at(kind, i); i++)
                used |= strcmp(ikv_param_info_at(kind, i)->key, sweeps[w].key) == 0;
        }
        if (!used)
            return err_out(err, errlen, "--param %s: no listed policy has the parameter '%s'",
                           sweeps[w].policy[0] ? sweeps[w].policy : "(any)", sweeps[w].key);
    }

    for (int s = 0; s < n_sce; s++) {
        for (int p = 0; p < n_pol; p++) {
            ikv_policy_kind kind;
            if (ikv_policy_from_name(pol[p], &kind) != IKV_OK) {
                ikv_sim_jobs_free(out);
                return err_out(err, errlen, "--policies: unknown policy '%s' (known: full, random, streaming, h2o, tova, snapkv, pyramidkv, infokv, oracle)%s", pol[p], "");
            }
            /* Sweeps that apply to this policy, as an odometer over values. */
            int apply[32], n_apply = 0;
            for (int w = 0; w < n_sweeps && n_apply < 32; w++) {
                if (sweeps[w].policy[0] && strcmp(sweeps[w].policy, pol[p]) != 0)
                    continue;
                int has = 0;
                for (int i = 0; ikv_param_info_at(kind, i); i++)
                    has |= strcmp(ikv_param_info_at(kind, i)->key, sweeps[w].key) == 0;
                if (has)
                    apply[n_apply++] = w;
            }
            int digit[32] = {0};
            for (;;) {
                int n_budget_jobs = kind == IKV_POLICY_FULL ? 1 : n_bud;
                for (int b = 0; b < n_budget_jobs; b++) {
                    ikv_sim_job job;
                    memset(&job, 0, sizeof job);
                    job.params = ikv_default_params(kind);
                    char e[256];
                    if (ikv_params_set(&job.params, "scenario", sce[s], e, sizeof e) != IKV_OK ||
                        (kind != IKV_POLICY_FULL &&
                         ikv_params_set(&job.params, "budget", bud[b], e, sizeof e) != IKV_OK)) {
                        ikv_sim_jobs_free(out);
                        return err_out(err, errlen, "%s%s", e, "");
                    }
                    for (int a = 0; a < n_apply; a++) {
                        const ikv_sweep *sw = &sweeps[apply[a]];
                        if (ikv_params_set(&job.params, sw->key, sw->values[digit[a]], e, sizeof e) != IKV_OK) {
                            ikv_sim_jobs_free(out);
                            return err_out(err, errlen, "--param: %s%s", e, "");
                        }
                    }
                    copy_text(job.policy, sizeof job.policy, pol[p]);
                    copy_text(job.scenario, sizeof job.scenario, sce[s]);
                    copy_text(job.budget_text, sizeof job.budget_text, kind == IKV_POLICY_FULL ? "all" : bud[b]);
                    ikv_params_format(&job.params, job.param_text, sizeof job.param_text);
                    if (job.param_text[0] == '\0')
                        snprintf(job.param_text, sizeof job.param_text, "-");
                    if (push(out, &cap, &job) != 0) {
                        ikv_sim_jobs_free(out);
                        return err_out(err, errlen, "out of memory%s%s", "", "");
                    }
                }
                int a = 0;
                while (a < n_apply && ++digit[a] == sweeps[apply[a]].n_values)
                    digit[a++] = 0;
                if (a == n_apply)
                    break;
            }
        }
    }
    return 0;
}

int ikv_sim_jobs_find(const ikv_sim_jobs *jobs, const char *policy, const char *params, const char *budget,
                      const char *scenario)
{
    for (int i = 0; i < jobs->n; i++) {
        const ikv_sim_job *j = &jobs->jobs[i];
        if (strcmp(j->policy, policy) == 0 && strcmp(j->param_text, params) == 0 &&
            strcmp(j->budget_text, budget) == 0 && strcmp(j->scenario, scenario) == 0)
            return i;
    }
    return -1;
}

int ikv_sim_jobs_add(ikv_sim_jobs *jobs, const char *policy, const char *params, const char *budget,
                     const char *scenario, char *err, size_t errlen)
{
    ikv_sim_job job;
    memset(&job, 0, sizeof job);
    ikv_policy_kind kind;
    if (ikv_policy_from_name(policy, &kind) != IKV_OK)
        return err_out(err, errlen, "unknown policy '%s'%s", policy, "");
    job.params = ikv_default_params(kind);
    char e[256];
    if (ikv_params_set(&job.params, "scenario", scenario, e, sizeof e) != IKV_OK ||
        (strcmp(params, "-") != 0 && ikv_params_parse(&job.params, params, e, sizeof e) != IKV_OK) ||
        (kind != IKV_POLICY_FULL && ikv_params_set(&job.params, "budget", budget, e, sizeof e) != IKV_OK))
        return err_out(err, errlen, "%s%s", e, "");
    copy_text(job.policy, sizeof job.policy, policy);
    copy_text(job.scenario, sizeof job.scenario, scenario);
    copy_text(job.budget_text, sizeof job.budget_text, kind == IKV_POLICY_FULL ? "all" : budget);
    ikv_params_format(&job.params, job.param_text, sizeof job.param_text);
    if (job.param_text[0] == '\0')
        copy_text(job.param_text, sizeof job.param_text, "-");
    int cap = jobs->n; /* grow by one: push() doubles from the current size */
    if (push(jobs, &cap, &job) != 0)
        return err_out(err, errlen, "out of memory%s%s", "", "");
    return jobs->n - 1;
}
