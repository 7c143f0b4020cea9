/*
 * bench_select: cost of the eviction core's selection, against a plain
 * full sort (qsort of every cached token's score) measured in the same run.
 *
 * For T cached tokens, budget B and 32 heads (each its own KV head), it
 * times:
 *   compress  one ikv_policy_step() of H2O bringing every head from T to B
 *             slots: aggregation, ranking, introselect, fill compaction and
 *             moves (prefill, or a decode interval);
 *   baseline  qsort of the T (score, position) pairs of every head, then
 *             taking the best B (what a naive implementation does);
 *   evict-1   steady-state decode: one token appended to B cached and one
 *             evicted, per step (H2O's per-step path).
 * Reported in ns per cached token (per head), and the baseline/core ratio.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "infokv/core.h"

enum { HEADS = 32 };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng_state = 0x853c49e6748fea9bull;
static float next_unit(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)(rng_state >> 40) / 16777216.0f;
}

typedef struct pair {
    float score;
    int32_t pos;
} pair;

static int pair_order(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return (x->pos < y->pos) - (x->pos > y->pos);
}

static volatile int32_t sink;

static double bench_baseline(const float *scores /* [HEADS][T] */, int T, int B, int reps)
{
    pair *pairs = malloc((size_t)T * sizeof *pairs);
    double best = INFINITY;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        for (int h = 0; h < HEADS; h++) {
            for (int i = 0; i < T; i++)
                pairs[i] = (pair){scores[(size_t)h * (size_t)T + (size_t)i], i};
            qsort(pairs, (size_t)T, sizeof *pairs, pair_order);
            sink = pairs[B - 1].pos;
        }
        double dt = now() - t0;
        best = dt < best ? dt : best;
    }
    free(pairs);
    return best;
}

static ikv_policy *make_policy(int T, int B)
{
    char err[256];
    ikv_params p = ikv_default_params(IKV_POLICY_H2O);
    p.budget.value = B;
    p.scenario = IKV_SCENARIO_DECODE;
    ikv_shape shape = {1, HEADS, HEADS, 0, 0, T + 4096};
    ikv_policy *policy;
    if (ikv_policy_create(&policy, &p, &shape, err, sizeof err) != IKV_OK) {
        fprintf(stderr, "bench_select: %s\n", err);
        exit(1);
    }
    return policy;
}

/* One row of attention per head over the current slots. */
static void observe(ikv_policy *policy, const float *scores, int T, int32_t query, int n)
{
    if (ikv_policy_observe_attention(policy, 0, query, scores, n, T) != IKV_OK) {
        fprintf(stderr, "bench_select: %s\n", ikv_policy_error(policy));
        exit(1);
    }
}

static double bench_compress(const float *scores, int T, int B, int reps)
{
    ikv_policy *policy = make_policy(T, B);
    double best = INFINITY;
    for (int r = 0; r < reps; r++) {
        ikv_policy_begin(policy, T, T + 1);
        for (int t = 0; t < T; t++)
            ikv_policy_append(policy, t);
        observe(policy, scores, T, T - 1, T);
        int evicted;
        double t0 = now();
        ikv_policy_step(policy, &evicted);
        double dt = now() - t0;
        if (evicted != HEADS * (T - B)) {
            fprintf(stderr, "bench_select: evicted %d, expected %d\n", evicted, HEADS * (T - B));
            exit(1);
        }
        best = dt < best ? dt : best;
    }
    ikv_policy_free(policy);
    return best;
}

/* Steady-state decode: per step, one row observed and one slot evicted per
 * head; returns seconds per step (observation excluded). */
static double bench_evict_one(const float *scores, int T, int B, int steps)
{
    ikv_policy *policy = make_policy(T, B);
    ikv_policy_begin(policy, B, B + steps + 1);
    for (int t = 0; t < B; t++)
        ikv_policy_append(policy, t);
    observe(policy, scores, T, B - 1, B);
    ikv_policy_step(policy, NULL);
    double total = 0.0;
    for (int s = 0; s < steps; s++) {
        int32_t pos = B + s;
        ikv_policy_append(policy, pos);
        observe(policy, scores, T, pos, B + 1);
        int evicted;
        double t0 = now();
        ikv_policy_step(policy, &evicted);
        total += now() - t0;
        if (evicted != HEADS) {
            fprintf(stderr, "bench_select: decode step evicted %d\n", evicted);
            exit(1);
        }
    }
    ikv_policy_free(policy);
    return total / steps;
}

int main(void)
{
    static const int Ts[] = {1024, 8192, 32768};
    static const int Bs[] = {64, 512, 2048};
    printf("eviction core selection, %d heads, H2O; best of several runs\n", HEADS);
    printf("%6s %5s | %14s %14s %7s | %16s\n", "T", "B", "core ns/token", "qsort ns/token",
           "speedup", "evict-1 ns/step");
    for (size_t ti = 0; ti < sizeof Ts / sizeof *Ts; ti++) {
        int T = Ts[ti];
        float *scores = malloc((size_t)HEADS * (size_t)T * sizeof *scores);
        for (size_t i = 0; i < (size_t)HEADS * (size_t)T; i++)
            scores[i] = next_unit();
        int reps = T >= 32768 ? 5 : 20;
        for (size_t bi = 0; bi < sizeof Bs / sizeof *Bs; bi++) {
            int B = Bs[bi];
            if (B >= T)
                continue;
            double core = bench_compress(scores, T, B, reps);
            double base = bench_baseline(scores, T, B, reps);
            double step = bench_evict_one(scores, T, B, 200);
            double per = 1e9 / ((double)T * HEADS);
            printf("%6d %5d | %14.2f %14.2f %6.1fx | %16.0f\n", T, B, core * per, base * per,
                   base / core, step * 1e9 / HEADS);
        }
        free(scores);
    }
    printf("evict-1 is per head and step: one token appended to B and one evicted.\n");
    return 0;
}
