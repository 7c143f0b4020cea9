/*
 * Fuzz harness: llama2.c checkpoints and tokenizer.bin files. The first
 * byte picks what the rest is (mode = byte % 3):
 *   0  a checkpoint alone (no tokenizer beside it);
 *   1  a tokenizer.bin: two bytes of vocabulary size (little-endian), then
 *      the file; what loads encodes and decodes text;
 *   2  both: four bytes of checkpoint length, the checkpoint, then the
 *      tokenizer.bin written beside it (found by the loader's default).
 * A model that loads gets its tokenizer exercised and, when small, a few
 * forward steps.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_engine.h"
#include "fuzz_util.h"
#include "model/model.h"
#include "model/tokenizer.h"

static const char text[] = "Once upon a time, there was a caf\xc3\xa9 <s> \xe2\x96\x81 12\n\xff\x80!";

static void load_model(const char *path)
{
    char err[1024];
    ikv_model *m;
    int rc = ikv_model_load(&m, path, NULL, err, sizeof err);
    if (rc != 0) {
        IKV_FUZZ_CHECK(m == NULL && rc < 0);
        ikv_fuzz_check_message(err, NULL);
        /* the model's path, or the tokenizer's beside it */
        IKV_FUZZ_CHECK(strncmp(err, path, strlen(path)) == 0 ||
                       strstr(err, "tokenizer.bin: ") != NULL);
        return;
    }
    const ikv_model_details *info = ikv_model_info(m);
    IKV_FUZZ_CHECK(strcmp(info->format, "llama2c") == 0);
    IKV_FUZZ_CHECK(info->n_heads % info->n_kv_heads == 0 && info->head_dim % 2 == 0);
    IKV_FUZZ_CHECK(info->weight_bytes <= info->file_bytes);
    const ikv_tokenizer *t = ikv_model_tokenizer(m);
    if (t) {
        IKV_FUZZ_CHECK(ikv_tokenizer_n_vocab(t) == info->vocab_size);
        ikv_fuzz_tokenizer(t, text, sizeof text - 1);
    }
    ikv_fuzz_model(m);
    ikv_model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int mode = data[0] % 3;
    data++;
    size--;
    if (mode == 0) {
        unlink(ikv_fuzz_path("tokenizer.bin"));
        const char *path = ikv_fuzz_write_file("model.bin", data, size);
        if (path)
            load_model(path);
        return 0;
    }
    if (mode == 1) {
        if (size < 2)
            return 0;
        int n_vocab = data[0] | data[1] << 8;
        const char *path = ikv_fuzz_write_file("tokenizer.bin", data + 2, size - 2);
        if (!path)
            return 0;
        char err[1024];
        ikv_tokenizer *t;
        int rc = ikv_tokenizer_load_llama2c(&t, path, n_vocab, err, sizeof err);
        if (rc != 0) {
            IKV_FUZZ_CHECK(t == NULL && rc < 0);
            ikv_fuzz_check_message(err, path);
            return 0;
        }
        IKV_FUZZ_CHECK(ikv_tokenizer_n_vocab(t) == n_vocab);
        ikv_fuzz_tokenizer(t, text, sizeof text - 1);
        ikv_tokenizer_free(t);
        return 0;
    }
    if (size < 4)
        return 0;
    size_t model_len = (size_t)(data[0] | data[1] << 8 | data[2] << 16 | (uint32_t)data[3] << 24);
    data += 4;
    size -= 4;
    if (model_len > size)
        model_len = size;
    const char *tok = ikv_fuzz_write_file("tokenizer.bin", data + model_len, size - model_len);
    const char *path = ikv_fuzz_write_file("model.bin", data, model_len);
    if (tok && path)
        load_model(path);
    return 0;
}
