/*
 * Weight types: names, sizes, and the scalar reference conversions. The
 * fast, vectorised conversions used in matrix products are in kernels.c.
 */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "model/half.h"
#include "model/status.h"
#include "model/wtype.h"

#if defined(__F16C__) && defined(__AVX__)
#include <immintrin.h>
#endif

static const char *const names[IKV_WTYPE_COUNT] = {"F32", "F16", "BF16", "Q8_0"};

const char *ikv_wtype_name(ikv_wtype type)
{
    return (unsigned)type < IKV_WTYPE_COUNT ? names[type] : "?";
}

int ikv_wtype_from_name(const char *name, ikv_wtype *type)
{
    for (int t = 0; t < IKV_WTYPE_COUNT; t++) {
        if (name && strcasecmp(name, names[t]) == 0) {
            *type = (ikv_wtype)t;
            return IKV_OK;
        }
    }
    return IKV_EINVAL;
}

int ikv_wtype_block_size(ikv_wtype type)
{
    return type == IKV_WTYPE_Q8_0 ? IKV_Q8_0_BLOCK : 1;
}

size_t ikv_wtype_block_bytes(ikv_wtype type)
{
    switch (type) {
    case IKV_WTYPE_F32: return 4;
    case IKV_WTYPE_F16:
    case IKV_WTYPE_BF16: return 2;
    case IKV_WTYPE_Q8_0: return IKV_Q8_0_BYTES;
    default: return 0;
    }
}

size_t ikv_wtype_row_bytes(ikv_wtype type, int64_t n)
{
    return (size_t)(n / ikv_wtype_block_size(type)) * ikv_wtype_block_bytes(type);
}

void ikv_wtype_to_f32(ikv_wtype type, const void *row, int64_t first, int64_t n,
                      float *out)
{
    const uint8_t *bytes = row;
    switch (type) {
    case IKV_WTYPE_F32:
        memcpy(out, bytes + 4 * first, (size_t)n * sizeof *out);
        break;
    case IKV_WTYPE_F16:
        for (int64_t i = 0; i < n; i++)
            out[i] = ikv_f16_to_f32(ikv_load_u16(bytes + 2 * (first + i)));
        break;
    case IKV_WTYPE_BF16:
        for (int64_t i = 0; i < n; i++)
            out[i] = ikv_bf16_to_f32(ikv_load_u16(bytes + 2 * (first + i)));
        break;
    case IKV_WTYPE_Q8_0:
        for (int64_t b = 0; b < n / IKV_Q8_0_BLOCK; b++) {
            const uint8_t *blk = bytes + (first / IKV_Q8_0_BLOCK + b) * IKV_Q8_0_BYTES;
            float d = ikv_f16_to_f32(ikv_load_u16(blk));
            const int8_t *q = (const int8_t *)(blk + 2);
            for (int i = 0; i < IKV_Q8_0_BLOCK; i++)
                out[b * IKV_Q8_0_BLOCK + i] = d * (float)q[i];
        }
        break;
    default:
        break;
    }
}

void ikv_wtype_from_f32(ikv_wtype type, const float *in, int64_t n, void *row)
{
    uint8_t *bytes = row;
    switch (type) {
    case IKV_WTYPE_F32:
        memcpy(bytes, in, (size_t)n * sizeof *in);
        break;
    case IKV_WTYPE_F16: {
        int64_t i = 0;
#if defined(__F16C__) && defined(__AVX__)
        /* the instruction rounds to nearest even, like ikv_f32_to_f16 */
        for (; i + 8 <= n; i += 8)
            _mm_storeu_si128((__m128i *)(void *)(bytes + 2 * i),
                             _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT));
#endif
        for (; i < n; i++) {
            uint16_t h = ikv_f32_to_f16(in[i]);
            memcpy(bytes + 2 * i, &h, 2);
        }
        break;
    }
    case IKV_WTYPE_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = ikv_f32_to_bf16(in[i]);
            memcpy(bytes + 2 * i, &h, 2);
        }
        break;
    case IKV_WTYPE_Q8_0:
        for (int64_t b = 0; b < n / IKV_Q8_0_BLOCK; b++) {
            const float *x = in + b * IKV_Q8_0_BLOCK;
            uint8_t *blk = bytes + b * IKV_Q8_0_BYTES;
            float amax = 0.0f;
            for (int i = 0; i < IKV_Q8_0_BLOCK; i++) {
                float a = fabsf(x[i]);
                amax = a > amax ? a : amax;
            }
            float d = amax / 127.0f;
            float inv = d > 0.0f ? 1.0f / d : 0.0f;
            uint16_t dh = ikv_f32_to_f16(d);
            memcpy(blk, &dh, 2);
            for (int i = 0; i < IKV_Q8_0_BLOCK; i++) {
                /* round half away from zero (as roundf); |x * inv| <= 127 by
                 * construction. v - trunc(v) is exact, where v + 0.5 would
                 * round 0.49999997 up to 1. */
                float v = x[i] * inv;
                int q = (int)v;
                float frac = v - (float)q;
                q += frac >= 0.5f ? 1 : frac <= -0.5f ? -1 : 0;
                blk[2 + i] = (uint8_t)(int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
            }
        }
        break;
    default:
        break;
    }
}
