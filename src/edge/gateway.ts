/**
 * The Gateway: opens one `tls.Server` per listen address of the distributions in the
 * store, keeps them in line with the store (EdgeState), and runs the gate on every
 * connection. Works the same inside node:cluster workers (listen handles are shared
 * through the primary; every worker holds its own EdgeState and OCSP cache).
 */
import tls, { type SecureContextOptions, type TLSSocket } from 'node:tls';
import { isIPv4, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { InvalidArgumentError } from '../errors.js';
import type { RevocationChecker } from '../revocation/index.js';
import type { Store } from '../store/index.js';
import { compareListenSockets, resolveListenAddress as resolveSharedListenAddress, type ListenSocket } from '../resources/index.js';
import { ConnectionLogWriter, connectionStatus, emptyLogLine, type ConnectionLogTap } from './connection-log.js';
import type { ConnectionFailureCode } from './decision.js';
import { Gate, type GateListener } from './gate.js';
import { createEdgeMetrics, type EdgeMetrics } from './metrics.js';
import { selectBySni } from './sni.js';
import { EdgeState, SESSION_ID_CONTEXT, secureOptionsFor, type DistributionEntry } from './state.js';
import type { ConnectionHandler, FunctionInvoker } from './types.js';
import { newConnectionId } from '../functions/index.js';

/** Options of {@link Gateway.start}. */
export interface GatewayOptions {
  store: Store;
  /** Runs LIVE connection functions (the functions/ FunctionHost). */
  functions: FunctionInvoker;
  /** The process's revocation checker (one per process: it owns the shared OCSP cache). */
  revocation: RevocationChecker;
  /** Receives admitted connections (the proxy). Closed by {@link Gateway.close}. */
  handler: ConnectionHandler;
  /** Where connection-log lines go (stdout, or a file stream opened with flags `a`). Not closed by the gateway. */
  connectionLog: NodeJS.WritableStream;
  /** Live viewers of the connection log (the admin API's stream); every written line is published to it. */
  connectionLogTap?: ConnectionLogTap;
  logger: Logger;
  /** Registry for the edge metrics (see metrics.ts); default: a private registry. */
  metrics?: Registry;
  /** Distribution name → `host:port` to listen on instead of the document's `listen` (e.g. `127.0.0.1:0` in tests). */
  listenOverrides?: Record<string, string>;
  /** Clock for certificate validity and the function's `Date`, ms since the epoch (default `Date.now`). */
  now?: () => number;
  /** ALPN protocols offered, server preference order (default `['h2', 'http/1.1']`, SPEC section 6). */
  alpnProtocols?: string[];
  /** Polling interval of certificate/key file watching, ms (default 250). */
  certificatePollMs?: number;
}

/** One row of {@link Gateway.listeners}. */
export interface ListenerInfo {
  distribution: string;
  /** The distribution's listen address as configured (`host:port`, after overrides). */
  address: string;
  /** The socket address bound (`ip:port` as configured, IPv6 as `[::1]:8443`; host names resolved). */
  bound: string;
  /** The port actually bound (differs from the configured one for port 0). */
  port: number;
}

/**
 * Splits `host:port` (IPv6 as `[::1]:8443`).
 * @throws InvalidArgumentError for anything else.
 */
export function parseListenAddress(address: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(address);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new InvalidArgumentError(`listen address must be host:port (IPv6 as [::1]:8443), got "${address}"`);
  return { host: (m[1] ?? m[2]) as string, port };
}

interface RawInfo {
  acceptedAt: number;
  secure: boolean;
  logged: boolean;
  timer: NodeJS.Timeout | undefined;
}

/** A listen address resolved to the socket it binds (resources/ `ListenSocket`). */
export type ResolvedListen = ListenSocket;

/**
 * resources/ `resolveListenAddress`: the socket `net.Server.listen` binds for a
 * `host:port` (so `localhost:9543` and `127.0.0.1:9543` are one listener) — the same
 * rule the DistributionService uses to refuse overlapping distributions.
 * @throws InvalidArgumentError for a malformed address; the lookup error for a name that does not resolve.
 */
export const resolveListenAddress = resolveSharedListenAddress;

/**
 * True when binding both sockets fails with EADDRINUSE although they differ (a wildcard
 * covering the other; resources/ `compareListenSockets` is `overlap`). Port 0 never overlaps.
 */
export function listenSocketsOverlap(a: ResolvedListen, b: ResolvedListen): boolean {
  return compareListenSockets(a, b) === 'overlap';
}

/** Names the distributions of one listen address for an error: `distribution "a" (listen 127.0.0.1:8443)`. */
export function describeListenGroup(dists: readonly { name: string; listen: string }[]): string {
  const listens = [...new Set(dists.map((d) => d.listen))].join(', ');
  const names = dists.map((d) => `"${d.name}"`).join(', ');
  return `${dists.length === 1 ? 'distribution' : 'distributions'} ${names} (listen ${listens})`;
}

/** A short human text for a listen error. */
export function describeListenError(err: Error & { code?: string }): string {
  switch (err.code) {
    case 'EADDRINUSE': return 'address in use';
    case 'EADDRNOTAVAIL': return 'address not available on this host';
    case 'EACCES': return 'permission denied (ports below 1024 need privileges)';
    case 'ENOTFOUND': case 'EAI_AGAIN': case 'EAI_NONAME': return `host name does not resolve (${err.code})`;
    default: return err.message;
  }
}

/**
 * The default context of a listener whose first distribution has no working TLS
 * material: no certificate, so a handshake that does not select another distribution by
 * SNI fails (no shared cipher) instead of being served by some other distribution.
 */
const NO_CERTIFICATE_OPTIONS: SecureContextOptions = Object.freeze({ minVersion: 'TLSv1.2' });

/** Why the SNI callback refused a connection (read when the handshake fails). */
interface SniRefusal {
  distribution: DistributionEntry;
  servername: string;
  reason: string;
}

/** One tls.Server and the distributions on its address. */
class Listener implements GateListener {
  readonly host: string;
  readonly configuredPort: number;
  distributions: DistributionEntry[] = [];
  sessionResumption = false;
  /** Set once bound to a single IPv4 address (see GateListener.localEndpoint). */
  localEndpoint: { ip: string; port: number } | undefined;
  readonly server: tls.Server;
  readonly #raw = new WeakMap<Socket, RawInfo>();
  readonly #sockets = new Set<Socket>();
  /** Connections the SNI callback refused (their distribution cannot serve). */
  readonly #refused = new WeakMap<TLSSocket, SniRefusal>();
  #defaultKey: unknown;
  #sharedResumptionWarned = '';

  /** @param address the resolved socket address (`ResolvedListen.key`) */
  constructor(readonly address: string, bind: ResolvedListen, private readonly gw: GatewayInternals) {
    this.host = bind.ip;
    this.configuredPort = bind.port;
    const sni = (socket: TLSSocket | undefined, servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void): void => {
      const d = selectBySni(this.distributions, servername);
      if (!d) {
        cb(new Error(`no distribution on ${this.address}`), undefined);
      } else if (!d.context) {
        // Fail closed: never hand the connection to another distribution's context.
        const reason = `distribution "${d.name}" (chosen by SNI ${JSON.stringify(servername)}) cannot serve: ${d.unavailableReason ?? 'no TLS context'}; handshake refused`;
        if (socket && typeof socket === 'object') this.#refused.set(socket, { distribution: d, servername, reason });
        cb(new Error(reason), undefined);
      } else {
        cb(null, d.context);
      }
    };
    this.server = tls.createServer({
      requestCert: true,
      // The gate validates (SPEC 2); OpenSSL's verdict is ignored.
      rejectUnauthorized: false,
      ALPNProtocols: gw.alpnProtocols,
      sessionIdContext: SESSION_ID_CONTEXT,
      // Node calls this with the TLSSocket as `this` (only when the client sent SNI; without
      // SNI the server's default context — the first distribution's — serves, see update()).
      SNICallback(this: TLSSocket | undefined, servername, cb) {
        sni(this, servername, cb);
      },
    });
    this.server.on('connection', (raw: Socket) => this.#onConnection(raw));
    this.server.on('secureConnection', (socket: TLSSocket) => {
      const raw = (socket as unknown as { _parent?: Socket })._parent;
      const info = raw ? this.#raw.get(raw) : undefined;
      let handshakeMs: number | undefined;
      if (info) {
        info.secure = true;
        if (info.timer) clearTimeout(info.timer);
        handshakeMs = performance.now() - info.acceptedAt;
      }
      void gw.gate.run(socket, this, handshakeMs);
    });
    this.server.on('tlsClientError', (err: Error & { code?: string }, socket: TLSSocket) => {
      const raw = (socket as unknown as { _parent?: Socket })._parent;
      const info = raw ? this.#raw.get(raw) : undefined;
      const refusal = this.#refused.get(socket);
      const first = this.distributions[0];
      if (refusal) {
        this.#logTcpFailure(info, 'Internal', refusal.reason, socket, raw, refusal.distribution, refusal.servername);
      } else if (first && !first.context && err.code !== 'ERR_TLS_HANDSHAKE_TIMEOUT' && err.code !== 'ECONNRESET') {
        // No SNI callback ran (no SNI sent): the default distribution was chosen and has no context.
        this.#logTcpFailure(info, 'Internal', `distribution "${first.name}" (the default of ${this.address}, chosen without SNI) cannot serve: ${first.unavailableReason ?? 'no TLS context'}; handshake refused (${err.message})`, socket, raw, first, null);
      } else {
        const timeout = err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT';
        this.#logTcpFailure(info, timeout ? 'TcpTimeout' : 'TcpError', err.message, socket, raw);
      }
      socket.destroy();
    });
    this.server.on('error', (err) => gw.logger.error({ err, listen: this.address }, 'edge: listener error'));
  }

  /** The bound port (0 before listen). */
  get port(): number {
    const a = this.server.address();
    return a && typeof a === 'object' ? a.port : 0;
  }

  /**
   * Sets the distributions (listener order) and refreshes the default context and limits.
   * Session resumption is on only when exactly one distribution listens here and asks
   * for it (see GateListener.sessionResumption); a shared listener where some
   * distribution asks for it logs a warning and does not resume.
   */
  update(distributions: DistributionEntry[]): void {
    this.distributions = distributions;
    const only = distributions.length === 1 ? distributions[0] : undefined;
    this.sessionResumption = only !== undefined && only.context !== undefined && only.document.viewerMtls.sessionResumption;
    const asking = distributions.filter((d) => d.document.viewerMtls.sessionResumption).map((d) => d.name);
    const warnKey = distributions.length > 1 && asking.length > 0 ? `${distributions.map((d) => d.name).join(',')}|${asking.join(',')}` : '';
    if (warnKey && warnKey !== this.#sharedResumptionWarned) {
      this.gw.logger.warn(
        { listen: this.address, distributions: distributions.map((d) => d.name), sessionResumption: asking },
        'edge: session resumption is off on a listen address shared by several distributions (a resumed TLS 1.2 session carries no SNI, so the distribution that issued it could not be told); give the distribution its own address to resume sessions',
      );
    }
    this.#sharedResumptionWarned = warnKey;
    const first = distributions[0];
    if (first) {
      // The server's own context serves clients without SNI and decides session
      // tickets for the whole listener (OpenSSL takes ticket keys and options from the
      // initial context, whatever SNI picks later). A first distribution without working
      // TLS material gets a context without a certificate: those handshakes fail.
      const options = first.contextOptions ?? NO_CERTIFICATE_OPTIONS;
      const key = [options, this.sessionResumption];
      if (!(Array.isArray(this.#defaultKey) && this.#defaultKey[0] === key[0] && this.#defaultKey[1] === key[1])) {
        this.server.setSecureContext({ ...options, secureOptions: secureOptionsFor(this.sessionResumption), sessionIdContext: SESSION_ID_CONTEXT });
        this.#defaultKey = key;
      }
    }
    this.server.maxConnections = Math.max(1, ...distributions.map((d) => d.document.limits.maxConnections));
  }

  /** Binds; rejects on EADDRINUSE and the like. */
  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once('error', onError);
      this.server.listen({ host: this.host, port: this.configuredPort }, () => {
        this.server.off('error', onError);
        const a = this.server.address();
        if (a && typeof a === 'object' && isIPv4(a.address) && a.address !== '0.0.0.0') this.localEndpoint = { ip: a.address, port: a.port };
        resolve();
      });
    });
  }

  /** Stops accepting; established connections stay (the proxy owns admitted ones). */
  stopAccepting(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Destroys every TCP connection of this listener still open. */
  destroyAll(): void {
    for (const s of this.#sockets) s.destroy();
  }

  #handshakeTimeoutMs(): number {
    return Math.max(1, ...this.distributions.map((d) => d.document.limits.handshakeTimeoutMs));
  }

  #onConnection(raw: Socket): void {
    const info: RawInfo = { acceptedAt: performance.now(), secure: false, logged: false, timer: undefined };
    this.#raw.set(raw, info);
    this.#sockets.add(raw);
    const gauge = this.gw.metrics.activeConnections;
    gauge.inc({ listener: this.address });
    info.timer = setTimeout(() => {
      if (info.secure) return;
      this.#logTcpFailure(info, 'TcpTimeout', `TLS handshake not completed within ${this.#handshakeTimeoutMs()} ms`, undefined, raw);
      raw.destroy();
    }, this.#handshakeTimeoutMs());
    info.timer.unref();
    raw.once('close', () => {
      this.#sockets.delete(raw);
      gauge.dec({ listener: this.address });
      if (info.timer) clearTimeout(info.timer);
      if (!info.secure) this.#logTcpFailure(info, 'TcpError', 'connection closed before the TLS handshake completed', undefined, raw);
    });
  }

  #logTcpFailure(info: RawInfo | undefined, code: ConnectionFailureCode, reason: string, socket: TLSSocket | undefined, raw: Socket | undefined, dist?: DistributionEntry, servername?: string | null): void {
    if (info) {
      if (info.logged || info.secure) return;
      info.logged = true;
    }
    const line = emptyLogLine(newConnectionId());
    line.connectionStatus = connectionStatus(code);
    line.reason = reason;
    const s = raw ?? socket;
    line.clientIp = s?.remoteAddress ?? null;
    line.clientPort = s?.remotePort ?? null;
    line.serverIp = s?.localAddress ?? null;
    line.serverPort = s?.localPort ?? null;
    const sni = servername !== undefined ? servername : socket && typeof socket.servername === 'string' && socket.servername ? socket.servername : null;
    line.tlsSni = sni;
    if (info) line.tlsHandshakeDuration = Math.round((performance.now() - info.acceptedAt) * 1000) / 1000;
    const d = dist ?? selectBySni(this.distributions, sni);
    line.distributionId = d?.id ?? null;
    line.distributionName = d?.name ?? null;
    this.gw.metrics.connections.inc({ distribution: d?.name ?? '-', status: line.connectionStatus });
    this.gw.log.write(line);
  }
}

interface GatewayInternals {
  readonly gate: Gate;
  readonly log: ConnectionLogWriter;
  readonly metrics: EdgeMetrics;
  readonly logger: Logger;
  readonly alpnProtocols: string[];
}

/**
 * The edge data plane of one process. Start with {@link Gateway.start}; {@link close}
 * when done.
 */
export class Gateway implements GatewayInternals {
  gate!: Gate;
  readonly log: ConnectionLogWriter;
  readonly metrics: EdgeMetrics;
  readonly logger: Logger;
  readonly alpnProtocols: string[];
  readonly #listeners = new Map<string, Listener>();
  #state!: EdgeState;
  #reconciling: Promise<void> = Promise.resolve();
  #started = false;
  #closed = false;

  private constructor(private readonly opts: GatewayOptions) {
    this.logger = opts.logger;
    this.alpnProtocols = opts.alpnProtocols ?? ['h2', 'http/1.1'];
    this.metrics = createEdgeMetrics(opts.metrics ?? new Registry());
    this.metrics.observeOcspCache(opts.revocation.cache);
    this.log = new ConnectionLogWriter(opts.connectionLog, (err) => opts.logger.error({ err }, 'edge: connection log write failed; further lines are dropped'), opts.connectionLogTap);
  }

  /**
   * Loads the state, opens every listener and starts following the store.
   * @throws StoreUnavailableError when the store cannot be read; an error naming the
   *   distribution(s) and address (message `distribution "d" (listen 127.0.0.1:8443):
   *   address in use`, `code` kept) when a listener of the initial state cannot bind or
   *   resolve, or when two listen addresses overlap (`0.0.0.0:X` and `127.0.0.1:X`);
   *   everything opened so far is closed again.
   */
  static async start(options: GatewayOptions): Promise<Gateway> {
    const gw = new Gateway(options);
    gw.#state = await EdgeState.start({
      store: options.store, logger: options.logger, listenOverrides: options.listenOverrides,
      certificatePollMs: options.certificatePollMs,
      onChange: () => { if (gw.#started) void gw.#reconcile(); },
    });
    gw.gate = new Gate({
      state: gw.#state, functions: options.functions, revocation: options.revocation, handler: options.handler,
      log: gw.log, metrics: gw.metrics, logger: options.logger, now: options.now ?? Date.now,
    });
    try {
      await gw.#reconcile(true);
    } catch (err) {
      await gw.close();
      throw err;
    }
    gw.#started = true;
    return gw;
  }

  /** The replica (read-only use: tests and the admin API's status). */
  get state(): EdgeState {
    return this.#state;
  }

  /** Every distribution with the address it is served on, ordered by address then listener order. */
  listeners(): ListenerInfo[] {
    const out: ListenerInfo[] = [];
    for (const l of this.#listeners.values()) {
      for (const d of l.distributions) out.push({ distribution: d.name, address: d.listen, bound: l.address, port: l.port });
    }
    return out;
  }

  /**
   * Resolves once every change committed to the store before the call is applied and
   * the listeners match it (tests; "apply within 1 s" is the feed's own latency).
   */
  async sync(timeoutMs = 5000): Promise<void> {
    const seq = await this.opts.store.latestSequence();
    await this.#state.waitFor(seq, timeoutMs);
    await this.#reconcile();
  }

  /**
   * Stops accepting on every listener, lets running gates finish (at most `graceMs`,
   * default 5000), closes the handler (which ends admitted connections gracefully),
   * then destroys whatever is still open. Idempotent.
   */
  async close(graceMs = 5000): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#state?.stop();
    const listeners = [...this.#listeners.values()];
    this.#listeners.clear();
    const closed = Promise.all(listeners.map((l) => l.stopAccepting()));
    if (this.gate) await withTimeout(Promise.allSettled([...this.gate.inFlight]), graceMs);
    await withTimeout(this.opts.handler.close().catch((err: unknown) => this.logger.error({ err }, 'edge: handler close failed')), graceMs);
    for (const l of listeners) l.destroyAll();
    await withTimeout(closed, graceMs);
  }

  /** Host name → its lookup (one per gateway: a listen address does not move while it runs). */
  readonly #resolved = new Map<string, ResolvedListen>();

  async #resolve(listen: string): Promise<ResolvedListen> {
    const hit = this.#resolved.get(listen);
    if (hit) return hit;
    const r = await resolveListenAddress(listen);
    this.#resolved.set(listen, r);
    return r;
  }

  /**
   * Groups the distributions by the socket they bind (listen addresses resolved, so
   * `localhost:X` and `127.0.0.1:X` share one listener and SNI routing sees them all),
   * and opens, updates or closes listeners to match. A group that cannot be served — its
   * address does not resolve, overlaps another group's socket, or cannot bind — is named
   * with its distributions and address: thrown at start, logged afterwards.
   */
  #reconcile(initial = false): Promise<void> {
    const run = async (): Promise<void> => {
      if (this.#closed) return;
      const groups = new Map<string, { bind: ResolvedListen; dists: DistributionEntry[] }>();
      const problems: Error[] = [];
      const fail = (dists: readonly DistributionEntry[], err: Error & { code?: string }, text = describeListenError(err)): void => {
        const e = Object.assign(new Error(`${describeListenGroup(dists)}: ${text}`, { cause: err }), err.code ? { code: err.code } : {});
        problems.push(e);
      };
      // Unresolvable addresses: one problem per address.
      const unresolved = new Map<string, { dists: DistributionEntry[]; err: Error }>();
      for (const d of this.#state.distributions()) {
        let bind: ResolvedListen;
        try {
          bind = await this.#resolve(d.listen);
        } catch (err) {
          const u = unresolved.get(d.listen);
          if (u) u.dists.push(d);
          else unresolved.set(d.listen, { dists: [d], err: err as Error });
          continue;
        }
        const g = groups.get(bind.key);
        if (g) g.dists.push(d);
        else groups.set(bind.key, { bind, dists: [d] });
      }
      for (const u of unresolved.values()) fail(u.dists, u.err);
      // Overlapping sockets (a wildcard and an address on the same port): keep the one
      // already listening, else the first in listener order; the other is not served.
      const kept: { bind: ResolvedListen; dists: DistributionEntry[] }[] = [];
      const ordered = [...groups.values()].sort((a, b) => Number(this.#listeners.has(b.bind.key)) - Number(this.#listeners.has(a.bind.key)));
      for (const g of ordered) {
        const clash = kept.find((k) => listenSocketsOverlap(k.bind, g.bind));
        if (clash) {
          groups.delete(g.bind.key);
          fail(g.dists, Object.assign(new Error('overlapping listen addresses'), { code: 'EADDRINUSE' }),
            `cannot be served: its socket ${g.bind.key} overlaps ${clash.bind.key} of ${describeListenGroup(clash.dists)} (binding both fails with EADDRINUSE); give them the same listen address or different ports`);
        } else {
          kept.push(g);
        }
      }
      for (const [address, l] of this.#listeners) {
        if (groups.has(address)) continue;
        this.#listeners.delete(address);
        l.update([]);
        void l.stopAccepting();
        this.logger.info({ listen: address }, 'edge: listener closed (no distribution left on it)');
      }
      if (initial && problems.length) throw problems[0];
      for (const [address, { bind, dists }] of groups) {
        let l = this.#listeners.get(address);
        if (l) {
          l.update(dists);
          continue;
        }
        try {
          l = new Listener(address, bind, this);
          l.update(dists);
          await l.open();
          if (this.#closed) {
            await l.stopAccepting();
            return;
          }
          this.#listeners.set(address, l);
          this.logger.info({ listen: address, port: l.port, distributions: dists.map((d) => d.name) }, 'edge: listening');
        } catch (err) {
          fail(dists, err as Error);
          if (initial) throw problems[problems.length - 1];
        }
      }
      for (const e of problems) this.logger.error({ err: e }, `edge: cannot listen; not served: ${e.message}`);
    };
    const p = this.#reconciling.then(run);
    this.#reconciling = p.catch(() => {});
    return p;
  }
}

async function withTimeout(p: Promise<unknown>, ms: number): Promise<void> {
  let t: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise((r) => { t = setTimeout(r, ms); t.unref(); })]);
  clearTimeout(t);
}
