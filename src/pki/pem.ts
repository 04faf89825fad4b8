import { CertificateParseError } from '../errors.js';

/**
 * One certificate block found in a PEM or DER input.
 * `der` is the decoded DER; `where` names the block for error messages, e.g.
 * `certificate #2 (line 14)`; `line` is the 1-based line of its BEGIN marker (0 for DER).
 */
export interface CertificateBlock {
  der: Buffer;
  index: number;
  line: number;
  where: string;
}

const BEGIN = /^-----BEGIN ([A-Z0-9 ]+)-----\s*$/;
const END = /^-----END ([A-Z0-9 ]+)-----\s*$/;

/** True when `input` looks like PEM text (contains a `-----BEGIN` marker). */
export function looksLikePem(input: Uint8Array | string): boolean {
  const text = typeof input === 'string' ? input : Buffer.from(input.subarray(0, 4096)).toString('latin1');
  return text.includes('-----BEGIN ');
}

/**
 * Splits PEM text (RFC 7468) or a single DER certificate into certificate blocks.
 *
 * PEM: every `-----BEGIN CERTIFICATE-----` … `-----END CERTIFICATE-----` block, in
 * order. Lines starting with `#` and blank lines between blocks are ignored (SPEC
 * section 2 allows comment lines in CA bundles). Text outside blocks that is not a
 * comment is an error, as is a block of another type (e.g. a private key) or bad base64.
 * DER: a buffer starting with a SEQUENCE tag (0x30) is taken as one certificate.
 *
 * @throws CertificateParseError naming the block and line when the armour or base64 is bad,
 *   or when the input holds no certificate at all.
 */
export function splitCertificates(input: Uint8Array | string): CertificateBlock[] {
  if (typeof input !== 'string' && !looksLikePem(input)) {
    const buf = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    if (buf.length === 0) throw new CertificateParseError('input is empty; expected PEM or DER certificates');
    if (isOnlyCommentsOrBlank(buf)) throw new CertificateParseError('no certificate found (only comment or blank lines; expected -----BEGIN CERTIFICATE----- blocks)');
    if (buf[0] !== 0x30) throw new CertificateParseError('input is neither PEM (no -----BEGIN marker) nor DER (does not start with a SEQUENCE)');
    return [{ der: buf, index: 1, line: 0, where: 'certificate #1 (DER)' }];
  }
  const text = typeof input === 'string' ? input : Buffer.from(input).toString('utf8');
  const lines = text.split(/\r?\n/);
  const blocks: CertificateBlock[] = [];
  let inBlock: { type: string; line: number; body: string[] } | null = null;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] as string;
    const line = raw.trim();
    const lineNo = i + 1;
    if (inBlock) {
      const end = END.exec(line);
      if (end) {
        if (end[1] !== inBlock.type) {
          throw new CertificateParseError(`END marker "${end[1]}" does not match BEGIN "${inBlock.type}"`, `line ${lineNo}`);
        }
        const index = blocks.length + 1;
        const where = `certificate #${index} (line ${inBlock.line})`;
        if (inBlock.type !== 'CERTIFICATE') {
          throw new CertificateParseError(`block of type "${inBlock.type}" is not a certificate`, where);
        }
        const b64 = inBlock.body.join('');
        if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) {
          throw new CertificateParseError('invalid base64 in PEM body', where);
        }
        const der = Buffer.from(b64, 'base64');
        if (der.length === 0) throw new CertificateParseError('empty PEM body', where);
        blocks.push({ der, index, line: inBlock.line, where });
        inBlock = null;
        continue;
      }
      if (BEGIN.test(line)) throw new CertificateParseError('BEGIN marker inside another block (missing END)', `line ${lineNo}`);
      // RFC 7468 allows headers only in legacy types; tolerate none here.
      if (line.includes(':')) throw new CertificateParseError('unexpected header line in PEM body', `line ${lineNo}`);
      inBlock.body.push(line);
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const begin = BEGIN.exec(line);
    if (begin) {
      inBlock = { type: begin[1] as string, line: lineNo, body: [] };
      continue;
    }
    throw new CertificateParseError(`unexpected text outside a PEM block: "${line.slice(0, 40)}"`, `line ${lineNo}`);
  }
  if (inBlock) throw new CertificateParseError(`block starting at line ${inBlock.line} has no END marker`, `line ${inBlock.line}`);
  if (blocks.length === 0) throw new CertificateParseError('no certificate found (expected -----BEGIN CERTIFICATE----- blocks)');
  return blocks;
}

/** True when the bytes are text made only of `#` comment lines and blank lines. */
function isOnlyCommentsOrBlank(buf: Buffer): boolean {
  if (buf.length > 1 << 20) return false;
  const text = buf.toString('utf8');
  return text.split(/\r?\n/).every((l) => l.trim() === '' || l.trim().startsWith('#'));
}

/** Encodes DER as one PEM CERTIFICATE block (64-column base64, trailing newline), RFC 7468 section 5. */
export function toPem(der: Uint8Array, label = 'CERTIFICATE'): string {
  const b64 = Buffer.from(der).toString('base64');
  const body = b64.match(/.{1,64}/g)?.join('\n') ?? '';
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}
