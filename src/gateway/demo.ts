/**
 * `portcullis demo` (also `serve --demo`): everything the gateway needs to show its
 * main job on one machine, made on the spot in a demo directory —
 *
 * - a throwaway PKI (demo/ OpensslDemoPki): root → intermediate (with an OCSP AIA) →
 *   a server certificate for `localhost` and client certificates: `alice` (good),
 *   `mallory` (revoked at the CA: its OCSP responder says Revoked), `eve` (good for now:
 *   the operator revokes it live in the KeyValueStore), `expired`, and `stranger` (from
 *   a CA the trust store does not hold);
 * - two real `openssl ocsp` responders (root's and intermediate's);
 * - an HTTP origin that echoes the request, including the CloudFront-Viewer-Cert-*
 *   headers, as JSON;
 * - a config (`portcullis.yaml`) with a trust store (OCSP on), an empty KeyValueStore
 *   `revoked-serials` and the layered KVS-then-OCSP connection function
 *   (examples/functions/kvs-then-ocsp-grace.js, copied into the directory).
 *
 * The caller serves that config like any other and prints {@link demoInstructions}.
 */
import { createServer, type Server } from 'node:http';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OpensslDemoPki, type DemoCertificate } from '../demo/index.js';
import { normalizeSerialForKvs } from '../pki/index.js';

/** A client of the demo and what the gateway does with it. */
export interface DemoClient {
  name: string;
  /** PEM file with the leaf and its issuer (what curl `--cert` sends); absent for the client without a certificate. */
  chainFile?: string;
  keyFile?: string;
  /** lowercase colon hex, as the connection function sees it. */
  serialNumber?: string;
  expect: 'allow' | 'deny';
  /** Why, and what the connection log shows. */
  why: string;
}

/** The prepared demo: files, running responders and origin. */
export interface DemoEnvironment {
  /** Directory holding the PKI, the config, the function and the data directory. */
  dir: string;
  configFile: string;
  /** The node's data directory (`kvs` commands take it as `--data-dir`). */
  dataDir: string;
  /** CA certificate clients use to verify the gateway (`curl --cacert`). */
  rootCaFile: string;
  /** `https://localhost:<port>/` */
  gatewayUrl: string;
  adminUrl: string;
  originUrl: string;
  /** OCSP responder URLs (root's, intermediate's). */
  responderUrls: string[];
  /** Name of the KeyValueStore the function reads. */
  kvsName: string;
  /** File name (in {@link dir}) of the connection function's code. */
  functionFile: string;
  clients: DemoClient[];
  /** The client the operator revokes live, and its KVS key (serial, plain lowercase hex). */
  liveRevoke: { client: DemoClient; key: string };
  /** Stops responders and origin; removes the directory when it was a temporary one. */
  close(): Promise<void>;
  /** Last resort (process exit): SIGKILLs the responders synchronously. */
  killNow(): void;
}

/** Options of {@link prepareDemo}. */
export interface DemoOptions {
  /**
   * Directory to use (kept on close): empty or missing, or one a previous demo made
   * (then its PKI and data are replaced). Default: a new temporary directory (removed on close).
   */
  dir?: string;
  /** Gateway port on 127.0.0.1 (default 8443). */
  port?: number;
  /** Admin port on 127.0.0.1 (default 9901). */
  adminPort?: number;
}

/** Marks a directory as made by the demo (so a later run may replace its contents). */
const MARKER = '.portcullis-demo';
const KVS_NAME = 'revoked-serials';
const FUNCTION_FILE = 'kvs-then-ocsp-grace.js';

/**
 * The demo's connection function when examples/ is not next to the code (an installed
 * package): the same text as examples/functions/kvs-then-ocsp-grace.js (the demo smoke
 * test checks that they are equal).
 */
export const DEMO_FUNCTION_SOURCE = `// Layered revocation: the operator's own list first (takes effect immediately), then
// the CA's OCSP answer, with a grace period for the internal 10.0.0.0/16 network.
// Expect: serial in the store -> deny, custom data "kvs:<serial>";
//         leaf "Revoked" from 10.0.x.x -> allow, custom data "grace:<serial>:<ip>";
//         leaf "Revoked" from elsewhere -> deny, custom data "ocsp:<serial>";
//         otherwise allow.
import cf from 'cloudfront';

async function connectionHandler(connection) {
  const kvs = cf.kvs();
  const cert = connection.clientCertificate;
  const serial = cert.certificates.leaf.serialNumber;
  if (await kvs.exists(serial.replaceAll(':', ''))) {
    connection.logCustomData('kvs:' + serial);
    return connection.deny();
  }
  if (cert.revocationStatus.certificates.leaf.status === 'Revoked') {
    if (connection.clientIp.startsWith('10.0.')) {
      connection.logCustomData('grace:' + serial + ':' + connection.clientIp);
      return connection.allow();
    }
    connection.logCustomData('ocsp:' + serial);
    return connection.deny();
  }
  connection.allow();
}
`;

/** examples/functions/kvs-then-ocsp-grace.js of the checkout (from src/gateway or dist/gateway). */
export const DEMO_FUNCTION_EXAMPLE = fileURLToPath(new URL(`../../examples/functions/${FUNCTION_FILE}`, import.meta.url));

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
 * A directory the demo may use: missing or empty (marked then), or marked by an earlier
 * demo (its pki/ and data/ are removed, so old KVS entries cannot outlive their PKI).
 * @throws Error for a non-empty directory the demo did not make.
 */
async function claimDirectory(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const entries = await readdir(dir);
  if (entries.length > 0 && !entries.includes(MARKER)) {
    throw new Error(`--dir ${dir} is not empty and was not made by \`portcullis demo\`; give a new or empty directory`);
  }
  await rm(join(dir, 'pki'), { recursive: true, force: true });
  await rm(join(dir, 'data'), { recursive: true, force: true });
  await writeFile(join(dir, MARKER), 'made by `portcullis demo`: a later demo run with --dir here replaces pki/ and data/\n');
}

/**
 * Creates the demo PKI, starts its responders and the echo origin, and writes the
 * config (`portcullis.yaml`) and the function into the directory.
 * @throws Error when `openssl` is missing, or the directory cannot be used (the message says so).
 */
export async function prepareDemo(options: DemoOptions = {}): Promise<DemoEnvironment> {
  const owns = options.dir === undefined;
  const dir = options.dir ? resolve(options.dir) : await mkdtemp(join(tmpdir(), 'portcullis-demo-'));
  if (!owns) await claimDirectory(dir);
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
    const expired = await pki.issueExpiredLeaf('expired');
    const stranger = await pki.issueUntrustedLeaf('stranger');
    await pki.revoke(mallory);
    await pki.startResponders();
    origin = await startEchoOrigin();
    const p = pki;
    const client = async (c: DemoCertificate, expect: 'allow' | 'deny', why: string): Promise<DemoClient> => ({
      name: c.name, chainFile: await p.writeChain(c), keyFile: c.keyFile, serialNumber: colonSerial(c.serialHex), expect, why,
    });
    const eveClient = await client(eve, 'allow', `good for now (OCSP Good, not in the ${KVS_NAME} KVS); revoke it live with the command below, then expect deny`);
    const clients = [
      await client(alice, 'allow', 'good certificate: OCSP Good, not in the KVS → 200, the origin\'s JSON shows the CloudFront-Viewer-Cert-* headers'),
      await client(mallory, 'deny', `revoked at the CA: OCSP says Revoked → connection closed (log: Failed:ConnectionFunctionDenied, custom data ocsp:${colonSerial(mallory.serialHex)})`),
      eveClient,
      await client(expired, 'deny', `expired ${expired.notAfter.toISOString()} → connection closed before the function runs (log: Failed:ClientCertExpired)`),
      await client(stranger, 'deny', 'issued by a CA the trust store does not hold → connection closed (log: Failed:ClientCertUntrusted)'),
      { name: 'anonymous', expect: 'deny' as const, why: 'no client certificate → connection closed (log: Failed:ClientCertMissing)' },
    ];
    const code = existsSync(DEMO_FUNCTION_EXAMPLE) ? await readFile(DEMO_FUNCTION_EXAMPLE, 'utf8') : DEMO_FUNCTION_SOURCE;
    await writeFile(join(dir, FUNCTION_FILE), code);
    const configFile = join(dir, 'portcullis.yaml');
    await writeFile(configFile, `# Generated by \`portcullis demo\`. Paths are relative to this file.
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
    - name: ${KVS_NAME}
      comment: serials revoked by the operator (key = serial, plain lowercase hex)
  connectionFunctions:
    - name: kvs-then-ocsp
      comment: the operator's KVS first, then the CA's OCSP answer (examples/functions/${FUNCTION_FILE})
      codeFile: ./${FUNCTION_FILE}
      keyValueStore: ${KVS_NAME}
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
      connectionFunction: kvs-then-ocsp
`);
    const o = origin;
    let closed: Promise<void> | undefined;
    return {
      dir, configFile, dataDir: join(dir, 'data'), rootCaFile: join(pkiDir, 'root.pem'),
      gatewayUrl: `https://localhost:${port}/`, adminUrl: `http://127.0.0.1:${adminPort}/`, originUrl: o.url,
      responderUrls: [p.rootResponderUrl, p.intermediateResponderUrl], kvsName: KVS_NAME, functionFile: FUNCTION_FILE,
      clients, liveRevoke: { client: eveClient, key: normalizeSerialForKvs(eveClient.serialNumber!) },
      close: () => {
        closed ??= (async () => {
          await new Promise<void>((r) => { o.server.closeAllConnections(); o.server.close(() => r()); });
          await p.close();
          if (owns) await rm(dir, { recursive: true, force: true });
        })();
        return closed;
      },
      killNow: () => p.killResponders(),
    };
  } catch (err) {
    if (origin) origin.server.close();
    await pki?.close();
    if (owns) await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Quotes a shell word when it needs it (POSIX sh). */
function sh(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`;
}

/**
 * What `portcullis demo` prints (stdout), made to be read and to be parsed: per client a
 * line `# NAME: expect allow|deny — why` followed by its curl command; then
 * `# revoke NAME: …` followed by the command that lists its serial in the KVS. `cli` is
 * the shell prefix that runs this CLI (e.g. `npx tsx src/cli/bin.ts`).
 */
export function demoInstructions(env: DemoEnvironment, cli = 'portcullis'): string {
  const [rootOcsp, intermediateOcsp] = env.responderUrls;
  const lines = [
    `Portcullis demo — files in ${env.dir}`,
    `  gateway   ${env.gatewayUrl}  (mTLS required; admin API ${env.adminUrl}, token in ${join(env.dataDir, 'admin-token')})`,
    `  console   ${env.adminUrl}console/  (web console: sign in with the admin token)`,
    `  origin    ${env.originUrl}  (echoes each request and its headers as JSON)`,
    `  OCSP      ${rootOcsp} (root CA), ${intermediateOcsp} (intermediate CA): real \`openssl ocsp\` responders`,
    `  function  ${env.functionFile}: serial in the ${env.kvsName} KVS → deny; leaf Revoked by OCSP → deny; else allow`,
    '',
    'Try each client (one connection-log JSON line per attempt appears below):',
    '',
  ];
  const curl = (c: DemoClient): string => ['curl', '--cacert', env.rootCaFile, ...(c.chainFile ? ['--cert', c.chainFile] : []),
    ...(c.keyFile ? ['--key', c.keyFile] : []), env.gatewayUrl].map(sh).join(' ');
  for (const c of env.clients) {
    lines.push(`# ${c.name}: expect ${c.expect} — ${c.why}`);
    lines.push(curl(c));
    lines.push('');
  }
  const { client, key } = env.liveRevoke;
  lines.push(`# revoke ${client.name}: lists serial ${client.serialNumber} in the ${env.kvsName} KVS; ${client.name}'s next connection is refused within a second (log: Failed:ConnectionFunctionDenied, custom data kvs:${client.serialNumber})`);
  lines.push(`${cli} kvs put ${env.kvsName} ${key} revoked --data-dir ${sh(env.dataDir)}`);
  lines.push('');
  lines.push('Ready. Ctrl-C stops the gateway, the responders and the origin.');
  return `${lines.join('\n')}\n`;
}
