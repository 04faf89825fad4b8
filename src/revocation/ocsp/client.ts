import { Agent, request, type Dispatcher } from 'undici';
import { OcspTransportError } from '../../errors.js';
import { ocspGetUrl } from './request.js';

/** Which HTTP method carried an OCSP request (RFC 6960 A.1, RFC 5019 5). */
export type OcspHttpMethod = 'GET' | 'POST';

/** Input of one OCSP HTTP exchange. */
export interface OcspFetchInput {
  /** Responder URL from the certificate's AIA (http: or https:). */
  responderUrl: string;
  /** DER of the OCSPRequest. */
  requestDer: Buffer;
  /** Aborts the exchange (the caller's time budget). */
  signal: AbortSignal;
  /** Largest accepted response body in bytes; a bigger body is an error (SPEC 3: default 64 KiB). */
  maxResponseBytes: number;
}

/** What a responder sent back: the raw body and how it was obtained. */
export interface OcspFetchOutput {
  body: Buffer;
  method: OcspHttpMethod;
  httpStatus: number;
}

/**
 * Transport of OCSP requests. The default is {@link OcspHttpClient}; tests and the
 * cache inject their own. Must reject with {@link OcspTransportError} (or any error,
 * treated the same) when no response body was obtained.
 */
export type OcspFetcher = (input: OcspFetchInput) => Promise<OcspFetchOutput>;

/** Options of {@link OcspHttpClient}. */
export interface OcspHttpClientOptions {
  /** undici dispatcher; default: a keep-alive Agent shared by every request of this client. */
  dispatcher?: Dispatcher;
  /** Value of the User-Agent header. */
  userAgent?: string;
}

/** HTTP statuses after which the other method is tried once (SPEC 3: fall back on 405/400/415). */
const FALLBACK_STATUSES = new Set([400, 405, 415]);

/**
 * OCSP over HTTP (RFC 6960 appendix A, RFC 5019 section 5), on undici.
 *
 * - GET with the base64, URL-encoded request appended to the responder URL when that
 *   fits in 255 bytes (RFC 5019 5), else POST `application/ocsp-request`.
 * - On 400/405/415 the other method is tried once.
 * - Redirects are not followed (an attacker-controlled redirect must not steer
 *   revocation traffic); a 3xx is a transport error naming the Location.
 * - A body over `maxResponseBytes` is refused as soon as Content-Length or the
 *   received bytes exceed it.
 * - `signal` bounds the whole exchange including both methods.
 *
 * Every failure rejects with {@link OcspTransportError} whose message is a human
 * sentence (it becomes `errorDetail`).
 */
export class OcspHttpClient {
  readonly #dispatcher: Dispatcher;
  readonly #ownsDispatcher: boolean;
  readonly #userAgent: string;

  constructor(options: OcspHttpClientOptions = {}) {
    this.#ownsDispatcher = !options.dispatcher;
    this.#dispatcher = options.dispatcher ?? new Agent({ keepAliveTimeout: 30_000, connections: 16, pipelining: 1 });
    this.#userAgent = options.userAgent ?? 'portcullis-ocsp/0.1';
  }

  /** The {@link OcspFetcher} of this client (bound, so it can be passed around). */
  readonly fetch: OcspFetcher = async (input) => {
    let url: URL;
    try {
      url = new URL(input.responderUrl);
    } catch {
      throw new OcspTransportError(`responder URL "${input.responderUrl}" is not a valid URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new OcspTransportError(`responder URL "${input.responderUrl}" uses ${url.protocol} (only http: and https: are supported)`);
    }
    const getUrl = ocspGetUrl(input.responderUrl, input.requestDer);
    const first: OcspHttpMethod = getUrl ? 'GET' : 'POST';
    const out = await this.#exchange(first, getUrl, input);
    if (!FALLBACK_STATUSES.has(out.httpStatus)) return this.#accept(out, input);
    const second: OcspHttpMethod = first === 'GET' ? 'POST' : 'GET';
    const secondUrl = second === 'GET' ? (getUrl ?? ocspGetUrl(input.responderUrl, input.requestDer, Infinity)) : undefined;
    if (second === 'GET' && secondUrl === undefined) {
      // No GET form exists for this responder URL (it has a query or fragment).
      throw new OcspTransportError(`responder ${input.responderUrl} refused POST with HTTP ${out.httpStatus}, and its URL has no GET form (a query or fragment)`);
    }
    const retry = await this.#exchange(second, secondUrl, input);
    if (FALLBACK_STATUSES.has(retry.httpStatus)) {
      throw new OcspTransportError(`responder ${input.responderUrl} refused both methods: ${first} → HTTP ${out.httpStatus}, ${second} → HTTP ${retry.httpStatus}`);
    }
    return this.#accept(retry, input);
  };

  #accept(out: OcspFetchOutput & { location?: string }, input: OcspFetchInput): OcspFetchOutput {
    if (out.httpStatus >= 300 && out.httpStatus < 400) {
      throw new OcspTransportError(`responder ${input.responderUrl} answered ${out.method} with redirect HTTP ${out.httpStatus}${out.location ? ` to ${out.location}` : ''}; redirects are not followed`);
    }
    if (out.httpStatus !== 200) {
      throw new OcspTransportError(`responder ${input.responderUrl} answered ${out.method} with HTTP ${out.httpStatus}`);
    }
    if (out.body.length === 0) throw new OcspTransportError(`responder ${input.responderUrl} answered ${out.method} with an empty body`);
    return { body: out.body, method: out.method, httpStatus: out.httpStatus };
  }

  async #exchange(method: OcspHttpMethod, getUrl: string | undefined, input: OcspFetchInput): Promise<OcspFetchOutput & { location?: string }> {
    const { signal, maxResponseBytes, responderUrl } = input;
    if (signal.aborted) throw timeoutError(responderUrl, signal);
    let res: Dispatcher.ResponseData;
    try {
      res = await request(method === 'GET' ? (getUrl as string) : responderUrl, {
        method,
        dispatcher: this.#dispatcher,
        signal,
        headers: method === 'GET'
          ? { 'user-agent': this.#userAgent, accept: 'application/ocsp-response' }
          : { 'user-agent': this.#userAgent, accept: 'application/ocsp-response', 'content-type': 'application/ocsp-request' },
        body: method === 'POST' ? input.requestDer : null,
      });
    } catch (err) {
      if (signal.aborted) throw timeoutError(responderUrl, signal, err);
      throw new OcspTransportError(`cannot reach responder ${responderUrl}: ${describeNetworkError(err)}`, { cause: err });
    }
    const status = res.statusCode;
    const location = typeof res.headers.location === 'string' ? res.headers.location : undefined;
    if (status !== 200) {
      // We do not need error bodies: discard without reading.
      discardBody(res.body);
      return { body: Buffer.alloc(0), method, httpStatus: status, ...(location ? { location } : {}) };
    }
    const declared = Number(res.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxResponseBytes) {
      discardBody(res.body);
      throw new OcspTransportError(`responder ${responderUrl} sent a ${declared}-byte response; the limit is ${maxResponseBytes} bytes`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size > maxResponseBytes) {
          res.body.destroy();
          throw new OcspTransportError(`responder ${responderUrl} sent more than ${maxResponseBytes} bytes; the limit is ${maxResponseBytes} bytes`);
        }
        chunks.push(chunk as Buffer);
      }
    } catch (err) {
      if (err instanceof OcspTransportError) throw err;
      if (signal.aborted) throw timeoutError(responderUrl, signal, err);
      throw new OcspTransportError(`response from ${responderUrl} was cut off: ${describeNetworkError(err)}`, { cause: err });
    }
    return { body: Buffer.concat(chunks, size), method, httpStatus: status };
  }

  /** Closes pooled connections (only when this client created its dispatcher). */
  async close(): Promise<void> {
    if (this.#ownsDispatcher) await this.#dispatcher.close();
  }
}

/**
 * Destroys a response body that will not be read. undici's body stream, destroyed
 * before its end, emits a RequestAbortedError 'error' event (asynchronously); without a
 * listener that is an uncaught exception that would take the process down.
 */
function discardBody(body: Dispatcher.ResponseData['body']): void {
  body.on('error', () => {});
  body.destroy();
}

function timeoutError(url: string, signal: AbortSignal, cause?: unknown): OcspTransportError {
  const reason = signal.reason instanceof Error ? signal.reason.message : 'aborted';
  return new OcspTransportError(`no complete answer from responder ${url}: ${reason}`, { cause: cause ?? signal.reason });
}

function describeNetworkError(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e.code ?? e.cause?.code;
  const msg = e.cause?.message ?? e.message ?? String(err);
  return code && !msg.includes(code) ? `${code} ${msg}` : msg;
}
