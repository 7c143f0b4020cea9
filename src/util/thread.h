/*
 * Background threads of the library (the trace writer's creating and
 * compressing threads, the recorder's writing thread): started with every
 * signal blocked, so that a program's handlers (infokv-capture stops at
 * the next token on SIGINT) run on the program's own threads, and named
 * for top -H and perf.
 */
#ifndef IKV_UTIL_THREAD_H
#define IKV_UTIL_THREAD_H

#include <pthread.h>

/* pthread_create with every signal blocked in the new thread, named
 * `name` (at most 15 characters). 0, or pthread_create's error. */
int ikv_thread_start(pthread_t *thread, const char *name, void *(*fn)(void *), void *arg);

#endif
