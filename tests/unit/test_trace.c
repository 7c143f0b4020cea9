/*
 * The trace writer and reader through their public API: round trips of
 * every dataset (f32 exactly, f16 within half precision), layer subsets,
 * interrupted runs (complete = 0), growth past the expected length, the
 * temporary/final name protocol, extras, and argument/read errors.
 * Expected values are regenerated from the synthetic generator
 * (trace_synth.c), never taken from the code under test.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner.h"
#include "trace/trace.h"
#include "trace_synth.h"
#include "util/outfile.h"

static char tmpdir[256];

static void make_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/ikv-trace-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        exit(1);
    }
}

static void tmp_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", tmpdir, name);
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int dir_entries(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p) {
        if (fscanf(p, "%d", &n) != 1)
            n = -1;
        pclose(p);
    }
    return n;
}

typedef struct wopts {
    ikv_trace_dtype dtype;
    const int *layers;
    int n_layers;
    int T;        /* positions planned (synth arrays) */
    int stop;     /* positions written; -1: T */
    unsigned signals;
    int chunk;
    int expected;
    uint32_t seed;
    int all_heads; /* chunk_all_heads */
} wopts;

static wopts default_opts(void)
{
    wopts o = {IKV_TRACE_F32, NULL, 0, 40, -1, IKV_TRACE_ALL, 16, 40, 7, 1};
    return o;
}

static ikv_trace_spec spec_of_opts(const wopts *o)
{
    ikv_trace_spec spec = ikv_trace_writer_default_spec();
    spec.signals = o->signals;
    spec.dtype = o->dtype;
    spec.layers = o->layers;
    spec.n_layers = o->layers ? o->n_layers : 0;
    spec.chunk_tokens = o->chunk;
    spec.expected_tokens = o->expected;
    spec.chunk_all_heads = o->all_heads;
    spec.topk = 10;
    spec.entropy_k = 20;
    return spec;
}

/* Writes a synthetic trace; returns the number of positions written or -1. */
static int write_trace(const char *path, const wopts *o)
{
    ikv_trace_meta meta = ikv_synth_small_meta();
    ikv_trace_spec spec = spec_of_opts(o);
    ikv_synth syn;
    if (ikv_synth_init(&syn, &meta, o->layers, o->n_layers, o->T, spec.topk, spec.entropy_k,
                       o->seed, 1) != 0)
        return -1;
    char err[1024];
    ikv_trace_writer *w;
    int rc = ikv_trace_writer_create(&w, path, &meta, &spec, err, sizeof err);
    if (rc != IKV_TRACE_OK) {
        printf("\n    create: %s ", err);
        ikv_synth_free(&syn);
        return -1;
    }
    int n = o->stop >= 0 ? o->stop : o->T;
    for (int t = 0; t < n; t++) {
        ikv_trace_row row;
        ikv_synth_row(&syn, t, &row);
        rc = ikv_trace_write_position(w, &row);
        if (rc != IKV_TRACE_OK) {
            printf("write: %s\n", ikv_trace_writer_error(w));
            ikv_trace_writer_abort(w);
            ikv_synth_free(&syn);
            return -1;
        }
    }
    CU_ASSERT_EQUAL(ikv_trace_writer_positions(w), n);
    rc = ikv_trace_writer_close(w, n == o->T, err, sizeof err);
    if (rc != IKV_TRACE_OK)
        printf("close: %s\n", err);
    ikv_synth_free(&syn);
    return rc == IKV_TRACE_OK ? n : -1;
}

/* got matches want: bit-exact for f32 (NaN matches NaN), within binary16
 * rounding (half an ulp, 2^-11 relative, 2^-25 absolute near zero). */
static int same(float got, float want, int half)
{
    if (isnan(want))
        return isnan(got);
    if (!half)
        return memcmp(&got, &want, sizeof got) == 0;
    return fabsf(got - want) <= fabsf(want) * 0x1p-11f + 0x1p-25f;
}

typedef struct readback {
    int T, L, H, G, d, D, V, K;
    int32_t *tokens, *topk_ids;
    float *entropy, *entropy_topk, *logprob, *topk_lp, *evol;
    float *q, *k, *v, *lse, *out, *probs, *states, *logits;
} readback;

static void *must_alloc(size_t bytes)
{
    void *p = calloc(1, bytes ? bytes : 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    return p;
}

static void free_readback(readback *b)
{
    free(b->tokens); free(b->topk_ids); free(b->entropy); free(b->entropy_topk);
    free(b->logprob); free(b->topk_lp); free(b->evol); free(b->q); free(b->k); free(b->v);
    free(b->lse); free(b->out); free(b->probs); free(b->states); free(b->logits);
}

/* Reads every dataset of an all-signals trace through the public API. */
static void read_all(ikv_trace_reader *r, readback *b)
{
    const ikv_trace_meta *m = ikv_trace_meta_of(r);
    const ikv_trace_spec *s = ikv_trace_spec_of(r);
    memset(b, 0, sizeof *b);
    b->T = m->n_tokens; b->L = s->n_layers; b->H = m->n_heads; b->G = m->n_kv_heads;
    b->d = m->head_dim; b->D = m->dim; b->V = m->vocab_size; b->K = s->topk;
    size_t T = (size_t)b->T, L = (size_t)b->L, H = (size_t)b->H, G = (size_t)b->G;
    size_t d = (size_t)b->d;
    b->tokens = must_alloc(4 * T);
    b->entropy = must_alloc(4 * T);
    b->entropy_topk = must_alloc(4 * T);
    b->logprob = must_alloc(4 * T);
    b->topk_ids = must_alloc(4 * T * (size_t)b->K);
    b->topk_lp = must_alloc(4 * T * (size_t)b->K);
    b->evol = must_alloc(4 * L * T);
    b->q = must_alloc(4 * L * H * T * d);
    b->k = must_alloc(4 * L * G * T * d);
    b->v = must_alloc(4 * L * G * T * d);
    b->lse = must_alloc(4 * L * H * T);
    b->out = must_alloc(4 * L * H * T * d);
    b->probs = must_alloc(4 * L * H * T * T);
    b->states = must_alloc(4 * (L + 1) * T * (size_t)b->D);
    b->logits = must_alloc(4 * T * (size_t)b->V);
    CU_ASSERT_EQUAL(ikv_trace_read_tokens(r, b->tokens), IKV_TRACE_OK);
    CU_ASSERT_EQUAL(ikv_trace_read_entropy(r, 0, b->entropy), IKV_TRACE_OK);
    CU_ASSERT_EQUAL(ikv_trace_read_entropy(r, 1, b->entropy_topk), IKV_TRACE_OK);
    CU_ASSERT_EQUAL(ikv_trace_read_logprob(r, b->logprob), IKV_TRACE_OK);
    CU_ASSERT_EQUAL(ikv_trace_read_topk(r, b->topk_ids, b->topk_lp), IKV_TRACE_OK);
    CU_ASSERT_EQUAL(ikv_trace_read_evolution(r, b->evol), IKV_TRACE_OK);
    for (size_t l = 0; l < L; l++) {
        CU_ASSERT_EQUAL(ikv_trace_read_layer(r, "qkv/q", (int)l, b->q + l * H * T * d), IKV_TRACE_OK);
        CU_ASSERT_EQUAL(ikv_trace_read_layer(r, "qkv/k", (int)l, b->k + l * G * T * d), IKV_TRACE_OK);
        CU_ASSERT_EQUAL(ikv_trace_read_layer(r, "/qkv/v", (int)l, b->v + l * G * T * d), IKV_TRACE_OK);
        CU_ASSERT_EQUAL(ikv_trace_read_layer(r, "attn/lse", (int)l, b->lse + l * H * T), IKV_TRACE_OK);
        CU_ASSERT_EQUAL(ikv_trace_read_layer(r, "attn/out", (int)l, b->out + l * H * T * d), IKV_TRACE_OK);
        CU_ASSERT_EQUAL(ikv_trace_read_layer(r, "attn/probs", (int)l, b->probs + l * H * T * T), IKV_TRACE_OK);
    }
    for (size_t l = 0; l <= L; l++)
        CU_ASSERT_EQUAL(ikv_trace_read_states(r, (int)l, 0, b->T, b->states + l * T * (size_t)b->D),
                        IKV_TRACE_OK);
    CU_ASSERT_EQUAL(ikv_trace_read_logits(r, 0, b->T, b->logits), IKV_TRACE_OK);
}

/* Compares a read-back trace with the synthetic rows 0..T-1; returns the
 * number of mismatching values. */
static long compare_rows(const readback *b, const wopts *o)
{
    ikv_trace_meta meta = ikv_synth_small_meta();
    ikv_synth syn;
    CU_ASSERT_EQUAL_FATAL(ikv_synth_init(&syn, &meta, o->layers, o->n_layers, o->T, 10, 20,
                                         o->seed, 1), 0);
    int half = o->dtype == IKV_TRACE_F16;
    long bad = 0;
    size_t T = (size_t)b->T, H = (size_t)b->H, G = (size_t)b->G, d = (size_t)b->d;
    for (int t = 0; t < b->T; t++) {
        ikv_trace_row row;
        ikv_synth_row(&syn, t, &row);
        bad += b->tokens[t] != row.token;
        bad += !same(b->entropy[t], row.entropy, 0);
        bad += !same(b->entropy_topk[t], row.entropy_topk, 0);
        bad += !same(b->logprob[t], row.logprob, 0);
        for (int i = 0; i < b->K; i++) {
            bad += b->topk_ids[(size_t)t * b->K + i] != row.topk_ids[i];
            bad += !same(b->topk_lp[(size_t)t * b->K + i], row.topk_logprobs[i], 0);
        }
        for (int v = 0; v < b->V; v++)
            bad += !same(b->logits[(size_t)t * b->V + v], row.logits[v], half);
        for (size_t l = 0; l < (size_t)b->L; l++) {
            bad += !same(b->evol[l * T + t], row.evolution[l], 0);
            for (size_t h = 0; h < H; h++) {
                bad += !same(b->lse[(l * H + h) * T + t], row.lse[l * H + h], 0);
                for (size_t i = 0; i < d; i++) {
                    bad += !same(b->q[((l * H + h) * T + t) * d + i], row.q[(l * H + h) * d + i], half);
                    bad += !same(b->out[((l * H + h) * T + t) * d + i], row.out[(l * H + h) * d + i], half);
                }
                const float *prow = b->probs + ((l * H + h) * T + t) * T;
                for (size_t j = 0; j < T; j++)
                    bad += !same(prow[j], j <= (size_t)t ? row.probs[(l * H + h) * (t + 1) + j] : 0.0f, half);
            }
            for (size_t g = 0; g < G; g++)
                for (size_t i = 0; i < d; i++) {
                    bad += !same(b->k[((l * G + g) * T + t) * d + i], row.k[(l * G + g) * d + i], half);
                    bad += !same(b->v[((l * G + g) * T + t) * d + i], row.v[(l * G + g) * d + i], half);
                }
        }
        for (size_t l = 0; l <= (size_t)b->L; l++)
            for (int i = 0; i < b->D; i++)
                bad += !same(b->states[(l * T + t) * b->D + i], row.states[l * b->D + i], half);
    }
    ikv_synth_free(&syn);
    return bad;
}

static void roundtrip(const wopts *o, const char *name)
{
    char path[512];
    tmp_path(path, sizeof path, name);
    int n = write_trace(path, o);
    CU_ASSERT_EQUAL_FATAL(n, o->stop >= 0 ? o->stop : o->T);
    char err[1024];
    ikv_trace_reader *r;
    int rc = ikv_trace_open(&r, path, err, sizeof err);
    if (rc != IKV_TRACE_OK)
        printf("open: %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, IKV_TRACE_OK);
    const ikv_trace_meta *m = ikv_trace_meta_of(r);
    const ikv_trace_spec *s = ikv_trace_spec_of(r);
    CU_ASSERT_EQUAL(m->n_tokens, n);
    CU_ASSERT_EQUAL(m->complete, n == o->T);
    CU_ASSERT_EQUAL(s->signals, o->signals | IKV_TRACE_TOKENS);
    CU_ASSERT_EQUAL(s->dtype, o->dtype);
    CU_ASSERT_EQUAL(s->topk, 10);
    CU_ASSERT_EQUAL(s->entropy_k, 20);
    readback b;
    read_all(r, &b);
    CU_ASSERT_EQUAL(compare_rows(&b, o), 0);
    free_readback(&b);
    ikv_trace_close(r);
    unlink(path);
}

static void test_roundtrip_f32(void)
{
    wopts o = default_opts();
    roundtrip(&o, "f32.h5");
}

static void test_roundtrip_f16(void)
{
    wopts o = default_opts();
    o.dtype = IKV_TRACE_F16;
    roundtrip(&o, "f16.h5");
}

static void test_roundtrip_blocks(void)
{
    /* One position per block, a block longer than the run, one head per
     * chunk, and growth far past the expected length; f32 and f16. */
    int chunks[4] = {1, 64, 7, 16};
    int expected[4] = {0, 10, 3, 0};
    int all_heads[4] = {1, 1, 0, 0};
    for (int i = 0; i < 8; i++) {
        wopts o = default_opts();
        o.chunk = chunks[i % 4];
        o.expected = expected[i % 4];
        o.all_heads = all_heads[i % 4];
        o.dtype = i < 4 ? IKV_TRACE_F32 : IKV_TRACE_F16;
        o.T = 30;
        roundtrip(&o, "blocks.h5");
    }
}

/* Value of q/k/v element (t, l, h, i): exact in binary16 (a multiple of
 * 1/64 below 16), different for every neighbour. */
static float big_value(int t, int l, int h, int i)
{
    return (float)((t * 7 + l * 131 + h * 17 + i * 3) % 2048 - 1024) / 64.0f;
}

/* Datasets whose chunks are one block long (per-position data over 32 KiB)
 * go through the writer's direct chunk path (shuffled and deflated by
 * infokv in parallel): q here, at 8 layers x 32 heads x 128. Two whole
 * blocks and a partial one (zero-padded at close), f32 and f16, read back
 * through HDF5's filters. Chunks several blocks long (the small datasets;
 * test_roundtrip_blocks) take the same path, a chunk length at a time. */
static void test_direct_chunks(void)
{
    ikv_trace_meta meta = ikv_synth_small_meta();
    meta.n_layers = 8;
    meta.n_heads = 32;
    meta.n_kv_heads = 8;
    meta.head_dim = 128;
    meta.dim = 4096;
    meta.vocab_size = 1000;
    const int L = 8, H = 32, G = 8, d = 128, T = 150;
    float *q = must_alloc(sizeof(float) * (size_t)L * H * d);
    float *k = must_alloc(sizeof(float) * (size_t)L * G * d);
    float *v = must_alloc(sizeof(float) * (size_t)L * G * d);
    float *back = must_alloc(sizeof(float) * (size_t)H * T * d);
    for (int half = 0; half < 2; half++) {
        char path[512], err[1024];
        tmp_path(path, sizeof path, half ? "direct16.h5" : "direct32.h5");
        ikv_trace_spec spec = ikv_trace_writer_default_spec();
        spec.signals = IKV_TRACE_TOKENS | IKV_TRACE_QKV;
        spec.dtype = half ? IKV_TRACE_F16 : IKV_TRACE_F32;
        spec.expected_tokens = T;
        ikv_trace_writer *w;
        CU_ASSERT_EQUAL_FATAL(ikv_trace_writer_create(&w, path, &meta, &spec, err, sizeof err), IKV_TRACE_OK);
        for (int t = 0; t < T; t++) {
            for (int l = 0; l < L; l++)
                for (int h = 0; h < H; h++)
                    for (int i = 0; i < d; i++) {
                        q[((size_t)l * H + h) * d + i] = big_value(t, l, h, i);
                        if (h < G) {
                            k[((size_t)l * G + h) * d + i] = big_value(t, l, h, i) + 0.5f;
                            v[((size_t)l * G + h) * d + i] = big_value(t, l, h, i) - 0.25f;
                        }
                    }
            ikv_trace_row row;
            memset(&row, 0, sizeof row);
            row.token = t % 1000;
            row.q = q;
            row.k = k;
            row.v = v;
            CU_ASSERT_EQUAL_FATAL(ikv_trace_write_position(w, &row), IKV_TRACE_OK);
        }
        CU_ASSERT_EQUAL_FATAL(ikv_trace_writer_close(w, 1, err, sizeof err), IKV_TRACE_OK);
        ikv_trace_reader *r;
        CU_ASSERT_EQUAL_FATAL(ikv_trace_open(&r, path, err, sizeof err), IKV_TRACE_OK);
        long bad = 0;
        for (int l = 0; l < L; l++) {
            CU_ASSERT_EQUAL(ikv_trace_read_layer(r, "qkv/q", l, back), IKV_TRACE_OK);
            for (int h = 0; h < H; h++)
                for (int t = 0; t < T; t++)
                    for (int i = 0; i < d; i++)
                        bad += back[(((size_t)h * T) + t) * d + i] != big_value(t, l, h, i);
            CU_ASSERT_EQUAL(ikv_trace_read_layer(r, "qkv/v", l, back), IKV_TRACE_OK);
            for (int g = 0; g < G; g++)
                for (int t = 0; t < T; t++)
                    for (int i = 0; i < d; i++)
                        bad += back[(((size_t)g * T) + t) * d + i] != big_value(t, l, g, i) - 0.25f;
        }
        CU_ASSERT_EQUAL(bad, 0);
        ikv_trace_close(r);
        unlink(path);
    }
    free(q);
    free(k);
    free(v);
    free(back);
}

static int q_sizes(const ikv_trace_dataset_info *info, void *ctx)
{
    if (strcmp(info->path, "/qkv/q") == 0) {
        ((int64_t *)ctx)[0] = info->logical_bytes;
        ((int64_t *)ctx)[1] = info->stored_bytes;
    }
    return 0;
}

/* Floats with random mantissas and a few exponents: after the shuffle,
 * three byte planes of noise and one of sign and exponent bits (3 bits of
 * entropy). Deflate saves nothing on the noise, so the writer stores
 * those planes and deflates the last: q's file size lands near
 * (3 + 3/8) / 4 of its data, in the first band (planes judged chunk by
 * chunk) and in the later ones (planes learnt from the first). Wholly
 * stored, it would be slightly over 1; wholly deflated, about the same
 * size but far slower (not seen here). */
static void test_byte_planes(void)
{
    ikv_trace_meta meta = ikv_synth_small_meta();
    meta.n_layers = 2;
    meta.n_heads = 16;
    meta.n_kv_heads = 4;
    meta.head_dim = 64;
    meta.dim = 1024;
    meta.vocab_size = 1000;
    const int L = 2, H = 16, G = 4, d = 64, T = 200;
    float *q = must_alloc(sizeof(float) * (size_t)L * H * d);
    float *kv = must_alloc(sizeof(float) * (size_t)L * G * d);
    memset(kv, 0, sizeof(float) * (size_t)L * G * d);
    char path[512], err[1024];
    tmp_path(path, sizeof path, "planes.h5");
    ikv_trace_spec spec = ikv_trace_writer_default_spec();
    spec.signals = IKV_TRACE_TOKENS | IKV_TRACE_QKV;
    spec.expected_tokens = T;
    ikv_trace_writer *w;
    CU_ASSERT_EQUAL_FATAL(ikv_trace_writer_create(&w, path, &meta, &spec, err, sizeof err), IKV_TRACE_OK);
    uint64_t x = 7;
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < L * H * d; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            const float mantissa = 1.0f + (float)(x >> 41) / 8388608.0f; /* 23 random bits */
            q[i] = ldexpf((x >> 40) & 1 ? -mantissa : mantissa, (int)((x >> 33) % 4) - 2);
        }
        ikv_trace_row row;
        memset(&row, 0, sizeof row);
        row.token = t;
        row.q = q;
        row.k = row.v = kv;
        CU_ASSERT_EQUAL_FATAL(ikv_trace_write_position(w, &row), IKV_TRACE_OK);
    }
    CU_ASSERT_EQUAL_FATAL(ikv_trace_writer_close(w, 1, err, sizeof err), IKV_TRACE_OK);
    ikv_trace_reader *r;
    CU_ASSERT_EQUAL_FATAL(ikv_trace_open(&r, path, err, sizeof err), IKV_TRACE_OK);
    int64_t sizes[2] = {0, 0};
    ikv_trace_foreach_dataset(r, q_sizes, sizes);
    ikv_trace_close(r);
    const double share = (double)sizes[1] / (double)sizes[0];
    if (!(share > 0.80 && share < 0.90))
        printf("\n    q stored in %.3f of its bytes ", share);
    CU_ASSERT(share > 0.80 && share < 0.90);
    unlink(path);
    free(q);
    free(kv);
}

static int chunk_bound(const ikv_trace_dataset_info *info, void *ctx)
{
    int64_t bytes = strcmp(info->type, "f16") == 0 ? 2 : 4;
    for (int i = 0; i < info->rank; i++)
        bytes *= info->chunk[i];
    if (bytes > 4 << 20 || bytes <= 0) {
        printf("\n    %s: chunk of %lld bytes ", info->path, (long long)bytes);
        (*(int *)ctx)++;
    }
    return 0;
}

static void test_chunk_bound(void)
{
    /* Long blocks and wide rows still give chunks of at most 4 MiB, which
     * the reader accepts; rows of a long block round-trip. */
    wopts o = default_opts();
    o.chunk = 512; /* probs: [1, 8, 512, 512] x 4 B = 8 MiB before the split */
    o.T = 20;
    o.expected = 0;
    roundtrip(&o, "long-block.h5");
    char path[512], err[1024];
    tmp_path(path, sizeof path, "long-block.h5");
    CU_ASSERT_EQUAL_FATAL(write_trace(path, &o), o.T);
    ikv_trace_reader *r;
    CU_ASSERT_EQUAL_FATAL(ikv_trace_open(&r, path, err, sizeof err), IKV_TRACE_OK);
    int too_big = 0;
    CU_ASSERT_EQUAL(ikv_trace_foreach_dataset(r, chunk_bound, &too_big), 0);
    CU_ASSERT_EQUAL(too_big, 0);
    ikv_trace_close(r);
    unlink(path);
    o.chunk = 4097;
    CU_ASSERT_EQUAL(write_trace(path, &o), -1);
}

static void test_meta_roundtrip(void)
{
    char path[512], err[1024];
    tmp_path(path, sizeof path, "meta.h5");
    wopts o = default_opts();
    o.signals = IKV_TRACE_DEFAULT;
    CU_ASSERT_EQUAL_FATAL(write_trace(path, &o), o.T);
    ikv_trace_reader *r;
    CU_ASSERT_EQUAL_FATAL(ikv_trace_open(&r, path, err, sizeof err), IKV_TRACE_OK);
    ikv_trace_meta want = ikv_synth_small_meta();
    const ikv_trace_meta *m = ikv_trace_meta_of(r);
    CU_ASSERT_STRING_EQUAL(m->model_name, want.model_name);
    CU_ASSERT_STRING_EQUAL(m->arch, want.arch);
    CU_ASSERT_STRING_EQUAL(m->model_sha256, want.model_sha256);
    CU_ASSERT_STRING_EQUAL(m->command, want.command);
    CU_ASSERT_EQUAL(m->n_layers, want.n_layers);
    CU_ASSERT_EQUAL(m->n_heads, want.n_heads);
    CU_ASSERT_EQUAL(m->n_kv_heads, want.n_kv_heads);
    CU_ASSERT_EQUAL(m->head_dim, want.head_dim);
    CU_ASSERT_EQUAL(m->dim, want.dim);
    CU_ASSERT_EQUAL(m->hidden_dim, want.hidden_dim);
    CU_ASSERT_EQUAL(m->vocab_size, want.vocab_size);
    CU_ASSERT_EQUAL(m->n_prompt, want.n_prompt);
    CU_ASSERT_DOUBLE_EQUAL(m->rope_theta, want.rope_theta, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(m->norm_eps, want.norm_eps, 0.0);
    CU_ASSERT(strncmp(m->producer, "infokv ", 7) == 0);
    /* ISO 8601 UTC: 2024-01-02T03:04:05Z */
    CU_ASSERT_EQUAL(strlen(m->created), 20);
    CU_ASSERT(m->created[4] == '-' && m->created[10] == 'T' && m->created[19] == 'Z');
    const ikv_trace_spec *s = ikv_trace_spec_of(r);
    CU_ASSERT_EQUAL(s->n_layers, 5);
    for (int i = 0; i < s->n_layers; i++)
        CU_ASSERT_EQUAL(s->layers[i], i);
    /* Default signals: no probs, states or full logits. */
    CU_ASSERT(ikv_trace_has(r, "qkv/q"));
    CU_ASSERT(ikv_trace_has(r, "/attn/lse"));
    CU_ASSERT(ikv_trace_has(r, "attn/out"));
    CU_ASSERT(!ikv_trace_has(r, "attn/probs"));
    CU_ASSERT(!ikv_trace_has(r, "hidden/states"));
    CU_ASSERT(!ikv_trace_has(r, "logits/full"));
    CU_ASSERT(!ikv_trace_has(r, "no/such"));
    int64_t dims[IKV_TRACE_MAX_RANK];
    CU_ASSERT_EQUAL(ikv_trace_dims(r, "qkv/k", dims), 4);
    CU_ASSERT(dims[0] == 5 && dims[1] == 4 && dims[2] == o.T && dims[3] == 8);
    CU_ASSERT_EQUAL(ikv_trace_read_bytes(r, "qkv/q"), (size_t)8 * o.T * 8 * 4);
    CU_ASSERT_EQUAL(ikv_trace_read_bytes(r, "attn/lse"), (size_t)8 * o.T * 4);
    CU_ASSERT_EQUAL(ikv_trace_read_bytes(r, "hidden/evolution"), (size_t)5 * o.T * 4);
    CU_ASSERT_EQUAL(ikv_trace_read_bytes(r, "attn/probs"), 0);
    int64_t k = 0;
    CU_ASSERT_EQUAL(ikv_trace_attr_int(r, "logits/entropy_topk", "k", &k), IKV_TRACE_OK);
    CU_ASSERT_EQUAL(k, 20);
    char units[32];
    CU_ASSERT_EQUAL(ikv_trace_attr_string(r, "logits/entropy", "units", units, sizeof units), IKV_TRACE_OK);
    CU_ASSERT_STRING_EQUAL(units, "nats");
    ikv_trace_close(r);
    unlink(path);
}

static void test_layer_subset(void)
{
    static const int layers[2] = {1, 3};
    char path[512], err[1024];
    tmp_path(path, sizeof path, "subset.h5");
    wopts o = default_opts();
    o.layers = layers;
    o.n_layers = 2;
    o.dtype = IKV_TRACE_F16;

    /* The writer's layer -> slot map. */
    ikv_trace_meta meta = ikv_synth_small_meta();
    ikv_trace_spec spec = spec_of_opts(&o);
    ikv_trace_writer *w;
    CU_ASSERT_EQUAL_FATAL(ikv_trace_writer_create(&w, path, &meta, &spec, err, sizeof err), IKV_TRACE_OK);
    CU_ASSERT_EQUAL(ikv_trace_writer_layer_slot(w, 0), -1);
    CU_ASSERT_EQUAL(ikv_trace_writer_layer_slot(w, 1), 0);
    CU_ASSERT_EQUAL(ikv_trace_writer_layer_slot(w, 2), -1);
    CU_ASSERT_EQUAL(ikv_trace_writer_layer_slot(w, 3), 1);
    CU_ASSERT_EQUAL(ikv_trace_writer_layer_slot(w, 5), -1);
    ikv_trace_writer_abort(w);

    roundtrip(&o, "subset.h5");

    /* Slot 1 holds model layer 3: check against the hash directly. */
    CU_ASSERT_EQUAL_FATAL(write_trace(path, &o), o.T);
    ikv_trace_reader *r;
    CU_ASSERT_EQUAL_FATAL(ikv_trace_open(&r, path, err, sizeof err), IKV_TRACE_OK);
    const ikv_trace_spec *s = ikv_trace_spec_of(r);
    CU_ASSERT_EQUAL(s->n_layers, 2);
    CU_ASSERT(s->layers[0] == 1 && s->layers[1] == 3);
    int64_t dims[IKV_TRACE_MAX_RANK];
    CU_ASSERT_EQUAL(ikv_trace_dims(r, "hidden/states", dims), 3);
    CU_ASSERT_EQUAL(dims[0], 3);
    CU_ASSERT_EQUAL(ikv_trace_dims(r, "hidden/evolution", dims), 2);
    CU_ASSERT_EQUAL(dims[0], 2);
    float *q = must_alloc(ikv_trace_read_bytes(r, "qkv/q"));
    CU_ASSERT_EQUAL(ikv_trace_read_layer(r, "qkv/q", 1, q), IKV_TRACE_OK);
    long bad = 0;
    for (int h = 0; h < 8; h++)
        for (int t = 0; t < o.T; t++)
            for (int i = 0; i < 8; i++)
                bad += !same(q[((size_t)h * o.T + t) * 8 + i],
                             3.0f * ikv_synth_value(o.seed, SYN_Q, 3, h, t, i), 1);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(ikv_trace_read_layer(r, "qkv/q", 2, q), IKV_TRACE_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(ikv_trace_reader_error(r), "slot 2"));
    free(q);
    ikv_trace_close(r);
    unlink(path);
}

static void test_interrupted(void)
{
    /* Closed with complete = 0 after k of T positions, k inside a block,
     * at a block boundary, and k = 0. */
    int stops[3] = {21, 16, 0};
    for (int i = 0; i < 3; i++) {
        wopts o = default_opts();
        o.stop = stops[i];
        roundtrip(&o, "interrupted.h5");
    }
    char path[512], err[1024];
    tmp_path(path, sizeof path, "empty.h5");
    wopts o = default_opts();
    o.stop = 0;
    CU_ASSERT_EQUAL_FATAL(write_trace(path, &o), 0);
    ikv_trace_reader *r;
    CU_ASSERT_EQUAL_FATAL(ikv_trace_open(&r, path, err, sizeof err), IKV_TRACE_OK);
    CU_ASSERT_EQUAL(ikv_trace_meta_of(r)->n_tokens, 0);
    CU_ASSERT_EQUAL(ikv_trace_meta_of(r)->complete, 0);
    CU_ASSERT_EQUAL(ikv_trace_read_bytes(r, "qkv/q"), 0);
    int32_t tok;
    CU_ASSERT_EQUAL(ikv_trace_read_tokens(r, &tok), IKV_TRACE_OK);
    ikv_trace_close(r);
    unlink(path);
}

static void test_final_name(void)
{
    char path[512], temp[600], err[1024];
    tmp_path(path, sizeof path, "final.h5");
    CU_ASSERT_EQUAL_FATAL(ikv_temp_name(path, temp, sizeof temp), 0);
    ikv_trace_meta meta = ikv_synth_small_meta();
    ikv_trace_spec spec = ikv_trace_writer_default_spec();
    ikv_synth syn;
    meta.n_prompt = 2;
    CU_ASSERT_EQUAL_FATAL(ikv_synth_init(&syn, &meta, NULL, 0, 4, 20, 20, 1, 1), 0);

    ikv_trace_writer *w;
    CU_ASSERT_EQUAL_FATAL(ikv_trace_writer_create(&w, path, &meta, &spec, err, sizeof err), IKV_TRACE_OK);
    CU_ASSERT(!file_exists(path));
    CU_ASSERT(file_exists(temp));
    for (int t = 0; t < 4; t++) {
        ikv_trace_row row;
        ikv_synth_row(&syn, t, &row);
        CU_ASSERT_EQUAL(ikv_trace_write_position(w, &row), IKV_TRACE_OK);
    }
    CU_ASSERT(!file_exists(path));
    CU_ASSERT_EQUAL(ikv_trace_writer_close(w, 1, err, sizeof err), IKV_TRACE_OK);
    CU_ASSERT(file_exists(path));
    CU_ASSERT(!file_exists(temp));
    unlink(path);

    /* "Complete" with fewer positions than the prompt is refused. */
    CU_ASSERT_EQUAL_FATAL(ikv_trace_writer_create(&w, path, &meta, &spec, err, sizeof err), IKV_TRACE_OK);
    ikv_trace_row first;
    ikv_synth_row(&syn, 0, &first);
    CU_ASSERT_EQUAL(ikv_trace_write_position(w, &first), IKV_TRACE_OK);
    CU_ASSERT_EQUAL(ikv_trace_writer_close(w, 1, err, sizeof err), IKV_TRACE_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "n_prompt"));
    CU_ASSERT(!file_exists(path));
    CU_ASSERT(!file_exists(temp));

    /* Abort removes everything. */
    CU_ASSERT_EQUAL_FATAL(ikv_trace_writer_create(&w, path, &meta, &spec, err, sizeof err), IKV_TRACE_OK);
    ikv_trace_row row;
    ikv_synth_row(&syn, 0, &row);
    CU_ASSERT_EQUAL(ikv_trace_write_position(w, &row), IKV_TRACE_OK);
    ikv_trace_writer_abort(w);
    CU_ASSERT(!file_exists(path));
    CU_ASSERT(!file_exists(temp));
    CU_ASSERT_EQUAL(dir_entries(tmpdir), 0);

    /* A directory that does not exist: a clear error naming the file. */
    char bad[600];
    snprintf(bad, sizeof bad, "%s/no/such/dir/t.h5", tmpdir);
    CU_ASSERT_EQUAL(ikv_trace_writer_create(&w, bad, &meta, &spec, err, sizeof err), IKV_TRACE_EIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, bad));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, strerror(ENOENT)));
    ikv_synth_free(&syn);
}

static void test_reopen(void)
{
    char path[512], err[1024];
    tmp_path(path, sizeof path, "reopen.h5");
    wopts o = default_opts();
    o.signals = IKV_TRACE_DEFAULT;
    CU_ASSERT_EQUAL_FATAL(write_trace(path, &o), o.T);
    ikv_trace_reader *a, *b;
    CU_ASSERT_EQUAL_FATAL(ikv_trace_open(&a, path, err, sizeof err), IKV_TRACE_OK);
    CU_ASSERT_EQUAL_FATAL(ikv_trace_open(&b, path, err, sizeof err), IKV_TRACE_OK);
    int32_t ta[40], tb[40];
    CU_ASSERT_EQUAL(ikv_trace_read_tokens(a, ta), IKV_TRACE_OK);
    ikv_trace_close(a);
    CU_ASSERT_EQUAL(ikv_trace_read_tokens(b, tb), IKV_TRACE_OK);
    CU_ASSERT(memcmp(ta, tb, sizeof ta) == 0);
    ikv_trace_close(b);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL_FATAL(ikv_trace_open(&a, path, err, sizeof err), IKV_TRACE_OK);
        CU_ASSERT_EQUAL(ikv_trace_read_tokens(a, tb), IKV_TRACE_OK);
        CU_ASSERT(memcmp(ta, tb, sizeof ta) == 0);
        ikv_trace_close(a);
    }
    unlink(path);
}

typedef struct listing {
    int n;
    int found_kl, found_q;
    int64_t q_logical;
    int q_compressed;
} listing;

static int list_one(const ikv_trace_dataset_info *info, void *ctx)
{
    listing *l = ctx;
    l->n++;
    if (strcmp(info->path, "/live/kl") == 0)
        l->found_kl = 1;
    if (strcmp(info->path, "/qkv/q") == 0) {
        l->found_q = 1;
        l->q_logical = info->logical_bytes;
        l->q_compressed = info->compressed && info->stored_bytes > 0 && strcmp(info->type, "f32") == 0;
    }
    return 0;
}

static void test_extras(void)
{
    char path[512], err[1024];
    tmp_path(path, sizeof path, "extras.h5");
    ikv_trace_meta meta = ikv_synth_small_meta();
    ikv_trace_spec spec = ikv_trace_writer_default_spec();
    ikv_synth syn;
    meta.n_prompt = 4;
    CU_ASSERT_EQUAL_FATAL(ikv_synth_init(&syn, &meta, NULL, 0, 6, 20, 20, 1, 1), 0);
    ikv_trace_writer *w;
    CU_ASSERT_EQUAL_FATAL(ikv_trace_writer_create(&w, path, &meta, &spec, err, sizeof err), IKV_TRACE_OK);
    for (int t = 0; t < 6; t++) {
        ikv_trace_row row;
        ikv_synth_row(&syn, t, &row);
        CU_ASSERT_EQUAL(ikv_trace_write_position(w, &row), IKV_TRACE_OK);
    }
    float kl[6] = {0.5f, 0.25f, -1.0f, 3.0f, 0.0f, 1e-3f};
    uint8_t agree[6] = {1, 0, 1, 1, 0, 255};
    int32_t cache_len[5 * 6];
    for (int i = 0; i < 30; i++)
        cache_len[i] = 100 + i;
    int64_t d1[1] = {6}, d2[2] = {5, 6};
    CU_ASSERT_EQUAL(ikv_trace_write_extra(w, "live/kl", IKV_TRACE_TYPE_F32, 1, d1, kl), IKV_TRACE_OK);
    CU_ASSERT_EQUAL(ikv_trace_write_extra(w, "/live/agree", IKV_TRACE_TYPE_U8, 1, d1, agree), IKV_TRACE_OK);
    CU_ASSERT_EQUAL(ikv_trace_write_extra(w, "live/cache_len", IKV_TRACE_TYPE_I32, 2, d2, cache_len), IKV_TRACE_OK);
    CU_ASSERT_EQUAL(ikv_trace_writer_group(w, "influence"), IKV_TRACE_OK);
    CU_ASSERT_EQUAL(ikv_trace_writer_attr_string(w, "live", "policy", "h2o"), IKV_TRACE_OK);
    CU_ASSERT_EQUAL(ikv_trace_writer_attr_double(w, "live", "budget", 0.25), IKV_TRACE_OK);
    CU_ASSERT_EQUAL(ikv_trace_writer_attr_int(w, "/", "seed", 1234567890123LL), IKV_TRACE_OK);
    CU_ASSERT_EQUAL(ikv_trace_writer_attr_int(w, "live/kl", "step", 3), IKV_TRACE_OK);
    /* The schema is protected. */
    CU_ASSERT_EQUAL(ikv_trace_write_extra(w, "qkv/q", IKV_TRACE_TYPE_F32, 1, d1, kl), IKV_TRACE_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(ikv_trace_writer_error(w), "schema"));
    CU_ASSERT_EQUAL(ikv_trace_write_extra(w, "/tokens/x", IKV_TRACE_TYPE_F32, 1, d1, kl), IKV_TRACE_EINVAL);
    CU_ASSERT_EQUAL(ikv_trace_write_extra(w, "live/kl", IKV_TRACE_TYPE_F32, 1, d1, kl), IKV_TRACE_EINVAL);
    CU_ASSERT_EQUAL(ikv_trace_write_extra(w, "live//x", IKV_TRACE_TYPE_F32, 1, d1, kl), IKV_TRACE_EINVAL);
    CU_ASSERT_EQUAL(ikv_trace_writer_attr_string(w, "/", "format", "other"), IKV_TRACE_EINVAL);
    CU_ASSERT_EQUAL(ikv_trace_writer_attr_int(w, "qkv/q", "k", 1), IKV_TRACE_EINVAL);
    CU_ASSERT_EQUAL(ikv_trace_writer_attr_int(w, "nothing", "k", 1), IKV_TRACE_EINVAL);
    CU_ASSERT_EQUAL(ikv_trace_writer_close(w, 1, err, sizeof err), IKV_TRACE_OK);

    ikv_trace_reader *r;
    int rc = ikv_trace_open(&r, path, err, sizeof err);
    if (rc != IKV_TRACE_OK)
        printf("open: %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, IKV_TRACE_OK);
    CU_ASSERT(ikv_trace_has(r, "live/kl"));
    CU_ASSERT(!ikv_trace_has(r, "live"));
    float kl2[6];
    int64_t start[2] = {0, 0}, count[2] = {6, 0};
    CU_ASSERT_EQUAL(ikv_trace_read_f32(r, "live/kl", start, count, kl2), IKV_TRACE_OK);
    CU_ASSERT(memcmp(kl, kl2, sizeof kl) == 0);
    int32_t agree2[6];
    CU_ASSERT_EQUAL(ikv_trace_read_i32(r, "live/agree", start, count, agree2), IKV_TRACE_OK);
    for (int i = 0; i < 6; i++)
        CU_ASSERT_EQUAL(agree2[i], agree[i]);
    int32_t cl[2 * 3];
    int64_t s2[2] = {3, 2}, c2[2] = {2, 3};
    CU_ASSERT_EQUAL(ikv_trace_read_i32(r, "live/cache_len", s2, c2, cl), IKV_TRACE_OK);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            CU_ASSERT_EQUAL(cl[i * 3 + j], cache_len[(3 + i) * 6 + 2 + j]);
    int64_t c_out[2] = {3, 5};
    CU_ASSERT_EQUAL(ikv_trace_read_i32(r, "live/cache_len", s2, c_out, cl), IKV_TRACE_EINVAL);
    CU_ASSERT_EQUAL(ikv_trace_read_i32(r, "live/kl", start, count, agree2), IKV_TRACE_EINVAL);
    char buf[32];
    CU_ASSERT_EQUAL(ikv_trace_attr_string(r, "live", "policy", buf, sizeof buf), IKV_TRACE_OK);
    CU_ASSERT_STRING_EQUAL(buf, "h2o");
    double budget = 0;
    CU_ASSERT_EQUAL(ikv_trace_attr_double(r, "/live", "budget", &budget), IKV_TRACE_OK);
    CU_ASSERT_DOUBLE_EQUAL(budget, 0.25, 0.0);
    int64_t seed = 0;
    CU_ASSERT_EQUAL(ikv_trace_attr_int(r, "/", "seed", &seed), IKV_TRACE_OK);
    CU_ASSERT_EQUAL(seed, 1234567890123LL);
    CU_ASSERT_EQUAL(ikv_trace_attr_int(r, "/", "nope", &seed), IKV_TRACE_EABSENT);
    CU_ASSERT_EQUAL(ikv_trace_attr_int(r, "/", "model_name", &seed), IKV_TRACE_EFORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(ikv_trace_reader_error(r), "not an integer"));

    listing l = {0, 0, 0, 0, 0};
    CU_ASSERT_EQUAL(ikv_trace_foreach_dataset(r, list_one, &l), 0);
    CU_ASSERT_EQUAL(l.n, 12 + 3); /* default signals + 3 extras */
    CU_ASSERT(l.found_kl && l.found_q);
    CU_ASSERT_EQUAL(l.q_logical, (int64_t)5 * 8 * 6 * 8 * 4);
    CU_ASSERT(l.q_compressed);
    ikv_trace_close(r);
    ikv_synth_free(&syn);
    unlink(path);
}

static void test_writer_arguments(void)
{
    char path[512], err[1024];
    tmp_path(path, sizeof path, "args.h5");
    ikv_trace_meta meta = ikv_synth_small_meta();
    ikv_trace_spec spec = ikv_trace_writer_default_spec();
    ikv_trace_writer *w = NULL;

    ikv_trace_meta m = meta;
    m.n_kv_heads = 3;
    CU_ASSERT_EQUAL(ikv_trace_writer_create(&w, path, &m, &spec, err, sizeof err), IKV_TRACE_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "n_kv_heads"));
    CU_ASSERT_PTR_NULL(w);
    m = meta;
    m.n_layers = 0;
    CU_ASSERT_EQUAL(ikv_trace_writer_create(&w, path, &m, &spec, err, sizeof err), IKV_TRACE_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "n_layers"));

    ikv_trace_spec s = spec;
    static const int unsorted[2] = {3, 1};
    s.layers = unsorted;
    s.n_layers = 2;
    CU_ASSERT_EQUAL(ikv_trace_writer_create(&w, path, &meta, &s, err, sizeof err), IKV_TRACE_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "ascending"));
    static const int outside[1] = {5};
    s.layers = outside;
    s.n_layers = 1;
    CU_ASSERT_EQUAL(ikv_trace_writer_create(&w, path, &meta, &s, err, sizeof err), IKV_TRACE_EINVAL);
    s = spec;
    s.topk = meta.vocab_size + 1;
    CU_ASSERT_EQUAL(ikv_trace_writer_create(&w, path, &meta, &s, err, sizeof err), IKV_TRACE_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "topk"));
    s = spec;
    s.signals |= 1u << 20;
    CU_ASSERT_EQUAL(ikv_trace_writer_create(&w, path, &meta, &s, err, sizeof err), IKV_TRACE_EINVAL);
    s = spec;
    s.deflate_level = 10;
    CU_ASSERT_EQUAL(ikv_trace_writer_create(&w, path, &meta, &s, err, sizeof err), IKV_TRACE_EINVAL);
    CU_ASSERT_EQUAL(dir_entries(tmpdir), 0);

    /* A row missing a selected signal is refused and changes nothing. */
    ikv_synth syn;
    meta.n_prompt = 3;
    CU_ASSERT_EQUAL_FATAL(ikv_synth_init(&syn, &meta, NULL, 0, 3, 20, 20, 1, 1), 0);
    CU_ASSERT_EQUAL_FATAL(ikv_trace_writer_create(&w, path, &meta, &spec, err, sizeof err), IKV_TRACE_OK);
    ikv_trace_row row;
    ikv_synth_row(&syn, 0, &row);
    row.q = NULL;
    CU_ASSERT_EQUAL(ikv_trace_write_position(w, &row), IKV_TRACE_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(ikv_trace_writer_error(w), "/qkv/q"));
    CU_ASSERT_EQUAL(ikv_trace_writer_positions(w), 0);
    for (int t = 0; t < 3; t++) {
        ikv_synth_row(&syn, t, &row);
        CU_ASSERT_EQUAL(ikv_trace_write_position(w, &row), IKV_TRACE_OK);
    }
    CU_ASSERT_EQUAL(ikv_trace_writer_close(w, 1, err, sizeof err), IKV_TRACE_OK);
    ikv_trace_reader *r;
    CU_ASSERT_EQUAL_FATAL(ikv_trace_open(&r, path, err, sizeof err), IKV_TRACE_OK);
    CU_ASSERT_EQUAL(ikv_trace_meta_of(r)->n_tokens, 3);
    int32_t tok[3];
    CU_ASSERT_EQUAL(ikv_trace_read_tokens(r, tok), IKV_TRACE_OK);
    for (int t = 0; t < 3; t++) {
        ikv_synth_row(&syn, t, &row);
        CU_ASSERT_EQUAL(tok[t], row.token);
    }
    ikv_trace_close(r);
    ikv_synth_free(&syn);
    unlink(path);
}

static void test_reader_errors(void)
{
    char path[512], err[1024];
    tmp_path(path, sizeof path, "errors.h5");
    wopts o = default_opts();
    o.signals = IKV_TRACE_DEFAULT;
    CU_ASSERT_EQUAL_FATAL(write_trace(path, &o), o.T);
    ikv_trace_reader *r;
    CU_ASSERT_EQUAL_FATAL(ikv_trace_open(&r, path, err, sizeof err), IKV_TRACE_OK);
    float buf[64];
    CU_ASSERT_EQUAL(ikv_trace_read_layer(r, "attn/probs", 0, buf), IKV_TRACE_EABSENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(ikv_trace_reader_error(r), path));
    CU_ASSERT_PTR_NOT_NULL(strstr(ikv_trace_reader_error(r), "/attn/probs"));
    CU_ASSERT_EQUAL(ikv_trace_read_layer(r, "qkv/q", -1, buf), IKV_TRACE_EINVAL);
    CU_ASSERT_EQUAL(ikv_trace_read_layer(r, "qkv/q", 5, buf), IKV_TRACE_EINVAL);
    CU_ASSERT_EQUAL(ikv_trace_read_layer(r, "hidden/evolution", 0, buf), IKV_TRACE_EINVAL);
    CU_ASSERT_EQUAL(ikv_trace_read_layer(r, "qkv/x", 0, buf), IKV_TRACE_EINVAL);
    CU_ASSERT_EQUAL(ikv_trace_read_states(r, 0, 0, 1, buf), IKV_TRACE_EABSENT);
    CU_ASSERT_EQUAL(ikv_trace_read_logits(r, 0, 1, buf), IKV_TRACE_EABSENT);
    int64_t dims[IKV_TRACE_MAX_RANK];
    CU_ASSERT_EQUAL(ikv_trace_dims(r, "attn/probs", dims), IKV_TRACE_EABSENT);
    ikv_trace_close(r);

    /* Position ranges of states/logits. */
    wopts all = default_opts();
    CU_ASSERT_EQUAL_FATAL(write_trace(path, &all), all.T);
    CU_ASSERT_EQUAL_FATAL(ikv_trace_open(&r, path, err, sizeof err), IKV_TRACE_OK);
    float *row = must_alloc(sizeof(float) * 512 * 2);
    CU_ASSERT_EQUAL(ikv_trace_read_logits(r, all.T - 1, 2, row), IKV_TRACE_EINVAL);
    CU_ASSERT_EQUAL(ikv_trace_read_logits(r, all.T - 2, 2, row), IKV_TRACE_OK);
    CU_ASSERT_EQUAL(ikv_trace_read_states(r, 6, 0, 1, row), IKV_TRACE_EINVAL);
    CU_ASSERT_EQUAL(ikv_trace_read_states(r, 5, 3, 2, row), IKV_TRACE_OK);
    /* The final residual (slot L') is hashed with layer -1. */
    CU_ASSERT(same(row[64 + 7], ikv_synth_value(all.seed, SYN_STATES, -1, 4, 7, 0), 0));
    free(row);
    ikv_trace_close(r);

    /* Files that are not traces. */
    char text[512];
    tmp_path(text, sizeof text, "text.h5");
    FILE *f = fopen(text, "w");
    fputs("hello, this is not HDF5\n", f);
    fclose(f);
    CU_ASSERT_EQUAL(ikv_trace_open(&r, text, err, sizeof err), IKV_TRACE_EFORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, text));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not an HDF5 file"));
    f = fopen(text, "w");
    fclose(f);
    CU_ASSERT_EQUAL(ikv_trace_open(&r, text, err, sizeof err), IKV_TRACE_EFORMAT);
    unlink(text);
    CU_ASSERT_EQUAL(ikv_trace_open(&r, text, err, sizeof err), IKV_TRACE_EIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, strerror(ENOENT)));
    CU_ASSERT_EQUAL(ikv_trace_open(&r, tmpdir, err, sizeof err), IKV_TRACE_EFORMAT);
    unlink(path);
}

static void add_suites(void)
{
    static const ikv_test_case cases[] = {
        {"round trip f32, all signals", test_roundtrip_f32},
        {"round trip f16, all signals", test_roundtrip_f16},
        {"round trip, block sizes and growth", test_roundtrip_blocks},
        {"round trip through direct chunk writes", test_direct_chunks},
        {"byte planes: noise stored, exponents deflated", test_byte_planes},
        {"chunks bounded for long blocks", test_chunk_bound},
        {"root attributes and dataset shapes", test_meta_roundtrip},
        {"layer subset", test_layer_subset},
        {"interrupted run (complete = 0)", test_interrupted},
        {"temporary and final names", test_final_name},
        {"reopening", test_reopen},
        {"extra datasets and attributes", test_extras},
        {"writer argument checks", test_writer_arguments},
        {"reader errors", test_reader_errors},
        {NULL, NULL}};
    ikv_test_suite("trace", cases);
}

int main(int argc, char **argv)
{
    make_tmpdir();
    int rc = ikv_test_main(argc, argv, add_suites);
    rmdir(tmpdir);
    return rc;
}
