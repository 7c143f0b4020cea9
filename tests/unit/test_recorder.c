/*
 * The recorder (src/capture): a capture of a small synthetic model with
 * every signal, written on the caller's thread and written behind the
 * engine on the recorder's own thread, must give the same trace bit for
 * bit; a write that fails on that thread must come back to the caller.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture/recorder.h"
#include "model/model.h"
#include "model/session.h"
#include "runner.h"
#include "sync_fault.h"
#include "trace/trace.h"

/* LONG: the model's whole context, over a MiB of band data (the trace
 * writer's background sync starts there) */
enum { PROMPT = 40, TOTAL = 160, LONG = 256, CHUNK = 16 };

static ikv_model *model;
static int32_t tokens[LONG];
static char tmpdir[256];

static int setup(void)
{
    ikv_model_shape shape;
    if (ikv_model_shape_preset("tiny", &shape) != IKV_OK)
        return -1;
    shape.max_seq_len = LONG;
    char err[256];
    if (ikv_model_synthetic(&model, &shape, IKV_WTYPE_F32, 11, err, sizeof err) != IKV_OK)
        return -1;
    uint64_t s = 777;
    for (int i = 0; i < LONG; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        tokens[i] = (int32_t)((s >> 33) % (uint64_t)shape.vocab_size);
    }
    return 0;
}

/* One capture of `total` positions: prefill in chunks, then decode, with
 * a buffer of `window` positions; durable: the writer syncs the file.
 * IKV_OK, or the first error (err says which). */
static int capture_n(const char *path, unsigned signals, int background, int window, int summary, int total,
                     int durable, char *err, size_t errlen)
{
    ikv_trace_meta meta;
    ikv_recorder_meta(ikv_model_info(model), PROMPT, &meta);
    ikv_trace_spec spec = ikv_trace_writer_default_spec();
    spec.signals = signals;
    spec.expected_tokens = total;
    spec.deferred_create = background; /* as infokv-capture: the recorder's thread creates the file */
    spec.durable = durable;
    ikv_session *s = NULL;
    ikv_trace_writer *w = NULL;
    ikv_recorder *rec = NULL;
    int rc = ikv_session_create(&s, model, total, 1, err, errlen);
    if (rc == IKV_OK)
        rc = ikv_trace_writer_create(&w, path, &meta, &spec, err, errlen) == 0 ? IKV_OK : IKV_EIO;
    ikv_recorder_config cfg = {s, &spec, window, total, 0, background, summary};
    if (rc == IKV_OK)
        rc = ikv_recorder_create(&rec, w, &cfg, err, errlen);
    if (rc == IKV_OK) {
        ikv_observer obs = ikv_recorder_observer(rec);
        rc = ikv_session_set_observer(s, &obs);
    }
    for (int done = 0; rc == IKV_OK && done < total;) {
        const int n = done < PROMPT ? (PROMPT - done < CHUNK ? PROMPT - done : CHUNK) : 1;
        rc = n > 1 ? ikv_session_prefill(s, tokens + done, n) : ikv_session_decode(s, tokens[done]);
        done += n;
        if (rc == IKV_OK)
            rc = ikv_recorder_write(rec, tokens, done, err, errlen);
    }
    if (rc == IKV_OK)
        rc = ikv_recorder_finish(rec, err, errlen);
    if (rc == IKV_OK)
        CU_ASSERT_EQUAL(ikv_recorder_positions(rec), total);
    ikv_recorder_free(rec); /* before the writer: its thread may still write */
    if (w && rc == IKV_OK)
        rc = ikv_trace_writer_close(w, 1, err, errlen) == 0 ? IKV_OK : IKV_EIO;
    else if (w)
        ikv_trace_writer_abort(w);
    ikv_session_free(s);
    return rc;
}

static int capture(const char *path, unsigned signals, int background, int window, int summary, char *err,
                   size_t errlen)
{
    return capture_n(path, signals, background, window, summary, TOTAL, 0, err, errlen);
}

typedef struct compare {
    ikv_trace_reader *a, *b;
    int datasets, differ;
} compare;

/* Dataset info->path of both traces, read whole, compared bit for bit. */
static int compare_dataset(const ikv_trace_dataset_info *info, void *ctx)
{
    compare *c = ctx;
    int64_t start[IKV_TRACE_MAX_RANK] = {0}, count[IKV_TRACE_MAX_RANK], dims_b[IKV_TRACE_MAX_RANK];
    size_t n = 1;
    for (int i = 0; i < info->rank; i++) {
        count[i] = info->dims[i];
        n *= (size_t)info->dims[i];
    }
    c->datasets++;
    if (ikv_trace_dims(c->b, info->path, dims_b) != info->rank ||
        memcmp(dims_b, info->dims, (size_t)info->rank * sizeof *dims_b) != 0) {
        printf("\n    %s: shapes differ ", info->path);
        c->differ++;
        return 0;
    }
    const int ints = info->type[0] == 'i';
    void *x = malloc(n * 4 + 4), *y = malloc(n * 4 + 4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    int ra = ints ? ikv_trace_read_i32(c->a, info->path, start, count, x)
                  : ikv_trace_read_f32(c->a, info->path, start, count, x);
    int rb = ints ? ikv_trace_read_i32(c->b, info->path, start, count, y)
                  : ikv_trace_read_f32(c->b, info->path, start, count, y);
    if (ra != 0 || rb != 0 || memcmp(x, y, n * 4) != 0) {
        printf("\n    %s differs ", info->path);
        c->differ++;
    }
    free(x);
    free(y);
    return 0;
}

static void path_of(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", tmpdir, name);
}

/* 1 if the traces at a and b hold the same datasets, bit for bit, and
 * at least min_datasets of them. */
static int same_traces(const char *a, const char *b, int min_datasets)
{
    char err[512];
    compare c = {NULL, NULL, 0, 0};
    CU_ASSERT_EQUAL_FATAL(ikv_trace_open(&c.a, a, err, sizeof err), 0);
    CU_ASSERT_EQUAL_FATAL(ikv_trace_open(&c.b, b, err, sizeof err), 0);
    ikv_trace_foreach_dataset(c.a, compare_dataset, &c);
    ikv_trace_close(c.a);
    ikv_trace_close(c.b);
    return c.datasets >= min_datasets && c.differ == 0;
}

/* Written behind the engine or not, the same trace, for the default
 * signals and for every signal (dense attention, states, full logits);
 * the last case's ring (2 x 160 slots of 27 KB) is big enough for the
 * recorder to map it on huge pages. */
static void test_same_trace(void)
{
    const unsigned sets[3] = {ikv_trace_writer_default_spec().signals, IKV_TRACE_ALL, IKV_TRACE_ALL};
    const int windows[3] = {CHUNK, CHUNK, TOTAL};
    for (int i = 0; i < 3; i++) {
        char here[512], behind[512], err[512];
        path_of(here, sizeof here, "here.h5");
        path_of(behind, sizeof behind, "behind.h5");
        CU_ASSERT_EQUAL_FATAL(capture(here, sets[i], 0, CHUNK, IKV_LOGITS_AUTO, err, sizeof err), IKV_OK);
        int rc = capture(behind, sets[i], 1, windows[i], IKV_LOGITS_AUTO, err, sizeof err);
        if (rc != IKV_OK)
            printf("\n    %s ", err);
        CU_ASSERT_EQUAL_FATAL(rc, IKV_OK);
        CU_ASSERT(same_traces(here, behind, i ? 12 : 9));
        unlink(here);
        unlink(behind);
    }
}

/* Entropy, top-k and log-probabilities summarised in the logits callback
 * (the recorder's buffer then holds no logits; the first position of each
 * call takes the session's logits of the call before) give the same
 * trace as from the buffered logits when written: on the caller's thread
 * and behind the engine, and with the full logits saved too. The prompt
 * goes in three calls (16, 16, 8 positions), then one per position. */
static void test_summary_in_callback(void)
{
    const unsigned sets[2] = {ikv_trace_writer_default_spec().signals, IKV_TRACE_ALL};
    for (int i = 0; i < 2; i++)
        for (int background = 0; background < 2; background++) {
            char reference[512], here[512], err[512];
            path_of(reference, sizeof reference, "reference.h5");
            path_of(here, sizeof here, "callback.h5");
            CU_ASSERT_EQUAL_FATAL(capture(reference, sets[i], 0, CHUNK, IKV_LOGITS_WHEN_WRITTEN, err, sizeof err),
                                  IKV_OK);
            int rc = capture(here, sets[i], background, CHUNK, IKV_LOGITS_IN_CALLBACK, err, sizeof err);
            if (rc != IKV_OK)
                printf("\n    %s ", err);
            CU_ASSERT_EQUAL_FATAL(rc, IKV_OK);
            CU_ASSERT(same_traces(reference, here, i ? 12 : 9));
            unlink(reference);
            unlink(here);
        }
}

/* A write that fails on the recorder's thread (here the background sync
 * of a durable trace) reaches the caller, by a later write or by finish,
 * with the writer's message; no trace appears. */
static void test_failure_behind(void)
{
    char path[512], err[512] = "";
    path_of(path, sizeof path, "fail.h5");
    ikv_fail_fdatasync = 1;
    ikv_fdatasync_calls = 0;
    const int rc = capture_n(path, IKV_TRACE_ALL, 1, CHUNK, IKV_LOGITS_AUTO, LONG, 1, err, sizeof err);
    ikv_fail_fdatasync = 0;
    CU_ASSERT_FATAL(ikv_fdatasync_calls > 0); /* else the capture is too short to test this */
    CU_ASSERT_NOT_EQUAL(rc, IKV_OK);
    if (!strstr(err, "cannot sync the file"))
        printf("\n    message: %s ", err);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot sync the file"));
    CU_ASSERT(access(path, F_OK) != 0);
}

static void add_suites(void)
{
    static const ikv_test_case cases[] = {
        {"written behind the engine: the same trace", test_same_trace},
        {"logits summarised in the callback: the same trace", test_summary_in_callback},
        {"a failure behind the engine reaches the caller", test_failure_behind},
        {NULL, NULL}};
    ikv_test_suite("recorder", cases);
}

int main(int argc, char **argv)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/ikv-recorder-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    if (setup() != 0) {
        fprintf(stderr, "cannot build the synthetic model\n");
        return 1;
    }
    int rc = ikv_test_main(argc, argv, add_suites);
    ikv_model_free(model);
    rmdir(tmpdir);
    return rc;
}
