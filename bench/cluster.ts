/**
 * Cluster benchmark (issue 8): three real `portcullis serve` nodes (workers: 1 each)
 * on one throwaway PostgreSQL (test/helpers/postgres.ts), like the cluster
 * integration test.
 *
 * - Propagation: 200 writes through node A's admin API, alternately revoking and
 *   un-revoking one client certificate's serial in the KVS its connection function
 *   reads (PUT / DELETE of the key). For each write, from the moment the API
 *   acknowledged it (the commit is durable), nodes B and C are probed with real mTLS
 *   handshakes + one HTTPS request (a fresh connection every ~2 ms per node) until the
 *   node enforces the new state (refused after a revoke, 200 after an un-revoke). The
 *   figure is the slower of B and C per write; p50 and p99 over the 200 writes. The
 *   probe's own cost (one handshake, ~3–10 ms on this machine) is included.
 * - Catch-up after a restart: node C stopped; 10,000 changes (single-key KVS puts,
 *   each its own transaction and change record) committed directly in the database;
 *   node C started again. Time from spawning `portcullis serve` to the moment C
 *   refuses the certificate revoked by the last of those changes (it loads the full
 *   state at start, then follows the feed), and, for comparison, the same restart with
 *   no pending changes.
 * - Catch-up by replaying the change feed: node C stopped with its local snapshot at
 *   sequence S; 10,000 more changes committed; PostgreSQL stopped; C started (from its
 *   snapshot, serving state S); PostgreSQL started again. Time from PostgreSQL
 *   accepting connections again to C enforcing the last change (C reconnects, every
 *   `cluster.storeRetryMs` = 100 ms here, and replays the 10,000 changes in its edge
 *   state and in its function host's KVS replica).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { freePort } from '../src/demo/index.js';
import { OID } from '../src/pki/index.js';
import { KeyValueStoreService } from '../src/kvs/index.js';
import { openStore } from '../src/store/index.js';
import { startEchoOrigin } from '../test/helpers/origin.js';
import { buildChain, issueCertificate } from '../test/helpers/pki.js';
import { REPO_ROOT, startGateway, type RunningGateway } from '../test/helpers/gateway.js';
import { postgresSkipReason, startPostgres } from '../test/helpers/postgres.js';
import { percentile, type Benchmark, type Figure } from './lib.js';

const WRITES = Number(process.env.PORTCULLIS_BENCH_CLUSTER_WRITES ?? 200);
const CATCHUP_CHANGES = Number(process.env.PORTCULLIS_BENCH_CLUSTER_CHANGES ?? 10_000);
const TOKEN = 'cluster-bench-token-0123456789';
const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Tls { ca: string; cert: string; key: string }

/** One connection: mTLS handshake + `GET /`; true when the origin answered 200, false when the gateway refused. */
function probe(port: number, tls: Tls): Promise<boolean> {
  return new Promise((resolve) => {
    const req = httpsRequest({
      host: '127.0.0.1', port, servername: 'kvsfn.gw.test', path: '/', agent: false, ...tls,
      headers: { host: 'kvsfn.gw.test' }, timeout: 5000,
    }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
      res.on('error', () => resolve(false));
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => { req.destroy(); resolve(false); });
    req.end();
  });
}

/** Probes until the node admits (`want` true) or refuses (false); returns the time it happened (ms, performance clock). */
async function untilEnforced(port: number, tls: Tls, want: boolean, deadlineMs = 30_000): Promise<number> {
  const end = now() + deadlineMs;
  for (;;) {
    if ((await probe(port, tls)) === want) return now();
    if (now() > end) throw new Error(`port ${port}: state ${want ? 'admit' : 'refuse'} not reached within ${deadlineMs} ms`);
    await sleep(2);
  }
}

async function apiCall(gw: RunningGateway, method: string, path: string, opts: { body?: unknown; ifMatch?: string } = {}): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${gw.adminUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${TOKEN}`, ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(opts.ifMatch ? { 'if-match': opts.ifMatch } : {}),
    },
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

async function run(): Promise<Figure[]> {
  const skip = postgresSkipReason();
  if (skip) throw new Error(`cluster benchmark needs PostgreSQL: ${skip}`);
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-bench-cluster-'));
  const server = (await startPostgres())!;
  const origin = await startEchoOrigin();
  const nodes: Record<string, RunningGateway> = {};
  try {
    const dbUrl = await server.createDatabase('bench');
    const chain = await buildChain({ name: 'Bench', leaf: { serial: '0a11223344556677' } });
    const rootFile = join(dir, 'root.pem');
    writeFileSync(rootFile, chain.root.pem);
    const srv = await issueCertificate({ subject: 'CN=gw.test', issuer: chain.intermediates.at(-1)!, eku: [OID.kpServerAuth], san: { dns: ['*.gw.test'] } });
    writeFileSync(join(dir, 'server.pem'), [srv, ...chain.intermediates.slice().reverse()].map((c) => c.pem).join(''));
    writeFileSync(join(dir, 'server.key'), srv.keyPem);
    const tls: Tls = { ca: chain.root.pem, cert: chain.presentedPem, key: chain.leaf.keyPem };
    const serialKey = Buffer.from(chain.leaf.cert.serialNumberBytes!).toString('hex');
    writeFileSync(join(dir, 'revoked.json'), JSON.stringify({ data: [{ key: 'deadbeef', value: 'unrelated' }] }));
    const ports: Record<string, number> = {};
    const admins: Record<string, number> = {};
    for (const n of ['a', 'b', 'c']) { ports[n] = await freePort(); admins[n] = await freePort(); }
    const config = (n: string): Record<string, unknown> => ({
      nodeName: `bench-${n}`, store: dbUrl, workers: 1, dataDir: join(dir, n, 'data'),
      admin: { listen: `127.0.0.1:${admins[n]}`, token: TOKEN },
      logging: { level: 'warn', connectionLog: join(dir, n, 'connections.log') },
      listenOverrides: { kvsfn: `127.0.0.1:${ports[n]}` },
      cluster: { snapshotFile: join(dir, n, 'snapshot.json'), snapshotIntervalMs: 100, storeRetryMs: 100 },
      resources: {
        trustStores: [{ name: 'bench', caBundleFile: rootFile }],
        keyValueStores: [{ name: 'revoked', importFile: join(dir, 'revoked.json') }],
        connectionFunctions: [{ name: 'kvs-revoke', codeFile: join(REPO_ROOT, 'examples/functions/kvs-serial-revocation.js'), keyValueStore: 'revoked', publish: true }],
        distributions: [{
          name: 'kvsfn', listen: '127.0.0.1:1', aliases: ['kvsfn.gw.test'], connectionFunction: 'kvs-revoke',
          certificates: [{ certFile: join(dir, 'server.pem'), keyFile: join(dir, 'server.key') }],
          origin: { url: origin.url }, viewerMtls: { mode: 'required', trustStore: 'bench' },
        }],
      },
    });
    const start = async (n: string): Promise<RunningGateway> => {
      mkdirSync(join(dir, n), { recursive: true });
      nodes[n] = await startGateway({ dir: join(dir, n), config: config(n) });
      return nodes[n]!;
    };
    const a = await start('a');
    await start('b');
    await start('c');
    for (const n of ['a', 'b', 'c']) await untilEnforced(ports[n]!, tls, true);

    // ---- propagation
    const slowest: number[] = [];
    const perNode: number[] = [];
    let revoked = false;
    for (let i = 0; i < WRITES; i++) {
      const d = await apiCall(a, 'GET', '/v1/key-value-stores/revoked');
      const etag = String(d.json.ETag);
      const r = revoked
        ? await apiCall(a, 'DELETE', `/v1/key-value-stores/revoked/keys/${serialKey}`, { ifMatch: etag })
        : await apiCall(a, 'PUT', `/v1/key-value-stores/revoked/keys/${serialKey}`, { body: { value: `write ${i}` }, ifMatch: etag });
      const acked = now();
      if (r.status !== 200) throw new Error(`write ${i} failed: ${r.status} ${JSON.stringify(r.json)}`);
      revoked = !revoked;
      const [tb, tc] = await Promise.all([untilEnforced(ports.b!, tls, !revoked), untilEnforced(ports.c!, tls, !revoked)]);
      perNode.push(tb - acked, tc - acked);
      slowest.push(Math.max(tb, tc) - acked);
      await sleep(10 + Math.random() * 40);
    }
    // Leave the certificate admitted for the catch-up part.
    if (revoked) {
      const d = await apiCall(a, 'GET', '/v1/key-value-stores/revoked');
      await apiCall(a, 'DELETE', `/v1/key-value-stores/revoked/keys/${serialKey}`, { ifMatch: String(d.json.ETag) });
      await untilEnforced(ports.c!, tls, true);
    }

    // ---- catch-up: baseline restart, then a restart after CATCHUP_CHANGES changes
    await nodes.c!.stop();
    let t0 = now();
    await start('c');
    await untilEnforced(ports.c!, tls, true);
    const baseline = now() - t0;
    await nodes.c!.stop();
    /** CATCHUP_CHANGES single-key puts; the last one revokes (or, `revoke` false, un-revokes) the probe's serial. */
    const changes = async (prefix: string, revoke: boolean): Promise<number> => {
      const started = now();
      const store = await openStore({ kind: 'postgres', url: dbUrl, poolSize: 4 });
      try {
        const kvs = new KeyValueStoreService(store);
        let etag = (await kvs.describe('revoked')).ETag;
        for (let i = 0; i < CATCHUP_CHANGES - 1; i++) etag = (await kvs.putKey('revoked', { key: `${prefix}${i.toString(16).padStart(8, '0')}`, value: 'x', ifMatch: etag })).ETag;
        if (revoke) await kvs.putKey('revoked', { key: serialKey, value: 'the last change', ifMatch: etag });
        else await kvs.deleteKey('revoked', { key: serialKey, ifMatch: etag });
        return now() - started;
      } finally {
        await store.close();
      }
    };
    const writeMs = await changes('k', true);
    t0 = now();
    await start('c');
    await untilEnforced(ports.c!, tls, false);
    const catchup = now() - t0;

    // ---- catch-up by replay: C starts from its snapshot while the database is down
    const latest = await (async () => {
      const s = await openStore({ kind: 'postgres', url: dbUrl, poolSize: 1 });
      try { return await s.latestSequence(); } finally { await s.close(); }
    })();
    const snapshotFile = join(dir, 'c', 'snapshot.json');
    const snapEnd = now() + 30_000;
    const snapSeq = (): number => (existsSync(snapshotFile) ? (JSON.parse(readFileSync(snapshotFile, 'utf8').split('\n')[0]!) as { seq: number }).seq : -1);
    while (snapSeq() < latest) {
      if (now() > snapEnd) throw new Error(`node C's snapshot did not reach sequence ${latest}`);
      await sleep(50);
    }
    await nodes.c!.stop();
    const replayWriteMs = await changes('r', false);
    await server.stop();
    await start('c');
    await untilEnforced(ports.c!, tls, false); // the snapshot's state: still revoked
    await server.start();
    const dbBack = now();
    await untilEnforced(ports.c!, tls, true, 120_000);
    const replay = now() - dbBack;
    const note = `${WRITES} writes through node A's API, alternately revoking/un-revoking one serial; enforcement = first real mTLS handshake + request on the node with the new outcome`;
    return [
      { benchmark: 'cluster', metric: `propagation A→B,C (slower of the two) p50, ${WRITES} writes`, unit: 'ms', rounds: [percentile(slowest, 50)], target: 'p99 ≤ 1000 (aim ≤ 100)', note },
      { benchmark: 'cluster', metric: `propagation A→B,C (slower of the two) p99, ${WRITES} writes`, unit: 'ms', rounds: [percentile(slowest, 99)], target: '≤ 1000 (aim ≤ 100)', note },
      { benchmark: 'cluster', metric: 'propagation A→one node p50 (B and C pooled)', unit: 'ms', rounds: [percentile(perNode, 50)], note },
      { benchmark: 'cluster', metric: `restart of a node after ${CATCHUP_CHANGES} changes while it was down: spawn → enforces the last change`, unit: 'ms', rounds: [catchup], note: `changes committed in ${Math.round(writeMs)} ms; the node loads the full state at start` },
      { benchmark: 'cluster', metric: 'restart of a node with no pending changes: spawn → serving (baseline)', unit: 'ms', rounds: [baseline] },
      { benchmark: 'cluster', metric: `replica catch-up by replaying ${CATCHUP_CHANGES} changes (node serving its snapshot): database back → enforces the last change`, unit: 'ms', rounds: [replay], note: `changes committed in ${Math.round(replayWriteMs)} ms; includes the reconnection (storeRetryMs 100)` },
    ];
  } finally {
    await Promise.all(Object.values(nodes).map((n) => n.stop()));
    await origin.close();
    await server.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Registered in run.ts as `cluster`. */
export const clusterBench: Benchmark = {
  name: 'cluster',
  description: `3 nodes on one PostgreSQL: write-to-enforcement propagation over ${WRITES} writes; restart catch-up after ${CATCHUP_CHANGES} changes`,
  run,
};
