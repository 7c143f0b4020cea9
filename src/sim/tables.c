#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

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
            double r = 0, e = 0, o = 0, k = 0;
            int n = 0, no = 0;
            for (int i = 0; i < res->n_traces; i++) {
                const ikv_sim_trace_result *t = &res->traces[i];
                if (t->skipped[j])
                    continue;
                totals s = job_totals(t, j);
                r += mean(s.recall, s.n_pairs);
                e += mean(s.err, s.n_pairs);
                k += kept_fraction(t, &s);
                if (s.n_overlap > 0) {
                    o += mean(s.overlap, s.n_overlap);
                    no++;
                }
                n++;
            }
            fputs("ALL", f);
            job_columns(f, &jobs->jobs[j]);
            fputs("\t-", f);
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
        {"influence.tsv", write_influence}, {"per_step.tsv", write_per_step},
        {"per_layer.tsv", write_per_layer}, {"summary.tsv", write_summary},
    };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char path[4096];
        if (snprintf(path, sizeof path, "%s/%s", outdir, files[i].name) >= (int)sizeof path) {
            snprintf(err, errlen, "%s: path too long", outdir);
            return -1;
        }
        ikv_outfile out;
        if (ikv_outfile_open(&out, path, err, errlen) != 0)
            return -1;
        files[i].fn(out.fp, res);
        if (ikv_outfile_commit(&out, err, errlen) != 0)
            return -1;
    }
    return 0;
}
