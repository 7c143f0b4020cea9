/*
 * Internals shared by the tokenizer files (and the tokenizer tests): the
 * tokenizer object, the piece -> id table, the pair-merge engine and the
 * GPT-2 pre-tokenizer. Not part of the engine's contract (tokenizer.h).
 */
#ifndef IKV_MODEL_TOKENIZER_INTERNAL_H
#define IKV_MODEL_TOKENIZER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "model/tokenizer.h"

/* ---- piece table: token text -> id, open addressing ---------------------- */

/* Maps byte strings stored in the tokenizer's piece arena to token ids.
 * Only tokens that text may turn into (normal and user-defined ones) are
 * entered, so a merge can never produce a control or byte token. */
typedef struct ikv_piece_map {
    int32_t *slots;     /* [mask + 1] token id, -1 when empty */
    uint32_t mask;      /* capacity - 1, capacity a power of two */
    const char *arena;  /* the tokenizer's piece bytes */
    const uint32_t *off; /* [n_vocab + 1] piece offsets into arena */
} ikv_piece_map;

/* Id of the piece a || b (b may be empty), or -1. */
int32_t ikv_piece_map_find2(const ikv_piece_map *m, const char *a, size_t alen,
                            const char *b, size_t blen);

/* ---- pair-merge engine -------------------------------------------------- */

/* Which adjacent token pairs merge, into what, and how early: SPM fills it
 * from the vocabulary (every token that is the concatenation of two tokens,
 * priority = its score), GPT-2 from the merge list (priority = -rank). */
typedef struct ikv_pair_slot {
    int32_t left, right; /* left < 0: empty slot */
    int32_t merged;
    float priority;      /* higher merges first */
} ikv_pair_slot;

typedef struct ikv_pair_table {
    ikv_pair_slot *slots; /* [mask + 1], open addressing */
    uint32_t mask;
    int n;
} ikv_pair_table;

int ikv_pair_table_init(ikv_pair_table *pt, size_t expected);
/* Adds the pair unless present (the first entry wins): 1 added, 0 already
 * there, or IKV_ENOMEM. */
int ikv_pair_table_add(ikv_pair_table *pt, int32_t left, int32_t right, int32_t merged,
                       float priority);
const ikv_pair_slot *ikv_pair_table_find(const ikv_pair_table *pt, int32_t left,
                                         int32_t right);
void ikv_pair_table_free(ikv_pair_table *pt);

/* Scratch space of ikv_bpe_merge, grown on demand, reused between calls. */
typedef struct ikv_bpe_work {
    int cap;            /* symbols the arrays hold */
    int32_t *next;      /* [cap] index of the next live symbol (n at the end) */
    int32_t *prev;      /* [cap] index of the previous live symbol, -1 first */
    struct ikv_bpe_cand *heap; /* [3 * cap] merge candidates */
} ikv_bpe_work;

void ikv_bpe_work_free(ikv_bpe_work *w);

/* Repeatedly merges the adjacent pair of highest priority (ties: the
 * leftmost) until no pair merges; syms[0..n) is rewritten in place.
 * Returns the new symbol count, or IKV_ENOMEM. O(n log n). */
int ikv_bpe_merge(int32_t *syms, int n, const ikv_pair_table *pt, ikv_bpe_work *w);

/* ---- pre-tokenizer (GPT-2 family split rules, PCRE2) -------------------- */

typedef struct ikv_pretok ikv_pretok;

/* Compiles the split rules once; err gets one line on failure. */
int ikv_pretok_create(ikv_pretok **out, ikv_pretokenizer rules, char *err,
                      size_t errlen);
void ikv_pretok_free(ikv_pretok *p);

/* Called for each piece, in order; a nonzero return stops the split and is
 * returned by ikv_pretok_split. */
typedef int (*ikv_piece_fn)(void *ctx, const char *piece, size_t len);

/* Splits text into pieces that tile it exactly: regex matches, and the
 * bytes no rule matches (invalid UTF-8) as pieces of their own. Returns 0,
 * a callback's nonzero result, or a negative error. */
int ikv_pretok_split(const ikv_pretok *p, const char *text, size_t len,
                     ikv_piece_fn fn, void *ctx);

/* ---- the tokenizer object ------------------------------------------------ */

/* How a token behaves (from GGUF token types, or guessed without them). */
enum {
    IKV_TC_NORMAL = 0,
    IKV_TC_UNKNOWN,
    IKV_TC_CONTROL,
    IKV_TC_USER,
    IKV_TC_UNUSED,
    IKV_TC_BYTE         /* SPM <0xNN> byte-fallback token */
};

struct ikv_tokenizer {
    ikv_tokenizer_kind kind;
    int n_vocab;
    int bos_id, eos_id, unk_id; /* -1 when absent */
    int add_bos;
    char *arena;            /* all pieces back to back */
    uint32_t *off;          /* [n_vocab + 1] offsets of the pieces in arena */
    uint8_t *cls;           /* [n_vocab] IKV_TC_* */
    float *scores;          /* [n_vocab] SPM merge scores; NULL for GPT2 */
    char *dec;              /* decoded bytes of every token, back to back */
    uint32_t *dec_off;      /* [n_vocab + 1] offsets into dec */
    uint32_t max_dec_len;   /* longest decoded token */
    ikv_piece_map map;      /* mergeable pieces -> id */
    int32_t byte_tok[256];  /* SPM: fallback token of each byte; GPT2: the
                               token of each byte's alphabet letter; -1 none */
    /* SPM */
    int space_escape;       /* pieces spell ' ' as U+2581 (SentencePiece) */
    int32_t dummy_tok;      /* the " " / U+2581 dummy-prefix token, or -1 */
    ikv_pair_table links;   /* adjacent character tokens that some token
                               spans: merges never cross any other pair */
    ikv_pair_table pairs;   /* which adjacent tokens merge */
    /* GPT2 */
    ikv_pretokenizer pre;
    ikv_pretok *pretok;
};

/* Kind-specific parts of create, called after the common tables are built. */
int ikv_spm_init(ikv_tokenizer *t, char *err, size_t errlen);
int ikv_gpt2_init(ikv_tokenizer *t, const ikv_tokenizer_spec *spec, char *err,
                  size_t errlen);

/* Encoders behind ikv_tokenizer_encode: append the text's tokens (without
 * BOS) to a growing array. */
typedef struct ikv_tokvec {
    int32_t *v;
    size_t n, cap;
} ikv_tokvec;
int ikv_tokvec_push(ikv_tokvec *tv, int32_t id);

int ikv_spm_encode(const ikv_tokenizer *t, const char *text, size_t len,
                   ikv_tokvec *out);
int ikv_gpt2_encode(const ikv_tokenizer *t, const char *text, size_t len,
                    ikv_tokvec *out);

/* Decoded bytes of a GPT-2 byte-level piece (alphabet letters back to
 * bytes, anything else copied). Writes at most len bytes; returns count. */
size_t ikv_gpt2_unmap(const char *piece, size_t len, char *dst);

/* Parses "<0xNN>" (exactly, hex in either case): the byte, or -1. */
int ikv_parse_byte_piece(const char *p, size_t len);

#endif /* IKV_MODEL_TOKENIZER_INTERNAL_H */
