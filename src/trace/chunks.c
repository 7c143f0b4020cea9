/*
 * Direct chunk writes: a dataset's buffer, one chunk length along T (one
 * block for big datasets, several for small per-position data), cut into
 * its chunks, shuffled and deflated by infokv (on the writer's background
 * thread while the engine runs, or on every core at once), then handed to
 * HDF5 as finished chunks (H5Dwrite_chunk).
 *
 * HDF5 runs its filters on one thread, and deflate was most of the cost
 * of a capture (float data compresses ~1.2x at ~45 MB/s), all of it while
 * the engine waited. The bytes are what HDF5's own pipeline stores: its shuffle filter
 * (byte k of every element, for k = 0..size-1) then a zlib stream at the
 * dataset's level, which its deflate filter inflates, so h5py and h5dump
 * read the chunks as usual.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "trace/writer_internal.h"

#ifdef _OPENMP
#include <omp.h>
#endif

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

/* One row of a chunk (along its last axis): `run` elements `step` bytes
 * apart in the buffer, then zeros to `row` elements. Returns the next. */
static inline unsigned char *chunk_row(unsigned char *raw, const unsigned char *from, size_t run, size_t row,
                                       size_t step, size_t es)
{
    if (step == es) {
        memcpy(raw, from, run * es);
    } else { /* T is the last axis: one element per position */
        for (size_t i = 0; i < run; i++)
            memcpy(raw + i * es, from + i * step, es);
    }
    if (run < row)
        memset(raw + run * es, 0, (row - run) * es);
    return raw + row * es;
}

/* Copies the chunk at `offset` out of the buffer into `raw` (the chunk's
 * shape), zero beyond the dataset's extent and beyond the n positions in
 * the buffer (as HDF5 fills a partial chunk). The buffer holds whole
 * positions one after another ([band][outer][inner], as rows arrive), so
 * the writer copies each row with one move and this, on the compressing
 * thread, does the scatter into the chunk's order. */
static void gather(const ikv_band_job *d, const hsize_t *offset, unsigned char *raw)
{
    const int rank = d->rank, last = rank - 1, t = d->t_axis;
    const size_t es = d->esize;
    hsize_t limit[IKV_TRACE_MAX_RANK]; /* of the data in the buffer, T = n */
    size_t stride[IKV_TRACE_MAX_RANK]; /* elements, in the buffer */
    size_t position = 1;               /* elements of one position */
    for (int a = rank - 1; a >= 0; a--) {
        limit[a] = a == t ? (hsize_t)d->n : d->dims[a];
        if (a != t) {
            stride[a] = position;
            position *= (size_t)d->dims[a];
        }
    }
    stride[t] = position;
    const size_t row = (size_t)d->chunk[last];
    const hsize_t g0 = last == t ? 0 : offset[last]; /* first element of a row */
    const size_t run_in = g0 < limit[last] ? (size_t)(limit[last] - g0 < row ? limit[last] - g0 : row) : 0;
    if (rank == 1) {
        chunk_row(raw, d->buf + (size_t)g0 * stride[0] * es, run_in, row, stride[0] * es, es);
        return;
    }
    /* rows go along axis `along` (the one before the last), a fixed
     * stride apart; the axes before it are walked as an odometer */
    const int along = last - 1;
    const hsize_t first = along == t ? 0 : offset[along];
    const size_t rows = (size_t)d->chunk[along];
    const size_t rows_in = first < limit[along] ? (size_t)(limit[along] - first < rows ? limit[along] - first : rows) : 0;
    hsize_t local[IKV_TRACE_MAX_RANK] = {0}; /* position in the chunk, axes before `along` */
    for (;;) {
        int inside = 1;
        size_t base = (size_t)first * stride[along] + (size_t)g0 * stride[last];
        for (int a = 0; a < along; a++) {
            hsize_t g = (a == t ? 0 : offset[a]) + local[a];
            inside &= g < limit[a];
            base += (size_t)g * stride[a];
        }
        for (size_t j = 0; j < rows; j++) {
            const size_t run = inside && j < rows_in ? run_in : 0;
            const unsigned char *from = run ? d->buf + (base + j * stride[along]) * es : d->buf;
            raw = chunk_row(raw, from, run, row, stride[last] * es, es);
        }
        int a = along - 1;
        while (a >= 0 && ++local[a] == d->chunk[a])
            local[a--] = 0;
        if (a < 0)
            break;
    }
}

/* HDF5's shuffle: byte k of element e goes to k * n + e. GCC vectorises
 * these loops at -O2 only when asked: 0.42 us instead of 4.6 us per
 * 16 KiB chunk of float32 (with AVX-512; 0.81 us with SSE2), on the
 * background thread that shares the engine's machine. */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("tree-vectorize")))
#endif
static void shuffle(const unsigned char *in, unsigned char *out, size_t n, size_t es)
{
    for (size_t k = 0; k < es; k++)
        for (size_t e = 0; e < n; e++)
            out[k * n + e] = in[e * es + k];
}

/* Whether deflate would shorten a byte plane by a tenth or more, judged
 * by its order-0 entropy, which Huffman coding reaches (runs, which the
 * RLE strategy adds, are rare in float planes): at most 7.2 bits a byte.
 * A histogram costs a fraction of deflating the plane. */
static int plane_compresses(const unsigned char *p, size_t n)
{
    uint32_t count[4][256]; /* four tables: no stall on a repeated byte */
    memset(count, 0, sizeof count);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        count[0][p[i]]++;
        count[1][p[i + 1]]++;
        count[2][p[i + 2]]++;
        count[3][p[i + 3]]++;
    }
    for (; i < n; i++)
        count[0][p[i]]++;
    double bits = 0.0;
    for (int b = 0; b < 256; b++) {
        const double c = (double)count[0][b] + count[1][b] + count[2][b] + count[3][b];
        if (c > 0.0)
            bits -= c * log2(c / (double)n);
    }
    return bits <= 0.9 * 8.0 * (double)n;
}

/* What one thread needs to compress chunks: the gathered chunk, its
 * shuffle, and a zlib stream reset between chunks. */
struct ikv_chunk_scratch {
    unsigned char *raw, *shuffled; /* [bytes] each */
    size_t bytes;
    z_stream z;
    int level;            /* of z's deflateInit2; 0 before it */
    int current_level;    /* set by deflateParams since (0: stored blocks) */
    int current_strategy; /* likewise */
};

/* Where a zero-padded chunk's data lies in each of its byte planes:
 * `runs` times `data` bytes of data, then `pad` bytes of zeros. */
typedef struct padding {
    size_t runs, data, pad;
} padding;

/* Deflates n bytes as blocks of their own at (level, strategy); level 0
 * makes stored blocks. last: they end the stream. */
static int deflate_piece(ikv_chunk_scratch *s, const unsigned char *src, size_t n, int level, int strategy,
                         int last)
{
    z_stream *z = &s->z;
    if (!level)
        strategy = Z_DEFAULT_STRATEGY;
    if (level != s->current_level || strategy != s->current_strategy) {
        /* flushes nothing: the piece before ended its block */
        if (deflateParams(z, level, strategy) != Z_OK)
            return Z_STREAM_ERROR;
        s->current_level = level;
        s->current_strategy = strategy;
    }
    z->next_in = (Bytef *)(uintptr_t)src;
    z->avail_in = (uInt)n;
    const int rc = deflate(z, last ? Z_FINISH : Z_BLOCK);
    return (last ? rc == Z_STREAM_END : rc == Z_OK && z->avail_in == 0) ? Z_OK : Z_BUF_ERROR;
}

/* One zlib stream, as HDF5's deflate filter writes it (any inflater
 * reads it), one deflate block per byte plane of the shuffled chunk:
 * - planes that compress are Huffman coded, without string matching:
 *   float data is byte planes of skewed (sign and exponent) or
 *   near-random (mantissa) bytes, which matches cannot shorten. On the
 *   exponent planes of q from stories260K and a Llama-3.2-1B-shaped
 *   model, Huffman-only coding ran 186-198 MB/s against 124-146 MB/s for
 *   runs (Z_RLE) and 61-74 MB/s for level 1's matching, and its output
 *   was 0.5-1% smaller than with runs. A zero-padded band (the last one,
 *   at close) takes runs instead, which shrink its padding to nothing;
 * - planes marked in `store` (the dataset's first band showed that they
 *   do not compress) go in stored blocks, a copy: the low mantissa bytes
 *   of q/k/v cost most of the deflate time and saved nothing. In a
 *   zero-padded chunk (pad given) only their data is stored, and each
 *   stretch of padding is a block of runs: on half-padded planes of
 *   random bytes that ran at 515 MB/s against 243 MB/s for runs over the
 *   whole plane, for the same output;
 * - a block per plane also gives each plane its own Huffman codes.
 * The stream is reset, not rebuilt, between chunks: its 256 KiB of state
 * would otherwise be allocated (and faulted in) for every chunk.
 * plane_out gets each plane's share of the output (to a byte). */
static int deflate_planes(ikv_chunk_scratch *s, const unsigned char *src, size_t plane_bytes,
                          size_t n_planes, const unsigned char *store, int level, int strategy,
                          const padding *pad, unsigned char *out, size_t *out_len, uint32_t *plane_out)
{
    z_stream *z = &s->z;
    if (deflateReset(z) != Z_OK)
        return Z_STREAM_ERROR;
    z->next_out = out;
    z->avail_out = (uInt)*out_len;
    for (size_t k = 0; k < n_planes; k++) {
        const unsigned char *plane = src + k * plane_bytes;
        const uLong before = z->total_out;
        const int last = k + 1 == n_planes;
        int rc = Z_OK;
        if (store[k] && pad) {
            const size_t stride = pad->data + pad->pad;
            for (size_t i = 0; i < pad->runs && rc == Z_OK; i++) {
                const int end = last && i + 1 == pad->runs;
                rc = deflate_piece(s, plane + i * stride, pad->data, 0, strategy, 0);
                if (rc == Z_OK)
                    rc = deflate_piece(s, plane + i * stride + pad->data, pad->pad, level, Z_RLE, end);
            }
        } else {
            rc = deflate_piece(s, plane, plane_bytes, store[k] ? 0 : level, strategy, last);
        }
        if (rc != Z_OK)
            return rc;
        plane_out[k] = (uint32_t)(z->total_out - before);
    }
    *out_len = z->total_out;
    return Z_OK;
}

void ikv_band_job_init(ikv_band_job *job, const ikv_trace_writer *w, const wdset *d,
                       const unsigned char *buf, int64_t n)
{
    job->dset = d->id;
    job->sync_fd = w->sync_fd;
    job->rank = d->def->rank;
    job->t_axis = d->t_axis;
    job->esize = d->esize;
    job->level = w->spec.deflate_level;
    job->raw = 0;
    job->raw_scratch = NULL;
    job->zero_padded = 0;
    job->sync_after = 0;
    job->estimate_planes = !d->planes_known;
    memcpy(job->store_plane, d->store_plane, sizeof job->store_plane);
    memcpy(job->dims, d->dims, sizeof job->dims);
    memcpy(job->chunk, d->chunk, sizeof job->chunk);
    job->band = d->band;
    job->t0 = d->band_t0;
    job->n = n;
    job->buf = buf;
    job->chunks = NULL;
    job->n_chunks = 0;
    job->failed = 0;
    job->write_when_done = 0;
    job->written = 0;
    job->sync_errno = 0;
    job->write_rc = IKV_TRACE_OK;
    job->write_err[0] = '\0';
}

ikv_chunk_scratch *ikv_chunk_scratch_new(void)
{
    return calloc(1, sizeof(ikv_chunk_scratch));
}

void ikv_chunk_scratch_free(ikv_chunk_scratch *s)
{
    if (!s)
        return;
    if (s->level)
        deflateEnd(&s->z);
    free(s->raw);
    free(s->shuffled);
    free(s);
}

/* Sizes the scratch for chunks of `bytes` at zlib `level`: 0 or -1. */
static int scratch_fit(ikv_chunk_scratch *s, size_t bytes, int level)
{
    if (bytes > s->bytes) {
        free(s->raw);
        free(s->shuffled);
        s->raw = malloc(bytes);
        s->shuffled = malloc(bytes);
        s->bytes = s->raw && s->shuffled ? bytes : 0;
        if (!s->bytes)
            return -1;
    }
    if (s->level != level) {
        if (s->level)
            deflateEnd(&s->z);
        memset(&s->z, 0, sizeof s->z);
        s->level = deflateInit2(&s->z, level, Z_DEFLATED, 15, 8, Z_HUFFMAN_ONLY) == Z_OK ? level : 0;
        s->current_level = s->level;
        s->current_strategy = Z_HUFFMAN_ONLY;
        if (!s->level)
            return -1;
    }
    return 0;
}

int ikv_band_prepare(ikv_band_job *job)
{
    const int rank = job->rank, t = job->t_axis;
    hsize_t count[IKV_TRACE_MAX_RANK]; /* chunks along each axis */
    size_t n_chunks = 1, elements = 1;
    for (int a = 0; a < rank; a++) {
        count[a] = a == t ? 1 : (job->dims[a] + job->chunk[a] - 1) / job->chunk[a];
        n_chunks *= (size_t)count[a];
        elements *= (size_t)job->chunk[a];
    }
    job->chunk_elements = elements;
    job->claimed = job->finished = 0;
    job->chunks = calloc(n_chunks, sizeof *job->chunks);
    if (!job->chunks) {
        job->failed = 1;
        return -1;
    }
    job->n_chunks = n_chunks;
    for (size_t c = 0; c < n_chunks; c++) {
        size_t rest = c;
        for (int a = rank - 1; a >= 0; a--) {
            job->chunks[c].offset[a] = a == t ? (hsize_t)job->t0 : (hsize_t)(rest % count[a]) * job->chunk[a];
            rest /= (size_t)count[a];
        }
    }
    return 0;
}

int ikv_band_compress_chunk(ikv_band_job *job, size_t c, ikv_chunk_scratch *s)
{
    const size_t elements = job->chunk_elements, raw_bytes = elements * job->esize;
    ikv_chunk_out *o = &job->chunks[c];
    /* a block per plane: a few bytes more than one stream's bound */
    const size_t bound = (size_t)compressBound((uLong)raw_bytes) + 16 * job->esize;
    if (scratch_fit(s, raw_bytes, job->level) != 0 || !(o->bytes = malloc(bound)))
        return -1;
    o->size = bound;
    gather(job, o->offset, s->raw);
    const unsigned char *src = s->raw;
    if (job->esize > 1) {
        shuffle(s->raw, s->shuffled, elements, job->esize);
        src = s->shuffled;
    }
    /* a dataset's first band: each chunk judges its own planes */
    unsigned char store[IKV_MAX_PLANES];
    memcpy(store, job->store_plane, sizeof store);
    for (size_t k = 0; job->estimate_planes && k < job->esize && k < IKV_MAX_PLANES; k++)
        store[k] = !plane_compresses(src + k * elements, elements);
    /* the band's positions come first along T in every run of the chunk
     * over the axes before T (gather) */
    padding pad = {1, 0, 0};
    if (job->zero_padded) {
        size_t inner = 1;
        for (int a = 0; a < job->rank; a++) {
            if (a < job->t_axis)
                pad.runs *= (size_t)job->chunk[a];
            else if (a > job->t_axis)
                inner *= (size_t)job->chunk[a];
        }
        pad.data = (size_t)job->n * inner;
        pad.pad = ((size_t)job->chunk[job->t_axis] - (size_t)job->n) * inner;
    }
    const int padded = job->zero_padded && pad.data > 0 && pad.pad > 0;
    return deflate_planes(s, src, elements, job->esize, store, job->level,
                          job->zero_padded ? Z_RLE : Z_HUFFMAN_ONLY, padded ? &pad : NULL,
                          o->bytes, &o->size, o->plane_bytes) == Z_OK
               ? 0
               : -1;
}

void ikv_band_compress(ikv_band_job *job)
{
    if (ikv_band_prepare(job) != 0)
        return;
    const size_t n_chunks = job->n_chunks;
    int failed = 0;
#pragma omp parallel if (n_chunks > 1) reduction(| : failed)
    {
        ikv_chunk_scratch *s = ikv_chunk_scratch_new();
        size_t first = 0, step = 1;
#ifdef _OPENMP
        first = (size_t)omp_get_thread_num();
        step = (size_t)omp_get_num_threads();
#endif
        for (size_t c = first; c < n_chunks; c += step)
            failed |= !s || ikv_band_compress_chunk(job, c, s) != 0;
        ikv_chunk_scratch_free(s);
    }
    job->failed |= failed;
}

void ikv_band_job_clear(ikv_band_job *job)
{
    for (size_t c = 0; job->chunks && c < job->n_chunks; c++)
        free(job->chunks[c].bytes);
    free(job->chunks);
    job->chunks = NULL;
    job->n_chunks = 0;
}

void ikv_band_write(ikv_band_job *job)
{
    job->written = 1;
    if (job->failed) {
        job->write_rc = IKV_TRACE_ENOMEM;
    } else {
        /* extents grow only here: HDF5's extent update costs about as
         * much as a small chunk */
        hsize_t dims[IKV_TRACE_MAX_RANK];
        memcpy(dims, job->dims, sizeof dims);
        dims[job->t_axis] = (hsize_t)(job->t0 + job->n);
        int ok = H5Dset_extent(job->dset, dims) >= 0;
        const uint32_t filters = job->raw ? IKV_SKIP_FILTERS : 0;
        for (size_t c = 0; c < job->n_chunks && ok; c++) {
            const ikv_chunk_out *o = &job->chunks[c];
            if (job->raw) /* one warm buffer for every chunk: no fresh heap pages at close */
                gather(job, o->offset, job->raw_scratch);
            const size_t size = job->raw ? job->chunk_elements * job->esize : o->size;
            const void *bytes = job->raw ? job->raw_scratch : o->bytes;
            ok = H5Dwrite_chunk(job->dset, H5P_DEFAULT, filters, o->offset, size, bytes) >= 0;
        }
        if (!ok) {
            job->write_rc = IKV_TRACE_EIO;
            ikv_h5_detail(job->write_err, sizeof job->write_err); /* this thread's stack */
        }
        /* A durable trace's syncs, as far as it has come, while the
         * engine runs: close has to fsync before its rename, and that
         * waits for the dirty pages and then for the journal to commit
         * every block allocated since the last sync. start_band
         * (writer.c) decides when. */
        if (ok && job->sync_fd >= 0 && job->sync_after && fdatasync(job->sync_fd) != 0) {
            /* reported here: a descriptor reports a write error once,
             * so close's fsync on it would not see this one again */
            job->write_rc = IKV_TRACE_EIO;
            job->sync_errno = errno;
        }
    }
}

/* After d's first compressed band: which byte planes to store from now
 * on, those that deflate shortened by less than a tenth (on q/k/v, the
 * three mantissa bytes of a float32 save about 0%, the sign and exponent
 * byte 60%). Planes that the first band's chunks judged incompressible
 * were stored there, and count as such. */
static void learn_planes(wdset *d, const ikv_band_job *job)
{
    const uint64_t in = (uint64_t)job->chunk_elements * job->n_chunks;
    for (size_t k = 0; k < job->esize && k < IKV_MAX_PLANES; k++) {
        uint64_t out = 0;
        for (size_t c = 0; c < job->n_chunks; c++)
            out += job->chunks[c].plane_bytes[k];
        d->store_plane[k] = out * 10 > in * 9;
    }
    d->planes_known = 1;
}

int ikv_band_store(ikv_trace_writer *w, wdset *d, ikv_band_job *job)
{
    if (!job->written)
        ikv_band_write(job);
    if (!d->planes_known && !job->raw && job->write_rc == IKV_TRACE_OK)
        learn_planes(d, job);
    const char *path = d->def->path;
    const long long first = (long long)job->t0, last = (long long)(job->t0 + job->n - 1);
    if ((int64_t)d->dims[d->t_axis] < job->t0 + job->n)
        d->dims[d->t_axis] = (hsize_t)(job->t0 + job->n);
    if (job->write_rc == IKV_TRACE_ENOMEM)
        ikv_writer_msg(w, "out of memory compressing positions %lld..%lld of %s", first, last, path);
    else if (job->sync_errno)
        ikv_writer_msg(w, "cannot sync the file after positions %lld..%lld of %s: %s", first, last, path,
                       strerror(job->sync_errno));
    else if (job->write_rc != IKV_TRACE_OK && job->write_err[0])
        ikv_writer_msg(w, "cannot write positions %lld..%lld of %s (HDF5: %s)", first, last, path,
                       job->write_err);
    else if (job->write_rc != IKV_TRACE_OK)
        ikv_writer_msg(w, "cannot write positions %lld..%lld of %s", first, last, path);
    ikv_band_job_clear(job);
    return job->write_rc;
}
