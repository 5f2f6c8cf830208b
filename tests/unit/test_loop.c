/* test_loop.c: the event loop: timer order, re-arming and deletion inside callbacks, fd watches
 * deleted while their events are still pending in the same batch. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "../../src/loop.h"
#include "check.h"

typedef struct rec {
    loop *l;
    int order[16];
    int n;
    loop_timer *victim;
    loop_timer *self;
    int rearms;
} rec;

typedef struct tctx {
    rec *r;
    int id;
} tctx;

static void on_fire(void *user)
{
    tctx *c = user;
    if (c->r->n < 16)
        c->r->order[c->r->n++] = c->id;
}

static void on_stop(void *user)
{
    loop_stop(((rec *)user)->l);
}

static void test_order(void)
{
    rec r = {0};
    r.l = loop_new();
    CHECK(r.l != NULL);
    tctx c[5];
    int delays[5] = {30, 10, 20, 10, 0};
    for (int i = 0; i < 5; i++) {
        c[i].r = &r;
        c[i].id = i;
        loop_timer_arm(loop_timer_new(r.l, on_fire, &c[i]), delays[i]);
    }
    loop_timer *disarmed = loop_timer_new(r.l, on_fire, &c[0]);
    loop_timer_arm(disarmed, 5);
    loop_timer_disarm(disarmed);
    loop_timer_arm(loop_timer_new(r.l, on_stop, &r), 60);
    CHECK_EQ_INT(loop_run(r.l), 0);
    CHECK_EQ_INT(r.n, 5);
    /* by deadline; equal deadlines in arming order */
    int want[5] = {4, 1, 3, 2, 0};
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(r.order[i], want[i]);
    loop_free(r.l); /* frees the timers still registered */
}

static void on_kill_other(void *user)
{
    rec *r = user;
    r->order[r->n++] = 100;
    loop_timer_del(r->victim);
    r->victim = NULL;
}

static void on_delete_self(void *user)
{
    rec *r = user;
    r->order[r->n++] = 200;
    loop_timer_del(r->self);
}

static void on_rearm_zero(void *user)
{
    rec *r = user;
    /* Re-arming at 0 ms must not starve the loop: each pass fires it once. */
    if (++r->rearms < 3)
        loop_timer_arm(r->self, 0);
    else
        loop_stop(r->l);
}

static void test_delete_inside(void)
{
    rec r = {0};
    r.l = loop_new();
    tctx v = {&r, 7};
    r.victim = loop_timer_new(r.l, on_fire, &v);
    loop_timer_arm(r.victim, 5);
    loop_timer_arm(loop_timer_new(r.l, on_kill_other, &r), 5); /* same deadline, armed later */
    loop_timer *first = loop_timer_new(r.l, on_kill_other, &r);
    loop_timer_arm(first, 1);
    r.self = loop_timer_new(r.l, on_delete_self, &r);
    loop_timer_arm(r.self, 2);
    loop_timer_arm(loop_timer_new(r.l, on_stop, &r), 20);
    loop_run(r.l);
    /* first (1 ms) deletes the victim, so it never fires; self deletes itself at 2 ms */
    CHECK_EQ_INT(r.n, 3);
    CHECK_EQ_INT(r.order[0], 100);
    CHECK_EQ_INT(r.order[1], 200);
    CHECK_EQ_INT(r.order[2], 100);
    loop_free(r.l);

    rec z = {0};
    z.l = loop_new();
    z.self = loop_timer_new(z.l, on_rearm_zero, &z);
    loop_timer_arm(z.self, 0);
    CHECK_EQ_INT(loop_run(z.l), 0);
    CHECK_EQ_INT(z.rearms, 3);
    loop_free(z.l);
}

typedef struct wctx {
    loop_watch *w[2];
    int fired[2];
    int fds[2];
} wctx;

static void on_fd(void *user, int fd, uint32_t events)
{
    wctx *c = user;
    (void)events;
    int i = fd == c->fds[0] ? 0 : 1;
    c->fired[i]++;
    /* Whoever runs first deletes both watches; the other's pending event must be skipped. */
    loop_watch_del(c->w[0]);
    loop_watch_del(c->w[1]);
    c->w[0] = c->w[1] = NULL;
}

static void test_watch_delete_in_batch(void)
{
    wctx c = {0};
    loop *l = loop_new();
    int p1[2], p2[2];
    CHECK(pipe(p1) == 0 && pipe(p2) == 0);
    c.fds[0] = p1[0];
    c.fds[1] = p2[0];
    CHECK(write(p1[1], "x", 1) == 1 && write(p2[1], "y", 1) == 1);
    c.w[0] = loop_watch_add(l, p1[0], EPOLLIN, on_fd, &c);
    c.w[1] = loop_watch_add(l, p2[0], EPOLLIN, on_fd, &c);
    CHECK(c.w[0] && c.w[1]);
    rec r = {0};
    r.l = l;
    loop_timer_arm(loop_timer_new(l, on_stop, &r), 20);
    loop_run(l);
    CHECK_EQ_INT(c.fired[0] + c.fired[1], 1);
    loop_free(l);
    close(p1[0]);
    close(p1[1]);
    close(p2[0]);
    close(p2[1]);
}

static void test_clock(void)
{
    int64_t a = loop_now_ms();
    usleep(20000);
    int64_t b = loop_now_ms();
    CHECK(b - a >= 19 && b - a < 1000);
    CHECK(loop_wall_ms() > 1600000000000LL);
}

int main(void)
{
    RUN(test_order);
    RUN(test_delete_inside);
    RUN(test_watch_delete_in_batch);
    RUN(test_clock);
    return check_summary("test_loop");
}
