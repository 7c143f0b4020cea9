#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_util.h"

void ikv_fuzz_fail(const char *what, const char *file, int line)
{
    fprintf(stderr, "fuzz check failed: %s (%s:%d)\n", what, file, line);
    abort();
}

void ikv_fuzz_check_message(const char *msg, const char *must_start)
{
    static int verbose = -1;
    if (verbose < 0)
        verbose = getenv("IKV_FUZZ_VERBOSE") != NULL;
    if (verbose && msg)
        fprintf(stderr, "message: %s\n", msg);
    IKV_FUZZ_CHECK(msg != NULL);
    IKV_FUZZ_CHECK(msg[0] != '\0');
    IKV_FUZZ_CHECK(strchr(msg, '\n') == NULL);
    if (must_start)
        IKV_FUZZ_CHECK(strncmp(msg, must_start, strlen(must_start)) == 0);
}

static char tmp_dir[512];

/* The directory holds only the files ikv_fuzz_write_file() made (and
 * whatever a harness created next to them, e.g. a writer's temporary). */
static void remove_tmp_dir(void)
{
    if (!tmp_dir[0])
        return;
    DIR *d = opendir(tmp_dir);
    if (d) {
        struct dirent *e;
        char path[1100];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof path, "%s/%s", tmp_dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(tmp_dir);
}

static const char *dir(void)
{
    if (tmp_dir[0])
        return tmp_dir;
    const char *base = getenv("TMPDIR");
    struct stat st;
    if (!base || !*base)
        base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
    snprintf(tmp_dir, sizeof tmp_dir, "%s/ikv-fuzz.XXXXXX", base);
    if (!mkdtemp(tmp_dir)) {
        perror(tmp_dir);
        abort();
    }
    atexit(remove_tmp_dir);
    return tmp_dir;
}

const char *ikv_fuzz_path(const char *name)
{
    static char paths[5][1100];
    static const char *const slots[] = {"model.bin", "model.gguf", "tokenizer.bin", "trace.h5"};
    int slot = 4;
    for (int i = 0; i < 4; i++)
        if (strcmp(name, slots[i]) == 0)
            slot = i;
    snprintf(paths[slot], sizeof paths[slot], "%s/%s", dir(), slot < 4 ? name : "other");
    return paths[slot];
}

const char *ikv_fuzz_write_file(const char *name, const uint8_t *data, size_t size)
{
    const char *path = ikv_fuzz_path(name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return NULL;
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0) {
            close(fd);
            return NULL;
        }
        done += (size_t)n;
    }
    close(fd);
    return path;
}

uint8_t ikv_fuzz_u8(ikv_fuzz_input *in)
{
    return in->pos < in->size ? in->data[in->pos++] : 0;
}

uint32_t ikv_fuzz_u32(ikv_fuzz_input *in)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)ikv_fuzz_u8(in) << (8 * i);
    return v;
}

size_t ikv_fuzz_until(ikv_fuzz_input *in, uint8_t sep, size_t max, const uint8_t **out)
{
    size_t start = in->pos, n = 0;
    *out = in->data + start;
    while (start + n < in->size && n < max && in->data[start + n] != sep)
        n++;
    in->pos = start + n;
    if (in->pos < in->size && in->data[in->pos] == sep)
        in->pos++;
    return n;
}

size_t ikv_fuzz_rest(ikv_fuzz_input *in, const uint8_t **out)
{
    *out = in->data + in->pos;
    size_t n = in->size - in->pos;
    in->pos = in->size;
    return n;
}
