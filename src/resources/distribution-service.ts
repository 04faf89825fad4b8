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
 *
 * Listen sockets: addresses are resolved as the edge binds them (`localhost:P` and
 * `127.0.0.1:P` are one socket, shared through SNI). A listen address whose socket
 * overlaps another distribution's without being the same (a wildcard `0.0.0.0:P` /
 * `[::]:P` and a specific address on port P: binding both fails with EADDRINUSE), or
 * the admin listener's socket, is refused with `CNAMEAlreadyExists` (409) naming both —
 * like an alias, a socket is a claim another resource already holds.
 */
import { randomUUID } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
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
  /**
   * The admin listener's `host:port` (a function: known after binding when the port is
   * 0); a distribution may not listen on it or on a socket overlapping it.
   */
  adminListen?: string | (() => string | undefined);
  /** Host name resolution for listen addresses (default `dns.lookup`, as `listen` binds). */
  lookupHost?: (host: string) => Promise<{ address: string; family: number }>;
}

/** A listen address as the socket it binds: `ip:port` (IPv6 `[ip]:port`). */
export interface ListenSocket {
  key: string;
  ip: string;
  family: 4 | 6;
  port: number;
}

/**
 * Resolves a `host:port` listen address (IPv6 as `[::1]:port`) to the socket
 * `net.Server.listen` binds: IP literals normalised, host names through `lookupHost`
 * (default `dns.lookup`, as listen does) — so `localhost:9543` and `127.0.0.1:9543` are
 * recognised as one socket. The edge groups its listeners with it.
 * @throws InvalidArgumentError for a malformed address or a port above 65535; the
 *   lookup's error (e.g. ENOTFOUND) for a name that does not resolve.
 */
export async function resolveListenAddress(
  listen: string, lookupHost: (host: string) => Promise<{ address: string; family: number }> = (h) => lookup(h),
): Promise<ListenSocket> {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new InvalidArgumentError(`listen address "${listen}" is not host:port (IPv6 as [::1]:port)`);
  let host = m[1] ?? m[2]!;
  if (isIP(host) === 0) host = (await lookupHost(host)).address;
  const family = isIP(host);
  if (family === 4) return { key: `${host}:${port}`, ip: host, family: 4, port };
  if (family !== 6) throw new InvalidArgumentError(`listen address "${listen}": "${host}" is not an IP address`);
  const ip = new URL(`http://[${host}]/`).hostname.slice(1, -1);
  return { key: `[${ip}]:${port}`, ip, family: 6, port };
}

/**
 * {@link resolveListenAddress}, or undefined when the address is malformed or the name
 * does not resolve (nothing can be said about overlaps then; the edge reports it).
 */
export async function resolveListenSocket(
  listen: string, lookupHost: (host: string) => Promise<{ address: string; family: number }> = (h) => lookup(h),
): Promise<ListenSocket | undefined> {
  try {
    return await resolveListenAddress(listen, lookupHost);
  } catch {
    return undefined;
  }
}

/**
 * How two sockets relate: `same` (one listener, shared through SNI), `overlap` (different,
 * but binding both fails with EADDRINUSE: a wildcard `0.0.0.0:P` covers every IPv4
 * address on P, `[::]:P` — dual-stack as Node binds it — every address), or `apart`.
 * Port 0 (any free port) never overlaps.
 */
export function compareListenSockets(a: ListenSocket, b: ListenSocket): 'same' | 'overlap' | 'apart' {
  if (a.port === 0 || b.port === 0 || a.port !== b.port) return 'apart';
  if (a.key === b.key) return 'same';
  const covers = (w: ListenSocket, o: ListenSocket): boolean => (w.family === 6 && w.ip === '::') || (w.family === 4 && w.ip === '0.0.0.0' && o.family === 4);
  return covers(a, b) || covers(b, a) ? 'overlap' : 'apart';
}

/** What {@link findAliasConflicts} compares: a distribution's name, listen address and aliases. */
export interface DistributionListenClaim {
  name: string;
  listen: string;
  aliases: readonly string[];
  /** The resolved socket key ({@link ListenSocket.key}); when given, claims compare by it (`localhost:P` = `127.0.0.1:P`). */
  socket?: string;
}

/** The listen address in a form where equal addresses compare equal (the socket, else host lowercased). */
function listenKey(c: DistributionListenClaim): string {
  return c.socket ?? c.listen.toLowerCase();
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
      const key = `${listenKey(c)} ${alias}`;
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
  private readonly adminListen: () => string | undefined;
  private readonly lookupHost: ((host: string) => Promise<{ address: string; family: number }>) | undefined;

  constructor(private readonly store: Store, options: DistributionServiceOptions = {}) {
    this.repo = store.distributions as ResourceRepository<DistributionDocument>;
    this.now = options.now ?? Date.now;
    this.newEtag = options.newEtag ?? newResourceEtag;
    this.newId = options.newId ?? randomUUID;
    const admin = options.adminListen;
    this.adminListen = typeof admin === 'function' ? admin : () => admin;
    this.lookupHost = options.lookupHost;
  }

  /**
   * Checks `input` and its references without writing; returns the document as it
   * would be stored (defaults filled in).
   * @param name the distribution it is for (excluded from the alias check).
   * @throws InvalidArgumentError (shape, `field.path: problem`), EntityNotFoundError
   *   (trust store or function), CnameAlreadyExistsError (an alias another distribution
   *   on the same socket claims; a listen socket overlapping another distribution's or
   *   the admin listener's).
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
    const resolve = (listen: string): Promise<ListenSocket | undefined> => resolveListenSocket(listen, this.lookupHost);
    const mine = await resolve(doc.listen);
    const sockets = await Promise.all(others.map((d) => resolve(d.document.listen)));
    if (mine) {
      const adminListen = this.adminListen();
      const admin = adminListen !== undefined ? await resolve(adminListen) : undefined;
      if (admin && compareListenSockets(mine, admin) !== 'apart') {
        throw new CnameAlreadyExistsError(`listen: ${doc.listen} ${compareListenSockets(mine, admin) === 'same' ? 'is' : 'overlaps'} the admin listener's address ${adminListen}; give the distribution another address or port`);
      }
      const clashes = others.flatMap((d, i) => (sockets[i] && compareListenSockets(mine, sockets[i]) === 'overlap'
        ? [`listen: ${doc.listen} of distribution "${name}" overlaps ${d.document.listen} of distribution "${d.name}" on port ${mine.port} (a wildcard and a specific address cannot both listen: EADDRINUSE); give them the same listen address or different ports`]
        : []));
      if (clashes.length > 0) throw new CnameAlreadyExistsError(clashes.join('; '));
    }
    const claim = (n: string, listen: string, aliases: readonly string[], socket: ListenSocket | undefined): DistributionListenClaim => (
      { name: n, listen, aliases, ...(socket ? { socket: socket.key } : {}) });
    const conflicts = findAliasConflicts([...others.map((d, i) => claim(d.name, d.document.listen, d.document.aliases, sockets[i])), claim(name, doc.listen, doc.aliases, mine)])
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
