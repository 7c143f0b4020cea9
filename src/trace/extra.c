/*
 * Datasets, groups and attributes outside the schema's own datasets, so
 * that later signals (the live and influence groups) are added without touching
 * the writer's internals. They are written whole, compressed like the
 * rest; the schema's datasets and root attributes are protected.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "trace/writer_internal.h"

#define EXTRA_CHUNK_MAX (1024 * 1024)

static int check_path(ikv_trace_writer *w, const char *path, char *abs, size_t abslen)
{
    if (!path || !path[0]) {
        ikv_writer_msg(w, "empty path");
        return IKV_TRACE_EINVAL;
    }
    ikv_abs_path(path, abs, abslen);
    size_t len = strlen(abs);
    if (len + 1 >= abslen ||
        (strcmp(abs, "/") != 0 && (strstr(abs, "//") || abs[len - 1] == '/'))) {
        ikv_writer_msg(w, "bad path '%s'", path);
        return IKV_TRACE_EINVAL;
    }
    /* A schema dataset, or something below one, is not an extra. */
    for (int i = 0; i < IKV_N_DSETS; i++) {
        size_t n = strlen(ikv_dset_defs[i].path);
        if (strncmp(abs, ikv_dset_defs[i].path, n) == 0 && (abs[n] == '\0' || abs[n] == '/')) {
            ikv_writer_msg(w, "%s belongs to the trace schema", abs);
            return IKV_TRACE_EINVAL;
        }
    }
    return IKV_TRACE_OK;
}

static int usable(ikv_trace_writer *w)
{
    if (!w)
        return 0;
    if (w->failed || ikv_writer_file_ready(w) != IKV_TRACE_OK)
        return 0; /* w->err holds the failure */
    return 1;
}

static int type_of(ikv_trace_type type, hid_t *file_type, hid_t *mem_type, size_t *esize)
{
    switch (type) {
    case IKV_TRACE_TYPE_F32: *file_type = H5T_IEEE_F32LE; *mem_type = H5T_NATIVE_FLOAT; *esize = 4; return 0;
    case IKV_TRACE_TYPE_F64: *file_type = H5T_IEEE_F64LE; *mem_type = H5T_NATIVE_DOUBLE; *esize = 8; return 0;
    case IKV_TRACE_TYPE_I32: *file_type = H5T_STD_I32LE; *mem_type = H5T_NATIVE_INT32; *esize = 4; return 0;
    case IKV_TRACE_TYPE_I64: *file_type = H5T_STD_I64LE; *mem_type = H5T_NATIVE_INT64; *esize = 8; return 0;
    case IKV_TRACE_TYPE_U8: *file_type = H5T_STD_U8LE; *mem_type = H5T_NATIVE_UINT8; *esize = 1; return 0;
    }
    return -1;
}

int ikv_trace_write_extra(ikv_trace_writer *w, const char *path, ikv_trace_type type, int rank,
                          const int64_t *dims, const void *data)
{
    char abs[512];
    if (!usable(w))
        return w ? IKV_TRACE_ESTATE : IKV_TRACE_EINVAL;
    int rc = check_path(w, path, abs, sizeof abs);
    if (rc != IKV_TRACE_OK)
        return rc;
    hid_t ftype, mtype;
    size_t esize;
    if (type_of(type, &ftype, &mtype, &esize) != 0 || rank < 1 || rank > IKV_TRACE_MAX_RANK ||
        !dims) {
        ikv_writer_msg(w, "%s: bad type or rank %d", abs, rank);
        return IKV_TRACE_EINVAL;
    }
    int64_t total = ikv_checked_product(dims, rank, (int64_t)esize);
    if (total < 0 || (total > 0 && !data)) {
        ikv_writer_msg(w, "%s: bad dims or no data", abs);
        return IKV_TRACE_EINVAL;
    }
    if (ikv_h5_exists(w->file, abs)) {
        ikv_writer_msg(w, "%s already exists", abs);
        return IKV_TRACE_EINVAL;
    }
    hsize_t hd[IKV_TRACE_MAX_RANK], chunk[IKV_TRACE_MAX_RANK];
    for (int i = 0; i < rank; i++)
        chunk[i] = hd[i] = (hsize_t)dims[i];
    hid_t space = H5Screate_simple(rank, hd, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t lcpl = ikv_h5_lcpl();
    int ok = space >= 0 && dcpl >= 0 && lcpl >= 0;
    if (ok && total > 0 && w->spec.deflate_level > 0) {
        /* Chunks of at most 1 MiB, halving the longest axis. */
        int64_t bytes = total;
        while (bytes > EXTRA_CHUNK_MAX) {
            int longest = 0;
            for (int i = 1; i < rank; i++)
                if (chunk[i] > chunk[longest])
                    longest = i;
            if (chunk[longest] <= 1)
                break;
            bytes = bytes / (int64_t)chunk[longest];
            chunk[longest] = (chunk[longest] + 1) / 2;
            bytes *= (int64_t)chunk[longest];
        }
        ok = H5Pset_chunk(dcpl, rank, chunk) >= 0 && H5Pset_shuffle(dcpl) >= 0 &&
             H5Pset_deflate(dcpl, (unsigned)w->spec.deflate_level) >= 0;
    }
    hid_t d = ok ? H5Dcreate2(w->file, abs, ftype, space, lcpl, dcpl, H5P_DEFAULT) : -1;
    ok = d >= 0 && (total == 0 || H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
    if (d >= 0 && H5Dclose(d) < 0)
        ok = 0;
    if (lcpl >= 0)
        H5Pclose(lcpl);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (space >= 0)
        H5Sclose(space);
    if (!ok) {
        ikv_writer_fail(w, "cannot write %s", abs);
        return IKV_TRACE_EIO;
    }
    return IKV_TRACE_OK;
}

int ikv_trace_writer_group(ikv_trace_writer *w, const char *path)
{
    char abs[512];
    if (!usable(w))
        return w ? IKV_TRACE_ESTATE : IKV_TRACE_EINVAL;
    int rc = check_path(w, path, abs, sizeof abs);
    if (rc != IKV_TRACE_OK)
        return rc;
    if (ikv_h5_exists(w->file, abs))
        return IKV_TRACE_OK;
    hid_t lcpl = ikv_h5_lcpl();
    hid_t g = lcpl >= 0 ? H5Gcreate2(w->file, abs, lcpl, H5P_DEFAULT, H5P_DEFAULT) : -1;
    int ok = g >= 0 && H5Gclose(g) >= 0;
    if (lcpl >= 0)
        H5Pclose(lcpl);
    if (!ok) {
        ikv_writer_fail(w, "cannot create group %s", abs);
        return IKV_TRACE_EIO;
    }
    return IKV_TRACE_OK;
}

/* Opens the object that an attribute goes on, refusing schema datasets
 * and the schema's own root attributes. */
static hid_t attr_target(ikv_trace_writer *w, const char *path, const char *name, int *rc)
{
    char abs[512];
    *rc = IKV_TRACE_EINVAL;
    if (!usable(w)) {
        *rc = w ? IKV_TRACE_ESTATE : IKV_TRACE_EINVAL;
        return -1;
    }
    if (!name || !name[0]) {
        ikv_writer_msg(w, "empty attribute name");
        return -1;
    }
    if (check_path(w, path, abs, sizeof abs) != IKV_TRACE_OK)
        return -1;
    if (strcmp(abs, "/") == 0 && ikv_is_root_attr(name)) {
        ikv_writer_msg(w, "root attribute '%s' belongs to the trace schema", name);
        return -1;
    }
    if (!ikv_h5_exists(w->file, abs)) {
        ikv_writer_msg(w, "%s does not exist", abs);
        return -1;
    }
    hid_t obj = H5Oopen(w->file, abs, H5P_DEFAULT);
    if (obj < 0) {
        ikv_writer_fail(w, "cannot open %s", abs);
        *rc = IKV_TRACE_EIO;
        return -1;
    }
    *rc = IKV_TRACE_OK;
    return obj;
}

static int attr_done(ikv_trace_writer *w, hid_t obj, int failed, const char *name)
{
    H5Oclose(obj);
    if (failed) {
        ikv_writer_fail(w, "cannot write attribute '%s'", name);
        return IKV_TRACE_EIO;
    }
    return IKV_TRACE_OK;
}

int ikv_trace_writer_attr_int(ikv_trace_writer *w, const char *path, const char *name,
                              int64_t value)
{
    int rc;
    hid_t obj = attr_target(w, path, name, &rc);
    if (obj < 0)
        return rc;
    return attr_done(w, obj, ikv_h5_attr_write_int(obj, name, value), name);
}

int ikv_trace_writer_attr_double(ikv_trace_writer *w, const char *path, const char *name,
                                 double value)
{
    int rc;
    hid_t obj = attr_target(w, path, name, &rc);
    if (obj < 0)
        return rc;
    return attr_done(w, obj, ikv_h5_attr_write_double(obj, name, value), name);
}

int ikv_trace_writer_attr_string(ikv_trace_writer *w, const char *path, const char *name,
                                 const char *value)
{
    int rc;
    hid_t obj = attr_target(w, path, name, &rc);
    if (obj < 0)
        return rc;
    return attr_done(w, obj, ikv_h5_attr_write_string(obj, name, value), name);
}
