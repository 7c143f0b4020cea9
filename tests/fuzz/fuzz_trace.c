/*
 * Fuzz harness: the trace reader (and the simulator on what it accepts).
 *
 * Most inputs describe a trace rather than being one: fuzzing raw HDF5
 * bytes mostly exercises libhdf5's own parser, while the reader's job is
 * to validate a well-formed HDF5 file against the schema. So the harness
 * builds a valid small trace from a few shape bytes, then applies the
 * input's edits (drop, retype or change a root attribute; drop, reshape,
 * retype, rechunk or replace a dataset; poke values such as token ids;
 * add extra datasets), writes it with the HDF5 API and opens it.
 * Input byte 0 odd: the rest is taken as raw file bytes instead.
 *
 * Checks: open fails with one line naming the file, or every read the
 * simulator and infokv-inspect make succeeds or fails cleanly into
 * buffers of the size the reader itself advertises; infokv-inspect's
 * statistics and --check run on it; a small trace that opens is also
 * replayed by the simulator (a few policies and budgets).
 */
#include "config.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/inspect.h"
#include "fuzz_util.h"
#include "sim/run.h"
#include "trace/internal.h"

/* HDF5 1.10 leaks metadata-cache entries when a traversal of a corrupt
 * object header fails inside the library (H5C_protect allocates the entry,
 * the error path never releases it; regress/trace/corrupt-link-table).
 * Nothing a caller can free, so leaks of memory that libhdf5 allocated are
 * not reported here (the fast unwinder stops at the library's first frame,
 * so the module is what can be named). infokv's own allocations are still
 * checked, and `make valgrind` runs without this. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libhdf5\n";
}
#include "trace/trace.h"

/* ---- the trace to write ---- */

enum { N_ATTRS = 22, MAX_EXTRA = 4 };

typedef struct attr_edit {
    int drop;
    int kind; /* 0 as the schema writes it, 1 int, 2 double, 3 string, 4 int array, 5 int64 max */
    int64_t ival;
    int set;
} attr_edit;

typedef struct dset_edit {
    int drop, as_group, contiguous, type; /* type: 0 schema, 1 f32, 2 f16, 3 f64, 4 i32, 5 u8 */
    int64_t delta[IKV_TRACE_MAX_RANK];
    int64_t chunk[IKV_TRACE_MAX_RANK]; /* 0: automatic */
    int rank_delta;
} dset_edit;

typedef struct plan {
    ikv_trace_meta meta;
    int n_stored, layers[8];
    int topk, dtype_half, T_stored;
    attr_edit attr[N_ATTRS];
    dset_edit ds[IKV_N_DSETS];
    int n_pokes;
    struct { int ds; uint32_t at; float value; } pokes[16];
    int n_extra;
    struct { int rank; int64_t dims[2]; int type; } extra[MAX_EXTRA];
    int entropy_k;
} plan;

static const int64_t interesting[] = {0, 1, -1, 2, 3, 7, 8, 64, 255, 4096, 4097, 65536, 1 << 24,
                                      (1 << 24) + 1, INT32_MAX, INT32_MIN, (int64_t)1 << 40};

static void make_plan(plan *p, ikv_fuzz_input *in)
{
    memset(p, 0, sizeof *p);
    ikv_trace_meta *m = &p->meta;
    snprintf(m->model_name, sizeof m->model_name, "fuzz");
    snprintf(m->arch, sizeof m->arch, "llama");
    static const int hg[][2] = {{1, 1}, {2, 1}, {2, 2}, {4, 2}, {4, 1}, {3, 3}, {6, 2}, {8, 4}};
    uint8_t s0 = ikv_fuzz_u8(in), s1 = ikv_fuzz_u8(in), s2 = ikv_fuzz_u8(in), s3 = ikv_fuzz_u8(in);
    m->n_layers = 1 + s0 % 4;
    m->n_heads = hg[(s0 >> 2) & 7][0];
    m->n_kv_heads = hg[(s0 >> 2) & 7][1];
    m->head_dim = 2 + 2 * (s0 >> 5);
    m->dim = m->n_heads * m->head_dim;
    m->hidden_dim = 2 * m->dim;
    m->vocab_size = 2 + s1 % 40;
    m->rope_theta = 10000.0;
    m->norm_eps = 1e-5;
    m->n_tokens = s2 % 20;
    m->n_prompt = m->n_tokens ? 1 + (s1 >> 6) % m->n_tokens : 0;
    m->complete = !(s3 & 1);
    p->T_stored = m->n_tokens + ((s3 >> 1) & 3); /* an interrupted run may hold more */
    p->dtype_half = (s3 >> 3) & 1;
    p->topk = 1 + (s3 >> 4) % 4;
    if (p->topk > m->vocab_size)
        p->topk = m->vocab_size;
    p->entropy_k = p->topk;
    /* stored layers: a subset (bit mask from s3's top bits) or all */
    unsigned mask = (s3 >> 6) ? (unsigned)(s3 >> 6) : 0;
    p->n_stored = 0;
    for (int l = 0; l < m->n_layers; l++)
        if (!mask || (mask & (1u << l)))
            p->layers[p->n_stored++] = l;
    if (p->n_stored == 0)
        p->layers[p->n_stored++] = 0;

    /* edits: 4 bytes each */
    while (in->pos + 4 <= in->size) {
        uint8_t op = ikv_fuzz_u8(in), target = ikv_fuzz_u8(in), a = ikv_fuzz_u8(in), b = ikv_fuzz_u8(in);
        int64_t value = (a & 0x80) ? interesting[a % (sizeof interesting / sizeof *interesting)]
                                   : (int64_t)(int8_t)b;
        dset_edit *d = &p->ds[target % IKV_N_DSETS];
        attr_edit *at = &p->attr[target % N_ATTRS];
        switch (op % 12) {
        case 0: at->drop = 1; break;
        case 1: at->set = 1; at->kind = 1; at->ival = value; break;
        case 2: at->kind = 2 + a % 4; at->ival = value; break;
        case 3: d->drop = 1; break;
        case 4: d->delta[a % IKV_TRACE_MAX_RANK] = (int64_t)(int8_t)b; break;
        case 5: d->type = 1 + a % 5; break;
        case 6:
            d->contiguous = a & 1;
            d->chunk[(a >> 1) % IKV_TRACE_MAX_RANK] = (a & 0x80) ? value : b;
            break;
        case 7: d->as_group = 1; break;
        case 8:
            if (p->n_pokes < 16) {
                p->pokes[p->n_pokes].ds = target % IKV_N_DSETS;
                p->pokes[p->n_pokes].at = a;
                p->pokes[p->n_pokes].value = (b & 3) == 0 ? NAN : (b & 3) == 1 ? INFINITY
                                           : (b & 3) == 2 ? (float)value : -(float)b * 1e6f;
                p->n_pokes++;
            }
            break;
        case 9:
            if (p->n_extra < MAX_EXTRA) {
                p->extra[p->n_extra].rank = 1 + a % 2;
                p->extra[p->n_extra].dims[0] = b % 9;
                p->extra[p->n_extra].dims[1] = a % 5;
                p->extra[p->n_extra].type = target % 5;
                p->n_extra++;
            }
            break;
        case 10: p->entropy_k = (int)value; break;
        case 11: d->rank_delta = (a & 1) ? 1 : -1; break;
        }
    }
}

/* ---- writing it ---- */

static hid_t type_for(int type, const ikv_dset_def *def, int half)
{
    switch (type) {
    case 1: return H5Tcopy(H5T_IEEE_F32LE);
    case 2: return ikv_h5_half_file_type();
    case 3: return H5Tcopy(H5T_IEEE_F64LE);
    case 4: return H5Tcopy(H5T_STD_I32LE);
    case 5: return H5Tcopy(H5T_STD_U8LE);
    default:
        if (def && def->is_int)
            return H5Tcopy(H5T_STD_I32LE);
        return def && def->big && half ? ikv_h5_half_file_type() : H5Tcopy(H5T_IEEE_F32LE);
    }
}

static uint64_t rng_next(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

static void write_attrs(hid_t file, const plan *p)
{
    const ikv_trace_meta *m = &p->meta;
    int64_t ints[N_ATTRS];
    for (int i = 0; i < N_ATTRS; i++)
        ints[i] = 0;
    for (int i = 0; ikv_root_attr_names[i] && i < N_ATTRS; i++) {
        const char *name = ikv_root_attr_names[i];
        const attr_edit *e = &p->attr[i];
        if (e->drop)
            continue;
        int64_t v = 0;
        int kind = 0; /* 1 int, 2 double, 3 string, 4 layers */
        const char *s = NULL;
        char buf[64];
        if (!strcmp(name, "format")) { kind = 3; s = IKV_TRACE_FORMAT; }
        else if (!strcmp(name, "version")) { kind = 1; v = IKV_TRACE_VERSION; }
        else if (!strcmp(name, "model_name")) { kind = 3; s = m->model_name; }
        else if (!strcmp(name, "arch")) { kind = 3; s = m->arch; }
        else if (!strcmp(name, "n_layers")) { kind = 1; v = m->n_layers; }
        else if (!strcmp(name, "n_heads")) { kind = 1; v = m->n_heads; }
        else if (!strcmp(name, "n_kv_heads")) { kind = 1; v = m->n_kv_heads; }
        else if (!strcmp(name, "head_dim")) { kind = 1; v = m->head_dim; }
        else if (!strcmp(name, "dim")) { kind = 1; v = m->dim; }
        else if (!strcmp(name, "hidden_dim")) { kind = 1; v = m->hidden_dim; }
        else if (!strcmp(name, "vocab_size")) { kind = 1; v = m->vocab_size; }
        else if (!strcmp(name, "rope_theta")) { kind = 2; }
        else if (!strcmp(name, "norm_eps")) { kind = 2; }
        else if (!strcmp(name, "n_prompt")) { kind = 1; v = m->n_prompt; }
        else if (!strcmp(name, "n_tokens")) { kind = 1; v = m->n_tokens; }
        else if (!strcmp(name, "complete")) { kind = 1; v = m->complete; }
        else if (!strcmp(name, "layers")) { kind = 4; }
        else if (!strcmp(name, "dtype")) { kind = 3; s = p->dtype_half ? "f16" : "f32"; }
        else { kind = 3; snprintf(buf, sizeof buf, "fuzz %s", name); s = buf; }
        if (e->set)
            v = e->ival;
        ints[i] = v;
        switch (e->kind ? e->kind : kind) {
        case 1:
            ikv_h5_attr_write_int(file, name, v);
            break;
        case 2:
            ikv_h5_attr_write_double(file, name, e->kind ? (double)e->ival
                                                 : !strcmp(name, "norm_eps") ? m->norm_eps : m->rope_theta);
            break;
        case 3:
            if (e->kind) {
                snprintf(buf, sizeof buf, "%lld\n\x1b[1m", (long long)e->ival);
                s = buf;
            }
            ikv_h5_attr_write_string(file, name, s ? s : "");
            break;
        case 4: {
            int32_t vals[8];
            int n = p->n_stored;
            for (int k = 0; k < n; k++)
                vals[k] = p->layers[k];
            if (e->kind == 4 || e->set) { /* a hostile list */
                n = 1 + (int)((uint64_t)e->ival % 8);
                for (int k = 0; k < n; k++)
                    vals[k] = (int32_t)(e->ival + k * (e->ival & 1 ? -1 : 1));
            }
            if (kind != 4 && e->kind != 4)
                break;
            ikv_h5_attr_write_i32s(file, name, vals, n);
            break;
        }
        case 5: {
            /* an unsigned 64-bit integer past INT64_MAX */
            uint64_t big = UINT64_MAX - (uint64_t)(e->ival & 0xff);
            hid_t sp = H5Screate(H5S_SCALAR);
            hid_t a = H5Acreate2(file, name, H5T_STD_U64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
            if (a >= 0) {
                H5Awrite(a, H5T_NATIVE_UINT64, &big);
                H5Aclose(a);
            }
            H5Sclose(sp);
            break;
        }
        }
    }
}

static void write_dataset(hid_t file, const plan *p, int i, uint64_t *seed)
{
    const ikv_dset_def *def = &ikv_dset_defs[i];
    const dset_edit *e = &p->ds[i];
    if (e->drop)
        return;
    hid_t lcpl = ikv_h5_lcpl();
    if (e->as_group) {
        hid_t g = H5Gcreate2(file, def->path, lcpl, H5P_DEFAULT, H5P_DEFAULT);
        if (g >= 0)
            H5Gclose(g);
        H5Pclose(lcpl);
        return;
    }
    int rank = def->rank + e->rank_delta;
    if (rank < 1 || rank > IKV_TRACE_MAX_RANK)
        rank = def->rank;
    hsize_t dims[IKV_TRACE_MAX_RANK], maxdims[IKV_TRACE_MAX_RANK], chunk[IKV_TRACE_MAX_RANK];
    uint64_t count = 1;
    for (int a = 0; a < rank; a++) {
        int64_t d = a < def->rank ? ikv_axis_size(def->axes[a], &p->meta, p->n_stored, p->topk,
                                                  p->T_stored)
                                  : 2;
        d += e->delta[a];
        if (d < 0)
            d = 0;
        if (d > 64)
            d = 64;
        dims[a] = (hsize_t)d;
        maxdims[a] = def->axes[a] == IKV_AX_T ? H5S_UNLIMITED : (hsize_t)d;
        int64_t c = e->chunk[a] ? e->chunk[a] : (d ? d : 1);
        if (c < 1)
            c = 1;
        if (c > (1 << 20))
            c = 1 << 20;
        chunk[a] = (hsize_t)c;
        count *= (uint64_t)d;
    }
    if (count > 1 << 18) {
        H5Pclose(lcpl);
        return;
    }
    hid_t type = type_for(e->type, def, p->dtype_half);
    hid_t space = H5Screate_simple(rank, dims, e->contiguous ? NULL : maxdims);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (!e->contiguous)
        H5Pset_chunk(dcpl, rank, chunk);
    hid_t ds = H5Dcreate2(file, def->path, type, space, lcpl, dcpl, H5P_DEFAULT);
    if (ds >= 0 && count > 0) {
        float *vals = malloc(count * sizeof *vals);
        if (vals) {
            for (uint64_t k = 0; k < count; k++) {
                uint64_t r = rng_next(seed);
                vals[k] = def->is_int ? (float)(r % (uint64_t)p->meta.vocab_size)
                                      : (float)(r % 2000) / 1000.0f - (def->axes[0] == IKV_AX_T ? 1.0f : 0.0f);
            }
            if (!strcmp(def->path, "/attn/lse") || !strcmp(def->path, "/hidden/evolution"))
                for (uint64_t k = 0; k < count; k++)
                    vals[k] = fabsf(vals[k]);
            for (int k = 0; k < p->n_pokes; k++)
                if (p->pokes[k].ds == i)
                    vals[p->pokes[k].at % count] = p->pokes[k].value;
            H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, vals);
            free(vals);
        }
    }
    if (ds >= 0 && !strcmp(def->path, "/logits/entropy_topk"))
        ikv_h5_attr_write_int(ds, "k", p->entropy_k);
    if (ds >= 0)
        H5Dclose(ds);
    H5Pclose(dcpl);
    H5Sclose(space);
    H5Tclose(type);
    H5Pclose(lcpl);
}

static void write_extra(hid_t file, const plan *p, int i)
{
    static const char *const names[MAX_EXTRA] = {"/live/kl", "/influence/kl", "/live/cache_len", "/extra"};
    hsize_t dims[2] = {(hsize_t)p->extra[i].dims[0], (hsize_t)p->extra[i].dims[1]};
    hid_t lcpl = ikv_h5_lcpl();
    hid_t type = type_for(1 + p->extra[i].type, NULL, 0);
    hid_t space = H5Screate_simple(p->extra[i].rank, dims, NULL);
    hid_t ds = H5Dcreate2(file, names[i], type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (ds >= 0) {
        float vals[64] = {0};
        if (dims[0] * (p->extra[i].rank > 1 ? dims[1] : 1) <= 64)
            H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, vals);
        H5Dclose(ds);
    }
    H5Sclose(space);
    H5Tclose(type);
    H5Pclose(lcpl);
}

static int write_trace(const char *path, const plan *p, uint64_t seed)
{
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (file < 0)
        return -1;
    write_attrs(file, p);
    for (int i = 0; i < IKV_N_DSETS; i++)
        write_dataset(file, p, i, &seed);
    for (int i = 0; i < p->n_extra; i++)
        write_extra(file, p, i);
    H5Fclose(file);
    return 0;
}

/* ---- reading it as the programs do ---- */

static void *alloc_for(ikv_trace_reader *r, const char *path, size_t *bytes)
{
    *bytes = ikv_trace_read_bytes(r, path);
    return *bytes ? malloc(*bytes) : NULL;
}

static int count_dataset(const ikv_trace_dataset_info *info, void *ctx)
{
    IKV_FUZZ_CHECK(info->rank >= 0 && info->rank <= IKV_TRACE_MAX_RANK);
    (*(int *)ctx)++;
    return 0;
}

static void read_everything(ikv_trace_reader *r)
{
    const ikv_trace_meta *m = ikv_trace_meta_of(r);
    const ikv_trace_spec *sp = ikv_trace_spec_of(r);
    int T = m->n_tokens;
    IKV_FUZZ_CHECK(T >= 0 && sp->n_layers >= 1 && sp->n_layers <= m->n_layers);
    for (int i = 0; i < sp->n_layers; i++)
        IKV_FUZZ_CHECK(sp->layers[i] >= 0 && sp->layers[i] < m->n_layers);
    size_t bytes;
    int64_t dims[IKV_TRACE_MAX_RANK];
    for (int i = 0; i < IKV_N_DSETS; i++) {
        const ikv_dset_def *def = &ikv_dset_defs[i];
        int rank = ikv_trace_dims(r, def->path, dims);
        IKV_FUZZ_CHECK(rank < 0 || rank == def->rank);
        if (rank > 0 && def->axes[0] == IKV_AX_T)
            IKV_FUZZ_CHECK(dims[0] == T);
        void *buf = alloc_for(r, def->path, &bytes);
        if (!buf)
            continue;
        int rc = 0;
        if (def->per_layer) {
            for (int s = 0; s < sp->n_layers && rc == 0; s++)
                rc = ikv_trace_read_layer(r, def->path, s, buf);
            IKV_FUZZ_CHECK(ikv_trace_read_layer(r, def->path, sp->n_layers, buf) != 0);
        } else if (!strcmp(def->path, "/tokens")) {
            rc = ikv_trace_read_tokens(r, buf);
            for (int t = 0; rc == 0 && t < T; t++)
                (void)((int32_t *)buf)[t];
        } else if (!strcmp(def->path, "/logits/entropy") || !strcmp(def->path, "/logits/entropy_topk")) {
            rc = ikv_trace_read_entropy(r, !strcmp(def->path, "/logits/entropy") ? 0 : sp->entropy_k, buf);
        } else if (!strcmp(def->path, "/logits/logprob")) {
            rc = ikv_trace_read_logprob(r, buf);
        } else if (!strcmp(def->path, "/logits/topk_ids")) {
            rc = ikv_trace_read_topk(r, buf, NULL);
        } else if (!strcmp(def->path, "/logits/topk_logprobs")) {
            rc = ikv_trace_read_topk(r, NULL, buf);
        } else if (!strcmp(def->path, "/hidden/evolution")) {
            rc = ikv_trace_read_evolution(r, buf);
        } else if (!strcmp(def->path, "/hidden/states")) {
            for (int s = 0; s <= sp->n_layers && rc == 0; s++)
                rc = ikv_trace_read_states(r, s, 0, T, buf);
            IKV_FUZZ_CHECK(ikv_trace_read_states(r, 0, T, 1, buf) != 0);
        } else if (!strcmp(def->path, "/logits/full")) {
            rc = ikv_trace_read_logits(r, 0, T, buf);
            IKV_FUZZ_CHECK(ikv_trace_read_logits(r, T, 1, buf) != 0);
        }
        if (rc != 0)
            ikv_fuzz_check_message(ikv_trace_reader_error(r), NULL);
        free(buf);
    }
    /* extras, as infokv-inspect lists and reads them */
    int n = 0;
    /* A file whose needed objects open may still hold a corrupt link
     * table (raw-byte inputs): listing then fails, with one line. */
    if (ikv_trace_foreach_dataset(r, count_dataset, &n) != 0)
        ikv_fuzz_check_message(ikv_trace_reader_error(r), NULL);
    static const char *const extras[] = {"/live/kl", "/influence/kl", "/live/cache_len", "/extra"};
    for (size_t i = 0; i < sizeof extras / sizeof *extras; i++) {
        int rank = ikv_trace_dims(r, extras[i], dims);
        if (rank < 1)
            continue;
        int64_t start[IKV_TRACE_MAX_RANK] = {0}, count[IKV_TRACE_MAX_RANK];
        int64_t total = 1;
        for (int a = 0; a < rank; a++)
            total *= count[a] = dims[a];
        float *f = malloc((size_t)(total ? total : 1) * sizeof *f);
        int32_t *i32 = malloc((size_t)(total ? total : 1) * sizeof *i32);
        if (f && i32) {
            ikv_trace_read_f32(r, extras[i], start, count, f);
            ikv_trace_read_i32(r, extras[i], start, count, i32);
            count[0] += 1; /* past the end: refused */
            IKV_FUZZ_CHECK(ikv_trace_read_f32(r, extras[i], start, count, f) != 0);
        }
        free(f);
        free(i32);
    }
    char s[64];
    int64_t iv;
    double dv;
    ikv_trace_attr_string(r, "/", "model_name", s, sizeof s);
    ikv_trace_attr_int(r, "/", "n_layers", &iv);
    ikv_trace_attr_double(r, "/", "rope_theta", &dv);
    ikv_trace_attr_int(r, "/logits/entropy_topk", "k", &iv);
}

/* infokv-inspect --check's statistics and validation. */
static void inspect(ikv_trace_reader *r)
{
    ikv_inspect_stats st;
    ikv_inspect_findings found;
    char err[1024];
    memset(&st, 0, sizeof st);
    memset(&found, 0, sizeof found);
    int rc = ikv_inspect_analyse(r, 1, &st, &found, err, sizeof err);
    if (rc != 0)
        ikv_fuzz_check_message(err, NULL);
    IKV_FUZZ_CHECK(found.n_problems >= 0 && found.n_notes >= 0 && found.n_passed >= 0);
    for (int i = 0; i < found.n_problems && i < IKV_INSPECT_KEEP; i++)
        ikv_fuzz_check_message(found.problems[i], NULL);
    ikv_inspect_stats_free(&st);
}

static void simulate(const char *path, const ikv_trace_reader *r)
{
    const ikv_trace_meta *m = ikv_trace_meta_of(r);
    if (m->n_tokens > 24 || m->n_layers > 4)
        return;
    ikv_sweep sw;
    char err[1024];
    IKV_FUZZ_CHECK(ikv_sweep_parse("snapkv.window=2", &sw, err, sizeof err) == 0);
    ikv_sim_jobs jobs;
    IKV_FUZZ_CHECK(ikv_sim_jobs_expand("full,streaming,h2o,snapkv,infokv,oracle", "2,50%",
                                       "prefill,decode", &sw, 1, &jobs, err, sizeof err) == 0);
    ikv_sim_options opt = ikv_sim_default_options();
    opt.fi_tokens = 2;
    opt.fi_per_bucket = 2;
    opt.skip_impossible = 1;
    ikv_sim_results res;
    int rc = ikv_sim_run(&path, 1, &jobs, &opt, &res, err, sizeof err);
    if (rc != 0) {
        IKV_FUZZ_CHECK(rc == IKV_SIM_EINPUT || rc == IKV_SIM_ERUNTIME);
        ikv_fuzz_check_message(err, NULL);
    } else {
        ikv_sim_results_free(&res);
    }
    ikv_sim_jobs_free(&jobs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        /* one thread: OpenMP workers spinning between tiny jobs cost more
         * than the jobs (set before the first parallel region) */
        setenv("OMP_NUM_THREADS", "1", 0);
        ready = 1;
    }
    if (size < 1)
        return 0;
    const char *path;
    if (data[0] & 1) {
        path = ikv_fuzz_write_file("trace.h5", data + 1, size - 1);
    } else {
        ikv_fuzz_input in = {data, size, 1};
        plan p;
        make_plan(&p, &in);
        path = ikv_fuzz_path("trace.h5");
        if (write_trace(path, &p, 7 + data[0]) != 0)
            return 0;
    }
    if (!path)
        return 0;
    char err[1024];
    ikv_trace_reader *r;
    int rc = ikv_trace_open(&r, path, err, sizeof err);
    if (rc != 0) {
        IKV_FUZZ_CHECK(r == NULL && rc < 0);
        ikv_fuzz_check_message(err, path);
        return 0;
    }
    read_everything(r);
    inspect(r);
    if (!getenv("IKV_FUZZ_NO_SIM"))
        simulate(path, r);
    ikv_trace_close(r);
    return 0;
}
