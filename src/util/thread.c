#include "config.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "util/thread.h"

typedef struct named_start {
    void *(*fn)(void *);
    void *arg;
    char name[16];
} named_start;

/* The new thread names itself: naming another thread opens its
 * /proc/self/task/TID/comm, which cost the starting thread 0.1-0.2 ms on
 * a VM; a thread's own name is one prctl. */
static void *start_named(void *p)
{
    named_start start = *(named_start *)p;
    free(p);
    pthread_setname_np(pthread_self(), start.name); /* only a help: failure is harmless */
    return start.fn(start.arg);
}

int ikv_thread_start(pthread_t *thread, const char *name, void *(*fn)(void *), void *arg)
{
    named_start *start = malloc(sizeof *start);
    if (start) {
        start->fn = fn;
        start->arg = arg;
        strncpy(start->name, name, sizeof start->name - 1);
        start->name[sizeof start->name - 1] = '\0';
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the new thread inherits it */
    const int rc = start ? pthread_create(thread, NULL, start_named, start) : pthread_create(thread, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        free(start);
    return rc;
}
