/* loop.c: the single epoll event loop: fd watches plus a binary min-heap of monotonic timers. */
#define _GNU_SOURCE
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timex.h>
#include <time.h>
#include <unistd.h>

#define LOOP_EVENTS_MAX 256 /* epoll events taken per wait */

struct loop_watch {
    loop *l;
    int fd;
    int dead; /* deleted during dispatch: freed after the batch, events for it are skipped */
    loop_fd_fn fn;
    void *user;
    loop_watch *prev, *next;
};

struct loop_timer {
    loop *l;
    loop_timer_fn fn;
    void *user;
    int64_t deadline; /* monotonic ms */
    uint64_t seq;     /* arm order: equal deadlines fire first-armed first */
    size_t heap_i;    /* index in l->heap, or SIZE_MAX when disarmed */
    loop_timer *prev, *next;
};

struct loop {
    int epfd;
    int stop;
    int dispatching;
    uint64_t seq;
    loop_watch *watches; /* every live watch */
    loop_watch *graveyard; /* watches deleted during dispatch */
    loop_timer *timers;  /* every timer, armed or not */
    loop_timer **heap;
    size_t nheap, capheap;
};

int64_t loop_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t loop_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int loop_wall_synced(void)
{
    struct timex tx = {0}; /* modes 0: only reads, needs no privilege */
    int rc = adjtimex(&tx);
    if (rc < 0)
        return -errno;
    return rc != TIME_ERROR && !(tx.status & STA_UNSYNC);
}

loop *loop_new(void)
{
    loop *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        int e = errno;
        free(l);
        errno = e;
        return NULL;
    }
    return l;
}

static void loop_reap(loop *l)
{
    while (l->graveyard) {
        loop_watch *w = l->graveyard;
        l->graveyard = w->next;
        free(w);
    }
}

void loop_free(loop *l)
{
    if (!l)
        return;
    while (l->watches) {
        loop_watch *w = l->watches;
        l->watches = w->next;
        free(w);
    }
    loop_reap(l);
    while (l->timers) {
        loop_timer *t = l->timers;
        l->timers = t->next;
        free(t);
    }
    free(l->heap);
    close(l->epfd);
    free(l);
}

void loop_stop(loop *l)
{
    l->stop = 1;
}

/* ---- watches ---- */

loop_watch *loop_watch_add(loop *l, int fd, uint32_t events, loop_fd_fn fn, void *user)
{
    loop_watch *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->l = l;
    w->fd = fd;
    w->fn = fn;
    w->user = user;
    struct epoll_event ev = {.events = events, .data.ptr = w};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int e = errno;
        free(w);
        errno = e;
        return NULL;
    }
    w->next = l->watches;
    if (l->watches)
        l->watches->prev = w;
    l->watches = w;
    return w;
}

int loop_watch_mod(loop_watch *w, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = w};
    return epoll_ctl(w->l->epfd, EPOLL_CTL_MOD, w->fd, &ev) < 0 ? -errno : 0;
}

void loop_watch_del(loop_watch *w)
{
    if (!w)
        return;
    loop *l = w->l;
    /* The fd may already be closed by the caller; then the kernel dropped it from the set. */
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
    if (w->prev)
        w->prev->next = w->next;
    else
        l->watches = w->next;
    if (w->next)
        w->next->prev = w->prev;
    if (l->dispatching) {
        /* Events for w may still be in this batch: keep the memory until the batch is done. */
        w->dead = 1;
        w->prev = NULL;
        w->next = l->graveyard;
        l->graveyard = w;
    } else {
        free(w);
    }
}

/* ---- timers: a binary min-heap ordered by (deadline, seq) ---- */

static int timer_before(const loop_timer *a, const loop_timer *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void heap_set(loop *l, size_t i, loop_timer *t)
{
    l->heap[i] = t;
    t->heap_i = i;
}

static void heap_up(loop *l, size_t i)
{
    loop_timer *t = l->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!timer_before(t, l->heap[p]))
            break;
        heap_set(l, i, l->heap[p]);
        i = p;
    }
    heap_set(l, i, t);
}

static void heap_down(loop *l, size_t i)
{
    loop_timer *t = l->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= l->nheap)
            break;
        if (c + 1 < l->nheap && timer_before(l->heap[c + 1], l->heap[c]))
            c++;
        if (!timer_before(l->heap[c], t))
            break;
        heap_set(l, i, l->heap[c]);
        i = c;
    }
    heap_set(l, i, t);
}

static void heap_remove(loop *l, loop_timer *t)
{
    size_t i = t->heap_i;
    t->heap_i = SIZE_MAX;
    l->nheap--;
    if (i == l->nheap)
        return;
    loop_timer *moved = l->heap[l->nheap];
    heap_set(l, i, moved);
    heap_down(l, i);
    heap_up(l, moved->heap_i);
}

loop_timer *loop_timer_new(loop *l, loop_timer_fn fn, void *user)
{
    loop_timer *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->l = l;
    t->fn = fn;
    t->user = user;
    t->heap_i = SIZE_MAX;
    t->next = l->timers;
    if (l->timers)
        l->timers->prev = t;
    l->timers = t;
    return t;
}

void loop_timer_arm(loop_timer *t, int64_t ms)
{
    loop *l = t->l;
    if (ms < 0)
        ms = 0;
    if (t->heap_i != SIZE_MAX)
        heap_remove(l, t);
    if (l->nheap == l->capheap) {
        size_t cap = l->capheap ? l->capheap * 2 : 64;
        loop_timer **h = realloc(l->heap, cap * sizeof *h);
        if (!h)
            abort(); /* a timer that silently never fires would hang a source forever */
        l->heap = h;
        l->capheap = cap;
    }
    t->deadline = loop_now_ms() + ms;
    t->seq = ++l->seq;
    l->heap[l->nheap] = t;
    t->heap_i = l->nheap++;
    heap_up(l, t->heap_i);
}

void loop_timer_disarm(loop_timer *t)
{
    if (t && t->heap_i != SIZE_MAX)
        heap_remove(t->l, t);
}

void loop_timer_del(loop_timer *t)
{
    if (!t)
        return;
    loop *l = t->l;
    loop_timer_disarm(t);
    if (t->prev)
        t->prev->next = t->next;
    else
        l->timers = t->next;
    if (t->next)
        t->next->prev = t->prev;
    free(t);
}

/* Fires the timers due now, in deadline order. A timer armed by a callback during this pass gets
 * a higher seq and waits for the next pass, so a callback re-arming itself at 0 ms cannot starve
 * the fds. The fired timer is out of the heap before its callback runs, so the callback may
 * re-arm or delete it (or any other timer). */
static void loop_fire_timers(loop *l)
{
    int64_t now = loop_now_ms();
    uint64_t pass = l->seq;
    while (l->nheap > 0 && !l->stop) {
        loop_timer *t = l->heap[0];
        if (t->deadline > now || t->seq > pass)
            break;
        heap_remove(l, t);
        t->fn(t->user);
    }
}

static int loop_timeout(const loop *l)
{
    if (l->nheap == 0)
        return -1;
    int64_t d = l->heap[0]->deadline - loop_now_ms();
    if (d <= 0)
        return 0;
    return d > 60000 ? 60000 : (int)d;
}

int loop_run(loop *l)
{
    struct epoll_event ev[LOOP_EVENTS_MAX];
    l->stop = 0;
    while (!l->stop) {
        int n = epoll_wait(l->epfd, ev, LOOP_EVENTS_MAX, loop_timeout(l));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        l->dispatching = 1;
        for (int i = 0; i < n && !l->stop; i++) {
            loop_watch *w = ev[i].data.ptr;
            if (!w->dead)
                w->fn(w->user, w->fd, ev[i].events);
        }
        l->dispatching = 0;
        loop_reap(l);
        if (!l->stop)
            loop_fire_timers(l);
    }
    return 0;
}
