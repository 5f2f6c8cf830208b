/* worker.h: one thread that runs slow jobs off p1d's loop (a history answer of a day of raw
 * readings: seconds on a Raspberry Pi, during which the loop would read no meter and answer no
 * request), from a bounded queue, and hands each finished job back to the loop: the thread
 * writes an eventfd that the loop watches, and the loop calls the job's done function. */
#ifndef P1D_WORKER_H
#define P1D_WORKER_H

#include <stddef.h>

#include "loop.h"

typedef struct worker worker;

/* A job, embedded in its owner's struct. From worker_submit() until its done function is
 * called the job belongs to the worker (the owner must not touch it): run is called on the
 * worker thread, then done on the loop. run must touch nothing the loop uses meanwhile. */
typedef struct worker_job {
    void (*run)(struct worker_job *j);           /* on the worker thread */
    void (*done)(struct worker_job *j, int ran); /* on the loop; ran 0: worker_free() dropped it
                                                  * before it ran */
    struct worker_job *next;                     /* the worker's */
} worker_job;

/* Starts the thread; it takes at most `max` jobs (queued, running or finished and not yet
 * handed back). Returns NULL with errno set. Free with worker_free(). */
worker *worker_new(loop *l, size_t max);
/* Queues j (run and done set). Returns 0, or -EAGAIN when `max` jobs are in the worker. */
int worker_submit(worker *w, worker_job *j);
/* 1 when worker_submit() would refuse a job (-EAGAIN). */
int worker_full(const worker *w);
/* Makes the thread take no further job: the one running now finishes; the queued ones stay
 * until worker_free() hands them back unrun. */
void worker_stop(worker *w);
/* On the loop: waits for the job running now (if any) to finish, stops and joins the thread,
 * then calls done for every job still in the worker (ran 1 for the finished ones, 0 for those
 * never run), and frees; accepts NULL. */
void worker_free(worker *w);

#endif
