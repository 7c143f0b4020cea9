/*
 * Fuzz harness: GGUF files. The input is a whole file. It goes through the
 * GGUF reader (every key/value and tensor accessor on what it accepts) and
 * then through the model loader from a real file; a model that loads gets
 * its tokenizer and, when small, a few forward steps.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz_engine.h"
#include "fuzz_util.h"
#include "model/gguf.h"
#include "model/model.h"
#include "model/tokenizer.h"

/* Every accessor on every entry; checks what they hand back. */
static void walk(const ikv_gguf *g, const uint8_t *data, size_t size)
{
    size_t bytes_size;
    IKV_FUZZ_CHECK(ikv_gguf_bytes(g, &bytes_size) == data && bytes_size == size);
    uint32_t version = ikv_gguf_version(g);
    IKV_FUZZ_CHECK(version == 2 || version == 3);
    uint64_t align = ikv_gguf_alignment(g);
    IKV_FUZZ_CHECK(align > 0 && (align & (align - 1)) == 0);
    for (int64_t i = 0; i < ikv_gguf_n_kv(g); i++) {
        const ikv_gguf_kv *kv = ikv_gguf_kv_at(g, i);
        IKV_FUZZ_CHECK(kv && kv->key);
        IKV_FUZZ_CHECK(ikv_gguf_find(g, kv->key) == kv);
        int64_t iv;
        double dv;
        const char *s;
        uint64_t len;
        ikv_gguf_kv_int(kv, &iv);
        ikv_gguf_kv_float(kv, &dv);
        if (ikv_gguf_kv_string(kv, &s, &len) == 0)
            IKV_FUZZ_CHECK((const uint8_t *)s >= data && len <= size &&
                           (size_t)((const uint8_t *)s - data) <= size - len);
        if (kv->type != IKV_GGUF_ARRAY || kv->count > size)
            continue;
        size_t n = (size_t)kv->count;
        const char **ptrs = malloc((n ? n : 1) * sizeof *ptrs);
        uint32_t *lens = malloc((n ? n : 1) * sizeof *lens);
        float *f = malloc((n ? n : 1) * sizeof *f);
        int32_t *i32 = malloc((n ? n : 1) * sizeof *i32);
        if (ptrs && lens && f && i32) {
            if (ikv_gguf_array_strings(g, kv, ptrs, lens) == 0)
                for (size_t k = 0; k < n; k++)
                    IKV_FUZZ_CHECK((const uint8_t *)ptrs[k] >= data && lens[k] <= size &&
                                   (size_t)((const uint8_t *)ptrs[k] - data) <= size - lens[k]);
            ikv_gguf_array_f32(g, kv, f);
            ikv_gguf_array_i32(g, kv, i32);
        }
        free(ptrs);
        free(lens);
        free(f);
        free(i32);
    }
    for (int64_t i = 0; i < ikv_gguf_n_tensors(g); i++) {
        const ikv_gguf_tensor *t = ikv_gguf_tensor_at(g, i);
        IKV_FUZZ_CHECK(t && t->name);
        IKV_FUZZ_CHECK(ikv_gguf_find_tensor(g, t->name) == t);
        IKV_FUZZ_CHECK(t->n_dims >= 1 && t->n_dims <= 4);
        IKV_FUZZ_CHECK(ikv_gguf_type_name(t->type) != NULL);
        IKV_FUZZ_CHECK(t->data >= data && t->nbytes <= size &&
                       (size_t)(t->data - data) <= size - t->nbytes);
    }
    IKV_FUZZ_CHECK(ikv_gguf_kv_at(g, -1) == NULL && ikv_gguf_tensor_at(g, ikv_gguf_n_tensors(g)) == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024];
    ikv_gguf *g;
    int rc = ikv_gguf_parse(&g, data, size, "fuzz.gguf", err, sizeof err);
    if (rc == 0) {
        walk(g, data, size);
        ikv_gguf_close(g);
    } else {
        IKV_FUZZ_CHECK(g == NULL);
        ikv_fuzz_check_message(err, "fuzz.gguf: ");
    }

    const char *path = ikv_fuzz_write_file("model.gguf", data, size);
    if (!path)
        return 0;
    ikv_model *m;
    rc = ikv_model_load(&m, path, NULL, err, sizeof err);
    if (rc != 0) {
        IKV_FUZZ_CHECK(m == NULL && rc < 0);
        ikv_fuzz_check_message(err, path);
        return 0;
    }
    const ikv_model_details *info = ikv_model_info(m);
    IKV_FUZZ_CHECK(info->n_heads % info->n_kv_heads == 0);
    IKV_FUZZ_CHECK(info->rope_dim <= info->head_dim);
    IKV_FUZZ_CHECK(info->bos_id < info->vocab_size && info->eos_id < info->vocab_size);
    const ikv_tokenizer *t = ikv_model_tokenizer(m);
    if (t) {
        static const char text[] = "Once upon a time, \xe2\x96\x81 caf\xc3\xa9 <s> 123\n\xff!";
        IKV_FUZZ_CHECK(ikv_tokenizer_n_vocab(t) <= info->vocab_size);
        ikv_fuzz_tokenizer(t, text, sizeof text - 1);
    }
    ikv_fuzz_model(m);
    ikv_model_free(m);
    return 0;
}
