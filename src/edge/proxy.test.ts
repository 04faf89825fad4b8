/**
 * Unit tests of the proxy's pure parts: header rewriting (RFC 9110 7.6.1 hop-by-hop,
 * certificate-header anti-spoofing, X-Forwarded-*, Forwarded per RFC 7239), path
 * joining, WebSocket detection, failure classification and metrics registration.
 * The socket-level behaviour is in test/integration/edge-proxy.test.ts.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import {
  buildOriginRequestHeaders, classifyOriginFailure, cleanResponseHeaders, forwardedElement, isCertificateHeaderName,
  isWebSocketUpgrade, joinOriginPath, registerOriginMetrics, type HeaderPairs, type OriginHeaderContext,
} from './proxy.js';

const ctx = (over: Partial<OriginHeaderContext> = {}): OriginHeaderContext => ({
  clientIp: '192.0.2.7', clientHost: 'api.example.com', fallbackHost: 'origin:8080',
  certificateHeaders: { 'CloudFront-Viewer-Cert-Present': '1', 'CloudFront-Viewer-Cert-Subject': 'CN=Real' },
  httpVersion: '1.1', ...over,
});
const names = (h: HeaderPairs) => h.map(([n]) => n.toLowerCase());
const get = (h: HeaderPairs, name: string) => h.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v);

describe('buildOriginRequestHeaders', () => {
  test('removes hop-by-hop headers and every header Connection names', () => {
    const out = buildOriginRequestHeaders([
      ['Host', 'api.example.com'], ['Connection', 'keep-alive, X-Private'], ['connection', 'x-other'], ['X-Private', '1'], ['X-Other', '2'],
      ['Keep-Alive', 'timeout=5'], ['Proxy-Connection', 'keep-alive'], ['Transfer-Encoding', 'chunked'], ['Upgrade', 'h2c'],
      ['Proxy-Authorization', 'Basic eA=='], ['Proxy-Authenticate', 'Basic'], ['HTTP2-Settings', 'AAA'], ['Expect', '100-continue'],
      ['Accept', '*/*'],
    ], ctx());
    for (const n of ['connection', 'x-private', 'x-other', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade',
      'proxy-authorization', 'proxy-authenticate', 'http2-settings', 'expect', 'te']) {
      assert.ok(!names(out).includes(n), n);
    }
    assert.deepEqual(get(out, 'accept'), ['*/*']);
  });

  test('TE is kept only as "trailers"', () => {
    assert.deepEqual(get(buildOriginRequestHeaders([['TE', 'gzip, trailers;q=1']], ctx()), 'te'), ['trailers']);
    assert.deepEqual(get(buildOriginRequestHeaders([['TE', 'gzip']], ctx()), 'te'), []);
  });

  test('every client copy of the certificate headers is removed, any case, _ or -, then the gate\'s are added', () => {
    const out = buildOriginRequestHeaders([
      ['CloudFront-Viewer-Cert-Subject', 'CN=Spoof'], ['cloudfront-viewer-cert-present', '1'], ['CLOUDFRONT-VIEWER-CERT-PEM', 'x'],
      ['CloudFront_Viewer_Cert_Issuer', 'CN=Spoof'], ['cloudfront-viewer-cert-anything-new', 'x'], ['Client-Cert', ':AAA=:'],
      ['client_cert_chain', ':AAA=:'], ['CLIENT-CERT-CHAIN', ':AAA=:'], ['X-Keep', 'yes'],
    ], ctx());
    const certish = out.filter(([n]) => isCertificateHeaderName(n));
    assert.deepEqual(certish, [['CloudFront-Viewer-Cert-Present', '1'], ['CloudFront-Viewer-Cert-Subject', 'CN=Real']]);
    assert.deepEqual(get(out, 'x-keep'), ['yes']);
  });

  test('client copies of a gate header outside the known names are removed too', () => {
    const out = buildOriginRequestHeaders([['X-Gate-Extra', 'spoof'], ['x_gate_extra', 'spoof']], ctx({ certificateHeaders: { 'X-Gate-Extra': 'real' } }));
    assert.deepEqual(out.filter(([n]) => n.toLowerCase().replace(/_/g, '-') === 'x-gate-extra'), [['X-Gate-Extra', 'real']]);
  });

  test('X-Forwarded-For, Forwarded and Via append this hop; Host and X-Forwarded-Proto/Host are the gateway\'s', () => {
    const out = buildOriginRequestHeaders([
      ['Host', 'api.example.com'], ['X-Forwarded-For', '10.0.0.1'], ['x-forwarded-for', '10.0.0.2, 10.0.0.3'], ['X_Forwarded_For', '6.6.6.6'],
      ['X-Forwarded-Proto', 'http'], ['X-Forwarded-Host', 'evil'], ['X_Forwarded_Host', 'evil'], ['Forwarded', 'for=10.0.0.1'], ['Via', '1.1 other'],
    ], ctx());
    assert.deepEqual(out[0], ['host', 'api.example.com']);
    assert.deepEqual(get(out, 'host'), ['api.example.com']);
    assert.deepEqual(get(out, 'x-forwarded-for'), ['10.0.0.1, 10.0.0.2, 10.0.0.3, 192.0.2.7']);
    assert.deepEqual(get(out, 'x-forwarded-proto'), ['https']);
    assert.deepEqual(get(out, 'x-forwarded-host'), ['api.example.com']);
    assert.deepEqual(get(out, 'forwarded'), ['for=10.0.0.1, for=192.0.2.7;host=api.example.com;proto=https']);
    assert.deepEqual(get(out, 'via'), ['1.1 other, 1.1 portcullis']);
    assert.ok(!out.some(([n]) => n.includes('_')));
  });

  test('no client Host: the origin host is sent and X-Forwarded-Host is omitted', () => {
    const out = buildOriginRequestHeaders([], ctx({ clientHost: undefined, httpVersion: '1.0' }));
    assert.deepEqual(get(out, 'host'), ['origin:8080']);
    assert.deepEqual(get(out, 'x-forwarded-host'), []);
    assert.deepEqual(get(out, 'forwarded'), ['for=192.0.2.7;proto=https']);
    assert.deepEqual(get(out, 'via'), ['1.0 portcullis']);
  });

  test('a WebSocket upgrade keeps Connection: Upgrade and the Upgrade value', () => {
    const out = buildOriginRequestHeaders([['Connection', 'Upgrade'], ['Upgrade', 'websocket'], ['Sec-WebSocket-Key', 'k']],
      ctx({ websocketUpgrade: 'websocket' }));
    assert.deepEqual(get(out, 'connection'), ['Upgrade']);
    assert.deepEqual(get(out, 'upgrade'), ['websocket']);
    assert.deepEqual(get(out, 'sec-websocket-key'), ['k']);
  });
});

test('forwardedElement quotes IPv6 nodes and non-token hosts (RFC 7239 4, 6)', () => {
  assert.equal(forwardedElement('2001:db8::1', 'h.example:8443'), 'for="[2001:db8::1]";host="h.example:8443";proto=https');
  assert.equal(forwardedElement('192.0.2.1', 'h.example'), 'for=192.0.2.1;host=h.example;proto=https');
});

test('cleanResponseHeaders drops hop-by-hop headers and what Connection names, keeps arrays', () => {
  const out = cleanResponseHeaders({
    connection: 'close, x-hop', 'x-hop': '1', 'keep-alive': 'timeout=5', 'transfer-encoding': 'chunked', upgrade: 'h2c',
    'set-cookie': ['a=1', 'b=2'], 'content-type': 'text/plain', 'x-none': undefined,
  });
  assert.deepEqual(out, { 'set-cookie': ['a=1', 'b=2'], 'content-type': 'text/plain' });
});

test('joinOriginPath joins the base path with exactly one slash', () => {
  assert.equal(joinOriginPath('/', '/a?b=1'), '/a?b=1');
  assert.equal(joinOriginPath('', '/a'), '/a');
  assert.equal(joinOriginPath('/base', '/a?b=1'), '/base/a?b=1');
  assert.equal(joinOriginPath('/base/', '/a'), '/base/a');
  assert.equal(joinOriginPath('/base', 'https://h.example/x?y'), '/base/x?y');
  assert.equal(joinOriginPath('/', '*'), '*');
});

test('isWebSocketUpgrade: GET with a websocket token only', () => {
  assert.equal(isWebSocketUpgrade('GET', 'websocket'), true);
  assert.equal(isWebSocketUpgrade('GET', 'foo, WebSocket'), true);
  assert.equal(isWebSocketUpgrade('POST', 'websocket'), false);
  assert.equal(isWebSocketUpgrade('GET', 'h2c'), false);
  assert.equal(isWebSocketUpgrade('GET', undefined), false);
});

test('classifyOriginFailure: timeouts → 504, the rest → 502', () => {
  const e = (code: string) => Object.assign(new Error(code), { code });
  assert.deepEqual(classifyOriginFailure(e('UND_ERR_CONNECT_TIMEOUT')), { kind: 'connect_timeout', status: 504, code: 'UND_ERR_CONNECT_TIMEOUT' });
  assert.equal(classifyOriginFailure(e('UND_ERR_HEADERS_TIMEOUT')).kind, 'response_timeout');
  assert.equal(classifyOriginFailure(e('ECONNREFUSED')).status, 502);
  assert.equal(classifyOriginFailure(new AggregateError([e('ECONNREFUSED')])).kind, 'connect');
  assert.equal(classifyOriginFailure(new Error('x', { cause: e('ENOTFOUND') })).kind, 'dns');
  assert.equal(classifyOriginFailure(e('UND_ERR_SOCKET')).kind, 'reset');
  assert.equal(classifyOriginFailure(e('DEPTH_ZERO_SELF_SIGNED_CERT')).kind, 'tls');
  assert.equal(classifyOriginFailure(e('ERR_TLS_CERT_ALTNAME_INVALID')).kind, 'tls');
  assert.deepEqual(classifyOriginFailure('weird'), { kind: 'other', status: 502, code: undefined });
});

test('registerOriginMetrics is idempotent per registry', async () => {
  const registry = new Registry();
  const a = registerOriginMetrics(registry);
  const b = registerOriginMetrics(registry);
  assert.equal(a.requests, b.requests);
  a.errors.inc({ distribution: 'd1', kind: 'connect' });
  assert.match(await registry.metrics(), /portcullis_origin_errors_total\{distribution="d1",kind="connect"\} 1/);
});
