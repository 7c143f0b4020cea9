/*
 * infokv-inspect: what a trace holds (model, lengths, datasets with their
 * storage and compression), entropy and attention statistics, and with
 * --check a validation of the schema and of the values.
 */
#include "config.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/common.h"
#include "cli/inspect.h"
#include "trace/trace.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: %s [OPTIONS] TRACE\n"
            "Summarise an infokv HDF5 trace: model, lengths, datasets with their stored and\n"
            "logical sizes, entropy and attention statistics.\n"
            "\n"
            "  -c, --check     also validate it: schema, shapes, finite values, attention\n"
            "                  rows summing to 1, lse/probs/out consistent with q and k\n"
            "  -j, --json      print the summary (and check results) as JSON\n"
            "  -h, --help      show this help\n"
            "  -V, --version   show the version\n"
            "\n"
            "Exit status: 0 ok, 1 runtime failure, 2 bad usage or a bad, foreign,\n"
            "truncated or (with --check) invalid trace.\n",
            ikv_cli_program());
}

/* ---- text output ---- */

static void human_bytes(char *buf, size_t len, double bytes)
{
    static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024.0 && u < 4) {
        bytes /= 1024.0;
        u++;
    }
    snprintf(buf, len, u == 0 ? "%.0f %s" : "%.1f %s", bytes, unit[u]);
}

static void dims_text(char *buf, size_t len, const int64_t *dims, int rank)
{
    size_t off = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < rank && i < IKV_TRACE_MAX_RANK && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%lld", i ? "," : "", (long long)dims[i]);
    if (off < len)
        snprintf(buf + off, len - off, "]");
}

typedef struct listing {
    ikv_trace_dataset_info *items;
    int n, cap;
} listing;

static int collect(const ikv_trace_dataset_info *info, void *ctx)
{
    listing *l = ctx;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 32;
        void *p = realloc(l->items, sizeof *l->items * (size_t)cap);
        if (!p)
            return 1;
        l->items = p;
        l->cap = cap;
    }
    l->items[l->n++] = *info;
    return 0;
}

static double ratio(int64_t logical, int64_t stored)
{
    return stored > 0 ? (double)logical / (double)stored : 0.0;
}

static void print_stat(const char *label, const ikv_range_stat *s, const char *unit)
{
    printf("  %-22s mean %.4g, min %.4g, max %.4g%s%s (%lld values)\n", label, s->mean, s->min,
           s->max, unit[0] ? " " : "", unit, (long long)s->n);
}

static void print_text(ikv_trace_reader *r, const listing *l, const ikv_inspect_stats *st,
                       const ikv_inspect_findings *f, int check)
{
    const ikv_trace_meta *m = ikv_trace_meta_of(r);
    const ikv_trace_spec *s = ikv_trace_spec_of(r);
    printf("trace      %s\n", ikv_trace_path(r));
    printf("model      %s (%s): %d layers, %d heads, %d KV heads, head dim %d, dim %d, "
           "hidden %d, vocab %d, rope theta %g, norm eps %g\n",
           m->model_name[0] ? m->model_name : "?", m->arch[0] ? m->arch : "?", m->n_layers,
           m->n_heads, m->n_kv_heads, m->head_dim, m->dim, m->hidden_dim, m->vocab_size,
           m->rope_theta, m->norm_eps);
    int gen = m->n_tokens > m->n_prompt ? m->n_tokens - m->n_prompt : 0;
    printf("positions  %d (prompt %d, generated %d), %s\n", m->n_tokens, m->n_prompt, gen,
           m->complete ? "complete" : "INCOMPLETE (interrupted run: positions written so far)");
    printf("layers     ");
    if (s->n_layers == m->n_layers) {
        printf("all %d\n", m->n_layers);
    } else {
        for (int i = 0; i < s->n_layers; i++)
            printf("%s%d", i ? "," : "", s->layers[i]);
        printf(" (%d of %d)\n", s->n_layers, m->n_layers);
    }
    printf("dtype      %s (q/k/v, attn/out, attn/probs, hidden/states, logits/full)\n",
           s->dtype == IKV_TRACE_F16 ? "f16" : "f32");
    printf("producer   %s, created %s\n", m->producer[0] ? m->producer : "?",
           m->created[0] ? m->created : "?");
    if (m->model_sha256[0])
        printf("model sha  %s\n", m->model_sha256);
    if (m->command[0])
        printf("command    %s\n", m->command);

    printf("\n  %-33s %-18s %-5s %-16s %10s %10s %6s\n", "dataset", "shape", "type", "chunk",
           "logical", "stored", "ratio");
    int64_t tl = 0, ts = 0;
    for (int i = 0; i < l->n; i++) {
        const ikv_trace_dataset_info *d = &l->items[i];
        char shape[64], chunk[64], lb[32], sb[32];
        dims_text(shape, sizeof shape, d->dims, d->rank);
        if (d->chunk[0])
            dims_text(chunk, sizeof chunk, d->chunk, d->rank);
        else
            snprintf(chunk, sizeof chunk, "contiguous");
        human_bytes(lb, sizeof lb, (double)d->logical_bytes);
        human_bytes(sb, sizeof sb, (double)d->stored_bytes);
        printf("  %-33s %-18s %-5s %-16s %10s %10s %6.2f\n", d->path, shape, d->type, chunk, lb, sb,
               ratio(d->logical_bytes, d->stored_bytes));
        tl += d->logical_bytes;
        ts += d->stored_bytes;
    }
    char lb[32], sb[32];
    human_bytes(lb, sizeof lb, (double)tl);
    human_bytes(sb, sizeof sb, (double)ts);
    printf("  %-33s %-18s %-5s %-16s %10s %10s %6.2f\n", "total", "", "", "", lb, sb, ratio(tl, ts));

    printf("\nstatistics\n");
    if (st->entropy.n)
        print_stat("entropy", &st->entropy, "nats");
    if (st->entropy_topk.n) {
        char label[32];
        snprintf(label, sizeof label, "entropy (top-%d)", st->entropy_k);
        print_stat(label, &st->entropy_topk, "nats");
    }
    if (st->logprob.n) {
        print_stat("log p(token)", &st->logprob, "nats");
        printf("  %-22s %.4g\n", "perplexity", exp(-st->logprob.mean));
    }
    if (st->evolution.n) {
        print_stat("evolution (1 - cos)", &st->evolution, "");
        printf("  %-22s", "  per stored layer");
        for (int i = 0; i < s->n_layers; i++)
            printf(" %.3g", st->evolution_per_layer[i]);
        printf("\n");
    }
    if (st->attn_source) {
        printf("  attention (from %s, rows t >= 1)\n", st->attn_source);
        if (st->first_token.n)
            print_stat("  on the first token", &st->first_token, "");
        if (st->row_entropy.n)
            print_stat(st->row_entropy_sampled ? "  row entropy (sampled)" : "  row entropy",
                       &st->row_entropy, "nats");
    }
    for (int i = 0; i < f->n_notes && i < IKV_INSPECT_KEEP; i++)
        printf("  note: %s\n", f->notes[i]);
    if (check) {
        printf("\ncheck\n");
        for (int i = 0; i < f->n_passed && i < IKV_INSPECT_KEEP; i++)
            printf("  ok    %s\n", f->passed[i]);
        for (int i = 0; i < f->n_problems && i < IKV_INSPECT_KEEP; i++)
            printf("  FAIL  %s\n", f->problems[i]);
        if (f->n_problems > IKV_INSPECT_KEEP)
            printf("  FAIL  ... and %d more\n", f->n_problems - IKV_INSPECT_KEEP);
        printf("  %s\n", f->n_problems ? "result: INVALID" : "result: valid");
    }
}

/* ---- JSON output ---- */

static void json_string(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p == '\n')
            printf("\\n");
        else if (*p == '\t')
            printf("\\t");
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

static void json_number(double x)
{
    if (isfinite(x))
        printf("%.9g", x);
    else
        printf("null");
}

static void json_dims(const int64_t *dims, int rank)
{
    putchar('[');
    for (int i = 0; i < rank && i < IKV_TRACE_MAX_RANK; i++)
        printf("%s%lld", i ? ", " : "", (long long)dims[i]);
    putchar(']');
}

static void json_stat(const char *name, const ikv_range_stat *s, int comma)
{
    printf("    ");
    json_string(name);
    if (!s->n) {
        printf(": null%s\n", comma ? "," : "");
        return;
    }
    printf(": {\"n\": %lld, \"mean\": ", (long long)s->n);
    json_number(s->mean);
    printf(", \"min\": ");
    json_number(s->min);
    printf(", \"max\": ");
    json_number(s->max);
    printf("}%s\n", comma ? "," : "");
}

static void json_lines(const char *name, char lines[][256], int n, int comma)
{
    printf("    ");
    json_string(name);
    printf(": [");
    for (int i = 0; i < n && i < IKV_INSPECT_KEEP; i++) {
        if (i)
            printf(", ");
        json_string(lines[i]);
    }
    printf("]%s\n", comma ? "," : "");
}

static void print_json(ikv_trace_reader *r, const listing *l, const ikv_inspect_stats *st,
                       ikv_inspect_findings *f, int check)
{
    const ikv_trace_meta *m = ikv_trace_meta_of(r);
    const ikv_trace_spec *s = ikv_trace_spec_of(r);
    printf("{\n  \"path\": ");
    json_string(ikv_trace_path(r));
    printf(",\n  \"format\": \"%s\", \"version\": %d,\n", IKV_TRACE_FORMAT, IKV_TRACE_VERSION);
    printf("  \"model\": {\"name\": ");
    json_string(m->model_name);
    printf(", \"arch\": ");
    json_string(m->arch);
    printf(", \"n_layers\": %d, \"n_heads\": %d, \"n_kv_heads\": %d, \"head_dim\": %d, "
           "\"dim\": %d, \"hidden_dim\": %d, \"vocab_size\": %d, \"rope_theta\": ",
           m->n_layers, m->n_heads, m->n_kv_heads, m->head_dim, m->dim, m->hidden_dim,
           m->vocab_size);
    json_number(m->rope_theta);
    printf(", \"norm_eps\": ");
    json_number(m->norm_eps);
    printf(", \"sha256\": ");
    json_string(m->model_sha256);
    printf("},\n  \"n_tokens\": %d, \"n_prompt\": %d, \"complete\": %s,\n", m->n_tokens,
           m->n_prompt, m->complete ? "true" : "false");
    printf("  \"layers\": [");
    for (int i = 0; i < s->n_layers; i++)
        printf("%s%d", i ? ", " : "", s->layers[i]);
    printf("],\n  \"dtype\": \"%s\", \"topk\": %d, \"entropy_k\": %d,\n",
           s->dtype == IKV_TRACE_F16 ? "f16" : "f32", s->topk, s->entropy_k);
    printf("  \"producer\": ");
    json_string(m->producer);
    printf(", \"created\": ");
    json_string(m->created);
    printf(",\n  \"command\": ");
    json_string(m->command);
    printf(",\n  \"datasets\": [\n");
    for (int i = 0; i < l->n; i++) {
        const ikv_trace_dataset_info *d = &l->items[i];
        printf("    {\"path\": ");
        json_string(d->path);
        printf(", \"shape\": ");
        json_dims(d->dims, d->rank);
        printf(", \"type\": \"%s\", \"chunk\": ", d->type);
        if (d->chunk[0])
            json_dims(d->chunk, d->rank);
        else
            printf("null");
        printf(", \"logical_bytes\": %lld, \"stored_bytes\": %lld, \"ratio\": ",
               (long long)d->logical_bytes, (long long)d->stored_bytes);
        json_number(ratio(d->logical_bytes, d->stored_bytes));
        printf(", \"compressed\": %s}%s\n", d->compressed ? "true" : "false",
               i + 1 < l->n ? "," : "");
    }
    printf("  ],\n  \"statistics\": {\n");
    json_stat("entropy", &st->entropy, 1);
    json_stat("entropy_topk", &st->entropy_topk, 1);
    json_stat("logprob", &st->logprob, 1);
    json_stat("evolution", &st->evolution, 1);
    printf("    \"attention_source\": ");
    if (st->attn_source)
        json_string(st->attn_source);
    else
        printf("null");
    printf(",\n");
    json_stat("attention_first_token", &st->first_token, 1);
    json_stat("attention_row_entropy", &st->row_entropy, 1);
    json_lines("notes", f->notes, f->n_notes, 0);
    printf("  }");
    if (check) {
        printf(",\n  \"check\": {\n    \"valid\": %s, \"n_problems\": %d,\n",
               f->n_problems ? "false" : "true", f->n_problems);
        json_lines("problems", f->problems, f->n_problems, 1);
        json_lines("passed", f->passed, f->n_passed, 0);
        printf("  }");
    }
    printf("\n}\n");
}

int main(int argc, char **argv)
{
    ikv_cli_init(argv[0]);
    static const struct option opts[] = {{"check", no_argument, NULL, 'c'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    int check = 0, json = 0, c;
    while ((c = getopt_long(argc, argv, "cjhV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': check = 1; break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return IKV_EXIT_OK;
        case 'V': printf("%s (infokv) %s\n", ikv_cli_program(), PACKAGE_VERSION); return IKV_EXIT_OK;
        default: /* getopt has said what was wrong */
            fprintf(stderr, "%s: see --help for usage\n", ikv_cli_program());
            return IKV_EXIT_USAGE;
        }
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "%s: expected one trace file (see --help)\n", ikv_cli_program());
        return IKV_EXIT_USAGE;
    }
    const char *path = argv[optind];
    char err[1024];
    ikv_trace_reader *r;
    int rc = ikv_trace_open(&r, path, err, sizeof err);
    if (rc != IKV_TRACE_OK)
        ikv_die(rc == IKV_TRACE_ENOMEM ? IKV_EXIT_RUNTIME : IKV_EXIT_USAGE, "%s", err);

    listing l = {NULL, 0, 0};
    rc = ikv_trace_foreach_dataset(r, collect, &l);
    if (rc != 0) {
        snprintf(err, sizeof err, "%s", rc > 0 ? "out of memory" : ikv_trace_reader_error(r));
        ikv_trace_close(r);
        free(l.items);
        ikv_die(rc > 0 ? IKV_EXIT_RUNTIME : IKV_EXIT_USAGE, "%s", err);
    }
    ikv_inspect_stats st;
    ikv_inspect_findings *f = calloc(1, sizeof *f);
    if (!f)
        ikv_die(IKV_EXIT_RUNTIME, "out of memory");
    rc = ikv_inspect_analyse(r, check, &st, f, err, sizeof err);
    if (rc != IKV_TRACE_OK) {
        ikv_trace_close(r);
        ikv_inspect_stats_free(&st);
        free(l.items);
        free(f);
        /* Data that cannot be read is a bad file; memory is ours. */
        ikv_die(rc == IKV_TRACE_ENOMEM ? IKV_EXIT_RUNTIME : IKV_EXIT_USAGE, "%s", err);
    }
    if (json)
        print_json(r, &l, &st, f, check);
    else
        print_text(r, &l, &st, f, check);
    fflush(stdout);
    int status = IKV_EXIT_OK;
    if (check && f->n_problems) {
        fprintf(stderr, "%s: %s: check failed: %s%s\n", ikv_cli_program(), path, f->problems[0],
                f->n_problems > 1 ? " (and more, see the report)" : "");
        status = IKV_EXIT_USAGE;
    }
    ikv_trace_close(r);
    ikv_inspect_stats_free(&st);
    free(l.items);
    free(f);
    return status;
}
