/*
 * Selection, budget allocation and the shared signal definitions.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "runner.h"
#include "core_fixture.h"

static int by_rank(const void *a, const void *b)
{
    const ikv_rank *x = a, *y = b;
    if (ikv_rank_better(x, y))
        return -1;
    if (ikv_rank_better(y, x))
        return 1;
    return 0;
}

static int by_slot(const void *a, const void *b)
{
    const ikv_rank *x = a, *y = b;
    return (x->slot > y->slot) - (x->slot < y->slot);
}

/* ikv_select_top must put exactly the k best of a full sort first. */
static int check_select(ikv_rank *r, int n, int k)
{
    ikv_rank *sorted = malloc((size_t)n * sizeof *sorted);
    memcpy(sorted, r, (size_t)n * sizeof *r);
    qsort(sorted, (size_t)n, sizeof *sorted, by_rank);
    ikv_select_top(r, n, k);
    int kk = k < 0 ? 0 : (k > n ? n : k);
    qsort(r, (size_t)kk, sizeof *r, by_slot);
    qsort(sorted, (size_t)kk, sizeof *sorted, by_slot);
    int ok = 1;
    for (int i = 0; i < kk; i++)
        ok &= r[i].slot == sorted[i].slot;
    free(sorted);
    return ok;
}

static void fill(ikv_rank *r, int n, int pattern, uint64_t seed)
{
    for (int i = 0; i < n; i++) {
        float s;
        switch (pattern) {
        case 0: s = fx_unit(seed, 1, (uint64_t)i, 0); break;            /* random */
        case 1: s = (float)(int)(4.0f * fx_unit(seed, 2, (uint64_t)i, 0)); break; /* many ties */
        case 2: s = (float)i; break;                                    /* ascending */
        case 3: s = (float)(n - i); break;                              /* descending */
        case 4: s = 1.0f; break;                                        /* all equal */
        default: s = (float)(i < n / 2 ? i : n - i); break;             /* organ pipe */
        }
        /* distinct positions in scrambled order: i -> 7919 i mod 10007 */
        r[i] = (ikv_rank){.score = s, .pos = (int32_t)((i * 7919) % 10007), .slot = i};
    }
}

static void test_select_matches_sort(void)
{
    static const int sizes[] = {1, 2, 3, 5, 16, 17, 33, 100, 1000, 4097};
    ikv_rank *r = malloc(5000 * sizeof *r);
    int failures = 0;
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
        int n = sizes[si];
        int ks[] = {0, 1, n / 3, n / 2, n - 2, n - 1, n, n + 5};
        for (int pattern = 0; pattern < 6; pattern++) {
            for (size_t ki = 0; ki < sizeof ks / sizeof *ks; ki++) {
                fill(r, n, pattern, (uint64_t)(si * 31 + ki));
                failures += !check_select(r, n, ks[ki]);
            }
        }
    }
    CU_ASSERT_EQUAL(failures, 0);
    free(r);
}

static void test_rank_order(void)
{
    ikv_rank a = {1.0f, 5, 0}, b = {1.0f, 9, 1}, c = {2.0f, 0, 2};
    CU_ASSERT(ikv_rank_better(&b, &a)); /* tie: the more recent token wins */
    CU_ASSERT(!ikv_rank_better(&a, &b));
    CU_ASSERT(ikv_rank_better(&c, &b));
    CU_ASSERT(!ikv_rank_better(&a, &a));
}

static void test_uniform_allocation(void)
{
    int out[8];
    CU_ASSERT_EQUAL(ikv_allocate_budgets(IKV_ALLOC_UNIFORM, 64, 8, 0, 20.0, out), IKV_OK);
    for (int l = 0; l < 8; l++)
        CU_ASSERT_EQUAL(out[l], 64);
    CU_ASSERT_EQUAL(ikv_allocate_budgets(IKV_ALLOC_UNIFORM, 0, 8, 0, 20.0, out), IKV_EINVAL);
}

/* Hand-computed: B = 100, 5 layers, no window, beta = 20: extras go from
 * 2*100 - 5 = 195 down to 100/20 = 5 in steps of 47.5, i.e. 195, 147.5, 100,
 * 52.5, 5. Floors sum to 499; the missing slot goes to the lowest layer. */
static void test_pyramid_hand_case(void)
{
    int out[5];
    CU_ASSERT_EQUAL(ikv_allocate_budgets(IKV_ALLOC_PYRAMID, 100, 5, 0, 20.0, out), IKV_OK);
    int want[5] = {196, 147, 100, 52, 5};
    for (int l = 0; l < 5; l++)
        CU_ASSERT_EQUAL(out[l], want[l]);
    /* With a window of 20: extras from 2*80 - 4 = 156 to 80/20 = 4, plus 20. */
    CU_ASSERT_EQUAL(ikv_allocate_budgets(IKV_ALLOC_PYRAMID, 100, 5, 20, 20.0, out), IKV_OK);
    int want_w[5] = {176, 138, 100, 62, 24};
    for (int l = 0; l < 5; l++)
        CU_ASSERT_EQUAL(out[l], want_w[l]);
    /* beta = 1 is uniform. */
    CU_ASSERT_EQUAL(ikv_allocate_budgets(IKV_ALLOC_PYRAMID, 100, 5, 0, 1.0, out), IKV_OK);
    for (int l = 0; l < 5; l++)
        CU_ASSERT_EQUAL(out[l], 100);
}

static void test_pyramid_properties(void)
{
    int out[64];
    int failures = 0;
    for (int layers = 1; layers <= 64; layers += 7) {
        for (int budget = 1; budget <= 3000; budget = budget * 3 + 1) {
            for (int window = 0; window <= 32; window += 16) {
                double betas[] = {1.0, 2.5, 20.0, 1000.0};
                for (int bi = 0; bi < 4; bi++) {
                    if (ikv_allocate_budgets(IKV_ALLOC_PYRAMID, budget, layers, window, betas[bi], out) != IKV_OK) {
                        failures++;
                        continue;
                    }
                    int before = failures;
                    long total = 0;
                    for (int l = 0; l < layers; l++) {
                        total += out[l];
                        if (out[l] < (budget < window ? budget : window) || out[l] < 1)
                            failures++;
                        if (l > 0 && out[l] > out[l - 1])
                            failures++; /* lower layers keep at least as much */
                    }
                    if (total != (long)budget * layers)
                        failures++;
                    if (failures != before)
                        printf("\n    L=%d B=%d w=%d beta=%g:", layers, budget, window, betas[bi]);
                }
            }
        }
    }
    CU_ASSERT_EQUAL(failures, 0);
}

/* Reference ranking for ikv_top_k: larger first, NaN last, ties by index. */
static int ref_before(const float *x, int a, int b)
{
    int na = isnan(x[a]), nb = isnan(x[b]);
    if (na != nb)
        return nb;
    if (!na && x[a] != x[b])
        return x[a] > x[b];
    return a < b;
}

static void test_top_k(void)
{
    /* hand case: ties keep index order, -inf and NaN rank last */
    float hand[8] = {1.0f, 3.0f, -INFINITY, 3.0f, NAN, 2.0f, 1.0f, 0.5f};
    int32_t out[600], scratch[600];
    ikv_top_k(hand, 8, 4, out, scratch);
    CU_ASSERT(out[0] == 1 && out[1] == 3 && out[2] == 5 && out[3] == 0);
    ikv_top_k(hand, 8, 8, out, scratch);
    CU_ASSERT(out[4] == 6 && out[5] == 7 && out[6] == 2 && out[7] == 4);
    /* against a selection sort on random vectors: distinct values, many
     * ties (values from 8 levels), runs of -inf and NaN; k below and
     * above the size where the floor from group maxima applies */
    uint64_t seed = 7;
    int failures = 0;
    float x[600];
    int32_t ref[600];
    for (int trial = 0; trial < 400; trial++) {
        int n = 1 + (int)(ikv_rng_next(&seed) % 600);
        int k = 1 + (int)(ikv_rng_next(&seed) % (uint64_t)(n < 40 ? n : 40));
        if (trial % 10 == 0)
            k = n;
        int kind = trial % 4;
        for (int i = 0; i < n; i++) {
            uint64_t r = ikv_rng_next(&seed);
            x[i] = kind == 1 ? (float)(r % 8) : (float)(r % 100000) / 1000.0f - 50.0f;
            if (kind == 2 && r % 5 == 0)
                x[i] = -INFINITY;
            if (kind == 3 && r % 3 == 0)
                x[i] = NAN;
        }
        for (int i = 0; i < n; i++)
            ref[i] = i;
        for (int a = 0; a < k; a++)
            for (int b = a + 1; b < n; b++)
                if (ref_before(x, ref[b], ref[a])) {
                    int32_t t = ref[a];
                    ref[a] = ref[b];
                    ref[b] = t;
                }
        ikv_top_k(x, n, k, out, scratch);
        for (int i = 0; i < k; i++)
            failures += out[i] != ref[i];
    }
    CU_ASSERT_EQUAL(failures, 0);
}

static void test_entropy(void)
{
    float uniform[8] = {0};
    CU_ASSERT_DOUBLE_EQUAL(ikv_entropy_from_logits(uniform, 8), log(8.0), 1e-6);
    /* p = 1/2, 1/4, 1/4: H = 1.5 ln 2. Logits need not be normalised. */
    float l3[3] = {(float)log(0.5) + 7.0f, (float)log(0.25) + 7.0f, (float)log(0.25) + 7.0f};
    CU_ASSERT_DOUBLE_EQUAL(ikv_entropy_from_logits(l3, 3), 1.5 * log(2.0), 1e-6);
    float peaked[4] = {100.0f, 0.0f, 0.0f, 0.0f};
    CU_ASSERT(ikv_entropy_from_logits(peaked, 4) < 1e-30 + 1e-6);
    float with_inf[3] = {0.0f, -INFINITY, 0.0f};
    CU_ASSERT_DOUBLE_EQUAL(ikv_entropy_from_logits(with_inf, 3), log(2.0), 1e-6);
    CU_ASSERT_EQUAL(ikv_entropy_from_logits(NULL, 3), 0.0f);
    CU_ASSERT_EQUAL(ikv_entropy_from_logits(uniform, 0), 0.0f);
    /* log Z beside the entropy: ln(2^-7 e^7 ...) sums to e^7, so log Z = 7 */
    float lz, h;
    ikv_logits_summary(l3, 3, &lz, &h);
    CU_ASSERT_DOUBLE_EQUAL(lz, 7.0, 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(h, 1.5 * log(2.0), 1e-6);
    ikv_logits_summary(with_inf, 3, &lz, NULL);
    CU_ASSERT_DOUBLE_EQUAL(lz, log(2.0), 1e-6);
    float big[2] = {INFINITY, 0.0f};
    ikv_logits_summary(big, 2, &lz, &h);
    CU_ASSERT(isinf(lz) && lz > 0 && h == 0.0f);
    ikv_logits_summary(NULL, 0, &lz, &h);
    CU_ASSERT(isinf(lz) && lz < 0 && h == 0.0f);
}

/* Hand cases: KL((1/2, 1/2) || (1/4, 3/4)) = 1/2 ln 2 + 1/2 ln(2/3)
 * = 1/2 ln(4/3); logits need not be normalised, and KL is not symmetric:
 * KL((1/4, 3/4) || (1/2, 1/2)) = 1/4 ln(1/2) + 3/4 ln(3/2). */
static void test_kl_logits(void)
{
    float even[2] = {3.0f, 3.0f}, skewed[2] = {0.0f, (float)log(3.0)};
    CU_ASSERT_DOUBLE_EQUAL(ikv_kl_logits(even, skewed, 2), 0.5 * log(4.0 / 3.0), 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(ikv_kl_logits(skewed, even, 2), 0.25 * log(0.5) + 0.75 * log(1.5), 1e-7);
    /* equal up to a constant: 0 up to rounding, never below */
    float a[4] = {1.0f, -2.0f, 0.5f, 7.0f}, b[4] = {11.0f, 8.0f, 10.5f, 17.0f};
    const double same = ikv_kl_logits(a, b, 4);
    CU_ASSERT(same >= 0.0 && same < 1e-12);
    /* q gives no mass where p gives some: +inf; the other way: finite */
    float gap[2] = {0.0f, -INFINITY};
    CU_ASSERT(isinf(ikv_kl_logits(even, gap, 2)));
    CU_ASSERT_DOUBLE_EQUAL(ikv_kl_logits(gap, even, 2), log(2.0), 1e-7);
    float none[2] = {-INFINITY, -INFINITY}, big[2] = {INFINITY, 0.0f};
    CU_ASSERT(isinf(ikv_kl_logits(even, none, 2)) && ikv_kl_logits(even, none, 2) > 0);
    CU_ASSERT(isnan(ikv_kl_logits(none, even, 2)));
    CU_ASSERT(isnan(ikv_kl_logits(big, even, 2)));
    CU_ASSERT(isnan(ikv_kl_logits(even, big, 2)));
    float with_nan[2] = {0.0f, NAN};
    CU_ASSERT(isnan(ikv_kl_logits(with_nan, even, 2)));
    CU_ASSERT(isnan(ikv_kl_logits(even, with_nan, 2)));
    CU_ASSERT_EQUAL(ikv_kl_logits(NULL, even, 2), 0.0);
    CU_ASSERT_EQUAL(ikv_kl_logits(even, even, 0), 0.0);
}

static void test_evolution(void)
{
    float a[3] = {1, 2, 3}, b[3] = {2, 4, 6}, c[3] = {-1, -2, -3}, z[3] = {0};
    float e1[3] = {1, 0, 0}, e2[3] = {0, 1, 0};
    CU_ASSERT_DOUBLE_EQUAL(ikv_evolution(a, b, 3), 0.0, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(ikv_evolution(a, c, 3), 2.0, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(ikv_evolution(e1, e2, 3), 1.0, 1e-6);
    CU_ASSERT_EQUAL(ikv_evolution(a, z, 3), 0.0f);
    /* 45 degrees: 1 - cos = 1 - 1/sqrt(2) */
    float d[2] = {1, 1}, x[2] = {1, 0};
    CU_ASSERT_DOUBLE_EQUAL(ikv_evolution(d, x, 2), 1.0 - 1.0 / sqrt(2.0), 1e-6);
}

static void add_suites(void)
{
    static const ikv_test_case cases[] = {
        {"select matches a full sort", test_select_matches_sort},
        {"rank order and ties", test_rank_order},
        {"uniform allocation", test_uniform_allocation},
        {"pyramid hand case", test_pyramid_hand_case},
        {"pyramid properties", test_pyramid_properties},
        {"top-k indices", test_top_k},
        {"entropy", test_entropy},
        {"KL between logit vectors", test_kl_logits},
        {"evolution", test_evolution},
        {NULL, NULL},
    };
    ikv_test_suite("core select", cases);
}

int main(int argc, char **argv)
{
    return ikv_test_main(argc, argv, add_suites);
}
