/*
 * The forward pass against a plain reference (model_fixture.c): every
 * weight type, GQA and MHA, qwen2 biases and NEOX RoPE, mistral, RoPE
 * scaling (linear, llama3 metadata, rope_freqs tensor, partial rotation),
 * batched prefill against token-by-token decode, decode_at with a skipped
 * position, eviction moves, truncation, and argument errors.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/session.h"
#include "model_fixture.h"
#include "runner.h"

/* Logits of every prompt position, through the observer. */
typedef struct logit_log {
    int V, n;
    float *rows; /* [n][V] */
    int32_t *pos;
} logit_log;

static void on_logits(void *user, int pos, const float *logits)
{
    logit_log *log = user;
    memcpy(log->rows + (size_t)log->n * log->V, logits, (size_t)log->V * sizeof *logits);
    log->pos[log->n++] = pos;
}

static void tokens_for(int32_t *tokens, int n, int V, unsigned seed)
{
    for (int i = 0; i < n; i++)
        tokens[i] = (int32_t)((seed * 2654435761u + (unsigned)i * 40503u) % (unsigned)V);
}

static ikv_model *load(const char *path)
{
    ikv_model *m = NULL;
    char err[512];
    int rc = ikv_model_load(&m, path, NULL, err, sizeof err);
    if (rc)
        fprintf(stderr, "\n    load: %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, IKV_OK);
    return m;
}

static ikv_session *session(const ikv_model *m, int cap, int threads)
{
    ikv_session *s = NULL;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(ikv_session_create(&s, m, cap, threads, err, sizeof err), IKV_OK);
    return s;
}

/* Prefills n tokens with on_logits and compares every position with the
 * reference on the stored weights (tight) and on the original floats
 * (within `loose`, the encoding's own error). */
static void check_against_reference(const ref_options *o, int n, int threads, double loose)
{
    char path[256];
    ref_temp_path(path, sizeof path, "fwd.gguf");
    ref_model stored, original;
    CU_ASSERT_EQUAL_FATAL(ref_build(o, path, &stored, &original), 0);
    ikv_model *m = load(path);
    ikv_session *s = session(m, n + 4, threads);
    int32_t *tokens = malloc((size_t)n * sizeof *tokens);
    tokens_for(tokens, n, o->vocab_size, (unsigned)o->seed);
    logit_log log = {stored.V, 0, malloc((size_t)n * stored.V * sizeof(float)), malloc((size_t)n * sizeof(int32_t))};
    ikv_observer obs = {0};
    obs.user = &log;
    obs.on_logits = on_logits;
    CU_ASSERT_EQUAL(ikv_session_set_observer(s, &obs), IKV_OK);
    CU_ASSERT_EQUAL_FATAL(ikv_session_prefill(s, tokens, n), IKV_OK);
    CU_ASSERT_EQUAL(log.n, n);
    CU_ASSERT_EQUAL(ikv_session_n_past(s), n);

    ref_state rs, ro;
    ref_state_init(&rs, &stored, n);
    ref_state_init(&ro, &original, n);
    double *ref = malloc((size_t)stored.V * sizeof *ref);
    double worst_tight = 0.0, worst_loose = 0.0;
    for (int t = 0; t < n; t++) {
        double max_ref;
        CU_ASSERT_EQUAL(log.pos[t], t);
        ref_step(&rs, tokens[t], t, ref);
        double e = ref_max_diff(log.rows + (size_t)t * stored.V, ref, stored.V, &max_ref) / fmax(1.0, max_ref);
        worst_tight = fmax(worst_tight, e);
        ref_step(&ro, tokens[t], t, ref);
        e = ref_max_diff(log.rows + (size_t)t * stored.V, ref, stored.V, &max_ref) / fmax(1.0, max_ref);
        worst_loose = fmax(worst_loose, e);
    }
    /* the last position's logits are also the session's */
    CU_ASSERT(memcmp(ikv_session_logits(s), log.rows + (size_t)(n - 1) * stored.V, stored.V * sizeof(float)) == 0);
    if (getenv("IKV_VERBOSE") || !(worst_tight < 2e-5) || !(worst_loose < loose))
        printf("\n    %s type %u: error %.3g vs stored weights, %.3g vs original (limit %.3g) ",
               o->arch, o->type, worst_tight, worst_loose, loose);
    CU_ASSERT(worst_tight < 2e-5);
    CU_ASSERT(worst_loose < loose);

    ref_state_free(&rs);
    ref_state_free(&ro);
    free(ref);
    free(log.rows);
    free(log.pos);
    free(tokens);
    ikv_session_free(s);
    ikv_model_free(m);
    ref_free(&stored);
    ref_free(&original);
    unlink(path);
}

static void test_types(void)
{
    ref_options o = ref_default_options();
    /* limits: the error of each encoding relative to the float weights */
    const struct { uint32_t type; double loose; } cases[] = {
        {GW_F32, 2e-5}, {GW_F16, 5e-3}, {GW_BF16, 5e-2}, {GW_Q8_0, 6e-2}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        o.type = cases[i].type;
        o.seed = 10 + i;
        check_against_reference(&o, 23, 2, cases[i].loose);
    }
}

static void test_odd_sizes(void)
{
    /* widths that are not multiples of any vector or tile size */
    ref_options o = ref_default_options();
    o.dim = 36;
    o.n_heads = 3;
    o.n_kv_heads = 1;
    o.hidden_dim = 50;
    o.vocab_size = 37;
    check_against_reference(&o, 19, 2, 1e-4);
    o.type = GW_F16;
    check_against_reference(&o, 5, 1, 5e-3);
}

static void test_gqa_and_mha(void)
{
    ref_options o = ref_default_options();
    o.n_heads = 8;
    o.n_kv_heads = 2; /* groups of 4 */
    o.dim = 64;
    check_against_reference(&o, 17, 2, 1e-4);
    o.n_kv_heads = 8; /* multi-head */
    check_against_reference(&o, 9, 1, 1e-4);
    o.n_kv_heads = 1; /* multi-query */
    o.tied = 1;
    check_against_reference(&o, 9, 2, 1e-4);
}

/* Big enough for the parallel paths on 2 threads: every projection
 * (256 x 256 x 136 tokens, over IKV_PARALLEL_MIN_MACS) and the prefill
 * attention (136 queries x 8 heads x 136 keys x 32, over its own
 * threshold), by queries and by query tiles; smaller models run these
 * on one thread. */
static void test_parallel_sizes(void)
{
    ref_options o = ref_default_options();
    o.dim = 256;
    o.hidden_dim = 512;
    o.n_heads = 8;
    o.n_kv_heads = 4;
    o.context = 160;
    check_against_reference(&o, 136, 2, 1e-4); /* head size 32: per query */
    o.n_heads = 16;
    check_against_reference(&o, 136, 2, 1e-4); /* head size 16: query tiles */
}

static void test_architectures(void)
{
    ref_options o = ref_default_options();
    o.arch = "qwen2";
    o.bias = 1;
    o.rope_theta = 1000000.0f;
    check_against_reference(&o, 21, 2, 1e-4);
    o.type = GW_Q8_0;
    check_against_reference(&o, 7, 2, 6e-2);
    o = ref_default_options();
    o.arch = "mistral";
    o.type = GW_BF16;
    check_against_reference(&o, 11, 2, 5e-2);
}

static void test_rope_scaling(void)
{
    ref_options o = ref_default_options();
    o.n_heads = 2;
    o.n_kv_heads = 1; /* head_dim 32: 16 frequencies span all three llama3 bands */
    o.rope_theta = 500000.0f;
    o.scaling = REF_SCALING_LLAMA3;
    check_against_reference(&o, 40, 2, 1e-4);
    o.scaling = REF_SCALING_FREQS;
    check_against_reference(&o, 40, 2, 1e-4);
    o.scaling = REF_SCALING_LINEAR;
    o.factor = 4.0f;
    check_against_reference(&o, 12, 1, 1e-4);
    o.scaling = REF_SCALING_NONE;
    o.rope_dim = 8; /* rotate only part of each head */
    check_against_reference(&o, 12, 2, 1e-4);
}

static void test_long_prefill_in_pieces(void)
{
    /* more tokens than one prefill batch (256) */
    ref_options o = ref_default_options();
    o.dim = 32;
    o.hidden_dim = 64;
    o.n_layers = 1;
    o.n_heads = 2;
    o.n_kv_heads = 1;
    o.context = 512;
    check_against_reference(&o, 300, 2, 1e-4);
}

/* Batched prefill and one-by-one decode give the same logits and caches. */
static void test_prefill_equals_decode(void)
{
    char path[256];
    ref_temp_path(path, sizeof path, "pd.gguf");
    ref_options o = ref_default_options();
    o.type = GW_Q8_0;
    CU_ASSERT_EQUAL_FATAL(ref_build(&o, path, NULL, NULL), 0);
    ikv_model *m = load(path);
    const int n = 37, V = o.vocab_size;
    int32_t tokens[37];
    tokens_for(tokens, n, V, 3);
    ikv_session *a = session(m, 64, 2), *b = session(m, 64, 1);
    CU_ASSERT_EQUAL(ikv_session_prefill(a, tokens, 20), IKV_OK);
    CU_ASSERT_EQUAL(ikv_session_prefill(a, tokens + 20, n - 20), IKV_OK); /* continues the cache */
    for (int t = 0; t < n; t++)
        CU_ASSERT_EQUAL(ikv_session_decode(b, tokens[t]), IKV_OK);
    const float *la = ikv_session_logits(a), *lb = ikv_session_logits(b);
    double worst = 0.0;
    for (int i = 0; i < V; i++)
        worst = fmax(worst, fabs(la[i] - lb[i]));
    CU_ASSERT(worst < 1e-4);
    const ikv_model_details *info = ikv_model_info(m);
    for (int l = 0; l < info->n_layers; l++) {
        for (int g = 0; g < info->n_kv_heads; g++) {
            CU_ASSERT_EQUAL(ikv_session_cache_len(a, l, g), n);
            CU_ASSERT_EQUAL(ikv_session_cache_len(b, l, g), n);
            const float *ka = ikv_session_keys(a, l, g), *kb = ikv_session_keys(b, l, g);
            double kw = 0.0;
            for (int i = 0; i < n * info->head_dim; i++)
                kw = fmax(kw, fabs(ka[i] - kb[i]));
            CU_ASSERT(kw < 1e-4);
            for (int i = 0; i < n; i++)
                CU_ASSERT_EQUAL(ikv_session_positions(a, l, g)[i], i);
        }
    }
    ikv_session_free(a);
    ikv_session_free(b);
    ikv_model_free(m);
    unlink(path);
}

/* decode_at: the sequence with token j left out, later positions kept. */
static void test_decode_at_skips_a_position(void)
{
    char path[256];
    ref_temp_path(path, sizeof path, "skip.gguf");
    ref_options o = ref_default_options();
    ref_model rm;
    CU_ASSERT_EQUAL_FATAL(ref_build(&o, path, &rm, NULL), 0);
    ikv_model *m = load(path);
    const int n = 16, skip = 6, V = rm.V;
    int32_t tokens[16];
    tokens_for(tokens, n, V, 5);
    ikv_session *s = session(m, 32, 2);
    CU_ASSERT_EQUAL(ikv_session_prefill(s, tokens, skip), IKV_OK);
    for (int t = skip + 1; t < n; t++)
        CU_ASSERT_EQUAL(ikv_session_decode_at(s, tokens[t], t), IKV_OK);
    CU_ASSERT_EQUAL(ikv_session_n_past(s), n);
    CU_ASSERT_EQUAL(ikv_session_cache_len(s, 0, 0), n - 1);

    ref_state rs;
    ref_state_init(&rs, &rm, n);
    double *ref = malloc((size_t)V * sizeof *ref);
    for (int t = 0; t < n; t++)
        if (t != skip)
            ref_step(&rs, tokens[t], t, ref);
    double max_ref, e = ref_max_diff(ikv_session_logits(s), ref, V, &max_ref);
    CU_ASSERT(e < 1e-4 * fmax(1.0, max_ref));
    /* and it differs from the full sequence's logits */
    ref_state full;
    ref_state_init(&full, &rm, n);
    double *ref_full = malloc((size_t)V * sizeof *ref_full);
    for (int t = 0; t < n; t++)
        ref_step(&full, tokens[t], t, ref_full);
    CU_ASSERT(ref_max_diff(ikv_session_logits(s), ref_full, V, NULL) > 1e-3);

    /* positions must grow */
    CU_ASSERT_EQUAL(ikv_session_decode_at(s, tokens[0], n - 1), IKV_EINVAL);
    CU_ASSERT(strstr(ikv_session_error(s), "position") != NULL);
    ref_state_free(&rs);
    ref_state_free(&full);
    free(ref);
    free(ref_full);
    ikv_session_free(s);
    ikv_model_free(m);
    ref_free(&rm);
    unlink(path);
}

/* Evict slots per (layer, KV head) with moves, decode, compare with the
 * reference attending to the kept positions only. */
static void test_apply_moves(void)
{
    char path[256];
    ref_temp_path(path, sizeof path, "moves.gguf");
    ref_options o = ref_default_options();
    o.n_heads = 4;
    o.n_kv_heads = 2;
    ref_model rm;
    CU_ASSERT_EQUAL_FATAL(ref_build(&o, path, &rm, NULL), 0);
    ikv_model *m = load(path);
    const int n = 12, V = rm.V, L = rm.L, G = rm.G;
    int32_t tokens[14];
    tokens_for(tokens, 14, V, 9);
    ikv_session *s = session(m, 16, 2);
    CU_ASSERT_EQUAL_FATAL(ikv_session_prefill(s, tokens, n), IKV_OK);

    ref_state rs;
    ref_state_init(&rs, &rm, 16);
    double *ref = malloc((size_t)V * sizeof *ref);
    for (int t = 0; t < n; t++)
        ref_step(&rs, tokens[t], t, ref);

    /* each (layer, head) drops a different set of positions, filling the
     * holes from the tail as the eviction core does */
    for (int l = 0; l < L; l++) {
        for (int g = 0; g < G; g++) {
            int drop[3] = {1 + l + g, 4 + 2 * g, 7 + l};
            int new_len = n - 3;
            int tail[3], nt = 0;
            for (int src = new_len; src < n; src++)
                if (src != drop[0] && src != drop[1] && src != drop[2])
                    tail[nt++] = src;
            ikv_move moves[3];
            int nm = 0;
            for (int k = 0; k < 3; k++)
                if (drop[k] < new_len) {
                    moves[nm] = (ikv_move){drop[k], tail[nm]};
                    nm++;
                }
            CU_ASSERT_EQUAL(ikv_session_apply_moves(s, l, g, moves, nm, new_len), IKV_OK);
            CU_ASSERT_EQUAL(ikv_session_cache_len(s, l, g), new_len);
            const int32_t *pos = ikv_session_positions(s, l, g);
            for (int k = 0; k < 3; k++) {
                rs.visible[((size_t)l * G + g) * rs.cap + drop[k]] = 0;
                for (int i = 0; i < new_len; i++)
                    CU_ASSERT_NOT_EQUAL(pos[i], drop[k]);
            }
        }
    }
    /* compacted: truncation is refused */
    CU_ASSERT_EQUAL(ikv_session_truncate(s, 5), IKV_ESTATE);
    CU_ASSERT_EQUAL(ikv_session_decode(s, tokens[n]), IKV_OK);
    ref_step(&rs, tokens[n], n, ref);
    double max_ref, e = ref_max_diff(ikv_session_logits(s), ref, V, &max_ref);
    CU_ASSERT(e < 1e-4 * fmax(1.0, max_ref));
    CU_ASSERT_EQUAL(ikv_session_decode(s, tokens[n + 1]), IKV_OK);
    ref_step(&rs, tokens[n + 1], n + 1, ref);
    e = ref_max_diff(ikv_session_logits(s), ref, V, &max_ref);
    CU_ASSERT(e < 1e-4 * fmax(1.0, max_ref));

    /* bad moves are refused and change nothing */
    ikv_move bad = {0, 0};
    int len = ikv_session_cache_len(s, 0, 0);
    CU_ASSERT_EQUAL(ikv_session_apply_moves(s, 0, 0, &bad, 1, len - 1), IKV_EINVAL);
    bad = (ikv_move){0, (int32_t)len};
    CU_ASSERT_EQUAL(ikv_session_apply_moves(s, 0, 0, &bad, 1, len - 1), IKV_EINVAL);
    CU_ASSERT_EQUAL(ikv_session_apply_moves(s, 0, 0, NULL, 0, len + 1), IKV_EINVAL);
    CU_ASSERT_EQUAL(ikv_session_apply_moves(s, L, 0, NULL, 0, 0), IKV_EINVAL);
    CU_ASSERT_EQUAL(ikv_session_cache_len(s, 0, 0), len);
    /* heads of a layer out of step: forward calls refuse */
    CU_ASSERT_EQUAL(ikv_session_apply_moves(s, 0, 0, NULL, 0, len - 1), IKV_OK);
    CU_ASSERT_EQUAL(ikv_session_decode(s, tokens[0]), IKV_ESTATE);
    ref_state_free(&rs);
    free(ref);
    ikv_session_free(s);
    ikv_model_free(m);
    ref_free(&rm);
    unlink(path);
}

static void test_truncate_and_reset(void)
{
    char path[256];
    ref_temp_path(path, sizeof path, "trunc.gguf");
    ref_options o = ref_default_options();
    CU_ASSERT_EQUAL_FATAL(ref_build(&o, path, NULL, NULL), 0);
    ikv_model *m = load(path);
    const int V = o.vocab_size;
    int32_t tokens[20], other[20];
    tokens_for(tokens, 20, V, 11);
    tokens_for(other, 20, V, 12);
    ikv_session *s = session(m, 24, 2), *fresh = session(m, 24, 2);
    CU_ASSERT_EQUAL(ikv_session_prefill(s, tokens, 20), IKV_OK);
    CU_ASSERT_EQUAL(ikv_session_truncate(s, 8), IKV_OK);
    CU_ASSERT_EQUAL(ikv_session_n_past(s), 8);
    CU_ASSERT_PTR_NULL(ikv_session_logits(s));
    CU_ASSERT_EQUAL(ikv_session_cache_len(s, 1, 1), 8);
    CU_ASSERT_EQUAL(ikv_session_prefill(s, other + 8, 5), IKV_OK);
    memcpy(other, tokens, 8 * sizeof *tokens);
    CU_ASSERT_EQUAL(ikv_session_prefill(fresh, other, 13), IKV_OK);
    CU_ASSERT(memcmp(ikv_session_logits(s), ikv_session_logits(fresh), (size_t)V * sizeof(float)) == 0);
    CU_ASSERT_EQUAL(ikv_session_truncate(s, 14), IKV_EINVAL);
    CU_ASSERT_EQUAL(ikv_session_truncate(s, -1), IKV_EINVAL);

    ikv_session_reset(s);
    CU_ASSERT_EQUAL(ikv_session_n_past(s), 0);
    CU_ASSERT_EQUAL(ikv_session_cache_len(s, 0, 0), 0);
    ikv_session_reset(fresh);
    CU_ASSERT_EQUAL(ikv_session_prefill(s, tokens, 10), IKV_OK);
    CU_ASSERT_EQUAL(ikv_session_prefill(fresh, tokens, 10), IKV_OK);
    CU_ASSERT(memcmp(ikv_session_logits(s), ikv_session_logits(fresh), (size_t)V * sizeof(float)) == 0);
    ikv_session_free(s);
    ikv_session_free(fresh);
    ikv_model_free(m);
    unlink(path);
}

static void test_errors_leave_session_unchanged(void)
{
    char path[256];
    ref_temp_path(path, sizeof path, "err.gguf");
    ref_options o = ref_default_options();
    CU_ASSERT_EQUAL_FATAL(ref_build(&o, path, NULL, NULL), 0);
    ikv_model *m = load(path);
    int32_t tokens[10];
    tokens_for(tokens, 10, o.vocab_size, 13);
    ikv_session *s = session(m, 8, 1);
    CU_ASSERT_EQUAL(ikv_session_prefill(s, tokens, 6), IKV_OK);
    float before[80];
    memcpy(before, ikv_session_logits(s), sizeof before);
    CU_ASSERT_EQUAL(ikv_session_prefill(s, tokens, 3), IKV_ECAPACITY);
    CU_ASSERT(strstr(ikv_session_error(s), "capacity") != NULL);
    int32_t bad[2] = {1, (int32_t)o.vocab_size};
    CU_ASSERT_EQUAL(ikv_session_prefill(s, bad, 2), IKV_EINVAL);
    CU_ASSERT_EQUAL(ikv_session_decode(s, -1), IKV_EINVAL);
    CU_ASSERT_EQUAL(ikv_session_prefill(s, tokens, 0), IKV_EINVAL);
    CU_ASSERT_EQUAL(ikv_session_n_past(s), 6);
    CU_ASSERT_EQUAL(ikv_session_cache_len(s, 0, 0), 6);
    CU_ASSERT(memcmp(before, ikv_session_logits(s), sizeof before) == 0);
    CU_ASSERT_EQUAL(ikv_session_decode(s, tokens[6]), IKV_OK);
    CU_ASSERT_EQUAL(ikv_session_decode(s, tokens[7]), IKV_OK);
    CU_ASSERT_EQUAL(ikv_session_decode(s, tokens[8]), IKV_ECAPACITY);
    ikv_session_free(s);
    ikv_model_free(m);
    unlink(path);
}

static void add_suites(void)
{
    static const ikv_test_case forward[] = {
        {"every weight type against the reference", test_types},
        {"widths that fit no vector or tile", test_odd_sizes},
        {"GQA, MHA and MQA", test_gqa_and_mha},
        {"qwen2 (biases, NEOX RoPE) and mistral", test_architectures},
        {"sizes that take the parallel paths", test_parallel_sizes},
        {"RoPE scaling: llama3, rope_freqs, linear, partial", test_rope_scaling},
        {"prefill longer than one batch", test_long_prefill_in_pieces},
        {NULL, NULL}};
    static const ikv_test_case sessions[] = {
        {"batched prefill equals token-by-token decode", test_prefill_equals_decode},
        {"decode_at leaves a position out", test_decode_at_skips_a_position},
        {"eviction moves then decode", test_apply_moves},
        {"truncate and reset", test_truncate_and_reset},
        {"errors leave the session unchanged", test_errors_leave_session_unchanged},
        {NULL, NULL}};
    ikv_test_suite("forward pass", forward);
    ikv_test_suite("sessions", sessions);
}

int main(int argc, char **argv)
{
    return ikv_test_main(argc, argv, add_suites);
}
