/*
 * Writes the seed inputs of the fuzz harnesses (the start of each corpus
 * in tests/fuzz/corpus/NAME; the fuzzer grows them from there):
 *   make_seeds OUTDIR [MODELS_DIR]
 * makes OUTDIR/NAME/seed-* for every harness. Small valid files of each
 * kind (tiny models of every architecture and weight type, tokenizers,
 * traces, parameter lists) plus, when MODELS_DIR holds them, the real
 * tok512.bin. Deterministic: the same files every run.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../unit/gguf_writer.h"
#include "../unit/model_fixture.h"

static const char *out_dir;

static void write_seed(const char *harness, const char *name, const void *data, size_t size)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out_dir, harness);
    if (mkdir(path, 0777) != 0 && errno != EEXIST) {
        perror(path);
        exit(1);
    }
    snprintf(path, sizeof path, "%s/%s/seed-%s", out_dir, harness, name);
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(data, 1, size, fp) != size || fclose(fp) != 0) {
        perror(path);
        exit(1);
    }
}

/* ---- GGUF ---- */

static void gguf_seed(const char *name, const ref_options *o, void (*extra)(gguf_writer *))
{
    gguf_writer *w = ref_writer(o, NULL);
    if (extra)
        extra(w);
    size_t size;
    uint8_t *bytes = gw_bytes(w, &size);
    write_seed("gguf", name, bytes, size);
    free(bytes);
    gw_free(w);
}

/* A GPT-2 vocabulary: the 256 byte letters, then merges of them. */
static void gpt2_vocab(gguf_writer *w)
{
    enum { V = 256 + 4 };
    char *pieces[V];
    char buf[V][8];
    int n = 0, next = 256;
    for (int b = 0; b < 256; b++) {
        /* GPT-2's byte alphabet: printable Latin-1 stays, the rest maps to
         * U+0100 upwards */
        int printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
        int cp = printable ? b : next++;
        if (cp < 0x80) {
            buf[n][0] = (char)cp;
            buf[n][1] = 0;
        } else {
            buf[n][0] = (char)(0xc0 | cp >> 6);
            buf[n][1] = (char)(0x80 | (cp & 0x3f));
            buf[n][2] = 0;
        }
        pieces[n] = buf[n];
        n++;
    }
    static const char *const extra_tok[] = {"th", "the", "\xc4\xa0the", "<|end|>"};
    for (int i = 0; i < 4; i++)
        pieces[n++] = (char *)extra_tok[i];
    static const char *const merges[] = {"t h", "th e", "\xc4\xa0 the"};
    int32_t types[V];
    for (int i = 0; i < V; i++)
        types[i] = i == V - 1 ? 3 : 1;
    gw_kv_str(w, "tokenizer.ggml.model", "gpt2");
    gw_kv_str(w, "tokenizer.ggml.pre", "llama-bpe");
    gw_kv_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)pieces, V);
    gw_kv_arr_i32(w, "tokenizer.ggml.token_type", types, V);
    gw_kv_arr_str(w, "tokenizer.ggml.merges", merges, 3);
    gw_kv_u32(w, "tokenizer.ggml.bos_token_id", V - 1);
    gw_kv_u32(w, "tokenizer.ggml.eos_token_id", V - 1);
}

static void gguf_seeds(void)
{
    ref_options o = ref_default_options();
    o.dim = 8;
    o.hidden_dim = 12;
    o.n_layers = 1;
    o.n_heads = 2;
    o.n_kv_heads = 1;
    o.vocab_size = 16;
    o.context = 16;
    gguf_seed("llama-f32", &o, NULL);
    ref_options q = o;
    q.arch = "qwen2";
    q.type = GW_F16;
    q.bias = 1;
    q.tied = 1;
    gguf_seed("qwen2-f16-bias-tied", &q, NULL);
    ref_options b = o;
    b.type = GW_BF16;
    b.scaling = REF_SCALING_LLAMA3;
    b.version = 2;
    gguf_seed("llama-bf16-llama3-v2", &b, NULL);
    ref_options f = o;
    f.scaling = REF_SCALING_FREQS;
    f.alignment = 64;
    f.rope_dim = 2;
    gguf_seed("llama-freqs-align64", &f, NULL);
    ref_options m = o;
    m.arch = "mistral";
    m.type = GW_Q8_0;
    m.dim = 32;
    m.hidden_dim = 32;
    m.n_heads = 4;
    m.n_kv_heads = 2;
    m.scaling = REF_SCALING_LINEAR;
    gguf_seed("mistral-q8_0-linear", &m, NULL);
    ref_options s = o;
    s.vocab_size = 260;
    s.tokenizer = 1;
    s.dim = 4;
    s.hidden_dim = 4;
    gguf_seed("llama-spm-tokenizer", &s, NULL);
    ref_options g = o;
    g.vocab_size = 260;
    g.dim = 4;
    g.hidden_dim = 4;
    g.tied = 1;
    gguf_seed("llama-gpt2-tokenizer", &g, gpt2_vocab);
}

/* ---- llama2.c ---- */

static uint8_t *llama2c_checkpoint(int dim, int hidden, int layers, int heads, int kv_heads,
                                   int vocab, int seq, size_t *size)
{
    int shared = vocab > 0, V = shared ? vocab : -vocab;
    int hs = dim / heads, kvd = kv_heads * hs;
    size_t floats = (size_t)V * dim + (size_t)layers * dim * 2 + (size_t)layers * dim * dim * 2 +
                    (size_t)layers * dim * kvd * 2 + (size_t)layers * dim * hidden * 3 + dim +
                    (size_t)seq * hs + (shared ? 0 : (size_t)V * dim);
    *size = 28 + 4 * floats;
    uint8_t *p = malloc(*size);
    int32_t h[7] = {dim, hidden, layers, heads, kv_heads, vocab, seq};
    memcpy(p, h, sizeof h);
    uint64_t state = 42;
    for (size_t i = 0; i < floats; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        float v = (float)((double)(state >> 40) / (double)(1ull << 24) - 0.5) * 0.5f;
        memcpy(p + 28 + 4 * i, &v, 4);
    }
    return p;
}

/* A llama2.c tokenizer: <unk>, BOS, EOS, the 256 byte tokens, then pieces. */
static uint8_t *llama2c_tokenizer(int *n_vocab, size_t *size)
{
    static const char *const extra[] = {" ", "e", "t", " t", "he", " the", "on", "ce", " a"};
    int n = 3 + 256 + (int)(sizeof extra / sizeof extra[0]);
    uint8_t *p = malloc(4 + (size_t)n * (8 + 16));
    size_t pos = 0;
    int32_t max_len = 7;
    memcpy(p, &max_len, 4);
    pos = 4;
    for (int i = 0; i < n; i++) {
        char piece[16];
        if (i == 0)
            snprintf(piece, sizeof piece, "<unk>");
        else if (i == 1)
            snprintf(piece, sizeof piece, "\n<s>\n");
        else if (i == 2)
            snprintf(piece, sizeof piece, "\n</s>\n");
        else if (i < 259)
            snprintf(piece, sizeof piece, "<0x%02X>", i - 3);
        else
            snprintf(piece, sizeof piece, "%s", extra[i - 259]);
        float score = i < 259 ? 0.0f : -(float)(i - 259);
        int32_t len = (int32_t)strlen(piece);
        memcpy(p + pos, &score, 4);
        memcpy(p + pos + 4, &len, 4);
        memcpy(p + pos + 8, piece, (size_t)len);
        pos += 8 + (size_t)len;
    }
    *n_vocab = n;
    *size = pos;
    return p;
}

static void llama2c_seeds(const char *models)
{
    size_t size, tsize;
    int n_vocab;
    uint8_t *tok = llama2c_tokenizer(&n_vocab, &tsize);
    struct {
        const char *name;
        int dim, hidden, layers, heads, kv_heads, vocab, seq;
    } shapes[] = {
        {"shared", 8, 12, 1, 2, 1, 16, 8},
        {"classifier", 8, 8, 2, 2, 2, -16, 8},
        {"gqa", 16, 8, 1, 4, 2, 8, 4},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        uint8_t *m = llama2c_checkpoint(shapes[i].dim, shapes[i].hidden, shapes[i].layers,
                                        shapes[i].heads, shapes[i].kv_heads, shapes[i].vocab,
                                        shapes[i].seq, &size);
        uint8_t *in = malloc(size + 1);
        in[0] = 0;
        memcpy(in + 1, m, size);
        char name[64];
        snprintf(name, sizeof name, "model-%s", shapes[i].name);
        write_seed("llama2c", name, in, size + 1);
        free(in);
        free(m);
    }
    /* a checkpoint with the tokenizer beside it */
    uint8_t *m = llama2c_checkpoint(4, 4, 1, 2, 1, n_vocab, 4, &size);
    uint8_t *both = malloc(5 + size + tsize);
    both[0] = 2;
    uint32_t len = (uint32_t)size;
    memcpy(both + 1, &len, 4);
    memcpy(both + 5, m, size);
    memcpy(both + 5 + size, tok, tsize);
    write_seed("llama2c", "model-with-tokenizer", both, 5 + size + tsize);
    free(both);
    free(m);
    /* tokenizers alone */
    uint8_t *t = malloc(3 + tsize);
    t[0] = 1;
    t[1] = (uint8_t)(n_vocab & 0xff);
    t[2] = (uint8_t)(n_vocab >> 8);
    memcpy(t + 3, tok, tsize);
    write_seed("llama2c", "tokenizer-small", t, 3 + tsize);
    free(t);
    free(tok);
    if (models) {
        char path[4096];
        snprintf(path, sizeof path, "%s/tok512.bin", models);
        FILE *fp = fopen(path, "rb");
        if (fp) {
            uint8_t *buf = malloc(1 << 16);
            buf[0] = 1;
            buf[1] = 0;
            buf[2] = 2; /* 512 */
            size_t got = fread(buf + 3, 1, (1 << 16) - 3, fp);
            fclose(fp);
            write_seed("llama2c", "tokenizer-tok512", buf, 3 + got);
            free(buf);
        }
    }
}

/* ---- tokenizers ---- */

static const char *const english[] = {
    " ", "e", "t", "a", "o", "n", " t", "he", " the", "in", " a", "on", "er", "ce", " w", "as",
    " was", "re", "nd", " and", "it", " s", "ha", "ed", " time", " upon", " Once", "ti", "me",
    "up", "pon", "Once", "\n", "\xc3\xa9", "caf", " caf\xc3\xa9", "\xe4\xb8\xad", ".", ",",
};
static const char story[] = "Once upon a time, there was a little cat named Tom. He had a caf\xc3\xa9 "
                            "\xe4\xb8\xad\xe6\x96\x87 and 123 friends!\n\tThe end.";

/* flags, [extra header bytes], text, 0x00, then entries "score piece" split by 0x01 */
static void tok_seed(const char *harness, const char *name, const uint8_t *header, size_t hlen,
                     const char *text, const char *const *pieces, int n, const float *scores)
{
    size_t cap = hlen + strlen(text) + 1 + 70000;
    uint8_t *buf = malloc(cap);
    size_t pos = 0;
    memcpy(buf, header, hlen);
    pos = hlen;
    memcpy(buf + pos, text, strlen(text));
    pos += strlen(text);
    buf[pos++] = 0;
    for (int i = 0; i < n && pos + 80 < cap; i++) {
        float s = scores ? scores[i] : -(float)i;
        buf[pos++] = (uint8_t)(int8_t)(s < -120 ? -120 : s > 120 ? 120 : s);
        size_t len = strlen(pieces[i]);
        memcpy(buf + pos, pieces[i], len);
        pos += len;
        if (i + 1 < n)
            buf[pos++] = 1;
    }
    write_seed(harness, name, buf, pos);
    free(buf);
}

static void tokenizer_seeds(const char *models)
{
    int n = (int)(sizeof english / sizeof english[0]);
    static const struct {
        const char *name;
        uint8_t flags;
    } spm[] = {
        {"llama2c-layout", 32},
        {"bytes-bos-last", 2 | 16 | 64},
        {"escaped-bytes-unk", 1 | 2 | 8 | 16 | 64},
        {"typed-bytes", 2 | 4 | 16 | 128},
        {"no-bytes", 16 | 64},
    };
    for (size_t i = 0; i < sizeof spm / sizeof spm[0]; i++)
        tok_seed("tok_spm", spm[i].name, &spm[i].flags, 1, story, english, n, NULL);
    static const struct {
        const char *name;
        uint8_t header[2];
    } gpt2[] = {
        {"default-letters-merges", {4 | 32, 0}},
        {"llama3-letters-merges-bos", {1 | 4 | 16 | 32, 1}},
        {"qwen2-letters-merges-typed", {2 | 4 | 8 | 32, 6}},
        {"llama3-raw", {1 | 4 | 64 | 128, 0}},
        {"default-no-letters", {32, 0}},
    };
    for (size_t i = 0; i < sizeof gpt2 / sizeof gpt2[0]; i++)
        tok_seed("tok_gpt2", gpt2[i].name, gpt2[i].header, 2, story, english, n, NULL);
    /* the real tok512.bin vocabulary, in the llama2.c layout */
    if (models) {
        char path[4096];
        snprintf(path, sizeof path, "%s/tok512.bin", models);
        FILE *fp = fopen(path, "rb");
        if (!fp)
            return;
        static uint8_t file[1 << 16];
        size_t size = fread(file, 1, sizeof file, fp);
        fclose(fp);
        const char *pieces[512];
        float scores[512];
        char *texts = malloc(size);
        size_t pos = 4, used = 0;
        int count = 0;
        for (int id = 0; id < 512 && pos + 8 <= size; id++) {
            float s;
            int32_t len;
            memcpy(&s, file + pos, 4);
            memcpy(&len, file + pos + 4, 4);
            pos += 8;
            if (len < 0 || (size_t)len > size - pos)
                break;
            if (id >= 259 && len > 0 && !memchr(file + pos, 0, (size_t)len) &&
                !memchr(file + pos, 1, (size_t)len)) {
                memcpy(texts + used, file + pos, (size_t)len);
                texts[used + (size_t)len] = '\0';
                pieces[count] = texts + used;
                scores[count] = s;
                count++;
                used += (size_t)len + 1;
            }
            pos += (size_t)len;
        }
        uint8_t flags = 32;
        tok_seed("tok_spm", "tok512-llama2c-layout", &flags, 1, story, pieces, count, scores);
        free(texts);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: make_seeds OUTDIR [MODELS_DIR]\n");
        return 2;
    }
    out_dir = argv[1];
    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) {
        perror(out_dir);
        return 1;
    }
    gguf_seeds();
    llama2c_seeds(argc > 2 ? argv[2] : NULL);
    tokenizer_seeds(argc > 2 ? argv[2] : NULL);
    return 0;
}
