/*
 * Results of a simulation: freeing them, and visiting the arrays that
 * (trace, layer) units add into, so processes can sum them.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "sim/run.h"

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
