/* test_worker.c: the worker thread: jobs run off the loop's thread, in order, and come back to
 * the loop one by one; the queue's bound; worker_stop() and worker_free() wait for the running
 * job and hand back the finished ones and those never run. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../src/loop.h"
#include "../../src/worker.h"
#include "check.h"

#define JOBS 6

typedef struct tjob {
    worker_job wj; /* first */
    struct rec *r;
    int id;
    pthread_t ran_on;
    int ran; /* -1 not handed back yet */
} tjob;

typedef struct rec {
    loop *l;
    pthread_t loop_thread;
    int order[JOBS + 1];
    int n, off_loop, done_on_loop;
    int stop_after;
    useconds_t sleep_us;
} rec;

static void job_run(worker_job *wj)
{
    tjob *j = (tjob *)wj;
    j->ran_on = pthread_self();
    if (j->r->sleep_us)
        usleep(j->r->sleep_us);
}

static void job_done(worker_job *wj, int ran)
{
    tjob *j = (tjob *)wj;
    rec *r = j->r;
    j->ran = ran;
    if (r->n <= JOBS)
        r->order[r->n++] = j->id;
    r->off_loop += ran && !pthread_equal(j->ran_on, r->loop_thread);
    r->done_on_loop += pthread_equal(pthread_self(), r->loop_thread);
    if (r->n == r->stop_after)
        loop_stop(r->l);
}

static void on_timeout(void *user)
{
    loop_stop(user);
}

static void jobs_init(tjob *j, rec *r, int n)
{
    for (int i = 0; i < n; i++) {
        j[i].wj.run = job_run;
        j[i].wj.done = job_done;
        j[i].r = r;
        j[i].id = i;
        j[i].ran = -1;
    }
}

static void test_order_and_bound(void)
{
    rec r = {0};
    tjob j[JOBS];
    r.l = loop_new();
    r.loop_thread = pthread_self();
    r.stop_after = JOBS - 1;
    r.sleep_us = 1000;
    worker *w = worker_new(r.l, JOBS - 1);
    CHECK(w != NULL);
    jobs_init(j, &r, JOBS);
    for (int i = 0; i < JOBS - 1; i++)
        CHECK_EQ_INT(worker_submit(w, &j[i].wj), 0);
    CHECK(worker_full(w));
    CHECK_EQ_INT(worker_submit(w, &j[JOBS - 1].wj), -EAGAIN);
    loop_timer *t = loop_timer_new(r.l, on_timeout, r.l);
    loop_timer_arm(t, 5000);
    loop_run(r.l);
    CHECK_EQ_INT(r.n, JOBS - 1);
    for (int i = 0; i < r.n; i++)
        CHECK_EQ_INT(r.order[i], i);
    CHECK_EQ_INT(r.off_loop, JOBS - 1);
    CHECK_EQ_INT(r.done_on_loop, JOBS - 1);
    CHECK(!worker_full(w));
    CHECK_EQ_INT(j[JOBS - 1].ran, -1); /* refused: never touched */
    worker_free(w);
    CHECK_EQ_INT(r.n, JOBS - 1);
    loop_timer_del(t);
    loop_free(r.l);
}

/* worker_free() with jobs queued: the running one finishes (ran 1), the rest come back unrun;
 * with worker_stop() first (stop), no other job starts after the running one. */
static void free_with_jobs(int stop)
{
    rec r = {0};
    tjob j[JOBS];
    r.l = loop_new();
    r.loop_thread = pthread_self();
    r.sleep_us = 50000;
    worker *w = worker_new(r.l, JOBS);
    CHECK(w != NULL);
    jobs_init(j, &r, JOBS);
    for (int i = 0; i < JOBS; i++)
        CHECK_EQ_INT(worker_submit(w, &j[i].wj), 0);
    usleep(10000); /* the first is running now */
    if (stop) {
        worker_stop(w);
        usleep(100000);       /* it has finished: the next would have started */
        CHECK_EQ_INT(r.n, 0); /* nothing handed back before the loop runs */
    }
    worker_free(w);
    CHECK_EQ_INT(r.n, JOBS);
    CHECK_EQ_INT(r.done_on_loop, JOBS);
    CHECK_EQ_INT(j[0].ran, 1);
    int unrun = 0;
    for (int i = 0; i < JOBS; i++) {
        CHECK(j[i].ran == 0 || j[i].ran == 1);
        unrun += j[i].ran == 0;
    }
    CHECK_EQ_INT(unrun >= JOBS - 2, 1);
    if (stop)
        CHECK_EQ_INT(unrun, JOBS - 1);
    loop_free(r.l);
}

static void test_free_with_jobs(void)
{
    free_with_jobs(0);
    worker_free(NULL);
}

static void test_stop(void)
{
    free_with_jobs(1);
}

int main(void)
{
    RUN(test_order_and_bound);
    RUN(test_free_with_jobs);
    RUN(test_stop);
    return check_summary("test_worker");
}
