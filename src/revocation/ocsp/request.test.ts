import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as asn1js from 'asn1js';
import { InvalidArgumentError } from '../../errors.js';
import { OID } from '../../pki/index.js';
import { buildChain, issueCertificate, type TestCert, type TestChain } from '../../../test/helpers/pki.js';
import { parseOcspRequest, startTestResponder, behaviours, type TestResponder } from '../../../test/helpers/ocsp-responder.js';
import { buildCertId, buildOcspRequest, encodeCertId, ocspGetUrl, OCSP_GET_MAX_URL_BYTES } from './request.js';
import { OcspHttpClient } from './client.js';

const sha1 = (b: Uint8Array) => createHash('sha1').update(b).digest();

let dir: string;
let ec: TestChain;
let rsa: TestChain;
let leadingZero: TestCert;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'portcullis-ocsp-req-'));
  ec = await buildChain({ keyType: 'ec-p256', name: 'ReqEC' });
  rsa = await buildChain({ keyType: 'rsa-2048', name: 'ReqRSA' });
  // Serial whose first content octet is 00 (the next has its high bit set): DER keeps it.
  leadingZero = await issueCertificate({ subject: 'CN=leading zero', issuer: ec.intermediates[0]!, serial: '00a7309e1122' });
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `openssl ocsp` and returns stdout. */
function openssl(...args: string[]): string {
  return execFileSync('openssl', ['ocsp', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function file(name: string, content: string | Buffer): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

/** Fields of `openssl ocsp -req_text` output. */
function reqText(der: Buffer): { hash: string; nameHash: string; keyHash: string; serial: string; nonce: string | undefined } {
  const out = openssl('-reqin', file(`r-${Math.random()}.der`, der), '-req_text');
  const field = (label: string) => new RegExp(`${label}: *([0-9A-Za-z]+)`).exec(out)?.[1];
  const nonce = /OCSP Nonce: *\n\s+([0-9A-F]+)/.exec(out)?.[1];
  return { hash: field('Hash Algorithm')!, nameHash: field('Issuer Name Hash')!, keyHash: field('Issuer Key Hash')!, serial: field('Serial Number')!, nonce };
}

describe('buildCertId (RFC 6960 4.1.1, RFC 5019 2.1.1)', () => {
  for (const kind of ['ec', 'rsa'] as const) {
    test(`${kind}: SHA-1 of the issuer subject DER and key bits, serial as encoded`, () => {
      const chain = kind === 'ec' ? ec : rsa;
      const issuer = chain.intermediates[0]!;
      const id = buildCertId(chain.leaf.cert, issuer.cert);
      assert.equal(id.hashAlgorithm, OID.sha1);
      assert.deepEqual(id.issuerNameHash, sha1(issuer.subjectDer));
      assert.deepEqual(id.issuerNameHash, sha1(chain.leaf.cert.issuerDer), 'same bytes as the leaf issuer field');
      assert.deepEqual(id.issuerKeyHash, sha1(issuer.cert.publicKeyBits));
      // The SKI of the test PKI is the SHA-1 of the key bits too (RFC 5280 4.2.1.2 method 1).
      assert.deepEqual(id.issuerKeyHash, issuer.cert.subjectKeyIdentifier);
      assert.deepEqual(id.serialNumber, chain.leaf.cert.serialNumberBytes);
    });
  }

  test('keeps a leading 00 octet of the serial', () => {
    const id = buildCertId(leadingZero.cert, ec.intermediates[0]!.cert);
    assert.equal(id.serialNumber.toString('hex'), '00a7309e1122');
  });

  test('agrees with `openssl ocsp -issuer … -cert … -reqout` parsed by `-req_text`', () => {
    for (const [leaf, issuer] of [[ec.leaf, ec.intermediates[0]!], [rsa.leaf, rsa.intermediates[0]!], [leadingZero, ec.intermediates[0]!], [ec.intermediates[0]!, ec.root]] as const) {
      const reqout = join(dir, 'openssl-req.der');
      openssl('-issuer', file('issuer.pem', issuer.pem), '-cert', file('cert.pem', leaf.pem), '-reqout', reqout, '-no_nonce');
      const theirs = reqText(readFileSync(reqout));
      const id = buildCertId(leaf.cert, issuer.cert);
      assert.equal(theirs.hash, 'sha1');
      assert.equal(theirs.nameHash, id.issuerNameHash.toString('hex').toUpperCase());
      assert.equal(theirs.keyHash, id.issuerKeyHash.toString('hex').toUpperCase());
      // OpenSSL prints the INTEGER value: no leading 00 octet.
      assert.equal(theirs.serial.replace(/^(00)+/, ''), id.serialNumber.toString('hex').toUpperCase().replace(/^(00)+/, ''));
    }
  });
});

describe('buildOcspRequest (RFC 6960 4.1.1, RFC 8954)', () => {
  test('without a nonce the DER is byte-identical to `openssl ocsp -no_nonce -reqout`', () => {
    for (const [leaf, issuer] of [[ec.leaf, ec.intermediates[0]!], [rsa.leaf, rsa.intermediates[0]!], [leadingZero, ec.intermediates[0]!]] as const) {
      const reqout = join(dir, 'openssl-req.der');
      openssl('-issuer', file('issuer.pem', issuer.pem), '-cert', file('cert.pem', leaf.pem), '-reqout', reqout, '-no_nonce');
      const ours = buildOcspRequest({ cert: leaf.cert, issuer: issuer.cert });
      assert.equal(ours.der.toString('hex'), readFileSync(reqout).toString('hex'));
      assert.equal(ours.nonce, undefined);
    }
  });

  test('one Request, no requestorName, no signature, no extensions by default', () => {
    const req = buildOcspRequest({ cert: ec.leaf.cert, issuer: ec.intermediates[0]!.cert, nonce: false });
    const parsed = parseOcspRequest(req.der);
    assert.equal(parsed.certIds.length, 1);
    assert.deepEqual(parsed.certIds[0], req.certId);
    assert.equal(parsed.signed, false);
    assert.equal(parsed.nonce, undefined);
    // OCSPRequest SEQ { TBSRequest SEQ { requestList SEQ { Request SEQ { CertID } } } }: nothing else.
    const outer = asn1js.fromBER(req.der).result as asn1js.Sequence;
    assert.equal(outer.valueBlock.value.length, 1, 'no optionalSignature');
    const tbs = outer.valueBlock.value[0] as asn1js.Sequence;
    assert.equal(tbs.valueBlock.value.length, 1, 'no version, requestorName or requestExtensions');
    const request = (tbs.valueBlock.value[0] as asn1js.Sequence).valueBlock.value[0] as asn1js.Sequence;
    assert.equal(request.valueBlock.value.length, 1, 'no singleRequestExtensions');
  });

  test('nonce: true sends 32 fresh random bytes in the RFC 8954 form', () => {
    const a = buildOcspRequest({ cert: ec.leaf.cert, issuer: ec.intermediates[0]!.cert, nonce: true });
    const b = buildOcspRequest({ cert: ec.leaf.cert, issuer: ec.intermediates[0]!.cert, nonce: true });
    assert.equal(a.nonce?.length, 32);
    assert.notDeepEqual(a.nonce, b.nonce);
    assert.deepEqual(parseOcspRequest(a.der).nonce, a.nonce);
    // extnValue = OCTET STRING (04 20 …) wrapping the bytes: 04 22 04 20 <nonce>.
    const ext = Buffer.concat([Buffer.from('04220420', 'hex'), a.nonce!]);
    assert.ok(a.der.includes(ext), 'nonce extension value is the DER of Nonce ::= OCTET STRING');
    const text = reqText(a.der);
    assert.equal(text.nonce, `0420${a.nonce!.toString('hex').toUpperCase()}`, 'openssl reads the nonce');
    assert.equal(text.nameHash, a.certId.issuerNameHash.toString('hex').toUpperCase());
  });

  test('a given nonce Buffer is used as is; 1 and 32 bytes are accepted', () => {
    for (const len of [1, 16, 32]) {
      const nonce = Buffer.alloc(len, 0xab);
      const req = buildOcspRequest({ cert: ec.leaf.cert, issuer: ec.intermediates[0]!.cert, nonce });
      assert.deepEqual(req.nonce, nonce);
      assert.deepEqual(parseOcspRequest(req.der).nonce, nonce);
    }
  });

  test('an empty or over-32-byte nonce is refused (RFC 8954 2.1)', () => {
    for (const len of [0, 33, 64]) {
      assert.throws(() => buildOcspRequest({ cert: ec.leaf.cert, issuer: ec.intermediates[0]!.cert, nonce: Buffer.alloc(len) }), InvalidArgumentError);
    }
  });

  test('encodeCertId refuses non-SHA-1 CertIDs and empty serials', () => {
    const id = buildCertId(ec.leaf.cert, ec.intermediates[0]!.cert);
    assert.throws(() => encodeCertId({ ...id, hashAlgorithm: OID.sha256 }), InvalidArgumentError);
    assert.throws(() => encodeCertId({ ...id, serialNumber: Buffer.alloc(0) }), InvalidArgumentError);
  });
});

describe('ocspGetUrl (RFC 6960 A.1, RFC 5019 5)', () => {
  const der = buildOcspRequestFor();
  function buildOcspRequestFor(): Buffer {
    // A fixed request whose base64 contains '+', '/' and '=' so URL-encoding is visible.
    return Buffer.from('3049304730453043300906052b0e03021a05000414fbfb3e3ffe3f0f3eff0ffe3e0ffe3e0ffe3e0ffe0414ffffffffffffffffffffffffffffffffffffffff020a00fbff00112233445566', 'hex');
  }

  test('appends the URL-encoded base64 after one slash', () => {
    const b64 = der.toString('base64');
    assert.match(b64, /[+/=]/);
    const url = ocspGetUrl('http://ocsp.example.com', der)!;
    assert.equal(url, `http://ocsp.example.com/${encodeURIComponent(b64)}`);
    assert.doesNotMatch(url.slice('http://ocsp.example.com/'.length), /[+/=]/);
    assert.equal(ocspGetUrl('http://ocsp.example.com/', der), url, 'a trailing slash is not doubled');
    assert.equal(ocspGetUrl('http://ocsp.example.com/ocsp', der), `http://ocsp.example.com/ocsp/${encodeURIComponent(b64)}`);
    assert.deepEqual(Buffer.from(decodeURIComponent(url.split('/').pop()!), 'base64'), der);
  });

  test('the whole URL may be at most 255 bytes; beyond that the caller uses POST', () => {
    const tail = `/${encodeURIComponent(der.toString('base64'))}`;
    const hostFor = (total: number) => `http://${'a'.repeat(total - tail.length - 'http://'.length)}`;
    const exact = ocspGetUrl(hostFor(255), der);
    assert.equal(exact?.length, 255);
    assert.equal(OCSP_GET_MAX_URL_BYTES, 255);
    assert.equal(ocspGetUrl(hostFor(256), der), undefined);
    assert.equal(ocspGetUrl(hostFor(256), der, Infinity)?.length, 256, 'maxBytes Infinity always gives the GET form');
    assert.equal(ocspGetUrl(hostFor(200), der, 199), undefined);
  });

  test('no GET form for a responder URL with a query string or a fragment (the caller POSTs)', () => {
    for (const responderUrl of ['http://ocsp.example.com/ocsp?x=1', 'http://ocsp.example.com/?', 'http://ocsp.example.com/ocsp#frag', 'http://ocsp.example.com/ocsp?a=1#f']) {
      assert.equal(ocspGetUrl(responderUrl, der), undefined, responderUrl);
      assert.equal(ocspGetUrl(responderUrl, der, Infinity), undefined, `${responderUrl} (maxBytes Infinity)`);
    }
    // '?' and '#' only matter in the responder URL: the encoded request never contains them.
    assert.ok(ocspGetUrl('http://ocsp.example.com/ocsp', der));
  });

  test('a typical RFC 5019 request fits, with or without a nonce, for a short responder URL', () => {
    const plain = buildOcspRequest({ cert: ec.leaf.cert, issuer: ec.intermediates[0]!.cert });
    const nonced = buildOcspRequest({ cert: ec.leaf.cert, issuer: ec.intermediates[0]!.cert, nonce: true });
    assert.ok(ocspGetUrl('http://ocsp.example.com', plain.der));
    assert.ok(ocspGetUrl('http://ocsp.example.com', nonced.der));
    assert.equal(ocspGetUrl(`http://ocsp.example.com/${'p'.repeat(150)}`, nonced.der), undefined);
  });

  describe('against the test responder', () => {
    let responder: TestResponder;
    before(async () => {
      responder = await startTestResponder(behaviours.good(ec.intermediates[0]!), { path: '/ocsp' });
    });
    after(() => responder.close());

    test('GET and POST carry the same request', async () => {
      const req = buildOcspRequest({ cert: ec.leaf.cert, issuer: ec.intermediates[0]!.cert, nonce: true });
      const url = ocspGetUrl(responder.url, req.der)!;
      const get = await fetch(url);
      assert.equal(get.status, 200);
      assert.equal(get.headers.get('content-type'), 'application/ocsp-response');
      await get.arrayBuffer();
      const post = await fetch(responder.url, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: req.der });
      assert.equal(post.status, 200);
      await post.arrayBuffer();
      assert.deepEqual(responder.counts, { GET: 1, POST: 1, other: 0, total: 2 });
      for (const r of responder.requests) {
        assert.equal(r.parseError, undefined);
        assert.deepEqual(r.der, req.der);
        assert.deepEqual(r.certId, req.certId);
        assert.deepEqual(r.nonce, req.nonce);
      }
      assert.equal(responder.requests[1]!.contentType, 'application/ocsp-request');
    });

    test('a responder URL with a query string is asked with POST, to the URL as given', async () => {
      const req = buildOcspRequest({ cert: ec.leaf.cert, issuer: ec.intermediates[0]!.cert });
      responder.reset();
      const client = new OcspHttpClient();
      try {
        const out = await client.fetch({ responderUrl: `${responder.url}?x=1`, requestDer: req.der, signal: AbortSignal.timeout(5000), maxResponseBytes: 65_536 });
        assert.equal(out.method, 'POST');
        assert.equal(out.httpStatus, 200);
      } finally {
        await client.close();
      }
      assert.deepEqual(responder.counts, { GET: 0, POST: 1, other: 0, total: 1 });
      assert.equal(responder.requests[0]!.url, '/ocsp?x=1');
      assert.deepEqual(responder.requests[0]!.der, req.der);
    });

    test('a GET-only responder at a URL with a query string: POST refused, no GET form → a clear transport error', async () => {
      const req = buildOcspRequest({ cert: ec.leaf.cert, issuer: ec.intermediates[0]!.cert });
      responder.reset();
      responder.setHandler(behaviours.getOnly(behaviours.good(ec.intermediates[0]!)));
      const client = new OcspHttpClient();
      try {
        await assert.rejects(
          client.fetch({ responderUrl: `${responder.url}?x=1`, requestDer: req.der, signal: AbortSignal.timeout(5000), maxResponseBytes: 65_536 }),
          (err: Error) => /refused POST with HTTP 405, and its URL has no GET form/.test(err.message),
        );
      } finally {
        await client.close();
        responder.setHandler(behaviours.good(ec.intermediates[0]!));
      }
      assert.deepEqual(responder.counts, { GET: 0, POST: 1, other: 0, total: 1 });
    });

    test('GET-only and POST-only responders answer 405 to the other method', async () => {
      const req = buildOcspRequest({ cert: ec.leaf.cert, issuer: ec.intermediates[0]!.cert });
      responder.setHandler(behaviours.getOnly(behaviours.good(ec.intermediates[0]!)));
      const post = await fetch(responder.url, { method: 'POST', body: req.der });
      assert.equal(post.status, 405);
      assert.equal(post.headers.get('allow'), 'GET');
      await post.arrayBuffer();
      responder.setHandler(behaviours.postOnly(behaviours.good(ec.intermediates[0]!)));
      const get = await fetch(ocspGetUrl(responder.url, req.der)!);
      assert.equal(get.status, 405);
      await get.arrayBuffer();
    });
  });
});
