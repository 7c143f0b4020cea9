/*
 * What the model and tokenizer harnesses do with whatever loads: encode
 * and decode text (ids in range, decoded sizes within the advertised
 * maximum), and run a small model for a few positions (cache capacity
 * enforced).
 */
#ifndef IKV_TEST_FUZZ_ENGINE_H
#define IKV_TEST_FUZZ_ENGINE_H

#include <stddef.h>

#include "model/model.h"
#include "model/tokenizer.h"

/* Encodes text with the tokenizer's default BOS, decodes each token after
 * its predecessor, and decodes the first 4096 ids of the vocabulary. */
void ikv_fuzz_tokenizer(const ikv_tokenizer *t, const char *text, size_t len);

/* Prefill of 3 tokens and 2 decode steps in a 4-slot session, when the
 * model's weights and cache are small (a few MiB). */
void ikv_fuzz_model(const ikv_model *m);

#endif
