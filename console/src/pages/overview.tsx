// Overview: distributions (listener, mode, trust store, OCSP, function stage/ETag),
// nodes and their applied change sequence, live counters.
import { useState } from 'preact/hooks';
import {
  api, ApiError, type Distribution, type FunctionSummary, type List, type NodesView, type Readiness, type Stats, type TrustStore,
} from '../api';
import { Badge, ErrorBox, PageHeader, shortEtag, useInterval, useLoad } from '../ui';

interface OverviewData {
  distributions: Distribution[];
  trustStores: TrustStore[];
  dev: FunctionSummary[];
  live: FunctionSummary[];
}

async function loadOverview(signal: AbortSignal): Promise<OverviewData> {
  const [d, t, dev, live] = await Promise.all([
    api.get<List<Distribution>>('/v1/distributions', { signal }),
    api.get<List<TrustStore>>('/v1/trust-stores', { signal }),
    api.get<List<FunctionSummary>>('/v1/connection-functions?stage=DEVELOPMENT', { signal }),
    api.get<List<FunctionSummary>>('/v1/connection-functions?stage=LIVE', { signal }),
  ]);
  return { distributions: d.data.Items, trustStores: t.data.Items, dev: dev.data.Items, live: live.data.Items };
}

type NodesState = { kind: 'cluster'; view: NodesView } | { kind: 'single'; readiness: Readiness | undefined };

async function loadNodes(signal: AbortSignal): Promise<NodesState> {
  try {
    return { kind: 'cluster', view: (await api.get<NodesView>('/v1/nodes', { signal })).data };
  } catch (e) {
    // 404: a server without the nodes route; 503: the database is unreachable — show readiness instead.
    if (!(e instanceof ApiError) || (e.status !== 404 && e.status !== 503)) throw e;
  }
  const r = await api.get<Readiness>('/readyz', { signal }).then((x) => x.data, (e: unknown) => {
    if (e instanceof ApiError && e.status === 503) return undefined;
    throw e;
  });
  return { kind: 'single', readiness: r };
}

function Counters() {
  const [stats, setStats] = useState<Stats | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const refresh = () => { api.get<Stats>('/v1/stats').then((r) => { setStats(r.data); setError(undefined); }, setError); };
  useLoad(async () => refresh(), []);
  useInterval(refresh, 5000);
  const rate = stats?.ocspCache.hitRate;
  return (
    <section aria-labelledby="counters-title" class="card">
      <h2 id="counters-title">Last ~minute</h2>
      <ErrorBox error={error} />
      <div class="tiles" aria-live="polite">
        <div class="tile"><span class="tile-label">Connections allowed</span><span class="tile-value" data-testid="allowed">{stats ? stats.connections.allowed : '…'}</span></div>
        <div class="tile"><span class="tile-label">Connections denied</span><span class="tile-value" data-testid="denied">{stats ? stats.connections.denied : '…'}</span></div>
        <div class="tile"><span class="tile-label">OCSP cache hit rate</span><span class="tile-value">{stats ? (rate === null || rate === undefined ? 'no lookups' : `${(rate * 100).toFixed(1)} %`) : '…'}</span></div>
      </div>
      {stats && (
        <p class="muted small">
          Over the last {stats.windowSeconds} s (the counters are sampled every 10 s, so the window is 60–70 s; sampled {new Date(stats.sampledAt).toLocaleTimeString()}).
          Since start: {stats.totals.allowed} allowed, {stats.totals.denied} denied; OCSP cache {stats.totals.ocspCacheHits} hits, {stats.totals.ocspCacheMisses} misses.
          {Object.keys(stats.connections.byStatus).filter((s) => s !== 'Success').length > 0 && (
            <> Denied by reason: {Object.entries(stats.connections.byStatus).filter(([s]) => s !== 'Success').map(([s, n]) => `${s.replace(/^Failed:/, '')} ${n}`).join(', ')}.</>
          )}
        </p>
      )}
    </section>
  );
}

function Nodes({ appliedSequence }: { appliedSequence: number | null | undefined }) {
  const nodes = useLoad(loadNodes, []);
  useInterval(nodes.reload, 10000);
  const n = nodes.data;
  return (
    <section aria-labelledby="nodes-title" class="card">
      <h2 id="nodes-title">Nodes</h2>
      <ErrorBox error={nodes.error} />
      {n?.kind === 'cluster' && (
        <>
          <p>
            {n.view.AllInSync
              ? <Badge kind="ok">all {n.view.Quantity} in sync</Badge>
              : <Badge kind="warn">not every node has applied sequence {n.view.LatestSequence}</Badge>}
          </p>
          <div class="table-wrap">
            <table>
              <caption class="sr-only">Nodes and their applied change sequence (latest {n.view.LatestSequence})</caption>
              <thead role="rowgroup"><tr role="row"><th scope="col" role="columnheader">Node</th><th scope="col" role="columnheader">Status</th><th scope="col" role="columnheader">Applied sequence</th><th scope="col" role="columnheader">Last heartbeat</th></tr></thead>
              <tbody role="rowgroup">
                {n.view.Items.map((x) => (
                  <tr role="row" key={x.Name}>
                    <td role="cell">{x.Name}{x.Host ? <span class="muted"> ({x.Host})</span> : null}</td>
                    <td role="cell">
                      <Badge kind={x.Status === 'ok' && x.InSync ? 'ok' : 'warn'}>{x.Status}{x.Status === 'ok' && !x.InSync ? ', behind' : ''}</Badge>
                      {x.Reasons.length > 0 && <span class="muted"> {x.Reasons.join('; ')}</span>}
                    </td>
                    <td role="cell">{x.AppliedSequence} / {n.view.LatestSequence}</td>
                    <td role="cell">{new Date(x.LastHeartbeat).toLocaleString()}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
      {n?.kind === 'single' && (
        <p>
          Single node{n.readiness ? <> — <Badge kind={n.readiness.ready ? 'ok' : 'warn'}>{n.readiness.status}</Badge></> : null}
          {typeof n.readiness?.details?.workers === 'number' && <> · {String(n.readiness.details.workersReady)} of {String(n.readiness.details.workers)} workers ready</>}
          {appliedSequence !== null && appliedSequence !== undefined && <> · applied change sequence <strong>{appliedSequence}</strong></>}
          {n.readiness && n.readiness.reasons.length > 0 && <> · {n.readiness.reasons.join('; ')}</>}
        </p>
      )}
    </section>
  );
}

export function OverviewPage() {
  const o = useLoad(loadOverview, []);
  const seq = useLoad(async (signal) => (await api.get<Stats>('/v1/stats', { signal })).data.appliedChangeSequence, []);
  const d = o.data;
  return (
    <>
      <PageHeader title="Overview"><button type="button" onClick={() => { o.reload(); seq.reload(); }}>Refresh</button></PageHeader>
      <Counters />
      <section aria-labelledby="dist-title" class="card">
        <h2 id="dist-title">Distributions</h2>
        <ErrorBox error={o.error} onReload={o.reload} />
        {d && d.distributions.length === 0 && <p class="muted">No distributions yet.</p>}
        {d && d.distributions.length > 0 && (
          <div class="table-wrap">
            <table class="cards-sm" role="table">
              <thead role="rowgroup">
                <tr role="row"><th scope="col" role="columnheader">Name</th><th scope="col" role="columnheader">Listener</th><th scope="col" role="columnheader">Mode</th><th scope="col" role="columnheader">Trust store</th><th scope="col" role="columnheader">OCSP</th><th scope="col" role="columnheader">Function</th></tr>
              </thead>
              <tbody role="rowgroup">
                {d.distributions.map((x) => {
                  const c = x.DistributionConfig;
                  const ts = d.trustStores.find((t) => t.Name === c.viewerMtls.trustStore);
                  const fnName = c.connectionFunctionAssociation?.name;
                  const live = d.live.find((f) => f.Name === fnName);
                  const dev = d.dev.find((f) => f.Name === fnName);
                  return (
                    <tr role="row" key={x.Id}>
                      <th scope="row" role="rowheader">{x.Name}{c.aliases.length > 0 && <div class="muted small">{c.aliases.join(', ')}</div>}</th>
                      <td role="cell" data-label="Listener"><code>{c.listen}</code></td>
                      <td role="cell" data-label="Mode">{c.viewerMtls.mode}</td>
                      <td role="cell" data-label="Trust store">{c.viewerMtls.trustStore ? <a href="#/trust-stores">{c.viewerMtls.trustStore}</a> : '—'}</td>
                      <td role="cell" data-label="OCSP">{ts ? (ts.UseClientCertificateOcspEndpoint ? <Badge kind="ok">on</Badge> : <Badge kind="muted">off</Badge>) : '—'}</td>
                      <td role="cell" data-label="Function">
                        {fnName ? (
                          <>
                            <a href={`#/functions/${encodeURIComponent(fnName)}`}>{fnName}</a>{' '}
                            <Badge kind={live ? 'ok' : 'warn'}>{dev?.Status ?? (live ? 'LIVE' : 'not published')}</Badge>
                            <div class="muted small">LIVE <code>{shortEtag(live?.ETag)}</code> · DEV <code>{shortEtag(dev?.ETag)}</code></div>
                          </>
                        ) : '—'}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <Nodes appliedSequence={seq.data} />
    </>
  );
}
