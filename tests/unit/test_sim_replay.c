/*
 * The simulator's arithmetic and replay against plain references:
 * kernels and the full-cache pass against double-precision loops; replay
 * kept sets against the core fed directly; replay metrics against a
 * brute-force recomputation from those kept sets; full = recall 1, error 0;
 * the oracle's recall is at least every policy's in scenario prefill.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"
#include "sim/attention.h"
#include "sim/reference.h"
#include "sim/replay.h"

/* ---- synthetic layer ---- */

static uint64_t rng = 88172645463325252ull;
static double unit(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return ((double)(rng >> 11) + 0.5) / 9007199254740992.0;
}
static float gauss(void)
{
    return (float)(sqrt(-2.0 * log(unit())) * cos(6.283185307179586 * unit()));
}

typedef struct synth {
    ikv_sim_layer L;
    float *q, *k, *v, *evo, *entropy;
} synth;

/* Keys get a few "heavy" directions so attention is peaked, like a real
 * model's, rather than uniform. */
static void synth_make(synth *s, int H, int G, int d, int T, int P, uint64_t seed)
{
    rng = seed * 2654435761u + 1;
    s->q = malloc((size_t)H * T * d * sizeof *s->q);
    s->k = malloc((size_t)G * T * d * sizeof *s->k);
    s->v = malloc((size_t)G * T * d * sizeof *s->v);
    s->evo = malloc((size_t)T * sizeof *s->evo);
    s->entropy = malloc((size_t)T * sizeof *s->entropy);
    for (size_t i = 0; i < (size_t)H * T * d; i++)
        s->q[i] = 1.5f * gauss();
    for (size_t i = 0; i < (size_t)G * T * d; i++) {
        s->k[i] = gauss();
        s->v[i] = gauss();
    }
    for (int g = 0; g < G; g++)
        for (int t = 0; t < T; t += 7)
            for (int j = 0; j < d; j++)
                s->k[((size_t)g * T + t) * d + j] *= 2.5f;
    for (int t = 0; t < T; t++) {
        s->evo[t] = (float)unit();
        s->entropy[t] = (float)(3.0 * unit());
    }
    s->L = (ikv_sim_layer){.layer = 1, .n_layers = 3, .H = H, .G = G, .d = d, .T = T,
                           .n_prompt = P, .q = s->q, .k = s->k, .v = s->v, .evolution = s->evo};
}

static void synth_free(synth *s)
{
    free(s->q);
    free(s->k);
    free(s->v);
    free(s->evo);
    free(s->entropy);
}

/* ---- plain references ---- */

static void naive_softmax(const synth *s, int h, int t, const int32_t *keys, int n, double *p, double *lse_out)
{
    const ikv_sim_layer *L = &s->L;
    int g = h / (L->H / L->G);
    double mx = -INFINITY;
    for (int i = 0; i < n; i++) {
        double acc = 0.0;
        for (int j = 0; j < L->d; j++)
            acc += (double)L->q[((size_t)h * L->T + t) * L->d + j] * (double)L->k[((size_t)g * L->T + keys[i]) * L->d + j];
        p[i] = acc / sqrt((double)L->d);
        mx = p[i] > mx ? p[i] : mx;
    }
    double z = 0.0;
    for (int i = 0; i < n; i++)
        z += exp(p[i] - mx);
    for (int i = 0; i < n; i++)
        p[i] = exp(p[i] - mx) / z;
    if (lse_out)
        *lse_out = mx + log(z);
}

static void naive_mix(const synth *s, int g, const int32_t *keys, const double *p, int n, double *out)
{
    const ikv_sim_layer *L = &s->L;
    for (int j = 0; j < L->d; j++) {
        out[j] = 0.0;
        for (int i = 0; i < n; i++)
            out[j] += p[i] * (double)L->v[((size_t)g * L->T + keys[i]) * L->d + j];
    }
}

static void test_kernels(void)
{
    synth s;
    synth_make(&s, 2, 1, 16, 40, 10, 3);
    /* transpose, then scores of two queries over chosen slots */
    static float kt[16 * 64]; /* ld 64: room for the key-block padding */
    ikv_attn_transpose(s.k, 40, 16, kt, 64);
    int bad = 0;
    for (int t = 0; t < 40; t++)
        for (int j = 0; j < 16; j++)
            bad += kt[j * 64 + t] != s.k[t * 16 + j];
    CU_ASSERT_EQUAL(bad, 0);
    int32_t idx[40];
    for (int i = 0; i < 40; i++)
        idx[i] = i;
    const float *qs[2] = {s.q + 5 * 16, s.q + (40 + 7) * 16};
    int tq[2] = {5, 7}, hq[2] = {0, 1};
    /* n = 37 covers a full block of 32 keys and a tail of 5 */
    static float sc[2 * 40];
    ikv_attn_scores(qs, 2, kt, 64, 37, 16, 0.25f, sc, 40);
    double p[40], lse;
    for (int a = 0; a < 2; a++) {
        for (int i = 0; i < 37; i++) {
            double dot = 0;
            for (int j = 0; j < 16; j++)
                dot += (double)qs[a][j] * s.k[i * 16 + j];
            bad += fabs(sc[a * 40 + i] - 0.25 * dot) > 1e-5;
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    /* softmax and lse against double (scale 1/sqrt(16) = 0.25) */
    for (int a = 0; a < 2; a++) {
        naive_softmax(&s, hq[a], tq[a], idx, 37, p, &lse);
        float l = ikv_attn_softmax(sc + a * 40, 37);
        CU_ASSERT_DOUBLE_EQUAL(l, lse, 2e-5);
        double sum = 0;
        for (int i = 0; i < 37; i++) {
            bad += fabs(sc[a * 40 + i] - p[i]) > 1e-6;
            sum += sc[a * 40 + i];
        }
        CU_ASSERT_DOUBLE_EQUAL(sum, 1.0, 1e-5);
    }
    CU_ASSERT_EQUAL(bad, 0);
    /* mix of both queries against double */
    float mix[2 * 16];
    ikv_attn_mix(sc, 40, 2, s.v, idx, 37, 16, mix);
    for (int a = 0; a < 2; a++) {
        naive_softmax(&s, hq[a], tq[a], idx, 37, p, NULL);
        double ref[16];
        naive_mix(&s, 0, idx, p, 37, ref);
        for (int j = 0; j < 16; j++)
            bad += fabs(mix[a * 16 + j] - ref[j]) > 1e-5;
    }
    CU_ASSERT_EQUAL(bad, 0);
    /* exp: relative error over the float range, 0 far below */
    float x[2001];
    double worst = 0;
    for (int i = 0; i <= 2000; i++)
        x[i] = -87.0f + 175.0f * (float)i / 2000.0f;
    float y[2001];
    memcpy(y, x, sizeof x);
    ikv_attn_exp(y, 2001);
    for (int i = 0; i <= 2000; i++) {
        double e = fabs(y[i] - exp((double)x[i])) / exp((double)x[i]);
        worst = e > worst ? e : worst;
    }
    CU_ASSERT(worst < 2e-7);
    float under[3] = {-100.0f, -INFINITY, -87.3f};
    ikv_attn_exp(under, 3);
    CU_ASSERT(under[0] == 0.0f && under[1] == 0.0f && under[2] == 0.0f);
    float a[3] = {1, 2, 2}, b[3] = {1, 2, 3}, z[3] = {0};
    CU_ASSERT_DOUBLE_EQUAL(ikv_attn_rel_error(a, b, 3), 1.0 / sqrt(14.0), 1e-6);
    CU_ASSERT_EQUAL(ikv_attn_rel_error(z, z, 3), 0.0f);
    CU_ASSERT_EQUAL(ikv_attn_softmax(sc, 0), -INFINITY);
    synth_free(&s);
}

static void test_reference_pass(void)
{
    synth s;
    int H = 4, G = 2, d = 8, T = 40, P = 25;
    synth_make(&s, H, G, d, T, P, 5);
    ikv_sim_reference ref;
    CU_ASSERT_EQUAL_FATAL(ikv_sim_reference_alloc(&ref, H, G, T, d), 0);
    CU_ASSERT_EQUAL(ikv_sim_reference_compute(&s.L, &ref), 0);
    int32_t keys[64];
    for (int i = 0; i < T; i++)
        keys[i] = i;
    double p[64], out[8], received[4][64] = {{0}}, future[4][64] = {{0}};
    int bad = 0;
    for (int h = 0; h < H; h++) {
        for (int t = 0; t < T; t++) {
            double lse;
            naive_softmax(&s, h, t, keys, t + 1, p, &lse);
            naive_mix(&s, h / 2, keys, p, t + 1, out);
            bad += fabs(ref.lse[h * T + t] - lse) > 1e-4;
            double norm2 = 0.0;
            for (int j = 0; j < d; j++) {
                bad += fabs(ref.out[(h * T + t) * d + j] - out[j]) > 1e-4;
                norm2 += out[j] * out[j];
            }
            bad += fabs(ref.out_norm[h * T + t] - sqrt(norm2)) > 1e-4;
            for (int j = 0; j <= t; j++) {
                received[h][j] += p[j];
                if (t >= P)
                    future[h][j] += p[j];
            }
        }
        for (int j = 0; j < T; j++) {
            bad += fabs(ref.received[h * T + j] - received[h][j]) > 1e-4;
            bad += fabs(ref.future[h * T + j] - future[h][j]) > 1e-4;
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    ikv_sim_reference_free(&ref);
    synth_free(&s);
}

/* ---- replay against the core fed directly ---- */

#define MAXSTEPS 256
#define MAXT 256

typedef struct kept_trace {
    int G, T;
    uint8_t bits[MAXSTEPS][2][MAXT];
    int steps;
} kept_trace;

static void record_step(void *user, int step, const ikv_policy *p)
{
    kept_trace *k = user;
    const ikv_params *pr = ikv_policy_params(p);
    (void)pr;
    for (int g = 0; g < k->G; g++) {
        const int32_t *pos = ikv_policy_positions(p, 1, g);
        int n = ikv_policy_cache_len(p, 1);
        memset(k->bits[step][g], 0, MAXT);
        for (int i = 0; i < n; i++)
            k->bits[step][g][pos[i]] = 1;
    }
    k->steps = step + 1;
}

/* Feeds the core the way the replay documents it, computing rows with the
 * shared kernels, and computes the metrics in double from the kept sets. */
static void direct(const synth *s, const ikv_sim_reference *ref, const ikv_params *params,
                   kept_trace *kept, double *recall, double *err)
{
    const ikv_sim_layer *L = &s->L;
    const int H = L->H, G = L->G, d = L->d, T = L->T, P = L->n_prompt, group = H / G;
    ikv_shape shape = {L->n_layers, H, G, L->layer, 1, T};
    char msg[256];
    ikv_policy *p;
    CU_ASSERT_EQUAL_FATAL(ikv_policy_create(&p, params, &shape, msg, sizeof msg), IKV_OK);
    CU_ASSERT_EQUAL_FATAL(ikv_policy_begin(p, P, T), IKV_OK);
    unsigned needs = ikv_policy_needs(p);
    float *rows = calloc((size_t)H * T, sizeof *rows);
    float *future = calloc((size_t)G * T, sizeof *future);
    int32_t ident[MAXT];
    for (int i = 0; i < T; i++)
        ident[i] = i;
    for (int t = 0; t < P; t++)
        ikv_policy_append(p, t);
    const size_t ld = ikv_attn_ld(T);
    float *kt = calloc((size_t)d * ld, sizeof *kt);
    for (int q = 0; q < P; q++) {
        if (!(needs & IKV_NEED_ATTENTION) || !ikv_policy_wants_row(p, 1, q))
            continue;
        for (int h = 0; h < H; h++) {
            float *row = rows + (size_t)h * T;
            const float *qv = L->q + ((size_t)h * T + q) * d;
            ikv_attn_transpose(L->k + (size_t)(h / group) * T * d, T, d, kt, ld);
            ikv_attn_scores(&qv, 1, kt, ld, q + 1, d, 1.0f / sqrtf((float)d), row, (size_t)T);
            ikv_attn_probs(row, q + 1, ref->lse[h * T + q], row);
        }
        ikv_policy_observe_attention(p, 1, q, rows, q + 1, T);
    }
    for (int t = 0; t < P; t++) {
        ikv_policy_observe_entropy(p, t, s->entropy[t]);
        ikv_policy_observe_evolution(p, 1, t, s->evo[t]);
    }
    if (needs & IKV_NEED_FUTURE) {
        for (int g = 0; g < G; g++)
            for (int t = 0; t < P; t++) {
                float v = 0.0f;
                for (int j = 0; j < group; j++)
                    v += ref->future[(g * group + j) * T + t];
                future[g * T + t] = v;
            }
        ikv_policy_observe_future(p, 1, future, T);
    }
    CU_ASSERT_EQUAL_FATAL(ikv_policy_step(p, NULL), IKV_OK);
    for (int g = 0; g < G; g++) {
        const ikv_move *m;
        int nm;
        ikv_policy_moves(p, 1, g, &m, &nm);
        for (int i = 0; i < nm; i++)
            future[g * T + m[i].dst] = future[g * T + m[i].src];
    }
    record_step(kept, 0, p);
    *recall = *err = 0.0;
    double pr[MAXT], out[64], full[MAXT], fout[64];
    for (int t = P; t < T; t++) {
        ikv_policy_append(p, t);
        int n = ikv_policy_cache_len(p, 1);
        for (int g = 0; g < G; g++) {
            float v = 0.0f;
            for (int j = 0; j < group; j++)
                v += ref->future[(g * group + j) * T + t];
            future[g * T + n - 1] = v;
        }
        int want = (needs & IKV_NEED_ATTENTION) && ikv_policy_wants_row(p, 1, t);
        for (int h = 0; h < H; h++) {
            int g = h / group;
            const int32_t *pos = ikv_policy_positions(p, 1, g);
            /* metrics in double: full softmax over all keys vs kept */
            naive_softmax(s, h, t, ident, t + 1, full, NULL);
            naive_mix(s, g, ident, full, t + 1, fout);
            double rec = 0.0;
            for (int i = 0; i < n; i++)
                rec += full[pos[i]];
            naive_softmax(s, h, t, pos, n, pr, NULL);
            naive_mix(s, g, pos, pr, n, out);
            double e2 = 0.0, o2 = 0.0;
            for (int j = 0; j < d; j++) {
                e2 += (out[j] - fout[j]) * (out[j] - fout[j]);
                o2 += fout[j] * fout[j];
            }
            *recall += rec;
            *err += sqrt(e2 / o2);
            /* the row the policy sees: the shared kernels on the kept keys
             * gathered afresh in slot order */
            for (int j = 0; j < d; j++)
                for (int i = 0; i < n; i++)
                    kt[(size_t)j * ld + i] = L->k[((size_t)g * T + pos[i]) * d + j];
            float *sc = rows + (size_t)h * T;
            const float *qv = L->q + ((size_t)h * T + t) * d;
            ikv_attn_scores(&qv, 1, kt, ld, n, d, 1.0f / sqrtf((float)d), sc, (size_t)T);
            if (needs & IKV_NEED_FUTURE) {
                float tmp[MAXT];
                ikv_attn_probs(sc, n, ref->lse[h * T + t], tmp);
                for (int i = 0; i < n; i++)
                    future[g * T + i] -= tmp[i];
            }
            ikv_attn_softmax(sc, n);
        }
        if (want)
            ikv_policy_observe_attention(p, 1, t, rows, n, T);
        ikv_policy_observe_entropy(p, t, s->entropy[t]);
        ikv_policy_observe_evolution(p, 1, t, s->evo[t]);
        if (needs & IKV_NEED_FUTURE)
            ikv_policy_observe_future(p, 1, future, T);
        CU_ASSERT_EQUAL_FATAL(ikv_policy_step(p, NULL), IKV_OK);
        for (int g = 0; g < G; g++) {
            const ikv_move *m;
            int nm;
            ikv_policy_moves(p, 1, g, &m, &nm);
            for (int i = 0; i < nm; i++)
                future[g * T + m[i].dst] = future[g * T + m[i].src];
        }
        record_step(kept, t - P + 1, p);
    }
    free(rows);
    free(future);
    free(kt);
    ikv_policy_free(p);
}

static int replay_job(const synth *s, const ikv_sim_reference *ref, const char *policy, const char *plist,
                      kept_trace *kept, ikv_sim_stats *st, const ikv_evict_log *oracle, ikv_evict_log *record)
{
    ikv_policy_kind kind;
    ikv_policy_from_name(policy, &kind);
    ikv_params params = ikv_default_params(kind);
    char err[256];
    CU_ASSERT_EQUAL_FATAL(ikv_params_parse(&params, plist, err, sizeof err), IKV_OK);
    ikv_sim_replay_input in = {&s->L, ref, s->entropy, oracle, kept ? record_step : NULL, kept};
    memset(st, 0, sizeof *st);
    int rc = ikv_sim_replay(&in, &params, record, st, NULL, err, sizeof err);
    if (rc)
        printf("\n    replay %s %s: %s\n", policy, plist, err);
    return rc;
}

static const struct {
    const char *policy, *params;
} jobs[] = {
    {"h2o", "budget=16,scenario=decode"},
    {"h2o", "budget=16,scenario=prefill,agg=max"},
    {"snapkv", "budget=20,window=4,kernel=3,scenario=decode,interval=8"},
    {"snapkv", "budget=12,window=4,scenario=prefill"},
    {"pyramidkv", "budget=20,window=4,scenario=prefill"},
    {"streaming", "budget=10,scenario=decode"},
    {"tova", "budget=14,scenario=decode"},
    {"random", "budget=14,scenario=decode,seed=3"},
    {"infokv", "budget=16,scenario=decode,alpha=0.5"},
    {"infokv", "budget=16,window=4,scenario=prefill,alpha=0.6,beta=0.2"},
    {"oracle", "budget=16,scenario=decode"},
    {"oracle", "budget=16,scenario=prefill"},
};

static void test_replay_matches_direct_core(void)
{
    synth s;
    int H = 4, G = 2, d = 16, T = 120, P = 48;
    synth_make(&s, H, G, d, T, P, 11);
    ikv_sim_reference ref;
    CU_ASSERT_EQUAL_FATAL(ikv_sim_reference_alloc(&ref, H, G, T, d), 0);
    ikv_sim_reference_compute(&s.L, &ref);
    static kept_trace a, b;
    for (size_t j = 0; j < sizeof jobs / sizeof *jobs; j++) {
        memset(&a, 0, sizeof a);
        memset(&b, 0, sizeof b);
        a.G = b.G = G;
        a.T = b.T = T;
        ikv_sim_stats st;
        CU_ASSERT_EQUAL_FATAL(replay_job(&s, &ref, jobs[j].policy, jobs[j].params, &a, &st, NULL, NULL), 0);
        ikv_policy_kind kind;
        ikv_policy_from_name(jobs[j].policy, &kind);
        ikv_params params = ikv_default_params(kind);
        char err[256];
        ikv_params_parse(&params, jobs[j].params, err, sizeof err);
        double recall, e;
        direct(&s, &ref, &params, &b, &recall, &e);
        CU_ASSERT_EQUAL(a.steps, T - P + 1);
        int same = a.steps == b.steps && memcmp(a.bits, b.bits, sizeof a.bits) == 0;
        CU_ASSERT(same);
        long pairs = (long)H * (T - P);
        CU_ASSERT_EQUAL(st.n_pairs, pairs);
        int ok_r = fabs(st.recall_sum / pairs - recall / pairs) < 1e-5;
        int ok_e = fabs(st.err_sum / pairs - e / pairs) < 1e-4;
        CU_ASSERT(ok_r && ok_e);
        if (!same || !ok_r || !ok_e)
            printf("\n    %s %s: same=%d recall %.6f vs %.6f err %.6f vs %.6f\n", jobs[j].policy,
                   jobs[j].params, same, st.recall_sum / pairs, recall / pairs, st.err_sum / pairs, e / pairs);
        /* Compression costs something: not every policy keeps everything. */
        CU_ASSERT(st.recall_sum / pairs < 1.0);
    }
    ikv_sim_reference_free(&ref);
    synth_free(&s);
}

static void test_full_is_exact(void)
{
    synth s;
    synth_make(&s, 4, 2, 16, 90, 30, 4);
    ikv_sim_reference ref;
    CU_ASSERT_EQUAL_FATAL(ikv_sim_reference_alloc(&ref, 4, 2, 90, 16), 0);
    ikv_sim_reference_compute(&s.L, &ref);
    ikv_sim_stats st;
    for (int scen = 0; scen < 2; scen++) {
        CU_ASSERT_EQUAL(replay_job(&s, &ref, "full", scen ? "scenario=decode" : "", NULL, &st, NULL, NULL), 0);
        CU_ASSERT_EQUAL(st.recall_sum, (double)st.n_pairs);
        CU_ASSERT_EQUAL(st.err_sum, 0.0);
        CU_ASSERT_DOUBLE_EQUAL(st.kept_sum / st.n_kept, (30 + 1 + 90) / 2.0, 1e-9);
    }
    /* A budget at least the sequence length is as good as full. */
    CU_ASSERT_EQUAL(replay_job(&s, &ref, "h2o", "budget=90,scenario=decode", NULL, &st, NULL, NULL), 0);
    CU_ASSERT_EQUAL(st.recall_sum, (double)st.n_pairs);
    CU_ASSERT_EQUAL(st.err_sum, 0.0);
    ikv_sim_reference_free(&ref);
    synth_free(&s);
}

/* In scenario prefill the oracle maximises mean recall at its budget. */
static void test_oracle_is_ceiling(void)
{
    static const char *policies[] = {"h2o", "snapkv", "streaming", "tova", "random", "infokv"};
    for (uint64_t seed = 1; seed <= 4; seed++) {
        synth s;
        synth_make(&s, 4, 2, 16, 100, 60, seed);
        ikv_sim_reference ref;
        CU_ASSERT_EQUAL_FATAL(ikv_sim_reference_alloc(&ref, 4, 2, 100, 16), 0);
        ikv_sim_reference_compute(&s.L, &ref);
        int budgets[3] = {8, 16, 32};
        for (int b = 0; b < 3; b++) {
            char plist[96];
            snprintf(plist, sizeof plist, "budget=%d", budgets[b]);
            ikv_sim_stats oracle, st;
            ikv_evict_log log = {0};
            CU_ASSERT_EQUAL(replay_job(&s, &ref, "oracle", plist, NULL, &oracle, NULL, &log), 0);
            for (size_t p = 0; p < sizeof policies / sizeof *policies; p++) {
                char pl[128];
                snprintf(pl, sizeof pl, "%s%s", plist,
                         strcmp(policies[p], "snapkv") == 0 || strcmp(policies[p], "infokv") == 0 ? ",window=4" : "");
                CU_ASSERT_EQUAL(replay_job(&s, &ref, policies[p], pl, NULL, &st, &log, NULL), 0);
                CU_ASSERT(oracle.recall_sum >= st.recall_sum - 1e-4);
                CU_ASSERT(st.n_overlap == 2);
                CU_ASSERT(st.overlap_sum >= 0.0 && st.overlap_sum <= 2.0);
            }
            /* The oracle overlaps itself completely. */
            CU_ASSERT_EQUAL(replay_job(&s, &ref, "oracle", plist, NULL, &st, &log, NULL), 0);
            CU_ASSERT_DOUBLE_EQUAL(st.overlap_sum, 2.0, 1e-12);
            ikv_evict_log_free(&log);
        }
        ikv_sim_reference_free(&ref);
        synth_free(&s);
    }
}

static void test_missing_signals(void)
{
    synth s;
    synth_make(&s, 2, 1, 8, 30, 10, 2);
    ikv_sim_reference ref;
    ikv_sim_reference_alloc(&ref, 2, 1, 30, 8);
    ikv_sim_reference_compute(&s.L, &ref);
    ikv_params params = ikv_default_params(IKV_POLICY_INFOKV);
    params.budget.value = 8;
    params.snapkv.window = 2;
    ikv_sim_stats st = {0};
    char err[256];
    ikv_sim_replay_input in = {&s.L, &ref, NULL, NULL, NULL, NULL};
    CU_ASSERT(ikv_sim_replay(&in, &params, NULL, &st, NULL, err, sizeof err) < 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "entropy"));
    in.entropy = s.entropy;
    s.L.evolution = NULL;
    CU_ASSERT(ikv_sim_replay(&in, &params, NULL, &st, NULL, err, sizeof err) < 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/hidden/evolution"));
    params.budget.value = 1; /* below the window */
    s.L.evolution = s.evo;
    CU_ASSERT(ikv_sim_replay(&in, &params, NULL, &st, NULL, err, sizeof err) < 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "below the observation window"));
    ikv_sim_reference_free(&ref);
    synth_free(&s);
}

static void add_suites(void)
{
    static const ikv_test_case cases[] = {
        {"attention kernels", test_kernels},
        {"full-cache reference pass", test_reference_pass},
        {"replay equals the core fed directly", test_replay_matches_direct_core},
        {"full: recall 1, error 0", test_full_is_exact},
        {"oracle recall is the ceiling (prefill)", test_oracle_is_ceiling},
        {"missing signals are errors", test_missing_signals},
        {NULL, NULL},
    };
    ikv_test_suite("sim replay", cases);
}

int main(int argc, char **argv)
{
    return ikv_test_main(argc, argv, add_suites);
}
