/*
 * llama2.c tokenizer.bin reader: int32 max_token_length, then n_vocab
 * records {float32 score, int32 len, len bytes}, little-endian. The vocabulary
 * size is not in the file (it comes from the model header), so the file
 * must hold exactly n_vocab records. llama2.c's conventions: id 1 is BOS
 * (added by default), id 2 is EOS, ids 3..258 are the byte tokens <0x00>..
 * <0xFF>.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "infokv/core.h"
#include "model/tokenizer_internal.h"

/* A tokenizer file holds ~10^5 short pieces: a few MiB at most. */
#define MAX_FILE_SIZE ((size_t)1 << 30)
#define MAX_TOKEN_LENGTH 4096

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

static int32_t get_i32(const unsigned char *p)
{
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
    int32_t v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static float get_f32(const unsigned char *p)
{
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* Reads the whole file; its size is bounded before allocating. */
static int read_file(const char *path, unsigned char **data, size_t *size, char *err,
                     size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return fail(err, errlen, IKV_EINVAL, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        return fail(err, errlen, IKV_EINVAL, "%s: not a regular file", path);
    }
    if ((unsigned long long)st.st_size > MAX_FILE_SIZE) {
        fclose(fp);
        return fail(err, errlen, IKV_EINVAL, "%s: %lld bytes is too large for a tokenizer",
                    path, (long long)st.st_size);
    }
    size_t n = (size_t)st.st_size;
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf) {
        fclose(fp);
        return fail(err, errlen, IKV_ENOMEM, "%s: out of memory", path);
    }
    size_t got = fread(buf, 1, n, fp);
    int bad = ferror(fp);
    fclose(fp);
    if (got != n || bad) {
        free(buf);
        return fail(err, errlen, IKV_EINVAL, "%s: read error", path);
    }
    *data = buf;
    *size = n;
    return 0;
}

int ikv_tokenizer_load_llama2c(ikv_tokenizer **out, const char *path, int n_vocab,
                               char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!out)
        return fail(err, errlen, IKV_EINVAL, "no output handle");
    *out = NULL;
    if (!path)
        return fail(err, errlen, IKV_EINVAL, "no tokenizer path");
    if (n_vocab <= 0 || n_vocab > (1 << 24))
        return fail(err, errlen, IKV_EINVAL, "%s: vocabulary size %d out of range", path,
                    n_vocab);

    unsigned char *data = NULL;
    size_t size = 0;
    int rc = read_file(path, &data, &size, err, errlen);
    if (rc < 0)
        return rc;

    const char **pieces = calloc((size_t)n_vocab, sizeof *pieces);
    uint32_t *lens = calloc((size_t)n_vocab, sizeof *lens);
    float *scores = calloc((size_t)n_vocab, sizeof *scores);
    if (!pieces || !lens || !scores) {
        rc = fail(err, errlen, IKV_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    if (size < 4) {
        rc = fail(err, errlen, IKV_EINVAL, "%s: truncated header (%zu bytes)", path, size);
        goto out;
    }
    int32_t max_len = get_i32(data);
    if (max_len <= 0 || max_len > MAX_TOKEN_LENGTH) {
        rc = fail(err, errlen, IKV_EINVAL, "%s: max_token_length %d out of range (1..%d)",
                  path, max_len, MAX_TOKEN_LENGTH);
        goto out;
    }
    size_t pos = 4;
    for (int i = 0; i < n_vocab; i++) {
        if (size - pos < 8) {
            rc = fail(err, errlen, IKV_EINVAL,
                      "%s: truncated at token %d of %d (offset %zu of %zu bytes)", path, i,
                      n_vocab, pos, size);
            goto out;
        }
        scores[i] = get_f32(data + pos);
        int32_t len = get_i32(data + pos + 4);
        pos += 8;
        /* run.c sizes its buffers by max_token_length: a longer piece is
         * corrupt, not merely unusual. */
        if (len < 0 || len > max_len) {
            rc = fail(err, errlen, IKV_EINVAL,
                      "%s: token %d has length %d (max_token_length %d) at offset %zu",
                      path, i, len, max_len, pos - 4);
            goto out;
        }
        if (size - pos < (size_t)len) {
            rc = fail(err, errlen, IKV_EINVAL,
                      "%s: truncated in token %d of %d (needs %d bytes at offset %zu of %zu)",
                      path, i, n_vocab, len, pos, size);
            goto out;
        }
        pieces[i] = (const char *)data + pos;
        lens[i] = (uint32_t)len;
        pos += (size_t)len;
    }
    if (pos != size) {
        rc = fail(err, errlen, IKV_EINVAL,
                  "%s: %zu bytes left after %d tokens (vocabulary size mismatch?)", path,
                  size - pos, n_vocab);
        goto out;
    }

    ikv_tokenizer_spec spec = {
        .kind = IKV_TOK_SPM,
        .n_vocab = n_vocab,
        .pieces = pieces,
        .piece_lens = lens,
        .scores = scores,
        .token_types = NULL,
        .pre = IKV_PRE_DEFAULT,
        .bos_id = n_vocab > 1 ? 1 : -1,
        .eos_id = n_vocab > 2 ? 2 : -1,
        .add_bos = 1,
    };
    char why[256];
    rc = ikv_tokenizer_create(out, &spec, why, sizeof why);
    if (rc < 0)
        fail(err, errlen, rc, "%s: %s", path, why);
out:
    free(pieces);
    free(lens);
    free(scores);
    free(data);
    return rc;
}
