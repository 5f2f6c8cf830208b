// bench_web.mjs: the dashboard's budgets in headless Chromium against p1d on 127.0.0.1: bytes on the
// wire (gzip), first complete render, telegram-to-screen latency, and tab memory over a long run.
// Usage: node bench/bench_web.mjs [--minutes M] [--rate HZ] [--renders N]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const P1D = process.env.P1D || path.join(ROOT, 'build', 'p1d');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const opt = { minutes: 3, rate: 20, renders: 9 };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, ''), v = Number(process.argv[i + 1]);
  if (!(k in opt) || !Number.isFinite(v) || v <= 0) { console.error('usage: bench_web.mjs [--minutes M] [--rate HZ] [--renders N]'); process.exit(2); }
  opt[k] = v;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (a, p) => { const s = a.slice().sort((x, y) => x - y); return s.length ? s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))] : NaN; };

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}
function rawGet(port, p, headers) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: p, headers: headers || {} }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    }).on('error', reject);
  });
}
async function startP1d(speedup, tmp) {
  const port = await freePort();
  const src = 'home=sim' + (speedup > 1 ? ':speedup=' + speedup : '');
  const proc = spawn(P1D, ['--source', src, '--listen', '127.0.0.1:' + port, '--log-level', 'warn'],
    { stdio: ['ignore', 'ignore', fs.openSync(path.join(tmp, 'p1d-' + port + '.log'), 'w')] });
  for (let i = 0; i < 150; i++) {
    try { if ((await rawGet(port, '/api/now')).status === 200) return { proc, port }; } catch (e) { /* not yet */ }
    await sleep(100);
  }
  proc.kill();
  throw new Error('p1d did not start (see ' + tmp + ')');
}

async function main() {
  const { chromium } = await import(path.join(ROOT, 'web', 'node_modules', 'playwright-core', 'index.mjs'));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'p1d-bench-web-'));
  const procs = [];
  let browser;
  try {
    // 1. Bytes: index.html and everything it references, as a browser with gzip gets them.
    const a = await startP1d(1, tmp);
    procs.push(a.proc);
    const index = await rawGet(a.port, '/', { 'Accept-Encoding': 'gzip' });
    const plain = (await rawGet(a.port, '/', {})).body.toString('utf8');
    // The page's own files (the API answers it preloads are data, not page weight).
    const refs = Array.from(plain.matchAll(/(?:src|href)="(\/[^"]+)"/g), (m) => m[1]).filter((r) => !r.startsWith('/api/'));
    let bytes = index.body.length;
    const parts = ['index.html ' + index.body.length];
    for (const r of refs) {
      const res = await rawGet(a.port, r, { 'Accept-Encoding': 'gzip' });
      bytes += res.body.length;
      parts.push(r.replace(/\?.*/, '') + ' ' + res.body.length);
    }
    console.log('page assets (gzip bytes): ' + parts.join(', '));

    browser = await chromium.launch({
      executablePath: CHROMIUM, headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage', '--enable-precise-memory-info'],
    });

    // 2. First complete render: navigation start to the page's own 'rendered' mark (first reading
    // shown, live chart filled), each time in a fresh context (empty cache), 1 Hz meter.
    const renders = [];
    for (let i = 0; i < opt.renders; i++) {
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const page = await ctx.newPage();
      await page.goto('http://127.0.0.1:' + a.port + '/');
      await page.waitForSelector('body[data-rendered="1"]', { timeout: 10000 });
      renders.push(await page.evaluate(() => performance.getEntriesByName('rendered')[0].startTime));
      await ctx.close();
    }
    console.log('first render ms: ' + renders.map((x) => Math.round(x)).join(' ') + ' (first run includes the browser warming up)');

    // 3 and 4. A fast meter for the latency and the long run.
    const b = await startP1d(opt.rate, tmp);
    procs.push(b.proc);
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await ctx.newPage();
    const cdp = await ctx.newCDPSession(page);
    await cdp.send('Performance.enable');
    await page.goto('http://127.0.0.1:' + b.port + '/');
    await page.waitForSelector('body[data-rendered="1"]', { timeout: 10000 });
    await sleep(15000);
    const heap = async () => {
      await cdp.send('HeapProfiler.collectGarbage');
      const m = await cdp.send('Performance.getMetrics');
      const get = (n) => (m.metrics.find((x) => x.name === n) || {}).value;
      return { heap: get('JSHeapUsedSize'), nodes: get('Nodes'), listeners: get('JSEventListeners') };
    };
    const h0 = await heap();
    const r0 = await page.evaluate(() => window.p1d.stats.readings);
    const runMs = opt.minutes * 60000;
    const t0 = Date.now();
    const trend = [];
    while (Date.now() - t0 < runMs) {
      await sleep(Math.min(30000, runMs - (Date.now() - t0)));
      const h = await heap();
      trend.push(Math.round(h.heap / 1024) + 'K/' + h.nodes + 'n');
    }
    console.log('heap/DOM nodes every 30 s: ' + trend.join(' '));
    const h1 = await heap();
    const s = await page.evaluate(() => ({ lat: window.p1d.stats.lat.slice(), readings: window.p1d.stats.readings, points: window.p1d.liveCount() }));
    await ctx.close();
    const lat = s.lat.filter((x) => Number.isFinite(x));
    console.log('long run: ' + opt.minutes + ' min at ' + opt.rate + ' telegrams/s, ' + (s.readings - r0) + ' readings shown, live chart ' + s.points + ' points (ring bound 5000)');
    console.log('heap ' + Math.round(h0.heap / 1024) + ' KiB -> ' + Math.round(h1.heap / 1024) + ' KiB, DOM nodes ' + h0.nodes + ' -> ' + h1.nodes + ', listeners ' + h0.listeners + ' -> ' + h1.listeners);
    console.log('latency samples ' + lat.length + ', min ' + pct(lat, 0).toFixed(1) + ' ms, p50 ' + pct(lat, 50).toFixed(1) + ' ms, p99 ' + pct(lat, 99).toFixed(1) + ' ms, max ' + Math.max(...lat).toFixed(1) + ' ms');
    const warm = renders.length > 1 ? renders.slice(1) : renders;
    console.log('web_gzip_kb=' + (bytes / 1024).toFixed(1) +
      ' first_render_ms=' + Math.round(pct(warm, 50)) +
      ' telegram_to_screen_ms_p50=' + pct(lat, 50).toFixed(1) + ' p99=' + pct(lat, 99).toFixed(1) +
      ' heap_growth_kb=' + Math.round((h1.heap - h0.heap) / 1024));
  } finally {
    if (browser) await browser.close().catch(() => {});
    for (const p of procs) p.kill('SIGTERM');
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
main().catch((e) => { console.error('bench_web: ' + (e && e.stack ? e.stack : e)); process.exit(1); });
