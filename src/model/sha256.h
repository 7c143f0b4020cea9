/*
 * SHA-256 (FIPS 180-4), to identify the model file a trace was made with.
 */
#ifndef IKV_MODEL_SHA256_H
#define IKV_MODEL_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct ikv_sha256 {
    uint32_t state[8];
    uint64_t length;   /* bytes hashed so far */
    uint8_t block[64]; /* pending input */
    size_t fill;
} ikv_sha256;

void ikv_sha256_init(ikv_sha256 *h);
void ikv_sha256_update(ikv_sha256 *h, const void *data, size_t len);
void ikv_sha256_final(ikv_sha256 *h, uint8_t digest[32]);

/* Digest of a buffer as 64 lowercase hex digits and a NUL. */
void ikv_sha256_hex(const void *data, size_t len, char hex[65]);

#endif
