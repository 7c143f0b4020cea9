/*
 * The writer's background compression thread. A band that fills up is
 * queued here and compressed while the engine computes the next
 * positions, then written to the file by the thread that finishes it when
 * HDF5 is thread-safe (Debian's is; HDF5 serialises its calls), else by
 * the writer. A small model leaves a core idle during decode, and there
 * this work costs the run little (on the 2 vCPUs measured, a busy second
 * thread slowed the engine's by about 11% while it ran, hence the stored
 * byte planes in chunks.c); a model that keeps every core busy shares
 * them as before.
 *
 * Work is shared by chunks: a writer that needs a band done (the next
 * band of the same dataset is full, or the file closes) compresses its
 * unclaimed chunks itself, then those of any band still queued, and
 * sleeps only when nothing is left to claim.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>

#include "trace/writer_internal.h"
#include "util/thread.h"

struct ikv_compressor {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t work;      /* a job was queued, or stop */
    pthread_cond_t finished;  /* a job is done */
    ikv_band_job *head, *tail; /* queued jobs with chunks left to claim */
    ikv_chunk_scratch *scratch; /* the thread's */
    int stop;
};

/* Removes a job from the queue (the lock held). */
static void unlink_job(ikv_compressor *c, ikv_band_job *job)
{
    ikv_band_job *prev = NULL;
    for (ikv_band_job *j = c->head; j; prev = j, j = j->next) {
        if (j != job)
            continue;
        if (prev)
            prev->next = j->next;
        else
            c->head = j->next;
        if (c->tail == j)
            c->tail = prev;
        break;
    }
    job->next = NULL;
}

/* Claims the job's next chunk, or returns 0 when all are claimed (the
 * job then leaves the queue; the thread that finishes its last chunk
 * marks it done). The lock held. */
static int claim(ikv_compressor *c, ikv_band_job *job, size_t *chunk)
{
    if (job->claimed == job->n_chunks) {
        if (job->state == IKV_JOB_QUEUED) {
            unlink_job(c, job);
            job->state = IKV_JOB_RUNNING;
        }
        return 0;
    }
    *chunk = job->claimed++;
    return 1;
}

/* Compresses chunk i outside the lock, then counts it (lock held on
 * entry and on return). */
static void compress_one(ikv_compressor *c, ikv_band_job *job, size_t i, ikv_chunk_scratch *s)
{
    pthread_mutex_unlock(&c->lock);
    int failed = !s || ikv_band_compress_chunk(job, i, s) != 0;
    pthread_mutex_lock(&c->lock);
    job->failed |= failed;
    if (++job->finished == job->n_chunks && job->claimed == job->n_chunks) {
        if (job->state == IKV_JOB_QUEUED)
            unlink_job(c, job);
        if (job->write_when_done) { /* the last chunk's thread writes the band */
            job->state = IKV_JOB_RUNNING;
            pthread_mutex_unlock(&c->lock);
            ikv_band_write(job);
            pthread_mutex_lock(&c->lock);
        }
        job->state = IKV_JOB_DONE;
        pthread_cond_broadcast(&c->finished);
    }
}

static void *run(void *arg)
{
    ikv_compressor *c = arg;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* error stacks are per thread */
    pthread_mutex_lock(&c->lock);
    for (;;) {
        while (!c->head && !c->stop)
            pthread_cond_wait(&c->work, &c->lock);
        if (c->stop)
            break;
        ikv_band_job *job = c->head;
        size_t i;
        if (claim(c, job, &i))
            compress_one(c, job, i, c->scratch);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

ikv_compressor *ikv_compressor_create(void)
{
    ikv_compressor *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->scratch = ikv_chunk_scratch_new();
    if (!c->scratch || pthread_mutex_init(&c->lock, NULL) != 0) {
        ikv_chunk_scratch_free(c->scratch);
        free(c);
        return NULL;
    }
    if (pthread_cond_init(&c->work, NULL) != 0) {
        pthread_mutex_destroy(&c->lock);
        free(c);
        return NULL;
    }
    if (pthread_cond_init(&c->finished, NULL) != 0) {
        pthread_cond_destroy(&c->work);
        pthread_mutex_destroy(&c->lock);
        free(c);
        return NULL;
    }
    int started = ikv_thread_start(&c->thread, "ikv-deflate", run, c) == 0;
    if (!started) {
        pthread_cond_destroy(&c->finished);
        pthread_cond_destroy(&c->work);
        pthread_mutex_destroy(&c->lock);
        ikv_chunk_scratch_free(c->scratch);
        free(c);
        return NULL;
    }
    return c;
}

void ikv_compressor_submit(ikv_compressor *c, ikv_band_job *job)
{
    pthread_mutex_lock(&c->lock);
    job->state = IKV_JOB_QUEUED;
    job->next = NULL;
    if (c->tail)
        c->tail->next = job;
    else
        c->head = job;
    c->tail = job;
    pthread_cond_signal(&c->work);
    pthread_mutex_unlock(&c->lock);
}

void ikv_compressor_wait(ikv_compressor *c, ikv_band_job *job, ikv_chunk_scratch *scratch)
{
    pthread_mutex_lock(&c->lock);
    size_t i;
    while (job->state != IKV_JOB_DONE && job->state != IKV_JOB_IDLE) {
        if (claim(c, job, &i))
            compress_one(c, job, i, scratch);
        else if (c->head && claim(c, c->head, &i)) /* rather than sleep */
            compress_one(c, c->head, i, scratch);
        else if (job->state != IKV_JOB_DONE && !c->head)
            pthread_cond_wait(&c->finished, &c->lock);
    }
    pthread_mutex_unlock(&c->lock);
}

int ikv_compressor_done(ikv_compressor *c, ikv_band_job *job)
{
    pthread_mutex_lock(&c->lock);
    int done = job->state == IKV_JOB_DONE;
    pthread_mutex_unlock(&c->lock);
    return done;
}

void ikv_compressor_stop(ikv_compressor *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    c->stop = 1;
    for (ikv_band_job *j = c->head; j; j = j->next)
        j->state = IKV_JOB_IDLE;
    c->head = c->tail = NULL;
    pthread_cond_signal(&c->work);
    pthread_mutex_unlock(&c->lock);
}

void ikv_compressor_free(ikv_compressor *c)
{
    if (!c)
        return;
    ikv_compressor_stop(c);
    pthread_join(c->thread, NULL);
    pthread_cond_destroy(&c->finished);
    pthread_cond_destroy(&c->work);
    pthread_mutex_destroy(&c->lock);
    ikv_chunk_scratch_free(c->scratch);
    free(c);
}
