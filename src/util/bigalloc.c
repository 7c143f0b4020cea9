#include "config.h"

#include <stdint.h>
#include <stdlib.h>

#include "util/bigalloc.h"

#if defined(HAVE_MADVISE) && defined(__linux__)
#include <sys/mman.h>
#endif

/* Buffers from this size up get their own mapping: below it the heap
 * (already faulted in, usually) serves better. */
#define BIG_MIN (1u << 20)
#define HUGE_PAGE ((size_t)2 << 20)

#if defined(HAVE_MADVISE) && defined(__linux__) && defined(MADV_HUGEPAGE)
/* The mapping is rounded up to whole huge pages and, since mmap aligns
 * only to 4 KiB, over-allocated by one huge page to align it; the start
 * of the mapping sits in a header before the buffer. */
typedef struct mapping {
    void *base;
    size_t length;
} mapping;

void *ikv_big_alloc(size_t bytes)
{
    if (bytes < BIG_MIN)
        return aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (bytes > SIZE_MAX - 2 * HUGE_PAGE)
        return NULL;
    size_t length = (bytes + 64 + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE + HUGE_PAGE;
    void *base = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    uintptr_t aligned = ((uintptr_t)base + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    /* the buffer starts 64 bytes into the first huge page; the header
     * lies just before it, inside the same page */
    unsigned char *p = (unsigned char *)aligned + 64;
    madvise((void *)aligned, length - (aligned - (uintptr_t)base), MADV_HUGEPAGE);
    mapping *m = (mapping *)(void *)(p - sizeof(mapping));
    m->base = base;
    m->length = length;
    return p;
}

void ikv_big_free(void *p, size_t bytes)
{
    if (!p)
        return;
    if (bytes < BIG_MIN) {
        free(p);
        return;
    }
    const mapping *m = (const mapping *)(void *)((unsigned char *)p - sizeof(mapping));
    munmap(m->base, m->length);
}
#else
void *ikv_big_alloc(size_t bytes)
{
    return aligned_alloc(64, (bytes + 63) / 64 * 64);
}

void ikv_big_free(void *p, size_t bytes)
{
    (void)bytes;
    free(p);
}
#endif

void ikv_prefault(void *p, size_t bytes)
{
#if defined(HAVE_MADVISE) && defined(__linux__) && defined(MADV_POPULATE_WRITE)
    const uintptr_t page = 4096;
    if (!p || bytes == 0)
        return;
    /* whole pages: the ones around the buffer are the process's own too,
     * and their contents stay as they are */
    uintptr_t first = (uintptr_t)p / page * page;
    uintptr_t end = ((uintptr_t)p + bytes + page - 1) / page * page;
    /* In steps of two huge pages: the call holds the process's memory-map
     * lock while it faults pages in, and an mmap on another thread (a
     * large malloc) waited 23 ms for a 90 MB buffer in one call. */
    const uintptr_t step = 2 * HUGE_PAGE;
    for (uintptr_t at = first; at < end; at += step)
        madvise((void *)at, end - at < step ? end - at : step, MADV_POPULATE_WRITE); /* a hint */
#else
    (void)p, (void)bytes;
#endif
}
