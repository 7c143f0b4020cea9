/*
 * GPT-2 byte-level BPE: the pre-tokenizer splits of the three rule sets
 * against pieces written out by hand, a small vocabulary and merge list
 * whose merges are worked out by hand, byte round trips, bad merge lists.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "infokv/core.h"
#include "model/tokenizer.h"
#include "model/tokenizer_internal.h"
#include "runner.h"
#include "tok_fixture.h"

#define ARRAY_LEN(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- pre-tokenizer --------------------------------------------------------- */

typedef struct split_out {
    char text[64][64];
    size_t len[64];
    int n;
    size_t total;
} split_out;

static int collect(void *ctx, const char *p, size_t len)
{
    split_out *ps = ctx;
    if (ps->n < 64 && len < 64) {
        memcpy(ps->text[ps->n], p, len);
        ps->len[ps->n] = len;
    }
    ps->n++;
    ps->total += len;
    return 0;
}

/* want: the expected pieces, NULL-terminated. */
static void expect_split(ikv_pretokenizer rules, const char *text, const char *const *want)
{
    ikv_pretok *p = NULL;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(ikv_pretok_create(&p, rules, err, sizeof err), 0);
    split_out got;
    memset(&got, 0, sizeof got);
    CU_ASSERT_EQUAL(ikv_pretok_split(p, text, strlen(text), collect, &got), 0);
    int nwant = 0;
    while (want[nwant])
        nwant++;
    int same = got.n == nwant;
    for (int i = 0; same && i < nwant; i++)
        same = got.len[i] == strlen(want[i]) && memcmp(got.text[i], want[i], got.len[i]) == 0;
    CU_ASSERT(same);
    if (!same) {
        printf("\n    rules %d on \"%s\" gave:", (int)rules, text);
        for (int i = 0; i < got.n && i < 64; i++)
            printf(" [%.*s]", (int)got.len[i], got.text[i]);
    }
    ikv_pretok_free(p);
}

#define SPLIT(rules, text, ...) expect_split(rules, text, (const char *const[]){__VA_ARGS__, NULL})

/* Pieces follow from the rules by hand (first alternative that matches at
 * the current position, greedy, \s+(?!\S) leaving the last space of a run
 * to the next word); cross-checked with Python's `regex` module. */
static void test_split_gpt2(void)
{
    const ikv_pretokenizer R = IKV_PRE_DEFAULT;
    /* contractions are lower case only: 'M is punctuation then a letter */
    SPLIT(R, "I'M here, they'll've it's", "I", "'", "M", " here", ",", " they", "'ll", "'ve",
          " it", "'s");
    /* digits: any run, with one leading space */
    SPLIT(R, "12345 6789x", "12345", " 6789", "x");
    /* newlines: each a piece when a word follows */
    SPLIT(R, "a\n\nb \n c\r\n", "a", "\n", "\n", "b", " \n", " c", "\r\n");
    /* trailing and leading spaces */
    SPLIT(R, "end   ", "end", "   ");
    SPLIT(R, "  lead", " ", " lead");
    /* non-ASCII letters are letters */
    SPLIT(R, "h\xc3\xa9llo w\xc3\xb6rld \xe4\xb8\xad\xe6\x96\x87 !hey", "h\xc3\xa9llo",
          " w\xc3\xb6rld", " \xe4\xb8\xad\xe6\x96\x87", " !", "hey");
    SPLIT(R, "$$$ ...\n\nok", "$$$", " ...", "\n", "\n", "ok");
    /* U+00A0 is Unicode white space (UCP) */
    SPLIT(R, "x \xc2\xa0y", "x", " ", "\xc2\xa0", "y");
}

static void test_split_llama3(void)
{
    const ikv_pretokenizer R = IKV_PRE_LLAMA3;
    /* contractions in any case */
    SPLIT(R, "I'M here, they'll've it's", "I", "'M", " here", ",", " they", "'ll", "'ve", " it",
          "'s");
    /* digits in groups of at most three, never with a space */
    SPLIT(R, "12345 6789x", "123", "45", " ", "678", "9", "x");
    /* newlines stay together; punctuation takes the newlines after it */
    SPLIT(R, "a\n\nb \n c\r\n", "a", "\n\n", "b", " \n", " c", "\r\n");
    SPLIT(R, "$$$ ...\n\nok", "$$$", " ...\n\n", "ok");
    SPLIT(R, "end   ", "end", "   ");
    SPLIT(R, "  lead", " ", " lead");
    /* one non-letter may lead a word */
    SPLIT(R, "h\xc3\xa9llo w\xc3\xb6rld \xe4\xb8\xad\xe6\x96\x87 !hey", "h\xc3\xa9llo",
          " w\xc3\xb6rld", " \xe4\xb8\xad\xe6\x96\x87", " !", "hey");
    SPLIT(R, "x \xc2\xa0y", "x", " ", "\xc2\xa0y");
    SPLIT(R, "(hi)", "(hi", ")");
}

static void test_split_qwen2(void)
{
    const ikv_pretokenizer R = IKV_PRE_QWEN2;
    SPLIT(R, "I'M here, they'll've it's", "I", "'M", " here", ",", " they", "'ll", "'ve", " it",
          "'s");
    /* one digit per piece */
    SPLIT(R, "12345 6789x", "1", "2", "3", "4", "5", " ", "6", "7", "8", "9", "x");
    SPLIT(R, "a\n\nb \n c\r\n", "a", "\n\n", "b", " \n", " c", "\r\n");
    SPLIT(R, "end   ", "end", "   ");
    SPLIT(R, "h\xc3\xa9llo w\xc3\xb6rld", "h\xc3\xa9llo", " w\xc3\xb6rld");
}

static void test_split_invalid_utf8(void)
{
    /* bytes no rule matches become pieces of their own; nothing is lost */
    SPLIT(IKV_PRE_DEFAULT, "ab\xff" "cd", "ab", "\xff", "cd");
    SPLIT(IKV_PRE_LLAMA3, "ab \xc3(x", "ab", " ", "\xc3", "(x");
    SPLIT(IKV_PRE_QWEN2, "\x80\x80" "1", "\x80\x80", "1");
    /* arbitrary bytes: the pieces always tile the text */
    uint64_t rng = 5;
    char buf[300];
    for (int rules = 0; rules < 3; rules++) {
        ikv_pretok *p = NULL;
        char err[128];
        CU_ASSERT_EQUAL_FATAL(ikv_pretok_create(&p, (ikv_pretokenizer)rules, err, sizeof err), 0);
        int bad = 0;
        for (int k = 0; k < 300; k++) {
            size_t len = tokfx_rand(&rng) % sizeof buf;
            for (size_t i = 0; i < len; i++)
                buf[i] = (char)tokfx_rand(&rng);
            split_out got;
            memset(&got, 0, sizeof got);
            if (ikv_pretok_split(p, buf, len, collect, &got) != 0 || got.total != len)
                bad++;
        }
        CU_ASSERT_EQUAL(bad, 0);
        ikv_pretok_free(p);
    }
}

/* ---- a small byte-level vocabulary ----------------------------------------- */

/* ids 0..255: the letters of bytes 0..255; then: */
static const char *const extra[] = {
    "\xc4\xa0t",               /* 256 "Ġt" (Ġ = U+0120 stands for ' ') */
    "he",                      /* 257 */
    "\xc4\xa0the",             /* 258 " the" */
    "in",                      /* 259 */
    "ing",                     /* 260 */
    "\xc4\xa0s",               /* 261 " s" */
    "ab",                      /* 262 */
    "bc",                      /* 263 */
    "abc",                     /* 264 */
    "<|endoftext|>",           /* 265 control, EOS */
    "<|begin|>",               /* 266 control, BOS */
    "xyz",                     /* 267 no merge builds it */
    "<tool>",                  /* 268 user defined */
    "\xc4\x8a\xc4\x8a",        /* 269 "\n\n" (Ċ = U+010A stands for '\n') */
};
#define GPT2_N (256 + ARRAY_LEN(extra))

static const char *const merge_list[] = {
    "\xc4\xa0 t",       /* rank 0: Ġ t */
    "h e",              /* 1 */
    "\xc4\xa0t he",     /* 2 */
    "i n",              /* 3 */
    "in g",             /* 4 */
    "b c",              /* 5: before "a b" */
    "a b",              /* 6 */
    "a bc",             /* 7 */
    "\xc4\xa0 s",       /* 8 */
    "x y",              /* 9: "xy" is not a token: never applies */
    "\xc4\x8a \xc4\x8a", /* 10 */
    "h e",              /* 11: a duplicate, rank 1 counts */
};

typedef struct gpt2_vocab {
    char letters[256][3];
    const char *pieces[GPT2_N];
    uint32_t lens[GPT2_N];
    int32_t types[GPT2_N];
    uint32_t merge_lens[ARRAY_LEN(merge_list)];
} gpt2_vocab;

/* The GPT-2 alphabet, written out from its definition: printable bytes
 * '!'..'~', 0xA1..0xAC, 0xAE..0xFF are themselves; the others, in byte
 * order, are U+0100, U+0101, ... */
static unsigned letter_of(unsigned b)
{
    unsigned next = 256;
    for (unsigned x = 0; x < 256; x++) {
        int printable = (x >= '!' && x <= '~') || (x >= 0xa1 && x <= 0xac) || (x >= 0xae);
        if (x == b)
            return printable ? x : next;
        if (!printable)
            next++;
    }
    return 0;
}

static ikv_tokenizer *gpt2_tokenizer(ikv_pretokenizer pre, int add_bos)
{
    static gpt2_vocab v;
    memset(&v, 0, sizeof v);
    for (unsigned b = 0; b < 256; b++) {
        unsigned cp = letter_of(b);
        if (cp < 0x80) {
            v.letters[b][0] = (char)cp;
            v.lens[b] = 1;
        } else {
            v.letters[b][0] = (char)(0xc0 | (cp >> 6));
            v.letters[b][1] = (char)(0x80 | (cp & 0x3f));
            v.lens[b] = 2;
        }
        v.pieces[b] = v.letters[b];
        v.types[b] = 1;
    }
    for (int i = 0; i < ARRAY_LEN(extra); i++) {
        v.pieces[256 + i] = extra[i];
        v.lens[256 + i] = (uint32_t)strlen(extra[i]);
        v.types[256 + i] = 1;
    }
    v.types[265] = v.types[266] = 3;
    v.types[268] = 4;
    for (int i = 0; i < ARRAY_LEN(merge_list); i++)
        v.merge_lens[i] = (uint32_t)strlen(merge_list[i]);
    ikv_tokenizer_spec spec = {
        .kind = IKV_TOK_GPT2,
        .n_vocab = GPT2_N,
        .pieces = v.pieces,
        .piece_lens = v.lens,
        .token_types = v.types,
        .n_merges = ARRAY_LEN(merge_list),
        .merges = merge_list,
        .merge_lens = v.merge_lens,
        .pre = pre,
        .bos_id = 266,
        .eos_id = 265,
        .add_bos = add_bos,
    };
    ikv_tokenizer *t = NULL;
    char err[256];
    int rc = ikv_tokenizer_create(&t, &spec, err, sizeof err);
    if (rc)
        printf("\n    create: %s\n", err);
    CU_ASSERT_EQUAL(rc, 0);
    return t;
}

static void expect_ids(const ikv_tokenizer *t, const char *text, int bos, const int32_t *want,
                       int nwant)
{
    int32_t got[128];
    int n = -1;
    CU_ASSERT_EQUAL(ikv_tokenizer_encode(t, text, strlen(text), bos, got, 128, &n), 0);
    int same = n == nwant && (n == 0 || memcmp(got, want, (size_t)n * sizeof *got) == 0);
    CU_ASSERT(same);
    if (!same) {
        printf("\n    \"%s\": got", text);
        for (int i = 0; i < n && i < 128; i++)
            printf(" %d", got[i]);
    }
}

#define IDS(...) (const int32_t[]){__VA_ARGS__}, ARRAY_LEN(((const int32_t[]){__VA_ARGS__}))

static void test_gpt2_merges(void)
{
    for (int pre = 0; pre < 3; pre++) {
        ikv_tokenizer *t = gpt2_tokenizer((ikv_pretokenizer)pre, 0);
        if (!t)
            return;
        /* t h e: only "h e" (1) applies; "t he" is not a merge */
        expect_ids(t, "the", 0, IDS('t', 257));
        /* Ġ t h e: "Ġ t" (0), then "h e" (1), then "Ġt he" (2) */
        expect_ids(t, " the", 0, IDS(258));
        /* merges never cross pieces: "the" and " the" */
        expect_ids(t, "the the", 0, IDS('t', 257, 258));
        /* a b c: "b c" (5) ranks before "a b" (6), then "a bc" (7) */
        expect_ids(t, "abc", 0, IDS(264));
        /* Ġ s i n g: "i n" (3), "in g" (4), "Ġ s" (8) */
        expect_ids(t, " sing", 0, IDS(261, 260));
        /* "a b" applies when "b c" cannot */
        expect_ids(t, "abd", 0, IDS(262, 'd'));
        /* bytes outside ASCII are their letters' tokens: é = c3 a9 */
        expect_ids(t, "\xc3\xa9", 0, IDS(0xc3, 0xa9));
        /* BOS on request */
        expect_ids(t, "the", 1, IDS(266, 't', 257));
        expect_ids(t, "", 1, IDS(266));
        expect_ids(t, "", 0, NULL, 0);
        ikv_tokenizer_free(t);
    }
}

static void test_gpt2_rules_matter(void)
{
    ikv_tokenizer *d = gpt2_tokenizer(IKV_PRE_DEFAULT, 0);
    ikv_tokenizer *l = gpt2_tokenizer(IKV_PRE_LLAMA3, 1);
    ikv_tokenizer *q = gpt2_tokenizer(IKV_PRE_QWEN2, 0);
    if (!d || !l || !q)
        goto out;
    /* "xyz" has no merge path: only Llama-3 takes a whole piece found in the
     * vocabulary as one token */
    expect_ids(d, "xyz", 0, IDS('x', 'y', 'z'));
    expect_ids(q, "xyz", 0, IDS('x', 'y', 'z'));
    expect_ids(l, "xyz", 0, IDS(267));
    expect_ids(l, "xyz", -1, IDS(266, 267)); /* this one adds BOS by default */
    /* "\n\n": one Llama-3/Qwen2 piece (merged by rank 10), two GPT-2 pieces */
    expect_ids(d, "a\n\nb", 0, IDS('a', '\n', '\n', 'b'));
    expect_ids(q, "a\n\nb", 0, IDS('a', 269, 'b'));
    /* special-token text is plain text, never the control token */
    expect_ids(d, "<|endoftext|>", 0,
               IDS('<', '|', 'e', 'n', 'd', 'o', 'f', 't', 'e', 'x', 't', '|', '>'));
    expect_ids(d, "<tool>", 0, IDS('<', 't', 'o', 'o', 'l', '>'));
out:
    ikv_tokenizer_free(d);
    ikv_tokenizer_free(l);
    ikv_tokenizer_free(q);
}

static void test_gpt2_decode(void)
{
    ikv_tokenizer *t = gpt2_tokenizer(IKV_PRE_LLAMA3, 1);
    if (!t)
        return;
    char buf[32];
    CU_ASSERT_EQUAL(ikv_tokenizer_decode(t, 266, 258, buf, sizeof buf), 4);
    CU_ASSERT(memcmp(buf, " the", 4) == 0); /* no SPM space stripping */
    CU_ASSERT_EQUAL(ikv_tokenizer_decode(t, -1, 269, buf, sizeof buf), 2);
    CU_ASSERT(memcmp(buf, "\n\n", 2) == 0);
    CU_ASSERT_EQUAL(ikv_tokenizer_decode(t, -1, 0xad, buf, sizeof buf), 1);
    CU_ASSERT_EQUAL((unsigned char)buf[0], 0xad);
    CU_ASSERT_EQUAL(ikv_tokenizer_decode(t, -1, 0, buf, sizeof buf), 1);
    CU_ASSERT_EQUAL(buf[0], '\0');
    CU_ASSERT_EQUAL(ikv_tokenizer_decode(t, -1, 265, buf, sizeof buf), 0); /* control */
    CU_ASSERT_EQUAL(ikv_tokenizer_decode(t, -1, 266, buf, sizeof buf), 0);
    CU_ASSERT_EQUAL(ikv_tokenizer_decode(t, -1, 268, buf, sizeof buf), 6); /* user: raw */
    CU_ASSERT(memcmp(buf, "<tool>", 6) == 0);
    CU_ASSERT(ikv_tokenizer_decode(t, -1, GPT2_N, buf, sizeof buf) < 0);
    CU_ASSERT_EQUAL(ikv_tokenizer_decode(t, -1, 258, buf, 3), IKV_ECAPACITY);
    ikv_tokenizer_free(t);
}

static void test_gpt2_roundtrip(void)
{
    uint64_t rng = 11;
    char buf[400], back[400];
    static const char *const atoms[] = {"the", " the", " sing", "abc", "\n\n", "  ", "123",
                                        "\xc3\xa9", "\xe4\xb8\xad", "'s", "'LL", "\xff", "\r\n",
                                        "<|endoftext|>", "xyz", "!", "\xc2\xa0"};
    for (int pre = 0; pre < 3; pre++) {
        ikv_tokenizer *t = gpt2_tokenizer((ikv_pretokenizer)pre, 1);
        if (!t)
            return;
        int bad = 0;
        for (int k = 0; k < 400; k++) {
            size_t len = 0;
            if (k % 2) {
                len = tokfx_rand(&rng) % 200;
                for (size_t i = 0; i < len; i++)
                    buf[i] = (char)tokfx_rand(&rng);
            } else {
                for (int a = (int)(tokfx_rand(&rng) % 30); a > 0; a--) {
                    const char *s = atoms[tokfx_rand(&rng) % ARRAY_LEN(atoms)];
                    memcpy(buf + len, s, strlen(s));
                    len += strlen(s);
                }
            }
            int32_t ids[512];
            int n = 0;
            long blen = -1;
            if (ikv_tokenizer_encode(t, buf, len, -1, ids, 512, &n) == 0 && n <= 512)
                blen = tokfx_decode_all(t, ids, n, back, sizeof back);
            if (blen != (long)len || memcmp(back, buf, len) != 0)
                bad++;
        }
        CU_ASSERT_EQUAL(bad, 0);
        ikv_tokenizer_free(t);
    }
}

/* A long run of one class must not trip PCRE2 limits or the merge loop. */
static void test_gpt2_long_runs(void)
{
    ikv_tokenizer *t = gpt2_tokenizer(IKV_PRE_LLAMA3, 0);
    if (!t)
        return;
    size_t len = 200000;
    char *text = malloc(len);
    const char fills[] = {' ', 'a', '7', '\n'};
    for (size_t f = 0; f < sizeof fills; f++) {
        memset(text, fills[f], len);
        int n = -1;
        CU_ASSERT_EQUAL(ikv_tokenizer_encode(t, text, len, 0, NULL, 0, &n), 0);
        CU_ASSERT(n > 0);
    }
    free(text);
    ikv_tokenizer_free(t);
}

static void test_gpt2_bad_merges(void)
{
    static const char *const pieces[] = {"a", "b", "ab"};
    static const uint32_t lens[] = {1, 1, 2};
    static const char *const bad[] = {"ab", " ab", "ab ", "", "a  "};
    for (int k = 0; k < ARRAY_LEN(bad); k++) {
        uint32_t mlen = (uint32_t)strlen(bad[k]);
        ikv_tokenizer_spec spec = {
            .kind = IKV_TOK_GPT2, .n_vocab = 3, .pieces = pieces, .piece_lens = lens,
            .n_merges = 1, .merges = &bad[k], .merge_lens = &mlen,
            .bos_id = -1, .eos_id = -1,
        };
        ikv_tokenizer *t = (ikv_tokenizer *)&spec;
        char err[256] = "";
        int rc = ikv_tokenizer_create(&t, &spec, err, sizeof err);
        /* "a  " splits as "a" and " ": a pair of pieces, one unknown, so
         * the merge is skipped rather than rejected */
        if (k == 4) {
            CU_ASSERT_EQUAL(rc, 0);
            ikv_tokenizer_free(t);
            continue;
        }
        CU_ASSERT(rc < 0 && t == NULL && err[0] && !strchr(err, '\n'));
    }
}

/* ---- random merge lists against a naive merger -------------------------- */

/* Vocabulary over the letters a, b, c and Ġ (space): the 256 byte letters,
 * then tokens made by merging two random earlier tokens; merge k makes
 * token 256 + k unless the string exists already. */
#define RND_MERGES 60
typedef struct rnd_vocab {
    char text[256 + RND_MERGES][64];
    const char *pieces[256 + RND_MERGES];
    uint32_t lens[256 + RND_MERGES];
    char mtext[RND_MERGES][130];
    const char *merges[RND_MERGES];
    uint32_t mlens[RND_MERGES];
    int n, nm;
} rnd_vocab;

static int rnd_find(const rnd_vocab *v, const char *s, size_t len)
{
    for (int i = 0; i < v->n; i++)
        if (v->lens[i] == len && memcmp(v->text[i], s, len) == 0)
            return i;
    return -1;
}

static void rnd_build(rnd_vocab *v, uint64_t *rng)
{
    memset(v, 0, sizeof *v);
    for (unsigned b = 0; b < 256; b++) {
        unsigned cp = letter_of(b);
        if (cp < 0x80) {
            v->text[b][0] = (char)cp;
            v->lens[b] = 1;
        } else {
            v->text[b][0] = (char)(0xc0 | (cp >> 6));
            v->text[b][1] = (char)(0x80 | (cp & 0x3f));
            v->lens[b] = 2;
        }
    }
    v->n = 256;
    /* candidates for merging: the letters of a, b, c, space, then new tokens */
    int pool[256 + RND_MERGES] = {'a', 'b', 'c', ' '};
    int npool = 4;
    while (v->nm < RND_MERGES) {
        int l = pool[tokfx_rand(rng) % npool], r = pool[tokfx_rand(rng) % npool];
        if (v->lens[l] + v->lens[r] >= 60)
            continue;
        char *m = v->mtext[v->nm];
        memcpy(m, v->text[l], v->lens[l]);
        m[v->lens[l]] = ' ';
        memcpy(m + v->lens[l] + 1, v->text[r], v->lens[r]);
        v->mlens[v->nm] = v->lens[l] + 1 + v->lens[r];
        v->merges[v->nm] = m;
        v->nm++;
        char cat[130];
        memcpy(cat, v->text[l], v->lens[l]);
        memcpy(cat + v->lens[l], v->text[r], v->lens[r]);
        if (rnd_find(v, cat, v->lens[l] + v->lens[r]) < 0) {
            memcpy(v->text[v->n], cat, v->lens[l] + v->lens[r]);
            v->lens[v->n] = v->lens[l] + v->lens[r];
            pool[npool++] = v->n++;
        }
    }
    for (int i = 0; i < v->n; i++)
        v->pieces[i] = v->text[i];
}

/* Rank of merging tokens l and r: the first merge "L R" naming them, or -1. */
static int rnd_rank(const rnd_vocab *v, int l, int r)
{
    for (int k = 0; k < v->nm; k++)
        if (v->mlens[k] == v->lens[l] + 1 + v->lens[r] &&
            memcmp(v->merges[k], v->text[l], v->lens[l]) == 0 &&
            v->merges[k][v->lens[l]] == ' ' &&
            memcmp(v->merges[k] + v->lens[l] + 1, v->text[r], v->lens[r]) == 0)
            return k;
    return -1;
}

typedef struct naive_ctx {
    const rnd_vocab *v;
    int whole_first;       /* Llama-3: a piece in the vocabulary is one token */
    int32_t out[1024];
    int n;
} naive_ctx;

/* Per piece: the lowest-rank adjacent pair merges, leftmost first, until
 * none is left; scans everything after every merge. */
static int naive_piece(void *ctx, const char *p, size_t len)
{
    naive_ctx *c = ctx;
    int sym[256], n = 0;
    char letters[512];
    size_t ll = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned b = (unsigned char)p[i];
        sym[n++] = (int)b;
        memcpy(letters + ll, c->v->text[b], c->v->lens[b]);
        ll += c->v->lens[b];
    }
    int whole = c->whole_first ? rnd_find(c->v, letters, ll) : -1;
    if (whole >= 0) {
        c->out[c->n++] = whole;
        return 0;
    }
    for (;;) {
        int best = -1, at = -1;
        for (int i = 0; i + 1 < n; i++) {
            int k = rnd_rank(c->v, sym[i], sym[i + 1]);
            if (k >= 0 && (best < 0 || k < best)) {
                best = k;
                at = i;
            }
        }
        if (best < 0)
            break;
        char cat[130];
        size_t a = c->v->lens[sym[at]], b = c->v->lens[sym[at + 1]];
        memcpy(cat, c->v->text[sym[at]], a);
        memcpy(cat + a, c->v->text[sym[at + 1]], b);
        sym[at] = rnd_find(c->v, cat, a + b);
        memmove(sym + at + 1, sym + at + 2, (size_t)(n - at - 2) * sizeof *sym);
        n--;
    }
    for (int i = 0; i < n; i++)
        c->out[c->n++] = sym[i];
    return 0;
}

static void test_gpt2_random_merge_lists(void)
{
    uint64_t rng = 2024;
    static rnd_vocab v;
    int differ = 0, total = 0;
    for (int trial = 0; trial < 20; trial++) {
        rnd_build(&v, &rng);
        ikv_pretokenizer pre = (ikv_pretokenizer)(trial % 3);
        ikv_tokenizer_spec spec = {
            .kind = IKV_TOK_GPT2, .n_vocab = v.n, .pieces = v.pieces, .piece_lens = v.lens,
            .n_merges = v.nm, .merges = v.merges, .merge_lens = v.mlens, .pre = pre,
            .bos_id = -1, .eos_id = -1,
        };
        ikv_tokenizer *t = NULL;
        char err[256];
        CU_ASSERT_EQUAL_FATAL(ikv_tokenizer_create(&t, &spec, err, sizeof err), 0);
        ikv_pretok *p = NULL;
        CU_ASSERT_EQUAL_FATAL(ikv_pretok_create(&p, pre, err, sizeof err), 0);
        for (int k = 0; k < 50; k++) {
            char text[200];
            size_t len = tokfx_rand(&rng) % sizeof text;
            for (size_t i = 0; i < len; i++)
                text[i] = "aaabbc  "[tokfx_rand(&rng) % 8];
            static naive_ctx c;
            c.v = &v;
            c.whole_first = pre == IKV_PRE_LLAMA3;
            c.n = 0;
            ikv_pretok_split(p, text, len, naive_piece, &c);
            int32_t got[256];
            int n = -1;
            CU_ASSERT_EQUAL(ikv_tokenizer_encode(t, text, len, 0, got, 256, &n), 0);
            total++;
            if (n != c.n || memcmp(got, c.out, (size_t)(n > 0 ? n : 0) * sizeof *got) != 0) {
                if (differ++ < 3)
                    printf("\n    rules %d differ from the naive merger on \"%.*s\"", (int)pre,
                           (int)len, text);
            }
        }
        ikv_pretok_free(p);
        ikv_tokenizer_free(t);
    }
    CU_ASSERT_EQUAL(differ, 0);
    CU_ASSERT_EQUAL(total, 1000);
}

static void add_suites(void)
{
    static const ikv_test_case split[] = {
        {"GPT-2 split rules", test_split_gpt2},
        {"Llama-3 split rules", test_split_llama3},
        {"Qwen2 split rules", test_split_qwen2},
        {"invalid UTF-8 and arbitrary bytes", test_split_invalid_utf8},
        {NULL, NULL},
    };
    static const ikv_test_case bpe[] = {
        {"hand-computed merges", test_gpt2_merges},
        {"pre-tokenizer and specials change ids", test_gpt2_rules_matter},
        {"decode", test_gpt2_decode},
        {"round trips of arbitrary bytes", test_gpt2_roundtrip},
        {"long runs", test_gpt2_long_runs},
        {"malformed merges rejected", test_gpt2_bad_merges},
        {"random merge lists vs a naive merger", test_gpt2_random_merge_lists},
        {NULL, NULL},
    };
    ikv_test_suite("pretokenizer", split);
    ikv_test_suite("gpt2-bpe", bpe);
}

int main(int argc, char **argv)
{
    return ikv_test_main(argc, argv, add_suites);
}
