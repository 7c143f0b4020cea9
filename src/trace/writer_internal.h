/*
 * The writer's handle, shared by writer.c (schema datasets, rows, close)
 * and extra.c (datasets and attributes outside the schema).
 */
#ifndef IKV_TRACE_WRITER_INTERNAL_H
#define IKV_TRACE_WRITER_INTERNAL_H

#include "trace/internal.h"

/* One schema dataset being written. */
typedef struct wdset {
    const ikv_dset_def *def;
    hid_t id;
    int half;                        /* stored as binary16 */
    int probs;                       /* two T axes (attn/probs) */
    size_t esize;                    /* bytes per element in file and buffer */
    int t_axis;                      /* index of the (first) T axis */
    hsize_t dims[IKV_TRACE_MAX_RANK]; /* current extent */
    hsize_t chunk[IKV_TRACE_MAX_RANK]; /* chunk shape */
    int64_t outer;                   /* product of the axes before T */
    int64_t inner;                   /* product of the axes after T (probs: W) */
    int direct;                      /* written as finished chunks (chunks.c) */
    int64_t band;                    /* positions the buffer holds: B, or for
                                        direct writes the chunk's T extent
                                        (a whole number of blocks) */
    int64_t band_t0;                 /* position of the buffer's first row */
    unsigned char *buf;              /* [outer][band][inner] */
    size_t buf_bytes;
} wdset;

struct ikv_trace_writer {
    hid_t file;
    hid_t half_mem;     /* binary16 in native byte order */
    ikv_trace_meta meta;
    ikv_trace_spec spec; /* layers points to `layers` */
    int *layers;        /* [n_slots] model layer of each slot */
    int *slot_of;       /* [meta.n_layers] slot of each model layer, or -1 */
    int n_slots;        /* L' */
    int block;          /* B: positions per block = T extent of big chunks */
    int64_t t0;         /* first position of the current block */
    int n_block;        /* positions in the current block */
    int64_t n_written;  /* positions appended */
    wdset ds[IKV_N_DSETS];
    int n_ds;
    int failed;         /* a write failed: the file can no longer be trusted */
    char temp_path[4096];
    char final_path[4096];
    char err[1024];
};

/* Direct chunk writes (chunks.c): 1 if d, with its chunk shape chosen,
 * can be written as whole chunks (zero-padded past the data) shuffled and
 * deflated by us, in parallel: the buffer then collects a whole chunk
 * length along T before it is written. */
int ikv_direct_chunks_possible(const ikv_trace_writer *w, const wdset *d);
/* Writes the buffer's n positions (from d->band_t0) that way; the extent
 * already covers them. 0 or an IKV_TRACE_E* code with w->err set. */
int ikv_write_direct_chunks(ikv_trace_writer *w, wdset *d, int64_t n);

/* Sets w->err to "final_path: message (HDF5: detail)". */
void ikv_writer_fail(ikv_trace_writer *w, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Sets w->err to "final_path: message" (no HDF5 detail). */
void ikv_writer_msg(ikv_trace_writer *w, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif
