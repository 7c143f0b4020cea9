/*
 * Tests that need the HDF5 API itself: our binary16 conversion against
 * HDF5's own, a half-precision trace written by HDF5's conversion (as
 * another producer would), and foreign, hostile, truncated and corrupt
 * files forged from a valid trace, each of which the reader must refuse
 * with a message naming the file and the problem.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>

#include "runner.h"
#include "sync_fault.h"
#include "trace/internal.h"
#include "trace_synth.h"

static char tmpdir[256];
static char good[512]; /* a valid default-signals trace, T = 24 */
enum { GOOD_T = 24 };

static void path_in_tmp(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", tmpdir, name);
}

static int write_good(const char *path, ikv_trace_dtype dtype)
{
    ikv_trace_meta meta = ikv_synth_small_meta();
    ikv_trace_spec spec = ikv_trace_writer_default_spec();
    spec.dtype = dtype;
    spec.chunk_tokens = 8;
    ikv_synth syn;
    if (ikv_synth_init(&syn, &meta, NULL, 0, GOOD_T, spec.topk, spec.entropy_k, 3, 1) != 0)
        return -1;
    char err[1024];
    ikv_trace_writer *w;
    int rc = ikv_trace_writer_create(&w, path, &meta, &spec, err, sizeof err);
    for (int t = 0; rc == IKV_TRACE_OK && t < GOOD_T; t++) {
        ikv_trace_row row;
        ikv_synth_row(&syn, t, &row);
        rc = ikv_trace_write_position(w, &row);
    }
    if (rc == IKV_TRACE_OK)
        rc = ikv_trace_writer_close(w, 1, err, sizeof err);
    ikv_synth_free(&syn);
    return rc;
}

static int copy_file(const char *from, const char *to, long limit)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    if (!in || !out) {
        if (in) fclose(in);
        if (out) fclose(out);
        return -1;
    }
    char buf[65536];
    long done = 0;
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
        if (limit >= 0 && done + (long)n > limit)
            n = (size_t)(limit - done);
        fwrite(buf, 1, n, out);
        done += (long)n;
        if (limit >= 0 && done >= limit)
            break;
    }
    fclose(in);
    return fclose(out);
}

static long file_size(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

/* Expects the reader to refuse `path` with EFORMAT and a message that
 * names the file and contains `needle`. */
static void expect_refused(const char *path, const char *needle)
{
    char err[1024] = "";
    ikv_trace_reader *r = NULL;
    int rc = ikv_trace_open(&r, path, err, sizeof err);
    CU_ASSERT_EQUAL(rc, IKV_TRACE_EFORMAT);
    CU_ASSERT_PTR_NULL(r);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
    if (!strstr(err, needle))
        printf("\n    message '%s' lacks '%s' ", err, needle);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, needle));
    CU_ASSERT_PTR_NULL(strchr(err, '\n'));
    if (r)
        ikv_trace_close(r);
    unlink(path);
}

/* A copy of the good trace opened read-write for forging. */
static hid_t forge(char *path, size_t len, const char *name)
{
    path_in_tmp(path, len, name);
    CU_ASSERT_EQUAL_FATAL(copy_file(good, path, -1), 0);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    return f;
}

static void set_int(hid_t obj, const char *name, long long v, hid_t type)
{
    if (H5Aexists(obj, name) > 0)
        H5Adelete(obj, name);
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, type, s, H5P_DEFAULT, H5P_DEFAULT);
    CU_ASSERT(H5Awrite(a, H5T_NATIVE_LLONG, &v) >= 0);
    H5Aclose(a);
    H5Sclose(s);
}

static void set_string(hid_t obj, const char *name, const char *v)
{
    if (H5Aexists(obj, name) > 0)
        H5Adelete(obj, name);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(v) + 1);
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    CU_ASSERT(H5Awrite(a, t, v) >= 0);
    H5Aclose(a);
    H5Sclose(s);
    H5Tclose(t);
}

static void set_ints(hid_t obj, const char *name, const int *v, int n)
{
    if (H5Aexists(obj, name) > 0)
        H5Adelete(obj, name);
    hsize_t dims[1] = {(hsize_t)n};
    hid_t s = H5Screate_simple(1, dims, NULL);
    hid_t a = H5Acreate2(obj, name, H5T_STD_I32LE, s, H5P_DEFAULT, H5P_DEFAULT);
    CU_ASSERT(H5Awrite(a, H5T_NATIVE_INT, v) >= 0);
    H5Aclose(a);
    H5Sclose(s);
}

/* Replaces a dataset with a zero-filled one of another shape/type. */
static void replace_dataset(hid_t f, const char *path, int rank, const hsize_t *dims, hid_t type)
{
    CU_ASSERT(H5Ldelete(f, path, H5P_DEFAULT) >= 0);
    hid_t s = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(f, path, type, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CU_ASSERT(d >= 0);
    H5Dclose(d);
    H5Sclose(s);
}

/* ---- binary16 ---- */

static double half_reference(uint16_t h)
{
    int sign = h >> 15, exp = (h >> 10) & 31, man = h & 1023;
    double v = exp == 0 ? ldexp(man, -24) : ldexp(1024 + man, exp - 25);
    if (exp == 31)
        v = man ? NAN : INFINITY;
    return sign ? -v : v;
}

static void test_half_widening(void)
{
    long bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        double want = half_reference((uint16_t)h);
        float got = ikv_f16_to_f32((uint16_t)h);
        if (isnan(want) ? !isnan(got) : (double)got != want)
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
}

static void test_half_narrowing(void)
{
    /* Every half round-trips through float. */
    long bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        if (((h >> 10) & 31) == 31 && (h & 1023))
            continue; /* NaN: payload may change, checked below */
        bad += ikv_f32_to_f16(ikv_f16_to_f32((uint16_t)h)) != h;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(isnan(ikv_f16_to_f32(ikv_f32_to_f16(NAN))));
    /* Nearest, ties to even: compare with both neighbours of the result. */
    uint64_t x = 12345;
    long not_nearest = 0;
    for (int i = 0; i < 200000; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t bits = (uint32_t)(x >> 32);
        /* Concentrate on the half range (|x| < 2^17) but include all. */
        if (i % 4 != 0)
            bits = (bits & 0x80000000u) | (0x33000000u + bits % (0x48000000u - 0x33000000u));
        float f;
        memcpy(&f, &bits, sizeof f);
        if (isnan(f))
            continue;
        uint16_t h = ikv_f32_to_f16(f);
        double got = half_reference(h);
        double err = fabs(got - (double)f);
        if (isinf(got)) {
            /* Overflow only past the largest half plus half an ulp. */
            not_nearest += fabs((double)f) < 65520.0;
            continue;
        }
        uint16_t up = (uint16_t)(h + 1), down = (uint16_t)(h - 1);
        double e_up = ((up >> 10) & 31) == 31 ? INFINITY : fabs(half_reference(up) - (double)f);
        double e_down = (h & 0x7fff) == 0 ? INFINITY : fabs(half_reference(down) - (double)f);
        if (err > e_up || err > e_down)
            not_nearest++;
        if ((err == e_up || err == e_down) && (h & 1))
            not_nearest++; /* a tie must go to the even mantissa */
    }
    CU_ASSERT_EQUAL(not_nearest, 0);
}

static void test_half_matches_hdf5(void)
{
    enum { N = 100000 };
    float *src = malloc(sizeof(float) * N);
    float *conv = malloc(sizeof(float) * N); /* HDF5 converts in place */
    CU_ASSERT_PTR_NOT_NULL_FATAL(src);
    CU_ASSERT_PTR_NOT_NULL_FATAL(conv);
    uint64_t x = 99;
    static const float special[] = {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 65519.0f, 65520.0f,
                                    1e6f, -1e6f, 6.1035156e-05f, 5.9604645e-08f, 2.9802322e-08f,
                                    2.9802326e-08f, 1e-10f, INFINITY, -INFINITY};
    int ns = (int)(sizeof special / sizeof special[0]);
    for (int i = 0; i < N; i++) {
        if (i < ns) {
            src[i] = special[i];
            continue;
        }
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t bits = (uint32_t)(x >> 32);
        bits = (bits & 0x80000000u) | (0x33000000u + bits % (0x47800000u - 0x33000000u));
        memcpy(&src[i], &bits, sizeof bits);
    }
    memcpy(conv, src, sizeof(float) * N);
    hid_t half = ikv_h5_half_native_type();
    CU_ASSERT_FATAL(half >= 0);
    CU_ASSERT_FATAL(H5Tconvert(H5T_NATIVE_FLOAT, half, N, conv, NULL, H5P_DEFAULT) >= 0);
    const uint16_t *theirs = (const uint16_t *)(const void *)conv;
    /* HDF5 1.10's soft conversion is itself wrong in places: a rounding
     * carry into the exponent is lost (-7.9987 becomes -4, -0.9999 becomes
     * -0.5), ties round away from zero, subnormals are off by ulps, and
     * overflow clamps to 65504. So: where the two differ, ours must be the
     * nearest half (ties to even) and strictly better or the even tie. */
    long differ = 0, ours_worse = 0;
    for (int i = 0; i < N; i++) {
        uint16_t ours = ikv_f32_to_f16(src[i]);
        if (ours == theirs[i])
            continue;
        differ++;
        double xv = (double)src[i];
        double e_ours = fabs(half_reference(ours) - xv);
        double e_theirs = fabs(half_reference(theirs[i]) - xv);
        if (isinf(half_reference(ours)))
            ours_worse += fabs(xv) < 65520.0; /* IEEE: overflow from 65520 on */
        else if (e_ours > e_theirs || (e_ours == e_theirs && (ours & 1)))
            ours_worse++;
    }
    printf("\n    %ld of %d values differ from HDF5's conversion, none in HDF5's favour ",
           differ, N);
    CU_ASSERT(differ < N / 20); /* the oracle agrees almost everywhere */
    CU_ASSERT_EQUAL(ours_worse, 0);
    H5Tclose(half);
    free(src);
    free(conv);
}

/* An f16 trace whose halves HDF5 converted (another producer): our reader
 * must widen them to the same floats as HDF5 does. */
static void test_half_from_hdf5(void)
{
    char path[512], err[1024];
    hid_t f = forge(path, sizeof path, "f16-other.h5");
    hsize_t dims[4] = {5, 8, GOOD_T, 8};
    size_t n = 5 * 8 * GOOD_T * 8;
    float *q = malloc(sizeof(float) * n), *back = malloc(sizeof(float) * n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    for (size_t i = 0; i < n; i++)
        q[i] = 100.0f * ikv_synth_value(5, SYN_Q, (int64_t)i, 0, 0, 0);
    hid_t half = ikv_h5_half_file_type();
    replace_dataset(f, "/qkv/q", 4, dims, half);
    hid_t d = H5Dopen2(f, "/qkv/q", H5P_DEFAULT);
    CU_ASSERT(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, q) >= 0);
    CU_ASSERT(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) >= 0);
    H5Dclose(d);
    H5Tclose(half);
    H5Fclose(f);
    ikv_trace_reader *r;
    CU_ASSERT_EQUAL_FATAL(ikv_trace_open(&r, path, err, sizeof err), IKV_TRACE_OK);
    float *layer = malloc(ikv_trace_read_bytes(r, "qkv/q"));
    long bad = 0;
    for (int l = 0; l < 5; l++) {
        CU_ASSERT_EQUAL(ikv_trace_read_layer(r, "qkv/q", l, layer), IKV_TRACE_OK);
        bad += memcmp(layer, back + (size_t)l * 8 * GOOD_T * 8, ikv_trace_read_bytes(r, "qkv/q")) != 0;
    }
    CU_ASSERT_EQUAL(bad, 0);
    free(layer);
    free(q);
    free(back);
    ikv_trace_close(r);
    unlink(path);
}

/* ---- foreign and hostile files ---- */

static void test_foreign(void)
{
    char path[512];
    path_in_tmp(path, sizeof path, "plain.h5");
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[1] = {4};
    hid_t s = H5Screate_simple(1, dims, NULL);
    hid_t d = H5Dcreate2(f, "/data", H5T_STD_I32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(d);
    H5Sclose(s);
    H5Fclose(f);
    expect_refused(path, "not an infokv trace");

    f = forge(path, sizeof path, "other-format.h5");
    set_string(f, "format", "zarr-like");
    H5Fclose(f);
    expect_refused(path, "format is 'zarr-like'");

    f = forge(path, sizeof path, "version2.h5");
    set_int(f, "version", 2, H5T_STD_I32LE);
    H5Fclose(f);
    expect_refused(path, "unsupported trace version 2");

    f = forge(path, sizeof path, "version-string.h5");
    set_string(f, "version", "1");
    H5Fclose(f);
    expect_refused(path, "'version' is not an integer");

    /* A fixed-length (not variable-length) format string is still read. */
    f = forge(path, sizeof path, "fixed-format.h5");
    set_string(f, "format", "infokv-trace");
    H5Fclose(f);
    char err[1024];
    ikv_trace_reader *r;
    CU_ASSERT_EQUAL(ikv_trace_open(&r, path, err, sizeof err), IKV_TRACE_OK);
    if (r)
        ikv_trace_close(r);
    unlink(path);
}

static void test_hostile_attributes(void)
{
    char path[512];
    hid_t f = forge(path, sizeof path, "no-heads.h5");
    H5Adelete(f, "n_heads");
    H5Fclose(f);
    expect_refused(path, "'n_heads' is missing");

    f = forge(path, sizeof path, "huge-heads.h5");
    set_int(f, "n_heads", 1LL << 30, H5T_STD_I32LE);
    H5Fclose(f);
    expect_refused(path, "n_heads = 1073741824 out of range");

    f = forge(path, sizeof path, "huge-layers.h5");
    set_int(f, "n_layers", 1LL << 40, H5T_STD_I64LE);
    H5Fclose(f);
    expect_refused(path, "'n_layers' = 1099511627776 out of range");

    f = forge(path, sizeof path, "neg-tokens.h5");
    set_int(f, "n_tokens", -1, H5T_STD_I32LE);
    H5Fclose(f);
    expect_refused(path, "n_tokens = -1");

    f = forge(path, sizeof path, "more-tokens.h5");
    set_int(f, "n_tokens", GOOD_T + 1, H5T_STD_I32LE);
    H5Fclose(f);
    expect_refused(path, "/tokens has shape [24], expected [>=25]");

    f = forge(path, sizeof path, "vocab.h5");
    set_int(f, "vocab_size", 1LL << 28, H5T_STD_I32LE);
    H5Fclose(f);
    expect_refused(path, "vocab_size");

    f = forge(path, sizeof path, "kv-heads.h5");
    set_int(f, "n_kv_heads", 3, H5T_STD_I32LE);
    H5Fclose(f);
    expect_refused(path, "multiple of n_kv_heads");

    static const int dup[2] = {0, 0};
    f = forge(path, sizeof path, "layers-dup.h5");
    set_ints(f, "layers", dup, 2);
    H5Fclose(f);
    expect_refused(path, "ascending");

    int many[100];
    for (int i = 0; i < 100; i++)
        many[i] = i;
    f = forge(path, sizeof path, "layers-many.h5");
    set_ints(f, "layers", many, 100);
    H5Fclose(f);
    expect_refused(path, "at most 5");

    f = forge(path, sizeof path, "dtype.h5");
    set_string(f, "dtype", "bf16");
    H5Fclose(f);
    expect_refused(path, "'dtype' is 'bf16'");

    f = forge(path, sizeof path, "theta.h5");
    set_string(f, "rope_theta", "big");
    H5Fclose(f);
    expect_refused(path, "'rope_theta' is not a number");
    unlink(path);
}

static void test_hostile_datasets(void)
{
    char path[512];
    hid_t f = forge(path, sizeof path, "q-shape.h5");
    hsize_t qd[4] = {5, 7, GOOD_T, 8};
    replace_dataset(f, "/qkv/q", 4, qd, H5T_IEEE_F32LE);
    H5Fclose(f);
    expect_refused(path, "/qkv/q has shape [5,7,24,8], expected [5,8,>=24,8]");

    f = forge(path, sizeof path, "q-rank.h5");
    hsize_t flat[1] = {100};
    replace_dataset(f, "/qkv/q", 1, flat, H5T_IEEE_F32LE);
    H5Fclose(f);
    expect_refused(path, "/qkv/q has rank 1, expected 4");

    f = forge(path, sizeof path, "tokens-float.h5");
    hsize_t td[1] = {GOOD_T};
    replace_dataset(f, "/tokens", 1, td, H5T_IEEE_F32LE);
    H5Fclose(f);
    expect_refused(path, "/tokens should hold integers");

    f = forge(path, sizeof path, "q-int.h5");
    hsize_t qd2[4] = {5, 8, GOOD_T, 8};
    replace_dataset(f, "/qkv/q", 4, qd2, H5T_STD_I32LE);
    H5Fclose(f);
    expect_refused(path, "/qkv/q should hold floating-point");

    f = forge(path, sizeof path, "q-group.h5");
    H5Ldelete(f, "/qkv/q", H5P_DEFAULT);
    hid_t g = H5Gcreate2(f, "/qkv/q", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(g);
    H5Fclose(f);
    expect_refused(path, "/qkv/q is not a dataset");

    f = forge(path, sizeof path, "no-tokens.h5");
    H5Ldelete(f, "/tokens", H5P_DEFAULT);
    H5Fclose(f);
    expect_refused(path, "no /tokens");

    f = forge(path, sizeof path, "topk-mismatch.h5");
    hsize_t kd[2] = {GOOD_T, 7};
    replace_dataset(f, "/logits/topk_logprobs", 2, kd, H5T_IEEE_F32LE);
    H5Fclose(f);
    expect_refused(path, "/logits/topk_logprobs has shape [24,7], expected [>=24,20]");

    /* A huge top-k width is bounded by vocab_size before anyone allocates. */
    f = forge(path, sizeof path, "topk-huge.h5");
    hsize_t kh[2] = {GOOD_T, 1u << 20};
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hsize_t chunk[2] = {1, 1024};
    H5Pset_chunk(dcpl, 2, chunk);
    H5Ldelete(f, "/logits/topk_ids", H5P_DEFAULT);
    hid_t s = H5Screate_simple(2, kh, NULL);
    hid_t d = H5Dcreate2(f, "/logits/topk_ids", H5T_STD_I32LE, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Dclose(d);
    H5Sclose(s);
    H5Pclose(dcpl);
    H5Fclose(f);
    expect_refused(path, "top-k width 1048576");

    /* Chunks of a gigabyte: HDF5 would allocate one per read. */
    f = forge(path, sizeof path, "huge-chunks.h5");
    H5Ldelete(f, "/qkv/q", H5P_DEFAULT);
    hsize_t qdims[4] = {5, 8, GOOD_T, 8}, qmax[4] = {5, 8, H5S_UNLIMITED, 8};
    hsize_t qchunk[4] = {1, 8, 1u << 22, 8};
    dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 4, qchunk);
    s = H5Screate_simple(4, qdims, qmax);
    d = H5Dcreate2(f, "/qkv/q", H5T_IEEE_F32LE, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    CU_ASSERT(d >= 0);
    H5Dclose(d);
    H5Sclose(s);
    H5Pclose(dcpl);
    H5Fclose(f);
    expect_refused(path, "/qkv/q has chunks of 1073741824 bytes");
    unlink(path);
}

static void test_truncated(void)
{
    char path[512];
    path_in_tmp(path, sizeof path, "truncated.h5");
    long size = file_size(good);
    CU_ASSERT_FATAL(size > 4096);
    long cuts[] = {0, 7, 512, 2048, size / 3, size / 2, size - 4096, size - 100, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        CU_ASSERT_EQUAL_FATAL(copy_file(good, path, cuts[i]), 0);
        char err[1024] = "";
        ikv_trace_reader *r = NULL;
        int rc = ikv_trace_open(&r, path, err, sizeof err);
        if (rc == IKV_TRACE_OK)
            printf("\n    truncated at %ld of %ld bytes: opened ", cuts[i], size);
        CU_ASSERT_EQUAL(rc, IKV_TRACE_EFORMAT);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
        if (r)
            ikv_trace_close(r);
    }
    unlink(path);
}

static void test_corrupt_chunk(void)
{
    char path[512], err[1024];
    hid_t f = forge(path, sizeof path, "corrupt.h5");
    /* Find the bytes of the first stored chunk of /qkv/q. */
    hid_t d = H5Dopen2(f, "/qkv/q", H5P_DEFAULT);
    hsize_t offset[4];
    unsigned mask;
    haddr_t addr = 0;
    hsize_t size = 0;
    hid_t space = H5Dget_space(d);
    CU_ASSERT_FATAL(H5Dget_chunk_info(d, space, 0, offset, &mask, &addr, &size) >= 0);
    H5Sclose(space);
    CU_ASSERT_FATAL(size > 16);
    int layer = (int)offset[0];
    H5Dclose(d);
    H5Fclose(f);
    FILE *fp = fopen(path, "r+b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    unsigned char junk[16];
    memset(junk, 0xA5, sizeof junk);
    fseek(fp, (long)addr, SEEK_SET);
    fwrite(junk, 1, sizeof junk, fp);
    fclose(fp);

    ikv_trace_reader *r;
    CU_ASSERT_EQUAL_FATAL(ikv_trace_open(&r, path, err, sizeof err), IKV_TRACE_OK);
    float *buf = malloc(ikv_trace_read_bytes(r, "qkv/q"));
    CU_ASSERT_EQUAL(ikv_trace_read_layer(r, "qkv/q", layer, buf), IKV_TRACE_EFORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(ikv_trace_reader_error(r), path));
    CU_ASSERT_PTR_NOT_NULL(strstr(ikv_trace_reader_error(r), "/qkv/q layer slot"));
    /* The other layers are intact. */
    CU_ASSERT_EQUAL(ikv_trace_read_layer(r, "qkv/q", (layer + 1) % 5, buf), IKV_TRACE_OK);
    free(buf);
    ikv_trace_close(r);
    unlink(path);
}

/* A global heap object of index 0 and size 0 makes HDF5 1.10 loop forever
 * reading a string attribute: the reader must refuse the file first. The
 * file's own collection is edited: its first object becomes such a one, and
 * (second case) an object whose size runs past the collection. */
static void test_global_heap_stall(void)
{
    char path[512];
    path_in_tmp(path, sizeof path, "heap.h5");
    long size = file_size(good);
    CU_ASSERT_EQUAL_FATAL(copy_file(good, path, size), 0);
    FILE *fp = fopen(path, "r+b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    unsigned char *bytes = malloc((size_t)size);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bytes);
    CU_ASSERT_EQUAL_FATAL(fread(bytes, 1, (size_t)size, fp), (size_t)size);
    long at = -1;
    for (long i = 0; i + 4 <= size && at < 0; i++)
        if (!memcmp(bytes + i, "GCOL", 4))
            at = i;
    CU_ASSERT_FATAL(at >= 0); /* our string attributes live in the global heap */
    free(bytes);
    for (int variant = 0; variant < 2; variant++) {
        /* the first object: index, refs, reserved, size (8 bytes) */
        unsigned char object[16] = {0};
        object[0] = variant ? 1 : 0;
        if (variant)
            object[14] = 0x10; /* 2^48 bytes: past the collection */
        fseek(fp, at + 16, SEEK_SET);
        CU_ASSERT_EQUAL_FATAL(fwrite(object, 1, sizeof object, fp), sizeof object);
        fflush(fp);
        char err[1024] = "";
        ikv_trace_reader *r = NULL;
        CU_ASSERT_EQUAL(ikv_trace_open(&r, path, err, sizeof err), IKV_TRACE_EFORMAT);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "corrupt global heap"));
        if (r)
            ikv_trace_close(r);
    }
    fclose(fp);
    unlink(path);
}

/* ---- the band a capture ends on ---- */

/* Values of /qkv/q in the trace at path that differ from the T
 * positions of syn (-1 if it does not open). */
static long q_mismatches(const char *path, const ikv_trace_meta *meta, const ikv_synth *syn, int T)
{
    char err[1024];
    ikv_trace_reader *r;
    if (ikv_trace_open(&r, path, err, sizeof err) != IKV_TRACE_OK) {
        printf("\n    %s ", err);
        return -1;
    }
    const int L = meta->n_layers, H = meta->n_heads, hd = meta->head_dim;
    float *back = malloc(ikv_trace_read_bytes(r, "qkv/q")); /* [H][T][d] */
    long bad = back ? 0 : -1;
    for (int l = 0; back && l < L; l++) {
        bad += ikv_trace_read_layer(r, "qkv/q", l, back) != IKV_TRACE_OK;
        for (int t = 0; t < T; t++)
            for (int h = 0; h < H; h++)
                for (int c = 0; c < hd; c++)
                    bad += back[((size_t)h * T + t) * hd + c] != syn->q[(((size_t)t * L + l) * H + h) * hd + c];
    }
    free(back);
    ikv_trace_close(r);
    return bad;
}

/* Writes T positions of the default signals, then checks in HDF5 that
 * every stored chunk of `dset` (T along axis t_axis) went through shuffle
 * and deflate, except those of the last band when it holds more than
 * half a chunk length, stored unfiltered; and that q reads back exactly.
 * Returns the chunk length along T, or -1. */
static int check_tail(int T, const char *dset, int t_axis)
{
    char path[512], err[1024];
    path_in_tmp(path, sizeof path, "tail.h5");
    ikv_trace_meta meta = ikv_synth_small_meta();
    ikv_trace_spec spec = ikv_trace_writer_default_spec();
    ikv_synth syn;
    CU_ASSERT_FATAL(ikv_synth_init(&syn, &meta, NULL, 0, T, spec.topk, spec.entropy_k, 5, 0) == 0);
    ikv_trace_writer *w;
    CU_ASSERT_EQUAL_FATAL(ikv_trace_writer_create(&w, path, &meta, &spec, err, sizeof err), IKV_TRACE_OK);
    for (int t = 0; t < T; t++) {
        ikv_trace_row row;
        ikv_synth_row(&syn, t, &row);
        CU_ASSERT_EQUAL_FATAL(ikv_trace_write_position(w, &row), IKV_TRACE_OK);
    }
    CU_ASSERT_EQUAL_FATAL(ikv_trace_writer_close(w, 1, err, sizeof err), IKV_TRACE_OK);

    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, dset, H5P_DEFAULT);
    hid_t dcpl = H5Dget_create_plist(d), space = H5Dget_space(d);
    hsize_t chunk[4], n_chunks = 0;
    CU_ASSERT_FATAL(H5Pget_chunk(dcpl, 4, chunk) > t_axis);
    CU_ASSERT_EQUAL(H5Pget_nfilters(dcpl), 2); /* shuffle, deflate */
    CU_ASSERT_FATAL(H5Dget_num_chunks(d, space, &n_chunks) >= 0);
    const hsize_t last_band = (hsize_t)(T - 1) / chunk[t_axis] * chunk[t_axis];
    const int tail_raw = 2 * ((hsize_t)T - last_band) > chunk[t_axis];
    int filtered = 0, raw = 0, wrong = 0;
    for (hsize_t i = 0; i < n_chunks; i++) {
        hsize_t offset[4];
        unsigned mask = 99;
        haddr_t addr;
        hsize_t size;
        CU_ASSERT_FATAL(H5Dget_chunk_info(d, space, i, offset, &mask, &addr, &size) >= 0);
        const int unfiltered = offset[t_axis] >= last_band && tail_raw;
        wrong += mask != (unfiltered ? 0x3u : 0u); /* bits 0, 1: shuffle, deflate skipped */
        raw += unfiltered;
        filtered += !unfiltered;
    }
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT_EQUAL(raw > 0, tail_raw);
    CU_ASSERT_EQUAL(filtered > 0, last_band > 0 || !tail_raw);
    H5Sclose(space);
    H5Pclose(dcpl);
    H5Dclose(d);
    H5Fclose(f);

    CU_ASSERT_EQUAL(q_mismatches(path, &meta, &syn, T), 0);
    ikv_synth_free(&syn);
    unlink(path);
    return (int)chunk[t_axis];
}

/* The writer hands a full band to its compressor only when the next
 * position arrives; at close, a last band over half full is stored
 * unfiltered (no wait for its compression), a smaller one compressed
 * (its zero padding would cost more than it saves). Endings: inside a
 * band below and above half, exactly on a band's end, inside the first
 * band. */
static void test_raw_tail(void)
{
    const int cq = check_tail(150, "/qkv/q", 2);
    CU_ASSERT_FATAL(cq > 2 && 2 * cq <= 4096);
    check_tail(2 * cq, "/qkv/q", 2);
    check_tail(cq + cq / 2 - 1, "/qkv/q", 2);
    check_tail(cq + cq / 2 + 1, "/qkv/q", 2);
    check_tail(cq - 1, "/qkv/q", 2);
    const int ce = check_tail(150, "/logits/entropy", 0);
    CU_ASSERT_FATAL(ce > 1 && 2 * ce <= 8192);
    check_tail(2 * ce, "/logits/entropy", 0);
}

/* Writes N positions, rows 0..T-1 of syn over and over, and closes the
 * trace: IKV_TRACE_OK, or the first failure (err says why). */
static int write_cycled(const char *path, const ikv_trace_meta *meta, const ikv_trace_spec *spec,
                        ikv_synth *syn, int T, int N, char *err, size_t errlen)
{
    ikv_trace_writer *w = NULL; /* stays NULL if create fails */
    int rc = ikv_trace_writer_create(&w, path, meta, spec, err, errlen);
    for (int n = 0; n < N && rc == IKV_TRACE_OK; n++) {
        ikv_trace_row row;
        ikv_synth_row(syn, n % T, &row);
        rc = ikv_trace_write_position(w, &row);
    }
    if (rc == IKV_TRACE_OK)
        return ikv_trace_writer_close(w, 1, err, errlen);
    if (w) {
        snprintf(err, errlen, "%s", ikv_trace_writer_error(w));
        ikv_trace_writer_abort(w);
    }
    return rc;
}

/* A durable trace's sync that fails while the capture runs fails close,
 * with a message that says so, and leaves no file under the final name:
 * close's own fsync would not see that error again. */
static void test_failed_sync(void)
{
    hbool_t safe = 0;
    if (H5is_library_threadsafe(&safe) < 0 || !safe) {
        printf("\n    skipped: HDF5 is not thread-safe, the writer syncs at close only ");
        return;
    }
    const int T = 96, N = 4000; /* positions written: rows 0..T-1 over and over */
    char path[512], err[1024];
    path_in_tmp(path, sizeof path, "sync.h5");
    ikv_trace_meta meta = ikv_synth_small_meta();
    ikv_trace_spec spec = ikv_trace_writer_default_spec();
    spec.durable = 1;
    ikv_synth syn;
    CU_ASSERT_FATAL(ikv_synth_init(&syn, &meta, NULL, 0, T, spec.topk, spec.entropy_k, 5, 0) == 0);
    for (int fail = 0; fail < 2; fail++) {
        ikv_fail_fdatasync = fail;
        ikv_fdatasync_calls = 0;
        err[0] = '\0';
        const int rc = write_cycled(path, &meta, &spec, &syn, T, N, err, sizeof err);
        CU_ASSERT(ikv_fdatasync_calls > 0);
        if (fail) {
            CU_ASSERT_NOT_EQUAL(rc, IKV_TRACE_OK);
            if (!strstr(err, "cannot sync the file") || !strstr(err, strerror(EIO)))
                printf("\n    message: %s ", err);
            CU_ASSERT(strstr(err, "cannot sync the file") && strstr(err, strerror(EIO)));
            CU_ASSERT(access(path, F_OK) != 0);
        } else {
            CU_ASSERT_EQUAL(rc, IKV_TRACE_OK);
            CU_ASSERT(access(path, F_OK) == 0);
        }
        ikv_fail_fdatasync = 0;
        unlink(path);
    }
    ikv_synth_free(&syn);
}

/* A durable trace's fsync before the rename fails: close reports it, and
 * neither the final name nor the temporary file is left. */
static void test_failed_close_sync(void)
{
    char path[512], temp[600], err[1024] = "";
    path_in_tmp(path, sizeof path, "close-sync.h5");
    snprintf(temp, sizeof temp, "%s.tmp-%ld", path, (long)getpid());
    ikv_trace_meta meta = ikv_synth_small_meta();
    ikv_trace_spec spec = ikv_trace_writer_default_spec();
    spec.durable = 1;
    ikv_synth syn;
    CU_ASSERT_FATAL(ikv_synth_init(&syn, &meta, NULL, 0, 40, spec.topk, spec.entropy_k, 5, 0) == 0);
    ikv_trace_writer *w;
    CU_ASSERT_EQUAL_FATAL(ikv_trace_writer_create(&w, path, &meta, &spec, err, sizeof err), IKV_TRACE_OK);
    for (int t = 0; t < 40; t++) {
        ikv_trace_row row;
        ikv_synth_row(&syn, t, &row);
        CU_ASSERT_EQUAL_FATAL(ikv_trace_write_position(w, &row), IKV_TRACE_OK);
    }
    ikv_fail_fsync = 1;
    int rc = ikv_trace_writer_close(w, 1, err, sizeof err);
    ikv_fail_fsync = 0;
    CU_ASSERT_NOT_EQUAL(rc, IKV_TRACE_OK);
    if (!strstr(err, "cannot sync") || !strstr(err, strerror(EIO)))
        printf("\n    message: %s ", err);
    CU_ASSERT(strstr(err, "cannot sync") && strstr(err, strerror(EIO)));
    CU_ASSERT(access(path, F_OK) != 0);
    CU_ASSERT(access(temp, F_OK) != 0);
    ikv_synth_free(&syn);
}

/* By default (spec.durable = 0) the writer syncs nothing, in the
 * background or at close, and the trace is whole under its final name all
 * the same: with every sync failing, close succeeds. */
static void test_unsynced(void)
{
    const int T = 96, N = 4000; /* as test_failed_sync: past a durable trace's first sync */
    char path[512], err[1024] = "";
    path_in_tmp(path, sizeof path, "unsynced.h5");
    ikv_trace_meta meta = ikv_synth_small_meta();
    ikv_trace_spec spec = ikv_trace_writer_default_spec();
    CU_ASSERT_EQUAL(spec.durable, 0);
    ikv_synth syn;
    CU_ASSERT_FATAL(ikv_synth_init(&syn, &meta, NULL, 0, T, spec.topk, spec.entropy_k, 5, 0) == 0);
    ikv_fail_fdatasync = ikv_fail_fsync = 1;
    ikv_fdatasync_calls = ikv_fsync_calls = 0;
    const int rc = write_cycled(path, &meta, &spec, &syn, T, N, err, sizeof err);
    ikv_fail_fdatasync = ikv_fail_fsync = 0;
    CU_ASSERT_EQUAL(rc, IKV_TRACE_OK);
    CU_ASSERT_EQUAL(ikv_fdatasync_calls, 0);
    CU_ASSERT_EQUAL(ikv_fsync_calls, 0);
    ikv_trace_reader *r;
    CU_ASSERT_EQUAL_FATAL(ikv_trace_open(&r, path, err, sizeof err), IKV_TRACE_OK);
    CU_ASSERT_EQUAL(ikv_trace_meta_of(r)->n_tokens, N);
    CU_ASSERT_EQUAL(ikv_trace_meta_of(r)->complete, 1);
    ikv_trace_close(r);
    ikv_synth_free(&syn);
    unlink(path);
}

/* ---- deferred creation ---- */

static void *prepare_writer(void *w)
{
    return (void *)(intptr_t)ikv_trace_writer_prepare(w);
}

/* spec.deferred_create: nothing creates the HDF5 file until a call needs
 * it, the first position or ikv_trace_writer_prepare() on another thread
 * (as the recorder's); the trace is the same as without. A writer closed
 * before any position leaves a valid empty trace, one aborted nothing. */
static void test_deferred_create(void)
{
    enum { T = 100 };
    char path[512], temp[600], err[1024] = "";
    path_in_tmp(path, sizeof path, "deferred.h5");
    snprintf(temp, sizeof temp, "%s.tmp-%ld", path, (long)getpid());
    ikv_trace_meta meta = ikv_synth_small_meta();
    ikv_trace_spec spec = ikv_trace_writer_default_spec();
    spec.deferred_create = 1;
    ikv_synth syn;
    CU_ASSERT_FATAL(ikv_synth_init(&syn, &meta, NULL, 0, T, spec.topk, spec.entropy_k, 5, 0) == 0);
    for (int by_thread = 0; by_thread < 2; by_thread++) {
        ikv_trace_writer *w;
        CU_ASSERT_EQUAL_FATAL(ikv_trace_writer_create(&w, path, &meta, &spec, err, sizeof err), IKV_TRACE_OK);
        CU_ASSERT_EQUAL(file_size(temp), 0); /* opened by the writer, not yet by HDF5 */
        if (by_thread) {
            pthread_t th;
            void *rc = (void *)(intptr_t)-1;
            CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, prepare_writer, w), 0);
            pthread_join(th, &rc);
            CU_ASSERT_EQUAL((intptr_t)rc, IKV_TRACE_OK);
            CU_ASSERT(file_size(temp) > 0);
        }
        for (int t = 0; t < T; t++) {
            ikv_trace_row row;
            ikv_synth_row(&syn, t, &row);
            CU_ASSERT_EQUAL_FATAL(ikv_trace_write_position(w, &row), IKV_TRACE_OK);
        }
        CU_ASSERT_EQUAL_FATAL(ikv_trace_writer_close(w, 1, err, sizeof err), IKV_TRACE_OK);
        CU_ASSERT_EQUAL(q_mismatches(path, &meta, &syn, T), 0);
        unlink(path);
    }
    ikv_trace_writer *w;
    CU_ASSERT_EQUAL_FATAL(ikv_trace_writer_create(&w, path, &meta, &spec, err, sizeof err), IKV_TRACE_OK);
    CU_ASSERT_EQUAL_FATAL(ikv_trace_writer_close(w, 0, err, sizeof err), IKV_TRACE_OK);
    ikv_trace_reader *r;
    CU_ASSERT_EQUAL_FATAL(ikv_trace_open(&r, path, err, sizeof err), IKV_TRACE_OK);
    CU_ASSERT_EQUAL(ikv_trace_meta_of(r)->n_tokens, 0);
    ikv_trace_close(r);
    unlink(path);
    CU_ASSERT_EQUAL_FATAL(ikv_trace_writer_create(&w, path, &meta, &spec, err, sizeof err), IKV_TRACE_OK);
    ikv_trace_writer_abort(w);
    CU_ASSERT(access(temp, F_OK) != 0);
    CU_ASSERT(access(path, F_OK) != 0);
    ikv_synth_free(&syn);
}

static void add_suites(void)
{
    static const ikv_test_case half[] = {
        {"binary16 widening, all 65536 values", test_half_widening},
        {"binary16 narrowing: nearest, ties to even", test_half_narrowing},
        {"binary16 narrowing against HDF5's conversion", test_half_matches_hdf5},
        {"halves converted by HDF5 read back", test_half_from_hdf5},
        {NULL, NULL}};
    static const ikv_test_case reject[] = {
        {"foreign HDF5 and other versions", test_foreign},
        {"hostile root attributes", test_hostile_attributes},
        {"hostile datasets", test_hostile_datasets},
        {"truncated files", test_truncated},
        {"corrupt chunk", test_corrupt_chunk},
        {"global heap that would hang HDF5", test_global_heap_stall},
        {NULL, NULL}};
    static const ikv_test_case tail[] = {
        {"last band: unfiltered when over half full, else deflated", test_raw_tail},
        {"a failed background sync fails close", test_failed_sync},
        {"not durable: no sync at all, a whole trace", test_unsynced},
        {"a failed sync at close leaves no trace", test_failed_close_sync},
        {NULL, NULL}};
    ikv_test_suite("trace binary16", half);
    ikv_test_suite("trace rejects bad files", reject);
    static const ikv_test_case deferred[] = {
        {"created by the first user, on its thread", test_deferred_create},
        {NULL, NULL}};
    ikv_test_suite("trace writer's last band", tail);
    ikv_test_suite("trace writer's deferred creation", deferred);
}

int main(int argc, char **argv)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/ikv-trace5-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    path_in_tmp(good, sizeof good, "good.h5");
    if (write_good(good, IKV_TRACE_F32) != IKV_TRACE_OK) {
        fprintf(stderr, "cannot write %s\n", good);
        return 1;
    }
    int rc = ikv_test_main(argc, argv, add_suites);
    unlink(good);
    rmdir(tmpdir);
    return rc;
}
