/*
 * Opening a trace: from "is this a file at all" to "every dataset has the
 * shape the root attributes promise". Everything a caller later allocates
 * is derived from values checked here against fixed bounds, so a hostile
 * file gives an error instead of a huge allocation.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "trace/reader_internal.h"

int ikv_reader_fail(ikv_trace_reader *r, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ikv_h5_vmessage(r->err, sizeof r->err, r->path, 1, fmt, ap);
    va_end(ap);
    return status;
}

const char *ikv_trace_reader_error(const ikv_trace_reader *r)
{
    return r ? r->err : "no reader";
}

const char *ikv_trace_path(const ikv_trace_reader *r)
{
    return r ? r->path : "";
}

const ikv_trace_meta *ikv_trace_meta_of(const ikv_trace_reader *r)
{
    return &r->meta;
}

const ikv_trace_spec *ikv_trace_spec_of(const ikv_trace_reader *r)
{
    return &r->spec;
}

int ikv_trace_has(const ikv_trace_reader *r, const char *path)
{
    int i = ikv_dset_index(path);
    if (i >= 0)
        return r->ds[i].id >= 0;
    char abs[512];
    ikv_abs_path(path, abs, sizeof abs);
    if (!ikv_h5_exists(r->file, abs))
        return 0;
    hid_t obj = H5Oopen(r->file, abs, H5P_DEFAULT);
    if (obj < 0) {
        H5Eclear2(H5E_DEFAULT);
        return 0;
    }
    int is_dataset = H5Iget_type(obj) == H5I_DATASET;
    H5Oclose(obj);
    return is_dataset;
}

void ikv_trace_close(ikv_trace_reader *r)
{
    if (!r)
        return;
    for (int i = 0; i < IKV_N_DSETS; i++)
        if (r->ds[i].id >= 0)
            H5Dclose(r->ds[i].id);
    if (r->half_mem >= 0)
        H5Tclose(r->half_mem);
    if (r->file >= 0)
        H5Fclose(r->file);
    H5Eclear2(H5E_DEFAULT);
    free(r->layers);
    free(r);
}

static int read_int_attr(ikv_trace_reader *r, const char *name, int *value)
{
    char what[200];
    int64_t v = 0;
    int rc = ikv_h5_attr_read_int(r->file, name, &v, what, sizeof what);
    if (rc == IKV_TRACE_EABSENT)
        return ikv_reader_fail(r, IKV_TRACE_EFORMAT, "required attribute '%s' is missing", name);
    if (rc != IKV_TRACE_OK)
        return ikv_reader_fail(r, IKV_TRACE_EFORMAT, "%s", what);
    if (v < INT32_MIN || v > INT32_MAX)
        return ikv_reader_fail(r, IKV_TRACE_EFORMAT, "attribute '%s' = %lld out of range", name,
                               (long long)v);
    *value = (int)v;
    return IKV_TRACE_OK;
}

static int read_double_attr(ikv_trace_reader *r, const char *name, double *value)
{
    char what[200];
    int rc = ikv_h5_attr_read_double(r->file, name, value, what, sizeof what);
    if (rc == IKV_TRACE_EABSENT)
        return ikv_reader_fail(r, IKV_TRACE_EFORMAT, "required attribute '%s' is missing", name);
    if (rc != IKV_TRACE_OK)
        return ikv_reader_fail(r, IKV_TRACE_EFORMAT, "%s", what);
    return IKV_TRACE_OK;
}

/* Optional descriptive strings: absent reads as "". */
static int read_string_attr(ikv_trace_reader *r, const char *name, char *buf, size_t len)
{
    char what[200];
    buf[0] = '\0';
    int rc = ikv_h5_attr_read_string(r->file, name, buf, len, what, sizeof what);
    if (rc == IKV_TRACE_EABSENT)
        return IKV_TRACE_OK;
    if (rc != IKV_TRACE_OK)
        return ikv_reader_fail(r, IKV_TRACE_EFORMAT, "%s", what);
    return IKV_TRACE_OK;
}

static int check_identity(ikv_trace_reader *r)
{
    char what[200], format[64];
    int rc = ikv_h5_attr_read_string(r->file, "format", format, sizeof format, what, sizeof what);
    if (rc == IKV_TRACE_EABSENT)
        return ikv_reader_fail(r, IKV_TRACE_EFORMAT,
                               "not an infokv trace: an HDF5 file without a 'format' attribute");
    if (rc != IKV_TRACE_OK)
        return ikv_reader_fail(r, IKV_TRACE_EFORMAT, "not an infokv trace: %s", what);
    if (strcmp(format, IKV_TRACE_FORMAT) != 0)
        return ikv_reader_fail(r, IKV_TRACE_EFORMAT,
                               "not an infokv trace: format is '%s', expected '%s'", format,
                               IKV_TRACE_FORMAT);
    int64_t version = 0;
    rc = ikv_h5_attr_read_int(r->file, "version", &version, what, sizeof what);
    if (rc == IKV_TRACE_EABSENT)
        return ikv_reader_fail(r, IKV_TRACE_EFORMAT, "trace without a 'version' attribute");
    if (rc != IKV_TRACE_OK)
        return ikv_reader_fail(r, IKV_TRACE_EFORMAT, "%s", what);
    if (version != IKV_TRACE_VERSION)
        return ikv_reader_fail(r, IKV_TRACE_EFORMAT,
                               "unsupported trace version %lld (this program reads version %d)",
                               (long long)version, IKV_TRACE_VERSION);
    return IKV_TRACE_OK;
}

static int read_meta(ikv_trace_reader *r)
{
    ikv_trace_meta *m = &r->meta;
    int rc;
    if ((rc = read_int_attr(r, "n_layers", &m->n_layers)) ||
        (rc = read_int_attr(r, "n_heads", &m->n_heads)) ||
        (rc = read_int_attr(r, "n_kv_heads", &m->n_kv_heads)) ||
        (rc = read_int_attr(r, "head_dim", &m->head_dim)) ||
        (rc = read_int_attr(r, "dim", &m->dim)) ||
        (rc = read_int_attr(r, "hidden_dim", &m->hidden_dim)) ||
        (rc = read_int_attr(r, "vocab_size", &m->vocab_size)) ||
        (rc = read_int_attr(r, "n_prompt", &m->n_prompt)) ||
        (rc = read_int_attr(r, "n_tokens", &m->n_tokens)) ||
        (rc = read_int_attr(r, "complete", &m->complete)) ||
        (rc = read_double_attr(r, "rope_theta", &m->rope_theta)) ||
        (rc = read_double_attr(r, "norm_eps", &m->norm_eps)) ||
        (rc = read_string_attr(r, "model_name", m->model_name, sizeof m->model_name)) ||
        (rc = read_string_attr(r, "arch", m->arch, sizeof m->arch)) ||
        (rc = read_string_attr(r, "producer", m->producer, sizeof m->producer)) ||
        (rc = read_string_attr(r, "created", m->created, sizeof m->created)) ||
        (rc = read_string_attr(r, "model_sha256", m->model_sha256, sizeof m->model_sha256)) ||
        (rc = read_string_attr(r, "command", m->command, sizeof m->command)))
        return rc;
    char what[200];
    if (ikv_check_meta(m, what, sizeof what) != 0)
        return ikv_reader_fail(r, IKV_TRACE_EFORMAT, "attribute %s", what);
    if (m->complete && m->n_prompt > m->n_tokens)
        return ikv_reader_fail(r, IKV_TRACE_EFORMAT,
                               "complete trace with n_prompt = %d > n_tokens = %d", m->n_prompt,
                               m->n_tokens);

    char dtype[16];
    rc = ikv_h5_attr_read_string(r->file, "dtype", dtype, sizeof dtype, what, sizeof what);
    if (rc == IKV_TRACE_EABSENT)
        return ikv_reader_fail(r, IKV_TRACE_EFORMAT, "required attribute 'dtype' is missing");
    if (rc != IKV_TRACE_OK)
        return ikv_reader_fail(r, IKV_TRACE_EFORMAT, "%s", what);
    if (strcmp(dtype, "f32") == 0)
        r->spec.dtype = IKV_TRACE_F32;
    else if (strcmp(dtype, "f16") == 0)
        r->spec.dtype = IKV_TRACE_F16;
    else
        return ikv_reader_fail(r, IKV_TRACE_EFORMAT, "attribute 'dtype' is '%s', expected f32 or f16",
                               dtype);

    /* The stored layer subset: bounded by n_layers before anything is read. */
    r->layers = malloc(sizeof *r->layers * (size_t)m->n_layers);
    int32_t *raw = malloc(sizeof *raw * (size_t)m->n_layers);
    if (!r->layers || !raw) {
        free(raw);
        return ikv_reader_fail(r, IKV_TRACE_ENOMEM, "out of memory");
    }
    int n = 0;
    rc = ikv_h5_attr_read_i32s(r->file, "layers", raw, m->n_layers, &n, what, sizeof what);
    if (rc == IKV_TRACE_EABSENT) {
        n = m->n_layers;
        for (int i = 0; i < n; i++)
            raw[i] = i;
        rc = IKV_TRACE_OK;
    }
    if (rc == IKV_TRACE_OK && n < 1) {
        snprintf(what, sizeof what, "attribute 'layers' is empty");
        rc = IKV_TRACE_EFORMAT;
    }
    for (int i = 0; i < n && rc == IKV_TRACE_OK; i++) {
        if (raw[i] < 0 || raw[i] >= m->n_layers || (i > 0 && raw[i] <= raw[i - 1])) {
            snprintf(what, sizeof what,
                     "attribute 'layers' must list ascending layers in [0, %d); got %d at %d",
                     m->n_layers, (int)raw[i], i);
            rc = IKV_TRACE_EFORMAT;
        }
        r->layers[i] = raw[i];
    }
    free(raw);
    if (rc != IKV_TRACE_OK)
        return ikv_reader_fail(r, rc, "%s", what);
    r->n_slots = n;
    r->spec.layers = r->layers;
    r->spec.n_layers = n;
    return IKV_TRACE_OK;
}

static void format_dims(char *buf, size_t len, const int64_t *dims, int rank, const char *t_mark)
{
    size_t off = 0;
    off += (size_t)snprintf(buf + off, len - off, "[");
    for (int i = 0; i < rank && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s%lld", i ? "," : "",
                                t_mark && t_mark[i] ? ">=" : "", (long long)dims[i]);
    if (off < len)
        snprintf(buf + off, len - off, "]");
}

/* Opens schema dataset i if present and checks its type and shape. */
static int open_dataset(ikv_trace_reader *r, int i, int *topk)
{
    const ikv_dset_def *def = &ikv_dset_defs[i];
    rdset *d = &r->ds[i];
    if (!ikv_h5_exists(r->file, def->path))
        return IKV_TRACE_OK;
    hid_t obj = H5Oopen(r->file, def->path, H5P_DEFAULT);
    if (obj < 0)
        return ikv_reader_fail(r, IKV_TRACE_EFORMAT, "cannot open %s", def->path);
    if (H5Iget_type(obj) != H5I_DATASET) {
        H5Oclose(obj);
        return ikv_reader_fail(r, IKV_TRACE_EFORMAT, "%s is not a dataset", def->path);
    }
    d->id = obj;
    hid_t type = H5Dget_type(d->id);
    hid_t space = H5Dget_space(d->id);
    /* HDF5 allocates a whole chunk to read any part of it: bound chunks so
     * that a hostile file cannot ask for gigabytes per read. */
    hid_t dcpl = H5Dget_create_plist(d->id);
    int64_t chunk_bytes = 0;
    if (dcpl >= 0 && H5Pget_layout(dcpl) == H5D_CHUNKED) {
        hsize_t cd[H5S_MAX_RANK];
        int crank = H5Pget_chunk(dcpl, H5S_MAX_RANK, cd);
        int64_t c64[H5S_MAX_RANK];
        for (int a = 0; a < crank; a++)
            c64[a] = (int64_t)cd[a];
        chunk_bytes = crank > 0 && type >= 0 ? ikv_checked_product(c64, crank, (int64_t)H5Tget_size(type)) : -1;
    }
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (chunk_bytes < 0 || chunk_bytes > IKV_MAX_CHUNK_BYTES) {
        if (type >= 0)
            H5Tclose(type);
        if (space >= 0)
            H5Sclose(space);
        return ikv_reader_fail(r, IKV_TRACE_EFORMAT, "%s has chunks of %lld bytes (at most %lld accepted)",
                               def->path, (long long)chunk_bytes, (long long)IKV_MAX_CHUNK_BYTES);
    }
    int rank = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    hsize_t hd[H5S_MAX_RANK];
    int ok_space = rank == def->rank && H5Sget_simple_extent_dims(space, hd, NULL) == rank;
    H5T_class_t cls = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
    d->half = cls == H5T_FLOAT && ikv_h5_is_half(type);
    if (type >= 0)
        H5Tclose(type);
    if (space >= 0)
        H5Sclose(space);
    if (def->is_int ? cls != H5T_INTEGER : cls != H5T_FLOAT)
        return ikv_reader_fail(r, IKV_TRACE_EFORMAT, "%s should hold %s", def->path,
                               def->is_int ? "integers" : "floating-point numbers");
    if (!ok_space)
        return ikv_reader_fail(r, IKV_TRACE_EFORMAT, "%s has rank %d, expected %d", def->path,
                               rank, def->rank);
    /* The top-k width is the dataset's own; both top-k datasets must agree. */
    int64_t want[IKV_TRACE_MAX_RANK];
    char t_mark[IKV_TRACE_MAX_RANK] = {0};
    int bad = 0;
    for (int a = 0; a < rank; a++) {
        int64_t got = (int64_t)hd[a];
        if (def->axes[a] == IKV_AX_K && *topk == 0) {
            if (got < 1 || got > r->meta.vocab_size)
                return ikv_reader_fail(r, IKV_TRACE_EFORMAT,
                                       "%s has top-k width %lld, outside [1, vocab_size = %d]",
                                       def->path, (long long)got, r->meta.vocab_size);
            *topk = (int)got;
        }
        want[a] = ikv_axis_size(def->axes[a], &r->meta, r->n_slots, *topk, r->meta.n_tokens);
        if (def->axes[a] == IKV_AX_T) {
            t_mark[a] = 1;
            bad |= got < want[a];
        } else {
            bad |= got != want[a];
        }
        d->dims[a] = want[a];
    }
    if (bad) {
        char got_s[128], want_s[128];
        int64_t got64[IKV_TRACE_MAX_RANK];
        for (int a = 0; a < rank; a++)
            got64[a] = (int64_t)hd[a];
        format_dims(got_s, sizeof got_s, got64, rank, NULL);
        format_dims(want_s, sizeof want_s, want, rank, t_mark);
        return ikv_reader_fail(r, IKV_TRACE_EFORMAT,
                               "%s has shape %s, expected %s (from the root attributes)",
                               def->path, got_s, want_s);
    }
    d->rank = rank;
    return IKV_TRACE_OK;
}

static int open_datasets(ikv_trace_reader *r)
{
    int topk = 0;
    for (int i = 0; i < IKV_N_DSETS; i++) {
        int rc = open_dataset(r, i, &topk);
        if (rc != IKV_TRACE_OK)
            return rc;
    }
    if (r->ds[0].id < 0)
        return ikv_reader_fail(r, IKV_TRACE_EFORMAT, "the trace has no /tokens dataset");
    r->spec.topk = topk;
    int ek = ikv_dset_index("/logits/entropy_topk");
    if (r->ds[ek].id >= 0) {
        char what[200];
        int64_t k = 0;
        if (ikv_h5_attr_read_int(r->ds[ek].id, "k", &k, what, sizeof what) == IKV_TRACE_OK &&
            k >= 1 && k <= r->meta.vocab_size)
            r->spec.entropy_k = (int)k;
        H5Eclear2(H5E_DEFAULT);
    }
    /* A signal counts as present when all of its datasets are. */
    for (unsigned bit = 1; bit & IKV_TRACE_ALL; bit <<= 1) {
        int any = 0, all = 1;
        for (int i = 0; i < IKV_N_DSETS; i++) {
            if (ikv_dset_defs[i].signal != bit)
                continue;
            any = 1;
            all &= r->ds[i].id >= 0;
        }
        if (any && all)
            r->spec.signals |= bit;
    }
    return IKV_TRACE_OK;
}

int ikv_trace_open(ikv_trace_reader **out, const char *path, char *err, size_t errlen)
{
    *out = NULL;
    if (!path) {
        snprintf(err, errlen, "trace reader: no path");
        return IKV_TRACE_EINVAL;
    }
    ikv_h5_quiet();
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return IKV_TRACE_EIO;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        return IKV_TRACE_EFORMAT;
    }
    FILE *probe = fopen(path, "rb");
    if (!probe) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return IKV_TRACE_EIO;
    }
    fclose(probe);
    ikv_trace_reader *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "%s: out of memory", path);
        return IKV_TRACE_ENOMEM;
    }
    r->file = -1;
    r->half_mem = -1;
    for (int i = 0; i < IKV_N_DSETS; i++)
        r->ds[i].id = -1;
    snprintf(r->path, sizeof r->path, "%s", path);
    r->spec.signals = 0;
    int rc = IKV_TRACE_OK;
    htri_t is_h5 = H5Fis_hdf5(path);
    if (is_h5 <= 0) {
        H5Eclear2(H5E_DEFAULT);
        rc = ikv_reader_fail(r, IKV_TRACE_EFORMAT, "not an HDF5 file (%lld bytes)",
                             (long long)st.st_size);
    }
    if (rc == IKV_TRACE_OK) {
        char what[160];
        if (ikv_h5_check_global_heaps(path, what, sizeof what) != IKV_TRACE_OK)
            rc = ikv_reader_fail(r, IKV_TRACE_EFORMAT, "%s", what);
    }
    if (rc == IKV_TRACE_OK) {
        r->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        if (r->file < 0)
            rc = ikv_reader_fail(r, IKV_TRACE_EFORMAT,
                                 "cannot open as HDF5 (truncated or corrupt file)");
    }
    if (rc == IKV_TRACE_OK) {
        r->half_mem = ikv_h5_half_native_type();
        if (r->half_mem < 0)
            rc = ikv_reader_fail(r, IKV_TRACE_EIO, "cannot build the half-precision type");
    }
    if (rc == IKV_TRACE_OK)
        rc = check_identity(r);
    if (rc == IKV_TRACE_OK)
        rc = read_meta(r);
    if (rc == IKV_TRACE_OK)
        rc = open_datasets(r);
    if (rc != IKV_TRACE_OK) {
        snprintf(err, errlen, "%s", r->err);
        ikv_trace_close(r);
        return rc;
    }
    *out = r;
    return IKV_TRACE_OK;
}
