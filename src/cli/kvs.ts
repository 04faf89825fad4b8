/**
 * `portcullis kvs …`: KeyValueStore commands (SPEC section 5). They act on the local
 * embedded store (`<data-dir>/portcullis.db`, `--data-dir`, default
 * `$PORTCULLIS_DATA_DIR` or `./data`), or through the admin API when one is configured
 * and `--data-dir` is not given (`--admin-url`/`--token`, `--config`, or
 * `$PORTCULLIS_ADMIN_URL`/`$PORTCULLIS_ADMIN_TOKEN`; api-backends.ts). On the local
 * store several commands may run at once, and alongside a running node — concurrency
 * is handled by ETags and SQLite locking. Over the API, `import-crl --trust-store`
 * names a stored trust store (name or id) instead of a PEM file, and a local
 * `--import` file is sent in the request.
 *
 * Writes need the store's current ETag: without `--if-match ETAG` the command reads it
 * first (so two concurrent CLI writers can still conflict; with `--if-match` a stale
 * ETag fails with PreconditionFailed and changes nothing).
 *
 * Exit codes ({@link KVS_EXIT}): 0 done; 2 not found (store or key); 3 conflict (stale
 * ETag, name taken, store not READY, in use — including a key the imported CRL lists);
 * 4 over a limit (key/value size, store quota, a local import file over the limit,
 * checked before anything is created); 5 an import or CRL was refused (the store is
 * FAILED, or the CRL did not verify); 64 usage (bad arguments or option values,
 * unreadable or non-regular input file, invalid UTF-8 or duplicate JSON members in an
 * input, missing If-Match); 69 the store is unavailable (cannot open the data directory, database
 * locked past the busy timeout); 1 anything else.
 */
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { CrlError, EntitySizeLimitExceededError, PortcullisError } from '../errors.js';
import type { Store } from '../store/index.js';
import {
  KeyValueStoreService, describeDuplicateMember, findDuplicateMember, firstInvalidUtf8, isUrlSource, type KvsDescription, type KvsWriteResult,
} from '../kvs/index.js';
import { ParsedCertificate, parseTrustStoreBundle, splitCertificates, type TrustAnchorSet } from '../pki/index.js';
import { CliUsageError, RESOURCE_EXIT, checkOneStdin, resourceExitCode, shownFileName, withLocalStore } from './common.js';
import { localOrApiCommandOptions, withApi, type AdminOptions } from './api-client.js';
import { backendOf, kvsOverApi, type KvsBackend } from './api-backends.js';

/** Exit codes of the `kvs` commands (the shared resource table). */
export const KVS_EXIT = RESOURCE_EXIT;

/** Exit code for a catalogue error code (the shared resource mapping). */
export const kvsExitCode = resourceExitCode;

/** Options every `kvs` subcommand takes. */
interface CommonOptions extends AdminOptions {
  /** Undefined when not given: then the admin API if configured, else {@link defaultDataDir}. */
  dataDir?: string;
  json?: boolean;
}

/** Default data directory: `$PORTCULLIS_DATA_DIR`, else `./data`. */
export function defaultDataDir(): string {
  return process.env.PORTCULLIS_DATA_DIR || './data';
}

/**
 * Where the kvs commands write (standard output and error). Tests replace these to
 * capture output in-process without touching `process.stdout`, which the test runner
 * itself reports through.
 */
export const kvsIo = {
  stdout(text: string): void {
    process.stdout.write(text);
  },
  stderr(text: string): void {
    process.stderr.write(text);
  },
};

function out(text: string): void {
  kvsIo.stdout(text.endsWith('\n') ? text : `${text}\n`);
}

function printJson(value: unknown): void {
  out(JSON.stringify(value, null, 2));
}

function describeText(d: KvsDescription): string {
  const rows: [string, string | number][] = [
    ['Name', d.Name], ['Id', d.Id], ['Status', d.Status],
    ...(d.FailureReason ? [['FailureReason', d.FailureReason] as [string, string]] : []),
    ['Comment', d.Comment], ['ItemCount', d.ItemCount], ['TotalSizeInBytes', d.TotalSizeInBytes], ['ETag', d.ETag],
    ['Created', d.Created], ['LastModified', d.LastModified],
  ];
  if (d.CrlImport) {
    rows.push(['CrlImport.Issuer', d.CrlImport.Issuer], ['CrlImport.ThisUpdate', d.CrlImport.ThisUpdate]);
    if (d.CrlImport.NextUpdate) rows.push(['CrlImport.NextUpdate', d.CrlImport.NextUpdate]);
    if (d.CrlImport.CrlNumber) rows.push(['CrlImport.CrlNumber', d.CrlImport.CrlNumber]);
    rows.push(['CrlImport.Entries', d.CrlImport.Entries], ['CrlImport.ImportedAt', d.CrlImport.ImportedAt]);
  }
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
}

function writeText(name: string, what: string, r: KvsWriteResult): string {
  return `${what} in ${name}\nETag              ${r.ETag}\nItemCount         ${r.ItemCount}\nTotalSizeInBytes  ${r.TotalSizeInBytes}`;
}

/**
 * Decodes UTF-8 strictly (no silent U+FFFD). @throws CliUsageError `<what> is not
 * valid UTF-8 (first invalid byte at offset N)`.
 */
export function decodeUtf8Strict(bytes: Uint8Array, what: string): string {
  const bad = firstInvalidUtf8(bytes);
  if (bad >= 0) throw new CliUsageError(`${what} is not valid UTF-8 (first invalid byte at offset ${bad})`);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
}

/**
 * Parses a `--puts`/`--deletes` document: strict UTF-8 (a leading BOM is ignored, as
 * in imports), JSON, and no member name twice in one object.
 * @throws CliUsageError naming the file and the problem.
 */
export function parseJsonDocument(bytes: Uint8Array, option: string, file: string): unknown {
  const shown = `${option} file ${shownFileName(file)}`;
  let text = decodeUtf8Strict(bytes, shown);
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let doc: unknown;
  try {
    doc = JSON.parse(text) as unknown;
  } catch (err) {
    throw new CliUsageError(`${shown} is not valid JSON: ${(err as Error).message}`);
  }
  const dup = findDuplicateMember(text);
  if (dup) throw new CliUsageError(`${shown} has a ${describeDuplicateMember(dup)}`);
  return doc;
}

/** Reads and parses a JSON file for `--puts`/`--deletes`. @throws CliUsageError naming the file. */
function readJsonFile(file: string, option: string): unknown {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file === '-' ? 0 : file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new CliUsageError(`cannot read ${option} file ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'is a directory' : e.message}`);
  }
  return parseJsonDocument(bytes, option, file);
}

/**
 * `kvs keys` text output: a key or value with a tab, newline or carriage return
 * would make the `KEY<TAB>VALUE` lines ambiguous, so `\` → `\\`, tab → `\t`, LF → `\n`,
 * CR → `\r` (`--json` prints them unescaped).
 */
export function escapeKeysField(s: string): string {
  return /[\\\t\n\r]/.test(s) ? s.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r')) : s;
}

/**
 * `process.argv` is already decoded: an argument with invalid UTF-8 arrives with
 * U+FFFD in place of the bad bytes. When an argument holds U+FFFD, the raw bytes are
 * read from `/proc/self/cmdline` (Linux) to tell a real U+FFFD from a decoding
 * accident, and invalid UTF-8 is refused. Where `/proc` is not available the argument
 * is taken as decoded (documented limitation).
 * @throws CliUsageError naming the argument and the offset of its first invalid byte.
 */
export function checkArgvUtf8(argv: readonly string[] = process.argv, readCmdline: () => Buffer = () => readFileSync('/proc/self/cmdline')): void {
  if (!argv.some((a) => a.includes('\uFFFD'))) return;
  let raw: Buffer;
  try {
    raw = readCmdline();
  } catch {
    return;
  }
  let start = 0;
  for (let i = 0; i <= raw.length; i++) {
    if (i < raw.length && raw[i] !== 0) continue;
    const arg = raw.subarray(start, i);
    const bad = firstInvalidUtf8(arg);
    if (bad >= 0) {
      throw new CliUsageError(`the argument "${shortArg(arg.toString('utf8'))}" is not valid UTF-8 (first invalid byte at offset ${bad}); keys, values and names must be UTF-8`);
    }
    start = i + 1;
  }
}

function shortArg(s: string): string {
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}

/**
 * Parses a `--puts` file: the import format `{"data":[{"key","value"}]}`, or an array of
 * `{"Key","Value"}` (the AWS CLI's UpdateKeys shape) or `{"key","value"}`.
 * @throws CliUsageError naming the file and entry.
 */
export function parsePutsFile(doc: unknown, file: string): { key: string; value: string }[] {
  const list = Array.isArray(doc) ? doc : (doc as { data?: unknown } | null)?.data;
  if (!Array.isArray(list)) throw new CliUsageError(`--puts file ${file}: expected [{"Key":"…","Value":"…"}, …] or {"data":[{"key":"…","value":"…"}, …]}`);
  return list.map((e: unknown, i) => {
    const o = (e ?? {}) as Record<string, unknown>;
    const key = o.Key ?? o.key;
    const value = o.Value ?? o.value;
    if (typeof key !== 'string' || typeof value !== 'string') throw new CliUsageError(`--puts file ${file}: entry ${i} needs string "Key" and "Value"`);
    return { key, value };
  });
}

/**
 * Parses a `--deletes` file: an array of key strings, of `{"Key":…}` (AWS CLI shape) or
 * of `{"key":…}`. @throws CliUsageError naming the file and entry.
 */
export function parseDeletesFile(doc: unknown, file: string): string[] {
  if (!Array.isArray(doc)) throw new CliUsageError(`--deletes file ${file}: expected ["key", …] or [{"Key":"…"}, …]`);
  return doc.map((e: unknown, i) => {
    const key = typeof e === 'string' ? e : ((e ?? {}) as Record<string, unknown>).Key ?? ((e ?? {}) as Record<string, unknown>).key;
    if (typeof key !== 'string') throw new CliUsageError(`--deletes file ${file}: entry ${i} is not a key string or {"Key":"…"}`);
    return key;
  });
}

/** Reads a whole file as bytes. @throws CliUsageError naming it. */
function readBinaryFile(file: string, what: string): Buffer {
  try {
    return readFileSync(file === '-' ? 0 : file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new CliUsageError(`cannot read ${what} ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  }
}

function parseMax(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new CliUsageError(`--max must be a positive integer, got "${value}"`);
  return Number(value);
}

async function readStdin(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of process.stdin) parts.push(chunk as Buffer);
  return decodeUtf8Strict(Buffer.concat(parts), 'the value read from standard input');
}

/**
 * Opens the store, runs `fn`, closes the store, and turns catalogue errors into a
 * message on stderr and the exit code of {@link kvsExitCode}.
 */
async function withService(
  opts: CommonOptions, fn: (kvs: KvsBackend, store: Store | undefined) => Promise<number | void>, sweep: 'wait' | 'no-wait' = 'no-wait',
): Promise<void> {
  if (backendOf(opts) === 'api') {
    await withApi(opts, (api) => fn(kvsOverApi(api), undefined), undefined, (t) => kvsIo.stderr(t));
    return;
  }
  await withLocalStore(opts.dataDir ?? defaultDataDir(), (t) => kvsIo.stderr(t), async (store) => {
    const svc = new KeyValueStoreService(store);
    // Stores left PROVISIONING by a dead process are marked FAILED by any command;
    // only create waits for the write lock to do it (reads never wait for writers).
    await svc.recoverInterruptedImports({ wait: sweep === 'wait' });
    return fn(svc, store);
  });
}

/** Resolves `--if-match` or reads the store's current ETag. */
async function ifMatchOrCurrent(kvs: KvsBackend, name: string, ifMatch: string | undefined): Promise<string> {
  if (ifMatch !== undefined) return ifMatch;
  return (await kvs.describe(name)).ETag;
}

const common = localOrApiCommandOptions;

function withIfMatch(cmd: Command): Command {
  return cmd.option('--if-match <etag>', 'the ETag this write is based on (default: read the current one first)');
}

/** Registers `portcullis kvs …`. */
export function registerKvsCommands(program: Command): void {
  const kvs = program.command('kvs').description('KeyValueStore: create, import, read and write key value stores (local store, or the admin API when configured)');
  kvs.hook('preAction', () => checkArgvUtf8());

  common(kvs.command('create'))
    .description('create a key value store, optionally importing {"data":[{"key":"…","value":"…"}]} from a file or http(s) URL')
    .argument('<name>', 'store name: 1-64 of A-Z a-z 0-9 - _')
    .option('--import <file-or-url>', 'import file path or http(s):// URL (UTF-8 JSON, ≤ 5 MB)')
    .option('--comment <text>', 'comment (≤ 128 characters)')
    .action(async (name: string, opts: CommonOptions & { import?: string; comment?: string }) => {
      // A local import file is checked before anything is created: unreadable or not
      // a regular file (directory, device, FIFO) is a usage error (64), over the size
      // limit is EntitySizeLimitExceeded (4). A URL is only known once fetched.
      let importSize: number | undefined;
      if (opts.import !== undefined && !isUrlSource(opts.import)) {
        try {
          const st = statSync(opts.import);
          if (!st.isFile()) throw new CliUsageError(`cannot read import file ${opts.import}: not a regular file`);
          accessSync(opts.import, constants.R_OK);
          importSize = st.size;
        } catch (err) {
          if (err instanceof CliUsageError) throw err;
          const e = err as NodeJS.ErrnoException;
          throw new CliUsageError(`cannot read import file ${opts.import}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
        }
      }
      await withService(opts, async (svc) => {
        if (importSize !== undefined && svc.limits && importSize > svc.limits.maxImportBytes) {
          throw new EntitySizeLimitExceededError(`import file ${opts.import} is ${importSize} bytes, over the limit of ${svc.limits.maxImportBytes} bytes; nothing was created`);
        }
        const d = await svc.create({ name, ...(opts.comment !== undefined ? { comment: opts.comment } : {}), ...(opts.import !== undefined ? { importSource: opts.import } : {}) });
        if (opts.json) printJson(d);
        else out(describeText(d));
        if (d.Status === 'FAILED') {
          kvsIo.stderr(`portcullis: import failed: ${d.FailureReason ?? 'unknown reason'}; the store "${name}" exists with status FAILED and no items — delete it, fix the file and create it again\n`);
          return KVS_EXIT.refused;
        }
      }, 'wait');
    });

  common(kvs.command('describe'))
    .description('show status, item count, total size, ETag and times of a store')
    .argument('<name>')
    .action(async (name: string, opts: CommonOptions) => {
      await withService(opts, async (svc) => {
        const d = await svc.describe(name);
        if (opts.json) printJson(d);
        else out(describeText(d));
      });
    });

  common(kvs.command('list'))
    .description('list key value stores')
    .action(async (opts: CommonOptions) => {
      await withService(opts, async (svc) => {
        const all = await svc.list();
        if (opts.json) {
          printJson({ KeyValueStoreList: { Items: all } });
          return;
        }
        if (all.length === 0) {
          out('no key value stores');
          return;
        }
        const rows = [['NAME', 'STATUS', 'ITEMS', 'BYTES', 'ETAG', 'LAST-MODIFIED'], ...all.map((d) => [d.Name, d.Status, String(d.ItemCount), String(d.TotalSizeInBytes), d.ETag, d.LastModified])];
        const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
        out(rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n'));
      });
    });

  common(kvs.command('keys'))
    .description('list keys and values in byte order of the keys, one page at a time (ListKeys)')
    .argument('<name>')
    .option('--max <n>', 'items per page (default 10, at most 50)')
    .option('--next-token <token>', 'continue after the previous page')
    .option('--prefix <text>', 'only keys starting with this text (UTF-8 byte order; a Portcullis extension of ListKeys; pass it again with --next-token)')
    .action(async (name: string, opts: CommonOptions & { max?: string; nextToken?: string; prefix?: string }) => {
      const maxResults = opts.max !== undefined ? parseMax(opts.max) : undefined;
      await withService(opts, async (svc) => {
        const page = await svc.listKeys(name, {
          ...(maxResults !== undefined ? { maxResults } : {}), ...(opts.nextToken !== undefined ? { nextToken: opts.nextToken } : {}),
          ...(opts.prefix !== undefined ? { prefix: opts.prefix } : {}),
        });
        if (opts.json) {
          printJson(page);
          return;
        }
        for (const it of page.Items) out(`${escapeKeysField(it.Key)}\t${escapeKeysField(it.Value)}`);
        if (page.NextToken) kvsIo.stderr(`more keys: --next-token ${page.NextToken}${opts.prefix !== undefined ? ' (with the same --prefix)' : ''}\n`);
      });
    });

  common(kvs.command('get'))
    .description('print the value of a key (exit 2 when absent)')
    .argument('<name>')
    .argument('<key>')
    .action(async (name: string, key: string, opts: CommonOptions) => {
      await withService(opts, async (svc) => {
        const r = await svc.getKey(name, key);
        if (opts.json) printJson(r);
        else out(r.Value);
      });
    });

  withIfMatch(common(kvs.command('put')))
    .description('create or replace a key; VALUE from standard input when omitted (one trailing newline removed)')
    .argument('<name>')
    .argument('<key>')
    .argument('[value]')
    .action(async (name: string, key: string, value: string | undefined, opts: CommonOptions & { ifMatch?: string }) => {
      const v = value ?? (await readStdin()).replace(/\r?\n$/, '');
      await withService(opts, async (svc) => {
        const r = await svc.putKey(name, { key, value: v, ifMatch: await ifMatchOrCurrent(svc, name, opts.ifMatch) });
        if (opts.json) printJson(r);
        else out(writeText(name, `put ${key}`, r));
      });
    });

  withIfMatch(common(kvs.command('delete-key')))
    .description('delete a key (exit 2 when absent)')
    .argument('<name>')
    .argument('<key>')
    .action(async (name: string, key: string, opts: CommonOptions & { ifMatch?: string }) => {
      await withService(opts, async (svc) => {
        const r = await svc.deleteKey(name, { key, ifMatch: await ifMatchOrCurrent(svc, name, opts.ifMatch) });
        if (opts.json) printJson(r);
        else out(writeText(name, `deleted ${key}`, r));
      });
    });

  withIfMatch(common(kvs.command('update')))
    .description('apply puts and deletes all-or-nothing (≤ 50 keys in total)')
    .argument('<name>')
    .option('--puts <file>', 'JSON [{"Key":"…","Value":"…"}, …] (or the import format)')
    .option('--deletes <file>', 'JSON ["key", …] or [{"Key":"…"}, …]')
    .action(async (name: string, opts: CommonOptions & { ifMatch?: string; puts?: string; deletes?: string }) => {
      if (opts.puts === undefined && opts.deletes === undefined) throw new CliUsageError('kvs update needs --puts FILE and/or --deletes FILE');
      checkOneStdin({ '--puts': opts.puts, '--deletes': opts.deletes });
      const puts = opts.puts !== undefined ? parsePutsFile(readJsonFile(opts.puts, '--puts'), opts.puts) : [];
      const deletes = opts.deletes !== undefined ? parseDeletesFile(readJsonFile(opts.deletes, '--deletes'), opts.deletes) : [];
      await withService(opts, async (svc) => {
        const r = await svc.updateKeys(name, { puts, deletes, ifMatch: await ifMatchOrCurrent(svc, name, opts.ifMatch) });
        if (opts.json) printJson(r);
        else out(writeText(name, `${puts.length} put(s), ${deletes.length} delete(s)`, r));
      });
    });

  withIfMatch(common(kvs.command('import-crl')))
    .description('verify an X.509 CRL (DER or PEM) against a trust-store bundle and make the store\'s CRL keys exactly its revoked serials, in one atomic write')
    .argument('<name>')
    .requiredOption('--crl <file>', 'the CRL, DER or PEM')
    .requiredOption('--trust-store <file-or-name>', 'local store: PEM bundle of the CA(s) allowed to sign the CRL; admin API: a stored trust store (name or id)')
    .option('--issuer-chain <file>', 'PEM of the intermediate CA(s) that signed the CRL, chaining to the trust store (up to 8; when the trust store holds only the root)')
    .action(async (name: string, opts: CommonOptions & { ifMatch?: string; crl: string; trustStore: string; issuerChain?: string }) => {
      checkOneStdin({ '--crl': opts.crl, '--trust-store': opts.trustStore, ...(opts.issuerChain !== undefined ? { '--issuer-chain': opts.issuerChain } : {}) });
      const crl = readBinaryFile(opts.crl, 'CRL file');
      const issuerChainPem = opts.issuerChain !== undefined ? readBinaryFile(opts.issuerChain, 'issuer-chain file').toString('utf8') : undefined;
      let issuerChain: ParsedCertificate[] | undefined;
      if (issuerChainPem !== undefined) {
        try {
          const blocks = splitCertificates(Buffer.from(issuerChainPem, 'utf8'));
          if (blocks.length === 0) throw new CliUsageError('holds no certificate (expected -----BEGIN CERTIFICATE----- blocks)');
          issuerChain = blocks.map((b) => ParsedCertificate.fromDer(b.der, b.where));
        } catch (err) {
          if (err instanceof PortcullisError) throw new CliUsageError(`issuer-chain file ${shownFileName(opts.issuerChain!)}: ${err.message}`);
          throw err;
        }
      }
      let anchors: TrustAnchorSet | undefined;
      if (backendOf(opts) === 'local') {
        if (opts.trustStore !== '-' && !existsSync(opts.trustStore)) {
          throw new CliUsageError(`cannot read trust-store file ${opts.trustStore}: no such file (naming a stored trust store is not supported yet on the local store: it needs the admin API, --admin-url or $PORTCULLIS_ADMIN_URL without --data-dir)`);
        }
        const bundle = readBinaryFile(opts.trustStore, 'trust-store file').toString('utf8');
        try {
          anchors = parseTrustStoreBundle(bundle);
        } catch (err) {
          if (err instanceof PortcullisError) throw new CliUsageError(`trust-store file ${opts.trustStore}: ${err.message}`);
          throw err;
        }
      }
      await withService(opts, async (svc) => {
        const ifMatch = await ifMatchOrCurrent(svc, name, opts.ifMatch);
        let r;
        try {
          r = anchors !== undefined && svc.importCrl ? await svc.importCrl(name, { crl, trustStore: anchors, ifMatch, ...(issuerChain ? { issuerChain } : {}) })
            : await svc.importCrlByName!(name, { crl, trustStore: opts.trustStore, ifMatch, ...(issuerChainPem !== undefined ? { issuerChainPem } : {}) });
        } catch (err) {
          // Name the file: "CRL file x.pem: no CRL found …", "CRL file x.der: signature …".
          if (err instanceof CrlError) throw new CrlError(`CRL file ${shownFileName(opts.crl)}: ${err.message}`, { cause: err });
          throw err;
        }
        if (opts.json) {
          printJson(r);
          return;
        }
        out([
          `imported the CRL of ${r.Crl.Issuer} into ${name}`,
          `ThisUpdate        ${r.Crl.ThisUpdate}`,
          ...(r.Crl.NextUpdate ? [`NextUpdate        ${r.Crl.NextUpdate}`] : []),
          ...(r.Crl.CrlNumber ? [`CrlNumber         ${r.Crl.CrlNumber}`] : []),
          `Entries           ${r.Entries}`,
          `Removed           ${r.Removed}`,
          ...(r.SkippedManualKeys ? [`SkippedManual     ${r.SkippedManualKeys} (keys put by hand are left as they are)`] : []),
          `ETag              ${r.ETag}`,
          `ItemCount         ${r.ItemCount}`,
          `TotalSizeInBytes  ${r.TotalSizeInBytes}`,
        ].join('\n'));
      });
    });

  withIfMatch(common(kvs.command('delete')))
    .description('delete a key value store and all its items')
    .argument('<name>')
    .action(async (name: string, opts: CommonOptions & { ifMatch?: string }) => {
      await withService(opts, async (svc) => {
        await svc.deleteStore(name, { ifMatch: await ifMatchOrCurrent(svc, name, opts.ifMatch) });
        if (opts.json) printJson({ Deleted: name });
        else out(`deleted key value store ${name}`);
      });
    });
}
