// Shared pieces of the console: error and status messages, data loading, formatting.
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api';

/**
 * Shows an error. An ETag conflict gets a plain explanation (`conflict` says what did not
 * happen; default "Your change was not saved.") and a Reload button; a Retry button is
 * offered only where retrying can help (network failure, 5xx, 429) — never for a local
 * validation error or a 4xx answer.
 */
export function ErrorBox({ error, onReload, conflict }: { error: unknown; onReload?: (() => void) | undefined; conflict?: string }) {
  if (!error) return null;
  const e = error instanceof ApiError ? error : undefined;
  if (e?.isConflict) {
    return (
      <div class="msg msg-error" role="alert">
        <strong>Someone else changed this since you loaded it.</strong> {conflict ?? 'Your change was not saved.'} (ETag conflict: {e.message})
        {onReload && <> <button type="button" onClick={onReload}>Reload</button></>}
      </div>
    );
  }
  return (
    <div class="msg msg-error" role="alert">
      {e ? <><strong>{e.code}</strong>: {e.message}</> : String((error as Error)?.message ?? error)}
      {onReload && e && (e.status === 0 || e.status === 429 || e.status >= 500) && <> <button type="button" class="link" onClick={onReload}>Retry</button></>}
    </div>
  );
}

export function Notice({ children }: { children: ComponentChildren }) {
  return <div class="msg msg-ok" role="status">{children}</div>;
}

export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

/** Runs `load` on mount and whenever `deps` change; `reload()` runs it again. */
export function useLoad<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const ac = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    load(ac.signal).then(
      (data) => { if (!ac.signal.aborted) setState({ data, loading: false }); },
      (error) => { if (!ac.signal.aborted) setState((s) => ({ data: s.data, error, loading: false })); },
    );
    return () => ac.abort();
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data: state.data, error: state.error, loading: state.loading, reload };
}

/** Calls `f` every `ms` while mounted. */
export function useInterval(f: () => void, ms: number): void {
  const ref = useRef(f);
  ref.current = f;
  useEffect(() => {
    const t = setInterval(() => ref.current(), ms);
    return () => clearInterval(t);
  }, [ms]);
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function shortEtag(etag: string | undefined): string {
  return etag ? (etag.length > 14 ? `${etag.slice(0, 12)}…` : etag) : '—';
}

export function Badge({ kind, children }: { kind: 'ok' | 'bad' | 'warn' | 'info' | 'muted'; children: ComponentChildren }) {
  return <span class={`badge badge-${kind}`}>{children}</span>;
}

/** A page heading with optional actions on the right. */
export function PageHeader({ title, children }: { title: string; children?: ComponentChildren }) {
  return (
    <div class="page-header">
      <h1 id="page-title" tabIndex={-1}>{title}</h1>
      {children && <div class="actions">{children}</div>}
    </div>
  );
}

/** Reads a File as text. */
export function readText(file: File): Promise<string> {
  return file.text();
}

/** Reads a File as base64. */
export async function readBase64(file: File): Promise<string> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/**
 * The left column of a list page (key value stores, connection functions): the items
 * as links (the current one marked with aria-current), and a form that creates a new
 * one by name and opens it.
 */
export function PickAside<T extends { Id: string; Name: string }>(props: {
  title: string; titleId: string; items: T[] | undefined; loadError: unknown; reload: () => void;
  current: string | undefined; href: (name: string) => string; detail: (item: T) => string;
  inputId: string; inputLabel: string; createLabel: string; create: (name: string) => Promise<void>;
}) {
  const [newName, setNewName] = useState('');
  const [error, setError] = useState<unknown>(undefined);
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    try {
      await props.create(newName);
      props.reload();
      location.hash = props.href(newName);
      setNewName('');
    } catch (err) {
      setError(err);
    }
  };
  return (
    <aside class="side card" aria-labelledby={props.titleId}>
      <h2 id={props.titleId}>{props.title}</h2>
      <ErrorBox error={props.loadError} onReload={props.reload} />
      <ul class="pick-list">
        {props.items?.map((it) => (
          <li key={it.Id}>
            <a href={props.href(it.Name)} aria-current={it.Name === props.current ? 'true' : undefined}>
              <span>{it.Name}</span> <span class="muted small">{props.detail(it)}</span>
            </a>
          </li>
        ))}
      </ul>
      <form class="stack" onSubmit={submit}>
        <label for={props.inputId}>{props.inputLabel}</label>
        <input id={props.inputId} value={newName} onInput={(e) => setNewName((e.target as HTMLInputElement).value)} />
        <button type="submit" disabled={newName === ''}>{props.createLabel}</button>
      </form>
      <ErrorBox error={error} />
    </aside>
  );
}
