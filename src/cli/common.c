#include "config.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/common.h"
#include "util/text.h"

static const char *program = "infokv";
static int muted;

void ikv_cli_mute(int mute)
{
    muted = mute;
}
static volatile sig_atomic_t stop_signal;

void ikv_cli_init(const char *argv0)
{
    if (argv0 && *argv0) {
        const char *slash = strrchr(argv0, '/');
        program = slash ? slash + 1 : argv0;
        /* libtool wrappers run the real binary as lt-NAME */
        if (strncmp(program, "lt-", 3) == 0)
            program += 3;
    }
    /* Under a file-size limit (ulimit -f) a write past it would kill us
     * with SIGXFSZ and leave a temporary file; ignored, the write fails
     * with EFBIG and is reported like a full disk (exit 1, one line). */
    signal(SIGXFSZ, SIG_IGN);
}

const char *ikv_cli_program(void)
{
    return program;
}

static void vreport(const char *prefix, const char *fmt, va_list ap)
{
    if (muted)
        return;
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t len = strlen(msg);
    while (len > 0 && msg[len - 1] == '\n')
        msg[--len] = '\0';
    /* one line, whatever a message quotes from a file */
    ikv_scrub_controls(msg, '?');
    fprintf(stderr, "%s: %s%s\n", program, prefix, msg);
}

void ikv_die(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport("", fmt, ap);
    va_end(ap);
    exit(status);
}

void ikv_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport("warning: ", fmt, ap);
    va_end(ap);
}

void ikv_note(int quiet, const char *fmt, ...)
{
    if (quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    vreport("", fmt, ap);
    va_end(ap);
}

long ikv_parse_long_option(const char *name, const char *text, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = text ? strtol(text, &end, 10) : 0;
    if (!text || errno || end == text || *end != '\0')
        ikv_die(IKV_EXIT_USAGE, "%s: '%s' is not an integer", name, text ? text : "");
    if (v < lo || v > hi)
        ikv_die(IKV_EXIT_USAGE, "%s: %ld is out of range [%ld, %ld]", name, v, lo, hi);
    return v;
}

double ikv_parse_double_option(const char *name, const char *text, double lo, double hi)
{
    char *end;
    errno = 0;
    double v = text ? strtod(text, &end) : 0.0;
    if (!text || errno || end == text || *end != '\0' || !isfinite(v))
        ikv_die(IKV_EXIT_USAGE, "%s: '%s' is not a number", name, text ? text : "");
    if (v < lo || v > hi)
        ikv_die(IKV_EXIT_USAGE, "%s: %g is out of range [%g, %g]", name, v, lo, hi);
    return v;
}

int ikv_parse_index_list(const char *name, const char *text, long hi, int *out, int max)
{
    int n = 0;
    const char *s = text;
    while (*s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 0 || v > hi || (*end != ',' && *end != '\0'))
            ikv_die(IKV_EXIT_USAGE, "%s: '%s' is not a comma list of numbers in [0, %ld]", name, text, hi);
        if (n == max)
            ikv_die(IKV_EXIT_USAGE, "%s: more than %d numbers", name, max);
        if (n > 0 && out[n - 1] >= v)
            ikv_die(IKV_EXIT_USAGE, "%s: list each once, in increasing order", name);
        out[n++] = (int)v;
        s = *end ? end + 1 : end;
    }
    if (n == 0)
        ikv_die(IKV_EXIT_USAGE, "%s: no number given", name);
    return n;
}

static void on_stop(int sig)
{
    if (stop_signal == sig) {
        /* Second time: the user insists. */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    stop_signal = sig;
}

void ikv_cli_catch_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int ikv_cli_stop_requested(void)
{
    return stop_signal != 0;
}

int ikv_cli_stop_signal(void)
{
    return (int)stop_signal;
}

double ikv_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void draw(ikv_progress *p, int final)
{
    double now = ikv_now();
    if (!final && now - p->last_draw < 0.1)
        return;
    p->last_draw = now;
    double frac = p->total > 0 ? (double)p->done / (double)p->total : 0.0;
    if (frac > 1.0)
        frac = 1.0;
    char bar[31];
    int filled = (int)(frac * 30.0);
    for (int i = 0; i < 30; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[30] = '\0';
    double elapsed = now - p->started;
    double eta = frac > 0.0 ? elapsed * (1.0 - frac) / frac : 0.0;
    fprintf(stderr, "\r%s [%s] %lld/%lld %5.1f%%  %.0fs elapsed, %.0fs left ",
            p->label, bar, (long long)p->done, (long long)p->total, 100.0 * frac,
            elapsed, eta);
    if (final)
        fputc('\n', stderr);
    fflush(stderr);
}

void ikv_progress_start(ikv_progress *p, const char *label, int64_t total, int quiet)
{
    memset(p, 0, sizeof *p);
    p->label = label;
    p->total = total;
    p->started = ikv_now();
    p->enabled = !quiet && isatty(STDERR_FILENO);
    if (p->enabled)
        draw(p, 0);
}

void ikv_progress_update(ikv_progress *p, int64_t done)
{
    p->done = done;
    if (p->enabled)
        draw(p, 0);
}

void ikv_progress_finish(ikv_progress *p)
{
    if (p->enabled)
        draw(p, 1);
    p->enabled = 0;
}
