/*
 * A GGUF writer for the engine's tests: builds a file image in memory
 * from metadata and tensors, then writes it or hands out the bytes (so
 * tests can also corrupt them). Tensors are given as floats and encoded
 * as F32, F16, BF16 or Q8_0 with the writer's own encoders; what the file
 * then holds is decoded back, also independently of the engine, so that a
 * reference computation sees exactly the stored weights.
 */
#ifndef IKV_TEST_GGUF_WRITER_H
#define IKV_TEST_GGUF_WRITER_H

#include <stddef.h>
#include <stdint.h>

/* GGUF metadata value types and ggml tensor types used by the tests. */
enum {
    GW_UINT8 = 0, GW_INT8, GW_UINT16, GW_INT16, GW_UINT32, GW_INT32, GW_FLOAT32, GW_BOOL,
    GW_STRING, GW_ARRAY, GW_UINT64, GW_INT64, GW_FLOAT64
};
enum { GW_F32 = 0, GW_F16 = 1, GW_Q8_0 = 8, GW_Q4_K = 12, GW_Q6_K = 14, GW_BF16 = 30 };

typedef struct gguf_writer gguf_writer;

/* version: 2 or 3 (other values are written as given, for tests). */
gguf_writer *gw_new(uint32_t version);
void gw_free(gguf_writer *w);

/* Alignment of the tensor data; writes general.alignment when not 32. */
void gw_set_alignment(gguf_writer *w, uint32_t alignment);

/* Metadata, in the order added. */
void gw_kv_u8(gguf_writer *w, const char *key, uint8_t v);
void gw_kv_i8(gguf_writer *w, const char *key, int8_t v);
void gw_kv_u16(gguf_writer *w, const char *key, uint16_t v);
void gw_kv_i16(gguf_writer *w, const char *key, int16_t v);
void gw_kv_u32(gguf_writer *w, const char *key, uint32_t v);
void gw_kv_i32(gguf_writer *w, const char *key, int32_t v);
void gw_kv_u64(gguf_writer *w, const char *key, uint64_t v);
void gw_kv_i64(gguf_writer *w, const char *key, int64_t v);
void gw_kv_f32(gguf_writer *w, const char *key, float v);
void gw_kv_f64(gguf_writer *w, const char *key, double v);
void gw_kv_bool(gguf_writer *w, const char *key, int v);
void gw_kv_str(gguf_writer *w, const char *key, const char *v);
void gw_kv_arr_str(gguf_writer *w, const char *key, const char *const *v, int n);
void gw_kv_arr_f32(gguf_writer *w, const char *key, const float *v, int n);
void gw_kv_arr_i32(gguf_writer *w, const char *key, const int32_t *v, int n);
/* Any value: type id and its encoded bytes (arrays: elem type, u64 count,
 * elements) exactly as given, for hostile files. */
void gw_kv_raw(gguf_writer *w, const char *key, uint32_t type, const void *bytes, size_t n);

/* A tensor from floats [product of ne], encoded as `type` (F32, F16, BF16,
 * Q8_0). If stored is not NULL it receives the decoded values the file
 * holds [product of ne]. */
void gw_tensor(gguf_writer *w, const char *name, uint32_t type, int n_dims, const uint64_t *ne,
               const float *values, float *stored);
/* A tensor with raw data bytes of any type id. */
void gw_tensor_raw(gguf_writer *w, const char *name, uint32_t type, int n_dims, const uint64_t *ne,
                   const void *bytes, size_t n);

/* The file image (malloc'd, caller frees). */
uint8_t *gw_bytes(gguf_writer *w, size_t *size);
/* Writes the image to path; 0 on success. */
int gw_write(gguf_writer *w, const char *path);

/* Offset in the image of a tensor's info record (its name length field),
 * and of the data section, for corruption tests (valid after gw_bytes). */
size_t gw_tensor_info_offset(const gguf_writer *w, int index);
size_t gw_data_offset(const gguf_writer *w);

/* The writer's own conversions (independent of the engine). */
float gw_half_to_float(uint16_t h);
uint16_t gw_float_to_half(float f);

#endif
