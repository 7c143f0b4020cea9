/*
 * Per-layer budget allocation.
 *
 * uniform: every layer keeps B.
 * pyramid: PyramidKV's schedule (Cai et al. 2024). With w the reserved
 *   slots (SnapKV's window, StreamingLLM's sinks) and E = B - w the
 *   selectable part, the top layer keeps w + E / beta and the bottom layer
 *   w + 2E - E / beta, linearly in between, so the mean over layers is B.
 *   The reference rounds each layer down and loses the remainder; we give
 *   it to the lowest layers, one slot each, so the total is exactly
 *   n_layers * B and budgets still never grow with depth. Every layer
 *   keeps at least one slot.
 */
#include <math.h>

#include "core/internal.h"

int ikv_allocate_budgets(ikv_allocation allocation, int budget, int n_layers,
                         int reserved, double pyramid_beta, int *out)
{
    if (budget < 1 || n_layers < 1 || reserved < 0 || !out)
        return IKV_EINVAL;
    if (allocation == IKV_ALLOC_UNIFORM || n_layers == 1 || budget <= reserved) {
        for (int l = 0; l < n_layers; l++)
            out[l] = budget;
        return IKV_OK;
    }
    if (allocation != IKV_ALLOC_PYRAMID || !(pyramid_beta >= 1.0))
        return IKV_EINVAL;

    double selectable = (double)(budget - reserved);
    double min_extra = selectable / pyramid_beta;
    if (reserved == 0 && min_extra < 1.0)
        min_extra = selectable < 1.0 ? selectable : 1.0;
    double max_extra = 2.0 * selectable - min_extra;
    double step = (max_extra - min_extra) / (double)(n_layers - 1);
    const int floor_budget = reserved > 0 ? reserved : 1;
    long total = 0;
    for (int l = 0; l < n_layers; l++) {
        double exact = (double)reserved + max_extra - step * (double)l;
        out[l] = (int)floor(exact + 1e-9);
        if (out[l] < floor_budget)
            out[l] = floor_budget;
        total += out[l];
    }
    long target = (long)budget * n_layers;
    /* The remainder goes to the lowest layers, rounding noise comes back
     * from the highest: both keep budgets non-increasing with depth. */
    for (int l = 0; total < target; l = (l + 1) % n_layers) {
        out[l]++;
        total++;
    }
    while (total > target) {
        /* the highest layer that can give a slot and stay >= the one above */
        int l = n_layers - 1;
        while (l >= 0 && !(out[l] > floor_budget && (l == n_layers - 1 || out[l] > out[l + 1])))
            l--;
        if (l < 0)
            break;
        out[l]--;
        total--;
    }
    return total == target ? IKV_OK : IKV_EINVAL;
}
