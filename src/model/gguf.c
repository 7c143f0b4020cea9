/*
 * GGUF reader. Parsing walks the file with a bounds-checked cursor; the
 * handle keeps copies of keys and tensor names, offsets of everything
 * else, and name indexes sorted for lookup and duplicate detection.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/gguf.h"
#include "model/mapfile.h"
#include "model/status.h"

#define GGUF_MAGIC "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4
#define GGUF_MAX_NESTING 3 /* arrays of arrays of arrays, skipped */

/* A name and the position of its entry, for sorted lookup. */
typedef struct name_ref {
    const char *name;
    int64_t index;
} name_ref;

struct ikv_gguf {
    ikv_mapfile map; /* owned when opened from a path */
    const uint8_t *data;
    size_t size;
    uint32_t version;
    uint64_t alignment;
    size_t data_start;
    int64_t n_kv;
    ikv_gguf_kv *kv;      /* [n_kv] in file order */
    name_ref *kv_sorted; /* [n_kv] sorted by key */
    int64_t n_tensors;
    ikv_gguf_tensor *tensors; /* [n_tensors] in file order */
    name_ref *tensors_sorted; /* [n_tensors] sorted by name */
};

/* Block size and bytes per block of the ggml types; size 0 where the
 * layout is not known here (the loader rejects those types anyway). */
typedef struct type_info {
    const char *name;
    uint32_t block;
    uint32_t bytes;
} type_info;

static const type_info ggml_types[] = {
    [0] = {"F32", 1, 4},       [1] = {"F16", 1, 2},        [2] = {"Q4_0", 32, 18},
    [3] = {"Q4_1", 32, 20},    [6] = {"Q5_0", 32, 22},     [7] = {"Q5_1", 32, 24},
    [8] = {"Q8_0", 32, 34},    [9] = {"Q8_1", 32, 36},     [10] = {"Q2_K", 256, 84},
    [11] = {"Q3_K", 256, 110}, [12] = {"Q4_K", 256, 144},  [13] = {"Q5_K", 256, 176},
    [14] = {"Q6_K", 256, 210}, [15] = {"Q8_K", 256, 292},  [16] = {"IQ2_XXS", 256, 0},
    [17] = {"IQ2_XS", 256, 0}, [18] = {"IQ3_XXS", 256, 0}, [19] = {"IQ1_S", 256, 0},
    [20] = {"IQ4_NL", 32, 0},  [21] = {"IQ3_S", 256, 0},   [22] = {"IQ2_S", 256, 0},
    [23] = {"IQ4_XS", 256, 0}, [24] = {"I8", 1, 1},        [25] = {"I16", 1, 2},
    [26] = {"I32", 1, 4},      [27] = {"I64", 1, 8},       [28] = {"F64", 1, 8},
    [29] = {"IQ1_M", 256, 0},  [30] = {"BF16", 1, 2},      [34] = {"TQ1_0", 256, 0},
    [35] = {"TQ2_0", 256, 0},  [39] = {"MXFP4", 32, 0},
};
#define N_GGML_TYPES (sizeof ggml_types / sizeof ggml_types[0])

const char *ikv_gguf_type_name(uint32_t type)
{
    return type < N_GGML_TYPES ? ggml_types[type].name : NULL;
}

/* Fixed sizes of the metadata value types (0: variable). */
static size_t vtype_size(uint32_t t)
{
    switch (t) {
    case IKV_GGUF_UINT8:
    case IKV_GGUF_INT8:
    case IKV_GGUF_BOOL: return 1;
    case IKV_GGUF_UINT16:
    case IKV_GGUF_INT16: return 2;
    case IKV_GGUF_UINT32:
    case IKV_GGUF_INT32:
    case IKV_GGUF_FLOAT32: return 4;
    case IKV_GGUF_UINT64:
    case IKV_GGUF_INT64:
    case IKV_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

/* ---- bounds-checked cursor ---- */

typedef struct cursor {
    const uint8_t *data;
    size_t size;
    size_t pos;
    const char *label;
    char *err;
    size_t errlen;
} cursor;

static int fail(cursor *c, int status, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->err && c->errlen) {
        snprintf(c->err, c->errlen, "%s: %s", c->label, msg);
        ikv_message_one_line(c->err); /* keys and names come from the file */
    }
    return status;
}

static size_t remaining(const cursor *c)
{
    return c->size - c->pos;
}

static int need(cursor *c, size_t n, const char *what)
{
    if (n > remaining(c))
        return fail(c, IKV_EFORMAT, "truncated: %s at byte %zu needs %zu bytes, %zu left",
                    what, c->pos, n, remaining(c));
    return IKV_OK;
}

static int read_bytes(cursor *c, void *out, size_t n, const char *what)
{
    int rc = need(c, n, what);
    if (rc)
        return rc;
    memcpy(out, c->data + c->pos, n);
    c->pos += n;
    return IKV_OK;
}

static int read_u32(cursor *c, uint32_t *v, const char *what)
{
    return read_bytes(c, v, 4, what);
}

static int read_u64(cursor *c, uint64_t *v, const char *what)
{
    return read_bytes(c, v, 8, what);
}

/* A GGUF string: u64 length, bytes. Returns a pointer into the data. */
static int read_string(cursor *c, const char **s, uint64_t *len, const char *what)
{
    int rc = read_u64(c, len, what);
    if (rc)
        return rc;
    if (*len > remaining(c))
        return fail(c, IKV_EFORMAT, "corrupt: %s at byte %zu claims %llu bytes, only %zu left",
                    what, c->pos - 8, (unsigned long long)*len, remaining(c));
    *s = (const char *)c->data + c->pos;
    c->pos += (size_t)*len;
    return IKV_OK;
}

static char *copy_string(const char *s, uint64_t len)
{
    char *out = malloc((size_t)len + 1);
    if (out) {
        memcpy(out, s, (size_t)len);
        out[len] = '\0';
    }
    return out;
}

/* Skips `count` values of type `type` (an array's body). */
static int skip_values(cursor *c, uint32_t type, uint64_t count, int depth, const char *key)
{
    size_t size = vtype_size(type);
    if (size) {
        if (count > remaining(c) / size)
            return fail(c, IKV_EFORMAT, "corrupt: array '%s' claims %llu elements, more than the file holds",
                        key, (unsigned long long)count);
        c->pos += (size_t)(count * size);
        return IKV_OK;
    }
    if (type == IKV_GGUF_STRING) {
        if (count > remaining(c) / 8)
            return fail(c, IKV_EFORMAT, "corrupt: array '%s' claims %llu strings, more than the file holds",
                        key, (unsigned long long)count);
        for (uint64_t i = 0; i < count; i++) {
            const char *s;
            uint64_t len;
            int rc = read_string(c, &s, &len, "array string");
            if (rc)
                return rc;
        }
        return IKV_OK;
    }
    if (type == IKV_GGUF_ARRAY) {
        if (depth >= GGUF_MAX_NESTING)
            return fail(c, IKV_EFORMAT, "corrupt: array '%s' nested more than %d deep", key,
                        GGUF_MAX_NESTING);
        if (count > remaining(c) / 12)
            return fail(c, IKV_EFORMAT, "corrupt: array '%s' claims %llu sub-arrays, more than the file holds",
                        key, (unsigned long long)count);
        for (uint64_t i = 0; i < count; i++) {
            uint32_t inner;
            uint64_t n;
            int rc = read_u32(c, &inner, "array type");
            if (!rc)
                rc = read_u64(c, &n, "array count");
            if (!rc)
                rc = inner < IKV_GGUF_VTYPE_COUNT
                         ? skip_values(c, inner, n, depth + 1, key)
                         : fail(c, IKV_EFORMAT, "corrupt: array '%s' has bad element type %u", key, inner);
            if (rc)
                return rc;
        }
        return IKV_OK;
    }
    return fail(c, IKV_EFORMAT, "corrupt: array '%s' has bad element type %u", key, type);
}

static int read_kv(cursor *c, ikv_gguf_kv *kv)
{
    const char *key;
    uint64_t key_len;
    uint32_t type;
    int rc = read_string(c, &key, &key_len, "metadata key");
    if (rc)
        return rc;
    if (!(kv->key = copy_string(key, key_len)))
        return fail(c, IKV_ENOMEM, "out of memory");
    if ((rc = read_u32(c, &type, "metadata value type")))
        return rc;
    if (type >= IKV_GGUF_VTYPE_COUNT)
        return fail(c, IKV_EFORMAT, "corrupt: key '%s' has bad value type %u", kv->key, type);
    kv->type = (ikv_gguf_vtype)type;
    size_t size = vtype_size(type);
    if (size) {
        uint8_t raw[8];
        if ((rc = read_bytes(c, raw, size, "metadata value")))
            return rc;
        switch (type) {
        case IKV_GGUF_UINT8: kv->num.u = raw[0]; break;
        case IKV_GGUF_BOOL: kv->num.u = raw[0] != 0; break;
        case IKV_GGUF_INT8: kv->num.i = (int8_t)raw[0]; break;
        case IKV_GGUF_UINT16: { uint16_t v; memcpy(&v, raw, 2); kv->num.u = v; break; }
        case IKV_GGUF_INT16: { int16_t v; memcpy(&v, raw, 2); kv->num.i = v; break; }
        case IKV_GGUF_UINT32: { uint32_t v; memcpy(&v, raw, 4); kv->num.u = v; break; }
        case IKV_GGUF_INT32: { int32_t v; memcpy(&v, raw, 4); kv->num.i = v; break; }
        case IKV_GGUF_FLOAT32: { float v; memcpy(&v, raw, 4); kv->num.f = v; break; }
        case IKV_GGUF_UINT64: memcpy(&kv->num.u, raw, 8); break;
        case IKV_GGUF_INT64: memcpy(&kv->num.i, raw, 8); break;
        case IKV_GGUF_FLOAT64: memcpy(&kv->num.f, raw, 8); break;
        default: break;
        }
        return IKV_OK;
    }
    if (type == IKV_GGUF_STRING)
        return read_string(c, &kv->str, &kv->str_len, "metadata string");
    /* array */
    uint32_t elem;
    if ((rc = read_u32(c, &elem, "array element type")) || (rc = read_u64(c, &kv->count, "array count")))
        return rc;
    if (elem >= IKV_GGUF_VTYPE_COUNT)
        return fail(c, IKV_EFORMAT, "corrupt: array '%s' has bad element type %u", kv->key, elem);
    kv->elem_type = (ikv_gguf_vtype)elem;
    kv->nested = elem == IKV_GGUF_ARRAY;
    kv->elems = c->pos;
    return skip_values(c, elem, kv->count, 1, kv->key);
}

static int read_tensor_info(cursor *c, ikv_gguf_tensor *t)
{
    const char *name;
    uint64_t name_len;
    uint32_t n_dims;
    int rc = read_string(c, &name, &name_len, "tensor name");
    if (rc)
        return rc;
    if (!(t->name = copy_string(name, name_len)))
        return fail(c, IKV_ENOMEM, "out of memory");
    if ((rc = read_u32(c, &n_dims, "tensor dimension count")))
        return rc;
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
        return fail(c, IKV_EFORMAT, "corrupt: tensor '%s' has %u dimensions (1 to %d allowed)",
                    t->name, n_dims, GGUF_MAX_DIMS);
    t->n_dims = (int)n_dims;
    for (int i = 0; i < GGUF_MAX_DIMS; i++)
        t->ne[i] = 1;
    for (uint32_t i = 0; i < n_dims; i++)
        if ((rc = read_u64(c, &t->ne[i], "tensor dimension")))
            return rc;
    if ((rc = read_u32(c, &t->type, "tensor type")) || (rc = read_u64(c, &t->offset, "tensor offset")))
        return rc;
    if (!ikv_gguf_type_name(t->type))
        return fail(c, IKV_EFORMAT, "corrupt: tensor '%s' has unknown type id %u", t->name, t->type);
    const type_info *ti = &ggml_types[t->type];
    /* Element count and byte size, without overflow: no dimension may
     * exceed the file size in bytes, and neither may their product. */
    uint64_t limit = (uint64_t)c->size * 8 + 256;
    uint64_t count = 1;
    for (int i = 0; i < GGUF_MAX_DIMS; i++) {
        if (t->ne[i] > limit || (t->ne[i] && count > limit / t->ne[i]))
            return fail(c, IKV_EFORMAT, "corrupt: tensor '%s' is larger than the file", t->name);
        count *= t->ne[i];
    }
    if (t->ne[0] % ti->block)
        return fail(c, IKV_EFORMAT, "corrupt: tensor '%s' of type %s has a row of %llu elements, "
                    "not a multiple of its block size %u", t->name, ti->name,
                    (unsigned long long)t->ne[0], ti->block);
    t->nbytes = count / ti->block * ti->bytes;
    return IKV_OK;
}

/* ---- sorted name indexes ---- */

static int cmp_ref(const void *a, const void *b)
{
    return strcmp(((const name_ref *)a)->name, ((const name_ref *)b)->name);
}

/* Sorts the index; returns the index of a duplicate name or -1. */
static int64_t sort_index(name_ref *index, int64_t n)
{
    qsort(index, (size_t)n, sizeof *index, cmp_ref);
    for (int64_t i = 1; i < n; i++)
        if (strcmp(index[i - 1].name, index[i].name) == 0)
            return index[i].index;
    return -1;
}

static int64_t lookup(const name_ref *index, int64_t n, const char *name)
{
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(index[mid].name, name);
        if (c == 0)
            return index[mid].index;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* ---- parse ---- */

static int parse(ikv_gguf *g, cursor *c)
{
    char magic[4];
    int rc;
    if (c->size < 4 || memcmp(c->data, GGUF_MAGIC, 4) != 0)
        return fail(c, IKV_EFORMAT, "not a GGUF file (bad magic)");
    if ((rc = read_bytes(c, magic, 4, "magic")) || (rc = read_u32(c, &g->version, "version")))
        return rc;
    if (g->version == 1)
        return fail(c, IKV_EUNSUPPORTED, "GGUF version 1 is not supported (versions 2 and 3 are); "
                    "convert the model again with a current llama.cpp");
    if (g->version != 2 && g->version != 3) {
        if (g->version && (g->version & 0xffffu) == 0)
            return fail(c, IKV_EUNSUPPORTED, "big-endian GGUF files are not supported");
        return fail(c, IKV_EUNSUPPORTED, "GGUF version %u is not supported (versions 2 and 3 are)",
                    g->version);
    }
    uint64_t n_tensors, n_kv;
    if ((rc = read_u64(c, &n_tensors, "tensor count")) || (rc = read_u64(c, &n_kv, "metadata count")))
        return rc;
    /* every key/value takes at least 13 bytes, every tensor info 32 */
    if (n_kv > remaining(c) / 13)
        return fail(c, IKV_EFORMAT, "corrupt: %llu metadata entries claimed, more than the file holds",
                    (unsigned long long)n_kv);
    if (n_tensors > remaining(c) / 32)
        return fail(c, IKV_EFORMAT, "corrupt: %llu tensors claimed, more than the file holds",
                    (unsigned long long)n_tensors);
    g->n_kv = (int64_t)n_kv;
    g->n_tensors = (int64_t)n_tensors;
    g->kv = calloc(n_kv ? n_kv : 1, sizeof *g->kv);
    g->kv_sorted = calloc(n_kv ? n_kv : 1, sizeof *g->kv_sorted);
    g->tensors = calloc(n_tensors ? n_tensors : 1, sizeof *g->tensors);
    g->tensors_sorted = calloc(n_tensors ? n_tensors : 1, sizeof *g->tensors_sorted);
    if (!g->kv || !g->kv_sorted || !g->tensors || !g->tensors_sorted)
        return fail(c, IKV_ENOMEM, "out of memory");

    for (int64_t i = 0; i < g->n_kv; i++) {
        if ((rc = read_kv(c, &g->kv[i])))
            return rc;
        g->kv_sorted[i] = (name_ref){g->kv[i].key, i};
    }
    int64_t dup = sort_index(g->kv_sorted, g->n_kv);
    if (dup >= 0)
        return fail(c, IKV_EFORMAT, "corrupt: metadata key '%s' appears twice", g->kv[dup].key);

    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const ikv_gguf_kv *align = ikv_gguf_find(g, "general.alignment");
    if (align) {
        int64_t a;
        if (ikv_gguf_kv_int(align, &a) != 0 || a <= 0 || a > (1 << 24) || (a & (a - 1)))
            return fail(c, IKV_EFORMAT, "corrupt: general.alignment must be a power of two");
        g->alignment = (uint64_t)a;
    }

    for (int64_t i = 0; i < g->n_tensors; i++) {
        if ((rc = read_tensor_info(c, &g->tensors[i])))
            return rc;
        g->tensors_sorted[i] = (name_ref){g->tensors[i].name, i};
    }
    dup = sort_index(g->tensors_sorted, g->n_tensors);
    if (dup >= 0)
        return fail(c, IKV_EFORMAT, "corrupt: tensor '%s' appears twice", g->tensors[dup].name);

    uint64_t start = (c->pos + g->alignment - 1) / g->alignment * g->alignment;
    if (g->n_tensors > 0 && start > c->size)
        return fail(c, IKV_EFORMAT, "truncated: the tensor data section (byte %llu) is past the end "
                    "of the file (%zu bytes)", (unsigned long long)start, c->size);
    g->data_start = (size_t)start;
    uint64_t data_size = g->n_tensors > 0 ? c->size - g->data_start : 0;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        ikv_gguf_tensor *t = &g->tensors[i];
        if (t->offset % g->alignment)
            return fail(c, IKV_EFORMAT, "corrupt: tensor '%s' data offset %llu is not a multiple of "
                        "the alignment %llu", t->name, (unsigned long long)t->offset,
                        (unsigned long long)g->alignment);
        if (t->offset > data_size || t->nbytes > data_size - t->offset)
            return fail(c, IKV_EFORMAT, "truncated or corrupt: tensor '%s' (%llu bytes at data offset "
                        "%llu) ends past the end of the file", t->name,
                        (unsigned long long)t->nbytes, (unsigned long long)t->offset);
        t->data = g->data + g->data_start + t->offset;
    }
    return IKV_OK;
}

int ikv_gguf_parse(ikv_gguf **out, const uint8_t *data, size_t size, const char *label,
                   char *err, size_t errlen)
{
    *out = NULL;
    ikv_gguf *g = calloc(1, sizeof *g);
    cursor c = {data, size, 0, label ? label : "GGUF", err, errlen};
    if (!g)
        return fail(&c, IKV_ENOMEM, "out of memory");
    g->data = data;
    g->size = size;
    int rc = parse(g, &c);
    if (rc) {
        ikv_gguf_close(g);
        return rc;
    }
    *out = g;
    return IKV_OK;
}

int ikv_gguf_open(ikv_gguf **out, const char *path, char *err, size_t errlen)
{
    ikv_mapfile map;
    *out = NULL;
    int rc = ikv_mapfile_open(&map, path, err, errlen);
    if (rc)
        return rc;
    rc = ikv_gguf_parse(out, map.data, map.size, path, err, errlen);
    if (rc) {
        ikv_mapfile_close(&map);
        return rc;
    }
    (*out)->map = map;
    return IKV_OK;
}

void ikv_gguf_close(ikv_gguf *g)
{
    if (!g)
        return;
    if (g->kv)
        for (int64_t i = 0; i < g->n_kv; i++)
            free((void *)g->kv[i].key);
    if (g->tensors)
        for (int64_t i = 0; i < g->n_tensors; i++)
            free((void *)g->tensors[i].name);
    free(g->kv);
    free(g->kv_sorted);
    free(g->tensors);
    free(g->tensors_sorted);
    ikv_mapfile_close(&g->map);
    free(g);
}

uint32_t ikv_gguf_version(const ikv_gguf *g)
{
    return g->version;
}

uint64_t ikv_gguf_alignment(const ikv_gguf *g)
{
    return g->alignment;
}

const uint8_t *ikv_gguf_bytes(const ikv_gguf *g, size_t *size)
{
    if (size)
        *size = g->size;
    return g->data;
}

int64_t ikv_gguf_n_kv(const ikv_gguf *g)
{
    return g->n_kv;
}

const ikv_gguf_kv *ikv_gguf_kv_at(const ikv_gguf *g, int64_t index)
{
    return index >= 0 && index < g->n_kv ? &g->kv[index] : NULL;
}

const ikv_gguf_kv *ikv_gguf_find(const ikv_gguf *g, const char *key)
{
    int64_t i = lookup(g->kv_sorted, g->n_kv, key);
    return i >= 0 ? &g->kv[i] : NULL;
}

int64_t ikv_gguf_n_tensors(const ikv_gguf *g)
{
    return g->n_tensors;
}

const ikv_gguf_tensor *ikv_gguf_tensor_at(const ikv_gguf *g, int64_t index)
{
    return index >= 0 && index < g->n_tensors ? &g->tensors[index] : NULL;
}

const ikv_gguf_tensor *ikv_gguf_find_tensor(const ikv_gguf *g, const char *name)
{
    int64_t i = lookup(g->tensors_sorted, g->n_tensors, name);
    return i >= 0 ? &g->tensors[i] : NULL;
}

/* ---- value accessors ---- */

static int is_signed(ikv_gguf_vtype t)
{
    return t == IKV_GGUF_INT8 || t == IKV_GGUF_INT16 || t == IKV_GGUF_INT32 || t == IKV_GGUF_INT64;
}

static int is_unsigned(ikv_gguf_vtype t)
{
    return t == IKV_GGUF_UINT8 || t == IKV_GGUF_UINT16 || t == IKV_GGUF_UINT32 ||
           t == IKV_GGUF_UINT64 || t == IKV_GGUF_BOOL;
}

int ikv_gguf_kv_int(const ikv_gguf_kv *kv, int64_t *out)
{
    if (!kv)
        return -1;
    if (is_signed(kv->type)) {
        *out = kv->num.i;
        return 0;
    }
    if (is_unsigned(kv->type) && kv->num.u <= (uint64_t)INT64_MAX) {
        *out = (int64_t)kv->num.u;
        return 0;
    }
    return -1;
}

int ikv_gguf_kv_float(const ikv_gguf_kv *kv, double *out)
{
    int64_t i;
    if (!kv)
        return -1;
    if (kv->type == IKV_GGUF_FLOAT32 || kv->type == IKV_GGUF_FLOAT64) {
        *out = kv->num.f;
        return 0;
    }
    if (kv->type != IKV_GGUF_BOOL && ikv_gguf_kv_int(kv, &i) == 0) {
        *out = (double)i;
        return 0;
    }
    return -1;
}

int ikv_gguf_kv_string(const ikv_gguf_kv *kv, const char **str, uint64_t *len)
{
    if (!kv || kv->type != IKV_GGUF_STRING)
        return -1;
    *str = kv->str;
    *len = kv->str_len;
    return 0;
}

int ikv_gguf_array_strings(const ikv_gguf *g, const ikv_gguf_kv *kv, const char **ptrs,
                           uint32_t *lens)
{
    if (!kv || kv->type != IKV_GGUF_ARRAY || kv->elem_type != IKV_GGUF_STRING)
        return -1;
    /* Parsing checked every length; check again rather than trust it. */
    size_t pos = kv->elems;
    for (uint64_t i = 0; i < kv->count; i++) {
        uint64_t len;
        if (pos > g->size || g->size - pos < 8)
            return -1;
        memcpy(&len, g->data + pos, 8);
        pos += 8;
        if (len > g->size - pos || len > UINT32_MAX)
            return -1;
        ptrs[i] = (const char *)g->data + pos;
        lens[i] = (uint32_t)len;
        pos += (size_t)len;
    }
    return 0;
}

/* Element i of a numeric array as double (integers exactly up to 2^53). */
static double number_at(const uint8_t *p, ikv_gguf_vtype t, int64_t *as_int, int *integer)
{
    *integer = 1;
    switch (t) {
    case IKV_GGUF_UINT8:
    case IKV_GGUF_BOOL: *as_int = p[0]; break;
    case IKV_GGUF_INT8: *as_int = (int8_t)p[0]; break;
    case IKV_GGUF_UINT16: { uint16_t v; memcpy(&v, p, 2); *as_int = v; break; }
    case IKV_GGUF_INT16: { int16_t v; memcpy(&v, p, 2); *as_int = v; break; }
    case IKV_GGUF_UINT32: { uint32_t v; memcpy(&v, p, 4); *as_int = v; break; }
    case IKV_GGUF_INT32: { int32_t v; memcpy(&v, p, 4); *as_int = v; break; }
    case IKV_GGUF_UINT64: { uint64_t v; memcpy(&v, p, 8); *as_int = v > INT64_MAX ? INT64_MAX : (int64_t)v; break; }
    case IKV_GGUF_INT64: memcpy(as_int, p, 8); break;
    case IKV_GGUF_FLOAT32: { float v; memcpy(&v, p, 4); *integer = 0; return v; }
    case IKV_GGUF_FLOAT64: { double v; memcpy(&v, p, 8); *integer = 0; return v; }
    default: *integer = 0; return 0.0;
    }
    return (double)*as_int;
}

static int numeric_ok(const ikv_gguf *g, const ikv_gguf_kv *kv)
{
    size_t size = kv && kv->type == IKV_GGUF_ARRAY ? vtype_size(kv->elem_type) : 0;
    return size && kv->elems <= g->size && kv->count <= (g->size - kv->elems) / size;
}

int ikv_gguf_array_f32(const ikv_gguf *g, const ikv_gguf_kv *kv, float *out)
{
    if (!numeric_ok(g, kv) || kv->elem_type == IKV_GGUF_BOOL)
        return -1;
    size_t size = vtype_size(kv->elem_type);
    for (uint64_t i = 0; i < kv->count; i++) {
        int64_t iv;
        int integer;
        out[i] = (float)number_at(g->data + kv->elems + i * size, kv->elem_type, &iv, &integer);
    }
    return 0;
}

int ikv_gguf_array_i32(const ikv_gguf *g, const ikv_gguf_kv *kv, int32_t *out)
{
    if (!numeric_ok(g, kv))
        return -1;
    size_t size = vtype_size(kv->elem_type);
    for (uint64_t i = 0; i < kv->count; i++) {
        int64_t iv;
        int integer;
        number_at(g->data + kv->elems + i * size, kv->elem_type, &iv, &integer);
        if (!integer || iv < INT32_MIN || iv > INT32_MAX)
            return -1;
        out[i] = (int32_t)iv;
    }
    return 0;
}
