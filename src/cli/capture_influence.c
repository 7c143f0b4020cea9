/*
 * infokv-capture --influence N: exact Forward Influence.
 *
 * For a token j, the positions after j are run again with j removed from
 * every layer's cache (the engine keeps every other token at its own
 * position, so RoPE is unchanged), and at each later position t the
 * KL(p_full(t) || p_without_j(t)) of the next-token distributions is
 * recorded; positions t <= j get NaN. N tokens are probed per set:
 *   attention  the most attended tokens (attention received, summed over
 *              layers and heads, from the full run);
 *   entropy    the tokens produced under the highest predictive entropy
 *              (entropy of the distribution at t-1);
 *   random     a seeded uniform choice.
 * Probes run in decreasing j on one session: truncating to j keeps every
 * earlier position as the full run computed it, so each probe costs only
 * the positions after it.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/capture.h"
#include "cli/common.h"
#include "infokv/core.h"

static const char *const set_names[3] = {"attention", "entropy", "random"};

typedef struct probe_ctx {
    int V, T, H;
    float *logprobs;   /* [T][V] log-softmax of the full run */
    double *received;  /* [T] */
} probe_ctx;

static void log_softmax(const float *x, int n, float *out)
{
    float mx = x[0];
    for (int i = 1; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    double z = 0.0;
    for (int i = 0; i < n; i++)
        z += exp((double)x[i] - (double)mx);
    float lse = mx + (float)log(z);
    for (int i = 0; i < n; i++)
        out[i] = x[i] - lse;
}

static void on_logits(void *user, int pos, const float *logits)
{
    probe_ctx *c = user;
    if (pos < c->T)
        log_softmax(logits, c->V, c->logprobs + (size_t)pos * (size_t)c->V);
}

static void on_attention(void *user, int layer, int pos, const float *probs, int n_keys, int stride)
{
    probe_ctx *c = user;
    (void)layer;
    (void)pos;
    for (int h = 0; h < c->H; h++) {
        const float *row = probs + (size_t)h * (size_t)stride;
        for (int j = 0; j < n_keys && j < c->T; j++)
            c->received[j] += row[j];
    }
}

typedef struct ranked {
    double score;
    int32_t pos;
} ranked;

static int by_score(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

static int by_pos_desc(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x < y) - (x > y);
}

/* Picks up to n tokens of a set among positions 0..T-2 (each has a later
 * position to influence). */
static int pick(int set, const probe_ctx *c, int n, uint64_t seed, int32_t *out)
{
    int m = c->T - 1;
    if (m <= 0)
        return 0;
    ranked *r = malloc((size_t)m * sizeof *r);
    if (!r)
        return -1;
    uint64_t state = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
    for (int p = 0; p < m; p++) {
        double s;
        if (set == 0) {
            s = c->received[p];
        } else if (set == 1) {
            /* entropy of the distribution that produced token p */
            if (p == 0) {
                s = -INFINITY;
            } else {
                const float *lp = c->logprobs + (size_t)(p - 1) * (size_t)c->V;
                double h = 0.0;
                for (int i = 0; i < c->V; i++)
                    h -= exp((double)lp[i]) * (double)lp[i];
                s = h;
            }
        } else {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            s = (double)(state >> 11);
        }
        r[p] = (ranked){s, p};
    }
    qsort(r, (size_t)m, sizeof *r, by_score);
    int k = 0;
    for (int i = 0; i < m && k < n; i++)
        if (r[i].score > -INFINITY)
            out[k++] = r[i].pos;
    free(r);
    return k;
}

int influence_run(const capture_options *o, run_context *rc, int n_run, ikv_trace_writer *w, char *err,
                  size_t errlen)
{
    if (o->influence <= 0 || n_run < 2)
        return 0;
    const int T = n_run, V = rc->info->vocab_size;
    if ((double)T * (double)V * 4.0 > 8e9) {
        snprintf(err, errlen, "--influence keeps the full run's distributions: %d positions x %d vocab is "
                              "too large (lower -n)", T, V);
        return -1;
    }
    probe_ctx c = {V, T, rc->info->n_heads, malloc((size_t)T * (size_t)V * sizeof(float)), calloc((size_t)T, sizeof(double))};
    int32_t *tokens = malloc((size_t)3 * (size_t)o->influence * sizeof *tokens);
    uint8_t *sets = malloc((size_t)3 * (size_t)o->influence);
    int32_t *order = malloc((size_t)3 * (size_t)o->influence * sizeof *order);
    ikv_session *s = NULL;
    float *kl = NULL;
    int result = -1;
    if (!c.logprobs || !c.received || !tokens || !sets || !order) {
        snprintf(err, errlen, "out of memory for --influence");
        goto done;
    }
    if (ikv_session_create(&s, rc->model, rc->steps, o->threads, err, errlen) != IKV_OK)
        goto done;
    ikv_observer obs = {&c, NULL, on_attention, NULL, on_logits, NULL};
    if (ikv_session_set_observer(s, &obs) != IKV_OK || ikv_session_prefill(s, rc->tokens, T) != IKV_OK ||
        ikv_session_set_observer(s, NULL) != IKV_OK) {
        snprintf(err, errlen, "influence: %s", ikv_session_error(s));
        goto done;
    }

    /* The token sets. */
    int n = 0;
    for (int set = 0; set < 3; set++) {
        if (!(o->influence_sets & (1u << set)))
            continue;
        int k = pick(set, &c, o->influence, o->influence_seed, tokens + n);
        if (k < 0) {
            snprintf(err, errlen, "out of memory");
            goto done;
        }
        for (int i = 0; i < k; i++)
            sets[n + i] = (uint8_t)set;
        n += k;
    }
    kl = malloc((size_t)(n > 0 ? n : 1) * (size_t)T * sizeof *kl);
    if (!kl) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < (size_t)n * (size_t)T; i++)
        kl[i] = NAN;

    /* Distinct probe positions, last first. */
    memcpy(order, tokens, (size_t)n * sizeof *order);
    qsort(order, (size_t)n, sizeof *order, by_pos_desc);
    int distinct = 0;
    for (int i = 0; i < n; i++)
        if (distinct == 0 || order[distinct - 1] != order[i])
            order[distinct++] = order[i];
    ikv_progress progress;
    ikv_progress_start(&progress, "influence", distinct, o->quiet);
    for (int p = 0; p < distinct; p++) {
        int32_t j = order[p];
        if (ikv_session_truncate(s, j) != IKV_OK) {
            snprintf(err, errlen, "influence: %s", ikv_session_error(s));
            goto done;
        }
        for (int32_t t = j + 1; t < T; t++) {
            if (ikv_session_decode_at(s, rc->tokens[t], t) != IKV_OK) {
                snprintf(err, errlen, "influence: %s", ikv_session_error(s));
                goto done;
            }
            double d = ikv_kl_logits(c.logprobs + (size_t)t * (size_t)V, ikv_session_logits(s), V);
            for (int i = 0; i < n; i++)
                if (tokens[i] == j)
                    kl[(size_t)i * (size_t)T + (size_t)t] = (float)d;
        }
        ikv_progress_update(&progress, p + 1);
        if (ikv_cli_stop_requested())
            break;
    }
    ikv_progress_finish(&progress);

    /* Summary: mean KL by distance for each set. */
    for (int set = 0; set < 3; set++) {
        double near = 0.0, far = 0.0;
        long n_near = 0, n_far = 0;
        for (int i = 0; i < n; i++) {
            if (sets[i] != set)
                continue;
            for (int t = tokens[i] + 1; t < T; t++) {
                float v = kl[(size_t)i * (size_t)T + (size_t)t];
                if (isnan(v))
                    continue;
                if (t - tokens[i] <= 8) {
                    near += v;
                    n_near++;
                } else {
                    far += v;
                    n_far++;
                }
            }
        }
        if (n_near + n_far > 0)
            ikv_note(o->quiet, "influence of %s tokens: mean KL %.4g nats within 8 positions, %.4g beyond",
                     set_names[set], n_near ? near / n_near : NAN, n_far ? far / n_far : NAN);
    }
    if (w) {
        int64_t d1[1] = {n}, d2[2] = {n, T};
        int rcode = ikv_trace_writer_group(w, "influence");
        rcode = rcode ? rcode : ikv_trace_write_extra(w, "influence/pos", IKV_TRACE_TYPE_I32, 1, d1, tokens);
        rcode = rcode ? rcode : ikv_trace_write_extra(w, "influence/set", IKV_TRACE_TYPE_U8, 1, d1, sets);
        rcode = rcode ? rcode : ikv_trace_write_extra(w, "influence/kl", IKV_TRACE_TYPE_F32, 2, d2, kl);
        rcode = rcode ? rcode : ikv_trace_writer_attr_string(w, "influence", "sets", "attention,entropy,random");
        rcode = rcode ? rcode : ikv_trace_writer_attr_int(w, "influence", "per_set", o->influence);
        rcode = rcode ? rcode : ikv_trace_writer_attr_int(w, "influence", "seed", (int64_t)o->influence_seed);
        if (rcode) {
            snprintf(err, errlen, "%s", ikv_trace_writer_error(w));
            goto done;
        }
    }
    result = 0;
done:
    ikv_session_free(s);
    free(c.logprobs);
    free(c.received);
    free(tokens);
    free(sets);
    free(order);
    free(kl);
    return result;
}
