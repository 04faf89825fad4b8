import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FunctionResult } from '../functions/index.js';
import type { PathValidationResult } from '../pki/index.js';
import type { CertificateRevocationStatus, RevocationCheckResult, RevocationStatusValue } from '../revocation/index.js';
import { nextGateStep, type GateFacts, type GateStep } from './decision.js';

const okPath = { ok: true, path: [], intermediates: [], anchor: {} } as unknown as PathValidationResult;
const badPath: PathValidationResult = { ok: false, code: 'ClientCertExpired', reason: 'leaf expired' };
const cert = (status: RevocationStatusValue): CertificateRevocationStatus => ({ status, serialNumber: '01', responder: 'http://r', source: 'network', durationMs: 1 });
const rev = (leaf: RevocationStatusValue, int: RevocationStatusValue = 'Good'): RevocationCheckResult => ({
  ok: true, durationMs: 1,
  revocationStatus: { chainValidity: 'Valid', certificates: { leaf: cert(leaf), intermediates: [cert(int)] } },
});
const endpointMissing: RevocationCheckResult = { ok: false, code: 'ClientCertOcspEndpointMissing', reason: 'no AIA', certificateIndex: 0 };
const fnAllow: FunctionResult = { decision: 'allow', implicit: false, logs: [], computeUtilization: 1 };
const fnDeny: FunctionResult = { decision: 'deny', implicit: false, logs: [], computeUtilization: 1, failureCode: 'ConnectionFunctionDenied' };
const fnImplicit: FunctionResult = { decision: 'deny', implicit: true, logs: [], computeUtilization: 1, failureCode: 'ConnectionFunctionDenied' };
const fnError: FunctionResult = { decision: 'deny', implicit: true, logs: [], computeUtilization: 120, error: 'CPU limit', failureCode: 'ConnectionFunctionError' };

const base: GateFacts = { mode: 'required', certificatePresented: true, ocspEnabled: false, functionAssociated: false };
const outcome = (s: GateStep) => (s.step === 'deny' ? `deny:${s.code}` : s.step);

test('mode rules without a certificate', () => {
  assert.equal(outcome(nextGateStep({ ...base, certificatePresented: false })), 'deny:ClientCertMissing');
  assert.equal(outcome(nextGateStep({ ...base, mode: 'passthrough', certificatePresented: false })), 'deny:ClientCertMissing');
  assert.equal(outcome(nextGateStep({ ...base, mode: 'optional', certificatePresented: false })), 'allow');
  assert.equal(outcome(nextGateStep({ ...base, mode: 'optional', certificatePresented: false, functionAssociated: true })), 'runFunction');
  assert.equal(outcome(nextGateStep({ ...base, mode: 'optional', certificatePresented: false, functionAssociated: true, functionResult: fnDeny })), 'deny:ConnectionFunctionDenied');
  // OCSP is never asked for without a certificate.
  assert.equal(outcome(nextGateStep({ ...base, mode: 'optional', certificatePresented: false, ocspEnabled: true })), 'allow');
});

test('mode rules with a certificate: validation in required and optional, none in passthrough', () => {
  for (const mode of ['required', 'optional'] as const) {
    assert.equal(outcome(nextGateStep({ ...base, mode })), 'validate');
    assert.equal(outcome(nextGateStep({ ...base, mode, path: badPath })), 'deny:ClientCertExpired');
    assert.equal(outcome(nextGateStep({ ...base, mode, path: okPath })), 'allow');
    // An invalid certificate is denied before any function, whatever the function would say.
    assert.equal(outcome(nextGateStep({ ...base, mode, path: badPath, functionAssociated: true })), 'deny:ClientCertExpired');
  }
  assert.equal(outcome(nextGateStep({ ...base, mode: 'passthrough' })), 'allow');
  assert.equal(outcome(nextGateStep({ ...base, mode: 'passthrough', ocspEnabled: true })), 'allow');
  assert.equal(outcome(nextGateStep({ ...base, mode: 'passthrough', functionAssociated: true })), 'runFunction');
});

test('decision composition: path × revocation × function', () => {
  const statuses: RevocationStatusValue[] = ['Good', 'Revoked', 'Unknown', 'Error'];
  const fns: (FunctionResult | undefined)[] = [undefined, fnAllow, fnDeny, fnImplicit, fnError];
  for (const leaf of statuses) {
    for (const int of statuses) {
      for (const fn of fns) {
        const facts: GateFacts = { ...base, ocspEnabled: true, path: okPath, revocation: rev(leaf, int), functionAssociated: fn !== undefined, ...(fn ? { functionResult: fn } : {}) };
        const got = outcome(nextGateStep(facts));
        let want: string;
        if (fn) want = fn.decision === 'allow' ? 'allow' : `deny:${fn.failureCode}`;
        else if (leaf === 'Good' && int === 'Good') want = 'allow';
        else if (leaf === 'Revoked' || int === 'Revoked') want = 'deny:ClientCertRevoked';
        else want = 'deny:ClientCertRevocationUnknown';
        assert.equal(got, want, `leaf ${leaf}, intermediate ${int}, function ${fn ? fn.decision + (fn.error ? ' error' : '') : 'none'}`);
      }
    }
  }
});

test('the order of steps: validate → checkRevocation → runFunction', () => {
  const f: GateFacts = { ...base, ocspEnabled: true, functionAssociated: true };
  assert.equal(nextGateStep(f).step, 'validate');
  assert.equal(nextGateStep({ ...f, path: okPath }).step, 'checkRevocation');
  assert.equal(nextGateStep({ ...f, path: okPath, revocation: rev('Revoked') }).step, 'runFunction');
});

test('endpoint missing denies before the function runs', () => {
  const s = nextGateStep({ ...base, ocspEnabled: true, functionAssociated: true, path: okPath, revocation: endpointMissing });
  assert.deepEqual(s, { step: 'deny', code: 'ClientCertOcspEndpointMissing', reason: 'no AIA' });
});

test('deny reasons say why', () => {
  const s = nextGateStep({ ...base, ocspEnabled: true, path: okPath, revocation: rev('Good', 'Unknown') });
  assert.equal(s.step, 'deny');
  assert.match((s as { reason: string }).reason, /intermediate #1 01 Unknown/);
  const e = nextGateStep({ ...base, functionAssociated: true, path: okPath, functionResult: fnError });
  assert.match((e as { reason: string }).reason, /CPU limit/);
  const i = nextGateStep({ ...base, functionAssociated: true, path: okPath, functionResult: fnImplicit });
  assert.match((i as { reason: string }).reason, /without calling allow\(\) or deny\(\)/);
});
