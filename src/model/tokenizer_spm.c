/*
 * SentencePiece-style score-merge BPE, as llama2.c's run.c encode() does it:
 *  1. a dummy-prefix space token when the text is non-empty;
 *  2. each UTF-8 character (a byte plus up to three continuation bytes) is
 *     looked up as a token, else every byte of it becomes its byte-fallback
 *     token <0xNN>;
 *  3. repeatedly merge the adjacent pair whose concatenation is a token of
 *     the highest score (ties: the leftmost pair).
 * GGUF "llama" vocabularies spell spaces as U+2581; characters are then
 * looked up with spaces escaped, while byte fallback keeps the original
 * bytes, so both spellings give the same ids for the same text.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infokv/core.h"
#include "model/tokenizer_internal.h"

static const char SPM_SPACE[3] = {(char)0xe2, (char)0x96, (char)0x81}; /* U+2581 */

/* Pairs that run.c would never beat its -1e10 starting score stay apart. */
#define SPM_MIN_SCORE -1e10f

static int contains(const char *p, size_t len, const char *what, size_t wlen)
{
    for (size_t i = 0; i + wlen <= len; i++)
        if (memcmp(p + i, what, wlen) == 0)
            return 1;
    return 0;
}

/* Length of the character starting at p: its first byte and up to three
 * continuation bytes, cut where run.c cuts it (so stray bytes behave the
 * same). */
static size_t char_len(const char *p, size_t len)
{
    size_t i = 1;
    while (i < len && ((unsigned char)p[i] & 0xc0) == 0x80 && i < 4)
        i++;
    return i;
}

/* run.c merges the pair whose concatenation is a token of the best score.
 * The pairs that can ever merge are the splits of a token into two tokens:
 * enumerating them once turns each look-up during encoding into one probe
 * of an integer pair table. Only tokens text can produce take part (normal
 * and user-defined; the piece map holds just those), each string under its
 * lowest id, and none whose score run.c would never accept. */
static int build_pairs(ikv_tokenizer *t, char *err, size_t errlen)
{
    if (ikv_pair_table_init(&t->pairs, (size_t)t->n_vocab) < 0) {
        snprintf(err, errlen, "out of memory");
        return IKV_ENOMEM;
    }
    for (int32_t id = 0; id < t->n_vocab; id++) {
        const char *p = t->arena + t->off[id];
        size_t len = t->off[id + 1] - t->off[id];
        float s = t->scores[id];
        if (len < 2 || !(s > SPM_MIN_SCORE) || ikv_piece_map_find2(&t->map, p, len, NULL, 0) != id)
            continue;
        for (size_t k = 1; k < len; k++) {
            int32_t a = ikv_piece_map_find2(&t->map, p, k, NULL, 0);
            if (a < 0)
                continue;
            int32_t b = ikv_piece_map_find2(&t->map, p + k, len - k, NULL, 0);
            if (b >= 0 && ikv_pair_table_add(&t->pairs, a, b, id, s) < 0) {
                snprintf(err, errlen, "out of memory");
                return IKV_ENOMEM;
            }
        }
    }
    return 0;
}

/* Encoding starts from one token per character, and every merge result is
 * a token spelled by the characters it covers. So two adjacent character
 * tokens can end up in one token only if some token's piece spells them
 * next to each other; everywhere else the text splits into parts that merge
 * independently (in tok512.bin, before every space): the same result as
 * one global merge loop, with small heaps instead of one the size of the
 * text.
 *
 * The pairs are those of the text that spells each token, cut into
 * characters exactly as the encoder cuts text (spaces unescaped first);
 * and, for a token starting with a space, also with that space as the
 * dummy prefix, a symbol of its own: " \xae" is one character inside a
 * text, but the dummy prefix then a text starting with the stray byte
 * 0xae at its beginning (found by fuzz_tok_spm against run.c's encoder).
 * Pairs listed in excess only make parts longer, never change a result. */
static int32_t char_token(const ikv_tokenizer *t, const char *c, size_t len);

/* Links the character tokens of text[0..len) in order, after `prev` (-1:
 * none); stops at a character without a token (text cannot make this
 * token then; the links made so far are merely in excess). Returns 0 or
 * IKV_ENOMEM. */
static int link_chars(ikv_tokenizer *t, int32_t prev, const char *text, size_t len, int32_t id)
{
    for (size_t i = 0; i < len;) {
        size_t c = char_len(text + i, len - i);
        int32_t cur = char_token(t, text + i, c);
        if (cur < 0)
            return 0;
        if (prev >= 0 && ikv_pair_table_add(&t->links, prev, cur, id, 0) < 0)
            return IKV_ENOMEM;
        prev = cur;
        i += c;
    }
    return 0;
}

static int build_links(ikv_tokenizer *t, char *err, size_t errlen)
{
    char *text = NULL;
    size_t cap = 0;
    if (ikv_pair_table_init(&t->links, (size_t)t->n_vocab) < 0)
        goto oom;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        const char *p = t->arena + t->off[id];
        size_t len = t->off[id + 1] - t->off[id];
        if (len < 2 || ikv_piece_map_find2(&t->map, p, len, NULL, 0) != id)
            continue;
        if (len > cap) {
            char *bigger = realloc(text, len);
            if (!bigger)
                goto oom;
            text = bigger;
            cap = len;
        }
        /* the text that spells the token */
        size_t n = 0;
        for (size_t i = 0; i < len;) {
            if (t->space_escape && i + 3 <= len && memcmp(p + i, SPM_SPACE, 3) == 0) {
                text[n++] = ' ';
                i += 3;
            } else {
                text[n++] = p[i++];
            }
        }
        int rc = link_chars(t, -1, text, n, id);
        if (rc == 0 && text[0] == ' ' && t->dummy_tok >= 0 && n > 1)
            rc = link_chars(t, t->dummy_tok, text + 1, n - 1, id);
        if (rc < 0)
            goto oom;
    }
    free(text);
    return 0;
oom:
    free(text);
    snprintf(err, errlen, "out of memory");
    return IKV_ENOMEM;
}

int ikv_spm_init(ikv_tokenizer *t, char *err, size_t errlen)
{
    /* SentencePiece vocabularies (GGUF "llama") spell spaces U+2581;
     * llama2.c's tokenizer.bin spells them ' '. Go by the majority. */
    long with_space = 0, with_escape = 0;
    for (int id = 0; id < t->n_vocab; id++) {
        if (t->cls[id] == IKV_TC_BYTE) {
            int b = ikv_parse_byte_piece(t->arena + t->off[id], t->off[id + 1] - t->off[id]);
            if (t->byte_tok[b] < 0)
                t->byte_tok[b] = id;
            continue;
        }
        if (t->cls[id] != IKV_TC_NORMAL)
            continue;
        const char *p = t->arena + t->off[id];
        size_t len = t->off[id + 1] - t->off[id];
        with_space += contains(p, len, " ", 1);
        with_escape += contains(p, len, SPM_SPACE, 3);
    }
    t->space_escape = with_escape > with_space;
    t->dummy_tok = t->space_escape ? ikv_piece_map_find2(&t->map, SPM_SPACE, 3, NULL, 0)
                                   : ikv_piece_map_find2(&t->map, " ", 1, NULL, 0);
    int rc = build_pairs(t, err, errlen);
    return rc < 0 ? rc : build_links(t, err, errlen);
}

/* Token of one character (1-4 bytes), spaces escaped as the vocabulary
 * spells them; -1 when the vocabulary lacks it. */
static int32_t char_token(const ikv_tokenizer *t, const char *c, size_t len)
{
    if (t->space_escape && c[0] == ' ')
        return ikv_piece_map_find2(&t->map, SPM_SPACE, 3, c + 1, len - 1);
    return ikv_piece_map_find2(&t->map, c, len, NULL, 0);
}

static int push_bytes(const ikv_tokenizer *t, const char *c, size_t len, int32_t *syms,
                      int *n)
{
    for (size_t i = 0; i < len; i++) {
        int32_t id = t->byte_tok[(unsigned char)c[i]];
        if (id < 0)
            id = t->unk_id;
        if (id < 0)
            return IKV_EINVAL; /* no byte token and no unknown token */
        syms[(*n)++] = id;
    }
    return 0;
}

int ikv_spm_encode(const ikv_tokenizer *t, const char *text, size_t len, ikv_tokvec *out)
{
    /* Every byte makes at most one symbol, plus the dummy prefix. */
    int32_t *syms = malloc((len + 1) * sizeof *syms);
    if (!syms)
        return IKV_ENOMEM;
    int n = 0, rc = 0;
    if (t->dummy_tok >= 0)
        syms[n++] = t->dummy_tok;
    else
        rc = push_bytes(t, " ", 1, syms, &n);

    for (size_t i = 0; i < len && rc == 0;) {
        size_t c = char_len(text + i, len - i);
        int32_t id = char_token(t, text + i, c);
        if (id >= 0)
            syms[n++] = id;
        else
            rc = push_bytes(t, text + i, c, syms, &n);
        i += c;
    }

    /* Merge each part between pairs no token spans on its own. */
    ikv_bpe_work work = {0};
    for (int start = 0; start < n && rc == 0;) {
        int end = start + 1;
        while (end < n && ikv_pair_table_find(&t->links, syms[end - 1], syms[end]))
            end++;
        int m = ikv_bpe_merge(syms + start, end - start, &t->pairs, &work);
        if (m < 0)
            rc = m;
        for (int i = 0; i < m && rc == 0; i++)
            rc = ikv_tokvec_push(out, syms[start + i]);
        start = end;
    }
    ikv_bpe_work_free(&work);
    free(syms);
    return rc;
}
