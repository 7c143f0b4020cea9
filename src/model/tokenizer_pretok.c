/*
 * Pre-tokenization of byte-level BPE: the text is cut into pieces by the
 * model family's split regex before any merge, so merges never cross a
 * piece. PCRE2 in UTF + UCP mode supplies the Unicode classes (\p{L},
 * \p{N}, Unicode \s); PCRE2_MATCH_INVALID_UTF lets it run on arbitrary
 * bytes: bytes no rule can match (invalid UTF-8) become pieces of their own.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "infokv/core.h"
#include "model/tokenizer_internal.h"

/* GPT-2 (tiktoken r50k / HF "ByteLevel" default). */
static const char RULES_GPT2[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* Llama-3: case-insensitive contractions, one non-letter may lead a word,
 * digits in groups of at most three, newlines kept together. */
static const char RULES_LLAMA3[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* Qwen2: Llama-3's rules with one digit per piece. */
static const char RULES_QWEN2[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

struct ikv_pretok {
    pcre2_code *re;
};

int ikv_pretok_create(ikv_pretok **out, ikv_pretokenizer rules, char *err, size_t errlen)
{
    *out = NULL;
    const char *pattern;
    switch (rules) {
    case IKV_PRE_DEFAULT: pattern = RULES_GPT2; break;
    case IKV_PRE_LLAMA3: pattern = RULES_LLAMA3; break;
    case IKV_PRE_QWEN2: pattern = RULES_QWEN2; break;
    default:
        snprintf(err, errlen, "unknown pre-tokenizer %d", (int)rules);
        return IKV_EINVAL;
    }
    ikv_pretok *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return IKV_ENOMEM;
    }
    int code;
    PCRE2_SIZE at;
    p->re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &code, &at, NULL);
    if (!p->re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(code, msg, sizeof msg);
        snprintf(err, errlen, "pre-tokenizer regex: %s at offset %zu", (const char *)msg,
                 (size_t)at);
        free(p);
        return IKV_EINVAL;
    }
    /* JIT is an optimisation only: without it PCRE2 interprets. */
    (void)pcre2_jit_compile(p->re, PCRE2_JIT_COMPLETE);
    *out = p;
    return 0;
}

void ikv_pretok_free(ikv_pretok *p)
{
    if (!p)
        return;
    pcre2_code_free(p->re);
    free(p);
}

int ikv_pretok_split(const ikv_pretok *p, const char *text, size_t len, ikv_piece_fn fn,
                     void *ctx)
{
    if (len == 0)
        return 0;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(p->re, NULL);
    if (!md)
        return IKV_ENOMEM;
    size_t done = 0; /* text[0..done) has been handed out */
    int rc = 0;
    while (done < len && rc == 0) {
        int m = pcre2_match(p->re, (PCRE2_SPTR)text, len, done, 0, md, NULL);
        if (m < 0 && m != PCRE2_ERROR_NOMATCH) /* e.g. JIT stack: interpret */
            m = pcre2_match(p->re, (PCRE2_SPTR)text, len, done, PCRE2_NO_JIT, md, NULL);
        if (m == PCRE2_ERROR_NOMATCH) {
            rc = fn(ctx, text + done, len - done);
            done = len;
            break;
        }
        if (m < 0) {
            rc = IKV_EINVAL;
            break;
        }
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t start = ov[0], end = ov[1];
        if (start < done || end < start || end > len) { /* cannot happen */
            rc = IKV_EINVAL;
            break;
        }
        if (start > done) /* bytes no rule matched */
            rc = fn(ctx, text + done, start - done);
        if (rc == 0 && end == start) {
            /* No rule matches empty text; should one ever, take one byte
             * so the loop always advances. */
            end = start + 1;
        }
        if (rc == 0)
            rc = fn(ctx, text + start, end - start);
        done = end;
    }
    pcre2_match_data_free(md);
    return rc;
}
