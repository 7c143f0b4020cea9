/*
 * bench_sim: replay throughput of the simulator on one layer of a synthetic
 * trace of Llama-3.1-8B attention shape (32 query heads, 8 KV heads,
 * d = 128) at T = 4096, against a plain single-threaded implementation of
 * the same metrics measured in the same run, and against the machine's
 * arithmetic roofline (peak FMA throughput, also measured here).
 *
 * Work unit: a (query head, key) pair, i.e. one score and one weighted
 * value: 4d flops. Two parts are timed:
 *   reference  the full-cache pass (every query over every earlier key);
 *   replay     12 jobs in scenario decode (prompt 512): h2o, snapkv,
 *              streaming, infokv at budgets 256, 512, 1024.
 * Usage: bench_sim [T] [jobs-to-run-in-the-baseline] (defaults 4096 1).
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "sim/attention.h"
#include "sim/reference.h"
#include "sim/replay.h"

enum { H = 32, G = 8, D = 128, PROMPT = 512 };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static float gauss(void)
{
    double u[2];
    for (int i = 0; i < 2; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        u[i] = ((double)(rng >> 11) + 0.5) / 9007199254740992.0;
    }
    return (float)(sqrt(-2.0 * log(u[0])) * cos(6.283185307179586 * u[1]));
}

/* ---- the plain baseline: one head at a time, libm, no blocking ---- */

static void baseline_reference(const ikv_sim_layer *L, float *lse, float *out)
{
    const int T = L->T, d = L->d;
    float *s = malloc((size_t)T * sizeof *s);
    for (int h = 0; h < L->H; h++) {
        int g = h / (L->H / L->G);
        for (int t = 0; t < T; t++) {
            const float *q = L->q + ((size_t)h * T + t) * d;
            float mx = -INFINITY;
            for (int j = 0; j <= t; j++) {
                const float *k = L->k + ((size_t)g * T + j) * d;
                float acc = 0.0f;
                for (int c = 0; c < d; c++)
                    acc += q[c] * k[c];
                s[j] = acc / sqrtf((float)d);
                mx = s[j] > mx ? s[j] : mx;
            }
            float z = 0.0f;
            for (int j = 0; j <= t; j++) {
                s[j] = expf(s[j] - mx);
                z += s[j];
            }
            float *o = out + ((size_t)h * T + t) * d;
            for (int c = 0; c < d; c++)
                o[c] = 0.0f;
            for (int j = 0; j <= t; j++) {
                const float *v = L->v + ((size_t)g * T + j) * d;
                for (int c = 0; c < d; c++)
                    o[c] += s[j] / z * v[c];
            }
            lse[(size_t)h * T + t] = mx + logf(z);
        }
    }
    free(s);
}

/* One job replayed plainly: the core decides, attention is recomputed per
 * head over the kept positions. Returns the pairs computed. */
static double baseline_replay(const ikv_sim_layer *L, const float *lse, const float *out_full,
                              const ikv_params *params, double *recall_sum)
{
    const int T = L->T, d = L->d, P = L->n_prompt, group = L->H / L->G;
    ikv_shape shape = {L->n_layers, L->H, L->G, L->layer, 1, T};
    char err[256];
    ikv_policy *p;
    if (ikv_policy_create(&p, params, &shape, err, sizeof err) != IKV_OK || ikv_policy_begin(p, P, T) != IKV_OK) {
        fprintf(stderr, "bench_sim: %s\n", err);
        exit(1);
    }
    float *rows = malloc((size_t)L->H * T * sizeof *rows);
    float o[D];
    double pairs = 0.0;
    for (int t = 0; t < P; t++)
        ikv_policy_append(p, t);
    for (int q = 0; q < P; q++) {
        if (!ikv_policy_wants_row(p, L->layer, q))
            continue;
        for (int h = 0; h < L->H; h++) {
            int g = h / group;
            for (int j = 0; j <= q; j++) {
                float acc = 0.0f;
                for (int c = 0; c < d; c++)
                    acc += L->q[((size_t)h * T + q) * d + c] * L->k[((size_t)g * T + j) * d + c];
                rows[(size_t)h * T + j] = expf(acc / sqrtf((float)d) - lse[(size_t)h * T + q]);
            }
        }
        ikv_policy_observe_attention(p, L->layer, q, rows, q + 1, T);
    }
    ikv_policy_step(p, NULL);
    for (int t = P; t < T; t++) {
        ikv_policy_append(p, t);
        int n = ikv_policy_cache_len(p, L->layer);
        for (int h = 0; h < L->H; h++) {
            int g = h / group;
            const int32_t *pos = ikv_policy_positions(p, L->layer, g);
            float *s = rows + (size_t)h * T, mx = -INFINITY;
            for (int i = 0; i < n; i++) {
                float acc = 0.0f;
                for (int c = 0; c < d; c++)
                    acc += L->q[((size_t)h * T + t) * d + c] * L->k[((size_t)g * T + pos[i]) * d + c];
                s[i] = acc / sqrtf((float)d);
                mx = s[i] > mx ? s[i] : mx;
            }
            float z = 0.0f;
            for (int i = 0; i < n; i++) {
                s[i] = expf(s[i] - mx);
                z += s[i];
            }
            for (int c = 0; c < d; c++)
                o[c] = 0.0f;
            for (int i = 0; i < n; i++) {
                s[i] /= z;
                for (int c = 0; c < d; c++)
                    o[c] += s[i] * L->v[((size_t)g * T + pos[i]) * d + c];
            }
            *recall_sum += exp((double)(mx + logf(z)) - (double)lse[(size_t)h * T + t]);
            (void)ikv_attn_rel_error(o, out_full + ((size_t)h * T + t) * d, d);
            pairs += n;
        }
        if (ikv_policy_wants_row(p, L->layer, t))
            ikv_policy_observe_attention(p, L->layer, t, rows, n, T);
        ikv_policy_step(p, NULL);
    }
    free(rows);
    ikv_policy_free(p);
    return pairs;
}

/* ---- the machine's peak: independent vector FMAs, all threads ---- */

static double peak_gflops(void)
{
    double best = 0.0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
        double flops = 0.0;
#pragma omp parallel reduction(+ : flops)
        {
            float acc[16][16];
            for (int a = 0; a < 16; a++)
                for (int i = 0; i < 16; i++)
                    acc[a][i] = (float)(a + i) * 1e-3f;
            const float m = 0.999999f, c = 1e-7f;
            const long iters = 4000000;
            for (long it = 0; it < iters; it++)
                for (int a = 0; a < 16; a++)
#pragma omp simd
                    for (int i = 0; i < 16; i++)
                        acc[a][i] = acc[a][i] * m + c;
            float sum = 0.0f;
            for (int a = 0; a < 16; a++)
                for (int i = 0; i < 16; i++)
                    sum += acc[a][i];
            if (sum == 12345.0f)
                printf("%f", sum);
            flops += 2.0 * 16 * 16 * (double)iters;
        }
        double g = flops / (now() - t0) / 1e9;
        best = g > best ? g : best;
    }
    return best;
}

int main(int argc, char **argv)
{
    int T = argc > 1 ? atoi(argv[1]) : 4096;
    int baseline_jobs = argc > 2 ? atoi(argv[2]) : 1;
    if (T < 2 * PROMPT || T > 65536) {
        fprintf(stderr, "bench_sim: T must be in [%d, 65536]\n", 2 * PROMPT);
        return 2;
    }
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    size_t qn = (size_t)H * T * D, kn = (size_t)G * T * D;
    float *q = malloc(qn * sizeof *q), *k = malloc(kn * sizeof *k), *v = malloc(kn * sizeof *v);
    if (!q || !k || !v) {
        fprintf(stderr, "bench_sim: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < qn; i++)
        q[i] = 1.5f * gauss();
    for (size_t i = 0; i < kn; i++) {
        k[i] = gauss();
        v[i] = gauss();
    }
    for (int g = 0; g < G; g++) /* heavy keys: attention is peaked */
        for (int t = 0; t < T; t += 13)
            for (int c = 0; c < D; c++)
                k[((size_t)g * T + t) * D + c] *= 2.0f;
    ikv_sim_layer L = {0, 32, H, G, D, T, PROMPT, q, k, v, NULL};
    printf("bench_sim: one layer, %d query heads / %d KV heads, d = %d, T = %d, prompt %d, %d thread%s\n",
           H, G, D, T, PROMPT, threads, threads == 1 ? "" : "s");

    double peak = peak_gflops();
    double roof_pairs = peak * 1e9 / (4.0 * D);
    printf("measured peak %.1f GFLOP/s -> roofline %.1f M pairs/s (4d = %d flops a pair)\n", peak,
           roof_pairs / 1e6, 4 * D);

    ikv_sim_reference ref;
    if (ikv_sim_reference_alloc(&ref, H, G, T, D) != 0)
        return 1;
    double t0 = now();
    ikv_sim_reference_compute(&L, &ref);
    double t_ref = now() - t0;
    double ref_pairs = (double)H * (double)T * (double)(T + 1) / 2.0;

    static const char *policies[4] = {"h2o", "snapkv", "streaming", "infokv"};
    static const int budgets[3] = {256, 512, 1024};
    ikv_params jobs[12];
    for (int i = 0; i < 12; i++) {
        ikv_policy_kind kind;
        ikv_policy_from_name(policies[i % 4], &kind);
        jobs[i] = ikv_default_params(kind);
        jobs[i].scenario = IKV_SCENARIO_DECODE;
        jobs[i].budget.value = budgets[i / 4];
        jobs[i].infokv.alpha = 0.0; /* no entropy/evolution in this synthetic layer */
    }
    ikv_sim_stats st[12];
    memset(st, 0, sizeof st);
    t0 = now();
    int failed = 0;
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < 12; i++) {
        char err[256];
        ikv_sim_replay_input in = {&L, &ref, NULL, NULL, NULL, NULL};
        if (ikv_sim_replay(&in, &jobs[i], NULL, &st[i], NULL, err, sizeof err) != 0) {
#pragma omp critical
            {
                fprintf(stderr, "bench_sim: %s\n", err);
                failed = 1;
            }
        }
    }
    double t_replay = now() - t0;
    if (failed)
        return 1;
    double replay_pairs = 0.0;
    for (int i = 0; i < 12; i++)
        replay_pairs += st[i].kept_sum * (H / G);

    /* The baseline, single-threaded, on the same reference and a subset of
     * the jobs (throughput is per pair, so a subset measures it). */
    float *lse = malloc((size_t)H * T * sizeof *lse), *out = malloc(qn * sizeof *out);
    t0 = now();
    baseline_reference(&L, lse, out);
    double tb_ref = now() - t0;
    double b_pairs = 0.0, b_recall = 0.0;
    t0 = now();
    for (int i = 0; i < baseline_jobs && i < 12; i++)
        b_pairs += baseline_replay(&L, lse, out, &jobs[(i * 5) % 12], &b_recall);
    double tb_replay = now() - t0;

    double ours_ref = ref_pairs / t_ref, ours_rep = replay_pairs / t_replay;
    double base_ref = ref_pairs / tb_ref, base_rep = b_pairs / tb_replay;
    double ours_all = (ref_pairs + replay_pairs) / (t_ref + t_replay);
    double base_all_time = ref_pairs / base_ref + replay_pairs / base_rep;
    printf("%-10s %12s %12s %9s %10s\n", "part", "ours Mp/s", "plain Mp/s", "speedup", "% roofline");
    printf("%-10s %12.1f %12.1f %8.1fx %9.0f%%\n", "reference", ours_ref / 1e6, base_ref / 1e6,
           ours_ref / base_ref, 100.0 * ours_ref / roof_pairs);
    printf("%-10s %12.1f %12.1f %8.1fx %9.0f%%\n", "replay", ours_rep / 1e6, base_rep / 1e6,
           ours_rep / base_rep, 100.0 * ours_rep / roof_pairs);
    printf("%-10s %12.1f %12.1f %8.1fx %9.0f%%\n", "layer", ours_all / 1e6,
           (ref_pairs + replay_pairs) / base_all_time / 1e6, base_all_time / (t_ref + t_replay),
           100.0 * ours_all / roof_pairs);
    double per_layer = t_ref + t_replay;
    printf("one layer: reference %.2f s + 12 jobs %.2f s; a 32-layer trace x 12 jobs takes %.0f s: %.1f "
           "(trace x policy x budget) per minute\n",
           t_ref, t_replay, 32 * per_layer, 12.0 * 60.0 / (32 * per_layer));
    ikv_sim_reference_free(&ref);
    free(q);
    free(k);
    free(v);
    free(lse);
    free(out);
    return 0;
}
