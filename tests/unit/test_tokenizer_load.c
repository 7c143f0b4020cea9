/*
 * The llama2.c tokenizer.bin reader on good, truncated and hostile files,
 * and ikv_tokenizer_create on bad specs: every failure is a negative code,
 * a NULL handle and one line naming the problem (and the file).
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "infokv/core.h"
#include "model/tokenizer.h"
#include "runner.h"
#include "tok_fixture.h"

/* A little-endian tokenizer.bin image built in memory. */
typedef struct image {
    unsigned char d[4096];
    size_t n;
} image;

static void put_i32(image *im, int32_t v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    for (int i = 0; i < 4; i++)
        im->d[im->n++] = (unsigned char)(u >> (8 * i));
}

static void put_f32(image *im, float f)
{
    int32_t v;
    memcpy(&v, &f, 4);
    put_i32(im, v);
}

static void put_token(image *im, float score, const char *piece)
{
    put_f32(im, score);
    put_i32(im, (int32_t)strlen(piece));
    memcpy(im->d + im->n, piece, strlen(piece));
    im->n += strlen(piece);
}

#define SMALL_VOCAB 6

/* <unk>, BOS, EOS, " ", "a", " a" */
static void small_image(image *im)
{
    im->n = 0;
    put_i32(im, 6);
    put_token(im, 0, "<unk>");
    put_token(im, 0, "\n<s>\n");
    put_token(im, 0, "\n</s>\n");
    put_token(im, -1, " ");
    put_token(im, -2, "a");
    put_token(im, -0.5f, " a");
}

/* Loads and expects failure: NULL handle, one non-empty line naming path. */
static int expect_load_error(const char *path, int n_vocab)
{
    ikv_tokenizer *t = (ikv_tokenizer *)&t; /* must be reset to NULL */
    char err[512] = "";
    int rc = ikv_tokenizer_load_llama2c(&t, path, n_vocab, err, sizeof err);
    int ok = rc < 0 && t == NULL && err[0] != '\0' && strchr(err, '\n') == NULL &&
             (!path || strstr(err, path) != NULL);
    if (!ok)
        printf("\n    load of %s (n_vocab %d): rc %d, err \"%s\"", path ? path : "(null)",
               n_vocab, rc, err);
    if (rc == 0)
        ikv_tokenizer_free(t);
    return ok;
}

static void test_small_file_loads(void)
{
    image im;
    small_image(&im);
    const char *path = tokfx_write_temp("small.bin", im.d, im.n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(path);
    ikv_tokenizer *t = NULL;
    char err[512];
    CU_ASSERT_EQUAL_FATAL(ikv_tokenizer_load_llama2c(&t, path, SMALL_VOCAB, err, sizeof err), 0);
    CU_ASSERT_EQUAL(ikv_tokenizer_n_vocab(t), SMALL_VOCAB);
    CU_ASSERT_EQUAL(ikv_tokenizer_bos(t), 1);
    CU_ASSERT_EQUAL(ikv_tokenizer_eos(t), 2);
    int32_t ids[8];
    int n = 0;
    /* " " + "a" -> " a" (5); BOS by default */
    CU_ASSERT_EQUAL(ikv_tokenizer_encode(t, "a", 1, -1, ids, 8, &n), 0);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(ids[0], 1);
    CU_ASSERT_EQUAL(ids[1], 5);
    /* no byte tokens in this vocabulary: an unknown character becomes <unk> */
    CU_ASSERT_EQUAL(ikv_tokenizer_encode(t, "b", 1, 0, ids, 8, &n), 0);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(ids[0], 3);
    CU_ASSERT_EQUAL(ids[1], 0);
    ikv_tokenizer_free(t);
}

static void test_truncated_everywhere(void)
{
    image im;
    small_image(&im);
    int bad = 0;
    for (size_t cut = 0; cut < im.n; cut++) {
        const char *path = tokfx_write_temp("cut.bin", im.d, cut);
        CU_ASSERT_PTR_NOT_NULL_FATAL(path);
        bad += !expect_load_error(path, SMALL_VOCAB);
    }
    CU_ASSERT_EQUAL(bad, 0);
}

static void test_size_mismatch(void)
{
    image im;
    small_image(&im);
    const char *path = tokfx_write_temp("small.bin", im.d, im.n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(path);
    CU_ASSERT(expect_load_error(path, SMALL_VOCAB + 1)); /* runs out of records */
    CU_ASSERT(expect_load_error(path, SMALL_VOCAB - 1)); /* bytes left over */
    CU_ASSERT(expect_load_error(path, 0));
    CU_ASSERT(expect_load_error(path, -3));
    CU_ASSERT(expect_load_error(path, 1 << 30));
    im.d[im.n++] = 0; /* one trailing byte */
    path = tokfx_write_temp("trailing.bin", im.d, im.n);
    CU_ASSERT(expect_load_error(path, SMALL_VOCAB));
}

/* The length field of the last token ( " a" ) sits at this offset. */
static size_t last_len_offset(void)
{
    image im;
    small_image(&im);
    return im.n - 2 - 4;
}

static void test_hostile_lengths(void)
{
    const int32_t lengths[] = {-1, INT32_MIN, INT32_MAX, 7, 3, 1 << 20};
    for (size_t k = 0; k < sizeof lengths / sizeof lengths[0]; k++) {
        image im;
        small_image(&im);
        size_t at = last_len_offset();
        size_t save = im.n;
        im.n = at;
        put_i32(&im, lengths[k]);
        im.n = save;
        const char *path = tokfx_write_temp("hostile.bin", im.d, im.n);
        CU_ASSERT(expect_load_error(path, SMALL_VOCAB));
    }
    /* max_token_length itself */
    const int32_t maxes[] = {0, -5, INT32_MAX, 1 << 20, 1 /* shorter than "<unk>" */};
    for (size_t k = 0; k < sizeof maxes / sizeof maxes[0]; k++) {
        image im;
        small_image(&im);
        size_t save = im.n;
        im.n = 0;
        put_i32(&im, maxes[k]);
        im.n = save;
        const char *path = tokfx_write_temp("hostile.bin", im.d, im.n);
        CU_ASSERT(expect_load_error(path, SMALL_VOCAB));
    }
}

static void test_missing_and_odd_paths(void)
{
    CU_ASSERT(expect_load_error("/nonexistent/dir/tok.bin", 512));
    CU_ASSERT(expect_load_error("/", 512)); /* a directory */
    ikv_tokenizer *t = NULL;
    char err[128];
    CU_ASSERT(ikv_tokenizer_load_llama2c(&t, NULL, 512, err, sizeof err) < 0);
    CU_ASSERT(ikv_tokenizer_load_llama2c(NULL, "/x", 512, err, sizeof err) < 0);
}

static void test_real_file_truncated(void)
{
    const char *real = tokfx_model_path("tok512.bin");
    if (!real) {
        ikv_test_skip("tok512.bin not found (set IKV_MODELS)");
        return;
    }
    FILE *fp = fopen(real, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    static unsigned char buf[8192];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    CU_ASSERT_FATAL(n > 4 && n < sizeof buf);
    int bad = 0;
    /* every byte of the first records, then a stride through the rest */
    for (size_t cut = 0; cut < n; cut += cut < 64 ? 1 : 37) {
        const char *path = tokfx_write_temp("tok512-cut.bin", buf, cut);
        bad += !expect_load_error(path, 512);
    }
    const char *path = tokfx_write_temp("tok512-cut.bin", buf, n - 1);
    bad += !expect_load_error(path, 512);
    CU_ASSERT_EQUAL(bad, 0);
    /* the whole file loads */
    ikv_tokenizer *t = NULL;
    char err[512];
    CU_ASSERT_EQUAL(ikv_tokenizer_load_llama2c(&t, real, 512, err, sizeof err), 0);
    ikv_tokenizer_free(t);
}

/* ---- bad specs ------------------------------------------------------------ */

static int expect_create_error(const ikv_tokenizer_spec *spec)
{
    ikv_tokenizer *t = (ikv_tokenizer *)&t;
    char err[256] = "";
    int rc = ikv_tokenizer_create(&t, spec, err, sizeof err);
    int ok = rc < 0 && t == NULL && err[0] && !strchr(err, '\n');
    if (!ok)
        printf("\n    create: rc %d err \"%s\"", rc, err);
    if (rc == 0)
        ikv_tokenizer_free(t);
    return ok;
}

static void test_bad_specs(void)
{
    const char *pieces[3] = {"a", "b", "ab"};
    uint32_t lens[3] = {1, 1, 2};
    float scores[3] = {0, 0, 0};
    const char *merges[1] = {"a b"};
    uint32_t merge_lens[1] = {3};
    const ikv_tokenizer_spec good = {
        .kind = IKV_TOK_SPM, .n_vocab = 3, .pieces = pieces, .piece_lens = lens,
        .scores = scores, .bos_id = -1, .eos_id = -1,
        .n_merges = 1, .merges = merges, .merge_lens = merge_lens,
    };
    ikv_tokenizer *t = NULL;
    char err[256];
    CU_ASSERT_EQUAL(ikv_tokenizer_create(&t, &good, err, sizeof err), 0);
    ikv_tokenizer_free(t);

    CU_ASSERT(expect_create_error(NULL));
    ikv_tokenizer_spec s = good;
    s.n_vocab = 0;
    CU_ASSERT(expect_create_error(&s));
    s = good;
    s.n_vocab = -1;
    CU_ASSERT(expect_create_error(&s));
    s = good;
    s.pieces = NULL;
    CU_ASSERT(expect_create_error(&s));
    s = good;
    s.scores = NULL; /* SPM needs scores */
    CU_ASSERT(expect_create_error(&s));
    s = good;
    s.kind = (ikv_tokenizer_kind)7;
    CU_ASSERT(expect_create_error(&s));
    s = good;
    s.bos_id = 3;
    CU_ASSERT(expect_create_error(&s));
    s = good;
    s.eos_id = -2;
    CU_ASSERT(expect_create_error(&s));
    uint32_t huge[3] = {1, 1u << 31, 2};
    s = good;
    s.piece_lens = huge;
    CU_ASSERT(expect_create_error(&s));
    const char *holes[3] = {"a", NULL, "ab"};
    s = good;
    s.pieces = holes;
    CU_ASSERT(expect_create_error(&s));
    s = good;
    s.kind = IKV_TOK_GPT2;
    s.n_merges = -1;
    CU_ASSERT(expect_create_error(&s));
    s = good;
    s.kind = IKV_TOK_GPT2;
    s.merges = NULL;
    CU_ASSERT(expect_create_error(&s));
    s = good;
    s.kind = IKV_TOK_GPT2;
    s.pre = (ikv_pretokenizer)42;
    CU_ASSERT(expect_create_error(&s));
    CU_ASSERT(ikv_tokenizer_create(NULL, &good, err, sizeof err) < 0);
}

/* NaN and -inf scores never merge (run.c's "score > best" never holds). */
static void test_nan_scores(void)
{
    const char *pieces[4] = {" ", "a", " a", "aa"};
    uint32_t lens[4] = {1, 1, 2, 2};
    float scores[4] = {0, 0, NAN, -INFINITY};
    const ikv_tokenizer_spec spec = {
        .kind = IKV_TOK_SPM, .n_vocab = 4, .pieces = pieces, .piece_lens = lens,
        .scores = scores, .bos_id = -1, .eos_id = -1,
    };
    ikv_tokenizer *t = NULL;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(ikv_tokenizer_create(&t, &spec, err, sizeof err), 0);
    int32_t ids[8];
    int n = 0;
    CU_ASSERT_EQUAL(ikv_tokenizer_encode(t, "aa", 2, 1, ids, 8, &n), 0);
    CU_ASSERT_EQUAL(n, 3); /* no BOS id: add_bos has nothing to add */
    CU_ASSERT(n == 3 && ids[0] == 0 && ids[1] == 1 && ids[2] == 1);
    ikv_tokenizer_free(t);
}

static void add_suites(void)
{
    static const ikv_test_case load[] = {
        {"small file loads and encodes", test_small_file_loads},
        {"truncated at every byte", test_truncated_everywhere},
        {"vocabulary size mismatch", test_size_mismatch},
        {"hostile lengths", test_hostile_lengths},
        {"missing file, directory, NULL", test_missing_and_odd_paths},
        {"tok512.bin truncated", test_real_file_truncated},
        {NULL, NULL},
    };
    static const ikv_test_case spec[] = {
        {"bad specs rejected", test_bad_specs},
        {"NaN and -inf scores never merge", test_nan_scores},
        {NULL, NULL},
    };
    ikv_test_suite("llama2c-loader", load);
    ikv_test_suite("tokenizer-spec", spec);
}

int main(int argc, char **argv)
{
    return ikv_test_main(argc, argv, add_suites);
}
