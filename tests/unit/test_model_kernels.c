/*
 * Kernels and number formats. Built twice: with the vector code of the
 * build machine (test_model_kernels) and with the portable fallback
 * (test_model_kernels_portable, -DIKV_PORTABLE_KERNELS); both must match
 * naive double-precision products on the decoded weights (for Q8_0, with
 * the activations quantised as the kernels do, which is checked on its
 * own), for every weight type and for sizes that fit no vector or tile. Also: half and
 * bfloat16 conversions (exhaustively against the test writer's own),
 * Q8_0 encoding, SHA-256 test vectors.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_writer.h"
#include "model/half.h"
#include "model/kernels.h"
#include "model/sha256.h"
#include "model/status.h"
#include "runner.h"

static uint64_t rng_state = 42;

static float uniform(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (float)((double)(z >> 11) * 0x1p-53 * 2.0 - 1.0);
}

typedef struct test_matrix {
    ikv_matrix w;
    uint8_t *bytes;
    float *decoded; /* [rows][cols] */
} test_matrix;

static void make_matrix(test_matrix *t, ikv_wtype type, int rows, int cols)
{
    size_t row_bytes = ikv_wtype_row_bytes(type, cols);
    float *v = malloc((size_t)rows * cols * sizeof *v);
    for (size_t i = 0; i < (size_t)rows * cols; i++)
        v[i] = uniform();
    t->bytes = malloc((size_t)rows * row_bytes + 1);
    t->decoded = malloc((size_t)rows * cols * sizeof *t->decoded);
    for (int r = 0; r < rows; r++) {
        ikv_wtype_from_f32(type, v + (size_t)r * cols, cols, t->bytes + (size_t)r * row_bytes);
        ikv_wtype_to_f32(type, t->bytes + (size_t)r * row_bytes, 0, cols, t->decoded + (size_t)r * cols);
    }
    t->w = (ikv_matrix){type, t->bytes, rows, cols, row_bytes};
    free(v);
}

static void free_matrix(test_matrix *t)
{
    free(t->bytes);
    free(t->decoded);
}

/* |got - exact| relative to sum |w x| (the scale of rounding error).
 * Q8_0 products use quantised activations (checked in
 * test_q8_activations), so the exact value uses them too. */
static double product_error(const test_matrix *t, const float *x, const float *y, int n)
{
    const int cols = t->w.cols;
    float *xs = malloc((size_t)cols * sizeof *xs);
    double worst = 0.0;
    for (int k = 0; k < n; k++) {
        const float *xk = x + (size_t)k * cols;
        if (t->w.type == IKV_WTYPE_Q8_0) {
            ikv_q8_activations(xk, cols, xs);
            xk = xs;
        }
        for (int r = 0; r < t->w.rows; r++) {
            double exact = 0.0, scale = 1e-30;
            for (int c = 0; c < cols; c++) {
                double p = (double)t->decoded[(size_t)r * cols + c] * xk[c];
                exact += p;
                scale += fabs(p);
            }
            worst = fmax(worst, fabs(y[(size_t)k * t->w.rows + r] - exact) / scale);
        }
    }
    free(xs);
    return worst;
}

static void test_isa(void)
{
#ifdef IKV_PORTABLE_KERNELS
    CU_ASSERT_STRING_EQUAL(ikv_kernels_isa(), "portable");
#else
    printf("(%s) ", ikv_kernels_isa());
    CU_ASSERT_PTR_NOT_NULL(ikv_kernels_isa());
#endif
}

static void test_matvec_every_type(void)
{
    /* rows go four at a time, one from each quarter of the matrix, and the
     * 0-3 rows past the last quarter one by one; 101 x 1056 splits its
     * quarters between two threads */
    const int shapes[][2] = {{1, 32},   {7, 64},   {33, 96},  {100, 288}, {9, 1056},
                             {101, 1056}, {3, 4096}, {9, 4128}, {6, 8224}};
    for (int type = 0; type < IKV_WTYPE_COUNT; type++) {
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            test_matrix t;
            make_matrix(&t, (ikv_wtype)type, shapes[s][0], shapes[s][1]);
            float *x = malloc((size_t)t.w.cols * sizeof *x), *y = malloc((size_t)t.w.rows * sizeof *y);
            for (int c = 0; c < t.w.cols; c++)
                x[c] = uniform();
            float *y1 = malloc((size_t)t.w.rows * sizeof *y1);
            ikv_workspace ws = {0};
            for (int threads = 1; threads <= 2; threads++) {
                CU_ASSERT_EQUAL(ikv_matvec(&t.w, x, threads == 1 ? y1 : y, threads, &ws), IKV_OK);
                double e = product_error(&t, x, threads == 1 ? y1 : y, 1);
                if (!(e < 1e-5))
                    printf("\n    %s %dx%d: error %g ", ikv_wtype_name((ikv_wtype)type), t.w.rows, t.w.cols, e);
                CU_ASSERT(e < 1e-5);
            }
            /* each row is summed by one thread in a fixed order */
            CU_ASSERT(memcmp(y1, y, (size_t)t.w.rows * sizeof *y) == 0);
            CU_ASSERT(ikv_matvec_workspace(&t.w) <= ws.cap);
            ikv_workspace_free(&ws);
            free(y1);
            free(x);
            free(y);
            free_matrix(&t);
        }
    }
}

/* Products of several matrices on one x in one parallel region give the
 * results of one ikv_matvec each, bit for bit: q, k and v of different
 * heights, every type, one and two threads, and a group of mixed types
 * (done one by one). */
static void test_matvec_group(void)
{
    const int rows[3] = {200, 52, 52}, cols = 1056;
    for (int type = 0; type <= IKV_WTYPE_COUNT; type++) {
        test_matrix t[3];
        for (int i = 0; i < 3; i++) /* the last round: F32, F16, BF16 */
            make_matrix(&t[i], (ikv_wtype)(type < IKV_WTYPE_COUNT ? type : i), rows[i], cols);
        float *x = malloc((size_t)cols * sizeof *x);
        for (int c = 0; c < cols; c++)
            x[c] = uniform();
        for (int threads = 1; threads <= 2; threads++) {
            float *alone[3], *together[3];
            const ikv_matrix *w[3];
            ikv_workspace ws = {0};
            for (int i = 0; i < 3; i++) {
                w[i] = &t[i].w;
                alone[i] = malloc((size_t)rows[i] * sizeof(float));
                together[i] = malloc((size_t)rows[i] * sizeof(float));
                CU_ASSERT_EQUAL(ikv_matvec(w[i], x, alone[i], threads, &ws), IKV_OK);
            }
            CU_ASSERT_EQUAL(ikv_matvec_group(w, 3, x, together, threads, &ws), IKV_OK);
            for (int i = 0; i < 3; i++) {
                CU_ASSERT(memcmp(alone[i], together[i], (size_t)rows[i] * sizeof(float)) == 0);
                free(alone[i]);
                free(together[i]);
            }
            ikv_workspace_free(&ws);
        }
        free(x);
        for (int i = 0; i < 3; i++)
            free_matrix(&t[i]);
    }
}

static void test_float_widths(void)
{
    /* wide rows with a tail past the last whole vector */
    for (int type = 0; type < 3; type++) {
        test_matrix t;
        make_matrix(&t, (ikv_wtype)type, 7, 4104);
        float *x = malloc(4104 * sizeof *x), y[7];
        for (int c = 0; c < 4104; c++)
            x[c] = uniform();
        ikv_workspace ws = {0};
        CU_ASSERT_EQUAL(ikv_matvec(&t.w, x, y, 2, &ws), IKV_OK);
        CU_ASSERT(product_error(&t, x, y, 1) < 1e-5);
        ikv_workspace_free(&ws);
        free(x);
        free_matrix(&t);
    }
    /* F32/F16/BF16 rows of any width (vector tails) */
    for (int type = 0; type < 3; type++) {
        for (int cols = 1; cols <= 70; cols += 3) {
            test_matrix t;
            make_matrix(&t, (ikv_wtype)type, 5, cols);
            float x[70], y[5];
            for (int c = 0; c < cols; c++)
                x[c] = uniform();
            ikv_workspace ws = {0};
            CU_ASSERT_EQUAL(ikv_matvec(&t.w, x, y, 1, &ws), IKV_OK);
            CU_ASSERT(product_error(&t, x, y, 1) < 1e-5);
            float *xs = malloc((size_t)9 * cols * sizeof *xs), ys[9 * 5];
            for (int i = 0; i < 9 * cols; i++)
                xs[i] = uniform();
            CU_ASSERT_EQUAL(ikv_matmul(&t.w, xs, 9, ys, 2, &ws), IKV_OK);
            CU_ASSERT(product_error(&t, xs, ys, 9) < 1e-5);
            ikv_workspace_free(&ws);
            free(xs);
            free_matrix(&t);
        }
    }
}

static void test_matmul_every_type(void)
{
    const int shapes[][2] = {{1, 64}, {8, 32}, {13, 96}, {70, 288}, {33, 544}};
    const int tokens[] = {1, 2, 3, 4, 5, 8, 17, 31, 32, 33, 70};
    ikv_workspace ws = {0};
    for (int type = 0; type < IKV_WTYPE_COUNT; type++) {
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            test_matrix t;
            make_matrix(&t, (ikv_wtype)type, shapes[s][0], shapes[s][1]);
            for (size_t k = 0; k < sizeof tokens / sizeof tokens[0]; k++) {
                int n = tokens[k];
                float *x = malloc((size_t)n * t.w.cols * sizeof *x);
                float *y1 = malloc((size_t)n * t.w.rows * sizeof *y1);
                float *y2 = malloc((size_t)n * t.w.rows * sizeof *y2);
                for (int i = 0; i < n * t.w.cols; i++)
                    x[i] = uniform();
                CU_ASSERT_EQUAL(ikv_matmul(&t.w, x, n, y1, 1, &ws), IKV_OK);
                CU_ASSERT_EQUAL(ikv_matmul(&t.w, x, n, y2, 2, &ws), IKV_OK);
                double e = product_error(&t, x, y1, n);
                if (!(e < 1e-5))
                    printf("\n    %s %dx%d n=%d: error %g ", ikv_wtype_name((ikv_wtype)type), t.w.rows,
                           t.w.cols, n, e);
                CU_ASSERT(e < 1e-5);
                /* each output is summed by one thread in a fixed order */
                CU_ASSERT(memcmp(y1, y2, (size_t)n * t.w.rows * sizeof *y1) == 0);
                CU_ASSERT(ikv_matmul_workspace(&t.w, n, 2) <= ws.cap);
                free(x);
                free(y1);
                free(y2);
            }
            free_matrix(&t);
        }
    }
    ikv_workspace_free(&ws);
}

/* Q8_0 activations: per 32 columns d = max|x| / 127 and x~ = d q with q
 * the nearest integer to x / d, so |x~ - x| <= d / 2 and max|x| survives;
 * blocks of zeros (or too small to scale) give zeros, and a NaN or an
 * infinity makes its block, and so the product, NaN. */
static void test_q8_activations(void)
{
    float x[128], out[128];
    for (int i = 0; i < 128; i++)
        x[i] = uniform() * (i < 32 ? 1.0f : i < 64 ? 1e-3f : 3e4f);
    x[7] = -1.25f; /* block 0's largest magnitude */
    ikv_q8_activations(x, 128, out);
    for (int b = 0; b < 4; b++) {
        double amax = 0.0;
        for (int i = 32 * b; i < 32 * b + 32; i++)
            amax = fmax(amax, fabs(x[i]));
        const double d = amax / 127.0;
        for (int i = 32 * b; i < 32 * b + 32; i++) {
            double q = out[i] / d;
            CU_ASSERT(fabs(out[i] - x[i]) <= 0.5 * d * (1.0 + 1e-5));
            CU_ASSERT(fabs(q - nearbyint(q)) < 1e-3 && fabs(q) <= 127.0 + 1e-3);
        }
    }
    CU_ASSERT(fabs(out[7] + 1.25f) < 1e-6);
    for (int i = 0; i < 32; i++)
        x[i] = i == 3 ? 1e-35f : 0.0f;
    x[40] = NAN;
    ikv_q8_activations(x, 96, out);
    for (int i = 0; i < 32; i++)
        CU_ASSERT_EQUAL(out[i], 0.0f);
    for (int i = 32; i < 64; i++)
        CU_ASSERT(isnan(out[i]));
    CU_ASSERT(isfinite(out[64]));
    /* and through the kernels: a NaN activation is not quantised away */
    test_matrix t;
    make_matrix(&t, IKV_WTYPE_Q8_0, 5, 96);
    ikv_workspace ws = {0};
    float y[5];
    CU_ASSERT_EQUAL(ikv_matvec(&t.w, x, y, 1, &ws), IKV_OK);
    for (int r = 0; r < 5; r++)
        CU_ASSERT(isnan(y[r]));
    float xs[6 * 96], ys[6 * 5];
    for (int i = 0; i < 6 * 96; i++)
        xs[i] = uniform();
    xs[4 * 96 + 50] = INFINITY;
    CU_ASSERT_EQUAL(ikv_matmul(&t.w, xs, 6, ys, 1, &ws), IKV_OK);
    for (int i = 0; i < 6 * 5; i++)
        CU_ASSERT(i / 5 == 4 ? isnan(ys[i]) : isfinite(ys[i]));
    ikv_workspace_free(&ws);
    free_matrix(&t);
}

/* The softmax's exp: within 4 ulp of e^x on [-87, 0], 0 below and for
 * -inf, NaN kept; every length (vector tails). */
static void test_exp_nonpositive(void)
{
    enum { N = 100003 };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    for (int i = 0; i < N; i++)
        x[i] = y[i] = -87.0f * (float)i / (float)(N - 1);
    x[1] = y[1] = -1e-9f;
    ikv_exp_nonpositive(y, N);
    double worst = 0.0;
    for (int i = 0; i < N; i++)
        worst = fmax(worst, fabs(y[i] - exp((double)x[i])) / exp((double)x[i]));
    if (!(worst <= 4 * 0x1p-24))
        printf("\n    exp: relative error %g ", worst);
    CU_ASSERT(worst <= 4 * 0x1p-24);
    CU_ASSERT_EQUAL(y[0], 1.0f);
    float special[5] = {-INFINITY, -87.5f, -1000.0f, NAN, 0.0f};
    ikv_exp_nonpositive(special, 5);
    CU_ASSERT_EQUAL(special[0], 0.0f);
    CU_ASSERT_EQUAL(special[1], 0.0f);
    CU_ASSERT_EQUAL(special[2], 0.0f);
    CU_ASSERT(isnan(special[3]));
    CU_ASSERT_EQUAL(special[4], 1.0f);
    for (int n = 0; n <= 40; n++) {
        float v[40], w[40];
        for (int i = 0; i < n; i++)
            v[i] = w[i] = -0.37f * (float)i;
        ikv_exp_nonpositive(w, n);
        int bad = 0;
        for (int i = 0; i < n; i++)
            bad += !(fabs(w[i] - exp((double)v[i])) <= 4 * 0x1p-24 * exp((double)v[i]));
        CU_ASSERT_EQUAL(bad, 0);
    }
    free(x);
    free(y);
}

static void test_dot_axpy_row(void)
{
    float a[67], b[67], y[67], y0[67];
    for (int i = 0; i < 67; i++) {
        a[i] = uniform();
        b[i] = uniform();
        y[i] = y0[i] = uniform();
    }
    for (int n = 0; n <= 67; n++) {
        double exact = 0.0;
        for (int i = 0; i < n; i++)
            exact += (double)a[i] * b[i];
        CU_ASSERT(fabs(ikv_dot_f32(a, b, n) - exact) < 1e-5);
    }
    /* the value side of attention, for head sizes around every vector width */
    const int widths[] = {1, 7, 8, 16, 17, 48, 64, 100, 128, 129, 160, 256, 300};
    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
        const int d = widths[wi], rows = 23;
        float *v = malloc((size_t)rows * d * sizeof *v), *out = malloc((size_t)d * sizeof *out);
        float p[23];
        for (int j = 0; j < rows; j++)
            p[j] = uniform();
        for (int i = 0; i < rows * d; i++)
            v[i] = uniform();
        for (int n = 0; n <= rows; n += 11) {
            ikv_weighted_rows(p, v, n, d, out);
            for (int c = 0; c < d; c++) {
                double exact = 0.0;
                for (int j = 0; j < n; j++)
                    exact += (double)p[j] * v[(size_t)j * d + c];
                CU_ASSERT(fabs(out[c] - exact) < 1e-5);
            }
        }
        free(v);
        free(out);
    }
    ikv_axpy(0.5f, a, y, 67);
    for (int i = 0; i < 67; i++)
        CU_ASSERT(fabs(y[i] - (y0[i] + 0.5 * a[i])) < 1e-6);
    /* the fast paths for short heads give what the generic calls give,
     * bit for bit: scores as ikv_dot_f32 per key, weighted rows as zero
     * plus one ikv_axpy per row (the leftover columns' path) */
    const int heads[] = {1, 7, 8, 9, 16, 24, 64};
    int differ = 0;
    for (size_t hi = 0; hi < sizeof heads / sizeof heads[0]; hi++) {
        const int d = heads[hi], n = 37;
        float *k = malloc((size_t)n * d * sizeof *k), q[64], row[37], p[37], out[64], ref[64];
        for (int i = 0; i < n * d; i++)
            k[i] = uniform();
        for (int c = 0; c < d; c++)
            q[c] = uniform();
        ikv_scaled_scores(q, k, n, d, 0.353553f, row);
        for (int j = 0; j < n; j++) {
            float expect = ikv_dot_f32(q, k + (size_t)j * d, d) * 0.353553f;
            differ += memcmp(&row[j], &expect, sizeof expect) != 0;
            p[j] = uniform();
        }
        if (d % 16 == 8) { /* the columns after the 512-bit vectors */
            const int c0 = d - 8;
            ikv_weighted_rows(p, k, n, d, out);
            for (int c = c0; c < d; c++)
                ref[c] = 0.0f;
            for (int j = 0; j < n; j++)
                ikv_axpy(p[j], k + (size_t)j * d + c0, ref + c0, 8);
            differ += memcmp(out + c0, ref + c0, 8 * sizeof *out) != 0;
        }
        free(k);
    }
    CU_ASSERT_EQUAL(differ, 0);
    test_matrix t;
    make_matrix(&t, IKV_WTYPE_Q8_0, 3, 96);
    float row[96];
    ikv_matrix_row(&t.w, 2, row);
    CU_ASSERT(memcmp(row, t.decoded + 2 * 96, sizeof row) == 0);
    free_matrix(&t);
}

/* ---- number formats ---- */

static void test_half_exhaustive(void)
{
    int mismatches = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float mine = ikv_f16_to_f32((uint16_t)h), theirs = gw_half_to_float((uint16_t)h);
        if (isnan(theirs)) {
            mismatches += !isnan(mine);
            continue;
        }
        mismatches += mine != theirs || signbit(mine) != signbit(theirs);
        mismatches += ikv_f32_to_f16(mine) != h; /* exact round trip */
    }
    CU_ASSERT_EQUAL(mismatches, 0);
    /* rounding of values between halves, against the writer's encoder */
    int wrong = 0;
    for (int i = 0; i < 200000; i++) {
        float f = ldexpf(uniform(), (int)(uniform() * 20.0f)); /* |f| < 2^20, subnormals too */
        if (fabsf(f) >= 65504.0f)
            continue;
        wrong += ikv_f32_to_f16(f) != gw_float_to_half(f);
    }
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT_EQUAL(ikv_f32_to_f16(65520.0f), 0x7c00);  /* rounds to infinity */
    CU_ASSERT_EQUAL(ikv_f32_to_f16(65519.0f), 0x7bff);  /* rounds to 65504 */
    CU_ASSERT_EQUAL(ikv_f32_to_f16(-INFINITY), 0xfc00);
    CU_ASSERT(isnan(ikv_f16_to_f32(ikv_f32_to_f16(NAN))));
    CU_ASSERT_EQUAL(ikv_f32_to_f16(0x1p-25f), 0);       /* tie: to even (zero) */
    CU_ASSERT_EQUAL(ikv_f32_to_f16(0x1.8p-24f), 2);     /* tie: to even (2) */
}

static void test_bf16(void)
{
    for (uint32_t b = 0; b < 65536; b++) {
        float f = ikv_bf16_to_f32((uint16_t)b);
        uint32_t bits;
        memcpy(&bits, &f, 4);
        CU_ASSERT_EQUAL_FATAL(bits, b << 16);
        if (!isnan(f))
            CU_ASSERT_EQUAL_FATAL(ikv_f32_to_bf16(f), b);
    }
    CU_ASSERT_EQUAL(ikv_f32_to_bf16(1.00390625f), 0x3f80);       /* tie: to even */
    CU_ASSERT_EQUAL(ikv_f32_to_bf16(1.01171875f), 0x3f82);       /* tie: to even (up) */
    CU_ASSERT(isnan(ikv_bf16_to_f32(ikv_f32_to_bf16(NAN))));
}

static void test_q8_0_encoding(void)
{
    float v[64];
    for (int i = 0; i < 64; i++)
        v[i] = uniform() * (i < 32 ? 1.0f : 1e-3f);
    v[5] = 1.5f; /* block maximum */
    uint8_t bytes[68];
    float back[64];
    ikv_wtype_from_f32(IKV_WTYPE_Q8_0, v, 64, bytes);
    ikv_wtype_to_f32(IKV_WTYPE_Q8_0, bytes, 0, 64, back);
    CU_ASSERT_EQUAL(ikv_wtype_row_bytes(IKV_WTYPE_Q8_0, 64), 68);
    CU_ASSERT_EQUAL((int8_t)bytes[2 + 5], 127);
    for (int b = 0; b < 2; b++) {
        /* half a quantisation step, plus the F16 rounding of the scale
         * (relative 2^-11, absolute 2^-25 below the normal range) times |q| */
        double amax = 0.0;
        for (int i = 32 * b; i < 32 * b + 32; i++)
            amax = fmax(amax, fabs(v[i]));
        double d = amax / 127.0;
        double bound = 0.5 * d + 127.0 * fmax(d * 0x1p-11, 0x1p-25) + 1e-7 * amax;
        for (int i = 32 * b; i < 32 * b + 32; i++)
            CU_ASSERT(fabs(back[i] - v[i]) <= bound);
    }
    /* the second block alone, from its offset */
    float part[32];
    ikv_wtype_to_f32(IKV_WTYPE_Q8_0, bytes, 32, 32, part);
    CU_ASSERT(memcmp(part, back + 32, sizeof part) == 0);
    memset(v, 0, sizeof v);
    ikv_wtype_from_f32(IKV_WTYPE_Q8_0, v, 32, bytes);
    ikv_wtype_to_f32(IKV_WTYPE_Q8_0, bytes, 0, 32, back);
    for (int i = 0; i < 32; i++)
        CU_ASSERT_EQUAL(back[i], 0.0f);
    ikv_wtype t;
    CU_ASSERT(ikv_wtype_from_name("q8_0", &t) == IKV_OK && t == IKV_WTYPE_Q8_0);
    CU_ASSERT(ikv_wtype_from_name("Bf16", &t) == IKV_OK && t == IKV_WTYPE_BF16);
    CU_ASSERT_EQUAL(ikv_wtype_from_name("q4_k", &t), IKV_EINVAL);
    CU_ASSERT_STRING_EQUAL(ikv_wtype_name(IKV_WTYPE_F16), "F16");
}

static void test_sha256_vectors(void)
{
    char hex[65];
    ikv_sha256_hex("", 0, hex);
    CU_ASSERT_STRING_EQUAL(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    ikv_sha256_hex("abc", 3, hex);
    CU_ASSERT_STRING_EQUAL(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    ikv_sha256_hex(two, strlen(two), hex);
    CU_ASSERT_STRING_EQUAL(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* a million 'a', fed in uneven pieces */
    char *a = malloc(1000000);
    memset(a, 'a', 1000000);
    ikv_sha256 h;
    uint8_t digest[32];
    ikv_sha256_init(&h);
    size_t done = 0, piece = 1;
    while (done < 1000000) {
        size_t take = piece < 1000000 - done ? piece : 1000000 - done;
        ikv_sha256_update(&h, a + done, take);
        done += take;
        piece = piece * 3 % 1000 + 1;
    }
    ikv_sha256_final(&h, digest);
    static const uint8_t expect[32] = {0xcd, 0xc7, 0x6e, 0x5c, 0x99, 0x14, 0xfb, 0x92, 0x81, 0xa1, 0xc7,
                                       0xe2, 0x84, 0xd7, 0x3e, 0x67, 0xf1, 0x80, 0x9a, 0x48, 0xa4, 0x97,
                                       0x20, 0x0e, 0x04, 0x6d, 0x39, 0xcc, 0xc7, 0x11, 0x2c, 0xd0};
    CU_ASSERT(memcmp(digest, expect, 32) == 0);
    free(a);
}

/* SwiGLU's silu(g) * u against double, on [-100, 100] (both exp
 * branches, and e^-|g| underflowing past 87) and vector tails. */
static void test_swiglu(void)
{
    enum { N = 2003 };
    float *g = malloc(N * sizeof *g), *u = malloc(N * sizeof *u), *g0 = malloc(N * sizeof *g0);
    for (int i = 0; i < N; i++) {
        g[i] = g0[i] = i < 1000 ? -100.0f + 0.2f * (float)i : 8.0f * uniform();
        u[i] = uniform();
    }
    ikv_swiglu(g, u, N);
    double worst = 0.0;
    for (int i = 0; i < N; i++) {
        const double x = g0[i], expect = x / (1.0 + exp(-x)) * u[i];
        /* relative, down to 1e-30 (far-negative gates give denormals) */
        worst = fmax(worst, fabs(g[i] - expect) / fmax(fabs(expect), 1e-30));
    }
    if (!(worst < 2e-6))
        printf("\n    swiglu: worst relative error %g ", worst);
    CU_ASSERT(worst < 2e-6);
    free(g);
    free(u);
    free(g0);
}

static void add_suites(void)
{
    static const ikv_test_case kernels[] = {
        {"vector code in use", test_isa},
        {"matrix-vector, every type", test_matvec_every_type},
        {"rows of any width", test_float_widths},
        {"several products on one x, one region", test_matvec_group},
        {"matrix-matrix, every type and token count", test_matmul_every_type},
        {"Q8_0 activations: rounding, zeros, NaN", test_q8_activations},
        {"exp of softmax scores: accuracy, limits, tails", test_exp_nonpositive},
        {"dot, axpy, weighted rows, row lookup", test_dot_axpy_row},
        {"SwiGLU", test_swiglu},
        {NULL, NULL}};
    static const ikv_test_case formats[] = {
        {"half precision, all 65536 values and rounding", test_half_exhaustive},
        {"bfloat16", test_bf16},
        {"Q8_0 blocks and type names", test_q8_0_encoding},
        {"SHA-256 test vectors", test_sha256_vectors},
        {NULL, NULL}};
    ikv_test_suite("kernels", kernels);
    ikv_test_suite("number formats", formats);
}

int main(int argc, char **argv)
{
    return ikv_test_main(argc, argv, add_suites);
}
