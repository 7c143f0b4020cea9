/*
 * The command-line layer's shared pieces: error reporting with exit codes,
 * stop signals and a progress bar. Only code under src/cli may exit().
 */
#ifndef IKV_CLI_COMMON_H
#define IKV_CLI_COMMON_H

#include <stdarg.h>
#include <stdint.h>

/* Exit status of every infokv program. */
enum {
    IKV_EXIT_OK = 0,
    IKV_EXIT_RUNTIME = 1, /* the work failed (I/O error, out of memory, ...) */
    IKV_EXIT_USAGE = 2    /* bad flags or bad input files */
};

/* Records the program name used as the prefix of every message. */
void ikv_cli_init(const char *argv0);
const char *ikv_cli_program(void);

/* With 1, messages (ikv_die, ikv_warn, ikv_note) are not printed: the
 * other MPI ranks of a run that rank 0 speaks for. */
void ikv_cli_mute(int mute);

/* Prints "program: message" on stderr and exits with `status`. */
void ikv_die(int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3), noreturn))
#endif
    ;

/* Prints "program: warning: message" on stderr. */
void ikv_warn(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* Prints "program: message" on stderr unless quiet. */
void ikv_note(int quiet, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Parses a whole decimal integer in [lo, hi] for option `name`, or dies
 * with a usage error. */
long ikv_parse_long_option(const char *name, const char *text, long lo, long hi);
double ikv_parse_double_option(const char *name, const char *text, double lo, double hi);

/* Parses "0,2,4" (numbers in [0, hi], strictly increasing) for option
 * `name` into out[max]; returns the count, or dies with a usage error. */
int ikv_parse_index_list(const char *name, const char *text, long hi, int *out, int max);

/* SIGINT and SIGTERM set a flag instead of killing the process, so long
 * work can stop at the next token and close its output properly. A second
 * signal of the same kind kills as usual. */
void ikv_cli_catch_stop_signals(void);
int ikv_cli_stop_requested(void);
int ikv_cli_stop_signal(void); /* the signal received, 0 if none */

/* A progress bar on stderr, drawn only when stderr is a terminal and not
 * quiet; redrawn at most ten times a second. */
typedef struct ikv_progress {
    const char *label;
    int64_t total;
    int64_t done;
    double started;
    double last_draw;
    int enabled;
} ikv_progress;

void ikv_progress_start(ikv_progress *p, const char *label, int64_t total, int quiet);
void ikv_progress_update(ikv_progress *p, int64_t done);
void ikv_progress_finish(ikv_progress *p);

/* Monotonic seconds. */
double ikv_now(void);

#endif
