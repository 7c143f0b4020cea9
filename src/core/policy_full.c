/*
 * full: keeps every token. The reference every other policy is measured
 * against; it has no parameters besides being named.
 */
#include "core/internal.h"

static int full_compress(ikv_policy *p, int layer)
{
    (void)p;
    (void)layer;
    return IKV_OK; /* never due: ikv_policy_step() returns before */
}

const ikv_policy_ops ikv_full_ops = {
    .kind = IKV_POLICY_FULL,
    .needs = 0,
    .state = 0,
    .reserved = NULL,
    .compress = full_compress,
};
