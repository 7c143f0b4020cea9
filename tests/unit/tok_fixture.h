/*
 * Test helpers for the tokenizers: independent readers of the real
 * vocabulary files (tok512.bin and the tokenizer arrays of a GGUF file),
 * and a straightforward re-statement of llama2.c run.c's encode() (sorted
 * vocabulary + binary search, O(n^2) pair scans) to check the fast encoder
 * against.
 */
#ifndef IKV_TEST_TOK_FIXTURE_H
#define IKV_TEST_TOK_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "model/tokenizer.h"

typedef struct tokfx_vocab {
    int n;
    char **pieces;      /* [n] */
    uint32_t *lens;     /* [n] */
    float *scores;      /* [n] */
    int32_t *types;     /* [n] or NULL */
    int bos, eos;
    int *sorted;        /* [n] ids sorted by piece bytes (for the reference) */
} tokfx_vocab;

/* Path of a file in the shared models folder, or NULL when absent. */
const char *tokfx_model_path(const char *name);

/* Reads a llama2.c tokenizer.bin (no validation beyond bounds: a test
 * helper for known-good files). Returns 0 or -1. */
int tokfx_read_llama2c(const char *path, int n_vocab, tokfx_vocab *v);

/* Reads tokenizer.ggml.{tokens,scores,token_type,bos_token_id,
 * eos_token_id} from a GGUF v2/v3 file. Returns 0 or -1. */
int tokfx_read_gguf_vocab(const char *path, tokfx_vocab *v);

void tokfx_vocab_free(tokfx_vocab *v);

/* A spec pointing into v. */
ikv_tokenizer_spec tokfx_spec(const tokfx_vocab *v, ikv_tokenizer_kind kind);

/* run.c encode() on a llama2.c vocabulary (spaces spelled ' ', byte
 * tokens at byte + 3): writes the ids, returns their count (at most max). */
int tokfx_spm_reference(const tokfx_vocab *v, const char *text, size_t len, int bos,
                        int32_t *out, int max);

/* Decodes ids[0..n) with each token's predecessor as `prev` (-1 for the
 * first) into buf; returns the length, or -1 on error/overflow. */
long tokfx_decode_all(const ikv_tokenizer *t, const int32_t *ids, int n, char *buf,
                      size_t cap);

/* Writes len bytes to a fresh file under a temporary directory; returns
 * its path (static buffer, overwritten by the next call) or NULL. */
const char *tokfx_write_temp(const char *name, const void *data, size_t len);

/* Deterministic pseudo-random numbers for generated inputs. */
uint32_t tokfx_rand(uint64_t *state);

#endif
