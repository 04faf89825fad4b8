// The admin API client of the console: bearer token from session storage (never in a
// URL), JSON in and out, errors as ApiError with the API's code and message.

const TOKEN_KEY = 'portcullis.adminToken';

export function getToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}
export function setToken(token: string | null): void {
  if (token === null) sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, token);
}

/** An error answer of the API (`{"error":{"code","message"}}`), or a network failure (status 0). */
export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
  /** True for a stale If-Match (someone else changed the resource). */
  get isConflict(): boolean {
    return this.status === 412 || this.code === 'PreconditionFailed';
  }
}

let onUnauthorized: (() => void) | undefined;
/** Called when the API answers 401 (the token was revoked or changed): the app signs out. */
export function setUnauthorizedHandler(f: () => void): void {
  onUnauthorized = f;
}
/** Signs out after a 401 that did not come through {@link request} (the connection-log stream's own fetch). */
export function notifyUnauthorized(): void {
  onUnauthorized?.();
}

export interface ApiResponse<T> {
  data: T;
  /** The ETag header, unquoted. */
  etag: string | undefined;
  status: number;
}

export interface RequestOptions {
  body?: unknown;
  ifMatch?: string;
  signal?: AbortSignal;
  /** Token to use instead of the stored one (sign-in). */
  token?: string;
}

function headers(o: RequestOptions): Record<string, string> {
  const h: Record<string, string> = { accept: 'application/json' };
  const token = o.token ?? getToken();
  if (token) h.authorization = `Bearer ${token}`;
  if (o.body !== undefined) h['content-type'] = 'application/json';
  if (o.ifMatch !== undefined) h['if-match'] = `"${o.ifMatch}"`;
  return h;
}

export async function request<T>(method: string, path: string, o: RequestOptions = {}): Promise<ApiResponse<T>> {
  let res: Response;
  try {
    res = await fetch(path, {
      method, headers: headers(o), signal: o.signal ?? null, cache: 'no-store',
      ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
    });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError(0, 'NetworkError', `the admin API could not be reached (${(e as Error).message})`);
  }
  const text = await res.text();
  let data: unknown = undefined;
  if (text !== '') {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!res.ok) {
    const err = (data as { error?: { code?: string; message?: string } } | undefined)?.error;
    const e = new ApiError(res.status, err?.code ?? `HTTP${res.status}`, err?.message ?? `HTTP ${res.status} ${res.statusText}`);
    if (res.status === 401 && o.token === undefined) onUnauthorized?.();
    throw e;
  }
  const etag = res.headers.get('etag')?.replace(/^"|"$/g, '') ?? undefined;
  return { data: data as T, etag, status: res.status };
}

export const api = {
  get: <T>(path: string, o?: RequestOptions) => request<T>('GET', path, o),
  post: <T>(path: string, body?: unknown, o: RequestOptions = {}) => request<T>('POST', path, { ...o, ...(body !== undefined ? { body } : {}) }),
  put: <T>(path: string, body: unknown, o: RequestOptions = {}) => request<T>('PUT', path, { ...o, body }),
  del: <T>(path: string, o?: RequestOptions) => request<T>('DELETE', path, o),
};

export const enc = encodeURIComponent;

// ---- shapes (see src/admin/openapi.ts) ----
export interface List<T> { Items: T[]; Quantity: number }
export interface TrustStore {
  Id: string; Name: string; ETag: string; Status: string; StatusReason?: string; CertificateCount: number;
  UseClientCertificateOcspEndpoint: boolean; Comment: string; CaBundlePem: string; LastModifiedTime: string;
}
export interface Distribution {
  Id: string; Name: string; ETag: string;
  DistributionConfig: {
    listen: string; aliases: string[];
    viewerMtls: { mode: string; trustStore?: string };
    connectionFunctionAssociation: { name: string } | null;
    origin?: unknown;
  };
}
export interface FunctionSummary {
  Name: string; Id: string; Status: string; Stage: 'DEVELOPMENT' | 'LIVE'; ETag: string; LastModifiedTime: string;
  FunctionConfig: { Comment: string; KeyValueStoreAssociations: { Quantity: number; Items: { KeyValueStoreName: string }[] } };
}
export interface Kvs {
  Name: string; Id: string; Comment?: string; Status: string; FailureReason?: string; ItemCount: number; TotalSizeInBytes: number; ETag: string; LastModified?: string;
  /** Only in the describe answer (GET /v1/key-value-stores/{name}). */
  Limits?: { MaxKeyBytes: number; MaxValueBytes: number; MaxStoreBytes: number; MaxBatchKeys: number };
}
export interface KvsWrite { ETag: string; ItemCount: number; TotalSizeInBytes: number }
export interface InspectedCertificate {
  Index: number; SerialNumber: string; KvsKey: string; Subject: string; Issuer: string; NotBefore: string; NotAfter: string;
  KeyType: string; IsCA: boolean; Sha256Fingerprint: string; EncodingProblem?: string;
}
export interface TestResult {
  decision: 'allow' | 'deny'; implicit: boolean; customData: string | null; logs: string[]; computeUtilization: number; error: string | null;
}
export interface MatrixRow {
  leafStatus: string; intermediateStatus: string; kvs: 'hit' | 'miss'; clientIp: string; decision: 'allow' | 'deny';
  implicit: boolean; customData?: string; error?: string; revokedAllowed: boolean;
}
export interface MatrixResult { name: string; stage: string; etag: string; rows: MatrixRow[]; revokedAllowed: number }
export interface Stats {
  sampledAt: string; windowSeconds: number;
  connections: { allowed: number; denied: number; byStatus: Record<string, number> };
  ocspCache: { hits: number; misses: number; hitRate: number | null };
  totals: { allowed: number; denied: number; ocspCacheHits: number; ocspCacheMisses: number };
  appliedChangeSequence: number | null;
}
export interface Readiness { ready: boolean; status: string; reasons: string[]; details?: Record<string, unknown> }
/** `GET /v1/nodes` (cluster deployed status). */
export interface NodesView {
  LatestSequence: number;
  AllInSync: boolean;
  Quantity: number;
  Items: {
    Name: string; Status: 'ok' | 'starting' | 'degraded' | 'stale'; Reasons: string[]; LastHeartbeat: string;
    HeartbeatAgeMs: number; AppliedSequence: number; InSync: boolean; Stale: boolean; Host?: string;
  }[];
}
