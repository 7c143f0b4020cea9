#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/inputs.h"

void ikv_entropy_table_free(ikv_entropy_table *e)
{
    for (int i = 0; i < e->n; i++)
        free(e->values[i]);
    e->n = 0;
}

const float *ikv_entropy_for(const ikv_entropy_table *e, int k)
{
    for (int i = 0; i < e->n; i++)
        if (e->k[i] == k)
            return e->values[i];
    return NULL;
}

/* Reads or derives the entropy of flavour k; NULL with a message when the
 * trace cannot provide it. */
int ikv_entropy_load(ikv_trace_reader *r, const ikv_trace_spec *spec, int T, int k,
                     ikv_entropy_table *e, char *why, size_t whylen)
{
    if (ikv_entropy_for(e, k) || e->n == 32)
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

/* The live runs a trace holds (live/run0, live/run1, ...). */
int ikv_sim_read_live(ikv_trace_reader *r, ikv_sim_live **out, int *n_out, char *err, size_t errlen)
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
int ikv_sim_read_probes(ikv_trace_reader *r, int T, ikv_sim_trace_result *res, char *err, size_t errlen)
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
        int rc = ikv_sim_read_live(r, &live, &n, err, errlen);
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

