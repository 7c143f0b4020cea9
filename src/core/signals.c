/*
 * Signals computed the same way in replay and live use.
 */
#include <math.h>
#include <stdint.h>

#include "infokv/core.h"

void ikv_logits_summary(const float *logits, int n, float *log_z, float *entropy)
{
    float lz = -INFINITY, h = 0.0f;
    if (logits && n > 0) {
        /* H = log Z - sum p_i x_i with x shifted by its max for stability;
         * the terms (float exp) are summed in double so that top-k and
         * full-vocabulary values agree. */
        float mx = logits[0];
        for (int i = 1; i < n; i++)
            mx = logits[i] > mx ? logits[i] : mx;
        lz = mx;
        if (isfinite(mx)) {
            double z = 0.0, zx = 0.0;
            for (int i = 0; i < n; i++) {
                float x = logits[i] - mx;
                if (!(x > -INFINITY))
                    continue; /* a -inf logit has probability 0 and adds nothing */
                double e = expf(x);
                z += e;
                zx += e * x;
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

float ikv_evolution(const float *a, const float *b, int n)
{
    if (!a || !b || n <= 0)
        return 0.0f;
    double ab = 0.0, aa = 0.0, bb = 0.0;
    for (int i = 0; i < n; i++) {
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
        float *column_max = (float *)(void *)scratch; /* k <= n / 8 floats */
        for (int g = 0; g < k; g++)
            column_max[g] = x[g];
        for (int r = 1; r < rows; r++) {
            const float *row = x + (size_t)r * (size_t)k;
            for (int g = 0; g < k; g++)
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
