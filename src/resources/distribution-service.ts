/**
 * Distributions over the {@link Store} (SPEC section 1): create, get (by name or id),
 * list, update (the whole document, as CloudFront's UpdateDistribution), delete — every
 * change of an existing distribution under its ETag (`If-Match`).
 *
 * A document is checked by {@link parseDistributionDocument} (shape and defaults), then
 * against the store: the trust store named by `viewerMtls.trustStore` must exist
 * (any status: a `failed` one makes the edge deny, which is fail-closed), the
 * connection function of `connectionFunctionAssociation` must exist (either stage; the
 * edge runs LIVE), and no other distribution on the same listen address may claim one
 * of its aliases. Nothing refers to distributions, so a delete is never refused for use.
 */
import { randomUUID } from 'node:crypto';
import {
  CnameAlreadyExistsError, EntityNotFoundError, InvalidArgumentError, PreconditionFailedError,
} from '../errors.js';
import type { ResourceRecord, ResourceRepository, Store } from '../store/index.js';
import { RESOURCE_NAME_PATTERN, newResourceEtag, requireIfMatch, validateResourceName } from './common.js';
import { parseDistributionDocument } from './distribution-schema.js';
import type { DistributionDocument } from './types.js';

/** A stored distribution with its document typed. */
export type DistributionRecord = ResourceRecord<DistributionDocument>;

/** Options of {@link DistributionService}; everything is injectable for tests. */
export interface DistributionServiceOptions {
  now?: () => number;
  newEtag?: () => string;
  newId?: () => string;
}

/** What {@link findAliasConflicts} compares: a distribution's name, listen address and aliases. */
export interface DistributionListenClaim {
  name: string;
  listen: string;
  aliases: readonly string[];
}

/** The listen address in a form where equal addresses compare equal (host lowercased). */
function listenKey(listen: string): string {
  return listen.toLowerCase();
}

/**
 * Pairs of distributions that share a listen address and claim the same alias, as
 * messages naming both: `distributions "a" and "b" both claim alias "x.example.com" on
 * 127.0.0.1:8443`. A wildcard and a name it covers do not conflict (the exact name wins).
 */
export function findAliasConflicts(claims: readonly DistributionListenClaim[]): string[] {
  const owner = new Map<string, string>();
  const out: string[] = [];
  for (const c of claims) {
    for (const alias of c.aliases) {
      const key = `${listenKey(c.listen)} ${alias}`;
      const other = owner.get(key);
      if (other !== undefined && other !== c.name) out.push(`distributions "${other}" and "${c.name}" both claim alias "${alias}" on ${c.listen}`);
      else owner.set(key, c.name);
    }
  }
  return out;
}

/** The distribution API over a {@link Store}. Stateless apart from its options. */
export class DistributionService {
  private readonly repo: ResourceRepository<DistributionDocument>;
  private readonly now: () => number;
  private readonly newEtag: () => string;
  private readonly newId: () => string;

  constructor(private readonly store: Store, options: DistributionServiceOptions = {}) {
    this.repo = store.distributions as ResourceRepository<DistributionDocument>;
    this.now = options.now ?? Date.now;
    this.newEtag = options.newEtag ?? newResourceEtag;
    this.newId = options.newId ?? randomUUID;
  }

  /**
   * Checks `input` and its references without writing; returns the document as it
   * would be stored (defaults filled in).
   * @param name the distribution it is for (excluded from the alias check).
   * @throws InvalidArgumentError (shape, `field.path: problem`), EntityNotFoundError
   *   (trust store or function), CnameAlreadyExistsError.
   */
  async check(name: string, input: unknown): Promise<DistributionDocument> {
    validateResourceName(name, 'distribution');
    const doc = parseDistributionDocument(input);
    const ts = doc.viewerMtls.trustStore;
    if (ts !== undefined && !(await this.store.trustStores.get(ts))) {
      throw new EntityNotFoundError(`viewerMtls.trustStore: trust store "${ts}" does not exist`);
    }
    const assoc = doc.connectionFunctionAssociation;
    if (assoc) {
      const fn = await this.store.functions.get(assoc.name, 'DEVELOPMENT');
      if (!fn) throw new EntityNotFoundError(`connectionFunctionAssociation.name: connection function "${assoc.name}" does not exist`);
      if (assoc.id !== undefined && assoc.id !== fn.id) {
        throw new InvalidArgumentError(`connectionFunctionAssociation.id: "${assoc.id}" is not the id of connection function "${assoc.name}" (${fn.id})`);
      }
    }
    const others = (await this.repo.list()).filter((d) => d.name !== name);
    const conflicts = findAliasConflicts([...others.map((d) => ({ name: d.name, listen: d.document.listen, aliases: d.document.aliases })), { name, listen: doc.listen, aliases: doc.aliases }])
      .filter((m) => m.includes(`"${name}"`));
    if (conflicts.length > 0) throw new CnameAlreadyExistsError(conflicts.join('; '));
    return doc;
  }

  /**
   * Creates a distribution from `input` (a DistributionDocument, defaults allowed).
   * @throws everything {@link check} throws, EntityAlreadyExistsError.
   */
  async create(name: string, input: unknown): Promise<DistributionRecord> {
    const document = await this.check(name, input);
    return this.repo.create({ id: this.newId(), name, etag: this.newEtag(), document, now: this.now() });
  }

  /** The distribution with that name, or else with that id. @throws EntityNotFoundError. */
  async get(nameOrId: string): Promise<DistributionRecord> {
    const byName = typeof nameOrId === 'string' && RESOURCE_NAME_PATTERN.test(nameOrId) ? await this.repo.get(nameOrId) : undefined;
    const r = byName ?? (await this.repo.list()).find((d) => d.id === nameOrId);
    if (!r) throw new EntityNotFoundError(`distribution "${nameOrId}" does not exist`);
    return r;
  }

  /** Every distribution, ordered by name. */
  async list(): Promise<DistributionRecord[]> {
    return this.repo.list();
  }

  /**
   * Replaces the document of a distribution under its ETag (omitted optional fields
   * take their defaults, as in create).
   * @throws InvalidIfMatchVersionError, PreconditionFailedError, EntityNotFoundError,
   *   and everything {@link check} throws — nothing changed in every case.
   */
  async update(name: string, ifMatch: string, input: unknown): Promise<DistributionRecord> {
    validateResourceName(name, 'distribution');
    const etag = requireIfMatch(ifMatch);
    const current = await this.repo.get(name);
    if (!current) throw new EntityNotFoundError(`distribution "${name}" does not exist`);
    if (current.etag !== etag) throw this.stale(name, etag);
    const document = await this.check(name, input);
    return this.repo.update(name, { ifMatch: etag, newEtag: this.newEtag(), document, now: this.now() });
  }

  /** Deletes a distribution under its ETag. @throws InvalidIfMatchVersionError, EntityNotFoundError, PreconditionFailedError. */
  async delete(name: string, ifMatch: string): Promise<void> {
    validateResourceName(name, 'distribution');
    const etag = requireIfMatch(ifMatch);
    const current = await this.repo.get(name);
    if (!current) throw new EntityNotFoundError(`distribution "${name}" does not exist`);
    if (current.etag !== etag) throw this.stale(name, etag);
    await this.repo.delete(name, etag, this.now());
  }

  private stale(name: string, etag: string): PreconditionFailedError {
    return new PreconditionFailedError(`the If-Match ETag "${etag}" is not the current ETag of distribution "${name}"`);
  }
}
