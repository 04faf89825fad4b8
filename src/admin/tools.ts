/**
 * Tool routes of the admin API for the web console and scripts:
 * - `POST /v1/certificates/inspect` — what a PEM holds: per certificate the serial in
 *   the form the connection object exposes (`clientCertificate.certificates.leaf.serialNumber`,
 *   SPEC section 4), the KVS key a revocation list uses for it (SPEC section 5:
 *   colon-less lowercase hex), subject, issuer, validity and key type. The PEM is never
 *   logged or stored.
 * - `POST /v1/connection-functions/{id}/matrix` — the decision matrix of SPEC section 4
 *   (leaf × intermediate status × KVS hit/miss × client IP) for one stage, run in the
 *   watchdog'd sandbox worker like `/test`; the `function matrix --json` shape.
 */
import { isIP } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { InvalidArgumentError, PortcullisError } from '../errors.js';
import { joinProblems, zodProblems } from '../resources/index.js';
import {
  matrixKvsData, runDecisionMatrixWith, SAMPLE_CHAIN_PEM, type FunctionLimits, type FunctionService, type MatrixRow, type SandboxWorker,
} from '../functions/index.js';
import {
  ParsedCertificate, certificateView, chainView, normalizeSerialForKvs, splitCertificates, type ChainView,
} from '../pki/index.js';
import type { FunctionStage } from '../store/index.js';

/** What {@link registerToolRoutes} needs from the API (shared with the `/test` route). */
export interface ToolRouteDeps {
  functions: FunctionService;
  /** The sandbox worker `/test` runs in (one per admin app). */
  sandbox: SandboxWorker;
  functionLimits: FunctionLimits;
  /** A function's name from its id or name (unknown: returned as given). */
  functionName(idOrName: string): Promise<string>;
  /** The items of the KVS associated with the function's `stage`; undefined when none is associated. */
  associatedKvsData(name: string, stage: FunctionStage): Promise<Map<string, string> | undefined>;
}

/** One certificate as `POST /v1/certificates/inspect` describes it. */
export interface InspectedCertificate {
  /** Position in the PEM, from 0. */
  Index: number;
  /** Lowercase colon hex, leading `00` kept: the connection object's `serialNumber`. */
  SerialNumber: string;
  /** The revocation-list KVS key of this serial (colon-less lowercase hex, SPEC section 5). */
  KvsKey: string;
  Subject: string;
  Issuer: string;
  /** ISO 8601 seconds, `Z`. */
  NotBefore: string;
  NotAfter: string;
  /** e.g. `EC P-256`, `RSA 2048`. */
  KeyType: string;
  IsCA: boolean;
  /** Uppercase colon hex SHA-256 of the DER. */
  Sha256Fingerprint: string;
  /** Present when the bytes are not valid DER X.509 (OpenSSL refused them). */
  EncodingProblem?: string;
}

/**
 * A client IP address in a request body: an IPv4 dotted quad or an IPv6 address
 * (node:net isIP), without a port or brackets — what the gateway puts in
 * `connection.clientIp`. Anything else is refused (400 naming the field).
 */
export const ipAddress = z.string().refine((s) => isIP(s) !== 0, { error: 'must be an IPv4 or IPv6 address (no port, no brackets)' });

const inspectBody = z.strictObject({ pem: z.string().min(1) });
const matrixBody = z.strictObject({
  stage: z.enum(['DEVELOPMENT', 'LIVE']).optional(),
  clientCertificatePem: z.string().optional(),
  clientIps: z.array(ipAddress).min(1).max(16).optional(),
});

function parse<T>(schema: z.ZodType<T>, input: unknown): T {
  if (input === undefined || input === null) throw new InvalidArgumentError('body: a JSON object is required');
  const r = schema.safeParse(input);
  if (!r.success) throw new InvalidArgumentError(joinProblems(zodProblems(r.error)));
  return r.data;
}

/**
 * The certificates of a PEM text, parsed.
 * @throws InvalidArgumentError naming `field` when the text holds no certificate or a
 *   block does not parse (the message never repeats the PEM).
 */
export function parsePemCertificates(pem: string, field: string): ParsedCertificate[] {
  // Not PEM at all (pasted garbage, DER bytes as text): say so, rather than a DER parser's byte counts.
  if (!/-----BEGIN CERTIFICATE-----/.test(pem)) {
    throw new InvalidArgumentError(`${field}: not a PEM certificate (expected -----BEGIN CERTIFICATE----- … -----END CERTIFICATE----- blocks)`);
  }
  try {
    const blocks = splitCertificates(Buffer.from(pem, 'utf8'));
    if (blocks.length === 0) throw new InvalidArgumentError('holds no certificate (expected -----BEGIN CERTIFICATE----- blocks)');
    return blocks.map((b) => ParsedCertificate.fromDer(b.der, b.where));
  } catch (e) {
    if (e instanceof PortcullisError) throw new InvalidArgumentError(`${field}: ${e.message}`, { cause: e });
    throw e;
  }
}

/** {@link InspectedCertificate} of one parsed certificate. */
export function inspectCertificate(cert: ParsedCertificate, index: number): InspectedCertificate {
  const v = certificateView(cert);
  const k = cert.publicKey;
  const out: InspectedCertificate = {
    Index: index, SerialNumber: v.serialNumber, KvsKey: normalizeSerialForKvs(v.serialNumber), Subject: v.subject, Issuer: v.issuer,
    NotBefore: v.validity.notBefore, NotAfter: v.validity.notAfter,
    KeyType: k.type === 'EC' ? `EC ${k.curve ?? `${k.bits ?? '?'} bits`}` : k.type === 'other' ? k.description : `${k.type} ${k.bits ?? '?'}`,
    IsCA: cert.isCA, Sha256Fingerprint: v.sha256Fingerprint,
  };
  if (cert.encodingProblem !== undefined) out.EncodingProblem = cert.encodingProblem;
  return out;
}

/** Registers the tool routes (see the file comment). */
export function registerToolRoutes(app: FastifyInstance, deps: ToolRouteDeps): void {
  app.post('/v1/certificates/inspect', async (req) => {
    const b = parse(inspectBody, req.body);
    const items = parsePemCertificates(b.pem, 'pem').map(inspectCertificate);
    return { Items: items, Quantity: items.length };
  });

  app.post('/v1/connection-functions/:id/matrix', async (req, reply) => {
    const b = parse(matrixBody, req.body ?? {});
    const n = await deps.functionName((req.params as Record<string, string>).id ?? '');
    const stage: FunctionStage = b.stage ?? 'DEVELOPMENT';
    const code = await deps.functions.getCode(n, stage);
    const chain: ChainView = chainView(parsePemCertificates(b.clientCertificatePem ?? SAMPLE_CHAIN_PEM, 'clientCertificatePem'));
    const kvsData = await deps.associatedKvsData(n, stage);
    const options = { chain, ...(kvsData ? { kvsData } : {}), ...(b.clientIps ? { clientIps: b.clientIps } : {}) };
    const fn = await deps.sandbox.load(code.code, { ...deps.functionLimits, name: n }, matrixKvsData(options));
    let rows: MatrixRow[];
    try {
      rows = await runDecisionMatrixWith((conn, kvs, now) => fn.invoke(conn, { kvs, now }), options);
    } finally {
      fn.dispose();
    }
    const body = { name: n, stage, etag: code.ETag, rows, revokedAllowed: rows.filter((r) => r.revokedAllowed).length };
    return reply.header('etag', `"${code.ETag}"`).send(body);
  });
}
