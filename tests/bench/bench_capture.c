/*
 * bench_capture: the cost of recording a trace, as a ratio to the same run
 * of the engine alone measured in the same process: stories260K (when
 * ../shared/models is there) and a synthetic Llama-3.2-1B-shaped model.
 * For the default signal set (tokens, logit summaries, evolution, q/k/v)
 * in float32, with q/k/v in float16, without deflate, and in float32
 * synced to disk before its rename (--fsync) it reports the overhead (the
 * median over pairs of runs, bench_model), the write throughput (MB/s of
 * the data handed to the writer) and the compression ratio of the file.
 *
 * Usage: bench_capture [MODELS_DIR] [1B-positions] (defaults
 * ../shared/models beside the source tree, 96), with
 * OMP_WAIT_POLICY=passive as `make bench` runs it.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "capture/recorder.h"
#include "model/model.h"
#include "model/session.h"
#include "model/wtype.h"
#include "trace/trace.h"

#include "bench_stats.h"

#define CHUNK 64

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct result {
    double seconds;
    double logical_bytes; /* data handed to the writer */
    double file_bytes;
} result;

static int sum_logical(const ikv_trace_dataset_info *info, void *ctx)
{
    *(double *)ctx += (double)info->logical_bytes;
    return 0;
}

/* One run: prefill in chunks of CHUNK (as the capture program does), then
 * decode the remaining tokens; with a trace when spec is given. */
static int run(ikv_model *m, const int32_t *tokens, int n_prompt, int total, const ikv_trace_spec *spec,
               const char *path, result *out)
{
    char err[512];
    ikv_session *s;
    if (ikv_session_create(&s, m, total, 0, err, sizeof err) != IKV_OK) {
        fprintf(stderr, "bench_capture: %s\n", err);
        return -1;
    }
    ikv_trace_writer *w = NULL;
    ikv_recorder *rec = NULL;
    const ikv_model_details *info = ikv_model_info(m);
    double t0 = now();
    if (spec) {
        ikv_trace_meta meta;
        ikv_recorder_meta(info, n_prompt, &meta);
        if (ikv_trace_writer_create(&w, path, &meta, spec, err, sizeof err) != 0) {
            fprintf(stderr, "bench_capture: %s\n", err);
            return -1;
        }
        ikv_recorder_config cfg = {s, spec, CHUNK, total, 0, 1, IKV_LOGITS_AUTO}; /* as infokv-capture */
        if (ikv_recorder_create(&rec, w, &cfg, err, sizeof err) != IKV_OK) {
            fprintf(stderr, "bench_capture: %s\n", err);
            return -1;
        }
        ikv_observer obs = ikv_recorder_observer(rec);
        ikv_session_set_observer(s, &obs);
    }
    int done = 0;
    while (done < n_prompt) {
        int n = n_prompt - done < CHUNK ? n_prompt - done : CHUNK;
        if (ikv_session_prefill(s, tokens + done, n) != IKV_OK)
            return -1;
        done += n;
        if (rec && ikv_recorder_write(rec, tokens, done, err, sizeof err) != IKV_OK) {
            fprintf(stderr, "bench_capture: %s\n", err);
            return -1;
        }
    }
    for (; done < total; done++) {
        if (ikv_session_decode(s, tokens[done]) != IKV_OK)
            return -1;
        if (rec && ikv_recorder_write(rec, tokens, done + 1, err, sizeof err) != IKV_OK) {
            fprintf(stderr, "bench_capture: %s\n", err);
            return -1;
        }
    }
    if (rec && ikv_recorder_finish(rec, err, sizeof err) != IKV_OK) {
        fprintf(stderr, "bench_capture: %s\n", err);
        return -1;
    }
    if (w && ikv_trace_writer_close(w, 1, err, sizeof err) != 0) {
        fprintf(stderr, "bench_capture: %s\n", err);
        return -1;
    }
    out->seconds = now() - t0;
    out->logical_bytes = out->file_bytes = 0.0;
    if (spec) {
        ikv_trace_reader *r;
        if (ikv_trace_open(&r, path, err, sizeof err) == 0) {
            ikv_trace_foreach_dataset(r, sum_logical, &out->logical_bytes);
            ikv_trace_close(r);
        }
        struct stat st;
        if (stat(path, &st) == 0)
            out->file_bytes = (double)st.st_size;
        unlink(path);
    }
    ikv_recorder_free(rec);
    ikv_session_free(s);
    return 0;
}

static void run_or_exit(ikv_model *m, const int32_t *tokens, int n_prompt, int total, const ikv_trace_spec *spec,
                        const char *path, result *out)
{
    if (run(m, tokens, n_prompt, total, spec, path, out) != 0)
        exit(1);
}

/* Each capture configuration is paired with a run of the engine alone
 * next to it (in alternating order), and the overhead is the median of
 * the pairs' ratios: this VM's speed drifts by tens of percent over
 * seconds, which a ratio of two separate minima takes for overhead or
 * hides. The spread of the pairs is printed with it. */
static void bench_model(const char *label, ikv_model *m, int n_prompt, int total, int reps)
{
    const ikv_model_details *info = ikv_model_info(m);
    int32_t *tokens = malloc((size_t)total * sizeof *tokens);
    uint64_t x = 99;
    for (int i = 0; i < total; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        tokens[i] = (int32_t)((x >> 33) % (uint64_t)info->vocab_size);
    }
    char path[64];
    snprintf(path, sizeof path, "/tmp/bench_capture-%ld.h5", (long)getpid());
    ikv_trace_spec f32 = ikv_trace_writer_default_spec();
    f32.signals = IKV_TRACE_TOKENS | IKV_TRACE_LOGITS_SUMMARY | IKV_TRACE_EVOLUTION | IKV_TRACE_QKV;
    f32.expected_tokens = total;
    f32.deferred_create = 1; /* as infokv-capture: the recorder's thread creates the file */
    ikv_trace_spec f16 = f32;
    f16.dtype = IKV_TRACE_F16;
    ikv_trace_spec f32_raw = f32, f16_raw = f16; /* --deflate 0 */
    f32_raw.deflate_level = f16_raw.deflate_level = 0;
    ikv_trace_spec f32_durable = f32; /* --fsync */
    f32_durable.durable = 1;
    enum { N_CONFIGS = 5, MAX_REPS = 64 };
    const ikv_trace_spec *specs[N_CONFIGS] = {&f32, &f16, &f32_raw, &f16_raw, &f32_durable};
    const char *names[N_CONFIGS] = {"default, f32", "default, q/k/v f16", "f32, --deflate 0",
                                    "f16, --deflate 0", "f32, --fsync"};
    if (reps > MAX_REPS)
        reps = MAX_REPS;
    double ratio[N_CONFIGS][MAX_REPS], extra[N_CONFIGS][MAX_REPS], mb_s[N_CONFIGS][MAX_REPS];
    double best_engine = INFINITY, best[N_CONFIGS], file_ratio[N_CONFIGS];
    for (int c = 0; c < N_CONFIGS; c++)
        best[c] = INFINITY;
    for (int rep = 0; rep < reps; rep++) {
        for (int c = 0; c < N_CONFIGS; c++) {
            result engine, capture;
            const int engine_first = (rep + c) % 2 == 0;
            if (engine_first)
                run_or_exit(m, tokens, n_prompt, total, NULL, path, &engine);
            run_or_exit(m, tokens, n_prompt, total, specs[c], path, &capture);
            if (!engine_first)
                run_or_exit(m, tokens, n_prompt, total, NULL, path, &engine);
            ratio[c][rep] = capture.seconds / engine.seconds;
            extra[c][rep] = capture.seconds - engine.seconds;
            mb_s[c][rep] = capture.logical_bytes / 1e6 / capture.seconds;
            file_ratio[c] = capture.file_bytes > 0 ? capture.logical_bytes / capture.file_bytes : 0.0;
            best_engine = engine.seconds < best_engine ? engine.seconds : best_engine;
            best[c] = capture.seconds < best[c] ? capture.seconds : best[c];
        }
    }
    printf("%s: %d positions (prompt %d), %d pairs of runs\n", label, total, n_prompt, reps);
    /* the overhead also in milliseconds per run: with a fast engine the
     * per-file costs (create, close, fsync) dominate the ratio */
    printf("  %-20s %9s %10s %15s %9s %10s %7s\n", "", "best tok/s", "overhead", "pairs' range", "extra ms",
           "write MB/s", "ratio");
    printf("  %-20s %9.1f\n", "engine alone", total / best_engine);
    for (int c = 0; c < N_CONFIGS; c++) {
        const bench_spread r = bench_spread_of(ratio[c], reps);
        printf("  %-20s %9.1f %9.1f%% %6.1f..%5.1f%% %9.2f %10.1f %7.2f\n", names[c], total / best[c],
               100.0 * (r.median - 1.0), 100.0 * (r.low - 1.0), 100.0 * (r.high - 1.0),
               1e3 * bench_spread_of(extra[c], reps).median, bench_spread_of(mb_s[c], reps).median, file_ratio[c]);
    }
    free(tokens);
}

int main(int argc, char **argv)
{
    const char *wait = getenv("OMP_WAIT_POLICY");
    if (!wait || strcasecmp(wait, "passive") != 0) /* as libgomp reads it */
        printf("note: OMP_WAIT_POLICY is %s, not passive: the engine's OpenMP threads spin between\n"
               "      parallel regions, and the capture's threads take their time from them\n"
               "      (the README's figures are with passive; `make bench` sets it)\n",
               wait ? wait : "unset");
    const char *models = argc > 1 ? argv[1] : IKV_SRCDIR "/../shared/models";
    int big_total = argc > 2 ? atoi(argv[2]) : 96;
    char err[512], path[4096], tok[4096];
    snprintf(path, sizeof path, "%s/stories260K.bin", models);
    snprintf(tok, sizeof tok, "%s/tok512.bin", models);
    ikv_model *m;
    if (access(path, R_OK) == 0 && ikv_model_load(&m, path, tok, err, sizeof err) == IKV_OK) {
        bench_model("stories260K", m, 64, 512, 21); /* 30 ms a run: more pairs */
        ikv_model_free(m);
    } else {
        printf("stories260K: skipped (%s not found)\n", path);
    }
    ikv_model_shape shape;
    ikv_model_shape_preset("llama-3.2-1b", &shape);
    shape.max_seq_len = big_total + 8;
    if (ikv_model_synthetic(&m, &shape, IKV_WTYPE_Q8_0, 1, err, sizeof err) != IKV_OK) {
        fprintf(stderr, "bench_capture: %s\n", err);
        return 1;
    }
    bench_model("synthetic Llama-3.2-1B (Q8_0)", m, 32, big_total, 5);
    ikv_model_free(m);
    return 0;
}
