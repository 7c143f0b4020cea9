/*
 * The tokenizer object: copies the vocabulary out of the spec, classifies
 * tokens, builds the piece -> id table and the decoded text of every token,
 * and dispatches encode/decode to the SPM or GPT-2 implementation.
 */
#include "config.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infokv/core.h"
#include "model/tokenizer_internal.h"
#include "util/text.h"

/* Sanity bounds: real vocabularies have ~10^5 tokens of at most a few
 * hundred bytes. */
#define MAX_VOCAB (1 << 24)
#define MAX_PIECE_LEN 65536u
#define MAX_MERGES (1 << 24)
/* Longest text one encode call accepts (symbol indices stay in int). */
#define MAX_TEXT_LEN ((size_t)1 << 28)

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* ---- piece map ---------------------------------------------------------- */

static uint64_t hash_bytes(uint64_t h, const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ull; /* FNV-1a */
    }
    return h;
}

#define HASH_SEED 0xcbf29ce484222325ull

static uint32_t hash_final(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return (uint32_t)h;
}

int32_t ikv_piece_map_find2(const ikv_piece_map *m, const char *a, size_t alen,
                            const char *b, size_t blen)
{
    if (!m->slots || alen + blen == 0)
        return -1;
    uint32_t i = hash_final(hash_bytes(hash_bytes(HASH_SEED, a, alen), b, blen)) & m->mask;
    for (;; i = (i + 1) & m->mask) {
        int32_t id = m->slots[i];
        if (id < 0)
            return -1;
        const char *p = m->arena + m->off[id];
        size_t plen = m->off[id + 1] - m->off[id];
        if (plen == alen + blen && memcmp(p, a, alen) == 0 &&
            (blen == 0 || memcmp(p + alen, b, blen) == 0))
            return id;
    }
}

static int piece_map_build(ikv_tokenizer *t)
{
    size_t n = 0;
    for (int i = 0; i < t->n_vocab; i++)
        n += (t->cls[i] == IKV_TC_NORMAL || t->cls[i] == IKV_TC_USER);
    uint32_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    ikv_piece_map *m = &t->map;
    m->slots = malloc((size_t)cap * sizeof *m->slots);
    if (!m->slots)
        return IKV_ENOMEM;
    for (uint32_t i = 0; i < cap; i++)
        m->slots[i] = -1;
    m->mask = cap - 1;
    m->arena = t->arena;
    m->off = t->off;
    for (int id = 0; id < t->n_vocab; id++) {
        if (t->cls[id] != IKV_TC_NORMAL && t->cls[id] != IKV_TC_USER)
            continue;
        const char *p = t->arena + t->off[id];
        size_t len = t->off[id + 1] - t->off[id];
        if (len == 0)
            continue;
        /* A piece spelled twice keeps its first (lowest) id. */
        if (ikv_piece_map_find2(m, p, len, NULL, 0) >= 0)
            continue;
        uint32_t i = hash_final(hash_bytes(HASH_SEED, p, len)) & m->mask;
        while (m->slots[i] >= 0)
            i = (i + 1) & m->mask;
        m->slots[i] = id;
    }
    return 0;
}

/* ---- helpers ------------------------------------------------------------ */

int ikv_parse_byte_piece(const char *p, size_t len)
{
    if (len != 6 || p[0] != '<' || p[1] != '0' || p[2] != 'x' || p[5] != '>')
        return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = p[i];
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else
            return -1;
        v = v * 16 + d;
    }
    return v;
}

int ikv_tokvec_push(ikv_tokvec *tv, int32_t id)
{
    if (tv->n == tv->cap) {
        size_t cap = tv->cap ? tv->cap * 2 : 64;
        int32_t *v = realloc(tv->v, cap * sizeof *v);
        if (!v)
            return IKV_ENOMEM;
        tv->v = v;
        tv->cap = cap;
    }
    tv->v[tv->n++] = id;
    return 0;
}

static int classify(const ikv_tokenizer_spec *spec, int id, const char *p, size_t len)
{
    int cls;
    if (spec->token_types) {
        switch (spec->token_types[id]) {
        case 2: cls = IKV_TC_UNKNOWN; break;
        case 3: cls = IKV_TC_CONTROL; break;
        case 4: cls = IKV_TC_USER; break;
        case 5: cls = IKV_TC_UNUSED; break;
        case 6:
            cls = (spec->kind == IKV_TOK_SPM && ikv_parse_byte_piece(p, len) >= 0)
                      ? IKV_TC_BYTE : IKV_TC_NORMAL;
            break;
        default: cls = IKV_TC_NORMAL; break;
        }
    } else if (spec->kind == IKV_TOK_SPM && ikv_parse_byte_piece(p, len) >= 0) {
        cls = IKV_TC_BYTE;
    } else if (len == 5 && memcmp(p, "<unk>", 5) == 0) {
        cls = IKV_TC_UNKNOWN;
    } else {
        cls = IKV_TC_NORMAL;
    }
    /* BOS/EOS are never spelled by text and print as nothing. */
    if (id == spec->bos_id || id == spec->eos_id)
        cls = IKV_TC_CONTROL;
    return cls;
}

/* Drops each U+2581 (e2 96 81) for a space; returns the new length. */
static size_t unescape_spaces(const char *src, size_t len, char *dst)
{
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        if (i + 3 <= len && (unsigned char)src[i] == 0xe2 &&
            (unsigned char)src[i + 1] == 0x96 && (unsigned char)src[i + 2] == 0x81) {
            dst[n++] = ' ';
            i += 3;
        } else {
            dst[n++] = src[i++];
        }
    }
    return n;
}

/* The bytes each token prints as; never longer than the piece itself. */
static int build_decode_table(ikv_tokenizer *t)
{
    t->dec = malloc(t->off[t->n_vocab] + 1);
    t->dec_off = malloc(((size_t)t->n_vocab + 1) * sizeof *t->dec_off);
    if (!t->dec || !t->dec_off)
        return IKV_ENOMEM;
    uint32_t pos = 0;
    t->max_dec_len = 0;
    for (int id = 0; id < t->n_vocab; id++) {
        const char *p = t->arena + t->off[id];
        size_t len = t->off[id + 1] - t->off[id];
        char *d = t->dec + pos;
        size_t n = 0;
        switch (t->cls[id]) {
        case IKV_TC_CONTROL:
        case IKV_TC_UNUSED:
            break;
        case IKV_TC_BYTE:
            d[0] = (char)ikv_parse_byte_piece(p, len);
            n = 1;
            break;
        case IKV_TC_UNKNOWN:
            memcpy(d, p, len);
            n = len;
            break;
        default: /* normal, user-defined */
            if (t->kind == IKV_TOK_GPT2 && t->cls[id] == IKV_TC_NORMAL) {
                n = ikv_gpt2_unmap(p, len, d);
            } else if (t->kind == IKV_TOK_SPM && t->space_escape) {
                n = unescape_spaces(p, len, d);
            } else {
                memcpy(d, p, len);
                n = len;
            }
            break;
        }
        t->dec_off[id] = pos;
        pos += (uint32_t)n;
        if (n > t->max_dec_len)
            t->max_dec_len = (uint32_t)n;
    }
    t->dec_off[t->n_vocab] = pos;
    return 0;
}

static int check_spec(const ikv_tokenizer_spec *spec, char *err, size_t errlen)
{
    if (spec->kind != IKV_TOK_SPM && spec->kind != IKV_TOK_GPT2)
        return fail(err, errlen, IKV_EINVAL, "unknown tokenizer kind %d", (int)spec->kind);
    if (spec->n_vocab <= 0 || spec->n_vocab > MAX_VOCAB)
        return fail(err, errlen, IKV_EINVAL, "vocabulary size %d out of range (1..%d)",
                    spec->n_vocab, MAX_VOCAB);
    if (!spec->pieces || !spec->piece_lens)
        return fail(err, errlen, IKV_EINVAL, "tokenizer spec has no pieces");
    uint64_t total = 0;
    for (int i = 0; i < spec->n_vocab; i++) {
        if (spec->piece_lens[i] > MAX_PIECE_LEN)
            return fail(err, errlen, IKV_EINVAL, "token %d is %u bytes long (limit %u)", i,
                        spec->piece_lens[i], MAX_PIECE_LEN);
        if (spec->piece_lens[i] && !spec->pieces[i])
            return fail(err, errlen, IKV_EINVAL, "token %d has no text", i);
        total += spec->piece_lens[i];
    }
    if (total >= UINT32_MAX)
        return fail(err, errlen, IKV_EINVAL, "vocabulary text too large (%llu bytes)",
                    (unsigned long long)total);
    if (spec->bos_id < -1 || spec->bos_id >= spec->n_vocab)
        return fail(err, errlen, IKV_EINVAL, "BOS id %d out of range", spec->bos_id);
    if (spec->eos_id < -1 || spec->eos_id >= spec->n_vocab)
        return fail(err, errlen, IKV_EINVAL, "EOS id %d out of range", spec->eos_id);
    if (spec->kind == IKV_TOK_SPM && !spec->scores)
        return fail(err, errlen, IKV_EINVAL, "SPM tokenizer needs token scores");
    if (spec->kind == IKV_TOK_GPT2) {
        if (spec->n_merges < 0 || spec->n_merges > MAX_MERGES)
            return fail(err, errlen, IKV_EINVAL, "merge count %d out of range (0..%d)",
                        spec->n_merges, MAX_MERGES);
        if (spec->n_merges > 0 && (!spec->merges || !spec->merge_lens))
            return fail(err, errlen, IKV_EINVAL, "tokenizer spec has no merges");
        if (spec->pre != IKV_PRE_DEFAULT && spec->pre != IKV_PRE_LLAMA3 &&
            spec->pre != IKV_PRE_QWEN2)
            return fail(err, errlen, IKV_EINVAL, "unknown pre-tokenizer %d", (int)spec->pre);
    }
    return 0;
}

static int create(ikv_tokenizer **out, const ikv_tokenizer_spec *spec, char *err,
                  size_t errlen);

int ikv_tokenizer_create(ikv_tokenizer **out, const ikv_tokenizer_spec *spec,
                         char *err, size_t errlen)
{
    int rc = create(out, spec, err, errlen);
    /* Messages quote pieces and merges from the file: keep them one line. */
    if (rc < 0 && err && errlen)
        ikv_scrub_controls(err, '?');
    return rc;
}

static int create(ikv_tokenizer **out, const ikv_tokenizer_spec *spec, char *err,
                  size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!out)
        return fail(err, errlen, IKV_EINVAL, "no output handle");
    *out = NULL;
    if (!spec)
        return fail(err, errlen, IKV_EINVAL, "no tokenizer spec");
    int rc = check_spec(spec, err, errlen);
    if (rc < 0)
        return rc;

    ikv_tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return fail(err, errlen, IKV_ENOMEM, "out of memory");
    int n = spec->n_vocab;
    t->kind = spec->kind;
    t->n_vocab = n;
    t->bos_id = spec->bos_id;
    t->eos_id = spec->eos_id;
    t->unk_id = -1;
    t->add_bos = spec->add_bos > 0 && spec->bos_id >= 0;
    t->pre = spec->pre;
    t->dummy_tok = -1;
    for (int b = 0; b < 256; b++)
        t->byte_tok[b] = -1;

    t->off = malloc(((size_t)n + 1) * sizeof *t->off);
    t->cls = malloc((size_t)n);
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += spec->piece_lens[i];
    t->arena = malloc(total + 1);
    if (!t->off || !t->cls || !t->arena) {
        rc = fail(err, errlen, IKV_ENOMEM, "out of memory");
        goto out;
    }
    uint32_t pos = 0;
    for (int i = 0; i < n; i++) {
        uint32_t len = spec->piece_lens[i];
        t->off[i] = pos;
        if (len)
            memcpy(t->arena + pos, spec->pieces[i], len);
        t->cls[i] = (uint8_t)classify(spec, i, t->arena + pos, len);
        if (t->cls[i] == IKV_TC_UNKNOWN && t->unk_id < 0)
            t->unk_id = i;
        pos += len;
    }
    t->off[n] = pos;
    if (spec->kind == IKV_TOK_SPM) {
        t->scores = malloc((size_t)n * sizeof *t->scores);
        if (!t->scores) {
            rc = fail(err, errlen, IKV_ENOMEM, "out of memory");
            goto out;
        }
        memcpy(t->scores, spec->scores, (size_t)n * sizeof *t->scores);
    }
    if ((rc = piece_map_build(t)) < 0) {
        fail(err, errlen, rc, "out of memory");
        goto out;
    }
    rc = spec->kind == IKV_TOK_SPM ? ikv_spm_init(t, err, errlen)
                                   : ikv_gpt2_init(t, spec, err, errlen);
    if (rc < 0)
        goto out;
    if ((rc = build_decode_table(t)) < 0) {
        fail(err, errlen, rc, "out of memory");
        goto out;
    }
    *out = t;
    return 0;
out:
    ikv_tokenizer_free(t);
    return rc;
}

void ikv_tokenizer_free(ikv_tokenizer *t)
{
    if (!t)
        return;
    free(t->arena);
    free(t->off);
    free(t->cls);
    free(t->scores);
    free(t->dec);
    free(t->dec_off);
    free(t->map.slots);
    ikv_pair_table_free(&t->pairs);
    ikv_pair_table_free(&t->links);
    ikv_pretok_free(t->pretok);
    free(t);
}

int ikv_tokenizer_encode(const ikv_tokenizer *t, const char *text, size_t len,
                         int add_bos, int32_t *out, int max, int *n_out)
{
    if (n_out)
        *n_out = 0;
    if (!t || (!text && len) || !n_out || max < 0 || (max > 0 && !out))
        return IKV_EINVAL;
    if (len > MAX_TEXT_LEN)
        return IKV_ECAPACITY;
    if (add_bos < 0)
        add_bos = t->add_bos;
    ikv_tokvec tv = {0};
    int rc = 0;
    if (add_bos && t->bos_id >= 0)
        rc = ikv_tokvec_push(&tv, t->bos_id);
    if (rc == 0 && len > 0)
        rc = t->kind == IKV_TOK_SPM ? ikv_spm_encode(t, text, len, &tv)
                                    : ikv_gpt2_encode(t, text, len, &tv);
    if (rc == 0) {
        size_t keep = tv.n < (size_t)max ? tv.n : (size_t)max;
        if (keep)
            memcpy(out, tv.v, keep * sizeof *out);
        *n_out = (int)tv.n;
    }
    free(tv.v);
    return rc;
}

int ikv_tokenizer_decode(const ikv_tokenizer *t, int32_t prev, int32_t id,
                         char *buf, size_t buflen)
{
    if (!t || id < 0 || id >= t->n_vocab || (!buf && buflen))
        return IKV_EINVAL;
    const char *d = t->dec + t->dec_off[id];
    size_t n = t->dec_off[id + 1] - t->dec_off[id];
    /* SentencePiece drops the space its dummy prefix put at the start (a
     * byte token <0x20> is a real space and stays, as in run.c). */
    if (t->kind == IKV_TOK_SPM && prev >= 0 && prev == t->bos_id && n > 0 && d[0] == ' ' &&
        t->cls[id] != IKV_TC_BYTE) {
        d++;
        n--;
    }
    if (n > buflen)
        return IKV_ECAPACITY;
    if (n)
        memcpy(buf, d, n);
    return (int)n;
}

int ikv_tokenizer_max_token_bytes(const ikv_tokenizer *t)
{
    return t ? (int)t->max_dec_len : 0;
}

int ikv_tokenizer_n_vocab(const ikv_tokenizer *t)
{
    return t ? t->n_vocab : 0;
}

int ikv_tokenizer_bos(const ikv_tokenizer *t)
{
    return t ? t->bos_id : -1;
}

int ikv_tokenizer_eos(const ikv_tokenizer *t)
{
    return t ? t->eos_id : -1;
}
