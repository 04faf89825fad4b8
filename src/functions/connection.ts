/**
 * The `connection` object a connection function receives (SPEC section 4, CloudFront
 * connection functions), built on the host and handed to the sandbox as JSON text.
 * `allow()`, `deny()` and `logCustomData()` are added inside the sandbox.
 */
import { randomFillSync } from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';
import { chainView, type ChainView, type ParsedCertificate } from '../pki/index.js';
import type { RevocationStatus } from '../revocation/index.js';

/** `connection.clientCertificate` (absent when the client presented no certificate). */
export interface ConnectionClientCertificate {
  /** The leaf and the intermediates the client sent, as pki/ `chainView` shapes them. */
  certificates: ChainView;
  /** SPEC section 3 `revocationStatus`; present when OCSP checking is enabled. */
  revocationStatus?: RevocationStatus;
}

/** The data part of the SPEC section 4 `connection` object. */
export interface ConnectionObject {
  /** Unique per connection, URL-safe (base64url, 24 characters). */
  connectionId: string;
  /** Client address as the socket reports it (IPv4 dotted or IPv6). */
  clientIp: string;
  /** Portcullis extension: the client's TCP port. */
  clientPort: number;
  /** The SNI host name, or the listen host when the client sent no SNI. */
  endpoint: string;
  distributionId: string;
  clientCertificate?: ConnectionClientCertificate;
}

/** Inputs of {@link buildConnection}. */
export interface ConnectionInput {
  clientIp: string;
  clientPort: number;
  endpoint: string;
  distributionId: string;
  /** Presented chain, leaf first: parsed certificates or an already built chain view. Omit when none was presented. */
  certificates?: readonly ParsedCertificate[] | ChainView;
  revocationStatus?: RevocationStatus;
  /** Default: {@link newConnectionId}. */
  connectionId?: string;
}

/**
 * A new connection id: 18 random bytes as base64url (24 characters, URL-safe, no
 * padding), from a pooled CSPRNG buffer. `random` (n → n random bytes) is injectable for tests.
 */
export function newConnectionId(random?: (n: number) => Buffer): string {
  if (random) return random(18).toString('base64url');
  if (idPoolOffset + ID_BYTES > idPool.length) {
    randomFillSync(idPool);
    idPoolOffset = 0;
  }
  const id = idPool.toString('base64url', idPoolOffset, idPoolOffset + ID_BYTES);
  idPoolOffset += ID_BYTES;
  return id;
}

const ID_BYTES = 18;
/**
 * Random bytes for 256 ids, refilled from the CSPRNG when used up (one `randomFillSync`
 * per 256 connections instead of one per connection, as Node's `randomUUID` does);
 * every byte is used once.
 */
const idPool = Buffer.alloc(ID_BYTES * 256);
let idPoolOffset = idPool.length;

/**
 * Builds the SPEC section 4 connection object. `clientCertificate` is present only
 * when `certificates` is given (non-empty).
 * @throws InvalidArgumentError when `certificates` is an empty array or `clientPort` is not a port.
 * @throws CertificateParseError as pki/ `chainView`.
 */
export function buildConnection(input: ConnectionInput): ConnectionObject {
  if (!Number.isInteger(input.clientPort) || input.clientPort < 0 || input.clientPort > 65535) {
    throw new InvalidArgumentError(`clientPort must be an integer from 0 to 65535, got ${String(input.clientPort)}`);
  }
  const conn: ConnectionObject = {
    connectionId: input.connectionId ?? newConnectionId(),
    clientIp: input.clientIp,
    clientPort: input.clientPort,
    endpoint: input.endpoint,
    distributionId: input.distributionId,
  };
  if (input.certificates !== undefined) {
    const certs = input.certificates;
    let view: ChainView;
    if (Array.isArray(certs)) {
      if (certs.length === 0) throw new InvalidArgumentError('certificates must contain at least the leaf');
      view = chainView(certs as readonly ParsedCertificate[]);
    } else {
      view = certs as ChainView;
    }
    conn.clientCertificate = { certificates: view };
    if (input.revocationStatus) conn.clientCertificate.revocationStatus = input.revocationStatus;
  }
  return conn;
}

const chainJsonCache = new WeakMap<ChainView, string>();

/**
 * The JSON text of a connection object, as {@link FunctionInstance.invoke} takes it.
 * Same result as `JSON.stringify(conn)`, but the certificates part is serialised once
 * per chain-view object and reused (a warm gateway sees the same client chains again
 * and again), which keeps marshalling to a few microseconds.
 */
export function connectionJson(conn: ConnectionObject): string {
  let s = `{"connectionId":${JSON.stringify(conn.connectionId)},"clientIp":${JSON.stringify(conn.clientIp)},"clientPort":${conn.clientPort},"endpoint":${JSON.stringify(conn.endpoint)},"distributionId":${JSON.stringify(conn.distributionId)}`;
  const cc = conn.clientCertificate;
  if (cc) {
    let chain = chainJsonCache.get(cc.certificates);
    if (chain === undefined) {
      chain = JSON.stringify(cc.certificates);
      chainJsonCache.set(cc.certificates, chain);
    }
    s += `,"clientCertificate":{"certificates":${chain}`;
    if (cc.revocationStatus) s += `,"revocationStatus":${JSON.stringify(cc.revocationStatus)}`;
    s += '}';
  }
  return `${s}}`;
}
