#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "cli/prompt.h"

char *ikv_read_text_file(const char *path, size_t max_bytes, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        fclose(f);
        return NULL;
    }
    if ((unsigned long long)st.st_size > max_bytes) {
        snprintf(err, errlen, "%s: %lld bytes, more than the %zu a prompt may take", path,
                 (long long)st.st_size, max_bytes);
        fclose(f);
        return NULL;
    }
    size_t n = (size_t)st.st_size;
    char *text = malloc(n + 1);
    if (!text) {
        snprintf(err, errlen, "%s: out of memory", path);
        fclose(f);
        return NULL;
    }
    size_t got = fread(text, 1, n, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || got != n) {
        snprintf(err, errlen, "%s: read error", path);
        free(text);
        return NULL;
    }
    text[n] = '\0';
    if (strlen(text) != n) {
        snprintf(err, errlen, "%s: contains a NUL byte (not a text file)", path);
        free(text);
        return NULL;
    }
    return text;
}

char *ikv_jsonl_field(const char *path, long index, const char *field, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *line = NULL;
    size_t cap = 0;
    long record = 0;
    ssize_t len = -1;
    while ((len = getline(&line, &cap, f)) >= 0) {
        if (len == 0 || (len == 1 && line[0] == '\n'))
            continue; /* blank lines are not records */
        if (record == index)
            break;
        record++;
    }
    int io_error = ferror(f);
    fclose(f);
    if (io_error || len < 0) {
        if (io_error)
            snprintf(err, errlen, "%s: read error", path);
        else
            snprintf(err, errlen, "%s: record %ld requested, the file has %ld (0..%ld)", path, index, record,
                     record - 1);
        free(line);
        return NULL;
    }
    json_error_t jerr;
    json_t *root = json_loadb(line, (size_t)len, JSON_REJECT_DUPLICATES, &jerr);
    free(line);
    if (!root) {
        snprintf(err, errlen, "%s: record %ld is not valid JSON: %s (column %d)", path, index, jerr.text,
                 jerr.column);
        return NULL;
    }
    if (!json_is_object(root)) {
        snprintf(err, errlen, "%s: record %ld is not a JSON object", path, index);
        json_decref(root);
        return NULL;
    }
    json_t *value = json_object_get(root, field);
    if (!value || !json_is_string(value)) {
        char keys[256] = "";
        const char *key;
        json_t *v;
        json_object_foreach(root, key, v)
        {
            (void)v;
            if (strlen(keys) + strlen(key) + 3 < sizeof keys) {
                if (keys[0])
                    strcat(keys, ", ");
                strcat(keys, key);
            }
        }
        snprintf(err, errlen, "%s: record %ld has no string field '%s' (fields: %s)", path, index, field, keys);
        json_decref(root);
        return NULL;
    }
    char *text = strdup(json_string_value(value));
    size_t n = json_string_length(value);
    json_decref(root);
    if (!text) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (strlen(text) != n) {
        snprintf(err, errlen, "%s: record %ld field '%s' contains a NUL character", path, index, field);
        free(text);
        return NULL;
    }
    return text;
}
