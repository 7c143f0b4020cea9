/*
 * Where a prompt comes from: the command line (-p), a file (-f), or one
 * record of a JSON Lines file (--jsonl FILE --field KEY --index N), e.g.
 * the GSM8K or MATH500 test sets.
 */
#ifndef IKV_CLI_PROMPT_H
#define IKV_CLI_PROMPT_H

#include <stddef.h>

/* Reads a whole text file (at most max_bytes); malloc'd, NUL-terminated.
 * NULL with one line in err on failure. */
char *ikv_read_text_file(const char *path, size_t max_bytes, char *err, size_t errlen);

/* The string `field` of record `index` (0-based line) of a JSON Lines
 * file; malloc'd. NULL with one line in err (missing file, index past the
 * end, invalid JSON, missing or non-string field). */
char *ikv_jsonl_field(const char *path, long index, const char *field, char *err, size_t errlen);

#endif
