// Connection functions: editor (save to DEVELOPMENT, compile errors at their line),
// publish to LIVE, diff between stages, Test tab (PEM, client IP, OCSP statuses) and
// Matrix tab (decision table, unsafe rows highlighted).
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, enc, type FunctionSummary, type Kvs, type List, type MatrixResult, type TestResult } from '../api';
import { Badge, ErrorBox, Notice, PageHeader, PickAside, shortEtag, useLoad } from '../ui';
import type { CodeEditor } from '../editor';

const TEMPLATE = `import cf from 'cloudfront';

async function connectionHandler(connection) {
  // connection.clientCertificate.certificates.leaf.serialNumber, .subject, …
  return connection.allow();
}
`;

type Tab = 'code' | 'test' | 'matrix' | 'diff';
const TABS: { id: Tab; label: string }[] = [
  { id: 'code', label: 'Code' }, { id: 'test', label: 'Test' }, { id: 'matrix', label: 'Matrix' }, { id: 'diff', label: 'Diff' },
];
const STATUSES = ['Good', 'Revoked', 'Unknown', 'Error'] as const;

interface Stages { dev: FunctionSummary; devEtag: string; devCode: string; live?: FunctionSummary; liveCode?: string }

async function loadStages(name: string, signal: AbortSignal): Promise<Stages> {
  const [dev, devCode] = await Promise.all([
    api.get<FunctionSummary>(`/v1/connection-functions/${enc(name)}?stage=DEVELOPMENT`, { signal }),
    api.get<{ Code: string; ETag: string }>(`/v1/connection-functions/${enc(name)}/code?stage=DEVELOPMENT`, { signal }),
  ]);
  let live: FunctionSummary | undefined;
  let liveCode: string | undefined;
  try {
    live = (await api.get<FunctionSummary>(`/v1/connection-functions/${enc(name)}?stage=LIVE`, { signal })).data;
    liveCode = (await api.get<{ Code: string }>(`/v1/connection-functions/${enc(name)}/code?stage=LIVE`, { signal })).data.Code;
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 404)) throw e;
  }
  return { dev: dev.data, devEtag: devCode.data.ETag, devCode: devCode.data.Code, ...(live ? { live } : {}), ...(liveCode !== undefined ? { liveCode } : {}) };
}

/** Line and column of a compile error message ("… (line 3, column 7)"). */
export function compileErrorPosition(message: string): { line: number; column?: number } | undefined {
  const m = /line (\d+)(?:, column (\d+))?/.exec(message);
  if (!m) return undefined;
  return { line: Number(m[1]), ...(m[2] ? { column: Number(m[2]) } : {}) };
}

function Tabs({ tab, setTab }: { tab: Tab; setTab: (t: Tab) => void }) {
  const onKey = (e: KeyboardEvent) => {
    const i = TABS.findIndex((t) => t.id === tab);
    let j = -1;
    if (e.key === 'ArrowRight') j = (i + 1) % TABS.length;
    else if (e.key === 'ArrowLeft') j = (i + TABS.length - 1) % TABS.length;
    else if (e.key === 'Home') j = 0;
    else if (e.key === 'End') j = TABS.length - 1;
    if (j < 0) return;
    e.preventDefault();
    setTab(TABS[j]!.id);
    document.getElementById(`tab-${TABS[j]!.id}`)?.focus();
  };
  return (
    <div class="tabs" role="tablist" aria-label="Function views" onKeyDown={onKey}>
      {TABS.map((t) => (
        <button key={t.id} id={`tab-${t.id}`} type="button" role="tab" aria-selected={tab === t.id} aria-controls={`panel-${t.id}`}
          tabIndex={tab === t.id ? 0 : -1} onClick={() => setTab(t.id)}>{t.label}</button>
      ))}
    </div>
  );
}

/** The server version the editor's text is based on (its ETag guards the next save). */
interface Base { etag: string; code: string; kvs: string }
/** Unsaved edits of one function, kept in this tab's session storage until saved or discarded. */
interface Draft { base: Base; code: string; kvs: string; savedAt: string }

const draftKey = (name: string) => `portcullis.draft.function.${name}`;

/** The stored draft of `name`, if any (unreadable drafts are ignored). */
export function readDraft(name: string): Draft | undefined {
  try {
    const raw = sessionStorage.getItem(draftKey(name));
    if (!raw) return undefined;
    const d = JSON.parse(raw) as Draft;
    return typeof d.code === 'string' && typeof d.base?.etag === 'string' && typeof d.base.code === 'string' ? d : undefined;
  } catch {
    return undefined;
  }
}
function writeDraft(name: string, d: Draft | undefined): void {
  try {
    if (d) sessionStorage.setItem(draftKey(name), JSON.stringify(d));
    else sessionStorage.removeItem(draftKey(name));
  } catch { /* storage full or disabled: the beforeunload warning still protects the edits */ }
}

function serverBase(stages: Stages): Base {
  return { etag: stages.devEtag, code: stages.devCode, kvs: stages.dev.FunctionConfig.KeyValueStoreAssociations.Items[0]?.KeyValueStoreName ?? '' };
}

function CodeTab({ name, stages, resetSeq, onSaved, onDirty }: {
  name: string; stages: Stages; resetSeq: number; onSaved: () => void; onDirty: (dirty: boolean) => void;
}) {
  const host = useRef<HTMLDivElement>(null);
  const editor = useRef<CodeEditor | undefined>(undefined);
  // Start from the stored draft (unsaved edits from before a navigation or a sign-out), else from the server.
  const [initial] = useState(() => {
    const server = serverBase(stages);
    const d = readDraft(name);
    if (d && (d.code !== server.code || d.kvs !== server.kvs || d.base.etag !== server.etag)) return { base: d.base, code: d.code, kvs: d.kvs, restored: d };
    return { base: server, code: server.code, kvs: server.kvs, restored: undefined as Draft | undefined };
  });
  const [base, setBase] = useState<Base>(initial.base);
  const [code, setCode] = useState(initial.code);
  const [kvs, setKvs] = useState(initial.kvs);
  const codeRef = useRef(code);
  codeRef.current = code;
  const [restored, setRestored] = useState<Draft | undefined>(initial.restored);
  /** A newer server version that arrived while there were local edits: the user chooses. */
  const [incoming, setIncoming] = useState<Base | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [errorFrom, setErrorFrom] = useState<'save' | 'publish'>('save');
  const [notice, setNotice] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const [loadError, setLoadError] = useState<unknown>(undefined);
  const kvsList = useLoad(async (signal) => (await api.get<List<Kvs>>('/v1/key-value-stores', { signal })).data.Items, []);
  const dirty = code !== base.code || kvs !== base.kvs;

  useEffect(() => {
    let cancelled = false;
    import('../editor').then((m) => {
      if (cancelled || !host.current) return;
      editor.current = m.createEditor(host.current, codeRef.current, setCode, `Code of ${name} (DEVELOPMENT)`);
    }, setLoadError);
    return () => { cancelled = true; editor.current?.destroy(); editor.current = undefined; };
  }, [name]);

  // Keep the draft in session storage while there are unsaved edits; warn before the tab closes.
  useEffect(() => {
    writeDraft(name, dirty ? { base, code, kvs, savedAt: new Date().toISOString() } : undefined);
    onDirty(dirty);
  }, [name, dirty, code, kvs, base]);
  useEffect(() => {
    if (!dirty) return;
    const warn = (e: BeforeUnloadEvent) => { e.preventDefault(); e.returnValue = ''; };
    addEventListener('beforeunload', warn);
    return () => removeEventListener('beforeunload', warn);
  }, [dirty]);

  const adopt = (b: Base) => {
    setBase(b);
    setCode(b.code);
    setKvs(b.kvs);
    setIncoming(undefined);
    setRestored(undefined);
    setError(undefined);
    editor.current?.showError(undefined);
    if (editor.current && editor.current.getCode() !== b.code) editor.current.setCode(b.code);
  };
  // New server data (a reload or after a save).
  const lastReset = useRef(resetSeq);
  useEffect(() => {
    const server = serverBase(stages);
    if (resetSeq !== lastReset.current) {
      // Header "Reload" (confirmed by the user when there were edits): show the server's code.
      lastReset.current = resetSeq;
      adopt(server);
      setNotice(undefined);
      return;
    }
    if (server.etag === base.etag) return;
    if (codeRef.current === server.code && kvs === server.kvs) { setBase(server); setIncoming(undefined); return; }
    if (!dirty) { adopt(server); return; }
    // Local edits and a different server version: never replace them silently.
    setIncoming(server);
    setError(undefined);
  }, [stages, resetSeq]);

  const save = async () => {
    setBusy(true);
    setError(undefined);
    setNotice(undefined);
    editor.current?.showError(undefined);
    const sent = { code, kvs };
    try {
      const r = await api.put<FunctionSummary>(`/v1/connection-functions/${enc(name)}`, { code: sent.code, ...(sent.kvs !== base.kvs ? { keyValueStore: sent.kvs === '' ? null : sent.kvs } : {}) }, { ifMatch: base.etag });
      setBase({ etag: r.data.ETag ?? r.etag ?? base.etag, code: sent.code, kvs: sent.kvs });
      setRestored(undefined);
      setIncoming(undefined);
      setNotice('Saved to DEVELOPMENT.');
      onSaved();
    } catch (e) {
      setError(e);
      setErrorFrom('save');
      if (e instanceof ApiError && e.code === 'InvalidFunctionCode') {
        const pos = compileErrorPosition(e.message);
        if (pos) editor.current?.showError({ ...pos, message: e.message });
      }
    } finally {
      setBusy(false);
    }
  };
  const publish = async () => {
    setBusy(true);
    setError(undefined);
    setNotice(undefined);
    try {
      const r = await api.post<FunctionSummary>(`/v1/connection-functions/${enc(name)}/publish`, undefined, { ifMatch: base.etag });
      setNotice(`Published: LIVE is now ETag ${r.data.ETag}.`);
      onSaved();
    } catch (e) {
      setError(e);
      setErrorFrom('publish');
    } finally {
      setBusy(false);
    }
  };
  const keepMine = () => {
    // Keep editing on top of the newer server version: the next save replaces it (knowingly).
    if (incoming) setBase(incoming);
    setIncoming(undefined);
    setError(undefined);
    setNotice('Kept your unsaved changes. Saving now replaces the newer server version.');
  };
  const discardMine = () => {
    adopt(serverBase(stages));
    setNotice('Discarded your unsaved changes: the editor shows the server version.');
  };
  const pos = error instanceof ApiError && error.code === 'InvalidFunctionCode' ? compileErrorPosition(error.message) : undefined;
  return (
    <div>
      <div class="toolbar">
        <label for="fn-kvs">Key value store</label>
        <select id="fn-kvs" value={kvs} onChange={(e) => setKvs((e.target as HTMLSelectElement).value)}>
          <option value="">none</option>
          {kvs !== '' && !kvsList.data?.some((k) => k.Name === kvs) && <option value={kvs}>{kvs}</option>}
          {kvsList.data?.map((k) => <option key={k.Id} value={k.Name}>{k.Name}</option>)}
        </select>
        <span class="spacer" />
        <button type="button" class="primary" disabled={busy || !dirty} onClick={save}>Save (DEVELOPMENT)</button>
        <button type="button" disabled={busy || dirty} title={dirty ? 'Save first' : undefined} onClick={publish}>Publish (LIVE)</button>
      </div>
      {restored && (
        <div class="msg msg-warn" role="status" data-testid="draft-restored">
          <strong>Restored unsaved changes</strong> from {new Date(restored.savedAt).toLocaleTimeString()} (based on ETag {shortEtag(restored.base.etag)}
).{' '}
          <button type="button" onClick={discardMine}>Discard my changes</button>{' '}
          <button type="button" class="link" onClick={() => setRestored(undefined)}>Keep editing</button>
        </div>
      )}
      {incoming && (
        <div class="msg msg-warn" role="alert" data-testid="incoming-version">
          <strong>The server has a newer version</strong> (ETag {shortEtag(incoming.etag)}), and you have unsaved changes. They are kept until you choose.{' '}
          <button type="button" onClick={keepMine}>Keep my changes</button>{' '}
          <button type="button" onClick={discardMine}>Discard my changes and load the server version</button>
        </div>
      )}
      {pos && <div class="msg msg-error" role="alert"><strong>Compile error at line {pos.line}{pos.column ? `, column ${pos.column}` : ''}</strong>: {(error as ApiError).message}</div>}
      {!pos && <ErrorBox error={error} onReload={onSaved}
        conflict={errorFrom === 'publish' ? 'Not published: DEVELOPMENT changed since you loaded it.' : 'Not saved: your changes are still in the editor. Reload to see the newer version; you can then keep or discard your changes.'} />}
      {notice && <Notice>{notice}</Notice>}
      <ErrorBox error={loadError} />
      <div ref={host} class="editor-host" />
      {dirty && <p class="muted small" data-testid="unsaved">Unsaved changes (kept in this tab if you leave the page).</p>}
    </div>
  );
}

interface TestForm { pem: string; clientIp: string; leaf: string; intermediates: string; stage: 'DEVELOPMENT' | 'LIVE' }

function TestTab({ name, form, setForm, published }: { name: string; form: TestForm; setForm: (f: TestForm) => void; published: boolean }) {
  const [result, setResult] = useState<TestResult | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const run = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    setResult(undefined);
    try {
      const body = {
        stage: form.stage, clientCertificatePem: form.pem, ...(form.clientIp.trim() ? { clientIp: form.clientIp.trim() } : {}),
        ocspStatus: { leaf: form.leaf, ...(form.intermediates ? { intermediates: form.intermediates } : {}) },
      };
      setResult((await api.post<TestResult>(`/v1/connection-functions/${enc(name)}/test`, body)).data);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const set = (k: keyof TestForm) => (e: Event) => setForm({ ...form, [k]: (e.target as HTMLInputElement).value });
  return (
    <div class="two-col">
      <form class="stack" onSubmit={run}>
        <label for="test-pem">Client certificate or chain (PEM, leaf first)</label>
        <textarea id="test-pem" class="mono" rows={10} spellcheck={false} required value={form.pem} onInput={set('pem')} placeholder="-----BEGIN CERTIFICATE-----" />
        <div class="grid-2">
          <div class="stack">
            <label for="test-ip">Client IP (optional)</label>
            <input id="test-ip" value={form.clientIp} onInput={set('clientIp')} placeholder="203.0.113.10" inputMode="decimal" />
          </div>
          <div class="stack">
            <label for="test-stage">Stage</label>
            <select id="test-stage" value={form.stage} onChange={set('stage')}>
              <option value="DEVELOPMENT">DEVELOPMENT</option>
              <option value="LIVE" disabled={!published}>LIVE{published ? '' : ' (not published)'}</option>
            </select>
          </div>
          <div class="stack">
            <label for="test-leaf">OCSP status of the leaf</label>
            <select id="test-leaf" value={form.leaf} onChange={set('leaf')}>{STATUSES.map((s) => <option key={s} value={s}>{s}</option>)}</select>
          </div>
          <div class="stack">
            <label for="test-int">OCSP status of intermediates</label>
            <select id="test-int" value={form.intermediates} onChange={set('intermediates')}>
              <option value="">same as the leaf</option>
              {STATUSES.map((s) => <option key={s} value={s}>{s}</option>)}
            </select>
          </div>
        </div>
        <div><button type="submit" class="primary" disabled={busy || form.pem.trim() === ''}>{busy ? 'Running…' : 'Run test'}</button></div>
      </form>
      <section aria-labelledby="result-title" aria-live="polite">
        <h2 id="result-title">Result</h2>
        <ErrorBox error={error} />
        {!result && !error && <p class="muted">Run the function to see its decision.</p>}
        {result && (
          <div class="result">
            <p class="decision">
              Decision: <span data-testid="decision" class={`badge badge-${result.decision === 'allow' ? 'ok' : 'bad'} big`}>{result.decision}</span>
              {result.implicit && <span class="muted"> (implicit: the handler returned without allow() or deny())</span>}
            </p>
            <dl class="facts">
              <div><dt>Custom data</dt><dd>{result.customData ?? <span class="muted">none</span>}</dd></div>
              <div><dt>Compute utilization</dt><dd>{result.computeUtilization} %</dd></div>
              <div><dt>Error</dt><dd>{result.error ? <span class="text-bad">{result.error}</span> : <span class="muted">none</span>}</dd></div>
            </dl>
            <h3>Console</h3>
            {result.logs.length === 0 ? <p class="muted">No console output.</p> : <pre class="console-out">{result.logs.join('\n')}</pre>}
          </div>
        )}
      </section>
    </div>
  );
}

function MatrixTab({ name, pem, published }: { name: string; pem: string; published: boolean }) {
  const [stage, setStage] = useState<'DEVELOPMENT' | 'LIVE'>('DEVELOPMENT');
  const [useTestPem, setUseTestPem] = useState(pem.trim() !== '');
  const [onlyUnsafe, setOnlyUnsafe] = useState(false);
  const [result, setResult] = useState<MatrixResult | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const run = async () => {
    setBusy(true);
    setError(undefined);
    try {
      setResult((await api.post<MatrixResult>(`/v1/connection-functions/${enc(name)}/matrix`, { stage, ...(useTestPem && pem.trim() ? { clientCertificatePem: pem } : {}) })).data);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const rows = result ? (onlyUnsafe ? result.rows.filter((r) => r.revokedAllowed) : result.rows) : [];
  return (
    <div>
      <div class="toolbar">
        <label for="matrix-stage">Stage</label>
        <select id="matrix-stage" value={stage} onChange={(e) => setStage((e.target as HTMLSelectElement).value as 'DEVELOPMENT' | 'LIVE')}>
          <option value="DEVELOPMENT">DEVELOPMENT</option>
          <option value="LIVE" disabled={!published}>LIVE</option>
        </select>
        <input id="matrix-pem" type="checkbox" checked={useTestPem} disabled={pem.trim() === ''} onChange={(e) => setUseTestPem((e.target as HTMLInputElement).checked)} />
        <label for="matrix-pem">Use the certificate from the Test tab{pem.trim() === '' ? ' (none: the sample chain is used)' : ''}</label>
        <span class="spacer" />
        <button type="button" class="primary" disabled={busy} onClick={run}>{busy ? 'Running…' : 'Run matrix'}</button>
      </div>
      <ErrorBox error={error} />
      {result && (
        <>
          <p role="status" class={result.revokedAllowed > 0 ? 'msg msg-error' : 'msg msg-ok'}>
            {result.rows.length} rows; {result.revokedAllowed === 0 ? 'no row admits a revoked certificate.' : <strong>{result.revokedAllowed} rows admit a revoked certificate (highlighted).</strong>}
          </p>
          <div class="toolbar">
            <input id="only-unsafe" type="checkbox" checked={onlyUnsafe} onChange={(e) => setOnlyUnsafe((e.target as HTMLInputElement).checked)} />
            <label for="only-unsafe">Show only unsafe rows</label>
          </div>
          <div class="table-wrap">
            <table class="matrix">
              <caption class="sr-only">Decision matrix of {name} ({result.stage})</caption>
              <thead><tr><th scope="col">Leaf</th><th scope="col">Intermediates</th><th scope="col">KVS</th><th scope="col">Client IP</th><th scope="col">Decision</th><th scope="col">Custom data / error</th><th scope="col">Safety</th></tr></thead>
              <tbody>
                {rows.map((r, i) => (
                  <tr key={i} class={r.revokedAllowed ? 'unsafe' : undefined}>
                    <td>{r.revokedAllowed && <strong class="text-bad unsafe-mark" title="revoked allowed">⚠ <span class="sr-only">revoked allowed: </span></strong>}{r.leafStatus}</td><td>{r.intermediateStatus}</td><td>{r.kvs}</td><td>{r.clientIp}</td>
                    <td><Badge kind={r.decision === 'allow' ? 'ok' : 'bad'}>{r.decision}</Badge>{r.implicit && <span class="muted small"> implicit</span>}</td>
                    <td>{r.error ? <span class="text-bad">error: {r.error}</span> : r.customData ?? ''}</td>
                    <td>{r.revokedAllowed ? <strong class="text-bad">⚠ revoked allowed</strong> : ''}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </div>
  );
}

function DiffTab({ stages }: { stages: Stages }) {
  const host = useRef<HTMLDivElement>(null);
  const [loadError, setLoadError] = useState<unknown>(undefined);
  useEffect(() => {
    if (stages.liveCode === undefined) return;
    let d: { destroy(): void } | undefined;
    let cancelled = false;
    import('../editor').then((m) => { if (!cancelled && host.current) d = m.createDiff(host.current, stages.liveCode ?? '', stages.devCode); }, setLoadError);
    return () => { cancelled = true; d?.destroy(); };
  }, [stages.devEtag, stages.live?.ETag]);
  if (stages.liveCode === undefined) return <p class="muted">Not published yet: there is no LIVE stage to compare with.</p>;
  return (
    <div>
      <ErrorBox error={loadError} />
      <p class="muted small">{stages.liveCode === stages.devCode ? 'DEVELOPMENT and LIVE have the same code.' : 'Left: LIVE · Right: DEVELOPMENT (saved).'}</p>
      <div class="diff-labels" aria-hidden="true"><span>LIVE</span><span>DEVELOPMENT</span></div>
      <div ref={host} class="diff-host" />
    </div>
  );
}

function FunctionDetail({ name, onChanged }: { name: string; onChanged: () => void }) {
  const stages = useLoad((signal) => loadStages(name, signal), [name]);
  const [tab, setTab] = useState<Tab>('code');
  const [form, setForm] = useState<TestForm>({ pem: '', clientIp: '', leaf: 'Good', intermediates: '', stage: 'DEVELOPMENT' });
  const [resetSeq, setResetSeq] = useState(0);
  const dirty = useRef(false);
  const s = stages.data;
  /** Header Reload: the editor goes back to the server's code (after confirming when there are unsaved edits). */
  const reload = () => {
    if (dirty.current && !confirm(`Discard your unsaved changes to ${name} and load the server version?`)) return;
    setResetSeq((n) => n + 1);
    stages.reload();
  };
  if (stages.error instanceof ApiError && stages.error.status === 404) {
    return (
      <div class="detail">
        <PageHeader title={name} />
        <div class="msg msg-error" role="alert" data-testid="not-found">There is no connection function named "{name}". <a href="#/functions">Show the functions</a></div>
      </div>
    );
  }
  return (
    <div class="detail">
      <PageHeader title={name}><button type="button" onClick={reload}>Reload</button></PageHeader>
      <ErrorBox error={stages.error} onReload={stages.reload} />
      {s && (
        <dl class="facts">
          <div><dt>Status</dt><dd><span data-testid="fn-status" class={`badge badge-${s.dev.Status === 'UNPUBLISHED' ? 'warn' : 'ok'}`}>{s.dev.Status}</span></dd></div>
          <div><dt>DEVELOPMENT</dt><dd><code title={s.devEtag}>{shortEtag(s.devEtag)}</code></dd></div>
          <div><dt>LIVE</dt><dd data-testid="live-etag">{s.live ? <code title={s.live.ETag}>{shortEtag(s.live.ETag)}</code> : <span class="muted">not published</span>}</dd></div>
          <div><dt>Stages</dt><dd>{s.liveCode === undefined ? 'DEVELOPMENT only' : s.liveCode === s.devCode ? <Badge kind="ok">LIVE = DEVELOPMENT</Badge> : <Badge kind="warn">DEVELOPMENT has unpublished changes</Badge>}</dd></div>
        </dl>
      )}
      <Tabs tab={tab} setTab={setTab} />
      {s && TABS.map((t) => (
        <div key={t.id} id={`panel-${t.id}`} role="tabpanel" aria-labelledby={`tab-${t.id}`} hidden={tab !== t.id} class="tabpanel">
          {t.id === 'code' && <CodeTab name={name} stages={s} resetSeq={resetSeq} onDirty={(d) => { dirty.current = d; }} onSaved={() => { stages.reload(); onChanged(); }} />}
          {t.id === 'test' && tab === 'test' && <TestTab name={name} form={form} setForm={setForm} published={s.live !== undefined} />}
          {t.id === 'matrix' && tab === 'matrix' && <MatrixTab name={name} pem={form.pem} published={s.live !== undefined} />}
          {t.id === 'diff' && tab === 'diff' && <DiffTab stages={s} />}
        </div>
      ))}
    </div>
  );
}

export function FunctionsPage({ selected }: { selected: string | undefined }) {
  const list = useLoad(async (signal) => (await api.get<List<FunctionSummary>>('/v1/connection-functions', { signal })).data.Items, []);
  const current = selected ?? list.data?.[0]?.Name;
  return (
    <div class="split">
      <PickAside
        title="Functions" titleId="fns-title" items={list.data} loadError={list.error} reload={list.reload} current={current}
        href={(n) => `#/functions/${encodeURIComponent(n)}`} detail={(f) => f.Status.toLowerCase()}
        inputId="new-fn" inputLabel="New function name" createLabel="Create function"
        create={async (name) => { await api.post('/v1/connection-functions', { name, code: TEMPLATE }); }}
      />
      <section class="main-col">
        {current ? <FunctionDetail key={current} name={current} onChanged={list.reload} /> : (list.data && <PageHeader title="Connection functions" />)}
        {list.data?.length === 0 && <p class="muted">No connection functions yet: create one.</p>}
      </section>
    </div>
  );
}
