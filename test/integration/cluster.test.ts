/**
 * Cluster mode end to end (issue 8): three real `portcullis serve` processes (workers:
 * 1 each, distinct nodeName, admin port and listenOverrides) on one throwaway
 * PostgreSQL (test/helpers/postgres.ts), real certificates (test/helpers/pki.ts) and
 * curl as the client.
 *
 * In order (each step builds on the previous one):
 * 1. two nodes start at once on an empty database: both come up, one schema (each
 *    migration recorded once, each declared resource created once); the third joins;
 * 2. `GET /v1/nodes` lists the three with their heartbeats and applied sequence;
 * 3. a KVS put through node A's API refuses the certificate on B and C (and A) — the
 *    time to the first refused handshake on each node is measured and printed, not
 *    asserted (polling with a deadline of 10 s);
 * 4. a function publish through A reaches all three;
 * 5. PostgreSQL stopped: every node still refuses the revoked and admits the good
 *    certificate, `/readyz` is `degraded` with the reason, an API write fails with 503
 *    StoreUnavailable saying the database is unreachable; a node started now without a
 *    snapshot refuses to start; node C restarted now starts from its local snapshot;
 * 6. PostgreSQL started again: a change made after the recovery (through B) reaches
 *    every node (C included, which started from its snapshot), `/readyz` ok again;
 * 7. a node restarted loads the full state (every revocation and the published function).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from '../../src/demo/index.js';
import { OID } from '../../src/pki/index.js';
import { startEchoOrigin, type EchoOrigin } from '../helpers/origin.js';
import { buildChain, issueCertificate, type TestChain, type TestCert } from '../helpers/pki.js';
import { REPO_ROOT, curlThrough, runCli, startGateway, type CurlResult, type RunningGateway } from '../helpers/gateway.js';
import { postgresSkipReason, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { waitFor } from '../helpers/wait.js';

const skip = postgresSkipReason();
/** How long a change may take to be enforced before the test fails (the issue's target is 1 s; measured and printed). */
const PROPAGATION_DEADLINE_MS = 10_000;

type NodeName = 'a' | 'b' | 'c';
const NODES: NodeName[] = ['a', 'b', 'c'];

interface Client { chain: string; key: string; serialKey: string }

let dir: string;
let server: TestPostgres | undefined;
let dbUrl: string;
let origin: EchoOrigin;
let chain: TestChain;
let rootFile: string;
const clients: Record<string, Client> = {};
const nodes: Partial<Record<NodeName, RunningGateway>> = {};
/** Per node: distribution → port (listenOverrides). */
const ports: Record<NodeName, Record<string, number>> = { a: {}, b: {}, c: {} };
const adminPorts: Record<NodeName, number> = { a: 0, b: 0, c: 0 };
let serverCert: TestCert;

const SWITCH_V1 = `function connectionHandler(connection) {
  connection.logCustomData('switch:v1');
  connection.allow();
}
`;
const SWITCH_V2 = `function connectionHandler(connection) {
  connection.logCustomData('switch:v2');
  connection.deny();
}
`;

function writeClient(name: string, leaf: TestCert): Client {
  const file = join(dir, `${name}-chain.pem`);
  const key = join(dir, `${name}.key`);
  writeFileSync(file, [leaf, ...chain.intermediates.slice().reverse()].map((c) => c.pem).join(''));
  writeFileSync(key, leaf.keyPem);
  return { chain: file, key, serialKey: Buffer.from(leaf.cert.serialNumberBytes!).toString('hex') };
}

async function leaf(name: string, serial: string): Promise<Client> {
  const cert = await issueCertificate({
    subject: `C=US,O=Portcullis Test,CN=${name}`, issuer: chain.intermediates.at(-1)!, eku: [OID.kpClientAuth], serial,
  });
  return writeClient(name, cert);
}

/** The node config: the same declarations everywhere, per-node name, ports and files. */
function nodeConfig(n: NodeName, opts: { snapshot?: boolean } = {}): Record<string, unknown> {
  const certificates = [{ certFile: join(dir, 'server.pem'), keyFile: join(dir, 'server.key') }];
  const dist = (name: string, fn: string): Record<string, unknown> => ({
    name, listen: '127.0.0.1:1', aliases: [`${name}.gw.test`], certificates, connectionFunction: fn,
    origin: { url: origin.url, connectTimeoutMs: 2000, responseTimeoutMs: 10_000 },
    viewerMtls: { mode: 'required', trustStore: 'cluster' },
  });
  return {
    nodeName: `node-${n}`,
    store: dbUrl,
    dataDir: join(dir, n, 'data'),
    admin: { listen: `127.0.0.1:${adminPorts[n]}`, token: 'cluster-test-token-0123456789' },
    cluster: { heartbeatIntervalMs: 300, staleAfterMs: 3000, ...(opts.snapshot ? { snapshotFile: join(dir, n, 'snapshot.json'), snapshotIntervalMs: 200 } : {}) },
    listenOverrides: { kvsfn: `127.0.0.1:${ports[n].kvsfn}`, pub: `127.0.0.1:${ports[n].pub}` },
    resources: {
      trustStores: [{ name: 'cluster', caBundleFile: rootFile }],
      keyValueStores: [{ name: 'revoked', importFile: join(dir, 'revoked.json') }],
      connectionFunctions: [
        { name: 'kvs-revoke', codeFile: join(REPO_ROOT, 'examples/functions/kvs-serial-revocation.js'), keyValueStore: 'revoked', publish: true },
        // Not published by the config: LIVE is the API's (a restart re-applies DEVELOPMENT only).
        { name: 'switch', codeFile: join(dir, 'switch-v1.js'), publish: false },
      ],
      // The stored listen is a placeholder: every node listens where its listenOverrides say.
      distributions: [dist('kvsfn', 'kvs-revoke'), dist('pub', 'switch')],
    },
  };
}

async function startNode(n: NodeName, opts: { snapshot?: boolean } = {}): Promise<RunningGateway> {
  const d = join(dir, n);
  mkdirSync(d, { recursive: true });
  const gw = await startGateway({ dir: d, config: nodeConfig(n, opts) });
  nodes[n] = gw;
  return gw;
}

function node(n: NodeName): RunningGateway {
  const gw = nodes[n];
  assert.ok(gw, `node ${n} is not running`);
  return gw;
}

/** One admin API call with the bearer token. */
async function api(n: NodeName, method: string, path: string, opts: { body?: unknown; ifMatch?: string } = {}): Promise<{ status: number; json: Record<string, unknown>; etag?: string }> {
  const gw = node(n);
  const res = await fetch(`${gw.adminUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${gw.token}`,
      ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(opts.ifMatch ? { 'if-match': opts.ifMatch } : {}),
    },
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
    signal: AbortSignal.timeout(20_000),
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {}, ...(res.headers.get('etag') ? { etag: res.headers.get('etag')!.replaceAll('"', '') } : {}) };
}

/** KVS put through node `n`'s API; returns when the write is acknowledged (committed). */
async function kvsPut(n: NodeName, key: string, value: string): Promise<void> {
  const d = await api(n, 'GET', '/v1/key-value-stores/revoked');
  assert.equal(d.status, 200, JSON.stringify(d.json));
  const r = await api(n, 'PUT', `/v1/key-value-stores/revoked/keys/${key}`, { body: { value }, ifMatch: String(d.json.ETag) });
  assert.equal(r.status, 200, `kvs put through node ${n}: ${r.status} ${JSON.stringify(r.json)}`);
}

function through(n: NodeName, dist: string, who: Client): Promise<CurlResult> {
  return curlThrough({ host: `${dist}.gw.test`, port: ports[n][dist]!, cacert: rootFile, cert: who.chain, key: who.key, maxTimeSeconds: 5 });
}

const admitted = (r: CurlResult): boolean => r.exitCode === 0 && r.status === 200;
const refused = (r: CurlResult): boolean => r.status === 0 && r.exitCode !== 0;

/** Polls (fresh connection every 25 ms) until `done`; returns ms from `start`. Fails after the deadline. */
async function until(start: number, attempt: () => Promise<CurlResult>, done: (r: CurlResult) => boolean, what: string): Promise<number> {
  for (;;) {
    const r = await attempt();
    const elapsed = Date.now() - start;
    if (done(r)) return elapsed;
    if (elapsed > PROPAGATION_DEADLINE_MS) assert.fail(`${what}: not seen within ${PROPAGATION_DEADLINE_MS} ms (last: exit ${r.exitCode} status ${r.status} ${r.stderr.trim()})`);
    await new Promise((res) => setTimeout(res, 25));
  }
}


async function readyz(n: NodeName): Promise<{ status: string; reasons: string[] }> {
  const r = await node(n).admin('/readyz');
  return JSON.parse(r.body) as { status: string; reasons: string[] };
}

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'portcullis-cluster-'));
  server = await startPostgres();
  dbUrl = await server!.createDatabase('cluster');
  chain = await buildChain({ name: 'Cluster', leaf: { serial: '0a11223344556677' } });
  rootFile = join(dir, 'root.pem');
  writeFileSync(rootFile, chain.root.pem);
  serverCert = await issueCertificate({
    subject: 'C=US,O=Portcullis Test,CN=gw.test', issuer: chain.intermediates.at(-1)!, eku: [OID.kpServerAuth], san: { dns: ['*.gw.test'] },
  });
  writeFileSync(join(dir, 'server.pem'), [serverCert, ...chain.intermediates.slice().reverse()].map((c) => c.pem).join(''));
  writeFileSync(join(dir, 'server.key'), serverCert.keyPem);
  clients.good = writeClient('good', chain.leaf);
  clients.victim = await leaf('victim', '0b11223344556677');
  clients.late = await leaf('late', '0c11223344556677');
  writeFileSync(join(dir, 'revoked.json'), JSON.stringify({ data: [{ key: 'deadbeef', value: 'an unrelated serial' }] }));
  writeFileSync(join(dir, 'switch-v1.js'), SWITCH_V1);
  origin = await startEchoOrigin();
  for (const n of NODES) {
    adminPorts[n] = await freePort();
    ports[n].kvsfn = await freePort();
    ports[n].pub = await freePort();
  }
});

after(async () => {
  await Promise.all(NODES.map((n) => nodes[n]?.stop()));
  await origin?.close();
  await server?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('cluster mode: three nodes on one PostgreSQL', { skip }, () => {
  test('two nodes starting at once on an empty database both come up with one schema; the third joins', async () => {
    await Promise.all([startNode('a'), startNode('b')]);
    await startNode('c', { snapshot: true });
    const client = new pg.Client({ connectionString: dbUrl });
    await client.connect();
    try {
      const migrations = await client.query<{ name: string; n: string }>('select name, count(*) as n from portcullis_migration group by name order by name');
      assert.deepEqual(migrations.rows.map((r) => [r.name, Number(r.n)]), [['0001_initial', 1], ['0002_nodes', 1], ['0003_cluster_identity', 1], ['0004_node_instance', 1]]);
      const ts = await client.query('select name from trust_stores');
      assert.deepEqual(ts.rows.map((r: { name: string }) => r.name), ['cluster']);
      const fns = await client.query('select name, stage from connection_functions order by name, stage');
      assert.equal(fns.rows.length, 3, 'kvs-revoke (both stages) and switch (DEVELOPMENT; the test publishes it), once each');
    } finally {
      await client.end();
    }
    const dev = await api('a', 'GET', '/v1/connection-functions/switch');
    assert.equal((await api('a', 'POST', '/v1/connection-functions/switch/publish', { ifMatch: dev.etag! })).status, 200);
    for (const n of NODES) {
      assert.ok(admitted(await through(n, 'kvsfn', clients.good!)), `node ${n} admits the good certificate`);
      await until(Date.now(), () => through(n, 'pub', clients.good!), admitted, `node ${n} admits through the published v1 function`);
      assert.ok(admitted(await through(n, 'kvsfn', clients.victim!)), `node ${n} admits the not yet revoked certificate`);
    }
  });

  test('GET /v1/nodes lists every node with its heartbeat and applied sequence; all reach the latest sequence', async () => {
    const v = await waitFor('three nodes in sync', async () => {
      const r = await api('a', 'GET', '/v1/nodes');
      assert.equal(r.status, 200, JSON.stringify(r.json));
      const items = r.json.Items as { Name: string; InSync: boolean }[];
      return items.length === 3 && r.json.AllInSync === true ? r.json : undefined;
    });
    const items = v.Items as { Name: string; Status: string; AppliedSequence: number; LastHeartbeat: string; Listeners: { distribution: string; port: number }[]; AdminAddress: string }[];
    assert.deepEqual(items.map((i) => i.Name), ['node-a', 'node-b', 'node-c']);
    for (const [i, n] of NODES.entries()) {
      const item = items[i]!;
      assert.equal(item.Status, 'ok');
      assert.equal(item.AppliedSequence, v.LatestSequence);
      assert.ok(Date.now() - Date.parse(item.LastHeartbeat) < 3000);
      assert.equal(item.AdminAddress, `127.0.0.1:${adminPorts[n]}`);
      assert.deepEqual(item.Listeners.map((l) => [l.distribution, l.port]).sort(), [['kvsfn', ports[n].kvsfn], ['pub', ports[n].pub]]);
    }
    const cli = await runCli(['nodes', 'list', '--admin-url', node('b').adminUrl, '--token', node('b').token, '--wait-for-sequence', String(v.LatestSequence)]);
    assert.equal(cli.code, 0, cli.stderr);
    for (const n of NODES) assert.match(cli.stdout, new RegExp(`node-${n}\\s+ok\\s+${v.LatestSequence}\\s+yes`));
    assert.match(cli.stdout, /latest change sequence \d+: every node has it/);
  });

  test('a KVS put through node A\'s API refuses the certificate on nodes B and C (time measured)', async () => {
    const start = Date.now();
    await kvsPut('a', clients.victim!.serialKey, 'revoked by the operator');
    const acked = Date.now() - start;
    const times = await Promise.all(NODES.map((n) => until(Date.now(), () => through(n, 'kvsfn', clients.victim!), refused, `node ${n}: revoked certificate refused`)));
    console.log(`# KVS put acknowledged by node A in ${acked} ms; first refused handshake after the acknowledgement: A ${times[0]} ms, B ${times[1]} ms, C ${times[2]} ms`);
    for (const n of NODES) assert.ok(admitted(await through(n, 'kvsfn', clients.good!)), `node ${n} still admits the good certificate`);
  });

  test('a function publish through node A reaches all three nodes', async () => {
    const dev = await api('a', 'GET', '/v1/connection-functions/switch');
    assert.equal(dev.status, 200);
    const upd = await api('a', 'PUT', '/v1/connection-functions/switch', { body: { code: SWITCH_V2 }, ifMatch: dev.etag! });
    assert.equal(upd.status, 200, JSON.stringify(upd.json));
    const start = Date.now();
    const pub = await api('a', 'POST', '/v1/connection-functions/switch/publish', { ifMatch: upd.etag! });
    assert.equal(pub.status, 200, JSON.stringify(pub.json));
    const times = await Promise.all(NODES.map((n) => until(Date.now(), () => through(n, 'pub', clients.good!), refused, `node ${n}: v2 (deny) serving`)));
    console.log(`# function publish acknowledged in ${Date.now() - start - Math.max(...times)} ms (approx.); v2 enforced after: A ${times[0]} ms, B ${times[1]} ms, C ${times[2]} ms`);
  });

  test('PostgreSQL stopped: every node keeps enforcing its applied state, /readyz degraded, API writes fail clearly, a node cannot start without a snapshot but starts from one', async () => {
    // Let node C's snapshot catch up with the last changes first.
    const latest = Number((await api('a', 'GET', '/v1/nodes')).json.LatestSequence);
    await waitFor('node C\'s snapshot at the latest sequence', async () => {
      const { readFileSync, existsSync } = await import('node:fs');
      const f = join(dir, 'c', 'snapshot.json');
      if (!existsSync(f)) return undefined;
      const header = JSON.parse(readFileSync(f, 'utf8').split('\n')[0]!) as { seq: number };
      return header.seq >= latest ? true : undefined;
    });
    await server!.stop();
    for (const n of NODES) {
      const r = await waitFor(`node ${n} /readyz degraded`, async () => {
        // The replicas may notice first (their change feed fails); the node's own reason follows within a heartbeat.
        const ready = await readyz(n);
        return ready.status === 'degraded' && ready.reasons.some((x) => /database has been unreachable/.test(x)) ? ready : undefined;
      });
      assert.ok(r.reasons.some((x) => /database has been unreachable since/.test(x) && /serving the last applied state at sequence/.test(x)), `node ${n}: ${JSON.stringify(r.reasons)}`);
      assert.ok(refused(await through(n, 'kvsfn', clients.victim!)), `node ${n} still refuses the revoked certificate`);
      assert.ok(admitted(await through(n, 'kvsfn', clients.good!)), `node ${n} still admits the good certificate`);
      assert.ok(refused(await through(n, 'pub', clients.good!)), `node ${n} still runs the published v2`);
    }
    const w = await api('a', 'PUT', `/v1/key-value-stores/revoked/keys/${clients.late!.serialKey}`, { body: { value: 'x' }, ifMatch: 'any' });
    assert.equal(w.status, 503, JSON.stringify(w.json));
    const err = w.json.error as { code: string; message: string };
    assert.equal(err.code, 'StoreUnavailable');
    assert.match(err.message, /database|connect|unreachable/i);
    console.log(`# API write while the database is down: ${w.status} ${err.code}: ${err.message}`);

    // A node that starts now without a snapshot refuses to start.
    const d = join(dir, 'd');
    mkdirSync(d, { recursive: true });
    const cfg = nodeConfig('a');
    await assert.rejects(
      startGateway({ dir: d, config: { ...cfg, nodeName: 'node-d', dataDir: join(d, 'data'), admin: { listen: `127.0.0.1:${await freePort()}`, token: 'cluster-test-token-0123456789' }, listenOverrides: {} } }),
      (e: Error) => /exited/.test(e.message) && /refusing to serve without state/.test(e.message),
    );

    // Node C restarted now starts from its local snapshot.
    await node('c').stop();
    await startNode('c', { snapshot: true });
    const r = await readyz('c');
    assert.equal(r.status, 'degraded');
    assert.ok(r.reasons.some((x) => /serving the local snapshot at sequence/.test(x)), JSON.stringify(r.reasons));
    assert.ok(refused(await through('c', 'kvsfn', clients.victim!)), 'node C (from its snapshot) refuses the revoked certificate');
    assert.ok(admitted(await through('c', 'kvsfn', clients.good!)), 'node C (from its snapshot) admits the good certificate');
    assert.ok(refused(await through('c', 'pub', clients.good!)), 'node C (from its snapshot) runs the published v2');
  });

  test('PostgreSQL started again: a change made after the recovery reaches every node, /readyz ok again', async () => {
    await server!.start();
    for (const n of NODES) {
      await waitFor(`node ${n} /readyz ok`, async () => ((await readyz(n)).status === 'ok' ? true : undefined), 30_000);
    }
    await waitFor('the API writes again', async () => {
      try {
        await kvsPut('b', clients.late!.serialKey, 'revoked after the recovery');
        return true;
      } catch {
        return undefined;
      }
    });
    const start = Date.now();
    const times = await Promise.all(NODES.map((n) => until(start, () => through(n, 'kvsfn', clients.late!), refused, `node ${n}: change after recovery`)));
    console.log(`# after recovery, KVS put through B enforced: A ${times[0]} ms, B ${times[1]} ms, C ${times[2]} ms`);
    await waitFor('every node in sync', async () => ((await api('a', 'GET', '/v1/nodes')).json.AllInSync === true ? true : undefined));
  });

  test('a restarted node loads the full state', async () => {
    await node('b').stop();
    await startNode('b');
    assert.equal((await readyz('b')).status, 'ok');
    assert.ok(refused(await through('b', 'kvsfn', clients.victim!)));
    assert.ok(refused(await through('b', 'kvsfn', clients.late!)));
    assert.ok(admitted(await through('b', 'kvsfn', clients.good!)));
    assert.ok(refused(await through('b', 'pub', clients.good!)), 'the published v2 after a restart');
  });
});
