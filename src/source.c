/* source.c: what every source kind shares: decoding bytes with libp1 into readings, handing them
 * to the meter, status logging, reconnect backoff. */
#define _GNU_SOURCE
#include "source_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "reading_json.h"

static void on_begin(void *user, const p1_telegram *t)
{
    source_decoder *d = user;
    p1_reading_begin(&d->reading, t);
}

static void on_object(void *user, const p1_object *o)
{
    source_decoder *d = user;
    p1_reading_add(&d->reading, o);
}

static void log_reject(source *s, const p1_telegram *t, const p1_reading *r)
{
    char obis[24 + 4 + P1_SHORT_MAX] = "";
    if ((t->error == P1_ERR_BAD_VALUE || t->error == P1_ERR_BAD_UNIT) && r->error == t->error) {
        obis[0] = ' ';
        size_t n = 1 + p1_obis_format(&r->error_obis, obis + 1, 24);
        if (t->error == P1_ERR_BAD_UNIT)
            snprintf(obis + n, sizeof obis - n, " in %.*s", (int)sizeof r->error_unit,
                     r->error_unit);
    } else if (t->error == P1_ERR_NUMBER_OVERFLOW) {
        obis[0] = ' ';
        p1_obis_format(&t->error_obis, obis + 1, sizeof obis - 1);
    }
    meter *m = s->m;
    /* A noisy line must never flood the log: the first reject, then every 100th but at most one
     * per 10 s (a TCP peer can send garbage far faster than a meter), at info; each at debug. */
    int64_t now = loop_now_ms();
    int loud = m->rejected == 1 ||
               (m->rejected % SOURCE_REJECT_LOG_EVERY == 0 &&
                (s->reject_logged_ms == 0 || now - s->reject_logged_ms >= SOURCE_REJECT_LOG_MS));
    if (loud)
        s->reject_logged_ms = now;
    if (!loud && !log_enabled(LOG_LEVEL_DEBUG))
        return;
    log_msg(loud ? LOG_LEVEL_INFO : LOG_LEVEL_DEBUG,
            "%s: rejected telegram at offset %" PRIu64 ": %s%s (%s); %" PRIu64 " rejected so far",
            m->name, t->error_offset, p1_error_name(t->error), obis, p1_error_message(t->error),
            m->rejected);
}

/* A value an accepted telegram left out (a power in kWh under a valid CRC: the meter sends it
 * so): a warning, as nothing else tells why that value is missing; the same one again at most
 * once per SOURCE_WARN_REPEAT_MS, whatever came between. */
static void log_left_out(source *s, const p1_telegram *t, const p1_reading *r)
{
    char msg[sizeof s->warned];
    uint64_t off;
    p1_error code = reading_json_warning(t, r, &off, msg, sizeof msg);
    if (code == P1_ERR_OK)
        return;
    int64_t now = loop_now_ms();
    if (strcmp(msg, s->warned) == 0 && now - s->warned_ms < SOURCE_WARN_REPEAT_MS)
        return;
    memcpy(s->warned, msg, sizeof s->warned);
    s->warned_ms = now;
    log_warn("%s: %s: %s at offset %" PRIu64 "; that value is left out, the rest of its telegrams "
             "is taken (their CRC is valid)",
             s->m->name, p1_error_name(code), msg, off);
}

/* An M-Bus meter whose value is in a unit its medium is not kept in (gas or water in kWh, heat in
 * m3) is left out of the history, MQTT, /metrics and /api/v1/data: said once per medium, or the
 * user sees no gas and no reason. */
static void log_mbus_unit(source *s, const p1_reading *r)
{
    static const struct {
        p1_medium medium;
        const char *name, *units;
    } kinds[] = {
        {P1_MEDIUM_GAS, "gas", "m3"},
        {P1_MEDIUM_WATER, "water", "m3"},
        {P1_MEDIUM_HEAT, "heat", "GJ, MJ, kWh or MWh"},
    };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        unsigned bit = 1u << kinds[k].medium;
        if (s->unit_told & bit)
            continue;
        int i = p1_reading_mbus_find(r, kinds[k].medium);
        if (i < 0 || !p1_mbus_has_value(&r->mbus[i]) || p1_mbus_kept(&r->mbus[i]) != P1_ABSENT)
            continue;
        s->unit_told |= bit;
        log_warn("%s: the %s meter on M-Bus channel %d counts in %s, not %s: its value is left "
                 "out of the history, MQTT, /metrics and /api/v1/data (/api/now shows it)",
                 s->m->name, kinds[k].name, i + 1, r->mbus[i].unit, kinds[k].units);
    }
}

/* A whole encrypted frame that the key failed on: a configuration problem, not line noise. It is
 * logged as a warning once per change and stays on the meter until a telegram decodes. */
static void key_problem(source *s, p1_error err)
{
    const char *msg = err == P1_ERR_NO_KEY
                          ? "encrypted telegrams but no key: set key for this source"
                          : "decryption failed: wrong key or authentication key (ak)?";
    snprintf(s->m->last_error, sizeof s->m->last_error, "%s", msg);
    if (s->key_error == err)
        return;
    s->key_error = err;
    log_warn("%s: %s", s->m->name, msg);
}

/* A key that decrypted frames before is blamed only when SOURCE_KEY_FAILS frames in a row fail
 * it: a lone failure is a frame damaged on the line (noise), while a key the grid operator changed
 * fails every frame. */
static int key_blamed(source *s, p1_error err)
{
    if (err != P1_ERR_DECRYPT_FAILED || !s->key_worked)
        return 1;
    return ++s->key_fails >= SOURCE_KEY_FAILS;
}

/* The meter of another source (not removed) whose last equipment id is id, or NULL. */
static const meter *same_id(const meter *m, const char *id)
{
    const meters *ms = m->owner;
    for (size_t i = 0; ms && i < ms->n; i++)
        if (ms->list[i] != m && strcmp(ms->list[i]->equipment_id, id) == 0)
            return ms->list[i];
    return NULL;
}

/* A reading whose equipment id (0-0:96.1.1) is not the meter's last one: a replaced meter, a
 * dongle that now reaches another meter (addresses swapped), or two meters' telegrams on one
 * line. The history starts a new segment there (docs/STORE.md) and nothing else would say so.
 * The first changes are logged one by one, so two meters alternating show as a change back;
 * then one line per SOURCE_WARN_REPEAT_MS with the count. Another meter of this p1d with the
 * same id (checked at the source's first id and at each change) is named: one meter read by two
 * sources, or two dongles' addresses swapped. */
static void check_identity(source *s, const p1_reading *r)
{
    meter *m = s->m;
    if (!r->equipment_id[0])
        return;
    int changed = m->equipment_id[0] && strcmp(r->equipment_id, m->equipment_id) != 0;
    if (!changed && s->id_seen)
        return;
    s->id_seen = 1;
    const meter *twin = same_id(m, r->equipment_id);
    if (!changed) {
        if (twin)
            log_warn("%s: sends the equipment id %s, as %s does: one meter read by two sources?",
                     m->name, r->equipment_id, twin->name);
        return;
    }
    s->id_changes++;
    int64_t now = loop_now_ms();
    if (s->id_changes > SOURCE_ID_LOG_LOUD && now - s->id_logged_ms < SOURCE_WARN_REPEAT_MS)
        return;
    s->id_logged_ms = now;
    char also[METER_NAME_MAX + 48] = "";
    if (twin)
        snprintf(also, sizeof also, "; %s sends that id too", twin->name);
    log_warn("%s: the equipment id changed from %s to %s (%" PRIu64 " change%s since the source "
             "started%s): a replaced meter, or telegrams of another meter; a kept history "
             "starts a new segment",
             m->name, m->equipment_id, r->equipment_id, s->id_changes,
             s->id_changes == 1 ? "" : "s", also);
}

static void on_end(void *user, const p1_telegram *t)
{
    source_decoder *d = user;
    source *s = d->s;
    /* The reading's verdict first: a bad value of a known object rejects the telegram like a
     * CRC error does (counted, logged, never stored, relayed or published). */
    p1_telegram copy;
    p1_reading_end(&d->reading, t);
    t = p1_reading_verdict(&d->reading, t, &copy);
    int ok = t->error == P1_ERR_OK;
    if (d->masked) {
        /* The twin only counts once it decoded something the plain decoder could not. */
        if (!ok || s->primary_won)
            return;
        s->twin_won = 1;
        s->mask = 1; /* takes effect for the next chunk; set now so the kind reports 7E1 */
    } else if (ok && s->twin) {
        s->primary_won = 1;
    }
    s->key_reject = t->error == P1_ERR_NO_KEY || t->error == P1_ERR_DECRYPT_FAILED;
    s->reject_error = t->error;
    if (!ok) {
        meter_reject(s->m, t->error);
        if (s->key_reject && key_blamed(s, t->error))
            key_problem(s, t->error);
        log_reject(s, t, &d->reading);
    } else {
        if (s->garbage_reported)
            source_status(s, METER_RECEIVING, LOG_LEVEL_INFO, "telegrams decode on %s",
                          s->cfg.target);
        source_undecoded_reset(s);
        s->key_error = P1_ERR_OK;
        s->key_worked |= t->encrypted;
        s->end_lines = t->has_end_line && t->crc != P1_CRC_ABSENT;
        if (t->crc_x25 && !s->x25_told) {
            s->x25_told = 1;
            log_info("%s: the meter's CRC is CRC-16/X-25, not DSMR's CRC-16/ARC (a Holley "
                     "DTSD545 does so); its telegrams are checked with that",
                     s->m->name);
        }
        s->key_fails = 0;
        log_left_out(s, t, &d->reading);
        log_mbus_unit(s, &d->reading);
        check_identity(s, &d->reading);
        if (s->hold) {
            *s->held_reading = d->reading;
            memcpy(s->held_raw, t->raw, t->raw_len);
            s->held_len = t->raw_len;
            s->held = 1;
        } else {
            meter_accept(s->m, &d->reading, t->raw, t->raw_len, loop_wall_ms(), loop_now_ms());
            source_backoff_reset(s);
            if (log_enabled(LOG_LEVEL_DEBUG))
                log_debug("%s: telegram %" PRIu64 " accepted (%zu bytes, CRC %s)", s->m->name,
                          s->m->seq, t->raw_len,
                          t->crc == P1_CRC_VALID ? "valid" : t->crc == P1_CRC_INVALID ? "invalid" : "absent");
        }
    }
    if (s->ops->telegram)
        s->ops->telegram(s, ok);
}

void source_release(source *s)
{
    if (!s->held)
        return;
    s->held = 0;
    meter_accept(s->m, s->held_reading, s->held_raw, s->held_len, loop_wall_ms(),
                 loop_now_ms());
}

static source_decoder *decoder_new(source *s, int masked)
{
    source_decoder *d = malloc(sizeof *d);
    if (!d)
        return NULL;
    p1_settings set = {.crc = (p1_crc_policy)s->cfg.crc};
    if (s->crypt.has_key) {
        set.decrypt = p1_crypt_decrypt;
        set.decrypt_user = &s->crypt;
    }
    p1_callbacks cb = {on_begin, on_object, on_end};
    p1_parser_init(&d->parser, &set, &cb, d);
    p1_reading_init(&d->reading);
    d->s = s;
    d->masked = masked;
    return d;
}

int source_twin(source *s, int on)
{
    if (!on) {
        free(s->twin);
        s->twin = NULL;
        return 0;
    }
    if (s->twin) {
        p1_parser_reset(&s->twin->parser);
        return 0;
    }
    s->twin = decoder_new(s, 1);
    return s->twin ? 0 : -ENOMEM;
}

void source_undecoded_reset(source *s)
{
    s->undecoded_ms = 0;
    s->undecoded = s->binary = 0;
    s->garbage_reported = 0;
}

/* Bytes that never make a telegram: a serial cable that does not invert the signal (mostly
 * 0x00/0xFF and other non-ASCII bytes), or the wrong speed on the cable or behind a network
 * dongle. Without this the meter would look connected and silent about it. */
static void count_undecoded(source *s, const uint8_t *buf, size_t n)
{
    if (n == 0)
        return;
    if (s->undecoded_ms == 0)
        s->undecoded_ms = loop_now_ms();
    s->undecoded += n;
    for (size_t i = 0; i < n; i++)
        s->binary += (buf[i] < 0x20 && buf[i] != '\r' && buf[i] != '\n') || buf[i] >= 0x7f;
}

int source_garbage(source *s, int64_t window)
{
    if (s->garbage_reported || s->undecoded_ms == 0 || s->key_error != P1_ERR_OK)
        return -1;
    if (loop_now_ms() - s->undecoded_ms < window)
        return -1;
    s->garbage_reported = 1;
    return (int)(s->binary * 100 / (s->undecoded ? s->undecoded : 1));
}

static void mask_bytes(uint8_t *out, const uint8_t *in, size_t k)
{
    for (size_t i = 0; i < k; i++)
        out[i] = in[i] & 0x7f;
}

void source_feed(source *s, const uint8_t *buf, size_t n)
{
    uint8_t masked[SOURCE_READ_MAX];
    s->m->bytes += n;
    count_undecoded(s, buf, n);
    while (n > 0) {
        size_t k = n < sizeof masked ? n : sizeof masked;
        int have_masked = s->mask || s->twin;
        if (have_masked)
            mask_bytes(masked, buf, k);
        p1_execute(&s->dec->parser, s->mask ? masked : buf, k);
        if (s->twin && !s->primary_won) {
            /* The primary's telegrams may have started the twin just now (baud=auto switching
             * back to 115200 after rejects at 9600): its bytes are not masked yet. */
            if (!have_masked)
                mask_bytes(masked, buf, k);
            p1_execute(&s->twin->parser, masked, k);
        }
        if (s->primary_won) {
            source_twin(s, 0);
        } else if (s->twin_won) {
            /* 7E1 characters read as 8N1: from now on every byte is masked. */
            free(s->dec);
            s->dec = s->twin;
            s->dec->masked = 0;
            s->twin = NULL;
            s->mask = 1;
        }
        s->primary_won = s->twin_won = 0;
        buf += k;
        n -= k;
    }
}

void source_finish(source *s)
{
    p1_finish(&s->dec->parser);
    if (s->twin)
        p1_parser_reset(&s->twin->parser);
}

void source_reset(source *s)
{
    p1_parser_reset(&s->dec->parser);
    if (s->twin)
        p1_parser_reset(&s->twin->parser);
}

/* msg with the source's own address (the first time it appears) replaced by what kind of
 * address it is, so that a hundred dongles that drop together share one summary line. A TCP
 * source's lookup messages name the host alone ("cannot resolve HOST"): a DNS outage is one
 * line too, not one "other status changes" without its reason. */
static void status_key(const source *s, const char *msg, char *key, size_t cap)
{
    const char *what = s->cfg.kind == CONFIG_TCP      ? "HOST:PORT"
                       : s->cfg.kind == CONFIG_SERIAL ? "DEVICE"
                                                      : "FILE";
    const char *addr = s->cfg.target;
    const char *at = addr[0] ? strstr(msg, addr) : NULL;
    char host[CONFIG_STR_MAX];
    unsigned port;
    if (!at && s->cfg.kind == CONFIG_TCP &&
        config_addr_split(s->cfg.target, host, sizeof host, &port) == 0 && host[0]) {
        addr = host;
        at = strstr(msg, host);
        what = "HOST";
    }
    if (!at) {
        snprintf(key, cap, "%s", msg);
        return;
    }
    snprintf(key, cap, "%.*s%s%s", (int)(at - msg), msg, what, at + strlen(addr));
}

void source_status(source *s, meter_state st, int level, const char *fmt, ...)
{
    char msg[SOURCE_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s->m->state = st;
    /* Warnings stay visible on the meter (API) until the next good news. */
    snprintf(s->m->last_error, sizeof s->m->last_error, "%s", level <= LOG_LEVEL_WARN ? msg : "");
    if (strcmp(msg, s->logged) != 0) {
        memcpy(s->logged, msg, sizeof s->logged);
        char key[SOURCE_LOG_KEY_MAX];
        status_key(s, msg, key, sizeof key);
        source_log_status(s->log, level, s->m->name, msg, key);
    }
}

int64_t source_backoff(source *s)
{
    int64_t d = s->backoff_ms;
    s->backoff_ms = d * 2 > s->cfg.reconnect_max ? s->cfg.reconnect_max : d * 2;
    return d;
}

void source_backoff_reset(source *s)
{
    s->backoff_ms = s->cfg.reconnect_min;
}

void source_connected(source *s)
{
    s->m->connected_ms = loop_wall_ms();
    if (s->connected_before)
        s->m->reconnects++;
    s->connected_before = 1;
}

static const source_ops *ops_for(config_kind k)
{
    switch (k) {
    case CONFIG_SERIAL:
        return &source_serial_ops;
    case CONFIG_TCP:
        return &source_tcp_ops;
    case CONFIG_FILE:
    case CONFIG_STDIN:
        return &source_file_ops;
    case CONFIG_SIM:
        return &source_sim_ops;
    }
    return NULL;
}

source *source_new(loop *l, source_log *sl, meter *m, const config_source *cfg,
                   const sim_registers *stored, char *err, size_t cap)
{
    source *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, cap, "%s: out of memory", cfg->name);
        return NULL;
    }
    s->l = l;
    s->log = sl;
    s->m = m;
    s->cfg = *cfg;
    s->stored = stored;
    s->ops = ops_for(cfg->kind);
    if (cfg->key[0] && p1_crypt_set_keys(&s->crypt, cfg->key, cfg->ak[0] ? cfg->ak : NULL) < 0) {
        snprintf(err, cap, "%s: key/ak: expected 32 hex digits each", cfg->name);
        free(s);
        return NULL;
    }
    s->crypt.skip_tag = cfg->skip_tag != 0;
    source_backoff_reset(s);
    char spec[CONFIG_STR_MAX]; /* /api/meters shows it: no key= or ak= values */
    config_spec_public(cfg->spec, spec, sizeof spec);
    meter_set_source(m, config_kind_name(cfg->kind), spec);
    m->detected[0] = '\0';
    s->dec = decoder_new(s, 0);
    int started = s->dec && s->ops && s->ops->start(s) >= 0;
    s->stored = NULL; /* borrowed for start() only */
    if (!started) {
        snprintf(err, cap, "%s: cannot start the %s source", cfg->name, config_kind_name(cfg->kind));
        source_free(s);
        return NULL;
    }
    return s;
}

void source_free(source *s)
{
    if (!s)
        return;
    if (s->ops && s->ops->stop)
        s->ops->stop(s);
    free(s->dec);
    free(s->twin);
    free(s->held_reading);
    free(s->held_raw);
    free(s);
}

const config_source *source_config(const source *s)
{
    return &s->cfg;
}
