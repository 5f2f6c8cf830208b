/* source_serial.c: a P1 cable on a tty: exclusive open, raw termios, speed auto-detection, and
 * reopening with backoff when the cable is unplugged or the line stays silent. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include "log.h"
#include "source_impl.h"

#define SERIAL_DETECT_REJECTS 3 /* this many rejects and no accept: the speed is wrong */
#define SERIAL_DETECT_GROWTH 4  /* the detection window grows up to this factor */

/* The two line settings DSMR meters use. */
enum { SET_115200 = 0, SET_9600 = 1 };

typedef struct serial {
    int fd;
    loop_watch *watch;
    loop_timer *retry;  /* reopen after a loss or a silent spell */
    loop_timer *detect; /* baud=auto: give up on the current speed */
    loop_timer *quiet;  /* idle line: finish a telegram, then report the line idle */
    int setting;        /* SET_* in use */
    int detected;       /* a telegram decoded with the current setting */
    int rejects;        /* rejects since the setting was applied */
    int switches;       /* speed changes without success, for the growing window */
    int idle_reported;  /* silent for idle_timeout and said so; with idle_reopen the spell of
                         * reopens lasts until a byte arrives or an open fails */
    int64_t last_byte;  /* monotonic ms */
    uint64_t got;       /* bytes read since the setting was applied */
    int64_t window;     /* the detection window armed last, ms */
} serial;

static void serial_open(source *s);

static const char *setting_name(const source *s, int setting)
{
    if (setting == SET_9600)
        return s->cfg.parity == CONFIG_PARITY_NONE ? "9600 8N1" : "9600 7E1";
    if (s->mask)
        return "115200 7E1";
    return s->cfg.parity == CONFIG_PARITY_EVEN ? "115200 7E1" : "115200 8N1";
}

/* Finds who holds the flock on path, from /proc/locks; writes "pid N (comm)" or "". */
static void lock_holder(const char *path, char *out, size_t cap)
{
    struct stat st;
    char line[256];
    out[0] = '\0';
    if (stat(path, &st) < 0)
        return;
    FILE *f = fopen("/proc/locks", "re");
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        unsigned maj, min;
        unsigned long ino;
        int pid;
        char kind[16], mode[16], rw[16];
        if (sscanf(line, "%*d: %15s %15s %15s %d %x:%x:%lu", kind, mode, rw, &pid, &maj, &min,
                   &ino) != 7)
            continue;
        if (strcmp(kind, "FLOCK") != 0 || ino != (unsigned long)st.st_ino ||
            maj != major(st.st_dev) || min != minor(st.st_dev))
            continue;
        char comm_path[64], comm[64] = "?";
        snprintf(comm_path, sizeof comm_path, "/proc/%d/comm", pid);
        FILE *c = fopen(comm_path, "re");
        if (c) {
            if (fgets(comm, sizeof comm, c))
                comm[strcspn(comm, "\n")] = '\0';
            fclose(c);
        }
        snprintf(out, cap, "pid %d (%s)", pid, comm);
        break;
    }
    fclose(f);
}

static int apply_setting(source *s, serial *se)
{
    struct termios tio;
    if (tcgetattr(se->fd, &tio) < 0)
        return -errno;
    cfmakeraw(&tio);
    tio.c_cflag |= CLOCAL | CREAD;
    tio.c_cflag &= ~(CSIZE | PARENB | PARODD | CSTOPB | CRTSCTS);
    tio.c_iflag &= ~(INPCK | IXON | IXOFF);
    int seven = se->setting == SET_9600 ? s->cfg.parity != CONFIG_PARITY_NONE
                                        : s->cfg.parity == CONFIG_PARITY_EVEN;
    /* 7E1 without INPCK: the parity bit is read but not checked, so an 8N1 ASCII sender
     * still decodes; a line error becomes a CRC error rather than a silently dropped byte. */
    tio.c_cflag |= seven ? (CS7 | PARENB) : CS8;
    speed_t sp = se->setting == SET_9600 ? B9600 : B115200;
    cfsetispeed(&tio, sp);
    cfsetospeed(&tio, sp);
    tio.c_cc[VMIN] = 1;
    tio.c_cc[VTIME] = 0;
    if (tcsetattr(se->fd, TCSANOW, &tio) < 0)
        return -errno;
    tcflush(se->fd, TCIFLUSH);
    /* Bit-7 masking only makes sense for text read as 8N1 at 115200, and never when the meter
     * sends encrypted (binary) frames. */
    int twin = se->setting == SET_115200 && s->cfg.parity == CONFIG_PARITY_AUTO &&
               !s->crypt.has_key && !s->mask;
    if (source_twin(s, twin) < 0)
        return -ENOMEM;
    source_reset(s);
    /* se->detected stays: a reopen (unplugged, idle) keeps the speed found; only a switch
     * (switch_speed) starts detection again. */
    se->rejects = 0;
    se->got = 0;
    return 0;
}

static void arm_detect(source *s, serial *se)
{
    if (s->cfg.baud != CONFIG_BAUD_AUTO || se->detected)
        return;
    /* Each full round over both speeds doubles the window: 1, 1, 2, 2, 4, 4, ... */
    int sh = se->switches / 2 < 2 ? se->switches / 2 : 2;
    int64_t f = (int64_t)1 << sh;
    if (f > SERIAL_DETECT_GROWTH)
        f = SERIAL_DETECT_GROWTH;
    se->window = s->cfg.detect_timeout * f;
    loop_timer_arm(se->detect, se->window);
}

static void switch_speed(source *s, serial *se, const char *why)
{
    const char *from = setting_name(s, se->setting);
    se->setting = se->setting == SET_115200 ? SET_9600 : SET_115200;
    se->switches++;
    s->mask = 0;
    /* Once the cable is blamed, the endless alternation is not news: one line per change. */
    log_msg(s->garbage_reported ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, "%s: %s at %s; trying %s",
            s->m->name, why, from, setting_name(s, se->setting));
    if (!s->garbage_reported)
        snprintf(s->m->last_error, sizeof s->m->last_error, "detecting speed: trying %s",
                 setting_name(s, se->setting));
    se->detected = 0;
    int rc = apply_setting(s, se);
    if (rc < 0)
        log_warn("%s: cannot change the line settings of %s: %s", s->m->name, s->cfg.target,
                 strerror(-rc));
    arm_detect(s, se);
}

static void on_detect(void *user)
{
    source *s = user;
    serial *se = s->impl;
    if (se->fd < 0 || se->detected)
        return;
    /* A silent line says nothing about the speed (the idle warning reports it): wait for bytes. */
    if (se->got == 0) {
        loop_timer_arm(se->detect, se->window);
        return;
    }
    char why[64];
    if (se->window % 1000 == 0)
        snprintf(why, sizeof why, "no telegram within %lld s", (long long)(se->window / 1000));
    else
        snprintf(why, sizeof why, "no telegram within %lld ms", (long long)se->window);
    switch_speed(s, se, why);
}

static void serial_close(serial *se)
{
    if (se->fd < 0)
        return;
    loop_watch_del(se->watch);
    se->watch = NULL;
    /* A pty keeps TIOCEXCL after its last close (its master holds the tty): our own reopen would
     * then be refused (EBUSY) unless p1d has CAP_SYS_ADMIN. */
    ioctl(se->fd, TIOCNXCL);
    close(se->fd);
    se->fd = -1;
    loop_timer_disarm(se->detect);
    loop_timer_disarm(se->quiet);
}

/* Schedules the next open after a failure (already reported); ends a silent spell, so the open
 * that works is logged again. */
static void retry_later(source *s, serial *se)
{
    se->idle_reported = 0;
    loop_timer_arm(se->retry, source_backoff(s));
}

static void serial_lost(source *s, serial *se, const char *why)
{
    source_finish(s);
    serial_close(se);
    source_status(s, METER_WAITING, LOG_LEVEL_WARN, "lost %s (%s: unplugged?); reopening",
                  s->cfg.target, why);
    retry_later(s, se);
}

/* Bytes but no telegram (source_garbage): on a serial line, a cable that does not invert the
 * signal or the wrong speed. With baud=auto only "trying 9600 7E1" would show, forever. */
static void check_garbage(source *s, serial *se)
{
    /* baud=auto: only once both speeds had a whole window (a DSMR 2.2 meter is found in the
     * 9600 one); a fixed speed, or one found before a reopen, gets one window. */
    if (s->cfg.baud == CONFIG_BAUD_AUTO && !se->detected && se->switches < 2)
        return;
    int pct = source_garbage(s, s->cfg.detect_timeout);
    if (pct < 0)
        return;
    if (pct >= 50)
        source_status(s, METER_CONNECTED, LOG_LEVEL_WARN,
                      "bytes arrive on %s but no telegram decodes (%d%% not text): a cable that "
                      "does not invert the signal, or the wrong speed?",
                      s->cfg.target, pct);
    else
        source_status(s, METER_CONNECTED, LOG_LEVEL_WARN,
                      "text arrives on %s but no telegram decodes: wrong speed, or noise?",
                      s->cfg.target);
}

static void on_readable(void *user, int fd, uint32_t events)
{
    source *s = user;
    serial *se = s->impl;
    uint8_t buf[SOURCE_READ_MAX];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
        se->last_byte = loop_now_ms();
        se->got += (uint64_t)n;
        if (se->idle_reported) {
            se->idle_reported = 0;
            source_backoff_reset(s);
            source_status(s, METER_CONNECTED, LOG_LEVEL_INFO, "data on %s again", s->cfg.target);
        }
        source_feed(s, buf, (size_t)n);
        check_garbage(s, se);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR) && !(events & (EPOLLHUP | EPOLLERR)))
        return;
    /* A tty hang-up reads as 0 bytes, an unplugged USB adapter as EIO. */
    serial_lost(s, se, n == 0 ? "hang-up" : n < 0 && errno != EAGAIN ? strerror(errno) : "hang-up");
}

/* Warns that the line has been silent for `idle` ms; `then` says what p1d does about it, st what
 * the meter is meanwhile (connected: the port stays open; waiting: closed until the reopen). */
static void report_idle(source *s, meter_state st, int64_t idle, const char *then)
{
    /* idle_timeout may be under a second: "for 0 s" would say nothing. */
    source_status(s, st, LOG_LEVEL_WARN,
                  "no data on %s for %lld %s (is the request line powered?)%s", s->cfg.target,
                  (long long)(idle < 1000 ? idle : idle / 1000), idle < 1000 ? "ms" : "s", then);
}

/* A line silent for idle_timeout: USB serial cables (PL2303, CH340, FTDI clones) can wedge after a
 * USB glitch or a meter reboot and deliver again only once the tty is closed and reopened, which
 * also applies termios anew and drops and raises DTR/RTS (the request line, on some cables). The
 * port stays closed for the backoff delay so that line really drops. Said once per silent spell
 * (the message does not change between reopens), the reopens themselves at debug level. */
static void idle_reopen(source *s, serial *se)
{
    int64_t delay = source_backoff(s);
    s->m->idle_reopens++;
    serial_close(se);
    /* Closed for the pause: waiting, as any source between reconnects (connected_since null). */
    report_idle(s, METER_WAITING, s->cfg.idle_timeout, "; reopening it");
    log_debug("%s: reopening %s in %lld ms (idle reopen %llu)", s->m->name, s->cfg.target,
              (long long)delay, (unsigned long long)s->m->idle_reopens);
    se->idle_reported = 1;
    loop_timer_arm(se->retry, delay);
}

/* How long a quiet line ends a telegram: SOURCE_QUIET_MS, or less when idle_timeout is. */
static int64_t quiet_ms(const source *s)
{
    return s->cfg.idle_timeout < SOURCE_QUIET_MS ? s->cfg.idle_timeout : SOURCE_QUIET_MS;
}

static void on_quiet(void *user)
{
    source *s = user;
    serial *se = s->impl;
    int64_t idle = loop_now_ms() - se->last_byte;
    int64_t quiet = quiet_ms(s);
    /* The quiet time completes telegrams that have no end line (DSMR 2.2). Once the telegrams end
     * in "!CRC", a pause mid-telegram is a serial port that comes over a radio or a network (a
     * Bluetooth rfcomm tty, a socat or RFC 2217 pty from a WiFi dongle) stalling, as on tcp: the
     * rest follows. A telegram really cut off is reported at the next header, when the line is
     * lost, or at idle_timeout (before the reopen, which would drop it unreported). */
    if (idle >= quiet && (!s->end_lines || idle >= s->cfg.idle_timeout))
        source_finish(s);
    if (idle >= s->cfg.idle_timeout) {
        if (s->cfg.idle_reopen) {
            idle_reopen(s, se);
            return;
        }
        if (!se->idle_reported) {
            se->idle_reported = 1;
            report_idle(s, METER_CONNECTED, idle, "");
        }
        loop_timer_arm(se->quiet, s->cfg.idle_timeout);
        return;
    }
    loop_timer_arm(se->quiet, idle >= quiet ? s->cfg.idle_timeout - idle : quiet - idle);
}

static void on_retry(void *user)
{
    serial_open(user);
}

static void serial_open(source *s)
{
    serial *se = s->impl;
    const char *path = s->cfg.target;
    int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == EBUSY)
            source_status(s, METER_WAITING, LOG_LEVEL_WARN,
                          "waiting for %s (in exclusive use by another program: ModemManager or "
                          "brltty?)", path);
        else if (e == EACCES || e == EPERM)
            source_status(s, METER_WAITING, LOG_LEVEL_WARN,
                          "waiting for %s (permission denied: add the user p1d runs as to the "
                          "dialout group)", path);
        else if (e == EISDIR)
            source_status(s, METER_WAITING, LOG_LEVEL_WARN,
                          "waiting for %s (a directory, not a serial device)", path);
        else if (e == ENOENT || e == ENODEV || e == ENXIO)
            source_status(s, METER_WAITING, LOG_LEVEL_WARN,
                          "waiting for %s (%s): is the cable plugged in?", path, strerror(e));
        else
            source_status(s, METER_WAITING, LOG_LEVEL_WARN, "waiting for %s (%s)", path,
                          strerror(e));
        retry_later(s, se);
        return;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        char who[96];
        lock_holder(path, who, sizeof who);
        source_status(s, METER_WAITING, LOG_LEVEL_WARN, "waiting for %s (locked by %s)", path,
                      who[0] ? who : "another reader");
        close(fd);
        retry_later(s, se);
        return;
    }
    se->fd = fd;
    /* TIOCEXCL also keeps out readers that do not flock; it fails harmlessly on non-ttys. */
    ioctl(fd, TIOCEXCL);
    int rc = apply_setting(s, se);
    if (rc < 0) {
        serial_close(se);
        source_status(s, METER_WAITING, LOG_LEVEL_WARN, "waiting for %s (%s)", path,
                      rc == -ENOTTY ? "not a serial device" : strerror(-rc));
        retry_later(s, se);
        return;
    }
    se->watch = loop_watch_add(s->l, fd, EPOLLIN, on_readable, s);
    if (!se->watch) {
        int e = errno;
        serial_close(se);
        source_status(s, METER_WAITING, LOG_LEVEL_WARN, "waiting for %s (%s)", path, strerror(e));
        retry_later(s, se);
        return;
    }
    source_connected(s);
    if (se->idle_reported) {
        /* Reopened in a silent spell: its warning stays on the meter until bytes arrive. */
        s->m->state = METER_CONNECTED;
        log_debug("%s: reopened %s at %s", s->m->name, path, setting_name(s, se->setting));
    } else {
        source_status(s, METER_CONNECTED, LOG_LEVEL_INFO, "reading %s at %s%s", path,
                      setting_name(s, se->setting),
                      s->cfg.baud == CONFIG_BAUD_AUTO && !se->detected ? " (detecting)" : "");
    }
    se->last_byte = loop_now_ms();
    source_undecoded_reset(s);
    loop_timer_arm(se->quiet, quiet_ms(s));
    arm_detect(s, se);
}

static void mark_detected(source *s, serial *se, const char *what)
{
    if (se->detected)
        return;
    se->detected = 1;
    se->switches = 0;
    loop_timer_disarm(se->detect);
    /* Once per source: a reopen (a silent spell, a replugged cable) keeps the speed found. */
    snprintf(s->m->detected, sizeof s->m->detected, "%s", setting_name(s, se->setting));
    log_info("%s: %s at %s", s->m->name, what, s->m->detected);
}

static void serial_telegram(source *s, int ok)
{
    serial *se = s->impl;
    if (ok) {
        mark_detected(s, se, "telegrams decode");
        return;
    }
    /* A whole encrypted frame that only the key failed on, or a telegram whose header, lines and
     * end line all read and only the CRC differs (noise on the line): the speed is right. */
    if (s->key_reject) {
        mark_detected(s, se, "encrypted frames arrive");
        return;
    }
    if (s->reject_error == P1_ERR_CRC_MISMATCH) {
        mark_detected(s, se, "telegrams arrive (with CRC errors)");
        return;
    }
    if (!se->detected && s->cfg.baud == CONFIG_BAUD_AUTO && ++se->rejects >= SERIAL_DETECT_REJECTS)
        switch_speed(s, se, "only rejected telegrams");
}

static int serial_start(source *s)
{
    serial *se = calloc(1, sizeof *se);
    if (!se)
        return -ENOMEM;
    s->impl = se;
    se->fd = -1;
    se->setting = s->cfg.baud == CONFIG_BAUD_9600 ? SET_9600 : SET_115200;
    se->retry = loop_timer_new(s->l, on_retry, s);
    se->detect = loop_timer_new(s->l, on_detect, s);
    se->quiet = loop_timer_new(s->l, on_quiet, s);
    if (!se->retry || !se->detect || !se->quiet)
        return -ENOMEM;
    serial_open(s);
    return 0;
}

static void serial_stop(source *s)
{
    serial *se = s->impl;
    if (!se)
        return;
    serial_close(se);
    loop_timer_del(se->retry);
    loop_timer_del(se->detect);
    loop_timer_del(se->quiet);
    free(se);
    s->impl = NULL;
}

const source_ops source_serial_ops = {serial_start, serial_stop, serial_telegram};
