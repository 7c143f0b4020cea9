#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>

#include "runner.h"
#include "tok_fixture.h"

const char *tokfx_model_path(const char *name)
{
    static char path[4096];
    const char *dir = ikv_test_models_dir();
    if (!dir)
        return NULL;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, R_OK) == 0 ? path : NULL;
}

static unsigned char *slurp(const char *path, size_t *size)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    unsigned char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            unsigned char *b = realloc(buf, cap);
            if (!b) {
                free(buf);
                fclose(fp);
                return NULL;
            }
            buf = b;
        }
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0)
            break;
    }
    fclose(fp);
    *size = n;
    return buf;
}

static uint64_t rd_le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static float rd_f32(const unsigned char *p)
{
    uint32_t u = (uint32_t)rd_le(p, 4);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static int vocab_alloc(tokfx_vocab *v, int n, int with_types)
{
    memset(v, 0, sizeof *v);
    v->n = n;
    v->pieces = calloc((size_t)n, sizeof *v->pieces);
    v->lens = calloc((size_t)n, sizeof *v->lens);
    v->scores = calloc((size_t)n, sizeof *v->scores);
    v->types = with_types ? calloc((size_t)n, sizeof *v->types) : NULL;
    v->bos = v->eos = -1;
    return v->pieces && v->lens && v->scores && (!with_types || v->types) ? 0 : -1;
}

void tokfx_vocab_free(tokfx_vocab *v)
{
    if (v->pieces)
        for (int i = 0; i < v->n; i++)
            free(v->pieces[i]);
    free(v->pieces);
    free(v->lens);
    free(v->scores);
    free(v->types);
    free(v->sorted);
    memset(v, 0, sizeof *v);
}

static int set_piece(tokfx_vocab *v, int i, const unsigned char *p, size_t len)
{
    v->pieces[i] = malloc(len + 1);
    if (!v->pieces[i])
        return -1;
    memcpy(v->pieces[i], p, len);
    v->pieces[i][len] = '\0';
    v->lens[i] = (uint32_t)len;
    return 0;
}

int tokfx_read_llama2c(const char *path, int n_vocab, tokfx_vocab *v)
{
    size_t size;
    unsigned char *d = slurp(path, &size);
    if (!d || vocab_alloc(v, n_vocab, 0) < 0) {
        free(d);
        return -1;
    }
    size_t pos = 4;
    for (int i = 0; i < n_vocab; i++) {
        if (pos + 8 > size)
            goto bad;
        v->scores[i] = rd_f32(d + pos);
        size_t len = (size_t)rd_le(d + pos + 4, 4);
        pos += 8;
        if (len > size - pos || set_piece(v, i, d + pos, len) < 0)
            goto bad;
        pos += len;
    }
    v->bos = 1;
    v->eos = 2;
    free(d);
    return 0;
bad:
    free(d);
    tokfx_vocab_free(v);
    return -1;
}

/* ---- minimal GGUF metadata walk ---------------------------------------- */

typedef struct gg {
    const unsigned char *d;
    size_t size, pos;
    int bad;
} gg;

static uint64_t gg_u(gg *g, int bytes)
{
    if (g->bad || g->size - g->pos < (size_t)bytes) {
        g->bad = 1;
        return 0;
    }
    uint64_t v = rd_le(g->d + g->pos, bytes);
    g->pos += (size_t)bytes;
    return v;
}

static const unsigned char *gg_str(gg *g, size_t *len)
{
    uint64_t n = gg_u(g, 8);
    if (g->bad || n > g->size - g->pos) {
        g->bad = 1;
        return NULL;
    }
    const unsigned char *p = g->d + g->pos;
    g->pos += (size_t)n;
    *len = (size_t)n;
    return p;
}

static int gg_scalar_size(uint32_t type)
{
    static const int sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return type < 13 ? sizes[type] : -1;
}

static void gg_skip(gg *g, uint32_t type, int depth)
{
    if (type == 8) {
        size_t len;
        gg_str(g, &len);
    } else if (type == 9) {
        uint32_t at = (uint32_t)gg_u(g, 4);
        uint64_t n = gg_u(g, 8);
        if (depth > 2 || n > g->size) {
            g->bad = 1;
            return;
        }
        for (uint64_t i = 0; i < n && !g->bad; i++)
            gg_skip(g, at, depth + 1);
    } else {
        int s = gg_scalar_size(type);
        if (s <= 0)
            g->bad = 1;
        else
            gg_u(g, s);
    }
}

static int key_is(const unsigned char *k, size_t len, const char *want)
{
    return len == strlen(want) && memcmp(k, want, len) == 0;
}

int tokfx_read_gguf_vocab(const char *path, tokfx_vocab *v)
{
    size_t size;
    unsigned char *d = slurp(path, &size);
    if (!d)
        return -1;
    memset(v, 0, sizeof *v);
    v->bos = v->eos = -1;
    gg g = {d, size, 0, 0};
    if (size < 24 || memcmp(d, "GGUF", 4) != 0)
        goto bad;
    g.pos = 4;
    uint32_t version = (uint32_t)gg_u(&g, 4);
    if (version < 2)
        goto bad;
    gg_u(&g, 8); /* tensor count */
    uint64_t nkv = gg_u(&g, 8);
    int n = -1;
    for (uint64_t k = 0; k < nkv && !g.bad; k++) {
        size_t klen;
        const unsigned char *key = gg_str(&g, &klen);
        uint32_t type = (uint32_t)gg_u(&g, 4);
        if (g.bad)
            break;
        int is_tokens = key_is(key, klen, "tokenizer.ggml.tokens");
        int is_scores = key_is(key, klen, "tokenizer.ggml.scores");
        int is_types = key_is(key, klen, "tokenizer.ggml.token_type");
        if ((is_tokens || is_scores || is_types) && type == 9) {
            uint32_t at = (uint32_t)gg_u(&g, 4);
            uint64_t cnt = gg_u(&g, 8);
            if (g.bad || cnt == 0 || cnt > (1u << 24))
                goto bad;
            if (n < 0) {
                n = (int)cnt;
                if (vocab_alloc(v, n, 1) < 0)
                    goto bad;
                v->bos = v->eos = -1;
            } else if ((int)cnt != n) {
                goto bad;
            }
            for (int i = 0; i < n && !g.bad; i++) {
                if (is_tokens && at == 8) {
                    size_t len;
                    const unsigned char *p = gg_str(&g, &len);
                    if (p && set_piece(v, i, p, len) < 0)
                        goto bad;
                } else if (is_scores && at == 6) {
                    v->scores[i] = rd_f32(d + g.pos);
                    gg_u(&g, 4);
                } else if (is_types && at == 5) {
                    v->types[i] = (int32_t)(uint32_t)gg_u(&g, 4);
                } else {
                    goto bad;
                }
            }
        } else if (key_is(key, klen, "tokenizer.ggml.bos_token_id") && type == 4) {
            v->bos = (int)gg_u(&g, 4);
        } else if (key_is(key, klen, "tokenizer.ggml.eos_token_id") && type == 4) {
            v->eos = (int)gg_u(&g, 4);
        } else {
            gg_skip(&g, type, 0);
        }
    }
    if (g.bad || n <= 0 || !v->pieces[0])
        goto bad;
    free(d);
    return 0;
bad:
    free(d);
    tokfx_vocab_free(v);
    return -1;
}

ikv_tokenizer_spec tokfx_spec(const tokfx_vocab *v, ikv_tokenizer_kind kind)
{
    ikv_tokenizer_spec s;
    memset(&s, 0, sizeof s);
    s.kind = kind;
    s.n_vocab = v->n;
    s.pieces = (const char *const *)v->pieces;
    s.piece_lens = v->lens;
    s.scores = v->scores;
    s.token_types = v->types;
    s.bos_id = v->bos;
    s.eos_id = v->eos;
    s.add_bos = 1;
    s.pre = IKV_PRE_DEFAULT;
    return s;
}

/* ---- run.c encode(), restated -------------------------------------------- */

static const tokfx_vocab *sort_vocab;

static int cmp_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t m = alen < blen ? alen : blen;
    int c = memcmp(a, b, m);
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static int cmp_ids(const void *pa, const void *pb)
{
    int a = *(const int *)pa, b = *(const int *)pb;
    int c = cmp_bytes(sort_vocab->pieces[a], sort_vocab->lens[a], sort_vocab->pieces[b],
                      sort_vocab->lens[b]);
    return c ? c : (a > b) - (a < b);
}

static int ref_lookup(const tokfx_vocab *v, const char *s, size_t len)
{
    int lo = 0, hi = v->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int id = v->sorted[mid];
        int c = cmp_bytes(v->pieces[id], v->lens[id], s, len);
        if (c == 0) {
            /* the lowest id among equal pieces, as the tokenizer keeps */
            while (mid > 0 && cmp_bytes(v->pieces[v->sorted[mid - 1]],
                                        v->lens[v->sorted[mid - 1]], s, len) == 0)
                mid--;
            return v->sorted[mid];
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

int tokfx_spm_reference(const tokfx_vocab *v, const char *text, size_t len, int bos,
                        int32_t *out, int max)
{
    if (!v->sorted) {
        tokfx_vocab *w = (tokfx_vocab *)v;
        w->sorted = malloc((size_t)v->n * sizeof *w->sorted);
        for (int i = 0; i < v->n; i++)
            w->sorted[i] = i;
        sort_vocab = v;
        qsort(w->sorted, (size_t)v->n, sizeof *w->sorted, cmp_ids);
    }
    int32_t *tok = malloc((len + 2) * sizeof *tok);
    char *buf = malloc(2 * 65536 + 8);
    int n = 0;
    if (bos)
        tok[n++] = 1;
    if (len > 0)
        tok[n++] = ref_lookup(v, " ", 1);
    size_t blen = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if ((c & 0xc0) != 0x80)
            blen = 0;
        buf[blen++] = (char)c;
        if (i + 1 < len && ((unsigned char)text[i + 1] & 0xc0) == 0x80 && blen < 4)
            continue;
        int id = ref_lookup(v, buf, blen);
        if (id != -1) {
            tok[n++] = id;
        } else {
            for (size_t k = 0; k < blen; k++)
                tok[n++] = (unsigned char)buf[k] + 3;
        }
        blen = 0;
    }
    for (;;) {
        float best = -1e10f;
        int best_id = -1, best_idx = -1;
        /* run.c scans from the BOS on, as here */
        for (int i = 0; i + 1 < n; i++) {
            size_t a = v->lens[tok[i]], b = v->lens[tok[i + 1]];
            memcpy(buf, v->pieces[tok[i]], a);
            memcpy(buf + a, v->pieces[tok[i + 1]], b);
            int id = ref_lookup(v, buf, a + b);
            if (id != -1 && v->scores[id] > best) {
                best = v->scores[id];
                best_id = id;
                best_idx = i;
            }
        }
        if (best_idx == -1)
            break;
        tok[best_idx] = best_id;
        memmove(tok + best_idx + 1, tok + best_idx + 2,
                (size_t)(n - best_idx - 2) * sizeof *tok);
        n--;
    }
    int m = n < max ? n : max;
    memcpy(out, tok, (size_t)m * sizeof *out);
    free(tok);
    free(buf);
    return m;
}

long tokfx_decode_all(const ikv_tokenizer *t, const int32_t *ids, int n, char *buf,
                      size_t cap)
{
    size_t pos = 0;
    for (int i = 0; i < n; i++) {
        int r = ikv_tokenizer_decode(t, i ? ids[i - 1] : -1, ids[i], buf + pos, cap - pos);
        if (r < 0)
            return -1;
        pos += (size_t)r;
    }
    return (long)pos;
}

static char temp_dir[256];

/* Removes the temporary directory and everything written into it. */
static void remove_temp_dir(void)
{
    DIR *d = opendir(temp_dir);
    if (d) {
        struct dirent *e;
        char path[512];
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            snprintf(path, sizeof path, "%s/%s", temp_dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(temp_dir);
}

const char *tokfx_write_temp(const char *name, const void *data, size_t len)
{
    static char path[512];
    char *dir = temp_dir;
    if (!dir[0]) {
        snprintf(dir, sizeof temp_dir, "%s/ikv-toktest.XXXXXX",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(dir)) {
            dir[0] = '\0';
            return NULL;
        }
        atexit(remove_temp_dir);
    }
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return NULL;
    int ok = fwrite(data, 1, len, fp) == len;
    ok &= fclose(fp) == 0;
    return ok ? path : NULL;
}

uint32_t tokfx_rand(uint64_t *state)
{
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*state >> 33);
}
