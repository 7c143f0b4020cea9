/*
 * GGUF reading and model loading: every metadata value type, tensor
 * infos and alignment, versions, and hostile files (truncated at every
 * byte, huge counts, offsets past the end, bad type ids, nesting, bad
 * magic, v1, unsupported tensor types, shapes that contradict the
 * metadata); llama2.c checkpoints (weight order, unshared classifier,
 * corrupt headers, truncation, tokenizer beside the model).
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/gguf.h"
#include "model/model.h"
#include "model/session.h"
#include "model/sha256.h"
#include "model_fixture.h"
#include "runner.h"

/* Parses an exact-size copy (so that any read past the end is caught by
 * the sanitizers); returns the status and leaves the message in err. */
static int parse_copy(const uint8_t *data, size_t n, char *err, size_t errlen)
{
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, data, n);
    ikv_gguf *g = NULL;
    err[0] = '\0';
    int rc = ikv_gguf_parse(&g, copy, n, "t.gguf", err, errlen);
    CU_ASSERT((rc == IKV_OK) == (g != NULL));
    ikv_gguf_close(g);
    free(copy);
    return rc;
}

static void put64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static int load_file(const char *path, char *err, size_t errlen, ikv_model **out)
{
    ikv_model *m = NULL;
    int rc = ikv_model_load(&m, path, NULL, err, errlen);
    CU_ASSERT((rc == IKV_OK) == (m != NULL));
    if (out)
        *out = m;
    else
        ikv_model_free(m);
    return rc;
}

/* Writes a writer's image to a temp file, loads it, returns the status. */
static int load_writer(gguf_writer *w, char *err, size_t errlen)
{
    char path[256];
    ref_temp_path(path, sizeof path, "w.gguf");
    CU_ASSERT_EQUAL_FATAL(gw_write(w, path), 0);
    int rc = load_file(path, err, errlen, NULL);
    unlink(path);
    return rc;
}

/* ---- the reader ---- */

static void test_value_types(void)
{
    gguf_writer *w = gw_new(3);
    gw_kv_u8(w, "a.u8", 200);
    gw_kv_i8(w, "a.i8", -100);
    gw_kv_u16(w, "a.u16", 60000);
    gw_kv_i16(w, "a.i16", -30000);
    gw_kv_u32(w, "a.u32", 4000000000u);
    gw_kv_i32(w, "a.i32", -2000000000);
    gw_kv_u64(w, "a.u64", 1ull << 60);
    gw_kv_i64(w, "a.i64", -(1ll << 60));
    gw_kv_f32(w, "a.f32", 1.5f);
    gw_kv_f64(w, "a.f64", -2.25);
    gw_kv_bool(w, "a.bool", 1);
    gw_kv_str(w, "a.str", "hello");
    const char *strs[3] = {"x", "", "yz"};
    gw_kv_arr_str(w, "a.arr_str", strs, 3);
    float fl[4] = {1, -2, 3.5f, 0};
    gw_kv_arr_f32(w, "a.arr_f32", fl, 4);
    int32_t in[2] = {-7, 9};
    gw_kv_arr_i32(w, "a.arr_i32", in, 2);
    /* an array of two arrays (of u16 and of strings): skipped safely */
    uint8_t nested[64], *p = nested;
    put32(p, GW_ARRAY), p += 4;
    put64(p, 2), p += 8;
    put32(p, GW_UINT16), p += 4;
    put64(p, 2), p += 8;
    memset(p, 1, 4), p += 4;
    put32(p, GW_STRING), p += 4;
    put64(p, 1), p += 8;
    put64(p, 2), p += 8;
    memcpy(p, "ab", 2), p += 2;
    gw_kv_raw(w, "a.nested", GW_ARRAY, nested, (size_t)(p - nested));
    uint8_t u16arr[8 + 4 + 6];
    put32(u16arr, GW_UINT16);
    put64(u16arr + 4, 3);
    uint16_t u16v[3] = {1, 2, 65535};
    memcpy(u16arr + 12, u16v, 6);
    gw_kv_raw(w, "a.arr_u16", GW_ARRAY, u16arr, sizeof u16arr);
    gw_kv_str(w, "z.after", "still read");
    size_t n;
    uint8_t *img = gw_bytes(w, &n);
    ikv_gguf *g;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(ikv_gguf_parse(&g, img, n, "t.gguf", err, sizeof err), IKV_OK);
    CU_ASSERT_EQUAL(ikv_gguf_version(g), 3);
    CU_ASSERT_EQUAL(ikv_gguf_n_kv(g), 18);
    CU_ASSERT_EQUAL(ikv_gguf_n_tensors(g), 0);
    CU_ASSERT_EQUAL(ikv_gguf_alignment(g), 32);
    int64_t i;
    double f;
    const char *s;
    uint64_t len;
    CU_ASSERT(ikv_gguf_kv_int(ikv_gguf_find(g, "a.u8"), &i) == 0 && i == 200);
    CU_ASSERT(ikv_gguf_kv_int(ikv_gguf_find(g, "a.i8"), &i) == 0 && i == -100);
    CU_ASSERT(ikv_gguf_kv_int(ikv_gguf_find(g, "a.u16"), &i) == 0 && i == 60000);
    CU_ASSERT(ikv_gguf_kv_int(ikv_gguf_find(g, "a.i16"), &i) == 0 && i == -30000);
    CU_ASSERT(ikv_gguf_kv_int(ikv_gguf_find(g, "a.u32"), &i) == 0 && i == 4000000000ll);
    CU_ASSERT(ikv_gguf_kv_int(ikv_gguf_find(g, "a.i32"), &i) == 0 && i == -2000000000);
    CU_ASSERT(ikv_gguf_kv_int(ikv_gguf_find(g, "a.u64"), &i) == 0 && i == (1ll << 60));
    CU_ASSERT(ikv_gguf_kv_int(ikv_gguf_find(g, "a.i64"), &i) == 0 && i == -(1ll << 60));
    CU_ASSERT(ikv_gguf_kv_float(ikv_gguf_find(g, "a.f32"), &f) == 0 && f == 1.5);
    CU_ASSERT(ikv_gguf_kv_float(ikv_gguf_find(g, "a.f64"), &f) == 0 && f == -2.25);
    CU_ASSERT(ikv_gguf_kv_float(ikv_gguf_find(g, "a.u16"), &f) == 0 && f == 60000.0);
    CU_ASSERT(ikv_gguf_kv_int(ikv_gguf_find(g, "a.bool"), &i) == 0 && i == 1);
    CU_ASSERT(ikv_gguf_kv_int(ikv_gguf_find(g, "a.f32"), &i) == -1);
    CU_ASSERT(ikv_gguf_kv_string(ikv_gguf_find(g, "a.str"), &s, &len) == 0 && len == 5 && memcmp(s, "hello", 5) == 0);
    CU_ASSERT(ikv_gguf_kv_string(ikv_gguf_find(g, "a.u8"), &s, &len) == -1);
    CU_ASSERT(ikv_gguf_kv_string(ikv_gguf_find(g, "z.after"), &s, &len) == 0 && len == 10);
    CU_ASSERT_PTR_NULL(ikv_gguf_find(g, "a.missing"));

    const ikv_gguf_kv *kv = ikv_gguf_find(g, "a.arr_str");
    CU_ASSERT_FATAL(kv && kv->type == IKV_GGUF_ARRAY && kv->count == 3);
    const char *ptrs[3];
    uint32_t lens[3];
    CU_ASSERT_EQUAL(ikv_gguf_array_strings(g, kv, ptrs, lens), 0);
    CU_ASSERT(lens[0] == 1 && ptrs[0][0] == 'x' && lens[1] == 0 && lens[2] == 2 && memcmp(ptrs[2], "yz", 2) == 0);
    float fo[4];
    CU_ASSERT_EQUAL(ikv_gguf_array_f32(g, ikv_gguf_find(g, "a.arr_f32"), fo), 0);
    CU_ASSERT(fo[0] == 1 && fo[1] == -2 && fo[2] == 3.5f && fo[3] == 0);
    int32_t io[3];
    CU_ASSERT_EQUAL(ikv_gguf_array_i32(g, ikv_gguf_find(g, "a.arr_i32"), io), 0);
    CU_ASSERT(io[0] == -7 && io[1] == 9);
    CU_ASSERT_EQUAL(ikv_gguf_array_i32(g, ikv_gguf_find(g, "a.arr_u16"), io), 0);
    CU_ASSERT(io[0] == 1 && io[1] == 2 && io[2] == 65535);
    CU_ASSERT_EQUAL(ikv_gguf_array_i32(g, ikv_gguf_find(g, "a.arr_f32"), io), -1); /* not integers */
    CU_ASSERT_EQUAL(ikv_gguf_array_f32(g, ikv_gguf_find(g, "a.arr_str"), fo), -1);
    kv = ikv_gguf_find(g, "a.nested");
    CU_ASSERT_FATAL(kv != NULL);
    CU_ASSERT(kv->nested && kv->count == 2);
    CU_ASSERT_EQUAL(ikv_gguf_array_f32(g, kv, fo), -1);
    ikv_gguf_close(g);
    free(img);
    gw_free(w);
}

static void test_tensor_infos_and_alignment(void)
{
    const uint32_t aligns[] = {32, 64, 8, 256};
    for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
        gguf_writer *w = gw_new(2);
        gw_set_alignment(w, aligns[a]);
        float v[96];
        for (int i = 0; i < 96; i++)
            v[i] = (float)i;
        uint64_t ne1[1] = {3}, ne2[2] = {32, 3};
        gw_tensor(w, "small", GW_F32, 1, ne1, v, NULL);
        gw_tensor(w, "q", GW_Q8_0, 2, ne2, v, NULL);
        gw_tensor(w, "h", GW_F16, 2, ne2, v, NULL);
        size_t n;
        uint8_t *img = gw_bytes(w, &n);
        ikv_gguf *g;
        char err[256];
        CU_ASSERT_EQUAL_FATAL(ikv_gguf_parse(&g, img, n, "t.gguf", err, sizeof err), IKV_OK);
        CU_ASSERT_EQUAL(ikv_gguf_version(g), 2);
        CU_ASSERT_EQUAL(ikv_gguf_alignment(g), aligns[a]);
        const ikv_gguf_tensor *t = ikv_gguf_find_tensor(g, "q");
        CU_ASSERT_FATAL(t != NULL);
        CU_ASSERT(t->n_dims == 2 && t->ne[0] == 32 && t->ne[1] == 3 && t->ne[2] == 1 && t->type == 8);
        CU_ASSERT_EQUAL(t->nbytes, 3 * 34);
        CU_ASSERT_EQUAL((size_t)(t->data - img) % aligns[a], 0);
        CU_ASSERT_EQUAL((size_t)(t->data - img), gw_data_offset(w) + t->offset);
        t = ikv_gguf_find_tensor(g, "small");
        float first;
        memcpy(&first, t->data + 4, 4);
        CU_ASSERT_EQUAL(first, 1.0f);
        CU_ASSERT_EQUAL(ikv_gguf_find_tensor(g, "h")->nbytes, 96 * 2);
        CU_ASSERT_PTR_NULL(ikv_gguf_find_tensor(g, "nope"));
        CU_ASSERT_STRING_EQUAL(ikv_gguf_type_name(12), "Q4_K");
        CU_ASSERT_PTR_NULL(ikv_gguf_type_name(4)); /* a removed type id */
        ikv_gguf_close(g);
        free(img);
        gw_free(w);
    }
}

static void test_versions_and_magic(void)
{
    uint8_t hdr[24] = {'G', 'G', 'U', 'F'};
    char err[256];
    put32(hdr + 4, 1);
    CU_ASSERT_EQUAL(parse_copy(hdr, sizeof hdr, err, sizeof err), IKV_EUNSUPPORTED);
    CU_ASSERT(strstr(err, "version 1") != NULL);
    CU_ASSERT(strstr(err, "t.gguf") == err);
    put32(hdr + 4, 4);
    CU_ASSERT_EQUAL(parse_copy(hdr, sizeof hdr, err, sizeof err), IKV_EUNSUPPORTED);
    CU_ASSERT(strstr(err, "version 4") != NULL);
    put32(hdr + 4, 3u << 24); /* version 3 written big-endian */
    CU_ASSERT_EQUAL(parse_copy(hdr, sizeof hdr, err, sizeof err), IKV_EUNSUPPORTED);
    CU_ASSERT(strstr(err, "big-endian") != NULL);
    put32(hdr + 4, 3);
    CU_ASSERT_EQUAL(parse_copy(hdr, sizeof hdr, err, sizeof err), IKV_OK); /* empty but valid */
    put32(hdr + 4, 2);
    CU_ASSERT_EQUAL(parse_copy(hdr, sizeof hdr, err, sizeof err), IKV_OK);
    hdr[0] = 'g';
    CU_ASSERT_EQUAL(parse_copy(hdr, sizeof hdr, err, sizeof err), IKV_EFORMAT);
    CU_ASSERT(strstr(err, "magic") != NULL);
    CU_ASSERT_EQUAL(parse_copy(hdr, 0, err, sizeof err), IKV_EFORMAT);
    CU_ASSERT_EQUAL(parse_copy((const uint8_t *)"GGU", 3, err, sizeof err), IKV_EFORMAT);
}

/* A small but complete model image (tokenizer included). */
static uint8_t *model_image(size_t *n, gguf_writer **keep)
{
    ref_options o = ref_default_options();
    o.dim = 32;
    o.hidden_dim = 32;
    o.n_layers = 1;
    o.n_heads = 2;
    o.n_kv_heads = 1;
    o.vocab_size = 300;
    o.tokenizer = 1;
    o.type = GW_Q8_0;
    gguf_writer *w = ref_writer(&o, NULL);
    uint8_t *img = gw_bytes(w, n);
    if (keep)
        *keep = w;
    else
        gw_free(w);
    return img;
}

static void test_truncated_everywhere(void)
{
    gguf_writer *w;
    size_t n;
    uint8_t *img = model_image(&n, &w);
    char err[256];
    CU_ASSERT_EQUAL_FATAL(parse_copy(img, n, err, sizeof err), IKV_OK);
    /* every cut through the header, metadata and tensor infos, then
     * every 61st byte through the data */
    size_t dense = gw_data_offset(w) + 64;
    int checked = 0, clean = 1;
    for (size_t cut = 0; cut < n; cut += cut < dense ? 1 : 61) {
        int rc = parse_copy(img, cut, err, sizeof err);
        if (rc != IKV_EFORMAT || strncmp(err, "t.gguf: ", 8) != 0) {
            if (clean)
                printf("\n    cut at %zu of %zu: status %d, '%s' ", cut, n, rc, err);
            clean = 0;
        }
        checked++;
    }
    CU_ASSERT(clean);
    CU_ASSERT(checked > 1000);
    /* and through the model loader, from files */
    char path[256];
    ref_temp_path(path, sizeof path, "cut.gguf");
    for (size_t cut = 7; cut < n; cut += n / 23) {
        FILE *f = fopen(path, "wb");
        CU_ASSERT_FATAL(f != NULL);
        CU_ASSERT_EQUAL(fwrite(img, 1, cut, f), cut);
        fclose(f);
        int rc = load_file(path, err, sizeof err, NULL);
        CU_ASSERT_EQUAL(rc, IKV_EFORMAT);
        CU_ASSERT(strncmp(err, path, strlen(path)) == 0);
    }
    unlink(path);
    free(img);
    gw_free(w);
}

/* Builds "GGUF" v3 with the given counts and body. */
static size_t raw_file(uint8_t *buf, uint64_t n_tensors, uint64_t n_kv, const uint8_t *body, size_t n)
{
    memcpy(buf, "GGUF", 4);
    put32(buf + 4, 3);
    put64(buf + 8, n_tensors);
    put64(buf + 16, n_kv);
    if (n)
        memcpy(buf + 24, body, n);
    return 24 + n;
}

static int parse_raw(uint64_t n_tensors, uint64_t n_kv, const uint8_t *body, size_t n, char *err)
{
    uint8_t buf[512];
    size_t size = raw_file(buf, n_tensors, n_kv, body, n);
    return parse_copy(buf, size, err, 256);
}

/* body: one key "k" of type `type` followed by `value` bytes */
static size_t kv_body(uint8_t *b, uint32_t type, const void *value, size_t n)
{
    put64(b, 1);
    b[8] = 'k';
    put32(b + 9, type);
    memcpy(b + 13, value, n);
    return 13 + n;
}

static void test_hostile_metadata(void)
{
    uint8_t body[256], v[64];
    char err[256];
    size_t n;
    /* counts far beyond the file */
    CU_ASSERT_EQUAL(parse_raw(0, 1ull << 62, NULL, 0, err), IKV_EFORMAT);
    CU_ASSERT(strstr(err, "metadata entries") != NULL);
    CU_ASSERT_EQUAL(parse_raw(1ull << 60, 0, NULL, 0, err), IKV_EFORMAT);
    CU_ASSERT(strstr(err, "tensors") != NULL);
    CU_ASSERT_EQUAL(parse_raw(UINT64_MAX, UINT64_MAX, NULL, 0, err), IKV_EFORMAT);
    /* key length past the end */
    put64(body, 1ull << 50);
    CU_ASSERT_EQUAL(parse_raw(0, 1, body, 16, err), IKV_EFORMAT);
    CU_ASSERT(strstr(err, "metadata key") != NULL);
    put64(body, UINT64_MAX);
    CU_ASSERT_EQUAL(parse_raw(0, 1, body, 16, err), IKV_EFORMAT);
    /* bad value type ids */
    n = kv_body(body, 13, "\0\0\0\0", 4);
    CU_ASSERT_EQUAL(parse_raw(0, 1, body, n, err), IKV_EFORMAT);
    CU_ASSERT(strstr(err, "bad value type 13") != NULL);
    n = kv_body(body, 0xffffffffu, "\0\0\0\0", 4);
    CU_ASSERT_EQUAL(parse_raw(0, 1, body, n, err), IKV_EFORMAT);
    /* string value length past the end */
    put64(v, 1ull << 40);
    n = kv_body(body, GW_STRING, v, 8);
    CU_ASSERT_EQUAL(parse_raw(0, 1, body, n, err), IKV_EFORMAT);
    /* arrays: huge counts of every element kind, bad element type */
    const uint32_t elems[] = {GW_UINT8, GW_UINT64, GW_STRING, GW_ARRAY, GW_FLOAT64};
    const uint64_t counts[] = {1ull << 62, UINT64_MAX, 1ull << 33};
    for (size_t e = 0; e < 5; e++) {
        for (size_t c = 0; c < 3; c++) {
            put32(v, elems[e]);
            put64(v + 4, counts[c]);
            n = kv_body(body, GW_ARRAY, v, 12);
            CU_ASSERT_EQUAL(parse_raw(0, 1, body, n, err), IKV_EFORMAT);
        }
    }
    put32(v, 99);
    put64(v + 4, 1);
    n = kv_body(body, GW_ARRAY, v, 12);
    CU_ASSERT_EQUAL(parse_raw(0, 1, body, n, err), IKV_EFORMAT);
    CU_ASSERT(strstr(err, "element type 99") != NULL);
    /* nesting: arrays of arrays of ... beyond the limit */
    uint8_t *p = v;
    for (int depth = 0; depth < 5; depth++) {
        put32(p, GW_ARRAY);
        put64(p + 4, 1);
        p += 12;
    }
    n = kv_body(body, GW_ARRAY, v, (size_t)(p - v));
    CU_ASSERT_EQUAL(parse_raw(0, 1, body, n, err), IKV_EFORMAT);
    CU_ASSERT(strstr(err, "nested") != NULL);
    /* duplicate keys */
    gguf_writer *w = gw_new(3);
    gw_kv_u32(w, "same", 1);
    gw_kv_u32(w, "same", 2);
    size_t size;
    uint8_t *img = gw_bytes(w, &size);
    CU_ASSERT_EQUAL(parse_copy(img, size, err, sizeof err), IKV_EFORMAT);
    CU_ASSERT(strstr(err, "'same' appears twice") != NULL);
    free(img);
    gw_free(w);
    /* alignment: zero, not a power of two, not an integer */
    const uint32_t bad_align[] = {0, 3, 48};
    for (size_t i = 0; i < 3; i++) {
        w = gw_new(3);
        gw_kv_u32(w, "general.alignment", bad_align[i]);
        img = gw_bytes(w, &size);
        CU_ASSERT_EQUAL(parse_copy(img, size, err, sizeof err), IKV_EFORMAT);
        CU_ASSERT(strstr(err, "alignment") != NULL);
        free(img);
        gw_free(w);
    }
    w = gw_new(3);
    gw_kv_str(w, "general.alignment", "32");
    img = gw_bytes(w, &size);
    CU_ASSERT_EQUAL(parse_copy(img, size, err, sizeof err), IKV_EFORMAT);
    free(img);
    gw_free(w);
}

/* A file with one F32 tensor "t" [4]; returns the image and the offset
 * of its info record. */
static uint8_t *one_tensor(size_t *n, size_t *info)
{
    gguf_writer *w = gw_new(3);
    float v[4] = {1, 2, 3, 4};
    uint64_t ne[1] = {4};
    gw_tensor(w, "t", GW_F32, 1, ne, v, NULL);
    uint8_t *img = gw_bytes(w, n);
    *info = gw_tensor_info_offset(w, 0);
    gw_free(w);
    return img;
}

static void test_hostile_tensors(void)
{
    size_t n, info;
    char err[256];
    uint8_t *img = one_tensor(&n, &info);
    CU_ASSERT_EQUAL_FATAL(parse_copy(img, n, err, sizeof err), IKV_OK);
    /* info layout: u64 name length, "t", u32 n_dims, u64 ne[0], u32 type, u64 offset */
    size_t dims_at = info + 9, ne_at = dims_at + 4, type_at = ne_at + 8, off_at = type_at + 4;
    uint8_t *bad = malloc(n);
    const struct {
        size_t at;
        int width;
        uint64_t value;
        const char *expect;
    } cases[] = {
        {dims_at, 4, 0, "dimensions"},
        {dims_at, 4, 5, "dimensions"},
        {dims_at, 4, 0xffffffffu, "dimensions"},
        {ne_at, 8, 1ull << 62, "larger than the file"},
        {ne_at, 8, UINT64_MAX, "larger than the file"},
        {ne_at, 8, 5, "past the end"},
        {type_at, 4, 99, "unknown type id 99"},
        {type_at, 4, 4, "unknown type id 4"},
        {type_at, 4, 0xffffffffu, "unknown type id"},
        {type_at, 4, 8, "block size"},  /* Q8_0 with 4 elements per row */
        {off_at, 8, 1ull << 40, "past the end"},
        {off_at, 8, UINT64_MAX - 31, "past the end"},
        {off_at, 8, 4, "alignment"},
        {info, 8, 1ull << 40, "tensor name"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(bad, img, n);
        if (cases[i].width == 4)
            put32(bad + cases[i].at, (uint32_t)cases[i].value);
        else
            put64(bad + cases[i].at, cases[i].value);
        int rc = parse_copy(bad, n, err, sizeof err);
        CU_ASSERT_EQUAL(rc, IKV_EFORMAT);
        if (!strstr(err, cases[i].expect)) {
            printf("\n    case %zu: '%s' lacks '%s' ", i, err, cases[i].expect);
            CU_FAIL("message");
        }
    }
    /* two dims whose product overflows 64 bits */
    gguf_writer *w = gw_new(3);
    uint64_t ne[2] = {1ull << 33, 1ull << 33};
    gw_tensor_raw(w, "big", GW_F32, 2, ne, "", 0);
    size_t size;
    uint8_t *img2 = gw_bytes(w, &size);
    CU_ASSERT_EQUAL(parse_copy(img2, size, err, sizeof err), IKV_EFORMAT);
    free(img2);
    gw_free(w);
    /* duplicate tensor names */
    w = gw_new(3);
    float v[4] = {0};
    uint64_t ne1[1] = {4};
    gw_tensor(w, "dup", GW_F32, 1, ne1, v, NULL);
    gw_tensor(w, "dup", GW_F32, 1, ne1, v, NULL);
    img2 = gw_bytes(w, &size);
    CU_ASSERT_EQUAL(parse_copy(img2, size, err, sizeof err), IKV_EFORMAT);
    CU_ASSERT(strstr(err, "'dup' appears twice") != NULL);
    free(img2);
    gw_free(w);
    free(bad);
    free(img);
}

/* ---- the model loader ---- */

static ref_options small_options(void)
{
    ref_options o = ref_default_options();
    o.dim = 32;
    o.hidden_dim = 64;
    o.n_layers = 2;
    o.n_heads = 2;
    o.n_kv_heads = 1;
    o.vocab_size = 40;
    return o;
}

static void test_info_and_hash(void)
{
    char path[256], err[256];
    ref_temp_path(path, sizeof path, "info.gguf");
    ref_options o = small_options();
    o.type = GW_BF16;
    o.bias = 1;
    o.arch = "qwen2";
    o.context = 4096;
    CU_ASSERT_EQUAL_FATAL(ref_build(&o, path, NULL, NULL), 0);
    ikv_model *m;
    CU_ASSERT_EQUAL_FATAL(load_file(path, err, sizeof err, &m), IKV_OK);
    const ikv_model_details *i = ikv_model_info(m);
    CU_ASSERT_STRING_EQUAL(i->arch, "qwen2");
    CU_ASSERT_STRING_EQUAL(i->format, "gguf");
    CU_ASSERT_STRING_EQUAL(i->name, "fixture");
    CU_ASSERT(i->dim == 32 && i->hidden_dim == 64 && i->n_layers == 2 && i->n_heads == 2 &&
              i->n_kv_heads == 1 && i->head_dim == 16 && i->vocab_size == 40 && i->max_seq_len == 4096);
    CU_ASSERT(i->rope_mode == IKV_ROPE_NEOX && i->rope_dim == 16 && i->has_qkv_bias && !i->tied_classifier);
    CU_ASSERT_STRING_EQUAL(i->weight_type, "BF16");
    CU_ASSERT(fabsf(i->norm_eps - 1e-5f) < 1e-9f);
    /* matrices as BF16, vectors as float */
    uint64_t D = 32, F = 64, V = 40, qd = 32, kvd = 16;
    uint64_t expect = 2 * (2 * V * D) + 2 * 2 * (qd * D + 2 * kvd * D + D * qd + 3 * F * D) +
                      4 * (D * 5 + 2 * (qd + 2 * kvd));
    CU_ASSERT_EQUAL(i->weight_bytes, expect);
    CU_ASSERT_PTR_NULL(ikv_model_tokenizer(m));
    struct stat st;
    stat(path, &st);
    CU_ASSERT_EQUAL(i->file_bytes, (uint64_t)st.st_size);
    /* the digest is the file's */
    FILE *f = fopen(path, "rb");
    uint8_t *bytes = malloc((size_t)st.st_size);
    CU_ASSERT_EQUAL(fread(bytes, 1, (size_t)st.st_size, f), (size_t)st.st_size);
    fclose(f);
    char hex[65];
    ikv_sha256_hex(bytes, (size_t)st.st_size, hex);
    CU_ASSERT_STRING_EQUAL(i->sha256, hex);
    CU_ASSERT_STRING_EQUAL(ikv_model_sha256(m), hex);
    free(bytes);
    ikv_model_free(m);
    unlink(path);
}

static void test_gguf_tokenizer(void)
{
    char path[256], err[256];
    ref_temp_path(path, sizeof path, "tok.gguf");
    ref_options o = small_options();
    o.vocab_size = 320;
    o.tokenizer = 1;
    CU_ASSERT_EQUAL_FATAL(ref_build(&o, path, NULL, NULL), 0);
    ikv_model *m;
    CU_ASSERT_EQUAL_FATAL(load_file(path, err, sizeof err, &m), IKV_OK);
    const ikv_tokenizer *t = ikv_model_tokenizer(m);
    CU_ASSERT_FATAL(t != NULL);
    CU_ASSERT_EQUAL(ikv_model_info(m)->bos_id, 1);
    CU_ASSERT_EQUAL(ikv_model_info(m)->eos_id, 2);
    int32_t ids[64];
    int n = 0;
    const char *text = "ab cd";
    CU_ASSERT_EQUAL(ikv_tokenizer_encode(t, text, strlen(text), -1, ids, 64, &n), 0);
    CU_ASSERT(n >= 2 && ids[0] == 1);
    char out[64];
    size_t len = 0;
    for (int k = 1; k < n; k++) {
        int got = ikv_tokenizer_decode(t, ids[k - 1], ids[k], out + len, sizeof out - len);
        CU_ASSERT_FATAL(got >= 0);
        len += (size_t)got;
    }
    CU_ASSERT(len == strlen(text) && memcmp(out, text, len) == 0);
    ikv_model_free(m);
    unlink(path);
}

/* Replaces the (skip+1)-th GGUF string `from` (length-prefixed) in an
 * image by `to` of the same length; returns 0 if found. */
static int patch_string(uint8_t *img, size_t n, const char *from, const char *to, int skip)
{
    size_t len = strlen(from);
    for (size_t at = 0; at + 8 + len <= n; at++) {
        uint64_t l;
        memcpy(&l, img + at, 8);
        if (l == len && memcmp(img + at + 8, from, len) == 0 && skip-- == 0) {
            memcpy(img + at + 8, to, len);
            return 0;
        }
    }
    return -1;
}

/* Loads a fixture image after renaming one string in it. */
static int load_patched(const ref_options *o, const char *from, const char *to, int skip, char *err,
                        size_t errlen)
{
    gguf_writer *w = ref_writer(o, NULL);
    size_t n;
    uint8_t *img = gw_bytes(w, &n);
    CU_ASSERT_EQUAL_FATAL(patch_string(img, n, from, to, skip), 0);
    char path[256];
    ref_temp_path(path, sizeof path, "patched.gguf");
    FILE *f = fopen(path, "wb");
    CU_ASSERT_FATAL(f != NULL);
    fwrite(img, 1, n, f);
    fclose(f);
    int rc = load_file(path, err, errlen, NULL);
    unlink(path);
    free(img);
    gw_free(w);
    return rc;
}

static void test_unsupported_and_missing(void)
{
    char err[256];
    ref_options o = small_options();
    /* an optional tensor of an unsupported type is still refused by name */
    o.dim = 256;
    o.hidden_dim = 256;
    o.n_layers = 1;
    gguf_writer *w = ref_writer(&o, NULL);
    uint64_t ne[1] = {256};
    uint8_t raw[210] = {0};
    gw_tensor_raw(w, "rope_freqs.weight", GW_Q6_K, 1, ne, raw, sizeof raw);
    CU_ASSERT_EQUAL(load_writer(w, err, sizeof err), IKV_EUNSUPPORTED);
    CU_ASSERT(strstr(err, "tensor 'rope_freqs.weight' has type Q6_K, not supported yet") != NULL);
    gw_free(w);

    o = small_options();
    o.arch = "falcon";
    w = ref_writer(&o, NULL);
    CU_ASSERT_EQUAL(load_writer(w, err, sizeof err), IKV_EUNSUPPORTED);
    CU_ASSERT(strstr(err, "architecture 'falcon'") != NULL);
    gw_free(w);

    o = small_options();
    CU_ASSERT_EQUAL(load_patched(&o, "blk.1.ffn_down.weight", "blk.1.ffn_dowX.weight", 0, err, sizeof err), IKV_EFORMAT);
    CU_ASSERT(strstr(err, "tensor 'blk.1.ffn_down.weight' is missing") != NULL);
    CU_ASSERT_EQUAL(load_patched(&o, "token_embd.weight", "token_embX.weight", 0, err, sizeof err), IKV_EFORMAT);
    CU_ASSERT(strstr(err, "token_embd.weight") != NULL);
    CU_ASSERT_EQUAL(load_patched(&o, "general.architecture", "general.architecturX", 0, err, sizeof err), IKV_EFORMAT);
    CU_ASSERT(strstr(err, "general.architecture is missing") != NULL);
    CU_ASSERT_EQUAL(load_patched(&o, "llama.block_count", "llama.block_counX", 0, err, sizeof err), IKV_EFORMAT);
    CU_ASSERT(strstr(err, "llama.block_count is missing") != NULL);
    /* output.weight absent: the classifier is tied to the embeddings */
    char path[256];
    ref_temp_path(path, sizeof path, "tied.gguf");
    ikv_model *m;
    o.tied = 1;
    CU_ASSERT_EQUAL_FATAL(ref_build(&o, path, NULL, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(load_file(path, err, sizeof err, &m), IKV_OK);
    CU_ASSERT(ikv_model_info(m)->tied_classifier);
    ikv_model_free(m);
    unlink(path);
    /* tokenizer metadata that does not fit the model */
    o = small_options();
    o.vocab_size = 300;
    o.tokenizer = 1;
    /* the second "llama" string is tokenizer.ggml.model's */
    CU_ASSERT_EQUAL(load_patched(&o, "llama", "bert!", 1, err, sizeof err), IKV_EUNSUPPORTED);
    CU_ASSERT(strstr(err, "tokenizer model 'bert!'") != NULL);
    CU_ASSERT_EQUAL(load_patched(&o, "tokenizer.ggml.tokens", "tokenizer.ggml.tokenX", 0, err, sizeof err),
                    IKV_EFORMAT);
    CU_ASSERT(strstr(err, "tokenizer.ggml.tokens") != NULL);
}

/* A fixture model with one tensor's type id replaced (patched in place). */
static void test_unsupported_tensor_type(void)
{
    ref_options o = small_options();
    o.type = GW_F16; /* Q4_K needs half the bytes per weight of F16 at 256 per row... */
    o.dim = 256;
    o.hidden_dim = 512;
    o.n_heads = 4;
    o.n_kv_heads = 2;
    o.n_layers = 1;
    gguf_writer *w = ref_writer(&o, NULL);
    size_t n;
    uint8_t *img = gw_bytes(w, &n);
    ikv_gguf *g;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(ikv_gguf_parse(&g, img, n, "t", err, sizeof err), IKV_OK);
    const ikv_gguf_tensor *t = ikv_gguf_find_tensor(g, "blk.0.attn_q.weight");
    CU_ASSERT_FATAL(t != NULL);
    /* find its type field: the info record ends with type (u32) and offset (u64) */
    int64_t index = -1;
    for (int64_t i = 0; i < ikv_gguf_n_tensors(g); i++)
        if (ikv_gguf_tensor_at(g, i) == t)
            index = i;
    ikv_gguf_close(g);
    size_t info = gw_tensor_info_offset(w, (int)index);
    size_t type_at = info + 8 + strlen("blk.0.attn_q.weight") + 4 + 2 * 8;
    uint32_t old;
    memcpy(&old, img + type_at, 4);
    CU_ASSERT_EQUAL_FATAL(old, GW_F16);
    put32(img + type_at, GW_Q4_K); /* F16 [256 x 256] has room for Q4_K's 144 B / 256 */
    char path[256];
    ref_temp_path(path, sizeof path, "q4k.gguf");
    FILE *f = fopen(path, "wb");
    fwrite(img, 1, n, f);
    fclose(f);
    CU_ASSERT_EQUAL(load_file(path, err, sizeof err, NULL), IKV_EUNSUPPORTED);
    CU_ASSERT(strstr(err, "tensor 'blk.0.attn_q.weight' has type Q4_K, not supported yet") != NULL);
    CU_ASSERT(strncmp(err, path, strlen(path)) == 0);
    /* a shape that contradicts the metadata: make ne[1] 255 */
    put32(img + type_at, GW_F16);
    put64(img + info + 8 + strlen("blk.0.attn_q.weight") + 4 + 8, 255);
    f = fopen(path, "wb");
    fwrite(img, 1, n, f);
    fclose(f);
    CU_ASSERT_EQUAL(load_file(path, err, sizeof err, NULL), IKV_EFORMAT);
    CU_ASSERT(strstr(err, "blk.0.attn_q.weight") && strstr(err, "shape"));
    unlink(path);
    free(img);
    gw_free(w);
}

static void test_bad_metadata(void)
{
    char err[256];
    const struct {
        const char *key;
        uint32_t value;
        int status;
        const char *expect;
    } cases[] = {
        {"llama.block_count", 0, IKV_EFORMAT, "block_count"},
        {"llama.attention.head_count_kv", 3, IKV_EFORMAT, "head_count"},
        {"llama.embedding_length", 1u << 30, IKV_EFORMAT, "embedding_length"},
        {"llama.rope.dimension_count", 7, IKV_EFORMAT, "rope"},
        {"llama.rope.dimension_count", 64, IKV_EFORMAT, "rope"},
        {"llama.feed_forward_length", 63, IKV_EFORMAT, "ffn_gate.weight"},
        {"llama.vocab_size", 41, IKV_EFORMAT, "token_embd.weight"},
    };
    /* patch the fixture's value in place, or add the key it does not write */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ref_options o = small_options();
        o.arch = "llama";
        gguf_writer *w = ref_writer(&o, NULL);
        size_t n;
        uint8_t *img = gw_bytes(w, &n);
        /* patch the value of the key in place: keys are unique strings */
        size_t klen = strlen(cases[i].key);
        uint8_t *hit = NULL;
        for (size_t at = 0; at + 8 + klen + 8 <= n && !hit; at++) {
            uint64_t len;
            memcpy(&len, img + at, 8);
            if (len == klen && memcmp(img + at + 8, cases[i].key, klen) == 0)
                hit = img + at + 8 + klen;
        }
        if (hit) {
            uint32_t type;
            memcpy(&type, hit, 4);
            CU_ASSERT_EQUAL(type, GW_UINT32);
            put32(hit + 4, cases[i].value);
        } else {
            /* not written by the fixture (rope.dimension_count, vocab_size): append */
            gw_kv_u32(w, cases[i].key, cases[i].value);
            free(img);
            img = gw_bytes(w, &n);
        }
        char path[256];
        ref_temp_path(path, sizeof path, "meta.gguf");
        FILE *f = fopen(path, "wb");
        fwrite(img, 1, n, f);
        fclose(f);
        int rc = load_file(path, err, sizeof err, NULL);
        CU_ASSERT_EQUAL(rc, cases[i].status);
        if (!strstr(err, cases[i].expect)) {
            printf("\n    %s = %u: '%s' ", cases[i].key, cases[i].value, err);
            CU_FAIL("message");
        }
        unlink(path);
        free(img);
        gw_free(w);
    }
}

/* ---- llama2.c checkpoints ---- */

static void write_floats(FILE *f, const float *v, size_t n)
{
    CU_ASSERT_EQUAL(fwrite(v, sizeof *v, n, f), n);
}

/* Writes a reference model in run.c's layout. */
static void write_llama2c(const ref_model *m, const char *path, int shared, int seq_len)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_FATAL(f != NULL);
    int32_t h[7] = {m->D, m->F, m->L, m->H, m->G, shared ? m->V : -m->V, seq_len};
    fwrite(h, sizeof h, 1, f);
    size_t D = (size_t)m->D, F = (size_t)m->F, qd = (size_t)m->H * m->d, kvd = (size_t)m->G * m->d;
    write_floats(f, m->embd, (size_t)m->V * D);
    for (int l = 0; l < m->L; l++) write_floats(f, m->layers[l].attn_norm, D);
    for (int l = 0; l < m->L; l++) write_floats(f, m->layers[l].wq, qd * D);
    for (int l = 0; l < m->L; l++) write_floats(f, m->layers[l].wk, kvd * D);
    for (int l = 0; l < m->L; l++) write_floats(f, m->layers[l].wv, kvd * D);
    for (int l = 0; l < m->L; l++) write_floats(f, m->layers[l].wo, D * qd);
    for (int l = 0; l < m->L; l++) write_floats(f, m->layers[l].ffn_norm, D);
    for (int l = 0; l < m->L; l++) write_floats(f, m->layers[l].gate, F * D);
    for (int l = 0; l < m->L; l++) write_floats(f, m->layers[l].down, D * F);
    for (int l = 0; l < m->L; l++) write_floats(f, m->layers[l].up, F * D);
    write_floats(f, m->final_norm, D);
    float *junk = calloc((size_t)seq_len * m->d, sizeof *junk); /* old RoPE tables */
    write_floats(f, junk, (size_t)seq_len * m->d);
    free(junk);
    if (!shared)
        write_floats(f, m->out, (size_t)m->V * D);
    fclose(f);
}

static void test_llama2c_weights(void)
{
    for (int shared = 0; shared <= 1; shared++) {
        ref_options o = small_options();
        o.tied = shared;
        o.seed = 40 + shared;
        char gpath[256], path[256], err[256];
        ref_temp_path(gpath, sizeof gpath, "l2c.gguf");
        ref_temp_path(path, sizeof path, "model.bin");
        ref_model rm;
        CU_ASSERT_EQUAL_FATAL(ref_build(&o, gpath, &rm, NULL), 0);
        unlink(gpath);
        for (int l = 0; l < rm.L; l++) /* llama2.c has no biases, eps 1e-5 */
            CU_ASSERT_PTR_NULL(rm.layers[l].bq);
        write_llama2c(&rm, path, shared, 24);
        ikv_model *m;
        CU_ASSERT_EQUAL_FATAL(load_file(path, err, sizeof err, &m), IKV_OK);
        const ikv_model_details *i = ikv_model_info(m);
        CU_ASSERT_STRING_EQUAL(i->format, "llama2c");
        CU_ASSERT_EQUAL(i->tied_classifier, shared);
        CU_ASSERT_EQUAL(i->max_seq_len, 24);
        CU_ASSERT_EQUAL(i->vocab_size, rm.V);
        ikv_session *s;
        CU_ASSERT_EQUAL_FATAL(ikv_session_create(&s, m, 16, 2, err, sizeof err), IKV_OK);
        int32_t tokens[9] = {1, 5, 9, 33, 2, 0, 39, 7, 7};
        CU_ASSERT_EQUAL(ikv_session_prefill(s, tokens, 9), IKV_OK);
        ref_state rs;
        ref_state_init(&rs, &rm, 9);
        double ref[40];
        for (int t = 0; t < 9; t++)
            ref_step(&rs, tokens[t], t, ref);
        double max_ref, e = ref_max_diff(ikv_session_logits(s), ref, rm.V, &max_ref);
        CU_ASSERT(e < 2e-5 * fmax(1.0, max_ref));
        ref_state_free(&rs);
        ikv_session_free(s);
        ikv_model_free(m);

        /* truncated anywhere: one clear error naming the file */
        struct stat st;
        stat(path, &st);
        for (off_t cut = 0; cut < st.st_size; cut += st.st_size / 37 + 1) {
            CU_ASSERT_EQUAL_FATAL(truncate(path, cut), 0);
            int rc = load_file(path, err, sizeof err, NULL);
            CU_ASSERT_EQUAL(rc, IKV_EFORMAT);
            CU_ASSERT(strncmp(err, path, strlen(path)) == 0);
        }
        unlink(path);
        ref_free(&rm);
    }
}

static void test_llama2c_headers(void)
{
    char path[256], err[256];
    ref_temp_path(path, sizeof path, "hdr.bin");
    const struct {
        int32_t h[7];
        int status;
        const char *expect;
    } cases[] = {
        {{0, 64, 1, 2, 1, 32, 16}, IKV_EFORMAT, "dim = 0"},
        {{64, 64, 1, 2, 1, INT32_MIN, 16}, IKV_EFORMAT, "vocab_size"},
        {{64, -5, 1, 2, 1, 32, 16}, IKV_EFORMAT, "hidden_dim"},
        {{64, 64, 1, 3, 1, 32, 16}, IKV_EFORMAT, "heads"},
        {{64, 64, 1, 4, 3, 32, 16}, IKV_EFORMAT, "heads"},
        {{64, 64, 1, 64, 64, 32, 16}, IKV_EFORMAT, "heads"}, /* odd head size 1 */
        {{1 << 16, 1 << 20, 1024, 1024, 1024, 1 << 22, 1 << 24}, IKV_EFORMAT, "truncated"},
        {{64, 64, 2, 4, 2, 32, 16}, IKV_EFORMAT, "needs"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        FILE *f = fopen(path, "wb");
        fwrite(cases[i].h, sizeof cases[i].h, 1, f);
        fwrite("extra bytes", 1, 11, f);
        fclose(f);
        CU_ASSERT_EQUAL(load_file(path, err, sizeof err, NULL), cases[i].status);
        if (!strstr(err, cases[i].expect)) {
            printf("\n    case %zu: '%s' ", i, err);
            CU_FAIL("message");
        }
    }
    FILE *f = fopen(path, "wb");
    fwrite("ak42\1\0\0\0", 1, 8, f);
    fwrite(cases[0].h, sizeof cases[0].h, 1, f);
    fclose(f);
    CU_ASSERT_EQUAL(load_file(path, err, sizeof err, NULL), IKV_EUNSUPPORTED);
    CU_ASSERT(strstr(err, "ak42") != NULL);
    f = fopen(path, "wb");
    fclose(f);
    CU_ASSERT_EQUAL(load_file(path, err, sizeof err, NULL), IKV_EFORMAT);
    CU_ASSERT(strstr(err, "0 bytes") != NULL);
    unlink(path);
    CU_ASSERT_EQUAL(load_file(path, err, sizeof err, NULL), IKV_EIO);
    CU_ASSERT(strstr(err, "No such file") != NULL);
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    CU_ASSERT_EQUAL(load_file(dir, err, sizeof err, NULL), IKV_EIO);
    CU_ASSERT(strstr(err, "not a regular file") != NULL);
}

static void test_llama2c_tokenizer_beside(void)
{
    const char *models = ikv_test_models_dir();
    if (!models) {
        ikv_test_skip("../shared/models is absent");
        return;
    }
    char dir[256], model[300], tok[300], src[8192], err[512], abs_models[4096];
    /* symlinks from a temporary directory need an absolute target */
    if (!realpath(models, abs_models)) {
        CU_FAIL("realpath");
        return;
    }
    models = abs_models;
    ref_temp_path(dir, sizeof dir, "dir");
    CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
    snprintf(model, sizeof model, "%s/model.bin", dir);
    snprintf(tok, sizeof tok, "%s/tokenizer.bin", dir);
    snprintf(src, sizeof src, "%s/stories260K.bin", models);
    CU_ASSERT_EQUAL_FATAL(symlink(src, model), 0);
    ikv_model *m;
    CU_ASSERT_EQUAL_FATAL(load_file(model, err, sizeof err, &m), IKV_OK);
    CU_ASSERT_PTR_NULL(ikv_model_tokenizer(m)); /* none beside it: token ids only */
    ikv_model_free(m);
    snprintf(src, sizeof src, "%s/tok512.bin", models);
    CU_ASSERT_EQUAL_FATAL(symlink(src, tok), 0);
    CU_ASSERT_EQUAL_FATAL(load_file(model, err, sizeof err, &m), IKV_OK);
    CU_ASSERT_PTR_NOT_NULL(ikv_model_tokenizer(m));
    CU_ASSERT_EQUAL(ikv_model_info(m)->bos_id, 1);
    ikv_model_free(m);
    /* an explicit tokenizer that is not one */
    CU_ASSERT_NOT_EQUAL(ikv_model_load(&m, model, model, err, sizeof err), IKV_OK);
    CU_ASSERT_PTR_NULL(m);
    unlink(tok);
    unlink(model);
    rmdir(dir);
}

static void add_suites(void)
{
    static const ikv_test_case reader[] = {
        {"every metadata value type", test_value_types},
        {"tensor infos and alignment", test_tensor_infos_and_alignment},
        {"versions and magic", test_versions_and_magic},
        {"truncated at every byte", test_truncated_everywhere},
        {"hostile metadata", test_hostile_metadata},
        {"hostile tensor infos", test_hostile_tensors},
        {NULL, NULL}};
    static const ikv_test_case loader[] = {
        {"model info and SHA-256", test_info_and_hash},
        {"tokenizer from GGUF metadata", test_gguf_tokenizer},
        {"unsupported architecture and optional tensor", test_unsupported_and_missing},
        {"unsupported tensor type and wrong shape", test_unsupported_tensor_type},
        {"metadata out of range", test_bad_metadata},
        {"llama2.c weights, shared and unshared classifier", test_llama2c_weights},
        {"llama2.c corrupt headers and files", test_llama2c_headers},
        {"llama2.c tokenizer beside the model", test_llama2c_tokenizer_beside},
        {NULL, NULL}};
    ikv_test_suite("gguf reader", reader);
    ikv_test_suite("model loader", loader);
}

int main(int argc, char **argv)
{
    return ikv_test_main(argc, argv, add_suites);
}
