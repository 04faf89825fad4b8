/**
 * The signature algorithms Portcullis accepts on anything it verifies itself (OCSP
 * responses, CRLs): SPEC section 2's set — SHA-256/384/512 with RSA PKCS#1 v1.5,
 * RSASSA-PSS (RFC 4055: MGF1 over the same hash, trailerField 1) or ECDSA (RFC 5758,
 * DER-encoded signatures). SHA-1, MD5 and anything else are refused with a reason.
 * Verification is done by node:crypto (OpenSSL) over the signed bytes exactly as received.
 */
import { constants, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import * as pkijs from 'pkijs';
import { OID } from './oids.js';
import { signatureAlgorithmName } from './certificate.js';

/** node:crypto parameters of an accepted signature algorithm. `hash` is a node digest name (`sha256`, …). */
export type SignatureScheme =
  | { kind: 'pkcs1'; hash: string }
  | { kind: 'ecdsa'; hash: string }
  | { kind: 'pss'; hash: string; saltLength: number };

const RSA_PKCS1_HASHES: Readonly<Record<string, string>> = {
  [OID.sha256WithRSA]: 'sha256', [OID.sha384WithRSA]: 'sha384', [OID.sha512WithRSA]: 'sha512',
};
const ECDSA_HASHES: Readonly<Record<string, string>> = {
  [OID.ecdsaWithSHA256]: 'sha256', [OID.ecdsaWithSHA384]: 'sha384', [OID.ecdsaWithSHA512]: 'sha512',
};
const PSS_HASHES: Readonly<Record<string, string>> = {
  [OID.sha256]: 'sha256', [OID.sha384]: 'sha384', [OID.sha512]: 'sha512',
};
const WEAK_SIGNATURES: ReadonlySet<string> = new Set([
  OID.sha1WithRSA, '1.2.840.10045.4.1' /* ecdsa-with-SHA1 */, '1.2.840.113549.1.1.4' /* md5WithRSA */,
  '1.2.840.113549.1.1.2' /* md2WithRSA */, '1.2.840.10040.4.3' /* dsa-with-sha1 */,
]);

const ACCEPTED = 'accepted: SHA-256/384/512 with RSA, RSA-PSS or ECDSA';

/**
 * The node:crypto parameters for an AlgorithmIdentifier, or a sentence saying why it is
 * refused (weak, unsupported, malformed RSASSA-PSS parameters).
 * @param algorithmId the signature algorithm OID.
 * @param params the AlgorithmIdentifier parameters as an asn1js block (needed only for RSASSA-PSS).
 */
export function signatureScheme(algorithmId: string, params: unknown): SignatureScheme | string {
  const pkcs1 = RSA_PKCS1_HASHES[algorithmId];
  if (pkcs1) return { kind: 'pkcs1', hash: pkcs1 };
  const ecdsa = ECDSA_HASHES[algorithmId];
  if (ecdsa) return { kind: 'ecdsa', hash: ecdsa };
  if (algorithmId === OID.rsassaPss) {
    let p: pkijs.RSASSAPSSParams;
    try {
      p = new pkijs.RSASSAPSSParams({ schema: params });
    } catch {
      return 'RSASSA-PSS with missing or malformed parameters';
    }
    const hash = PSS_HASHES[p.hashAlgorithm.algorithmId];
    if (!hash) return `RSASSA-PSS with hash ${p.hashAlgorithm.algorithmId} (only SHA-256/384/512 are accepted)`;
    if (p.maskGenAlgorithm.algorithmId !== OID.mgf1) return `RSASSA-PSS with mask generation ${p.maskGenAlgorithm.algorithmId}`;
    let mgfHash: string;
    try {
      mgfHash = new pkijs.AlgorithmIdentifier({ schema: p.maskGenAlgorithm.algorithmParams }).algorithmId;
    } catch {
      return 'RSASSA-PSS with malformed MGF1 parameters';
    }
    if (mgfHash !== p.hashAlgorithm.algorithmId) return 'RSASSA-PSS with an MGF1 hash different from the message hash';
    if (p.trailerField !== 1) return `RSASSA-PSS with trailerField ${p.trailerField}`;
    return { kind: 'pss', hash, saltLength: p.saltLength };
  }
  if (WEAK_SIGNATURES.has(algorithmId)) return `${signatureAlgorithmName(algorithmId)} is too weak (${ACCEPTED})`;
  return `signature algorithm ${signatureAlgorithmName(algorithmId)} is not supported (${ACCEPTED})`;
}

/**
 * Verifies `signature` over `data` with `key` under `scheme`. Returns false on a bad
 * signature or a key of the wrong type; never throws.
 */
export function verifySignature(scheme: SignatureScheme, data: Uint8Array, signature: Uint8Array, key: KeyObject): boolean {
  try {
    switch (scheme.kind) {
      case 'pkcs1':
        if (key.asymmetricKeyType !== 'rsa') return false;
        return cryptoVerify(scheme.hash, data, { key, padding: constants.RSA_PKCS1_PADDING }, signature);
      case 'pss':
        if (key.asymmetricKeyType !== 'rsa' && key.asymmetricKeyType !== 'rsa-pss') return false;
        return cryptoVerify(scheme.hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: scheme.saltLength }, signature);
      case 'ecdsa':
        if (key.asymmetricKeyType !== 'ec') return false;
        return cryptoVerify(scheme.hash, data, { key, dsaEncoding: 'der' }, signature);
    }
  } catch {
    return false;
  }
}
