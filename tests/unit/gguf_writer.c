#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_writer.h"

typedef struct buffer {
    uint8_t *data;
    size_t size, cap;
} buffer;

typedef struct tensor {
    char *name;
    uint32_t type;
    int n_dims;
    uint64_t ne[4];
    uint8_t *bytes;
    size_t n;
} tensor;

struct gguf_writer {
    uint32_t version;
    uint32_t alignment;
    uint64_t n_kv;
    buffer kv;
    tensor *tensors;
    int n_tensors;
    size_t *info_offsets; /* filled by gw_bytes */
    size_t data_offset;
};

static void put(buffer *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    if (b->size + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->size + n)
            cap *= 2;
        b->data = realloc(b->data, cap);
        if (!b->data) {
            fprintf(stderr, "gguf_writer: out of memory\n");
            abort();
        }
        b->cap = cap;
    }
    memcpy(b->data + b->size, p, n);
    b->size += n;
}

static void put_u32(buffer *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(buffer *b, uint64_t v) { put(b, &v, 8); }

static void put_str(buffer *b, const char *s)
{
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}

gguf_writer *gw_new(uint32_t version)
{
    gguf_writer *w = calloc(1, sizeof *w);
    w->version = version;
    w->alignment = 32;
    return w;
}

void gw_free(gguf_writer *w)
{
    if (!w)
        return;
    for (int i = 0; i < w->n_tensors; i++) {
        free(w->tensors[i].name);
        free(w->tensors[i].bytes);
    }
    free(w->tensors);
    free(w->kv.data);
    free(w->info_offsets);
    free(w);
}

void gw_kv_raw(gguf_writer *w, const char *key, uint32_t type, const void *bytes, size_t n)
{
    put_str(&w->kv, key);
    put_u32(&w->kv, type);
    put(&w->kv, bytes, n);
    w->n_kv++;
}

void gw_set_alignment(gguf_writer *w, uint32_t alignment)
{
    w->alignment = alignment;
    if (alignment != 32)
        gw_kv_u32(w, "general.alignment", alignment);
}

void gw_kv_u8(gguf_writer *w, const char *key, uint8_t v) { gw_kv_raw(w, key, GW_UINT8, &v, 1); }
void gw_kv_i8(gguf_writer *w, const char *key, int8_t v) { gw_kv_raw(w, key, GW_INT8, &v, 1); }
void gw_kv_u16(gguf_writer *w, const char *key, uint16_t v) { gw_kv_raw(w, key, GW_UINT16, &v, 2); }
void gw_kv_i16(gguf_writer *w, const char *key, int16_t v) { gw_kv_raw(w, key, GW_INT16, &v, 2); }
void gw_kv_u32(gguf_writer *w, const char *key, uint32_t v) { gw_kv_raw(w, key, GW_UINT32, &v, 4); }
void gw_kv_i32(gguf_writer *w, const char *key, int32_t v) { gw_kv_raw(w, key, GW_INT32, &v, 4); }
void gw_kv_u64(gguf_writer *w, const char *key, uint64_t v) { gw_kv_raw(w, key, GW_UINT64, &v, 8); }
void gw_kv_i64(gguf_writer *w, const char *key, int64_t v) { gw_kv_raw(w, key, GW_INT64, &v, 8); }
void gw_kv_f32(gguf_writer *w, const char *key, float v) { gw_kv_raw(w, key, GW_FLOAT32, &v, 4); }
void gw_kv_f64(gguf_writer *w, const char *key, double v) { gw_kv_raw(w, key, GW_FLOAT64, &v, 8); }

void gw_kv_bool(gguf_writer *w, const char *key, int v)
{
    uint8_t b = v != 0;
    gw_kv_raw(w, key, GW_BOOL, &b, 1);
}

void gw_kv_str(gguf_writer *w, const char *key, const char *v)
{
    buffer b = {0};
    put_str(&b, v);
    gw_kv_raw(w, key, GW_STRING, b.data, b.size);
    free(b.data);
}

void gw_kv_arr_str(gguf_writer *w, const char *key, const char *const *v, int n)
{
    buffer b = {0};
    put_u32(&b, GW_STRING);
    put_u64(&b, (uint64_t)n);
    for (int i = 0; i < n; i++)
        put_str(&b, v[i]);
    gw_kv_raw(w, key, GW_ARRAY, b.data, b.size);
    free(b.data);
}

void gw_kv_arr_f32(gguf_writer *w, const char *key, const float *v, int n)
{
    buffer b = {0};
    put_u32(&b, GW_FLOAT32);
    put_u64(&b, (uint64_t)n);
    put(&b, v, (size_t)n * 4);
    gw_kv_raw(w, key, GW_ARRAY, b.data, b.size);
    free(b.data);
}

void gw_kv_arr_i32(gguf_writer *w, const char *key, const int32_t *v, int n)
{
    buffer b = {0};
    put_u32(&b, GW_INT32);
    put_u64(&b, (uint64_t)n);
    put(&b, v, (size_t)n * 4);
    gw_kv_raw(w, key, GW_ARRAY, b.data, b.size);
    free(b.data);
}

/* ---- encoders and decoders (written apart from the engine's) ---- */

float gw_half_to_float(uint16_t h)
{
    int sign = h >> 15, exp = (h >> 10) & 31, mant = h & 1023;
    double v;
    if (exp == 0)
        v = ldexp(mant, -24);
    else if (exp == 31)
        v = mant ? NAN : INFINITY;
    else
        v = ldexp(1024 + mant, exp - 25);
    return (float)(sign ? -v : v);
}

uint16_t gw_float_to_half(float f)
{
    uint16_t sign = signbit(f) ? 0x8000 : 0;
    double a = fabs((double)f);
    if (a >= 65504.0)
        return sign | 0x7bff; /* the largest finite half: tests never need infinity */
    int e;
    frexp(a, &e); /* a = m * 2^e, m in [0.5, 1) */
    if (a == 0.0 || e - 1 < -14) {
        double q = nearbyint(a / ldexp(1.0, -24)); /* subnormal steps */
        return sign | (uint16_t)q;                 /* 1024 is the smallest normal: right */
    }
    double q = nearbyint(a / ldexp(1.0, e - 1 - 10)); /* 1024..2048 */
    if (q >= 2048.0) {
        q = 1024.0;
        e++;
    }
    if (e - 1 + 15 >= 31)
        return sign | 0x7bff;
    return sign | (uint16_t)(((e - 1 + 15) << 10) | ((int)q - 1024));
}

static uint16_t float_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

static float bf16_to_float(uint16_t b)
{
    uint32_t x = (uint32_t)b << 16;
    float f;
    memcpy(&f, &x, 4);
    return f;
}

static void encode(uint32_t type, const float *v, size_t count, uint8_t *out, float *stored)
{
    switch (type) {
    case GW_F32:
        memcpy(out, v, count * 4);
        if (stored)
            memcpy(stored, v, count * 4);
        break;
    case GW_F16:
        for (size_t i = 0; i < count; i++) {
            uint16_t h = gw_float_to_half(v[i]);
            memcpy(out + 2 * i, &h, 2);
            if (stored)
                stored[i] = gw_half_to_float(h);
        }
        break;
    case GW_BF16:
        for (size_t i = 0; i < count; i++) {
            uint16_t h = float_to_bf16(v[i]);
            memcpy(out + 2 * i, &h, 2);
            if (stored)
                stored[i] = bf16_to_float(h);
        }
        break;
    case GW_Q8_0:
        for (size_t b = 0; b < count / 32; b++) {
            const float *x = v + 32 * b;
            uint8_t *blk = out + 34 * b;
            float amax = 0.0f;
            for (int i = 0; i < 32; i++)
                amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
            float d = amax / 127.0f;
            uint16_t dh = gw_float_to_half(d);
            memcpy(blk, &dh, 2);
            float dq = gw_half_to_float(dh);
            for (int i = 0; i < 32; i++) {
                int q = d > 0.0f ? (int)lrintf(x[i] / d) : 0;
                q = q > 127 ? 127 : q < -127 ? -127 : q;
                blk[2 + i] = (uint8_t)(int8_t)q;
                if (stored)
                    stored[32 * b + i] = dq * (float)q;
            }
        }
        break;
    default:
        fprintf(stderr, "gguf_writer: cannot encode type %u\n", type);
        abort();
    }
}

static size_t encoded_size(uint32_t type, size_t count)
{
    switch (type) {
    case GW_F32: return 4 * count;
    case GW_F16:
    case GW_BF16: return 2 * count;
    case GW_Q8_0: return count / 32 * 34;
    default: return 0;
    }
}

static tensor *add_tensor(gguf_writer *w, const char *name, uint32_t type, int n_dims, const uint64_t *ne)
{
    w->tensors = realloc(w->tensors, (size_t)(w->n_tensors + 1) * sizeof *w->tensors);
    tensor *t = &w->tensors[w->n_tensors++];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    t->type = type;
    t->n_dims = n_dims;
    for (int i = 0; i < 4; i++)
        t->ne[i] = i < n_dims ? ne[i] : 1;
    return t;
}

void gw_tensor(gguf_writer *w, const char *name, uint32_t type, int n_dims, const uint64_t *ne,
               const float *values, float *stored)
{
    tensor *t = add_tensor(w, name, type, n_dims, ne);
    size_t count = 1;
    for (int i = 0; i < n_dims; i++)
        count *= ne[i];
    t->n = encoded_size(type, count);
    t->bytes = malloc(t->n ? t->n : 1);
    encode(type, values, count, t->bytes, stored);
}

void gw_tensor_raw(gguf_writer *w, const char *name, uint32_t type, int n_dims, const uint64_t *ne,
                   const void *bytes, size_t n)
{
    tensor *t = add_tensor(w, name, type, n_dims, ne);
    t->n = n;
    t->bytes = malloc(n ? n : 1);
    memcpy(t->bytes, bytes, n);
}

static size_t align_up(size_t x, size_t a)
{
    return (x + a - 1) / a * a;
}

uint8_t *gw_bytes(gguf_writer *w, size_t *size)
{
    buffer b = {0};
    put(&b, "GGUF", 4);
    put_u32(&b, w->version);
    put_u64(&b, (uint64_t)w->n_tensors);
    put_u64(&b, w->n_kv);
    put(&b, w->kv.data, w->kv.size);
    free(w->info_offsets);
    w->info_offsets = calloc((size_t)w->n_tensors + 1, sizeof *w->info_offsets);
    size_t offset = 0;
    for (int i = 0; i < w->n_tensors; i++) {
        tensor *t = &w->tensors[i];
        w->info_offsets[i] = b.size;
        put_str(&b, t->name);
        put_u32(&b, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++)
            put_u64(&b, t->ne[d]);
        put_u32(&b, t->type);
        put_u64(&b, offset);
        offset = align_up(offset + t->n, w->alignment);
    }
    static const uint8_t zeros[64] = {0};
    while (b.size % w->alignment)
        put(&b, zeros, 1);
    w->data_offset = b.size;
    for (int i = 0; i < w->n_tensors; i++) {
        tensor *t = &w->tensors[i];
        put(&b, t->bytes, t->n);
        while ((b.size - w->data_offset) % w->alignment && i + 1 < w->n_tensors)
            put(&b, zeros, 1);
    }
    *size = b.size;
    return b.data;
}

int gw_write(gguf_writer *w, const char *path)
{
    size_t size;
    uint8_t *data = gw_bytes(w, &size);
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(data, 1, size, f) == size;
    if (f)
        ok = (fclose(f) == 0) && ok;
    free(data);
    return ok ? 0 : -1;
}

size_t gw_tensor_info_offset(const gguf_writer *w, int index)
{
    return w->info_offsets ? w->info_offsets[index] : 0;
}

size_t gw_data_offset(const gguf_writer *w)
{
    return w->data_offset;
}
