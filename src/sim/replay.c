#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/attention.h"
#include "sim/replay.h"

void ikv_evict_log_free(ikv_evict_log *log)
{
    free(log->step_start);
    free(log->entries);
    memset(log, 0, sizeof *log);
}

static int log_begin_step(ikv_evict_log *log)
{
    if (log->n_steps + 2 > log->cap_steps) {
        int cap = log->cap_steps ? 2 * log->cap_steps : 256;
        int32_t *s = realloc(log->step_start, (size_t)cap * sizeof *s);
        if (!s)
            return -1;
        log->step_start = s;
        log->cap_steps = cap;
    }
    if (log->n_steps == 0)
        log->step_start[0] = 0;
    log->step_start[log->n_steps + 1] = log->n_entries;
    log->n_steps++;
    return 0;
}

static int log_add(ikv_evict_log *log, int32_t kv_head, int32_t pos)
{
    if (log->n_entries == log->cap_entries) {
        int cap = log->cap_entries ? 2 * log->cap_entries : 1024;
        ikv_evict_entry *e = realloc(log->entries, (size_t)cap * sizeof *e);
        if (!e)
            return -1;
        log->entries = e;
        log->cap_entries = cap;
    }
    log->entries[log->n_entries++] = (ikv_evict_entry){kv_head, pos};
    log->step_start[log->n_steps] = log->n_entries;
    return 0;
}

/* Scratch of one replay. */
typedef struct replay {
    const ikv_sim_layer *L;
    const ikv_sim_reference *ref;
    ikv_policy *policy;
    int layer, H, G, d, T, P, group;
    size_t ld;          /* row stride of kt (T rounded up to the key block) */
    unsigned needs;
    float scale;
    float *rows;        /* [H][T] attention rows (the policy's input) */
    float *tmp;         /* [T] */
    float *mix;         /* [group][d] */
    float *kt;          /* [G][d][ld] keys of the kept slots, transposed */
    float *future;      /* [G][T] oracle scores by slot */
    uint8_t *oracle_kept; /* [G][T] by position */
    int *oracle_count;  /* [G] */
} replay;

static void free_replay(replay *r)
{
    ikv_policy_free(r->policy);
    free(r->rows);
    free(r->tmp);
    free(r->mix);
    free(r->kt);
    free(r->future);
    free(r->oracle_kept);
    free(r->oracle_count);
}

static int fail(char *err, size_t errlen, int rc, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return rc;
}

/* Brings the oracle's kept marks to the end of `step`. */
static void oracle_advance(replay *r, const ikv_evict_log *log, int step)
{
    if (!log || step >= log->n_steps)
        return;
    for (int e = log->step_start[step]; e < log->step_start[step + 1]; e++) {
        const ikv_evict_entry *en = &log->entries[e];
        uint8_t *mark = &r->oracle_kept[(size_t)en->kv_head * (size_t)r->T + (size_t)en->pos];
        if (*mark) {
            *mark = 0;
            r->oracle_count[en->kv_head]--;
        }
    }
}

/* Share of the oracle's kept positions the policy also keeps (every
 * appended position counts: call it when both have seen the same ones). */
static void add_overlap(replay *r, ikv_sim_stats *st)
{
    for (int g = 0; g < r->G; g++) {
        const int32_t *pos = ikv_policy_positions(r->policy, r->layer, g);
        int n = ikv_policy_cache_len(r->policy, r->layer);
        const uint8_t *mark = r->oracle_kept + (size_t)g * (size_t)r->T;
        int both = 0, oracle = r->oracle_count[g];
        for (int i = 0; i < n; i++)
            both += mark[pos[i]];
        if (oracle > 0) {
            st->overlap_sum += (double)both / (double)oracle;
            st->n_overlap++;
        }
    }
}

/* After a step: apply moves to our slot-indexed arrays, log evictions. */
static int after_step(replay *r, int step, ikv_evict_log *record, uint8_t *evicted)
{
    if (record && log_begin_step(record) != 0)
        return -1;
    for (int g = 0; g < r->G; g++) {
        const ikv_move *moves;
        int n_moves;
        ikv_policy_moves(r->policy, r->layer, g, &moves, &n_moves);
        float *fut = r->future ? r->future + (size_t)g * (size_t)r->T : NULL;
        for (int m = 0; fut && m < n_moves; m++)
            fut[moves[m].dst] = fut[moves[m].src];
        float *kt = r->kt + (size_t)g * (size_t)r->d * r->ld;
        for (int j = 0; j < r->d; j++) {
            float *row = kt + (size_t)j * r->ld;
            for (int m = 0; m < n_moves; m++)
                row[moves[m].dst] = row[moves[m].src];
        }
        const int32_t *gone;
        int n_gone;
        ikv_policy_evicted(r->policy, r->layer, g, &gone, &n_gone);
        for (int i = 0; i < n_gone; i++) {
            if (record && log_add(record, g, gone[i]) != 0)
                return -1;
            if (evicted)
                evicted[(size_t)g * (size_t)r->T + (size_t)gone[i]] = 1;
        }
    }
    (void)step;
    return 0;
}

static int feed_token_signals(replay *r, const ikv_sim_replay_input *in, int32_t t, char *err,
                              size_t errlen)
{
    if ((r->needs & IKV_NEED_ENTROPY) &&
        ikv_policy_observe_entropy(r->policy, t, in->entropy[t]) != IKV_OK)
        return fail(err, errlen, -1, ikv_policy_error(r->policy));
    if ((r->needs & IKV_NEED_EVOLUTION) &&
        ikv_policy_observe_evolution(r->policy, r->layer, t, r->L->evolution[t]) != IKV_OK)
        return fail(err, errlen, -1, ikv_policy_error(r->policy));
    return 0;
}

static int feed_future(replay *r, char *err, size_t errlen)
{
    if (!(r->needs & IKV_NEED_FUTURE))
        return 0;
    if (ikv_policy_observe_future(r->policy, r->layer, r->future, r->T) != IKV_OK)
        return fail(err, errlen, -1, ikv_policy_error(r->policy));
    return 0;
}

int ikv_sim_replay(const ikv_sim_replay_input *in, const ikv_params *params,
                   ikv_evict_log *record, ikv_sim_stats *st, uint8_t *evicted, char *err,
                   size_t errlen)
{
    const ikv_sim_layer *L = in->layer;
    replay r;
    memset(&r, 0, sizeof r);
    r.L = L;
    r.ref = in->ref;
    r.layer = L->layer;
    r.H = L->H;
    r.G = L->G;
    r.d = L->d;
    r.T = L->T;
    r.P = L->n_prompt;
    r.group = L->H / L->G;
    r.scale = 1.0f / sqrtf((float)L->d);
    if (r.P < 1 || r.P > r.T)
        return fail(err, errlen, -1, "the prompt must hold between 1 and T positions");

    ikv_shape shape = {L->n_layers, L->H, L->G, L->layer, 1, L->T};
    char cerr[256];
    if (ikv_policy_create(&r.policy, params, &shape, cerr, sizeof cerr) != IKV_OK)
        return fail(err, errlen, -1, cerr);
    if (ikv_policy_begin(r.policy, r.P, r.T) != IKV_OK) {
        fail(err, errlen, -1, ikv_policy_error(r.policy));
        free_replay(&r);
        return -1;
    }
    r.needs = ikv_policy_needs(r.policy);
    if ((r.needs & IKV_NEED_ENTROPY) && !in->entropy) {
        free_replay(&r);
        return fail(err, errlen, -1, "needs token entropy (/logits/entropy_topk, /logits/topk_logprobs or /logits/entropy)");
    }
    if ((r.needs & IKV_NEED_EVOLUTION) && !L->evolution) {
        free_replay(&r);
        return fail(err, errlen, -1, "needs /hidden/evolution");
    }
    const size_t T = (size_t)r.T;
    if (r.group > IKV_ATTN_MAX_GROUP) {
        free_replay(&r);
        return fail(err, errlen, -1, "more than 16 query heads per KV head");
    }
    r.rows = malloc((size_t)r.H * T * sizeof *r.rows);
    r.tmp = malloc(T * sizeof *r.tmp);
    r.mix = malloc((size_t)r.group * (size_t)r.d * sizeof *r.mix);
    r.ld = ikv_attn_ld(r.T);
    r.kt = calloc((size_t)r.G * (size_t)r.d * r.ld, sizeof *r.kt);
    r.oracle_kept = calloc((size_t)r.G * T, 1);
    r.oracle_count = calloc((size_t)r.G, sizeof *r.oracle_count);
    if (r.needs & IKV_NEED_FUTURE)
        r.future = malloc((size_t)r.G * T * sizeof *r.future);
    if (!r.rows || !r.tmp || !r.mix || !r.kt || !r.oracle_kept || !r.oracle_count ||
        ((r.needs & IKV_NEED_FUTURE) && !r.future)) {
        free_replay(&r);
        return fail(err, errlen, -2, "out of memory");
    }
    const ikv_sim_reference *ref = in->ref;
    const int prefill_scenario = params->scenario == IKV_SCENARIO_PREFILL;
    int rc = 0;

    /* ---- prefill: the prompt, full cache, then its compression ---- */
    for (int32_t t = 0; t < r.P; t++)
        ikv_policy_append(r.policy, t);
    for (int g = 0; g < r.G; g++) {
        for (int32_t t = 0; t < r.P; t++)
            r.oracle_kept[(size_t)g * T + (size_t)t] = 1;
        r.oracle_count[g] = r.P;
    }
    if (r.needs & IKV_NEED_ATTENTION) {
        /* Prompt rows are those of the full cache: exp(score - lse_full). */
        for (int32_t q = 0; q < r.P; q++) {
            if (!ikv_policy_wants_row(r.policy, r.layer, q))
                continue;
            for (int g = 0; g < r.G; g++) {
                const float *qs[IKV_ATTN_MAX_GROUP];
                for (int a = 0; a < r.group; a++)
                    qs[a] = L->q + ((size_t)(g * r.group + a) * T + (size_t)q) * (size_t)r.d;
                float *rows = r.rows + (size_t)g * (size_t)r.group * T;
                ikv_attn_scores(qs, r.group, ref->kt + (size_t)g * (size_t)r.d * ref->ld, ref->ld, q + 1, r.d, r.scale,
                                rows, T);
                for (int a = 0; a < r.group; a++) {
                    int h = g * r.group + a;
                    ikv_attn_probs(rows + (size_t)a * T, q + 1, ref->lse[(size_t)h * T + (size_t)q],
                                   rows + (size_t)a * T);
                }
            }
            if (ikv_policy_observe_attention(r.policy, r.layer, q, r.rows, q + 1, r.T) != IKV_OK) {
                rc = fail(err, errlen, -1, ikv_policy_error(r.policy));
                goto done;
            }
        }
    }
    for (int32_t t = 0; t < r.P; t++)
        if ((rc = feed_token_signals(&r, in, t, err, errlen)) != 0)
            goto done;
    if (r.future) {
        for (int g = 0; g < r.G; g++)
            for (int32_t t = 0; t < r.P; t++) {
                float s = 0.0f;
                for (int j = 0; j < r.group; j++)
                    s += ref->future[(size_t)(g * r.group + j) * T + (size_t)t];
                r.future[(size_t)g * T + (size_t)t] = s;
            }
    }
    if ((rc = feed_future(&r, err, errlen)) != 0)
        goto done;
    if (ikv_policy_step(r.policy, NULL) != IKV_OK) {
        rc = fail(err, errlen, -1, ikv_policy_error(r.policy));
        goto done;
    }
    if (after_step(&r, 0, record, evicted) != 0) {
        rc = fail(err, errlen, -2, "out of memory");
        goto done;
    }
    {
        /* Keys of the slots that survived the prompt compression. */
        const int n = ikv_policy_cache_len(r.policy, r.layer);
        for (int g = 0; g < r.G; g++) {
            const int32_t *pos = ikv_policy_positions(r.policy, r.layer, g);
            const float *src = ref->kt + (size_t)g * (size_t)r.d * ref->ld;
            float *dst = r.kt + (size_t)g * (size_t)r.d * r.ld;
            for (int j = 0; j < r.d; j++)
                for (int i = 0; i < n; i++)
                    dst[(size_t)j * r.ld + (size_t)i] = src[(size_t)j * ref->ld + (size_t)pos[i]];
        }
    }
    if (in->on_step)
        in->on_step(in->user, 0, r.policy);
    oracle_advance(&r, in->oracle, 0);
    if (in->oracle && prefill_scenario)
        add_overlap(&r, st);

    /* ---- decode: each later position attends over the kept cache ---- */
    for (int32_t t = r.P; t < r.T; t++) {
        int step = t - r.P + 1;
        ikv_policy_append(r.policy, t);
        for (int g = 0; g < r.G; g++) {
            r.oracle_kept[(size_t)g * T + (size_t)t] = 1;
            r.oracle_count[g]++;
        }
        const int n = ikv_policy_cache_len(r.policy, r.layer);
        if (r.future) {
            for (int g = 0; g < r.G; g++) {
                float s = 0.0f;
                for (int j = 0; j < r.group; j++)
                    s += ref->future[(size_t)(g * r.group + j) * T + (size_t)t];
                r.future[(size_t)g * T + (size_t)(n - 1)] = s;
            }
        }
        const int want_row = (r.needs & IKV_NEED_ATTENTION) &&
                             ikv_policy_wants_row(r.policy, r.layer, t);
        double step_recall = 0.0, step_err = 0.0;
        for (int g = 0; g < r.G; g++) {
            const int32_t *pos = ikv_policy_positions(r.policy, r.layer, g);
            const float *values = L->v + (size_t)g * T * (size_t)r.d;
            float *kt = r.kt + (size_t)g * (size_t)r.d * r.ld;
            const float *kt_ref = ref->kt + (size_t)g * (size_t)r.d * ref->ld;
            for (int j = 0; j < r.d; j++) /* the new token's key */
                kt[(size_t)j * r.ld + (size_t)(n - 1)] = kt_ref[(size_t)j * ref->ld + (size_t)t];
            st->kept_sum += n;
            st->n_kept++;
            const float *qs[IKV_ATTN_MAX_GROUP];
            for (int a = 0; a < r.group; a++)
                qs[a] = L->q + ((size_t)(g * r.group + a) * T + (size_t)t) * (size_t)r.d;
            /* The group's rows, softmax over the kept slots: what a live
             * engine computes and the policy observes. */
            float *probs = r.rows + (size_t)g * (size_t)r.group * T;
            ikv_attn_scores(qs, r.group, kt, r.ld, n, r.d, r.scale, probs, T);
            double recall[IKV_ATTN_MAX_GROUP];
            for (int a = 0; a < r.group; a++) {
                const int h = g * r.group + a;
                float *p = probs + (size_t)a * T;
                const float lse_full = ref->lse[(size_t)h * T + (size_t)t];
                if (r.future) {
                    float *fut = r.future + (size_t)g * T;
                    ikv_attn_probs(p, n, lse_full, r.tmp);
                    for (int i = 0; i < n; i++)
                        fut[i] -= r.tmp[i];
                }
                float lse_kept = ikv_attn_softmax(p, n);
                recall[a] = exp((double)lse_kept - (double)lse_full);
            }
            ikv_attn_mix(probs, T, r.group, values, pos, n, r.d, r.mix);
            for (int a = 0; a < r.group; a++) {
                const int h = g * r.group + a;
                step_recall += recall[a];
                step_err += ikv_attn_rel_error(r.mix + (size_t)a * (size_t)r.d,
                                               ref->out + ((size_t)h * T + (size_t)t) * (size_t)r.d, r.d);
            }
        }
        st->recall_sum += step_recall;
        st->err_sum += step_err;
        st->n_pairs += r.H;
        if (st->step_recall)
            st->step_recall[t - r.P] += step_recall;
        if (st->step_err)
            st->step_err[t - r.P] += step_err;
        if (want_row &&
            ikv_policy_observe_attention(r.policy, r.layer, t, r.rows, n, r.T) != IKV_OK) {
            rc = fail(err, errlen, -1, ikv_policy_error(r.policy));
            goto done;
        }
        if ((rc = feed_token_signals(&r, in, t, err, errlen)) != 0 ||
            (rc = feed_future(&r, err, errlen)) != 0)
            goto done;
        if (ikv_policy_step(r.policy, NULL) != IKV_OK) {
            rc = fail(err, errlen, -1, ikv_policy_error(r.policy));
            goto done;
        }
        if (after_step(&r, step, record, evicted) != 0) {
            rc = fail(err, errlen, -2, "out of memory");
            goto done;
        }
        if (in->on_step)
            in->on_step(in->user, step, r.policy);
        oracle_advance(&r, in->oracle, step);
        if (in->oracle && !prefill_scenario)
            add_overlap(&r, st);
    }
done:
    free_replay(&r);
    return rc;
}
