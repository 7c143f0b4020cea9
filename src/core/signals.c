/*
 * Signals computed the same way in replay and live use.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "infokv/core.h"

/* e^x for x in [-87, 0], as float: x = n ln 2 + r with n = round(x / ln 2)
 * (ln 2 in two parts, so that r is exact), e^r from the degree-6
 * polynomial of Cephes' expf (about 1 ulp), 2^n built from its exponent
 * bits (a normal float for n in -126..0). Plain arithmetic: the compiler
 * vectorises it over a block. */
static inline float exp_in_range(float x)
{
    const float round_magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    const float n = (x * 1.44269504088896341f + round_magic) - round_magic;
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const float e = p * (r * r) + r + 1.0f;
    const int32_t scale_bits = ((int32_t)n + 127) * (1 << 23);
    float scale;
    memcpy(&scale, &scale_bits, sizeof scale);
    return e * scale;
}

/* Adds e^x_j and e^x_j x_j (x_j = logit_j - max <= 0) of 16 logits to
 * per-lane double sums. x is clamped to -87 by its bits (-inf and NaN
 * included): such a logit then adds e^-87 ~ 2^-125, which nothing next
 * to the max's e^0 = 1 in double can show. Integer operations rather
 * than a float compare, which GCC will not if-convert without
 * -fno-trapping-math: the loop vectorises at -O2. */
#define SUMMARY_BLOCK 16
static inline void lanes_max(float *restrict lane, const float *restrict x)
{
    for (int j = 0; j < SUMMARY_BLOCK; j++)
        lane[j] = x[j] > lane[j] ? x[j] : lane[j];
}

static inline void summary_block(const float *restrict logits, float mx, double *restrict z,
                                 double *restrict zx)
{
    for (int j = 0; j < SUMMARY_BLOCK; j++) {
        const float x = logits[j] - mx;
        uint32_t bits;
        memcpy(&bits, &x, sizeof bits);
        bits &= 0x7FFFFFFFu;                              /* |x| */
        bits = bits < 0x42AE0000u ? bits : 0x42AE0000u;  /* min(|x|, 87) */
        bits |= 0x80000000u;                              /* -min(|x|, 87) */
        float xc;
        memcpy(&xc, &bits, sizeof xc);
        const float e = exp_in_range(xc);
        z[j] += (double)e;
        zx[j] += (double)e * (double)xc;
    }
}

/* The largest of x[0..n-1] other than NaN (-inf if none), over 16 lanes
 * so that it vectorises. */
static float max_ignoring_nan(const float *x, int n)
{
    float lane[SUMMARY_BLOCK];
    for (int j = 0; j < SUMMARY_BLOCK; j++)
        lane[j] = -INFINITY;
    int i = 0;
    for (; i + SUMMARY_BLOCK <= n; i += SUMMARY_BLOCK)
        lanes_max(lane, x + i);
    float mx = -INFINITY;
    for (; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    for (int j = 0; j < SUMMARY_BLOCK; j++)
        mx = lane[j] > mx ? lane[j] : mx;
    return mx;
}

void ikv_logits_summary(const float *logits, int n, float *log_z, float *entropy)
{
    float lz = -INFINITY, h = 0.0f;
    if (logits && n > 0) {
        /* H = log Z - sum p_i x_i with x shifted by its max for stability;
         * the terms (float exp) are summed in double so that top-k and
         * full-vocabulary values agree. */
        float mx = max_ignoring_nan(logits, n);
        if (isnan(logits[0]))
            mx = logits[0]; /* as a plain scan from logits[0] would: no summary */
        lz = mx;
        if (isfinite(mx)) {
            double z_lane[SUMMARY_BLOCK] = {0}, zx_lane[SUMMARY_BLOCK] = {0};
            int i = 0;
            for (; i + SUMMARY_BLOCK <= n; i += SUMMARY_BLOCK)
                summary_block(logits + i, mx, z_lane, zx_lane);
            if (i < n) { /* the tail, padded with logits that add nothing */
                float tail[SUMMARY_BLOCK];
                for (int j = 0; j < SUMMARY_BLOCK; j++)
                    tail[j] = i + j < n ? logits[i + j] : -INFINITY;
                summary_block(tail, mx, z_lane, zx_lane);
            }
            double z = 0.0, zx = 0.0;
            for (int j = 0; j < SUMMARY_BLOCK; j++) {
                z += z_lane[j];
                zx += zx_lane[j];
            }
            double hd = log(z) - zx / z;
            lz = mx + (float)log(z);
            h = hd > 0.0 ? (float)hd : 0.0f;
        }
    }
    if (log_z)
        *log_z = lz;
    if (entropy)
        *entropy = h;
}

float ikv_entropy_from_logits(const float *logits, int n)
{
    float h;
    ikv_logits_summary(logits, n, NULL, &h);
    return h;
}

/* log sum exp x in double, shifted by its largest element; NaN if x
 * holds one, -inf if every element is -inf. */
static double log_sum_exp(const float *x, int n)
{
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (isnan(x[i]))
            return NAN;
        mx = x[i] > mx ? x[i] : mx;
    }
    if (!isfinite(mx))
        return (double)mx;
    double z = 0.0;
    for (int i = 0; i < n; i++)
        z += exp((double)x[i] - (double)mx);
    return (double)mx + log(z);
}

double ikv_kl_logits(const float *p, const float *q, int n)
{
    if (!p || !q || n <= 0)
        return 0.0;
    const double lp = log_sum_exp(p, n), lq = log_sum_exp(q, n);
    if (!isfinite(lp) || isnan(lq) || lq == INFINITY)
        return NAN; /* a NaN, a +inf logit, or p without mass: not distributions */
    if (lq == -INFINITY)
        return INFINITY; /* q has no mass at all */
    double kl = 0.0;
    for (int i = 0; i < n; i++) {
        const double a = (double)p[i] - lp;
        const double pa = exp(a);
        if (pa > 0.0)
            kl += pa * (a - ((double)q[i] - lq));
    }
    return kl > 0.0 ? kl : 0.0; /* rounding below zero when p = q */
}

float ikv_evolution(const float *a, const float *b, int n)
{
    if (!a || !b || n <= 0)
        return 0.0f;
    /* double sums over 8 lanes, so that the loop vectorises (a residual
     * stream of 2048 floats, per layer and position, in a capture) */
    enum { LANES = 8 };
    double ab_lane[LANES] = {0}, aa_lane[LANES] = {0}, bb_lane[LANES] = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) {
            const double x = a[i + j], y = b[i + j];
            ab_lane[j] += x * y;
            aa_lane[j] += x * x;
            bb_lane[j] += y * y;
        }
    double ab = 0.0, aa = 0.0, bb = 0.0;
    for (int j = 0; j < LANES; j++) {
        ab += ab_lane[j];
        aa += aa_lane[j];
        bb += bb_lane[j];
    }
    for (; i < n; i++) {
        ab += (double)a[i] * (double)b[i];
        aa += (double)a[i] * (double)a[i];
        bb += (double)b[i] * (double)b[i];
    }
    if (aa == 0.0 || bb == 0.0)
        return 0.0f;
    return (float)(1.0 - ab / sqrt(aa * bb));
}
/* 1 if x[a] ranks before x[b]: larger first, NaN after every number,
 * equal values by index. */
static int ranks_before(const float *x, int32_t a, int32_t b)
{
    const float xa = x[a], xb = x[b];
    if (xa > xb)
        return 1;
    if (xa < xb)
        return 0;
    if (xa == xb || (isnan(xa) && isnan(xb)))
        return a < b;
    return isnan(xb);
}

/* Restores the heap (root = the candidate ranked last) below node c. */
static void sift_down(const float *x, int32_t *heap, int size, int c)
{
    for (;;) {
        int a = 2 * c + 1, b = a + 1, m = c;
        if (a < size && ranks_before(x, heap[m], heap[a]))
            m = a;
        if (b < size && ranks_before(x, heap[m], heap[b]))
            m = b;
        if (m == c)
            return;
        int32_t t = heap[m];
        heap[m] = heap[c];
        heap[c] = t;
        c = m;
    }
}

/* The k best of the candidates (indices in increasing order, no NaN
 * among their values) kept sorted with their values at hand, each new
 * one moved up past those it beats (strictly larger: an equal value at a
 * later index ranks after). For small k (logits' top-20) this costs a
 * fraction of a heap's comparisons; a candidate that does not beat the
 * k-th costs one. At most k moves per candidate. */
#define TOP_K_INSERTION_MAX 64
static void top_k_insertion(const float *x, const int32_t *candidates, int nc, int k, int32_t *out)
{
    float best[TOP_K_INSERTION_MAX]; /* x[out[j]] */
    int size = 0;
    for (int j = 0; j < nc; j++) {
        const int32_t i = candidates[j];
        const float xi = x[i];
        if (size == k && !(xi > best[k - 1]))
            continue;
        int at = size < k ? size++ : k - 1;
        while (at > 0 && xi > best[at - 1]) {
            best[at] = best[at - 1];
            out[at] = out[at - 1];
            at--;
        }
        best[at] = xi;
        out[at] = i;
    }
}

void ikv_top_k(const float *x, int n, int k, int32_t *out, int32_t *scratch)
{
    if (!x || !out || !scratch || k < 1 || n < k)
        return;
    /* A floor under the k-th largest value: the smallest of the maxima of
     * k groups (k values are at least that large). Only the values above
     * it, usually a few times k, go through the heap. The groups are
     * interleaved (group g: g, g + k, g + 2k, ...) so that a run of low
     * values (a vocabulary's byte tokens) drags no group down. */
    float floor_value = -INFINITY;
    const int rows = n / k;
    if (rows >= 8) {
        /* on the stack for small k: the compiler then knows it is not x,
         * keeps it out of memory traffic and vectorises by 16 */
        float local_max[TOP_K_INSERTION_MAX];
        float *column_max = k <= TOP_K_INSERTION_MAX ? local_max : (float *)(void *)scratch; /* k <= n / 8 */
        for (int g = 0; g < k; g++)
            column_max[g] = x[g];
        for (int r = 1; r < rows; r++) {
            const float *row = x + (size_t)r * (size_t)k;
            int g = 0;
            for (; g + SUMMARY_BLOCK <= k; g += SUMMARY_BLOCK)
                lanes_max(column_max + g, row + g);
            for (; g < k; g++)
                column_max[g] = row[g] > column_max[g] ? row[g] : column_max[g];
        }
        floor_value = INFINITY;
        for (int g = 0; g < k; g++)
            floor_value = column_max[g] < floor_value ? column_max[g] : floor_value;
        if (isnan(floor_value))
            floor_value = -INFINITY;
    }
    int nc = 0;
    for (int i = 0; i < n; i++) { /* no branch: the test is a coin flip */
        scratch[nc] = i;
        nc += x[i] >= floor_value;
    }
    if (nc >= k && k <= TOP_K_INSERTION_MAX) { /* x >= floor: no NaN */
        top_k_insertion(x, scratch, nc, k, out);
        return;
    }
    if (nc < k) { /* NaNs: rank everything */
        nc = 0;
        for (int i = 0; i < n; i++)
            scratch[nc++] = i;
    }
    /* a heap of the k best so far, the one ranked last at the root */
    int size = 0;
    for (int j = 0; j < nc; j++) {
        const int32_t i = scratch[j];
        if (size < k) {
            int c = size++;
            out[c] = i;
            while (c > 0 && ranks_before(x, out[(c - 1) / 2], out[c])) {
                int p = (c - 1) / 2;
                int32_t t = out[p];
                out[p] = out[c];
                out[c] = t;
                c = p;
            }
        } else if (ranks_before(x, i, out[0])) {
            out[0] = i;
            sift_down(x, out, size, 0);
        }
    }
    /* largest first: move the root (ranked last) to the end, repeatedly */
    for (int end = size - 1; end > 0; end--) {
        int32_t t = out[0];
        out[0] = out[end];
        out[end] = t;
        sift_down(x, out, end, 0);
    }
}
