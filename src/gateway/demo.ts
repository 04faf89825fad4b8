/**
 * `portcullis serve --demo`: everything the gateway needs to show its main job on one
 * machine, made on the spot — a throwaway two-level PKI with real `openssl ocsp`
 * responders (demo/), a server certificate for `localhost`, three client certificates
 * (one good, one revoked at the CA's OCSP responder, one revoked by the operator in a
 * KeyValueStore), a small echo origin, a strict connection function and a config file
 * that declares it all. The caller then serves that config like any other.
 */
import { createServer, type Server } from 'node:http';
import { mkdir, mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { OpensslDemoPki, type DemoCertificate } from '../demo/index.js';
import { normalizeSerialForKvs } from '../pki/index.js';

/** A client certificate of the demo and what the gateway should do with it. */
export interface DemoClient {
  name: string;
  /** PEM file with the leaf and the intermediate (what curl `--cert` sends). */
  chainFile: string;
  keyFile: string;
  /** lowercase colon hex, as the connection function sees it. */
  serialNumber: string;
  expect: 'allow' | 'deny';
  why: string;
}

/** The prepared demo: files, running responders and origin. */
export interface DemoEnvironment {
  /** Directory holding the PKI, the config, the function and the data directory. */
  dir: string;
  configFile: string;
  /** CA certificate clients use to verify the gateway (`curl --cacert`). */
  rootCaFile: string;
  /** `https://localhost:<port>/` */
  gatewayUrl: string;
  originUrl: string;
  clients: DemoClient[];
  /** Stops responders and origin; removes the directory when it was a temporary one. */
  close(): Promise<void>;
}

/** Options of {@link prepareDemo}. */
export interface DemoOptions {
  /** Directory to use (kept on close); default a new temporary directory (removed on close). */
  dir?: string;
  /** Gateway port on 127.0.0.1 (default 8443). */
  port?: number;
  /** Admin port on 127.0.0.1 (default 9901). */
  adminPort?: number;
}

/** The demo's connection function: the operator's KVS first, then OCSP; anything but Valid denies. */
export const DEMO_FUNCTION_SOURCE = `import cf from 'cloudfront';

// Demo: deny serials the operator listed in the KeyValueStore, then deny unless OCSP
// says the whole chain is Good (fail closed when a responder is down).
async function connectionHandler(connection) {
  const cert = connection.clientCertificate;
  const serial = cert.certificates.leaf.serialNumber;
  if (await cf.kvs().exists(serial.replaceAll(':', ''))) {
    connection.logCustomData('revoked-by-kvs:' + serial);
    return connection.deny();
  }
  const validity = cert.revocationStatus.chainValidity;
  if (validity !== 'Valid') {
    connection.logCustomData('ocsp:' + validity);
    return connection.deny();
  }
  connection.logCustomData('ok:' + serial);
  connection.allow();
}
`;

function colonSerial(hex: string): string {
  let h = hex.toLowerCase();
  if (h.length % 2) h = `0${h}`;
  if (/^[89a-f]/.test(h)) h = `00${h}`;
  return h.match(/../g)!.join(':');
}

/** A tiny HTTP origin that answers every request with the method, URL and headers it received (JSON). */
export async function startEchoOrigin(): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    let size = 0;
    req.on('data', (c: Buffer) => { size += c.length; });
    req.on('end', () => {
      const body = JSON.stringify({ origin: 'portcullis demo echo origin', method: req.method, url: req.url, bodyBytes: size, headers: req.headers }, null, 2);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`${body}\n`);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  if (typeof addr !== 'object' || !addr) throw new Error('echo origin has no address');
  return { server, url: `http://127.0.0.1:${addr.port}` };
}

/**
 * Creates the demo PKI, starts its responders and the echo origin, and writes the
 * config (`portcullis.yaml`), the function and the KVS import into the directory.
 * @throws Error when `openssl` is missing (the message says so).
 */
export async function prepareDemo(options: DemoOptions = {}): Promise<DemoEnvironment> {
  const owns = options.dir === undefined;
  const dir = options.dir ? resolve(options.dir) : await mkdtemp(join(tmpdir(), 'portcullis-serve-demo-'));
  await mkdir(dir, { recursive: true });
  const pkiDir = join(dir, 'pki');
  await mkdir(pkiDir, { recursive: true });
  const port = options.port ?? 8443;
  const adminPort = options.adminPort ?? 9901;
  let pki: OpensslDemoPki | undefined;
  let origin: { server: Server; url: string } | undefined;
  try {
    pki = await OpensslDemoPki.create({ dir: pkiDir });
    await pki.issueServer('server', ['localhost']);
    const alice = await pki.issueLeaf('alice');
    const mallory = await pki.issueLeaf('mallory');
    const eve = await pki.issueLeaf('eve');
    await pki.revoke(mallory);
    await pki.startResponders();
    origin = await startEchoOrigin();
    const client = async (c: DemoCertificate, expect: 'allow' | 'deny', why: string): Promise<DemoClient> => ({
      name: c.name, chainFile: await pki!.writeChain(c), keyFile: c.keyFile, serialNumber: colonSerial(c.serialHex), expect, why,
    });
    const clients = [
      await client(alice, 'allow', 'good certificate: OCSP Good, not in the KVS'),
      await client(mallory, 'deny', 'revoked at the CA: OCSP says Revoked (Failed:ConnectionFunctionDenied, custom data ocsp:Invalid)'),
      await client(eve, 'deny', 'revoked by the operator: serial listed in the revoked-serials KVS'),
    ];
    const eveKey = normalizeSerialForKvs(clients[2]!.serialNumber);
    await writeFile(join(dir, 'revoked-serials.json'), `${JSON.stringify({ data: [{ key: eveKey, value: 'revoked by the demo operator' }] }, null, 2)}\n`);
    await writeFile(join(dir, 'revocation.js'), DEMO_FUNCTION_SOURCE);
    const configFile = join(dir, 'portcullis.yaml');
    await writeFile(configFile, `# Generated by \`portcullis serve --demo\`. Paths are relative to this file.
dataDir: ./data
workers: 1
admin:
  listen: 127.0.0.1:${adminPort}
logging:
  level: info
  connectionLog: stdout
resources:
  trustStores:
    - name: demo-devices
      caBundleFile: ./pki/root.pem
      useClientCertificateOcspEndpoint: true
  keyValueStores:
    - name: revoked-serials
      comment: serials revoked by the operator
      importFile: ./revoked-serials.json
  connectionFunctions:
    - name: demo-revocation
      codeFile: ./revocation.js
      keyValueStore: revoked-serials
      publish: true
  distributions:
    - name: demo
      listen: 127.0.0.1:${port}
      aliases: [localhost]
      certificates:
        - certFile: ./pki/server.pem
          keyFile: ./pki/server.key
      origin:
        url: ${origin.url}
      viewerMtls:
        mode: required
        trustStore: demo-devices
      connectionFunction: demo-revocation
`);
    const o = origin;
    const p = pki;
    return {
      dir, configFile, rootCaFile: join(pkiDir, 'root.pem'), gatewayUrl: `https://localhost:${port}/`, originUrl: o.url, clients,
      close: async () => {
        await new Promise<void>((r) => { o.server.closeAllConnections(); o.server.close(() => r()); });
        await p.close();
        if (owns) await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    if (origin) origin.server.close();
    await pki?.close();
    if (owns) await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** The lines `serve --demo` prints: one curl command per client with the expected outcome. */
export function demoInstructions(env: DemoEnvironment): string {
  const lines = [
    `demo: files in ${env.dir}; echo origin at ${env.originUrl}; config ${env.configFile}`,
    'demo: try these (connection log lines appear on stdout):',
  ];
  for (const c of env.clients) {
    lines.push(`  # ${c.name}: expect ${c.expect} — ${c.why}`);
    lines.push(`  curl --cacert ${env.rootCaFile} --cert ${c.chainFile} --key ${c.keyFile} ${env.gatewayUrl}`);
  }
  lines.push(`  # no client certificate: expect deny (Failed:ClientCertMissing)`);
  lines.push(`  curl --cacert ${env.rootCaFile} ${env.gatewayUrl}`);
  return `${lines.join('\n')}\n`;
}
