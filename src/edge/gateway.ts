/**
 * The Gateway: opens one `tls.Server` per listen address of the distributions in the
 * store, keeps them in line with the store (EdgeState), and runs the gate on every
 * connection. Works the same inside node:cluster workers (listen handles are shared
 * through the primary; every worker holds its own EdgeState and OCSP cache).
 */
import tls, { type TLSSocket } from 'node:tls';
import { isIPv4, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { InvalidArgumentError } from '../errors.js';
import type { RevocationChecker } from '../revocation/index.js';
import type { Store } from '../store/index.js';
import { ConnectionLogWriter, connectionStatus, emptyLogLine } from './connection-log.js';
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
  /** The listen address as configured (`host:port`, after overrides). */
  address: string;
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
  #defaultKey: unknown;

  constructor(readonly address: string, private readonly gw: GatewayInternals) {
    const { host, port } = parseListenAddress(address);
    this.host = host;
    this.configuredPort = port;
    this.server = tls.createServer({
      requestCert: true,
      // The gate validates (SPEC 2); OpenSSL's verdict is ignored.
      rejectUnauthorized: false,
      ALPNProtocols: gw.alpnProtocols,
      sessionIdContext: SESSION_ID_CONTEXT,
      SNICallback: (servername, cb) => {
        const d = selectBySni(this.distributions, servername);
        if (d) cb(null, d.context);
        else cb(new Error(`no distribution on ${this.address}`), undefined);
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
      const timeout = err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT';
      this.#logTcpFailure(info, timeout ? 'TcpTimeout' : 'TcpError', err.message, socket, raw);
      socket.destroy();
    });
    this.server.on('error', (err) => gw.logger.error({ err, listen: this.address }, 'edge: listener error'));
  }

  /** The bound port (0 before listen). */
  get port(): number {
    const a = this.server.address();
    return a && typeof a === 'object' ? a.port : 0;
  }

  /** Sets the distributions (listener order) and refreshes the default context and limits. */
  update(distributions: DistributionEntry[]): void {
    this.distributions = distributions;
    this.sessionResumption = distributions.length > 0 && distributions.every((d) => d.document.viewerMtls.sessionResumption);
    const first = distributions[0];
    if (first) {
      // The server's own context serves clients without SNI and decides session
      // tickets for the whole listener (OpenSSL takes ticket keys and options from the
      // initial context, whatever SNI picks later).
      const key = [first.contextOptions, this.sessionResumption];
      if (!(Array.isArray(this.#defaultKey) && this.#defaultKey[0] === key[0] && this.#defaultKey[1] === key[1])) {
        this.server.setSecureContext({ ...first.contextOptions, secureOptions: secureOptionsFor(this.sessionResumption), sessionIdContext: SESSION_ID_CONTEXT });
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

  #logTcpFailure(info: RawInfo | undefined, code: ConnectionFailureCode, reason: string, socket: TLSSocket | undefined, raw: Socket | undefined): void {
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
    const sni = socket && typeof socket.servername === 'string' && socket.servername ? socket.servername : null;
    line.tlsSni = sni;
    if (info) line.tlsHandshakeDuration = Math.round((performance.now() - info.acceptedAt) * 1000) / 1000;
    const d = selectBySni(this.distributions, sni);
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
    this.log = new ConnectionLogWriter(opts.connectionLog, (err) => opts.logger.error({ err }, 'edge: connection log write failed; further lines are dropped'));
  }

  /**
   * Loads the state, opens every listener and starts following the store.
   * @throws StoreUnavailableError when the store cannot be read; the listen error
   *   (e.g. `EADDRINUSE`) when a listener of the initial state cannot bind (everything
   *   opened so far is closed again).
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
      for (const d of l.distributions) out.push({ distribution: d.name, address: l.address, port: l.port });
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

  #reconcile(initial = false): Promise<void> {
    const run = async (): Promise<void> => {
      if (this.#closed) return;
      const groups = new Map<string, DistributionEntry[]>();
      for (const d of this.#state.distributions()) {
        const list = groups.get(d.listen);
        if (list) list.push(d);
        else groups.set(d.listen, [d]);
      }
      for (const [address, l] of this.#listeners) {
        if (groups.has(address)) continue;
        this.#listeners.delete(address);
        l.update([]);
        void l.stopAccepting();
        this.logger.info({ listen: address }, 'edge: listener closed (no distribution left on it)');
      }
      for (const [address, dists] of groups) {
        let l = this.#listeners.get(address);
        if (l) {
          l.update(dists);
          continue;
        }
        try {
          l = new Listener(address, this);
          l.update(dists);
          await l.open();
          if (this.#closed) {
            await l.stopAccepting();
            return;
          }
          this.#listeners.set(address, l);
          this.logger.info({ listen: address, port: l.port, distributions: dists.map((d) => d.name) }, 'edge: listening');
        } catch (err) {
          if (initial) throw err;
          this.logger.error({ err, listen: address }, 'edge: cannot listen; the distributions on this address are not served');
        }
      }
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
