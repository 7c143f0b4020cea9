/* Byte-level BPE (GPT-2 family): not written yet. */
#include "config.h"

#include <stdio.h>

#include "infokv/core.h"
#include "model/tokenizer_internal.h"

int ikv_gpt2_init(ikv_tokenizer *t, const ikv_tokenizer_spec *spec, char *err, size_t errlen)
{
    (void)t;
    (void)spec;
    snprintf(err, errlen, "GPT-2 tokenizer not implemented yet");
    return IKV_EINVAL;
}

int ikv_gpt2_encode(const ikv_tokenizer *t, const char *text, size_t len, ikv_tokvec *out)
{
    (void)t;
    (void)text;
    (void)len;
    (void)out;
    return IKV_EINVAL;
}

size_t ikv_gpt2_unmap(const char *piece, size_t len, char *dst)
{
    (void)piece;
    (void)dst;
    return len;
}

void ikv_pretok_free(ikv_pretok *p)
{
    (void)p;
}
