/**
 * The contracts between the edge gate and its neighbours:
 * - {@link AdmittedConnection} / {@link ConnectionHandler}: what the gate hands to the
 *   HTTP proxy (src/edge/proxy.ts) for an allowed connection (SPEC section 6);
 * - {@link FunctionInvoker}: the structural interface of the FunctionHost (functions/)
 *   the gate calls to run a distribution's LIVE connection function (SPEC section 4).
 */
import type { TLSSocket } from 'node:tls';
import type { FunctionResult } from '../functions/index.js';
import type { DistributionLimits, DistributionOrigin } from '../resources/types.js';

export type { DistributionLimits, DistributionOrigin } from '../resources/types.js';

/**
 * A connection the gate allowed (SPEC sections 2–4 passed), handed over before any
 * application byte was read. The handler owns the socket from then on (reads the
 * HTTP/1.1 or HTTP/2 traffic, ALPN already negotiated, and closes it).
 */
export interface AdmittedConnection {
  /** The TLS socket, handshake done, paused at the first application byte. */
  socket: TLSSocket;
  /** The connection id also in the connection log and the function's `connection.connectionId`. */
  connectionId: string;
  distributionId: string;
  distributionName: string;
  /** Client address as the socket reports it (IPv4 dotted, or IPv6). */
  clientIp: string;
  clientPort: number;
  /** The distribution's origin at admission time (a later change applies to new connections). */
  origin: DistributionOrigin;
  /** The distribution's limits (the proxy applies `maxHeaderBytes` and `idleTimeoutMs`). */
  limits: DistributionLimits;
  /**
   * Exactly the certificate headers to add to every request on this connection, canonical
   * case (the proxy removes any client-sent copies of every `CloudFront-Viewer-Cert-*`,
   * `Client-Cert` and `Client-Cert-Chain` header first):
   * - `required`/`optional`: the distribution's `forwardCertificateHeaders` subset of
   *   pki/ `VIEWER_CERT_HEADER_NAMES`; `CloudFront-Viewer-Cert-Present` is `1`, or `0`
   *   with no other header when no certificate was presented;
   * - `passthrough`: `Client-Cert` (leaf) and `Client-Cert-Chain` (intermediates, omitted
   *   when none) as RFC 9440 byte sequences (`:base64-DER:`, comma-separated list).
   */
  certificateHeaders: Record<string, string>;
}

/** Receives admitted connections (the proxy implements it). */
export interface ConnectionHandler {
  /** Takes ownership of the socket. Must not throw (errors are the handler's to log). */
  handle(conn: AdmittedConnection): void;
  /** Ends the handler's connections gracefully (in-flight requests finish) and releases origin pools. */
  close(): Promise<void>;
}

/** What one {@link FunctionInvoker.invoke} call produced. */
export interface FunctionInvocation {
  result: FunctionResult;
  /** Id of the function that ran (absent when it was not found). */
  functionId?: string;
  /** LIVE ETag of the version that ran. */
  etag?: string;
  /** Wall time of the invocation as the host measured it, µs. */
  durationUs: number;
}

/**
 * Runs the LIVE stage of a connection function (the FunctionHost of functions/, which
 * runs functions in a worker thread). `invoke` never rejects: a missing function, a
 * crashed worker or a timeout come back as a deny with `failureCode`
 * `ConnectionFunctionError`.
 */
export interface FunctionInvoker {
  /**
   * @param functionName the distribution's `connectionFunctionAssociation.name`.
   * @param connectionJsonText functions/ `connectionJson(buildConnection(...))`.
   * @param options.now what `Date.now()` returns inside the function, ms since the epoch.
   */
  invoke(functionName: string, connectionJsonText: string, options?: { now?: number }): Promise<FunctionInvocation>;
}
