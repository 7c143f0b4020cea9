/*
 * Weight types the engine computes with: F32, F16, BF16 and Q8_0. A row
 * of a weight matrix is stored in one of these and converted to float on
 * the fly, a block at a time; matrices are never expanded in memory.
 *
 *   Q8_0  blocks of 32 weights: an F16 scale d, then 32 int8 q;
 *         weight i = d * q[i]. 34 bytes per block.
 */
#ifndef IKV_MODEL_WTYPE_H
#define IKV_MODEL_WTYPE_H

#include <stddef.h>
#include <stdint.h>

typedef enum ikv_wtype {
    IKV_WTYPE_F32 = 0,
    IKV_WTYPE_F16,
    IKV_WTYPE_BF16,
    IKV_WTYPE_Q8_0,
    IKV_WTYPE_COUNT
} ikv_wtype;

#define IKV_Q8_0_BLOCK 32
#define IKV_Q8_0_BYTES 34

/* "F32", "F16", "BF16", "Q8_0". */
const char *ikv_wtype_name(ikv_wtype type);

/* Parses a name, case-insensitively ("q8_0", "bf16"); IKV_EINVAL if unknown. */
int ikv_wtype_from_name(const char *name, ikv_wtype *type);

/* Weights per block (1, or 32 for Q8_0) and bytes per block. */
int ikv_wtype_block_size(ikv_wtype type);
size_t ikv_wtype_block_bytes(ikv_wtype type);

/* Bytes of a row of n weights (n a multiple of the block size). */
size_t ikv_wtype_row_bytes(ikv_wtype type, int64_t n);

/* Converts weights [first, first + n) of a row to float. For Q8_0, first
 * and n are multiples of 32. */
void ikv_wtype_to_f32(ikv_wtype type, const void *row, int64_t first, int64_t n,
                      float *out /* [n] */);

/* Encodes n floats into a row of the type (Q8_0: n a multiple of 32;
 * the scale of a block is max|x| / 127). */
void ikv_wtype_from_f32(ikv_wtype type, const float *in /* [n] */, int64_t n,
                        void *row);

#endif
