/* source_log.c: the sources' status lines, summed up per message when many meters change at
 * once, so that a fleet's outage reads as a few lines that say how many and which. */
#include "source_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "meter.h"

/* One message summed up: how many meters said it, the first few of them. */
typedef struct slog_group {
    int level;    /* the most severe level counted */
    unsigned count;
    unsigned listed;
    char key[SOURCE_LOG_KEY_MAX];
    char first[SOURCE_LOG_KEY_MAX]; /* the first line as it was, for a group of one */
    char names[SOURCE_LOG_NAMES * (METER_NAME_MAX + 2)]; /* "a, b, c" */
} slog_group;

struct source_log {
    loop_timer *timer;
    int armed;
    int64_t win_end;     /* end of the current one-second window */
    unsigned lines;      /* meters logged one by one in it: logged[]; one meter's own changes */
    char logged[SOURCE_LOG_BURST][METER_NAME_MAX + 1]; /* never sum up */
    int64_t storm_until; /* a summary was printed: until then every line is summed up too */
    size_t n;
    slog_group g[SOURCE_LOG_GROUPS];
};

static const char other_key[] = "other status changes (each meter's state and last_error: "
                                "/api/meters)";

static void flush(source_log *sl)
{
    for (size_t i = 0; i < sl->n; i++) {
        const slog_group *g = &sl->g[i];
        if (g->count == 1 && strcmp(g->key, other_key) != 0) {
            log_msg((log_level)g->level, "%s: %s", g->names, g->first);
            continue;
        }
        char more[40] = "";
        if (g->count > g->listed)
            snprintf(more, sizeof more, " and %u more", g->count - g->listed);
        log_msg((log_level)g->level, "%u meters: %s: %s%s", g->count, g->key, g->names, more);
    }
    sl->n = 0;
}

static void on_timer(void *user)
{
    source_log *sl = user;
    sl->armed = 0;
    flush(sl);
    sl->storm_until = loop_now_ms() + SOURCE_LOG_WINDOW_MS;
}

/* The group for key: an existing one, a new one, or (all taken) the last one, for the others. */
static slog_group *group_of(source_log *sl, const char *key)
{
    for (size_t i = 0; i < sl->n; i++)
        if (strcmp(sl->g[i].key, key) == 0)
            return &sl->g[i];
    if (sl->n == SOURCE_LOG_GROUPS) {
        slog_group *g = &sl->g[SOURCE_LOG_GROUPS - 1];
        snprintf(g->key, sizeof g->key, "%s", other_key);
        return g;
    }
    slog_group *g = &sl->g[sl->n++];
    memset(g, 0, sizeof *g);
    g->level = LOG_LEVEL_DEBUG;
    snprintf(g->key, sizeof g->key, "%s", key);
    return g;
}

/* Whether a line of meter `name` is logged as it is: outside a storm, for the first
 * SOURCE_LOG_BURST meters of the window (a single meter whose cable flaps is never summed up). */
static int one_by_one(source_log *sl, int64_t now, const char *name)
{
    if (now < sl->storm_until)
        return 0;
    for (unsigned i = 0; i < sl->lines; i++)
        if (strcmp(sl->logged[i], name) == 0)
            return 1;
    if (sl->lines == SOURCE_LOG_BURST)
        return 0;
    snprintf(sl->logged[sl->lines++], sizeof sl->logged[0], "%s", name);
    return 1;
}

void source_log_status(source_log *sl, int level, const char *name, const char *msg,
                       const char *key)
{
    if (!log_enabled((log_level)level))
        return;
    int64_t now = loop_now_ms();
    if (sl && now >= sl->win_end) {
        sl->win_end = now + SOURCE_LOG_WINDOW_MS;
        sl->lines = 0;
    }
    if (!sl || one_by_one(sl, now, name)) {
        log_msg((log_level)level, "%s: %s", name, msg);
        return;
    }
    if (level != LOG_LEVEL_DEBUG)
        log_debug("%s: %s", name, msg);
    slog_group *g = group_of(sl, key);
    if (g->count++ == 0)
        snprintf(g->first, sizeof g->first, "%s", msg);
    if (level < g->level)
        g->level = level;
    if (g->listed < SOURCE_LOG_NAMES) {
        size_t len = strlen(g->names);
        snprintf(g->names + len, sizeof g->names - len, "%s%s", len ? ", " : "", name);
        g->listed++;
    }
    if (!sl->armed) {
        int64_t at = sl->storm_until > now ? sl->storm_until : sl->win_end;
        loop_timer_arm(sl->timer, at - now);
        sl->armed = 1;
    }
}

source_log *source_log_new(loop *l)
{
    source_log *sl = calloc(1, sizeof *sl);
    if (!sl)
        return NULL;
    sl->timer = loop_timer_new(l, on_timer, sl);
    if (!sl->timer) {
        free(sl);
        return NULL;
    }
    return sl;
}

void source_log_free(source_log *sl)
{
    if (!sl)
        return;
    flush(sl);
    loop_timer_del(sl->timer);
    free(sl);
}
