// harness.mjs: what the browser tests share: paths, pass/fail counting with the summary line
// run-tests.sh reads, and small helpers for p1d on 127.0.0.1.
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const P1D = process.env.P1D || path.join(ROOT, 'build', 'p1d');
export const P1 = process.env.P1 || path.join(ROOT, 'build', 'p1');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const SHOTS = path.join(ROOT, 'build', 'screenshots');

const counts = { passed: 0, failed: 0, skipped: 0 };
export const ok = (name) => { counts.passed++; console.log('ok - ' + name); };
export const bad = (name, why) => { counts.failed++; console.log('FAIL - ' + name + (why ? ': ' + why : '')); };
export const skip = (name, why) => { counts.skipped++; console.log('SKIP: ' + name + ': ' + why); };

// Runs one named check: it passes unless fn throws; fn may return 'skip' after calling skip().
export async function check(name, fn) {
  try {
    const r = await fn();
    if (r === 'skip') return;
    ok(name);
  } catch (e) {
    bad(name, e && e.message ? e.message.split('\n')[0] : String(e));
  }
}
export function assert(cond, msg) { if (!cond) throw new Error(msg); }
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}
// A raw GET (no automatic decompression), for the checks of headers and bodies.
export function rawGet(port, p, headers) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, headers: headers || {}, timeout: 5000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}
// Polls fn every 100 ms until it returns something true (returned) or ms pass (an error).
export async function waitFor(fn, ms, what) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    await sleep(100);
  }
  throw new Error('timed out waiting for ' + what);
}

// What a page must not have: console errors, answers of 400 and up, and failed requests; the list
// grows while the page runs.
export function watchFailures(p) {
  const out = [];
  out.toString = () => out.length + ' failure(s): ' + out.slice(0, 3).join(' | ');
  p.on('console', (m) => { if (m.type() === 'error') out.push(m.text() + ' @ ' + ((m.location() && m.location().url) || '')); });
  p.on('response', (r) => { if (r.status() >= 400) out.push(r.status() + ' ' + r.url()); });
  p.on('requestfailed', (r) => { out.push('failed ' + r.url() + ' ' + ((r.failure() && r.failure().errorText) || '')); });
  return out;
}

// Runs main, prints "N passed, N failed" and exits with 1 when a check (or main) failed.
export function run(main) {
  main().then(() => {
    const s = counts.skipped ? ' (' + counts.skipped + ' skipped)' : '';
    console.log(counts.passed + ' passed, ' + counts.failed + ' failed' + s);
    process.exit(counts.failed ? 1 : 0);
  }, (e) => {
    console.log('FAIL - ' + (e && e.stack ? e.stack : e));
    console.log(counts.passed + ' passed, ' + (counts.failed + 1) + ' failed');
    process.exit(1);
  });
}
