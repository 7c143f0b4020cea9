/*
 * GGUF reader (versions 2 and 3, little-endian): header, metadata
 * key/values of every value type, tensor infos and the data section. The
 * file is memory-mapped; every count, length and offset read from it is
 * checked against the file size before use, so a corrupt or hostile file
 * gives one error line and never a crash or a huge allocation.
 *
 * Layout: "GGUF", u32 version, u64 n_tensors, u64 n_kv, the key/values,
 * the tensor infos (name, u32 n_dims, u64 ne[n_dims], u32 type, u64
 * offset), padding to `general.alignment` (default 32), the tensor data.
 * ne[0] is the fastest-varying axis: a matrix W[out][in] has ne = {in, out}.
 */
#ifndef IKV_MODEL_GGUF_H
#define IKV_MODEL_GGUF_H

#include <stddef.h>
#include <stdint.h>

typedef enum ikv_gguf_vtype {
    IKV_GGUF_UINT8 = 0,
    IKV_GGUF_INT8 = 1,
    IKV_GGUF_UINT16 = 2,
    IKV_GGUF_INT16 = 3,
    IKV_GGUF_UINT32 = 4,
    IKV_GGUF_INT32 = 5,
    IKV_GGUF_FLOAT32 = 6,
    IKV_GGUF_BOOL = 7,
    IKV_GGUF_STRING = 8,
    IKV_GGUF_ARRAY = 9,
    IKV_GGUF_UINT64 = 10,
    IKV_GGUF_INT64 = 11,
    IKV_GGUF_FLOAT64 = 12,
    IKV_GGUF_VTYPE_COUNT
} ikv_gguf_vtype;

/* ggml tensor type ids the engine computes with (others are named by
 * ikv_gguf_type_name() so that errors can say what a file holds). */
enum {
    IKV_GGML_F32 = 0,
    IKV_GGML_F16 = 1,
    IKV_GGML_Q8_0 = 8,
    IKV_GGML_BF16 = 30
};

typedef struct ikv_gguf_kv {
    const char *key;          /* NUL-terminated copy */
    ikv_gguf_vtype type;
    /* scalars; BOOL is 0/1 in u */
    union {
        uint64_t u;
        int64_t i;
        double f;
    } num;
    const char *str;          /* STRING: in the file, not NUL-terminated */
    uint64_t str_len;
    ikv_gguf_vtype elem_type; /* ARRAY: element type */
    uint64_t count;           /* ARRAY: element count */
    size_t elems;             /* ARRAY: file offset of the first element */
    int nested;               /* ARRAY of ARRAYs: checked and skipped, unreadable */
} ikv_gguf_kv;

typedef struct ikv_gguf_tensor {
    const char *name;    /* NUL-terminated copy */
    int n_dims;          /* 1..4 */
    uint64_t ne[4];      /* ne[0] fastest; ne[i] = 1 for i >= n_dims */
    uint32_t type;       /* ggml type id */
    uint64_t offset;     /* from the start of the data section */
    uint64_t nbytes;     /* 0 when the type's block size is not known here */
    const uint8_t *data; /* in the mapping */
} ikv_gguf_tensor;

typedef struct ikv_gguf ikv_gguf; /* opaque */

/* Maps and parses a file. On failure *out is NULL and err holds
 * "PATH: problem"; returns IKV_EIO, IKV_EFORMAT or IKV_ENOMEM. */
int ikv_gguf_open(ikv_gguf **out, const char *path, char *err, size_t errlen);

/* Parses a buffer that must outlive the handle; `label` names it in errors. */
int ikv_gguf_parse(ikv_gguf **out, const uint8_t *data, size_t size,
                   const char *label, char *err, size_t errlen);

void ikv_gguf_close(ikv_gguf *g);

uint32_t ikv_gguf_version(const ikv_gguf *g);
uint64_t ikv_gguf_alignment(const ikv_gguf *g);
const uint8_t *ikv_gguf_bytes(const ikv_gguf *g, size_t *size);

int64_t ikv_gguf_n_kv(const ikv_gguf *g);
const ikv_gguf_kv *ikv_gguf_kv_at(const ikv_gguf *g, int64_t index);
const ikv_gguf_kv *ikv_gguf_find(const ikv_gguf *g, const char *key); /* NULL: absent */

int64_t ikv_gguf_n_tensors(const ikv_gguf *g);
const ikv_gguf_tensor *ikv_gguf_tensor_at(const ikv_gguf *g, int64_t index);
const ikv_gguf_tensor *ikv_gguf_find_tensor(const ikv_gguf *g, const char *name);

/* "F32", "Q4_K", ... for a ggml type id; NULL for an id not known here. */
const char *ikv_gguf_type_name(uint32_t type);

/* Scalar accessors: 0 on success, -1 when the value has another type.
 * _int takes any integer or BOOL; _float any number; _string a STRING. */
int ikv_gguf_kv_int(const ikv_gguf_kv *kv, int64_t *out);
int ikv_gguf_kv_float(const ikv_gguf_kv *kv, double *out);
int ikv_gguf_kv_string(const ikv_gguf_kv *kv, const char **str, uint64_t *len);

/* Array accessors: fill `out` with kv->count elements; -1 when kv is not
 * an array of a convertible element type. _strings gives pointers into
 * the file (not NUL-terminated) and lengths; _f32 takes any number type;
 * _i32 any integer type whose values fit. */
int ikv_gguf_array_strings(const ikv_gguf *g, const ikv_gguf_kv *kv,
                           const char **ptrs /* [count] */, uint32_t *lens /* [count] */);
int ikv_gguf_array_f32(const ikv_gguf *g, const ikv_gguf_kv *kv, float *out /* [count] */);
int ikv_gguf_array_i32(const ikv_gguf *g, const ikv_gguf_kv *kv, int32_t *out /* [count] */);

#endif
