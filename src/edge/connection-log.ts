/**
 * The connection log (SPEC section 7): one JSON line per connection attempt, written to
 * a stream given by the operator (stdout, or a file opened for append). Every field is
 * present on every line (null when it does not apply), so log tools see one schema.
 */
import type { CertificateRevocationStatus, RevocationStatus } from '../revocation/index.js';
import type { ConnectionFailureCode } from './decision.js';

/** Portcullis extension: the revocation result of one checked certificate. */
export interface ConnectionLogRevocationEntry {
  /** `leaf`, or `intermediate#1` (the leaf's issuer), `intermediate#2`, … */
  certificate: string;
  /** Lowercase colon hex. */
  serialNumber: string;
  status: CertificateRevocationStatus['status'];
  /** `cache` when the shared OCSP cache answered, `network` when the responder was asked for this connection. */
  source: 'cache' | 'network';
  /** The responder URL (first OCSP URL of the certificate's AIA). */
  responder: string;
  revocationTime: string | null;
  revocationReason: string | null;
  errorType: string | null;
  errorDetail: string | null;
  thisUpdate: string | null;
  nextUpdate: string | null;
}

/**
 * One line of the connection log. The first block is SPEC section 7 (CloudFront's
 * connection-log field names); the rest are Portcullis extensions.
 */
export interface ConnectionLogLine {
  /** When the attempt ended (decision or failure), ISO 8601 UTC with milliseconds. */
  eventTimestamp: string;
  connectionId: string;
  /** `Success` or `Failed:<Code>`. */
  connectionStatus: string;
  clientIp: string | null;
  clientPort: number | null;
  /** Local address of the accepting socket. */
  serverIp: string | null;
  distributionId: string | null;
  /** e.g. `TLSv1.3`; null when the handshake did not complete. */
  tlsProtocol: string | null;
  /** OpenSSL cipher name, e.g. `TLS_AES_256_GCM_SHA384`. */
  tlsCipher: string | null;
  /** TCP accept → handshake done (or failure), milliseconds with µs precision. */
  tlsHandshakeDuration: number | null;
  tlsSni: string | null;
  /** Lowercase colon hex. */
  clientLeafCertSerialNumber: string | null;
  /** RFC 4514, as the function sees it. */
  clientLeafCertSubject: string | null;
  clientLeafCertIssuer: string | null;
  /** `NotBefore=2025-01-01T00:00:00Z;NotAfter=2026-01-01T00:00:00Z`. */
  clientLeafCertValidity: string | null;
  /** The function's last `logCustomData()` (≤ 800 bytes UTF-8). */
  connectionLogCustomData: string | null;
  // --- Portcullis extensions
  distributionName: string | null;
  serverPort: number | null;
  /** The connection resumed a TLS session (only possible when the distribution enables resumption). */
  tlsSessionReused: boolean | null;
  /** The viewer mTLS mode applied. */
  mtlsMode: string | null;
  /** SPEC 3 chainValidity when OCSP ran. */
  chainValidity: string | null;
  /** Per-certificate revocation results (leaf first); null when OCSP did not run. */
  revocation: ConnectionLogRevocationEntry[] | null;
  /** The revocation check's wall time, ms (µs precision). */
  revocationDurationMs: number | null;
  functionName: string | null;
  /** LIVE ETag of the function version that ran. */
  functionEtag: string | null;
  /** Percent of the function CPU limit used (one decimal). */
  functionComputeUtilization: number | null;
  /** Invocation wall time as the function host measured it, µs. */
  functionDurationUs: number | null;
  /** The function's error message (threw, timed out, out of memory). */
  functionError: string | null;
  /** handshake done → decision, µs (the gate's own time, OCSP and function included). */
  decisionTimeUs: number | null;
  /** One human sentence: why the connection was denied (or allowed). */
  reason: string | null;
}

/** A line with every field null except the identifiers given; the gate fills in the rest. */
export function emptyLogLine(connectionId: string): ConnectionLogLine {
  return {
    eventTimestamp: '', connectionId, connectionStatus: '', clientIp: null, clientPort: null, serverIp: null,
    distributionId: null, tlsProtocol: null, tlsCipher: null, tlsHandshakeDuration: null, tlsSni: null,
    clientLeafCertSerialNumber: null, clientLeafCertSubject: null, clientLeafCertIssuer: null,
    clientLeafCertValidity: null, connectionLogCustomData: null, distributionName: null, serverPort: null,
    tlsSessionReused: null, mtlsMode: null, chainValidity: null, revocation: null, revocationDurationMs: null,
    functionName: null, functionEtag: null, functionComputeUtilization: null, functionDurationUs: null,
    functionError: null, decisionTimeUs: null, reason: null,
  };
}

/** The SPEC section 7 field names, in SPEC order (every line has them, and the extensions). */
export const CONNECTION_LOG_SPEC_FIELDS: readonly (keyof ConnectionLogLine)[] = Object.freeze([
  'eventTimestamp', 'connectionId', 'connectionStatus', 'clientIp', 'clientPort', 'serverIp', 'distributionId',
  'tlsProtocol', 'tlsCipher', 'tlsHandshakeDuration', 'tlsSni', 'clientLeafCertSerialNumber', 'clientLeafCertSubject',
  'clientLeafCertIssuer', 'clientLeafCertValidity', 'connectionLogCustomData',
] as const);

/** `Success` or `Failed:<Code>` (SPEC section 7). */
export function connectionStatus(code: ConnectionFailureCode | undefined): string {
  return code === undefined ? 'Success' : `Failed:${code}`;
}

/** The log extension's per-certificate entries of a `revocationStatus` (leaf first). */
export function revocationLogEntries(status: RevocationStatus): ConnectionLogRevocationEntry[] {
  const all = [status.certificates.leaf, ...status.certificates.intermediates];
  return all.map((s, i) => ({
    certificate: i === 0 ? 'leaf' : `intermediate#${i}`,
    serialNumber: s.serialNumber,
    status: s.status,
    source: s.source,
    responder: s.responder,
    revocationTime: s.revocationTime ?? null,
    revocationReason: s.revocationReason ?? null,
    errorType: s.errorType ?? null,
    errorDetail: s.errorDetail ?? null,
    thisUpdate: s.thisUpdate ?? null,
    nextUpdate: s.nextUpdate ?? null,
  }));
}

/**
 * Receives each connection-log line as it is written: the parsed line (do not modify
 * it) and its JSON text (no trailing newline). Called synchronously on the data path:
 * it must be cheap and must not throw (a throw is swallowed).
 */
export type ConnectionLogListener = (line: Readonly<ConnectionLogLine>, json: string) => void;

/**
 * A tap on the connection log for live viewers (the admin API's connection-log stream).
 * Costs one `size` check per line while nobody is subscribed. Listeners are called in
 * subscription order; one that throws is skipped for that line, the others still run.
 */
export class ConnectionLogTap {
  readonly #listeners = new Set<ConnectionLogListener>();
  readonly #onActivity: ((active: boolean) => void) | undefined;

  /** @param onActivity told `true` when the first listener subscribes and `false` when the last one leaves. */
  constructor(onActivity?: (active: boolean) => void) {
    this.#onActivity = onActivity;
  }

  /** True while at least one listener is subscribed. */
  get active(): boolean {
    return this.#listeners.size > 0;
  }

  /** Number of subscribed listeners. */
  get size(): number {
    return this.#listeners.size;
  }

  /** Adds `listener`; returns its unsubscribe function (idempotent). */
  subscribe(listener: ConnectionLogListener): () => void {
    const wrapped: ConnectionLogListener = (l, j) => listener(l, j);
    this.#listeners.add(wrapped);
    if (this.#listeners.size === 1) this.#onActivity?.(true);
    return () => {
      if (this.#listeners.delete(wrapped) && this.#listeners.size === 0) this.#onActivity?.(false);
    };
  }

  /** Hands one line to every listener (no-op without listeners). */
  publish(line: Readonly<ConnectionLogLine>, json: string): void {
    if (this.#listeners.size === 0) return;
    for (const l of [...this.#listeners]) {
      try {
        l(line, json);
      } catch {
        // A viewer's problem never reaches the data path.
      }
    }
  }
}

/**
 * Writes connection-log lines to a stream, one `JSON.stringify(line) + '\n'` each. A
 * write error is reported once to `onError` and later lines are dropped (logging must
 * never stop the data path); back-pressure is not awaited (lines are small and the
 * stream buffers them). Every line also goes to `tap` when one is given and has
 * listeners (even after the stream failed).
 */
export class ConnectionLogWriter {
  #failed = false;
  constructor(
    private readonly stream: NodeJS.WritableStream,
    private readonly onError: (err: unknown) => void = () => {},
    private readonly tap?: ConnectionLogTap,
  ) {
    stream.on?.('error', (err: unknown) => this.#fail(err));
  }

  /** Writes one line (sets `eventTimestamp` to now when it is empty). */
  write(line: ConnectionLogLine): void {
    const tapped = this.tap?.active === true;
    if (this.#failed && !tapped) return;
    if (!line.eventTimestamp) line.eventTimestamp = new Date().toISOString();
    const json = JSON.stringify(line);
    if (!this.#failed) {
      try {
        this.stream.write(`${json}\n`);
      } catch (err) {
        this.#fail(err);
      }
    }
    if (tapped) this.tap!.publish(line, json);
  }

  #fail(err: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    this.onError(err);
  }
}
