#include "config.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "capture/recorder.h"
#include "infokv/core.h"
#include "util/bigalloc.h"
#include "util/thread.h"

/* A ring of slots from this size on is one mapping on huge pages. */
#define BIG_ARENA ((size_t)8 << 20)

/* Buffered signals of one position. */
typedef struct slot {
    int pos;          /* position held, -1 when free */
    void *block;      /* the buffers below, unless the ring is one mapping */
    float *q;         /* [L'][H][d] */
    float *k, *v;     /* [L'][G][d] */
    float *evolution; /* [L'] */
    float *lse;       /* [L'][H] */
    float *out;       /* [L'][H][d] */
    float *probs;     /* [L'][H][t+1] */
    float *states;    /* [L'+1][D] */
    float *logits;    /* [V] */
    int have_logits;  /* logits arrived for pos: the summary is still to do */
    float logprob;    /* of the token at pos, when summarised in the callback */
    int32_t *topk_ids; /* [K] */
    float *topk_lp;   /* [K] */
    float entropy, entropy_topk, logits_lse;
} slot;

struct ikv_recorder {
    ikv_trace_writer *writer;
    const ikv_session *session;
    unsigned signals;
    int L, Ls, H, G, d, D, V, K, entropy_k;
    int window, max_positions;
    int ring;            /* slots: window, or 2 windows when writing behind */
    int *slot_of_layer;  /* [L] stored slot of each model layer, -1 if not */
    int last_layer;      /* model layer whose output is the final residual */
    slot *slots;         /* [ring] */
    unsigned char *arena; /* a large ring's buffers (ikv_big_alloc), or NULL */
    size_t arena_bytes;
    int handed;          /* positions handed over to be written */
    int seen_written;    /* `written` as the caller's thread last read it */
    float *carry_logits; /* [V] logits of the last written position */
    float carry_lse;
    int have_carry;
    /* Summaries in the callbacks (IKV_LOGITS_IN_CALLBACK): the buffer
     * holds no logits. The log-probability of a position's token comes
     * from the logits before it: within a call its token is known from
     * on_tokens; the first position of a call takes the session's logits
     * of the call before, which on_tokens still sees. */
    int summary_here;
    int32_t *inputs;     /* [max_positions] tokens the session processed */
    int call_end;        /* one past the last position of the current call */
    int call_last;       /* last position of the call before, -1 if none */
    float call_last_lse; /* and its log-sum-exp */
    double *received;    /* [max_positions] or NULL */
    float *entropy_log;  /* [max_positions] */
    int32_t *order;      /* [V] scratch of ikv_top_k */
    int32_t *tokens;     /* [max_positions] tokens of the handed positions */
    int failed;          /* an allocation or a size check failed in a callback */
    char err[256];
    /* Writing behind (config.background): a thread of its own computes
     * the logit signals and writes the handed positions while the
     * caller's thread runs the engine. `busy` and the waits go under the
     * lock; `behind` and `joinable` are the caller's thread's own. */
    int behind;          /* the thread runs */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t work;     /* positions handed, or stop */
    pthread_cond_t progress; /* a position written, or the thread failed */
    atomic_int stop;     /* end after the position at hand */
    int busy;            /* the thread prepares the writer or writes positions */
    int joinable;        /* the thread was stopped and not joined */
    atomic_int waiting;  /* the caller's thread waits for a slot */
    atomic_int thread_failed; /* writing failed: thread_err says why */
    char thread_err[512];
    /* Each on a cache line of its own: the caller's thread reads the
     * thread's progress only when it may need to wait (a line passed
     * between two cores costs hundreds of cycles, and the callbacks ask
     * for a slot a dozen times a position). */
    _Alignas(64) atomic_int written;  /* positions written: set by the writing side */
    _Alignas(64) atomic_int published; /* `handed` as the thread sees it */
    char pad[64 - sizeof(atomic_int)];
};

static void *zalloc(size_t count, size_t size, int *failed)
{
    if (*failed || count == 0)
        return NULL;
    void *p = calloc(count, size);
    if (!p)
        *failed = 1;
    return p;
}

static int start_thread(ikv_recorder *r);
static void take_back(ikv_recorder *r);
static void join_thread(ikv_recorder *r);

void ikv_recorder_free(ikv_recorder *r)
{
    if (!r)
        return;
    take_back(r);
    join_thread(r);
    ikv_big_free(r->arena, r->arena_bytes);
    for (int i = 0; r->slots && i < r->ring; i++)
        free(r->slots[i].block);
    free(r->slots);
    free(r->slot_of_layer);
    free(r->carry_logits);
    free(r->inputs);
    free(r->received);
    free(r->entropy_log);
    free(r->order);
    free(r->tokens);
    free(r);
}

void ikv_recorder_meta(const ikv_model_details *m, int n_prompt, ikv_trace_meta *meta)
{
    memset(meta, 0, sizeof *meta);
    snprintf(meta->model_name, sizeof meta->model_name, "%s", m->name);
    snprintf(meta->arch, sizeof meta->arch, "%s", m->arch);
    meta->n_layers = m->n_layers;
    meta->n_heads = m->n_heads;
    meta->n_kv_heads = m->n_kv_heads;
    meta->head_dim = m->head_dim;
    meta->dim = m->dim;
    meta->hidden_dim = m->hidden_dim;
    meta->vocab_size = m->vocab_size;
    meta->rope_theta = m->rope_theta;
    meta->norm_eps = m->norm_eps;
    meta->n_prompt = n_prompt;
}

int ikv_recorder_create(ikv_recorder **out, ikv_trace_writer *writer,
                        const ikv_recorder_config *cfg, char *err, size_t errlen)
{
    *out = NULL;
    const ikv_model_details *m = ikv_model_info(ikv_session_model(cfg->session));
    const ikv_trace_spec *spec = cfg->spec;
    if (cfg->window < 1 || cfg->max_positions < 1) {
        snprintf(err, errlen, "recorder: window and length must be positive");
        return IKV_EINVAL;
    }
    ikv_recorder *r = aligned_alloc(64, (sizeof *r + 63) / 64 * 64);
    if (r)
        memset(r, 0, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return IKV_ENOMEM;
    }
    r->writer = writer;
    r->session = cfg->session;
    r->signals = spec->signals;
    r->L = m->n_layers;
    r->H = m->n_heads;
    r->G = m->n_kv_heads;
    r->d = m->head_dim;
    r->D = m->dim;
    r->V = m->vocab_size;
    r->K = spec->topk;
    r->entropy_k = spec->entropy_k;
    r->window = cfg->window;
    r->max_positions = cfg->max_positions;
    r->summary_here = (spec->signals & IKV_TRACE_LOGITS_SUMMARY) &&
                      (cfg->logit_summary == IKV_LOGITS_IN_CALLBACK ||
                       (cfg->logit_summary == IKV_LOGITS_AUTO && r->V >= IKV_LOGITS_CALLBACK_VOCAB &&
                        !(spec->signals & IKV_TRACE_LOGITS_FULL)));
    r->call_last = -1;
    r->ring = cfg->background ? 2 * cfg->window : cfg->window;
    /* no more slots than positions: a short capture of a large model
     * would fault in memory it never uses */
    if (r->ring > r->window && r->ring > r->max_positions)
        r->ring = r->max_positions > r->window ? r->max_positions : r->window;
    int failed = 0;
    r->slot_of_layer = zalloc((size_t)r->L, sizeof *r->slot_of_layer, &failed);
    for (int l = 0; !failed && l < r->L; l++) {
        r->slot_of_layer[l] = ikv_trace_writer_layer_slot(writer, l);
        if (r->slot_of_layer[l] >= 0)
            r->Ls++;
    }
    r->last_layer = r->L - 1;
    const size_t Ls = (size_t)r->Ls, H = (size_t)r->H, G = (size_t)r->G, d = (size_t)r->d;
    const unsigned sig = r->signals;
    r->slots = zalloc((size_t)r->ring, sizeof *r->slots, &failed);
    const size_t lengths[] = {
        sig & (IKV_TRACE_QKV | IKV_TRACE_ATTN_STATS) ? Ls * H * d : 0, /* q: stats recompute a score */
        sig & IKV_TRACE_QKV ? Ls * G * d : 0,                             /* k */
        sig & IKV_TRACE_QKV ? Ls * G * d : 0,                             /* v */
        sig & IKV_TRACE_EVOLUTION ? Ls : 0,                               /* evolution */
        sig & IKV_TRACE_ATTN_STATS ? Ls * H : 0,                          /* lse */
        sig & IKV_TRACE_ATTN_STATS ? Ls * H * d : 0,                      /* out */
        sig & IKV_TRACE_ATTN_PROBS ? Ls * H * (size_t)r->max_positions : 0, /* probs */
        sig & IKV_TRACE_STATES ? (Ls + 1) * (size_t)r->D : 0,             /* states */
        (sig & IKV_TRACE_LOGITS_FULL) || ((sig & IKV_TRACE_LOGITS_SUMMARY) && !r->summary_here)
            ? (size_t)r->V : 0,                                           /* logits */
        sig & IKV_TRACE_LOGITS_SUMMARY ? (size_t)r->K : 0,                /* topk_ids */
        sig & IKV_TRACE_LOGITS_SUMMARY ? (size_t)r->K : 0,                /* topk_lp */
    };
    enum { N_BUFFERS = sizeof lengths / sizeof lengths[0] };
    /* A large ring's buffers (Llama-3.2-1B: 0.7 MB a slot) in one mapping
     * on huge pages, which the thread faults in ahead: the engine's first
     * write to a fresh 4 KiB page costs ~10 us on a VM, and faulting them
     * in on its thread cost 50-100 ms in a 96-position capture. A small
     * ring's slots (stories260K: 5 KB each) come from the heap. */
    size_t slot_bytes = 0; /* 4-byte elements, each buffer on a cache line */
    for (int b = 0; b < N_BUFFERS; b++)
        slot_bytes += (lengths[b] * 4 + 63) / 64 * 64;
    if (slot_bytes * (size_t)r->ring >= BIG_ARENA) {
        r->arena_bytes = slot_bytes * (size_t)r->ring;
        if (!failed && !(r->arena = ikv_big_alloc(r->arena_bytes)))
            failed = 1;
    }
    for (int i = 0; !failed && i < r->ring; i++) {
        slot *s = &r->slots[i];
        s->pos = -1;
        unsigned char *at = r->arena ? r->arena + (size_t)i * slot_bytes
                                     : (s->block = aligned_alloc(64, slot_bytes ? slot_bytes : 64));
        if (!at) {
            failed = 1;
            break;
        }
        void *buffer[N_BUFFERS];
        for (int b = 0; b < N_BUFFERS; b++) {
            buffer[b] = lengths[b] ? at : NULL;
            at += (lengths[b] * 4 + 63) / 64 * 64;
        }
        s->q = buffer[0];
        s->k = buffer[1];
        s->v = buffer[2];
        s->evolution = buffer[3];
        s->lse = buffer[4];
        s->out = buffer[5];
        s->probs = buffer[6];
        s->states = buffer[7];
        s->logits = buffer[8];
        s->topk_ids = buffer[9];
        s->topk_lp = buffer[10];
    }
    if ((sig & IKV_TRACE_LOGITS_SUMMARY) && !r->summary_here)
        r->carry_logits = zalloc((size_t)r->V, sizeof(float), &failed);
    if (r->summary_here)
        r->inputs = zalloc((size_t)r->max_positions, sizeof(int32_t), &failed);
    if (cfg->track_received)
        r->received = zalloc((size_t)r->max_positions, sizeof(double), &failed);
    r->entropy_log = zalloc((size_t)r->max_positions, sizeof(float), &failed);
    r->order = zalloc((size_t)r->V, sizeof(int32_t), &failed);
    r->tokens = zalloc((size_t)r->max_positions, sizeof(int32_t), &failed);
    if (!failed && (sig & IKV_TRACE_LOGITS_SUMMARY) && (r->K < 1 || r->K > r->V || r->entropy_k > r->K)) {
        snprintf(err, errlen, "recorder: top-k %d (entropy over %d) does not fit a vocabulary of %d", r->K,
                 r->entropy_k, r->V);
        ikv_recorder_free(r);
        return IKV_EINVAL;
    }
    if (failed) {
        snprintf(err, errlen, "out of memory for the capture buffers (%d positions)", r->ring);
        ikv_recorder_free(r);
        return IKV_ENOMEM;
    }
    for (int i = 0; i < r->max_positions; i++)
        r->entropy_log[i] = NAN;
    if (cfg->background && start_thread(r) != 0) {
        snprintf(err, errlen, "recorder: cannot start its writing thread");
        ikv_recorder_free(r);
        return IKV_ENOMEM;
    }
    *out = r;
    return IKV_OK;
}

/* Writing behind: waits until the slot of `pos` is written out (the
 * thread lags more than a window). 0, or -1 if the thread failed. */
static int wait_for_slot(ikv_recorder *r, int pos)
{
    pthread_mutex_lock(&r->lock);
    atomic_store(&r->waiting, 1);
    pthread_cond_signal(&r->work); /* handed positions may wait for a batch */
    while (atomic_load(&r->written) <= pos - r->ring && !r->thread_failed)
        pthread_cond_wait(&r->progress, &r->lock);
    r->seen_written = atomic_load(&r->written);
    atomic_store(&r->waiting, 0);
    const int failed = r->thread_failed;
    pthread_mutex_unlock(&r->lock);
    return failed ? -1 : 0;
}

/* The buffer slot of a position, claimed on first use. */
static slot *slot_for(ikv_recorder *r, int pos)
{
    if (pos >= r->seen_written + r->ring) /* else no need to look: it only grows */
        r->seen_written = atomic_load_explicit(&r->written, memory_order_acquire);
    const int written = r->seen_written;
    if (pos < written || pos >= r->max_positions ||
        (pos >= written + r->ring && (!r->behind || pos >= r->handed + r->window))) {
        if (!r->failed)
            snprintf(r->err, sizeof r->err, "recorder: position %d outside the buffered window [%d, %d)",
                     pos, r->handed, r->handed + r->window);
        r->failed = 1;
        return NULL;
    }
    if (pos >= written + r->ring && wait_for_slot(r, pos) != 0) {
        r->failed = 1; /* the write error itself is reported by ikv_recorder_write */
        return NULL;
    }
    slot *s = &r->slots[pos % r->ring];
    s->pos = pos;
    return s;
}

static void on_qkv(void *user, int layer, int pos, const float *q, const float *k, const float *v)
{
    ikv_recorder *r = user;
    int ls = r->slot_of_layer[layer];
    slot *s = ls >= 0 ? slot_for(r, pos) : NULL;
    if (!s)
        return;
    size_t hd = (size_t)r->H * (size_t)r->d, gd = (size_t)r->G * (size_t)r->d;
    memcpy(s->q + (size_t)ls * hd, q, hd * sizeof *q);
    if (s->k) {
        memcpy(s->k + (size_t)ls * gd, k, gd * sizeof *k);
        memcpy(s->v + (size_t)ls * gd, v, gd * sizeof *v);
    }
}

/* lse of a row from its largest probability: lse = score_j - log p_j,
 * with score_j recomputed from the query and the cached key of slot j. */
static void attention_stats(ikv_recorder *r, int layer, int ls, slot *s, const float *probs,
                            int n_keys, int stride)
{
    const int group = r->H / r->G, d = r->d;
    const float scale = 1.0f / sqrtf((float)d);
    for (int h = 0; h < r->H; h++) {
        const int g = h / group;
        const float *row = probs + (size_t)h * (size_t)stride;
        const float *keys = ikv_session_keys(r->session, layer, g);
        const float *values = ikv_session_values(r->session, layer, g);
        int best = 0;
        for (int j = 1; j < n_keys; j++)
            best = row[j] > row[best] ? j : best;
        /* the query as the engine used it is the recorded q (after RoPE) */
        const float *q = s->q ? s->q + ((size_t)ls * (size_t)r->H + (size_t)h) * (size_t)d : NULL;
        float score = 0.0f;
        for (int c = 0; q && c < d; c++)
            score += q[c] * keys[(size_t)best * (size_t)d + (size_t)c];
        s->lse[(size_t)ls * (size_t)r->H + (size_t)h] = score * scale - logf(row[best]);
        float *o = s->out + ((size_t)ls * (size_t)r->H + (size_t)h) * (size_t)d;
        for (int c = 0; c < d; c++)
            o[c] = 0.0f;
        for (int j = 0; j < n_keys; j++) {
            const float p = row[j];
            const float *vj = values + (size_t)j * (size_t)d;
            for (int c = 0; c < d; c++)
                o[c] += p * vj[c];
        }
    }
}

static void on_attention(void *user, int layer, int pos, const float *probs, int n_keys, int stride)
{
    ikv_recorder *r = user;
    if (r->received) {
        for (int h = 0; h < r->H; h++) {
            const float *row = probs + (size_t)h * (size_t)stride;
            for (int j = 0; j < n_keys && j < r->max_positions; j++)
                r->received[j] += row[j];
        }
    }
    int ls = r->slot_of_layer[layer];
    if (ls < 0 || !(r->signals & (IKV_TRACE_ATTN_PROBS | IKV_TRACE_ATTN_STATS)))
        return;
    slot *s = slot_for(r, pos);
    if (!s)
        return;
    if (r->signals & IKV_TRACE_ATTN_PROBS) {
        /* the writer takes [L'][H][t+1]: rows of this position's length */
        size_t len = (size_t)pos + 1;
        if (n_keys != pos + 1) {
            snprintf(r->err, sizeof r->err, "recorder: attention row of position %d has %d keys", pos, n_keys);
            r->failed = 1;
            return;
        }
        for (int h = 0; h < r->H; h++)
            memcpy(s->probs + ((size_t)ls * (size_t)r->H + (size_t)h) * len,
                   probs + (size_t)h * (size_t)stride, len * sizeof *probs);
    }
    if (r->signals & IKV_TRACE_ATTN_STATS)
        attention_stats(r, layer, ls, s, probs, n_keys, stride);
}

static void on_residual(void *user, int layer, int pos, const float *before, const float *after)
{
    ikv_recorder *r = user;
    int ls = r->slot_of_layer[layer];
    int final = (r->signals & IKV_TRACE_STATES) && layer == r->last_layer;
    if (ls < 0 && !final)
        return;
    slot *s = slot_for(r, pos);
    if (!s)
        return;
    if (ls >= 0 && (r->signals & IKV_TRACE_EVOLUTION))
        s->evolution[ls] = ikv_evolution(before, after, r->D);
    if (r->signals & IKV_TRACE_STATES) {
        if (ls >= 0)
            memcpy(s->states + (size_t)ls * (size_t)r->D, before, (size_t)r->D * sizeof *before);
        if (final)
            memcpy(s->states + (size_t)r->Ls * (size_t)r->D, after, (size_t)r->D * sizeof *after);
    }
}

/* Entropy, log-sum-exp and top-k of a position's logits. */
static void summarize_logits(ikv_recorder *r, slot *s, const float *logits)
{
    ikv_logits_summary(logits, r->V, &s->logits_lse, &s->entropy);
    if (s->pos < r->max_positions)
        r->entropy_log[s->pos] = s->entropy;
    if (r->signals & IKV_TRACE_LOGITS_SUMMARY) {
        ikv_top_k(logits, r->V, r->K, s->topk_ids, r->order);
        for (int i = 0; i < r->K; i++)
            s->topk_lp[i] = logits[s->topk_ids[i]] - s->logits_lse;
        s->entropy_topk = ikv_entropy_from_logits(s->topk_lp, r->entropy_k);
    }
}

static void on_tokens(void *user, const int32_t *positions, const int32_t *tokens, int n)
{
    ikv_recorder *r = user;
    for (int i = 0; i < n; i++) {
        slot *s = slot_for(r, positions[i]);
        if (!s)
            return;
        s->logprob = NAN;
        r->inputs[positions[i]] = tokens[i];
    }
    r->call_end = positions[n - 1] + 1;
    const float *before = ikv_session_logits(r->session);
    if (before && r->call_last >= 0 && r->call_last + 1 == positions[0])
        r->slots[positions[0] % r->ring].logprob = before[tokens[0]] - r->call_last_lse;
}

static void on_logits(void *user, int pos, const float *logits)
{
    ikv_recorder *r = user;
    slot *s = slot_for(r, pos);
    if (!s)
        return;
    if (s->logits)
        memcpy(s->logits, logits, (size_t)r->V * sizeof *logits);
    if (!r->summary_here) {
        s->have_logits = 1; /* the summary comes with the write (write_one) */
        return;
    }
    summarize_logits(r, s, logits);
    if (pos + 1 < r->call_end) { /* the next position's slot is claimed */
        r->slots[(pos + 1) % r->ring].logprob = logits[r->inputs[pos + 1]] - s->logits_lse;
    } else {
        r->call_last = pos;
        r->call_last_lse = s->logits_lse;
    }
}

ikv_observer ikv_recorder_observer(ikv_recorder *r)
{
    ikv_observer o;
    memset(&o, 0, sizeof o);
    o.user = r;
    const unsigned sig = r->signals;
    if (sig & (IKV_TRACE_QKV | IKV_TRACE_ATTN_STATS))
        o.on_qkv = on_qkv;
    if ((sig & (IKV_TRACE_ATTN_PROBS | IKV_TRACE_ATTN_STATS)) || r->received)
        o.on_attention = on_attention;
    if (sig & (IKV_TRACE_EVOLUTION | IKV_TRACE_STATES))
        o.on_residual = on_residual;
    if (sig & (IKV_TRACE_LOGITS_SUMMARY | IKV_TRACE_LOGITS_FULL))
        o.on_logits = on_logits;
    if (r->summary_here)
        o.on_tokens = on_tokens;
    return o;
}

/* Writes position t from its slot (tokens[t] is its token). */
static int write_one(ikv_recorder *r, int t, char *err, size_t errlen)
{
    slot *s = &r->slots[t % r->ring];
    if (s->pos != t) {
        snprintf(err, errlen, "recorder: no signals arrived for position %d", t);
        return IKV_ESTATE;
    }
    if (s->have_logits) {
        summarize_logits(r, s, s->logits);
        s->have_logits = 0;
    }
    ikv_trace_row row;
    memset(&row, 0, sizeof row);
    row.token = r->tokens[t];
    row.entropy = s->entropy;
    row.entropy_topk = s->entropy_topk;
    row.logprob = r->summary_here ? s->logprob
                  : r->have_carry ? r->carry_logits[r->tokens[t]] - r->carry_lse : NAN;
    row.topk_ids = s->topk_ids;
    row.topk_logprobs = s->topk_lp;
    row.evolution = s->evolution;
    row.q = s->q;
    row.k = s->k;
    row.v = s->v;
    row.lse = s->lse;
    row.out = s->out;
    row.probs = s->probs;
    row.states = s->states;
    row.logits = s->logits;
    if (ikv_trace_write_position(r->writer, &row) != 0) {
        snprintf(err, errlen, "%s", ikv_trace_writer_error(r->writer));
        return IKV_EINVAL;
    }
    if (r->carry_logits) {
        memcpy(r->carry_logits, s->logits, (size_t)r->V * sizeof *s->logits);
        r->carry_lse = s->logits_lse;
        r->have_carry = 1;
    }
    s->pos = -1;
    atomic_store_explicit(&r->written, t + 1, memory_order_release);
    return IKV_OK;
}

/* ---- writing behind ---- */

/* The caller's thread wakes the thread only when a window of positions
 * waits (a prefill; the ring holds two), or to finish: a wake costs it
 * 10-30 us on this VM (a system call and an interrupt to the other core),
 * and a fast engine (stories260K: 64 positions in 3 ms) would pay that
 * every few positions. Between wakes the thread looks for positions
 * itself, 1 ms after its last work and then less and less often (up to
 * 16 ms) while none come: a slow engine (Llama-3.2-1B: 20 ms a position)
 * is not interrupted a thousand times a second for nothing. */
#define POLL_MIN_NS 1000000L
#define POLL_MAX_NS 16000000L

/* Waits on r->work at most `ns` (the lock held). */
static void wait_for_work(ikv_recorder *r, long ns)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += ns;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&r->work, &r->lock, &until);
}

static void *writing_thread(void *arg)
{
    ikv_recorder *r = arg;
    /* pages in while the engine starts (its values untouched) */
    if (r->arena)
        ikv_prefault(r->arena, r->arena_bytes);
    /* The trace file, created here while the engine starts when the
     * writer left that to its first user (spec.deferred_create); a
     * failure comes back with the first position written. `busy` was
     * set for this by start_thread: take_back waits for it. */
    ikv_trace_writer_prepare(r->writer);
    pthread_mutex_lock(&r->lock);
    r->busy = 0;
    pthread_cond_broadcast(&r->progress);
    long poll = POLL_MIN_NS;
    for (;;) {
        for (; atomic_load(&r->written) == atomic_load(&r->published) && !r->stop;
             poll = poll < POLL_MAX_NS / 2 ? 2 * poll : POLL_MAX_NS)
            wait_for_work(r, poll);
        poll = POLL_MIN_NS;
        const int from = atomic_load(&r->written), to = atomic_load(&r->published);
        if (r->stop)
            break; /* the caller's thread writes from here on (take_back) */
        r->busy = 1;
        pthread_mutex_unlock(&r->lock);
        char err[sizeof r->thread_err];
        int rc = IKV_OK;
        for (int t = from; t < to && rc == IKV_OK; t++) {
            rc = write_one(r, t, err, sizeof err);
            if (atomic_load_explicit(&r->stop, memory_order_relaxed))
                break;
            if (atomic_load_explicit(&r->waiting, memory_order_relaxed)) {
                pthread_mutex_lock(&r->lock);
                pthread_cond_broadcast(&r->progress);
                pthread_mutex_unlock(&r->lock);
            }
        }
        pthread_mutex_lock(&r->lock);
        r->busy = 0;
        if (rc != IKV_OK) {
            memcpy(r->thread_err, err, sizeof err); /* before the flag that publishes it */
            atomic_store(&r->thread_failed, 1);
            pthread_cond_broadcast(&r->progress);
            break;
        }
        pthread_cond_broadcast(&r->progress);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

static int start_thread(ikv_recorder *r)
{
    if (pthread_mutex_init(&r->lock, NULL) != 0)
        return -1;
    pthread_condattr_t monotonic; /* wait_for_work's deadlines */
    int ok = pthread_condattr_init(&monotonic) == 0;
    ok = ok && pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC) == 0;
    ok = ok && pthread_cond_init(&r->work, &monotonic) == 0;
    if (ok && pthread_cond_init(&r->progress, NULL) != 0) {
        pthread_cond_destroy(&r->work);
        ok = 0;
    }
    pthread_condattr_destroy(&monotonic);
    if (!ok) {
        pthread_mutex_destroy(&r->lock);
        return -1;
    }
    r->busy = 1; /* preparing the writer (writing_thread) */
    const int started = ikv_thread_start(&r->thread, "ikv-record", writing_thread, r) == 0;
    if (!started) {
        r->busy = 0;
        pthread_cond_destroy(&r->progress);
        pthread_cond_destroy(&r->work);
        pthread_mutex_destroy(&r->lock);
        return -1;
    }
    r->behind = 1;
    return 0;
}

/* Ends the thread's writing at once: the caller's thread writes from
 * here on. The thread finishes the position at hand if it is writing;
 * asleep, it ends when it next wakes, without touching the writer, so
 * nobody waits for its wake (hundreds of microseconds on this VM). */
static void take_back(ikv_recorder *r)
{
    if (!r->behind)
        return;
    pthread_mutex_lock(&r->lock);
    atomic_store(&r->stop, 1);
    pthread_cond_signal(&r->work);
    while (r->busy)
        pthread_cond_wait(&r->progress, &r->lock);
    pthread_mutex_unlock(&r->lock);
    r->behind = 0;
    r->joinable = 1;
}

static void join_thread(ikv_recorder *r)
{
    if (!r->joinable)
        return;
    pthread_join(r->thread, NULL);
    pthread_cond_destroy(&r->progress);
    pthread_cond_destroy(&r->work);
    pthread_mutex_destroy(&r->lock);
    r->joinable = 0;
}

/* A failed write (on the thread or not), if any, as this call's error
 * (thread_err is complete before thread_failed is set). */
static int write_failure(ikv_recorder *r, char *err, size_t errlen)
{
    if (!atomic_load(&r->thread_failed))
        return IKV_OK;
    snprintf(err, errlen, "%s", r->thread_err);
    return IKV_EINVAL;
}

/* Writes the handed positions not yet written, on the caller's thread. */
static int write_here(ikv_recorder *r, char *err, size_t errlen)
{
    for (int t = atomic_load(&r->written); t < r->handed; t++) {
        int rc = write_one(r, t, err, errlen);
        if (rc != IKV_OK) { /* the writer is in an unknown state */
            snprintf(r->thread_err, sizeof r->thread_err, "%s", err);
            atomic_store(&r->thread_failed, 1);
            return rc;
        }
    }
    r->seen_written = atomic_load(&r->written);
    return IKV_OK;
}

int ikv_recorder_write(ikv_recorder *r, const int32_t *tokens, int upto, char *err, size_t errlen)
{
    /* the thread's failure first: a callback that then found no slot
     * has only a consequence to report */
    if (write_failure(r, err, errlen) != IKV_OK)
        return IKV_EINVAL;
    if (r->failed) {
        snprintf(err, errlen, "%s", r->err);
        return IKV_EINVAL;
    }
    if (upto > r->handed + r->window || upto > r->max_positions) {
        snprintf(err, errlen, "recorder: %d positions to write, the buffer holds %d", upto - r->handed,
                 r->window);
        return IKV_EINVAL;
    }
    for (int t = r->handed; t < upto; t++)
        r->tokens[t] = tokens[t];
    if (r->behind) {
        if (upto <= r->handed)
            return IKV_OK;
        r->handed = upto;
        /* published without the lock: the thread finds it by itself
         * (wait_for_work), or is woken for a window of positions */
        atomic_store_explicit(&r->published, upto, memory_order_release);
        if (upto - r->seen_written >= r->window) {
            r->seen_written = atomic_load(&r->written);
            if (upto - r->seen_written >= r->window) {
                pthread_mutex_lock(&r->lock);
                pthread_cond_signal(&r->work);
                pthread_mutex_unlock(&r->lock);
            }
        }
        return IKV_OK;
    }
    r->handed = upto > r->handed ? upto : r->handed;
    atomic_store(&r->published, r->handed);
    return write_here(r, err, errlen);
}

int ikv_recorder_finish(ikv_recorder *r, char *err, size_t errlen)
{
    take_back(r);
    if (write_failure(r, err, errlen) != IKV_OK || write_here(r, err, errlen) != IKV_OK)
        return IKV_EINVAL;
    if (atomic_load(&r->written) != r->handed) {
        snprintf(err, errlen, "recorder: %d positions handed, %d written", r->handed, atomic_load(&r->written));
        return IKV_ESTATE;
    }
    return IKV_OK;
}

int ikv_recorder_positions(const ikv_recorder *r)
{
    return atomic_load(&((ikv_recorder *)r)->written);
}

const double *ikv_recorder_received(const ikv_recorder *r)
{
    return r->received;
}

const float *ikv_recorder_entropy(const ikv_recorder *r)
{
    return r->entropy_log;
}
