#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/mapfile.h"
#include "model/status.h"

/* Fallback when mmap refuses (some file systems): read it all. */
static int read_all(int fd, size_t size, uint8_t **out)
{
    uint8_t *buf = malloc(size);
    if (!buf)
        return -1;
    size_t done = 0;
    while (done < size) {
        ssize_t got = pread(fd, buf + done, size - done, (off_t)done);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            free(buf);
            return -1;
        }
        done += (size_t)got;
    }
    *out = buf;
    return 0;
}

int ikv_mapfile_open(ikv_mapfile *f, const char *path, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return IKV_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        close(fd);
        return IKV_EIO;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        close(fd);
        return IKV_EIO;
    }
    if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
        snprintf(err, errlen, "%s: file too large for this machine", path);
        close(fd);
        return IKV_EIO;
    }
    f->size = (size_t)st.st_size;
    if (f->size == 0) {
        close(fd);
        return IKV_OK;
    }
    void *map = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map != MAP_FAILED) {
        f->data = map;
        f->mapped = 1;
    } else {
        uint8_t *buf;
        if (read_all(fd, f->size, &buf) != 0) {
            snprintf(err, errlen, "%s: cannot map or read: %s", path, strerror(errno));
            close(fd);
            f->size = 0;
            return IKV_EIO;
        }
        f->data = buf;
    }
    close(fd);
    return IKV_OK;
}

void ikv_mapfile_close(ikv_mapfile *f)
{
    if (f->data) {
        if (f->mapped)
            munmap((void *)f->data, f->size);
        else
            free((void *)f->data);
    }
    memset(f, 0, sizeof *f);
}
