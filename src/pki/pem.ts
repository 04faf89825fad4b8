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

const MARKER = '-----BEGIN ';

/**
 * True when `input` is to be read as PEM text rather than DER: a string, or bytes that
 * do not start with a SEQUENCE tag (0x30, which every DER certificate starts with and
 * no valid PEM file does: outside blocks PEM allows only `#` comments, blank lines and
 * BEGIN markers) and contain a `-----BEGIN ` marker anywhere. The marker is searched in
 * the whole input, however long its comment header (native byte search, so even
 * megabytes of binary are scanned in milliseconds), and not in DER, whose values
 * could contain those bytes by chance.
 */
export function looksLikePem(input: Uint8Array | string): boolean {
  if (typeof input === 'string') return input.includes(MARKER);
  if (input.length === 0 || input[0] === 0x30) return false;
  return Buffer.from(input.buffer, input.byteOffset, input.byteLength).includes(MARKER, 0, 'latin1');
}

/**
 * Splits PEM text (RFC 7468) or a single DER certificate into certificate blocks.
 *
 * PEM: every `-----BEGIN CERTIFICATE-----` … `-----END CERTIFICATE-----` block, in
 * order. Lines starting with `#` and blank lines between blocks are ignored (SPEC
 * section 2 allows comment lines in CA bundles). Text outside blocks that is not a
 * comment is an error, as is a block of another type (e.g. a private key) or bad base64.
 * DER: a buffer starting with a SEQUENCE tag (0x30) is taken as one certificate.
 * Any other buffer is PEM text (decoded as UTF-8) when it contains a BEGIN marker
 * anywhere (see {@link looksLikePem}) and no NUL byte before it; otherwise it is
 * reported as neither PEM nor DER (or as holding only comments).
 *
 * @throws CertificateParseError naming the block and line when the armour or base64 is bad,
 *   or when the input holds no certificate at all.
 */
export function splitCertificates(input: Uint8Array | string): CertificateBlock[] {
  if (typeof input !== 'string') {
    const buf = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    if (buf.length === 0) throw new CertificateParseError('input is empty; expected PEM or DER certificates');
    if (buf[0] === 0x30) return [{ der: buf, index: 1, line: 0, where: 'certificate #1 (DER)' }];
    const marker = buf.indexOf(MARKER, 0, 'latin1');
    if (marker === -1) {
      if (isOnlyCommentsOrBlank(buf)) throw new CertificateParseError('no certificate found (only comment or blank lines; expected -----BEGIN CERTIFICATE----- blocks)');
      throw new CertificateParseError('input is neither PEM (no -----BEGIN marker) nor DER (does not start with a SEQUENCE)');
    }
    // Text has no NUL bytes: binary data that happens to contain the marker is not PEM
    // (and is not decoded and split into lines, however large).
    const nul = buf.subarray(0, marker).indexOf(0);
    if (nul !== -1) {
      throw new CertificateParseError(`input is neither PEM (binary data, a NUL byte at offset ${nul}, before the first -----BEGIN marker) nor DER (does not start with a SEQUENCE)`);
    }
  }
  const text = typeof input === 'string' ? input : Buffer.from(input).toString('utf8');
  const blocks: CertificateBlock[] = [];
  let inBlock: { type: string; line: number; body: string[] } | null = null;
  for (const [lineNo, raw] of linesOf(text)) {
    const line = raw.trim();
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

/**
 * The lines of `text` (split at LF, a preceding CR dropped) with their 1-based numbers,
 * produced one at a time so that a parse error on an early line does not first split
 * a large input.
 */
function* linesOf(text: string): Generator<[number, string]> {
  let start = 0;
  for (let lineNo = 1; ; lineNo++) {
    const nl = text.indexOf('\n', start);
    const end = nl === -1 ? text.length : nl;
    yield [lineNo, text.slice(start, end > start && text.charCodeAt(end - 1) === 13 ? end - 1 : end)];
    if (nl === -1) return;
    start = nl + 1;
  }
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
