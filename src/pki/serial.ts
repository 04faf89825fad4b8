/**
 * Certificate serial number formatting (RFC 5280 4.1.2.2) in the two forms Portcullis
 * shows: CloudFront's colon hex (SPEC sections 4 and 6) and the KVS key form of
 * revoked-serial lists (SPEC section 5).
 */
import { InvalidArgumentError } from '../errors.js';

/**
 * Formats the content octets of a serialNumber DER INTEGER as lowercase hex bytes
 * separated by `:` — the form of CloudFront's `serialNumber` field and
 * `CloudFront-Viewer-Cert-Serial-Number` header.
 *
 * The bytes are written exactly as encoded, never re-minimised: a positive serial
 * whose high bit is set keeps its `00` sign octet (`00:a7:30:9e`), a 1-byte serial is
 * `05`, a 20-byte serial gives 20 pairs, and non-minimal leading zero octets (which
 * RFC 5280 forbids but some CAs emit) are kept as encoded. Empty input gives `''`.
 * @param contentBytes e.g. `ParsedCertificate.serialNumberBytes`.
 */
export function formatSerialNumber(contentBytes: Uint8Array): string {
  const hex = Buffer.from(contentBytes.buffer, contentBytes.byteOffset, contentBytes.byteLength).toString('hex');
  let out = '';
  for (let i = 0; i < hex.length; i += 2) out += (i ? ':' : '') + hex.slice(i, i + 2);
  return out;
}

const COLON_FORM = /^[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2})*$/;
const PLAIN_FORM = /^(?:[0-9a-fA-F]{2})+$/;

/**
 * Normalises a serial number to the KVS key form of SPEC section 5:
 * `serialNumber.replaceAll(':', '')` in lowercase, leading `00` kept (so a connection
 * function can look up `leaf.serialNumber.replaceAll(':', '')` directly).
 *
 * Accepts the colon form (`00:A7:30:9e`, every group exactly two hex digits) or plain
 * hex with an even number of digits (`00A7309E`), in any case. Odd-length hex is
 * rejected rather than padded: a key that cannot equal any formatted serial would
 * silently never match, which for a revocation list means admitting a revoked client.
 * @throws InvalidArgumentError for an empty string, non-hex characters, malformed
 *   colon groups or an odd number of hex digits.
 */
export function normalizeSerialForKvs(serial: string): string {
  if (COLON_FORM.test(serial) || PLAIN_FORM.test(serial)) return serial.replaceAll(':', '').toLowerCase();
  const shown = serial.length > 80 ? `${serial.slice(0, 80)}…` : serial;
  throw new InvalidArgumentError(
    `invalid serial number "${shown}": expected hex bytes, either colon-separated pairs (00:a7:30:9e) or an even number of hex digits (00a7309e)`,
  );
}
