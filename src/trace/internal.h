/*
 * Shared internals of the trace module: the schema table, HDF5 helpers and
 * half-precision conversion. Not installed; only src/trace includes it.
 */
#ifndef IKV_TRACE_INTERNAL_H
#define IKV_TRACE_INTERNAL_H

#include <stddef.h>
#include <stdarg.h>
#include <stdint.h>

#include <hdf5.h>

#include "trace/trace.h"

/* ---- schema (schema.c) ---- */

/* Axis kinds of the schema's datasets; sizes come from meta and spec. */
typedef enum ikv_axis {
    IKV_AX_T = 0, /* positions: grows during the run */
    IKV_AX_L,     /* stored layers L' */
    IKV_AX_L1,    /* L' + 1 (hidden states: entering each layer, then final) */
    IKV_AX_H,     /* query heads */
    IKV_AX_G,     /* KV heads */
    IKV_AX_HD,    /* head dim d */
    IKV_AX_DIM,   /* model dim D */
    IKV_AX_V,     /* vocab */
    IKV_AX_K      /* top-k width */
} ikv_axis;

typedef struct ikv_dset_def {
    const char *path;        /* absolute, e.g. "/qkv/q" */
    unsigned signal;         /* IKV_TRACE_* bit that selects it */
    int rank;
    ikv_axis axes[IKV_TRACE_MAX_RANK];
    int is_int;              /* int32 instead of float */
    int big;                 /* stored in the spec's dtype (f32/f16) */
    int per_layer;           /* readable one layer at a time (read_layer) */
    const char *units;
    const char *description; /* written as the "description" attribute */
} ikv_dset_def;

enum { IKV_N_DSETS = 15 };
extern const ikv_dset_def ikv_dset_defs[IKV_N_DSETS];

/* Definition of a schema dataset by path ("qkv/q" or "/qkv/q"), or NULL. */
const ikv_dset_def *ikv_dset_find(const char *path);
/* Its index in ikv_dset_defs, or -1. */
int ikv_dset_index(const char *path);
/* Names of the root attributes the schema owns (NULL-terminated). */
extern const char *const ikv_root_attr_names[];
int ikv_is_root_attr(const char *name);

/* Bounds on the model shape, shared by the writer (argument checks) and
 * the reader (a hostile file must not make a caller allocate absurd
 * buffers); generous for any Llama-family model. */
#define IKV_MAX_LAYERS 4096
#define IKV_MAX_HEADS 4096
#define IKV_MAX_HEAD_DIM 16384
#define IKV_MAX_DIM (1 << 20)
#define IKV_MAX_HIDDEN (1 << 24)
#define IKV_MAX_VOCAB (1 << 24)
#define IKV_MAX_TOKENS (1 << 26)
#define IKV_MAX_CHUNK_TOKENS 65536
#define IKV_MAX_CHUNK_BYTES ((int64_t)256 << 20) /* the reader's bound */

/* Checks the model shape of meta; on failure writes what is wrong into
 * `what` (e.g. "n_heads = 0 out of range [1, 4096]") and returns -1. */
int ikv_check_meta(const ikv_trace_meta *meta, char *what, size_t wlen);

/* Size of an axis for a model/selection; n_tokens for IKV_AX_T. */
int64_t ikv_axis_size(ikv_axis ax, const ikv_trace_meta *meta, int n_stored_layers, int topk,
                      int64_t n_tokens);

/* Writes "/a/b" for "a/b" or "/a/b" into buf (for messages and lookups). */
void ikv_abs_path(const char *path, char *buf, size_t buflen);

/* Product of n dims times elem, or -1 on overflow past INT64_MAX/2. */
int64_t ikv_checked_product(const int64_t *dims, int n, int64_t elem);

/* ---- HDF5 helpers (h5util.c) ---- */

/* Stops HDF5 from printing its error stack; failures become messages. */
void ikv_h5_quiet(void);
/* The most specific message of HDF5's current error stack (or ""),
 * then clears the stack. */
void ikv_h5_detail(char *buf, size_t buflen);
/* out = "path: msg" or "path: msg (HDF5: detail)", truncated to outlen. */
void ikv_join_msg(char *out, size_t outlen, const char *path, const char *msg,
                  const char *detail);
/* out = "path: <fmt, ap>", then with_detail HDF5's detail as in
 * ikv_join_msg; without it HDF5's error stack is only cleared. The one
 * formatter of the reader's and the writer's messages. */
void ikv_h5_vmessage(char *out, size_t outlen, const char *path, int with_detail, const char *fmt,
                     va_list ap);
/* 1 if every component of an absolute path exists, else 0. */
int ikv_h5_exists(hid_t file, const char *abs_path);
/* Link-creation property list that creates missing parent groups. */
hid_t ikv_h5_lcpl(void);

int ikv_h5_attr_write_int(hid_t obj, const char *name, int64_t value);
int ikv_h5_attr_write_double(hid_t obj, const char *name, double value);
int ikv_h5_attr_write_string(hid_t obj, const char *name, const char *value);
int ikv_h5_attr_write_i32s(hid_t obj, const char *name, const int32_t *values, int n);

/* Attribute reads: 0, IKV_TRACE_EABSENT, or IKV_TRACE_EFORMAT (wrong type
 * or shape); `what` receives a short reason on EFORMAT. */
int ikv_h5_attr_read_int(hid_t obj, const char *name, int64_t *value, char *what, size_t wlen);
int ikv_h5_attr_read_double(hid_t obj, const char *name, double *value, char *what,
                            size_t wlen);
int ikv_h5_attr_read_string(hid_t obj, const char *name, char *buf, size_t buflen, char *what,
                            size_t wlen);
/* Reads a 1-D int attribute of at most max_n elements. */
int ikv_h5_attr_read_i32s(hid_t obj, const char *name, int32_t *values, int max_n, int *n,
                          char *what, size_t wlen);

/* ---- a guard before HDF5 reads a file (heapcheck.c) ---- */

/* IKV_TRACE_EFORMAT (reason in `what`) if a global heap collection of the
 * file would hang HDF5 1.10 when it reads a variable-length string; reads
 * the file once (memory-mapped). IKV_TRACE_OK otherwise. */
int ikv_h5_check_global_heaps(const char *path, char *what, size_t wlen);

/* ---- half precision (dtype.c) ---- */

/* IEEE binary16 HDF5 types derived from the 32-bit float type: in the
 * file (little-endian) and in memory (native order). Caller closes. */
hid_t ikv_h5_half_file_type(void);
hid_t ikv_h5_half_native_type(void);
/* 1 if an HDF5 float type has exactly the binary16 layout. */
int ikv_h5_is_half(hid_t type);

uint16_t ikv_f32_to_f16(float x); /* round to nearest even; inf on overflow */
float ikv_f16_to_f32(uint16_t h);
void ikv_f32_to_f16_n(uint16_t *dst, const float *src, size_t n);
/* Converts n halves stored in the bytes of dst + n/2 floats (the upper
 * half of dst's storage) into n floats in place; see dtype.c. */
void ikv_f16_to_f32_inplace(float *dst, size_t n);
void ikv_f16_to_f32_n(float *dst, const uint16_t *src, size_t n);

#endif
