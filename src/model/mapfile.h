/*
 * A whole file, read-only, memory-mapped (or read into memory where
 * mapping is not possible). Model files are mapped so that weights are
 * paged in on use and shared between processes.
 */
#ifndef IKV_MODEL_MAPFILE_H
#define IKV_MODEL_MAPFILE_H

#include <stddef.h>
#include <stdint.h>

typedef struct ikv_mapfile {
    const uint8_t *data; /* [size]; NULL for an empty file */
    size_t size;
    int mapped;          /* 1: munmap on close, 0: free */
} ikv_mapfile;

/* Maps `path`. On failure returns IKV_EIO with "PATH: reason" in err. */
int ikv_mapfile_open(ikv_mapfile *f, const char *path, char *err, size_t errlen);

/* Unmaps; safe on a zeroed struct. */
void ikv_mapfile_close(ikv_mapfile *f);

#endif
