/**
 * Revoked serials of a CRL as KeyValueStore entries (SPEC section 5 extension).
 *
 * KEY FORMAT — what a connection function must look up:
 *
 *   key = lowercase hex of the certificate's serialNumber INTEGER content octets,
 *         exactly as DER-encoded, no separators.
 *
 * That is the connection object's serial with the colons removed:
 *
 *   ```js
 *   const serial = connection.clientCertificate.certificates.leaf.serialNumber.replaceAll(':', '');
 *   const revoked = await kvsHandle.exists(serial);
 *   ```
 *
 * The `00` sign octet of a serial whose high bit is set is part of the key
 * (`00a7309e…`, never `a7309e…`), so keys are always an even number of hex digits and
 * equal `normalizeSerialForKvs(serialNumber)` for the certificate's own serial. Serials
 * are not converted to decimal. They are reduced to the minimal (DER, X.690 8.3.2)
 * encoding of the INTEGER: redundant leading `00` octets (before an octet below 0x80)
 * and `ff` octets (before an octet of 0x80 or more) are dropped, so a CRL that encodes
 * serial 0x7f as `00 7f` gives the key `7f`. The certificate view refuses a
 * certificate whose serial is not minimally encoded, so the minimal form is the only
 * one a client can ever present; for a DER CRL nothing changes.
 *
 * VALUE — compact JSON, fields in this order, absent fields omitted:
 *
 *   `{"revocationDate":"2026-01-02T03:04:05Z","reason":"keyCompromise","crlNumber":"4096","issuer":"CN=Example CA"}`
 *
 * revocationDate in ISO 8601 UTC without milliseconds; reason is the CRLReason name
 * (RFC 5280 5.3.1) when the entry has one; crlNumber is the decimal cRLNumber of the
 * CRL when it has one; issuer is the CRL issuer in RFC 4514 form. KVS values are
 * limited to 1 KB: when an unusually long issuer Name would push a value past
 * {@link CRL_KVS_MAX_VALUE_BYTES}, `issuer` is left out of that value.
 */
import { formatIsoSeconds, formatSerialNumber, normalizeSerialForKvs } from '../../pki/index.js';
import type { ParsedCrl } from './parse.js';

/** Largest value {@link crlToKvsEntries} produces, in UTF-8 bytes (the SPEC section 5 default value limit, 1 KB). */
export const CRL_KVS_MAX_VALUE_BYTES = 1024;

/** One KeyValueStore item: `key` is the normalised serial, `value` the JSON string described in the module comment. */
export interface CrlKvsEntry {
  key: string;
  value: string;
}

/**
 * The minimal (X.690 8.3.2) content octets of an INTEGER: drops a leading `00` octet
 * while the next octet is below 0x80, and a leading `ff` octet while the next one is
 * 0x80 or more (the value is unchanged). Empty input is returned as is.
 */
export function minimalIntegerContent(bytes: Uint8Array): Uint8Array {
  let i = 0;
  while (i + 1 < bytes.length && ((bytes[i] === 0x00 && bytes[i + 1]! < 0x80) || (bytes[i] === 0xff && bytes[i + 1]! >= 0x80))) i++;
  return i === 0 ? bytes : bytes.subarray(i);
}

/**
 * Turns the revoked entries of a CRL into KeyValueStore items (SPEC section 5): one
 * per distinct serial, in CRL order. Key = normalised serial (lowercase hex of the
 * INTEGER content octets in minimal form, leading `00` sign octet kept — the form of
 * `serialNumber.replaceAll(':', '')`); value = compact JSON
 * `{"revocationDate","reason"?,"crlNumber"?,"issuer"}` (see the module comment).
 *
 * Duplicate serials (a CRL listing the same serial twice, also in two encodings, which RFC 5280 does not
 * forbid outright): the first entry in CRL order is kept and later ones are dropped, so
 * the result has unique keys, as a KVS import requires. The serial is revoked either way;
 * only the reason/date of the first listing is recorded.
 *
 * Pure and trust-free: call `verifyCrl` first — this function does not check the
 * signature, freshness or scope of the CRL. An empty CRL gives `[]`.
 *
 * @param crl a CRL from `parseCrl`, normally already verified.
 * @returns items with unique keys; every value is at most {@link CRL_KVS_MAX_VALUE_BYTES} bytes.
 */
export function crlToKvsEntries(crl: ParsedCrl): CrlKvsEntry[] {
  const issuer = crl.issuer;
  const crlNumber = crl.crlNumber === undefined ? undefined : crl.crlNumber.toString(10);
  const out: CrlKvsEntry[] = [];
  const seen = new Set<string>();
  for (const entry of crl.revoked) {
    const key = normalizeSerialForKvs(formatSerialNumber(minimalIntegerContent(entry.serialNumberBytes)));
    if (seen.has(key)) continue;
    seen.add(key);
    const fields: { revocationDate: string; reason?: string; crlNumber?: string; issuer?: string } = {
      revocationDate: formatIsoSeconds(entry.revocationDate),
    };
    if (entry.reason !== undefined) fields.reason = entry.reason;
    if (crlNumber !== undefined) fields.crlNumber = crlNumber;
    fields.issuer = issuer;
    let value = JSON.stringify(fields);
    if (Buffer.byteLength(value, 'utf8') > CRL_KVS_MAX_VALUE_BYTES) {
      delete fields.issuer;
      value = JSON.stringify(fields);
    }
    out.push({ key, value });
  }
  return out;
}
