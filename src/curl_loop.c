/* curl_loop.c: libcurl's socket and timer callbacks mapped onto loop watches and a loop timer. */
#include "curl_loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>

#define CURL_LOOP_XFERS_MAX 64 /* transfers one curl_loop runs at once */

typedef struct xfer {
    CURL *easy;
    curl_loop_done_fn fn;
    void *user;
} xfer;

struct curl_loop {
    loop *l;
    const dl_curl *cu;
    CURLM *multi;
    loop_timer *timer;
    xfer x[CURL_LOOP_XFERS_MAX];
    size_t nx;
};

static xfer *find(curl_loop *cl, CURL *easy)
{
    for (size_t i = 0; i < cl->nx; i++)
        if (cl->x[i].easy == easy)
            return &cl->x[i];
    return NULL;
}

static void forget(curl_loop *cl, xfer *x)
{
    *x = cl->x[--cl->nx];
}

/* Reports finished transfers. A callback may add or remove transfers, so each message is handled
 * after its record left the table. */
static void drain(curl_loop *cl)
{
    CURLMsg *msg;
    int left;
    while ((msg = cl->cu->multi_info_read(cl->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        cl->cu->multi_remove_handle(cl->multi, easy);
        xfer *x = find(cl, easy);
        if (!x)
            continue;
        xfer done = *x;
        forget(cl, x);
        done.fn(done.user, easy, result);
    }
}

static void on_fd(void *user, int fd, uint32_t events)
{
    curl_loop *cl = user;
    int flags = 0, running;
    if (events & EPOLLIN)
        flags |= CURL_CSELECT_IN;
    if (events & EPOLLOUT)
        flags |= CURL_CSELECT_OUT;
    if (events & (EPOLLERR | EPOLLHUP))
        flags |= CURL_CSELECT_ERR;
    cl->cu->multi_socket_action(cl->multi, fd, flags, &running);
    drain(cl);
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    curl_loop *cl = userp;
    loop_watch *w = socketp;
    (void)e;
    if (what == CURL_POLL_REMOVE) {
        loop_watch_del(w);
        cl->cu->multi_assign(cl->multi, s, NULL);
        return 0;
    }
    uint32_t ev = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
    if (w) {
        loop_watch_mod(w, ev);
    } else {
        w = loop_watch_add(cl->l, s, ev, on_fd, cl);
        if (!w)
            return -1;
        cl->cu->multi_assign(cl->multi, s, w);
    }
    return 0;
}

static void on_timer(void *user)
{
    curl_loop *cl = user;
    int running;
    cl->cu->multi_socket_action(cl->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    drain(cl);
}

/* libcurl asks for a timeout; acting on it from inside its own callback is not allowed, so even
 * 0 goes through the loop. */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    curl_loop *cl = userp;
    (void)multi;
    if (timeout_ms < 0)
        loop_timer_disarm(cl->timer);
    else
        loop_timer_arm(cl->timer, timeout_ms);
    return 0;
}

curl_loop *curl_loop_new(loop *l, const dl_curl *cu)
{
    curl_loop *cl = calloc(1, sizeof *cl);
    if (!cl)
        return NULL;
    cl->l = l;
    cl->cu = cu;
    /* curl_global_init counts its calls; curl_loop_free balances this one. */
    if (cl->cu->global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        free(cl);
        errno = EIO;
        return NULL;
    }
    cl->multi = cl->cu->multi_init();
    cl->timer = loop_timer_new(l, on_timer, cl);
    if (!cl->multi || !cl->timer) {
        curl_loop_free(cl);
        errno = ENOMEM;
        return NULL;
    }
    cl->cu->multi_setopt(cl->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    cl->cu->multi_setopt(cl->multi, CURLMOPT_SOCKETDATA, cl);
    cl->cu->multi_setopt(cl->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    cl->cu->multi_setopt(cl->multi, CURLMOPT_TIMERDATA, cl);
    return cl;
}

void curl_loop_free(curl_loop *cl)
{
    if (!cl)
        return;
    while (cl->nx > 0) {
        cl->cu->multi_remove_handle(cl->multi, cl->x[0].easy);
        forget(cl, &cl->x[0]);
    }
    if (cl->multi)
        cl->cu->multi_cleanup(cl->multi);
    loop_timer_del(cl->timer);
    cl->cu->global_cleanup();
    free(cl);
}

int curl_loop_add(curl_loop *cl, CURL *easy, curl_loop_done_fn fn, void *user)
{
    if (cl->nx >= CURL_LOOP_XFERS_MAX || find(cl, easy))
        return -1;
    if (cl->cu->multi_add_handle(cl->multi, easy) != CURLM_OK)
        return -1;
    cl->x[cl->nx].easy = easy;
    cl->x[cl->nx].fn = fn;
    cl->x[cl->nx].user = user;
    cl->nx++;
    return 0;
}

void curl_loop_remove(curl_loop *cl, CURL *easy)
{
    xfer *x = find(cl, easy);
    if (!x)
        return;
    cl->cu->multi_remove_handle(cl->multi, easy);
    forget(cl, x);
}

int curl_loop_setopt_long(curl_loop *cl, CURLMoption opt, long value)
{
    return cl->cu->multi_setopt(cl->multi, opt, value) == CURLM_OK ? 0 : -1;
}
