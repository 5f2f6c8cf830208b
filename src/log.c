/* log.c: stderr logging with levels; one line per write() so lines never interleave. */
#define _GNU_SOURCE
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 1024

/* The one piece of process-wide state in the daemon: logging is called from every module and
 * threading a logger through each would add noise without adding safety (one thread). */
static struct {
    log_level level;
    int journal;
} log_state = {LOG_LEVEL_INFO, 0};

static const char *const log_names[] = {"error", "warn", "info", "debug"};
/* syslog priorities understood by journald's stream prefix parsing. */
static const int log_prio[] = {3, 4, 6, 7};

void log_init(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    log_state.journal = js != NULL && js[0] != '\0';
}

void log_set_level(log_level l)
{
    if (l >= LOG_LEVEL_ERROR && l <= LOG_LEVEL_DEBUG)
        log_state.level = l;
}

log_level log_get_level(void)
{
    return log_state.level;
}

int log_enabled(log_level l)
{
    return l <= log_state.level;
}

const char *log_level_name(log_level l)
{
    return l >= LOG_LEVEL_ERROR && l <= LOG_LEVEL_DEBUG ? log_names[l] : "unknown";
}

void log_msg(log_level l, const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    size_t n = 0;
    if (!log_enabled(l))
        return;
    if (log_state.journal) {
        n = (size_t)snprintf(line, sizeof line, "<%d>%s: ", log_prio[l], log_names[l]);
    } else {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
        n += (size_t)snprintf(line + n, sizeof line - n, ".%03ldZ p1d: %s: ", ts.tv_nsec / 1000000,
                              log_names[l]);
    }
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line + n, sizeof line - n, fmt, ap);
    va_end(ap);
    if (k < 0)
        k = 0;
    n += (size_t)k;
    if (n > sizeof line - 2)
        n = sizeof line - 2; /* truncated message: still one whole line */
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w; /* nowhere left to report a failing stderr */
}

int log_burst_take(log_burst *b, long long now_ms, unsigned max)
{
    long long sec = now_ms / 1000;
    if (sec != b->sec) {
        b->sec = sec;
        b->lines = 0;
    }
    if (b->lines >= max)
        return b->suppressed++ == 0 ? -1 : 0;
    b->lines++;
    return 1;
}

unsigned log_burst_flush(log_burst *b)
{
    unsigned n = b->suppressed;
    b->suppressed = 0;
    return n;
}
