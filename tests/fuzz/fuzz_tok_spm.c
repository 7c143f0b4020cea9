/*
 * Fuzz harness: the SentencePiece-style (SPM) tokenizer, built from a
 * fuzzed vocabulary, encoding and decoding fuzzed text.
 *
 * Input: a flags byte, the text up to a 0x00 byte, then vocabulary
 * entries separated by 0x01 bytes: a score byte then the piece.
 *   flags bit 0  spell spaces in pieces as U+2581 (GGUF "llama" style)
 *         bit 1  add the 256 byte tokens <0xNN>
 *         bit 2  give token types (from each piece's score byte)
 *         bit 3  add an <unk> token
 *         bit 4  add BOS by default
 *         bit 5  llama2.c layout, checked against a plain re-statement of
 *                run.c's encode() (ids 0..2 <unk>, BOS, EOS, 3..258 the
 *                byte tokens, 259 " ", then the entries)
 *         bits 6-7  BOS: none, the last, the second last or the first id
 * Checks: ids in range, encode counts consistent when the output is cut,
 * decoded sizes within ikv_tokenizer_max_token_bytes(), round trips
 * (decode of encode is the text) when every byte has a token, and the
 * same ids as the run.c re-statement in the llama2.c layout.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_engine.h"
#include "fuzz_util.h"
#include "model/tokenizer.h"

#define MAX_PIECES 2048

typedef struct vocab {
    int n;
    const char *pieces[MAX_PIECES];
    uint32_t lens[MAX_PIECES];
    float scores[MAX_PIECES];
    int32_t types[MAX_PIECES];
    char own[MAX_PIECES][8]; /* text of the generated tokens */
    char *escaped;           /* pieces with spaces spelled U+2581 */
} vocab;

static void add(vocab *v, const char *p, uint32_t len, float score, int32_t type)
{
    if (v->n == MAX_PIECES)
        return;
    v->pieces[v->n] = p;
    v->lens[v->n] = len;
    v->scores[v->n] = score;
    v->types[v->n] = type;
    v->n++;
}

static void add_own(vocab *v, const char *text, float score, int32_t type)
{
    if (v->n == MAX_PIECES)
        return;
    size_t len = strlen(text);
    memcpy(v->own[v->n], text, len);
    add(v, v->own[v->n], (uint32_t)len, score, type);
}

static float score_of(uint8_t code)
{
    switch (code) {
    case 0x7f: return NAN;
    case 0x7e: return INFINITY;
    case 0x80: return -INFINITY;
    case 0x7d: return -1e10f;
    default: return (float)(int8_t)code;
    }
}

static int contains(const uint8_t *p, size_t len, const char *what)
{
    size_t w = strlen(what);
    for (size_t i = 0; i + w <= len; i++)
        if (memcmp(p + i, what, w) == 0)
            return 1;
    return 0;
}

/* ---- run.c's encode(), restated plainly ---- */

static const vocab *sort_v;

static int cmp_piece(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    return c ? c : (alen > blen) - (alen < blen);
}

static int cmp_ids(const void *pa, const void *pb)
{
    int a = *(const int *)pa, b = *(const int *)pb;
    int c = cmp_piece(sort_v->pieces[a], sort_v->lens[a], sort_v->pieces[b], sort_v->lens[b]);
    return c ? c : (a > b) - (a < b);
}

/* Lowest id spelled s, or -1. */
static int lookup(const vocab *v, const int *sorted, const char *s, size_t len)
{
    int lo = 0, hi = v->n - 1, found = -1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = cmp_piece(v->pieces[sorted[mid]], v->lens[sorted[mid]], s, len);
        if (c == 0)
            found = mid;
        if (c >= 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return found >= 0 ? sorted[found] : -1;
}

static int reference(const vocab *v, const uint8_t *text, size_t len, int32_t *tok)
{
    int *sorted = malloc((size_t)v->n * sizeof *sorted);
    char *buf = malloc(2 * 4096 + 8);
    IKV_FUZZ_CHECK(sorted && buf);
    for (int i = 0; i < v->n; i++)
        sorted[i] = i;
    sort_v = v;
    qsort(sorted, (size_t)v->n, sizeof *sorted, cmp_ids);
    int n = 0;
    tok[n++] = 1; /* BOS */
    if (len > 0)
        tok[n++] = lookup(v, sorted, " ", 1);
    size_t blen = 0;
    for (size_t i = 0; i < len; i++) {
        if ((text[i] & 0xc0) != 0x80)
            blen = 0;
        buf[blen++] = (char)text[i];
        if (i + 1 < len && (text[i + 1] & 0xc0) == 0x80 && blen < 4)
            continue;
        int id = lookup(v, sorted, buf, blen);
        if (id >= 0) {
            tok[n++] = id;
        } else {
            for (size_t k = 0; k < blen; k++)
                tok[n++] = (unsigned char)buf[k] + 3;
        }
        blen = 0;
    }
    for (;;) {
        float best = -1e10f;
        int best_id = -1, best_at = -1;
        for (int i = 0; i + 1 < n; i++) {
            size_t a = v->lens[tok[i]], b = v->lens[tok[i + 1]];
            memcpy(buf, v->pieces[tok[i]], a);
            memcpy(buf + a, v->pieces[tok[i + 1]], b);
            int id = lookup(v, sorted, buf, a + b);
            if (id >= 0 && v->scores[id] > best) {
                best = v->scores[id];
                best_id = id;
                best_at = i;
            }
        }
        if (best_at < 0)
            break;
        tok[best_at] = best_id;
        memmove(tok + best_at + 1, tok + best_at + 2, (size_t)(n - best_at - 2) * sizeof *tok);
        n--;
    }
    free(sorted);
    free(buf);
    return n;
}

/* ---- the harness ---- */

/* flags bits 6-7: no BOS, the last, the second last or the first id */
static int bos_choice(unsigned sel, int n)
{
    switch (sel) {
    case 1: return n - 1;
    case 2: return n > 1 ? n - 2 : -1;
    case 3: return 0;
    default: return -1;
    }
}

static int32_t *encode_all(const ikv_tokenizer *t, const uint8_t *text, size_t len, int add_bos,
                           int *n_out)
{
    int n = -1;
    if (ikv_tokenizer_encode(t, (const char *)text, len, add_bos, NULL, 0, &n) != 0)
        return NULL;
    IKV_FUZZ_CHECK(n >= 0 && (size_t)n <= len + 2);
    int32_t *ids = malloc(((size_t)n + 1) * sizeof *ids);
    IKV_FUZZ_CHECK(ids != NULL);
    int m = -1;
    IKV_FUZZ_CHECK(ikv_tokenizer_encode(t, (const char *)text, len, add_bos, ids, n, &m) == 0);
    IKV_FUZZ_CHECK(m == n);
    /* a cut output holds the first ids and still reports the full count */
    if (n > 1) {
        int32_t first;
        IKV_FUZZ_CHECK(ikv_tokenizer_encode(t, (const char *)text, len, add_bos, &first, 1, &m) == 0);
        IKV_FUZZ_CHECK(m == n && first == ids[0]);
    }
    *n_out = n;
    return ids;
}

/* Decodes ids after their predecessors; -1 if a token does not fit. */
static long decode_all(const ikv_tokenizer *t, const int32_t *ids, int n, char *buf, size_t cap)
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ikv_fuzz_input in = {data, size, 0};
    unsigned flags = ikv_fuzz_u8(&in);
    const uint8_t *text;
    size_t text_len = ikv_fuzz_until(&in, 0x00, size, &text);
    int llama2c = (flags & 32) != 0;

    vocab *v = calloc(1, sizeof *v);
    v->escaped = malloc(3 * size + 1);
    IKV_FUZZ_CHECK(v && v->escaped);
    size_t esc_used = 0;
    int byte_tokens = llama2c || (flags & 2);
    if (llama2c) {
        add_own(v, "<unk>", -1e10f, 2);
        add_own(v, "\n<s>\n", -1e10f, 3);
        add_own(v, "\n</s>\n", -1e10f, 3);
    }
    if (byte_tokens) {
        for (int b = 0; b < 256; b++) {
            char piece[8];
            snprintf(piece, sizeof piece, "<0x%02X>", b);
            add_own(v, piece, llama2c ? -1e10f : 0.0f, 6);
        }
    }
    if (llama2c)
        add_own(v, " ", -1e10f, 1);
    if (!llama2c && (flags & 8))
        add_own(v, "<unk>", 0.0f, 2);
    while (in.pos < in.size && v->n < MAX_PIECES) {
        uint8_t code = ikv_fuzz_u8(&in);
        const uint8_t *p;
        size_t len = ikv_fuzz_until(&in, 0x01, 64, &p);
        if (len == 0)
            continue;
        if (llama2c && (contains(p, len, "<0x") || contains(p, len, "\xe2\x96\x81") ||
                        (len >= 5 && memcmp(p, "\n<s>\n", 5) == 0)))
            continue; /* spellings run.c treats differently on purpose */
        if (!llama2c && (flags & 1)) {
            /* SentencePiece spelling: ' ' -> U+2581 */
            char *dst = v->escaped + esc_used;
            size_t n = 0;
            for (size_t i = 0; i < len; i++) {
                if (p[i] == ' ') {
                    memcpy(dst + n, "\xe2\x96\x81", 3);
                    n += 3;
                } else {
                    dst[n++] = (char)p[i];
                }
            }
            esc_used += n;
            add(v, dst, (uint32_t)n, score_of(code), (flags & 4) ? code % 7 : 1);
        } else {
            add(v, (const char *)p, (uint32_t)len, score_of(code), (!llama2c && (flags & 4)) ? code % 7 : 1);
        }
    }
    if (v->n == 0) {
        free(v->escaped);
        free(v);
        return 0;
    }

    ikv_tokenizer_spec spec = {
        .kind = IKV_TOK_SPM,
        .n_vocab = v->n,
        .pieces = v->pieces,
        .piece_lens = v->lens,
        .scores = v->scores,
        .token_types = (!llama2c && (flags & 4)) ? v->types : NULL,
        .pre = IKV_PRE_DEFAULT,
        .bos_id = llama2c ? 1 : bos_choice(flags >> 6, v->n),
        .eos_id = llama2c ? 2 : -1,
        .add_bos = llama2c || (flags & 16),
    };
    char err[512];
    ikv_tokenizer *t;
    int rc = ikv_tokenizer_create(&t, &spec, err, sizeof err);
    if (rc != 0) {
        IKV_FUZZ_CHECK(t == NULL && rc < 0);
        ikv_fuzz_check_message(err, NULL);
        free(v->escaped);
        free(v);
        return 0;
    }
    ikv_fuzz_tokenizer(t, (const char *)text, text_len);

    int n = 0;
    int32_t *ids = encode_all(t, text, text_len, 1, &n);
    /* Every byte has a token when the byte tokens are there (their type
     * is 6 when types are given): then encoding cannot fail, and the text
     * comes back, except where SentencePiece itself changes it (a literal
     * U+2581 reads as a space in U+2581 vocabularies). */
    int base = llama2c ? 3 : 0, bos = ikv_tokenizer_bos(t);
    int full_bytes = byte_tokens && !(bos >= base && bos < base + 256);
    if (full_bytes)
        IKV_FUZZ_CHECK(ids != NULL);
    if (ids && full_bytes && !contains(text, text_len, "\xe2\x96\x81")) {
        size_t cap = text_len + 64;
        char *back = malloc(cap);
        IKV_FUZZ_CHECK(back != NULL);
        long blen = decode_all(t, ids, n, back, cap);
        /* The dummy-prefix space is dropped after BOS; without a BOS, or
         * when the space had to be a byte token, it stays in front. */
        if (!(blen == (long)text_len && memcmp(back, text, text_len) == 0)) {
            IKV_FUZZ_CHECK(blen == (long)text_len + 1 && back[0] == ' ' &&
                           memcmp(back + 1, text, text_len) == 0);
        }
        free(back);
    }
    if (ids && llama2c && text_len <= 256) {
        int32_t *want = malloc((text_len + 2) * sizeof *want);
        IKV_FUZZ_CHECK(want != NULL);
        int m = reference(v, text, text_len, want);
        IKV_FUZZ_CHECK(m == n);
        for (int i = 0; i < n; i++)
            IKV_FUZZ_CHECK(ids[i] == want[i]);
        free(want);
    }
    free(ids);
    ikv_tokenizer_free(t);
    free(v->escaped);
    free(v);
    return 0;
}
