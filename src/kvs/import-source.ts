/**
 * Reading a KVS import source: a local file path or an `http(s)://` URL (fetched with
 * undici: GET, no redirects followed, a time limit and a byte cap so a huge or slow
 * source cannot exhaust memory or hang a create). Failure reasons say what is wrong
 * and where, never quoting the source's content (file bytes, response body or headers).
 */
import { open } from 'node:fs/promises';
import { request } from 'undici';

/** Outcome of reading an import source: the bytes, or why they could not be read. */
export type ImportSourceResult = { ok: true; bytes: Buffer } | { ok: false; reason: string };

/**
 * Fetches a URL's body (injectable so tests and the admin API can swap transports).
 * Must resolve to `{ok:false}` rather than throw for transport problems.
 */
export type ImportFetcher = (url: string, opts: { maxBytes: number; timeoutMs: number }) => Promise<ImportSourceResult>;

/** True for `http://` and `https://` sources; everything else is a file path. */
export function isUrlSource(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

/**
 * The default {@link ImportFetcher}: undici `request`, GET, status must be 200,
 * redirects are not followed (a redirect is reported), the body is read up to
 * `maxBytes` (one byte more fails the import without reading the rest).
 */
export const undiciImportFetcher: ImportFetcher = async (url, { maxBytes, timeoutMs }) => {
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const res = await request(url, { method: 'GET', signal, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    if (res.statusCode !== 200) {
      await res.body.dump().catch(() => undefined);
      // The reason names the status only: nothing of the answer (body, Location) is
      // quoted — the source may be an internal URL the caller could not read itself.
      const redirect = res.statusCode >= 300 && res.statusCode < 400
        ? `; a redirect${res.headers.location !== undefined ? '' : ' without Location'} — redirects are not followed, give the final URL` : '';
      return { ok: false, reason: `cannot fetch import source ${url}: HTTP ${res.statusCode}${redirect}` };
    }
    const length = Number(res.headers['content-length']);
    if (Number.isFinite(length) && length > maxBytes) {
      res.body.destroy();
      return { ok: false, reason: `import file is ${length} bytes, over the limit of ${maxBytes} bytes` };
    }
    const parts: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      const b = chunk as Buffer;
      size += b.length;
      if (size > maxBytes) {
        res.body.destroy();
        return { ok: false, reason: `import file is over the limit of ${maxBytes} bytes` };
      }
      parts.push(b);
    }
    return { ok: true, bytes: Buffer.concat(parts, size) };
  } catch (err) {
    const e = err as Error & { code?: string };
    const why = signal.aborted ? `no complete answer within ${timeoutMs} ms` : `${e.code ? `${e.code}: ` : ''}${e.message}`;
    return { ok: false, reason: `cannot fetch import source ${url}: ${why}` };
  }
};

/**
 * Reads a file up to `maxBytes` (a larger file fails without being read whole).
 * Never throws: an unreadable file is a reason.
 */
export async function readImportFile(path: string, maxBytes: number): Promise<ImportSourceResult> {
  let fh;
  try {
    fh = await open(path, 'r');
    const st = await fh.stat();
    if (!st.isFile()) return { ok: false, reason: `cannot read import file ${path}: not a regular file` };
    if (st.size > maxBytes) return { ok: false, reason: `import file is ${st.size} bytes, over the limit of ${maxBytes} bytes` };
    // One byte of headroom tells a file that grew while being read.
    const buf = Buffer.allocUnsafe(st.size + 1);
    let size = 0;
    while (size < buf.length) {
      const { bytesRead } = await fh.read(buf, size, buf.length - size, null);
      if (bytesRead === 0) break;
      size += bytesRead;
    }
    if (size > st.size) return { ok: false, reason: `cannot read import file ${path}: it changed while being read` };
    return { ok: true, bytes: buf.subarray(0, size) };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { ok: false, reason: `cannot read import file ${path}: ${e.code === 'ENOENT' ? 'no such file' : e.message}` };
  } finally {
    await fh?.close();
  }
}

/** Reads `source` (URL or path) with the given fetcher and limits. Never throws. */
export async function readImportSource(
  source: string, opts: { maxBytes: number; timeoutMs: number; fetcher?: ImportFetcher },
): Promise<ImportSourceResult> {
  if (isUrlSource(source)) return (opts.fetcher ?? undiciImportFetcher)(source, { maxBytes: opts.maxBytes, timeoutMs: opts.timeoutMs });
  return readImportFile(source, opts.maxBytes);
}
