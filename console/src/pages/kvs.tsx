// Key value stores: counts and size, keys by prefix, add/edit/delete a key (ETag
// conflicts explained, with a reload), JSON and CRL import, revoke a certificate by PEM.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, enc, type InspectedCertificate, type Kvs, type KvsWrite, type List, type TrustStore } from '../api';
import { Badge, ErrorBox, Notice, PageHeader, PickAside, formatBytes, readBase64, readText, shortEtag, useLoad } from '../ui';

interface KeyItem { Key: string; Value: string }
interface KeysPage { Items: KeyItem[]; NextToken?: string }

/** One page (≤ 50) of the keys starting with `prefix` (the API's `prefix` query parameter: UTF-8 byte order, exact for any Unicode). */
async function listKeys(name: string, prefix: string, token: string | undefined, signal: AbortSignal): Promise<{ items: KeyItem[]; next?: string; etag?: string }> {
  const q = new URLSearchParams({ maxResults: '50' });
  if (prefix !== '') q.set('prefix', prefix);
  if (token) q.set('nextToken', token);
  const r = await api.get<KeysPage>(`/v1/key-value-stores/${enc(name)}/keys?${q}`, { signal });
  return { items: r.data.Items, ...(r.data.NextToken ? { next: r.data.NextToken } : {}), ...(r.etag ? { etag: r.etag } : {}) };
}

const utf8 = new TextEncoder();
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Checks a whole JSON import file before anything is written: shape, string keys and
 * values, empty or lone-surrogate keys, key and value sizes (UTF-8 bytes) against the
 * store's limits, duplicate keys, and the store size quota where it is certain to be
 * exceeded by the file alone. Returns the items, or throws an Error naming the entry and the problem.
 */
export function checkImport(fileName: string, text: string, limits: Kvs['Limits']): { items: KeyItem[]; bytes: number } {
  let doc: { data?: unknown };
  try {
    doc = JSON.parse(text) as { data?: unknown };
  } catch (e) {
    throw new Error(`${fileName}: not valid JSON (${(e as Error).message}). Nothing was imported.`);
  }
  if (!doc || !Array.isArray(doc.data)) throw new Error(`${fileName}: expected {"data":[{"key":"…","value":"…"}]}. Nothing was imported.`);
  const seen = new Map<string, number>();
  const items: KeyItem[] = [];
  let bytes = 0;
  (doc.data as { key?: unknown; value?: unknown }[]).forEach((d, i) => {
    const where = `${fileName}: data[${i}]${typeof d?.key === 'string' ? ` (key "${d.key.length > 60 ? `${d.key.slice(0, 60)}…` : d.key}")` : ''}`;
    const bad = (why: string) => new Error(`${where}: ${why}. Nothing was imported.`);
    if (typeof d !== 'object' || d === null) throw bad('each entry must be an object {"key":"…","value":"…"}');
    if (typeof d.key !== 'string') throw bad('key must be a string');
    if (typeof d.value !== 'string') throw bad('value must be a string');
    if (d.key === '') throw bad('key must not be empty');
    if (LONE_SURROGATE.test(d.key)) throw bad('key is not well-formed Unicode (lone surrogate)');
    if (LONE_SURROGATE.test(d.value)) throw bad('value is not well-formed Unicode (lone surrogate)');
    const kb = utf8.encode(d.key).length;
    const vb = utf8.encode(d.value).length;
    if (limits && kb > limits.MaxKeyBytes) throw bad(`key is ${kb} bytes (UTF-8), over the limit of ${limits.MaxKeyBytes} bytes`);
    if (limits && vb > limits.MaxValueBytes) throw bad(`value is ${vb} bytes (UTF-8), over the limit of ${limits.MaxValueBytes} bytes`);
    const first = seen.get(d.key);
    if (first !== undefined) throw bad(`duplicate key (also data[${first}])`);
    seen.set(d.key, i);
    bytes += kb + vb;
    items.push({ Key: d.key, Value: d.value });
  });
  if (limits && bytes > limits.MaxStoreBytes) {
    throw new Error(`${fileName}: its keys and values are ${bytes} bytes, over the store limit of ${limits.MaxStoreBytes} bytes. Nothing was imported.`);
  }
  return { items, bytes };
}

function StoreDetail({ name, onListChanged }: { name: string; onListChanged: () => void }) {
  const desc = useLoad(async (signal) => api.get<Kvs>(`/v1/key-value-stores/${enc(name)}`, { signal }), [name]);
  const [etag, setEtag] = useState<string | undefined>(undefined);
  const [prefix, setPrefix] = useState('');
  const [keys, setKeys] = useState<{ items: KeyItem[]; next?: string; prefix: string } | undefined>(undefined);
  const [listError, setListError] = useState<unknown>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const searchAc = useRef<AbortController | undefined>(undefined);
  const [notice, setNotice] = useState<string | undefined>(undefined);
  const [editKey, setEditKey] = useState('');
  const [editValue, setEditValue] = useState('');
  const [busy, setBusy] = useState(false);
  const [pem, setPem] = useState('');
  const [inspected, setInspected] = useState<InspectedCertificate | undefined>(undefined);
  const [pastedCount, setPastedCount] = useState(0);
  const trustStores = useLoad(async (signal) => (await api.get<List<TrustStore>>('/v1/trust-stores', { signal })).data.Items, []);
  const [crlTrustStore, setCrlTrustStore] = useState('');
  const [crlChain, setCrlChain] = useState('');
  const store = desc.data?.data;

  useEffect(() => { if (desc.data) setEtag(desc.data.etag); }, [desc.data]);

  /** Lists the keys for the prefix; a newer search cancels an older one (the last request wins, not the last to finish). */
  const search = async (more = false) => {
    searchAc.current?.abort();
    const ac = new AbortController();
    searchAc.current = ac;
    const p = more && keys ? keys.prefix : prefix;
    setListError(undefined);
    try {
      const r = await listKeys(name, p, more ? keys?.next : undefined, ac.signal);
      if (ac.signal.aborted) return;
      setKeys({ items: more ? [...(keys?.items ?? []), ...r.items] : r.items, prefix: p, ...(r.next ? { next: r.next } : {}) });
      if (r.etag && !more) setEtag(r.etag);
    } catch (e) {
      if (ac.signal.aborted) return;
      setListError(e);
    }
  };
  useEffect(() => () => searchAc.current?.abort(), []);
  useEffect(() => { setKeys(undefined); setPrefix(''); setNotice(undefined); setError(undefined); setListError(undefined); setInspected(undefined); }, [name]);
  useEffect(() => { if (keys === undefined) void search(); }, [name, keys]);

  const reloadAll = () => { setError(undefined); setNotice(undefined); desc.reload(); setKeys(undefined); onListChanged(); };
  /** Runs one write; true when it succeeded (the form keeps its input otherwise). */
  const write = async (what: string, f: () => Promise<{ data: KvsWrite }>): Promise<boolean> => {
    setBusy(true);
    setError(undefined);
    setNotice(undefined);
    try {
      const r = await f();
      setEtag(r.data.ETag);
      setNotice(what);
      desc.reload();
      setKeys(undefined);
      onListChanged();
      return true;
    } catch (e) {
      setError(e);
      return false;
    } finally {
      setBusy(false);
    }
  };
  const putKey = (e: Event) => {
    e.preventDefault();
    const k = editKey;
    void write(`Saved key "${k}".`, () => api.put<KvsWrite>(`/v1/key-value-stores/${enc(name)}/keys/${enc(k)}`, { value: editValue }, { ifMatch: etag ?? '' }))
      .then((ok) => { if (ok) { setEditKey(''); setEditValue(''); } });
  };
  const deleteKey = (k: string) => {
    if (!confirm(`Delete key "${k}" from ${name}?`)) return;
    void write(`Deleted key "${k}".`, () => api.del<KvsWrite>(`/v1/key-value-stores/${enc(name)}/keys/${enc(k)}`, { ifMatch: etag ?? '' }));
  };
  const inspect = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    setNotice(undefined);
    setInspected(undefined);
    try {
      const r = await api.post<List<InspectedCertificate>>('/v1/certificates/inspect', { pem });
      setInspected(r.data.Items[0]);
      setPastedCount(r.data.Items.length);
    } catch (err) {
      setError(err);
    }
  };
  /** What the operator must know before revoking the first pasted certificate. */
  const revokeWarnings = (): string[] => {
    const w: string[] = [];
    if (pastedCount > 1) w.push(`${pastedCount} certificates were pasted; only the first (the leaf) is used — its serial ${inspected?.SerialNumber ?? ''} is revoked.`);
    if (inspected?.IsCA) w.push('This is a CA certificate (IsCA). Revoking its serial in this store only blocks client certificates with this serial number; to distrust a CA, remove it from the trust store.');
    return w;
  };
  const revoke = () => {
    if (!inspected) return;
    const warnings = revokeWarnings();
    if (warnings.length > 0 && !confirm(`${warnings.join('\n\n')}\n\nRevoke serial ${inspected.SerialNumber} anyway?`)) return;
    const k = inspected.KvsKey;
    void write(`Revoked serial ${inspected.SerialNumber} (key "${k}").`, () => api.put<KvsWrite>(`/v1/key-value-stores/${enc(name)}/keys/${enc(k)}`, { value: 'revoked' }, { ifMatch: etag ?? '' }))
      .then((ok) => { if (ok) { setPem(''); setInspected(undefined); } });
  };
  const importJson = async (file: File | undefined) => {
    if (!file) return;
    setError(undefined);
    setNotice(undefined);
    let items: KeyItem[];
    try {
      // Every entry is checked before the first batch is sent: a bad file writes nothing.
      const checked = checkImport(file.name, await readText(file), store?.Limits);
      items = checked.items;
      const max = store?.Limits?.MaxStoreBytes;
      if (store && max !== undefined && store.TotalSizeInBytes + checked.bytes > max
        && !confirm(`${file.name} adds up to ${checked.bytes} bytes to a store of ${store.TotalSizeInBytes} bytes (limit ${max}). Unless it replaces existing keys, a batch will be refused for the quota and only the batches before it are applied. Import anyway?`)) {
        return;
      }
    } catch (e) {
      setError(e);
      return;
    }
    const batch = store?.Limits?.MaxBatchKeys ?? 50;
    const batches = Math.ceil(items.length / batch);
    setBusy(true);
    let current = etag ?? '';
    let done = 0;
    let failure: string | undefined;
    for (let i = 0; i < items.length; i += batch) {
      const chunk = items.slice(i, i + batch);
      try {
        const r = await api.post<KvsWrite>(`/v1/key-value-stores/${enc(name)}/keys`, { puts: chunk.map((c) => ({ key: c.Key, value: c.Value })) }, { ifMatch: current });
        current = r.data.ETag;
        done += chunk.length;
        setEtag(current);
      } catch (e) {
        const n = i / batch + 1;
        const why = e instanceof ApiError ? `${e.code}: ${e.message}` : String((e as Error)?.message ?? e);
        failure = `Import of ${file.name} stopped at batch ${n} of ${batches} (data[${i}]–data[${i + chunk.length - 1}], keys "${chunk[0]!.Key}" … "${chunk[chunk.length - 1]!.Key}"): ${why}. `
          + (done > 0 ? `The ${n - 1} earlier batch${n - 1 === 1 ? '' : 'es'} (${done} of ${items.length} keys) were applied and stay in the store; this batch and the later ones were not.` : 'Nothing was imported.');
        break;
      }
    }
    setBusy(false);
    if (failure) setError(new Error(failure));
    else setNotice(`Imported ${done} keys from ${file.name}.`);
    desc.reload();
    setKeys(undefined);
    onListChanged();
  };
  const importCrl = async (file: File | undefined) => {
    if (!file) return;
    if (!crlTrustStore) { setNotice(undefined); setError(new Error('Choose the trust store that verifies the CRL first.')); return; }
    const text = await readText(file);
    const chain = crlChain.trim() !== '' ? { issuerChainPem: crlChain } : {};
    const body = /-----BEGIN X509 CRL-----/.test(text) ? { crlPem: text, trustStore: crlTrustStore, ...chain } : { crlDerBase64: await readBase64(file), trustStore: crlTrustStore, ...chain };
    void write(`Imported the CRL ${file.name}.`, () => api.post<KvsWrite>(`/v1/key-value-stores/${enc(name)}/import-crl`, body, { ifMatch: etag ?? '' }));
  };

  if (desc.error instanceof ApiError && desc.error.status === 404) {
    return (
      <div class="detail">
        <PageHeader title={name} />
        <div class="msg msg-error" role="alert" data-testid="not-found">There is no key value store named "{name}". <a href="#/kvs">Show the stores</a></div>
      </div>
    );
  }
  return (
    <div class="detail">
      <PageHeader title={name}><button type="button" onClick={reloadAll}>Reload</button></PageHeader>
      <ErrorBox error={desc.error} onReload={desc.reload} />
      {store && (
        <dl class="facts">
          <div><dt>Status</dt><dd><Badge kind={store.Status === 'READY' ? 'ok' : store.Status === 'FAILED' ? 'bad' : 'info'}>{store.Status}</Badge></dd></div>
          <div><dt>Items</dt><dd data-testid="item-count">{store.ItemCount}</dd></div>
          <div><dt>Size</dt><dd>{formatBytes(store.TotalSizeInBytes)}</dd></div>
          <div><dt>ETag</dt><dd><code title={etag}>{shortEtag(etag)}</code></dd></div>
        </dl>
      )}
      {store?.FailureReason && <p class="msg msg-error">{store.FailureReason}</p>}
      <ErrorBox error={error} onReload={reloadAll} />
      {notice && <Notice>{notice}</Notice>}

      <section class="card" aria-labelledby="keys-title">
        <h2 id="keys-title">Keys</h2>
        <form class="inline-form" role="search" onSubmit={(e) => { e.preventDefault(); void search(); }}>
          <label for="prefix">Key prefix</label>
          <input id="prefix" type="search" value={prefix} onInput={(e) => setPrefix((e.target as HTMLInputElement).value)} placeholder="e.g. 00a7" />
          <button type="submit">Search</button>
        </form>
        <ErrorBox error={listError} onReload={() => void search()} />
        {keys && keys.items.length === 0 && <p class="muted">{keys.prefix ? `No key starts with "${keys.prefix}".` : 'The store is empty.'}</p>}
        {keys && keys.items.length > 0 && (
          <div class="table-wrap">
            <table class="cards-sm" role="table">
              <caption class="sr-only">Keys of {name}</caption>
              <thead role="rowgroup"><tr role="row"><th scope="col" role="columnheader">Key</th><th scope="col" role="columnheader">Value</th><th scope="col" role="columnheader"><span class="sr-only">Actions</span></th></tr></thead>
              <tbody role="rowgroup">
                {keys.items.map((it) => (
                  <tr role="row" key={it.Key}>
                    <td role="cell" data-label="Key"><code class="wrap">{it.Key}</code></td>
                    <td role="cell" data-label="Value"><span class="wrap value">{it.Value.length > 200 ? `${it.Value.slice(0, 200)}…` : it.Value}</span></td>
                    <td role="cell" class="nowrap actions-cell">
                      <button type="button" class="small" aria-label={`Edit ${it.Key}`} onClick={() => { setEditKey(it.Key); setEditValue(it.Value); document.getElementById('kv-value')?.focus(); }}>Edit</button>{' '}
                      <button type="button" class="small danger" aria-label={`Delete ${it.Key}`} disabled={busy} onClick={() => deleteKey(it.Key)}>Delete</button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {keys?.next && <button type="button" onClick={() => void search(true)}>Load more</button>}
      </section>

      <section class="card" aria-labelledby="put-title">
        <h2 id="put-title">Add or edit a key</h2>
        <form class="stack" onSubmit={putKey}>
          <label for="kv-key">Key</label>
          <input id="kv-key" required value={editKey} onInput={(e) => setEditKey((e.target as HTMLInputElement).value)} />
          <label for="kv-value">Value</label>
          <textarea id="kv-value" rows={3} value={editValue} onInput={(e) => setEditValue((e.target as HTMLTextAreaElement).value)} />
          <div><button type="submit" class="primary" disabled={busy || editKey === ''}>Save key</button></div>
        </form>
      </section>

      <section class="card" aria-labelledby="revoke-title">
        <h2 id="revoke-title">Revoke a certificate</h2>
        <p class="muted small">Paste the client certificate (PEM). Its serial number becomes a key (colon-less lowercase hex, as <code>leaf.serialNumber.replaceAll(':', '')</code>) with the value <code>revoked</code>.</p>
        <form class="stack" onSubmit={inspect}>
          <label for="revoke-pem">Certificate PEM</label>
          <textarea id="revoke-pem" rows={5} class="mono" value={pem} spellcheck={false} onInput={(e) => { setPem((e.target as HTMLTextAreaElement).value); setInspected(undefined); setPastedCount(0); }} placeholder="-----BEGIN CERTIFICATE-----" />
          <div><button type="submit" disabled={pem.trim() === ''}>Compute key</button></div>
        </form>
        {inspected && (
          <div class="inspected">
            <dl class="facts">
              <div><dt>Subject</dt><dd>{inspected.Subject}</dd></div>
              <div><dt>Serial</dt><dd><code>{inspected.SerialNumber}</code></dd></div>
              <div><dt>Key</dt><dd><code data-testid="revoke-key">{inspected.KvsKey}</code></dd></div>
            </dl>
            {revokeWarnings().map((w) => <p key={w} class="msg msg-warn" role="alert" data-testid="revoke-warning">{w}</p>)}
            <button type="button" class="danger" disabled={busy} onClick={revoke}>Revoke (add key {inspected.KvsKey})</button>
          </div>
        )}
      </section>

      <section class="card" aria-labelledby="import-title">
        <h2 id="import-title">Import</h2>
        <div class="stack">
          <label for="import-json">JSON file (<code>{'{"data":[{"key":"…","value":"…"}]}'}</code>)</label>
          <input id="import-json" type="file" accept=".json,application/json" disabled={busy} onChange={(e) => { const f = (e.target as HTMLInputElement).files?.[0]; (e.target as HTMLInputElement).value = ''; void importJson(f); }} />
          <label for="crl-ts">Trust store that signed the CRL</label>
          <select id="crl-ts" value={crlTrustStore} onChange={(e) => setCrlTrustStore((e.target as HTMLSelectElement).value)}>
            <option value="">Choose…</option>
            {trustStores.data?.map((t) => <option key={t.Id} value={t.Name}>{t.Name}</option>)}
          </select>
          <label for="crl-chain">Issuer chain (optional): the intermediate CA(s) that signed the CRL, PEM</label>
          <textarea id="crl-chain" rows={3} class="mono" spellcheck={false} value={crlChain} onInput={(e) => setCrlChain((e.target as HTMLTextAreaElement).value)}
            placeholder="-----BEGIN CERTIFICATE----- (needed when the trust store holds only the root)" />
          <label for="import-crl">CRL file (PEM or DER)</label>
          <input id="import-crl" type="file" accept=".crl,.pem,.der" disabled={busy} onChange={(e) => { const f = (e.target as HTMLInputElement).files?.[0]; (e.target as HTMLInputElement).value = ''; void importCrl(f); }} />
        </div>
      </section>
    </div>
  );
}

export function KvsPage({ selected }: { selected: string | undefined }) {
  const list = useLoad(async (signal) => (await api.get<List<Kvs>>('/v1/key-value-stores', { signal })).data.Items, []);
  const current = selected ?? list.data?.[0]?.Name;
  return (
    <div class="split">
      <PickAside
        title="Stores" titleId="stores-title" items={list.data} loadError={list.error} reload={list.reload} current={current}
        href={(n) => `#/kvs/${encodeURIComponent(n)}`} detail={(k) => `${k.ItemCount} items`}
        inputId="new-kvs" inputLabel="New store name" createLabel="Create store"
        create={async (name) => { await api.post('/v1/key-value-stores', { name }); }}
      />
      <section class="main-col">
        {current ? <StoreDetail name={current} onListChanged={list.reload} /> : (list.data && <PageHeader title="Key value stores" />)}
        {list.data?.length === 0 && <p class="muted">No key value stores yet: create one.</p>}
      </section>
    </div>
  );
}
