/* source_file.c: replays a recorded file or stdin, as fast as possible or at the recorded pace
 * (from the telegrams' own timestamps); at the end the meter is marked stopped. A named pipe
 * (FIFO) is a stream instead: its writers come and go, and p1d waits for the next one. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "source_impl.h"

#define FILE_BUF_MAX 65536         /* bytes read per step */
#define FILE_STEP_MAX (1u << 20)   /* bytes decoded before yielding to the loop */
#define FILE_PACE_MAX_MS 3600000LL /* longest pause between recorded telegrams */
/* A file replayed fast stops reading while its meter has this many readings waiting for the
 * database (the store commits them at once from STORE_LIVE_BATCH on, and keeps at most
 * STORE_QUEUE_DEFAULT while the disk refuses: more would push the oldest out). */
#define FILE_BACKLOG_MAX     2500
#define FILE_BACKLOG_WAIT_MS 50 /* then looks again this often */

typedef struct file_src {
    int fd;
    int own_fd;          /* 0 for stdin: not ours to close */
    int polled;          /* a pipe or tty: wait for epoll; a regular file is always readable */
    int fifo;            /* a named pipe: the end of a writer is not the end of the input */
    int writer;          /* fifo: a writer has sent bytes since the pipe was (re)opened */
    int eof;
    int done;
    loop_watch *watch;   /* exists only while waiting for a polled fd */
    loop_timer *pump;    /* decodes the next chunk (0 ms): yields between chunks */
    loop_timer *release; /* pace=recorded: delivers the held telegram */
    int64_t prev_time;   /* unix s of the last released telegram, INT64_MIN none */
    uint8_t buf[FILE_BUF_MAX];
    size_t pos, len;
} file_src;

static void file_done(source *s, file_src *f, const char *why)
{
    f->done = 1;
    loop_watch_del(f->watch);
    f->watch = NULL;
    if (why)
        source_status(s, METER_STOPPED, LOG_LEVEL_WARN, "stopped: %s", why);
    else
        source_status(s, METER_STOPPED, LOG_LEVEL_INFO,
                      "end of %s: %" PRIu64 " telegram%s, %" PRIu64 " rejected",
                      s->cfg.kind == CONFIG_STDIN ? "stdin" : s->cfg.target, s->m->telegrams,
                      s->m->telegrams == 1 ? "" : "s", s->m->rejected);
}

/* Opens the file: never blocks, not even on a FIFO without a writer or on a tty (whose
 * carrier it would wait for, and which must not become p1d's controlling terminal). */
static int file_open(const char *path)
{
    return open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
}

static void fifo_waiting(source *s)
{
    source_status(s, METER_WAITING, LOG_LEVEL_WARN, "waiting for a writer on %s (a named pipe)",
                  s->cfg.target);
}

/* A FIFO's writer closed: waits for the next one. The FIFO is opened again before the old fd is
 * closed: the old one would report a hang-up for ever, and a writer that comes meanwhile finds a
 * reader. */
static void fifo_reopen(source *s, file_src *f)
{
    if (f->writer)
        log_info("%s: the writer on %s closed: %" PRIu64 " telegram%s, %" PRIu64 " rejected so far",
                 s->m->name, s->cfg.target, s->m->telegrams, s->m->telegrams == 1 ? "" : "s",
                 s->m->rejected);
    int fd = file_open(s->cfg.target);
    if (fd < 0) {
        file_done(s, f, strerror(errno));
        return;
    }
    loop_watch_del(f->watch); /* on the old fd */
    f->watch = NULL;
    close(f->fd);
    f->fd = fd;
    f->eof = 0;
    f->writer = 0;
    f->pos = f->len = 0;
    fifo_waiting(s);
}

/* The input ended (everything decoded and released): stops, or waits for a FIFO's next writer. */
static void file_ended(source *s, file_src *f)
{
    if (f->fifo)
        fifo_reopen(s, f);
    else
        file_done(s, f, NULL);
}

/* pace=recorded: when to release the held telegram, from its 0-0:1.0.0 time. */
static int64_t pace_delay(source *s, file_src *f)
{
    int64_t t;
    if (!s->held_reading->has_time || p1_time_to_unix(&s->held_reading->time, &t) < 0)
        return 0;
    int64_t prev = f->prev_time;
    f->prev_time = t;
    if (prev == INT64_MIN || t <= prev)
        return 0;
    int64_t ms = (t - prev) * 1000 / s->cfg.speedup;
    return ms > FILE_PACE_MAX_MS ? FILE_PACE_MAX_MS : ms;
}

/* Decodes buffered bytes; in pace mode stops after the line that completed a telegram.
 * Returns 1 when a telegram is held (wait for the release timer). */
static int file_decode(source *s, file_src *f)
{
    while (f->pos < f->len) {
        size_t n = f->len - f->pos;
        if (s->hold && s->crypt.has_key) {
            /* An encrypted frame ends at its length, not at a line end, and its bytes are
             * random: frames with no '\n' byte among them would complete two telegrams in one
             * piece, and the held one would be overwritten (lost). One byte at a time. */
            n = 1;
        } else if (s->hold) {
            const uint8_t *nl = memchr(f->buf + f->pos, '\n', n);
            if (nl)
                n = (size_t)(nl - (f->buf + f->pos)) + 1;
        }
        source_feed(s, f->buf + f->pos, n);
        f->pos += n;
        if (s->held) {
            loop_timer_arm(f->release, pace_delay(s, f));
            return 1;
        }
    }
    return 0;
}

static void on_readable(void *user, int fd, uint32_t events);

static void file_step(source *s, file_src *f)
{
    size_t budget = FILE_STEP_MAX;
    while (!f->done) {
        if (file_decode(s, f))
            return;
        if (f->eof) {
            source_finish(s);
            if (s->held) {
                loop_timer_arm(f->release, pace_delay(s, f));
                return;
            }
            file_ended(s, f);
            continue; /* a FIFO waits for its next writer below */
        }
        if (f->polled) {
            if (!f->watch)
                f->watch = loop_watch_add(s->l, f->fd, EPOLLIN, on_readable, s);
            if (!f->watch)
                file_done(s, f, strerror(errno));
            return;
        }
        if (budget < sizeof f->buf) {
            loop_timer_arm(f->pump, 0); /* let the other meters and HTTP have a turn */
            return;
        }
        if (s->m->store_backlog >= FILE_BACKLOG_MAX) {
            /* the database is behind (or refuses): no reading may be pushed out of its queue */
            loop_timer_arm(f->pump, FILE_BACKLOG_WAIT_MS);
            return;
        }
        ssize_t n = read(f->fd, f->buf, sizeof f->buf);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            file_done(s, f, strerror(errno));
            return;
        }
        f->pos = 0;
        f->len = (size_t)n;
        f->eof = n == 0;
        budget -= (size_t)n;
    }
}

static void on_readable(void *user, int fd, uint32_t events)
{
    source *s = user;
    file_src *f = s->impl;
    (void)events;
    ssize_t n = read(fd, f->buf, sizeof f->buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    /* Stop watching while the bytes are decoded: a held telegram must not be overtaken. */
    loop_watch_del(f->watch);
    f->watch = NULL;
    if (n < 0) {
        file_done(s, f, strerror(errno));
        return;
    }
    if (n > 0 && f->fifo && !f->writer) {
        f->writer = 1;
        source_connected(s);
        source_status(s, METER_CONNECTED, LOG_LEVEL_INFO, "reading %s (a named pipe)",
                      s->cfg.target);
    }
    f->pos = 0;
    f->len = (size_t)n;
    f->eof = n == 0;
    file_step(s, f);
}

static void on_pump(void *user)
{
    source *s = user;
    file_step(s, s->impl);
}

static void on_release(void *user)
{
    source *s = user;
    file_src *f = s->impl;
    source_release(s);
    if (f->eof && f->pos >= f->len)
        file_ended(s, f);
    file_step(s, f);
}

static int file_start(source *s)
{
    file_src *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    s->impl = f;
    f->prev_time = INT64_MIN;
    f->fd = -1;
    f->pump = loop_timer_new(s->l, on_pump, s);
    f->release = loop_timer_new(s->l, on_release, s);
    if (!f->pump || !f->release)
        return -ENOMEM;
    if (s->cfg.pace == CONFIG_PACE_RECORDED) {
        s->held_reading = malloc(sizeof *s->held_reading);
        s->held_raw = malloc(P1_TELEGRAM_MAX);
        if (!s->held_reading || !s->held_raw)
            return -ENOMEM;
        s->hold = 1;
    }
    if (s->cfg.kind == CONFIG_STDIN) {
        f->fd = STDIN_FILENO;
    } else {
        f->fd = file_open(s->cfg.target);
        if (f->fd < 0) {
            f->done = 1;
            source_status(s, METER_STOPPED, LOG_LEVEL_WARN, "cannot open %s (%s)", s->cfg.target,
                          strerror(errno));
            return 0; /* the daemon keeps serving; the meter shows why it stopped */
        }
        f->own_fd = 1;
        struct stat st;
        f->fifo = fstat(f->fd, &st) == 0 && S_ISFIFO(st.st_mode);
    }
    /* epoll refuses regular files (EPERM): those are read from the pump timer instead, and
     * blocking reads are what they need (O_NONBLOCK was for the open). Polled fds stay
     * non-blocking: on_readable reads once per readiness. */
    f->watch = loop_watch_add(s->l, f->fd, EPOLLIN, on_readable, s);
    f->polled = f->watch != NULL;
    if (!f->polled && f->own_fd)
        fcntl(f->fd, F_SETFL, fcntl(f->fd, F_GETFL) & ~O_NONBLOCK);
    if (f->fifo) {
        fifo_waiting(s); /* connected once a writer sends */
        return 0;
    }
    source_connected(s);
    source_status(s, METER_CONNECTED, LOG_LEVEL_INFO, "replaying %s%s",
                  s->cfg.kind == CONFIG_STDIN ? "stdin" : s->cfg.target,
                  s->hold ? " at the recorded pace" : "");
    if (!f->polled)
        loop_timer_arm(f->pump, 0);
    return 0;
}

static void file_stop(source *s)
{
    file_src *f = s->impl;
    if (!f)
        return;
    loop_watch_del(f->watch);
    loop_timer_del(f->pump);
    loop_timer_del(f->release);
    if (f->own_fd)
        close(f->fd);
    free(f);
    s->impl = NULL;
}

const source_ops source_file_ops = {file_start, file_stop, NULL};
