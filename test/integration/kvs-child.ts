/**
 * Child process for the KVS multi-process tests (run with `node --import tsx`).
 * Modes (argv after the script):
 *   watch DIR STORE KEY     open a replica; print `ready`; when KEY appears in STORE,
 *                           print `seen <epoch-ms with µs>` and exit.
 *   writer DIR STORE        put k0, k1, … one by one (If-Match from each result); print
 *                           `ack <key> <etag>` after each acknowledged write, forever.
 *   contend DIR STORE ID N  wait for `go` on stdin, then do N read-ETag-then-put writes
 *                           of key `<ID>-<i>`, retrying on PreconditionFailed; print
 *                           `done <conflicts>`.
 *   race DIR STORE ETAG ID  wait for `go`, put key `race` = ID with If-Match ETAG; print
 *                           `ok` or the error code.
 */
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { openSqliteStore } from '../../src/store/index.js';
import { KeyValueStoreService, KvsReplica } from '../../src/kvs/index.js';

const [mode, dir, storeName, a, b] = process.argv.slice(2) as [string, string, string, string?, string?];
const now = () => performance.timeOrigin + performance.now();

function waitForGo(): Promise<void> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin });
    rl.on('line', (line) => {
      if (line.trim() === 'go') {
        rl.close();
        resolve();
      }
    });
  });
}

const store = await openSqliteStore({ dataDir: dir });
const kvs = new KeyValueStoreService(store);

if (mode === 'watch') {
  const key = a!;
  let done = false;
  const check = () => {
    if (!done && replica.snapshot(storeName)?.get(key) !== undefined) {
      done = true;
      process.stdout.write(`seen ${now().toFixed(3)}\n`);
      replica.close();
      void store.close().then(() => process.exit(0));
    }
  };
  // The replica's poll timer is unref'd (it never keeps a process alive); this does.
  setInterval(() => {}, 1000);
  const replica: KvsReplica = await KvsReplica.open(store, { onApplied: () => check() });
  process.stdout.write('ready\n');
  check();
} else if (mode === 'writer') {
  let etag = (await kvs.describe(storeName)).ETag;
  for (let i = 0; ; i++) {
    const r = await kvs.putKey(storeName, { key: `k${i}`, value: `v${i}`, ifMatch: etag });
    etag = r.ETag;
    process.stdout.write(`ack k${i} ${etag}\n`);
  }
} else if (mode === 'contend') {
  const id = a!;
  const n = Number(b);
  await waitForGo();
  let conflicts = 0;
  for (let i = 0; i < n; i++) {
    for (;;) {
      const etag = (await kvs.describe(storeName)).ETag;
      try {
        await kvs.putKey(storeName, { key: `${id}-${i}`, value: id, ifMatch: etag });
        break;
      } catch (err) {
        if ((err as { code?: string }).code !== 'PreconditionFailed') throw err;
        conflicts++;
      }
    }
  }
  process.stdout.write(`done ${conflicts}\n`);
  await store.close();
} else if (mode === 'race') {
  const etag = a!;
  const id = b!;
  await waitForGo();
  try {
    await kvs.putKey(storeName, { key: 'race', value: id, ifMatch: etag });
    process.stdout.write('ok\n');
  } catch (err) {
    process.stdout.write(`${(err as { code?: string }).code ?? String(err)}\n`);
  }
  await store.close();
} else {
  process.stderr.write(`unknown mode ${mode}\n`);
  process.exit(64);
}
