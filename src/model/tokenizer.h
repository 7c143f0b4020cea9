/*
 * Tokenizers of the engine: the contract between model loaders (which find
 * the vocabulary in a llama2.c tokenizer.bin or in GGUF metadata) and the
 * tokenizer implementations.
 *
 *   IKV_TOK_SPM   llama2.c / SentencePiece-style score-merge BPE
 *                 (tok512.bin, GGUF tokenizer.ggml.model = "llama"), with
 *                 byte-fallback tokens <0xNN>.
 *   IKV_TOK_GPT2  byte-level BPE with ranked merges (GGUF
 *                 tokenizer.ggml.model = "gpt2"), pre-tokenized by the
 *                 Llama-3 or Qwen2 split rules.
 */
#ifndef IKV_MODEL_TOKENIZER_H
#define IKV_MODEL_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef enum ikv_tokenizer_kind {
    IKV_TOK_SPM = 0,
    IKV_TOK_GPT2 = 1
} ikv_tokenizer_kind;

typedef enum ikv_pretokenizer {
    IKV_PRE_DEFAULT = 0, /* GPT-2's original split rules */
    IKV_PRE_LLAMA3,      /* GGUF tokenizer.ggml.pre = "llama-bpe" / "llama3" */
    IKV_PRE_QWEN2        /* GGUF tokenizer.ggml.pre = "qwen2" */
} ikv_pretokenizer;

/* Everything a tokenizer is built from. The creator copies what it keeps,
 * so the arrays may live in a mapped file or a temporary buffer. */
typedef struct ikv_tokenizer_spec {
    ikv_tokenizer_kind kind;
    int n_vocab;
    const char *const *pieces;  /* [n_vocab] token texts (not NUL-terminated) */
    const uint32_t *piece_lens; /* [n_vocab] byte lengths */
    const float *scores;        /* [n_vocab] SPM merge scores, or NULL */
    const int32_t *token_types; /* [n_vocab] GGUF token types, or NULL:
                                   1 normal, 2 unknown, 3 control,
                                   4 user defined, 5 unused, 6 byte */
    int n_merges;               /* GPT2: merges "a b", highest rank first */
    const char *const *merges;  /* [n_merges] */
    const uint32_t *merge_lens; /* [n_merges] */
    ikv_pretokenizer pre;
    int bos_id;                 /* -1 if none */
    int eos_id;                 /* -1 if none */
    int add_bos;                /* default for ikv_tokenizer_encode(add_bos < 0) */
} ikv_tokenizer_spec;

typedef struct ikv_tokenizer ikv_tokenizer; /* opaque */

/* Negative results are the IKV_E* codes of infokv/core.h. */

/* Builds a tokenizer; on failure *out is NULL, err holds one line and the
 * result is negative. SPM: whether pieces spell spaces as U+2581 (GGUF
 * "llama") or as ' ' (llama2.c) is read from the vocabulary itself; byte
 * tokens are the pieces "<0xNN>" (of type 6 when token_types is given).
 * Tokens of types 2, 3, 5, 6 and the BOS/EOS ids are never produced from
 * text: special-token spellings in the text are encoded as plain text.
 * GPT2: pieces are in the GPT-2 byte alphabet; merges naming pieces the
 * vocabulary lacks are ignored, a merge without a separating space is an
 * error; IKV_PRE_LLAMA3 first looks a whole pre-token up in the vocabulary
 * (Llama-3's ignore_merges). */
int ikv_tokenizer_create(ikv_tokenizer **out, const ikv_tokenizer_spec *spec,
                         char *err, size_t errlen);

/* Reads a llama2.c tokenizer file (int32 max_token_length, then n_vocab
 * records {float score, int32 len, bytes}); every size is checked against
 * the file before use. n_vocab comes from the model header; the file must
 * hold exactly that many records, each at most max_token_length (<= 4096)
 * bytes. llama2.c's conventions: BOS 1 (added by default), EOS 2, byte
 * tokens <0x00>..<0xFF> at ids 3..258. Errors name the file. */
int ikv_tokenizer_load_llama2c(ikv_tokenizer **out, const char *path,
                               int n_vocab, char *err, size_t errlen);

void ikv_tokenizer_free(ikv_tokenizer *t);

/* Encodes UTF-8 text (any bytes: unknown ones go through byte fallback;
 * as in SentencePiece, a literal U+2581 reads as a space in U+2581
 * vocabularies). Safe to call from several threads on one tokenizer.
 * add_bos: 1 yes, 0 no, -1 the tokenizer's default. Writes at most max
 * tokens; *n_out is the count needed (a result larger than max means the
 * output was cut). Returns 0 or a negative error (IKV_EINVAL also when the
 * vocabulary has no token for some byte and no unknown token). */
int ikv_tokenizer_encode(const ikv_tokenizer *t, const char *text, size_t len,
                         int add_bos, int32_t *out, int max, int *n_out);

/* The bytes a token stands for when printed after token `prev` (SPM drops
 * the leading space after BOS, byte tokens become their byte). Returns the
 * byte count written to buf (at most buflen, no NUL added) or negative
 * (IKV_ECAPACITY when buflen is too small, IKV_EINVAL for a bad id).
 * BOS, EOS and control tokens print as nothing; SentencePiece's U+2581
 * prints as a space; GPT-2 alphabet letters become their bytes. */
int ikv_tokenizer_decode(const ikv_tokenizer *t, int32_t prev, int32_t id,
                         char *buf, size_t buflen);

/* The most bytes ikv_tokenizer_decode writes for any token: a buffer of
 * this size always suffices. */
int ikv_tokenizer_max_token_bytes(const ikv_tokenizer *t);

int ikv_tokenizer_n_vocab(const ikv_tokenizer *t);
int ikv_tokenizer_bos(const ikv_tokenizer *t);
int ikv_tokenizer_eos(const ikv_tokenizer *t);

#endif /* IKV_MODEL_TOKENIZER_H */
