/*
 * Direct chunk writes: a dataset's buffer, one chunk length along T (one
 * block for big datasets, several for small per-position data), cut into
 * its chunks, shuffled and deflated by infokv on every core at once, then
 * handed to HDF5 as finished chunks (H5Dwrite_chunk).
 *
 * HDF5 runs its filters on one thread, and deflate was most of the cost
 * of a capture (float data compresses ~1.2x at ~45 MB/s): the engine waits
 * while a block is written, so the cores it leaves idle can share that
 * work. The bytes are what HDF5's own pipeline stores: its shuffle filter
 * (byte k of every element, for k = 0..size-1) then a zlib stream at the
 * dataset's level, which its deflate filter inflates, so h5py and h5dump
 * read the chunks as usual.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "trace/writer_internal.h"

typedef struct chunk_job {
    hsize_t offset[IKV_TRACE_MAX_RANK]; /* of the chunk in the dataset */
    unsigned char *out;                 /* shuffled and deflated bytes */
    uLongf out_len;
    int failed;
} chunk_job;

int ikv_direct_chunks_possible(const ikv_trace_writer *w, const wdset *d)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* chunks a whole number of blocks long along T; the buffer's bytes
     * are the file's (little-endian) bytes */
    return w->spec.deflate_level > 0 && !d->probs && d->chunk[d->t_axis] % (hsize_t)w->block == 0;
#else
    (void)w, (void)d;
    return 0;
#endif
}

/* Copies the chunk at `offset` out of the buffer ([outer][band][inner])
 * into `raw` (the chunk's shape), zero beyond the dataset's extent and
 * beyond the n positions in the buffer (as HDF5 fills a partial chunk). */
static void gather(const wdset *d, int64_t n, const hsize_t *offset, unsigned char *raw)
{
    const int rank = d->def->rank, last = rank - 1, t = d->t_axis;
    const size_t es = d->esize;
    hsize_t extent[IKV_TRACE_MAX_RANK]; /* of the buffer, T = band */
    hsize_t limit[IKV_TRACE_MAX_RANK];  /* of the data in it, T = n */
    for (int a = 0; a < rank; a++) {
        extent[a] = a == t ? (hsize_t)d->band : d->dims[a];
        limit[a] = a == t ? (hsize_t)n : d->dims[a];
    }
    hsize_t local[IKV_TRACE_MAX_RANK] = {0}; /* position in the chunk, last axis 0 */
    size_t row_bytes = (size_t)d->chunk[last] * es;
    for (;;) {
        /* the buffer coordinates of this row, or a row of padding */
        int inside = 1;
        size_t src = 0;
        for (int a = 0; a < last; a++) {
            hsize_t g = (a == t ? 0 : offset[a]) + local[a];
            inside &= g < limit[a];
            src = src * (size_t)extent[a] + (size_t)g;
        }
        hsize_t g0 = (last == t ? 0 : offset[last]);
        size_t run = 0;
        if (inside && g0 < limit[last]) {
            run = (size_t)(limit[last] - g0 < d->chunk[last] ? limit[last] - g0 : d->chunk[last]);
            memcpy(raw, d->buf + (src * (size_t)extent[last] + (size_t)g0) * es, run * es);
        }
        memset(raw + run * es, 0, row_bytes - run * es);
        raw += row_bytes;
        int a = last - 1;
        while (a >= 0 && ++local[a] == d->chunk[a])
            local[a--] = 0;
        if (a < 0)
            break;
    }
}

/* HDF5's shuffle: byte k of element e goes to k * n + e. */
static void shuffle(const unsigned char *in, unsigned char *out, size_t n, size_t es)
{
    for (size_t k = 0; k < es; k++)
        for (size_t e = 0; e < n; e++)
            out[k * n + e] = in[e * es + k];
}

/* One zlib stream, as HDF5's deflate filter writes it, with the run-length
 * strategy: after the shuffle, float data is byte planes of skewed
 * (exponents) or near-random (low mantissa) bytes, which string matching
 * cannot shorten; Huffman codes and runs (padding) do nearly all of the
 * compression, at several times the speed. Any inflater reads it. */
static int deflate_chunk(const unsigned char *src, size_t n, int level, unsigned char *out,
                         uLongf *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    int rc = deflateInit2(&z, level, Z_DEFLATED, 15, 8, Z_RLE);
    if (rc != Z_OK)
        return rc;
    z.next_in = (Bytef *)(uintptr_t)src;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)*out_len;
    rc = deflate(&z, Z_FINISH);
    *out_len = z.total_out;
    deflateEnd(&z);
    return rc == Z_STREAM_END ? Z_OK : Z_BUF_ERROR;
}

int ikv_write_direct_chunks(ikv_trace_writer *w, wdset *d, int64_t n)
{
    const int rank = d->def->rank, t = d->t_axis;
    hsize_t count[IKV_TRACE_MAX_RANK]; /* chunks along each axis */
    size_t n_chunks = 1, elements = 1;
    for (int a = 0; a < rank; a++) {
        count[a] = a == t ? 1 : (d->dims[a] + d->chunk[a] - 1) / d->chunk[a];
        n_chunks *= (size_t)count[a];
        elements *= (size_t)d->chunk[a];
    }
    const size_t raw_bytes = elements * d->esize;
    chunk_job *jobs = calloc(n_chunks, sizeof *jobs);
    if (!jobs) {
        ikv_writer_msg(w, "out of memory for the chunks of %s", d->def->path);
        return IKV_TRACE_ENOMEM;
    }
    for (size_t c = 0; c < n_chunks; c++) {
        size_t rest = c;
        for (int a = rank - 1; a >= 0; a--) {
            jobs[c].offset[a] = a == t ? (hsize_t)d->band_t0 : (hsize_t)(rest % count[a]) * d->chunk[a];
            rest /= (size_t)count[a];
        }
    }
    const int level = w->spec.deflate_level;
    const uLong bound = compressBound((uLong)raw_bytes);
#pragma omp parallel if (n_chunks > 1)
    {
        unsigned char *raw = malloc(raw_bytes), *shuffled = malloc(raw_bytes);
#pragma omp for schedule(dynamic, 1)
        for (size_t c = 0; c < n_chunks; c++) {
            chunk_job *j = &jobs[c];
            j->out = malloc(bound);
            j->out_len = bound;
            if (!raw || !shuffled || !j->out) {
                j->failed = 1;
                continue;
            }
            gather(d, n, j->offset, raw);
            const unsigned char *src = raw;
            if (d->esize > 1) {
                shuffle(raw, shuffled, elements, d->esize);
                src = shuffled;
            }
            j->failed = deflate_chunk(src, raw_bytes, level, j->out, &j->out_len) != Z_OK;
        }
        free(raw);
        free(shuffled);
    }
    int rc = IKV_TRACE_OK;
    for (size_t c = 0; c < n_chunks && rc == IKV_TRACE_OK; c++) {
        if (jobs[c].failed) {
            ikv_writer_msg(w, "out of memory compressing %s", d->def->path);
            rc = IKV_TRACE_ENOMEM;
        } else if (H5Dwrite_chunk(d->id, H5P_DEFAULT, 0, jobs[c].offset, (size_t)jobs[c].out_len,
                                  jobs[c].out) < 0) {
            ikv_writer_fail(w, "cannot write positions %lld..%lld of %s", (long long)d->band_t0,
                            (long long)(d->band_t0 + n - 1), d->def->path);
            rc = IKV_TRACE_EIO;
        }
    }
    for (size_t c = 0; c < n_chunks; c++)
        free(jobs[c].out);
    free(jobs);
    return rc;
}
