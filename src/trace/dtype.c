/*
 * Half precision: the HDF5 binary16 type of f16 traces and our own
 * float32 <-> binary16 conversion. The writer converts rows as it buffers
 * them and writes halves without HDF5 conversion; the reader reads halves
 * raw and widens them here (HDF5's generic float conversion is much
 * slower). Other programs (h5py) see an ordinary IEEE half type and let
 * HDF5 convert.
 */
#include "config.h"

#include <string.h>

#include "trace/internal.h"

static hid_t make_half(hid_t float32)
{
    hid_t t = H5Tcopy(float32);
    if (t < 0)
        return -1;
    /* Fields must fit the current precision before shrinking it: set the
     * binary16 layout (sign bit 15, exponent 10..14, mantissa 0..9) first. */
    if (H5Tset_fields(t, 15, 10, 5, 0, 10) < 0 || H5Tset_precision(t, 16) < 0 ||
        H5Tset_size(t, 2) < 0 || H5Tset_ebias(t, 15) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

hid_t ikv_h5_half_file_type(void)
{
    return make_half(H5T_IEEE_F32LE);
}

hid_t ikv_h5_half_native_type(void)
{
    return make_half(H5T_NATIVE_FLOAT);
}

int ikv_h5_is_half(hid_t type)
{
    if (H5Tget_class(type) != H5T_FLOAT || H5Tget_size(type) != 2)
        return 0;
    size_t spos, epos, esize, mpos, msize;
    if (H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize) < 0)
        return 0;
    return spos == 15 && epos == 10 && esize == 5 && mpos == 0 && msize == 10 &&
           H5Tget_ebias(type) == 15;
}

uint16_t ikv_f32_to_f16(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t exp = (u >> 23) & 0xffu;
    uint32_t man = u & 0x7fffffu;
    if (exp == 0xffu) /* inf stays inf; NaN stays a (quiet) NaN */
        return (uint16_t)(sign | 0x7c00u | (man ? 0x200u | (man >> 13) : 0u));
    int e = (int)exp - 127 + 15; /* biased half exponent */
    if (e >= 31)
        return (uint16_t)(sign | 0x7c00u);
    if (e <= 0) {
        /* Subnormal half (or zero): value = m * 2^-24 with the implicit
         * bit made explicit; below 2^-25 everything rounds to zero. */
        if (e < -10)
            return sign;
        man |= 0x800000u;
        unsigned shift = (unsigned)(14 - e);
        uint32_t hm = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1u);
        uint32_t halfway = 1u << (shift - 1u);
        if (rem > halfway || (rem == halfway && (hm & 1u)))
            hm++; /* may carry into the smallest normal: still correct */
        return (uint16_t)(sign | hm);
    }
    uint32_t h = ((uint32_t)e << 10) | (man >> 13);
    uint32_t rem = man & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
        h++; /* a carry out of the mantissa bumps the exponent, up to inf */
    return (uint16_t)(sign | h);
}

float ikv_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else {
            /* Subnormal: shift until the leading one reaches bit 10. */
            int e = -1;
            do {
                man <<= 1;
                e++;
            } while (!(man & 0x400u));
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 112u) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

void ikv_f32_to_f16_n(uint16_t *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = ikv_f32_to_f16(src[i]);
}

void ikv_f16_to_f32_n(float *dst, const uint16_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = ikv_f16_to_f32(src[i]);
}

void ikv_f16_to_f32_inplace(float *dst, size_t n)
{
    /* The halves occupy bytes [2n, 4n) of dst. Float i is written to bytes
     * [4i, 4i+4) after half i (bytes 2n+2i) has been read; the halves not
     * yet read start at byte 2n+2i+2 >= 4i+4 because i <= n-1, so nothing
     * unread is overwritten. memcpy keeps the accesses free of aliasing. */
    unsigned char *bytes = (unsigned char *)dst;
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, bytes + 2 * n + 2 * i, sizeof h);
        float f = ikv_f16_to_f32(h);
        memcpy(bytes + 4 * i, &f, sizeof f);
    }
}
