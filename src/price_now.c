/* price_now.c: the electricity price in force now, cached from the store's price tables. */
#include "price_now.h"

#include <stdlib.h>

#include "cost.h"
#include "log.h"

struct price_now {
    store *s;
    const char *who;
    cost_prices p;     /* loaded for [loaded_at - BEHIND, loaded_at + AHEAD) */
    int known;         /* p holds electricity prices (price_now_value.known) */
    int loaded;        /* p holds a load (also an empty one) */
    int64_t loaded_at; /* unix seconds */
    int64_t expires;   /* load again at or after this time */
    uint64_t serial;   /* store_prices_serial() at the load */
    int failing;       /* the last load failed (logged once) */
};

price_now *price_now_new(store *s, const char *who)
{
    price_now *pn = calloc(1, sizeof *pn);
    if (!pn)
        return NULL;
    pn->s = s;
    pn->who = who;
    return pn;
}

void price_now_free(price_now *pn)
{
    if (!pn)
        return;
    cost_prices_free(&pn->p);
    free(pn);
}

/* Loads the prices around t; a failure leaves none (no price is better than a wrong one) and is
 * logged once until a load succeeds again. */
static void load(price_now *pn, int64_t t)
{
    char err[COST_ERR_MAX] = "";
    cost_prices_free(&pn->p);
    int rc = cost_db_load(store_db(pn->s), t - PRICE_NOW_BEHIND_S, t + PRICE_NOW_AHEAD_S, &pn->p,
                          err, sizeof err);
    pn->loaded = 1;
    pn->loaded_at = t;
    pn->serial = store_prices_serial(pn->s);
    pn->expires = t + PRICE_NOW_RELOAD_S;
    pn->known = 0;
    if (rc < 0) {
        if (!pn->failing)
            log_warn("%s: cannot load the price in force now (%s); left out until it loads",
                     pn->who, err[0] ? err : "out of memory");
        pn->failing = 1;
        return;
    }
    if (pn->failing)
        log_info("%s: the price in force now loads again", pn->who);
    pn->failing = 0;
    pn->known = pn->p.dyn[COST_KIND_POWER].n > 0;
    for (size_t i = 0; i < pn->p.nfixed && !pn->known; i++)
        for (int k = 0; k < 3; k++)
            if (pn->p.fixed[i].import_[k] != COST_UNSET || pn->p.fixed[i].export_[k] != COST_UNSET)
                pn->known = 1;
    int64_t next = cost_price_next_change(&pn->p, t);
    if (next < pn->expires)
        pn->expires = next;
}

int price_now_get(price_now *pn, int64_t t, int tariff, price_now_value *out)
{
    /* t < loaded_at: the wall clock stepped back; what was loaded may not cover t */
    if (!pn->loaded || t >= pn->expires || t < pn->loaded_at ||
        pn->serial != store_prices_serial(pn->s))
        load(pn, t);
    cost_price_at(&pn->p, t, tariff, &out->import_, &out->export_, &out->since);
    out->known = pn->known;
    return out->import_ != COST_UNSET || out->export_ != COST_UNSET;
}

int price_now_tariff(const meters *ms, int64_t now_ms, int64_t stale_ms)
{
    for (size_t i = 0; ms && i < ms->n; i++) {
        const meter_sample *s = meter_latest(ms->list[i]);
        if (s && now_ms - s->received_mono_ms < stale_ms)
            return s->reading.tariff > 0 ? s->reading.tariff : 0;
    }
    return 0;
}
