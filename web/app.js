/* app.js: the p1d dashboard: live power over SSE, the last 15 minutes, history charts, meter details. */
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const DASH = '—';
  const MINUS = '−';
  const LIVE_WINDOW_S = 15 * 60;   // the live chart's span
  const LIVE_MAX_POINTS = 5000;    // ring bound: 15 min at 5 Hz; faster streams are thinned
  const LIVE_MIN_SPACING_S = LIVE_WINDOW_S / (LIVE_MAX_POINTS - 100);
  const LIVE_STEP_BACK_S = 30;     // a live reading this much older than the newest: a clock step
  const LAT_MAX = 2000;            // latency samples kept for the bench
  const GAPS_MAX = 16;             // inter-arrival times kept to estimate the telegram interval
  const CACHE_MAX = 24;            // history responses kept
  const STALE_MIN_MS = 3000;       // never call a stream stale sooner than this
  const IDENTIFY_MS = 5000;        // how long the page flashes for PUT /api/v1/identify
  const WAIT_CALM_MS = 30000;      // a meter without its first telegram: no warning before this
  const SUMMARY_EVERY_MS = 60000;
  const CAPACITY_EVERY_MS = 600000;
  const PRICES_EVERY_MS = 300000;  // dynamic prices: fetched this often (the card moves on at each slot)
  const CHEAP_HOURS = 3;           // the price strip highlights this many cheapest hours from now on
  const METERS_EVERY_MS = 5000;
  const PICKER_EVERY_MS = 30000;   // with several meters: how fresh the picker's trouble marks are
  const PICKER_FIND_MIN = 6;       // from this many meters on, the picker has a search field
  const STORE_EVERY_MS = 15000;    // with a store: how soon the banner says it cannot write ...
  const STORE_BAD_EVERY_MS = 5000; // ... and, once it says so, how soon it is gone again
  const NOMINAL_V = 230;

  /* ---- settings (localStorage) ------------------------------------------------------------ */
  function clampInt(v, lo, hi, dflt) {
    v = Number(v);
    return Number.isInteger(v) && v >= lo && v <= hi ? v : dflt;
  }
  function loadSettings() {
    let s = {};
    try { s = JSON.parse(localStorage.getItem('p1d.settings') || '{}') || {}; } catch (e) { s = {}; }
    return {
      phases: s.phases === 1 || s.phases === 3 ? s.phases : 0, // 0: as many as the meter has
      amps: clampInt(s.amps, 6, 100, 25),
      lang: s.lang === 'en' || s.lang === 'nl' ? s.lang : 'auto',
      meter: typeof s.meter === 'string' ? s.meter : '',
    };
  }
  const settings = loadSettings();
  function saveSettings() {
    try { localStorage.setItem('p1d.settings', JSON.stringify(settings)); } catch (e) { /* private mode */ }
  }

  /* ---- language and formatting ------------------------------------------------------------ */
  function pickLang() {
    if (settings.lang !== 'auto') return settings.lang;
    const list = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || 'en'];
    for (const l of list) {
      const p = String(l).slice(0, 2).toLowerCase();
      if (p === 'nl' || p === 'en') return p;
    }
    return 'en';
  }
  // Set by initLocale() once i18n.js (a deferred script, after this async one) has run.
  let I18N = { en: {} }, LANG = 'en', LOCALE = 'en-GB', TXT = {}, F = null;
  function t(key, vars) {
    let s = TXT[key] !== undefined ? TXT[key] : (I18N.en[key] !== undefined ? I18N.en[key] : key);
    if (vars) for (const k of Object.keys(vars)) s = s.split('{' + k + '}').join(String(vars[k]));
    return s;
  }
  const nfCache = new Map();
  function nf(d) {
    let f = nfCache.get(d);
    if (!f) {
      f = new Intl.NumberFormat(LOCALE, { minimumFractionDigits: d, maximumFractionDigits: d });
      nfCache.set(d, f);
    }
    return f;
  }
  function num(v) { return typeof v === 'number' && Number.isFinite(v) ? v : null; }
  // Negatives with a true minus sign, as fmtSigned and money write them; never a "-0.00".
  function fmt(v, d) {
    v = num(v);
    if (v === null) return null;
    if (v >= 0) return nf(d).format(v);
    const s = nf(d).format(-v);
    return s === nf(d).format(0) ? s : MINUS + s;
  }
  function fmtSigned(v, d) {
    v = num(v);
    if (v === null) return null;
    const s = nf(d).format(Math.abs(v));
    if (s === nf(d).format(0)) return s;
    return (v > 0 ? '+' : MINUS) + s;
  }
  function withUnit(s, unit) { return s === null ? null : s + '\u2009' + unit; }
  // Meters, the store's calendar days and the tariffs keep CET/CEST (or, on a p1d whose system
  // runs on EET/EEST, that: /api/meters says which as time_zone): show times in it, whatever
  // zone the browser is in. TZ_LEAD: how far the zone's standard time is ahead of CET's.
  let TZ = 'Europe/Amsterdam', TZ_LEAD = 0;
  const dtf = (o) => {
    try { return new Intl.DateTimeFormat(LOCALE, Object.assign({ timeZone: TZ }, o)); } catch (e) { return new Intl.DateTimeFormat(LOCALE, o); }
  };
  function initLocale() {
    I18N = window.P1I18N || { en: {} };
    LANG = pickLang();
    LOCALE = LANG === 'nl' ? 'nl-NL' : 'en-GB';
    TXT = I18N[LANG] || I18N.en;
    nfCache.clear();
    F = makeFormats();
  }
  const makeFormats = () => ({
    hm: dtf({ hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }),
    hms: dtf({ hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' }),
    day: dtf({ weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' }),
    dm: dtf({ day: 'numeric', month: 'short' }),
    wd: dtf({ weekday: 'short', day: 'numeric' }),
    d: dtf({ day: 'numeric' }),
    mon: dtf({ month: 'short' }),
    monthYear: dtf({ month: 'long', year: 'numeric' }),
    year: dtf({ year: 'numeric' }),
    full: dtf({ day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' }),
    dmhm: dtf({ day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }),
    hmz: dtf({ hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZoneName: 'short' }),
    dmhmz: dtf({ day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZoneName: 'short' }),
    dmy: dtf({ day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }),
  });
  function parseTime(iso) {
    if (typeof iso !== 'string' || !iso) return null;
    const ms = Date.parse(iso);
    return Number.isFinite(ms) ? new Date(ms) : null;
  }
  function fmtDate(f, d) { return d ? f.format(d) : null; }
  function fmtAge(ms) {
    if (!Number.isFinite(ms) || ms < 0) return DASH;
    const s = Math.round(ms / 1000);
    if (s < 60) return s + '\u2009s';
    if (s < 3600) return Math.floor(s / 60) + '\u2009min';
    if (s < 86400) return Math.floor(s / 3600) + '\u2009h';
    return Math.floor(s / 86400) + '\u2009d';
  }
  function fmtDuration(sec) {
    sec = num(sec);
    if (sec === null || sec < 0) return null;
    if (sec < 60) return sec + '\u2009s';
    const d = Math.floor(sec / 86400), h = Math.floor(sec % 86400 / 3600), m = Math.floor(sec % 3600 / 60);
    if (d) return d + '\u2009d ' + h + '\u2009h';
    if (h) return h + '\u2009h ' + m + '\u2009min';
    return m + '\u2009min ' + (sec % 60) + '\u2009s';
  }

  /* ---- DOM helpers -------------------------------------------------------------------------- */
  // Sets a value, or "—" with a tooltip that says why; never NaN or undefined on screen.
  function setText(el, text, tip) {
    if (!el) return;
    const missing = text === null || text === undefined || text === '';
    const s = missing ? DASH : String(text);
    if (el.textContent !== s) el.textContent = s;
    if (missing) {
      const why = tip || t('na_missing');
      if (el.title !== why) el.title = why;
      el.classList.add('na');
    } else if (el.classList.contains('na')) {
      el.classList.remove('na');
      el.removeAttribute('title');
    }
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  // A <dl> of key/value rows updated in place (no flicker, no node churn on every telegram).
  function kv(dl, rows) {
    const keep = new Set();
    let prev = null;
    for (const r of rows) {
      keep.add(r.k);
      let dd = dl.querySelector('dd[data-k="' + r.k + '"]');
      let dt;
      if (!dd) {
        dt = el('dt'); dt.dataset.k = r.k;
        dd = el('dd'); dd.dataset.k = r.k;
        if (prev && prev.nextSibling) dl.insertBefore(dt, prev.nextSibling); else if (prev) dl.append(dt); else dl.prepend(dt);
        dt.after(dd);
      } else {
        dt = dd.previousElementSibling;
      }
      if (dt.textContent !== r.label) dt.textContent = r.label;
      // A value with an optional second line (the split per tariff) under it.
      let v = dd.firstElementChild;
      if (!v) { v = el('span'); dd.append(v); }
      setText(v, r.value, r.tip);
      let sub = v.nextElementSibling;
      if (r.sub && r.value !== null && r.value !== undefined) {
        if (!sub) { sub = el('small', 'sub'); dd.append(sub); }
        if (sub.textContent !== r.sub) sub.textContent = r.sub;
      } else if (sub) sub.remove();
      const cls = r.cls || '';
      if ((dd.dataset.cls || '') !== cls) {
        if (dd.dataset.cls) dd.classList.remove(...dd.dataset.cls.split(' '));
        if (cls) dd.classList.add(...cls.split(' '));
        dd.dataset.cls = cls;
      }
      prev = dd;
    }
    for (const dd of Array.from(dl.querySelectorAll('dd'))) {
      if (!keep.has(dd.dataset.k)) { dd.previousElementSibling.remove(); dd.remove(); }
    }
  }
  // Rebuilds a table from header and row arrays; cells are text (meter data is never HTML).
  // tip(row, column), when given, says why an empty body cell is empty.
  function table(tbl, head, rows, foot, tip) {
    const sig = JSON.stringify([head, rows, foot]);
    if (tbl.dataset.sig === sig) return;
    tbl.dataset.sig = sig;
    tbl.replaceChildren();
    if (head) {
      const tr = el('tr');
      for (const h of head) tr.append(el('th', null, h));
      tbl.append(el('thead')); tbl.tHead.append(tr);
    }
    const body = el('tbody');
    rows.forEach((r, j) => {
      const tr = el('tr');
      r.forEach((c, i) => {
        const td = el(i === 0 && head ? 'th' : 'td');
        if (i === 0 && head) td.scope = 'row';
        if (head) td.dataset.label = head[i]; // a table stacked on a phone names each value
        setText(td, c, tip && (c === null || c === undefined) ? tip(j, i) : undefined);
        tr.append(td);
      });
      body.append(tr);
    });
    tbl.append(body);
    if (foot) {
      const tf = el('tfoot'), tr = el('tr');
      foot.forEach((c, i) => { const td = el(i === 0 ? 'th' : 'td'); setText(td, c); tr.append(td); });
      tf.append(tr);
      tbl.append(tf);
    }
  }
  function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

  /* ---- HTTP -------------------------------------------------------------------------------- */
  class HttpError extends Error {
    constructor(status, msg, code) { super(msg); this.status = status; this.code = code || ''; }
  }
  // p1d --token: fetch sends it as a bearer header; EventSource and download links cannot send
  // headers, so they carry it as ?access_token= (p1d accepts that on GET). Asked for on a 401.
  const TOKEN_KEY = 'p1d.token';
  let token = '';
  try { token = localStorage.getItem(TOKEN_KEY) || ''; } catch (e) { /* private mode */ }
  const withToken = (url) => token ? url + (url.includes('?') ? '&' : '?') + 'access_token=' + encodeURIComponent(token) : url;
  // tokenNeeded: p1d answered 401 since its last success. A dialog closed without a token (Escape)
  // is not forced on the user again: the banner says why nothing shows and offers it (force).
  let askingToken = false, tokenDismissed = false, tokenNeeded = false, tokenWired = false;
  function askToken(force) {
    tokenNeeded = true;
    const dlg = $('token-dlg');
    if (askingToken || (tokenDismissed && !force) || !dlg) return;
    askingToken = true;
    if (!tokenWired) {
      tokenWired = true;
      $('t-form').addEventListener('submit', () => {
        const v = $('t-token').value.trim();
        if (!v) return;
        try { localStorage.setItem(TOKEN_KEY, v); } catch (e) { /* private mode: this page only */ }
        token = v;
        location.reload();
      });
      dlg.addEventListener('close', () => {
        askingToken = false;
        tokenDismissed = true;
        tick();
      });
    }
    $('t-wrong').hidden = !token;
    $('t-token').value = '';
    if (typeof dlg.showModal === 'function') dlg.showModal(); else dlg.setAttribute('open', '');
  }
  async function getJSON(url, timeoutMs) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeoutMs || 10000);
    try {
      // Plain GETs, so that the fetches index.html preloads are reused (the API sends no-store).
      // With a token, not the preloads: they went without it (another mode keeps them unmatched).
      const r = await fetch(url, token ? { signal: ctl.signal, mode: 'same-origin', headers: { Authorization: 'Bearer ' + token } } : { signal: ctl.signal });
      if (r.status === 401) askToken();
      else if (r.ok) tokenNeeded = false;
      let body = null;
      try { body = await r.json(); } catch (e) { body = null; }
      if (!r.ok) {
        const m = body && body.error && body.error.message ? body.error.message : 'HTTP ' + r.status;
        throw new HttpError(r.status, m, body && body.error && typeof body.error.code === 'string' ? body.error.code : '');
      }
      return body;
    } finally {
      clearTimeout(timer);
    }
  }
  function errText(e) {
    if (!e) return '?';
    if (e.name === 'AbortError') return 'timeout';
    return e.message || String(e);
  }
  const meterPath = (what) => S.meter ? '/api/meters/' + encodeURIComponent(S.meter) + '/' + what : '/api/' + what;
  // Whether p1d's meter list says the meter has delivered a telegram. Before that its /now is a
  // 503, which the browser would log as a console error: the page waits for the stream instead.
  const hasReading = (m) => !!m && typeof m.last_telegram === 'string';
  function historyURL(from, to, step, extra) {
    const q = new URLSearchParams();
    if (S.meter) q.set('meter', S.meter);
    q.set('from', from.toISOString());
    q.set('to', to.toISOString());
    q.set('step', step);
    if (extra) for (const k of Object.keys(extra)) q.set(k, extra[k]);
    return '/api/history?' + q.toString();
  }

  /* ---- state ------------------------------------------------------------------------------- */
  const S = {
    meter: '',
    capTariff: null,       // the month summary's capacity_tariff (null: not priced)
    capAt: 0,
    prices: null,          // /api/prices' power rows [{a, z, imp, exp}] (ms, EUR/kWh); null: none asked
    pricesAt: 0,
    pricesBusy: false,
    priceFetch: null,      // p1d's own price fetch failing: {url, error, n}; null: not failing
    priceKey: '',          // what the price card shows (slot, rows, fetch): redrawn when it changes
    meters: [],
    noMeters: false,       // p1d reads no meter now (history only, or every meter reloaded away)
    es: null,
    esOpen: false,
    connectAt: 0,
    backoff: 1000,
    reconnectTimer: 0,
    identifyTimer: 0,      // ends the flashing of PUT /api/v1/identify
    wdBackoff: 0,          // watchdog reconnect spacing, ms (doubles while the stream stays quiet)
    last: null,            // the last event {meter, seq, received_ms, reading}
    lastReceivedMs: 0,
    lastSeq: 0,
    lastArrival: 0,        // performance.now() of the last reading
    gaps: [],
    interval: 1000,        // estimated telegram interval, ms
    stale: false,
    view: 'now',
    historyMissing: false, // /api/history answered 404: no store
    noStore: false,        // /api/meters says p1d keeps no history ("history": false)
    summaryMissing: false,
    summaryAt: 0,
    metersAt: 0,
    metersOkAt: 0,         // when /api/meters last answered
    metersFailAt: 0,       // when it last failed
    metersBusy: false,
    meterInfo: null,
    readings: 0,
    hasGas: null,          // whether the shown meter has a gas meter (null: no reading yet)
    meterPhases: 0,        // phases in the shown meter's last reading (0: none reported)
    phasesSeen: false,     // the shown meter sent a phase value (a voltage, current or power)
    elecSeen: false,       // the shown meter sent an electricity value (not a heat interface alone)
    media: '',             // the M-Bus media of the shown meter's last reading ("gas water")
  };
  // What tests and the bench read: latencies (ms from p1d's receipt to our DOM), render mark.
  const stats = { lat: [], latHead: 0, readings: 0, rendered: null };
  window.p1d = {
    stats,
    liveCount: () => live.t.length,
    state: () => ({ stale: S.stale, esOpen: S.esOpen, meter: S.meter, interval: S.interval, reading: !!S.last }),
    tickDecimals: (splits) => tickDecimals(splits),
  };

  /* ---- the live ring (bounded) --------------------------------------------------------------- */
  const live = { t: [], v: [] }; // seconds, net W (null: a gap)
  function liveGapS() { return Math.max(5, 3 * S.interval / 1000); }
  function liveTrim(now) {
    let cut = 0;
    const lo = now - LIVE_WINDOW_S;
    while (cut < live.t.length && live.t[cut] < lo) cut++;
    if (live.t.length - cut > LIVE_MAX_POINTS) cut = live.t.length - LIVE_MAX_POINTS;
    if (cut > 0) { live.t.splice(0, cut); live.v.splice(0, cut); }
  }
  function livePush(ts, net) {
    const n = live.t.length;
    if (n) {
      const lastT = live.t[n - 1];
      if (ts <= lastT) {
        if (lastT - ts < LIVE_STEP_BACK_S) return;
        live.t.length = 0; // p1d's clock was stepped back: the ring starts again from here
        live.v.length = 0;
        live.t.push(ts);
        live.v.push(net);
        return;
      }
      if (ts - lastT < LIVE_MIN_SPACING_S && live.v[n - 1] !== null) {
        // A faster stream than the ring holds at full rate: keep the newest value in the slot.
        live.v[n - 1] = net;
        return;
      }
      if (ts - lastT > liveGapS() && live.v[n - 1] !== null) {
        live.t.push(lastT + 0.001); live.v.push(null);
      }
    }
    live.t.push(ts);
    live.v.push(net);
    liveTrim(ts);
  }
  // Merges history points [ts, net] with what the ring holds (the ring wins on overlaps).
  function liveMerge(points) {
    if (!points.length) return;
    const all = [];
    for (let i = 0; i < live.t.length; i++) if (live.v[i] !== null) all.push([live.t[i], live.v[i], 1]);
    for (const p of points) all.push([p[0], p[1], 0]);
    all.sort((a, b) => a[0] - b[0] || b[2] - a[2]);
    live.t.length = 0; live.v.length = 0;
    for (const p of all) livePush(p[0], p[1]);
  }
  function liveClear() { live.t.length = 0; live.v.length = 0; }

  /* ---- charts ------------------------------------------------------------------------------ */
  let hasPlot = false; // set in start(): uPlot loads after this file
  let C = {};
  function readColors() {
    C = {
      fg: css('--fg'), fg2: css('--fg2'), grid: css('--grid'), imp: css('--imp'), exp: css('--exp'),
      imp1: css('--imp1'), imp2: css('--imp2'), exp1: css('--exp1'), exp2: css('--exp2'),
      gas: css('--gas'), water: css('--water'), heat: css('--heat'), cost: css('--cost'), cmp: css('--cmp'), warn: css('--warn'),
      impFill: css('--imp-fill'), expFill: css('--exp-fill'),
    };
  }
  const FONT = '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
  function axis(o) {
    return Object.assign({
      stroke: C.fg2, font: FONT, labelFont: FONT,
      grid: { stroke: C.grid, width: 1 }, ticks: { stroke: C.grid, width: 1, size: 4 },
    }, o);
  }
  function chartWidth(box) { return Math.max(200, Math.floor(box.clientWidth)); }
  function fmtAxisW(v) {
    if (Math.abs(v) >= 10000) return fmt(v / 1000, 0) + '\u2009kW';
    if (Math.abs(v) >= 1000) return fmt(v / 1000, 1) + '\u2009kW';
    return fmt(v, 0) + '\u2009W';
  }

  let liveChart = null, liveDirty = false, liveXmax = Date.now() / 1000;
  function createLiveChart() {
    const box = $('live-chart');
    if (liveChart) { liveChart.destroy(); liveChart = null; }
    if (!hasPlot) { box.textContent = t('charts_missing'); return; }
    liveChart = new uPlot({
      width: chartWidth(box), height: box.clientHeight || 220,
      padding: [8, 22, 0, 0],
      legend: { show: false },
      cursor: { drag: { x: false, y: false }, points: { show: false } },
      scales: {
        x: { time: true, range: () => [liveXmax - LIVE_WINDOW_S, liveXmax] },
        y: { range: (u, lo, hi) => {
          lo = Math.min(0, lo === null ? 0 : lo); hi = Math.max(100, hi === null ? 0 : hi);
          const pad = (hi - lo) * 0.08;
          return [lo < 0 ? lo - pad : 0, hi + pad];
        } },
      },
      axes: [
        axis({ space: 70, size: 30, values: (u, splits) => splits.map((s) => F.hm.format(new Date(s * 1000))) }),
        axis({ size: 62, values: (u, splits) => splits.map(fmtAxisW) }),
      ],
      series: [
        {},
        {
          label: t('net'), width: 1.5, points: { show: false },
          // One net series whose colour flips at 0 W: import above, export below.
          stroke: (u) => signGradient(u, C.imp, C.exp),
          fill: (u) => signGradient(u, C.impFill, C.expFill),
        },
      ],
      hooks: { setCursor: [liveHover] },
    }, [live.t, live.v], box);
    liveLegend(null);
  }
  function liveLegend(idx) {
    const lg = $('live-legend');
    let txt;
    if (idx === null || idx === undefined || !live.t[idx]) {
      lg.replaceChildren(swatch(C.imp, t('import')), swatch(C.exp, t('export')));
      return;
    }
    const v = live.v[idx];
    txt = F.hms.format(new Date(live.t[idx] * 1000)) + '  ' + (v === null ? DASH : fmtSigned(v, 0) + '\u2009W');
    lg.replaceChildren(el('span', 'hover', txt));
  }
  function liveHover(u) { liveLegend(u.cursor.idx); }
  // A vertical gradient with a hard stop at y = 0: one colour above the axis, another below.
  function signGradient(u, above, below) {
    const top = u.bbox.top, h = u.bbox.height;
    if (!h) return above;
    const y0 = u.valToPos(0, 'y', true);
    const f = Math.min(1, Math.max(0, (y0 - top) / h));
    const g = u.ctx.createLinearGradient(0, top, 0, top + h);
    g.addColorStop(0, above); g.addColorStop(f, above);
    g.addColorStop(f, below); g.addColorStop(1, below);
    return g;
  }
  function swatch(color, label, dashed, hatched) {
    const s = el('span', 'sw');
    const b = el('i');
    b.style.background = dashed ? 'transparent' : hatched ? 'repeating-linear-gradient(135deg, ' + color + ' 0 1.5px, transparent 1.5px 4px)' : color;
    if (dashed) b.style.border = '1.5px dashed ' + color;
    s.append(b, document.createTextNode(label));
    return s;
  }
  function scheduleLive() {
    if (liveDirty) return;
    liveDirty = true;
    requestAnimationFrame(drawLive);
  }
  function drawLive() {
    liveDirty = false;
    if (!liveChart || S.view !== 'now') return;
    const n = live.t.length;
    liveXmax = Math.max(n ? live.t[n - 1] : 0, Date.now() / 1000 - 0.5);
    liveChart.setData([live.t, live.v]);
  }

  /* ---- Now view ------------------------------------------------------------------------------ */
  function netPower(r) {
    const n = num(r.power_net_w);
    if (n !== null) return n;
    const i = num(r.power_import_w), e = num(r.power_export_w);
    if (i === null && e === null) return null;
    return (i || 0) - (e || 0);
  }
  function regName(n, scheme) {
    if (scheme === 'nl' || scheme === 'be') {
      const k = 'reg_' + scheme + '_' + n;
      if (TXT[k] !== undefined || I18N.en[k] !== undefined) return t(k);
    }
    return t('reg_n', { n });
  }
  // Israel's meters count in the registers 11..13 and name them 01..03: shown as 1..3, as the
  // meter and the HomeWizard API name them.
  function shownReg(n, r) { return r && r.profile === 'il' && n > 10 ? n - 10 : n; }
  function tariffName(r) {
    const t0 = num(r.tariff);
    if (t0 === null) return null;
    const n = shownReg(t0, r);
    const k = 'tariff_' + (r.tariff_scheme || '') + '_' + n;
    if (TXT[k] !== undefined) return t(k);
    return t('tariff_n', { n });
  }

  function renderHero(d) {
    const r = d.reading || {};
    const net = netPower(r);
    const hero = $('hero');
    const dir = net === null ? 'none' : net > 0.5 ? 'import' : net < -0.5 ? 'export' : 'idle';
    if (hero.dataset.dir !== dir) {
      hero.dataset.dir = dir;
      hero.classList.remove('is-import', 'is-export', 'is-idle');
      if (dir !== 'none') hero.classList.add('is-' + dir);
    }
    setText($('p-value'), fmtSigned(net, 0));
    setText($('p-label'), dir === 'import' ? t('importing') : dir === 'export' ? t('exporting') : dir === 'idle' ? t('idle') : null);
    setText($('p-imp'), fmt(r.power_import_w, 0));
    setText($('p-exp'), fmt(r.power_export_w, 0));
    const tn = tariffName(r);
    setText($('tariff'), tn, t('na_missing'));
  }

  let phaseRows = [];
  function bar(cls) {
    const b = el('div', 'bar ' + (cls || ''));
    b.append(el('i'));
    return b;
  }
  function phaseRow(label) {
    const row = { name: el('span', 'ph-name', label), p: el('b'), i: el('b'), v: el('b') };
    const cell = (valEl, unit, b) => {
      const c = el('div', 'ph-cell');
      const line = el('div', 'ph-val');
      line.append(valEl, el('span', 'u', unit));
      c.append(line, b);
      return c;
    };
    row.pb = bar('pbar'); row.ib = bar('ibar'); row.vb = bar('vbar');
    row.el = el('div', 'ph-row');
    row.el.append(row.name, cell(row.p, 'W', row.pb), cell(row.i, 'A', row.ib), cell(row.v, 'V', row.vb));
    return row;
  }
  function setBar(b, frac, cls) {
    const f = frac === null || !Number.isFinite(frac) ? 0 : Math.max(0, Math.min(1, frac));
    const w = (f * 100).toFixed(1) + '%';
    const i = b.firstChild;
    if (i.style.width !== w) i.style.width = w;
    if ((b.dataset.lvl || '') !== (cls || '')) {
      if (b.dataset.lvl) b.classList.remove(b.dataset.lvl);
      if (cls) b.classList.add(cls);
      b.dataset.lvl = cls || '';
    }
  }
  // The main fuse's phases: as set, else those of the meter shown (a single-phase home has one).
  function fusePhases() {
    if (settings.phases) return settings.phases;
    return S.meterPhases === 1 ? 1 : 3;
  }
  // A reading's phases as the card shows them.
  function phaseList(r) {
    let phases = Array.isArray(r.phases) ? r.phases.filter((p) => p && typeof p === 'object') : [];
    if (!phases.length && (num(r.voltage_v) !== null || num(r.current_a) !== null)) {
      phases = [{ phase: 1, voltage_v: r.voltage_v, current_a: r.current_a, power_import_w: r.power_import_w, power_export_w: r.power_export_w }];
    } else if (phases.length === 1 && num(phases[0].phase) === 1) {
      // A single-phase meter that sends its voltage and current as 12.7.0 / 11.7.0 (Lithuanian
      // ESO) and only averages per phase: those are L1's, as p1d stores and publishes them.
      const p = Object.assign({}, phases[0]);
      if (num(p.voltage_v) === null) p.voltage_v = r.voltage_v;
      if (num(p.current_a) === null) p.current_a = r.current_a;
      if (num(p.power_import_w) === null && num(p.power_export_w) === null) {
        p.power_import_w = r.power_import_w;
        p.power_export_w = r.power_export_w;
      }
      phases = [p];
    }
    return phases;
  }
  const PHASE_VALUES = ['voltage_v', 'current_a', 'power_import_w', 'power_export_w'];
  function renderPhases(r) {
    const phases = phaseList(r);
    // A meter that never sent a phase value (a DSMR 2.2 meter, a heat interface): no card of
    // dashes. Until its first reading the card stays, as for every meter.
    if (phases.some((p) => PHASE_VALUES.some((k) => num(p[k]) !== null))) S.phasesSeen = true;
    const card = $('phases').closest('.card');
    const hide = !!S.last && !S.phasesSeen;
    if (card.hidden !== hide) card.hidden = hide;
    const want = Math.max(phases.length, 1);
    S.meterPhases = phases.length;
    const box = $('phases');
    if (phaseRows.length !== want) {
      for (const pr of phaseRows) pr.el.remove();
      phaseRows = [];
      for (let i = 0; i < want; i++) {
        const pr = phaseRow(phases[i] && num(phases[i].phase) ? 'L' + phases[i].phase : 'L' + (i + 1));
        phaseRows.push(pr);
        box.append(pr.el);
      }
    }
    const amps = settings.amps;
    for (let i = 0; i < want; i++) {
      const p = phases[i] || {};
      const row = phaseRows[i];
      const pi = num(p.power_import_w), pe = num(p.power_export_w);
      const pw = pi === null && pe === null ? null : (pi || 0) - (pe || 0);
      const cur = num(p.current_a), v = num(p.voltage_v);
      setText(row.p, fmtSigned(pw, 0));
      setText(row.i, fmt(cur === null ? null : Math.abs(cur), Number.isInteger(cur) ? 0 : 1));
      setText(row.v, fmt(v, 1));
      // Load against the fuse: the current the meter reports, or the one the power implies.
      const iEff = cur !== null ? Math.abs(cur) : pw !== null ? Math.abs(pw) / (v || NOMINAL_V) : null;
      const load = iEff === null ? null : iEff / amps;
      const lvl = load === null ? '' : load >= 0.9 ? 'high' : load >= 0.7 ? 'warn' : '';
      setBar(row.pb, pw === null ? null : Math.abs(pw) / (amps * (v || NOMINAL_V)), pw === null ? '' : pw < 0 ? 'export' : 'import');
      setBar(row.ib, load, lvl);
      row.ib.title = iEff === null ? t('na_missing') : fmt(iEff, 1) + ' A / ' + amps + ' A';
      // Voltage: where it sits in the EN 50160 band 207..253 V.
      setBar(row.vb, v === null ? null : (v - 207) / (253 - 207), v !== null && (v < 212 || v > 248) ? 'warn' : '');
    }
    setText($('fuse-note'), t('fuse_note', { fuse: fusePhases() + '\u2009×\u2009' + amps + '\u2009A' }));
  }

  // The M-Bus devices of a reading (gas, water, heat meters), and whether one of them is gas.
  function mbusOf(r) { return Array.isArray(r.mbus) ? r.mbus.filter((m) => m && typeof m === 'object') : []; }
  function hasGas(r) { return num(r.gas_m3) !== null || mbusOf(r).some((m) => m.medium === 'gas'); }
  function hasMedium(r, medium) { return medium === 'gas' ? hasGas(r) : mbusOf(r).some((m) => m.medium === medium); }
  // Whether a reading has electricity in it: a heat interface (a Warmtelink) sends its M-Bus
  // device alone. A port that never sent any gets no power, phases or live chart cards.
  const ELEC_KEYS = ['import_kwh', 'export_kwh', 'power_import_w', 'power_export_w', 'power_net_w', 'import_tariff_kwh', 'export_tariff_kwh'];
  function hasElec(r) {
    return ELEC_KEYS.some((k) => r[k] !== undefined && r[k] !== null) || (Array.isArray(r.phases) && r.phases.length > 0);
  }
  const noElec = () => !!S.last && !S.elecSeen;
  // Water and heat as p1d stores and publishes them (m³, GJ: a heat meter counting in kWh is
  // converted; none for a placeholder's filler 0 or another unit); a second channel of the
  // medium as it is sent. Gas as the reading's gas_m3.
  function mbusValue(r, m) {
    if (m.medium === 'gas') return { value: m.channel === r.gas_channel || r.gas_channel === undefined ? r.gas_m3 : m.value, unit: 'm³' };
    const water = m.medium === 'water';
    const sent = m.unit === 'm3' ? 'm³' : typeof m.unit === 'string' && m.unit ? m.unit : '';
    if (!water && m.medium !== 'heat') return { value: m.value, unit: sent }; // cold, another meter
    const chan = water ? r.water_channel : r.heat_channel;
    const main = chan === undefined || m.channel === chan;
    return { value: main ? (water ? r.water_m3 : r.heat_gj) : m.value, unit: main ? (water ? 'm³' : 'GJ') : sent };
  }
  // A port without electricity: its M-Bus reading (heat first, then water, then gas) in the
  // place of the power figure.
  function renderMbusHero(r) {
    const card = $('mbus-hero'), show = noElec();
    for (const c of [$('hero'), $('live-chart').closest('.card'), card]) {
      const hide = c === card ? !show : show;
      if (c.hidden !== hide) c.hidden = hide;
    }
    if (!show) return;
    const list = mbusOf(r);
    const m = ['heat', 'water', 'gas'].map((k) => list.find((x) => x.medium === k)).find((x) => x) || list[0];
    const v = m ? mbusValue(r, m) : { value: null, unit: '' };
    const title = m ? t(m.medium + '_meter') : '';
    setText($('mh-title'), m && title !== m.medium + '_meter' ? title : t('mbus'));
    setText($('mh-value'), fmt(v.value, 3));
    if ($('mh-unit').textContent !== v.unit) $('mh-unit').textContent = v.unit;
    const at = m && m.time_valid !== false ? parseTime(m.time) : null;
    setText($('mh-label'), at ? t('mbus_read_at', { time: F.dmhm.format(at) }) : null);
  }
  function renderTotals(r) {
    const rows = [];
    const scheme = r.tariff_scheme;
    const regs = (obj, kind) => {
      if (!obj || typeof obj !== 'object') return;
      for (const k of Object.keys(obj).sort((a, b) => a - b)) {
        rows.push({ k: kind + k, label: t(kind) + ' · ' + regName(shownReg(Number(k), r), scheme), value: withUnit(fmt(obj[k], 3), 'kWh'), cls: kind === 'import' ? 'c-imp' : 'c-exp' });
      }
    };
    if (!noElec()) {
      regs(r.import_tariff_kwh, 'import');
      if (!r.import_tariff_kwh) rows.push({ k: 'import', label: t('import'), value: withUnit(fmt(r.import_kwh, 3), 'kWh') });
      regs(r.export_tariff_kwh, 'export');
      if (!r.export_tariff_kwh) rows.push({ k: 'export', label: t('export'), value: withUnit(fmt(r.export_kwh, 3), 'kWh') });
    }
    if (hasGas(r)) rows.push({ k: 'gas', label: t('gas_meter'), value: withUnit(fmt(r.gas_m3, 3), 'm³'), cls: 'c-gas' });
    for (const m of mbusOf(r)) {
      if (m.medium !== 'water' && m.medium !== 'heat') continue;
      const v = mbusValue(r, m);
      rows.push({ k: m.medium + m.channel, label: t(m.medium + '_meter'), value: withUnit(fmt(v.value, 3), v.unit), cls: 'c-' + m.medium });
    }
    const mt = r.time_valid === false ? null : fmtDate(F.full, parseTime(r.time));
    rows.push({ k: 'time', label: t('meter_time'), value: mt, tip: r.time ? t('na_clock') : t('na_missing') });
    kv($('totals'), rows);
  }

  function renderCapacity(r) {
    const cur = r ? num(r.demand_current_kw) : null, peak = r ? num(r.demand_peak_kw) : null;
    // This month's bill of the capacity tariff: only when p1d prices it ([prices] capacity_per_kw_year).
    const ct = S.capTariff;
    const bill = ct && Array.isArray(ct.months) && ct.months.length ? ct.months[ct.months.length - 1] : null;
    const card = $('capacity');
    // the Belgian capacity tariff's card: a Lithuanian meter's 1.4.0 average is no such thing
    const live = (cur !== null || peak !== null) && r.profile === 'be';
    const show = live || !!bill;
    if (card.hidden === show) card.hidden = !show;
    if (!show) return;
    const rows = [];
    if (live) {
      rows.push({ k: 'now', label: t('demand_now'), value: withUnit(fmt(cur, 3), 'kW') });
      // p1d's forecast of this quarter hour (null: p1d has not seen its start). Above the month's
      // peak (and the 2.5 kW every month counts anyway) it would raise this month's bill.
      const f = S.last && S.last.reading === r ? S.last.demand_forecast : undefined;
      if (f !== undefined) {
        const kw = f ? num(f.kw) : null, end = f ? parseTime(f.quarter_end) : null;
        const over = kw !== null && kw > Math.max(peak === null ? 0 : peak, 2.5);
        const time = end ? F.hm.format(end) : '';
        rows.push({ k: 'forecast', label: t('demand_forecast'), value: withUnit(fmt(kw, 3), 'kW'),
          tip: t('demand_forecast_na'), cls: over ? 'warn' : '',
          sub: end ? t(over ? 'demand_forecast_over' : 'demand_forecast_until', { time }) : '' });
      }
      rows.push({ k: 'peak', label: t('demand_peak'), value: withUnit(fmt(peak, 3), 'kW') },
        { k: 'when', label: t('k_when'), value: fmtDate(F.dmhm, parseTime(r.demand_peak_time)) });
    }
    if (bill) {
      const n = num(bill.months_used);
      rows.push({ k: 'cap_avg', label: t('cap_average'), value: withUnit(fmt(num(bill.average_kw), 3), 'kW'),
        sub: n !== null && n < 12 ? t('cap_months_short', { n }) : t('cap_months', { n: n === null ? 12 : n }) });
      rows.push({ k: 'cap_cost', label: t(bill.complete === false ? 'cap_cost_running' : 'cap_cost'),
        value: money(bill.eur, 'EUR'), cls: 'c-cost',
        sub: t('cap_formula', { price: fmt(num(bill.price_per_kw_year), 2), kw: fmt(num(bill.average_kw), 3) }) });
    }
    kv($('capacity-kv'), rows);
  }
  // The month's summary, for the capacity tariff's bill: fetched now and then (it looks at a year).
  async function loadCapacity() {
    if (S.noMeters || S.noStore || Date.now() - (S.capAt || 0) < CAPACITY_EVERY_MS) return;
    S.capAt = Date.now();
    const q = new URLSearchParams({ period: 'month' });
    if (S.meter) q.set('meter', S.meter);
    try {
      const m = await getJSON('/api/summary?' + q.toString());
      S.capTariff = m && m.capacity_tariff && typeof m.capacity_tariff === 'object' ? m.capacity_tariff : null;
    } catch (e) {
      S.capTariff = null;
    }
    renderCapacity(S.last && S.last.reading ? S.last.reading : null);
  }

  /* ---- dynamic power prices: the price now, its next change, today's and tomorrow's strip ---- */
  // p1d's prices of today and tomorrow (its local days, as the page shows them), only with a
  // store: every few minutes, never per telegram. A p1d without dynamic prices answers an empty
  // list: no card.
  async function loadPrices() {
    if (S.noStore || S.pricesBusy || Date.now() - S.pricesAt < PRICES_EVERY_MS) return;
    S.pricesBusy = true;
    S.pricesAt = Date.now();
    const rows = [];
    let failing = null;
    try {
      const b = await getJSON('/api/prices', 5000);
      // [prices] fetch_url failing: the card says so, also when there is no price for now.
      const f = b && b.fetch && b.fetch.power;
      if (f && f.state === 'failing' && typeof f.last_error === 'string') {
        failing = { url: String(f.url || ''), error: f.last_error, n: num(f.failures) || 1 };
      }
      for (const p of b && Array.isArray(b.power) ? b.power : []) {
        const a = parseTime(p && p.time), z = parseTime(p && p.end), imp = num(p && p.import_price);
        if (a && z && z > a && imp !== null) rows.push({ a: a.getTime(), z: z.getTime(), imp, exp: num(p.export_price) });
      }
      rows.sort((x, y) => x.a - y.a);
    } catch (e) { /* none shown; asked again in a few minutes */ }
    S.pricesBusy = false;
    S.priceFetch = failing;
    S.prices = rows;
    S.priceKey = '';
    renderPrice();
  }
  const hourOf = (ms) => Math.floor(ms / HOUR_MS) * HOUR_MS;
  function priceSlot(rows, ms) {
    for (let i = 0; i < rows.length; i++) if (rows[i].a <= ms && ms < rows[i].z) return i;
    return -1;
  }
  // The CHEAP_HOURS cheapest clock hours from the current one on (a quarter-hour file's hour: the
  // mean of its quarters), as their start in ms; on a tie the earlier hour.
  function cheapHours(rows, ms) {
    const hours = new Map();
    for (const r of rows) {
      const h = hourOf(r.a);
      if (h + HOUR_MS <= ms) continue;
      const e = hours.get(h) || { h, sum: 0, n: 0 };
      e.sum += r.imp; e.n++;
      hours.set(h, e);
    }
    return Array.from(hours.values()).sort((x, y) => x.sum / x.n - y.sum / y.n || x.h - y.h)
      .slice(0, CHEAP_HOURS).map((e) => e.h);
  }
  // Called every second: redraws only when the slot, the rows or the fetch changed.
  function renderPrice() {
    const rows = S.prices || [], now = Date.now();
    const i = S.noStore ? -1 : priceSlot(rows, now);
    const failing = S.noStore ? null : S.priceFetch;
    const card = $('price');
    if (card.hidden !== (i < 0 && !failing)) card.hidden = i < 0 && !failing;
    const key = i < 0 && !failing ? '' : i + '/' + rows.length + '/' + S.pricesAt + '/' + Math.floor(now / HOUR_MS);
    if (key === S.priceKey) return;
    S.priceKey = key;
    const warn = $('price-warn');
    warn.hidden = !failing;
    if (failing) {
      const why = t('price_fetch_failing', { url: failing.url, n: fmt(failing.n, 0), error: failing.error });
      setText(warn, i < 0 ? why + (/[.!?]$/.test(why) ? ' ' : '. ') + t('price_fetch_none_now') : why);
    }
    card.classList.toggle('no-price', i < 0);
    if (i < 0) return;
    const cur = rows[i];
    const kwh = (v) => { const m = money(v, 'EUR', true); return m === null ? null : m + '/kWh'; };
    const day = (ms) => F.dm.format(new Date(ms));
    const today = day(now), tomorrow = day(now + 86400000);
    const when = (ms) => day(ms) === today ? fmtDate(F.hm, new Date(ms))
      : day(ms) === tomorrow ? t('price_tomorrow_at', { time: fmtDate(F.hm, new Date(ms)) }) : fmtDate(F.dmhm, new Date(ms));
    setText($('price-imp'), money(cur.imp, 'EUR', true));
    setText($('price-slot'), fmtDate(F.hm, new Date(cur.a)) + '–' + fmtDate(F.hm, new Date(cur.z)));
    const kvRows = [];
    if (cur.exp !== null && cur.exp !== cur.imp) kvRows.push({ k: 'exp', label: t('price_export'), value: kwh(cur.exp), cls: 'c-exp' });
    // The next change: the first following slot with another import price, without a hole between.
    let j = i + 1;
    while (j < rows.length && rows[j].a === rows[j - 1].z && rows[j].imp === cur.imp) j++;
    if (j < rows.length && rows[j].a === rows[j - 1].z) {
      kvRows.push({ k: 'next', label: t(rows[j].imp < cur.imp ? 'price_cheaper' : 'price_dearer', { time: when(rows[j].a) }),
        value: kwh(rows[j].imp), cls: rows[j].imp < cur.imp ? 'c-exp' : 'c-imp' });
    }
    const cheap = cheapHours(rows, now);
    // "13:00 · tomorrow 02:00, 15:00": the hours in time order, each day named once.
    const groups = [];
    for (const h of cheap.slice().sort((x, y) => x - y)) {
      const g = groups[groups.length - 1];
      if (g && day(g[0]) === day(h)) g.push(h); else groups.push([h]);
    }
    const cheapText = groups.map((g) => {
      const list = g.map((h) => fmtDate(F.hm, new Date(h))).join(', ');
      return day(g[0]) === today ? list : day(g[0]) === tomorrow ? t('price_tomorrow_at', { time: list })
        : F.dm.format(new Date(g[0])) + ' ' + list;
    }).join(' · ');
    kvRows.push({ k: 'cheap', label: t('price_cheapest', { n: cheap.length }), value: cheapText });
    kv($('price-kv'), kvRows);
    // The strip: one bar per slot, from the zero line up (down for a negative price).
    let lo = 0, hi = 0;
    for (const r of rows) { lo = Math.min(lo, r.imp); hi = Math.max(hi, r.imp); }
    const span = hi - lo || 1;
    const strip = $('price-strip');
    strip.style.setProperty('--zero', (-lo / span * 100).toFixed(2) + '%');
    strip.classList.toggle('dense', rows.length > 60);
    const cheapSet = new Set(cheap);
    const bars = [], days = [];
    rows.forEach((r, k) => {
      const cls = ['pb'];
      if (k === i) cls.push('now'); else if (r.z <= now) cls.push('past');
      if (cheapSet.has(hourOf(r.a))) cls.push('cheap');
      if (r.imp < 0) cls.push('neg');
      const d = day(r.a);
      if (!days.length || days[days.length - 1].d !== d) {
        days.push({ d, ms: r.a, n: 0 });
        if (k) cls.push('day');
      }
      days[days.length - 1].n++;
      const b = el('span', cls.join(' '));
      b.dataset.t = new Date(r.a).toISOString();
      b.title = fmtDate(F.hm, new Date(r.a)) + '–' + fmtDate(F.hm, new Date(r.z)) + ' ' + kwh(r.imp);
      const bar = el('i');
      bar.style.height = Math.max(1, Math.abs(r.imp) / span * 100).toFixed(2) + '%';
      b.append(bar);
      bars.push(b);
    });
    strip.replaceChildren(...bars);
    strip.setAttribute('aria-label', t('price_strip', { n: cheap.length, hours: cheapText }));
    $('price-days').replaceChildren(...days.map((d) => {
      const s = el('span', null, d.d === today ? t('price_today') : d.d === tomorrow ? t('price_tomorrow') : F.wd.format(new Date(d.ms)));
      s.style.flexGrow = String(d.n);
      return s;
    }));
  }

  // A number from the first of several possible paths (the summary's shape is tolerated loosely).
  function pick(o, paths) {
    for (const p of paths) {
      let v = o;
      for (const k of p.split('.')) v = v === null || v === undefined ? undefined : v[k];
      if (num(v) !== null) return v;
    }
    return null;
  }
  let summary = null, summaryErr = null;
  async function loadSummary() {
    // No meter (a history-only p1d, or every meter reloaded away): no day of a meter to sum up.
    if (S.noMeters) {
      summary = null;
      summaryErr = { status: 0, code: 'no_meter' };
      renderToday();
      return;
    }
    if (S.noStore) {
      summary = null;
      summaryErr = { status: 404, code: 'no_database' };
      S.summaryMissing = true;
      renderToday();
      return;
    }
    if (S.summaryMissing && Date.now() - S.summaryAt < 10 * 60000) { renderToday(); return; }
    S.summaryAt = Date.now();
    const q = new URLSearchParams({ period: 'day' });
    if (S.meter) q.set('meter', S.meter);
    try {
      summary = await getJSON('/api/summary?' + q.toString());
      summaryErr = null;
      S.summaryMissing = false;
      loadCapacity();
    } catch (e) {
      summary = null;
      summaryErr = e;
      S.summaryMissing = e.status === 404;
    }
    renderToday();
  }
  /* A cost that leaves out energy without a price says so, with how much was left out. */
  function unpricedText(kwh, m3) {
    const parts = [];
    if (num(kwh)) parts.push(withUnit(fmt(kwh, 2), 'kWh'));
    if (num(m3)) parts.push(withUnit(fmt(m3, 3), 'm³'));
    return parts.join(' + ');
  }
  function costPartial(s) {
    const c = s && s.cost_eur;
    if (!c || typeof c !== 'object' || c.partial !== true) return '';
    return t('cost_partial', { what: unpricedText(c.unpriced_kwh, c.unpriced_gas_m3) || '?' });
  }
  function renderToday() {
    const s = summary;
    const tip = !summaryErr ? t('na_loading') : summaryErr.code === 'no_meter' ? t('conn_no_meter')
      : summaryErr.status === 404 ? t('na_no_history') : t('na_error', { err: errText(summaryErr) });
    const note = $('today-note');
    note.hidden = !(summaryErr && summaryErr.status === 404);
    if (!note.hidden) note.textContent = t('na_no_history');
    const live = S.last && S.last.reading ? S.last.reading : null;
    const elec = !noElec();
    if (!s) {
      const keys = (elec ? ['import', 'export', 'net', 'gas', 'cost'] : ['gas', 'water', 'heat'])
        .filter((k) => !live || (k === 'gas' ? hasGas(live) : k === 'water' || k === 'heat' ? hasMedium(live, k) : true));
      kv($('today'), keys.map((k) => ({ k, label: t(k), value: null, tip })));
      return;
    }
    const imp = pick(s, ['import_kwh', 'import.total_kwh', 'import.kwh', 'import.total', 'energy.import_kwh']);
    const exp = pick(s, ['export_kwh', 'export.total_kwh', 'export.kwh', 'export.total', 'energy.export_kwh']);
    let net = pick(s, ['net_kwh', 'net.kwh', 'net']);
    if (net === null && imp !== null && exp !== null) net = imp - exp;
    const gas = pick(s, ['gas_m3', 'gas.m3', 'gas.total_m3', 'gas']);
    const cost = pick(s, ['cost_eur.total', 'cost_eur', 'cost_total', 'costs.total', 'cost.total', 'cost']);
    const cur = (s.currency || (s.costs && s.costs.currency) || 'EUR');
    const costTxt = money(cost, cur);
    const scheme = S.last && S.last.reading ? S.last.reading.tariff_scheme : null;
    const split = (kind) => {
      const parts = [];
      for (const n of [1, 2]) {
        const v = pick(s, [kind + '_t' + n + '_kwh', kind + '.t' + n + '_kwh', kind + '.t' + n, kind + '_tariff_kwh.' + n, kind + '.tariff.' + n]);
        if (v !== null) parts.push(regName(n, scheme) + ' ' + fmt(v, 2));
      }
      return parts.length ? parts.join(' · ') + '\u2009kWh' : '';
    };
    const peak = pick(s, ['peak_power_w', 'peak_w', 'power_w_max']);
    const rows = [
      { k: 'import', label: t('import'), value: withUnit(fmt(imp, 2), 'kWh'), sub: split('import'), cls: 'c-imp' },
      { k: 'export', label: t('export'), value: withUnit(fmt(exp, 2), 'kWh'), sub: split('export'), cls: 'c-exp' },
      { k: 'net', label: t('net'), value: withUnit(fmtSigned(net, 2), 'kWh') },
      { k: 'gas', label: t('gas'), value: withUnit(fmt(gas, 3), 'm³'), tip: t('na_no_gas'), cls: 'c-gas' },
      { k: 'water', label: t('water'), value: withUnit(fmt(num(s.water_m3), 3), 'm³'), cls: 'c-water' },
      { k: 'heat', label: t('heat'), value: withUnit(fmt(num(s.heat_gj), 3), 'GJ'), cls: 'c-heat' },
      { k: 'cost', label: t('cost'), value: costTxt, sub: costPartial(s), tip: t('na_no_prices'), cls: 'c-cost' },
    ].filter((row) => {
      if (row.k === 'gas') return gas !== null || !live || hasGas(live);
      if (row.k === 'water' || row.k === 'heat') return row.value !== null || (!elec && hasMedium(live, row.k));
      return elec;
    });
    // The highest import (the net power's highest, never below 0: a sunny day that only exported
    // had a peak import of none) and, for a home that exports, the highest feed-in.
    if (peak !== null && elec) rows.push({ k: 'peak', label: t('k_peak_import'), value: withUnit(fmt(Math.max(peak, 0), 0), 'W') });
    const peakExp = pick(s, ['peak_export_w']);
    if (peakExp !== null && peakExp > 0 && elec) rows.push({ k: 'peak_export', label: t('k_peak_export'), value: withUnit(fmt(peakExp, 0), 'W'), cls: 'c-exp' });
    const qh = pick(s, ['capacity_peak.kw']);
    if (qh !== null && S.last && S.last.reading && S.last.reading.profile === 'be') {
      const at = s.capacity_peak && parseTime(s.capacity_peak.time);
      rows.push({ k: 'qh', label: t('k_peak_qh'), value: withUnit(fmt(qh, 3), 'kW'), sub: at ? F.hm.format(at) : '' });
    }
    kv($('today'), rows);
  }

  /* ---- live data: stream, watchdog, back-fill --------------------------------------------- */
  function onEvent(text, isLive) {
    let d;
    try { d = JSON.parse(text); } catch (e) { return; }
    onData(d, isLive);
  }
  function onData(d, isLive) {
    if (!d || typeof d !== 'object' || !d.reading || typeof d.reading !== 'object') return;
    if (S.meter && d.meter && d.meter !== S.meter) return;
    const rms = num(d.received_ms), seq = num(d.seq);
    if (rms !== null) {
      // Shown already (a replay): no newer seq and no newer time. A newer seq at an older time is
      // p1d's clock stepped back (NTP, a date set by hand); an older seq at a newer time is p1d
      // restarted. Both are news.
      if (rms <= S.lastReceivedMs && (seq === null || seq <= S.lastSeq)) return;
      S.lastReceivedMs = rms;
      if (seq !== null) S.lastSeq = seq;
    }
    const now = performance.now();
    const wasStale = S.stale || !S.lastArrival;
    if (S.lastArrival && isLive) {
      S.gaps.push(now - S.lastArrival);
      if (S.gaps.length > GAPS_MAX) S.gaps.shift();
      const g = S.gaps.slice().sort((a, b) => a - b)[S.gaps.length >> 1];
      S.interval = Math.min(60000, Math.max(100, g));
    }
    if (isLive) S.lastArrival = now;
    else if (!S.lastArrival && rms !== null) S.lastArrival = now - Math.max(0, Date.now() - rms);
    S.last = d;
    const r = d.reading;
    const hadElec = S.elecSeen;
    if (hasElec(r)) S.elecSeen = true;
    renderHero(d);
    if (isLive && rms !== null) {
      // Milliseconds from p1d receiving the telegram to the DOM showing it (same clock when local).
      const lat = performance.timeOrigin + performance.now() - rms;
      if (stats.lat.length < LAT_MAX) stats.lat.push(lat); else stats.lat[stats.latHead++ % LAT_MAX] = lat;
      stats.readings++;
    }
    renderPhases(r);
    renderTotals(r);
    renderMbusHero(r);
    // Today's gas row follows whether this meter has gas at all.
    // ... and so does the History's message for a period without gas; the electricity rows and
    // metrics follow whether it has electricity, and the History's metrics its M-Bus devices.
    const media = ['gas', 'water', 'heat'].filter((k) => hasMedium(r, k)).join(' ');
    if (hasGas(r) !== S.hasGas || hadElec !== S.elecSeen || media !== S.media) {
      S.hasGas = hasGas(r);
      S.media = media;
      renderToday();
      if (S.view === 'history' && H.anchor) {
        const metric = H.metric;
        updateHistControls();
        if (H.metric !== metric || (H.data && H.metric === 'gas')) { if (H.data) drawHistory(H.data, H.cmp); else loadHistory(); }
      }
    }
    renderCapacity(r);
    livePush((rms !== null ? rms : Date.now()) / 1000, netPower(r));
    scheduleLive();
    if (S.view === 'meter') renderMeterReading(r);
    if (isLive) S.wdBackoff = 0;
    if (wasStale && isLive) {
      setStale(false);
      if (S.wasLost) { S.wasLost = false; backfill(); }
    }
    updateAge();
  }

  // The shown meter's latest reading, when p1d's meter list says it has one.
  function loadNow() {
    if (!hasReading(S.meterInfo)) return Promise.resolve();
    return getJSON(meterPath('now'), 5000).then((d) => { if (d) onData(d, false); }).catch(() => {});
  }
  function connect() {
    clearTimeout(S.reconnectTimer);
    if (S.es) { S.es.close(); S.es = null; }
    S.esOpen = false;
    S.connectAt = performance.now();
    const es = new EventSource(withToken(meterPath('stream')));
    S.es = es;
    es.onopen = () => {
      if (S.es !== es) return;
      S.esOpen = true;
      S.backoff = 1000;
      // A first telegram that came before the stream opened is not sent on it: ask p1d.
      if (!S.last && !hasReading(S.meterInfo) && !S.metersBusy) loadMeters();
      updateConn();
    };
    es.onerror = () => {
      if (S.es !== es) return;
      S.esOpen = false;
      if (es.readyState === EventSource.CLOSED) {
        // The server refused the stream (an error status): retry ourselves, with backoff.
        S.reconnectTimer = setTimeout(connect, S.backoff);
        S.backoff = Math.min(S.backoff * 2, 30000);
      }
      updateConn();
      tick();
    };
    es.addEventListener('reading', (e) => { if (S.es === es) onEvent(e.data, true); });
    // PUT /api/v1/identify (Home Assistant's Identify button): a HomeWizard meter blinks its
    // light; this page, which is p1d's light, flashes its power card for a few seconds.
    es.addEventListener('identify', () => {
      if (S.es !== es) return;
      const b = document.body;
      b.classList.remove('identify');
      void b.offsetWidth; // a second request restarts the flashing
      b.classList.add('identify');
      clearTimeout(S.identifyTimer);
      S.identifyTimer = setTimeout(() => b.classList.remove('identify'), IDENTIFY_MS);
    });
    // p1d's configuration was reloaded without this meter: its stream ends. Show another meter
    // rather than retry a stream that is gone (404) for good.
    es.addEventListener('removed', (e) => {
      if (S.es !== es) return;
      let gone = S.meter;
      try { gone = JSON.parse(e.data).meter; } catch (err) { /* the stream's own meter */ }
      if (gone === S.meter) { es.close(); S.es = null; S.esOpen = false; }
      loadMeters().then(() => {
        const names = S.meters.map((m) => m && m.name).filter((n) => typeof n === 'string');
        if (names.length && !names.includes(S.meter)) switchMeter(names[0]);
        else { updateConn(); tick(); }
      });
    });
  }

  function staleLimit() { return Math.max(3 * S.interval, STALE_MIN_MS); }
  function setStale(on) {
    if (S.stale === on) return;
    S.stale = on;
    document.body.classList.toggle('stale', on);
    if (on) S.wasLost = true;
    updateConn();
  }
  // The banner's text, and optionally one button after it (action: {label, run}).
  function banner(text, action) {
    const b = $('banner');
    if (!text) { if (!b.hidden) b.hidden = true; return; }
    const key = action ? text + '\n' + action.label : text;
    if (b.dataset.key !== key) {
      b.dataset.key = key;
      b.textContent = text;
      if (action) {
        const btn = el('button', 'btn', action.label);
        btn.type = 'button';
        btn.addEventListener('click', action.run);
        b.append(' ', btn);
      }
    }
    if (b.hidden) b.hidden = false;
  }
  // p1d says the shown meter has not delivered a telegram yet (p1d just started; a DSMR 4 meter
  // sends one every 10 s): a state to wait in, not a fault.
  function waitingFirst() {
    return S.esOpen && !S.lastArrival && !S.noMeters && !!S.meterInfo && !hasReading(S.meterInfo);
  }
  function updateConn() {
    const c = $('conn');
    const since = S.lastArrival ? performance.now() - S.lastArrival : Infinity;
    let state, text;
    if (S.noMeters) { state = 'offline'; text = t('conn_no_meter'); }
    else if (waitingFirst()) { state = 'waiting'; text = t('conn_waiting'); setText($('p-label'), t('waiting_first')); }
    else if (!S.lastArrival) { state = S.esOpen ? 'connecting' : 'offline'; text = S.esOpen || !S.connectAt ? t('conn_connecting') : t('conn_offline'); }
    else if (!S.esOpen) { state = 'offline'; text = t('conn_offline'); } // the stream broke: say so at once
    else if (!S.stale) { state = 'live'; text = t('conn_live'); }
    else { state = 'stale'; text = t('conn_stale', { age: fmtAge(since) }); }
    if (c.dataset.state !== state) c.dataset.state = state;
    setText($('conn-text'), text);
  }
  function updateAge() {
    const a = $('age');
    if (!S.last) { setText(a, ''); return; }
    const since = performance.now() - S.lastArrival;
    const r = S.last.reading || {};
    let txt;
    if (S.stale) txt = t('ago', { t: fmtAge(since) });
    else {
      const mt = r.time_valid === false ? null : parseTime(r.time);
      txt = mt ? F.hms.format(mt) : '';
    }
    if (a.textContent !== txt) a.textContent = txt;
  }
  // Runs every second: stale detection (our own watchdog, beside EventSource's reconnect).
  function tick() {
    // p1d refuses us without its token: that, not a lost connection, is why nothing shows.
    if (tokenNeeded) {
      banner(t('banner_token'), askingToken ? null : { label: t('token_enter'), run: () => askToken(true) });
      updateConn();
      return;
    }
    if (S.view === 'now') { loadPrices(); renderPrice(); }
    if (S.noMeters) {
      if (S.lastArrival) setStale(true); // the last meter's values are old now
      banner(t('banner_no_meter'));
      updateConn();
      updateAge();
      if (!S.metersBusy && Date.now() - S.metersAt > METERS_EVERY_MS) loadMeters();
      return;
    }
    const now = performance.now();
    const limit = staleLimit();
    const since = S.lastArrival ? now - S.lastArrival : now - S.connectAt;
    const silent = since > limit;
    if (S.lastArrival) setStale(silent);
    const quiet = silent && meterQuiet(limit);
    // Ask p1d about its meters once the stream is silent, before deciding whom to blame.
    const silentSince = Date.now() - since;
    const informed = S.metersOkAt > silentSince || S.metersFailAt > silentSince;
    if (silent && !informed && !S.metersBusy) loadMeters();
    if (silent && informed && !quiet && now - S.connectAt > Math.max(limit, S.wdBackoff)) {
      // Our watchdog: EventSource alone never notices a stream that stays open but goes quiet.
      // Not while p1d itself says that the meter is the one that went quiet.
      S.wdBackoff = Math.min(Math.max(limit, S.wdBackoff) * 2, 30000);
      connect();
    }
    let msg = null;
    const mi = S.meterInfo;
    const err = quiet && mi.last_error ? ' ' + t('banner_error', { err: mi.last_error }) : '';
    if (!S.lastArrival) {
      // Waiting for the first telegram is calm (the hero says so) until p1d reports an error for
      // the meter or it lasts WAIT_CALM_MS.
      const calm = waitingFirst() && !mi.last_error && since < WAIT_CALM_MS;
      if (since > limit && !calm) msg = (quiet || S.esOpen ? t('banner_never') : t('banner_lost', { age: DASH })) + err;
      if (since > limit && Date.now() - S.metersAt > METERS_EVERY_MS) loadMeters();
    } else if (silent) {
      const age = fmtAge(now - S.lastArrival);
      if (quiet && !/receiv|connected/.test(mi.state || '')) msg = t('banner_meter', { meter: mi.name, state: stateName(mi.state), age }) + err;
      else if (quiet) msg = t('banner_quiet', { meter: mi.name, age }) + err;
      else if (!S.esOpen) msg = t('banner_lost', { age });
      else msg = t('banner_stale', { age });
      if (Date.now() - S.metersAt > METERS_EVERY_MS) loadMeters();
    }
    // Nothing wrong with the meter or the stream: does the history get written? p1d says so in
    // its meter list, asked every STORE_EVERY_MS (more often while it says no).
    const storeErr = S.meterInfo && typeof S.meterInfo.history_error === 'string' ? S.meterInfo.history_error : null;
    if (!msg && storeErr) msg = t('banner_store', { err: storeErr.replace(/^store: /, '').replace(/\.$/, '') });
    if (!S.noStore && !S.metersBusy && Date.now() - S.metersAt > (storeErr ? STORE_BAD_EVERY_MS : STORE_EVERY_MS)) loadMeters();
    banner(msg);
    updateConn();
    updateAge();
    if (S.view === 'now' && !S.stale && Date.now() - S.summaryAt > SUMMARY_EVERY_MS) loadSummary();
    if (S.view === 'meter' && Date.now() - S.metersAt > METERS_EVERY_MS) loadMeters();
    if (S.meters.length > 1 && !S.metersBusy && Date.now() - S.metersAt > PICKER_EVERY_MS) loadMeters();
    // A period that includes now grows: refresh it every minute while it is on screen.
    if (S.view === 'history' && H.anchor && !S.historyMissing && Date.now() - H.loadedAt > SUMMARY_EVERY_MS &&
        shift(H.range, H.anchor, 1) > new Date()) loadHistory();
    scheduleLive();
  }

  // Fills the live chart from stored raw readings: on load, and after an outage.
  // Whether a meter list from /api/meters says p1d keeps no history database. An older p1d
  // without the "history" field is asked, as before.
  function listSaysNoStore(list) {
    return Array.isArray(list) && list.length > 0 && list.every((m) => m && m.history === false);
  }
  // Takes what a fresh meter list says about the store: without one, the history and summary
  // requests are not made (they would only answer 404); with one again (p1d restarted with
  // --db), they are.
  // The hours a zone's standard time is ahead of CET, by the browser's own zone data (15 Jan).
  function zoneLead(name) {
    const parts = new Intl.DateTimeFormat('en-GB', { timeZone: name, hour: '2-digit', hourCycle: 'h23' })
      .formatToParts(new Date(Date.UTC(2025, 0, 15, 12)));
    const h = parseInt((parts.find((p) => p.type === 'hour') || {}).value, 10);
    return Number.isFinite(h) ? (h - 13) * 3600000 : 0;
  }
  // Takes p1d's calendar zone from /api/meters: formats, days and the history shown follow it.
  function noteZone(list) {
    const name = list[0] && list[0].time_zone;
    if (typeof name !== 'string' || !name || name === TZ) return;
    let lead;
    try { lead = zoneLead(name); } catch (e) { return; } // a zone the browser does not know
    TZ = name;
    TZ_LEAD = lead;
    F = makeFormats();
    histCache.clear();
    if (H.anchor) {
      H.anchor = startOf(H.range, new Date(H.anchor.getTime() + 2 * HOUR_MS));
      if (S.view === 'history') loadHistory();
    }
  }
  function noteStore(list) {
    if (!Array.isArray(list) || !list.length) return;
    noteZone(list);
    const none = listSaysNoStore(list);
    if (none) S.historyMissing = true;
    else if (S.noStore) { S.historyMissing = false; S.summaryMissing = false; summaryErr = null; S.summaryAt = 0; S.pricesAt = 0; }
    S.noStore = none;
  }
  // listP: the first load's /api/meters request, answered before the history is asked.
  async function backfill(listP) {
    const list = listP ? await listP.catch(() => null) : null;
    if (listP) noteStore(list);
    // No meter: no live chart to fill (and an empty store would answer 404).
    const none = listP ? Array.isArray(list) && !list.length : S.noMeters || !S.meter;
    if (S.historyMissing || none) return;
    const to = new Date();
    const from = new Date(to.getTime() - LIVE_WINDOW_S * 1000);
    try {
      const h = await getJSON(historyURL(from, to, 'raw', { fields: 'power_w_mean' }), 5000);
      const times = h && Array.isArray(h.time) ? h.time : [];
      const p = h && (h.power_w || h.power_w_mean || h.power_net_w);
      if (!Array.isArray(p)) return;
      const pts = [];
      for (let i = 0; i < times.length; i++) {
        const d = parseTime(times[i]);
        const v = num(p[i]);
        if (d && v !== null) pts.push([d.getTime() / 1000, v]);
      }
      liveMerge(pts);
      scheduleLive();
    } catch (e) {
      if (e.status === 404) S.historyMissing = true;
    }
  }

  // Whether p1d answered /api/meters lately and said there that the shown meter is the one that
  // went quiet (not receiving, or no telegram for longer than limit ms): then p1d is fine.
  function meterQuiet(limit) {
    const mi = S.meterInfo;
    if (!mi || Date.now() - S.metersOkAt > 2 * METERS_EVERY_MS + 1000) return false;
    const age = num(mi.age_s);
    return !/receiv|connected/.test(mi.state || '') || age === null || age * 1000 > limit;
  }
  async function loadMeters() {
    S.metersAt = Date.now();
    S.metersBusy = true;
    try {
      const list = await getJSON('/api/meters', 5000);
      if (!Array.isArray(list)) return;
      S.metersOkAt = Date.now();
      S.meters = list;
      noteStore(list);
      // p1d came back (a restart with another configuration) without the meter shown: no stream
      // of it will ever open again, so show the first one it has, as after a reload.
      const names = list.map((m) => m && m.name).filter((n) => typeof n === 'string');
      const had = hasReading(S.meterInfo);
      S.meterInfo = list.find((m) => m && m.name === S.meter) || list[0] || null;
      // The first telegram came while the stream was not open yet: fetch it rather than wait.
      if (!had && !S.last && hasReading(S.meterInfo)) loadNow();
      if (S.meter && names.length && !names.includes(S.meter) && !S.noMeters) switchMeter(names[0]);
      renderMeterSelect();
      noteMeterCount();
      if (S.view === 'meter') renderMeterInfo();
    } catch (e) {
      S.metersFailAt = Date.now(); // the banner tells
    } finally {
      S.metersBusy = false;
    }
  }

  // A meter that delivers no telegrams now (not connected, connected but silent, or stopped
  // without any): among many, the picker marks it so that it can be found.
  const inTrouble = (m) => !/receiv/.test(m.state || '') && !(m.state === 'stopped' && num(m.telegrams) > 0);
  // A fleet's picker (PICKER_FIND_MIN meters or more) lists only the meters whose name holds
  // every word of the search field, and with the toggle only those in trouble.
  const find = { q: '', trouble: false, first: '' };
  function findMeters(list) {
    const words = find.q.toLowerCase().split(/\s+/).filter(Boolean);
    const bad = list.filter(inTrouble).length;
    const shown = list.filter((m) => (!find.trouble || inTrouble(m)) && words.every((w) => m.name.toLowerCase().includes(w)));
    find.first = shown.length ? shown[0].name : '';
    const tb = $('meter-trouble');
    tb.textContent = t('trouble_n', { n: bad });
    tb.setAttribute('aria-pressed', String(find.trouble));
    tb.disabled = !bad && !find.trouble;
    const n = !words.length && !find.trouble ? '' : shown.length ? t('find_n', { n: shown.length, all: list.length }) : t('find_none');
    if ($('meter-n').textContent !== n) $('meter-n').textContent = n;
    // The shown meter stays in the list (first), so that the closed picker still names it.
    const cur = list.find((m) => m.name === S.meter);
    return cur && !shown.includes(cur) ? [cur].concat(shown) : shown;
  }
  function renderMeterSelect() {
    const pick = $('meter-pick'), sel = $('meter-select');
    const all = S.meters.filter((m) => m && typeof m.name === 'string');
    pick.hidden = all.length < 2;
    $('meter-find').hidden = all.length < PICKER_FIND_MIN;
    if (all.length < 2) return;
    const list = all.length < PICKER_FIND_MIN ? all : findMeters(all);
    const label = (m) => (inTrouble(m) ? '⚠ ' + m.name + ' · ' + (stateName(m.state) || '?') : m.name);
    const labels = list.map(label).join('\n');
    if (sel.dataset.names !== labels) {
      sel.replaceChildren(...list.map((m) => {
        const o = el('option', inTrouble(m) ? 'trouble' : null, label(m));
        o.value = m.name;
        return o;
      }));
      sel.dataset.names = labels;
    }
    sel.value = S.meter;
    sel.title = S.meter;
  }
  // p1d reads no meter (it runs on its history alone, or a reload took every meter away): say
  // so instead of waiting for a reading that cannot come, and take the first meter that appears.
  function noteMeterCount() {
    const names = S.meters.map((m) => m && m.name).filter((n) => typeof n === 'string');
    if (!names.length) {
      if (S.noMeters) return;
      S.noMeters = true;
      clearTimeout(S.reconnectTimer);
      if (S.es) { S.es.close(); S.es = null; }
      S.esOpen = false;
      return;
    }
    if (!S.noMeters) return;
    S.noMeters = false;
    const name = names.includes(S.meter) ? S.meter : names[0];
    S.meter = '';
    switchMeter(name);
  }
  function switchMeter(name) {
    if (name === S.meter) return;
    S.meter = name;
    settings.meter = name;
    saveSettings();
    S.last = null; S.hasGas = null; S.media = ''; S.phasesSeen = false; S.elecSeen = false; S.lastReceivedMs = 0; S.lastSeq = 0; S.lastArrival = 0; S.gaps = []; S.stale = false;
    document.body.classList.remove('stale');
    liveClear();
    S.meterInfo = S.meters.find((m) => m.name === name) || null;
    // p1d without a database says so for every meter: no need to ask again for this one.
    summary = null;
    if (!summaryErr || summaryErr.code !== 'no_database') { summaryErr = null; S.summaryAt = 0; }
    S.capTariff = null; S.capAt = 0;
    histCache.clear();
    H.data = null; H.cmp = null; // nor its history, drawn again before this one's arrives
    // Nothing of the meter shown before may stay: a meter without a reading yet shows empty
    // cards, not the other meter's phases and totals under its name.
    renderHero({});
    renderPhases({});
    renderTotals({});
    renderMbusHero({});
    renderCapacity(null);
    if (S.view === 'meter') renderMeterReading({}, true);
    connect();
    loadNow();
    backfill();
    loadSummary();
    if (S.view === 'history') loadHistory();
    if (S.view === 'meter') renderMeterInfo();
  }

  /* ---- Meter view ---------------------------------------------------------------------------- */
  // A word of the API (a meter state, a profile, an M-Bus medium) in the page's language; an
  // unknown one as it came.
  function apiWord(kind, w) {
    if (typeof w !== 'string' || !w) return null;
    const s = t(kind + '_' + w);
    return s === kind + '_' + w ? w : s;
  }
  const stateName = (w) => apiWord('state', w);
  function renderMeterInfo() {
    const m = S.meterInfo;
    const rows = [];
    const v = (x) => (x === null || x === undefined ? null : String(x));
    const count = (x) => fmt(num(x), 0);
    if (!m) {
      rows.push({ k: 'name', label: t('k_name'), value: S.meter || null });
    } else {
      const last = parseTime(m.last_telegram);
      rows.push(
        { k: 'name', label: t('k_name'), value: v(m.name) },
        { k: 'source', label: t('k_source'), value: v(m.source) },
        { k: 'state', label: t('k_state'), value: stateName(m.state), cls: /receiv|connected/.test(m.state || '') ? 'ok' : 'bad' },
        { k: 'since', label: t('k_since'), value: fmtDate(F.full, parseTime(m.connected_since)) },
        { k: 'last', label: t('k_last'), value: last ? F.full.format(last) + ' (' + t('ago', { t: fmtAge(num(m.age_s) !== null ? m.age_s * 1000 : Date.now() - last) }) + ')' : null },
        { k: 'tg', label: t('k_telegrams'), value: count(m.telegrams) },
        { k: 'rej', label: t('k_rejected'), value: count(m.rejected) },
        { k: 'crc', label: t('k_crc'), value: count(m.crc_errors), cls: m.crc_errors > 0 ? 'warn' : '' },
        { k: 'rc', label: t('k_reconnects'), value: count(m.reconnects) },
        { k: 'bytes', label: t('k_bytes'), value: count(m.bytes) },
        { k: 'det', label: t('k_detected'), value: v(m.detected), tip: t('none') },
        { k: 'err', label: t('k_last_error'), value: v(m.last_error), tip: t('none') },
      );
    }
    kv($('m-conn'), rows);
    renderPublishing(m);
    loadAlerts(m);
  }
  // Publishing: one row per publisher of the meter (/api/meters "publishers"); the card is made on
  // first use, after the Connection card, and hidden while p1d publishes nowhere.
  const PUB_NAMES = { azure: 'Azure Table Storage', mqtt: 'MQTT', influxdb: 'InfluxDB' };
  function pubName(n) { return n === 'alerts' ? t('pub_alerts') : PUB_NAMES[n] || (typeof n === 'string' ? n : null); }
  // A wide card (made hidden) with heading `key` and an empty table `tblId`, put after `prev`.
  function tableCard(id, key, tblId, prev) {
    const card = el('article', 'card wide pub-card');
    card.id = id;
    card.hidden = true;
    const h = el('h2', null, t(key));
    h.dataset.i18n = key;
    const wrap = el('div', 'table-wrap');
    const tbl = el('table');
    tbl.id = tblId;
    wrap.append(tbl);
    card.append(h, wrap);
    prev.after(card);
    return card;
  }
  function publishingCard() {
    const conn = $('m-conn');
    if ($('m-pub-card') || !conn || !conn.closest('.card')) return $('m-pub-card');
    return tableCard('m-pub-card', 'publishing', 'm-pubs', conn.closest('.card'));
  }
  function pubLag(p) {
    const n = num(p.lag_readings);
    if (n === null) return null;
    const sec = num(p.lag_seconds);
    return fmt(n, 0) + (n > 0 && sec !== null ? ' (' + fmtDuration(sec) + ')' : '');
  }
  function pubState(p) {
    const st = typeof p.state === 'string' ? p.state : '';
    if (!st) return null;
    let s = t('pub_' + st);
    if (s === 'pub_' + st) s = st;
    const wait = num(p.retry_in_s);
    if (st === 'retrying' && wait !== null) s += ' · ' + t('pub_retry_in', { t: fmtDuration(Math.ceil(wait)) });
    return s;
  }
  function renderPublishing(m) {
    const list = m && Array.isArray(m.publishers) ? m.publishers.filter((p) => p && typeof p === 'object') : [];
    const card = publishingCard();
    if (!card) return;
    card.hidden = !list.length;
    if (!list.length) return;
    const tbl = $('m-pubs');
    table(tbl, [t('pub_name'), t('k_state'), t('pub_lag'), t('pub_delivered'), t('pub_parked'), t('k_last_error')],
      list.map((p) => [pubName(p.name), pubState(p), pubLag(p),
        fmt(num(p.delivered), 0), fmt(num(p.parked), 0), typeof p.last_error === 'string' && p.last_error ? p.last_error : null]));
    // colour the state cells: green while delivering, red while not; lag in warning colour when old
    const rows = tbl.tBodies[0] ? Array.from(tbl.tBodies[0].rows) : [];
    rows.forEach((tr, i) => {
      const p = list[i], st = tr.cells[1], lag = tr.cells[2];
      if (!p || !st || !lag) return;
      st.classList.toggle('ok', p.state === 'idle' || p.state === 'sending');
      st.classList.toggle('bad', p.state === 'retrying' || p.state === 'auth_failed' || p.state === 'stopped');
      lag.classList.toggle('warn', num(p.lag_seconds) !== null && p.lag_seconds >= 60);
      tr.dataset.pub = typeof p.name === 'string' ? p.name : '';
    });
  }
  // Recent alerts (/api/alerts): this meter's and those about no meter (the prices), after the
  // Publishing card; hidden while p1d sends no alerts. Asked for when the meter's alerts entry in
  // /api/meters changes, and every 30 s.
  const AL = { sig: null, at: 0, busy: false };
  function alertsCard() {
    const pub = publishingCard();
    if ($('m-alerts-card') || !pub) return $('m-alerts-card');
    return tableCard('m-alerts-card', 'alerts_recent', 'm-alerts', pub);
  }
  function alertSent(a) {
    const ways = [];
    for (const w of ['url', 'mqtt']) {
      if (typeof a[w] !== 'string') continue;
      let s = t('alert_' + a[w]);
      if (s === 'alert_' + a[w]) s = a[w];
      ways.push(t('alert_way_' + w) + ': ' + s);
    }
    return ways.length ? ways.join(' · ') : null;
  }
  async function loadAlerts(m) {
    const pe = m && Array.isArray(m.publishers) ? m.publishers.find((p) => p && p.name === 'alerts') : null;
    // the meter shown and the language change the table too
    const sig = [S.meter, LANG].concat(pe ? [pe.delivered, pe.parked, pe.lag_readings, pe.state] : ['none']).join('|');
    if (AL.busy || (sig === AL.sig && Date.now() - AL.at < 30000)) return;
    AL.sig = sig;
    AL.at = Date.now();
    AL.busy = true;
    let b = null;
    try { b = await getJSON('/api/alerts', 5000); } catch (e) { /* the banner tells */ } finally { AL.busy = false; }
    const card = alertsCard();
    if (!card || !b || typeof b !== 'object') return;
    card.hidden = b.enabled !== true;
    if (card.hidden) return;
    const list = (Array.isArray(b.alerts) ? b.alerts : []).filter((a) => a && typeof a === 'object' &&
      (a.meter === null || a.meter === S.meter));
    const tbl = $('m-alerts');
    table(tbl, [t('alert_time'), t('alert_title'), t('alert_msg'), t('alert_sent')],
      list.length ? list.map((a) => [fmtDate(F.full, parseTime(a.time)), typeof a.title === 'string' ? a.title : null,
        typeof a.message === 'string' ? a.message : null, alertSent(a)]) : [[t('alerts_none'), '', '', '']]);
    const rows = tbl.tBodies[0] ? Array.from(tbl.tBodies[0].rows) : [];
    rows.forEach((tr, i) => {
      const a = list[i], sent = tr.cells[3];
      if (!a || !sent) return;
      const st = [a.url, a.mqtt];
      sent.classList.toggle('bad', st.includes('dropped'));
      sent.classList.toggle('warn', !st.includes('dropped') && st.includes('waiting'));
      sent.classList.toggle('ok', !st.includes('dropped') && !st.includes('waiting'));
      tr.dataset.event = typeof a.event === 'string' ? a.event : '';
    });
  }
  function dsmrVersion(s) {
    if (typeof s !== 'string' || !s) return null;
    if (/^\d\d$/.test(s)) return s[0] + '.' + s[1];
    return s;
  }
  // e-MUCS stamps each month of 0-0:98.1.0 with its end (the 1st of the next month, 00:00):
  // the month the peak belongs to is the day before.
  function peakMonth(iso) {
    const d = parseTime(iso);
    return d ? new Date(d.getTime() - 86400000) : null;
  }
  // A limiter or fuse supervision of 999 or more (Fluvius: 999.9 kW and 999 A; a DSMR 2.2 Iskra
  // 0999.00 kW, a Kamstrup 999 A), or the e-MUCS spec's 99.999 kW, is the meter's way of saying
  // that none is set.
  const noLimit = (v) => num(v) !== null && (v >= 999 || Math.abs(v - 99.999) < 1e-9);
  let meterRenderAt = 0;
  function renderMeterReading(r, force) {
    const now = Date.now();
    if (!force && now - meterRenderAt < 1000) return;
    meterRenderAt = now;
    if (!r) return;
    const scheme = r.tariff_scheme;
    const breaker = num(r.breaker);
    kv($('m-meter'), [
      { k: 'id', label: t('k_id'), value: r.equipment_id || null },
      { k: 'hdr', label: t('k_header'), value: r.header || null },
      { k: 'ver', label: t('k_version'), value: dsmrVersion(r.version) },
      { k: 'prof', label: t('k_profile'), value: r.profile === 'unknown' ? null : apiWord('profile', r.profile) },
      { k: 'scheme', label: t('k_scheme'), value: scheme ? regName(1, scheme) + ' = 1, ' + regName(2, scheme) + ' = 2' : null },
      { k: 'time', label: t('meter_time'), value: r.time_valid === false ? null : fmtDate(F.full, parseTime(r.time)), tip: t('na_clock') },
      { k: 'obj', label: t('k_objects'), value: num(r.objects) === null ? null : r.objects + ' (' + (num(r.unknown) || 0) + ')' },
      { k: 'brk', label: t('k_breaker'), value: breaker === null ? null : t('breaker_' + breaker) },
      { k: 'lim', label: t('k_limiter'), value: noLimit(r.limiter) ? t('no_limit') : num(r.limiter) === null ? null : fmt(r.limiter, 3) + ' ' + (r.limiter_unit || '') },
      { k: 'fuse', label: t('k_fuse'), value: noLimit(r.fuse_limit_a) ? t('no_limit') : withUnit(fmt(r.fuse_limit_a, 0), 'A') },
    ]);
    kv($('m-quality'), [
      { k: 'pf', label: t('k_failures'), value: fmt(num(r.power_failures), 0) },
      { k: 'lpf', label: t('k_long_failures'), value: fmt(num(r.long_power_failures), 0) },
    ]);
    // A table of what the meter does not send says so, rather than "none" or headers alone.
    const ph = (Array.isArray(r.phases) ? r.phases : []).filter((p) => p && ['sags', 'swells', 'voltage_v'].some((k) => num(p[k]) !== null));
    table($('m-phase-q'), ['', t('k_sags'), t('k_swells'), t('voltage')],
      ph.length ? ph.map((p) => ['L' + (p.phase || '?'), fmt(num(p.sags), 0), fmt(num(p.swells), 0), withUnit(fmt(p.voltage_v, 1), 'V')])
        : [[t('not_sent'), '', '', '']]);
    const fl = Array.isArray(r.failure_log) ? r.failure_log : [];
    table($('m-failures'), [t('k_end'), t('k_duration')],
      fl.length ? fl.map((f) => [f.end_valid === false ? null : fmtDate(F.full, parseTime(f.end)), fmtDuration(f.duration_s)])
        : [[num(r.failure_log_count) === null ? t('not_sent') : t('none'), '']]);
    const msg = $('m-text');
    const text = [r.text, r.text_code].filter((x) => typeof x === 'string' && x).join(' · ');
    if (msg.textContent !== (text || t('no_message'))) msg.textContent = text || t('no_message');
    msg.classList.toggle('muted', !text);
    const mb = Array.isArray(r.mbus) ? r.mbus : [];
    table($('m-mbus'), [t('k_channel'), t('k_medium'), t('k_id'), t('k_value'), t('k_when')],
      mb.length ? mb.map((m) => [String(m.channel), apiWord('medium', m.medium), m.id || null,
        num(m.value) === null ? null : fmt(m.value, 3) + ' ' + (m.unit === 'm3' ? 'm³' : m.unit || ''),
        m.time_valid === false ? null : fmtDate(F.full, parseTime(m.time))]) : [[t('none'), '', '', '', '']]);
    const dm = Array.isArray(r.demand_months) ? r.demand_months : [];
    $('m-demand-card').hidden = !dm.length;
    if (dm.length) {
      table($('m-demand'), [t('k_month'), t('k_peak'), t('k_when')],
        // a month without a peak (a new meter: 0 kW at the month's first moment) has no peak time
        dm.map((m) => [fmtDate(F.monthYear, peakMonth(m.month)), withUnit(fmt(m.peak_kw, 3), 'kW'),
          num(m.peak_kw) === 0 ? null : fmtDate(F.dmy, parseTime(m.peak_time))]));
    }
  }

  /* ---- History view ---------------------------------------------------------------------------- */
  const H = { loadedAt: 0, range: 'day', anchor: null, metric: 'elec', want: 'elec', res: '1h', compare: 'none', chart: null, data: null, cmp: null, req: 0, labels: [] };
  const histCache = new Map();
  // Calendar arithmetic in CET/CEST by the EU rule (summer time from the last Sunday of March
  // 01:00 UTC to the last Sunday of October 01:00 UTC), the zone the store's days and months use;
  // in EET/EEST the same an hour later (TZ_LEAD).
  const HOUR_MS = 3600000;
  function lastSunday(y, m) {
    const d = new Date(Date.UTC(y, m, 31, 1));
    d.setUTCDate(31 - d.getUTCDay());
    return d.getTime();
  }
  function zoneOffset(ms) {
    const y = new Date(ms).getUTCFullYear();
    return (ms >= lastSunday(y, 2) && ms < lastSunday(y, 9) ? 2 * HOUR_MS : HOUR_MS) + TZ_LEAD;
  }
  function zoneFields(ms) {
    const d = new Date(ms + zoneOffset(ms));
    return { y: d.getUTCFullYear(), m: d.getUTCMonth(), d: d.getUTCDate(), wd: d.getUTCDay() };
  }
  // Local midnight of y-m-d (fields may overflow: day 0, month 12) as a Date.
  function zoneMidnight(y, m, d) {
    const naive = Date.UTC(y, m, d);
    let t = naive - zoneOffset(naive - HOUR_MS);
    if (zoneOffset(t) !== naive - t) t = naive - zoneOffset(t);
    return new Date(t);
  }
  function startOf(range, date) {
    const f = zoneFields(date.getTime());
    if (range === 'week') return zoneMidnight(f.y, f.m, f.d - ((f.wd + 6) % 7));
    if (range === 'month') return zoneMidnight(f.y, f.m, 1);
    if (range === 'year') return zoneMidnight(f.y, 0, 1);
    return zoneMidnight(f.y, f.m, f.d);
  }
  function shift(range, date, n) {
    const f = zoneFields(date.getTime());
    if (range === 'day') return zoneMidnight(f.y, f.m, f.d + n);
    if (range === 'week') return zoneMidnight(f.y, f.m, f.d + 7 * n);
    if (range === 'month') return zoneMidnight(f.y, f.m + n, f.d);
    return zoneMidnight(f.y + n, f.m, f.d);
  }
  function isoDate(date) {
    const f = zoneFields(date.getTime());
    return f.y + '-' + String(f.m + 1).padStart(2, '0') + '-' + String(f.d).padStart(2, '0');
  }
  function stepOf(range) {
    return range === 'day' ? H.res : range === 'year' ? '1mo' : '1d';
  }
  function isoWeek(date) {
    const f = zoneFields(date.getTime());
    const x = new Date(Date.UTC(f.y, f.m, f.d));
    const day = x.getUTCDay() || 7;
    x.setUTCDate(x.getUTCDate() + 4 - day);
    const y0 = new Date(Date.UTC(x.getUTCFullYear(), 0, 1));
    return Math.ceil(((x - y0) / 86400000 + 1) / 7);
  }
  function periodLabel(range, from) {
    if (range === 'day') return F.day.format(from);
    if (range === 'week') {
      const end = shift('day', shift('week', from, 1), -1);
      return t('week_n', { n: isoWeek(from) }) + ' · ' + F.dm.format(from) + ' – ' + F.dm.format(end);
    }
    if (range === 'month') return F.monthYear.format(from);
    return F.year.format(from);
  }
  // Labels of a response's steps; on the autumn day the hour from 02:00 comes twice, so each
  // time that repeats carries its zone (02:00 CEST, 02:00 CET).
  function stepLabels(c, plain, zoned) {
    const out = c.times.map((d) => (d ? plain(d) : ''));
    return out.map((l, i) => (l && c.twice.has(l) && H.range === 'day' ? zoned.format(c.times[i]) : l));
  }
  function stepLabel(range, d) {
    if (range === 'day') return F.hm.format(d);
    if (range === 'week') return F.wd.format(d);
    if (range === 'month') return F.d.format(d);
    return F.mon.format(d);
  }
  const HIST_FIELDS = 'import_kwh,import_t1_kwh,import_t2_kwh,export_kwh,export_t1_kwh,export_t2_kwh,gas_m3,water_m3,heat_gj,cost_eur,unpriced_kwh,unpriced_gas_m3';
  async function fetchHistory(from, to, step) {
    const url = historyURL(from, to, step, { fields: HIST_FIELDS });
    const recent = to.getTime() > Date.now() - 3600000;
    const hit = histCache.get(url);
    if (hit && (!recent || Date.now() - hit.at < 60000)) return hit.p;
    const p = getJSON(url, 15000);
    histCache.set(url, { p, at: Date.now() });
    p.catch(() => histCache.delete(url));
    while (histCache.size > CACHE_MAX) histCache.delete(histCache.keys().next().value);
    return p;
  }
  // The columns a history response carries, in the names issue 4 gives (or close variants).
  function col(h, names) {
    for (const n of names) if (h && Array.isArray(h[n])) return h[n].map(num);
    return null;
  }
  function columns(h) {
    const c = {
      imp1: col(h, ['import_t1_kwh', 'import_tariff1_kwh', 'import_1_kwh']),
      imp2: col(h, ['import_t2_kwh', 'import_tariff2_kwh', 'import_2_kwh']),
      imp: col(h, ['import_kwh']),
      exp1: col(h, ['export_t1_kwh', 'export_tariff1_kwh', 'export_1_kwh']),
      exp2: col(h, ['export_t2_kwh', 'export_tariff2_kwh', 'export_2_kwh']),
      exp: col(h, ['export_kwh']),
      gas: col(h, ['gas_m3']),
      water: col(h, ['water_m3']),
      heat: col(h, ['heat_gj']),
      cost: col(h, ['cost_eur', 'cost', 'cost_total_eur', 'costs_eur', 'cost_total']),
      upk: col(h, ['unpriced_kwh']),
      upg: col(h, ['unpriced_gas_m3']),
    };
    const n = Array.isArray(h && h.time) ? h.time.length : 0;
    const sum = (a, b) => {
      if (!a && !b) return null;
      const out = new Array(n);
      for (let i = 0; i < n; i++) {
        const x = a ? a[i] : null, y = b ? b[i] : null;
        out[i] = x === null && y === null ? null : (x || 0) + (y || 0);
      }
      return out;
    };
    if (!c.imp) c.imp = sum(c.imp1, c.imp2);
    if (!c.exp) c.exp = sum(c.exp1, c.exp2);
    if (c.imp || c.exp) {
      c.net = new Array(n);
      for (let i = 0; i < n; i++) {
        const a = c.imp ? c.imp[i] : null, b = c.exp ? c.exp[i] : null;
        c.net[i] = a === null && b === null ? null : (a || 0) - (b || 0);
      }
    }
    c.times = (h && Array.isArray(h.time) ? h.time : []).map(parseTime);
    c.n = n;
    // Clock times that occur twice in the response (the autumn change of a day in hours or less).
    const seen = new Set();
    c.twice = new Set();
    for (const d of c.times) {
      if (!d) continue;
      const k = F.hm.format(d);
      if (seen.has(k)) c.twice.add(k); else seen.add(k);
    }
    // Steps whose cost leaves out energy without a price (p1d's unpriced_kwh / unpriced_gas_m3).
    c.partial = [];
    for (let i = 0; i < n; i++) if ((c.upk && c.upk[i] > 0) || (c.upg && c.upg[i] > 0)) c.partial.push(i);
    return c;
  }
  function total(a) {
    if (!a) return null;
    let s = 0, any = false;
    for (const v of a) if (v !== null) { s += v; any = true; }
    return any ? s : null;
  }
  function histMsg(text, tip) {
    const m = $('h-msg');
    const none = !!text && !H.data;
    $('h-csv').hidden = none;
    document.querySelector('.h-table').hidden = none;
    if (!text) { m.hidden = true; return; }
    m.replaceChildren(el('b', null, text));
    if (tip) m.append(el('br'), el('span', null, tip));
    m.hidden = false;
  }
  // The metrics the shown meter has: water and heat with such an M-Bus device (in its reading,
  // or in the history shown: a silent meter has no reading), electricity and costs unless it
  // sent no electricity (a heat interface); gas always (it says when there is none).
  function metricShown(m) {
    const r = S.last && S.last.reading;
    if (m === 'water' || m === 'heat') return (!!r && hasMedium(r, m)) || !!(H.data && H.data[m] && H.data[m].some((v) => v !== null));
    return m === 'gas' || !noElec();
  }
  function updateHistControls() {
    for (const b of $('h-range').querySelectorAll('button')) b.setAttribute('aria-pressed', String(b.dataset.range === H.range));
    const metrics = Array.from($('h-metric').querySelectorAll('button'));
    for (const b of metrics) b.hidden = !metricShown(b.dataset.metric);
    if (metricShown(H.want)) H.metric = H.want;
    else if (!metricShown(H.metric)) H.metric = ['elec', 'heat', 'water', 'gas'].find(metricShown);
    for (const b of metrics) b.setAttribute('aria-pressed', String(b.dataset.metric === H.metric));
    for (const b of $('h-res').querySelectorAll('button')) b.setAttribute('aria-pressed', String(b.dataset.res === H.res));
    $('h-res').hidden = H.range !== 'day';
    $('cmp-prev').textContent = t('cmp_prev_' + H.range);
    $('h-compare').value = H.compare;
    const from = H.anchor;
    $('h-label').textContent = periodLabel(H.range, from);
    $('h-next').disabled = shift(H.range, from, 1) > new Date();
  }
  async function loadHistory() {
    if (!H.anchor) H.anchor = startOf(H.range, new Date());
    updateHistControls();
    const req = ++H.req;
    H.loadedAt = Date.now();
    const from = H.anchor, to = shift(H.range, from, 1), step = stepOf(H.range);
    $('h-csv').href = withToken(historyURL(from, to, step, { format: 'csv' }));
    $('h-csv').setAttribute('download', 'p1d-' + (S.meter || 'meter') + '-' + H.range + '-' + isoDate(from) + '.csv');
    let cmpFrom = null;
    if (H.compare === 'prev') cmpFrom = shift(H.range, from, -1);
    else if (H.compare === 'year') cmpFrom = H.range === 'week' ? shift('week', from, -52) : shift('year', from, -1);
    if (S.historyMissing) {
      H.data = null; H.cmp = null;
      drawHistory(null, null, t('hist_none'), t('na_no_history'));
      return;
    }
    try {
      const [h, c] = await Promise.all([
        fetchHistory(from, to, step),
        cmpFrom ? fetchHistory(cmpFrom, shift(H.range, cmpFrom, 1), step).catch(() => null) : Promise.resolve(null),
      ]);
      if (req !== H.req) return;
      if (!h) {
        // 204: p1d has no meter, live or stored (a history-only p1d whose store is still empty).
        H.data = null; H.cmp = null;
        drawHistory(null, null, t('hist_none'), t('na_nothing_stored'));
        return;
      }
      H.data = columns(h);
      H.cmp = c ? columns(c) : null;
      updateHistControls(); // water or heat stored for a meter that has sent no reading yet
      drawHistory(H.data, H.cmp, null);
    } catch (e) {
      if (req !== H.req) return;
      // not_found: a meter the store does not know (no_database: no store at all).
      const empty = e.status === 404 && e.code === 'not_found';
      if (e.status === 404 && !empty) S.historyMissing = true;
      H.data = null; H.cmp = null;
      drawHistory(null, null, e.status === 404 ? t('hist_none') : t('na_error', { err: errText(e) }),
        empty ? t('na_nothing_stored') : e.status === 404 ? t('na_no_history') : null);
    }
  }
  function metricSeries(c, cmp) {
    // [label, drawn values, color, dashed, shown values] in drawing order. Stacked bars draw the
    // total first and tariff 1 over it, so a tariff 2 bar is drawn as the total but shows its own
    // value; exports are drawn below zero but shown as the positive energy they are.
    const out = [];
    const scheme = S.last && S.last.reading ? S.last.reading.tariff_scheme : null;
    const neg = (a) => a ? a.map((v) => (v === null ? null : -v)) : null;
    // a tariff series only when the meter has that tariff (one without tariff registers, or with
    // Israel's 11..13, has all nulls in them)
    const has = (a) => Array.isArray(a) && a.some((v) => v !== null);
    if (H.metric === 'elec') {
      if (has(c.imp1) && has(c.imp2)) {
        out.push([t('import') + ' · ' + regName(2, scheme), c.imp, C.imp2, false, c.imp2]);
        out.push([t('import') + ' · ' + regName(1, scheme), c.imp1, C.imp1]);
      } else if (c.imp) out.push([t('import'), c.imp, C.imp]);
      if (has(c.exp1) && has(c.exp2)) {
        out.push([t('export') + ' · ' + regName(2, scheme), neg(c.exp), C.exp2, false, c.exp2]);
        out.push([t('export') + ' · ' + regName(1, scheme), neg(c.exp1), C.exp1, false, c.exp1]);
      } else if (c.exp) out.push([t('export'), neg(c.exp), C.exp, false, c.exp]);
      if (cmp && cmp.imp) out.push([t('import') + ' · ' + t('compared'), cmp.imp, C.cmp, true]);
      if (cmp && cmp.exp) out.push([t('export') + ' · ' + t('compared'), neg(cmp.exp), C.cmp, true, cmp.exp]);
    } else if (H.metric !== 'cost') {
      const k = H.metric;
      if (c[k]) out.push([t(k), c[k], C[k]]);
      if (cmp && cmp[k]) out.push([t(k) + ' · ' + t('compared'), cmp[k], C.cmp, true]);
    } else {
      if (c.cost) out.push([t('cost'), c.cost, C.cost]);
      if (cmp && cmp.cost) out.push([t('cost') + ' · ' + t('compared'), cmp.cost, C.cmp, true]);
    }
    return out;
  }
  const UNIT = { elec: 'kWh', gas: 'm³', water: 'm³', heat: 'GJ', cost: '€' };
  // The decimals an axis needs to tell its ticks apart: as many as their spacing has (0.25: 2;
  // a heat meter's 0.002 GJ steps: 3), at most 4.
  function tickDecimals(splits) {
    const step = splits.length > 1 ? Math.abs(splits[1] - splits[0]) : 0;
    let d = 0;
    while (d < 4 && step > 0 && Math.abs(step * 10 ** d - Math.round(step * 10 ** d)) > 1e-6 * 10 ** d) d++;
    return d;
  }
  function drawHistory(c, cmp, msg, tip) {
    const box = $('h-chart');
    box.setAttribute('aria-label', t('m_' + H.metric) + ' · ' + $('h-label').textContent);
    if (H.chart) { H.chart.destroy(); H.chart = null; }
    box.replaceChildren();
    $('h-legend').replaceChildren();
    const sum = $('h-sum');
    sum.replaceChildren();
    if (!c) {
      histMsg(msg, tip);
      box.classList.add('empty');
      table($('h-table'), null, []);
      return;
    }
    const series = metricSeries(c, cmp);
    const any = series.some((s) => !s[3] && s[1] && s[1].some((v) => v !== null));
    box.classList.toggle('empty', !any);
    // Costs mark the steps where some energy had no price: the bars leave it out.
    const partial = H.metric === 'cost' ? c.partial : [];
    box.dataset.partial = partial.join(',');
    const energy = [c.imp, c.exp, c.gas].some((a) => a && a.some((v) => v !== null));
    if (any) histMsg(null);
    else if (H.metric === 'cost' && (partial.length || energy)) {
      histMsg(t('hist_no_price'), partial.length ? t('no_price', { what: unpricedText(total(c.upk), total(c.upg)) }) : null);
    }
    else if (S.last && S.last.reading && H.metric === 'gas' && !hasGas(S.last.reading)) histMsg(t('hist_no_gas'));
    else histMsg(series.length ? t('hist_empty') : (H.metric === 'cost' ? t('na_no_prices') : H.metric === 'gas' ? t('na_no_gas') : t('hist_empty')));
    for (const s of series) $('h-legend').append(swatch(s[2], s[0], s[3]));
    if (any && partial.length) $('h-legend').append(swatch(C.warn, t('unpriced_legend'), false, true));
    renderHistSummary(c, cmp);
    renderHistTable(c);
    if (!any || !hasPlot) { if (!hasPlot) box.textContent = t('charts_missing'); return; }
    const n = c.n;
    const xs = Array.from({ length: n }, (_, i) => i);
    H.labels = stepLabels(c, (d) => stepLabel(H.range, d), F.hmz);
    const unit = UNIT[H.metric];
    const dec = H.metric === 'cost' ? 2 : (H.range === 'day' ? 3 : 2);
    const bars = hasPlot ? uPlot.paths.bars({ size: [0.78, 64], align: 0 }) : null;
    const opts = {
      width: chartWidth(box), height: box.clientHeight || 300,
      padding: [10, 8, 0, 0],
      legend: { show: false },
      cursor: { drag: { x: false, y: false }, points: { show: false } },
      scales: {
        x: { time: false, range: () => [-0.5, n - 0.5] },
        y: { range: (u, lo, hi) => {
          lo = Math.min(0, lo === null ? 0 : lo); hi = Math.max(0, hi === null ? 0 : hi);
          if (lo === hi) hi = 1;
          const pad = (hi - lo) * 0.06;
          return [lo < 0 ? lo - pad : 0, hi > 0 ? hi + pad : 0];
        } },
      },
      axes: [
        axis({
          space: 40,
          splits: (u) => {
            const per = Math.max(1, Math.ceil(n / Math.max(2, Math.floor(u.bbox.width / devicePixelRatio / 48))));
            const nice = [1, 2, 3, 4, 6, 8, 12, 16, 24, 48].find((k) => k >= per) || per;
            const out = [];
            for (let i = 0; i < n; i += nice) out.push(i);
            return out;
          },
          values: (u, splits) => splits.map((i) => H.labels[i] || ''),
        }),
        axis({ size: 60, values: (u, splits) => splits.map((v) => fmt(v, tickDecimals(splits))), label: unit, labelSize: 18, labelGap: 2 }),
      ],
      series: [{}].concat(series.map((s) => ({
        label: s[0], stroke: s[2], fill: s[3] ? null : s[2], width: s[3] ? 1.5 : 0,
        dash: s[3] ? [4, 3] : undefined, paths: bars, points: { show: false }, fillTo: () => 0,
      }))),
      hooks: {
        setCursor: [(u) => histHover(u.cursor.idx, series, unit, dec)],
        drawAxes: [(u) => markPartial(u, partial, c)],
      },
    };
    H.chart = new uPlot(opts, [xs].concat(series.map((s) => s[1])), box);
  }
  // A hatched band behind each step with unpriced energy, drawn under the bars; denser where
  // nothing of the step had a price.
  function markPartial(u, idx, c) {
    if (!idx.length) return;
    const ctx = u.ctx, top = u.bbox.top, h = u.bbox.height;
    const dpr = devicePixelRatio || 1;
    const tile = document.createElement('canvas');
    tile.width = tile.height = Math.round(8 * dpr);
    const tc = tile.getContext('2d');
    tc.strokeStyle = C.warn;
    tc.lineWidth = dpr;
    tc.beginPath();
    tc.moveTo(0, tile.height); tc.lineTo(tile.width, 0);
    tc.moveTo(-tile.width / 2, tile.height / 2); tc.lineTo(tile.width / 2, -tile.height / 2);
    tc.moveTo(tile.width / 2, tile.height * 1.5); tc.lineTo(tile.width * 1.5, tile.height / 2);
    tc.stroke();
    ctx.save();
    ctx.fillStyle = ctx.createPattern(tile, 'repeat');
    for (const i of idx) {
      const x0 = u.valToPos(i - 0.5, 'x', true), x1 = u.valToPos(i + 0.5, 'x', true);
      ctx.globalAlpha = c && c.cost && c.cost[i] !== null ? 0.35 : 0.8;
      ctx.fillRect(x0, top, x1 - x0, h);
    }
    ctx.restore();
  }
  function histHover(idx, series, unit, dec) {
    const el2 = $('h-sum');
    if (idx === null || idx === undefined || !H.data || !H.data.times[idx]) { renderHistSummary(H.data, H.cmp); return; }
    const c = H.data;
    const d = c.times[idx];
    const parts = [el('b', null, H.range !== 'day' ? F.day.format(d) : c.twice.has(F.hm.format(d)) ? F.dmhmz.format(d) : F.dmhm.format(d))];
    for (const s of series) {
      const shown = s[4] || s[1];
      const v = shown ? num(shown[idx]) : null;
      parts.push(el('span', null, s[0] + ': ' + (v === null ? DASH : unit === '€' ? money(v) : fmt(v, dec) + '\u2009' + unit)));
    }
    if (H.metric === 'cost' && c.partial.includes(idx)) {
      const what = unpricedText(c.upk ? c.upk[idx] : null, c.upg ? c.upg[idx] : null);
      const whole = !c.cost || c.cost[idx] === null;
      parts.push(el('span', 'partial', whole ? t('no_price', { what }) : t('cost_partial', { what })));
    }
    el2.replaceChildren(...parts);
  }
  // An amount in the page's locale (nl: "€ −1,23", en: "−€1.23"), with the minus fmt uses.
  // fine: a price per kWh, with 3 or 4 decimals ("€0.235", "€0.2345").
  function money(v, cur, fine) {
    v = num(v);
    if (v === null) return null;
    let f;
    const o = { style: 'currency', currency: cur || 'EUR' };
    if (fine) { o.minimumFractionDigits = 3; o.maximumFractionDigits = 4; }
    try { f = new Intl.NumberFormat(LOCALE, o); } catch (e) { return fmt(v, fine ? 4 : 2) + ' ' + (cur || 'EUR'); }
    const s = f.format(v);
    if (v >= 0 || s.replace('-', '') === f.format(0)) return f.format(Math.abs(v));
    return s.replace('-', MINUS);
  }
  function renderHistSummary(c, cmp) {
    const box = $('h-sum');
    if (!c) { box.replaceChildren(); return; }
    const items = [];
    const add = (label, v, vc, unit, d, cls, upIsGood) => {
      if (v === null) return;
      const s = el('span', cls);
      s.append(el('small', null, label), el('b', null, unit === '€' ? money(v) : fmt(v, d) + '\u2009' + unit));
      if (vc !== null && vc !== undefined && vc !== 0) {
        // A change that rounds to 0 % is no change: neither sign nor colour.
        const pct = (v - vc) / Math.abs(vc) * 100, p = fmt(Math.abs(pct), 0);
        if (p === fmt(0, 0)) s.append(el('em', null, '±' + p + '%'));
        else s.append(el('em', (pct > 0) !== !!upIsGood ? 'worse' : 'better', (pct > 0 ? '+' : MINUS) + p + '%'));
      }
      items.push(s);
    };
    const T = (k, o) => (o && o[k] ? total(o[k]) : null);
    add(t('import'), T('imp', c), T('imp', cmp), 'kWh', 2, 'c-imp');
    add(t('export'), T('exp', c), T('exp', cmp), 'kWh', 2, 'c-exp', true);
    add(t('net'), T('net', c), T('net', cmp), 'kWh', 2);
    add(t('gas'), T('gas', c), T('gas', cmp), 'm³', 2, 'c-gas');
    add(t('water'), T('water', c), T('water', cmp), 'm³', 2, 'c-water');
    add(t('heat'), T('heat', c), T('heat', cmp), 'GJ', 3, 'c-heat');
    add(t('cost'), T('cost', c), T('cost', cmp), '€', 2, 'c-cost');
    // A total that leaves out unpriced energy says so under the figure.
    const what = unpricedText(T('upk', c), T('upg', c));
    const costItem = items.find((x) => x.classList.contains('c-cost'));
    if (costItem && what) costItem.append(el('small', 'partial', t('cost_partial', { what })));
    box.replaceChildren(...items);
  }
  function renderHistTable(c) {
    const scheme = S.last && S.last.reading ? S.last.reading.tariff_scheme : null;
    const cols = [
      ['imp1', t('import') + ' ' + regName(1, scheme) + ' (kWh)', 3], ['imp2', t('import') + ' ' + regName(2, scheme) + ' (kWh)', 3],
      ['imp', t('import') + ' (kWh)', 3], ['exp1', t('export') + ' ' + regName(1, scheme) + ' (kWh)', 3],
      ['exp2', t('export') + ' ' + regName(2, scheme) + ' (kWh)', 3], ['exp', t('export') + ' (kWh)', 3],
      ['net', t('net') + ' (kWh)', 3], ['gas', t('gas') + ' (m³)', 3], ['water', t('water') + ' (m³)', 3],
      ['heat', t('heat') + ' (GJ)', 3], ['cost', t('cost') + ' (€)', 2],
      ['upk', t('unpriced') + ' (kWh)', 3], ['upg', t('unpriced') + ' (m³)', 3],
    ].filter((k) => c[k[0]] && c[k[0]].some((v) => k[0][0] === 'u' ? v > 0 : v !== null));
    const f = H.range === 'day' ? F.hm : H.range === 'year' ? F.monthYear : F.day;
    const labels = stepLabels(c, (d) => f.format(d), F.hmz);
    const rows = [];
    for (let i = 0; i < c.n; i++) rows.push([labels[i] || null].concat(cols.map((k) => fmt(c[k[0]][i], k[2]))));
    const foot = [t('total')].concat(cols.map((k) => fmt(total(c[k[0]]), k[2])));
    // An empty cell: a step without readings, a cost without a price, or a value the meter lacks.
    const why = (i, k) => {
      if (![c.imp, c.exp, c.gas, c.water, c.heat].some((a) => a && a[i] !== null)) return t('hist_step_empty');
      if (k > 0 && cols[k - 1][0] === 'cost') {
        const what = unpricedText(c.upk ? c.upk[i] : null, c.upg ? c.upg[i] : null);
        return what ? t('no_price', { what }) : t('na_no_prices');
      }
      return t('na_missing');
    };
    table($('h-table'), [t('time')].concat(cols.map((k) => k[1])), rows, rows.length ? foot : null, why);
  }
  function initHistory() {
    $('h-range').addEventListener('click', (e) => {
      const b = e.target.closest('button');
      if (!b) return;
      H.range = b.dataset.range;
      H.anchor = startOf(H.range, H.anchor || new Date());
      loadHistory();
    });
    $('h-metric').addEventListener('click', (e) => {
      const b = e.target.closest('button');
      if (!b) return;
      H.metric = H.want = b.dataset.metric; // the choice comes back when its device does
      updateHistControls();
      if (H.data) drawHistory(H.data, H.cmp); else loadHistory();
    });
    $('h-res').addEventListener('click', (e) => {
      const b = e.target.closest('button');
      if (!b) return;
      H.res = b.dataset.res;
      loadHistory();
    });
    $('h-prev').addEventListener('click', () => { H.anchor = shift(H.range, H.anchor, -1); loadHistory(); });
    $('h-next').addEventListener('click', () => { H.anchor = shift(H.range, H.anchor, 1); loadHistory(); });
    $('h-today').addEventListener('click', () => { H.anchor = startOf(H.range, new Date()); loadHistory(); });
    $('h-compare').addEventListener('change', (e) => { H.compare = e.target.value; loadHistory(); });
  }

  /* ---- tabs, settings, i18n ------------------------------------------------------------------ */
  function applyI18n() {
    document.documentElement.lang = LANG;
    for (const e of document.querySelectorAll('[data-i18n]')) e.textContent = t(e.dataset.i18n);
    for (const e of document.querySelectorAll('[data-i18n-label]')) {
      e.setAttribute('aria-label', t(e.dataset.i18nLabel));
      e.title = t(e.dataset.i18nLabel);
    }
    for (const e of document.querySelectorAll('[data-i18n-aria]')) e.setAttribute('aria-label', t(e.dataset.i18nAria));
    $('live-chart').setAttribute('aria-label', t('live_title'));
  }
  function showView(v, focus) {
    if (!['now', 'history', 'meter'].includes(v)) v = 'now';
    S.view = v;
    for (const b of document.querySelectorAll('.tabs [role=tab]')) {
      const on = b.dataset.view === v;
      b.setAttribute('aria-selected', String(on));
      b.tabIndex = on ? 0 : -1;
      if (on && focus) b.focus();
    }
    for (const s of document.querySelectorAll('.view')) s.hidden = s.id !== 'view-' + v;
    if (location.hash !== '#' + v) history.replaceState(null, '', '#' + v);
    if (v === 'now') { resizeCharts(); scheduleLive(); }
    if (v === 'history') loadHistory();
    if (v === 'meter') { renderMeterInfo(); if (S.last) renderMeterReading(S.last.reading, true); loadMeters(); }
  }
  function initTabs() {
    const tabs = Array.from(document.querySelectorAll('.tabs [role=tab]'));
    for (const b of tabs) b.addEventListener('click', () => showView(b.dataset.view));
    document.querySelector('.tabs').addEventListener('keydown', (e) => {
      const i = tabs.findIndex((b) => b.dataset.view === S.view);
      let j = -1;
      if (e.key === 'ArrowRight') j = (i + 1) % tabs.length;
      else if (e.key === 'ArrowLeft') j = (i + tabs.length - 1) % tabs.length;
      else if (e.key === 'Home') j = 0;
      else if (e.key === 'End') j = tabs.length - 1;
      if (j >= 0) { e.preventDefault(); showView(tabs[j].dataset.view, true); }
    });
    window.addEventListener('hashchange', () => showView(location.hash.slice(1)));
  }
  function initSettings() {
    const dlg = $('settings');
    $('settings-btn').addEventListener('click', () => {
      $('s-phases').value = String(fusePhases());
      $('s-amps').value = String(settings.amps);
      $('s-lang').value = settings.lang;
      if (typeof dlg.showModal === 'function') dlg.showModal(); else dlg.setAttribute('open', '');
    });
    $('s-cancel').addEventListener('click', () => dlg.close());
    $('s-save').addEventListener('click', () => {
      settings.phases = $('s-phases').value === '1' ? 1 : 3;
      settings.amps = clampInt(Math.round(Number($('s-amps').value)), 6, 100, settings.amps);
      const langChanged = $('s-lang').value !== settings.lang;
      settings.lang = $('s-lang').value;
      saveSettings();
      dlg.close();
      if (langChanged) { location.reload(); return; }
      if (S.last) renderPhases(S.last.reading);
    });
    $('meter-select').addEventListener('change', (e) => switchMeter(e.target.value));
  }
  // The fleet picker: typing filters the list, Enter shows the first match, the arrow keys move
  // on to the (filtered) list.
  function initFind() {
    const q = $('meter-q'), tb = $('meter-trouble');
    q.placeholder = t('find_meter');
    tb.title = t('trouble_only');
    q.addEventListener('input', () => { find.q = q.value; renderMeterSelect(); });
    q.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') {
        e.preventDefault();
        if (find.first) switchMeter(find.first);
        renderMeterSelect();
      } else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        $('meter-select').focus();
      }
    });
    tb.addEventListener('click', () => { find.trouble = !find.trouble; renderMeterSelect(); });
  }
  function resizeCharts() {
    if (liveChart && S.view === 'now') {
      const box = $('live-chart');
      const w = chartWidth(box), h = box.clientHeight || 220;
      if (liveChart.width !== w || liveChart.height !== h) liveChart.setSize({ width: w, height: h });
    }
    if (H.chart && S.view === 'history') {
      const box = $('h-chart');
      const w = chartWidth(box), h = box.clientHeight || 300;
      if (H.chart.width !== w || H.chart.height !== h) H.chart.setSize({ width: w, height: h });
    }
  }

  /* ---- start ----------------------------------------------------------------------------------- */
  async function start() {
    initLocale();
    hasPlot = typeof window.uPlot === 'function';
    const { metersP, early } = boot;
    applyI18n();
    readColors();
    initTabs();
    initSettings();
    initFind();
    initHistory();
    renderToday();
    renderPhases({});
    createLiveChart();
    const initial = location.hash.slice(1);
    try {
      const list = await metersP;
      if (Array.isArray(list)) { S.meters = list.filter((m) => m && typeof m.name === 'string'); S.metersOkAt = Date.now(); noteStore(S.meters); }
    } catch (e) { /* p1d unreachable: the watchdog shows the banner */ }
    S.metersAt = Date.now();
    const names = S.meters.map((m) => m.name);
    S.meter = names.includes(settings.meter) ? settings.meter : (names[0] || '');
    S.meterInfo = S.meters.find((m) => m.name === S.meter) || null;
    renderMeterSelect();
    // p1d answered with no meter at all (a history-only p1d): no stream to open yet.
    if (S.metersOkAt && !names.length) noteMeterCount(); else connect();
    let nowP, fillP;
    if (early.fill && (!names.length || S.meter === names[0])) {
      nowP = early.now.then((d) => { if (d) onData(d, false); });
      fillP = early.fill;
    } else {
      nowP = loadNow();
      fillP = backfill();
    }
    loadSummary();
    loadPrices();
    await Promise.allSettled([nowP, fillP]);
    drawLive();
    stats.rendered = performance.now();
    try { performance.mark('rendered'); } catch (e) { /* old browsers */ }
    document.body.dataset.rendered = '1';
    if (initial && initial !== 'now') showView(initial); else showView('now');
    setInterval(tick, 1000);
    if (typeof ResizeObserver === 'function') {
      let pending = false;
      new ResizeObserver(() => {
        if (pending) return;
        pending = true;
        requestAnimationFrame(() => { pending = false; resizeCharts(); });
      }).observe(document.querySelector('main'));
    }
    const mq = window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)');
    if (mq && mq.addEventListener) mq.addEventListener('change', () => {
      readColors();
      createLiveChart();
      scheduleLive();
      if (S.view === 'history' && H.data) drawHistory(H.data, H.cmp);
    });
    document.addEventListener('visibilitychange', () => { if (!document.hidden) { tick(); scheduleLive(); } });
  }
  // The first meter is the API's default: ask for the meter list at once, and for the first
  // meter's reading and history as soon as the list says they exist (unless the settings name
  // another meter), while the browser still parses
  // uPlot (loaded after this file) and the page; the rest starts once the document is ready.
  const metersP = getJSON('/api/meters', 5000);
  metersP.catch(() => null);
  const boot = {
    metersP,
    early: {
      now: metersP.then((list) => Array.isArray(list) && hasReading(list[0]) ? getJSON('/api/now', 5000) : null).catch(() => null),
      fill: settings.meter ? null : backfill(metersP),
    },
  };
  // This file is async (it runs as soon as it arrives, to start the requests above); i18n.js and
  // uPlot are deferred: DOMContentLoaded comes after both, or 'load' if it already passed.
  let started = false;
  const go = () => { if (!started) { started = true; start(); } };
  if (document.readyState === 'complete') go();
  else { document.addEventListener('DOMContentLoaded', go, { once: true }); window.addEventListener('load', go, { once: true }); }
})();
