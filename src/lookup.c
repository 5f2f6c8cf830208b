/* lookup.c: host name lookups on a thread of their own, answered on the loop (lookup.h). */
#define _GNU_SOURCE
#include "lookup.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

struct lookup {
    atomic_int refs;      /* 2 while the thread and the owner both hold it */
    int thread_fd;        /* the thread's end of the socketpair */
    int fd;               /* the loop's end */
    loop_watch *watch;
    lookup_fn fn;
    void *user;
    struct addrinfo *res; /* the answer; handed to fn, or freed with the lookup */
    int error;            /* getaddrinfo()'s result */
    char port[8];
    char host[]; /* NUL-terminated */
};

static void lookup_hints(struct addrinfo *hints, int numeric)
{
    memset(hints, 0, sizeof *hints);
    hints->ai_family = AF_UNSPEC;
    hints->ai_socktype = SOCK_STREAM;
    hints->ai_flags = AI_NUMERICSERV | (numeric ? AI_NUMERICHOST : 0);
}

int lookup_numeric(const char *host, const char *port, struct addrinfo **res)
{
    struct addrinfo hints;
    lookup_hints(&hints, 1);
    *res = NULL;
    return getaddrinfo(host, port, &hints, res);
}

static void lookup_unref(lookup *q)
{
    if (atomic_fetch_sub(&q->refs, 1) != 1)
        return;
    if (q->res)
        freeaddrinfo(q->res);
    free(q);
}

static void *lookup_run(void *arg)
{
    lookup *q = arg;
    struct addrinfo hints;
    lookup_hints(&hints, 0);
    q->error = getaddrinfo(q->host, q->port, &hints, &q->res);
    /* Fails when the owner has gone (its end closed): then it has let go already. */
    (void)send(q->thread_fd, "", 1, MSG_NOSIGNAL);
    close(q->thread_fd);
    lookup_unref(q);
    return NULL;
}

void lookup_cancel(lookup *q)
{
    if (!q)
        return;
    loop_watch_del(q->watch);
    close(q->fd);
    lookup_unref(q);
}

static void on_answer(void *user, int fd, uint32_t events)
{
    lookup *q = user;
    char byte;
    (void)events;
    ssize_t n = recv(fd, &byte, 1, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    /* The byte comes after the thread wrote the answer: it is complete. */
    int error = EAI_SYSTEM;
    struct addrinfo *res = NULL;
    if (n == 1) {
        error = q->error;
        res = q->res;
        q->res = NULL;
    }
    lookup_fn fn = q->fn;
    void *fn_user = q->user;
    lookup_cancel(q);
    fn(fn_user, error, res);
}

lookup *lookup_start(loop *l, const char *host, const char *port, lookup_fn fn, void *user)
{
    size_t n = strlen(host);
    int sv[2];
    if (strlen(port) >= sizeof((lookup *)0)->port) {
        errno = EINVAL;
        return NULL;
    }
    lookup *q = calloc(1, sizeof *q + n + 1);
    if (!q)
        return NULL;
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0) {
        int e = errno;
        free(q);
        errno = e;
        return NULL;
    }
    atomic_init(&q->refs, 2);
    q->fd = sv[0];
    q->thread_fd = sv[1];
    q->fn = fn;
    q->user = user;
    memcpy(q->host, host, n + 1);
    strcpy(q->port, port);
    q->watch = loop_watch_add(l, sv[0], EPOLLIN, on_answer, q);
    pthread_attr_t attr;
    pthread_t th;
    int e = q->watch ? pthread_attr_init(&attr) : ENOMEM;
    if (e == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        e = pthread_create(&th, &attr, lookup_run, q);
        pthread_attr_destroy(&attr);
    }
    if (e != 0) {
        loop_watch_del(q->watch);
        close(sv[0]);
        close(sv[1]);
        free(q);
        errno = e;
        return NULL;
    }
    return q;
}
