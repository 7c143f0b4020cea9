/*
 * bench_tokenizer: encode speed of the tokenizers, against baselines
 * measured in the same run.
 *
 *   spm       ikv_tokenizer_encode on tok512.bin (real vocabulary) of a
 *             TinyStories-like text of growing length;
 *   run.c     the same text through a direct re-statement of llama2.c
 *             run.c's encode() (sorted vocabulary + binary search, every
 *             pair rescanned after each merge: O(n^2)); only up to 4 KiB;
 *   gpt2      ikv_tokenizer_encode, byte-level BPE with the Llama-3 split
 *             rules, on a vocabulary of the 256 byte letters plus the most
 *             frequent pairs of the text (built here), against
 *   split     the PCRE2 pre-tokenizer alone on the same text.
 * Reported in microseconds per KiB of text and as ratios; best of 3 runs.
 * Needs the shared models folder for the SPM part (skipped otherwise).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/tokenizer.h"
#include "model/tokenizer_internal.h"
#include "../unit/tok_fixture.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char story[] =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in "
    "the park with her friend Tim. One day, they saw a big, red ball under a tree. \"Can "
    "we play with it?\" Lily asked her mom. Her mom smiled and said, \"Yes, but be "
    "careful!\" They played all day and were very happy.\n";

static char *make_text(size_t len)
{
    char *t = malloc(len + 1);
    size_t slen = strlen(story);
    for (size_t i = 0; i < len; i += slen)
        memcpy(t + i, story, len - i < slen ? len - i : slen);
    t[len] = '\0';
    return t;
}

static volatile int sink;

static double time_encode(const ikv_tokenizer *t, const char *text, size_t len, int reps)
{
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        double t0 = now();
        for (int k = 0; k < reps; k++) {
            int n = 0;
            ikv_tokenizer_encode(t, text, len, 1, NULL, 0, &n);
            sink = n;
        }
        double dt = (now() - t0) / reps;
        if (dt < best)
            best = dt;
    }
    return best;
}

static double time_reference(const tokfx_vocab *v, const char *text, size_t len, int reps,
                             int32_t *out, int max)
{
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        double t0 = now();
        for (int k = 0; k < reps; k++)
            sink = tokfx_spm_reference(v, text, len, 1, out, max);
        double dt = (now() - t0) / reps;
        if (dt < best)
            best = dt;
    }
    return best;
}

static int bench_spm(void)
{
    const char *path = tokfx_model_path("tok512.bin");
    if (!path) {
        printf("spm: tok512.bin not found (set IKV_MODELS): skipped\n");
        return 0;
    }
    ikv_tokenizer *t = NULL;
    char err[512];
    if (ikv_tokenizer_load_llama2c(&t, path, 512, err, sizeof err) < 0) {
        fprintf(stderr, "bench_tokenizer: %s\n", err);
        return 1;
    }
    tokfx_vocab v;
    if (tokfx_read_llama2c(path, 512, &v) < 0) {
        fprintf(stderr, "bench_tokenizer: cannot read %s\n", path);
        return 1;
    }
    printf("SPM encode, tok512.bin; us per KiB of text\n");
    printf("%9s %8s | %10s %10s %8s\n", "bytes", "tokens", "spm", "run.c", "ratio");
    static const size_t sizes[] = {1024, 4096, 16384, 262144, 1048576};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t len = sizes[s];
        char *text = make_text(len);
        int n = 0;
        ikv_tokenizer_encode(t, text, len, 1, NULL, 0, &n);
        int reps = len <= 4096 ? 50 : len <= 16384 ? 10 : 2;
        double ours = time_encode(t, text, len, reps);
        double per = 1024.0 / (double)len * 1e6;
        if (len <= 4096) {
            int32_t *a = malloc((size_t)n * sizeof *a), *b = malloc((len + 2) * sizeof *b);
            int m = 0;
            ikv_tokenizer_encode(t, text, len, 1, a, n, &m);
            int rm = tokfx_spm_reference(&v, text, len, 1, b, (int)len + 2);
            if (rm != n || memcmp(a, b, (size_t)n * sizeof *a) != 0) {
                fprintf(stderr, "bench_tokenizer: ids differ from run.c at %zu bytes\n", len);
                return 1;
            }
            double ref = time_reference(&v, text, len, len <= 4096 ? 3 : 1, b, (int)len + 2);
            printf("%9zu %8d | %10.1f %10.1f %7.1fx\n", len, n, ours * per, ref * per, ref / ours);
            free(a);
            free(b);
        } else {
            printf("%9zu %8d | %10.1f %10s %8s\n", len, n, ours * per, "-", "-");
        }
        free(text);
    }
    tokfx_vocab_free(&v);
    ikv_tokenizer_free(t);
    return 0;
}

/* ---- GPT-2 ------------------------------------------------------------------ */

static int count_piece(void *ctx, const char *p, size_t len)
{
    (void)p;
    *(size_t *)ctx += len;
    return 0;
}

/* A byte-level vocabulary: the 256 letters (ASCII text maps to itself
 * except space -> U+0120 and newline -> U+010A) and merges of a few common
 * English fragments, each spelled in that alphabet. */
static int bench_gpt2(void)
{
    static const char *const frags[] = {
        "\xc4\xa0t", "he", "\xc4\xa0the", "in", "ing", "\xc4\xa0" "a", "an", "nd", "\xc4\xa0" "and",
        "er", "\xc4\xa0w", "ay", "\xc4\xa0p", "pl", "\xc4\xa0pl", "\xc4\xa0play", "ed",
        "\xc4\xa0s", "ou", "\xc4\xa0L", "il", "ily", "\xc4\xa0Lily"};
    static const char *const merges[] = {
        "\xc4\xa0 t", "h e", "\xc4\xa0t he", "i n", "in g", "\xc4\xa0 a", "a n", "n d",
        "\xc4\xa0" "a nd", "e r", "\xc4\xa0 w", "a y", "\xc4\xa0 p", "p l", "\xc4\xa0 pl",
        "\xc4\xa0pl ay", "e d", "\xc4\xa0 s", "o u", "\xc4\xa0 L", "i l", "il y",
        "\xc4\xa0L ily"};
    enum { NF = sizeof frags / sizeof frags[0], NV = 256 + NF };
    static char letters[256][2];
    const char *pieces[NV];
    uint32_t lens[NV], mlens[NF];
    for (unsigned b = 0; b < 256; b++) {
        /* the alphabet: printable bytes are themselves, the rest U+0100.. */
        unsigned cp = b, next = 256;
        for (unsigned x = 0; x <= b; x++) {
            int printable = (x >= 33 && x <= 126) || (x >= 161 && x <= 172) || x >= 174;
            if (x == b && !printable)
                cp = next;
            if (!printable)
                next++;
        }
        if (cp < 0x80) {
            letters[b][0] = (char)cp;
            lens[b] = 1;
        } else {
            letters[b][0] = (char)(0xc0 | (cp >> 6));
            letters[b][1] = (char)(0x80 | (cp & 0x3f));
            lens[b] = 2;
        }
        pieces[b] = letters[b];
    }
    for (int i = 0; i < NF; i++) {
        pieces[256 + i] = frags[i];
        lens[256 + i] = (uint32_t)strlen(frags[i]);
        mlens[i] = (uint32_t)strlen(merges[i]);
    }
    ikv_tokenizer_spec spec = {
        .kind = IKV_TOK_GPT2, .n_vocab = NV, .pieces = pieces, .piece_lens = lens,
        .n_merges = NF, .merges = merges, .merge_lens = mlens, .pre = IKV_PRE_LLAMA3,
        .bos_id = -1, .eos_id = -1,
    };
    ikv_tokenizer *t = NULL;
    ikv_pretok *p = NULL;
    char err[256];
    if (ikv_tokenizer_create(&t, &spec, err, sizeof err) < 0 ||
        ikv_pretok_create(&p, IKV_PRE_LLAMA3, err, sizeof err) < 0) {
        fprintf(stderr, "bench_tokenizer: %s\n", err);
        return 1;
    }
    printf("\nGPT-2 byte-level BPE (Llama-3 split rules); us per KiB of text\n");
    printf("%9s %8s | %10s %10s %8s\n", "bytes", "tokens", "gpt2", "split", "ratio");
    static const size_t sizes[] = {4096, 1048576};
    for (size_t s = 0; s < 2; s++) {
        size_t len = sizes[s];
        char *text = make_text(len);
        int n = 0;
        ikv_tokenizer_encode(t, text, len, 0, NULL, 0, &n);
        int reps = len <= 4096 ? 100 : 3;
        double enc = time_encode(t, text, len, reps);
        double best = 1e30;
        for (int r = 0; r < 3; r++) {
            double t0 = now();
            for (int k = 0; k < reps; k++) {
                size_t total = 0;
                ikv_pretok_split(p, text, len, count_piece, &total);
                sink = (int)total;
            }
            double dt = (now() - t0) / reps;
            if (dt < best)
                best = dt;
        }
        double per = 1024.0 / (double)len * 1e6;
        printf("%9zu %8d | %10.1f %10.1f %7.2fx\n", len, n, enc * per, best * per, enc / best);
        free(text);
    }
    printf("ratio: encode time / split time (the cost of merging on top of the regex).\n");
    ikv_pretok_free(p);
    ikv_tokenizer_free(t);
    return 0;
}

int main(void)
{
    /* find the shared models beside the source tree under `make bench` */
    setenv("top_srcdir", IKV_SRCDIR, 0);
    int rc = bench_spm();
    if (rc == 0)
        rc = bench_gpt2();
    return rc;
}
