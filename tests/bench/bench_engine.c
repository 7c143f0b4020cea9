/*
 * Engine benchmark: prefill and decode tokens/s on stories260K (when
 * ../shared/models is there) and on a synthetic model of a real shape
 * (Llama-3.2-1B by default), with 1 and 2 threads, beside the machine's
 * read bandwidth measured in the same run. Decode is reported as a share
 * of the bandwidth roofline (every weight byte read once per token, plus
 * the KV cache); prefill as a speed-up per token over decode.
 *
 *   bench_engine [--shape NAME] [--types bf16,q8_0] [--threads 1,2]
 *                [--prefill N] [--decode N] [--context N] [--gib N]
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "model/kernels.h"
#include "model/model.h"
#include "model/session.h"

#include "bench_stats.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU seconds of the whole process: on a machine shared with other work,
 * tokens per CPU-second show the speed the code has when it runs (for
 * one thread; with more, waiting threads may spin and count too). */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- read bandwidth ---- */

/* Sum of n floats, streaming (the value only keeps the loads alive). */
static float stream_sum(const float *p, size_t n)
{
    size_t i = 0;
    float total = 0.0f;
#if defined(__AVX512F__)
    __m512 a = _mm512_setzero_ps(), b = a, c = a, d = a;
    for (; i + 64 <= n; i += 64) {
        a = _mm512_add_ps(a, _mm512_load_ps(p + i));
        b = _mm512_add_ps(b, _mm512_load_ps(p + i + 16));
        c = _mm512_add_ps(c, _mm512_load_ps(p + i + 32));
        d = _mm512_add_ps(d, _mm512_load_ps(p + i + 48));
    }
    total = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a, b), _mm512_add_ps(c, d)));
#elif defined(__AVX2__)
    __m256 a = _mm256_setzero_ps(), b = a, c = a, d = a;
    for (; i + 32 <= n; i += 32) {
        a = _mm256_add_ps(a, _mm256_load_ps(p + i));
        b = _mm256_add_ps(b, _mm256_load_ps(p + i + 8));
        c = _mm256_add_ps(c, _mm256_load_ps(p + i + 16));
        d = _mm256_add_ps(d, _mm256_load_ps(p + i + 24));
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, _mm256_add_ps(_mm256_add_ps(a, b), _mm256_add_ps(c, d)));
    for (int k = 0; k < 8; k++)
        total += lanes[k];
#else
    float part[16] = {0};
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++)
            part[k] += p[i + k];
    for (int k = 0; k < 16; k++)
        total += part[k];
#endif
    for (; i < n; i++)
        total += p[i];
    return total;
}

/* Best of `passes` passes over `bytes` of memory, in GB/s (1e9). */
static double read_bandwidth(const float *buf, size_t bytes, int threads, int passes)
{
    size_t n = bytes / sizeof(float);
    double best = 0.0;
    volatile float sink = 0.0f;
    for (int pass = 0; pass < passes; pass++) {
        double t0 = now();
        float total = 0.0f;
#pragma omp parallel num_threads(threads) reduction(+ : total)
        {
#ifdef _OPENMP
            int id = omp_get_thread_num(), count = omp_get_num_threads();
#else
            int id = 0, count = 1;
#endif
            size_t chunk = (n / (size_t)count) / 64 * 64;
            size_t first = chunk * (size_t)id, last = id == count - 1 ? n : first + chunk;
            total += stream_sum(buf + first, last - first);
        }
        double t = now() - t0;
        sink += total;
        if (bytes / t / 1e9 > best)
            best = bytes / t / 1e9;
    }
    (void)sink;
    return best;
}

/* ---- model runs ---- */

typedef struct result {
    double prefill_tps; /* tokens/s */
    double decode_tps;  /* the best of DECODE_ROUNDS rounds */
    double prefill_cpu; /* tokens per CPU-second */
    double decode_cpu;
    double roofline_share; /* median over rounds of decode bytes/s over
                              the bandwidth measured just before */
    double share_low, share_high; /* their range */
    double round_bw;       /* median of those bandwidths, GB/s */
} result;

/* Other work on a shared machine slows some rounds down; the best round
 * is the closest to what the code can do. */
#define DECODE_ROUNDS 5

typedef struct bandwidth_probe {
    const float *buf;
    size_t bytes;
    double best[8]; /* GB/s per thread count: best of 6 passes at start */
} bandwidth_probe;

static double bytes_per_token(const ikv_model *m, int context);

/* Prefill and decode rounds. Each decode round is paired with a read of
 * the probe just before it (best of 4 passes), and the roofline share is
 * the median of the rounds' own ratios: a slow spell on the shared
 * machine then lowers both sides of a ratio instead of only one (the
 * share used to be the best round against the best of 12 probe passes,
 * and moved by 20 points between runs of the same code). */
static int run_model(const ikv_model *m, int threads, int n_prefill, int n_decode,
                     const bandwidth_probe *probe, result *r)
{
    const ikv_model_details *info = ikv_model_info(m);
    char err[256];
    ikv_session *s;
    int capacity = n_prefill + DECODE_ROUNDS * n_decode + 1;
    if (ikv_session_create(&s, m, capacity, threads, err, sizeof err) != IKV_OK) {
        fprintf(stderr, "bench_engine: %s\n", err);
        return -1;
    }
    int32_t *tokens = malloc((size_t)capacity * sizeof *tokens);
    for (int i = 0; i < capacity; i++)
        tokens[i] = (int32_t)((i * 7919u + 13u) % (unsigned)info->vocab_size);
    /* warm the caches and pages once, then time */
    ikv_session_decode(s, tokens[0]);
    ikv_session_reset(s);
    /* prefill: the best of DECODE_ROUNDS, as for decode (the first also
     * pays for touching the session's pages) */
    int rc = 0;
    r->prefill_tps = r->prefill_cpu = 0.0;
    for (int round = 0; round < DECODE_ROUNDS && !rc; round++) {
        ikv_session_reset(s);
        double t0 = now(), c0 = cpu_now();
        rc = ikv_session_prefill(s, tokens, n_prefill);
        double tps = n_prefill / (now() - t0), cps = n_prefill / (cpu_now() - c0);
        r->prefill_tps = tps > r->prefill_tps ? tps : r->prefill_tps;
        r->prefill_cpu = cps > r->prefill_cpu ? cps : r->prefill_cpu;
    }
    r->decode_tps = r->decode_cpu = 0.0;
    double shares[DECODE_ROUNDS], bws[DECODE_ROUNDS];
    int rounds = 0;
    for (int round = 0, next = n_prefill; round < DECODE_ROUNDS && !rc; round++) {
        double bw = read_bandwidth(probe->buf, probe->bytes, threads, 4);
        double bpt = bytes_per_token(m, next + n_decode / 2);
        double t1 = now(), c1 = cpu_now();
        for (int i = 0; i < n_decode && !rc; i++)
            rc = ikv_session_decode(s, tokens[next++]);
        double tps = n_decode / (now() - t1), cps = n_decode / (cpu_now() - c1);
        r->decode_tps = tps > r->decode_tps ? tps : r->decode_tps;
        r->decode_cpu = cps > r->decode_cpu ? cps : r->decode_cpu;
        shares[rounds] = tps * bpt / (bw * 1e9);
        bws[rounds++] = bw;
    }
    if (rounds > 0) {
        const bench_spread share = bench_spread_of(shares, rounds);
        r->roofline_share = share.median;
        r->share_low = share.low;
        r->share_high = share.high;
        r->round_bw = bench_spread_of(bws, rounds).median;
    }
    if (rc)
        fprintf(stderr, "bench_engine: %s\n", ikv_session_error(s));
    free(tokens);
    ikv_session_free(s);
    return rc ? -1 : 0;
}

/* Bytes one decode step reads: every weight (the embedding row aside,
 * which is one row; a tied classifier reads the matrix once) and the KV
 * cache of the context. */
static double bytes_per_token(const ikv_model *m, int context)
{
    const ikv_model_details *i = ikv_model_info(m);
    double kv = 2.0 * i->n_layers * i->n_kv_heads * (double)context * i->head_dim * sizeof(float);
    return (double)i->weight_bytes + kv;
}

/* One line per thread count: speeds, and decode against the bandwidth
 * read just before each of its rounds (run_model). */

static void report(const char *label, const ikv_model *m, const int *threads, int n_threads,
                   int n_prefill, int n_decode, const bandwidth_probe *probe)
{
    const ikv_model_details *info = ikv_model_info(m);
    double bpt = bytes_per_token(m, n_prefill + DECODE_ROUNDS * n_decode / 2);
    for (int k = 0; k < n_threads; k++) {
        result r;
        if (run_model(m, threads[k], n_prefill, n_decode, probe, &r) != 0)
            continue;
        printf("%-13s %-5s %d thr  prefill %8.1f tok/s  decode %8.2f tok/s  (%5.2f GB/s read; "
               "probe %5.2f GB/s)  decode/roofline %5.1f%% (rounds %.0f-%.0f%%; %.0f%% of the best "
               "probe)  prefill/decode %5.1fx  | per CPU-s: prefill %8.1f decode %8.2f\n",
               label, info->weight_type, threads[k], r.prefill_tps, r.decode_tps,
               r.decode_tps * bpt / 1e9, r.round_bw, 100.0 * r.roofline_share,
               100.0 * r.share_low, 100.0 * r.share_high,
               100.0 * r.decode_tps * bpt / 1e9 / probe->best[k], r.prefill_tps / r.decode_tps,
               r.prefill_cpu, r.decode_cpu);
        fflush(stdout);
    }
}

static int parse_list(const char *text, int *out, int max)
{
    int n = 0;
    char *copy = strdup(text), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok && n < max; tok = strtok_r(NULL, ",", &save))
        out[n++] = atoi(tok);
    free(copy);
    return n;
}

int main(int argc, char **argv)
{
    const char *shape_name = "llama-3.2-1b";
    const char *types = "bf16,q8_0";
    int threads[8] = {1, 2}, n_threads = 2;
    int n_prefill = 128, n_decode = 8, gib = 1;
    static const struct option options[] = {
        {"shape", required_argument, NULL, 'S'}, {"types", required_argument, NULL, 'T'},
        {"threads", required_argument, NULL, 't'}, {"prefill", required_argument, NULL, 'p'},
        {"decode", required_argument, NULL, 'd'}, {"gib", required_argument, NULL, 'g'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (c) {
        case 'S': shape_name = optarg; break;
        case 'T': types = optarg; break;
        case 't': n_threads = parse_list(optarg, threads, 8); break;
        case 'p': n_prefill = atoi(optarg); break;
        case 'd': n_decode = atoi(optarg); break;
        case 'g': gib = atoi(optarg); break;
        default:
            printf("usage: %s [--shape tiny|llama-3.2-1b|llama-3.1-8b] [--types f32,f16,bf16,q8_0]\n"
                   "       [--threads 1,2] [--prefill N] [--decode N] [--gib N]\n", argv[0]);
            return c == 'h' ? 0 : 2;
        }
    }
    if (n_threads < 1 || n_prefill < 1 || n_decode < 1 || gib < 1) {
        fprintf(stderr, "bench_engine: bad arguments\n");
        return 2;
    }
    printf("kernels: %s\n", ikv_kernels_isa());

    /* bandwidth roofline of this machine, per thread count */
    size_t bytes = (size_t)gib << 30;
    float *buf = aligned_alloc(64, bytes);
    if (!buf) {
        fprintf(stderr, "bench_engine: cannot allocate %d GiB\n", gib);
        return 1;
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < bytes / sizeof(float); i++)
        buf[i] = 1.0f;
    bandwidth_probe probe = {buf, bytes, {0}};
    for (int k = 0; k < n_threads; k++) {
        probe.best[k] = read_bandwidth(buf, bytes, threads[k], 6);
        printf("read bandwidth, %d thread%s: %.2f GB/s (%d GiB buffer, best of 6 passes)\n", threads[k],
               threads[k] > 1 ? "s" : "", probe.best[k], gib);
    }

    char err[512];
    /* IKV_MODELS, or ../shared/models beside the source tree (make bench
     * runs in the build folder) */
    const char *dir = getenv("IKV_MODELS");
    if (!dir)
        dir = IKV_SRCDIR "/../shared/models";
    char path[4096], tok[4096];
    snprintf(path, sizeof path, "%s/stories260K.bin", dir);
    snprintf(tok, sizeof tok, "%s/tok512.bin", dir);
    ikv_model *m;
    if (ikv_model_load(&m, path, tok, err, sizeof err) == IKV_OK) {
        report("stories260K", m, threads, n_threads, 64, 192, &probe);
        ikv_model_free(m);
    } else {
        printf("stories260K: skipped (%s)\n", err);
    }

    ikv_model_shape shape;
    if (ikv_model_shape_preset(shape_name, &shape) != IKV_OK) {
        fprintf(stderr, "bench_engine: unknown shape %s\n", shape_name);
        return 2;
    }
    char *list = strdup(types), *save = NULL;
    for (char *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        ikv_wtype type;
        if (ikv_wtype_from_name(name, &type) != IKV_OK) {
            fprintf(stderr, "bench_engine: unknown weight type %s\n", name);
            return 2;
        }
        double t0 = now();
        if (ikv_model_synthetic(&m, &shape, type, 1, err, sizeof err) != IKV_OK) {
            fprintf(stderr, "bench_engine: %s\n", err);
            return 1;
        }
        const ikv_model_details *info = ikv_model_info(m);
        printf("%s %s: %.2f GB of weights, built in %.1f s\n", shape_name, info->weight_type,
               info->weight_bytes / 1e9, now() - t0);
        report(shape_name, m, threads, n_threads, n_prefill, n_decode, &probe);
        ikv_model_free(m);
    }
    free(list);
    free(buf);
    return 0;
}
