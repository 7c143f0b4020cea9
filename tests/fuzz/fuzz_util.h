/*
 * Helpers shared by the fuzz harnesses (tests/fuzz/fuzz_*.c). Each harness
 * defines LLVMFuzzerTestOneInput(); it is linked either with libFuzzer
 * (`make fuzz`, configure --enable-fuzzing CC=clang) or with replay.c, a
 * plain driver that feeds it every file of the committed corpora in
 * `make check`.
 *
 * A harness checks more than "no crash": the contracts that the command
 * line relies on (an error is one non-empty line; sizes and ids that the
 * library returns are in range) fail through IKV_FUZZ_CHECK, which
 * aborts so that libFuzzer saves the input and replay reports it.
 */
#ifndef IKV_TEST_FUZZ_UTIL_H
#define IKV_TEST_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Prints "fuzz check failed: what (file:line)" and aborts. */
void ikv_fuzz_fail(const char *what, const char *file, int line);
#define IKV_FUZZ_CHECK(cond) \
    ((cond) ? (void)0 : ikv_fuzz_fail(#cond, __FILE__, __LINE__))

/* Checks an error message: non-empty, one line, and (when `must_start`
 * is not NULL) starting with it. With IKV_FUZZ_VERBOSE set in the
 * environment, prints it (to see why corpus inputs fail). */
void ikv_fuzz_check_message(const char *msg, const char *must_start);

/* Writes bytes to `name` in this process's private temporary directory
 * (under $TMPDIR, else /dev/shm, else /tmp; removed at exit) and returns
 * its path (static storage per name slot). NULL if it cannot be written. */
const char *ikv_fuzz_write_file(const char *name, const uint8_t *data, size_t size);

/* Path of `name` in that directory (the file need not exist). */
const char *ikv_fuzz_path(const char *name);

/* A little-endian byte reader over the input: takes values from the
 * front, returning 0 once the input is used up. */
typedef struct ikv_fuzz_input {
    const uint8_t *data;
    size_t size, pos;
} ikv_fuzz_input;

uint8_t ikv_fuzz_u8(ikv_fuzz_input *in);
uint32_t ikv_fuzz_u32(ikv_fuzz_input *in);
/* Up to `max` bytes up to (not including) the next byte `sep` or the
 * end; the separator is consumed. Returns the length; *out points into
 * the input. */
size_t ikv_fuzz_until(ikv_fuzz_input *in, uint8_t sep, size_t max, const uint8_t **out);
/* The rest of the input. */
size_t ikv_fuzz_rest(ikv_fuzz_input *in, const uint8_t **out);

#endif
