/* worker.c: a thread that runs jobs off the loop and hands them back through an eventfd. */
#define _GNU_SOURCE
#include "worker.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* A FIFO list of jobs. */
typedef struct job_list {
    worker_job *head, *tail;
} job_list;

struct worker {
    loop_watch *watch;
    int efd;       /* eventfd: the thread adds 1 per finished job; the loop reads it */
    size_t n, max; /* jobs in the worker (loop only) */
    pthread_t th;
    int started;        /* the thread runs (to be joined) */
    pthread_mutex_t mu; /* guards todo, finished and stop */
    pthread_cond_t cv;  /* todo got a job, or stop was set */
    job_list todo, finished;
    int stop;
};

static void list_push(job_list *l, worker_job *j)
{
    j->next = NULL;
    if (l->tail)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
}

static worker_job *list_take(job_list *l)
{
    worker_job *all = l->head;
    l->head = l->tail = NULL;
    return all;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->todo.head && !w->stop)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->stop)
            break;
        worker_job *j = w->todo.head;
        w->todo.head = j->next;
        if (!w->todo.head)
            w->todo.tail = NULL;
        pthread_mutex_unlock(&w->mu);
        j->run(j);
        pthread_mutex_lock(&w->mu);
        list_push(&w->finished, j);
        uint64_t one = 1;
        /* Cannot fail short of 2^64 - 1 unread jobs; the loop reads the list, not the count. */
        (void)!write(w->efd, &one, sizeof one);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Calls done for each job of the list all, in order. */
static void hand_back(worker *w, worker_job *all, int ran)
{
    while (all) {
        worker_job *j = all;
        all = j->next;
        w->n--;
        j->done(j, ran);
    }
}

static void on_finished(void *user, int fd, uint32_t events)
{
    worker *w = user;
    uint64_t count;
    (void)events;
    (void)!read(fd, &count, sizeof count);
    pthread_mutex_lock(&w->mu);
    worker_job *all = list_take(&w->finished);
    pthread_mutex_unlock(&w->mu);
    hand_back(w, all, 1);
}

worker *worker_new(loop *l, size_t max)
{
    worker *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->max = max ? max : 1;
    w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->efd < 0) {
        int e = errno;
        free(w);
        errno = e;
        return NULL;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->watch = loop_watch_add(l, w->efd, EPOLLIN, on_finished, w);
    int e = w->watch ? 0 : errno;
    if (!e) {
        /* The loop takes the signals (signalfd); the thread must never be picked for one. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        e = pthread_create(&w->th, NULL, worker_main, w);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        w->started = e == 0;
    }
    if (e) {
        worker_free(w);
        errno = e;
        return NULL;
    }
    return w;
}

int worker_submit(worker *w, worker_job *j)
{
    if (w->n >= w->max)
        return -EAGAIN;
    w->n++;
    pthread_mutex_lock(&w->mu);
    list_push(&w->todo, j);
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

int worker_full(const worker *w)
{
    return w->n >= w->max;
}

void worker_stop(worker *w)
{
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void worker_free(worker *w)
{
    if (!w)
        return;
    worker_stop(w);
    if (w->started)
        pthread_join(w->th, NULL);
    /* No thread now: the lists are the loop's; a done function cannot submit again. */
    w->max = 0;
    hand_back(w, list_take(&w->finished), 1);
    hand_back(w, list_take(&w->todo), 0);
    loop_watch_del(w->watch);
    close(w->efd);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
