/*
 * The forward pass of a Llama-family transformer over a batch of tokens:
 * RMSNorm, q/k/v projections (+ biases), RoPE, causal GQA attention over
 * the cache slots, output projection, SwiGLU feed-forward, classifier.
 * A batch of one is decode (matrix-vector products), a longer one is
 * prefill (matrix-matrix products); attention runs in parallel over
 * (position, head) pairs.
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "model/kernels_isa.h"
#include "model/session_internal.h"

/* Attention work (query-key pairs x head size) below which one thread
 * does it all (a parallel region costs more than it saves there). */
#define ATTENTION_PARALLEL_MIN (1 << 21)

static float *cache_at(const ikv_session *s, float *cache, int l, int g)
{
    return cache + ((size_t)l * s->G + g) * (size_t)s->capacity * s->d;
}

/* out = x / rms(x) * w, over rows of D. */
static void rmsnorm_rows(float *out, const float *x, const float *w, int n, int D, float eps)
{
    for (int t = 0; t < n; t++) {
        const float *xr = x + (size_t)t * D;
        float *o = out + (size_t)t * D;
        double ss = 0.0;
        for (int i = 0; i < D; i++)
            ss += (double)xr[i] * xr[i];
        float scale = (float)(1.0 / sqrt(ss / D + eps));
        for (int i = 0; i < D; i++)
            o[i] = xr[i] * scale * w[i];
    }
}

static void add_bias(float *y, const float *bias, int n, int width)
{
    if (!bias)
        return;
    for (int t = 0; t < n; t++)
        for (int i = 0; i < width; i++)
            y[(size_t)t * width + i] += bias[i];
}

/* cos/sin of every rotation angle of every position in the batch. */
static void rope_tables(ikv_session *s, const int32_t *positions, int n)
{
    const ikv_model *m = s->m;
    int half = m->info.rope_dim / 2;
    for (int t = 0; t < n; t++) {
        for (int i = 0; i < half; i++) {
            double angle = (double)positions[t] * m->inv_freq[i];
            s->rope_cos[(size_t)t * half + i] = (float)cos(angle);
            s->rope_sin[(size_t)t * half + i] = (float)sin(angle);
        }
    }
}

/* Rotates the heads of one token. NORM pairs (2i, 2i+1); NEOX pairs
 * (i, i + rope_dim/2). Dimensions past rope_dim are left as they are. */
static void rope_apply(const ikv_session *s, float *vec, int n_heads, int t)
{
    const ikv_model_details *info = &s->m->info;
    int half = info->rope_dim / 2;
    const float *c = s->rope_cos + (size_t)t * half, *sn = s->rope_sin + (size_t)t * half;
    for (int h = 0; h < n_heads; h++) {
        float *v = vec + (size_t)h * s->d;
        for (int i = 0; i < half; i++) {
            int a = info->rope_mode == IKV_ROPE_NEOX ? i : 2 * i;
            int b = info->rope_mode == IKV_ROPE_NEOX ? i + half : 2 * i + 1;
            float v0 = v[a], v1 = v[b];
            v[a] = v0 * c[i] - v1 * sn[i];
            v[b] = v0 * sn[i] + v1 * c[i];
        }
    }
}

static void softmax(float *x, int n)
{
    float max = x[0];
    for (int i = 1; i < n; i++)
        max = x[i] > max ? x[i] : max;
    for (int i = 0; i < n; i++)
        x[i] -= max;
    ikv_exp_nonpositive(x, n);
    /* eight partial sums: vectorisable without reassociation */
    float part[8] = {0}, sum = 0.0f;
    int k = 0;
    for (; k + 8 <= n; k += 8)
        for (int j = 0; j < 8; j++)
            part[j] += x[k + j];
    for (; k < n; k++)
        sum += x[k];
    for (int j = 0; j < 8; j++)
        sum += part[j];
    float inv = 1.0f / sum;
    for (int i = 0; i < n; i++)
        x[i] *= inv;
}

/* Attention of one query (batch position t, head h) over the first
 * n_keys slots of its KV head; the probabilities are left in `row`. */
static void attend(const ikv_session *s, int l, int t, int h, int n_keys, float *row)
{
    const int d = s->d, g = h / (s->H / s->G);
    const float scale = 1.0f / sqrtf((float)d);
    const float *q = s->q + (size_t)t * s->qd + (size_t)h * d;
    const float *keys = cache_at(s, s->k_cache, l, g);
    ikv_scaled_scores(q, keys, n_keys, d, scale, row);
    softmax(row, n_keys);
    ikv_weighted_rows(row, cache_at(s, s->v_cache, l, g), n_keys, d,
                      s->att + (size_t)t * s->qd + (size_t)h * d);
}

/* Prefill attention of queries first..first+nq-1 (nq <= QT) of head h
 * (heads of at most TILE_MAX_HEAD), together: scores are kept as
 * [key][query], so that each key's row meets every query in one pass over
 * its d values, and the softmax and the values run across queries the
 * same way. A query at batch position t sees slots 0..len0+t; later keys
 * get probability 0. The same sums as attend(), normalised at the end
 * instead of per probability. */
#define QT IKV_QUERY_TILE
#define TILE_MAX_HEAD IKV_TILE_MAX_HEAD
static void attend_tile(const ikv_session *s, int l, int h, int first, int nq, int len0,
                        float *scratch /* [(nk + 2 d) * QT] */, float *rows /* [nq][H][stride] or NULL */,
                        int stride)
{
    const int d = s->d, g = h / (s->H / s->G);
    const int nk = len0 + first + nq; /* keys the last query sees */
    const float scale = 1.0f / sqrtf((float)d);
    const float *restrict keys = cache_at(s, s->k_cache, l, g);
    const float *restrict values = cache_at(s, s->v_cache, l, g);
    /* three disjoint parts of the scratch (restrict: the loops over the
     * QT queries vectorise without overlap checks) */
    float *restrict qt = scratch;                      /* [d][QT] queries, scaled */
    float *restrict ot = scratch + (size_t)d * QT;     /* [d][QT] weighted values */
    float *restrict pt = scratch + (size_t)2 * d * QT; /* [nk][QT] scores, then weights */
    float mx[QT], sum[QT];
    for (int c = 0; c < d; c++)
        for (int q = 0; q < QT; q++)
            qt[c * QT + q] = q < nq ? s->q[(size_t)(first + q) * s->qd + (size_t)h * d + c] * scale : 0.0f;
    for (int q = 0; q < QT; q++)
        mx[q] = -INFINITY;
    for (int j = 0; j < nk; j++) {
        const float *kj = keys + (size_t)j * d;
        float acc[QT] = {0};
        for (int c = 0; c < d; c++)
            for (int q = 0; q < QT; q++)
                acc[q] += qt[c * QT + q] * kj[c];
        float *row = pt + (size_t)j * QT;
        for (int q = 0; q < QT; q++) {
            row[q] = j <= len0 + first + q ? acc[q] : -INFINITY;
            mx[q] = row[q] > mx[q] ? row[q] : mx[q];
        }
    }
    for (int q = 0; q < QT; q++)
        sum[q] = 0.0f;
    for (int j = 0; j < nk; j++) {
        float *row = pt + (size_t)j * QT;
        for (int q = 0; q < QT; q++)
            row[q] -= mx[q];
    }
    ikv_exp_nonpositive(pt, nk * QT); /* later keys: e^-inf = 0 */
    for (int j = 0; j < nk; j++) {
        const float *row = pt + (size_t)j * QT;
        for (int q = 0; q < QT; q++)
            sum[q] += row[q];
    }
    /* one column of values at a time, its QT sums in a local array (in
     * registers: GCC vectorised the loop into ot only as scalar code);
     * each sum still adds the keys in order, as before */
    for (int c = 0; c < d; c++) {
        float acc[QT] = {0};
        for (int j = 0; j < nk; j++) {
            const float *row = pt + (size_t)j * QT;
            const float vc = values[(size_t)j * d + c];
            for (int q = 0; q < QT; q++)
                acc[q] += row[q] * vc;
        }
        for (int q = 0; q < QT; q++)
            ot[(size_t)c * QT + q] = acc[q];
    }
    for (int q = 0; q < nq; q++) {
        float *out = s->att + (size_t)(first + q) * s->qd + (size_t)h * d;
        for (int c = 0; c < d; c++)
            out[c] = ot[c * QT + q] / sum[q];
    }
    if (rows) { /* the probabilities, for on_attention */
        for (int q = 0; q < nq; q++) {
            float *row = rows + ((size_t)q * s->H + (size_t)h) * (size_t)stride;
            const float inv = 1.0f / sum[q];
            for (int j = 0; j <= len0 + first + q; j++)
                row[j] = pt[(size_t)j * QT + q] * inv;
        }
    }
}

/* Attention of the batch's queries at layer l. The batch's keys and
 * values are already in slots len0..len0+n-1; query t sees slots
 * 0..len0+t. With on_attention the rows are kept for the observer in
 * groups of probs_rows positions, else each thread reuses one row. */
static void attention(ikv_session *s, int l, int n, int len0)
{
    const int H = s->H;
    const int keep_rows = s->has_obs && s->obs.on_attention;
    const int report_qkv = s->has_obs && s->obs.on_qkv;
    const int chunk = keep_rows ? s->probs_rows : n;

    for (int t0 = 0; t0 < n; t0 += chunk) {
        const int tc = n - t0 < chunk ? n - t0 : chunk;
        const int stride = len0 + t0 + tc; /* longest row of the group */
        const int jobs = tc * H;
        if (n > 1 && s->d <= TILE_MAX_HEAD) {
            /* prefill with short heads: tiles of queries (the same whether
             * rows are kept or not, so that an observer changes no result) */
            const int tile_jobs = (tc + QT - 1) / QT * H;
            const size_t tile_floats = ((size_t)s->capacity + 2 * (size_t)s->d) * QT;
            const int parallel = s->n_threads > 1 && (int64_t)jobs * stride * s->d >= ATTENTION_PARALLEL_MIN;
#pragma omp parallel for num_threads(s->n_threads) schedule(dynamic, 1) if (parallel)
            for (int job = 0; job < tile_jobs; job++) {
                const int first = t0 + (job / H) * QT, nq = t0 + tc - first < QT ? t0 + tc - first : QT;
                float *rows = keep_rows ? s->probs + (size_t)(first - t0) * H * stride : NULL;
                attend_tile(s, l, job % H, first, nq, len0, s->tiles + tile_floats * (size_t)ikv_thread_id(), rows,
                            stride);
            }
        } else if (s->n_threads > 1 && (int64_t)jobs * stride * s->d >= ATTENTION_PARALLEL_MIN) {
#pragma omp parallel for num_threads(s->n_threads) schedule(dynamic, 1)
            for (int job = 0; job < jobs; job++) {
                const int t = t0 + job / H, h = job % H;
                float *row = keep_rows ? s->probs + ((size_t)(t - t0) * H + h) * stride
                                       : s->scores + (size_t)ikv_thread_id() * s->capacity;
                attend(s, l, t, h, len0 + t + 1, row);
            }
        } else {
            for (int job = 0; job < jobs; job++) {
                const int t = t0 + job / H, h = job % H;
                float *row = keep_rows ? s->probs + ((size_t)(t - t0) * H + h) * stride : s->scores;
                attend(s, l, t, h, len0 + t + 1, row);
            }
        }
        if (report_qkv || keep_rows) {
            for (int t = t0; t < t0 + tc; t++) {
                if (report_qkv)
                    s->obs.on_qkv(s->obs.user, l, s->pos[t], s->q + (size_t)t * s->qd,
                                  s->k + (size_t)t * s->kvd, s->v + (size_t)t * s->kvd);
                if (keep_rows)
                    s->obs.on_attention(s->obs.user, l, s->pos[t],
                                        s->probs + (size_t)(t - t0) * H * stride, len0 + t + 1, stride);
            }
        }
    }
}

/* x += y over n rows of D. */
static void add_rows(float *x, const float *y, int n, int D)
{
    for (size_t i = 0; i < (size_t)n * D; i++)
        x[i] += y[i];
}

static void layer_forward(ikv_session *s, int l, int n)
{
    const ikv_model *m = s->m;
    const ikv_layer_weights *lw = &m->layers[l];
    const int D = s->D, nt = s->n_threads;
    const float eps = m->info.norm_eps;
    const int report_residual = s->has_obs && s->obs.on_residual;
    /* every KV head of a layer holds the same count (checked by callers) */
    const int len0 = s->len[(size_t)l * s->G];

    if (report_residual)
        memcpy(s->before, s->x, (size_t)n * D * sizeof *s->x);

    /* attention block */
    rmsnorm_rows(s->xb, s->x, lw->attn_norm, n, D, eps);
    /* products of one input together: in decode one parallel region */
    const ikv_matrix *const qkv[3] = {&lw->wq, &lw->wk, &lw->wv};
    float *const qkv_out[3] = {s->q, s->k, s->v};
    ikv_matmul_group(qkv, 3, s->xb, n, qkv_out, nt, &s->ws);
    add_bias(s->q, lw->bq, n, s->qd);
    add_bias(s->k, lw->bk, n, s->kvd);
    add_bias(s->v, lw->bv, n, s->kvd);
    for (int t = 0; t < n; t++) {
        rope_apply(s, s->q + (size_t)t * s->qd, s->H, t);
        rope_apply(s, s->k + (size_t)t * s->kvd, s->G, t);
    }
    for (int g = 0; g < s->G; g++) {
        float *kc = cache_at(s, s->k_cache, l, g), *vc = cache_at(s, s->v_cache, l, g);
        int32_t *pc = s->positions + ((size_t)l * s->G + g) * s->capacity;
        for (int t = 0; t < n; t++) {
            memcpy(kc + (size_t)(len0 + t) * s->d, s->k + (size_t)t * s->kvd + (size_t)g * s->d,
                   (size_t)s->d * sizeof *kc);
            memcpy(vc + (size_t)(len0 + t) * s->d, s->v + (size_t)t * s->kvd + (size_t)g * s->d,
                   (size_t)s->d * sizeof *vc);
            pc[len0 + t] = s->pos[t];
        }
        s->len[(size_t)l * s->G + g] = len0 + n;
    }
    attention(s, l, n, len0);
    ikv_matmul(&lw->wo, s->att, n, s->xb, nt, &s->ws);
    add_rows(s->x, s->xb, n, D);

    /* feed-forward block: down(silu(gate(x)) * up(x)) */
    rmsnorm_rows(s->xb, s->x, lw->ffn_norm, n, D, eps);
    const ikv_matrix *const gate_up[2] = {&lw->w_gate, &lw->w_up};
    float *const gate_up_out[2] = {s->hb, s->hb2};
    ikv_matmul_group(gate_up, 2, s->xb, n, gate_up_out, nt, &s->ws);
    ikv_swiglu(s->hb, s->hb2, (size_t)n * s->F);
    ikv_matmul(&lw->w_down, s->hb, n, s->xb, nt, &s->ws);
    add_rows(s->x, s->xb, n, D);

    if (report_residual)
        for (int t = 0; t < n; t++)
            s->obs.on_residual(s->obs.user, l, s->pos[t], s->before + (size_t)t * D,
                               s->x + (size_t)t * D);
}

/* Logits of the last position, or of every position for on_logits. The
 * last position always goes through the matrix-vector path, so that the
 * session's logits are the same bits whether an observer asks for the
 * others or not (live eviction with `full` must equal no policy). */
static void classifier(ikv_session *s, int n)
{
    const ikv_model *m = s->m;
    const int D = s->D, V = s->V;
    const float eps = m->info.norm_eps;
    if (s->has_obs && s->obs.on_logits && n > 1) {
        rmsnorm_rows(s->xb, s->x, m->final_norm, n - 1, D, eps);
        for (int t0 = 0; t0 < n - 1; t0 += IKV_LOGIT_ROWS) {
            int rows = n - 1 - t0 < IKV_LOGIT_ROWS ? n - 1 - t0 : IKV_LOGIT_ROWS;
            ikv_matmul(&m->output, s->xb + (size_t)t0 * D, rows, s->logit_rows, s->n_threads, &s->ws);
            for (int t = 0; t < rows; t++)
                s->obs.on_logits(s->obs.user, s->pos[t0 + t], s->logit_rows + (size_t)t * V);
        }
    }
    rmsnorm_rows(s->xb, s->x + (size_t)(n - 1) * D, m->final_norm, 1, D, eps);
    ikv_matvec(&m->output, s->xb, s->logits, s->n_threads, &s->ws);
    s->has_logits = 1;
    if (s->has_obs && s->obs.on_logits)
        s->obs.on_logits(s->obs.user, s->pos[n - 1], s->logits);
}

void ikv_forward(ikv_session *s, const int32_t *tokens, const int32_t *positions, int n)
{
    const ikv_model *m = s->m;
    if (s->has_obs && s->obs.on_tokens)
        s->obs.on_tokens(s->obs.user, positions, tokens, n);
    memcpy(s->pos, positions, (size_t)n * sizeof *positions);
    for (int t = 0; t < n; t++)
        ikv_matrix_row(&m->tok_embd, tokens[t], s->x + (size_t)t * s->D);
    rope_tables(s, positions, n);
    for (int l = 0; l < s->L; l++)
        layer_forward(s, l, n);
    classifier(s, n);
    s->n_past = positions[n - 1] + 1;
}
