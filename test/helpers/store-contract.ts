/**
 * The Store contract: one suite of behaviour every backend must show, run by
 * `src/store/sqlite.test.ts` and `src/store/postgres.test.ts` against their backend.
 *
 * ```ts
 * defineStoreContract('sqlite', async () => {
 *   const dir = mkdtempSync(...);
 *   return { open: () => openSqliteStore({ dataDir: dir }), cleanup: () => rmSync(dir, ...) };
 * });
 * ```
 *
 * `fresh()` must return an empty database; `open()` may be called several times and
 * every call returns another Store instance on that same database (another node, or
 * another process's view of it). Stores opened through it are closed by the suite.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { subscribeChanges, type ChangeRecord, type Store } from '../../src/store/index.js';

/** A fresh, empty database of one backend. */
export interface ContractDatabase {
  /** Opens another Store instance on this database. */
  open(): Promise<Store>;
  /** Deletes the database (after every store opened through `open` was closed). */
  cleanup(): Promise<void> | void;
}

/** Starts the `kvs`-ready store `name` with ETag `etag`. */
export async function readyStore(s: Store, name: string, etag = 'E0', maxStoreBytes = 1000): Promise<void> {
  const r = await s.kvs.createStore({ id: `id-${name}`, name, comment: '', etag: 'P', now: 1 });
  await s.kvs.completeImport(r.id, [], { etag, now: 2, maxStoreBytes });
}

/**
 * Defines the contract tests (node:test `test`s, names prefixed with `<backend>:`).
 * `fresh` is called once per test.
 */
export function defineStoreContract(backend: string, fresh: () => Promise<ContractDatabase>): void {
  async function setup(t: TestContext): Promise<{ open: () => Promise<Store> }> {
    const db = await fresh();
    const opened: Store[] = [];
    t.after(async () => {
      for (const s of opened) await s.close();
      await db.cleanup();
    });
    return {
      open: async () => {
        const s = await db.open();
        opened.push(s);
        return s;
      },
    };
  }

  test(`${backend}: a new database has the schema and nothing in it; reopening applies no migration twice`, async (t) => {
    const { open } = await setup(t);
    const s = await open();
    assert.equal(s.dialect, backend);
    assert.equal(await s.latestSequence(), 0);
    assert.deepEqual(await s.kvs.listStores(), []);
    assert.deepEqual(await s.trustStores.list(), []);
    assert.deepEqual(await s.functions.list(), []);
    assert.deepEqual(await s.changesAfter(0), { changes: [], reset: false, latestSeq: 0, clusterId: await s.clusterId() });
    await s.close();
    const again = await open();
    assert.equal(await again.latestSequence(), 0);
  });

  test(`${backend}: two instances with the same ETag: exactly one write wins, the other changes nothing`, async (t) => {
    const { open } = await setup(t);
    const a = await open();
    const b = await open();
    await readyStore(a, 'shared', 'E1');
    const results = await Promise.allSettled([
      a.kvs.updateItems('shared', { ifMatch: 'E1', newEtag: 'EA', puts: [{ key: 'k', value: 'from-a' }], deletes: [], maxStoreBytes: 1000, now: 3 }),
      b.kvs.updateItems('shared', { ifMatch: 'E1', newEtag: 'EB', puts: [{ key: 'k', value: 'from-b' }], deletes: [], maxStoreBytes: 1000, now: 3 }),
    ]);
    const ok = results.filter((r) => r.status === 'fulfilled');
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(ok.length, 1);
    assert.equal(failed.length, 1);
    assert.equal((failed[0]!.reason as { code: string }).code, 'PreconditionFailed');
    const rec = await b.kvs.getStore('shared');
    const winner = rec!.etag === 'EA' ? 'from-a' : 'from-b';
    assert.equal(await b.kvs.getItem(rec!.id, 'k'), winner);
    assert.equal(rec!.itemCount, 1);
    assert.equal(await a.latestSequence(), 3, 'one change for the create, one for the import, one for the winning write');
  });

  test(`${backend}: counters, quota refusal and not-ready refusal leave everything unchanged`, async (t) => {
    const { open } = await setup(t);
    const s = await open();
    await readyStore(s, 'q', 'E1');
    const w = await s.kvs.updateItems('q', { ifMatch: 'E1', newEtag: 'E2', puts: [{ key: 'ab', value: 'é' }], deletes: [], maxStoreBytes: 10, now: 3 });
    assert.equal(w.record.totalSize, 4); // 'ab' 2 bytes + 'é' 2 bytes
    const seq = await s.latestSequence();
    await assert.rejects(
      s.kvs.updateItems('q', { ifMatch: 'E2', newEtag: 'E3', puts: [{ key: 'cd', value: 'xxxxxx' }], deletes: [], maxStoreBytes: 10, now: 4 }),
      { code: 'ServiceQuotaExceeded' },
    );
    const rec = await s.kvs.getStore('q');
    assert.equal(rec!.etag, 'E2');
    assert.equal(rec!.totalSize, 4);
    assert.equal(await s.latestSequence(), seq, 'no change record for a refused write');
    // Overwriting shrinks: allowed even when over a lowered limit.
    const shrink = await s.kvs.updateItems('q', { ifMatch: 'E2', newEtag: 'E3', puts: [{ key: 'ab', value: '' }], deletes: [], maxStoreBytes: 1, now: 5 });
    assert.equal(shrink.record.totalSize, 2);
    await s.kvs.createStore({ id: 'p', name: 'prov', comment: '', etag: 'P1', now: 1 });
    await assert.rejects(
      s.kvs.updateItems('prov', { ifMatch: 'P1', newEtag: 'P2', puts: [{ key: 'a', value: 'b' }], deletes: [], maxStoreBytes: 10, now: 4 }),
      { code: 'EntityNotReady' },
    );
    await assert.rejects(s.kvs.createStore({ id: 'x', name: 'q', comment: '', etag: 'X', now: 1 }), { code: 'EntityAlreadyExists' });
    await assert.rejects(s.kvs.deleteStore('q', 'wrong', 6), { code: 'PreconditionFailed' });
    await assert.rejects(s.kvs.deleteStore('nope', 'E', 6), { code: 'EntityNotFound' });
    await assert.rejects(
      s.kvs.updateItems('q', { ifMatch: 'E3', newEtag: 'E4', puts: [], deletes: ['missing'], requireExisting: true, maxStoreBytes: 10, now: 7 }),
      { code: 'EntityNotFound' },
    );
    assert.equal((await s.kvs.getStore('q'))!.etag, 'E3');
  });

  test(`${backend}: change feed: sequences follow commit order, a late subscriber catches up, pruning forces a reset`, async (t) => {
    const { open } = await setup(t);
    const s = await open();
    await readyStore(s, 'f', 'E0');
    let etag = 'E0';
    for (let i = 0; i < 20; i++) {
      const next = `E${i + 1}`;
      await s.kvs.updateItems('f', { ifMatch: etag, newEtag: next, puts: [{ key: `k${i}`, value: String(i) }], deletes: [], maxStoreBytes: 10_000, now: 10 + i });
      etag = next;
    }
    const latest = await s.latestSequence();
    assert.equal(latest, 22);
    const seen: ChangeRecord[] = [];
    const sub = subscribeChanges(s, { fromSeq: 5, batchSize: 4, onChanges: (c) => { seen.push(...c); } });
    t.after(() => sub.stop());
    await sub.waitFor(latest);
    assert.deepEqual(seen.map((c) => c.seq), Array.from({ length: latest - 5 }, (_, i) => i + 6));
    for (const c of seen) assert.equal(typeof c.seq, 'number');
    const last = seen[seen.length - 1]!;
    assert.ok(last.entity === 'kvs' && last.op === 'batch');
    assert.deepEqual(last.puts, [['k19', '19']]);
    assert.equal(last.meta.etag, 'E20');
    assert.equal(last.committedAt, 29);
    // New writes through the same instance are delivered without a poll.
    await s.kvs.updateItems('f', { ifMatch: etag, newEtag: 'E21', puts: [], deletes: ['k0'], maxStoreBytes: 10_000, now: 40 });
    await sub.waitFor(latest + 1, 1000);
    assert.deepEqual((seen[seen.length - 1] as { deletes: string[] }).deletes, ['k0']);
    sub.stop();

    assert.equal(await s.pruneChanges(10), 10);
    assert.equal((await s.changesAfter(3)).reset, true);
    assert.equal((await s.changesAfter(10)).reset, false);
    let resets = 0;
    const sub2 = subscribeChanges(s, { fromSeq: 2, onChanges: () => {}, onReset: async () => { resets++; return s.latestSequence(); } });
    t.after(() => sub2.stop());
    await sub2.waitFor(latest + 1);
    sub2.stop();
    assert.equal(resets, 1);
  });

  test(`${backend}: cluster identity: one random id per database, the same on every instance, on every page; a subscriber ahead of the database is told to reload`, async (t) => {
    const { open } = await setup(t);
    const a = await open();
    const b = await open();
    const id = await a.clusterId();
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.equal(await b.clusterId(), id, 'another instance on the same database');
    const other = await fresh();
    const o = await other.open();
    const otherId = await o.clusterId();
    await o.close();
    await other.cleanup();
    assert.notEqual(otherId, id, 'another database has another id');
    await a.trustStores.create({ id: 't1', name: 'ca', etag: 'T1', document: {}, now: 1 });
    assert.deepEqual(await a.changesAfter(1), { changes: [], reset: false, latestSeq: 1, clusterId: id });
    // A subscriber at sequence 61 on a database whose latest is 1 (the database was
    // replaced or restored): not "nothing new" forever, but reload.
    const ahead = await a.changesAfter(61);
    assert.deepEqual(ahead, { changes: [], reset: true, latestSeq: 1, clusterId: id });
    const errors: string[] = [];
    let reloads = 0;
    const sub = subscribeChanges(a, {
      fromSeq: 61, onChanges: () => {}, onReset: async () => { reloads++; return a.latestSequence(); },
      onError: (err) => errors.push((err as Error).message),
    });
    t.after(() => sub.stop());
    for (let i = 0; i < 500 && sub.lastSeq !== 1; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(sub.lastSeq, 1, 'reloaded to the database\'s latest');
    await b.trustStores.create({ id: 't2', name: 'ca2', etag: 'T2', document: {}, now: 2 });
    await sub.waitFor(2, 5000);
    assert.equal(reloads, 1);
    assert.equal(sub.lastSeq, 2);
    assert.match(errors[0] ?? '', /applied change sequence 61 but the database's latest is 1/);
  });

  test(`${backend}: a subscriber notices a database with another cluster id and reloads instead of applying its feed`, async (t) => {
    const { open } = await setup(t);
    const first = await open();
    const otherDb = await fresh();
    const second = await otherDb.open();
    t.after(async () => { await second.close(); await otherDb.cleanup(); });
    for (let i = 0; i < 3; i++) await first.trustStores.create({ id: `a${i}`, name: `a${i}`, etag: 'E', document: {}, now: 1 });
    for (let i = 0; i < 5; i++) await second.trustStores.create({ id: `b${i}`, name: `b${i}`, etag: 'E', document: {}, now: 1 });
    // A store whose database is swapped under the subscriber (dropped and re-created).
    let current: Store = first;
    const swapping = new Proxy({} as Store, {
      get: (_t, prop) => {
        const v = (current as unknown as Record<string | symbol, unknown>)[prop];
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(current) : v;
      },
    });
    const seen: number[] = [];
    const errors: string[] = [];
    let reloads = 0;
    const sub = subscribeChanges(swapping, {
      fromSeq: 3, onChanges: (c) => { seen.push(...c.map((x) => x.seq)); },
      // The first reload fails: the subscription must try the reload again, never fall
      // back to applying the other database's feed.
      onReset: async () => { reloads++; if (reloads === 1) throw new Error('reload failed'); return current.latestSequence(); },
      onError: (err) => errors.push((err as Error).message), retryMs: 10,
    });
    t.after(() => sub.stop());
    for (let i = 0; i < 500 && sub.clusterId === undefined; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(sub.clusterId, await first.clusterId(), 'learnt from the first page');
    current = second;
    sub.pump();
    await sub.waitFor(5, 5000);
    assert.deepEqual(seen, [], 'changes 4 and 5 of the other database were not applied on top of the first one\'s state');
    assert.equal(reloads, 2);
    assert.ok(errors.includes('reload failed'));
    assert.equal(sub.clusterId, await second.clusterId());
    const [idFirst, idSecond] = [await first.clusterId(), await second.clusterId()];
    assert.ok(errors.some((m) => m.includes(idFirst) && m.includes(idSecond)), errors.join('\n'));
  });

  test(`${backend}: a subscriber on another instance is woken by a commit and receives the change`, async (t) => {
    const { open } = await setup(t);
    const writer = await open();
    const reader = await open();
    const seen: ChangeRecord[] = [];
    const sub = subscribeChanges(reader, { fromSeq: 0, onChanges: (c) => { seen.push(...c); } });
    t.after(() => sub.stop());
    await writer.trustStores.create({ id: 't1', name: 'ca', etag: 'T1', document: { pem: 'x' }, now: 1 });
    await sub.waitFor(1, 5000);
    assert.deepEqual(seen.map((c) => `${c.seq}:${c.entity}:${c.op}:${c.name}`), ['1:trust-store:upsert:ca']);
  });

  test(`${backend}: resources: trust stores, distributions and staged functions have ETag-guarded CRUD with change records`, async (t) => {
    const { open } = await setup(t);
    const s = await open();
    const ts = await s.trustStores.create({ id: 't1', name: 'ca', etag: 'T1', document: { pem: 'x' }, now: 1 });
    assert.equal(ts.etag, 'T1');
    await assert.rejects(s.trustStores.create({ id: 't2', name: 'ca', etag: 'T2', document: {}, now: 1 }), { code: 'EntityAlreadyExists' });
    await assert.rejects(s.trustStores.update('ca', { ifMatch: 'bad', newEtag: 'T2', document: {}, now: 2 }), { code: 'PreconditionFailed' });
    const up = await s.trustStores.update('ca', { ifMatch: 'T1', newEtag: 'T2', document: { pem: 'y' }, now: 2 });
    assert.deepEqual(up.document, { pem: 'y' });
    assert.deepEqual((await s.trustStores.list()).map((r) => r.name), ['ca']);
    await s.trustStores.delete('ca', 'T2', 3);
    assert.equal(await s.trustStores.get('ca'), undefined);

    await s.distributions.create({ id: 'd1', name: 'edge', etag: 'D1', document: { listen: ':443' }, now: 1 });
    assert.equal((await s.distributions.get('edge'))?.etag, 'D1');

    await s.functions.create({ id: 'f1', name: 'fn', etag: 'F1', document: { code: 'a' }, now: 1 });
    const live = await s.functions.put('fn', 'LIVE', { ifMatch: null, newEtag: 'L1', document: { code: 'a' }, now: 2 });
    assert.equal(live.stage, 'LIVE');
    await assert.rejects(s.functions.put('fn', 'LIVE', { ifMatch: 'old', newEtag: 'L2', document: {}, now: 3 }), { code: 'PreconditionFailed' });
    assert.deepEqual((await s.functions.list()).map((r) => `${r.name}/${r.stage}/${r.etag}`), ['fn/DEVELOPMENT/F1', 'fn/LIVE/L1']);
    await s.functions.delete('fn', 'F1', 4);
    assert.deepEqual(await s.functions.list(), []);
    const page = await s.changesAfter(0);
    assert.deepEqual(page.changes.map((c) => `${c.entity}:${c.op}:${c.name}`), [
      'trust-store:upsert:ca', 'trust-store:upsert:ca', 'trust-store:delete:ca', 'distribution:upsert:edge',
      'connection-function:upsert:fn', 'connection-function:upsert:fn', 'connection-function:delete:fn',
    ]);
  });

  test(`${backend}: keys sort and paginate in UTF-8 byte order`, async (t) => {
    const { open } = await setup(t);
    const s = await open();
    const keys = ['b', 'B', 'a', 'Z', '_', '~', 'aa', 'é', 'e', 'ｚ', '\u{1F600}', '\u00A0', '0', 'A b', 'a-b'];
    const r = await s.kvs.createStore({ id: 'o', name: 'order', comment: '', etag: 'P', now: 1 });
    await s.kvs.completeImport(r.id, keys.map((k) => ({ key: k, value: 'v' })), { etag: 'E', now: 2, maxStoreBytes: 10_000 });
    const expected = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x, 'utf8'), Buffer.from(y, 'utf8')));
    assert.deepEqual((await s.kvs.listItems(r.id, { limit: 100 })).map((i) => i.key), expected);
    const paged: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await s.kvs.listItems(r.id, { ...(after !== undefined ? { after } : {}), limit: 4 });
      paged.push(...page.map((i) => i.key));
      if (page.length < 4) break;
      after = page[page.length - 1]!.key;
    }
    assert.deepEqual(paged, expected);
  });

  test(`${backend}: large batches (over the 2000-row chunks), 1 MiB values and ms timestamps come back exact, as numbers`, async (t) => {
    const { open } = await setup(t);
    const s = await open();
    const now = 1_764_460_800_123; // 2025-11-30, beyond 2^32
    const n = 4500;
    const items = Array.from({ length: n }, (_, i) => ({ key: `key-${String(i).padStart(5, '0')}`, value: `v${i}` }));
    const bytes = items.reduce((acc, it) => acc + Buffer.byteLength(it.key) + Buffer.byteLength(it.value), 0);
    const created = await s.kvs.createStore({ id: 'big', name: 'big', comment: 'c', etag: 'P', now });
    const rec = await s.kvs.completeImport(created.id, items, { etag: 'E1', now: now + 1, maxStoreBytes: 10 * 1024 * 1024 });
    assert.equal(rec.itemCount, n);
    assert.equal(rec.totalSize, bytes);
    const read = await s.kvs.getStore('big');
    assert.equal(typeof read!.totalSize, 'number');
    assert.equal(typeof read!.itemCount, 'number');
    assert.equal(read!.createdAt, now);
    assert.equal(read!.lastModified, now + 1);
    assert.equal(read!.totalSize, bytes);
    // Delete 2500 and put 2500 (2000 new) in one write.
    const deletes = items.slice(0, 2500).map((i) => i.key);
    const puts = Array.from({ length: 2500 }, (_, i) => ({ key: `new-${i}`, value: 'x' }));
    puts.push(...items.slice(4000, 4500).map((it) => ({ key: it.key, value: 'changed' })));
    const w = await s.kvs.updateItems('big', { ifMatch: 'E1', newEtag: 'E2', puts, deletes, maxStoreBytes: 10 * 1024 * 1024, now: now + 2 });
    assert.equal(w.deleted.length, 2500);
    assert.equal(w.record.itemCount, n - 2500 + 2500);
    const all: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await s.kvs.listItems(created.id, { ...(after !== undefined ? { after } : {}), limit: 1000 });
      all.push(...page.map((i) => i.key));
      if (page.length < 1000) break;
      after = page[page.length - 1]!.key;
    }
    assert.equal(all.length, w.record.itemCount);
    assert.equal(await s.kvs.getItem(created.id, 'key-04499'), 'changed');
    assert.equal(await s.kvs.getItem(created.id, 'key-00000'), undefined);
    // A 1 MiB value with multi-byte characters.
    const big = 'é'.repeat(512 * 1024);
    const w2 = await s.kvs.updateItems('big', { ifMatch: 'E2', newEtag: 'E3', puts: [{ key: 'mib', value: big }], deletes: [], maxStoreBytes: 10 * 1024 * 1024, now: now + 3 });
    assert.equal(w2.record.totalSize, w.record.totalSize + 3 + 1024 * 1024);
    assert.equal(await s.kvs.getItem(created.id, 'mib'), big);
    const feed = await s.changesAfter(0);
    assert.equal(feed.changes.length, 4);
    assert.equal(feed.changes[0]!.committedAt, now);
  });

  test(`${backend}: readConsistent sees one snapshot while another instance commits`, async (t) => {
    const { open } = await setup(t);
    const a = await open();
    const b = await open();
    await readyStore(a, 'snap', 'E1');
    const seen = await a.readConsistent(async (tx) => {
      const before = { seq: await tx.latestSequence(), etag: (await tx.kvs.getStore('snap'))!.etag };
      await b.kvs.updateItems('snap', { ifMatch: 'E1', newEtag: 'E2', puts: [{ key: 'k', value: 'v' }], deletes: [], maxStoreBytes: 1000, now: 3 });
      const rec = (await tx.kvs.getStore('snap'))!;
      const after = { seq: await tx.latestSequence(), etag: rec.etag, item: await tx.kvs.getItem(rec.id, 'k') };
      return { before, after };
    });
    assert.deepEqual(seen.after, { ...seen.before, item: undefined });
    assert.equal(seen.before.etag, 'E1');
    assert.equal((await a.kvs.getStore('snap'))!.etag, 'E2');
    assert.equal(await a.latestSequence(), seen.before.seq + 1);
  });

  test(`${backend}: CRL-listed keys: sources are kept and refused deletes change nothing`, async (t) => {
    const { open } = await setup(t);
    const s = await open();
    await readyStore(s, 'crl', 'E1');
    const crlState = { issuer: 'CN=CA', thisUpdate: '2025-01-01T00:00:00Z', entries: 2, importedAt: '2025-01-01T00:00:01Z' };
    await s.kvs.updateItems('crl', { ifMatch: 'E1', newEtag: 'E2', puts: [{ key: 'manual', value: 'm' }], deletes: [], maxStoreBytes: 1000, now: 3 });
    const imp = await s.kvs.updateItems('crl', {
      ifMatch: 'E2', newEtag: 'E3', puts: [{ key: '01', value: 'r' }, { key: 'manual', value: 'r' }], deletes: [], replaceSource: 'crl', crlState, maxStoreBytes: 1000, now: 4,
    });
    assert.deepEqual(imp.skipped, ['manual']);
    const id = (await s.kvs.getStore('crl'))!.id;
    assert.deepEqual(await s.kvs.listKeysBySource(id, 'crl'), ['01']);
    assert.deepEqual(await s.kvs.listKeysBySource(id, 'crl+manual'), ['manual']);
    assert.deepEqual((await s.kvs.getStore('crl'))!.crlState, crlState);
    await assert.rejects(
      s.kvs.updateItems('crl', { ifMatch: 'E3', newEtag: 'E4', puts: [], deletes: ['01'], maxStoreBytes: 1000, now: 5 }),
      { code: 'CannotDeleteEntityWhileInUse' },
    );
    assert.equal((await s.kvs.getStore('crl'))!.etag, 'E3');
  });
}
