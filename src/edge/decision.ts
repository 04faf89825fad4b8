/**
 * The gate's decision rules (SPEC sections 2, 3, 4 and 7) as one pure function over
 * what is known so far. The gate calls {@link nextGateStep} repeatedly, doing the step
 * it asks for (validate the path, check revocation, run the function) and adding the
 * result, until the step is `allow` or `deny`. Keeping the rules here, apart from
 * sockets and I/O, lets the unit tests walk every combination of path result ×
 * revocation × function.
 */
import type { FunctionResult } from '../functions/index.js';
import type { PathValidationResult } from '../pki/index.js';
import { revocationDecision, type RevocationCheckResult } from '../revocation/index.js';
import type { ViewerMtlsMode } from '../resources/types.js';

/** SPEC section 7 failure codes (`connectionStatus` `Failed:<Code>`). */
export type ConnectionFailureCode =
  | 'ClientCertMissing' | 'ClientCertUntrusted' | 'ClientCertExpired' | 'ClientCertNotYetValid' | 'ClientCertInvalid'
  | 'ClientCertIntentInvalid' | 'ClientCertTypeUnsupported' | 'ClientCertMaxChainDepthExceeded' | 'ClientCertMaxSizeExceeded'
  | 'ClientCertOcspEndpointMissing' | 'ClientCertRevoked' | 'ClientCertRevocationUnknown'
  | 'ConnectionFunctionDenied' | 'ConnectionFunctionError' | 'TcpError' | 'TcpTimeout' | 'Internal';

/** Every SPEC section 7 failure code, in SPEC order. */
export const CONNECTION_FAILURE_CODES: readonly ConnectionFailureCode[] = Object.freeze([
  'ClientCertMissing', 'ClientCertUntrusted', 'ClientCertExpired', 'ClientCertNotYetValid', 'ClientCertInvalid',
  'ClientCertIntentInvalid', 'ClientCertTypeUnsupported', 'ClientCertMaxChainDepthExceeded', 'ClientCertMaxSizeExceeded',
  'ClientCertOcspEndpointMissing', 'ClientCertRevoked', 'ClientCertRevocationUnknown',
  'ConnectionFunctionDenied', 'ConnectionFunctionError', 'TcpError', 'TcpTimeout', 'Internal',
] as const);

/** What the gate knows about one connection so far. */
export interface GateFacts {
  mode: ViewerMtlsMode;
  /** The client sent at least one certificate. */
  certificatePresented: boolean;
  /** The trust store enables OCSP (`useClientCertificateOcspEndpoint`); ignored in passthrough. */
  ocspEnabled: boolean;
  /** A connection function is associated with the distribution. */
  functionAssociated: boolean;
  /** Path validation result, once done (never done in passthrough or without a certificate). */
  path?: PathValidationResult;
  /** Revocation check result, once done. */
  revocation?: RevocationCheckResult;
  /** The function's result, once run. */
  functionResult?: FunctionResult;
}

/** The next thing the gate must do, or the decision. `reason` is one human sentence for the log. */
export type GateStep =
  | { step: 'validate' }
  | { step: 'checkRevocation' }
  | { step: 'runFunction' }
  | { step: 'allow'; reason: string }
  | { step: 'deny'; code: ConnectionFailureCode; reason: string };

/**
 * The decision rules:
 * - no certificate: `required` and `passthrough` deny `ClientCertMissing` (passthrough
 *   forwards the client's certificate, so it needs one — fail closed); `optional` goes
 *   on to the function, if any, else allows;
 * - a certificate in `required`/`optional`: path validation; a failure denies with its
 *   code (an invalid certificate is denied in optional mode too);
 * - OCSP enabled: the revocation check; an endpoint missing denies
 *   `ClientCertOcspEndpointMissing` before any function runs;
 * - function associated: it decides (its `failureCode`, or `ConnectionFunctionDenied`);
 * - no function: allow unless revocation says otherwise (revocation/ `revocationDecision`:
 *   every checked certificate must be Good).
 * `passthrough` skips validation and revocation; the function still runs.
 */
export function nextGateStep(f: GateFacts): GateStep {
  if (!f.certificatePresented) {
    if (f.mode !== 'optional') {
      return { step: 'deny', code: 'ClientCertMissing', reason: `no client certificate presented (viewer mTLS mode ${f.mode})` };
    }
    return functionStep(f) ?? { step: 'allow', reason: 'no client certificate presented (viewer mTLS mode optional)' };
  }
  if (f.mode !== 'passthrough') {
    if (!f.path) return { step: 'validate' };
    if (!f.path.ok) return { step: 'deny', code: f.path.code, reason: f.path.reason };
    if (f.ocspEnabled) {
      if (!f.revocation) return { step: 'checkRevocation' };
      if (!f.revocation.ok) return { step: 'deny', code: f.revocation.code, reason: f.revocation.reason };
    }
  }
  const fn = functionStep(f);
  if (fn) return fn;
  if (f.mode !== 'passthrough' && f.ocspEnabled && f.revocation?.ok) {
    const d = revocationDecision(f.revocation.revocationStatus);
    if (!d.allow) {
      const c = f.revocation.revocationStatus.certificates;
      const bad = [c.leaf, ...c.intermediates]
        .map((s, i) => ({ s, who: i === 0 ? 'leaf' : `intermediate #${i}` }))
        .filter(({ s }) => s.status !== 'Good')
        .map(({ s, who }) => `${who} ${s.serialNumber} ${s.status}${s.errorType ? ` (${s.errorType}${s.errorDetail ? `: ${s.errorDetail}` : ''})` : ''}`);
      return { step: 'deny', code: d.code, reason: `revocation check: ${bad.join('; ')}; no connection function to decide` };
    }
    return { step: 'allow', reason: 'certificate chain valid and not revoked' };
  }
  return { step: 'allow', reason: f.mode === 'passthrough' ? 'passthrough: certificate forwarded without validation' : 'certificate chain valid' };
}

function functionStep(f: GateFacts): GateStep | undefined {
  if (!f.functionAssociated) return undefined;
  const r = f.functionResult;
  if (!r) return { step: 'runFunction' };
  if (r.decision === 'allow') return { step: 'allow', reason: 'connection function allowed' };
  const code = r.failureCode ?? 'ConnectionFunctionDenied';
  const reason = r.error
    ? `connection function failed: ${r.error}`
    : r.implicit ? 'connection function returned without calling allow() or deny()' : 'connection function called deny()';
  return { step: 'deny', code, reason };
}
