// Connections: a live tail of the connection log (server-sent events read with fetch()
// streaming so the token stays in a header), filtered by distribution, status, serial.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, getToken, notifyUnauthorized, type Distribution, type List } from '../api';
import { Badge, ErrorBox, PageHeader, useLoad } from '../ui';

interface LogLine {
  eventTimestamp: string; connectionId: string; connectionStatus: string; clientIp: string | null; tlsSni: string | null;
  distributionName: string | null; distributionId: string | null; clientLeafCertSerialNumber: string | null;
  clientLeafCertSubject: string | null; reason: string | null; connectionLogCustomData: string | null; functionName: string | null;
}
interface Filter { distribution: string; status: string; serial: string }

const MAX_ROWS = 500;

/** Reads `text/event-stream` events from a fetch body until it ends or `signal` aborts. */
async function readEvents(body: ReadableStream<Uint8Array>, onEvent: (event: string, data: string) => void): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true });
    let i: number;
    while ((i = buf.search(/\r?\n\r?\n/)) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i).replace(/^\r?\n\r?\n/, '');
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith(':')) continue;
        const c = line.indexOf(':');
        const field = c < 0 ? line : line.slice(0, c);
        const val = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
        if (field === 'event') event = val;
        else if (field === 'data') data.push(val);
      }
      if (data.length > 0) onEvent(event, data.join('\n'));
    }
  }
}

export function ConnectionsPage() {
  const dists = useLoad(async (signal) => (await api.get<List<Distribution>>('/v1/distributions', { signal })).data.Items, []);
  const [filter, setFilter] = useState<Filter>({ distribution: '', status: '', serial: '' });
  const [applied, setApplied] = useState<Filter>(filter);
  const [running, setRunning] = useState(true);
  const [state, setState] = useState<'connecting' | 'live' | 'stopped' | 'error'>('connecting');
  const [error, setError] = useState<unknown>(undefined);
  const [lines, setLines] = useState<LogLine[]>([]);
  const pending = useRef<LogLine[]>([]);

  useEffect(() => {
    if (!running) { setState('stopped'); return; }
    const ac = new AbortController();
    let retry: ReturnType<typeof setTimeout> | undefined;
    const connect = async () => {
      setState('connecting');
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(applied)) if (v.trim() !== '') q.set(k, v.trim());
      try {
        const res = await fetch(`/v1/connection-log/stream?${q}`, { headers: { authorization: `Bearer ${getToken() ?? ''}`, accept: 'text/event-stream' }, signal: ac.signal, cache: 'no-store' });
        if (res.status === 401) {
          // The token stopped working: sign out like every other page.
          notifyUnauthorized();
          return;
        }
        if (!res.ok || !res.body) {
          const body = await res.json().catch(() => undefined) as { error?: { code: string; message: string } } | undefined;
          throw new ApiError(res.status, body?.error?.code ?? `HTTP${res.status}`, body?.error?.message ?? `HTTP ${res.status}`);
        }
        setError(undefined);
        await readEvents(res.body, (event, data) => {
          if (event === 'ready') setState('live');
          if (event === 'connection') {
            try { pending.current.push(JSON.parse(data) as LogLine); } catch { /* not JSON: skip */ }
          }
        });
        if (!ac.signal.aborted) { setState('connecting'); retry = setTimeout(() => void connect(), 2000); }
      } catch (e) {
        if (ac.signal.aborted) return;
        setError(e);
        setState('error');
        if (e instanceof ApiError && (e.status === 401 || e.status === 400)) return;
        retry = setTimeout(() => void connect(), 3000);
      }
    };
    void connect();
    return () => { ac.abort(); if (retry) clearTimeout(retry); };
  }, [running, applied]);

  // Batch rendering: at most a few updates a second however fast lines arrive.
  useEffect(() => {
    const t = setInterval(() => {
      if (pending.current.length === 0) return;
      const fresh = pending.current.reverse();
      pending.current = [];
      setLines((old) => [...fresh, ...old].slice(0, MAX_ROWS));
    }, 250);
    return () => clearInterval(t);
  }, []);

  const set = (k: keyof Filter) => (e: Event) => setFilter({ ...filter, [k]: (e.target as HTMLInputElement).value });
  return (
    <>
      <PageHeader title="Connections">
        <span class="live-state" role="status">
          {state === 'live' ? <Badge kind="ok">live</Badge> : state === 'connecting' ? <Badge kind="info">connecting…</Badge> : state === 'stopped' ? <Badge kind="muted">paused</Badge> : <Badge kind="bad">disconnected</Badge>}
        </span>
        <button type="button" onClick={() => setRunning(!running)}>{running ? 'Pause' : 'Resume'}</button>
        <button type="button" onClick={() => setLines([])}>Clear</button>
      </PageHeader>
      <form class="card filters" onSubmit={(e) => { e.preventDefault(); setLines([]); setApplied(filter); }} aria-label="Filter the connection log">
        <div class="stack">
          <label for="f-dist">Distribution</label>
          <select id="f-dist" value={filter.distribution} onChange={set('distribution')}>
            <option value="">all</option>
            {dists.data?.map((d) => <option key={d.Id} value={d.Name}>{d.Name}</option>)}
          </select>
        </div>
        <div class="stack">
          <label for="f-status">Status</label>
          <select id="f-status" value={filter.status} onChange={set('status')}>
            <option value="">all</option>
            <option value="allowed">allowed</option>
            <option value="denied">denied</option>
          </select>
        </div>
        <div class="stack">
          <label for="f-serial">Serial (hex, any part)</label>
          <input id="f-serial" value={filter.serial} onInput={set('serial')} placeholder="00:a7:30" />
        </div>
        <div class="stack end"><button type="submit" class="primary">Apply filter</button></div>
      </form>
      <ErrorBox error={error} />
      <p class="muted small">Newest first; the last {MAX_ROWS} lines are kept. Lines appear as connections end.</p>
      <div class="table-wrap">
        <table class="log cards-sm" role="table">
          <caption class="sr-only">Connection log, live</caption>
          <thead role="rowgroup"><tr role="row"><th scope="col" role="columnheader">Time</th><th scope="col" role="columnheader">Distribution</th><th scope="col" role="columnheader">Status</th><th scope="col" role="columnheader">Client</th><th scope="col" role="columnheader">Certificate</th><th scope="col" role="columnheader">Reason</th></tr></thead>
          <tbody role="rowgroup">
            {lines.length === 0 && <tr role="row"><td role="cell" colSpan={6} class="muted">Waiting for connections…</td></tr>}
            {lines.map((l) => (
              <tr role="row" key={l.connectionId} data-status={l.connectionStatus}>
                <td role="cell" data-label="Time" class="nowrap">{l.eventTimestamp.slice(11, 23)}</td>
                <td role="cell" data-label="Distribution">{l.distributionName ?? l.distributionId ?? '—'}{l.tlsSni && <div class="muted small">{l.tlsSni}</div>}</td>
                <td role="cell" data-label="Status">{l.connectionStatus === 'Success' ? <Badge kind="ok">allowed</Badge> : <Badge kind="bad">{l.connectionStatus.replace(/^Failed:/, '')}</Badge>}</td>
                <td role="cell" data-label="Client" class="nowrap">{l.clientIp ?? '—'}</td>
                <td role="cell" data-label="Certificate">{l.clientLeafCertSubject ? <span class="wrap">{l.clientLeafCertSubject}</span> : '—'}{l.clientLeafCertSerialNumber && <div class="muted small"><code class="wrap">{l.clientLeafCertSerialNumber}</code></div>}</td>
                <td role="cell" data-label="Reason"><span class="wrap">{l.reason ?? ''}</span>{l.connectionLogCustomData && <div class="muted small">{l.connectionLogCustomData}</div>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}
