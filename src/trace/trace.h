/*
 * HDF5 traces of a model run (schema version 1, see traces/SCHEMA.md): a
 * writer that the capture program feeds one position at a time, and a
 * reader that validates a trace and hands out float32 arrays.
 *
 * Shapes: T positions (prompt then generated), L' stored layers (all the
 * model's layers, or the subset listed in the spec / the `layers`
 * attribute; per-layer arrays are indexed by the slot 0..L'-1 in that
 * list), H query heads, G KV heads, d head dim, D model dim, V vocab,
 * K top-k width.
 *
 * This module is the only code of the project that includes hdf5.h; its
 * handles are opaque. Every function returning int returns 0 (IKV_TRACE_OK)
 * or a negative ikv_trace_status, with a one-line message naming the file
 * in `err` (create/open) or in ikv_trace_writer_error() /
 * ikv_trace_reader_error() afterwards.
 */
#ifndef IKV_TRACE_TRACE_H
#define IKV_TRACE_TRACE_H

#include <stddef.h>
#include <stdint.h>

#define IKV_TRACE_FORMAT "infokv-trace"
#define IKV_TRACE_VERSION 1
#define IKV_TRACE_MAX_RANK 4

typedef enum ikv_trace_status {
    IKV_TRACE_OK = 0,
    IKV_TRACE_EINVAL = -1,  /* bad argument (caller's mistake) */
    IKV_TRACE_EIO = -2,     /* cannot create, write, read or rename a file */
    IKV_TRACE_EFORMAT = -3, /* not a trace, unknown version, inconsistent or
                               corrupt contents */
    IKV_TRACE_ENOMEM = -4,  /* allocation failed */
    IKV_TRACE_EABSENT = -5, /* the trace does not contain that dataset */
    IKV_TRACE_ESTATE = -6   /* call out of order (e.g. write after close) */
} ikv_trace_status;

/* Short English text for a status code (static storage). */
const char *ikv_trace_strerror(int status);

/* Signals a trace can hold (bit mask). TOKENS is always written. */
enum {
    IKV_TRACE_TOKENS = 1u << 0,         /* /tokens */
    IKV_TRACE_LOGITS_SUMMARY = 1u << 1, /* /logits/{entropy,entropy_topk,logprob,
                                           topk_ids,topk_logprobs} */
    IKV_TRACE_EVOLUTION = 1u << 2,      /* /hidden/evolution */
    IKV_TRACE_QKV = 1u << 3,            /* /qkv/{q,k,v} */
    IKV_TRACE_ATTN_STATS = 1u << 4,     /* /attn/{lse,out} */
    IKV_TRACE_ATTN_PROBS = 1u << 5,     /* /attn/probs (dense, O(T^2)) */
    IKV_TRACE_STATES = 1u << 6,         /* /hidden/states */
    IKV_TRACE_LOGITS_FULL = 1u << 7,    /* /logits/full */
    IKV_TRACE_ALL = (1u << 8) - 1,
    /* What replay needs: everything but the big optional arrays. */
    IKV_TRACE_DEFAULT = IKV_TRACE_TOKENS | IKV_TRACE_LOGITS_SUMMARY | IKV_TRACE_EVOLUTION |
                        IKV_TRACE_QKV | IKV_TRACE_ATTN_STATS
};

/* Storage type of the big tensors (q/k/v, attn/out, attn/probs,
 * hidden/states, logits/full); everything else is always float32/int32. */
typedef enum ikv_trace_dtype {
    IKV_TRACE_F32 = 0,
    IKV_TRACE_F16 = 1 /* IEEE binary16; read back as float32 */
} ikv_trace_dtype;

/* Root attributes: the model's shape and where the trace came from. */
typedef struct ikv_trace_meta {
    char model_name[256];
    char arch[64];        /* "llama", ... */
    int n_layers;         /* L of the model (stored layers: see the spec) */
    int n_heads;          /* H */
    int n_kv_heads;       /* G, divides H */
    int head_dim;         /* d */
    int dim;              /* D */
    int hidden_dim;       /* FFN width */
    int vocab_size;       /* V */
    double rope_theta;
    double norm_eps;
    int n_prompt;         /* prompt positions (the first n_prompt of T) */
    int n_tokens;         /* positions stored (set by the writer at close) */
    int complete;         /* 1 if the run finished (set at close) */
    char producer[128];   /* writer fills "infokv VERSION" when empty */
    char created[32];     /* ISO 8601 UTC; writer fills it when empty */
    char model_sha256[72];
    char command[4096];   /* the command line that made the trace */
} ikv_trace_meta;

/* What to store and how. */
typedef struct ikv_trace_spec {
    unsigned signals;    /* IKV_TRACE_* mask (TOKENS is added) */
    int topk;            /* K of /logits/topk_* (20) */
    int entropy_k;       /* k of /logits/entropy_topk, stored as its attribute (20) */
    ikv_trace_dtype dtype;
    const int *layers;   /* [n_layers] model layers to store, ascending;
                            NULL = all. Reader: owned by the reader. */
    int n_layers;        /* L' (0 with layers == NULL: all) */
    int expected_tokens; /* chunk sizing hint; datasets grow past it (0 = unknown) */
    int chunk_tokens;    /* T extent of a chunk = positions buffered before a
                            write (0 = automatic: 64) */
    int chunk_all_heads; /* 1 (default): a chunk holds all heads of one layer,
                            [1, H, 64, d], matching the simulator's per-layer
                            reads (1.2-1.4x faster reads than 0, see
                            bench_trace); 0: one head per chunk */
    int deflate_level;   /* 0..9 (1); 0 turns shuffle+deflate off (faster,
                            larger) */
    int deferred_create; /* 0 (default): a thread of the writer's own creates
                            the HDF5 file and its datasets while the caller
                            goes on; 1: the first call that needs the file
                            creates it, on its own thread, e.g.
                            ikv_trace_writer_prepare() on a writing thread
                            of the caller's (one thread start less) */
    int durable;         /* 0 (default): close renames the file without
                            waiting for the disk: the trace appears whole or
                            not at all if the process dies, but a crash of
                            the machine soon after may lose or damage it;
                            1: the file is fsynced before the rename, so the
                            trace under its final name survives that too
                            (costs a journal commit, about 1.5 ms per file
                            on a small VM, and background syncs) */
} ikv_trace_spec;

ikv_trace_spec ikv_trace_writer_default_spec(void);

/* One position's signals. Every pointer of a selected signal must be set;
 * per-layer arrays are over the stored layers (slot order). */
typedef struct ikv_trace_row {
    int32_t token;
    float entropy;                /* nats, full next-token distribution at t */
    float entropy_topk;           /* nats, top-entropy_k renormalised */
    float logprob;                /* log p(token t | < t); NaN at t = 0 */
    const int32_t *topk_ids;      /* [K] most probable first */
    const float *topk_logprobs;   /* [K] */
    const float *evolution;       /* [L'] 1 - cos(residual before, after layer) */
    const float *q;               /* [L'][H][d] after RoPE */
    const float *k;               /* [L'][G][d] after RoPE */
    const float *v;               /* [L'][G][d] */
    const float *lse;             /* [L'][H] log-sum-exp of q.k/sqrt(d), keys 0..t */
    const float *out;             /* [L'][H][d] softmax(scores) . V per head */
    const float *probs;           /* [L'][H][t+1] attention of query t on keys 0..t */
    const float *states;          /* [L'+1][D] residual entering each stored
                                     layer, then the final residual */
    const float *logits;          /* [V] */
} ikv_trace_row;

/* ---- writer ---- */

typedef struct ikv_trace_writer ikv_trace_writer;

/* Creates "<final_path>.tmp-<pid>" with the root attributes and empty
 * datasets for the selected signals. The final name appears only at
 * ikv_trace_writer_close(). */
int ikv_trace_writer_create(ikv_trace_writer **w, const char *final_path,
                            const ikv_trace_meta *meta, const ikv_trace_spec *spec,
                            char *err, size_t errlen);

/* Creates the HDF5 file now if spec.deferred_create left it to the
 * first call that needs it (else waits for the writer's thread to have
 * created it): IKV_TRACE_OK, or the failure (ikv_trace_writer_error()
 * says why; the next write or close returns it too). Like every call on
 * w, not concurrently with another. */
int ikv_trace_writer_prepare(ikv_trace_writer *w);

/* Slot of model layer `layer` in the per-layer arrays, or -1 when that
 * layer is not stored. */
int ikv_trace_writer_layer_slot(const ikv_trace_writer *w, int layer);

/* Appends position t = (positions written so far). Buffers a block of
 * chunk_tokens positions and writes whole chunks. */
int ikv_trace_write_position(ikv_trace_writer *w, const ikv_trace_row *row);

/* Positions appended so far. */
int ikv_trace_writer_positions(const ikv_trace_writer *w);

/* Element types of extra datasets and attribute arrays. */
typedef enum ikv_trace_type {
    IKV_TRACE_TYPE_F32 = 0,
    IKV_TRACE_TYPE_F64,
    IKV_TRACE_TYPE_I32,
    IKV_TRACE_TYPE_I64,
    IKV_TRACE_TYPE_U8
} ikv_trace_type;

/* Writes a whole dataset outside the schema's own (e.g. "live/kl"),
 * creating missing groups; compressed like the rest. `data` holds
 * prod(dims) elements row-major. Paths of the schema are refused. */
int ikv_trace_write_extra(ikv_trace_writer *w, const char *path, ikv_trace_type type,
                          int rank, const int64_t *dims, const void *data);
/* Creates a group (and its parents) if missing, e.g. "live". */
int ikv_trace_writer_group(ikv_trace_writer *w, const char *path);
/* Attributes on "/" or on an extra group or dataset. The schema's own
 * root attributes cannot be overwritten. */
int ikv_trace_writer_attr_int(ikv_trace_writer *w, const char *path, const char *name,
                              int64_t value);
int ikv_trace_writer_attr_double(ikv_trace_writer *w, const char *path, const char *name,
                                 double value);
int ikv_trace_writer_attr_string(ikv_trace_writer *w, const char *path, const char *name,
                                 const char *value);

/* Flushes the buffered positions, sets n_tokens and complete, closes,
 * fsyncs when spec.durable, and renames the file to its final name. After
 * an interrupt, complete = 0: what was written stays readable. Frees w
 * whatever happens. */
int ikv_trace_writer_close(ikv_trace_writer *w, int complete, char *err, size_t errlen);
/* Closes and removes the temporary file; frees w. */
void ikv_trace_writer_abort(ikv_trace_writer *w);

/* Last error of w, "" if none. */
const char *ikv_trace_writer_error(const ikv_trace_writer *w);

/* ---- reader ---- */

typedef struct ikv_trace_reader ikv_trace_reader;

/* Opens and validates a trace: HDF5, format/version, root attributes,
 * dataset shapes against them. A trace with complete = 0 reads as its
 * first n_tokens positions. */
int ikv_trace_open(ikv_trace_reader **r, const char *path, char *err, size_t errlen);
void ikv_trace_close(ikv_trace_reader *r);

const char *ikv_trace_reader_error(const ikv_trace_reader *r);
const char *ikv_trace_path(const ikv_trace_reader *r);

const ikv_trace_meta *ikv_trace_meta_of(const ikv_trace_reader *r);
/* Signals present, topk, entropy_k, dtype, layers (reader-owned). */
const ikv_trace_spec *ikv_trace_spec_of(const ikv_trace_reader *r);

/* 1 if the dataset exists ("qkv/q" or "/qkv/q"), else 0. */
int ikv_trace_has(const ikv_trace_reader *r, const char *path);

/* Shape of a dataset as the reader serves it (T axes cut to n_tokens for
 * the schema's datasets): returns the rank, or a negative status. */
int ikv_trace_dims(ikv_trace_reader *r, const char *path, int64_t dims[IKV_TRACE_MAX_RANK]);

/* Bytes that one float32/int32 read needs: one layer of a per-layer
 * dataset (q: H*T*d*4), one slot of /hidden/states (T*D*4), the whole
 * dataset for the others; 0 when the dataset is absent or the size would
 * overflow. Callers allocate from this, never from their own products. */
size_t ikv_trace_read_bytes(ikv_trace_reader *r, const char *path);

/* Bulk reads into caller buffers of the sizes in the shape comments. */
int ikv_trace_read_tokens(ikv_trace_reader *r, int32_t *out /* [T] */);
int ikv_trace_read_entropy(ikv_trace_reader *r, int topk, float *out /* [T] */);
int ikv_trace_read_logprob(ikv_trace_reader *r, float *out /* [T] */);
/* Either pointer may be NULL. */
int ikv_trace_read_topk(ikv_trace_reader *r, int32_t *ids /* [T][K] */,
                        float *logprobs /* [T][K] */);
int ikv_trace_read_evolution(ikv_trace_reader *r, float *out /* [L'][T] */);

/* One stored layer (slot 0..L'-1) of a per-layer dataset:
 *   "qkv/q", "attn/out"  -> [H][T][d]
 *   "qkv/k", "qkv/v"     -> [G][T][d]
 *   "attn/lse"           -> [H][T]
 *   "attn/probs"         -> [H][T][T] */
int ikv_trace_read_layer(ikv_trace_reader *r, const char *path, int slot, float *out);

/* Positions t0..t0+n-1 of one row of /hidden/states (slot 0..L'). */
int ikv_trace_read_states(ikv_trace_reader *r, int slot, int t0, int n,
                          float *out /* [n][D] */);
/* Positions t0..t0+n-1 of /logits/full. */
int ikv_trace_read_logits(ikv_trace_reader *r, int t0, int n, float *out /* [n][V] */);

/* Any float (int) dataset, including extras: the block start[i] ..
 * start[i]+count[i]-1 of each axis, converted to float32 (int32). */
int ikv_trace_read_f32(ikv_trace_reader *r, const char *path, const int64_t *start,
                       const int64_t *count, float *out);
int ikv_trace_read_i32(ikv_trace_reader *r, const char *path, const int64_t *start,
                       const int64_t *count, int32_t *out);

/* Attributes of "/" or any group/dataset. */
int ikv_trace_attr_int(ikv_trace_reader *r, const char *path, const char *name, int64_t *value);
int ikv_trace_attr_double(ikv_trace_reader *r, const char *path, const char *name,
                          double *value);
int ikv_trace_attr_string(ikv_trace_reader *r, const char *path, const char *name, char *buf,
                          size_t buflen);

/* How a dataset is stored, for summaries. */
typedef struct ikv_trace_dataset_info {
    char path[256];                   /* "/qkv/q" */
    int rank;
    int64_t dims[IKV_TRACE_MAX_RANK]; /* as stored (not cut to n_tokens) */
    int64_t chunk[IKV_TRACE_MAX_RANK]; /* 0s when contiguous */
    char type[16];                    /* "f32", "f16", "f64", "i32", "u8", ... */
    int64_t logical_bytes;            /* prod(dims) * element size */
    int64_t stored_bytes;             /* on disk, after compression */
    int compressed;                   /* deflate filter present */
} ikv_trace_dataset_info;

/* Calls fn for every dataset of the file (schema and extras) in name
 * order; a nonzero return of fn stops the walk and is returned. */
int ikv_trace_foreach_dataset(ikv_trace_reader *r,
                              int (*fn)(const ikv_trace_dataset_info *info, void *ctx),
                              void *ctx);

#endif
