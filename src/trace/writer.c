/*
 * The trace writer: creates the schema's datasets for the selected
 * signals, takes one row of signals per position, buffers a block of
 * positions and writes it as whole chunks (one H5Dwrite per dataset and
 * block), and at close records n_tokens/complete and renames the
 * temporary file to its final name.
 *
 * Buffers have the dataset's shape with the T axis cut to the block
 * length B: [outer][B][inner], where outer is the product of the axes
 * before T (layers, heads) and inner of those after it (head dim, ...).
 * Datasets written as finished chunks (chunks.c: every deflated dataset
 * but attn/probs) keep a whole chunk length instead, position after
 * position, [band][outer][inner] (a row is one copy; the compressing
 * thread cuts the chunks out), and a band is several blocks for small
 * per-position data. attn/probs is
 * [L'][H][B][W] with W = t0 + B columns, zero above the diagonal.
 *
 * Where HDF5 is thread-safe the file and its datasets are created on a
 * thread of their own (create_file) while the caller starts its model;
 * whatever needs the file waits for it (ikv_writer_file_ready). With
 * spec.deferred_create the first call that needs the file creates it on
 * its own thread instead (the recorder's, ikv_trace_writer_prepare). At close
 * the band each finished-chunk dataset ends on is stored raw or
 * compressed, whichever keeps close short (store_last_bands).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "trace/writer_internal.h"
#include "util/bigalloc.h"
#include "util/thread.h"
#include "util/outfile.h"

/* Target and limits of chunk sizes (bytes). Chunks of the big per-layer
 * tensors hold exactly one block of positions so that every write covers
 * whole chunks; small datasets get longer chunks whose partly filled band
 * stays in the writer's buffer (or, without deflate, HDF5's chunk cache). */
#define CHUNK_TARGET (256 * 1024)
#define CHUNK_MAX (4 * 1024 * 1024)
#define BAND_BUDGET (4 * 1024 * 1024)
/* Deflated bands go to the background thread when full: shorter bands
 * start that work sooner and leave less of it for close. */
#define STREAM_BAND_BUDGET (16 * 1024)
/* Band bytes before the background thread's first fdatasync, and at
 * least between two (start_band). */
#define SYNC_MIN (1024 * 1024)
#define DEFAULT_BLOCK 64
#define MAX_BLOCK 4096 /* buffers hold a block of every selected signal */


/* As ikv_writer_fail, into w->create_err: the creating thread's own
 * buffer (the caller's thread may be writing w->err meanwhile). */
static void create_fail(ikv_trace_writer *w, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void create_fail(ikv_trace_writer *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ikv_h5_vmessage(w->create_err, sizeof w->create_err, w->final_path, 1, fmt, ap);
    va_end(ap);
}

void ikv_writer_fail(ikv_trace_writer *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ikv_h5_vmessage(w->err, sizeof w->err, w->final_path, 1, fmt, ap);
    va_end(ap);
}

void ikv_writer_msg(ikv_trace_writer *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ikv_h5_vmessage(w->err, sizeof w->err, w->final_path, 0, fmt, ap);
    va_end(ap);
}

const char *ikv_trace_writer_error(const ikv_trace_writer *w)
{
    return w ? w->err : "no writer";
}

int ikv_trace_writer_positions(const ikv_trace_writer *w)
{
    return w ? (int)w->n_written : 0;
}

int ikv_trace_writer_layer_slot(const ikv_trace_writer *w, int layer)
{
    if (!w || layer < 0 || layer >= w->meta.n_layers)
        return -1;
    return w->slot_of[layer];
}

static int check_spec(const ikv_trace_meta *meta, const ikv_trace_spec *spec, char *what,
                      size_t wlen)
{
    if (spec->signals & ~(unsigned)IKV_TRACE_ALL) {
        snprintf(what, wlen, "unknown signal bits 0x%x", spec->signals & ~(unsigned)IKV_TRACE_ALL);
        return -1;
    }
    if (spec->dtype != IKV_TRACE_F32 && spec->dtype != IKV_TRACE_F16) {
        snprintf(what, wlen, "unknown dtype %d", (int)spec->dtype);
        return -1;
    }
    if ((spec->signals & IKV_TRACE_LOGITS_SUMMARY) &&
        (spec->topk < 1 || spec->topk > meta->vocab_size || spec->entropy_k < 1 ||
         spec->entropy_k > meta->vocab_size)) {
        snprintf(what, wlen, "topk = %d and entropy_k = %d must lie in [1, vocab_size = %d]",
                 spec->topk, spec->entropy_k, meta->vocab_size);
        return -1;
    }
    if (spec->chunk_tokens < 0 || spec->chunk_tokens > MAX_BLOCK) {
        snprintf(what, wlen, "chunk_tokens = %d out of range [0, %d]", spec->chunk_tokens,
                 MAX_BLOCK);
        return -1;
    }
    if (spec->deflate_level < 0 || spec->deflate_level > 9) {
        snprintf(what, wlen, "deflate_level = %d out of range [0, 9]", spec->deflate_level);
        return -1;
    }
    if (spec->expected_tokens < 0) {
        snprintf(what, wlen, "expected_tokens = %d is negative", spec->expected_tokens);
        return -1;
    }
    if (spec->layers) {
        if (spec->n_layers < 1 || spec->n_layers > meta->n_layers) {
            snprintf(what, wlen, "layer subset of %d layers, model has %d", spec->n_layers,
                     meta->n_layers);
            return -1;
        }
        for (int i = 0; i < spec->n_layers; i++) {
            int l = spec->layers[i];
            if (l < 0 || l >= meta->n_layers || (i > 0 && l <= spec->layers[i - 1])) {
                snprintf(what, wlen,
                         "layer subset must be ascending model layers in [0, %d); got %d at %d",
                         meta->n_layers, l, i);
                return -1;
            }
        }
    } else if (spec->n_layers != 0) {
        snprintf(what, wlen, "n_layers = %d without a layer list", spec->n_layers);
        return -1;
    }
    return 0;
}

static int write_root_attrs(ikv_trace_writer *w)
{
    const ikv_trace_meta *m = &w->meta;
    hid_t root = w->file;
    int32_t *layers = malloc(sizeof *layers * (size_t)w->n_slots);
    if (!layers)
        return -1;
    for (int i = 0; i < w->n_slots; i++)
        layers[i] = w->layers[i];
    int bad = ikv_h5_attr_write_string(root, "format", IKV_TRACE_FORMAT) ||
              ikv_h5_attr_write_int(root, "version", IKV_TRACE_VERSION) ||
              ikv_h5_attr_write_string(root, "model_name", m->model_name) ||
              ikv_h5_attr_write_string(root, "arch", m->arch) ||
              ikv_h5_attr_write_int(root, "n_layers", m->n_layers) ||
              ikv_h5_attr_write_int(root, "n_heads", m->n_heads) ||
              ikv_h5_attr_write_int(root, "n_kv_heads", m->n_kv_heads) ||
              ikv_h5_attr_write_int(root, "head_dim", m->head_dim) ||
              ikv_h5_attr_write_int(root, "dim", m->dim) ||
              ikv_h5_attr_write_int(root, "hidden_dim", m->hidden_dim) ||
              ikv_h5_attr_write_int(root, "vocab_size", m->vocab_size) ||
              ikv_h5_attr_write_double(root, "rope_theta", m->rope_theta) ||
              ikv_h5_attr_write_double(root, "norm_eps", m->norm_eps) ||
              ikv_h5_attr_write_int(root, "n_prompt", m->n_prompt) ||
              ikv_h5_attr_write_int(root, "n_tokens", 0) ||
              ikv_h5_attr_write_int(root, "complete", 0) ||
              ikv_h5_attr_write_string(root, "producer", m->producer) ||
              ikv_h5_attr_write_string(root, "created", m->created) ||
              ikv_h5_attr_write_string(root, "model_sha256", m->model_sha256) ||
              ikv_h5_attr_write_string(root, "command", m->command) ||
              ikv_h5_attr_write_i32s(root, "layers", layers, w->n_slots) ||
              ikv_h5_attr_write_string(root, "dtype",
                                       w->spec.dtype == IKV_TRACE_F16 ? "f16" : "f32");
    free(layers);
    return bad ? -1 : 0;
}

/* Where each schema dataset's data sits in a row: a value of the row
 * itself, or a pointer to an array. */
typedef struct row_field {
    const char *path;
    size_t offset;
    int indirect;
} row_field;

static const row_field row_fields[] = {
    {"/tokens", offsetof(ikv_trace_row, token), 0},
    {"/logits/entropy", offsetof(ikv_trace_row, entropy), 0},
    {"/logits/entropy_topk", offsetof(ikv_trace_row, entropy_topk), 0},
    {"/logits/logprob", offsetof(ikv_trace_row, logprob), 0},
    {"/logits/topk_ids", offsetof(ikv_trace_row, topk_ids), 1},
    {"/logits/topk_logprobs", offsetof(ikv_trace_row, topk_logprobs), 1},
    {"/logits/full", offsetof(ikv_trace_row, logits), 1},
    {"/hidden/evolution", offsetof(ikv_trace_row, evolution), 1},
    {"/hidden/states", offsetof(ikv_trace_row, states), 1},
    {"/qkv/q", offsetof(ikv_trace_row, q), 1},
    {"/qkv/k", offsetof(ikv_trace_row, k), 1},
    {"/qkv/v", offsetof(ikv_trace_row, v), 1},
    {"/attn/lse", offsetof(ikv_trace_row, lse), 1},
    {"/attn/out", offsetof(ikv_trace_row, out), 1},
    {"/attn/probs", offsetof(ikv_trace_row, probs), 1},
};

/* The row field of a schema path, or NULL (then no row carries it). */
static const row_field *find_row_field(const char *path)
{
    for (size_t i = 0; i < sizeof row_fields / sizeof row_fields[0]; i++)
        if (strcmp(row_fields[i].path, path) == 0)
            return &row_fields[i];
    return NULL;
}

/* Chunk shape and chunk-cache size for one dataset; see the top comment. */
static void choose_chunk(const ikv_trace_writer *w, wdset *d, hsize_t *chunk,
                         size_t *cache_bytes)
{
    const ikv_dset_def *def = d->def;
    hsize_t B = (hsize_t)w->block;
    int64_t pos_elems = 1; /* elements of one position in the whole dataset */
    int64_t slice = 1;     /* elements of one position within one chunk */
    for (int i = 0; i < def->rank; i++) {
        ikv_axis ax = def->axes[i];
        hsize_t full = (hsize_t)ikv_axis_size(ax, &w->meta, w->n_slots, w->spec.topk, 0);
        switch (ax) {
        case IKV_AX_T: chunk[i] = B; continue;
        case IKV_AX_L:
        case IKV_AX_L1: chunk[i] = 1; break;
        case IKV_AX_H:
        case IKV_AX_G: chunk[i] = w->spec.chunk_all_heads ? full : 1; break;
        default: chunk[i] = full; break;
        }
        pos_elems *= (int64_t)full;
        slice *= (int64_t)chunk[i];
    }
    *cache_bytes = 0; /* HDF5's default */
    int64_t esize = (int64_t)d->esize;
    int t_ax = d->t_axis;
    /* Small per-position data (1-D signals, lse, evolution, small models):
     * lengthen the chunk along T while the partly filled band fits the
     * cache budget. attn/probs keeps square [.., B, B] chunks. */
    if (!d->probs && pos_elems * esize * (int64_t)B * 2 <= BAND_BUDGET) {
        int64_t want = (CHUNK_TARGET + slice * esize * (int64_t)B - 1) / (slice * esize * (int64_t)B);
        int64_t budget = w->spec.deflate_level > 0 ? STREAM_BAND_BUDGET : BAND_BUDGET;
        int64_t band_max = budget / (pos_elems * esize * (int64_t)B);
        int64_t m = want < band_max ? want : band_max;
        if (w->spec.expected_tokens > 0) {
            int64_t exp_blocks = (w->spec.expected_tokens + (int64_t)B - 1) / (int64_t)B;
            if (m > exp_blocks)
                m = exp_blocks;
        }
        if (m * (int64_t)B > IKV_MAX_CHUNK_TOKENS)
            m = IKV_MAX_CHUNK_TOKENS / (int64_t)B;
        if (m < 1)
            m = 1;
        chunk[t_ax] = (hsize_t)m * B;
        if (m > 1)
            *cache_bytes = (size_t)(pos_elems * esize * (int64_t)chunk[t_ax]) + 1024 * 1024;
    }
    /* At most CHUNK_MAX per chunk (wide rows, long blocks, many heads):
     * split the heads, then the last axis (V, D, d, or probs' columns).
     * A block still covers every chunk it touches in one write. */
    int last = def->rank - 1;
    for (;;) {
        int64_t bytes = esize;
        for (int i = 0; i < def->rank; i++)
            bytes *= (int64_t)chunk[i];
        if (bytes <= CHUNK_MAX)
            break;
        int ax = -1;
        for (int i = 0; i < def->rank; i++)
            if ((def->axes[i] == IKV_AX_H || def->axes[i] == IKV_AX_G) && chunk[i] > 1)
                ax = i;
        if (ax < 0 && chunk[last] > 1 && (last != t_ax || d->probs))
            ax = last;
        if (ax < 0)
            break;
        chunk[ax] = (chunk[ax] + 1) / 2;
    }
}

/* Shapes, chunking and buffer size of d: no HDF5 call, so that the file
 * itself can be created on another thread (create_file). */
static void plan_dataset(const ikv_trace_writer *w, wdset *d)
{
    const ikv_dset_def *def = d->def;
    d->field = find_row_field(def->path);
    d->t_axis = -1;
    d->outer = 1;
    d->inner = 1;
    for (int i = 0; i < def->rank; i++) {
        ikv_axis ax = def->axes[i];
        int64_t n = ikv_axis_size(ax, &w->meta, w->n_slots, w->spec.topk, 0);
        d->dims[i] = (hsize_t)n;
        if (ax == IKV_AX_T) {
            if (d->t_axis < 0)
                d->t_axis = i;
        } else if (d->t_axis < 0) {
            d->outer *= n;
        } else {
            d->inner *= n;
        }
    }
    d->probs = def->axes[def->rank - 1] == IKV_AX_T && def->rank > 1 &&
               def->axes[def->rank - 2] == IKV_AX_T;
    d->half = def->big && w->spec.dtype == IKV_TRACE_F16;
    d->esize = d->half ? 2 : 4;
    choose_chunk(w, d, d->chunk, &d->cache_bytes);
    /* Block buffer (a whole chunk length for direct writes); probs' grows
     * with T and is sized at each block start. */
    d->direct = ikv_direct_chunks_possible(w, d);
    d->band = d->direct ? (int64_t)d->chunk[d->t_axis] : w->block;
    d->band_t0 = 0;
    if (!d->probs) /* in the writer's arena (allocate_buffers) */
        d->buf_bytes = (size_t)d->outer * (size_t)d->band * (size_t)d->inner * d->esize;
}

/* Creates planned dataset d in the file, with its attributes. */
static int create_dataset(ikv_trace_writer *w, wdset *d)
{
    const ikv_dset_def *def = d->def;
    hsize_t maxdims[IKV_TRACE_MAX_RANK];
    for (int i = 0; i < def->rank; i++)
        maxdims[i] = def->axes[i] == IKV_AX_T ? H5S_UNLIMITED : d->dims[i];
    hid_t space = H5Screate_simple(def->rank, d->dims, maxdims);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
    hid_t lcpl = ikv_h5_lcpl();
    hid_t ftype = def->is_int ? H5Tcopy(H5T_STD_I32LE)
                  : d->half   ? ikv_h5_half_file_type()
                              : H5Tcopy(H5T_IEEE_F32LE);
    int rc = -1;
    if (space >= 0 && dcpl >= 0 && dapl >= 0 && lcpl >= 0 && ftype >= 0 &&
        H5Pset_chunk(dcpl, def->rank, d->chunk) >= 0 &&
        (w->spec.deflate_level == 0 ||
         (H5Pset_shuffle(dcpl) >= 0 && H5Pset_deflate(dcpl, (unsigned)w->spec.deflate_level) >= 0)) &&
        (d->cache_bytes == 0 || H5Pset_chunk_cache(dapl, 12421, d->cache_bytes, 1.0) >= 0)) {
        d->id = H5Dcreate2(w->file, def->path, ftype, space, lcpl, dcpl, dapl);
        if (d->id >= 0) {
            rc = 0;
            if (ikv_h5_attr_write_string(d->id, "description", def->description) ||
                (def->units[0] && ikv_h5_attr_write_string(d->id, "units", def->units)))
                rc = -1;
            if (strcmp(def->path, "/logits/entropy_topk") == 0)
                rc |= ikv_h5_attr_write_int(d->id, "k", w->spec.entropy_k);
            else if (strncmp(def->path, "/logits/topk_", 13) == 0)
                rc |= ikv_h5_attr_write_int(d->id, "k", w->spec.topk);
        }
    }
    if (ftype >= 0)
        H5Tclose(ftype);
    if (lcpl >= 0)
        H5Pclose(lcpl);
    if (dapl >= 0)
        H5Pclose(dapl);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (space >= 0)
        H5Sclose(space);
    if (rc != 0) {
        create_fail(w, "cannot create dataset %s", def->path);
        return IKV_TRACE_EIO;
    }
    return IKV_TRACE_OK;
}

/* The HDF5 side of creation: the file, its root attributes and every
 * planned dataset; then the first touch of the band buffers (about 10 us
 * per 4 KiB page on a VM), so that the engine's thread does not pay it.
 * Runs on w->create_thread while the caller starts the model. */
static int create_file(ikv_trace_writer *w)
{
    w->file = H5Fcreate(w->temp_path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    w->half_mem = ikv_h5_half_native_type();
    if (w->file < 0 || w->half_mem < 0) {
        create_fail(w, "cannot create HDF5 file %s", w->temp_path);
        return IKV_TRACE_EIO;
    }
    if (write_root_attrs(w) != 0) {
        create_fail(w, "cannot write the root attributes");
        return IKV_TRACE_EIO;
    }
    for (int i = 0; i < w->n_ds; i++) {
        int rc = create_dataset(w, &w->ds[i]);
        if (rc != IKV_TRACE_OK)
            return rc;
    }
    const size_t prefault_max = (size_t)64 << 20;
    ikv_prefault(w->arena, w->arena_bytes < prefault_max ? w->arena_bytes : prefault_max);
    return IKV_TRACE_OK;
}

/* The compressing thread and the caller's scratch, once: without them
 * bands are compressed on the caller's thread (w->no_thread). */
static void start_compressor(ikv_trace_writer *w)
{
    if (w->compressor || w->no_thread)
        return;
    w->compressor = ikv_compressor_create();
    w->scratch = w->compressor ? ikv_chunk_scratch_new() : NULL;
    w->no_thread = !w->compressor || !w->scratch;
}

/* create_file on the calling thread (a thread of the writer's own, or
 * with spec.deferred_create the first caller that needs the file), then
 * the compressing thread: here rather than at the first band, as
 * starting a thread costs the engine's thread 0.1-0.3 ms on a VM. */
static int create_here(ikv_trace_writer *w)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* error stacks are per thread */
    const int rc = create_file(w);
    if (rc == IKV_TRACE_OK)
        start_compressor(w);
    return rc;
}

static void *create_file_thread(void *arg)
{
    ikv_trace_writer *w = arg;
    w->create_rc = create_here(w);
    return NULL;
}

/* Starts create_file on its own thread where HDF5 is thread-safe (else
 * runs it here), or leaves it to the first call that needs the file
 * (spec.deferred_create): IKV_TRACE_OK, or a failure of the synchronous
 * path. */
static int start_create_file(ikv_trace_writer *w)
{
    hbool_t safe = 0;
    w->write_in_thread = H5is_library_threadsafe(&safe) >= 0 && safe;
    if (w->spec.deferred_create) {
        w->create_pending = 1;
        return IKV_TRACE_OK;
    }
    if (w->write_in_thread) {
        w->creating = ikv_thread_start(&w->create_thread, "ikv-trace-open", create_file_thread, w) == 0;
        if (w->creating)
            return IKV_TRACE_OK;
    }
    w->create_rc = create_file(w);
    if (w->create_rc != IKV_TRACE_OK)
        memcpy(w->err, w->create_err, sizeof w->err);
    return w->create_rc;
}

/* Joins the creating thread, if any. */
static void join_create_thread(ikv_trace_writer *w)
{
    if (w->creating) {
        pthread_join(w->create_thread, NULL);
        w->creating = 0;
    }
}

int ikv_writer_file_ready(ikv_trace_writer *w)
{
    if (w->create_pending) { /* deferred: created here, on this thread */
        w->create_pending = 0;
        w->create_rc = create_here(w);
    } else if (w->creating) {
        join_create_thread(w);
    } else {
        return w->create_rc; /* ready, or its failure already reported */
    }
    if (w->create_rc != IKV_TRACE_OK) {
        w->failed = 1;
        memcpy(w->err, w->create_err, sizeof w->err);
    }
    return w->create_rc;
}

int ikv_trace_writer_prepare(ikv_trace_writer *w)
{
    if (!w)
        return IKV_TRACE_EINVAL;
    return ikv_writer_file_ready(w);
}

/* One arena for every band buffer (two for direct writes: one fills
 * while the other compresses), on huge pages where there are: a small
 * model's buffers are many 4 KiB pages touched once each. Not zeroed:
 * only rows that were written are ever read. */
static int allocate_buffers(ikv_trace_writer *w)
{
    size_t total = 0;
    for (int i = 0; i < w->n_ds; i++) {
        const wdset *d = &w->ds[i];
        size_t rounded = (d->buf_bytes + 63) / 64 * 64;
        if (!d->probs)
            total += d->direct ? 2 * rounded : rounded;
    }
    w->arena_bytes = total > 0 ? total : 64;
    w->arena = ikv_big_alloc(w->arena_bytes);
    if (!w->arena) {
        ikv_writer_msg(w, "out of memory for %zu bytes of block buffers", w->arena_bytes);
        return IKV_TRACE_ENOMEM;
    }
    unsigned char *next = w->arena;
    for (int i = 0; i < w->n_ds; i++) {
        wdset *d = &w->ds[i];
        if (d->probs)
            continue;
        size_t rounded = (d->buf_bytes + 63) / 64 * 64;
        d->buf = next;
        next += rounded;
        if (d->direct) {
            d->spare = next;
            next += rounded;
        }
    }
    return IKV_TRACE_OK;
}

static void release(ikv_trace_writer *w)
{
    join_create_thread(w); /* it writes w->file and the ids */
    ikv_compressor_free(w->compressor); /* before the buffers it reads */
    if (w->sync_fd >= 0)
        close(w->sync_fd);
    ikv_chunk_scratch_free(w->scratch);
    for (int i = 0; i < w->n_ds; i++) {
        if (w->ds[i].id >= 0)
            H5Dclose(w->ds[i].id);
        ikv_band_job_clear(&w->ds[i].job);
        if (w->ds[i].probs)
            free(w->ds[i].buf);
    }
    ikv_big_free(w->arena, w->arena_bytes);
    if (w->half_mem >= 0)
        H5Tclose(w->half_mem);
    if (w->file >= 0)
        H5Fclose(w->file);
    H5Eclear2(H5E_DEFAULT);
    free(w->layers);
    free(w->slot_of);
    free(w);
}

int ikv_trace_writer_create(ikv_trace_writer **out, const char *final_path,
                            const ikv_trace_meta *meta, const ikv_trace_spec *spec, char *err,
                            size_t errlen)
{
    char what[256];
    *out = NULL;
    if (!final_path || !meta || !spec) {
        snprintf(err, errlen, "trace writer: missing path, meta or spec");
        return IKV_TRACE_EINVAL;
    }
    if (ikv_check_meta(meta, what, sizeof what) || check_spec(meta, spec, what, sizeof what)) {
        snprintf(err, errlen, "%s: %s", final_path, what);
        return IKV_TRACE_EINVAL;
    }
    ikv_h5_quiet();
    ikv_trace_writer *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "%s: out of memory", final_path);
        return IKV_TRACE_ENOMEM;
    }
    w->file = -1;
    w->half_mem = -1;
    w->sync_fd = -1;
    for (int i = 0; i < IKV_N_DSETS; i++)
        w->ds[i].id = -1;
    w->meta = *meta;
    w->spec = *spec;
    w->spec.signals |= IKV_TRACE_TOKENS;
    w->n_slots = spec->layers ? spec->n_layers : meta->n_layers;
    w->layers = malloc(sizeof *w->layers * (size_t)w->n_slots);
    w->slot_of = malloc(sizeof *w->slot_of * (size_t)meta->n_layers);
    if (!w->layers || !w->slot_of) {
        release(w);
        snprintf(err, errlen, "%s: out of memory", final_path);
        return IKV_TRACE_ENOMEM;
    }
    for (int l = 0; l < meta->n_layers; l++)
        w->slot_of[l] = -1;
    for (int i = 0; i < w->n_slots; i++) {
        w->layers[i] = spec->layers ? spec->layers[i] : i;
        w->slot_of[w->layers[i]] = i;
    }
    w->spec.layers = w->layers;
    w->spec.n_layers = w->n_slots;
    w->block = spec->chunk_tokens > 0 ? spec->chunk_tokens : DEFAULT_BLOCK;
    w->spec.chunk_tokens = w->block;
    if (!w->meta.producer[0])
        snprintf(w->meta.producer, sizeof w->meta.producer, "infokv %s", PACKAGE_VERSION);
    if (!w->meta.created[0]) {
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(w->meta.created, sizeof w->meta.created, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    if (snprintf(w->final_path, sizeof w->final_path, "%s", final_path) >= (int)sizeof w->final_path ||
        ikv_temp_name(final_path, w->temp_path, sizeof w->temp_path) != 0) {
        release(w);
        snprintf(err, errlen, "%s: path too long", final_path);
        return IKV_TRACE_EINVAL;
    }
    /* The final rename would fail on a folder only after the whole run. */
    struct stat st;
    if (stat(final_path, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: is a folder; give a file name for the trace", final_path);
        release(w);
        return IKV_TRACE_EIO;
    }
    /* Create the file once with open() for an errno-based message (HDF5's
     * own says little about why a create failed). */
    /* The descriptor stays open for a durable trace's syncs: close's
     * fsync on it reports any write error since. */
    w->sync_fd = open(w->temp_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->sync_fd < 0) {
        snprintf(err, errlen, "%s: cannot create %s: %s", final_path, w->temp_path,
                 strerror(errno));
        release(w);
        return IKV_TRACE_EIO;
    }
    for (int i = 0; i < IKV_N_DSETS; i++) {
        if (!(ikv_dset_defs[i].signal & w->spec.signals))
            continue;
        wdset *d = &w->ds[w->n_ds++];
        d->def = &ikv_dset_defs[i];
        plan_dataset(w, d);
    }
    int rc = allocate_buffers(w);
    if (rc == IKV_TRACE_OK)
        rc = start_create_file(w);
    if (rc != IKV_TRACE_OK) {
        snprintf(err, errlen, "%s", w->err);
        ikv_trace_writer_abort(w);
        return rc;
    }
    *out = w;
    return IKV_TRACE_OK;
}

/* Source of one position's data for dataset d, or NULL when missing. */
static const void *row_source(const wdset *d, const ikv_trace_row *row)
{
    if (!d->field)
        return NULL;
    const unsigned char *at = (const unsigned char *)row + d->field->offset;
    if (!d->field->indirect)
        return at;
    const void *array;
    memcpy(&array, at, sizeof array);
    return array;
}

/* Sizes the probs buffer for the block starting at t0: W = t0 + B columns. */
static int begin_probs_block(ikv_trace_writer *w, wdset *d)
{
    int64_t width = w->t0 + w->block;
    int64_t dims[3] = {d->outer, w->block, width};
    int64_t bytes = ikv_checked_product(dims, 3, (int64_t)d->esize);
    if (bytes < 0 || (uint64_t)bytes > SIZE_MAX) {
        ikv_writer_msg(w, "attn/probs block too large at position %lld", (long long)w->t0);
        return IKV_TRACE_ENOMEM;
    }
    if ((size_t)bytes > d->buf_bytes) {
        void *p = realloc(d->buf, (size_t)bytes);
        if (!p) {
            ikv_writer_msg(w, "out of memory for a %lld-byte attn/probs block at position %lld",
                           (long long)bytes, (long long)w->t0);
            return IKV_TRACE_ENOMEM;
        }
        d->buf = p;
        d->buf_bytes = (size_t)bytes;
    }
    /* No memset: each row zeroes its own columns after the diagonal when
     * it is written, so only rows actually written touch memory. */
    d->inner = width;
    return IKV_TRACE_OK;
}

/* Waits for d's band in compression, helping with it, and stores it. */
static int finish_band(ikv_trace_writer *w, wdset *d)
{
    ikv_compressor_wait(w->compressor, &d->job, w->scratch);
    d->job.state = IKV_JOB_IDLE;
    d->in_flight = 0;
    return ikv_band_store(w, d, &d->job);
}

/* Starts compressing d's buffer (n positions) in the background and gives
 * d its spare buffer; without a thread, compresses it here on every core
 * and stores it. The band before must be finished. zero_padded: a last
 * band that ends before its chunks do, whose padding is deflated. */
static int start_band(ikv_trace_writer *w, wdset *d, int64_t n, int zero_padded)
{
    int rc = ikv_writer_file_ready(w); /* the job takes d->id */
    if (rc != IKV_TRACE_OK)
        return rc;
    start_compressor(w); /* where the creating thread did not */
    ikv_band_job_init(&d->job, w, d, d->buf, n);
    if (zero_padded) {
        /* its zeros would pass for a compressible plane: no estimate.
         * Without a band before to judge by, store_plane is still all
         * zero and every plane is deflated. */
        d->job.estimate_planes = 0;
        d->job.zero_padded = 1;
    }
    const size_t bytes = (size_t)d->outer * (size_t)n * (size_t)d->inner * d->esize;
    w->unsynced_bytes += bytes;
    /* A durable trace gets an fdatasync on the background thread once
     * what it would cover is SYNC_MIN and an eighth of what earlier ones
     * did: close's fsync then waits for at most that much, and a long
     * capture pays for O(log size) syncs. Each one costs the engine too,
     * though it waits on another thread: its IO completion interrupts and
     * the journal's commit take CPU time on a small machine. On a 2-vCPU
     * VM a stories260K capture (1.6 MB of bands) ran 0.45 ms faster with
     * one sync after its first MiB than with one every 256 KiB (five),
     * and starting the writeback between syncs (sync_file_range) only
     * added interrupts. */
    if (w->spec.durable && w->write_in_thread && !w->no_thread && w->unsynced_bytes >= SYNC_MIN &&
        w->unsynced_bytes * 8 >= w->synced_bytes) {
        d->job.sync_after = 1;
        w->synced_bytes += w->unsynced_bytes;
        w->unsynced_bytes = 0;
    }
    d->job.write_when_done = w->write_in_thread;
    d->band_t0 += n;
    if (w->no_thread)
        ikv_band_compress(&d->job);
    if (w->no_thread || ikv_band_prepare(&d->job) != 0)
        return ikv_band_store(w, d, &d->job); /* stored, or out of memory reported */
    ikv_compressor_submit(w->compressor, &d->job);
    d->in_flight = 1;
    unsigned char *full = d->buf;
    d->buf = d->spare;
    d->spare = full;
    return IKV_TRACE_OK;
}

/* Finishes every band in flight; the first failure's code, or rc. */
static int finish_all_bands(ikv_trace_writer *w, int rc)
{
    for (int i = 0; i < w->n_ds; i++) {
        if (!w->ds[i].in_flight)
            continue;
        int r = finish_band(w, &w->ds[i]);
        rc = rc == IKV_TRACE_OK ? r : rc;
    }
    return rc;
}

/* Stores the n positions in d's buffer as raw chunks, on this thread:
 * compressing them would keep close waiting, and unfiltered chunks
 * (IKV_SKIP_FILTERS) read back like any other. Each chunk is gathered
 * into d's spare buffer, idle now and already in memory: a fresh heap
 * buffer per chunk faulted in ~50 pages at close (stories260K), about
 * 10 us each on a VM. Close only, once the file is ready and no band is
 * in flight. */
static int store_raw_band(ikv_trace_writer *w, wdset *d, int64_t n)
{
    ikv_band_job *job = &d->job;
    ikv_band_job_init(job, w, d, d->buf, n);
    job->raw = 1;
    job->raw_scratch = d->spare;
    d->band_t0 += n;
    ikv_band_prepare(job); /* sets job->failed if out of memory */
    if (!job->failed && job->chunk_elements * job->esize > d->buf_bytes)
        job->failed = 1; /* a chunk never holds more than a band buffer */
    return ikv_band_store(w, d, job);
}

/* At close: every band still in compression, then what each direct-write
 * dataset's buffer holds (its last band). More than half a band is stored
 * raw; less is compressed by both threads with every byte plane deflated,
 * since its chunks are padded with zeros. Either way close waits for at
 * most half a band of compression and stores at most half a band of
 * padding. */
static int store_last_bands(ikv_trace_writer *w)
{
    int rc = finish_all_bands(w, IKV_TRACE_OK);
    for (int i = 0; i < w->n_ds && rc == IKV_TRACE_OK; i++) {
        wdset *d = &w->ds[i];
        const int64_t held = w->n_written - d->band_t0;
        if (d->direct && held > 0)
            rc = 2 * held > d->band ? store_raw_band(w, d, held) : start_band(w, d, held, 1);
    }
    rc = finish_all_bands(w, rc);
    if (rc != IKV_TRACE_OK)
        w->failed = 1;
    return rc;
}

/* Ends the current block: extends every dataset over it and writes it,
 * except direct-write datasets, whose buffers are handed over when the
 * position after a whole chunk length arrives (write_position) and
 * stored at close whatever they hold (store_last_bands). */
static int flush_block(ikv_trace_writer *w)
{
    int n = w->n_block;
    if (n == 0)
        return IKV_TRACE_OK;
    for (int i = 0; i < w->n_ds; i++) {
        wdset *d = &w->ds[i];
        const ikv_dset_def *def = d->def;
        if (d->direct) {
            /* collect a band whose compression is over, without waiting */
            int rc = d->in_flight && ikv_compressor_done(w->compressor, &d->job) ? finish_band(w, d)
                                                                                 : IKV_TRACE_OK;
            if (rc != IKV_TRACE_OK) {
                w->failed = 1;
                return rc;
            }
            continue;
        }
        int ready = ikv_writer_file_ready(w);
        if (ready != IKV_TRACE_OK)
            return ready;
        hsize_t start[IKV_TRACE_MAX_RANK], count[IKV_TRACE_MAX_RANK], mdims[IKV_TRACE_MAX_RANK];
        for (int a = 0; a < def->rank; a++) {
            start[a] = 0;
            count[a] = d->dims[a];
            mdims[a] = d->dims[a];
        }
        d->dims[d->t_axis] = (hsize_t)(w->t0 + n);
        start[d->t_axis] = (hsize_t)w->t0;
        count[d->t_axis] = (hsize_t)n;
        mdims[d->t_axis] = (hsize_t)w->block;
        if (d->probs) {
            d->dims[def->rank - 1] = (hsize_t)(w->t0 + n);
            count[def->rank - 1] = (hsize_t)(w->t0 + n);
            mdims[def->rank - 1] = (hsize_t)d->inner;
        }
        hid_t fspace = -1, mspace = -1;
        hsize_t zero[IKV_TRACE_MAX_RANK] = {0, 0, 0, 0};
        int ok = H5Dset_extent(d->id, d->dims) >= 0 && (fspace = H5Dget_space(d->id)) >= 0 &&
                 H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
                 (mspace = H5Screate_simple(def->rank, mdims, NULL)) >= 0 &&
                 H5Sselect_hyperslab(mspace, H5S_SELECT_SET, zero, NULL, count, NULL) >= 0 &&
                 H5Dwrite(d->id,
                          def->is_int ? H5T_NATIVE_INT32 : d->half ? w->half_mem : H5T_NATIVE_FLOAT,
                          mspace, fspace, H5P_DEFAULT, d->buf) >= 0;
        if (mspace >= 0)
            H5Sclose(mspace);
        if (fspace >= 0)
            H5Sclose(fspace);
        if (!ok) {
            ikv_writer_fail(w, "cannot write positions %lld..%lld of %s", (long long)w->t0,
                            (long long)(w->t0 + n - 1), def->path);
            w->failed = 1;
            return IKV_TRACE_EIO;
        }
        d->band_t0 += n; /* the buffer holds one block: it starts afresh */
    }
    w->t0 += n;
    w->n_block = 0;
    return IKV_TRACE_OK;
}

/* memcpy, with the sizes of small models' rows (one head of d = 8 or
 * 16, one value) as constants the compiler turns into a move or two: a
 * stories260K position copies about a hundred such rows. */
static inline void copy_row(unsigned char *dst, const unsigned char *src, size_t bytes)
{
    switch (bytes) {
    case 4: memcpy(dst, src, 4); break;
    case 32: memcpy(dst, src, 32); break;
    case 64: memcpy(dst, src, 64); break;
    default: memcpy(dst, src, bytes); break;
    }
}

/* n float32 values (unaligned bytes) as binary16 */
static void to_half(uint16_t *dst, const unsigned char *src, size_t n)
{
    for (size_t e = 0; e < n; e++) {
        float f;
        memcpy(&f, src + 4 * e, sizeof f);
        dst[e] = ikv_f32_to_f16(f);
    }
}

int ikv_trace_write_position(ikv_trace_writer *w, const ikv_trace_row *row)
{
    if (!w || !row)
        return IKV_TRACE_EINVAL;
    if (w->failed)
        return IKV_TRACE_ESTATE; /* w->err still holds the failure */
    if (w->n_written >= IKV_MAX_TOKENS) {
        ikv_writer_msg(w, "more than %d positions", IKV_MAX_TOKENS);
        return IKV_TRACE_EINVAL;
    }
    int64_t t = w->n_written;
    int j = w->n_block;
    /* Check every pointer before copying anything: a rejected row leaves
     * the writer as it was. */
    for (int i = 0; i < w->n_ds; i++) {
        if (!row_source(&w->ds[i], row)) {
            ikv_writer_msg(w, "position %lld: the row has no data for %s (selected by the spec)",
                           (long long)t, w->ds[i].def->path);
            return IKV_TRACE_EINVAL;
        }
    }
    /* A full direct-write buffer goes to the compressor only now that a
     * position follows it: the band a capture ends on is stored raw at
     * close instead of keeping close waiting for its compression. */
    for (int i = 0; i < w->n_ds; i++) {
        wdset *d = &w->ds[i];
        if (d->direct && t - d->band_t0 == d->band) {
            int rc = d->in_flight ? finish_band(w, d) : IKV_TRACE_OK;
            if (rc == IKV_TRACE_OK)
                rc = start_band(w, d, d->band, 0);
            if (rc != IKV_TRACE_OK) {
                w->failed = 1;
                return rc;
            }
        }
    }
    if (j == 0) {
        for (int i = 0; i < w->n_ds; i++) {
            if (w->ds[i].probs) {
                int rc = begin_probs_block(w, &w->ds[i]);
                if (rc != IKV_TRACE_OK)
                    return rc;
            }
        }
    }
    for (int i = 0; i < w->n_ds; i++) {
        wdset *d = &w->ds[i];
        const unsigned char *src = row_source(d, row);
        size_t row_inner = d->probs ? (size_t)(t + 1) : (size_t)d->inner;
        size_t src_stride = row_inner * 4; /* rows arrive as float32/int32 */
        size_t at = (size_t)(t - d->band_t0); /* row in the buffer */
        if (d->direct) { /* [band][outer][inner]: the row in one piece */
            const size_t n = (size_t)d->outer * row_inner;
            if (d->half)
                to_half((uint16_t *)(void *)d->buf + at * n, src, n);
            else
                copy_row(d->buf + at * n * 4, src, n * 4);
            continue;
        }
        for (int64_t o = 0; o < d->outer; o++) { /* [outer][band][inner] */
            size_t dst_off = ((size_t)o * (size_t)d->band + at) * (size_t)d->inner;
            const unsigned char *s = src + (size_t)o * src_stride;
            if (d->half)
                to_half((uint16_t *)(void *)d->buf + dst_off, s, row_inner);
            else
                copy_row(d->buf + dst_off * 4, s, src_stride);
            if (d->probs) /* keys after the query: zero (+0.0 in both types) */
                memset(d->buf + (dst_off + row_inner) * d->esize, 0,
                       ((size_t)d->inner - row_inner) * d->esize);
        }
    }
    w->n_block++;
    w->n_written++;
    if (w->n_block == w->block)
        return flush_block(w);
    return IKV_TRACE_OK;
}

int ikv_trace_writer_close(ikv_trace_writer *w, int complete, char *err, size_t errlen)
{
    if (!w) {
        snprintf(err, errlen, "trace writer: close without a writer");
        return IKV_TRACE_EINVAL;
    }
    int rc = ikv_writer_file_ready(w);
    if (rc == IKV_TRACE_OK)
        rc = w->failed ? IKV_TRACE_EIO : flush_block(w);
    if (rc == IKV_TRACE_OK)
        rc = store_last_bands(w);
    /* no band is left: the thread may end while HDF5 closes the file */
    ikv_compressor_stop(w->compressor);
    if (rc == IKV_TRACE_OK && complete && w->n_written < w->meta.n_prompt) {
        ikv_writer_msg(w, "cannot mark complete: %lld positions written, fewer than n_prompt = %d",
                       (long long)w->n_written, w->meta.n_prompt);
        rc = IKV_TRACE_EINVAL;
    }
    if (rc == IKV_TRACE_OK &&
        (ikv_h5_attr_write_int(w->file, "n_tokens", w->n_written) ||
         ikv_h5_attr_write_int(w->file, "complete", complete ? 1 : 0))) {
        ikv_writer_fail(w, "cannot record n_tokens");
        rc = IKV_TRACE_EIO;
    }
    /* Closing flushes HDF5's chunk cache: errors can appear here too. */
    for (int i = 0; i < w->n_ds; i++) {
        if (w->ds[i].id >= 0 && H5Dclose(w->ds[i].id) < 0 && rc == IKV_TRACE_OK) {
            ikv_writer_fail(w, "cannot close %s", w->ds[i].def->path);
            rc = IKV_TRACE_EIO;
        }
        w->ds[i].id = -1;
    }
    if (w->file >= 0 && H5Fclose(w->file) < 0 && rc == IKV_TRACE_OK) {
        ikv_writer_fail(w, "cannot close the HDF5 file");
        rc = IKV_TRACE_EIO;
    }
    w->file = -1;
    if (rc == IKV_TRACE_OK && w->spec.durable && fsync(w->sync_fd) != 0) {
        ikv_writer_msg(w, "cannot sync %s: %s", w->temp_path, strerror(errno));
        rc = IKV_TRACE_EIO;
    }
    if (rc == IKV_TRACE_OK && rename(w->temp_path, w->final_path) != 0) {
        ikv_writer_msg(w, "cannot rename %s to it: %s", w->temp_path, strerror(errno));
        rc = IKV_TRACE_EIO;
    }
    if (rc != IKV_TRACE_OK) {
        snprintf(err, errlen, "%s", w->err[0] ? w->err : "trace writer failed");
        unlink(w->temp_path);
    }
    release(w);
    return rc;
}

void ikv_trace_writer_abort(ikv_trace_writer *w)
{
    if (!w)
        return;
    char temp[sizeof w->temp_path];
    memcpy(temp, w->temp_path, sizeof temp);
    release(w);
    if (temp[0])
        unlink(temp);
}
