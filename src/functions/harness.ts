/**
 * Offline testing of connection functions (SPEC section 4 "Test" and "Decision
 * matrix"): synthetic `revocationStatus` objects, KVS import documents as snapshots,
 * and the decision matrix over leaf status × intermediate status × KVS hit/miss ×
 * client IPs, flagging every row where a revoked certificate is admitted.
 */
import { normalizeSerialForKvs, type ChainView, type CertificateView } from '../pki/index.js';
import { chainValidity, type CertificateRevocationStatus, type RevocationStatus, type RevocationStatusValue } from '../revocation/index.js';
import { buildConnection } from './connection.js';
import { kvsSnapshotFromMap, type FunctionInstance, type FunctionResult, type KvsSnapshotLike } from './runtime.js';

/** The four per-certificate statuses of SPEC section 3, in matrix order. */
export const MATRIX_STATUSES: readonly RevocationStatusValue[] = Object.freeze(['Good', 'Revoked', 'Unknown', 'Error']);

/**
 * Client IPs of the matrix: an internal 10.0.x.x address, the documentation addresses
 * 192.0.2.10 (TEST-NET-1) and 198.51.100.7 (TEST-NET-2) that example functions treat
 * specially, and a public address.
 */
export const MATRIX_CLIENT_IPS: readonly string[] = Object.freeze(['10.0.3.7', '192.0.2.10', '198.51.100.7', '8.8.8.8']);

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function syntheticCertificateStatus(view: CertificateView, status: RevocationStatusValue, now: number): CertificateRevocationStatus {
  const s: CertificateRevocationStatus = {
    status, serialNumber: view.serialNumber, responder: view.ocspEndpoint ?? '', source: 'network', durationMs: 0,
  };
  if (status === 'Error') {
    s.errorType = 'InternalError';
    s.errorDetail = 'synthetic: the responder could not be reached';
    return s;
  }
  s.thisUpdate = iso(now - 60_000);
  s.nextUpdate = iso(now + 3_600_000);
  if (status === 'Revoked') {
    s.revocationTime = iso(now - 86_400_000);
    s.revocationReason = 'keyCompromise';
  }
  return s;
}

/**
 * A synthetic SPEC section 3 `revocationStatus` for `chain`: the leaf has `leaf`, every
 * intermediate has `intermediate`; `chainValidity` follows the SPEC rule. Revoked
 * entries carry a revocation time one day before `now` and reason `keyCompromise`;
 * Error entries carry `errorType` `InternalError`. `now` in ms since the epoch.
 */
export function syntheticRevocationStatus(
  chain: ChainView, leaf: RevocationStatusValue, intermediate: RevocationStatusValue = leaf, now = Date.now(),
): RevocationStatus {
  const leafStatus = syntheticCertificateStatus(chain.leaf, leaf, now);
  const intermediates = chain.intermediates.map((v) => syntheticCertificateStatus(v, intermediate, now));
  return { chainValidity: chainValidity([leafStatus, ...intermediates]), certificates: { leaf: leafStatus, intermediates } };
}

/** One row of {@link runDecisionMatrix}. */
export interface MatrixRow {
  leafStatus: RevocationStatusValue;
  intermediateStatus: RevocationStatusValue;
  /** `hit`: the leaf's serial (colon-less lowercase hex) is a key of the KVS; `miss`: it is not. */
  kvs: 'hit' | 'miss';
  clientIp: string;
  decision: 'allow' | 'deny';
  implicit: boolean;
  customData?: string;
  error?: string;
  /** True when the function allowed a chain in which the leaf or an intermediate is Revoked. */
  revokedAllowed: boolean;
}

/** Options of {@link runDecisionMatrix}. */
export interface DecisionMatrixOptions {
  /** The client chain every row presents. */
  chain: ChainView;
  /** Base KVS content (a KVS import document's items); the leaf-serial key is added or removed per row. */
  kvsData?: ReadonlyMap<string, string>;
  /** Client IPs (default {@link MATRIX_CLIENT_IPS}). */
  clientIps?: readonly string[];
  /** Frozen `Date` for every row, ms since the epoch (default now). */
  now?: number;
}

/**
 * The KVS contents of the matrix: `hit` = the base data plus the key
 * `normalizeSerialForKvs(leaf.serialNumber)` (value `revoked` unless the data already
 * has that key); `miss` = the base data without that key.
 */
export function matrixKvsData(options: Pick<DecisionMatrixOptions, 'chain' | 'kvsData'>): { hit: Map<string, string>; miss: Map<string, string> } {
  const serialKey = normalizeSerialForKvs(options.chain.leaf.serialNumber);
  const base = new Map(options.kvsData ?? []);
  const hit = new Map(base);
  if (!hit.has(serialKey)) hit.set(serialKey, 'revoked');
  const miss = new Map(base);
  miss.delete(serialKey);
  return { hit, miss };
}

function* matrixCases(options: DecisionMatrixOptions, now: number): Generator<{ row: Omit<MatrixRow, 'decision' | 'implicit' | 'revokedAllowed'>; conn: ReturnType<typeof buildConnection>; revoked: boolean }> {
  for (const leafStatus of MATRIX_STATUSES) {
    for (const intermediateStatus of MATRIX_STATUSES) {
      const revocationStatus = syntheticRevocationStatus(options.chain, leafStatus, intermediateStatus, now);
      const revoked = revocationStatus.chainValidity === 'Invalid';
      for (const kvs of ['hit', 'miss'] as const) {
        for (const clientIp of options.clientIps ?? MATRIX_CLIENT_IPS) {
          const conn = buildConnection({
            clientIp, clientPort: 50000, endpoint: 'matrix.example.test', distributionId: 'matrix',
            certificates: options.chain, revocationStatus,
          });
          yield { row: { leafStatus, intermediateStatus, kvs, clientIp }, conn, revoked };
        }
      }
    }
  }
}

function matrixRow(c: { row: Omit<MatrixRow, 'decision' | 'implicit' | 'revokedAllowed'>; revoked: boolean }, r: FunctionResult): MatrixRow {
  const row: MatrixRow = { ...c.row, decision: r.decision, implicit: r.implicit, revokedAllowed: c.revoked && r.decision === 'allow' };
  if (r.customData !== undefined) row.customData = r.customData;
  if (r.error !== undefined) row.error = r.error;
  return row;
}

/**
 * Runs `instance` over every combination of leaf status × intermediate status (Good,
 * Revoked, Unknown, Error) × KVS hit/miss × client IP (128 rows by default) on one
 * warm instance. KVS contents as {@link matrixKvsData}. Rows are in that nesting
 * order. Never throws for anything the function does.
 */
export function runDecisionMatrix(instance: FunctionInstance, options: DecisionMatrixOptions): MatrixRow[] {
  const now = options.now ?? Date.now();
  const data = matrixKvsData(options);
  const stores: Record<MatrixRow['kvs'], KvsSnapshotLike> = { hit: kvsSnapshotFromMap(data.hit), miss: kvsSnapshotFromMap(data.miss) };
  const rows: MatrixRow[] = [];
  for (const c of matrixCases(options, now)) rows.push(matrixRow(c, instance.invoke(c.conn, { kvs: stores[c.row.kvs], now })));
  return rows;
}

/**
 * {@link runDecisionMatrix} through an asynchronous invoker — e.g. a function compiled
 * in a sandbox worker (host.ts `SandboxWorker.load` with the {@link matrixKvsData}
 * contents named `hit` and `miss`), so a row that hangs is stopped by the watchdog and
 * reported as that row's error. `invoke(conn, kvs, now)` must not reject for anything
 * the function does.
 */
export async function runDecisionMatrixWith(
  invoke: (conn: object, kvs: MatrixRow['kvs'], now: number) => Promise<FunctionResult>, options: DecisionMatrixOptions,
): Promise<MatrixRow[]> {
  const now = options.now ?? Date.now();
  const rows: MatrixRow[] = [];
  for (const c of matrixCases(options, now)) rows.push(matrixRow(c, await invoke(c.conn, c.row.kvs, now)));
  return rows;
}
