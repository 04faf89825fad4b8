/**
 * EdgeState: the in-memory replica of what the data path needs from the store —
 * distributions (with a TLS SecureContext each) and trust stores (a TrustAnchorSet
 * each) — loaded in one consistent read at start and kept current from the change
 * feed (DESIGN: no database call during a handshake). Server certificate and key files
 * are watched; a changed file rebuilds the distribution's context, and a file that does
 * not load keeps the previous context (logged). Every change replaces whole entries, so
 * a connection that already picked an entry keeps using it.
 *
 * A distribution is never left out because its TLS material does not load: it stays in
 * the replica without a context (`context` undefined, `unavailableReason` set), so SNI
 * routing still sees it and refuses the connections that select it instead of letting
 * them fall through to another distribution of the same listen address (fail closed).
 */
import { readFile } from 'node:fs/promises';
import { watchFile, unwatchFile, type Stats } from 'node:fs';
import { X509Certificate, createHash, createPrivateKey } from 'node:crypto';
import tls, { type SecureContext, type SecureContextOptions } from 'node:tls';
import { constants as cryptoConstants } from 'node:crypto';
import type { Logger } from 'pino';
import { parseTrustStoreBundle, toPem, type TrustAnchorSet } from '../pki/index.js';
import { subscribeChanges, type ChangeRecord, type ChangeSubscription, type ResourceRecord, type Store } from '../store/index.js';
import type { DistributionDocument, TrustStoreDocument } from '../resources/types.js';

/** One trust store as the edge holds it. */
export interface TrustStoreEntry {
  readonly id: string;
  readonly name: string;
  readonly etag: string;
  readonly document: TrustStoreDocument;
  /** The anchors, when the trust store is `active` and its bundle parsed; undefined otherwise. */
  readonly anchors: TrustAnchorSet | undefined;
  /** Why `anchors` is undefined (status not active, or the bundle did not parse). */
  readonly unavailableReason: string | undefined;
}

/** One distribution as the edge holds it: the document plus its TLS material. */
export interface DistributionEntry {
  readonly id: string;
  readonly name: string;
  readonly etag: string;
  readonly createdAt: number;
  readonly document: DistributionDocument;
  /** `document.aliases` (for SNI, see sni.ts). */
  readonly aliases: readonly string[];
  /** The listen address in effect (`listenOverrides[name]` or `document.listen`). */
  readonly listen: string;
  /**
   * The context the SNI callback hands out for this distribution; undefined when its TLS
   * material never loaded — connections that select it are refused (see `unavailableReason`).
   */
  readonly context: SecureContext | undefined;
  /** The options `context` was built from (a listener whose default this distribution is calls `setSecureContext` with them). */
  readonly contextOptions: SecureContextOptions | undefined;
  /** Why `context` is undefined (e.g. the key does not match the certificate, a file is missing); undefined when it is set. */
  readonly unavailableReason: string | undefined;
}

/** Options of {@link EdgeState.start}. */
export interface EdgeStateOptions {
  store: Store;
  logger: Logger;
  /** Distribution name → `host:port` to listen on instead of the document's `listen` (tests, one-port dev setups). */
  listenOverrides?: Record<string, string>;
  /** Called after every applied change (listeners reconcile). */
  onChange?: () => void;
  /** fs.watchFile polling interval for certificate and key files, ms (default 250). */
  certificatePollMs?: number;
}

/** One id for TLS sessions of this product (OpenSSL session id context; identical in every process). */
export const SESSION_ID_CONTEXT = createHash('sha1').update('portcullis-edge').digest('hex').slice(0, 32);

/**
 * `secureOptions` for a context: no session tickets (and so, in TLS 1.3, only stateful
 * tickets that nobody can redeem: Node's server session cache has no store unless a
 * `resumeSession` listener exists, which the edge never adds) unless `sessionResumption`.
 */
export function secureOptionsFor(sessionResumption: boolean): number {
  return sessionResumption ? 0 : cryptoConstants.SSL_OP_NO_TICKET;
}

/** The replica. Create with {@link EdgeState.start}; {@link stop} when done. */
export class EdgeState {
  readonly #trustStores = new Map<string, TrustStoreEntry>();
  readonly #distributions = new Map<string, DistributionEntry>();
  /** File path → distributions using it, and its fs.watchFile listener. */
  readonly #watched = new Map<string, { users: Set<string>; listener: (curr: Stats, prev: Stats) => void }>();
  readonly #rebuildTimers = new Map<string, NodeJS.Timeout>();
  #subscription: ChangeSubscription | undefined;
  #stopped = false;
  /** Serialises applies (change feed and file reloads) so entries are replaced in order. */
  #queue: Promise<void> = Promise.resolve();

  private constructor(private readonly opts: EdgeStateOptions) {}

  /**
   * Loads every trust store and distribution in one consistent read, builds the TLS
   * contexts, and follows the change feed from there. A distribution whose certificate
   * files do not load is kept without a context (its connections are refused, logged)
   * until a change or a file change fixes it.
   * @throws StoreUnavailableError when the store cannot be read.
   */
  static async start(opts: EdgeStateOptions): Promise<EdgeState> {
    const state = new EdgeState(opts);
    const seq = await state.#reload();
    state.#subscription = subscribeChanges(opts.store, {
      fromSeq: seq,
      onChanges: (changes) => state.#enqueue(() => state.#apply(changes)),
      onReset: () => state.#enqueueValue(() => state.#reload()),
      onError: (err) => opts.logger.error({ err }, 'edge: change feed failed; serving the last applied state'),
    });
    return state;
  }

  /** The distribution named `name`, or undefined. */
  distribution(name: string): DistributionEntry | undefined {
    return this.#distributions.get(name);
  }

  /** Every loaded distribution, ordered by creation time then name (listener order). */
  distributions(): DistributionEntry[] {
    return [...this.#distributions.values()].sort((a, b) => a.createdAt - b.createdAt || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** The trust store named `name`, or undefined. */
  trustStore(name: string): TrustStoreEntry | undefined {
    return this.#trustStores.get(name);
  }

  /** The last change sequence applied. */
  get sequence(): number {
    return this.#subscription?.lastSeq ?? 0;
  }

  /** True while the change feed cannot be read (the last applied state keeps serving). */
  get degraded(): boolean {
    return this.#subscription?.degraded ?? false;
  }

  /** Resolves once every change up to `seq` has been applied (tests, admin "wait"). */
  async waitFor(seq: number, timeoutMs?: number): Promise<void> {
    if (!this.#subscription) throw new Error('edge state not started');
    await this.#subscription.waitFor(seq, timeoutMs);
    await this.#queue;
  }

  /** Stops following the store and the files. Idempotent. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#subscription?.stop();
    for (const t of this.#rebuildTimers.values()) clearTimeout(t);
    this.#rebuildTimers.clear();
    for (const [path, w] of this.#watched) unwatchFile(path, w.listener);
    this.#watched.clear();
  }

  #enqueue(fn: () => Promise<void>): Promise<void> {
    const p = this.#queue.then(fn);
    this.#queue = p.catch(() => {});
    return p;
  }

  #enqueueValue<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#queue.then(fn);
    this.#queue = p.then(() => {}, () => {});
    return p;
  }

  async #reload(): Promise<number> {
    const { seq, trustStores, distributions } = await this.opts.store.readConsistent(async (s) => ({
      seq: await s.latestSequence(),
      trustStores: await s.trustStores.list(),
      distributions: await s.distributions.list(),
    }));
    const tsNames = new Set(trustStores.map((r) => r.name));
    for (const name of this.#trustStores.keys()) if (!tsNames.has(name)) this.#trustStores.delete(name);
    for (const r of trustStores) this.#setTrustStore(r as ResourceRecord<TrustStoreDocument>);
    const dNames = new Set(distributions.map((r) => r.name));
    for (const name of [...this.#distributions.keys()]) if (!dNames.has(name)) this.#removeDistribution(name);
    await Promise.all(distributions.map((r) => this.#setDistribution(r as ResourceRecord<DistributionDocument>)));
    this.opts.onChange?.();
    return seq;
  }

  async #apply(changes: ChangeRecord[]): Promise<void> {
    // Last change per resource wins within a batch; trust stores first (contexts read them).
    const ts = new Map<string, ChangeRecord>();
    const ds = new Map<string, ChangeRecord>();
    for (const c of changes) {
      if (c.entity === 'trust-store') ts.set(c.name, c);
      else if (c.entity === 'distribution') ds.set(c.name, c);
    }
    if (ts.size === 0 && ds.size === 0) return;
    const rebuild = new Set<string>();
    for (const [name, c] of ts) {
      if (c.op === 'upsert') this.#setTrustStore(c.record as ResourceRecord<TrustStoreDocument>);
      else this.#trustStores.delete(name);
      // Distributions advertising this trust store's CA names need a new context.
      for (const d of this.#distributions.values()) {
        if (d.document.viewerMtls.trustStore === name && d.document.viewerMtls.advertiseTrustStoreCaNames) rebuild.add(d.name);
      }
    }
    const work: Promise<void>[] = [];
    for (const [name, c] of ds) {
      rebuild.delete(name);
      if (c.op === 'upsert') work.push(this.#setDistribution(c.record as ResourceRecord<DistributionDocument>));
      else this.#removeDistribution(name);
    }
    for (const name of rebuild) {
      const d = this.#distributions.get(name);
      if (d) work.push(this.#setDistribution(d));
    }
    await Promise.all(work);
    this.opts.onChange?.();
  }

  #setTrustStore(r: ResourceRecord<TrustStoreDocument>): void {
    let anchors: TrustAnchorSet | undefined;
    let unavailableReason: string | undefined;
    if (r.document.status !== 'active') {
      unavailableReason = `trust store "${r.name}" is ${r.document.status}${r.document.statusReason ? `: ${r.document.statusReason}` : ''}`;
    } else {
      try {
        anchors = parseTrustStoreBundle(r.document.caBundlePem);
      } catch (err) {
        unavailableReason = `trust store "${r.name}" bundle does not load: ${(err as Error).message}`;
        this.opts.logger.error({ err, trustStore: r.name }, 'edge: trust store bundle does not load');
      }
    }
    this.#trustStores.set(r.name, { id: r.id, name: r.name, etag: r.etag, document: r.document, anchors, unavailableReason });
  }

  /**
   * Builds the entry's context from its files. When they do not load (logged): a previous
   * entry with a context keeps its context — with the new document, so decisions (trust
   * store, mode, function, origin) always follow the current configuration —, and a
   * distribution that never had a context is held without one, so that connections
   * selecting it are refused rather than served by another distribution.
   */
  async #setDistribution(r: Pick<ResourceRecord<DistributionDocument>, 'id' | 'name' | 'etag' | 'createdAt' | 'document'>): Promise<void> {
    const doc = r.document;
    const listen = this.opts.listenOverrides?.[r.name] ?? doc.listen;
    const base = { id: r.id, name: r.name, etag: r.etag, createdAt: r.createdAt, document: doc, aliases: doc.aliases, listen };
    try {
      const { context, contextOptions } = await this.#buildContext(doc);
      if (this.#stopped) return;
      const previous = this.#distributions.get(r.name);
      this.#distributions.set(r.name, { ...base, context, contextOptions, unavailableReason: undefined });
      this.#watchFiles(r.name, doc, previous?.document);
    } catch (err) {
      if (this.#stopped) return;
      const kept = this.#distributions.get(r.name);
      const why = `TLS material does not load: ${(err as Error).message}`;
      if (kept?.context) {
        this.opts.logger.error({ err, distribution: r.name }, 'edge: new TLS material for the distribution does not load; keeping the previous context');
        if (kept.document !== doc || kept.listen !== listen || kept.etag !== r.etag) {
          this.#distributions.set(r.name, { ...base, context: kept.context, contextOptions: kept.contextOptions, unavailableReason: undefined });
        }
      } else {
        this.opts.logger.error({ err, distribution: r.name }, 'edge: TLS material for the distribution does not load; connections that select it are refused');
        this.#distributions.set(r.name, { ...base, context: undefined, contextOptions: undefined, unavailableReason: why });
      }
      // Watch the files anyway so that fixing them brings the distribution up.
      this.#watchFiles(r.name, doc, kept?.document);
    }
  }

  async #buildContext(doc: DistributionDocument): Promise<{ context: SecureContext; contextOptions: SecureContextOptions }> {
    if (doc.certificates.length === 0) throw new Error('the distribution has no server certificate');
    const files = await Promise.all(doc.certificates.map(async (c) => ({
      cert: await readFile(c.certFile, 'utf8'),
      key: await readFile(c.keyFile, 'utf8'),
      certFile: c.certFile,
      keyFile: c.keyFile,
    })));
    // OpenSSL keeps one certificate and one key per key type, so a key of another type
    // than its certificate (an RSA key for an ECDSA certificate) is accepted by
    // createSecureContext and only fails handshakes: check every pair here.
    for (const f of files) {
      let matches: boolean;
      try {
        matches = new X509Certificate(f.cert).checkPrivateKey(createPrivateKey(f.key));
      } catch (err) {
        throw new Error(`certificate ${f.certFile} or key ${f.keyFile} does not load: ${(err as Error).message}`);
      }
      if (!matches) throw new Error(`key ${f.keyFile} does not match certificate ${f.certFile}`);
    }
    let ca: string[] | undefined;
    if (doc.viewerMtls.advertiseTrustStoreCaNames && doc.viewerMtls.mode !== 'passthrough' && doc.viewerMtls.trustStore) {
      const anchors = this.#trustStores.get(doc.viewerMtls.trustStore)?.anchors;
      // `ca` makes OpenSSL list the anchors' subject names in the CertificateRequest
      // (RFC 8446 4.3.2 certificate_authorities). Without it the list is empty.
      if (anchors) ca = anchors.anchors.map((a) => toPem(a.der));
    }
    const contextOptions: SecureContextOptions = {
      cert: files.map((f) => f.cert),
      key: files.map((f) => f.key),
      ...(ca ? { ca } : {}),
      minVersion: 'TLSv1.2',
      secureOptions: secureOptionsFor(doc.viewerMtls.sessionResumption),
      sessionIdContext: SESSION_ID_CONTEXT,
    };
    // Throws for a bad PEM, a key that does not match its certificate, …
    const context = tls.createSecureContext(contextOptions);
    return { context, contextOptions };
  }

  #removeDistribution(name: string): void {
    const d = this.#distributions.get(name);
    this.#distributions.delete(name);
    this.#watchFiles(name, undefined, d?.document);
  }

  #watchFiles(name: string, doc: DistributionDocument | undefined, previous: DistributionDocument | undefined): void {
    if (this.#stopped) return;
    const want = new Set(doc ? doc.certificates.flatMap((c) => [c.certFile, c.keyFile]) : []);
    const had = new Set(previous ? previous.certificates.flatMap((c) => [c.certFile, c.keyFile]) : []);
    for (const path of had) {
      if (want.has(path)) continue;
      const w = this.#watched.get(path);
      w?.users.delete(name);
      if (w && w.users.size === 0) {
        this.#watched.delete(path);
        unwatchFile(path, w.listener);
      }
    }
    for (const path of want) {
      let w = this.#watched.get(path);
      if (!w) {
        const users = new Set<string>();
        const listener = (curr: Stats, prev: Stats): void => {
          if (curr.mtimeMs === prev.mtimeMs && curr.size === prev.size && curr.ino === prev.ino) return;
          for (const user of users) this.#scheduleRebuild(user);
        };
        w = { users, listener };
        this.#watched.set(path, w);
        watchFile(path, { interval: this.opts.certificatePollMs ?? 250, persistent: false }, listener);
      }
      w.users.add(name);
    }
  }

  #scheduleRebuild(name: string): void {
    if (this.#stopped || this.#rebuildTimers.has(name)) return;
    // Debounce: editors and `cp` write a file in several steps; a cert and its key change together.
    const t = setTimeout(() => {
      this.#rebuildTimers.delete(name);
      void this.#enqueue(async () => {
        const before = this.#distributions.get(name);
        if (!before) return;
        await this.#setDistribution(before);
        const after = this.#distributions.get(name);
        if (after && after !== before) {
          if (after.context && after.context !== before.context) this.opts.logger.info({ distribution: name }, 'edge: server certificate files reloaded');
          this.opts.onChange?.();
        }
      });
    }, 150);
    t.unref();
    this.#rebuildTimers.set(name, t);
  }
}
