/*
 * A guard against a hang of HDF5 1.10 on hostile files.
 *
 * Variable-length strings (our string attributes, and h5py's) live in the
 * file's global heap: collections that start with the signature "GCOL",
 * then objects, each a header (index u16, reference count u16, 4 reserved
 * bytes, size) and data padded to 8 bytes; index 0 is the collection's
 * free space. When the library loads a collection it walks these objects,
 * and an object whose step is zero (index 0 with size 0) never advances
 * the walk: H5Aread() of a string then loops forever. Every collection the
 * library can load starts with "GCOL", so walking each one found in the
 * file, the same way, before HDF5 reads anything, finds such files; they
 * are refused as corrupt. Steps that leave the collection are refused too
 * (no valid file has them). Format facts from the HDF5 file format
 * specification (version 3), "Global Heap".
 */
#include "config.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trace/internal.h"

/* The scan is a byte loop over the whole file: coverage feedback on it
 * (fuzzing builds) would make every fuzzed trace of some size take
 * seconds, and tells nothing. */
#if defined(__clang__)
#define IKV_NO_COVERAGE __attribute__((no_sanitize("coverage")))
#else
#define IKV_NO_COVERAGE
#endif

static const unsigned char hdf5_signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

static uint64_t read_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Size of "lengths" from the superblock (at 0, 512, 1024, ...): byte 14
 * in versions 0 and 1, byte 10 in versions 2 and 3. 8 when unknown. */
static int length_size(const unsigned char *file, uint64_t size)
{
    for (uint64_t at = 0; at + 16 <= size; at = at ? at * 2 : 512) {
        if (memcmp(file + at, hdf5_signature, sizeof hdf5_signature) != 0)
            continue;
        int version = file[at + 8];
        int n = version <= 1 ? file[at + 14] : file[at + 10];
        return n == 2 || n == 4 || n == 8 ? n : 8;
    }
    return 8;
}

/* 0 if the walk over the collection at `at` ends, else the offset (from
 * the collection) of the object that stalls or overruns it. */
static uint64_t walk_collection(const unsigned char *file, uint64_t file_size, uint64_t at, int len)
{
    const uint64_t header = 8 + (uint64_t)len; /* signature, version, 3 reserved, size */
    const uint64_t object_header = 8 + (uint64_t)len;
    if (at + header > file_size)
        return 0; /* the library fails reading it: no walk */
    const uint64_t size = read_le(file + at + 8, len);
    uint64_t p = header;
    while (p < size) {
        if (p + object_header > size)
            break; /* the rest is free space */
        if (at + p + object_header > file_size)
            break; /* past the end of the file: the library fails to read */
        const unsigned idx = (unsigned)read_le(file + at + p, 2);
        const uint64_t object_size = read_le(file + at + p + 8, len);
        const uint64_t room = size - p;
        if (object_size > room)
            return p;
        const uint64_t step = idx > 0 ? object_header + ((object_size + 7) & ~(uint64_t)7) : object_size;
        if (step == 0 || step > room)
            return p;
        p += step;
    }
    return 0;
}

/* Walks every collection whose signature starts in buf[0, n) (the bytes
 * at `offset` of the file): blocks of 64 bytes are first tested for a "GC"
 * pair (a loop the compiler vectorises; the pair is rare in float data),
 * then searched byte by byte. buf holds one byte past n. */
IKV_NO_COVERAGE static int scan_block(const unsigned char *buf, size_t n, const unsigned char *file,
                      uint64_t file_size, uint64_t offset, int len, char *what, size_t wlen)
{
    enum { BLOCK = 64 };
    for (size_t base = 0; base < n; base += BLOCK) {
        size_t stop = base + BLOCK < n ? base + BLOCK : n;
        if (stop - base == BLOCK) {
            unsigned char any = 0;
            for (int j = 0; j < BLOCK; j++)
                any |= (unsigned char)((buf[base + j] == 'G') & (buf[base + j + 1] == 'C'));
            if (!any)
                continue;
        }
        for (size_t i = base; i < stop; i++) {
            const uint64_t at = offset + i;
            if (buf[i] != 'G' || at + 4 > file_size || memcmp(file + at, "GCOL", 4) != 0)
                continue;
            const uint64_t bad = walk_collection(file, file_size, at, len);
            if (bad) {
                snprintf(what, wlen, "corrupt global heap: bad object at byte %llu",
                         (unsigned long long)(at + bad));
                return IKV_TRACE_EFORMAT;
            }
        }
    }
    return IKV_TRACE_OK;
}

/* Files that passed, by identity and modification time: a program that
 * opens one trace several times (the simulator does, to list live runs,
 * to count its work and to run it) reads it once. */
typedef struct checked_file {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} checked_file;

enum { N_REMEMBERED = 16 };
static checked_file remembered[N_REMEMBERED];
static int n_remembered, next_slot;
static pthread_mutex_t remembered_lock = PTHREAD_MUTEX_INITIALIZER;

static int same_file(const checked_file *c, const struct stat *st)
{
    return c->dev == st->st_dev && c->ino == st->st_ino && c->size == st->st_size &&
           c->mtime.tv_sec == st->st_mtim.tv_sec && c->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

static int seen_before(const struct stat *st)
{
    int found = 0;
    pthread_mutex_lock(&remembered_lock);
    for (int i = 0; i < n_remembered && !found; i++)
        found = same_file(&remembered[i], st);
    pthread_mutex_unlock(&remembered_lock);
    return found;
}

static void remember(const struct stat *st)
{
    pthread_mutex_lock(&remembered_lock);
    remembered[next_slot] = (checked_file){st->st_dev, st->st_ino, st->st_size, st->st_mtim};
    next_slot = (next_slot + 1) % N_REMEMBERED;
    if (n_remembered < N_REMEMBERED)
        n_remembered++;
    pthread_mutex_unlock(&remembered_lock);
}

IKV_NO_COVERAGE int ikv_h5_check_global_heaps(const char *path, char *what, size_t wlen)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return IKV_TRACE_OK; /* opening reports it */
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < 16) {
        close(fd);
        return IKV_TRACE_OK;
    }
    if (seen_before(&st)) {
        close(fd);
        return IKV_TRACE_OK;
    }
    const uint64_t file_size = (uint64_t)st.st_size;
    /* The scan streams the file through read() (several times faster than
     * touching a mapping page by page); the map serves the few walks. */
    const unsigned char *file = mmap(NULL, (size_t)file_size, PROT_READ, MAP_PRIVATE, fd, 0);
    enum { CHUNK = 1 << 20 };
    unsigned char *buf = malloc(CHUNK + 1);
    int rc = IKV_TRACE_OK;
    uint64_t offset = 0; /* bytes scanned */
    if (file != MAP_FAILED && buf) {
        const int len = length_size(file, file_size);
        while (rc == IKV_TRACE_OK && offset < file_size) {
            ssize_t got = pread(fd, buf, CHUNK + 1, (off_t)offset);
            if (got <= 0)
                break;
            size_t n = (size_t)got > CHUNK ? CHUNK : (size_t)got;
            if ((size_t)got <= CHUNK)
                buf[n] = 0; /* the byte past the end of the file */
            rc = scan_block(buf, n, file, file_size, offset, len, what, wlen);
            offset += n;
        }
    }
    free(buf);
    if (file != MAP_FAILED)
        munmap((void *)file, (size_t)file_size);
    close(fd);
    if (rc == IKV_TRACE_OK && offset >= file_size)
        remember(&st);
    return rc;
}
