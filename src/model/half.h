/*
 * Scalar conversions between float and the 16-bit float formats stored in
 * model files: IEEE binary16 (F16, also the scale of a Q8_0 block) and
 * bfloat16 (BF16, the top half of a float). Round to nearest even.
 */
#ifndef IKV_MODEL_HALF_H
#define IKV_MODEL_HALF_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float ikv_bits_to_f32(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline uint32_t ikv_f32_to_bits(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits;
}

static inline float ikv_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) /* infinity or NaN */
        return ikv_bits_to_f32(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) {
        /* zero or subnormal: mant * 2^-24, exact in float */
        float v = (float)mant * 0x1p-24f;
        return sign ? -v : v;
    }
    return ikv_bits_to_f32(sign | ((exp + 112u) << 23) | (mant << 13));
}

static inline uint16_t ikv_f32_to_f16(float f)
{
    uint32_t x = ikv_f32_to_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* infinity stays, NaN stays a (quiet) NaN */
        return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0u));
    if (ax >= 0x477ff000u) /* rounds past 65504: overflow */
        return (uint16_t)(sign | 0x7c00u);
    if (ax < 0x38800000u) {
        /* below the smallest normal 2^-14: a multiple of 2^-24 */
        float v = ikv_bits_to_f32(ax);
        return (uint16_t)(sign | (uint16_t)lrintf(v * 0x1p24f));
    }
    uint32_t h = (((ax >> 23) - 112u) << 10) | ((ax & 0x7fffffu) >> 13);
    uint32_t rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
        h++; /* a carry into the exponent is still the right value */
    return (uint16_t)(sign | h);
}

static inline float ikv_bf16_to_f32(uint16_t b)
{
    return ikv_bits_to_f32((uint32_t)b << 16);
}

static inline uint16_t ikv_f32_to_bf16(float f)
{
    uint32_t x = ikv_f32_to_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) /* NaN: keep it a NaN */
        return (uint16_t)((x >> 16) | 0x40u);
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

/* Little-endian loads that need no alignment. */
static inline uint16_t ikv_load_u16(const void *p)
{
    const uint8_t *b = p;
    return (uint16_t)(b[0] | (b[1] << 8));
}

#endif
