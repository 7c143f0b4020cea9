/*
 * Statistics and value checks of infokv-inspect. Everything is read
 * through the trace reader one layer at a time; buffers are sized from
 * the shapes the reader validated (ikv_trace_read_bytes).
 *
 * Attention consistency is recomputed from q and k on a sample of rows
 * (all rows of short traces): scores s_j = q.k_j / sqrt(d) over keys
 * 0..t with kv_head = h / (H/G), lse = log sum exp s, p_j = exp(s_j - lse),
 * out = sum p_j v_j. Tolerances follow from the storage precision: with
 * q and k rounded to a relative eps each, a score moves by at most
 * E = 2 eps sum_i |q_i k_i| / sqrt(d), lse by E and p_j by p_j (e^{2E} - 1).
 */
#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/inspect.h"

#define SAMPLED_ROWS 64
#define MAX_LAYER_BYTES ((size_t)1 << 30) /* skip attn/probs layers above 1 GiB */
#define LOGIT_BLOCK 64

typedef struct ctx {
    ikv_trace_reader *r;
    const ikv_trace_meta *m;
    const ikv_trace_spec *s;
    int64_t T;
    int L, H, G, d, V;
    int check;
    double eps;   /* relative rounding of the big tensors */
    ikv_inspect_stats *st;
    ikv_inspect_findings *f;
    char *err;
    size_t errlen;
} ctx;

static void add_line(char lines[][256], int *n, const char *fmt, va_list ap)
{
    if (*n < IKV_INSPECT_KEEP)
        vsnprintf(lines[*n], 256, fmt, ap);
    (*n)++;
}

static void problem(ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_line(c->f->problems, &c->f->n_problems, fmt, ap);
    va_end(ap);
}

static void note(ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_line(c->f->notes, &c->f->n_notes, fmt, ap);
    va_end(ap);
}

static void passed(ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_line(c->f->passed, &c->f->n_passed, fmt, ap);
    va_end(ap);
}

static void stat_add(ikv_range_stat *s, double x)
{
    if (s->n == 0) {
        s->min = s->max = x;
        s->mean = 0;
    }
    s->n++;
    s->mean += (x - s->mean) / (double)s->n;
    if (x < s->min)
        s->min = x;
    if (x > s->max)
        s->max = x;
}

static int read_failed(ctx *c, int rc)
{
    snprintf(c->err, c->errlen, "%s", ikv_trace_reader_error(c->r));
    return rc;
}

static void *alloc_for(ctx *c, const char *path, size_t *bytes)
{
    *bytes = ikv_trace_read_bytes(c->r, path);
    void *p = malloc(*bytes ? *bytes : 1);
    if (!p)
        snprintf(c->err, c->errlen, "%s: out of memory for %zu bytes of %s",
                 ikv_trace_path(c->r), *bytes, path);
    return p;
}

/* Counts non-finite values; reports the first. Returns the count. */
static int64_t check_finite(ctx *c, const char *what, int slot, const float *x, size_t n)
{
    int64_t bad = 0;
    size_t first = 0;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]) && bad++ == 0)
            first = i;
    if (bad) {
        if (slot >= 0)
            problem(c, "%s layer slot %d: %lld non-finite values (first at flat index %zu)", what,
                    slot, (long long)bad, first);
        else
            problem(c, "%s: %lld non-finite values (first at flat index %zu)", what,
                    (long long)bad, first);
    }
    return bad;
}

/* ---- per-position signals ---- */

static int positions(ctx *c)
{
    int64_t T = c->T;
    size_t bytes;
    int32_t *tok = alloc_for(c, "tokens", &bytes);
    if (!tok)
        return IKV_TRACE_ENOMEM;
    int rc = ikv_trace_read_tokens(c->r, tok);
    if (rc != IKV_TRACE_OK) {
        free(tok);
        return read_failed(c, rc);
    }
    if (c->check) {
        int64_t bad = 0;
        for (int64_t t = 0; t < T; t++)
            bad += tok[t] < 0 || tok[t] >= c->V;
        if (bad)
            problem(c, "/tokens: %lld ids outside [0, vocab_size = %d)", (long long)bad, c->V);
        else
            passed(c, "/tokens: %lld ids in [0, %d)", (long long)T, c->V);
    }
    free(tok);

    float *x = malloc(sizeof(float) * (size_t)(T > 0 ? T : 1));
    if (!x)
        return IKV_TRACE_ENOMEM;
    for (int topk = 0; topk <= 1; topk++) {
        const char *path = topk ? "logits/entropy_topk" : "logits/entropy";
        if (!ikv_trace_has(c->r, path))
            continue;
        if ((rc = ikv_trace_read_entropy(c->r, topk, x)) != IKV_TRACE_OK) {
            free(x);
            return read_failed(c, rc);
        }
        ikv_range_stat *s = topk ? &c->st->entropy_topk : &c->st->entropy;
        double hi = log(topk ? (double)c->s->entropy_k : (double)c->V) + 1e-3;
        int64_t out_of_range = 0;
        for (int64_t t = 0; t < T; t++) {
            if (isfinite(x[t]))
                stat_add(s, x[t]);
            out_of_range += isfinite(x[t]) && (x[t] < -1e-4 || x[t] > hi);
        }
        if (c->check && !check_finite(c, path, -1, x, (size_t)T)) {
            if (out_of_range)
                problem(c, "/%s: %lld values outside [0, %.4g] nats", path,
                        (long long)out_of_range, hi);
            else
                passed(c, "/%s: finite, within [0, log %s]", path, topk ? "k" : "V");
        }
    }
    c->st->entropy_k = c->s->entropy_k;

    if (ikv_trace_has(c->r, "logits/logprob")) {
        if ((rc = ikv_trace_read_logprob(c->r, x)) != IKV_TRACE_OK) {
            free(x);
            return read_failed(c, rc);
        }
        int64_t bad = 0;
        for (int64_t t = 1; t < T; t++) {
            if (isfinite(x[t]))
                stat_add(&c->st->logprob, x[t]);
            bad += !isfinite(x[t]) || x[t] > 1e-4;
        }
        if (c->check) {
            int first_ok = T == 0 || isnan(x[0]);
            if (!first_ok)
                problem(c, "/logits/logprob: position 0 should be NaN (no previous token), is %g",
                        (double)x[0]);
            if (bad)
                problem(c, "/logits/logprob: %lld values not finite or above 0", (long long)bad);
            if (first_ok && !bad)
                passed(c, "/logits/logprob: NaN at 0, finite and <= 0 after");
        }
    }
    free(x);

    if (c->check && ikv_trace_has(c->r, "logits/topk_ids") &&
        ikv_trace_has(c->r, "logits/topk_logprobs")) {
        int K = c->s->topk;
        int32_t *ids = malloc(sizeof(int32_t) * (size_t)(T * K > 0 ? T * K : 1));
        float *lp = malloc(sizeof(float) * (size_t)(T * K > 0 ? T * K : 1));
        if (!ids || !lp) {
            free(ids);
            free(lp);
            return IKV_TRACE_ENOMEM;
        }
        if ((rc = ikv_trace_read_topk(c->r, ids, lp)) != IKV_TRACE_OK) {
            free(ids);
            free(lp);
            return read_failed(c, rc);
        }
        int64_t bad_id = 0, bad_lp = 0, unsorted = 0;
        for (int64_t t = 0; t < T; t++)
            for (int i = 0; i < K; i++) {
                size_t o = (size_t)t * (size_t)K + (size_t)i;
                bad_id += ids[o] < 0 || ids[o] >= c->V;
                bad_lp += !isfinite(lp[o]) || lp[o] > 1e-4;
                unsorted += i > 0 && lp[o] > lp[o - 1] + 1e-5f;
            }
        if (bad_id)
            problem(c, "/logits/topk_ids: %lld ids outside [0, %d)", (long long)bad_id, c->V);
        if (bad_lp)
            problem(c, "/logits/topk_logprobs: %lld values not finite or above 0", (long long)bad_lp);
        if (unsorted)
            problem(c, "/logits/topk_logprobs: %lld entries larger than the one before "
                       "(not most probable first)", (long long)unsorted);
        if (!bad_id && !bad_lp && !unsorted)
            passed(c, "/logits/topk_*: ids in range, log probabilities <= 0, descending");
        free(ids);
        free(lp);
    }

    if (ikv_trace_has(c->r, "hidden/evolution")) {
        size_t n = (size_t)c->L * (size_t)T;
        float *e = malloc(sizeof(float) * (n ? n : 1));
        c->st->evolution_per_layer = calloc((size_t)c->L, sizeof(double));
        if (!e || !c->st->evolution_per_layer) {
            free(e);
            return IKV_TRACE_ENOMEM;
        }
        if ((rc = ikv_trace_read_evolution(c->r, e)) != IKV_TRACE_OK) {
            free(e);
            return read_failed(c, rc);
        }
        int64_t out_of_range = 0;
        for (int l = 0; l < c->L; l++) {
            ikv_range_stat layer = {0, 0, 0, 0};
            for (int64_t t = 0; t < T; t++) {
                float v = e[(size_t)l * (size_t)T + (size_t)t];
                if (!isfinite(v))
                    continue;
                stat_add(&layer, v);
                stat_add(&c->st->evolution, v);
                out_of_range += v < -1e-4 || v > 2.0 + 1e-4;
            }
            c->st->evolution_per_layer[l] = layer.n ? layer.mean : NAN;
        }
        if (c->check && !check_finite(c, "/hidden/evolution", -1, e, n)) {
            if (out_of_range)
                problem(c, "/hidden/evolution: %lld values outside [0, 2] (1 - cosine)",
                        (long long)out_of_range);
            else
                passed(c, "/hidden/evolution: finite, within [0, 2]");
        }
        free(e);
    }
    return IKV_TRACE_OK;
}

/* ---- attention ---- */

typedef struct layer_bufs {
    float *q, *k, *v, *lse, *out, *probs;
    double *scores;  /* [T] */
    double *bound;   /* [T] */
} layer_bufs;

typedef struct attn_tally {
    int64_t rows, bad_sum, bad_range, bad_upper;
    double worst_sum;
    int64_t sampled, bad_lse, bad_p, bad_out;
    double worst_lse, worst_p, worst_out;
    int where_slot, where_head;
    int64_t where_row;
} attn_tally;

/* Sampled row i of n over [0, T). */
static int64_t sample_row(int64_t T, int i, int n)
{
    return n >= T ? i : (int64_t)i * (T - 1) / (n - 1);
}

/* Recomputes rows of head h from q/k (and checks lse, probs, out). */
static void recompute_head(ctx *c, const layer_bufs *b, int slot, int h, attn_tally *a,
                           int has_lse, int has_probs, int has_out)
{
    int64_t T = c->T;
    int d = c->d, g = h / (c->H / c->G);
    double inv = 1.0 / sqrt((double)d);
    int n = T < SAMPLED_ROWS ? (int)T : SAMPLED_ROWS;
    for (int i = 0; i < n; i++) {
        int64_t t = sample_row(T, i, n);
        const float *q = b->q + ((size_t)h * (size_t)T + (size_t)t) * (size_t)d;
        double m = -INFINITY;
        for (int64_t j = 0; j <= t; j++) {
            const float *k = b->k + ((size_t)g * (size_t)T + (size_t)j) * (size_t)d;
            double dot = 0, mag = 0;
            for (int e = 0; e < d; e++) {
                dot += (double)q[e] * k[e];
                mag += fabs((double)q[e] * k[e]);
            }
            b->scores[j] = dot * inv;
            b->bound[j] = 2.0 * c->eps * mag * inv;
            if (b->scores[j] > m)
                m = b->scores[j];
        }
        double sum = 0, E = 0;
        for (int64_t j = 0; j <= t; j++) {
            sum += exp(b->scores[j] - m);
            if (b->bound[j] > E)
                E = b->bound[j];
        }
        double lse = m + log(sum);
        if (!has_probs && t >= 1) {
            double ent = lse;
            for (int64_t j = 0; j <= t; j++)
                ent -= exp(b->scores[j] - lse) * b->scores[j];
            stat_add(&c->st->row_entropy, ent);
        }
        if (!c->check)
            continue;
        a->sampled++;
        double p_rel = expm1(2.0 * E) + 2.0 * c->eps;
        if (has_lse) {
            double stored = b->lse[(size_t)h * (size_t)T + (size_t)t];
            double dev = fabs(stored - lse);
            double tol = E + 1e-5 * (1.0 + fabs(lse));
            if (!(dev <= tol)) {
                a->bad_lse++;
                if (!(dev <= a->worst_lse))
                    a->worst_lse = dev;
                a->where_slot = slot, a->where_head = h, a->where_row = t;
            }
        }
        if (has_probs) {
            const float *row = b->probs + ((size_t)h * (size_t)T + (size_t)t) * (size_t)T;
            int bad = 0;
            for (int64_t j = 0; j <= t; j++) {
                double p = exp(b->scores[j] - lse);
                double dev = fabs(row[j] - p);
                if (!(dev <= p * p_rel + 1e-6)) {
                    bad = 1;
                    if (!(dev <= a->worst_p))
                        a->worst_p = dev;
                }
            }
            if (bad) {
                a->bad_p++;
                a->where_slot = slot, a->where_head = h, a->where_row = t;
            }
        }
        if (has_out) {
            const float *o = b->out + ((size_t)h * (size_t)T + (size_t)t) * (size_t)d;
            int bad = 0;
            for (int e = 0; e < d; e++) {
                double acc = 0, mass = 0;
                for (int64_t j = 0; j <= t; j++) {
                    double p = exp(b->scores[j] - lse);
                    double v = b->v[((size_t)g * (size_t)T + (size_t)j) * (size_t)d + (size_t)e];
                    acc += p * v;
                    mass += p * fabs(v);
                }
                double dev = fabs(o[e] - acc);
                double tol = mass * (p_rel + c->eps) + c->eps * fabs(acc) + 1e-6;
                if (!(dev <= tol)) {
                    bad = 1;
                    if (!(dev <= a->worst_out))
                        a->worst_out = dev;
                }
            }
            if (bad) {
                a->bad_out++;
                a->where_slot = slot, a->where_head = h, a->where_row = t;
            }
        }
    }
}

/* Dense attention rows: sums, range, zeros above the diagonal; stats. */
static void probs_rows(ctx *c, const layer_bufs *b, attn_tally *a)
{
    int64_t T = c->T;
    double tol_sum = 1e-4 + (double)T * 0x1p-23 + (c->eps > 1e-4 ? 0x1p-10 + (double)T * 0x1p-24 : 0);
    for (int h = 0; h < c->H; h++)
        for (int64_t t = 0; t < T; t++) {
            const float *row = b->probs + ((size_t)h * (size_t)T + (size_t)t) * (size_t)T;
            double sum = 0, ent = 0;
            for (int64_t j = 0; j <= t; j++) {
                double p = row[j];
                sum += p;
                if (p > 0)
                    ent -= p * log(p);
                a->bad_range += !(p >= -1e-6 && p <= 1.0 + 1e-3);
            }
            for (int64_t j = t + 1; j < T; j++)
                a->bad_upper += row[j] != 0.0f;
            a->rows++;
            double dev = fabs(sum - 1.0);
            if (!(dev <= tol_sum)) {
                a->bad_sum++;
                if (!(dev <= a->worst_sum))
                    a->worst_sum = dev;
            }
            if (t >= 1) {
                stat_add(&c->st->first_token, row[0]);
                stat_add(&c->st->row_entropy, ent);
            }
        }
}

/* Attention on position 0 from q, k and lse, without dense rows. */
static void first_token_from_lse(ctx *c, const layer_bufs *b)
{
    int64_t T = c->T;
    int d = c->d;
    double inv = 1.0 / sqrt((double)d);
    for (int h = 0; h < c->H; h++) {
        int g = h / (c->H / c->G);
        const float *k0 = b->k + (size_t)g * (size_t)T * (size_t)d;
        for (int64_t t = 1; t < T; t++) {
            const float *q = b->q + ((size_t)h * (size_t)T + (size_t)t) * (size_t)d;
            double dot = 0;
            for (int e = 0; e < d; e++)
                dot += (double)q[e] * k0[e];
            double p = exp(dot * inv - b->lse[(size_t)h * (size_t)T + (size_t)t]);
            if (isfinite(p))
                stat_add(&c->st->first_token, p);
        }
    }
}

static int read_layer(ctx *c, const char *path, int slot, float *buf)
{
    int rc = ikv_trace_read_layer(c->r, path, slot, buf);
    return rc == IKV_TRACE_OK ? rc : read_failed(c, rc);
}

static int attention(ctx *c)
{
    int has_q = ikv_trace_has(c->r, "qkv/q"), has_k = ikv_trace_has(c->r, "qkv/k");
    int has_v = ikv_trace_has(c->r, "qkv/v"), has_lse = ikv_trace_has(c->r, "attn/lse");
    int has_out = ikv_trace_has(c->r, "attn/out"), has_probs = ikv_trace_has(c->r, "attn/probs");
    if (has_probs && ikv_trace_read_bytes(c->r, "attn/probs") > MAX_LAYER_BYTES) {
        note(c, "/attn/probs: layers larger than 1 GiB are not examined");
        has_probs = 0;
    }
    int qk = has_q && has_k;
    if (!qk && !has_probs && !(c->check && (has_v || has_lse || has_out)))
        return IKV_TRACE_OK;
    layer_bufs b;
    memset(&b, 0, sizeof b);
    size_t n_q = 0, n_k = 0, n_v = 0, n_lse = 0, n_out = 0, n_p = 0;
    int rc = IKV_TRACE_OK;
    if ((has_q && !(b.q = alloc_for(c, "qkv/q", &n_q))) ||
        (has_k && !(b.k = alloc_for(c, "qkv/k", &n_k))) ||
        (has_v && !(b.v = alloc_for(c, "qkv/v", &n_v))) ||
        (has_lse && !(b.lse = alloc_for(c, "attn/lse", &n_lse))) ||
        (has_out && !(b.out = alloc_for(c, "attn/out", &n_out))) ||
        (has_probs && !(b.probs = alloc_for(c, "attn/probs", &n_p))) ||
        !(b.scores = malloc(sizeof(double) * (size_t)(c->T + 1))) ||
        !(b.bound = malloc(sizeof(double) * (size_t)(c->T + 1))))
        rc = IKV_TRACE_ENOMEM;
    attn_tally a;
    memset(&a, 0, sizeof a);
    int64_t nonfinite = 0;
    for (int slot = 0; slot < c->L && rc == IKV_TRACE_OK; slot++) {
        if ((has_q && (rc = read_layer(c, "qkv/q", slot, b.q))) ||
            (has_k && (rc = read_layer(c, "qkv/k", slot, b.k))) ||
            (has_v && (rc = read_layer(c, "qkv/v", slot, b.v))) ||
            (has_lse && (rc = read_layer(c, "attn/lse", slot, b.lse))) ||
            (has_out && (rc = read_layer(c, "attn/out", slot, b.out))) ||
            (has_probs && (rc = read_layer(c, "attn/probs", slot, b.probs))))
            break;
        if (c->check) {
            int64_t before = nonfinite;
            if (has_q) nonfinite += check_finite(c, "/qkv/q", slot, b.q, n_q / 4);
            if (has_k) nonfinite += check_finite(c, "/qkv/k", slot, b.k, n_k / 4);
            if (has_v) nonfinite += check_finite(c, "/qkv/v", slot, b.v, n_v / 4);
            if (has_lse) nonfinite += check_finite(c, "/attn/lse", slot, b.lse, n_lse / 4);
            if (has_out) nonfinite += check_finite(c, "/attn/out", slot, b.out, n_out / 4);
            if (has_probs) nonfinite += check_finite(c, "/attn/probs", slot, b.probs, n_p / 4);
            if (nonfinite > before)
                continue; /* recomputing from broken inputs would only repeat it */
        }
        if (has_probs)
            probs_rows(c, &b, &a);
        else if (qk && has_lse)
            first_token_from_lse(c, &b);
        if (qk && (c->check || !has_probs))
            for (int h = 0; h < c->H; h++)
                recompute_head(c, &b, slot, h, &a, has_lse, has_probs, has_out && has_v);
    }
    if (rc == IKV_TRACE_OK) {
        c->st->attn_source = has_probs ? "attn/probs" : qk && has_lse ? "q/k/lse" : qk ? "q/k" : NULL;
        c->st->row_entropy_sampled = !has_probs && c->T > SAMPLED_ROWS;
    }
    if (rc == IKV_TRACE_OK && c->check) {
        if (!nonfinite && (has_q || has_k || has_v || has_lse || has_out || has_probs))
            passed(c, "q/k/v, attn/lse, attn/out, attn/probs (those present): all values finite");
        if (has_probs) {
            if (a.bad_sum)
                problem(c, "/attn/probs: %lld of %lld rows do not sum to 1 (worst |sum - 1| = %.3g)",
                        (long long)a.bad_sum, (long long)a.rows, a.worst_sum);
            if (a.bad_range)
                problem(c, "/attn/probs: %lld values outside [0, 1]", (long long)a.bad_range);
            if (a.bad_upper)
                problem(c, "/attn/probs: %lld nonzero values above the diagonal (keys after the query)",
                        (long long)a.bad_upper);
            if (!a.bad_sum && !a.bad_range && !a.bad_upper)
                passed(c, "/attn/probs: %lld rows sum to 1, causal, within [0, 1]", (long long)a.rows);
        }
        const char *where_fmt = "(last at layer slot %d, head %d, row %lld)";
        char where[96];
        snprintf(where, sizeof where, where_fmt, a.where_slot, a.where_head, (long long)a.where_row);
        if (qk && has_lse) {
            if (a.bad_lse)
                problem(c, "/attn/lse: %lld of %lld sampled rows differ from log-sum-exp of q.k/sqrt(d) "
                           "(worst by %.3g) %s", (long long)a.bad_lse, (long long)a.sampled,
                        a.worst_lse, where);
            else
                passed(c, "/attn/lse: matches q.k/sqrt(d) on %lld sampled rows", (long long)a.sampled);
        }
        if (qk && has_probs) {
            if (a.bad_p)
                problem(c, "/attn/probs: %lld of %lld sampled rows differ from softmax(q.k/sqrt(d)) "
                           "(worst by %.3g) %s", (long long)a.bad_p, (long long)a.sampled,
                        a.worst_p, where);
            else
                passed(c, "/attn/probs: matches softmax(q.k/sqrt(d)) and lse on %lld sampled rows",
                       (long long)a.sampled);
        }
        if (qk && has_out && has_v) {
            if (a.bad_out)
                problem(c, "/attn/out: %lld of %lld sampled rows differ from softmax . V "
                           "(worst by %.3g) %s", (long long)a.bad_out, (long long)a.sampled,
                        a.worst_out, where);
            else
                passed(c, "/attn/out: matches softmax(q.k/sqrt(d)) . V on %lld sampled rows",
                       (long long)a.sampled);
        }
    }
    free(b.q);
    free(b.k);
    free(b.v);
    free(b.lse);
    free(b.out);
    free(b.probs);
    free(b.scores);
    free(b.bound);
    if (rc == IKV_TRACE_ENOMEM && !c->err[0])
        snprintf(c->err, c->errlen, "%s: out of memory", ikv_trace_path(c->r));
    return rc;
}

/* ---- big optional arrays: finite values only ---- */

static int big_arrays(ctx *c)
{
    int rc = IKV_TRACE_OK;
    if (ikv_trace_has(c->r, "hidden/states")) {
        size_t bytes;
        float *x = alloc_for(c, "hidden/states", &bytes);
        if (!x)
            return IKV_TRACE_ENOMEM;
        int64_t bad = 0;
        for (int slot = 0; slot <= c->L && rc == IKV_TRACE_OK; slot++) {
            rc = ikv_trace_read_states(c->r, slot, 0, (int)c->T, x);
            if (rc == IKV_TRACE_OK)
                bad += check_finite(c, "/hidden/states", slot, x, bytes / 4);
        }
        free(x);
        if (rc != IKV_TRACE_OK)
            return read_failed(c, rc);
        if (!bad)
            passed(c, "/hidden/states: all values finite");
    }
    if (ikv_trace_has(c->r, "logits/full")) {
        float *x = malloc(sizeof(float) * (size_t)LOGIT_BLOCK * (size_t)c->V);
        if (!x)
            return IKV_TRACE_ENOMEM;
        int64_t bad = 0;
        for (int64_t t0 = 0; t0 < c->T && rc == IKV_TRACE_OK; t0 += LOGIT_BLOCK) {
            int n = (int)(c->T - t0 < LOGIT_BLOCK ? c->T - t0 : LOGIT_BLOCK);
            rc = ikv_trace_read_logits(c->r, (int)t0, n, x);
            if (rc == IKV_TRACE_OK)
                bad += check_finite(c, "/logits/full", -1, x, (size_t)n * (size_t)c->V);
        }
        free(x);
        if (rc != IKV_TRACE_OK)
            return read_failed(c, rc);
        if (!bad)
            passed(c, "/logits/full: all values finite");
    }
    return IKV_TRACE_OK;
}

void ikv_inspect_stats_free(ikv_inspect_stats *st)
{
    free(st->evolution_per_layer);
    st->evolution_per_layer = NULL;
}

int ikv_inspect_analyse(ikv_trace_reader *r, int check, ikv_inspect_stats *st,
                        ikv_inspect_findings *found, char *err, size_t errlen)
{
    memset(st, 0, sizeof *st);
    memset(found, 0, sizeof *found);
    err[0] = '\0';
    ctx c;
    memset(&c, 0, sizeof c);
    c.r = r;
    c.m = ikv_trace_meta_of(r);
    c.s = ikv_trace_spec_of(r);
    c.T = c.m->n_tokens;
    c.L = c.s->n_layers;
    c.H = c.m->n_heads;
    c.G = c.m->n_kv_heads;
    c.d = c.m->head_dim;
    c.V = c.m->vocab_size;
    c.check = check;
    /* Half an ulp of the stored big tensors, plus float32 arithmetic of
     * whoever computed them. */
    c.eps = c.s->dtype == IKV_TRACE_F16 ? 0x1p-11 + 1e-6 : 1e-6;
    c.st = st;
    c.f = found;
    c.err = err;
    c.errlen = errlen;
    if (check)
        passed(&c, "schema: format, version, attributes and dataset shapes");
    if (c.T == 0) {
        note(&c, "the trace holds no positions");
        return IKV_TRACE_OK;
    }
    int rc = positions(&c);
    if (rc == IKV_TRACE_OK)
        rc = attention(&c);
    if (rc == IKV_TRACE_OK && check)
        rc = big_arrays(&c);
    if (rc == IKV_TRACE_ENOMEM && !err[0])
        snprintf(err, errlen, "%s: out of memory", ikv_trace_path(r));
    return rc;
}
