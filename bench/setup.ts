/**
 * Shared setup of the end-to-end benchmarks: a throwaway PKI with real `openssl ocsp`
 * responders (src/demo), an ECDSA P-256 server certificate, client leaves (ECDSA P-256
 * and RSA 2048, chain sent = leaf + intermediate), and the `portcullis serve` YAML
 * configuration the benchmarks run.
 */
import { execFile } from 'node:child_process';
import { appendFile, copyFile, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { OpensslDemoPki, type DemoCertificate } from '../src/demo/index.js';
import { onAbort, root, type ClientFiles } from './proc.js';

const run = promisify(execFile);

/** Issues an RSA 2048 client leaf under the demo intermediate (before the responders start, so they know it). */
export async function issueRsaLeaf(pki: OpensslDemoPki, name: string, serialHex = '7A01'): Promise<{ certFile: string; keyFile: string }> {
  const dir = pki.dir;
  const keyFile = join(dir, `${name}.key`), certFile = join(dir, `${name}.pem`), csr = join(dir, `${name}.csr`), ext = join(dir, `${name}.ext`);
  await writeFile(ext, [
    'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth',
    'subjectKeyIdentifier=hash', 'authorityKeyIdentifier=keyid', `subjectAltName=DNS:${name}.demo.example`,
    `authorityInfoAccess=OCSP;URI:${pki.intermediateResponderUrl}`,
  ].join('\n') + '\n');
  await run('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', keyFile]);
  await run('openssl', ['req', '-new', '-key', keyFile, '-subj', `/C=US/O=Portcullis Demo/CN=${name}`, '-out', csr]);
  await run('openssl', ['x509', '-req', '-in', csr, '-CA', pki.intermediate.certFile, '-CAkey', pki.intermediate.keyFile,
    '-set_serial', `0x${serialHex}`, '-days', '90', '-sha256', '-extfile', ext, '-out', certFile]);
  const { stdout } = await run('openssl', ['x509', '-in', certFile, '-noout', '-enddate']);
  const notAfter = new Date(stdout.trim().replace(/^notAfter=/, ''));
  const t = notAfter.toISOString().replace(/^\d\d(\d\d)-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d).*$/, '$1$2$3$4$5$6Z');
  await appendFile(join(dir, 'intermediate-index.txt'), ['V', t, '', serialHex, 'unknown', `/C=US/O=Portcullis Demo/CN=${name}`].join('\t') + '\n');
  return { certFile, keyFile };
}

/** The PKI of a benchmark: server certificate and the ECDSA and RSA clients (responders started unless `responders: false`). */
export interface BenchPki {
  pki: OpensslDemoPki;
  server: DemoCertificate;
  ecLeaf: DemoCertificate;
  clients: { ecdsa: ClientFiles; rsa: ClientFiles };
}

/** Creates the PKI in `dir` (which must exist), issues the server and client certificates and starts the responders. */
export async function benchPki(dir: string, options: { rsa?: boolean; responders?: boolean } = {}): Promise<BenchPki> {
  const pki = await OpensslDemoPki.create({ dir, nextUpdateMinutes: 60 });
  onAbort(() => pki.killResponders());
  try {
    const server = await pki.issueServer('server', ['localhost']);
    const ecLeaf = await pki.issueLeaf('ecdsa-client');
    const ecdsa = { certFile: await pki.writeChain(ecLeaf), keyFile: ecLeaf.keyFile };
    let rsa = ecdsa;
    if (options.rsa !== false) {
      const rsaLeaf = await issueRsaLeaf(pki, 'rsa-client');
      rsa = { certFile: await pki.writeChain({ ...ecLeaf, name: 'rsa-client', certFile: rsaLeaf.certFile }), keyFile: rsaLeaf.keyFile };
    }
    if (options.responders !== false) await pki.startResponders();
    return { pki, server, ecLeaf, clients: { ecdsa, rsa } };
  } catch (e) {
    await pki.close();
    throw e;
  }
}

/** One distribution of the benchmark gateway. */
export interface BenchDistribution {
  name: string;
  port: number;
  /** Attach the KVS-lookup function (examples/functions/kvs-serial-revocation.js). */
  fn: boolean;
  /** OCSP on (trust store `bench-ocsp`) or off (`bench-no-ocsp`). */
  ocsp: boolean;
  /** `viewerMtls.sessionResumption` (tickets and session cache on). */
  tickets?: boolean;
}

/**
 * Writes `DIR/portcullis.yaml` (and `DIR/revoked.json` with `kvsKeys` random 16-hex keys,
 * `DIR/fn.js`) for `portcullis serve`: `workers`, admin on `adminPort` with `token`,
 * connection log to `DIR/connections.jsonl`, two trust stores on the PKI's root (with
 * and without OCSP), the `revoked` KVS, the published function, and `distributions`
 * proxying to `originPort`. The PKI must be in `DIR/pki`. Returns the config path.
 */
export async function writeGatewayConfig(dir: string, o: {
  workers: number; adminPort: number; token: string; originPort: number; kvsKeys: number; distributions: BenchDistribution[]; ocsp?: Record<string, number | boolean>;
  /** Data directory relative to `dir`; default `./data`. A fresh one per gateway start avoids re-applying a changed import file. */
  dataDir?: string;
}): Promise<string> {
  const data = Array.from({ length: o.kvsKeys }, () => ({ key: randomBytes(8).toString('hex'), value: 'revoked' }));
  await writeFile(join(dir, 'revoked.json'), JSON.stringify({ data }));
  await copyFile(join(root, 'examples/functions/kvs-serial-revocation.js'), join(dir, 'fn.js'));
  const dist = (d: BenchDistribution): string => `    - name: ${d.name}
      listen: 127.0.0.1:${d.port}
      certificates:
        - certFile: ./pki/server.pem
          keyFile: ./pki/server.key
      origin:
        url: http://127.0.0.1:${o.originPort}
      viewerMtls:
        mode: required
        trustStore: ${d.ocsp ? 'bench-ocsp' : 'bench-no-ocsp'}
${d.tickets ? '        sessionResumption: true\n' : ''}${d.fn ? '      connectionFunction: kvs-serial-revocation\n' : ''}`;
  const ocsp = o.ocsp ? `ocsp:\n${Object.entries(o.ocsp).map(([k, v]) => `  ${k}: ${v}`).join('\n')}\n` : '';
  const file = join(dir, 'portcullis.yaml');
  await writeFile(file, `dataDir: ${o.dataDir ?? './data'}
workers: ${o.workers}
admin:
  listen: 127.0.0.1:${o.adminPort}
  token: ${o.token}
logging:
  level: warn
  connectionLog: ./connections.jsonl
${ocsp}resources:
  trustStores:
    - name: bench-ocsp
      caBundleFile: ./pki/root.pem
      useClientCertificateOcspEndpoint: true
    - name: bench-no-ocsp
      caBundleFile: ./pki/root.pem
      useClientCertificateOcspEndpoint: false
  keyValueStores:
    - name: revoked
      importFile: ./revoked.json
  connectionFunctions:
    - name: kvs-serial-revocation
      codeFile: ./fn.js
      keyValueStore: revoked
      publish: true
  distributions:
${o.distributions.map(dist).join('')}`);
  return file;
}
