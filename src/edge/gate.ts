/**
 * The gate (DESIGN "the flow of one connection", SPEC sections 2–4, 6 and 7): runs once
 * per TLS connection when the handshake is done, before any application byte is read —
 * certificate view, path validation, revocation, connection function, decision — then
 * destroys the socket (deny) or hands it to the {@link ConnectionHandler} (allow), and
 * writes one connection-log line.
 */
import { performance } from 'node:perf_hooks';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { buildConnection, connectionJson, newConnectionId } from '../functions/index.js';
import {
  ParsedCertificate, VIEWER_CERT_HEADER_NAMES, certificateView, validateClientChain, viewerCertAbsentHeaders, viewerCertHeaders,
  type PathValidationResult, type PathValidationSuccess, type TrustAnchorSet,
} from '../pki/index.js';
import type { RevocationChecker } from '../revocation/index.js';
import type { DistributionDocument } from '../resources/types.js';
import type { ConnectionLogWriter} from './connection-log.js';
import { connectionStatus, emptyLogLine, revocationLogEntries, type ConnectionLogLine } from './connection-log.js';
import { nextGateStep, type ConnectionFailureCode, type GateFacts } from './decision.js';
import type { EdgeMetrics } from './metrics.js';
import { selectBySni } from './sni.js';
import type { DistributionEntry, EdgeState } from './state.js';
import type { ConnectionHandler, FunctionInvoker } from './types.js';

/**
 * Most certificates a client may present (leaf included); more is refused
 * `ClientCertMaxChainDepthExceeded` before path validation (which refuses chains deeper
 * than SPEC 2 allows anyway, so this only bounds the work).
 */
export const MAX_PRESENTED_CERTIFICATES = 10;

/**
 * How far {@link peerChainDer} walks by default: far enough past
 * {@link MAX_PRESENTED_CERTIFICATES} to tell the count in the log, bounded because every
 * step copies the rest of the peer's chain (see peerChainDer).
 */
export const PRESENTED_CERTIFICATES_COUNT_LIMIT = 32;

/**
 * The client's certificate chain as sent (leaf first), raw DER, from
 * `getPeerX509Certificate()` and its `issuerCertificate` links: this walks the chain
 * the peer sent, without the JS object per certificate (and the trust-store
 * certificates OpenSSL appends) that `getPeerCertificate(true)` builds (measured here:
 * ~225 µs vs ~340 µs p50 for a 3-certificate chain, and 3 vs 4 certificates). Nearly all
 * of that is inside the first call, not the walk: Node's X509Certificate constructor
 * X509_dup()s every certificate of the peer's issuer chain, and OpenSSL 3.0 re-decodes
 * each public key through OSSL_DECODER on the way (~100 µs per intermediate on Node 20,
 * perf: X509Certificate::New → ASN1_item_dup → x509_pubkey_ex_d2i_ex); the leaf alone
 * via `getPeerCertificate(false)` is ~60 µs. No public API returns the DER without that
 * copy, so this is the floor of the gate on Node 20 (bench/edge.ts). Call once
 * per connection: Node takes the chain out of the session while building the objects.
 * Empty when no certificate was presented. On a resumed session the peer sends no
 * chain; only the leaf (kept in the session) comes back.
 */
export function peerChainDer(socket: TLSSocket, limit = PRESENTED_CERTIFICATES_COUNT_LIMIT + 1): Buffer[] {
  const out: Buffer[] = [];
  let cert = socket.getPeerX509Certificate();
  while (cert && out.length < limit) {
    const raw = cert.raw;
    // A self-issued certificate may link to itself: stop at a repeat.
    if (out.length > 0 && out[out.length - 1]!.equals(raw)) break;
    out.push(raw);
    const next = cert.issuerCertificate;
    if (!next) break;
    cert = next;
  }
  return out;
}

/** The log reason for a presented chain longer than {@link MAX_PRESENTED_CERTIFICATES} (`count` as {@link peerChainDer} returned it). */
export function tooManyCertificatesReason(count: number, walkLimit = PRESENTED_CERTIFICATES_COUNT_LIMIT + 1): string {
  const n = count >= walkLimit ? `more than ${walkLimit - 1}` : String(count);
  return `the client presented ${n} certificates (leaf included); at most ${MAX_PRESENTED_CERTIFICATES} are accepted`;
}

/**
 * The presented intermediates of recent full handshakes, by leaf SHA-256, so a resumed
 * connection (whose peer sends no chain) can be validated again like a full handshake
 * (SPEC section 2). Bounded (least recently stored evicted) and per process: a session
 * resumed in another worker finds nothing and is validated with the leaf alone.
 */
export class ResumedChainCache {
  readonly #map = new Map<string, { intermediates: Buffer[]; expiresAt: number }>();
  constructor(private readonly maxEntries = 10_000, private readonly ttlMs = 2 * 3600_000, private readonly now: () => number = Date.now) {}

  /** Remembers the intermediates sent with `leafSha256Hex`. */
  set(leafSha256Hex: string, intermediates: Buffer[]): void {
    this.#map.delete(leafSha256Hex);
    this.#map.set(leafSha256Hex, { intermediates, expiresAt: this.now() + this.ttlMs });
    if (this.#map.size > this.maxEntries) this.#map.delete(this.#map.keys().next().value as string);
  }

  /** The intermediates last sent with that leaf, or undefined. */
  get(leafSha256Hex: string): Buffer[] | undefined {
    const e = this.#map.get(leafSha256Hex);
    if (!e) return undefined;
    if (e.expiresAt <= this.now()) {
      this.#map.delete(leafSha256Hex);
      return undefined;
    }
    return e.intermediates;
  }
}

/**
 * Successful path-validation results of recent chains, so that a client presenting the
 * same chain again is not searched and checked again on every handshake.
 *
 * Exact, not approximate: `validateClientChain(presented, anchors, options)` is a pure
 * function of the presented certificates, the trust anchors, the options and `now`, and
 * `now` enters it only through `now < notBefore` / `now > notAfter` comparisons with the
 * presented certificates and the anchors (a success carries no time in its text). So an
 * entry keyed by (anchor set object — replaced whenever the trust store changes —,
 * `ignoreCertificateExpiry`, the presented ParsedCertificate objects in order — the parse
 * cache returns the same object for the same DER) is reused only while `now` lies in the
 * interval in which none of those comparisons changes its answer for any presented
 * certificate or anchor; outside it, validation runs again. Failures are not kept (their
 * reasons name the validation time, and they are rare). Bounded per anchor set (oldest
 * stored evicted).
 */
export class PathValidationMemo {
  readonly #byAnchors = new WeakMap<TrustAnchorSet, Map<string, { result: PathValidationSuccess; from: number; until: number }>>();
  readonly #ids = new WeakMap<ParsedCertificate, number>();
  #nextId = 1;
  constructor(private readonly maxEntries = 10_000) {}

  /** `validateClientChain(presented, anchors, { now, ignoreCertificateExpiry })`, from the memo when that is exact. */
  validate(presented: readonly ParsedCertificate[], anchors: TrustAnchorSet, nowMs: number, ignoreCertificateExpiry: boolean): PathValidationResult {
    const now = Math.trunc(nowMs); // what new Date(nowMs).getTime() gives validateClientChain
    let key = ignoreCertificateExpiry ? 'i' : 'e';
    for (const c of presented) {
      let id = this.#ids.get(c);
      if (id === undefined) this.#ids.set(c, id = this.#nextId++);
      key += `,${id}`;
    }
    let memo = this.#byAnchors.get(anchors);
    const hit = memo?.get(key);
    if (hit && now >= hit.from && now <= hit.until) return hit.result;
    const result = validateClientChain(presented, anchors, { now: new Date(now), ignoreCertificateExpiry });
    if (result.ok) {
      let from = -Infinity, until = Infinity;
      if (!ignoreCertificateExpiry) {
        const edge = (c: ParsedCertificate): void => {
          const nb = c.notBefore.getTime(), na = c.notAfter.getTime();
          // `now < nb` keeps its answer on [nb, ∞) or (−∞, nb − 1]; `now > na` on [na + 1, ∞) or (−∞, na].
          if (nb <= now) from = Math.max(from, nb); else until = Math.min(until, nb - 1);
          if (na < now) from = Math.max(from, na + 1); else until = Math.min(until, na);
        };
        for (const c of presented) edge(c);
        for (const c of anchors.anchors) edge(c);
      }
      if (!memo) this.#byAnchors.set(anchors, memo = new Map());
      memo.delete(key);
      memo.set(key, { result, from, until });
      if (memo.size > this.maxEntries) memo.delete(memo.keys().next().value as string);
    }
    return result;
  }
}

/**
 * The certificate headers of an admitted connection (see `AdmittedConnection.certificateHeaders`):
 * passthrough → `Client-Cert` / `Client-Cert-Chain` (RFC 9440 2: `:base64:` byte
 * sequences, the chain a comma-separated list); otherwise the configured subset of
 * `CloudFront-Viewer-Cert-*` (SPEC section 6), `Present: 0` alone when no certificate.
 * @throws CertificateParseError when a Name of the leaf is malformed (pki/ `viewerCertHeaders`).
 */
export function certificateHeaders(doc: DistributionDocument, presented: readonly ParsedCertificate[]): Record<string, string> {
  const [leaf, ...intermediates] = presented;
  if (doc.viewerMtls.mode === 'passthrough') {
    if (!leaf) return {};
    const h: Record<string, string> = { 'Client-Cert': `:${leaf.der.toString('base64')}:` };
    if (intermediates.length) h['Client-Cert-Chain'] = intermediates.map((c) => `:${c.der.toString('base64')}:`).join(', ');
    return h;
  }
  const wanted = new Set(doc.forwardCertificateHeaders.map((n) => n.toLowerCase()));
  const all: Record<string, string> = leaf ? { ...viewerCertHeaders(leaf) } : viewerCertAbsentHeaders();
  const out: Record<string, string> = {};
  for (const name of VIEWER_CERT_HEADER_NAMES) {
    const v = all[name];
    if (v !== undefined && wanted.has(name.toLowerCase())) out[name] = v;
  }
  return out;
}

/**
 * {@link certificateHeaders} for the `CloudFront-Viewer-Cert-*` modes, once per
 * (distribution document, leaf) — both objects live across connections (the document
 * until the distribution changes, the leaf in the parse cache) and the headers depend on
 * nothing else; frozen, as every connection with that pair shares them. Passthrough
 * (the whole chain as sent) is built per connection.
 */
const certHeaderMemo = new WeakMap<DistributionDocument, { none?: Record<string, string>; byLeaf: WeakMap<ParsedCertificate, Record<string, string>> }>();

export function memoCertificateHeaders(doc: DistributionDocument, presented: readonly ParsedCertificate[]): Record<string, string> {
  if (doc.viewerMtls.mode === 'passthrough') return certificateHeaders(doc, presented);
  let m = certHeaderMemo.get(doc);
  if (!m) certHeaderMemo.set(doc, m = { byLeaf: new WeakMap() });
  const leaf = presented[0];
  if (!leaf) return m.none ??= Object.freeze(certificateHeaders(doc, presented));
  let h = m.byLeaf.get(leaf);
  if (!h) m.byLeaf.set(leaf, h = Object.freeze(certificateHeaders(doc, presented)));
  return h;
}

/** What the gate needs from the listener that accepted the connection. */
export interface GateListener {
  /** The listen address (`host:port`, the socket bound). */
  readonly address: string;
  readonly host: string;
  /** Distributions on this address, listener order (the first is the default). */
  readonly distributions: readonly DistributionEntry[];
  /**
   * Session resumption is enabled on this listener. Only ever true for a listener with
   * exactly one distribution: a resumed TLS 1.2 session carries no SNI, so on a shared
   * listener nothing would tell which distribution issued it. A resumed connection on a
   * listener where this is false is refused.
   */
  readonly sessionResumption: boolean;
  /**
   * The local address of every connection of this listener when it is fixed (bound to one
   * IPv4 address): `socket.localAddress`/`localPort` without a getsockname() per connection.
   */
  readonly localEndpoint?: { readonly ip: string; readonly port: number } | undefined;
}

/** Dependencies of a {@link Gate}. */
export interface GateOptions {
  state: EdgeState;
  functions: FunctionInvoker;
  revocation: RevocationChecker;
  handler: ConnectionHandler;
  log: ConnectionLogWriter;
  metrics: EdgeMetrics;
  logger: Logger;
  /** Clock for validation time and the function's frozen `Date`, ms since the epoch. */
  now: () => number;
}

/** Runs the gate for every connection of every listener. */
export class Gate {
  readonly #resumed = new ResumedChainCache();
  readonly #paths = new PathValidationMemo();
  readonly #inFlight = new Set<Promise<void>>();

  constructor(private readonly o: GateOptions) {}

  /** Gates currently running (close() waits for them). */
  get inFlight(): ReadonlySet<Promise<void>> {
    return this.#inFlight;
  }

  /**
   * Gates one connection whose handshake just completed. Never rejects.
   * @param handshakeMs TCP accept → handshake done, ms (undefined when unknown).
   */
  run(socket: TLSSocket, listener: GateListener, handshakeMs: number | undefined): Promise<void> {
    const p = this.#run(socket, listener, handshakeMs).finally(() => this.#inFlight.delete(p));
    this.#inFlight.add(p);
    return p;
  }

  async #run(socket: TLSSocket, listener: GateListener, handshakeMs: number | undefined): Promise<void> {
    const started = performance.now();
    const { o } = this;
    // A client reset while the gate waits (OCSP, function) must not crash the process.
    const onSocketError = (err: Error): void => { line.reason ??= `socket error during the gate: ${err.message}`; };
    socket.on('error', onSocketError);
    const line = emptyLogLine(newConnectionId());
    line.clientIp = socket.remoteAddress ?? null;
    line.clientPort = socket.remotePort ?? null;
    const local = listener.localEndpoint;
    line.serverIp = local ? local.ip : socket.localAddress ?? null;
    line.serverPort = local ? local.port : socket.localPort ?? null;
    line.tlsProtocol = socket.getProtocol() ?? null;
    line.tlsCipher = socket.getCipher()?.name ?? null;
    line.tlsSni = typeof socket.servername === 'string' && socket.servername ? socket.servername : null;
    line.tlsHandshakeDuration = handshakeMs === undefined ? null : round3(handshakeMs);
    const reused = socket.isSessionReused();
    line.tlsSessionReused = reused;

    let code: ConnectionFailureCode | undefined;
    let dist: DistributionEntry | undefined;
    let presented: ParsedCertificate[] = [];
    try {
      dist = selectBySni(listener.distributions, socket.servername);
      if (!dist) {
        code = 'Internal';
        line.reason = `no distribution serves ${listener.address}`;
      } else if (reused && (!listener.sessionResumption || listener.distributions.length !== 1)) {
        // Never gate a resumed session against a guess: only a listener with one
        // distribution resumes, so the one that issued the session is known.
        line.distributionId = dist.id;
        line.distributionName = dist.name;
        code = 'Internal';
        line.reason = `resumed TLS session on ${listener.address}, where session resumption is off (${listener.distributions.length} distributions share the address); `
          + 'the distribution that issued the session cannot be known, refused';
        dist = undefined;
      } else if (!dist.context) {
        line.distributionId = dist.id;
        line.distributionName = dist.name;
        code = 'Internal';
        line.reason = `distribution "${dist.name}" cannot serve: ${dist.unavailableReason ?? 'no TLS context'}`;
        dist = undefined;
      } else {
        const doc = dist.document;
        line.distributionId = dist.id;
        line.distributionName = dist.name;
        line.mtlsMode = doc.viewerMtls.mode;
        if (handshakeMs !== undefined) o.metrics.handshakeDuration.observe({ distribution: dist.name }, handshakeMs / 1000);
        const outcome = await this.#decide(socket, listener, dist, reused, line);
        code = outcome.code;
        presented = outcome.presented;
        line.reason = outcome.reason;
        if (reused && line.tlsSni === null) {
          line.reason += `; tlsSni is null: Node reports no SNI for a resumed TLS 1.2 session (the session was issued by "${dist.name}", the only distribution on ${listener.address})`;
        }
      }
    } catch (err) {
      code = 'Internal';
      line.reason = `internal error in the gate: ${(err as Error).message}`;
      o.logger.error({ err, connectionId: line.connectionId }, 'edge: gate failed; connection denied');
    }

    const decisionUs = (performance.now() - started) * 1000;
    line.decisionTimeUs = Math.round(decisionUs);
    line.connectionStatus = connectionStatus(code);
    if (code !== undefined || !dist) {
      socket.destroy();
    } else if (socket.destroyed) {
      line.reason = `${line.reason ?? 'allowed'}; the client closed the connection before it was handed to the proxy`;
    } else {
      try {
        const certificateHeadersValue = memoCertificateHeaders(dist.document, presented);
        socket.off('error', onSocketError);
        o.handler.handle({
          socket, connectionId: line.connectionId, distributionId: dist.id, distributionName: dist.name,
          clientIp: line.clientIp ?? '', clientPort: line.clientPort ?? 0,
          origin: dist.document.origin, limits: dist.document.limits, certificateHeaders: certificateHeadersValue,
        });
      } catch (err) {
        line.connectionStatus = connectionStatus('Internal');
        line.reason = `hand-over to the proxy failed: ${(err as Error).message}`;
        o.logger.error({ err, connectionId: line.connectionId }, 'edge: hand-over failed');
        socket.destroy();
      }
    }
    const distLabel = dist?.name ?? '-';
    o.metrics.connections.inc({ distribution: distLabel, status: line.connectionStatus });
    o.metrics.gateDuration.observe({ distribution: distLabel }, decisionUs / 1e6);
    o.log.write(line);
  }

  /** The decision for one connection of `dist`. Fills the certificate, revocation and function fields of `line`. */
  async #decide(
    socket: TLSSocket, listener: GateListener, dist: DistributionEntry, reused: boolean, line: ConnectionLogLine,
  ): Promise<{ code: ConnectionFailureCode | undefined; reason: string; presented: ParsedCertificate[] }> {
    const { o } = this;
    const doc = dist.document;
    let ders = peerChainDer(socket);
    if (ders.length > MAX_PRESENTED_CERTIFICATES) {
      try {
        const v = certificateView(ParsedCertificate.fromDer(ders[0]!, 'leaf certificate'));
        line.clientLeafCertSerialNumber = v.serialNumber;
        line.clientLeafCertSubject = v.subject;
        line.clientLeafCertIssuer = v.issuer;
        line.clientLeafCertValidity = `NotBefore=${v.validity.notBefore};NotAfter=${v.validity.notAfter}`;
      } catch { /* the count decides; the leaf fields stay null */ }
      return { code: 'ClientCertMaxChainDepthExceeded', reason: tooManyCertificatesReason(ders.length), presented: [] };
    }
    let presented: ParsedCertificate[];
    try {
      presented = ders.map((d, i) => ParsedCertificate.fromDer(d, i === 0 ? 'leaf certificate' : `presented certificate #${i + 1}`));
      if (reused && presented.length === 1 && listener.sessionResumption) {
        const cached = this.#resumed.get(presented[0]!.sha256.toString('hex'));
        if (cached) {
          ders = [ders[0]!, ...cached];
          presented = ders.map((d) => ParsedCertificate.fromDer(d));
        }
      }
      const leaf = presented[0];
      if (leaf) {
        const v = certificateView(leaf);
        line.clientLeafCertSerialNumber = v.serialNumber;
        line.clientLeafCertSubject = v.subject;
        line.clientLeafCertIssuer = v.issuer;
        line.clientLeafCertValidity = `NotBefore=${v.validity.notBefore};NotAfter=${v.validity.notAfter}`;
      }
    } catch (err) {
      return { code: 'ClientCertInvalid', reason: `the presented certificate does not decode: ${(err as Error).message}`, presented: [] };
    }

    const trustStoreName = doc.viewerMtls.trustStore;
    const trustStore = trustStoreName ? o.state.trustStore(trustStoreName) : undefined;
    const fnName = doc.connectionFunctionAssociation?.name;
    const facts: GateFacts = {
      mode: doc.viewerMtls.mode,
      certificatePresented: presented.length > 0,
      ocspEnabled: trustStore?.document.useClientCertificateOcspEndpoint === true,
      functionAssociated: fnName !== undefined,
    };
    for (;;) {
      const step = nextGateStep(facts);
      switch (step.step) {
        case 'allow':
          // Passthrough validates nothing: its chain (forwarded in Client-Cert-Chain) is remembered once allowed.
          if (doc.viewerMtls.mode === 'passthrough' && listener.sessionResumption && !reused && presented.length > 1) {
            this.#resumed.set(presented[0]!.sha256.toString('hex'), presented.slice(1).map((c) => c.der));
          }
          return { code: undefined, reason: step.reason, presented };
        case 'deny':
          return { code: step.code, reason: step.reason, presented };
        case 'validate': {
          const anchors = trustStore?.anchors;
          if (!anchors) {
            const why = trustStore?.unavailableReason ?? (trustStoreName ? `trust store "${trustStoreName}" does not exist` : 'the distribution names no trust store');
            return { code: 'Internal', reason: `cannot validate the client certificate: ${why}`, presented };
          }
          facts.path = this.#paths.validate(presented, anchors, o.now(), doc.viewerMtls.ignoreCertificateExpiry === true);
          // Remember what the client sent with this leaf as soon as it is known good, so a
          // resumed session (no chain sent) is validated like the full handshake even when
          // the first connection never reached the hand-over (client closed, later deny).
          if (facts.path.ok && listener.sessionResumption && !reused && presented.length > 1) {
            this.#resumed.set(presented[0]!.sha256.toString('hex'), presented.slice(1).map((c) => c.der));
          }
          break;
        }
        case 'checkRevocation': {
          if (!facts.path?.ok) throw new Error('revocation before a valid path');
          const r = await o.revocation.check(facts.path.path);
          facts.revocation = r;
          if (r.ok) {
            line.chainValidity = r.revocationStatus.chainValidity;
            line.revocation = revocationLogEntries(r.revocationStatus);
            line.revocationDurationMs = r.durationMs;
            o.metrics.recordRevocation(r.revocationStatus);
          }
          break;
        }
        case 'runFunction': {
          const name = fnName as string;
          const json = connectionJson(buildConnection({
            connectionId: line.connectionId,
            clientIp: line.clientIp ?? '',
            clientPort: line.clientPort ?? 0,
            endpoint: line.tlsSni ?? listener.host,
            distributionId: dist.id,
            ...(presented.length ? { certificates: presented } : {}),
            ...(facts.revocation?.ok ? { revocationStatus: facts.revocation.revocationStatus } : {}),
          }));
          const inv = await o.functions.invoke(name, json, { now: o.now() });
          facts.functionResult = inv.result;
          line.functionName = name;
          line.functionEtag = inv.etag ?? null;
          line.functionComputeUtilization = inv.result.computeUtilization;
          line.functionDurationUs = Math.round(inv.durationUs);
          line.functionError = inv.result.error ?? null;
          line.connectionLogCustomData = inv.result.customData ?? null;
          o.metrics.functionInvocations.inc({ function: name, outcome: inv.result.failureCode === 'ConnectionFunctionError' ? 'error' : inv.result.decision });
          o.metrics.functionComputeUtilization.observe({ function: name }, inv.result.computeUtilization);
          // console.log lines of the function go to the application log (CloudFront sends
          // them to CloudWatch); at debug level, as they can be one per connection.
          if (inv.result.logs.length > 0 && o.logger.isLevelEnabled('debug')) {
            o.logger.debug({ connectionId: line.connectionId, function: name, functionLogs: inv.result.logs }, `connection function "${name}" logged ${inv.result.logs.length} line(s)`);
          }
          break;
        }
      }
    }
  }
}

function round3(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
