/* Engine checks shared by the model and tokenizer harnesses. */
#include "config.h"

#include <stdlib.h>

#include "fuzz_engine.h"
#include "fuzz_util.h"
#include "model/session.h"

/* Encodes a text and decodes every token of it and of the vocabulary. */
void ikv_fuzz_tokenizer(const ikv_tokenizer *t, const char *text, size_t len)
{
    int n_vocab = ikv_tokenizer_n_vocab(t);
    int max_bytes = ikv_tokenizer_max_token_bytes(t);
    IKV_FUZZ_CHECK(n_vocab > 0 && max_bytes >= 0);
    char *buf = malloc((size_t)max_bytes + 1);
    int32_t ids[256];
    int n = 0;
    if (buf && ikv_tokenizer_encode(t, text, len, -1, ids, 256, &n) == 0) {
        IKV_FUZZ_CHECK(n >= 0);
        for (int i = 0; i < n && i < 256; i++) {
            IKV_FUZZ_CHECK(ids[i] >= 0 && ids[i] < n_vocab);
            int r = ikv_tokenizer_decode(t, i ? ids[i - 1] : -1, ids[i], buf, (size_t)max_bytes);
            IKV_FUZZ_CHECK(r >= 0 && r <= max_bytes);
        }
    }
    for (int id = 0; buf && id < n_vocab && id < 4096; id++) {
        int r = ikv_tokenizer_decode(t, ikv_tokenizer_bos(t), id, buf, (size_t)max_bytes);
        IKV_FUZZ_CHECK(r >= 0 && r <= max_bytes);
    }
    free(buf);
}

/* A few positions through the forward pass when the model is small. */
void ikv_fuzz_model(const ikv_model *m)
{
    const ikv_model_details *info = ikv_model_info(m);
    const int seq = 4;
    uint64_t cache = (uint64_t)info->n_layers * info->n_kv_heads * info->head_dim * seq * 8;
    uint64_t work = (uint64_t)info->weight_bytes + (uint64_t)info->vocab_size * info->dim * 4;
    if (cache > (16u << 20) || work > (32u << 20) || info->max_seq_len < seq)
        return;
    ikv_session *s;
    char err[512];
    if (ikv_session_create(&s, m, seq, 1, err, sizeof err) != 0) {
        ikv_fuzz_check_message(err, NULL);
        return;
    }
    int32_t prompt[3] = {0, 1 % info->vocab_size, 2 % info->vocab_size};
    if (ikv_session_prefill(s, prompt, 3) == 0) {
        IKV_FUZZ_CHECK(ikv_session_logits(s) != NULL);
        IKV_FUZZ_CHECK(ikv_session_decode(s, info->vocab_size - 1) == 0);
        IKV_FUZZ_CHECK(ikv_session_n_past(s) == 4);
        /* the cache is full now: one more must be refused, not written */
        IKV_FUZZ_CHECK(ikv_session_decode(s, 0) != 0);
        ikv_fuzz_check_message(ikv_session_error(s), NULL);
    }
    ikv_session_free(s);
}

