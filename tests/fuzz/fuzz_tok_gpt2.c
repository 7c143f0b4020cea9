/*
 * Fuzz harness: the GPT-2 byte-level BPE tokenizer (GPT-2, Llama-3 and
 * Qwen2 pre-tokenizers), built from a fuzzed vocabulary and merge list,
 * encoding and decoding fuzzed text.
 *
 * Input: a flags byte, a byte of BOS choice, the text up to a 0x00 byte,
 * then vocabulary entries separated by 0x01 bytes: a code byte then the
 * piece's bytes, written in the GPT-2 byte alphabet unless flag bit 6.
 *   flags bits 0-1  pre-tokenizer: default, llama3, qwen2 (3: default)
 *         bit 2     add the 256 one-letter tokens first (every byte has a
 *                   token)
 *         bit 3     give token types (code % 7)
 *         bit 4     add BOS by default
 *         bit 5     merges: each entry with two or more letters is also
 *                   listed as a merge "left right", split where its code
 *                   says; otherwise no merges
 *         bit 6     pieces as raw bytes (not mapped to the alphabet)
 *         bit 7     one more merge from raw text: the last entry as is
 * Checks: what fuzz_engine checks, encode counts when the output is cut,
 * the round trip (decode of encode is the text) when every byte has a
 * token and no user-defined token is in the way, and the ids of a plain
 * re-statement of byte-level BPE (each pre-token: letters, then merge the
 * lowest-ranked listed pair, leftmost first, until none applies).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz_engine.h"
#include "fuzz_util.h"
#include "model/tokenizer.h"
#include "model/tokenizer_internal.h"

#define MAX_PIECES 1024
#define MAX_MERGES 1024

/* The byte alphabet, as GPT-2 defines it: printable Latin-1 bytes are
 * their own letter, the other 68 become U+0100.. in byte order. */
static size_t letter(unsigned b, char *dst)
{
    unsigned cp;
    if (b <= 32)
        cp = 256 + b;
    else if (b >= 127 && b <= 160)
        cp = 256 + 33 + (b - 127);
    else if (b == 173)
        cp = 256 + 67;
    else
        cp = b;
    if (cp < 0x80) {
        dst[0] = (char)cp;
        return 1;
    }
    dst[0] = (char)(0xc0 | (cp >> 6));
    dst[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
}

typedef struct vocab {
    int n, n_merges;
    const char *pieces[MAX_PIECES];
    uint32_t lens[MAX_PIECES];
    int32_t types[MAX_PIECES];
    const char *merges[MAX_MERGES];
    uint32_t merge_lens[MAX_MERGES];
    char *arena; /* letters, merge texts */
    size_t used;
    /* the reference's view */
    int in_map[MAX_PIECES]; /* normal or user-defined: text can make it */
    int unk;
    int mleft[MAX_MERGES], mright[MAX_MERGES], mres[MAX_MERGES];
} vocab;

static char *take(vocab *v, size_t n)
{
    char *p = v->arena + v->used;
    v->used += n;
    return p;
}

/* Lowest id of a text-producible token spelled a+b, or -1. */
static int find(const vocab *v, const char *a, size_t alen, const char *b, size_t blen)
{
    for (int id = 0; id < v->n; id++)
        if (v->in_map[id] && v->lens[id] == alen + blen && alen + blen > 0 &&
            memcmp(v->pieces[id], a, alen) == 0 && (blen == 0 || memcmp(v->pieces[id] + alen, b, blen) == 0))
            return id;
    return -1;
}

/* ---- reference BPE ---- */

typedef struct ref_ctx {
    const vocab *v;
    int pre;
    int32_t *out;
    int n, cap, failed;
} ref_ctx;

static int ref_piece(void *ctx, const char *piece, size_t len)
{
    ref_ctx *r = ctx;
    const vocab *v = r->v;
    char *letters = malloc(2 * len + 1);
    int32_t *syms = malloc((len + 1) * sizeof *syms);
    IKV_FUZZ_CHECK(letters && syms);
    size_t nl = 0;
    for (size_t i = 0; i < len; i++)
        nl += letter((unsigned char)piece[i], letters + nl);
    int whole = r->pre == IKV_PRE_LLAMA3 ? find(v, letters, nl, NULL, 0) : -1;
    int n = 0;
    if (whole >= 0) {
        syms[n++] = whole;
    } else {
        for (size_t i = 0; i < len; i++) {
            char l[2];
            size_t ln = letter((unsigned char)piece[i], l);
            int id = find(v, l, ln, NULL, 0);
            if (id < 0)
                id = v->unk;
            if (id < 0) {
                r->failed = 1;
                break;
            }
            syms[n++] = id;
        }
        while (!r->failed) {
            int best = -1, at = -1;
            for (int i = 0; i + 1 < n; i++)
                for (int k = 0; k < v->n_merges && (best < 0 || k < best); k++)
                    if (v->mres[k] >= 0 && v->mleft[k] == syms[i] && v->mright[k] == syms[i + 1]) {
                        best = k;
                        at = i;
                    }
            if (at < 0)
                break;
            syms[at] = v->mres[best];
            memmove(syms + at + 1, syms + at + 2, (size_t)(n - at - 2) * sizeof *syms);
            n--;
        }
    }
    for (int i = 0; i < n && !r->failed && r->n < r->cap; i++)
        r->out[r->n++] = syms[i];
    free(letters);
    free(syms);
    return 0;
}

/* ---- the harness ---- */

static int bos_choice(unsigned sel, int n)
{
    switch (sel % 4) {
    case 1: return n - 1;
    case 2: return n > 1 ? n - 2 : -1;
    case 3: return 0;
    default: return -1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ikv_fuzz_input in = {data, size, 0};
    unsigned flags = ikv_fuzz_u8(&in);
    unsigned bos_sel = ikv_fuzz_u8(&in);
    const uint8_t *text;
    size_t text_len = ikv_fuzz_until(&in, 0x00, size, &text);
    ikv_pretokenizer pre = (flags & 3) == 1 ? IKV_PRE_LLAMA3 : (flags & 3) == 2 ? IKV_PRE_QWEN2 : IKV_PRE_DEFAULT;
    int raw = (flags & 64) != 0, typed = (flags & 8) != 0;

    vocab *v = calloc(1, sizeof *v);
    IKV_FUZZ_CHECK(v != NULL);
    v->arena = malloc(4 * size + 2 * 256 + 16);
    IKV_FUZZ_CHECK(v->arena != NULL);
    if (flags & 4) {
        for (unsigned b = 0; b < 256; b++) {
            char *p = take(v, 2);
            v->lens[v->n] = (uint32_t)letter(b, p);
            v->used -= 2 - v->lens[v->n];
            v->pieces[v->n] = p;
            v->types[v->n] = 1;
            v->n++;
        }
    }
    const uint8_t *last = NULL;
    size_t last_len = 0;
    while (in.pos < in.size && v->n < MAX_PIECES) {
        uint8_t code = ikv_fuzz_u8(&in);
        const uint8_t *p;
        size_t len = ikv_fuzz_until(&in, 0x01, 48, &p);
        if (len == 0)
            continue;
        last = p;
        last_len = len;
        char *dst = take(v, 2 * len);
        size_t n = 0;
        if (raw) {
            memcpy(dst, p, len);
            n = len;
        } else {
            for (size_t i = 0; i < len; i++)
                n += letter(p[i], dst + n);
        }
        v->used -= 2 * len - n;
        v->pieces[v->n] = dst;
        v->lens[v->n] = (uint32_t)n;
        v->types[v->n] = typed ? code % 7 : 1;
        if ((flags & 32) && !raw && len >= 2 && v->n_merges < MAX_MERGES) {
            /* "left right", split after letter 1 + code % (len - 1) */
            size_t cut = 1 + code % (len - 1), lbytes = 0;
            for (size_t i = 0; i < cut; i++) {
                char tmp[2];
                lbytes += letter(p[i], tmp);
            }
            char *m = take(v, n + 1);
            memcpy(m, dst, lbytes);
            m[lbytes] = ' ';
            memcpy(m + lbytes + 1, dst + lbytes, n - lbytes);
            v->merges[v->n_merges] = m;
            v->merge_lens[v->n_merges] = (uint32_t)n + 1;
            v->n_merges++;
        }
        v->n++;
    }
    if ((flags & 128) && last && v->n_merges < MAX_MERGES) {
        v->merges[v->n_merges] = (const char *)last;
        v->merge_lens[v->n_merges] = (uint32_t)last_len;
        v->n_merges++;
    }
    if (v->n == 0) {
        free(v->arena);
        free(v);
        return 0;
    }

    int bos = bos_choice(bos_sel, v->n), eos = bos_choice(bos_sel >> 2, v->n);
    ikv_tokenizer_spec spec = {
        .kind = IKV_TOK_GPT2,
        .n_vocab = v->n,
        .pieces = v->pieces,
        .piece_lens = v->lens,
        .scores = NULL,
        .token_types = typed ? v->types : NULL,
        .n_merges = v->n_merges,
        .merges = v->merges,
        .merge_lens = v->merge_lens,
        .pre = pre,
        .bos_id = bos,
        .eos_id = eos,
        .add_bos = (flags & 16) != 0,
    };
    char err[512];
    ikv_tokenizer *t;
    int rc = ikv_tokenizer_create(&t, &spec, err, sizeof err);
    if (rc != 0) {
        IKV_FUZZ_CHECK(t == NULL && rc < 0);
        ikv_fuzz_check_message(err, NULL);
        free(v->arena);
        free(v);
        return 0;
    }
    ikv_fuzz_tokenizer(t, (const char *)text, text_len);

    /* the reference's view of the vocabulary: classes as documented */
    int any_user = 0;
    v->unk = -1;
    for (int id = 0; id < v->n; id++) {
        int type = typed ? v->types[id] : (v->lens[id] == 5 && memcmp(v->pieces[id], "<unk>", 5) == 0 ? 2 : 1);
        if (id == bos || id == eos)
            type = 3;
        v->in_map[id] = type == 4 || !(type == 2 || type == 3 || type == 5);
        any_user |= type == 4;
        if (type == 2 && v->unk < 0)
            v->unk = id;
    }
    for (int k = 0; k < v->n_merges; k++) {
        const char *m = v->merges[k];
        size_t len = v->merge_lens[k];
        const char *sp = len > 1 ? memchr(m + 1, ' ', len - 1) : NULL;
        IKV_FUZZ_CHECK(sp != NULL); /* create accepted the list */
        size_t ll = (size_t)(sp - m), rl = len - ll - 1;
        v->mleft[k] = find(v, m, ll, NULL, 0);
        v->mright[k] = find(v, sp + 1, rl, NULL, 0);
        v->mres[k] = v->mleft[k] >= 0 && v->mright[k] >= 0 ? find(v, m, ll, sp + 1, rl) : -1;
    }

    int n = -1;
    rc = ikv_tokenizer_encode(t, (const char *)text, text_len, 0, NULL, 0, &n);
    int32_t *ids = NULL;
    if (rc == 0) {
        IKV_FUZZ_CHECK(n >= 0 && (size_t)n <= text_len);
        ids = malloc(((size_t)n + 1) * sizeof *ids);
        int m = -1;
        IKV_FUZZ_CHECK(ids && ikv_tokenizer_encode(t, (const char *)text, text_len, 0, ids, n, &m) == 0 && m == n);
    }
    if (text_len <= 512 && v->n_merges <= 256) {
        ikv_pretok *pt;
        IKV_FUZZ_CHECK(ikv_pretok_create(&pt, pre, err, sizeof err) == 0);
        ref_ctx r = {v, pre, malloc((text_len + 1) * sizeof(int32_t)), 0, (int)text_len, 0};
        IKV_FUZZ_CHECK(r.out != NULL);
        IKV_FUZZ_CHECK(ikv_pretok_split(pt, (const char *)text, text_len, ref_piece, &r) == 0);
        IKV_FUZZ_CHECK((rc == 0) == !r.failed);
        if (rc == 0) {
            IKV_FUZZ_CHECK(r.n == n);
            for (int i = 0; i < n; i++)
                IKV_FUZZ_CHECK(ids[i] == r.out[i]);
        }
        free(r.out);
        ikv_pretok_free(pt);
    }
    /* Round trip: every byte's letter is a token (the first 256 ids, of
     * type 1, none of them BOS/EOS), and no user-defined token, which
     * prints as spelled rather than unmapped. */
    int full = (flags & 4) && !(bos >= 0 && bos < 256) && !(eos >= 0 && eos < 256);
    if (full)
        IKV_FUZZ_CHECK(rc == 0);
    if (rc == 0 && full && !any_user) {
        char *back = malloc(text_len + 1);
        size_t pos = 0;
        IKV_FUZZ_CHECK(back != NULL);
        for (int i = 0; i < n; i++) {
            int got = ikv_tokenizer_decode(t, i ? ids[i - 1] : -1, ids[i], back + pos, text_len - pos);
            IKV_FUZZ_CHECK(got >= 0);
            pos += (size_t)got;
        }
        IKV_FUZZ_CHECK(pos == text_len && memcmp(back, text, text_len) == 0);
        free(back);
    }
    free(ids);
    ikv_tokenizer_free(t);
    free(v->arena);
    free(v);
    return 0;
}
