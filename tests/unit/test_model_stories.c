/*
 * The real stories260K model (../shared/models; skipped when absent):
 * greedy generation from "Once upon a time" reproduces llama2.c run.c's
 * output, and the same weights through GGUF give the same tokens and
 * logits (within 1e-5) at every step. Also the model facts and digests.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/sampler.h"
#include "model/session.h"
#include "runner.h"

/* llama2.c run.c -t 0 -n 64 -i "Once upon a time" with tok512.bin */
static const char *const expected_text =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
    "One day, she saw a big, red ball. She wanted to play with it, but it was too high.\nLily";

enum { STEPS = 64 };

typedef struct run {
    int32_t tokens[STEPS + 1];
    int n_tokens;
    float *logits; /* [STEPS][V]: logits at each forward position */
} run;

static ikv_model *load(const char *name, const char *tokenizer)
{
    const char *dir = ikv_test_models_dir();
    char path[4096], tok[4096], err[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (tokenizer)
        snprintf(tok, sizeof tok, "%s/%s", dir, tokenizer);
    ikv_model *m = NULL;
    int rc = ikv_model_load(&m, path, tokenizer ? tok : NULL, err, sizeof err);
    if (rc)
        printf("\n    %s ", err);
    CU_ASSERT_EQUAL_FATAL(rc, IKV_OK);
    return m;
}

/* run.c's loop: prompt (with BOS) then greedy tokens, STEPS positions. */
static void generate(const ikv_model *m, int threads, run *out)
{
    const ikv_tokenizer *tok = ikv_model_tokenizer(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
    const int V = ikv_model_info(m)->vocab_size;
    const char *prompt = "Once upon a time";
    int n_prompt = 0;
    CU_ASSERT_EQUAL_FATAL(ikv_tokenizer_encode(tok, prompt, strlen(prompt), 1, out->tokens, STEPS, &n_prompt), 0);
    CU_ASSERT_FATAL(n_prompt > 1 && n_prompt < STEPS && out->tokens[0] == 1);
    out->logits = malloc((size_t)STEPS * V * sizeof *out->logits);
    ikv_session *s;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(ikv_session_create(&s, m, STEPS, threads, err, sizeof err), IKV_OK);
    /* the prompt one position at a time, to keep every position's logits */
    int n = n_prompt;
    for (int pos = 0; pos < STEPS; pos++) {
        CU_ASSERT_EQUAL_FATAL(ikv_session_decode(s, out->tokens[pos]), IKV_OK);
        memcpy(out->logits + (size_t)pos * V, ikv_session_logits(s), (size_t)V * sizeof(float));
        if (pos + 1 >= n)
            out->tokens[n++] = ikv_argmax(ikv_session_logits(s), V);
    }
    out->n_tokens = n;
    ikv_session_free(s);
}

static void test_llama2c_text(void)
{
    if (!ikv_test_models_dir()) {
        ikv_test_skip("../shared/models is absent");
        return;
    }
    ikv_model *m = load("stories260K.bin", "tok512.bin");
    const ikv_model_details *i = ikv_model_info(m);
    CU_ASSERT(i->dim == 64 && i->hidden_dim == 172 && i->n_layers == 5 && i->n_heads == 8 &&
              i->n_kv_heads == 4 && i->vocab_size == 512 && i->max_seq_len == 512 && i->tied_classifier);
    CU_ASSERT_STRING_EQUAL(i->sha256, "b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696");
    run r;
    generate(m, 2, &r);
    CU_ASSERT_EQUAL(r.n_tokens, STEPS + 1);
    const ikv_tokenizer *tok = ikv_model_tokenizer(m);
    char text[4096];
    size_t len = 0;
    for (int t = 1; t < r.n_tokens; t++) {
        int got = ikv_tokenizer_decode(tok, r.tokens[t - 1], r.tokens[t], text + len, sizeof text - len - 1);
        CU_ASSERT_FATAL(got >= 0);
        len += (size_t)got;
    }
    text[len] = '\0';
    if (strcmp(text, expected_text) != 0)
        printf("\n    got: '%s' ", text);
    CU_ASSERT_STRING_EQUAL(text, expected_text);
    /* batched prefill of the same tokens gives the same last logits */
    ikv_session *s;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(ikv_session_create(&s, m, STEPS, 1, err, sizeof err), IKV_OK);
    CU_ASSERT_EQUAL(ikv_session_prefill(s, r.tokens, STEPS), IKV_OK);
    double worst = 0.0;
    for (int v = 0; v < 512; v++)
        worst = fmax(worst, fabs(ikv_session_logits(s)[v] - r.logits[(size_t)(STEPS - 1) * 512 + v]));
    CU_ASSERT(worst < 1e-4);
    ikv_session_free(s);
    free(r.logits);
    ikv_model_free(m);
}

static void test_gguf_matches_llama2c(void)
{
    if (!ikv_test_models_dir()) {
        ikv_test_skip("../shared/models is absent");
        return;
    }
    ikv_model *bin = load("stories260K.bin", "tok512.bin"), *gguf = load("stories260K.gguf", NULL);
    const ikv_model_details *i = ikv_model_info(gguf);
    CU_ASSERT_STRING_EQUAL(i->format, "gguf");
    CU_ASSERT_STRING_EQUAL(i->arch, "llama");
    CU_ASSERT(i->dim == 64 && i->n_layers == 5 && i->n_kv_heads == 4 && i->max_seq_len == 2048 &&
              i->rope_dim == 8 && !i->tied_classifier);
    CU_ASSERT(i->bos_id == 1 && i->eos_id == 2);
    CU_ASSERT_STRING_EQUAL(i->weight_type, "F32");
    CU_ASSERT_STRING_EQUAL(i->sha256, "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d");
    run a, b;
    generate(bin, 1, &a);
    generate(gguf, 2, &b);
    CU_ASSERT_EQUAL(a.n_tokens, b.n_tokens);
    CU_ASSERT(memcmp(a.tokens, b.tokens, (size_t)a.n_tokens * sizeof a.tokens[0]) == 0);
    double worst = 0.0;
    for (size_t k = 0; k < (size_t)STEPS * 512; k++)
        worst = fmax(worst, fabs(a.logits[k] - b.logits[k]));
    if (!(worst <= 1e-5))
        printf("\n    largest logit difference %g ", worst);
    CU_ASSERT(worst <= 1e-5);
    free(a.logits);
    free(b.logits);
    ikv_model_free(bin);
    ikv_model_free(gguf);
}

static void add_suites(void)
{
    static const ikv_test_case cases[] = {
        {"llama2.c checkpoint: run.c's greedy story", test_llama2c_text},
        {"GGUF: same tokens and logits as the checkpoint", test_gguf_matches_llama2c},
        {NULL, NULL}};
    ikv_test_suite("stories260K", cases);
}

int main(int argc, char **argv)
{
    return ikv_test_main(argc, argv, add_suites);
}
