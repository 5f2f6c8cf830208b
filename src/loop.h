/* loop.h: the daemon's single epoll event loop: fd watches and monotonic timers. */
#ifndef P1D_LOOP_H
#define P1D_LOOP_H

#include <stdint.h>

typedef struct loop loop;
typedef struct loop_watch loop_watch;
typedef struct loop_timer loop_timer;

/* Called when fd is ready; `events` are EPOLL* bits. */
typedef void (*loop_fd_fn)(void *user, int fd, uint32_t events);
/* Called when a timer fires (one-shot; re-arm with loop_timer_arm from inside if needed). */
typedef void (*loop_timer_fn)(void *user);

/* Creates a loop; returns NULL with errno set on failure. Free with loop_free(). */
loop *loop_new(void);
/* Frees the loop and every watch and timer still registered; accepts NULL. */
void loop_free(loop *l);
/* Runs until loop_stop() is called; returns 0 or a negative errno. */
int loop_run(loop *l);
/* Makes loop_run() return after the current iteration. */
void loop_stop(loop *l);
/* Monotonic milliseconds (CLOCK_MONOTONIC). */
int64_t loop_now_ms(void);
/* Wall clock in milliseconds since the epoch (CLOCK_REALTIME). */
int64_t loop_wall_ms(void);
/* Whether the kernel holds the wall clock synchronised (adjtimex: an NTP client such as
 * systemd-timesyncd, chrony or ntpd cleared STA_UNSYNC): 1 yes, 0 no, -errno when it cannot
 * tell (a seccomp filter that refuses adjtimex). */
int loop_wall_synced(void);

/* Watches fd for `events` (EPOLLIN, EPOLLOUT, ...); returns the watch or NULL (errno set). */
loop_watch *loop_watch_add(loop *l, int fd, uint32_t events, loop_fd_fn fn, void *user);
/* Changes the events of a watch; returns 0 or a negative errno. */
int loop_watch_mod(loop_watch *w, uint32_t events);
/* Stops watching and frees w (the fd is not closed); accepts NULL. Safe inside callbacks. */
void loop_watch_del(loop_watch *w);

/* Creates a disarmed timer. Free with loop_timer_del(). */
loop_timer *loop_timer_new(loop *l, loop_timer_fn fn, void *user);
/* Arms t to fire once after `ms` milliseconds (re-arming replaces the previous deadline). */
void loop_timer_arm(loop_timer *t, int64_t ms);
/* Disarms t. */
void loop_timer_disarm(loop_timer *t);
/* Disarms and frees t; accepts NULL. Safe inside callbacks. */
void loop_timer_del(loop_timer *t);

#endif
