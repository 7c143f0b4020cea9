/*
 * bench_live: decode speed with live eviction at budgets 64..2048 against
 * the full cache, on a synthetic Llama-3.2-1B-shaped model with T cached
 * positions (default 4096), all measured in one run.
 *
 * One prefill of T tokens fills a template session; each configuration
 * starts from a copy of that cache (ikv_session_copy_cache), compresses it
 * to its budget with H2O (ikv_live_attach), then decodes S tokens with
 * per-step eviction. Reported per configuration: ms per decode step, the
 * share of a step spent on eviction bookkeeping (the policy's observe and
 * step, and compaction of the cache), and the attention time the budget
 * saves against the full cache (the step-time difference).
 *
 * Usage: bench_live [T] [steps] [weight type: q8_0|bf16|f32] (4096 16 q8_0)
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "live/live.h"
#include "model/model.h"
#include "model/session.h"
#include "model/wtype.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    int T = argc > 1 ? atoi(argv[1]) : 4096;
    int S = argc > 2 ? atoi(argv[2]) : 16;
    const char *type_name = argc > 3 ? argv[3] : "q8_0";
    ikv_wtype type = strcmp(type_name, "f32") == 0 ? IKV_WTYPE_F32
                     : strcmp(type_name, "bf16") == 0 ? IKV_WTYPE_BF16 : IKV_WTYPE_Q8_0;
    if (T < 128 || S < 1) {
        fprintf(stderr, "bench_live: usage: bench_live [T >= 128] [steps] [q8_0|bf16|f32]\n");
        return 2;
    }
    char err[512];
    ikv_model_shape shape;
    ikv_model_shape_preset("llama-3.2-1b", &shape);
    shape.max_seq_len = T + S + 8;
    ikv_model *m;
    if (ikv_model_synthetic(&m, &shape, type, 1, err, sizeof err) != IKV_OK) {
        fprintf(stderr, "bench_live: %s\n", err);
        return 1;
    }
    const ikv_model_details *info = ikv_model_info(m);
    int32_t *tokens = malloc((size_t)(T + S) * sizeof *tokens);
    uint64_t x = 7;
    for (int i = 0; i < T + S; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        tokens[i] = (int32_t)((x >> 33) % (uint64_t)info->vocab_size);
    }
    ikv_session *tmpl, *work;
    if (ikv_session_create(&tmpl, m, T + S, 0, err, sizeof err) != IKV_OK ||
        ikv_session_create(&work, m, T + S, 0, err, sizeof err) != IKV_OK) {
        fprintf(stderr, "bench_live: %s\n", err);
        return 1;
    }
    printf("bench_live: synthetic Llama-3.2-1B (%s), %d cached positions, %d decode steps per row, %d threads\n",
           info->weight_type, T, S, ikv_session_threads(tmpl));
    double t0 = now(), c0 = cpu_now();
    for (int done = 0; done < T; done += 256) {
        int n = T - done < 256 ? T - done : 256;
        if (ikv_session_prefill(tmpl, tokens + done, n) != IKV_OK) {
            fprintf(stderr, "bench_live: %s\n", ikv_session_error(tmpl));
            return 1;
        }
    }
    printf("prefill of %d tokens: %.1f s (%.1f tok/s wall, %.1f per CPU-second)\n", T, now() - t0,
           T / (now() - t0), T / (cpu_now() - c0));

    static const int budgets[] = {0, 2048, 1024, 512, 256, 128, 64};
    double full_step = 0.0;
    printf("%8s %12s %10s %14s %16s\n", "budget", "ms/step", "tok/s", "bookkeeping", "attention saved");
    for (size_t b = 0; b < sizeof budgets / sizeof *budgets; b++) {
        int budget = budgets[b];
        if (budget >= T)
            continue;
        if (ikv_session_copy_cache(work, tmpl) != IKV_OK) {
            fprintf(stderr, "bench_live: %s\n", ikv_session_error(work));
            return 1;
        }
        ikv_live *lv = NULL;
        if (budget > 0) {
            ikv_params p = ikv_default_params(IKV_POLICY_H2O);
            p.scenario = IKV_SCENARIO_DECODE;
            p.budget.value = budget;
            if (ikv_live_create(&lv, work, &p, err, sizeof err) != IKV_OK || ikv_live_attach(lv, T + S) != IKV_OK) {
                fprintf(stderr, "bench_live: %s\n", lv ? ikv_live_error(lv) : err);
                return 1;
            }
        }
        /* warm: one step outside the timing (first-touch of the buffers) */
        int rc = lv ? ikv_live_decode(lv, tokens[T]) : ikv_session_decode(work, tokens[T]);
        double book0 = lv ? ikv_live_stats_of(lv)->bookkeeping_s : 0.0;
        double best = 1e30;
        double t_all = 0.0;
        for (int s = 1; s < S && rc == IKV_OK; s++) {
            double ts = now();
            rc = lv ? ikv_live_decode(lv, tokens[T + s]) : ikv_session_decode(work, tokens[T + s]);
            double dt = now() - ts;
            t_all += dt;
            best = dt < best ? dt : best;
        }
        if (rc != IKV_OK) {
            fprintf(stderr, "bench_live: %s\n", lv ? ikv_live_error(lv) : ikv_session_error(work));
            return 1;
        }
        double mean = t_all / (S - 1);
        double book = lv ? (ikv_live_stats_of(lv)->bookkeeping_s - book0) / (S - 1) : 0.0;
        if (budget == 0)
            full_step = best;
        char label[16];
        snprintf(label, sizeof label, "%s", budget ? "" : "full");
        if (budget)
            snprintf(label, sizeof label, "%d", budget);
        printf("%8s %12.2f %10.2f %13.2f%% %13.2f ms\n", label, 1e3 * best, 1.0 / best,
               budget ? 100.0 * book / mean : 0.0, budget ? 1e3 * (full_step - best) : 0.0);
        ikv_live_free(lv);
        ikv_session_set_observer(work, NULL);
    }
    printf("ms/step is the best of the decode steps (the machine is shared); bookkeeping is over their mean.\n");
    ikv_session_free(work);
    ikv_session_free(tmpl);
    ikv_model_free(m);
    free(tokens);
    return 0;
}
