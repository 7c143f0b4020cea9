/*
 * bench_trace: trace writer and reader throughput.
 *
 * Writes synthetic traces of two real shapes (stories260K with every
 * signal, Llama-3.2-1B with the default signals) in f32 and f16 and with
 * a few chunk layouts, then reads q/k/v back the way the simulator does
 * (one layer at a time, all heads, all positions). Reports logical MB/s
 * (float32 bytes handed to the writer, or returned by the reader),
 * compression ratio (logical float32 bytes / file bytes), and each speed
 * as a ratio to a baseline measured in the same run: fwrite + fsync of
 * the same logical bytes, and fread of them back.
 *
 * IKV_BENCH_TOKENS overrides the number of positions (default 256).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "trace/trace.h"
#include "../unit/trace_synth.h"

/* Best of REPEATS runs: the machine is shared, the minimum is the signal. */
#define REPEATS 3

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static long long file_bytes(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* All rows of a run, copied out of the generator so timing sees only I/O. */
typedef struct rows {
    int T, L, H, G, d, D, V, K;
    unsigned signals;
    ikv_trace_row *row;    /* [T] */
    float *arena;          /* backing store of the float arrays */
    int32_t *ids;          /* [T][K] */
    double logical;        /* float32 bytes handed to the writer */
} rows;

static size_t row_floats(const rows *r, int t)
{
    size_t L = (size_t)r->L, H = (size_t)r->H, G = (size_t)r->G, d = (size_t)r->d;
    size_t n = (size_t)r->K + L;                    /* topk logprobs, evolution */
    if (r->signals & IKV_TRACE_QKV)
        n += L * H * d + 2 * L * G * d;
    if (r->signals & IKV_TRACE_ATTN_STATS)
        n += L * H + L * H * d;
    if (r->signals & IKV_TRACE_ATTN_PROBS)
        n += L * H * (size_t)(t + 1);
    if (r->signals & IKV_TRACE_STATES)
        n += (L + 1) * (size_t)r->D;
    if (r->signals & IKV_TRACE_LOGITS_FULL)
        n += (size_t)r->V;
    return n;
}

static const float *take(float **p, const float *src, size_t n)
{
    float *dst = *p;
    memcpy(dst, src, n * sizeof *dst);
    *p += n;
    return dst;
}

static int make_rows(rows *r, const ikv_trace_meta *m, unsigned signals, int T, int K)
{
    memset(r, 0, sizeof *r);
    r->T = T; r->L = m->n_layers; r->H = m->n_heads; r->G = m->n_kv_heads;
    r->d = m->head_dim; r->D = m->dim; r->V = m->vocab_size; r->K = K;
    r->signals = signals;
    size_t total = 0;
    for (int t = 0; t < T; t++)
        total += row_floats(r, t);
    r->arena = malloc(total * sizeof(float));
    r->row = calloc((size_t)T, sizeof *r->row);
    r->ids = malloc(sizeof(int32_t) * (size_t)T * (size_t)K);
    ikv_synth syn;
    /* Attention from q/k costs O(T^2) to generate; only the small shape
     * needs it (its probs are stored). */
    int attention = (signals & IKV_TRACE_ATTN_PROBS) != 0;
    if (!r->arena || !r->row || !r->ids ||
        ikv_synth_init(&syn, m, NULL, 0, T, K, K, 11, attention) != 0)
        return -1;
    float *p = r->arena;
    size_t L = (size_t)r->L, H = (size_t)r->H, G = (size_t)r->G, d = (size_t)r->d;
    for (int t = 0; t < T; t++) {
        ikv_trace_row src;
        ikv_synth_row(&syn, t, &src);
        ikv_trace_row *dst = &r->row[t];
        *dst = src;
        memcpy(r->ids + (size_t)t * (size_t)K, src.topk_ids, sizeof(int32_t) * (size_t)K);
        dst->topk_ids = r->ids + (size_t)t * (size_t)K;
        dst->topk_logprobs = take(&p, src.topk_logprobs, (size_t)K);
        dst->evolution = take(&p, src.evolution, L);
        dst->q = dst->k = dst->v = dst->lse = dst->out = dst->probs = dst->states = dst->logits = NULL;
        if (signals & IKV_TRACE_QKV) {
            dst->q = take(&p, src.q, L * H * d);
            dst->k = take(&p, src.k, L * G * d);
            dst->v = take(&p, src.v, L * G * d);
        }
        if (signals & IKV_TRACE_ATTN_STATS) {
            dst->lse = take(&p, src.lse, L * H);
            dst->out = take(&p, src.out, L * H * d);
        }
        if (signals & IKV_TRACE_ATTN_PROBS)
            dst->probs = take(&p, src.probs, L * H * (size_t)(t + 1));
        if (signals & IKV_TRACE_STATES)
            dst->states = take(&p, src.states, (L + 1) * (size_t)r->D);
        if (signals & IKV_TRACE_LOGITS_FULL)
            dst->logits = take(&p, src.logits, (size_t)r->V);
        /* + token, entropy, entropy_topk, logprob, topk ids */
        r->logical += 4.0 * (double)(row_floats(r, t) + 4 + (size_t)K);
    }
    ikv_synth_free(&syn);
    return 0;
}

static void free_rows(rows *r)
{
    free(r->arena);
    free(r->row);
    free(r->ids);
}

/* Baseline: the same logical bytes through stdio, then fsync. */
static double raw_write(const char *path, const rows *r)
{
    double t0 = now();
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    const float *p = r->arena;
    for (int t = 0; t < r->T; t++) {
        size_t n = row_floats(r, t);
        fwrite(p, sizeof(float), n, f);
        fwrite(&r->row[t].token, sizeof(int32_t), 1, f);
        fwrite(r->ids + (size_t)t * (size_t)r->K, sizeof(int32_t), (size_t)r->K, f);
        fwrite(&r->row[t].entropy, sizeof(float), 1, f);
        fwrite(&r->row[t].entropy_topk, sizeof(float), 1, f);
        fwrite(&r->row[t].logprob, sizeof(float), 1, f);
        p += n;
    }
    fflush(f);
    fsync(fileno(f));
    fclose(f);
    return now() - t0;
}

/* Baseline read: q, k, v bytes back with fread, one layer at a time. */
static double raw_read(const char *path, const rows *r, float *buf, double *bytes)
{
    size_t per_layer = (size_t)(r->H + 2 * r->G) * (size_t)r->T * (size_t)r->d;
    double t0 = now();
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    *bytes = 0;
    for (int l = 0; l < r->L; l++) {
        size_t got = fread(buf, sizeof(float), per_layer, f);
        *bytes += 4.0 * (double)got;
    }
    fclose(f);
    return now() - t0;
}

typedef struct config {
    const char *label;
    ikv_trace_dtype dtype;
    int chunk_tokens;
    int all_heads;
    int deflate;
} config;

/* Writes the trace once; returns seconds or -1. */
static double time_write(const char *path, const ikv_trace_meta *meta,
                         const ikv_trace_spec *spec, const rows *r)
{
    char err[1024];
    double t0 = now();
    ikv_trace_writer *w;
    if (ikv_trace_writer_create(&w, path, meta, spec, err, sizeof err) != IKV_TRACE_OK) {
        fprintf(stderr, "bench_trace: %s\n", err);
        return -1;
    }
    for (int t = 0; t < r->T; t++)
        if (ikv_trace_write_position(w, &r->row[t]) != IKV_TRACE_OK) {
            fprintf(stderr, "bench_trace: %s\n", ikv_trace_writer_error(w));
            ikv_trace_writer_abort(w);
            return -1;
        }
    if (ikv_trace_writer_close(w, 1, err, sizeof err) != IKV_TRACE_OK) {
        fprintf(stderr, "bench_trace: %s\n", err);
        return -1;
    }
    return now() - t0;
}

/* The simulator's pattern: for each layer, q, k and v of all heads.
 * Returns seconds or -1; *bytes = float32 bytes delivered. */
static double time_read(const char *path, int L, double *bytes)
{
    char err[1024];
    ikv_trace_reader *rd;
    if (ikv_trace_open(&rd, path, err, sizeof err) != IKV_TRACE_OK) {
        fprintf(stderr, "bench_trace: %s\n", err);
        return -1;
    }
    size_t qb = ikv_trace_read_bytes(rd, "qkv/q"), kb = ikv_trace_read_bytes(rd, "qkv/k");
    float *buf = malloc(qb + 2 * kb);
    double secs = -1;
    *bytes = 0;
    if (buf) {
        double t0 = now();
        int l;
        for (l = 0; l < L; l++) {
            if (ikv_trace_read_layer(rd, "qkv/q", l, buf) != IKV_TRACE_OK ||
                ikv_trace_read_layer(rd, "qkv/k", l, buf + qb / 4) != IKV_TRACE_OK ||
                ikv_trace_read_layer(rd, "qkv/v", l, buf + (qb + kb) / 4) != IKV_TRACE_OK) {
                fprintf(stderr, "bench_trace: %s\n", ikv_trace_reader_error(rd));
                break;
            }
            *bytes += (double)(qb + 2 * kb);
        }
        if (l == L)
            secs = now() - t0;
    }
    free(buf);
    ikv_trace_close(rd);
    return secs;
}

static int run(const char *dir, const char *shape, const ikv_trace_meta *m, const rows *r,
               const config *c, double raw_w_rate, double raw_r_rate)
{
    char path[512];
    snprintf(path, sizeof path, "%s/bench.h5", dir);
    ikv_trace_spec spec = ikv_trace_writer_default_spec();
    spec.signals = r->signals;
    spec.dtype = c->dtype;
    spec.chunk_tokens = c->chunk_tokens;
    spec.chunk_all_heads = c->all_heads;
    spec.deflate_level = c->deflate;
    spec.expected_tokens = r->T;
    spec.topk = r->K;
    spec.entropy_k = r->K;
    ikv_trace_meta meta = *m;
    meta.n_prompt = r->T / 2;

    double wt = 1e30, rt = 1e30, rbytes = 0;
    long long size = 0;
    for (int rep = 0; rep < REPEATS; rep++) {
        double w = time_write(path, &meta, &spec, r);
        size = file_bytes(path);
        double rd = w > 0 ? time_read(path, r->L, &rbytes) : -1;
        unlink(path);
        if (w < 0 || rd < 0)
            return -1;
        if (w < wt)
            wt = w;
        if (rd < rt)
            rt = rd;
    }
    double w_rate = r->logical / wt / 1e6, r_rate = rbytes / rt / 1e6;
    printf("%-14s %-26s %10.1f %7.2fx %8.2f %10.1f %7.2fx\n", shape, c->label, w_rate,
           w_rate / raw_w_rate, r->logical / (double)size, r_rate, r_rate / raw_r_rate);
    fflush(stdout);
    return 0;
}

static int bench_shape(const char *dir, const char *shape, const ikv_trace_meta *m,
                       unsigned signals, int T, const config *configs, int n)
{
    rows r;
    if (make_rows(&r, m, signals, T, 20) != 0) {
        fprintf(stderr, "bench_trace: out of memory for %s\n", shape);
        return -1;
    }
    char raw[512];
    snprintf(raw, sizeof raw, "%s/raw.bin", dir);
    double wt = 1e30, rt = 1e30, rbytes = 0;
    size_t per_layer = (size_t)(r.H + 2 * r.G) * (size_t)r.T * (size_t)r.d;
    float *buf = malloc(per_layer * sizeof(float));
    for (int rep = 0; rep < REPEATS && buf; rep++) {
        double w = raw_write(raw, &r), rd = raw_read(raw, &r, buf, &rbytes);
        if (w < wt)
            wt = w;
        if (rd < rt)
            rt = rd;
    }
    free(buf);
    unlink(raw);
    if (wt <= 0 || rt <= 0) {
        free_rows(&r);
        return -1;
    }
    double raw_w = r.logical / wt / 1e6, raw_r = rbytes / rt / 1e6;
    printf("%-14s %-26s %10.1f %8s %8s %10.1f %8s   (T=%d, %.1f MB logical)\n", shape,
           "baseline: raw stdio", raw_w, "1.00x", "1.00", raw_r, "1.00x", T, r.logical / 1e6);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++)
        rc = run(dir, shape, m, &r, &configs[i], raw_w, raw_r);
    free_rows(&r);
    return rc;
}

int main(void)
{
    const char *env = getenv("IKV_BENCH_TOKENS");
    int T = env && atoi(env) > 0 ? atoi(env) : 256;
    const char *base = getenv("TMPDIR");
    char dir[256];
    snprintf(dir, sizeof dir, "%s/ikv-bench-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    printf("bench_trace: write = logical float32 MB/s into the writer incl. close/fsync;\n"
           "ratio = logical bytes / file bytes; read = MB/s of q,k,v per layer (page cache).\n\n");
    printf("%-14s %-26s %10s %8s %8s %10s %8s\n", "shape", "config", "write MB/s", "vs raw",
           "ratio", "read MB/s", "vs raw");

    ikv_trace_meta small = ikv_synth_small_meta();
    static const config small_cfg[] = {
        {"f32 (default chunks)", IKV_TRACE_F32, 64, 1, 1},
        {"f16 (default chunks)", IKV_TRACE_F16, 64, 1, 1},
    };
    int rc = bench_shape(dir, "stories260K", &small, IKV_TRACE_ALL, T, small_cfg, 2);

    ikv_trace_meta big = small;
    snprintf(big.model_name, sizeof big.model_name, "Llama-3.2-1B-shaped");
    big.n_layers = 16;
    big.n_heads = 32;
    big.n_kv_heads = 8;
    big.head_dim = 64;
    big.dim = 2048;
    big.hidden_dim = 8192;
    big.vocab_size = 128256;
    static const config big_cfg[] = {
        {"f32 chunk 64 x all heads", IKV_TRACE_F32, 64, 1, 1}, /* the default */
        {"f16 chunk 64 x all heads", IKV_TRACE_F16, 64, 1, 1},
        {"f32 chunk 64 x 1 head", IKV_TRACE_F32, 64, 0, 1},
        {"f32 chunk 256 x 1 head", IKV_TRACE_F32, 256, 0, 1},
        {"f32 chunk 16 x all heads", IKV_TRACE_F32, 16, 1, 1},
        {"f32 default, deflate 4", IKV_TRACE_F32, 64, 1, 4},
        {"f32 default, no deflate", IKV_TRACE_F32, 64, 1, 0},
        {"f16 default, no deflate", IKV_TRACE_F16, 64, 1, 0},
    };
    if (rc == 0)
        rc = bench_shape(dir, "Llama-3.2-1B", &big, IKV_TRACE_DEFAULT, T, big_cfg,
                         (int)(sizeof big_cfg / sizeof big_cfg[0]));
    rmdir(dir);
    return rc == 0 ? 0 : 1;
}
