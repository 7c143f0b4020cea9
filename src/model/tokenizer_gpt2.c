/*
 * Byte-level BPE (GPT-2, Llama-3, Qwen2): every byte of the text is a letter
 * of a 256-letter alphabet (printable Latin-1 bytes stand for themselves,
 * the other 68 bytes for U+0100..U+0143 in byte order), the text is cut by
 * the pre-tokenizer, and inside each piece adjacent symbols merge in the
 * order of the merge list (index = rank, lowest first; ties: leftmost).
 * Llama-3 first looks the whole piece up in the vocabulary ("ignore_merges"
 * in its tokenizer.json, as llama.cpp does too).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infokv/core.h"
#include "model/tokenizer_internal.h"

/* ---- the byte alphabet ---------------------------------------------------- */

static unsigned byte_to_cp(unsigned b)
{
    if (b <= 32)
        return 256 + b;
    if (b >= 127 && b <= 160)
        return 256 + 33 + (b - 127);
    if (b == 173)
        return 256 + 67;
    return b;
}

/* The byte a code point of the alphabet stands for, or -1. */
static int cp_to_byte(unsigned cp)
{
    if (cp >= 256 && cp <= 288)
        return (int)(cp - 256);
    if (cp >= 289 && cp <= 322)
        return (int)(cp - 289 + 127);
    if (cp == 323)
        return 173;
    if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 255 && cp != 173))
        return (int)cp;
    return -1;
}

/* UTF-8 of the byte's letter (1 or 2 bytes). */
static size_t byte_letter(unsigned b, char *dst)
{
    unsigned cp = byte_to_cp(b);
    if (cp < 0x80) {
        dst[0] = (char)cp;
        return 1;
    }
    dst[0] = (char)(0xc0 | (cp >> 6));
    dst[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
}

size_t ikv_gpt2_unmap(const char *piece, size_t len, char *dst)
{
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)piece[i];
        if (c >= 0xc2 && c <= 0xdf && i + 1 < len &&
            ((unsigned char)piece[i + 1] & 0xc0) == 0x80) {
            unsigned cp = (unsigned)(c & 0x1f) << 6 | ((unsigned char)piece[i + 1] & 0x3f);
            int b = cp_to_byte(cp);
            if (b >= 0) {
                dst[n++] = (char)b;
            } else { /* not a letter of the alphabet: as it is */
                dst[n++] = piece[i];
                dst[n++] = piece[i + 1];
            }
            i += 2;
        } else {
            /* ASCII letters stand for themselves; anything else is copied. */
            dst[n++] = piece[i++];
        }
    }
    return n;
}

/* ---- merge table --------------------------------------------------------- */

static int build_merges(ikv_tokenizer *t, const ikv_tokenizer_spec *spec, char *err,
                        size_t errlen)
{
    if (ikv_pair_table_init(&t->pairs, (size_t)spec->n_merges) < 0) {
        snprintf(err, errlen, "out of memory");
        return IKV_ENOMEM;
    }
    for (int k = 0; k < spec->n_merges; k++) {
        const char *m = spec->merges[k];
        size_t len = spec->merge_lens[k];
        if (len && !m) {
            snprintf(err, errlen, "merge %d has no text", k);
            return IKV_EINVAL;
        }
        /* "left right": the first space after the first byte separates. */
        const char *sp = len > 1 ? memchr(m + 1, ' ', len - 1) : NULL;
        if (!sp || sp + 1 == m + len) {
            snprintf(err, errlen, "merge %d (\"%.*s\") is not two pieces separated by a space",
                     k, (int)(len < 40 ? len : 40), m ? m : "");
            return IKV_EINVAL;
        }
        size_t llen = (size_t)(sp - m), rlen = len - llen - 1;
        int32_t l = ikv_piece_map_find2(&t->map, m, llen, NULL, 0);
        int32_t r = ikv_piece_map_find2(&t->map, sp + 1, rlen, NULL, 0);
        int32_t res = ikv_piece_map_find2(&t->map, m, llen, sp + 1, rlen);
        if (l < 0 || r < 0 || res < 0)
            continue; /* names pieces this vocabulary lacks: can never apply */
        /* A pair listed twice keeps its first (lowest) rank; ranks up to
         * 2^24 are exact as float priorities. */
        if (ikv_pair_table_add(&t->pairs, l, r, res, -(float)k) < 0) {
            snprintf(err, errlen, "out of memory");
            return IKV_ENOMEM;
        }
    }
    return 0;
}

int ikv_gpt2_init(ikv_tokenizer *t, const ikv_tokenizer_spec *spec, char *err, size_t errlen)
{
    for (unsigned b = 0; b < 256; b++) {
        char letter[2];
        size_t n = byte_letter(b, letter);
        t->byte_tok[b] = ikv_piece_map_find2(&t->map, letter, n, NULL, 0);
    }
    int rc = build_merges(t, spec, err, errlen);
    if (rc < 0)
        return rc;
    return ikv_pretok_create(&t->pretok, spec->pre, err, errlen);
}

/* ---- encode ------------------------------------------------------------- */

typedef struct gpt2_run {
    const ikv_tokenizer *t;
    ikv_tokvec *out;
    ikv_bpe_work work;
    int32_t *syms;      /* [cap] */
    char *letters;      /* [2 * cap] the piece in the alphabet */
    size_t cap;
} gpt2_run;

static int reserve(gpt2_run *r, size_t n)
{
    if (n <= r->cap)
        return 0;
    size_t cap = r->cap ? r->cap : 256;
    while (cap < n)
        cap *= 2;
    int32_t *s = realloc(r->syms, cap * sizeof *s);
    if (!s)
        return IKV_ENOMEM;
    r->syms = s;
    char *l = realloc(r->letters, 2 * cap);
    if (!l)
        return IKV_ENOMEM;
    r->letters = l;
    r->cap = cap;
    return 0;
}

static int encode_piece(void *ctx, const char *piece, size_t len)
{
    gpt2_run *r = ctx;
    const ikv_tokenizer *t = r->t;
    int rc = reserve(r, len);
    if (rc < 0)
        return rc;
    if (t->pre == IKV_PRE_LLAMA3) {
        size_t n = 0;
        for (size_t i = 0; i < len; i++)
            n += byte_letter((unsigned char)piece[i], r->letters + n);
        int32_t whole = ikv_piece_map_find2(&t->map, r->letters, n, NULL, 0);
        if (whole >= 0)
            return ikv_tokvec_push(r->out, whole);
    }
    for (size_t i = 0; i < len; i++) {
        int32_t id = t->byte_tok[(unsigned char)piece[i]];
        if (id < 0)
            id = t->unk_id;
        if (id < 0)
            return IKV_EINVAL; /* the vocabulary lacks this byte's letter */
        r->syms[i] = id;
    }
    int m = ikv_bpe_merge(r->syms, (int)len, &t->pairs, &r->work);
    if (m < 0)
        return m;
    for (int i = 0; i < m && rc == 0; i++)
        rc = ikv_tokvec_push(r->out, r->syms[i]);
    return rc;
}

int ikv_gpt2_encode(const ikv_tokenizer *t, const char *text, size_t len, ikv_tokvec *out)
{
    gpt2_run r = {.t = t, .out = out};
    int rc = ikv_pretok_split(t->pretok, text, len, encode_piece, &r);
    ikv_bpe_work_free(&r.work);
    free(r.syms);
    free(r.letters);
    return rc;
}
