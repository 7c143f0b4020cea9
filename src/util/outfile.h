/*
 * Outputs that appear under their final name only when complete: write to
 * a temporary name beside the final one, then rename. A failed or killed
 * run leaves at most a "*.tmp-*" file, never a file that looks finished.
 */
#ifndef IKV_UTIL_OUTFILE_H
#define IKV_UTIL_OUTFILE_H

#include <stddef.h>
#include <stdio.h>

/* Temporary name for `final_path` in the same directory (so rename() is
 * atomic): "<final>.tmp-<pid>". Returns 0, or -1 if buf is too small. */
int ikv_temp_name(const char *final_path, char *buf, size_t buflen);

/* A stdio stream on a temporary name. */
typedef struct ikv_outfile {
    FILE *fp;
    char temp_path[4096];
    char final_path[4096];
} ikv_outfile;

/* Opens; on failure returns -1 and writes one line to err. */
int ikv_outfile_open(ikv_outfile *f, const char *final_path, char *err, size_t errlen);
/* Flushes, syncs and renames; on failure removes the temporary file. */
int ikv_outfile_commit(ikv_outfile *f, char *err, size_t errlen);
/* Closes and removes the temporary file. */
void ikv_outfile_abort(ikv_outfile *f);

#endif
