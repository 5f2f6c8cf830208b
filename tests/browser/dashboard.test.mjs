// dashboard.test.mjs: the dashboard in a real browser (Debian's Chromium through playwright-core)
// against p1d on the simulated meter on 127.0.0.1; saves screenshots under build/screenshots/.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CHROMIUM, P1, P1D, ROOT, SHOTS, assert, check, freePort, rawGet, run, skip, sleep, waitFor, watchFailures } from './harness.mjs';

const DEADLINE_MS = 300000; // against a hang; alone the checks take about a minute, in make test's pool up to three

async function main() {
  const { chromium } = await import(path.join(ROOT, 'web', 'node_modules', 'playwright-core', 'index.mjs'));
  fs.mkdirSync(SHOTS, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'p1d-dash-'));
  const port = await freePort();
  const base = 'http://127.0.0.1:' + port;
  const logPath = path.join(tmp, 'p1d.log');
  const log = fs.openSync(logPath, 'w');
  const db = path.join(tmp, 'p1d.db');
  // History to look at: 400 days of another simulated meter (a different id, so the live meter
  // starts a new segment), every quarter-hour on the clock up to now (so readings bound its
  // quarter-hours and they have a demand), imported with `p1 import`.
  let seeded = false;
  if (fs.existsSync(P1)) {
    const cap = path.join(tmp, 'capture.txt');
    const start = Math.floor((Math.floor(Date.now() / 1000) - 400 * 86400) / 900) * 900;
    const fd = fs.openSync(cap, 'w');
    const sim = spawnSync(P1, ['sim', '--seed', '7', '--fast', '--interval', '900', '--count', String(400 * 96 - 2), '--start', '@' + start],
      { stdio: ['ignore', fd, 'ignore'], timeout: 60000 });
    fs.closeSync(fd);
    let imp = sim.status === 0 ? spawnSync(P1, ['import', '--db', db, '--meter', 'home', '-q', cap], { stdio: 'ignore', timeout: 60000 }) : sim;
    // ... and its last 20 minutes at full rate (yet another id), for the live chart to fill from.
    const cap2 = path.join(tmp, 'capture-recent.txt');
    const fd2 = fs.openSync(cap2, 'w');
    const recent = spawnSync(P1, ['sim', '--seed', '8', '--fast', '--count', '1195', '--start', '@' + (Math.floor(Date.now() / 1000) - 1200)],
      { stdio: ['ignore', fd2, 'ignore'], timeout: 60000 });
    fs.closeSync(fd2);
    if (imp.status === 0 && recent.status === 0) imp = spawnSync(P1, ['import', '--db', db, '--meter', 'home', '-q', cap2], { stdio: 'ignore', timeout: 60000 });
    seeded = imp.status === 0;
    fs.rmSync(cap, { force: true });
    fs.rmSync(cap2, { force: true });
  }
  if (!seeded) console.log('# no history imported (build/p1 import failed or missing): history views stay sparse');
  const args = ['--source', 'home=sim', '--listen', '127.0.0.1:' + port, '--db', db,
    '--prices-import-t1', '0.2312', '--prices-import-t2', '0.2514', '--prices-export', '0.0700',
    '--prices-gas', '1.3521', '--prices-daily', '0.6200', '--prices-capacity-per-kw-year', '48.50',
    // an InfluxDB publisher pointing at a closed port: the Meter view's Publishing table shows it
    // retrying with a growing backlog
    '--influxdb-url', 'http://127.0.0.1:' + await freePort(), '--influxdb-database', 'p1',
    // alerts to a closed port: a row of their own in the same table, caught up while none is due
    '--alerts-url', 'http://127.0.0.1:' + await freePort() + '/p1d', '--alerts-events', 'power_failure'];
  const p1d = spawn(P1D, args, { stdio: ['ignore', log, log] });
  let browser = null;
  const cleanup = () => {
    try { process.kill(p1d.pid, 'SIGCONT'); } catch (e) { /* gone */ }
    try { p1d.kill('SIGTERM'); } catch (e) { /* gone */ }
  };
  process.on('exit', cleanup);
  const timer = setTimeout(() => { console.log('FAIL - whole test: deadline'); cleanup(); process.exit(1); }, DEADLINE_MS);
  try {
    await waitFor(async () => (await rawGet(port, '/api/now')).status === 200, 15000, 'p1d\'s first reading');
    const hist = await rawGet(port, '/api/history?step=1h&from=' + encodeURIComponent(new Date(Date.now() - 86400000).toISOString()) + '&to=' + encodeURIComponent(new Date().toISOString()));
    const haveHistory = hist.status === 200;

    /* ---- the files p1d serves ---- */
    await check('GET / serves the page gzip-compressed with an ETag', async () => {
      const r = await rawGet(port, '/', { 'Accept-Encoding': 'gzip, deflate, br' });
      assert(r.status === 200, 'status ' + r.status);
      assert(r.headers['content-encoding'] === 'gzip', 'no gzip');
      assert(/text\/html/.test(r.headers['content-type']), 'type ' + r.headers['content-type']);
      assert(r.headers.etag, 'no ETag');
      const again = await rawGet(port, '/', { 'Accept-Encoding': 'gzip', 'If-None-Match': r.headers.etag });
      assert(again.status === 304 && again.body.length === 0, '304 expected, got ' + again.status);
    });
    await check('a client without gzip gets the plain file', async () => {
      const r = await rawGet(port, '/app.js', {});
      assert(r.status === 200 && !r.headers['content-encoding'], 'status ' + r.status + ' ' + r.headers['content-encoding']);
      assert(r.body.toString('utf8').startsWith('/* app.js'), 'body is not app.js');
      const z = await rawGet(port, '/app.js', { 'Accept-Encoding': 'gzip;q=0, identity' });
      assert(!z.headers['content-encoding'], 'gzip;q=0 still got gzip');
    });
    await check('versioned assets are cacheable for a year; unknown paths are 404 JSON', async () => {
      const page = (await rawGet(port, '/', {})).body.toString('utf8');
      const m = page.match(/src="\/app\.js\?v=([0-9a-f]+)"/);
      assert(m, 'index.html does not reference a versioned app.js');
      const r = await rawGet(port, '/app.js?v=' + m[1], { 'Accept-Encoding': 'gzip' });
      assert(/immutable/.test(r.headers['cache-control'] || ''), 'cache-control ' + r.headers['cache-control']);
      const nf = await rawGet(port, '/nope.js', {});
      assert(nf.status === 404 && /not_found/.test(nf.body.toString()), 'status ' + nf.status);
    });

    /* ---- the page ---- */
    const profile = path.join(tmp, 'chromium-profile');
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
      viewport: { width: 1280, height: 900 },
      locale: 'en-GB',
      colorScheme: 'light',
    });
    const page = browser.pages()[0] || await browser.newPage();
    const consoleErrors = [];
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      const url = (m.location() && m.location().url) || '';
      // Without the history store, its endpoints answer 404 and Chromium logs that as an error.
      if (!haveHistory && /\/api\/(history|summary)/.test(url)) return;
      consoleErrors.push(m.text() + ' @ ' + url);
    });
    page.on('pageerror', (e) => consoleErrors.push('pageerror: ' + e.message));

    const t0 = Date.now();
    await page.goto(base + '/', { waitUntil: 'load' });
    await check('the page renders the first reading', async () => {
      await page.waitForSelector('body[data-rendered="1"]', { timeout: 10000 });
      const v = await page.textContent('#p-value');
      assert(/\d/.test(v), 'power figure is "' + v + '"');
      const rendered = await page.evaluate(() => window.p1d.stats.rendered);
      console.log('# first complete render ' + Math.round(rendered) + ' ms after navigation start (' + (Date.now() - t0) + ' ms wall)');
    });
    await check('the power figure changes when a telegram arrives', async () => {
      const before = await page.evaluate(() => ({ n: window.p1d.stats.readings, v: document.getElementById('p-value').textContent }));
      await page.waitForFunction((n) => window.p1d.stats.readings > n + 1, before.n, { timeout: 8000 });
      await page.waitForFunction((v) => document.getElementById('p-value').textContent !== v, before.v, { timeout: 15000 });
    });
    await check('the live chart has points and is drawn', async () => {
      await page.waitForFunction(() => window.p1d.liveCount() >= 3, null, { timeout: 8000 });
      const c = await page.$eval('#live-chart canvas', (cv) => ({ w: cv.width, h: cv.height }));
      assert(c.w > 100 && c.h > 100, 'canvas ' + c.w + 'x' + c.h);
    });
    await check('PUT /api/v1/identify (Home Assistant\'s Identify button) makes the power card flash', async () => {
      assert(!(await page.evaluate(() => document.body.classList.contains('identify'))), 'flashing before the request');
      const res = await fetch(base + '/api/v1/identify', { method: 'PUT' });
      assert(res.status === 200, 'status ' + res.status);
      const body = await res.json();
      assert(body.identify === 'ok', JSON.stringify(body));
      await page.waitForFunction(() => document.body.classList.contains('identify'), null, { timeout: 5000 });
      const anim = await page.$eval('#hero', (el) => getComputedStyle(el).animationName);
      assert(anim === 'identify', 'the power card\'s animation is "' + anim + '"');
      // it stops by itself after about 5 s
      await page.waitForFunction(() => !document.body.classList.contains('identify'), null, { timeout: 9000 });
    });
    await check('another program holding the database\'s write lock: the banner says the history is not saved, and goes when it is again', async () => {
      if (!fs.existsSync('/usr/bin/sqlite3')) { skip('no sqlite3 command (tools/setup.sh test)'); return; }
      const lock = spawn('/usr/bin/sqlite3', [db], { stdio: ['pipe', 'ignore', 'ignore'] });
      try {
        lock.stdin.write('BEGIN IMMEDIATE;\n');
        await page.waitForFunction(() => {
          const b = document.getElementById('banner');
          return !b.hidden && /history is not being saved/.test(b.textContent) && /write lock/.test(b.textContent);
        }, null, { timeout: 40000 });
        assert((await page.textContent('#p-value')).trim() !== '', 'the power went blank');
        await page.screenshot({ path: path.join(SHOTS, 'dashboard-store-banner.png') });
      } finally {
        lock.stdin.end('ROLLBACK;\n.quit\n');
      }
      await page.waitForFunction(() => {
        const b = document.getElementById('banner');
        return b.hidden || !/history is not being saved/.test(b.textContent);
      }, null, { timeout: 30000 });
    });
    await check('phases, totals and tariff show values, not NaN or undefined', async () => {
      const txt = await page.textContent('#view-now');
      assert(!/NaN|undefined|null|Infinity/.test(txt), 'bad text in the Now view');
      const rows = await page.$$eval('#phases .ph-row', (r) => r.length);
      assert(rows === 3, rows + ' phase rows');
      const tariff = await page.textContent('#tariff');
      assert(/tariff/i.test(tariff), 'tariff badge "' + tariff + '"');
    });
    await check('no console errors while loading and running', async () => {
      assert(consoleErrors.length === 0, consoleErrors.join(' | '));
    });
    await page.screenshot({ path: path.join(SHOTS, 'now-desktop-light.png'), fullPage: true });

    await check('keyboard: arrow keys move between the tabs', async () => {
      await page.focus('#tab-now');
      await page.keyboard.press('ArrowRight');
      const sel = await page.getAttribute('#tab-history', 'aria-selected');
      assert(sel === 'true', 'history tab not selected');
      const focused = await page.evaluate(() => document.activeElement.id);
      assert(focused === 'tab-history', 'focus on ' + focused);
    });
    await check('the day view draws from history', async () => {
      await page.click('#tab-history');
      if (!haveHistory) {
        await page.waitForSelector('#h-msg:not([hidden])', { timeout: 5000 });
        skip('the day view draws from history', '/api/history is not available yet (store not built); the page says so');
        await page.screenshot({ path: path.join(SHOTS, 'history-desktop-light.png'), fullPage: true });
        return 'skip';
      }
      await page.waitForFunction(() => document.querySelector('#h-chart canvas') || !document.getElementById('h-msg').hidden, null, { timeout: 8000 });
      const canvas = await page.$('#h-chart canvas');
      const msg = await page.textContent('#h-msg');
      assert(canvas, 'no chart: ' + msg);
      await page.screenshot({ path: path.join(SHOTS, 'history-desktop-light.png'), fullPage: true });
    });
    if (haveHistory) await check('week, month and year views, compare-with and the table', async () => {
      for (const r of ['week', 'month', 'year']) {
        await page.click('#h-range button[data-range="' + r + '"]');
        await page.waitForFunction(() => document.querySelector('#h-chart canvas'), null, { timeout: 8000 });
      }
      await page.selectOption('#h-compare', 'prev');
      await page.waitForFunction(() => /compared/.test(document.getElementById('h-legend').textContent), null, { timeout: 8000 });
      await page.click('#h-range button[data-range="month"]');
      await page.click('#h-prev');
      await page.waitForFunction(() => document.querySelector('#h-chart canvas'), null, { timeout: 8000 });
      await page.click('.h-table summary');
      const rows = await page.$$eval('#h-table tbody tr', (r) => r.length);
      assert(rows >= 28, rows + ' table rows for a month');
      const txt = await page.textContent('#view-history');
      assert(!/NaN|undefined|Infinity/.test(txt), 'bad text in the History view');
      const csv = await page.getAttribute('#h-csv', 'href');
      const r = await rawGet(port, csv, {});
      assert(r.status === 200 && /csv/.test(r.headers['content-type'] || ''), 'CSV: ' + r.status + ' ' + r.headers['content-type']);
      await page.screenshot({ path: path.join(SHOTS, 'history-month-compare.png'), fullPage: true });
      await page.click('.h-table summary');
      await page.selectOption('#h-compare', 'none');
      await page.click('#h-range button[data-range="day"]');
      await page.click('#h-today');
    });
    await check('the meter view shows id, version and counters', async () => {
      await page.click('#tab-meter');
      await page.waitForFunction(() => /E00/.test(document.getElementById('m-meter').textContent), null, { timeout: 5000 });
      const txt = await page.textContent('#view-meter');
      assert(/5\.0/.test(txt), 'no DSMR version');
      assert(!/NaN|undefined|Infinity/.test(txt), 'bad text in the Meter view');
      await page.screenshot({ path: path.join(SHOTS, 'meter-desktop-light.png'), fullPage: true });
    });
    await check('the meter view shows the Publishing table: InfluxDB retrying, backlog visible', async () => {
      await page.waitForSelector('#m-pub-card:not([hidden]) tr[data-pub="influxdb"]', { timeout: 8000 });
      const cells = await page.$$eval('#m-pubs tr[data-pub="influxdb"] > *', (c) => c.map((x) => x.textContent));
      const head = await page.$$eval('#m-pubs thead th', (c) => c.map((x) => x.textContent));
      assert(head.join('|') === 'Destination|State|Backlog|Delivered|Parked|Last error', 'head ' + head.join('|'));
      assert(cells[0] === 'InfluxDB', 'name ' + cells[0]);
      assert(/not connected, retrying/.test(cells[1]), 'state ' + cells[1]);
      assert(/^\d[\d,]*( \(.+\))?$/.test(cells[2]) && cells[2] !== '0', 'lag ' + cells[2]);
      assert(cells[3] === '0' && cells[4] === '0', 'delivered/parked ' + cells[3] + '/' + cells[4]);
      assert(cells[5] && cells[5] !== '—', 'no last error');
      const al = await page.$$eval('#m-pubs tr[data-pub="alerts"] > *', (c) => c.map((x) => x.textContent));
      assert(al[0] === 'Alerts' && al[1] === 'caught up' && al[2] === '0' && al[3] === '0', 'alerts row ' + al.join('|'));
      const txt = await page.textContent('#m-pub-card');
      assert(/Publishing/.test(txt) && !/NaN|undefined|Infinity/.test(txt), 'card text ' + txt);
      await page.screenshot({ path: path.join(SHOTS, 'meter-publishing.png'), fullPage: true });
      // on a phone its six columns were cut off behind a sideways scroll: one block per row
      await page.setViewportSize({ width: 360, height: 780 });
      await sleep(300);
      const wide = await page.$eval('#m-pubs', (t) => { const w = t.closest('.table-wrap'); return w.scrollWidth - w.clientWidth; });
      const label = await page.$eval('#m-pubs tr[data-pub="influxdb"] td:last-child', (td) => getComputedStyle(td, '::before').content);
      await page.screenshot({ path: path.join(SHOTS, 'meter-publishing-phone.png'), fullPage: true });
      await page.setViewportSize({ width: 1280, height: 900 });
      assert(wide <= 1, 'the Publishing table is ' + wide + ' px wider than its card on a 360 px phone');
      assert(/Last error/.test(label), 'the stacked row names its value: ' + label);
    });
    await page.click('#tab-now');

    await check('connection lost shows the banner and greys the numbers; recovery clears it', async () => {
      process.kill(p1d.pid, 'SIGSTOP');
      try {
        await page.waitForSelector('#banner:not([hidden])', { timeout: 12000 });
        const stale = await page.evaluate(() => document.body.classList.contains('stale'));
        assert(stale, 'numbers not marked stale');
        const txt = await page.textContent('#banner');
        assert(/\d/.test(txt), 'banner without the age: ' + txt);
        await page.screenshot({ path: path.join(SHOTS, 'now-desktop-stale.png') });
      } finally {
        process.kill(p1d.pid, 'SIGCONT');
      }
      await page.waitForSelector('#banner', { state: 'hidden', timeout: 20000 });
      const stale = await page.evaluate(() => document.body.classList.contains('stale'));
      assert(!stale, 'still marked stale after recovery');
      const before = await page.evaluate(() => window.p1d.stats.readings);
      await page.waitForFunction((n) => window.p1d.stats.readings > n, before, { timeout: 8000 });
    });

    await check('dark mode and the desktop screenshots', async () => {
      await page.emulateMedia({ colorScheme: 'dark' });
      await page.waitForTimeout(300);
      const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      assert(bg !== 'rgb(243, 245, 248)', 'background did not change: ' + bg);
      await page.screenshot({ path: path.join(SHOTS, 'now-desktop-dark.png'), fullPage: true });
      await page.click('#tab-history');
      await page.waitForTimeout(500);
      await page.screenshot({ path: path.join(SHOTS, 'history-desktop-dark.png'), fullPage: true });
      await page.click('#tab-now');
      await page.emulateMedia({ colorScheme: 'light' });
    });

    await check('a 360 px phone has no horizontal scroll in any view', async () => {
      await page.setViewportSize({ width: 360, height: 780 });
      for (const v of ['now', 'history', 'meter']) {
        await page.click('#tab-' + v);
        await page.waitForTimeout(400);
        const w = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
        assert(w[0] <= w[1], v + ': scrollWidth ' + w[0] + ' > ' + w[1]);
      }
      await page.click('#tab-now');
      await page.waitForTimeout(400);
      await page.screenshot({ path: path.join(SHOTS, 'now-phone-light.png'), fullPage: true });
      await page.emulateMedia({ colorScheme: 'dark' });
      await page.waitForTimeout(300);
      await page.screenshot({ path: path.join(SHOTS, 'now-phone-dark.png'), fullPage: true });
      await page.click('#tab-history');
      await page.waitForTimeout(400);
      await page.screenshot({ path: path.join(SHOTS, 'history-phone-dark.png'), fullPage: true });
      await page.emulateMedia({ colorScheme: 'light' });
      await page.setViewportSize({ width: 1280, height: 900 });
    });

    await check('settings: the fuse limit is set in a dialog and kept', async () => {
      await page.click('#tab-now');
      await page.click('#settings-btn');
      await page.waitForSelector('#settings[open]', { timeout: 3000 });
      await page.fill('#s-amps', '35');
      await page.selectOption('#s-phases', '1');
      await page.click('#s-save');
      await page.waitForFunction(() => /1\u2009×\u200935\u2009A/.test(document.getElementById('fuse-note').textContent), null, { timeout: 3000 });
      const stored = await page.evaluate(() => JSON.parse(localStorage.getItem('p1d.settings')));
      assert(stored.amps === 35 && stored.phases === 1, 'stored ' + JSON.stringify(stored));
      await page.keyboard.press('Escape');
    });
    await check('Dutch: texts and number formats follow the language', async () => {
      await page.evaluate(() => localStorage.setItem('p1d.settings', JSON.stringify({ lang: 'nl' })));
      await page.reload();
      await page.waitForSelector('body[data-rendered="1"]', { timeout: 10000 });
      const h = await page.textContent('#hero h2');
      assert(h === 'Vermogen nu', 'heading "' + h + '"');
      await page.waitForFunction(() => /\d,\d{3}\u2009kWh/.test(document.getElementById('totals').textContent), null, { timeout: 5000 });
      await page.screenshot({ path: path.join(SHOTS, 'desktop-nl.png'), fullPage: true });
      await page.click('#tab-meter');
      await page.waitForSelector('#m-pub-card:not([hidden]) tr[data-pub="influxdb"]', { timeout: 8000 });
      const pub = await page.textContent('#m-pub-card');
      assert(/Doorsturen/.test(pub) && /Achterstand/.test(pub) && /niet verbonden/.test(pub) && /Meldingen/.test(pub), 'Publishing in Dutch: ' + pub);
      await page.click('#tab-now');
      await page.evaluate(() => localStorage.removeItem('p1d.settings'));
    });

    /* ---- odd values from the API: a crafted stream ---- */
    await check('odd readings render as "—" with a tooltip, never NaN or undefined', async () => {
      const odd = await browser.newPage();
      const errs = [];
      odd.on('pageerror', (e) => errs.push(e.message));
      const reading = {
        meter: 'home', seq: 1, received: new Date().toISOString(), received_ms: Date.now(),
        reading: {
          version: '42', profile: 'nl', time: '2000-01-01T00:00:00+01:00', time_valid: false,
          power_import_w: 'x', phases: [{ phase: 1, voltage_v: 231.5 }, { phase: 2 }], tariff: null,
          import_tariff_kwh: { 1: null }, failure_log: [{ end: 'bogus', duration_s: -1 }], mbus: [{ channel: 1 }],
        },
      };
      const sse = 'retry: 100000\n\nid: home:1\nevent: reading\ndata: ' + JSON.stringify(reading) + '\n\n';
      await odd.route(/\/api\/meters$/, (r) => r.fulfill({ status: 200, contentType: 'application/json', body: '[{"name":"home","state":"receiving"}]' }));
      await odd.route(/\/api\/(meters\/home\/)?now$/, (r) => r.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(reading) }));
      await odd.route(/\/api\/meters\/home\/stream$/, (r) => r.fulfill({ status: 200, contentType: 'text/event-stream', body: sse }));
      await odd.route(/\/api\/(summary|history)/, (r) => r.fulfill({ status: 500, contentType: 'application/json', body: '{"error":{"code":"internal","message":"boom"}}' }));
      await odd.goto(base + '/');
      await odd.waitForSelector('body[data-rendered="1"]', { timeout: 10000 });
      await odd.waitForTimeout(300);
      for (const v of ['now', 'meter']) {
        await odd.click('#tab-' + v);
        await odd.waitForTimeout(200);
        const txt = await odd.textContent('#view-' + v);
        assert(!/NaN|undefined|Infinity|null/.test(txt), v + ' view shows a bad value');
      }
      await odd.click('#tab-now');
      const p = await odd.$eval('#p-value', (e) => [e.textContent, e.title]);
      assert(p[0] === '—' && p[1].length > 0, 'power "' + p[0] + '" title "' + p[1] + '"');
      const todayTip = await odd.$eval('#today dd span', (e) => e.title);
      assert(/boom/.test(todayTip), 'summary error not in the tooltip: ' + todayTip);
      assert(errs.length === 0, errs.join(' | '));
      await odd.close();
    });

    /* ---- Belgium's capacity tariff: p1d's forecast of this quarter hour, warned above the peak ---- */
    await check('the capacity card shows p1d\'s quarter-hour forecast, marked when it would set a new month peak', async () => {
      const end = new Date(Math.ceil(Date.now() / 900000) * 900000);
      const hm = new Intl.DateTimeFormat('en', { timeZone: 'Europe/Amsterdam', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(end);
      const open = async (forecast) => {
        const pg = await browser.newPage();
        const errs = [];
        pg.on('pageerror', (e) => errs.push(e.message));
        const ms = Date.now();
        const ev = {
          meter: 'home', seq: 1, received: new Date(ms).toISOString(), received_ms: ms,
          reading: { version: '50217', profile: 'be', power_import_w: 3000, power_export_w: 0, demand_current_kw: 1.5,
            demand_peak_kw: 2.8, demand_peak_time: '2026-11-03T18:15:00+01:00' },
          demand_forecast: forecast,
        };
        const sse = 'retry: 100000\n\nid: home:1\nevent: reading\ndata: ' + JSON.stringify(ev) + '\n\n';
        await pg.route(/\/api\/meters$/, (r) => r.fulfill({ status: 200, contentType: 'application/json', body: '[{"name":"home","state":"receiving"}]' }));
        await pg.route(/\/api\/(meters\/home\/)?now$/, (r) => r.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(ev) }));
        await pg.route(/\/api\/meters\/home\/stream$/, (r) => r.fulfill({ status: 200, contentType: 'text/event-stream', body: sse }));
        await pg.route(/\/api\/(summary|history)/, (r) => r.fulfill({ status: 404, contentType: 'application/json', body: '{"error":{"code":"no_database","message":"none"}}' }));
        await pg.goto(base + '/');
        await pg.waitForSelector('body[data-rendered="1"]', { timeout: 10000 });
        await waitFor(async () => (await pg.$('#capacity-kv dd[data-k="forecast"]')) !== null, 8000, 'the forecast row');
        const dd = await pg.$('#capacity-kv dd[data-k="forecast"]');
        const out = { text: (await dd.textContent()).trim(), cls: await dd.getAttribute('class'), title: await pg.getAttribute('#capacity-kv dd[data-k="forecast"] span', 'title') };
        if (forecast && forecast.kw > 2.8) {
          await pg.waitForTimeout(300);
          await (await pg.$('#capacity')).screenshot({ path: path.join(SHOTS, 'capacity-forecast.png') });
        }
        assert(errs.length === 0, errs.join(' | '));
        await pg.close();
        return out;
      };
      const over = await open({ kw: 3.1, quarter_end: end.toISOString() });
      assert(/^3\.100\s*kW/.test(over.text) && /warn/.test(over.cls || '') && over.text.includes('until ' + hm + ': above this month\'s peak'),
        'over the peak: ' + JSON.stringify(over));
      const under = await open({ kw: 2.0, quarter_end: end.toISOString() });
      assert(/^2\.000\s*kW/.test(under.text) && !/warn/.test(under.cls || '') && under.text.includes('until ' + hm + ' at the power now'),
        'under the peak: ' + JSON.stringify(under));
      const unknown = await open(null);
      assert(!/\d/.test(unknown.text) && /next quarter hour/.test(unknown.title || ''), 'unknown: ' + JSON.stringify(unknown));
    });

    /* ---- p1d's clock stepped back: later readings still show ---- */
    await check('a reading after p1d\'s clock was stepped back an hour is shown, and restarts the live chart', async () => {
      const pg = await browser.newPage();
      const errs = [];
      pg.on('pageerror', (e) => errs.push(e.message));
      const t0 = Date.now();
      const ev = (seq, ms, w) => ({
        meter: 'home', seq, received: new Date(ms).toISOString(), received_ms: ms,
        reading: { version: '50', profile: 'nl', power_import_w: w, power_export_w: 0 },
      });
      // seq 1 and 2 a second apart, then seq 3 an hour "earlier": NTP set p1d's clock back
      const evs = [ev(1, t0 - 1000, 111), ev(2, t0, 222), ev(3, t0 - 3600000 + 1000, 333)];
      const sse = 'retry: 100000\n\n' + evs.map((e) => 'id: home:' + e.seq + '\nevent: reading\ndata: ' + JSON.stringify(e) + '\n\n').join('');
      await pg.route(/\/api\/meters$/, (r) => r.fulfill({ status: 200, contentType: 'application/json', body: '[{"name":"home","state":"receiving"}]' }));
      await pg.route(/\/api\/(meters\/home\/)?now$/, (r) => r.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(evs[0]) }));
      await pg.route(/\/api\/meters\/home\/stream$/, (r) => r.fulfill({ status: 200, contentType: 'text/event-stream', body: sse }));
      await pg.route(/\/api\/(summary|history)/, (r) => r.fulfill({ status: 404, contentType: 'application/json', body: '{"error":{"code":"no_database","message":"none"}}' }));
      await pg.goto(base + '/');
      await pg.waitForSelector('body[data-rendered="1"]', { timeout: 10000 });
      let shown = '';
      for (let i = 0; i < 30 && shown !== '333'; i++) {
        await pg.waitForTimeout(100);
        shown = (await pg.textContent('#p-imp')).trim();
      }
      assert(shown === '333', 'import power shows "' + shown + '", not the stepped-back reading\'s 333');
      const n = await pg.evaluate(() => window.p1d.liveCount());
      assert(n === 1, 'live chart points after the step: ' + n + ' (the ring restarts at the step)');
      assert(errs.length === 0, errs.join(' | '));
      await pg.close();
    });

    /* ---- a cost that leaves out unpriced energy says so (cost_eur.partial) ---- */
    await check('a partial cost names the energy that had no price; a complete one says nothing', async () => {
      // p1d's own summary for today, with its cost_eur turned into a partial one as a p1d with
      // prices for only some hours answers it (docs/API.md, Summary).
      const real = await rawGet(port, '/api/summary');
      assert(real.status === 200, 'summary status ' + real.status);
      const body = JSON.parse(real.body.toString('utf8'));
      const wasPartial = body.cost_eur && body.cost_eur.partial;
      body.cost_eur = { total: 1.25, energy: 0.75, gas: 0, fixed: 0.5, partial: true, unpriced_kwh: 2.5, unpriced_gas_m3: 0 };
      const pp = await browser.newPage();
      const errs = [];
      pp.on('pageerror', (e) => errs.push(e.message));
      await pp.route(/\/api\/summary/, (r) => r.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(body) }));
      await pp.goto(base + '/');
      await pp.waitForSelector('body[data-rendered="1"]', { timeout: 10000 });
      await waitFor(async () => (await pp.$('#today dd[data-k="cost"] small')) !== null, 8000, 'the partial note');
      const note = await pp.textContent('#today dd[data-k="cost"] small');
      assert(/Partial/.test(note) && /2[.,]50/.test(note) && /kWh/.test(note), 'note: ' + note);
      await pp.close();
      // p1d's own summary, with every price set: no note.
      const full = await browser.newPage();
      await full.goto(base + '/');
      await full.waitForSelector('body[data-rendered="1"]', { timeout: 10000 });
      await full.waitForTimeout(500);
      assert(wasPartial === false, 'p1d with every price set says partial ' + wasPartial);
      assert((await full.$('#today dd[data-k="cost"] small')) === null, 'a complete cost has a note');
      await full.close();
      assert(errs.length === 0, errs.join(' | '));
    });

    /* ---- the capacity tariff: this month's bill in the capacity card, only when priced ---- */
    await check('the capacity card shows this month\'s capacity charge from p1d\'s month summary', async () => {
      const real = await rawGet(port, '/api/summary?period=month&meter=home');
      assert(real.status === 200, 'month summary status ' + real.status);
      const body = JSON.parse(real.body.toString('utf8'));
      const ct = body.capacity_tariff;
      assert(ct && ct.months && ct.months.length === 1, 'no capacity_tariff: ' + real.body.toString('utf8').slice(0, 300));
      const bill = ct.months[0];
      assert(bill.price_per_kw_year === 48.5 && bill.complete === false && bill.months_used >= 12, 'bill: ' + JSON.stringify(bill));
      const cp = await browser.newPage();
      const errs = [];
      cp.on('pageerror', (e) => errs.push(e.message));
      await cp.goto(base + '/');
      await cp.waitForSelector('body[data-rendered="1"]', { timeout: 10000 });
      await waitFor(async () => (await cp.$('#capacity-kv dd[data-k="cap_cost"]')) !== null, 8000, 'the capacity charge');
      const cost = await cp.textContent('#capacity-kv dd[data-k="cap_cost"]');
      const avg = await cp.textContent('#capacity-kv dd[data-k="cap_avg"]');
      const euros = bill.eur.toFixed(2);
      assert(cost.replace(',', '.').includes(euros) && /48[.,]50/.test(cost) && /so far/.test(await cp.textContent('#capacity-kv')),
        'charge ' + euros + ' not shown: ' + cost);
      assert(avg.replace(',', '.').includes(bill.average_kw.toFixed(3)) && /12 months/.test(avg), 'average: ' + avg);
      assert(!(await cp.isHidden('#capacity')), 'the capacity card is hidden');
      await cp.close();
      // Without capacity_per_kw_year p1d answers capacity_tariff null: no card on a meter without demand.
      body.capacity_tariff = null;
      const np = await browser.newPage();
      await np.route(/\/api\/summary\?.*period=month/, (r) => r.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(body) }));
      await np.goto(base + '/');
      await np.waitForSelector('body[data-rendered="1"]', { timeout: 10000 });
      await np.waitForTimeout(800);
      assert(await np.isHidden('#capacity'), 'the capacity card shows without a capacity price');
      await np.close();
      assert(errs.length === 0, errs.join(' | '));
    });

    /* ---- dynamic prices: the price card (price now, next change, a strip with the cheapest hours) ---- */
    // Console errors, answers of 400 and up, failed requests, and exceptions of the page's code.
    const watch = (p) => {
      const out = watchFailures(p);
      p.on('pageerror', (e) => out.push('pageerror: ' + e.message));
      return out;
    };
    await check('without dynamic prices (or without a store) there is no price card and no failed request', async () => {
      const pp = await browser.newPage();
      const errs = watch(pp);
      const asked = pp.waitForResponse((r) => /\/api\/prices/.test(r.url()), { timeout: 10000 });
      await pp.goto(base + '/');
      const r = await asked;
      assert(r.status() === 200, '/api/prices ' + r.status());
      await pp.waitForSelector('body[data-rendered="1"]', { timeout: 10000 });
      await pp.waitForTimeout(300);
      assert(await pp.isHidden('#price'), 'a price card without dynamic prices');
      assert(errs.length === 0, errs.join(' | '));
      await pp.close();
      // p1d without --db: no store, so the page does not even ask.
      const nport = await freePort();
      const nlog = fs.openSync(path.join(tmp, 'p1d-nodb.log'), 'w');
      const np1d = spawn(P1D, ['--source', 'home=sim', '--listen', '127.0.0.1:' + nport], { stdio: ['ignore', nlog, nlog] });
      try {
        await waitFor(async () => (await rawGet(nport, '/api/now')).status === 200, 15000, 'the store-less p1d');
        const np = await browser.newPage();
        const nerrs = watch(np);
        const urls = [];
        np.on('request', (q) => urls.push(q.url()));
        await np.goto('http://127.0.0.1:' + nport + '/');
        await np.waitForSelector('body[data-rendered="1"]', { timeout: 10000 });
        await np.waitForTimeout(1200);
        assert(await np.isHidden('#price'), 'a price card without a store');
        assert(!urls.some((u) => /\/api\/prices/.test(u)), 'asked for prices without a store');
        assert(nerrs.length === 0, nerrs.join(' | '));
        await np.close();
      } finally {
        try { np1d.kill('SIGTERM'); } catch (e) { /* gone */ }
        fs.closeSync(nlog);
      }
    });
    // Prices for every slot of today and tomorrow in p1d's local days (CET/CEST, as the page shows
    // them), a few of them negative, with an export price.
    const amsDay = (ms) => new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Amsterdam' }).format(new Date(ms));
    const H = 3600000;
    const slotsOf = (step) => {
      const days = new Set([amsDay(Date.now()), amsDay(Date.now() + 86400000)]);
      const out = [];
      for (let ms = Math.floor(Date.now() / H) * H - 30 * H; ms < Date.now() + 54 * H; ms += step) if (days.has(amsDay(ms))) out.push(ms);
      return out;
    };
    const hourPrice = (k) => ((k * 37) % 48 * 97 - 500) / 10000; // -0.05 .. 0.4059, each hour its own
    const putPrices = async (step) => {
      const slots = slotsOf(step);
      const h0 = slots[0];
      const lines = ['time,price,export'];
      for (const ms of slots) {
        const k = Math.floor((ms - h0) / H), q = Math.floor((ms % H) / step);
        const p = hourPrice(k) + (step < H ? (q - 1.5) / 100 : 0);
        lines.push(new Date(ms).toISOString().replace('.000', '') + ',' + p.toFixed(4) + ',' + (p - 0.02).toFixed(4));
      }
      const res = await fetch(base + '/api/prices?kind=power', { method: 'PUT', headers: { 'Content-Type': 'text/csv' }, body: lines.join('\n') + '\n' });
      const body = await res.text();
      assert(res.status === 200, 'PUT /api/prices: ' + res.status + ' ' + body);
      return slots.length;
    };
    // The card against p1d's own GET /api/prices: the current slot's import_price, the 3 cheapest
    // clock hours from the current one on (a quarter-hour file's hour: its quarters' mean).
    const checkCard = async (n, shot) => {
      const pp = await browser.newPage();
      const errs = watch(pp);
      await pp.goto(base + '/');
      await pp.waitForSelector('#price:not([hidden]) #price-strip .now', { timeout: 10000 });
      // A slot that ends between reading the page and p1d's list: compare again (at most twice).
      for (let tries = 0; tries < 3; tries++) {
        const t0 = Date.now();
        const api = JSON.parse((await rawGet(port, '/api/prices')).body.toString('utf8'));
        const rows = api.power.map((r) => ({ a: Date.parse(r.time), z: Date.parse(r.end), imp: r.import_price, exp: r.export_price }));
        const cur = rows.find((r) => r.a <= t0 && t0 < r.z);
        const shown = await pp.evaluate(() => ({
          imp: document.getElementById('price-imp').textContent,
          now: Array.from(document.querySelectorAll('#price-strip .now'), (b) => b.dataset.t),
          cheap: Array.from(document.querySelectorAll('#price-strip .cheap'), (b) => b.dataset.t),
          neg: document.querySelectorAll('#price-strip .neg').length,
          bars: document.querySelectorAll('#price-strip .pb').length,
          kv: document.getElementById('price-kv').textContent,
          label: document.getElementById('price-strip').getAttribute('aria-label'),
        }));
        assert(cur, 'p1d lists no price for now');
        if (Date.now() >= cur.z) continue;
        assert(rows.length === n && shown.bars === n, n + ' prices put, ' + rows.length + ' listed, ' + shown.bars + ' bars');
        const v = Number(shown.imp.replace(/[^\d.,−-]/g, '').replace('−', '-').replace(',', '.'));
        assert(Math.abs(v - cur.imp) < 1e-9, 'price now ' + shown.imp + ', import_price ' + cur.imp);
        assert(shown.now.length === 1 && Date.parse(shown.now[0]) === cur.a, 'current slot ' + shown.now + ' not ' + new Date(cur.a).toISOString());
        const hours = new Map();
        for (const r of rows) {
          const h = Math.floor(r.a / H) * H;
          if (h + H <= t0) continue;
          const e = hours.get(h) || { h, sum: 0, n: 0 };
          e.sum += r.imp; e.n++;
          hours.set(h, e);
        }
        const want = Array.from(hours.values()).sort((x, y) => x.sum / x.n - y.sum / y.n || x.h - y.h).slice(0, 3).map((e) => e.h).sort((x, y) => x - y);
        const got = Array.from(new Set(shown.cheap.map((t) => Math.floor(Date.parse(t) / H) * H))).sort((x, y) => x - y);
        assert(JSON.stringify(got) === JSON.stringify(want), 'cheapest hours ' + got.map((x) => new Date(x).toISOString()) + ', want ' + want.map((x) => new Date(x).toISOString()));
        assert(shown.cheap.length === 3 * (n > 60 ? 4 : 1), shown.cheap.length + ' bars highlighted');
        assert(shown.neg === rows.filter((r) => r.imp < 0).length && shown.neg > 0, shown.neg + ' negative bars');
        assert(/Export earns/.test(shown.kv) && /(Cheaper|Dearer) from/.test(shown.kv) && /cheapest hours/.test(shown.kv), 'card: ' + shown.kv);
        assert(/cheapest hours from now/.test(shown.label || ''), 'strip label: ' + shown.label);
        break;
      }
      if (shot) {
        await pp.screenshot({ path: path.join(SHOTS, shot), fullPage: true });
        await pp.locator('#price').screenshot({ path: path.join(SHOTS, 'price-card.png') });
      }
      assert(errs.length === 0, errs.join(' | '));
      await pp.close();
    };
    await check('hourly dynamic prices: the price card shows the price now and the 3 cheapest hours', async () => {
      await checkCard(await putPrices(H), 'now-prices.png');
    });
    await check('quarter-hour dynamic prices: the same card with a bar per quarter hour', async () => {
      await checkCard(await putPrices(H / 4));
    });

    await check('prices fetched by p1d ([prices] fetch_url) that fail: the card says why, with or without a price for now', async () => {
      const fport = await freePort(), dead = await freePort();
      const flog = fs.openSync(path.join(tmp, 'p1d-fetch.log'), 'w');
      const fp = spawn(P1D, ['--source', 'home=sim', '--listen', '127.0.0.1:' + fport, '--db', path.join(tmp, 'fetch.db'),
        '--prices-fetch-url', 'http://127.0.0.1:' + dead + '/prices?from={from}&token=s3cret'], { stdio: ['ignore', flog, flog] });
      try {
        await waitFor(async () => {
          const r = await rawGet(fport, '/api/prices');
          return r.status === 200 && JSON.parse(r.body.toString('utf8')).fetch.power.state === 'failing';
        }, 15000, 'p1d whose price fetch fails');
        const fpg = await browser.newPage();
        const errs = watch(fpg);
        await fpg.goto('http://127.0.0.1:' + fport + '/');
        await fpg.waitForSelector('#price:not([hidden]) #price-warn:not([hidden])', { timeout: 10000 });
        const warn = await fpg.textContent('#price-warn');
        assert(warn.startsWith('Fetching prices from http://127.0.0.1:' + dead + '/prices fails (') &&
          /(Couldn.t connect to server|Could not connect)\. No price for now\.$/.test(warn), 'warning: ' + warn);
        assert(!warn.includes('s3cret'), 'the token shows: ' + warn);
        assert(await fpg.isHidden('#price-strip') && await fpg.isHidden('.price-now'), 'a price strip without a price');
        await fpg.locator('#price').screenshot({ path: path.join(SHOTS, 'price-card-fetch-failing.png') });
        // A price for now (uploaded by hand meanwhile): the price, and the warning stays.
        const slot = Math.floor(Date.now() / H) * H;
        const csv = 'time,price\n' + [0, 1, 2].map((k) => new Date(slot + k * H).toISOString().replace('.000', '') + ',0.25' + k).join('\n') + '\n';
        const res = await fetch('http://127.0.0.1:' + fport + '/api/prices?kind=power', { method: 'PUT', headers: { 'Content-Type': 'text/csv' }, body: csv });
        assert(res.status === 200, 'PUT /api/prices: ' + res.status);
        assert(errs.length === 0, errs.join(' | '));
        await fpg.close();
        const fpg2 = await browser.newPage();
        const errs2 = watch(fpg2);
        await fpg2.goto('http://127.0.0.1:' + fport + '/');
        await fpg2.waitForSelector('#price:not([hidden]) #price-strip .now', { timeout: 10000 });
        const both = await fpg2.evaluate(() => [document.getElementById('price-imp').textContent, document.getElementById('price-warn').hidden,
          document.getElementById('price-warn').textContent]);
        assert(/0[.,]250/.test(both[0]) && both[1] === false && !/No price for now/.test(both[2]), 'card: ' + both.join(' | '));
        assert(errs2.length === 0, errs2.join(' | '));
        await fpg2.close();
      } finally {
        try { fp.kill('SIGTERM'); } catch (e) { /* gone */ }
        fs.closeSync(flog);
      }
    });

    /* ---- p1d --token: the page asks for it, keeps it, sends it (EventSource: ?access_token=) ---- */
    await check('with --token: the page asks for the token, then shows live readings', async () => {
      const tport = await freePort();
      const tlog = fs.openSync(path.join(tmp, 'p1d-token.log'), 'w');
      const tp = spawn(P1D, ['--source', 'home=sim', '--listen', '127.0.0.1:' + tport, '--token', 'dash-s3cret'],
        { stdio: ['ignore', tlog, tlog] });
      const tpage = await browser.newPage();
      const errs = [];
      tpage.on('pageerror', (e) => errs.push(e.message));
      const apiLog = []; // status, path and credentials of every API response, for the messages
      tpage.on('response', (r) => { if (/api/.test(r.url())) apiLog.push(r.status() + ' ' + r.url().replace(/.*\/api/, '') + ' ' + (r.request().headers().authorization || 'none')); });
      try {
        await waitFor(async () => (await rawGet(tport, '/api/now', { Authorization: 'Bearer dash-s3cret' })).status === 200,
          15000, 'the token p1d\'s first reading');
        await tpage.goto('http://127.0.0.1:' + tport + '/', { waitUntil: 'load' });
        await tpage.waitForSelector('#token-dlg[open]', { timeout: 8000 });
        await tpage.fill('#t-token', 'dash-s3cret');
        await Promise.all([tpage.waitForNavigation({ waitUntil: 'load', timeout: 8000 }), tpage.click('#t-save')]);
        apiLog.push('--- after reload:');
        await tpage.waitForSelector('body[data-rendered="1"]', { timeout: 10000 });
        assert(/\d/.test(await tpage.textContent('#p-value')), 'no power figure: ' + apiLog.join(' | '));
        const stored = await tpage.evaluate(() => localStorage.getItem('p1d.token'));
        assert(stored === 'dash-s3cret', 'token not kept: ' + stored);
        // Live over the stream: EventSource cannot send the header, so it must carry the token.
        const n = await tpage.evaluate(() => window.p1d.stats.readings);
        await tpage.waitForFunction((k) => window.p1d.stats.readings > k + 1, n, { timeout: 8000 });
        assert(!(await tpage.$('#token-dlg[open]')), 'the dialog is still open ' + apiLog.join(' | '));
        // A second visit with the token already stored (as a returning user): no dialog.
        const again = await browser.newPage();
        await again.addInitScript(() => localStorage.setItem('p1d.token', 'dash-s3cret'));
        await again.goto('http://127.0.0.1:' + tport + '/', { waitUntil: 'load' });
        await again.waitForSelector('body[data-rendered="1"]', { timeout: 10000 });
        assert(/\d/.test(await again.textContent('#p-value')), 'no power figure on the second visit');
        assert(!(await again.$('#token-dlg[open]')), 'asked again although the token is stored');
        await again.close();
        assert(errs.length === 0, errs.join(' | '));
      } finally {
        await tpage.close().catch(() => {});
        try { tp.kill('SIGTERM'); } catch (e) { /* gone */ }
        fs.closeSync(tlog);
      }
    });
  } finally {
    clearTimeout(timer);
    if (browser) await browser.close().catch(() => {});
    cleanup();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

run(main);
