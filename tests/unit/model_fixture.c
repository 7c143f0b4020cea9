#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model_fixture.h"

ref_options ref_default_options(void)
{
    ref_options o;
    memset(&o, 0, sizeof o);
    o.arch = "llama";
    o.type = GW_F32;
    o.dim = 64;
    o.hidden_dim = 96;
    o.n_layers = 2;
    o.n_heads = 4;
    o.n_kv_heads = 2;
    o.vocab_size = 80;
    o.context = 128;
    o.rope_theta = 10000.0f;
    o.factor = 8.0f;
    o.low_freq_factor = 1.0f;
    o.high_freq_factor = 4.0f;
    o.original_context = 32;
    o.version = 3;
    o.seed = 1;
    return o;
}

void ref_temp_path(char *buf, size_t len, const char *tag)
{
    static int counter;
    const char *dir = getenv("TMPDIR");
    snprintf(buf, len, "%s/ikv-test-%ld-%d-%s", dir && *dir ? dir : "/tmp", (long)getpid(), counter++, tag);
}

/* ---- random weights ---- */

static double next_unit(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1p-53;
}

static float *random_floats(uint64_t *rng, size_t n, double scale, double offset)
{
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(offset + scale * (2.0 * next_unit(rng) - 1.0));
    return v;
}

static float *copy_floats(const float *v, size_t n)
{
    float *c = malloc(n * sizeof *c);
    memcpy(c, v, n * sizeof *c);
    return c;
}

/* Writes a tensor; stored/original ref arrays receive the two views. */
static void add(gguf_writer *w, const char *name, uint32_t type, int rows, int cols, float *values,
                float **stored, float **original)
{
    uint64_t ne[2] = {(uint64_t)cols, (uint64_t)rows};
    size_t n = (size_t)rows * cols;
    float *dec = malloc(n * sizeof *dec);
    gw_tensor(w, name, type, rows > 1 ? 2 : 1, ne, values, dec);
    if (stored)
        *stored = dec;
    else
        free(dec);
    if (original)
        *original = copy_floats(values, n);
    free(values);
}

static void set_shape(ref_model *m, const ref_options *o)
{
    memset(m, 0, sizeof *m);
    m->o = *o;
    m->D = o->dim;
    m->F = o->hidden_dim;
    m->L = o->n_layers;
    m->H = o->n_heads;
    m->G = o->n_kv_heads;
    m->d = o->dim / o->n_heads;
    m->V = o->vocab_size;
    m->rope_dim = o->rope_dim ? o->rope_dim : m->d;
    m->neox = strcmp(o->arch, "qwen2") == 0;
    m->eps = 1e-5f;
    m->layers = calloc((size_t)m->L, sizeof *m->layers);
}

/* RoPE frequencies, from the formulas (not from the engine's code). */
static void set_freqs(ref_model *m)
{
    const ref_options *o = &m->o;
    int half = m->rope_dim / 2;
    m->inv_freq = malloc((size_t)half * sizeof *m->inv_freq);
    for (int i = 0; i < half; i++) {
        double f = 1.0 / pow(o->rope_theta, (2.0 * i) / m->rope_dim);
        if (o->scaling == REF_SCALING_LINEAR) {
            f /= o->factor;
        } else if (o->scaling == REF_SCALING_LLAMA3) {
            double wavelen = 2.0 * M_PI / f;
            double lo_wl = o->original_context / o->low_freq_factor;
            double hi_wl = o->original_context / o->high_freq_factor;
            if (wavelen < hi_wl) {
                /* high frequency: kept */
            } else if (wavelen > lo_wl) {
                f /= o->factor;
            } else {
                double smooth = (o->original_context / wavelen - o->low_freq_factor) /
                                (o->high_freq_factor - o->low_freq_factor);
                f = (1.0 - smooth) * f / o->factor + smooth * f;
            }
        } else if (o->scaling == REF_SCALING_FREQS) {
            f /= m->rope_factors[i];
        }
        m->inv_freq[i] = f;
    }
}

static void write_tokenizer(gguf_writer *w, int V)
{
    char **pieces = calloc((size_t)V, sizeof *pieces);
    float *scores = calloc((size_t)V, sizeof *scores);
    int32_t *types = calloc((size_t)V, sizeof *types);
    pieces[0] = strdup("<unk>");
    types[0] = 2;
    pieces[1] = strdup("<s>");
    types[1] = 3;
    pieces[2] = strdup("</s>");
    types[2] = 3;
    for (int b = 0; b < 256 && 3 + b < V; b++) {
        char buf[8];
        snprintf(buf, sizeof buf, "<0x%02X>", b);
        pieces[3 + b] = strdup(buf);
        types[3 + b] = 6;
    }
    /* then "\xe2\x96\x81" (the SentencePiece space), letters, and
     * space-prefixed letters, scored so that longer pieces merge first */
    int i = 259;
    if (i < V) {
        pieces[i] = strdup("\xe2\x96\x81");
        scores[i] = -1.0f;
        types[i++] = 1;
    }
    for (char c = 'a'; c <= 'z' && i < V; c++, i++) {
        char buf[2] = {c, 0};
        pieces[i] = strdup(buf);
        scores[i] = -2.0f;
        types[i] = 1;
    }
    for (char c = 'a'; c <= 'z' && i < V; c++, i++) {
        char buf[5] = {'\xe2', '\x96', '\x81', c, 0};
        pieces[i] = strdup(buf);
        scores[i] = -0.5f;
        types[i] = 1;
    }
    for (; i < V; i++) {
        char buf[16];
        snprintf(buf, sizeof buf, "zz%d", i);
        pieces[i] = strdup(buf);
        scores[i] = -10.0f;
        types[i] = 1;
    }
    gw_kv_str(w, "tokenizer.ggml.model", "llama");
    gw_kv_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)pieces, V);
    gw_kv_arr_f32(w, "tokenizer.ggml.scores", scores, V);
    gw_kv_arr_i32(w, "tokenizer.ggml.token_type", types, V);
    gw_kv_u32(w, "tokenizer.ggml.bos_token_id", 1);
    gw_kv_u32(w, "tokenizer.ggml.eos_token_id", 2);
    gw_kv_bool(w, "tokenizer.ggml.add_bos_token", 1);
    for (int k = 0; k < V; k++)
        free(pieces[k]);
    free(pieces);
    free(scores);
    free(types);
}

static gguf_writer *build(const ref_options *o, ref_model *st, ref_model *orig)
{
    ref_model scratch_s, scratch_o;
    ref_model *S = st ? st : &scratch_s, *O = orig ? orig : &scratch_o;
    set_shape(S, o);
    set_shape(O, o);
    S->q8_activations = o->type == GW_Q8_0;
    const int D = S->D, F = S->F, H = S->H, G = S->G, d = S->d, V = S->V;
    uint64_t rng = o->seed * 0x9e3779b97f4a7c15ull + 12345;
    gguf_writer *w = gw_new(o->version);
    if (o->alignment)
        gw_set_alignment(w, o->alignment);

    char key[128];
    gw_kv_str(w, "general.architecture", o->arch);
    gw_kv_str(w, "general.name", "fixture");
#define AKEY(s) (snprintf(key, sizeof key, "%s.%s", o->arch, s), key)
    gw_kv_u32(w, AKEY("context_length"), (uint32_t)o->context);
    gw_kv_u32(w, AKEY("embedding_length"), (uint32_t)D);
    gw_kv_u32(w, AKEY("feed_forward_length"), (uint32_t)F);
    gw_kv_u32(w, AKEY("block_count"), (uint32_t)o->n_layers);
    gw_kv_u32(w, AKEY("attention.head_count"), (uint32_t)H);
    gw_kv_u32(w, AKEY("attention.head_count_kv"), (uint32_t)G);
    gw_kv_f32(w, AKEY("rope.freq_base"), o->rope_theta);
    gw_kv_f32(w, AKEY("attention.layer_norm_rms_epsilon"), 1e-5f);
    if (o->rope_dim)
        gw_kv_u32(w, AKEY("rope.dimension_count"), (uint32_t)o->rope_dim);
    if (o->scaling == REF_SCALING_LINEAR) {
        gw_kv_str(w, AKEY("rope.scaling.type"), "linear");
        gw_kv_f32(w, AKEY("rope.scaling.factor"), o->factor);
    } else if (o->scaling == REF_SCALING_LLAMA3) {
        gw_kv_str(w, AKEY("rope.scaling.type"), "llama3");
        gw_kv_f32(w, AKEY("rope.scaling.factor"), o->factor);
        gw_kv_f32(w, AKEY("rope.scaling.low_freq_factor"), o->low_freq_factor);
        gw_kv_f32(w, AKEY("rope.scaling.high_freq_factor"), o->high_freq_factor);
        gw_kv_u32(w, AKEY("rope.scaling.original_context_length"), (uint32_t)o->original_context);
    }
#undef AKEY
    if (o->tokenizer)
        write_tokenizer(w, V);

    /* embeddings at the scale of the synthetic models: logits ~ N(0, 1) */
    double s_d = sqrt(3.0 / D), s_hd = sqrt(3.0 / (H * d)), s_f = sqrt(3.0 / F);
    add(w, "token_embd.weight", o->type, V, D, random_floats(&rng, (size_t)V * D, s_d, 0), &S->embd, &O->embd);
    add(w, "output_norm.weight", GW_F32, 1, D, random_floats(&rng, D, 0.2, 1.0), &S->final_norm, &O->final_norm);
    if (o->tied) {
        S->out = S->embd;
        O->out = O->embd;
    } else {
        add(w, "output.weight", o->type, V, D, random_floats(&rng, (size_t)V * D, s_d, 0), &S->out, &O->out);
    }
    if (o->scaling == REF_SCALING_FREQS) {
        int half = S->rope_dim / 2;
        float *f = malloc((size_t)half * sizeof *f);
        for (int i = 0; i < half; i++)
            f[i] = i < half / 3 ? 1.0f : i < 2 * half / 3 ? 2.5f : 8.0f;
        add(w, "rope_freqs.weight", GW_F32, 1, half, f, &S->rope_factors, &O->rope_factors);
    }
    for (int l = 0; l < o->n_layers; l++) {
        ref_layer *ls = &S->layers[l], *lo = &O->layers[l];
        char name[64];
#define TN(s) (snprintf(name, sizeof name, "blk.%d.%s", l, s), name)
        add(w, TN("attn_norm.weight"), GW_F32, 1, D, random_floats(&rng, D, 0.2, 1.0), &ls->attn_norm, &lo->attn_norm);
        add(w, TN("attn_q.weight"), o->type, H * d, D, random_floats(&rng, (size_t)H * d * D, s_d, 0), &ls->wq, &lo->wq);
        add(w, TN("attn_k.weight"), o->type, G * d, D, random_floats(&rng, (size_t)G * d * D, s_d, 0), &ls->wk, &lo->wk);
        add(w, TN("attn_v.weight"), o->type, G * d, D, random_floats(&rng, (size_t)G * d * D, s_d, 0), &ls->wv, &lo->wv);
        if (o->bias) {
            add(w, TN("attn_q.bias"), GW_F32, 1, H * d, random_floats(&rng, (size_t)H * d, 0.3, 0), &ls->bq, &lo->bq);
            add(w, TN("attn_k.bias"), GW_F32, 1, G * d, random_floats(&rng, (size_t)G * d, 0.3, 0), &ls->bk, &lo->bk);
            add(w, TN("attn_v.bias"), GW_F32, 1, G * d, random_floats(&rng, (size_t)G * d, 0.3, 0), &ls->bv, &lo->bv);
        }
        add(w, TN("attn_output.weight"), o->type, D, H * d, random_floats(&rng, (size_t)D * H * d, s_hd, 0), &ls->wo, &lo->wo);
        add(w, TN("ffn_norm.weight"), GW_F32, 1, D, random_floats(&rng, D, 0.2, 1.0), &ls->ffn_norm, &lo->ffn_norm);
        add(w, TN("ffn_gate.weight"), o->type, F, D, random_floats(&rng, (size_t)F * D, s_d, 0), &ls->gate, &lo->gate);
        add(w, TN("ffn_up.weight"), o->type, F, D, random_floats(&rng, (size_t)F * D, s_d, 0), &ls->up, &lo->up);
        add(w, TN("ffn_down.weight"), o->type, D, F, random_floats(&rng, (size_t)D * F, s_f, 0), &ls->down, &lo->down);
#undef TN
    }
    set_freqs(S);
    set_freqs(O);
    if (!st)
        ref_free(&scratch_s);
    if (!orig)
        ref_free(&scratch_o);
    return w;
}

gguf_writer *ref_writer(const ref_options *o, ref_model *stored)
{
    return build(o, stored, NULL);
}

int ref_build(const ref_options *o, const char *path, ref_model *stored, ref_model *original)
{
    gguf_writer *w = build(o, stored, original);
    int rc = gw_write(w, path);
    gw_free(w);
    return rc;
}

void ref_free(ref_model *m)
{
    if (!m->layers)
        return;
    for (int l = 0; l < m->L; l++) {
        ref_layer *ly = &m->layers[l];
        float *all[] = {ly->attn_norm, ly->ffn_norm, ly->wq, ly->wk, ly->wv, ly->wo,
                        ly->gate, ly->up, ly->down, ly->bq, ly->bk, ly->bv};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            free(all[i]);
    }
    if (m->out != m->embd)
        free(m->out);
    free(m->embd);
    free(m->final_norm);
    free(m->rope_factors);
    free(m->layers);
    free(m->inv_freq);
    memset(m, 0, sizeof *m);
}

/* ---- reference forward pass ---- */

static void matvec(const float *W, const double *x, int rows, int cols, const float *bias, double *y);

void ref_state_init(ref_state *st, const ref_model *m, int cap)
{
    memset(st, 0, sizeof *st);
    st->m = m;
    st->cap = cap;
    size_t caches = (size_t)m->L * m->G;
    st->K = calloc(caches * cap * m->d, sizeof *st->K);
    st->V = calloc(caches * cap * m->d, sizeof *st->V);
    st->pos = calloc((size_t)cap, sizeof *st->pos);
    st->visible = calloc(caches * cap, 1);
}

void ref_state_free(ref_state *st)
{
    free(st->K);
    free(st->V);
    free(st->pos);
    free(st->visible);
    memset(st, 0, sizeof *st);
}

/* The engine's Q8_0 activations, restated from its definition
 * (src/model/kernels_q8.h), in the same float operations: per 32 columns
 * d = max|x| / 127 and x~ = d * (x * (127 / max|x|) rounded to nearest,
 * ties to even). */
static void q8_activations(const double *x, int cols, double *out)
{
    for (int b = 0; b < cols / 32; b++) {
        float amax = 0.0f;
        for (int i = 32 * b; i < 32 * b + 32; i++)
            amax = fmaxf(amax, fabsf((float)x[i]));
        for (int i = 32 * b; i < 32 * b + 32; i++)
            out[i] = amax < 0x1p-100f ? 0.0 : (double)(amax / 127.0f) * nearbyintf((float)x[i] * (127.0f / amax));
    }
}

static void matvec_q(const ref_model *m, const float *W, const double *x, int rows, int cols, const float *bias,
                     double *y)
{
    double *xq = NULL;
    if (m->q8_activations) {
        xq = malloc((size_t)cols * sizeof *xq);
        q8_activations(x, cols, xq);
        x = xq;
    }
    matvec(W, x, rows, cols, bias, y);
    free(xq);
}

static void matvec(const float *W, const double *x, int rows, int cols, const float *bias, double *y)
{
    for (int r = 0; r < rows; r++) {
        double s = bias ? bias[r] : 0.0;
        for (int c = 0; c < cols; c++)
            s += (double)W[(size_t)r * cols + c] * x[c];
        y[r] = s;
    }
}

static void rmsnorm(const double *x, const float *w, int n, double eps, double *out)
{
    double ss = 0.0;
    for (int i = 0; i < n; i++)
        ss += x[i] * x[i];
    double scale = 1.0 / sqrt(ss / n + eps);
    for (int i = 0; i < n; i++)
        out[i] = x[i] * scale * w[i];
}

static void rope(const ref_model *m, double *v, int pos)
{
    int half = m->rope_dim / 2;
    for (int i = 0; i < half; i++) {
        double a = pos * m->inv_freq[i];
        int i0 = m->neox ? i : 2 * i, i1 = m->neox ? i + half : 2 * i + 1;
        double x0 = v[i0], x1 = v[i1];
        v[i0] = x0 * cos(a) - x1 * sin(a);
        v[i1] = x0 * sin(a) + x1 * cos(a);
    }
}

void ref_step(ref_state *st, int token, int pos, double *logits)
{
    const ref_model *m = st->m;
    const int D = m->D, F = m->F, H = m->H, G = m->G, d = m->d;
    const int slot = st->n++;
    st->pos[slot] = pos;
    double *x = calloc((size_t)D, sizeof *x), *xn = calloc((size_t)D, sizeof *xn);
    double *q = calloc((size_t)H * d, sizeof *q), *k = calloc((size_t)G * d, sizeof *k);
    double *v = calloc((size_t)G * d, sizeof *v), *att = calloc((size_t)H * d, sizeof *att);
    double *h1 = calloc((size_t)F, sizeof *h1), *h3 = calloc((size_t)F, sizeof *h3);
    double *tmp = calloc((size_t)(D > F ? D : F), sizeof *tmp);
    double *p = calloc((size_t)st->cap, sizeof *p);
    for (int i = 0; i < D; i++)
        x[i] = m->embd[(size_t)token * D + i];
    for (int l = 0; l < m->L; l++) {
        const ref_layer *ly = &m->layers[l];
        rmsnorm(x, ly->attn_norm, D, m->eps, xn);
        matvec_q(m, ly->wq, xn, H * d, D, ly->bq, q);
        matvec_q(m, ly->wk, xn, G * d, D, ly->bk, k);
        matvec_q(m, ly->wv, xn, G * d, D, ly->bv, v);
        for (int h = 0; h < H; h++)
            rope(m, q + (size_t)h * d, pos);
        for (int g = 0; g < G; g++) {
            rope(m, k + (size_t)g * d, pos);
            size_t base = (((size_t)l * G + g) * st->cap + slot) * d;
            memcpy(st->K + base, k + (size_t)g * d, (size_t)d * sizeof *k);
            memcpy(st->V + base, v + (size_t)g * d, (size_t)d * sizeof *v);
            st->visible[((size_t)l * G + g) * st->cap + slot] = 1;
        }
        for (int h = 0; h < H; h++) {
            int g = h / (H / G);
            const double *Kc = st->K + ((size_t)l * G + g) * st->cap * d;
            const double *Vc = st->V + ((size_t)l * G + g) * st->cap * d;
            const unsigned char *vis = st->visible + ((size_t)l * G + g) * st->cap;
            double max = -INFINITY, sum = 0.0;
            for (int s = 0; s < st->n; s++) {
                if (!vis[s])
                    continue;
                double dot = 0.0;
                for (int i = 0; i < d; i++)
                    dot += q[(size_t)h * d + i] * Kc[(size_t)s * d + i];
                p[s] = dot / sqrt((double)d);
                max = p[s] > max ? p[s] : max;
            }
            for (int s = 0; s < st->n; s++)
                if (vis[s])
                    sum += (p[s] = exp(p[s] - max));
            for (int i = 0; i < d; i++) {
                double o = 0.0;
                for (int s = 0; s < st->n; s++)
                    if (vis[s])
                        o += p[s] / sum * Vc[(size_t)s * d + i];
                att[(size_t)h * d + i] = o;
            }
        }
        matvec_q(m, ly->wo, att, D, H * d, NULL, tmp);
        for (int i = 0; i < D; i++)
            x[i] += tmp[i];
        rmsnorm(x, ly->ffn_norm, D, m->eps, xn);
        matvec_q(m, ly->gate, xn, F, D, NULL, h1);
        matvec_q(m, ly->up, xn, F, D, NULL, h3);
        for (int i = 0; i < F; i++)
            h1[i] = h1[i] / (1.0 + exp(-h1[i])) * h3[i];
        matvec_q(m, ly->down, h1, D, F, NULL, tmp);
        for (int i = 0; i < D; i++)
            x[i] += tmp[i];
    }
    rmsnorm(x, m->final_norm, D, m->eps, xn);
    matvec_q(m, m->out, xn, m->V, D, NULL, logits);
    free(x);
    free(xn);
    free(q);
    free(k);
    free(v);
    free(att);
    free(h1);
    free(h3);
    free(tmp);
    free(p);
}

double ref_max_diff(const float *a, const double *b, int n, double *max_ref)
{
    double diff = 0.0, mr = 0.0;
    for (int i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        diff = e > diff || isnan(e) ? e : diff;
        mr = fabs(b[i]) > mr ? fabs(b[i]) : mr;
    }
    if (max_ref)
        *max_ref = mr;
    return diff;
}
