#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/outfile.h"

int ikv_temp_name(const char *final_path, char *buf, size_t buflen)
{
    int n = snprintf(buf, buflen, "%s.tmp-%ld", final_path, (long)getpid());
    return (n < 0 || (size_t)n >= buflen) ? -1 : 0;
}

int ikv_outfile_open(ikv_outfile *f, const char *final_path, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    if (snprintf(f->final_path, sizeof f->final_path, "%s", final_path) >= (int)sizeof f->final_path ||
        ikv_temp_name(final_path, f->temp_path, sizeof f->temp_path) != 0) {
        snprintf(err, errlen, "%s: path too long", final_path);
        return -1;
    }
    f->fp = fopen(f->temp_path, "w");
    if (!f->fp) {
        snprintf(err, errlen, "%s: cannot create: %s", final_path, strerror(errno));
        return -1;
    }
    return 0;
}

int ikv_outfile_commit(ikv_outfile *f, char *err, size_t errlen)
{
    if (!f->fp)
        return -1;
    int failed = ferror(f->fp) || fflush(f->fp) != 0 || fsync(fileno(f->fp)) != 0;
    int saved = errno;
    if (fclose(f->fp) != 0 && !failed) {
        failed = 1;
        saved = errno;
    }
    f->fp = NULL;
    if (!failed && rename(f->temp_path, f->final_path) != 0) {
        failed = 1;
        saved = errno;
    }
    if (failed) {
        snprintf(err, errlen, "%s: write failed: %s", f->final_path, strerror(saved));
        unlink(f->temp_path);
        return -1;
    }
    return 0;
}

void ikv_outfile_abort(ikv_outfile *f)
{
    if (f->fp) {
        fclose(f->fp);
        f->fp = NULL;
    }
    if (f->temp_path[0])
        unlink(f->temp_path);
}
