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

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
