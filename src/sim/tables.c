#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sim/tables.h"
#include "util/outfile.h"

/* A cell's means; NaN when nothing was measured. */
static double mean(double sum, long n)
{
    return n > 0 ? sum / (double)n : NAN;
}

static void put(FILE *f, double x)
{
    if (isnan(x))
        fputs("\tnan", f);
    else
        fprintf(f, "\t%.6g", x);
}

typedef struct totals {
    double recall, err, overlap, kept;
    long n_pairs, n_overlap, n_kept;
} totals;

static totals job_totals(const ikv_sim_trace_result *t, int j)
{
    totals s = {0, 0, 0, 0, 0, 0, 0};
    for (int li = 0; li < t->n_layers; li++) {
        const ikv_sim_stats *c = &t->cells[(size_t)j * (size_t)t->n_layers + (size_t)li];
        s.recall += c->recall_sum;
        s.err += c->err_sum;
        s.overlap += c->overlap_sum;
        s.kept += c->kept_sum;
        s.n_pairs += c->n_pairs;
        s.n_overlap += c->n_overlap;
        s.n_kept += c->n_kept;
    }
    return s;
}

/* Mean kept slots over the mean slots a full cache would hold. */
static double kept_fraction(const ikv_sim_trace_result *t, const totals *s)
{
    double full = ((double)t->P + 1.0 + (double)t->T) / 2.0;
    return mean(s->kept, s->n_kept) / full;
}

static void job_columns(FILE *f, const ikv_sim_job *job)
{
    fprintf(f, "\t%s\t%s\t%s\t%s", job->scenario, job->policy, job->param_text, job->budget_text);
}

typedef int (*writer_fn)(FILE *f, const ikv_sim_results *res);

static int write_summary(FILE *f, const ikv_sim_results *res)
{
    fputs("trace\tscenario\tpolicy\tparams\tbudget\tbudget_tokens\trecall\tout_err\toracle_overlap"
          "\tkept_frac\tlayers\tstatus\n", f);
    const ikv_sim_jobs *jobs = res->jobs;
    for (int i = 0; i < res->n_traces; i++) {
        const ikv_sim_trace_result *t = &res->traces[i];
        for (int j = 0; j < jobs->n; j++) {
            totals s = job_totals(t, j);
            fputs(t->name, f);
            job_columns(f, &jobs->jobs[j]);
            fprintf(f, "\t%d", t->budget_tokens[j]);
            if (t->skipped[j]) {
                fprintf(f, "\tnan\tnan\tnan\tnan\t%d\tskipped: %s\n", t->n_layers, t->skip_reason[j]);
                continue;
            }
            put(f, mean(s.recall, s.n_pairs));
            put(f, mean(s.err, s.n_pairs));
            put(f, mean(s.overlap, s.n_overlap));
            put(f, kept_fraction(t, &s));
            fprintf(f, "\t%d\tok\n", t->n_layers);
        }
    }
    if (res->n_traces > 1) {
        /* ALL: the mean over traces of each trace's mean. */
        for (int j = 0; j < jobs->n; j++) {
            double r = 0, e = 0, o = 0, k = 0, tokens = 0;
            int n = 0, no = 0;
            for (int i = 0; i < res->n_traces; i++) {
                const ikv_sim_trace_result *t = &res->traces[i];
                if (t->skipped[j])
                    continue;
                totals s = job_totals(t, j);
                r += mean(s.recall, s.n_pairs);
                e += mean(s.err, s.n_pairs);
                k += kept_fraction(t, &s);
                tokens += t->budget_tokens[j];
                if (s.n_overlap > 0) {
                    o += mean(s.overlap, s.n_overlap);
                    no++;
                }
                n++;
            }
            fputs("ALL", f);
            job_columns(f, &jobs->jobs[j]);
            /* a count is the same on every trace; a fraction's mean */
            fprintf(f, "\t%.0f", n ? tokens / n : 0.0);
            put(f, n ? r / n : NAN);
            put(f, n ? e / n : NAN);
            put(f, no ? o / no : NAN);
            put(f, n ? k / n : NAN);
            fprintf(f, "\t-\t%s\n", n == res->n_traces ? "ok" : n ? "partial" : "skipped");
        }
    }
    return 0;
}

static int write_per_layer(FILE *f, const ikv_sim_results *res)
{
    fputs("trace\tscenario\tpolicy\tparams\tbudget\tlayer\tlayer_budget\trecall\tout_err\toracle_overlap\n", f);
    for (int i = 0; i < res->n_traces; i++) {
        const ikv_sim_trace_result *t = &res->traces[i];
        for (int j = 0; j < res->jobs->n; j++) {
            if (t->skipped[j])
                continue;
            for (int li = 0; li < t->n_layers; li++) {
                const ikv_sim_stats *c = &t->cells[(size_t)j * (size_t)t->n_layers + (size_t)li];
                fputs(t->name, f);
                job_columns(f, &res->jobs->jobs[j]);
                fprintf(f, "\t%d\t%d", t->layers[li], t->layer_budget[(size_t)j * (size_t)t->n_layers + (size_t)li]);
                put(f, mean(c->recall_sum, c->n_pairs));
                put(f, mean(c->err_sum, c->n_pairs));
                put(f, mean(c->overlap_sum, c->n_overlap));
                fputc('\n', f);
            }
        }
    }
    return 0;
}

static int write_per_step(FILE *f, const ikv_sim_results *res)
{
    fputs("trace\tscenario\tpolicy\tparams\tbudget\tstep\tposition\trecall\tout_err\n", f);
    for (int i = 0; i < res->n_traces; i++) {
        const ikv_sim_trace_result *t = &res->traces[i];
        size_t steps = (size_t)(t->T - t->P);
        double per_step = (double)t->H * (double)t->n_layers;
        for (int j = 0; j < res->jobs->n; j++) {
            if (t->skipped[j])
                continue;
            for (size_t s = 0; s < steps; s++) {
                fputs(t->name, f);
                job_columns(f, &res->jobs->jobs[j]);
                fprintf(f, "\t%zu\t%zu", s + 1, (size_t)t->P + s);
                put(f, t->step_recall[(size_t)j * steps + s] / per_step);
                put(f, t->step_err[(size_t)j * steps + s] / per_step);
                fputc('\n', f);
            }
        }
    }
    return 0;
}

static void fi_rows(FILE *f, const char *trace, const char *set, const ikv_sim_job *job,
                    const ikv_fi_acc *acc)
{
    for (int b = 0; b < IKV_FI_BUCKETS; b++) {
        if (acc->n[b] == 0)
            continue;
        fprintf(f, "%s\t%s", trace, set);
        if (job)
            fprintf(f, "\t%s\t%s\t%s\t%s", job->scenario, job->policy, job->param_text, job->budget_text);
        else
            fputs("\t-\t-\t-\t-", f);
        fprintf(f, "\t%d\t%ld\t%ld\t%ld", b, 1L << b, (2L << b) - 1, acc->n[b]);
        put(f, acc->sum[b] / (double)acc->n[b]);
        fputc('\n', f);
    }
}

static int write_influence(FILE *f, const ikv_sim_results *res)
{
    fputs("trace\tset\tscenario\tpolicy\tparams\tbudget\tbucket\tdist_lo\tdist_hi\tpairs\tmean_fi\n", f);
    for (int i = 0; i < res->n_traces; i++) {
        const ikv_sim_trace_result *t = &res->traces[i];
        for (int s = 0; s < 3; s++)
            fi_rows(f, t->name, ikv_fi_set_names[s], NULL, &t->fi_sets[s]);
        for (int j = 0; j < res->jobs->n; j++)
            if (!t->skipped[j])
                fi_rows(f, t->name, "evicted", &res->jobs->jobs[j], &t->fi_evicted[j]);
        /* Exact probes (KL, nats) and the first-order estimate for the
         * same tokens (mean relative FI over layers and heads). */
        for (int set = 0; set < 3 && t->n_probes > 0; set++) {
            ikv_fi_acc exact, first;
            memset(&exact, 0, sizeof exact);
            memset(&first, 0, sizeof first);
            for (int p = 0; p < t->n_probes; p++) {
                if (t->probe_set[p] != set)
                    continue;
                for (int q = t->probe_pos[p] + 1; q < t->T; q++) {
                    int b = ikv_fi_bucket(q - t->probe_pos[p]);
                    float e = t->probe_kl[(size_t)p * (size_t)t->T + (size_t)q];
                    if (!isnan(e)) {
                        exact.sum[b] += e;
                        exact.n[b]++;
                    }
                    first.sum[b] += t->probe_fo[(size_t)p * (size_t)t->T + (size_t)q];
                    first.n[b]++;
                }
            }
            char name[64];
            snprintf(name, sizeof name, "exact-kl:%s", ikv_probe_set_names[set]);
            fi_rows(f, t->name, name, NULL, &exact);
            snprintf(name, sizeof name, "first-order:%s", ikv_probe_set_names[set]);
            fi_rows(f, t->name, name, NULL, &first);
        }
    }
    return 0;
}

/* Ranks (1-based, ties averaged) of x[0..n) into r. */
static int rank_values(const double *x, int n, double *r)
{
    int *idx = malloc((size_t)(n ? n : 1) * sizeof *idx);
    if (!idx)
        return -1;
    for (int i = 0; i < n; i++)
        idx[i] = i;
    /* insertion sort is fine for policy lists; use a merge for long arrays */
    for (int width = 1; width < n; width *= 2) {
        int *tmp = malloc((size_t)n * sizeof *tmp);
        if (!tmp) {
            free(idx);
            return -1;
        }
        for (int lo = 0; lo < n; lo += 2 * width) {
            int mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
            int a = lo, b = mid, k = lo;
            while (a < mid && b < hi)
                tmp[k++] = x[idx[a]] <= x[idx[b]] ? idx[a++] : idx[b++];
            while (a < mid)
                tmp[k++] = idx[a++];
            while (b < hi)
                tmp[k++] = idx[b++];
        }
        memcpy(idx, tmp, (size_t)n * sizeof *idx);
        free(tmp);
    }
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && x[idx[j + 1]] == x[idx[i]])
            j++;
        double avg = (i + j) / 2.0 + 1.0;
        for (int k = i; k <= j; k++)
            r[idx[k]] = avg;
        i = j + 1;
    }
    free(idx);
    return 0;
}

static double pearson(const double *a, const double *b, int n)
{
    double ma = 0, mb = 0;
    for (int i = 0; i < n; i++) {
        ma += a[i];
        mb += b[i];
    }
    ma /= n;
    mb /= n;
    double sab = 0, saa = 0, sbb = 0;
    for (int i = 0; i < n; i++) {
        sab += (a[i] - ma) * (b[i] - mb);
        saa += (a[i] - ma) * (a[i] - ma);
        sbb += (b[i] - mb) * (b[i] - mb);
    }
    return saa > 0 && sbb > 0 ? sab / sqrt(saa * sbb) : NAN;
}

/* Spearman rank correlation; NaN below 3 pairs. */
static double spearman(const double *a, const double *b, int n)
{
    if (n < 3)
        return NAN;
    double *ra = malloc((size_t)n * sizeof *ra), *rb = malloc((size_t)n * sizeof *rb);
    double rho = NAN;
    if (ra && rb && rank_values(a, n, ra) == 0 && rank_values(b, n, rb) == 0)
        rho = pearson(ra, rb, n);
    free(ra);
    free(rb);
    return rho;
}

static int write_live(FILE *f, const ikv_sim_results *res)
{
    fputs("trace\tscenario\tpolicy\tparams\tbudget\tlive_kl\tlive_agreement\tdivergence_step\tcompared_steps"
          "\tpeak_cache_bytes\tfull_cache_bytes\tbookkeeping_frac\treplay_recall\treplay_out_err\n", f);
    for (int i = 0; i < res->n_traces; i++) {
        const ikv_sim_trace_result *t = &res->traces[i];
        for (int k = 0; k < t->n_live; k++) {
            const ikv_sim_live *lv = &t->live[k];
            fprintf(f, "%s\t%s\t%s\t%s\t%s", t->name, lv->scenario, lv->policy, lv->params, lv->budget);
            put(f, lv->mean_kl);
            put(f, lv->agreement);
            fprintf(f, "\t%d\t%d\t%.0f\t%.0f", lv->divergence, lv->compared, lv->peak_cache_bytes,
                    lv->full_cache_bytes);
            double total = lv->bookkeeping_s + lv->forward_s;
            put(f, total > 0 ? lv->bookkeeping_s / total : NAN);
            if (lv->job >= 0 && !t->skipped[lv->job]) {
                totals s = job_totals(t, lv->job);
                put(f, mean(s.recall, s.n_pairs));
                put(f, mean(s.err, s.n_pairs));
            } else {
                fputs("\tnan\tnan", f);
            }
            fputc('\n', f);
        }
    }
    return 0;
}

/* Rank agreement across policies between closed-loop KL and open-loop
 * output error, per trace, scenario and budget. */
static int write_rank(FILE *f, const ikv_sim_results *res)
{
    fputs("trace\tscenario\tbudget\tpolicies\tspearman_kl_vs_out_err\tspearman_kl_vs_recall_loss\n", f);
    for (int i = 0; i < res->n_traces; i++) {
        const ikv_sim_trace_result *t = &res->traces[i];
        uint8_t *done = calloc((size_t)(t->n_live ? t->n_live : 1), 1);
        double *kl = malloc((size_t)(t->n_live ? t->n_live : 1) * sizeof *kl);
        double *er = malloc((size_t)(t->n_live ? t->n_live : 1) * sizeof *er);
        double *loss = malloc((size_t)(t->n_live ? t->n_live : 1) * sizeof *loss);
        if (!done || !kl || !er || !loss) {
            free(done); free(kl); free(er); free(loss);
            return -1;
        }
        for (int a = 0; a < t->n_live; a++) {
            if (done[a])
                continue;
            int n = 0;
            for (int b = a; b < t->n_live; b++) {
                const ikv_sim_live *x = &t->live[a], *y = &t->live[b];
                if (done[b] || strcmp(x->scenario, y->scenario) || strcmp(x->budget, y->budget))
                    continue;
                done[b] = 1;
                if (y->job < 0 || t->skipped[y->job] || strcmp(y->policy, "full") == 0)
                    continue;
                totals s = job_totals(t, y->job);
                kl[n] = y->mean_kl;
                er[n] = mean(s.err, s.n_pairs);
                loss[n] = 1.0 - mean(s.recall, s.n_pairs);
                n++;
            }
            fprintf(f, "%s\t%s\t%s\t%d", t->name, t->live[a].scenario, t->live[a].budget, n);
            put(f, spearman(kl, er, n));
            put(f, spearman(kl, loss, n));
            fputc('\n', f);
        }
        free(done); free(kl); free(er); free(loss);
    }
    return 0;
}

/* Exact influence probes next to the first-order estimate: by distance
 * bucket, and their rank correlation over (token, later position) pairs. */
static int write_probes(FILE *f, const ikv_sim_results *res)
{
    fputs("trace\tset\tpairs\tspearman\tpearson_log\n", f);
    for (int i = 0; i < res->n_traces; i++) {
        const ikv_sim_trace_result *t = &res->traces[i];
        if (t->n_probes == 0)
            continue;
        size_t cap = (size_t)t->n_probes * (size_t)t->T;
        double *a = malloc(cap * sizeof *a), *b = malloc(cap * sizeof *b);
        if (!a || !b) {
            free(a);
            free(b);
            return -1;
        }
        for (int set = -1; set < 3; set++) {
            int n = 0;
            for (int p = 0; p < t->n_probes; p++) {
                if (set >= 0 && t->probe_set[p] != set)
                    continue;
                for (int q = t->probe_pos[p] + 1; q < t->T; q++) {
                    float e = t->probe_kl[(size_t)p * (size_t)t->T + (size_t)q];
                    double fo = t->probe_fo[(size_t)p * (size_t)t->T + (size_t)q];
                    if (isnan(e) || !(fo > 0.0))
                        continue;
                    a[n] = e;
                    b[n] = fo;
                    n++;
                }
            }
            if (n == 0)
                continue;
            double rho = spearman(a, b, n);
            for (int k = 0; k < n; k++) {
                a[k] = log(a[k] > 1e-12 ? a[k] : 1e-12);
                b[k] = log(b[k]);
            }
            fprintf(f, "%s\t%s\t%d", t->name, set < 0 ? "all" : ikv_probe_set_names[set], n);
            put(f, rho);
            put(f, n >= 3 ? pearson(a, b, n) : NAN);
            fputc('\n', f);
        }
        free(a);
        free(b);
    }
    return 0;
}

static int write_sequence(FILE *f, const ikv_sim_results *res)
{
    fputs("trace\tposition\ttoken\tprompt\tentropy\tentropy_topk\treceived\tevolution\n", f);
    for (int i = 0; i < res->n_traces; i++) {
        const ikv_sim_trace_result *t = &res->traces[i];
        for (int p = 0; p < t->T; p++) {
            fprintf(f, "%s\t%d\t%d\t%d", t->name, p, t->tokens[p], p < t->P);
            put(f, t->entropy[p]);
            put(f, t->entropy_topk[p]);
            put(f, t->received[p]);
            put(f, t->evolution[p]);
            fputc('\n', f);
        }
    }
    return 0;
}

static int write_traces(FILE *f, const ikv_sim_results *res)
{
    fputs("trace\tpath\tmodel\tpositions\tprompt\tquery_heads\tkv_heads\thead_dim\tlayers\n", f);
    for (int i = 0; i < res->n_traces; i++) {
        const ikv_sim_trace_result *t = &res->traces[i];
        fprintf(f, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t", t->name, t->path, t->model[0] ? t->model : "-",
                t->T, t->P, t->H, t->G, t->d);
        for (int li = 0; li < t->n_layers; li++)
            fprintf(f, "%s%d", li ? "," : "", t->layers[li]);
        fputc('\n', f);
    }
    return 0;
}

int ikv_sim_write_tables(const ikv_sim_results *res, const char *outdir, char *err, size_t errlen)
{
    static const struct {
        const char *name;
        writer_fn fn;
    } files[] = {
        {"traces.tsv", write_traces},     {"sequence.tsv", write_sequence},
        {"live.tsv", write_live},         {"rank_agreement.tsv", write_rank},
        {"influence_compare.tsv", write_probes},
        {"influence.tsv", write_influence}, {"per_step.tsv", write_per_step},
        {"per_layer.tsv", write_per_layer}, {"summary.tsv", write_summary},
    };
    enum { N_FILES = sizeof files / sizeof *files };
    char path[4096];
    for (size_t i = 0; i < N_FILES; i++)
        if (snprintf(path, sizeof path, "%s/%s", outdir, files[i].name) >= (int)sizeof path) {
            snprintf(err, errlen, "%s: path too long", outdir);
            return -1;
        }
    /* summary.tsv, written last, marks a finished run: an older run's must
     * not stand beside tables this one fails to finish, and after a
     * failure none of this run's tables stays to be taken for a result */
    snprintf(path, sizeof path, "%s/%s", outdir, files[N_FILES - 1].name);
    unlink(path);
    for (size_t i = 0; i < N_FILES; i++) {
        snprintf(path, sizeof path, "%s/%s", outdir, files[i].name);
        ikv_outfile out;
        int failed = ikv_outfile_open(&out, path, err, errlen) != 0;
        if (!failed) {
            files[i].fn(out.fp, res);
            failed = ikv_outfile_commit(&out, err, errlen) != 0;
        }
        if (failed) {
            for (size_t j = 0; j < N_FILES; j++) {
                snprintf(path, sizeof path, "%s/%s", outdir, files[j].name);
                unlink(path);
            }
            return -1;
        }
    }
    return 0;
}
