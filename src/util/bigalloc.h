/*
 * Large buffers that are filled once, front to back (the trace writer's
 * band buffers): mapped with transparent huge pages where the kernel
 * offers them. A first touch of fresh memory costs a page fault per
 * 4 KiB page; on a virtual machine that is about 10 us, so a 2 MiB buffer
 * took 5.8 ms to fill the first time and 0.2 ms on one huge page
 * (2 vCPUs of a shared VM; see the README's capture figures).
 */
#ifndef IKV_UTIL_BIGALLOC_H
#define IKV_UTIL_BIGALLOC_H

#include <stddef.h>

/* Uninitialised memory of `bytes` (> 0), aligned to 64 bytes, or NULL. */
void *ikv_big_alloc(size_t bytes);
/* Frees a buffer from ikv_big_alloc of the same size; NULL is ignored. */
void ikv_big_free(void *p, size_t bytes);
/* Faults in the pages under [p, p + bytes) for writing without changing
 * a byte (Linux's MADV_POPULATE_WRITE, 5.14 on), so that another thread
 * may go on writing to them meanwhile; does nothing where unsupported. */
void ikv_prefault(void *p, size_t bytes);

#endif
