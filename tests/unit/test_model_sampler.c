/*
 * Sampling: greedy, seeded determinism, frequencies against the softmax
 * at several temperatures, top-p nucleus membership and frequencies, and
 * parameter errors.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/sampler.h"
#include "model/status.h"
#include "runner.h"

static ikv_sampler *make(int n, float temperature, float top_p, uint64_t seed)
{
    ikv_sampler_params p = {temperature, top_p, seed};
    ikv_sampler *s = NULL;
    char err[128];
    CU_ASSERT_EQUAL_FATAL(ikv_sampler_create(&s, n, &p, err, sizeof err), IKV_OK);
    return s;
}

static void test_greedy(void)
{
    float logits[6] = {0.5f, 3.0f, -1.0f, 3.0f, 2.9f, -INFINITY};
    ikv_sampler *s = make(6, 0.0f, 0.9f, 1);
    for (int i = 0; i < 10; i++)
        CU_ASSERT_EQUAL(ikv_sampler_sample(s, logits), 1); /* first of the tied maxima */
    CU_ASSERT_EQUAL(ikv_argmax(logits, 6), 1);
    CU_ASSERT_EQUAL(ikv_argmax(logits + 2, 4), 1);
    ikv_sampler_free(s);
    ikv_sampler_params d = ikv_sampler_default_params();
    CU_ASSERT(d.temperature == 1.0f && d.top_p == 0.9f);
}

static void test_seeds(void)
{
    float logits[50];
    for (int i = 0; i < 50; i++)
        logits[i] = (float)sin(i);
    ikv_sampler *a = make(50, 1.0f, 0.0f, 7), *b = make(50, 1.0f, 0.0f, 7), *c = make(50, 1.0f, 0.0f, 8);
    int same_ab = 1, same_ac = 1;
    for (int i = 0; i < 200; i++) {
        int x = ikv_sampler_sample(a, logits), y = ikv_sampler_sample(b, logits), z = ikv_sampler_sample(c, logits);
        CU_ASSERT(x >= 0 && x < 50);
        same_ab &= x == y;
        same_ac &= x == z;
    }
    CU_ASSERT(same_ab);
    CU_ASSERT(!same_ac);
    ikv_sampler_free(a);
    ikv_sampler_free(b);
    ikv_sampler_free(c);
}

/* Empirical frequencies of `draws` samples. */
static void frequencies(ikv_sampler *s, const float *logits, int n, int draws, double *freq)
{
    memset(freq, 0, (size_t)n * sizeof *freq);
    for (int i = 0; i < draws; i++)
        freq[ikv_sampler_sample(s, logits)] += 1.0 / draws;
}

static void test_temperature_frequencies(void)
{
    const float logits[4] = {1.0f, 0.0f, -1.0f, 0.5f};
    const float temps[3] = {1.0f, 0.5f, 2.0f};
    for (int k = 0; k < 3; k++) {
        ikv_sampler *s = make(4, temps[k], 1.0f, 100 + k); /* top_p 1: whole distribution */
        double freq[4], p[4], sum = 0.0;
        for (int i = 0; i < 4; i++)
            sum += (p[i] = exp(logits[i] / temps[k]));
        frequencies(s, logits, 4, 40000, freq);
        for (int i = 0; i < 4; i++)
            CU_ASSERT(fabs(freq[i] - p[i] / sum) < 0.015); /* ~6 standard errors */
        ikv_sampler_free(s);
    }
}

static void test_top_p(void)
{
    /* probabilities 0.5, 0.3, 0.15, 0.05 */
    const float logits[4] = {logf(0.5f), logf(0.3f), logf(0.15f), logf(0.05f)};
    ikv_sampler *s = make(4, 1.0f, 0.7f, 5);
    double freq[4];
    frequencies(s, logits, 4, 40000, freq);
    /* nucleus {0, 1} (0.5 < 0.7 <= 0.8), renormalised */
    CU_ASSERT(freq[2] == 0.0 && freq[3] == 0.0);
    CU_ASSERT(fabs(freq[0] - 0.625) < 0.015);
    ikv_sampler_free(s);
    s = make(4, 1.0f, 0.9f, 6); /* 0.5 + 0.3 + 0.15 > 0.9: three tokens */
    frequencies(s, logits, 4, 40000, freq);
    CU_ASSERT(freq[3] == 0.0 && freq[2] > 0.1);
    ikv_sampler_free(s);
    s = make(4, 1.0f, 0.2f, 7); /* the top token alone */
    frequencies(s, logits, 4, 1000, freq);
    CU_ASSERT(freq[1] == 0.0 && freq[2] == 0.0 && freq[3] == 0.0);
    ikv_sampler_free(s);
    /* two equal tokens, a nucleus smaller than either */
    const float flat[2] = {0.0f, 0.0f};
    s = make(2, 1.0f, 0.1f, 8);
    for (int i = 0; i < 100; i++)
        CU_ASSERT_EQUAL(ikv_sampler_sample(s, flat), 0);
    ikv_sampler_free(s);
    /* a large vocabulary with a long tail */
    enum { N = 32000 };
    float *big = malloc(N * sizeof *big);
    for (int i = 0; i < N; i++)
        big[i] = -0.001f * i;
    s = make(N, 1.0f, 0.5f, 9);
    int max_id = 0;
    for (int i = 0; i < 2000; i++) {
        int id = ikv_sampler_sample(s, big);
        max_id = id > max_id ? id : max_id;
    }
    /* half the mass lies in the first ~ln(2)/0.001 = 693 .. tokens (of the
     * normalised tail); nothing past the nucleus is drawn */
    double mass = 0.0, total = 0.0;
    for (int i = 0; i < N; i++)
        total += exp(big[i]);
    int cut = 0;
    while (mass <= 0.5 * total)
        mass += exp(big[cut++]);
    CU_ASSERT(max_id < cut);
    CU_ASSERT(max_id > cut / 2);
    free(big);
    ikv_sampler_free(s);
}

static void test_bad_parameters(void)
{
    ikv_sampler *s = (ikv_sampler *)1;
    char err[128];
    ikv_sampler_params p = ikv_sampler_default_params();
    p.temperature = -1.0f;
    CU_ASSERT_EQUAL(ikv_sampler_create(&s, 10, &p, err, sizeof err), IKV_EINVAL);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT(strstr(err, "temperature") != NULL);
    p.temperature = NAN;
    CU_ASSERT_EQUAL(ikv_sampler_create(&s, 10, &p, err, sizeof err), IKV_EINVAL);
    p.temperature = INFINITY;
    CU_ASSERT_EQUAL(ikv_sampler_create(&s, 10, &p, err, sizeof err), IKV_EINVAL);
    p = ikv_sampler_default_params();
    p.top_p = NAN;
    CU_ASSERT_EQUAL(ikv_sampler_create(&s, 10, &p, err, sizeof err), IKV_EINVAL);
    p = ikv_sampler_default_params();
    CU_ASSERT_EQUAL(ikv_sampler_create(&s, 0, &p, err, sizeof err), IKV_EINVAL);
}

static void add_suites(void)
{
    static const ikv_test_case cases[] = {
        {"greedy", test_greedy},
        {"seeds", test_seeds},
        {"frequencies at several temperatures", test_temperature_frequencies},
        {"top-p nucleus", test_top_p},
        {"bad parameters", test_bad_parameters},
        {NULL, NULL}};
    ikv_test_suite("sampler", cases);
}

int main(int argc, char **argv)
{
    return ikv_test_main(argc, argv, add_suites);
}
