/*
 * The writer's handle, shared by writer.c (schema datasets, rows, close)
 * and extra.c (datasets and attributes outside the schema).
 */
#ifndef IKV_TRACE_WRITER_INTERNAL_H
#define IKV_TRACE_WRITER_INTERNAL_H

#include <pthread.h>

#include "trace/internal.h"

/* H5Dwrite_chunk's filter mask for a chunk stored as it is: bit i says
 * that filter i of the pipeline (shuffle, deflate) was skipped, and
 * readers skip it too. */
#define IKV_SKIP_FILTERS 0x3u

/* Byte planes of an element at most (float32, int32). */
#define IKV_MAX_PLANES 4

/* One compressed chunk of a band, ready for H5Dwrite_chunk. */
typedef struct ikv_chunk_out {
    hsize_t offset[IKV_TRACE_MAX_RANK]; /* of the chunk in the dataset */
    unsigned char *bytes;               /* shuffled and deflated, or raw */
    size_t size;
    uint32_t plane_bytes[IKV_MAX_PLANES]; /* deflated size of each byte plane */
} ikv_chunk_out;

/* A full band of a directly written dataset, compressed on the writer's
 * background thread (compressor.c) or on the caller's cores (chunks.c),
 * and written by whichever thread finishes it when HDF5 is thread-safe.
 * Everything the work reads is copied in at submission, so the writer may
 * go on filling its other buffer meanwhile; a dataset has at most one
 * band in flight, so its extent only grows. */
typedef struct ikv_band_job {
    hid_t dset;                            /* where the chunks go */
    int sync_fd;                           /* the file, to fdatasync after
                                              a write; -1 if none */
    int rank, t_axis;
    size_t esize;
    int level;                             /* zlib level, 1..9 */
    unsigned char store_plane[IKV_MAX_PLANES]; /* 1: plane k in stored
                                              blocks (it did not compress) */
    int estimate_planes;                   /* the dataset's first band: each
                                              chunk picks its stored planes
                                              by their entropy instead */
    int zero_padded;                       /* the band ends before its
                                              chunks do (close): planes
                                              deflated by runs, or stored
                                              but for their padding */
    int sync_after;                        /* fdatasync once written (on the
                                              background thread only) */
    int raw;                               /* store the chunks unfiltered
                                              (IKV_SKIP_FILTERS): the band
                                              left at close */
    unsigned char *raw_scratch;            /* raw: room for one chunk, where
                                              each is gathered and written */
    hsize_t dims[IKV_TRACE_MAX_RANK];      /* dataset extent (T: unused) */
    hsize_t chunk[IKV_TRACE_MAX_RANK];     /* chunk shape */
    int64_t band;                          /* T extent of the buffer */
    int64_t t0, n;                         /* first position, positions held */
    const unsigned char *buf;              /* [band][outer][inner] */
    ikv_chunk_out *chunks;                 /* [n_chunks] results */
    size_t n_chunks;
    size_t chunk_elements;                 /* elements of one chunk */
    int failed;                            /* out of memory or zlib error */
    int write_when_done;                   /* the finishing thread writes it */
    int written;                           /* ikv_band_write ran */
    int write_rc;                          /* its IKV_TRACE_* code */
    int sync_errno;                        /* fdatasync failed: its errno */
    char write_err[256];                   /* HDF5's detail of a failed write */
    int state;                             /* IKV_JOB_* (compressor's lock) */
    size_t claimed, finished;              /* chunks taken, chunks done (same) */
    struct ikv_band_job *next;             /* queue link */
} ikv_band_job;

enum { IKV_JOB_IDLE = 0, IKV_JOB_QUEUED, IKV_JOB_RUNNING, IKV_JOB_DONE };

typedef struct row_field row_field;

/* One schema dataset being written. */
typedef struct wdset {
    const ikv_dset_def *def;
    const row_field *field;          /* where rows carry its data (writer.c) */
    hid_t id;
    int half;                        /* stored as binary16 */
    int probs;                       /* two T axes (attn/probs) */
    size_t esize;                    /* bytes per element in file and buffer */
    int t_axis;                      /* index of the (first) T axis */
    hsize_t dims[IKV_TRACE_MAX_RANK]; /* current extent */
    hsize_t chunk[IKV_TRACE_MAX_RANK]; /* chunk shape */
    size_t cache_bytes;              /* HDF5 chunk cache to ask for (0: default) */
    int64_t outer;                   /* product of the axes before T */
    int64_t inner;                   /* product of the axes after T (probs: W) */
    int direct;                      /* written as finished chunks (chunks.c) */
    int64_t band;                    /* positions the buffer holds: B, or for
                                        direct writes the chunk's T extent
                                        (a whole number of blocks) */
    int64_t band_t0;                 /* position of the buffer's first row */
    unsigned char *buf;              /* [outer][band][inner], or direct:
                                        [band][outer][inner]; in the writer's
                                        arena (probs: its own allocation) */
    size_t buf_bytes;
    unsigned char *spare;            /* direct: the other band buffer, filled
                                        while `job` compresses */
    ikv_band_job job;                /* direct: the band being compressed */
    int planes_known;                /* direct: the first band was stored,
                                        and store_plane says what it showed */
    unsigned char store_plane[IKV_MAX_PLANES]; /* byte planes that saved
                                        under 10% in the first band */
    int in_flight;                   /* job was submitted and not finished
                                        (the writer's own flag: job.state
                                        belongs to the compressor's lock) */
} wdset;

typedef struct ikv_compressor ikv_compressor;
typedef struct ikv_chunk_scratch ikv_chunk_scratch;

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
    ikv_compressor *compressor; /* background thread, NULL until first used */
    ikv_chunk_scratch *scratch; /* this thread's, to help the compressor */
    int no_thread;              /* the thread could not be started */
    int write_in_thread;        /* HDF5 is thread-safe: bands are written
                                   by the thread that compresses them */
    int sync_fd;                /* descriptor of the temporary file, for
                                   the syncs; -1 if none */
    size_t unsynced_bytes;      /* band bytes handed over since the last
                                   job that fdatasyncs (spec.durable) */
    size_t synced_bytes;        /* ... before it */
    pthread_t create_thread;    /* creating the file (create_file) */
    int creating;               /* create_thread runs or was not joined */
    int create_pending;         /* spec.deferred_create: nothing created
                                   the file yet (ikv_writer_file_ready) */
    int create_rc;              /* its result; create_err says why it
                                   failed, copied to err once joined */
    char create_err[1024];      /* written by whichever thread creates
                                   the file (create_file) */
    unsigned char *arena;       /* every band buffer but attn/probs' */
    size_t arena_bytes;
    char temp_path[4096];
    char final_path[4096];
    char err[1024];
};

/* Direct chunk writes (chunks.c): 1 if d, with its chunk shape chosen,
 * can be written as whole chunks (zero-padded past the data) shuffled and
 * deflated by us: the buffer then collects a whole chunk length along T
 * before it is written. */
int ikv_direct_chunks_possible(const ikv_trace_writer *w, const wdset *d);
/* Fills job's input from d for the band of n positions from d->band_t0
 * held in `buf`. */
void ikv_band_job_init(ikv_band_job *job, const ikv_trace_writer *w, const wdset *d,
                       const unsigned char *buf, int64_t n);
/* Lists the band's chunks (job->chunks, n_chunks): 0, or -1 with
 * job->failed set when out of memory. */
int ikv_band_prepare(ikv_band_job *job);
/* Per-thread scratch for compressing chunks (NULL: out of memory). */
ikv_chunk_scratch *ikv_chunk_scratch_new(void);
void ikv_chunk_scratch_free(ikv_chunk_scratch *s);
/* Gathers, shuffles and deflates chunk c of a prepared band: 0 or -1.
 * (A raw band's chunks are gathered as they are written.) */
int ikv_band_compress_chunk(ikv_band_job *job, size_t c, ikv_chunk_scratch *s);
/* Prepares the band and compresses every chunk on every OpenMP thread;
 * sets job->failed. */
void ikv_band_compress(ikv_band_job *job);
/* Extends the dataset over the job's positions and writes its chunks
 * (a raw band's, gathered one by one into job->raw_scratch);
 * sets written, write_rc and write_err. Any thread, when HDF5 is
 * thread-safe; touches neither the writer nor its datasets, nor the
 * chunk list that other threads read under the compressor's lock. */
void ikv_band_write(ikv_band_job *job);
/* Writes the band if no thread did, reports how it went (0 or an
 * IKV_TRACE_E* code with w->err set) and frees its chunks. The writer's
 * thread only, once the job is done. */
int ikv_band_store(ikv_trace_writer *w, wdset *d, ikv_band_job *job);
/* Frees the job's results (after a store, or when abandoning them). */
void ikv_band_job_clear(ikv_band_job *job);

/* The background compression thread (compressor.c): one per writer,
 * taking the chunks of queued bands first in, first out. */
ikv_compressor *ikv_compressor_create(void); /* NULL: out of memory or no thread */
/* Queues a prepared band (ikv_band_prepare). */
void ikv_compressor_submit(ikv_compressor *c, ikv_band_job *job);
/* Returns when the job is done, compressing its unclaimed chunks on the
 * calling thread meanwhile (scratch: the caller's). */
void ikv_compressor_wait(ikv_compressor *c, ikv_band_job *job, ikv_chunk_scratch *scratch);
/* 1 if the job is done (never blocks on the compression itself). */
int ikv_compressor_done(ikv_compressor *c, ikv_band_job *job);
/* Asks the thread to end after its current chunk, without waiting;
 * queued jobs are dropped (their state goes back to IKV_JOB_IDLE) and
 * their results must be cleared. */
void ikv_compressor_stop(ikv_compressor *c);
/* Stops the thread (if not yet), waits for it and frees everything. */
void ikv_compressor_free(ikv_compressor *c);

/* Waits until the file and its datasets exist (they are created on a
 * thread of their own while the caller goes on): IKV_TRACE_OK, or the
 * creation's failure (w->err, and the writer is failed). Before any use
 * of w->file or a dataset id. */
int ikv_writer_file_ready(ikv_trace_writer *w);

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
