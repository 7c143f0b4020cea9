/*
 * The reader's handle, shared by reader.c (open, validation, metadata,
 * listing) and read.c (data reads).
 */
#ifndef IKV_TRACE_READER_INTERNAL_H
#define IKV_TRACE_READER_INTERNAL_H

#include "trace/internal.h"

/* One schema dataset found in the file. */
typedef struct rdset {
    hid_t id;                        /* -1 when absent */
    int half;                        /* binary16 in the file: we widen it */
    int rank;
    int64_t dims[IKV_TRACE_MAX_RANK]; /* as served: T axes cut to n_tokens */
} rdset;

struct ikv_trace_reader {
    hid_t file;
    hid_t half_mem;     /* binary16 in native byte order */
    ikv_trace_meta meta;
    ikv_trace_spec spec; /* layers points to `layers` */
    int *layers;        /* [n_slots] */
    int n_slots;        /* L' */
    rdset ds[IKV_N_DSETS]; /* indexed like ikv_dset_defs */
    char path[4096];
    char err[1024];
};

/* Sets r->err to "path: message (HDF5: detail)"; returns status. */
int ikv_reader_fail(ikv_trace_reader *r, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif
