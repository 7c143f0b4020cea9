/*
 * Per-layer budget allocation.
 *
 * uniform: every layer keeps B.
 * pyramid: PyramidKV's schedule (Cai et al. 2024). With w the always-kept
 *   observation window and E = B - w the selectable part, the top layer keeps
 *   w + E / beta and the bottom layer w + 2E - E / beta, linearly in between,
 *   so the mean over layers is B. The reference rounds each layer down; we
 *   distribute the rounding remainder (largest remainder first, lower layers
 *   first on ties) so the total is exactly n_layers * B.
 */
#include <math.h>

#include "core/internal.h"

int ikv_allocate_budgets(ikv_allocation allocation, int budget, int n_layers,
                         int window, double pyramid_beta, int *out)
{
    if (budget < 1 || n_layers < 1 || !out)
        return IKV_EINVAL;
    if (allocation == IKV_ALLOC_UNIFORM || n_layers == 1 || budget <= window) {
        for (int l = 0; l < n_layers; l++)
            out[l] = budget;
        return IKV_OK;
    }
    if (allocation != IKV_ALLOC_PYRAMID || pyramid_beta < 1.0)
        return IKV_EINVAL;

    double selectable = (double)(budget - window);
    double min_extra = selectable / pyramid_beta;
    double max_extra = 2.0 * selectable - min_extra;
    double step = (max_extra - min_extra) / (double)(n_layers - 1);
    long total = 0;
    for (int l = 0; l < n_layers; l++) {
        double exact = (double)window + max_extra - step * (double)l;
        out[l] = (int)floor(exact);
        total += out[l];
    }
    long target = (long)budget * n_layers;
    /* Hand out the missing slots by largest fractional part. */
    while (total < target) {
        int best = -1;
        double best_frac = -1.0;
        for (int l = 0; l < n_layers; l++) {
            double exact = (double)window + max_extra - step * (double)l;
            double frac = exact - (double)out[l];
            if (frac > best_frac + 1e-12) {
                best_frac = frac;
                best = l;
            }
        }
        out[best]++;
        total++;
    }
    /* Rounding noise can only overshoot by a slot or so: take it back from
     * the layer closest to rounding down. */
    while (total > target) {
        int best = -1;
        double best_frac = 2.0;
        for (int l = 0; l < n_layers; l++) {
            double exact = (double)window + max_extra - step * (double)l;
            double frac = exact - (double)(out[l] - 1);
            if (out[l] > 1 && frac < best_frac) {
                best_frac = frac;
                best = l;
            }
        }
        if (best < 0)
            break;
        out[best]--;
        total--;
    }
    return IKV_OK;
}
