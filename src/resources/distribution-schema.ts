/**
 * The zod schema of a {@link DistributionDocument} (SPEC sections 1, 2 and 6): the one
 * place where its defaults live and where its fields are checked. Used by
 * {@link DistributionService}, by the node config loader (config/, same fields in the
 * same spelling, except `connectionFunction: <name>` for the association) and later by
 * the admin API. Every problem is reported as `field.path: problem`.
 */
import { isAbsolute } from 'node:path';
import { isIP } from 'node:net';
import { z } from 'zod';
import { InvalidArgumentError } from '../errors.js';
import { VIEWER_CERT_HEADER_NAMES } from '../pki/index.js';
import { MAX_RESOURCE_COMMENT_LENGTH, joinProblems, zodProblems } from './common.js';
import type { DistributionDocument, DistributionLimits, ViewerMtlsMode } from './types.js';

/** The viewer mTLS modes (SPEC section 2). */
export const VIEWER_MTLS_MODES: readonly ViewerMtlsMode[] = Object.freeze(['required', 'optional', 'passthrough']);

/**
 * Defaults of every optional {@link DistributionDocument} field, in one place. Times in
 * ms, sizes in bytes. `forwardCertificateHeaders` is every pki/ `VIEWER_CERT_HEADER_NAMES`.
 */
export const DISTRIBUTION_DEFAULTS = Object.freeze({
  aliases: Object.freeze([] as string[]),
  origin: Object.freeze({ connectTimeoutMs: 5000, responseTimeoutMs: 30_000, verifyTls: true }),
  viewerMtls: Object.freeze({
    mode: 'required' as ViewerMtlsMode, ignoreCertificateExpiry: false, advertiseTrustStoreCaNames: false, sessionResumption: false,
  }),
  connectionFunctionAssociation: null,
  forwardCertificateHeaders: Object.freeze([...VIEWER_CERT_HEADER_NAMES] as string[]),
  limits: Object.freeze<DistributionLimits>({ handshakeTimeoutMs: 10_000, maxConnections: 10_000, maxHeaderBytes: 16_384, idleTimeoutMs: 60_000 }),
});

/** Alias of {@link DISTRIBUTION_DEFAULTS} (the name the admin API issue asks for). */
export const distributionDefaults = DISTRIBUTION_DEFAULTS;

/** Largest timer value Node accepts (ms): `setTimeout` turns anything above into 1 ms. */
const MAX_TIMER_MS = 2_147_483_647;

const intIn = (min: number, max: number, unit: string) =>
  z.number()
    .int({ error: `must be an integer (${unit})` })
    .min(min, { error: `must be at least ${min} (${unit})` })
    .max(max, { error: `must be at most ${max} (${unit})` });

/**
 * Checks a `host:port` listen address: an IPv4 address, a host name, or an IPv6 address
 * in brackets (`[::1]:8443`); port 0–65535 (0: any free port, for tests).
 * @returns the problem, or undefined when valid.
 */
export function listenAddressProblem(value: string): string | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  if (!m) return `must be host:port (IPv6 in brackets, e.g. [::1]:8443), got ${JSON.stringify(value)}`;
  const [, v6, host, port] = m;
  if (Number(port) > 65_535) return `port ${port} is out of range (0-65535)`;
  if (v6 !== undefined) return isIP(v6) === 6 ? undefined : `${JSON.stringify(v6)} is not an IPv6 address`;
  if (isIP(host!) === 4 || dnsNameProblem(host!.toLowerCase()) === undefined) return undefined;
  return `${JSON.stringify(host)} is neither an IPv4 address nor a host name`;
}

/** Problem with a lowercase DNS name (RFC 1123 labels, at most 253 characters), or undefined. */
function dnsNameProblem(name: string): string | undefined {
  if (name.length === 0 || name.length > 253) return 'must be 1-253 characters';
  for (const label of name.split('.')) {
    if (!/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(label)) {
      return `label ${JSON.stringify(label)} is not a DNS label (1-63 of a-z 0-9 -, not starting or ending with -)`;
    }
  }
  return undefined;
}

/**
 * Checks an SNI alias and returns it lowercased: a DNS name, or `*.` followed by one
 * (a wildcard for exactly one label, as TLS certificates use them).
 * @returns `{ alias }` or `{ problem }`.
 */
export function normalizeAlias(value: string): { alias: string } | { problem: string } {
  const alias = value.toLowerCase();
  const rest = alias.startsWith('*.') ? alias.slice(2) : alias;
  const problem = dnsNameProblem(rest);
  if (problem) return { problem: `${JSON.stringify(value)} is not a DNS name or *.wildcard: ${problem}` };
  return { alias };
}

const absolutePath = z.string().min(1, { error: 'must not be empty' })
  .refine((p) => isAbsolute(p), { error: (i) => `must be an absolute path, got ${JSON.stringify(i.input)}` });

const listen = z.string().superRefine((v, ctx) => {
  const problem = listenAddressProblem(v);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

const aliases = z.array(z.string()).default(() => [...DISTRIBUTION_DEFAULTS.aliases]).transform((list, ctx) => {
  const out: string[] = [];
  list.forEach((a, i) => {
    const r = normalizeAlias(a);
    if ('problem' in r) ctx.addIssue({ code: 'custom', message: r.problem, path: [i] });
    else if (out.includes(r.alias)) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(r.alias)} is listed twice`, path: [i] });
    else out.push(r.alias);
  });
  return out;
});

const certificates = z.array(z.strictObject({ certFile: absolutePath, keyFile: absolutePath }))
  .min(1, { error: 'at least one server certificate is required' });

const origin = z.strictObject({
  url: z.string().superRefine((v, ctx) => {
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not a URL` });
      return;
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') ctx.addIssue({ code: 'custom', message: `must be an http:// or https:// URL, got ${u.protocol}` });
    else if (u.username || u.password) ctx.addIssue({ code: 'custom', message: 'must not carry credentials' });
  }),
  connectTimeoutMs: intIn(1, MAX_TIMER_MS, 'ms').default(DISTRIBUTION_DEFAULTS.origin.connectTimeoutMs),
  responseTimeoutMs: intIn(1, MAX_TIMER_MS, 'ms').default(DISTRIBUTION_DEFAULTS.origin.responseTimeoutMs),
  verifyTls: z.boolean().default(DISTRIBUTION_DEFAULTS.origin.verifyTls),
  caFile: absolutePath.optional(),
});

const viewerMtls = z.strictObject({
  mode: z.enum(['required', 'optional', 'passthrough']).default(DISTRIBUTION_DEFAULTS.viewerMtls.mode),
  trustStore: z.string().min(1, { error: 'must not be empty' }).optional(),
  ignoreCertificateExpiry: z.boolean().default(DISTRIBUTION_DEFAULTS.viewerMtls.ignoreCertificateExpiry),
  advertiseTrustStoreCaNames: z.boolean().default(DISTRIBUTION_DEFAULTS.viewerMtls.advertiseTrustStoreCaNames),
  sessionResumption: z.boolean().default(DISTRIBUTION_DEFAULTS.viewerMtls.sessionResumption),
}).prefault({});

const forwardCertificateHeaders = z.array(z.string()).default(() => [...DISTRIBUTION_DEFAULTS.forwardCertificateHeaders])
  .transform((list, ctx) => {
    const out: string[] = [];
    list.forEach((h, i) => {
      const canonical = VIEWER_CERT_HEADER_NAMES.find((n) => n.toLowerCase() === h.toLowerCase());
      if (!canonical) ctx.addIssue({ code: 'custom', path: [i], message: `${JSON.stringify(h)} is not one of ${VIEWER_CERT_HEADER_NAMES.join(', ')}` });
      else if (out.includes(canonical)) ctx.addIssue({ code: 'custom', path: [i], message: `${canonical} is listed twice` });
      else out.push(canonical);
    });
    return out;
  });

const limits = z.strictObject({
  handshakeTimeoutMs: intIn(1, MAX_TIMER_MS, 'ms').default(DISTRIBUTION_DEFAULTS.limits.handshakeTimeoutMs),
  maxConnections: intIn(1, 10_000_000, 'connections').default(DISTRIBUTION_DEFAULTS.limits.maxConnections),
  maxHeaderBytes: intIn(1024, 16 * 1024 * 1024, 'bytes').default(DISTRIBUTION_DEFAULTS.limits.maxHeaderBytes),
  idleTimeoutMs: intIn(1, MAX_TIMER_MS, 'ms').default(DISTRIBUTION_DEFAULTS.limits.idleTimeoutMs),
}).prefault({});

const comment = z.string().max(MAX_RESOURCE_COMMENT_LENGTH, { error: `must be at most ${MAX_RESOURCE_COMMENT_LENGTH} characters` }).optional();

/**
 * The fields a distribution has in every spelling (stored document, config file, API
 * body) apart from the function association: config/ composes its own object from
 * these and adds `name` and `connectionFunction`.
 */
export const distributionFieldSchemas = {
  listen, aliases, certificates, origin, viewerMtls, forwardCertificateHeaders, limits, comment,
};

/**
 * Cross-field rules of a distribution (run by every schema that uses
 * {@link distributionFieldSchemas}): `viewerMtls.trustStore` is required unless the
 * mode is `passthrough`; `origin.caFile` and `verifyTls: false` only make sense for an
 * https origin (a caFile on an http origin is refused).
 */
export function refineDistribution(
  d: { viewerMtls: { mode: ViewerMtlsMode; trustStore?: string | undefined }; origin: { url: string; caFile?: string | undefined } },
  ctx: z.RefinementCtx,
): void {
  if (d.viewerMtls.mode !== 'passthrough' && d.viewerMtls.trustStore === undefined) {
    ctx.addIssue({ code: 'custom', path: ['viewerMtls', 'trustStore'], message: `required unless mode is passthrough (mode is ${d.viewerMtls.mode})` });
  }
  if (d.origin.caFile !== undefined && d.origin.url.startsWith('http:')) {
    ctx.addIssue({ code: 'custom', path: ['origin', 'caFile'], message: 'only applies to an https:// origin' });
  }
}

/** The schema of a whole {@link DistributionDocument} (defaults filled in). */
export const distributionDocumentSchema = z.strictObject({
  ...distributionFieldSchemas,
  connectionFunctionAssociation: z.strictObject({ name: z.string().min(1, { error: 'must not be empty' }), id: z.string().min(1).optional() })
    .nullable().default(null),
}).superRefine(refineDistribution);

/**
 * Validates `input` (an API body, a stored document) as a distribution document and
 * fills in the defaults ({@link DISTRIBUTION_DEFAULTS}). Checks the shape only: that
 * the trust store, function and files exist is the service's (and `validate`'s) job.
 * @param path prefix of the key paths in messages (e.g. `distribution "api"`).
 * @throws InvalidArgumentError listing every problem as `path: problem`, separated by `; `.
 */
export function parseDistributionDocument(input: unknown, path = ''): DistributionDocument {
  const r = distributionDocumentSchema.safeParse(input, { reportInput: true });
  if (!r.success) throw new InvalidArgumentError(joinProblems(zodProblems(r.error, path)));
  return stripUndefined(r.data) as DistributionDocument;
}

/** Drops keys whose value is undefined (so stored documents compare and serialise the same). */
export function stripUndefined<T>(value: T): T {
  if (Array.isArray(value)) return value.map(stripUndefined) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined).map(([k, v]) => [k, stripUndefined(v)])) as T;
  }
  return value;
}
