/*
 * Signals computed the same way in replay and live use.
 */
#include <math.h>

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
