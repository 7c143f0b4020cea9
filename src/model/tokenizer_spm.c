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

#include <stdlib.h>
#include <string.h>

#include "infokv/core.h"
#include "model/tokenizer_internal.h"

static const char SPM_SPACE[3] = {(char)0xe2, (char)0x96, (char)0x81}; /* U+2581 */

/* Pairs that run.c would never beat its -1e10 starting score stay apart. */
#define SPM_MIN_SCORE -1e10f

static int mergeable(const ikv_tokenizer *t, int32_t id)
{
    return t->cls[id] == IKV_TC_NORMAL || t->cls[id] == IKV_TC_USER;
}

static int spm_pair(const void *ctx, int32_t left, int32_t right, int32_t *merged,
                    double *priority)
{
    const ikv_tokenizer *t = ctx;
    if (!mergeable(t, left) || !mergeable(t, right))
        return 0;
    int32_t id = ikv_piece_map_find2(&t->map, t->arena + t->off[left],
                                     t->off[left + 1] - t->off[left],
                                     t->arena + t->off[right],
                                     t->off[right + 1] - t->off[right]);
    if (id < 0)
        return 0;
    float s = t->scores[id];
    if (!(s > SPM_MIN_SCORE)) /* also rejects NaN */
        return 0;
    *merged = id;
    *priority = s;
    return 1;
}

static int contains(const char *p, size_t len, const char *what, size_t wlen)
{
    for (size_t i = 0; i + wlen <= len; i++)
        if (memcmp(p + i, what, wlen) == 0)
            return 1;
    return 0;
}

int ikv_spm_init(ikv_tokenizer *t, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
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
    return 0;
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
        size_t start = i++;
        /* A character: its first byte and up to three continuation bytes,
         * cut where run.c cuts it (so stray bytes behave the same). */
        while (i < len && ((unsigned char)text[i] & 0xc0) == 0x80 && i - start < 4)
            i++;
        int32_t id = char_token(t, text + start, i - start);
        if (id >= 0)
            syms[n++] = id;
        else
            rc = push_bytes(t, text + start, i - start, syms, &n);
    }

    if (rc == 0) {
        ikv_bpe_work work = {0};
        int m = ikv_bpe_merge(syms, n, spm_pair, t, &work);
        ikv_bpe_work_free(&work);
        if (m < 0)
            rc = m;
        for (int i = 0; i < m && rc == 0; i++)
            rc = ikv_tokvec_push(out, syms[i]);
    }
    free(syms);
    return rc;
}
