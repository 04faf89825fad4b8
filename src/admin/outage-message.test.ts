/**
 * Cluster outage (issue 8): while the database is unreachable, API routes answer 503
 * StoreUnavailable, saying that the edge keeps enforcing its last applied state and at
 * which sequence.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore, type Store } from '../store/index.js';
import { StoreUnavailableError } from '../errors.js';
import { createAdminApp } from './index.js';

const TOKEN = 'test-token-0123456789';

test('admin API: a read while the database is unreachable is 503 StoreUnavailable saying the edge keeps enforcing its last applied state (sequence N)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-admin-outage-'));
  const db = await openSqliteStore({ dataDir: dir });
  const down = new StoreUnavailableError('the PostgreSQL database postgres://app:…@db:5432/p is unreachable (connect ECONNREFUSED)');
  const trustStores = new Proxy(db.trustStores, { get: () => async () => { throw down; } });
  const store: Store = Object.assign(Object.create(Object.getPrototypeOf(db) as object) as Store, db, { trustStores });
  let applied: number | undefined = 42;
  const app = await createAdminApp({
    token: TOKEN,
    metrics: async () => ({ contentType: 'text/plain', body: '' }),
    readiness: () => ({ ready: true, status: 'degraded', reasons: [] }),
    api: { store },
    appliedSequence: () => applied,
  });
  t.after(async () => {
    await app.close();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const get = async (): Promise<{ status: number; body: { error: { code: string; message: string } } }> => {
    const r = await app.inject({ method: 'GET', url: '/v1/trust-stores', headers: { authorization: `Bearer ${TOKEN}` } });
    return { status: r.statusCode, body: r.json() };
  };
  const r = await get();
  assert.equal(r.status, 503);
  assert.equal(r.body.error.code, 'StoreUnavailable');
  assert.equal(r.body.error.message, `the database is unreachable; the edge keeps enforcing its last applied state (sequence 42): ${down.message}`);
  applied = undefined;
  assert.match((await get()).body.error.message, /\(sequence unknown\)/);
});
