// Trust stores: the certificates of each bundle (subject, expiry, key type) and the
// OCSP switch (useClientCertificateOcspEndpoint).
import { useEffect, useState } from 'preact/hooks';
import { api, enc, type InspectedCertificate, type List, type TrustStore } from '../api';
import { Badge, ErrorBox, PageHeader, useLoad } from '../ui';

function expiryBadge(notAfter: string) {
  const ms = Date.parse(notAfter) - Date.now();
  if (ms < 0) return <Badge kind="bad">expired</Badge>;
  if (ms < 30 * 86_400_000) return <Badge kind="warn">expires in {Math.ceil(ms / 86_400_000)} d</Badge>;
  return null;
}

function TrustStoreCard({ ts, onChanged }: { ts: TrustStore; onChanged: () => void }) {
  const certs = useLoad(async (signal) => (await api.post<List<InspectedCertificate>>('/v1/certificates/inspect', { pem: ts.CaBundlePem }, { signal })).data.Items, [ts.ETag]);
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  // A reload brought the trust store's current state: an earlier conflict no longer applies.
  useEffect(() => setError(undefined), [ts.ETag]);
  const toggle = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await api.put(`/v1/trust-stores/${enc(ts.Name)}`, { useClientCertificateOcspEndpoint: !ts.UseClientCertificateOcspEndpoint }, { ifMatch: ts.ETag });
      onChanged();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const id = `ocsp-${ts.Id}`;
  return (
    <section class="card" aria-labelledby={`ts-${ts.Id}`}>
      <div class="card-head">
        <h2 id={`ts-${ts.Id}`}>{ts.Name}</h2>
        <Badge kind={ts.Status === 'active' ? 'ok' : ts.Status === 'failed' ? 'bad' : 'info'}>{ts.Status}</Badge>
      </div>
      {ts.StatusReason && <p class="msg msg-error">{ts.StatusReason}</p>}
      {ts.Comment && <p class="muted">{ts.Comment}</p>}
      <div class="switch-row">
        <input id={id} type="checkbox" role="switch" checked={ts.UseClientCertificateOcspEndpoint} disabled={busy} onChange={toggle} />
        <label for={id}>Check revocation with OCSP (the responder named in each client certificate)</label>
      </div>
      <ErrorBox error={error} onReload={onChanged} />
      <ErrorBox error={certs.error} onReload={certs.reload} />
      {certs.data && (
        <div class="table-wrap">
          <table class="cards-sm" role="table">
            <caption class="sr-only">Certificates in {ts.Name}</caption>
            <thead role="rowgroup"><tr role="row"><th scope="col" role="columnheader">Subject</th><th scope="col" role="columnheader">Expires</th><th scope="col" role="columnheader">Key</th><th scope="col" role="columnheader">Serial</th></tr></thead>
            <tbody role="rowgroup">
              {certs.data.map((c) => (
                <tr role="row" key={c.Sha256Fingerprint}>
                  <td role="cell" data-label="Subject"><span class="wrap">{c.Subject}</span>{c.Subject !== c.Issuer && <div class="muted small">issued by {c.Issuer}</div>}</td>
                  <td role="cell" data-label="Expires" class="nowrap">{c.NotAfter.slice(0, 10)} {expiryBadge(c.NotAfter)}</td>
                  <td role="cell" data-label="Key" class="nowrap">{c.KeyType}</td>
                  <td role="cell" data-label="Serial"><code class="wrap">{c.SerialNumber}</code></td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

export function TrustStoresPage() {
  const list = useLoad(async (signal) => (await api.get<List<TrustStore>>('/v1/trust-stores', { signal })).data.Items, []);
  return (
    <>
      <PageHeader title="Trust stores"><button type="button" onClick={list.reload}>Refresh</button></PageHeader>
      <ErrorBox error={list.error} onReload={list.reload} />
      {list.data?.length === 0 && <p class="muted">No trust stores.</p>}
      {list.data?.map((ts) => <TrustStoreCard key={ts.Id} ts={ts} onChanged={list.reload} />)}
    </>
  );
}
