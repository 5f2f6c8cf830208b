/* log.h: the daemon's logging to stderr with levels (journald priority prefixes under systemd). */
#ifndef P1D_LOG_H
#define P1D_LOG_H

typedef enum log_level {
    LOG_LEVEL_ERROR = 0,
    LOG_LEVEL_WARN,
    LOG_LEVEL_INFO,
    LOG_LEVEL_DEBUG,
} log_level;

/* Decides the line format once: under systemd (JOURNAL_STREAM set) lines carry a "<N>" priority
 * prefix and no time, otherwise an ISO 8601 UTC time. Call before the first log line. */
void log_init(void);
/* Sets the most verbose level that is printed (default LOG_LEVEL_INFO). */
void log_set_level(log_level l);
/* The current level. */
log_level log_get_level(void);
/* 1 when a line at level l would be printed; lets callers skip building expensive messages. */
int log_enabled(log_level l);
/* Name of a level ("error", "warn", "info", "debug"). */
const char *log_level_name(log_level l);
/* Prints one line "p1d: <level>: <message>" to stderr when l is enabled. */
void log_msg(log_level l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A burst limit for a source of log lines that a peer can trigger at will (a client reconnecting
 * in a loop): at most `max` lines a second; the rest are counted, for one line that says how
 * many were left out. Zero-initialise. */
typedef struct log_burst {
    long long sec;
    unsigned lines, suppressed;
} log_burst;
/* 1: log this line. 0: over the limit, counted. -1: the first line counted since the last
 * log_burst_flush(): arm a timer that reports the count (about a second later). */
int log_burst_take(log_burst *b, long long now_ms, unsigned max);
/* The lines counted since the last call, reset to 0. */
unsigned log_burst_flush(log_burst *b);

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
