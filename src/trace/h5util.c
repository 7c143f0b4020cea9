/*
 * Thin helpers over the HDF5 C API: quiet errors turned into messages,
 * path checks, and scalar/string/array attributes with type checks (a
 * hostile file must not make us read a huge or mistyped attribute).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace/internal.h"
#include "util/text.h"

/* Longest string attribute we accept (commands can be long). */
#define IKV_MAX_ATTR_STRING (1 << 20)

void ikv_h5_quiet(void)
{
    /* No library shutdown at exit: after a failed close (a full disk),
     * HDF5 1.10 keeps the file half-closed and crashes retrying it in its
     * atexit handler. Everything we open we close ourselves; only the
     * first call can turn it off, later ones fail harmlessly. */
    static int once;
    if (!once) {
        once = 1;
        H5dont_atexit();
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

/* Control characters (HDF5's multi-line messages, strings from a file)
 * become spaces: a message stays one line. */
static void one_line(char *s)
{
    ikv_scrub_controls(s, ' ');
}

static herr_t first_desc(unsigned n, const H5E_error2_t *e, void *data)
{
    char **out = data;
    if (n == 0 && e && e->desc && !*out)
        *out = (char *)e->desc;
    return 0;
}

void ikv_h5_detail(char *buf, size_t buflen)
{
    if (buflen == 0)
        return;
    buf[0] = '\0';
    char *desc = NULL;
    /* Upward: the first entry is the most specific one. */
    if (H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, first_desc, &desc) >= 0 && desc) {
        /* System errors read "file write failed: time = ..., filename =
         * ..., errno = 28, error message = 'No space left on device', ...":
         * keep the head and the system's message. */
        const char *colon = strchr(desc, ':');
        const char *sys = strstr(desc, "error message = '");
        if (colon && sys) {
            sys += strlen("error message = '");
            const char *end = strchr(sys, '\'');
            snprintf(buf, buflen, "%.*s: %.*s", (int)(colon - desc), desc,
                     (int)(end ? end - sys : (long)strlen(sys)), sys);
        } else {
            snprintf(buf, buflen, "%s", desc);
        }
        one_line(buf);
    }
    H5Eclear2(H5E_DEFAULT);
}

void ikv_join_msg(char *out, size_t outlen, const char *path, const char *msg,
                  const char *detail)
{
    if (detail && detail[0])
        snprintf(out, outlen, "%s: %s (HDF5: %s)", path, msg, detail);
    else
        snprintf(out, outlen, "%s: %s", path, msg);
    if (outlen)
        one_line(out);
}

void ikv_h5_vmessage(char *out, size_t outlen, const char *path, int with_detail, const char *fmt,
                     va_list ap)
{
    char msg[512], detail[256] = "";
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (with_detail)
        ikv_h5_detail(detail, sizeof detail);
    else
        H5Eclear2(H5E_DEFAULT);
    ikv_join_msg(out, outlen, path, msg, detail);
}

int ikv_h5_exists(hid_t file, const char *abs_path)
{
    char part[1024];
    size_t len = strlen(abs_path);
    if (len == 0 || len >= sizeof part)
        return 0;
    if (strcmp(abs_path, "/") == 0)
        return 1;
    /* H5Lexists fails rather than answering 0 when a parent is missing,
     * so test each prefix. */
    for (size_t i = 1; i <= len; i++) {
        if (i == len || abs_path[i] == '/') {
            memcpy(part, abs_path, i);
            part[i] = '\0';
            if (H5Lexists(file, part, H5P_DEFAULT) <= 0) {
                H5Eclear2(H5E_DEFAULT);
                return 0;
            }
        }
    }
    return 1;
}

hid_t ikv_h5_lcpl(void)
{
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    if (lcpl >= 0 && H5Pset_create_intermediate_group(lcpl, 1) < 0) {
        H5Pclose(lcpl);
        return -1;
    }
    return lcpl;
}

/* Replaces an existing attribute: attributes are rewritten at close
 * (n_tokens, complete). */
static int write_attr(hid_t obj, const char *name, hid_t file_type, hid_t mem_type, hid_t space,
                      const void *value)
{
    if (H5Aexists(obj, name) > 0 && H5Adelete(obj, name) < 0)
        return -1;
    hid_t a = H5Acreate2(obj, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0)
        return -1;
    int rc = H5Awrite(a, mem_type, value) < 0 ? -1 : 0;
    if (H5Aclose(a) < 0)
        rc = -1;
    return rc;
}

static int write_scalar(hid_t obj, const char *name, hid_t file_type, hid_t mem_type,
                        const void *value)
{
    hid_t space = H5Screate(H5S_SCALAR);
    if (space < 0)
        return -1;
    int rc = write_attr(obj, name, file_type, mem_type, space, value);
    H5Sclose(space);
    return rc;
}

int ikv_h5_attr_write_int(hid_t obj, const char *name, int64_t value)
{
    /* int32 when it fits: what the schema documents and h5py users expect. */
    if (value >= INT32_MIN && value <= INT32_MAX) {
        int32_t v = (int32_t)value;
        return write_scalar(obj, name, H5T_STD_I32LE, H5T_NATIVE_INT32, &v);
    }
    return write_scalar(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}

int ikv_h5_attr_write_double(hid_t obj, const char *name, double value)
{
    return write_scalar(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
}

int ikv_h5_attr_write_string(hid_t obj, const char *name, const char *value)
{
    /* Variable-length UTF-8: h5py reads it as str, not bytes. */
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0)
        return -1;
    int rc = -1;
    if (H5Tset_size(t, H5T_VARIABLE) >= 0 && H5Tset_cset(t, H5T_CSET_UTF8) >= 0) {
        const char *p = value ? value : "";
        rc = write_scalar(obj, name, t, t, &p);
    }
    H5Tclose(t);
    return rc;
}

int ikv_h5_attr_write_i32s(hid_t obj, const char *name, const int32_t *values, int n)
{
    hsize_t dims[1] = {(hsize_t)n};
    hid_t space = H5Screate_simple(1, dims, NULL);
    if (space < 0)
        return -1;
    int rc = write_attr(obj, name, H5T_STD_I32LE, H5T_NATIVE_INT32, space, values);
    H5Sclose(space);
    return rc;
}

/* Opens attribute `name` and checks it holds `want_n` elements (or at most
 * max_n when want_n < 0) of class `cls`. */
static hid_t open_attr(hid_t obj, const char *name, H5T_class_t cls, hssize_t want_n,
                       hssize_t max_n, hssize_t *n_out, int *status, char *what, size_t wlen)
{
    *status = IKV_TRACE_OK;
    htri_t ex = H5Aexists(obj, name);
    if (ex <= 0) {
        H5Eclear2(H5E_DEFAULT);
        *status = IKV_TRACE_EABSENT;
        return -1;
    }
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) {
        snprintf(what, wlen, "cannot open attribute '%s'", name);
        *status = IKV_TRACE_EFORMAT;
        return -1;
    }
    hid_t t = H5Aget_type(a);
    hid_t s = H5Aget_space(a);
    H5T_class_t got = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
    hssize_t n = s >= 0 ? H5Sget_simple_extent_npoints(s) : -1;
    if (t >= 0)
        H5Tclose(t);
    if (s >= 0)
        H5Sclose(s);
    const char *kind = cls == H5T_STRING ? "a string" : cls == H5T_FLOAT ? "a number" : "an integer";
    if (got != cls && !(cls == H5T_FLOAT && got == H5T_INTEGER)) {
        snprintf(what, wlen, "attribute '%s' is not %s", name, kind);
        *status = IKV_TRACE_EFORMAT;
    } else if (want_n >= 0 && n != want_n) {
        snprintf(what, wlen, "attribute '%s' holds %lld values, expected %lld", name,
                 (long long)n, (long long)want_n);
        *status = IKV_TRACE_EFORMAT;
    } else if (want_n < 0 && (n < 0 || n > max_n)) {
        snprintf(what, wlen, "attribute '%s' holds %lld values (at most %lld allowed)", name,
                 (long long)n, (long long)max_n);
        *status = IKV_TRACE_EFORMAT;
    }
    if (*status != IKV_TRACE_OK) {
        H5Aclose(a);
        return -1;
    }
    if (n_out)
        *n_out = n;
    return a;
}

int ikv_h5_attr_read_int(hid_t obj, const char *name, int64_t *value, char *what, size_t wlen)
{
    int status;
    hid_t a = open_attr(obj, name, H5T_INTEGER, 1, 1, NULL, &status, what, wlen);
    if (a < 0)
        return status;
    long long v = 0;
    int rc = H5Aread(a, H5T_NATIVE_LLONG, &v) < 0 ? IKV_TRACE_EFORMAT : IKV_TRACE_OK;
    H5Aclose(a);
    if (rc != IKV_TRACE_OK)
        snprintf(what, wlen, "cannot read attribute '%s'", name);
    else
        *value = (int64_t)v;
    return rc;
}

int ikv_h5_attr_read_double(hid_t obj, const char *name, double *value, char *what,
                            size_t wlen)
{
    int status;
    hid_t a = open_attr(obj, name, H5T_FLOAT, 1, 1, NULL, &status, what, wlen);
    if (a < 0)
        return status;
    double v = 0;
    int rc = H5Aread(a, H5T_NATIVE_DOUBLE, &v) < 0 ? IKV_TRACE_EFORMAT : IKV_TRACE_OK;
    H5Aclose(a);
    if (rc != IKV_TRACE_OK)
        snprintf(what, wlen, "cannot read attribute '%s'", name);
    else
        *value = v;
    return rc;
}

int ikv_h5_attr_read_string(hid_t obj, const char *name, char *buf, size_t buflen, char *what,
                            size_t wlen)
{
    int status;
    hid_t a = open_attr(obj, name, H5T_STRING, 1, 1, NULL, &status, what, wlen);
    if (a < 0)
        return status;
    int rc = IKV_TRACE_EFORMAT;
    hid_t ft = H5Aget_type(a);
    htri_t vlen = ft >= 0 ? H5Tis_variable_str(ft) : -1;
    size_t fsize = ft >= 0 ? H5Tget_size(ft) : 0;
    hid_t mt = H5Tcopy(H5T_C_S1);
    if (mt >= 0 && ft >= 0)
        H5Tset_cset(mt, H5Tget_cset(ft)); /* HDF5 will not convert between sets */
    if (vlen > 0 && mt >= 0 && H5Tset_size(mt, H5T_VARIABLE) >= 0) {
        char *p = NULL;
        if (H5Aread(a, mt, &p) >= 0) {
            snprintf(buf, buflen, "%s", p ? p : "");
            rc = IKV_TRACE_OK;
        }
        if (p)
            H5free_memory(p);
    } else if (vlen == 0 && mt >= 0 && fsize > 0 && fsize <= IKV_MAX_ATTR_STRING &&
               H5Tset_size(mt, fsize + 1) >= 0) {
        /* Fixed-length strings (other writers) are read null-terminated. */
        char *tmp = calloc(1, fsize + 1);
        if (tmp && H5Aread(a, mt, tmp) >= 0) {
            tmp[fsize] = '\0';
            snprintf(buf, buflen, "%s", tmp);
            rc = IKV_TRACE_OK;
        }
        free(tmp);
    }
    if (mt >= 0)
        H5Tclose(mt);
    if (ft >= 0)
        H5Tclose(ft);
    H5Aclose(a);
    if (rc != IKV_TRACE_OK) {
        H5Eclear2(H5E_DEFAULT);
        snprintf(what, wlen, "cannot read string attribute '%s'", name);
    }
    return rc;
}

int ikv_h5_attr_read_i32s(hid_t obj, const char *name, int32_t *values, int max_n, int *n,
                          char *what, size_t wlen)
{
    int status;
    hssize_t got = 0;
    hid_t a = open_attr(obj, name, H5T_INTEGER, -1, max_n, &got, &status, what, wlen);
    if (a < 0)
        return status;
    int rc = IKV_TRACE_OK;
    if (got > 0 && H5Aread(a, H5T_NATIVE_INT32, values) < 0) {
        H5Eclear2(H5E_DEFAULT);
        snprintf(what, wlen, "cannot read attribute '%s'", name);
        rc = IKV_TRACE_EFORMAT;
    }
    H5Aclose(a);
    *n = (int)got;
    return rc;
}
