/**
 * The live routes (live.ts): stream filter parsing and matching, counters from the
 * Prometheus exposition, the last-minute window, and the SSE stream over a real
 * socket (ready event, filtered lines, unsubscribe on disconnect, 501 without a source).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConnectionLogTap, emptyLogLine, type ConnectionLogLine } from '../edge/index.js';
import { openSqliteStore } from '../store/index.js';
import {
  countersFromExposition, matchesStreamFilter, MAX_STREAM_SUBSCRIBERS, parseStreamFilter, statsBetween, STATS_WINDOW_MS, type CounterSample,
} from './live.js';
import { startAdminServer } from './index.js';

const TOKEN = 'live-test-token-0123456789';

function line(over: Partial<ConnectionLogLine>): ConnectionLogLine {
  return { ...emptyLogLine(`c-${Math.random()}`), connectionStatus: 'Success', distributionId: 'EDFDVBD6EXAMPLE', distributionName: 'web', ...over };
}

test('parseStreamFilter: known parameters, normalised serial, every problem named', () => {
  assert.deepEqual(parseStreamFilter({}), {});
  assert.deepEqual(parseStreamFilter({ distribution: 'web', status: 'denied', serial: '00:A7:30' }), { distribution: 'web', status: 'denied', serial: '00a730' });
  assert.deepEqual(parseStreamFilter({ status: 'Failed:ClientCertificateRevoked', serial: '' }), { status: 'Failed:ClientCertificateRevoked' });
  assert.throws(() => parseStreamFilter({ token: 'x', serial: 'zz', status: 'maybe', distribution: ['a', 'b'] }), (e: Error) => {
    assert.match(e.message, /token: unknown query parameter/);
    assert.match(e.message, /serial: expected hex digits/);
    assert.match(e.message, /status: expected allowed, denied/);
    assert.match(e.message, /distribution: give it once/);
    return true;
  });
});

test('matchesStreamFilter: distribution by name or id, status groups, serial part', () => {
  const ok = line({ clientLeafCertSerialNumber: '00:a7:30:9e' });
  const denied = line({ connectionStatus: 'Failed:ClientCertificateRevoked', distributionName: 'api', distributionId: 'E2' });
  assert.equal(matchesStreamFilter(ok, {}), true);
  assert.equal(matchesStreamFilter(ok, { distribution: 'web' }), true);
  assert.equal(matchesStreamFilter(ok, { distribution: 'EDFDVBD6EXAMPLE' }), true);
  assert.equal(matchesStreamFilter(denied, { distribution: 'web' }), false);
  assert.equal(matchesStreamFilter(ok, { status: 'allowed' }), true);
  assert.equal(matchesStreamFilter(ok, { status: 'denied' }), false);
  assert.equal(matchesStreamFilter(denied, { status: 'denied' }), true);
  assert.equal(matchesStreamFilter(denied, { status: 'Failed:ClientCertificateRevoked' }), true);
  assert.equal(matchesStreamFilter(denied, { status: 'Success' }), false);
  assert.equal(matchesStreamFilter(ok, { serial: 'a7309e' }), true);
  assert.equal(matchesStreamFilter(ok, { serial: 'ffff' }), false);
  assert.equal(matchesStreamFilter(denied, { serial: '00' }), false, 'no certificate: no serial match');
});

test('countersFromExposition: connection statuses summed over distributions, OCSP cache counters, applied sequence', () => {
  const text = [
    '# HELP portcullis_edge_connections_total x',
    '# TYPE portcullis_edge_connections_total counter',
    'portcullis_edge_connections_total{distribution="a",status="Success"} 3',
    'portcullis_edge_connections_total{distribution="b",status="Success"} 2',
    'portcullis_edge_connections_total{status="Failed:ClientCertificateRevoked",distribution="a"} 4',
    'portcullis_ocsp_cache_hits_total 7',
    'portcullis_ocsp_cache_misses_total 1',
    'portcullis_applied_change_sequence 42',
    'portcullis_other_total 9',
  ].join('\n');
  const s = countersFromExposition(text, 1000);
  assert.deepEqual(s, { at: 1000, byStatus: { Success: 5, 'Failed:ClientCertificateRevoked': 4 }, ocspCacheHits: 7, ocspCacheMisses: 1, appliedChangeSequence: 42 });
  assert.deepEqual(countersFromExposition('', 5), { at: 5, byStatus: {}, ocspCacheHits: 0, ocspCacheMisses: 0, appliedChangeSequence: null });
});

test('statsBetween: the last minute against the newest sample a minute old; a younger node reports its shorter window', () => {
  const s = (at: number, ok: number, denied: number, hits: number, misses: number): CounterSample => ({
    at, byStatus: { Success: ok, 'Failed:X': denied }, ocspCacheHits: hits, ocspCacheMisses: misses, appliedChangeSequence: 3,
  });
  const t0 = 1_000_000;
  const samples = [s(t0, 0, 0, 0, 0), s(t0 + 10_000, 5, 1, 4, 4), s(t0 + 20_000, 10, 2, 8, 4)];
  const young = statsBetween(samples, s(t0 + 30_000, 12, 3, 9, 5));
  assert.equal(young.windowSeconds, 30);
  assert.deepEqual(young.connections, { allowed: 12, denied: 3, byStatus: { Success: 12, 'Failed:X': 3 } });
  assert.equal(young.ocspCache.hitRate, 9 / 14);
  const later = statsBetween(samples, s(t0 + 10_000 + STATS_WINDOW_MS + 5000, 20, 2, 8, 4));
  assert.equal(later.windowSeconds, 65, 'base: the sample at +10 s, the newest one at least a minute old');
  assert.deepEqual(later.connections, { allowed: 15, denied: 1, byStatus: { Success: 15, 'Failed:X': 1 } });
  assert.deepEqual(later.ocspCache, { hits: 4, misses: 0, hitRate: 1 });
  assert.deepEqual(later.totals, { allowed: 20, denied: 2, ocspCacheHits: 8, ocspCacheMisses: 4 });
  assert.equal(later.appliedChangeSequence, 3);
  // A counter that went down (a restarted worker) adds nothing for that step, never negative.
  const reset = statsBetween(samples, s(t0 + 25_000, 1, 0, 0, 0));
  assert.equal(reset.connections.allowed, 10, 'the 10 events seen before the drop; the drop adds nothing');
  assert.equal(reset.connections.denied, 2);
  assert.equal(statsBetween([], s(t0, 0, 0, 0, 0)).ocspCache.hitRate, null);
});

test('statsBetween: with 2 workers, a restarted worker (its counts drop out of the sum) is never counted as new connections; totals keep its counts', () => {
  // Two workers: A has 1000 old allowed connections, B 500. B restarts at +25 s (its 500 vanish from the sum).
  const s = (at: number, a: number, b: number): CounterSample => ({ at, byStatus: { Success: a + b }, ocspCacheHits: a + b, ocspCacheMisses: 0, appliedChangeSequence: null });
  const t0 = 5_000_000;
  const samples = [s(t0, 1000, 500), s(t0 + 10_000, 1003, 502), s(t0 + 20_000, 1005, 504), s(t0 + 30_000, 1007, 1), s(t0 + 40_000, 1008, 3)];
  const st = statsBetween(samples, s(t0 + 50_000, 1010, 4));
  // True new events in the window: A +10, B +4 before the restart and +4 after it; the step with the drop (20 s → 30 s)
  // sees 1509 → 1008: counted as 0 (A's +2 and B's +1 in that step are missed, never the survivors' 1008 as new).
  assert.equal(st.connections.allowed, 5 + 4 + 0 + 3 + 3);
  assert.ok(st.connections.allowed <= 10 + 4 + 4, 'never more than the real events');
  assert.equal(st.ocspCache.hits, 15);
  // Totals: the current sum (1014) plus what the restart took out of it (1509 - 1008 = 501).
  assert.equal(st.totals.allowed, 1014 + 501);
  assert.equal(st.totals.ocspCacheHits, 1014 + 501);
  // Old behaviour counted the whole surviving sum (1014) as the window's connections.
  assert.ok(st.connections.allowed < 100);
  // Counts lost before the kept samples (passed by the caller) stay in the totals.
  const later = statsBetween(samples.slice(3), s(t0 + 50_000, 1010, 4), { byStatus: { Success: 501 }, ocspCacheHits: 501, ocspCacheMisses: 0 });
  assert.equal(later.totals.allowed, 1014 + 501);
});

/** Reads SSE events from a fetch response until `count` events of `type` arrived. */
async function readEvents(res: Response, want: (events: { event: string; data: string }[]) => boolean): Promise<{ event: string; data: string }[]> {
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let buf = '';
  const events: { event: string; data: string }[] = [];
  while (!want(events)) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const ev = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (ev && data !== undefined) events.push({ event: ev, data });
    }
  }
  await reader.cancel();
  return events;
}

test('GET /v1/connection-log/stream: bearer-authenticated SSE, ready first, filtered lines, unsubscribed on disconnect', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-live-'));
  const store = await openSqliteStore({ dataDir: dir });
  const tap = new ConnectionLogTap();
  const admin = await startAdminServer({
    listen: '127.0.0.1:0', token: TOKEN, metrics: async () => ({ contentType: 'text/plain', body: 'portcullis_edge_connections_total{distribution="web",status="Success"} 2\n' }),
    readiness: () => ({ ready: true, status: 'ok', reasons: [] }), api: { store }, connectionLog: tap,
  });
  t.after(async () => { await admin.close(); await store.close(); rmSync(dir, { recursive: true, force: true }); });
  const url = `http://127.0.0.1:${admin.address.port}`;
  assert.equal((await fetch(`${url}/v1/connection-log/stream`)).status, 401);
  const bad = await fetch(`${url}/v1/connection-log/stream?serial=xyz`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(bad.status, 400);
  assert.equal(tap.size, 0);

  const res = await fetch(`${url}/v1/connection-log/stream?status=denied`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const got = readEvents(res, (ev) => ev.filter((e) => e.event === 'connection').length >= 2);
  while (tap.size === 0) await new Promise((r) => setTimeout(r, 10));
  tap.publish(line({ connectionId: 'allowed-1' }), JSON.stringify(line({ connectionId: 'allowed-1' })));
  for (const id of ['denied-1', 'denied-2']) {
    const l = line({ connectionId: id, connectionStatus: 'Failed:ConnectionFunctionDenied' });
    tap.publish(l, JSON.stringify(l));
  }
  const events = await got;
  assert.equal(events[0]!.event, 'ready');
  assert.deepEqual(JSON.parse(events[0]!.data), { filter: { status: 'denied' } });
  assert.deepEqual(events.filter((e) => e.event === 'connection').map((e) => (JSON.parse(e.data) as ConnectionLogLine).connectionId), ['denied-1', 'denied-2']);
  // The client went away: its subscription ends.
  for (let i = 0; i < 100 && tap.size > 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(tap.size, 0);

  // Stats read the same metrics.
  const stats = await (await fetch(`${url}/v1/stats`, { headers: { authorization: `Bearer ${TOKEN}` } })).json() as { totals: { allowed: number } };
  assert.equal(stats.totals.allowed, 2);

  // Too many open streams: 429 TooManyRequests with a clear message (not a quota/payment status).
  const open: AbortController[] = [];
  t.after(() => { for (const ac of open) ac.abort(); });
  for (let i = 0; i < MAX_STREAM_SUBSCRIBERS; i++) {
    const ac = new AbortController();
    open.push(ac);
    const r = await fetch(`${url}/v1/connection-log/stream`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: ac.signal });
    assert.equal(r.status, 200);
  }
  const over = await fetch(`${url}/v1/connection-log/stream`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(over.status, 429);
  const body = await over.json() as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'TooManyRequests');
  assert.match(body.error.message, /at most 32 may be open at once/);
  for (const ac of open) ac.abort();
});

test('GET /v1/connection-log/stream answers 501 without a connection-log source; closing the server ends open streams', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-live-'));
  const store = await openSqliteStore({ dataDir: dir });
  const admin = await startAdminServer({
    listen: '127.0.0.1:0', token: TOKEN, metrics: async () => ({ contentType: 'text/plain', body: '' }),
    readiness: () => ({ ready: true, status: 'ok', reasons: [] }), api: { store },
  });
  t.after(async () => { await store.close(); rmSync(dir, { recursive: true, force: true }); });
  const url = `http://127.0.0.1:${admin.address.port}`;
  const res = await fetch(`${url}/v1/connection-log/stream`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(res.status, 501);
  assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'NotImplemented');
  await admin.close();
});

test('ConnectionLogTap: activity callback on first and last subscriber; a throwing listener does not stop the others', () => {
  const seen: boolean[] = [];
  const tap = new ConnectionLogTap((a) => seen.push(a));
  const got: string[] = [];
  const u1 = tap.subscribe(() => { throw new Error('viewer bug'); });
  const u2 = tap.subscribe((_l, j) => got.push(j));
  tap.publish(line({}), 'x');
  u1();
  u1();
  u2();
  assert.deepEqual(seen, [true, false]);
  assert.deepEqual(got, ['x']);
  assert.equal(tap.active, false);
});

test('a stream client that does not read is disconnected once 1 MiB is queued for it; publishing never waits', async (t) => {
  const { request } = await import('node:http');
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-live-'));
  const store = await openSqliteStore({ dataDir: dir });
  const tap = new ConnectionLogTap();
  const admin = await startAdminServer({
    listen: '127.0.0.1:0', token: TOKEN, metrics: async () => ({ contentType: 'text/plain', body: '' }),
    readiness: () => ({ ready: true, status: 'ok', reasons: [] }), api: { store }, connectionLog: tap,
  });
  t.after(async () => { await admin.close(); await store.close(); rmSync(dir, { recursive: true, force: true }); });
  // A client that reads the headers and then nothing.
  const req = request({ host: '127.0.0.1', port: admin.address.port, path: '/v1/connection-log/stream', headers: { authorization: `Bearer ${TOKEN}` } });
  req.on('response', (res) => { res.pause(); res.on('error', () => {}); });
  req.on('error', () => {});
  req.end();
  while (tap.size === 0) await new Promise((r) => setTimeout(r, 10));
  const big = line({ reason: 'x'.repeat(4000) });
  const json = JSON.stringify(big);
  // Up to 64 MiB offered; each publish returns at once (the write is buffered or the client dropped).
  for (let i = 0; i < 16_000 && tap.size > 0; i++) {
    tap.publish(big, json);
    if (i % 200 === 0) await new Promise((r) => setImmediate(r));
  }
  assert.equal(tap.size, 0, 'the slow client was dropped');
  req.destroy();
});
