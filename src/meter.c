/* meter.c: the meter registry: per-meter state, counters, recent samples and the hook fan-out. */
#define _GNU_SOURCE
#include "meter.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void meters_init(meters *ms)
{
    memset(ms, 0, sizeof *ms);
}

void meters_free(meters *ms)
{
    if (!ms)
        return;
    for (size_t i = 0; i < ms->n; i++) {
        ms->list[i]->owner = NULL;
        meter_unref(ms->list[i]);
    }
    free(ms->list);
    ms->list = NULL;
    ms->n = ms->cap = 0;
    ms->nhooks = 0;
}

const meter *meter_ref(const meter *m)
{
    ((meter *)m)->refs++;
    return m;
}

void meter_unref(const meter *m)
{
    meter *mm = (meter *)m;
    if (mm && --mm->refs == 0)
        free(mm);
}

void meters_remove(meters *ms, meter *m)
{
    size_t i;
    for (i = 0; i < ms->n && ms->list[i] != m; i++)
        ;
    if (i == ms->n)
        return;
    m->removed = 1;
    m->state = METER_STOPPED;
    /* Copied as in meter_accept: a hook may unregister itself. */
    size_t n = ms->nhooks;
    struct meters_hook hooks[METERS_HOOKS_MAX];
    memcpy(hooks, ms->hooks, n * sizeof hooks[0]);
    for (size_t k = 0; k < n; k++)
        if (hooks[k].gone)
            hooks[k].gone(hooks[k].user, m);
    memmove(&ms->list[i], &ms->list[i + 1], (ms->n - i - 1) * sizeof ms->list[0]);
    ms->n--;
    m->owner = NULL;
    meter_unref(m);
}

static int meter_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > METER_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int meter_name_valid(const char *name)
{
    return meter_name_ok(name);
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void meter_set_source(meter *m, const char *kind, const char *source)
{
    copy_str(m->kind, sizeof m->kind, kind ? kind : "");
    copy_str(m->source, sizeof m->source, source ? source : "");
}

meter *meters_add(meters *ms, const char *name, const char *kind, const char *source)
{
    if (!meter_name_ok(name)) {
        errno = EINVAL;
        return NULL;
    }
    if (meters_find(ms, name)) {
        errno = EEXIST;
        return NULL;
    }
    if (ms->n >= METERS_MAX) {
        errno = ENOSPC;
        return NULL;
    }
    if (ms->n == ms->cap) {
        size_t cap = ms->cap ? ms->cap * 2 : 8;
        meter **l = realloc(ms->list, cap * sizeof *l);
        if (!l) {
            errno = ENOMEM;
            return NULL;
        }
        ms->list = l;
        ms->cap = cap;
    }
    meter *m = calloc(1, sizeof *m);
    if (!m) {
        errno = ENOMEM;
        return NULL;
    }
    copy_str(m->name, sizeof m->name, name);
    meter_set_source(m, kind, source);
    m->state = METER_WAITING;
    m->refs = 1;
    m->owner = ms;
    ms->list[ms->n++] = m;
    return m;
}

meter *meters_find(const meters *ms, const char *name)
{
    for (size_t i = 0; i < ms->n; i++)
        if (strcmp(ms->list[i]->name, name) == 0)
            return ms->list[i];
    return NULL;
}

static int hook_add(meters *ms, meters_hook_fn fn, meters_gone_fn gone, void *user)
{
    if (ms->nhooks >= METERS_HOOKS_MAX)
        return -ENOSPC;
    ms->hooks[ms->nhooks].fn = fn;
    ms->hooks[ms->nhooks].gone = gone;
    ms->hooks[ms->nhooks].user = user;
    ms->nhooks++;
    return 0;
}

static int hook_del(meters *ms, meters_hook_fn fn, meters_gone_fn gone, void *user)
{
    for (size_t i = 0; i < ms->nhooks; i++) {
        if (ms->hooks[i].fn == fn && ms->hooks[i].gone == gone && ms->hooks[i].user == user) {
            memmove(&ms->hooks[i], &ms->hooks[i + 1], (ms->nhooks - i - 1) * sizeof ms->hooks[0]);
            ms->nhooks--;
            return 0;
        }
    }
    return -ENOENT;
}

int meters_hook(meters *ms, meters_hook_fn fn, void *user)
{
    return hook_add(ms, fn, NULL, user);
}

int meters_unhook(meters *ms, meters_hook_fn fn, void *user)
{
    return hook_del(ms, fn, NULL, user);
}

int meters_hook_gone(meters *ms, meters_gone_fn fn, void *user)
{
    return hook_add(ms, NULL, fn, user);
}

int meters_unhook_gone(meters *ms, meters_gone_fn fn, void *user)
{
    return hook_del(ms, NULL, fn, user);
}

void meter_accept(meter *m, const p1_reading *r, const uint8_t *raw, size_t raw_len,
                  int64_t now_ms, int64_t mono_ms)
{
    meter_sample *s = &m->history[(m->seq + 1) % METER_HISTORY];
    s->seq = ++m->seq;
    s->received_ms = now_ms;
    s->received_mono_ms = mono_ms;
    s->reading = *r;
    s->demand_forecast = P1_ABSENT;
    s->demand_end = 0;
    if (r->demand_current != P1_ABSENT || r->demand_peak != P1_ABSENT) {
        int64_t t; /* the meter's clock: its quarter hours are the ones billed */
        if (p1_time_to_unix(&r->time, &t) < 0)
            t = now_ms / 1000;
        s->demand_forecast =
            demand_feed(&m->demand, t, r->import_total, r->power_import, &s->demand_end);
    }
    if (raw_len > sizeof m->raw)
        raw_len = sizeof m->raw; /* cannot happen: the parser bounds telegrams by the same max */
    memcpy(m->raw, raw, raw_len);
    m->raw_len = raw_len;
    if (r->equipment_id[0])
        copy_str(m->equipment_id, sizeof m->equipment_id, r->equipment_id);
    m->telegrams++;
    m->state = METER_RECEIVING;
    m->last_error[0] = '\0';
    meters *ms = m->owner;
    if (!ms)
        return;
    /* Copy the list: a hook may (un)register hooks, which must not skip or repeat one. */
    size_t n = ms->nhooks;
    struct meters_hook hooks[METERS_HOOKS_MAX];
    memcpy(hooks, ms->hooks, n * sizeof hooks[0]);
    for (size_t i = 0; i < n; i++)
        if (hooks[i].fn)
            hooks[i].fn(hooks[i].user, m, s, m->raw, m->raw_len);
}

void meter_reject(meter *m, p1_error err)
{
    m->rejected++;
    if (err == P1_ERR_CRC_MISMATCH)
        m->crc_errors++;
}

const meter_sample *meter_latest(const meter *m)
{
    return m->seq ? &m->history[m->seq % METER_HISTORY] : NULL;
}

const meter_sample *meter_sample_at(const meter *m, uint64_t seq)
{
    if (seq == 0 || seq > m->seq || m->seq - seq >= METER_HISTORY)
        return NULL;
    return &m->history[seq % METER_HISTORY];
}

int64_t meter_connected_since(const meter *m)
{
    return m->state == METER_CONNECTED || m->state == METER_RECEIVING ? m->connected_ms : 0;
}

const char *meter_state_name(meter_state s)
{
    switch (s) {
    case METER_WAITING:
        return "waiting";
    case METER_CONNECTED:
        return "connected";
    case METER_RECEIVING:
        return "receiving";
    case METER_STOPPED:
        return "stopped";
    }
    return "unknown";
}
