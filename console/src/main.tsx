// The Portcullis web console: sign-in with the admin token (session storage only) and
// the pages — overview, trust stores, key value stores, connection functions,
// connections. Hash routes (#/kvs/NAME) so any /console/ URL loads the same page.
import { Component, render, type ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, getToken, setToken, setUnauthorizedHandler, type Readiness } from './api';
import { ErrorBox } from './ui';
import { OverviewPage } from './pages/overview';
import { TrustStoresPage } from './pages/trust-stores';
import { KvsPage } from './pages/kvs';
import { FunctionsPage } from './pages/functions';
import { ConnectionsPage } from './pages/connections';
import './style.css';

interface Route { page: string; arg: string | undefined; bad?: string }

/** The route of the URL hash (`#/kvs/NAME`); a malformed percent-escape gives a not-found route, never an exception. */
export function parseHash(hash = location.hash): Route {
  const parts = hash.replace(/^#\/?/, '').split('/');
  const page = parts[0] || 'overview';
  if (parts[1] === undefined || parts[1] === '') return { page, arg: undefined };
  try {
    return { page, arg: decodeURIComponent(parts[1]) };
  } catch {
    return { page: 'not-found', arg: undefined, bad: hash };
  }
}

/** A page that threw while rendering: the error and a way back, instead of a blank app. */
class PageErrorBoundary extends Component<{ resetKey: string; children: ComponentChildren }, { error: unknown; key: string }> {
  override state = { error: undefined as unknown, key: this.props.resetKey };
  static override getDerivedStateFromProps(props: { resetKey: string }, state: { error: unknown; key: string }) {
    return props.resetKey !== state.key ? { error: undefined, key: props.resetKey } : null;
  }
  override componentDidCatch(error: unknown) {
    this.setState({ error });
  }
  override render() {
    if (this.state.error === undefined) return this.props.children;
    return (
      <div class="card" role="alert">
        <h1 id="page-title" tabIndex={-1}>This page failed</h1>
        <p class="msg msg-error">{String((this.state.error as Error)?.message ?? this.state.error)}</p>
        <p><a href="#/overview">Back to the overview</a> · <button type="button" onClick={() => this.setState({ error: undefined })}>Try again</button></p>
      </div>
    );
  }
}

function NotFound({ what }: { what: string }) {
  return (
    <div class="card">
      <h1 id="page-title" tabIndex={-1}>Not found</h1>
      <p>{what}</p>
      <p><a href="#/overview">Back to the overview</a></p>
    </div>
  );
}

const PAGES: { id: string; label: string }[] = [
  { id: 'overview', label: 'Overview' },
  { id: 'trust-stores', label: 'Trust stores' },
  { id: 'kvs', label: 'Key value stores' },
  { id: 'functions', label: 'Connection functions' },
  { id: 'connections', label: 'Connections' },
];

function SignIn({ onSignedIn, reason }: { onSignedIn: () => void; reason?: string }) {
  const [token, setTokenText] = useState('');
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await api.get<Readiness>('/readyz', { token: token.trim() }).catch((err: unknown) => {
        // 503 (not ready) still proves the token is good.
        if (err instanceof ApiError && err.status === 503) return;
        throw err;
      });
      setToken(token.trim());
      onSignedIn();
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401
        ? new ApiError(401, 'AccessDenied', 'the admin API refused this token. Use admin.token from the node config, or the contents of the admin-token file in its data directory.')
        : err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="signin" id="main">
      <form class="card signin-card" onSubmit={submit} autocomplete="off" aria-labelledby="signin-title">
        <h1 id="signin-title">Portcullis console</h1>
        <p class="muted">Sign in with the admin token. It is kept in this tab's session storage only and sent as a bearer header.</p>
        {reason && <div class="msg msg-warn" role="status">{reason}</div>}
        <label for="token">Admin token</label>
        <input id="token" name="admin-token" type="password" autocomplete="off" data-lpignore="true" data-1p-ignore required value={token}
          aria-describedby="token-note" onInput={(e) => setTokenText((e.target as HTMLInputElement).value)} />
        <p id="token-note" class="muted small">Not a password: do not let a password manager save it. Anyone with this token controls the gateway.</p>
        <ErrorBox error={error} />
        <button type="submit" class="primary" disabled={busy || token.trim() === ''}>{busy ? 'Signing in…' : 'Sign in'}</button>
      </form>
    </main>
  );
}

function App() {
  const [signedIn, setSignedIn] = useState(() => getToken() !== null);
  const [reason, setReason] = useState<string | undefined>(undefined);
  const [route, setRoute] = useState(parseHash);
  const [menuOpen, setMenuOpen] = useState(false);
  useEffect(() => {
    const on = () => { setRoute(parseHash()); setMenuOpen(false); };
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  // Escape closes the phone menu and returns focus to its button.
  useEffect(() => {
    if (!menuOpen) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key !== 'Escape') return;
      setMenuOpen(false);
      document.querySelector<HTMLButtonElement>('.menu-toggle')?.focus();
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, [menuOpen]);
  useEffect(() => {
    setUnauthorizedHandler(() => {
      setToken(null);
      setReason('The admin API no longer accepts the stored token; sign in again.');
      setSignedIn(false);
    });
  }, []);
  useEffect(() => {
    document.title = `${PAGES.find((p) => p.id === route.page)?.label ?? 'Portcullis'} · Portcullis console`;
  }, [route.page]);
  // After navigating, move keyboard and screen-reader focus to the new page's heading.
  const firstRoute = useRef(true);
  useEffect(() => {
    if (firstRoute.current) { firstRoute.current = false; return; }
    const t = setTimeout(() => document.getElementById('page-title')?.focus(), 50);
    return () => clearTimeout(t);
  }, [route.page, route.arg]);
  if (!signedIn) return <SignIn reason={reason} onSignedIn={() => { setReason(undefined); setSignedIn(true); }} />;
  const signOut = () => { setToken(null); setReason(undefined); setSignedIn(false); };
  let page;
  switch (route.page) {
    case 'trust-stores': page = <TrustStoresPage />; break;
    case 'kvs': page = <KvsPage selected={route.arg} />; break;
    case 'functions': page = <FunctionsPage selected={route.arg} />; break;
    case 'connections': page = <ConnectionsPage />; break;
    case 'overview': page = <OverviewPage />; break;
    case 'not-found': page = <NotFound what={`The address ${route.bad ?? ''} is malformed (a bad percent-escape).`} />; break;
    default: page = <NotFound what={`There is no page "${route.page}".`} />;
  }
  return (
    <div class="shell">
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>Skip to content</a>
      <header class="topbar">
        <span class="brand" aria-hidden="true">▦</span><span class="brand-name">Portcullis</span>
        <button type="button" class="menu-toggle" aria-expanded={menuOpen} aria-controls="nav" onClick={() => setMenuOpen(!menuOpen)}>Menu</button>
        <button type="button" class="signout" onClick={signOut}>Sign out</button>
      </header>
      <nav id="nav" class={menuOpen ? 'nav open' : 'nav'} aria-label="Console pages">
        <ul>
          {PAGES.map((p) => (
            <li key={p.id}>
              <a href={`#/${p.id}`} aria-current={route.page === p.id || (p.id === 'overview' && !PAGES.some((x) => x.id === route.page)) ? 'page' : undefined}>{p.label}</a>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main" class="content" tabIndex={-1}><PageErrorBoundary resetKey={`${route.page}/${route.arg ?? ''}`}>{page}</PageErrorBoundary></main>
    </div>
  );
}

render(<App />, document.getElementById('app')!);
