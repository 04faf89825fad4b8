import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, appendFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { randomInt } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** One certificate made by {@link OpensslDemoPki}: file paths and its serial (uppercase hex, as in index.txt). */
export interface DemoCertificate {
  name: string;
  certFile: string;
  keyFile: string;
  serialHex: string;
  subject: string;
  notAfter: Date;
}

/** A running `openssl ocsp` responder. */
export interface DemoResponder {
  url: string;
  port: number;
  process: ChildProcess;
}

/** Options of {@link OpensslDemoPki.create}. */
export interface OpensslDemoPkiOptions {
  /** Directory for keys, certificates and index files; default: a new temporary directory. */
  dir?: string;
  /** `nextUpdate` distance of responses in minutes (openssl ocsp -nmin); default 5. */
  nextUpdateMinutes?: number;
}

/**
 * A throwaway two-level PKI made with the `openssl` command line, answered by two real
 * `openssl ocsp` responders (one for certificates issued by the root, one for those
 * issued by the intermediate). `openssl ocsp` reads its index once, so {@link revoke}
 * restarts the affected responder on the same port. Used by `portcullis ocsp check --demo` (the quickstart)
 * and by integration tests. Requires `openssl` (OpenSSL 3) on PATH.
 *
 * Layout: `root` (trust anchor) → `intermediate` (AIA OCSP → root responder) → leaves
 * (AIA OCSP → intermediate responder), ECDSA P-256, leaves with the clientAuth EKU.
 * Note: `openssl ocsp -port` binds every interface; the URLs use 127.0.0.1.
 */
export class OpensslDemoPki {
  readonly dir: string;
  readonly #nmin: number;
  readonly #ownsDir: boolean;
  readonly rootPort: number;
  readonly intermediatePort: number;
  root!: DemoCertificate;
  intermediate!: DemoCertificate;
  readonly leaves = new Map<string, DemoCertificate>();
  readonly #responders: DemoResponder[] = [];
  #serial = 0x1000;
  #untrustedRoot: DemoCertificate | undefined;
  readonly #issuers = new Map<DemoCertificate, DemoCertificate>();

  private constructor(dir: string, ownsDir: boolean, nmin: number, rootPort: number, intermediatePort: number) {
    this.dir = dir;
    this.#ownsDir = ownsDir;
    this.#nmin = nmin;
    this.rootPort = rootPort;
    this.intermediatePort = intermediatePort;
  }

  /** Creates root and intermediate CA and their (empty) responder indexes; starts no responder. */
  static async create(options: OpensslDemoPkiOptions = {}): Promise<OpensslDemoPki> {
    const dir = options.dir ?? await mkdtemp(join(tmpdir(), 'portcullis-demo-'));
    const pki = new OpensslDemoPki(dir, !options.dir, options.nextUpdateMinutes ?? 5, await freePort(), await freePort());
    await writeFile(join(dir, 'root-index.txt'), '');
    await writeFile(join(dir, 'intermediate-index.txt'), '');
    pki.root = await pki.#issue('root', '/C=US/O=Portcullis Demo/CN=Portcullis Demo Root CA', undefined, [
      'basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
      'subjectKeyIdentifier=hash',
    ], 3650);
    pki.intermediate = await pki.#issue('intermediate', '/C=US/O=Portcullis Demo/CN=Portcullis Demo Intermediate CA', pki.root, [
      'basicConstraints=critical,CA:TRUE,pathlen:0', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
      'subjectKeyIdentifier=hash', 'authorityKeyIdentifier=keyid',
      `authorityInfoAccess=OCSP;URI:${pki.rootResponderUrl}`,
    ], 1825);
    return pki;
  }

  get rootResponderUrl(): string {
    return `http://127.0.0.1:${this.rootPort}/`;
  }

  get intermediateResponderUrl(): string {
    return `http://127.0.0.1:${this.intermediatePort}/`;
  }

  /** Issues a client leaf under the intermediate with an OCSP URL (unless `ocsp: false`). */
  async issueLeaf(name: string, options: { ocsp?: boolean } = {}): Promise<DemoCertificate> {
    const ext = [
      'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth',
      'subjectKeyIdentifier=hash', 'authorityKeyIdentifier=keyid', `subjectAltName=DNS:${name}.demo.example`,
    ];
    if (options.ocsp !== false) ext.push(`authorityInfoAccess=OCSP;URI:${this.intermediateResponderUrl}`);
    const leaf = await this.#issue(name, `/C=US/O=Portcullis Demo/CN=${name}`, this.intermediate, ext, 90);
    this.leaves.set(name, leaf);
    return leaf;
  }

  /**
   * Issues a client leaf under the intermediate (with its OCSP URL) whose validity
   * ended `daysAgo` days ago (default 1; it started 30 days before that). Signed with
   * `openssl ca`, the OpenSSL 3.0 command that takes both dates.
   */
  async issueExpiredLeaf(name: string, daysAgo = 1): Promise<DemoCertificate> {
    const ext = [
      'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth',
      'subjectKeyIdentifier=hash', 'authorityKeyIdentifier=keyid', `subjectAltName=DNS:${name}.demo.example`,
      `authorityInfoAccess=OCSP;URI:${this.intermediateResponderUrl}`,
    ];
    const notAfter = new Date(Date.now() - daysAgo * 86_400_000);
    const notBefore = new Date(notAfter.getTime() - 30 * 86_400_000);
    const leaf = await this.#issue(name, `/C=US/O=Portcullis Demo/CN=${name}`, this.intermediate, ext, { notBefore, notAfter });
    this.leaves.set(name, leaf);
    return leaf;
  }

  /**
   * Issues a client leaf (clientAuth, no OCSP URL) under a separate self-signed root
   * that the demo's trust store does not hold; that root is made on first use
   * (`untrusted-root.pem`). {@link writeChain} writes the leaf, then that root.
   */
  async issueUntrustedLeaf(name: string): Promise<DemoCertificate> {
    this.#untrustedRoot ??= await this.#issue('untrusted-root', '/C=US/O=Somebody Else/CN=Untrusted Demo Root CA', undefined, [
      'basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature', 'subjectKeyIdentifier=hash',
    ], 3650);
    const leaf = await this.#issue(name, `/C=US/O=Somebody Else/CN=${name}`, this.#untrustedRoot, [
      'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth',
      'subjectKeyIdentifier=hash', 'authorityKeyIdentifier=keyid', `subjectAltName=DNS:${name}.untrusted.example`,
    ], 90);
    this.leaves.set(name, leaf);
    return leaf;
  }

  /**
   * Issues a TLS server certificate under the intermediate (serverAuth EKU, SAN DNS
   * names plus IP 127.0.0.1), for the gateway's listener in the demo. The certificate
   * file holds the server chain (server, then intermediate) so clients that trust the
   * root can verify it.
   */
  async issueServer(name: string, dnsNames: readonly string[] = ['localhost']): Promise<DemoCertificate> {
    const san = [...dnsNames.map((d) => `DNS:${d}`), 'IP:127.0.0.1'].join(',');
    const cert = await this.#issue(name, `/C=US/O=Portcullis Demo/CN=${dnsNames[0] ?? name}`, this.intermediate, [
      'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=serverAuth',
      'subjectKeyIdentifier=hash', 'authorityKeyIdentifier=keyid', `subjectAltName=${san}`,
    ], 90);
    await writeFile(cert.certFile, (await readFile(cert.certFile, 'utf8')) + (await readFile(this.intermediate.certFile, 'utf8')));
    return cert;
  }

  /** Writes the chain the client presents (leaf, then its issuer: the intermediate, or the untrusted root) and returns its path. */
  async writeChain(leaf: DemoCertificate): Promise<string> {
    const file = join(this.dir, `${leaf.name}-chain.pem`);
    const issuer = this.#issuers.get(leaf) ?? this.intermediate;
    await writeFile(file, (await readFile(leaf.certFile, 'utf8')) + (await readFile(issuer.certFile, 'utf8')));
    return file;
  }

  /** Path of the trust-store bundle (the root certificate). */
  get trustStoreFile(): string {
    return this.root.certFile;
  }

  /**
   * Marks `cert` revoked in its issuer's responder index (reason keyCompromise).
   * When the responders are running, the issuer's responder is restarted on the same
   * port so that it answers from the new index.
   */
  async revoke(cert: DemoCertificate, reason = 'keyCompromise'): Promise<void> {
    const file = join(this.dir, cert === this.intermediate ? 'root-index.txt' : 'intermediate-index.txt');
    const lines = (await readFile(file, 'utf8')).split('\n');
    const revokedAt = opensslTime(new Date(Date.now() - 60_000));
    const out = lines.map((l) => {
      const f = l.split('\t');
      if (f[3] !== cert.serialHex || f[0] !== 'V') return l;
      return ['R', f[1], `${revokedAt},${reason}`, f[3], f[4], f[5]].join('\t');
    });
    await writeFile(file, out.join('\n'));
    const isRoot = cert === this.intermediate;
    const i = this.#responders.findIndex((r) => r.port === (isRoot ? this.rootPort : this.intermediatePort));
    if (i >= 0) {
      await stopResponder(this.#responders[i] as DemoResponder);
      this.#responders[i] = await this.#startResponder(isRoot ? this.root : this.intermediate, isRoot ? 'root-index.txt' : 'intermediate-index.txt', isRoot ? this.rootPort : this.intermediatePort);
    }
  }

  /** Starts both responders (root's and intermediate's) and waits until they accept connections. */
  async startResponders(): Promise<void> {
    this.#responders.push(await this.#startResponder(this.root, 'root-index.txt', this.rootPort));
    this.#responders.push(await this.#startResponder(this.intermediate, 'intermediate-index.txt', this.intermediatePort));
  }

  async #startResponder(ca: DemoCertificate, index: string, port: number): Promise<DemoResponder> {
    const child = spawn('openssl', [
      'ocsp', '-index', join(this.dir, index), '-port', String(port), '-rsigner', ca.certFile, '-rkey', ca.keyFile,
      '-CA', ca.certFile, '-nmin', String(this.#nmin), '-ignore_err',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      let stderr = '';
      const timer = setTimeout(() => reject(new Error(`openssl ocsp did not start within 10 s: ${stderr.trim()}`)), 10_000);
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (stderr.includes('waiting for OCSP client connections')) { clearTimeout(timer); resolve(); }
      });
      child.once('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`openssl ocsp exited with ${code ?? signal}: ${stderr.trim()}`)); });
      child.once('error', (e) => { clearTimeout(timer); reject(e); });
    });
    child.removeAllListeners('exit');
    return { url: `http://127.0.0.1:${port}/`, port, process: child };
  }

  /** Sends `signal` (default SIGKILL) to every responder still running, synchronously (for a process `exit` handler). */
  killResponders(signal: NodeJS.Signals = 'SIGKILL'): void {
    for (const r of this.#responders) {
      if (r.process.exitCode === null && r.process.signalCode === null) r.process.kill(signal);
    }
  }

  /** Stops the responders and removes the directory when it was created by {@link create}. */
  async close(): Promise<void> {
    await Promise.all(this.#responders.splice(0).map(stopResponder));
    if (this.#ownsDir) await rm(this.dir, { recursive: true, force: true });
  }

  /** `validity`: days from now, or explicit dates (then signed with `openssl ca`, which needs an issuer). */
  async #issue(
    name: string, subject: string, issuer: DemoCertificate | undefined, ext: string[], validity: number | { notBefore: Date; notAfter: Date },
  ): Promise<DemoCertificate> {
    const keyFile = join(this.dir, `${name}.key`);
    const certFile = join(this.dir, `${name}.pem`);
    const extFile = join(this.dir, `${name}.ext`);
    await writeFile(extFile, ext.join('\n') + '\n');
    const serialHex = (this.#serial++).toString(16).toUpperCase().padStart(4, '0');
    await run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyFile]);
    const csr = join(this.dir, `${name}.csr`);
    await run('openssl', ['req', '-new', '-key', keyFile, '-subj', subject, '-out', csr]);
    if (typeof validity === 'number') {
      const signArgs = issuer
        ? ['-CA', issuer.certFile, '-CAkey', issuer.keyFile]
        : ['-signkey', keyFile];
      await run('openssl', ['x509', '-req', '-in', csr, ...signArgs, '-set_serial', `0x${serialHex}`, '-days', String(validity),
        '-sha256', '-extfile', extFile, '-out', certFile]);
    } else {
      if (!issuer) throw new Error('a certificate with explicit dates needs an issuer');
      await this.#signWithDates(name, csr, issuer, serialHex, validity, extFile, certFile);
    }
    const { stdout } = await run('openssl', ['x509', '-in', certFile, '-noout', '-enddate']);
    const notAfter = new Date(stdout.trim().replace(/^notAfter=/, ''));
    const cert: DemoCertificate = { name, certFile, keyFile, serialHex, subject, notAfter };
    if (issuer) this.#issuers.set(cert, issuer);
    if (issuer === this.root || (issuer && issuer === this.intermediate)) {
      const index = join(this.dir, issuer === this.root ? 'root-index.txt' : 'intermediate-index.txt');
      await appendFile(index, ['V', opensslTime(notAfter), '', serialHex, 'unknown', subject].join('\t') + '\n');
    }
    return cert;
  }

  /** `openssl ca` with a throwaway database of its own (the responder indexes are written by {@link #issue}). */
  async #signWithDates(
    name: string, csr: string, issuer: DemoCertificate, serialHex: string, dates: { notBefore: Date; notAfter: Date },
    extFile: string, certFile: string,
  ): Promise<void> {
    const caDir = await mkdtemp(join(this.dir, `.ca-${name}-`));
    try {
      await writeFile(join(caDir, 'index.txt'), '');
      await writeFile(join(caDir, 'serial'), `${serialHex}\n`);
      const cnf = join(caDir, 'ca.cnf');
      await writeFile(cnf, [
        '[ ca ]', 'default_ca = demo', '[ demo ]', `dir = ${resolve(caDir)}`, 'database = $dir/index.txt', 'new_certs_dir = $dir',
        'serial = $dir/serial',
        'default_md = sha256', 'policy = anything', 'unique_subject = no', 'email_in_dn = no', '[ anything ]', 'commonName = supplied', '',
      ].join('\n'));
      await run('openssl', ['ca', '-batch', '-config', cnf, '-cert', issuer.certFile, '-keyfile', issuer.keyFile, '-in', csr,
        '-out', certFile, '-startdate', opensslTime(dates.notBefore), '-enddate', opensslTime(dates.notAfter), '-extfile', extFile,
        '-notext', '-preserveDN']);
    } finally {
      await rm(caDir, { recursive: true, force: true });
    }
  }
}

function stopResponder(r: DemoResponder): Promise<void> {
  return new Promise<void>((resolve) => {
    if (r.process.exitCode !== null || r.process.signalCode !== null) return resolve();
    r.process.once('exit', () => resolve());
    r.process.kill('SIGTERM');
  });
}

/** `YYMMDDHHMMSSZ` as in an openssl CA index. */
function opensslTime(d: Date): string {
  return d.toISOString().replace(/^\d\d(\d\d)-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d).*$/, '$1$2$3$4$5$6Z');
}

/** Lowest and highest port {@link freePort} picks: below Linux's default ephemeral range (32768–60999). */
const PORT_RANGE = { low: 20000, high: 32000 } as const;

/**
 * A TCP port that is free on 127.0.0.1 right now, for a server that can only be told
 * a port number (`openssl ocsp -port`). Picked at random *below* the kernel's ephemeral
 * range, so that no outgoing connection of this or another process can take it between
 * this check and the server's bind; candidates that are in use are skipped.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = PORT_RANGE.low + randomInt(PORT_RANGE.high - PORT_RANGE.low);
    const free = await new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error(`no free TCP port found between ${PORT_RANGE.low} and ${PORT_RANGE.high}`);
}
