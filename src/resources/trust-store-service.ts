/**
 * Trust stores over the {@link Store} (SPEC sections 1 and 2): create, get (by name or
 * id), list, update, delete — every change of an existing trust store under its ETag
 * (`If-Match`), in the style of functions/ and kvs/.
 *
 * Invalid bundles: a *create* with a bundle that `parseTrustStoreBundle` rejects is
 * still stored, with status `failed` and `statusReason` = the parser's message naming
 * the offending block, so operators see why (SPEC 2: "status `failed`, a reason naming
 * the offending block"). An *update* with an invalid bundle is rejected with
 * InvalidArgument and nothing changes: the trust store keeps serving its previous,
 * valid anchors (CloudFront likewise keeps the old state when an update fails), rather
 * than every distribution using it starting to deny all clients.
 */
import { randomUUID } from 'node:crypto';
import {
  CannotDeleteEntityWhileInUseError, EntityNotFoundError, InvalidArgumentError, PreconditionFailedError, TrustStoreBundleError,
} from '../errors.js';
import { parseTrustStoreBundle, type TrustStoreLimits } from '../pki/index.js';
import type { ResourceRecord, ResourceRepository, Store } from '../store/index.js';
import { MAX_RESOURCE_COMMENT_LENGTH, RESOURCE_NAME_PATTERN, newResourceEtag, requireIfMatch, validateResourceName } from './common.js';
import type { DistributionDocument, TrustStoreDocument } from './types.js';

/** A stored trust store with its document typed. */
export type TrustStoreRecord = ResourceRecord<TrustStoreDocument>;

/** Input of {@link TrustStoreService.create}. */
export interface CreateTrustStoreInput {
  name: string;
  /** The CA bundle (PEM, `#` comment lines allowed). */
  caBundlePem: string;
  /** Check client certificates over OCSP (SPEC 3). Default false. */
  useClientCertificateOcspEndpoint?: boolean;
  /** Up to 128 characters. */
  comment?: string;
}

/** Input of {@link TrustStoreService.update}: fields left undefined keep their value. */
export interface UpdateTrustStoreInput {
  caBundlePem?: string;
  useClientCertificateOcspEndpoint?: boolean;
  comment?: string;
}

/** Options of {@link TrustStoreService}; everything is injectable for tests. */
export interface TrustStoreServiceOptions {
  /** Bundle limits (pki/ `DEFAULT_TRUST_STORE_LIMITS`: 25 certificates, 64 KiB). */
  limits?: Partial<TrustStoreLimits>;
  /** Clock, ms since the epoch. */
  now?: () => number;
  newEtag?: () => string;
  newId?: () => string;
}

/**
 * The stored document for a bundle: status `active` and the certificate count when
 * `parseTrustStoreBundle` accepts it, else status `failed` with the parser's message
 * (naming the offending block) as `statusReason` and count 0.
 * @throws InvalidArgumentError when `limits` are not positive integers.
 */
export function trustStoreDocumentFor(
  input: { caBundlePem: string; useClientCertificateOcspEndpoint: boolean; comment?: string | undefined },
  limits?: Partial<TrustStoreLimits>,
): TrustStoreDocument {
  const base = {
    caBundlePem: input.caBundlePem,
    useClientCertificateOcspEndpoint: input.useClientCertificateOcspEndpoint,
    ...(input.comment !== undefined && input.comment !== '' ? { comment: input.comment } : {}),
  };
  try {
    const anchors = parseTrustStoreBundle(input.caBundlePem, limits);
    return { ...base, status: 'active', certificateCount: anchors.count };
  } catch (err) {
    if (err instanceof TrustStoreBundleError) return { ...base, status: 'failed', statusReason: err.message, certificateCount: 0 };
    throw err;
  }
}

/** Names of the distributions whose `viewerMtls.trustStore` is `name` (ordered). */
export async function distributionsUsingTrustStore(store: Store, name: string): Promise<string[]> {
  return (await store.distributions.list())
    .filter((d) => (d.document as Partial<DistributionDocument> | null)?.viewerMtls?.trustStore === name)
    .map((d) => d.name);
}

function checkComment(comment: unknown): string | undefined {
  if (comment === undefined) return undefined;
  if (typeof comment !== 'string') throw new InvalidArgumentError('comment must be a string');
  if (comment.length > MAX_RESOURCE_COMMENT_LENGTH) {
    throw new InvalidArgumentError(`comment is ${comment.length} characters, over the limit of ${MAX_RESOURCE_COMMENT_LENGTH}`);
  }
  return comment;
}

function checkBundle(pem: unknown): string {
  if (typeof pem !== 'string') throw new InvalidArgumentError('caBundlePem must be a string (PEM text)');
  return pem;
}

function checkBool(v: unknown, field: string): boolean | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw new InvalidArgumentError(`${field} must be true or false`);
  return v;
}

/**
 * The trust-store API over a {@link Store}. Stateless apart from its options; the ETag
 * comparison of every write happens inside the store's write transaction.
 */
export class TrustStoreService {
  private readonly repo: ResourceRepository<TrustStoreDocument>;
  private readonly limits: Partial<TrustStoreLimits> | undefined;
  private readonly now: () => number;
  private readonly newEtag: () => string;
  private readonly newId: () => string;

  constructor(private readonly store: Store, options: TrustStoreServiceOptions = {}) {
    this.repo = store.trustStores as ResourceRepository<TrustStoreDocument>;
    this.limits = options.limits;
    this.now = options.now ?? Date.now;
    this.newEtag = options.newEtag ?? newResourceEtag;
    this.newId = options.newId ?? randomUUID;
  }

  /**
   * Creates a trust store. A bundle the parser rejects is stored with status `failed`
   * and the reason (not an error: the returned record says so).
   * @throws InvalidArgumentError (name, comment, field types), EntityAlreadyExistsError.
   */
  async create(input: CreateTrustStoreInput): Promise<TrustStoreRecord> {
    validateResourceName(input.name, 'trust store');
    const document = trustStoreDocumentFor({
      caBundlePem: checkBundle(input.caBundlePem),
      useClientCertificateOcspEndpoint: checkBool(input.useClientCertificateOcspEndpoint, 'useClientCertificateOcspEndpoint') ?? false,
      comment: checkComment(input.comment),
    }, this.limits);
    return this.repo.create({ id: this.newId(), name: input.name, etag: this.newEtag(), document, now: this.now() });
  }

  /** The trust store with that name, or else with that id. @throws EntityNotFoundError. */
  async get(nameOrId: string): Promise<TrustStoreRecord> {
    const byName = RESOURCE_NAME_PATTERN.test(nameOrId) ? await this.repo.get(nameOrId) : undefined;
    const r = byName ?? (await this.repo.list()).find((t) => t.id === nameOrId);
    if (!r) throw new EntityNotFoundError(`trust store "${nameOrId}" does not exist`);
    return r;
  }

  /** Every trust store, ordered by name. */
  async list(): Promise<TrustStoreRecord[]> {
    return this.repo.list();
  }

  /**
   * Updates a trust store under its ETag. A new bundle must pass `parseTrustStoreBundle`:
   * an invalid one is rejected and nothing changes (see the file comment); a valid one
   * makes the status `active` (also for a store that was `failed`).
   * @throws InvalidIfMatchVersionError, PreconditionFailedError, EntityNotFoundError,
   *   InvalidArgumentError (an invalid bundle: the message is the parser's, naming the
   *   block; the TrustStoreBundleError is the `cause`) — nothing changed in every case.
   */
  async update(name: string, ifMatch: string, fields: UpdateTrustStoreInput): Promise<TrustStoreRecord> {
    validateResourceName(name, 'trust store');
    const etag = requireIfMatch(ifMatch);
    const current = await this.get(name);
    if (current.name !== name) throw new EntityNotFoundError(`trust store "${name}" does not exist`);
    if (current.etag !== etag) throw this.stale(name, etag);
    const comment = fields.comment === undefined ? current.document.comment : checkComment(fields.comment);
    const ocsp = checkBool(fields.useClientCertificateOcspEndpoint, 'useClientCertificateOcspEndpoint') ?? current.document.useClientCertificateOcspEndpoint;
    const pem = fields.caBundlePem === undefined ? current.document.caBundlePem : checkBundle(fields.caBundlePem);
    const document = trustStoreDocumentFor({ caBundlePem: pem, useClientCertificateOcspEndpoint: ocsp, comment }, this.limits);
    if (document.status === 'failed' && fields.caBundlePem !== undefined) {
      throw new InvalidArgumentError(`the CA bundle of trust store "${name}" was rejected, nothing was changed: ${document.statusReason}`);
    }
    return this.repo.update(name, { ifMatch: etag, newEtag: this.newEtag(), document, now: this.now() });
  }

  /**
   * Deletes a trust store under its ETag; refused while a distribution uses it.
   * @throws InvalidIfMatchVersionError, EntityNotFoundError, PreconditionFailedError,
   *   CannotDeleteEntityWhileInUseError (naming the distributions) — nothing changed.
   */
  async delete(name: string, ifMatch: string): Promise<void> {
    validateResourceName(name, 'trust store');
    const etag = requireIfMatch(ifMatch);
    const current = await this.repo.get(name);
    if (!current) throw new EntityNotFoundError(`trust store "${name}" does not exist`);
    if (current.etag !== etag) throw this.stale(name, etag);
    const users = await distributionsUsingTrustStore(this.store, name);
    if (users.length > 0) {
      throw new CannotDeleteEntityWhileInUseError(
        `trust store "${name}" is used by distribution${users.length > 1 ? 's' : ''} ${users.map((u) => `"${u}"`).join(', ')}`,
      );
    }
    await this.repo.delete(name, etag, this.now());
  }

  private stale(name: string, etag: string): PreconditionFailedError {
    return new PreconditionFailedError(`the If-Match ETag "${etag}" is not the current ETag of trust store "${name}"`);
  }
}
