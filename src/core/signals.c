/*
 * Signals computed the same way in replay and live use.
 */
#include <math.h>

#include "infokv/core.h"

float ikv_entropy_from_logits(const float *logits, int n)
{
    if (!logits || n <= 0)
        return 0.0f;
    /* H = log Z - sum p_i x_i with x shifted by its max for stability;
     * accumulate in double so top-k and full-vocabulary values agree. */
    float mx = logits[0];
    for (int i = 1; i < n; i++)
        mx = logits[i] > mx ? logits[i] : mx;
    if (!isfinite(mx))
        return 0.0f;
    double z = 0.0, zx = 0.0;
    for (int i = 0; i < n; i++) {
        double x = (double)logits[i] - (double)mx;
        if (!(x > -INFINITY))
            continue; /* a -inf logit has probability 0 and adds nothing */
        double e = exp(x);
        z += e;
        zx += e * x;
    }
    double h = log(z) - zx / z;
    return h > 0.0 ? (float)h : 0.0f;
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
