/*
 * Data reads of an open trace: hyperslabs of the schema's datasets (T cut
 * to n_tokens) or of any extra dataset, always converted to float32 or
 * int32 in the caller's buffer; attributes; and the per-dataset storage
 * summary used by infokv-inspect.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace/reader_internal.h"

/* Reads the block start..start+count of an open dataset into out. half:
 * the file holds binary16, read raw into the upper half of out and widen. */
static int read_block(ikv_trace_reader *r, hid_t id, const char *what, int rank,
                      const int64_t *start, const int64_t *count, int want_int, int half,
                      void *out)
{
    hsize_t hs[H5S_MAX_RANK], hc[H5S_MAX_RANK];
    int64_t n = ikv_checked_product(count, rank, 1);
    if (n < 0)
        return ikv_reader_fail(r, IKV_TRACE_EINVAL, "%s: read too large", what);
    if (n == 0)
        return IKV_TRACE_OK;
    for (int i = 0; i < rank; i++) {
        hs[i] = (hsize_t)start[i];
        hc[i] = (hsize_t)count[i];
    }
    /* A memory space of the selection's own shape: with a flat 1-D one,
     * HDF5 1.10 maps elements one by one and reads 20-70x slower. */
    hid_t fspace = H5Dget_space(id);
    hid_t mspace = H5Screate_simple(rank, hc, NULL);
    hid_t mtype = want_int ? H5T_NATIVE_INT32 : half ? r->half_mem : H5T_NATIVE_FLOAT;
    void *dst = half ? (unsigned char *)out + 2 * (size_t)n : out;
    int ok = fspace >= 0 && mspace >= 0 &&
             H5Sselect_hyperslab(fspace, H5S_SELECT_SET, hs, NULL, hc, NULL) >= 0 &&
             H5Dread(id, mtype, mspace, fspace, H5P_DEFAULT, dst) >= 0;
    if (mspace >= 0)
        H5Sclose(mspace);
    if (fspace >= 0)
        H5Sclose(fspace);
    if (!ok)
        return ikv_reader_fail(r, IKV_TRACE_EFORMAT, "cannot read %s (corrupt data?)", what);
    if (half)
        ikv_f16_to_f32_inplace(out, (size_t)n);
    return IKV_TRACE_OK;
}

/* Schema dataset by path, or an error (absent). */
static int schema_dataset(ikv_trace_reader *r, const char *path, int *index)
{
    int i = ikv_dset_index(path);
    if (i < 0)
        return ikv_reader_fail(r, IKV_TRACE_EINVAL, "%s is not a dataset of the trace schema",
                               path);
    if (r->ds[i].id < 0)
        return ikv_reader_fail(r, IKV_TRACE_EABSENT, "the trace has no %s",
                               ikv_dset_defs[i].path);
    *index = i;
    return IKV_TRACE_OK;
}

/* Whole schema dataset (T cut to n_tokens). */
static int read_whole(ikv_trace_reader *r, const char *path, void *out)
{
    int i, rc = schema_dataset(r, path, &i);
    if (rc != IKV_TRACE_OK)
        return rc;
    const rdset *d = &r->ds[i];
    int64_t start[IKV_TRACE_MAX_RANK] = {0, 0, 0, 0};
    return read_block(r, d->id, ikv_dset_defs[i].path, d->rank, start, d->dims,
                      ikv_dset_defs[i].is_int, d->half, out);
}

int ikv_trace_dims(ikv_trace_reader *r, const char *path, int64_t dims[IKV_TRACE_MAX_RANK])
{
    int i = ikv_dset_index(path);
    if (i >= 0) {
        if (r->ds[i].id < 0)
            return ikv_reader_fail(r, IKV_TRACE_EABSENT, "the trace has no %s",
                                   ikv_dset_defs[i].path);
        memcpy(dims, r->ds[i].dims, sizeof r->ds[i].dims);
        return r->ds[i].rank;
    }
    if (!ikv_trace_has(r, path))
        return ikv_reader_fail(r, IKV_TRACE_EABSENT, "the trace has no dataset %s", path);
    char abs[512];
    ikv_abs_path(path, abs, sizeof abs);
    hid_t id = H5Dopen2(r->file, abs, H5P_DEFAULT);
    hid_t space = id >= 0 ? H5Dget_space(id) : -1;
    int rank = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    hsize_t hd[H5S_MAX_RANK];
    int rc = rank;
    if (rank < 0 || rank > IKV_TRACE_MAX_RANK || H5Sget_simple_extent_dims(space, hd, NULL) < 0)
        rc = ikv_reader_fail(r, IKV_TRACE_EFORMAT, "%s: rank %d not supported (at most %d)", abs,
                             rank, IKV_TRACE_MAX_RANK);
    else
        for (int a = 0; a < rank; a++)
            dims[a] = (int64_t)hd[a];
    if (space >= 0)
        H5Sclose(space);
    if (id >= 0)
        H5Dclose(id);
    return rc;
}

size_t ikv_trace_read_bytes(ikv_trace_reader *r, const char *path)
{
    int i = ikv_dset_index(path);
    int64_t dims[IKV_TRACE_MAX_RANK];
    int rank = ikv_trace_dims(r, path, dims);
    if (rank < 0)
        return 0;
    int skip = 0; /* one layer (or one states row) for the per-layer datasets */
    if (i >= 0 && (ikv_dset_defs[i].per_layer || strcmp(ikv_dset_defs[i].path, "/hidden/states") == 0))
        skip = 1;
    int64_t bytes = ikv_checked_product(dims + skip, rank - skip, 4);
    if (bytes < 0 || (uint64_t)bytes > SIZE_MAX)
        return 0;
    return (size_t)bytes;
}

int ikv_trace_read_tokens(ikv_trace_reader *r, int32_t *out)
{
    return read_whole(r, "/tokens", out);
}

int ikv_trace_read_entropy(ikv_trace_reader *r, int topk, float *out)
{
    return read_whole(r, topk ? "/logits/entropy_topk" : "/logits/entropy", out);
}

int ikv_trace_read_logprob(ikv_trace_reader *r, float *out)
{
    return read_whole(r, "/logits/logprob", out);
}

int ikv_trace_read_topk(ikv_trace_reader *r, int32_t *ids, float *logprobs)
{
    int rc = IKV_TRACE_OK;
    if (ids)
        rc = read_whole(r, "/logits/topk_ids", ids);
    if (rc == IKV_TRACE_OK && logprobs)
        rc = read_whole(r, "/logits/topk_logprobs", logprobs);
    return rc;
}

int ikv_trace_read_evolution(ikv_trace_reader *r, float *out)
{
    return read_whole(r, "/hidden/evolution", out);
}

int ikv_trace_read_layer(ikv_trace_reader *r, const char *path, int slot, float *out)
{
    int i, rc = schema_dataset(r, path, &i);
    if (rc != IKV_TRACE_OK)
        return rc;
    const ikv_dset_def *def = &ikv_dset_defs[i];
    const rdset *d = &r->ds[i];
    if (!def->per_layer)
        return ikv_reader_fail(r, IKV_TRACE_EINVAL, "%s is not read one layer at a time",
                               def->path);
    if (slot < 0 || slot >= r->n_slots)
        return ikv_reader_fail(r, IKV_TRACE_EINVAL, "%s: layer slot %d out of range [0, %d)",
                               def->path, slot, r->n_slots);
    int64_t start[IKV_TRACE_MAX_RANK] = {slot, 0, 0, 0};
    int64_t count[IKV_TRACE_MAX_RANK];
    memcpy(count, d->dims, sizeof count);
    count[0] = 1;
    char what[300];
    snprintf(what, sizeof what, "%s layer slot %d", def->path, slot);
    return read_block(r, d->id, what, d->rank, start, count, 0, d->half, out);
}

static int read_rows(ikv_trace_reader *r, const char *path, int slot, int t0, int n, float *out)
{
    int i, rc = schema_dataset(r, path, &i);
    if (rc != IKV_TRACE_OK)
        return rc;
    const rdset *d = &r->ds[i];
    int64_t T = r->meta.n_tokens;
    if (t0 < 0 || n < 0 || (int64_t)t0 + n > T)
        return ikv_reader_fail(r, IKV_TRACE_EINVAL, "%s: positions %d..%d outside [0, %lld)",
                               ikv_dset_defs[i].path, t0, t0 + n - 1, (long long)T);
    int64_t start[IKV_TRACE_MAX_RANK] = {0, 0, 0, 0}, count[IKV_TRACE_MAX_RANK];
    memcpy(count, d->dims, sizeof count);
    if (d->rank == 3) { /* states [L'+1][T][D] */
        if (slot < 0 || slot > r->n_slots)
            return ikv_reader_fail(r, IKV_TRACE_EINVAL, "%s: slot %d out of range [0, %d]",
                                   ikv_dset_defs[i].path, slot, r->n_slots);
        start[0] = slot;
        count[0] = 1;
        start[1] = t0;
        count[1] = n;
    } else { /* logits [T][V] */
        start[0] = t0;
        count[0] = n;
    }
    return read_block(r, d->id, ikv_dset_defs[i].path, d->rank, start, count, 0, d->half, out);
}

int ikv_trace_read_states(ikv_trace_reader *r, int slot, int t0, int n, float *out)
{
    return read_rows(r, "/hidden/states", slot, t0, n, out);
}

int ikv_trace_read_logits(ikv_trace_reader *r, int t0, int n, float *out)
{
    return read_rows(r, "/logits/full", 0, t0, n, out);
}

static int read_any(ikv_trace_reader *r, const char *path, const int64_t *start,
                    const int64_t *count, int want_int, void *out)
{
    int64_t dims[IKV_TRACE_MAX_RANK];
    int rank = ikv_trace_dims(r, path, dims);
    if (rank < 0)
        return rank;
    char abs[512];
    ikv_abs_path(path, abs, sizeof abs);
    for (int a = 0; a < rank; a++)
        if (!start || !count || start[a] < 0 || count[a] < 0 || start[a] > dims[a] ||
            count[a] > dims[a] - start[a])
            return ikv_reader_fail(r, IKV_TRACE_EINVAL, "%s: block outside the dataset", abs);
    int i = ikv_dset_index(path);
    hid_t id = i >= 0 ? r->ds[i].id : H5Dopen2(r->file, abs, H5P_DEFAULT);
    if (id < 0)
        return ikv_reader_fail(r, IKV_TRACE_EFORMAT, "cannot open %s", abs);
    hid_t type = H5Dget_type(id);
    H5T_class_t cls = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
    int half = cls == H5T_FLOAT && ikv_h5_is_half(type);
    if (type >= 0)
        H5Tclose(type);
    int rc;
    if (want_int ? cls != H5T_INTEGER : (cls != H5T_FLOAT && cls != H5T_INTEGER))
        rc = ikv_reader_fail(r, IKV_TRACE_EINVAL, "%s does not hold %s", abs,
                             want_int ? "integers" : "numbers");
    else
        rc = read_block(r, id, abs, rank, start, count, want_int, half, out);
    if (i < 0)
        H5Dclose(id);
    return rc;
}

int ikv_trace_read_f32(ikv_trace_reader *r, const char *path, const int64_t *start,
                       const int64_t *count, float *out)
{
    return read_any(r, path, start, count, 0, out);
}

int ikv_trace_read_i32(ikv_trace_reader *r, const char *path, const int64_t *start,
                       const int64_t *count, int32_t *out)
{
    return read_any(r, path, start, count, 1, out);
}

/* ---- attributes ---- */

static hid_t open_object(ikv_trace_reader *r, const char *path, char *abs, size_t abslen)
{
    ikv_abs_path(path ? path : "/", abs, abslen);
    if (!ikv_h5_exists(r->file, abs)) {
        ikv_reader_fail(r, IKV_TRACE_EABSENT, "the trace has no %s", abs);
        return -1;
    }
    hid_t obj = H5Oopen(r->file, abs, H5P_DEFAULT);
    if (obj < 0)
        ikv_reader_fail(r, IKV_TRACE_EFORMAT, "cannot open %s", abs);
    return obj;
}

static int attr_status(ikv_trace_reader *r, int rc, const char *abs, const char *name,
                       const char *what)
{
    if (rc == IKV_TRACE_EABSENT)
        return ikv_reader_fail(r, rc, "%s has no attribute '%s'", abs, name);
    if (rc != IKV_TRACE_OK)
        return ikv_reader_fail(r, rc, "%s: %s", abs, what);
    return IKV_TRACE_OK;
}

int ikv_trace_attr_int(ikv_trace_reader *r, const char *path, const char *name, int64_t *value)
{
    char abs[512], what[200] = "";
    hid_t obj = open_object(r, path, abs, sizeof abs);
    if (obj < 0)
        return IKV_TRACE_EABSENT;
    int rc = ikv_h5_attr_read_int(obj, name, value, what, sizeof what);
    H5Oclose(obj);
    return attr_status(r, rc, abs, name, what);
}

int ikv_trace_attr_double(ikv_trace_reader *r, const char *path, const char *name,
                          double *value)
{
    char abs[512], what[200] = "";
    hid_t obj = open_object(r, path, abs, sizeof abs);
    if (obj < 0)
        return IKV_TRACE_EABSENT;
    int rc = ikv_h5_attr_read_double(obj, name, value, what, sizeof what);
    H5Oclose(obj);
    return attr_status(r, rc, abs, name, what);
}

int ikv_trace_attr_string(ikv_trace_reader *r, const char *path, const char *name, char *buf,
                          size_t buflen)
{
    char abs[512], what[200] = "";
    hid_t obj = open_object(r, path, abs, sizeof abs);
    if (obj < 0)
        return IKV_TRACE_EABSENT;
    int rc = ikv_h5_attr_read_string(obj, name, buf, buflen, what, sizeof what);
    H5Oclose(obj);
    return attr_status(r, rc, abs, name, what);
}

/* ---- storage summary ---- */

static void type_name(hid_t type, char *buf, size_t len)
{
    H5T_class_t cls = H5Tget_class(type);
    size_t size = H5Tget_size(type);
    if (cls == H5T_FLOAT)
        snprintf(buf, len, "%s", ikv_h5_is_half(type) ? "f16" : size == 4 ? "f32" : size == 8 ? "f64" : "float");
    else if (cls == H5T_INTEGER)
        snprintf(buf, len, "%c%zu", H5Tget_sign(type) == H5T_SGN_NONE ? 'u' : 'i', 8 * size);
    else if (cls == H5T_STRING)
        snprintf(buf, len, "string");
    else
        snprintf(buf, len, "other");
}

typedef struct visit_ctx {
    ikv_trace_reader *r;
    int (*fn)(const ikv_trace_dataset_info *info, void *ctx);
    void *ctx;
    int result;
} visit_ctx;

static herr_t visit_link(hid_t group, const char *name, const H5L_info_t *info, void *data)
{
    visit_ctx *v = data;
    if (info->type != H5L_TYPE_HARD)
        return 0;
    hid_t obj = H5Oopen(group, name, H5P_DEFAULT);
    if (obj < 0) {
        H5Eclear2(H5E_DEFAULT);
        return 0;
    }
    if (H5Iget_type(obj) != H5I_DATASET) {
        H5Oclose(obj);
        return 0;
    }
    ikv_trace_dataset_info di;
    memset(&di, 0, sizeof di);
    snprintf(di.path, sizeof di.path, "/%s", name);
    hid_t type = H5Dget_type(obj);
    hid_t space = H5Dget_space(obj);
    hid_t dcpl = H5Dget_create_plist(obj);
    hsize_t hd[H5S_MAX_RANK], hc[H5S_MAX_RANK];
    int rank = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    di.rank = rank;
    int64_t all[H5S_MAX_RANK];
    if (rank >= 0 && H5Sget_simple_extent_dims(space, hd, NULL) >= 0) {
        for (int a = 0; a < rank; a++) {
            all[a] = (int64_t)hd[a];
            if (a < IKV_TRACE_MAX_RANK)
                di.dims[a] = (int64_t)hd[a];
        }
    }
    size_t esize = type >= 0 ? H5Tget_size(type) : 0;
    if (type >= 0)
        type_name(type, di.type, sizeof di.type);
    di.logical_bytes = rank >= 0 ? ikv_checked_product(all, rank, (int64_t)esize) : -1;
    di.stored_bytes = (int64_t)H5Dget_storage_size(obj);
    if (dcpl >= 0 && H5Pget_layout(dcpl) == H5D_CHUNKED) {
        int crank = H5Pget_chunk(dcpl, H5S_MAX_RANK, hc);
        for (int a = 0; a < crank && a < IKV_TRACE_MAX_RANK; a++)
            di.chunk[a] = (int64_t)hc[a];
        int nf = H5Pget_nfilters(dcpl);
        for (int f = 0; f < nf; f++) {
            unsigned flags, cd[8];
            size_t ncd = 8;
            char fname[64];
            if (H5Pget_filter2(dcpl, (unsigned)f, &flags, &ncd, cd, sizeof fname, fname, NULL) ==
                H5Z_FILTER_DEFLATE)
                di.compressed = 1;
        }
    }
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (space >= 0)
        H5Sclose(space);
    if (type >= 0)
        H5Tclose(type);
    H5Oclose(obj);
    H5Eclear2(H5E_DEFAULT);
    v->result = v->fn(&di, v->ctx);
    return v->result != 0 ? 1 : 0;
}

int ikv_trace_foreach_dataset(ikv_trace_reader *r,
                              int (*fn)(const ikv_trace_dataset_info *info, void *ctx),
                              void *ctx)
{
    visit_ctx v = {r, fn, ctx, 0};
    if (H5Lvisit(r->file, H5_INDEX_NAME, H5_ITER_INC, visit_link, &v) < 0 && v.result == 0)
        return ikv_reader_fail(r, IKV_TRACE_EFORMAT, "cannot list the datasets");
    return v.result;
}
