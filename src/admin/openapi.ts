/**
 * The OpenAPI 3.0 document of the admin API, served at `GET /v1/openapi.json`. Hand
 * written from the routes in server.ts and api.ts; api.test.ts checks that every
 * registered route is listed here and every listed route exists.
 */

type Json = Record<string, unknown>;

const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Json): Json => ({ content: { 'application/json': { schema } } });
const etagHeader = { ETag: { description: 'The resource\'s (or KVS store\'s, or function stage\'s) current ETag', schema: { type: 'string' } } };
const ok = (description: string, schema: Json, etag = true): Json => ({ description, ...json(schema), ...(etag ? { headers: etagHeader } : {}) });
const errors = (...statuses: number[]): Json => Object.fromEntries(statuses.map((s) => [String(s), { $ref: `#/components/responses/E${s}` }]));
const ifMatch = { $ref: '#/components/parameters/IfMatch' };
const pathParam = (name: string, description: string): Json => ({ name, in: 'path', required: true, description, schema: { type: 'string' } });
const query = (name: string, description: string, schema: Json = { type: 'string' }): Json => ({ name, in: 'query', required: false, description, schema });
const stage = query('stage', 'DEVELOPMENT (default) or LIVE', { type: 'string', enum: ['DEVELOPMENT', 'LIVE'] });
const body = (schema: Json): Json => ({ required: true, ...json(schema) });
const listOf = (item: string): Json => ({ type: 'object', required: ['Items', 'Quantity'], properties: { Items: { type: 'array', items: ref(item) }, Quantity: { type: 'integer' } } });
const id = (what: string): Json => pathParam('id', `the ${what}'s id or name`);
const kvsName = pathParam('name', 'the key value store\'s name or id');
const str = { type: 'string' };

/** The document (a new object each call). */
export function openApiDocument(): Json {
  return {
    openapi: '3.0.3',
    info: {
      title: 'Portcullis admin API', version: '1',
      description: 'Every route except /healthz needs "Authorization: Bearer <token>". JSON in and out. Writes to an existing resource '
        + 'need If-Match (missing: InvalidIfMatchVersion 400; stale: PreconditionFailed 412); responses about one resource carry its ETag. '
        + 'Errors are {"error":{"code","message"}}. Resources are addressed by id or name.',
    },
    security: [{ bearer: [] }],
    paths: {
      '/healthz': { get: { security: [], summary: 'Liveness (no auth)', responses: { 200: ok('up', { type: 'object' }, false) } } },
      '/readyz': { get: { summary: 'Readiness', responses: { 200: ok('ready', ref('Readiness'), false), 503: ok('not ready', ref('Readiness'), false), ...errors(401) } } },
      '/metrics': { get: { summary: 'Prometheus metrics', responses: { 200: { description: 'exposition text', content: { 'text/plain': { schema: str } } }, ...errors(401) } } },
      '/v1/openapi.json': { get: { summary: 'This document', responses: { 200: ok('OpenAPI 3 document', { type: 'object' }, false), ...errors(401) } } },
      '/v1/trust-stores': {
        post: { summary: 'Create a trust store (a rejected bundle is stored with Status failed and StatusReason)', requestBody: body(ref('TrustStoreCreate')), responses: { 201: ok('created', ref('TrustStore')), ...errors(400, 401, 409) } },
        get: { summary: 'List trust stores', responses: { 200: ok('trust stores', listOf('TrustStore'), false), ...errors(401) } },
      },
      '/v1/trust-stores/{id}': {
        parameters: [id('trust store')],
        get: { summary: 'Describe a trust store', responses: { 200: ok('the trust store', ref('TrustStore')), ...errors(401, 404) } },
        put: { summary: 'Update a trust store (fields left out keep their value; an invalid bundle is refused, nothing changes)', parameters: [ifMatch], requestBody: body(ref('TrustStoreUpdate')), responses: { 200: ok('updated', ref('TrustStore')), ...errors(400, 401, 404, 412) } },
        delete: { summary: 'Delete a trust store (refused while a distribution uses it)', parameters: [ifMatch], responses: { 204: { description: 'deleted' }, ...errors(400, 401, 404, 409, 412) } },
      },
      '/v1/key-value-stores': {
        post: { summary: 'Create a key value store, optionally importing data (a failed import leaves Status FAILED with FailureReason)', requestBody: body(ref('KvsCreate')), responses: { 201: ok('created', ref('Kvs')), ...errors(400, 401, 409) } },
        get: { summary: 'List key value stores', responses: { 200: ok('stores', listOf('Kvs'), false), ...errors(401) } },
      },
      '/v1/key-value-stores/{name}': {
        parameters: [kvsName],
        get: { summary: 'Describe a key value store; also its Limits (MaxKeyBytes, MaxValueBytes — UTF-8 —, MaxStoreBytes, MaxBatchKeys)', responses: { 200: ok('the store', { allOf: [ref('Kvs'), { type: 'object', properties: { Limits: { type: 'object', properties: { MaxKeyBytes: { type: 'integer' }, MaxValueBytes: { type: 'integer' }, MaxStoreBytes: { type: 'integer' }, MaxBatchKeys: { type: 'integer' } } } } }] }), ...errors(401, 404) } },
        put: { summary: 'Update the comment of a key value store', parameters: [ifMatch], requestBody: body({ type: 'object', required: ['comment'], additionalProperties: false, properties: { name: str, comment: str } }), responses: { 200: ok('updated', ref('Kvs')), ...errors(400, 401, 404, 412) } },
        delete: { summary: 'Delete a key value store and its items (refused while a function is associated)', parameters: [ifMatch], responses: { 204: { description: 'deleted' }, ...errors(400, 401, 404, 409, 412) } },
      },
      '/v1/key-value-stores/{name}/keys': {
        parameters: [kvsName],
        get: { summary: 'List keys (byte order), paginated', parameters: [query('maxResults', 'page size (default 10, at most 50)', { type: 'integer' }), query('nextToken', 'NextToken of the previous page (with prefix: of the previous page of the same prefix)'), query('prefix', 'only keys starting with this string (UTF-8 byte order; Portcullis extension): the page starts at the prefix and NextToken is absent once the prefixed keys end')], responses: { 200: ok('a page (ETag: the store\'s)', { type: 'object', properties: { Items: { type: 'array', items: { type: 'object', properties: { Key: str, Value: str } } }, NextToken: str } }), ...errors(400, 401, 404) } },
        post: { summary: 'Batch update: puts and deletes, all or nothing (at most 50 keys)', parameters: [ifMatch], requestBody: body({ type: 'object', additionalProperties: false, properties: { puts: { type: 'array', items: { type: 'object', required: ['key', 'value'], properties: { key: str, value: str } } }, deletes: { type: 'array', items: { type: 'object', required: ['key'], properties: { key: str } } } } }), responses: { 200: ok('the store\'s new ETag and counters', ref('KvsWrite')), ...errors(400, 401, 402, 404, 409, 412, 413) } },
      },
      '/v1/key-value-stores/{name}/keys/{key}': {
        parameters: [kvsName, pathParam('key', 'the key (percent-encoded)')],
        get: { summary: 'Get a key (ETag: the store\'s)', responses: { 200: ok('the value', { type: 'object', properties: { Key: str, Value: str, ItemCount: { type: 'integer' }, TotalSizeInBytes: { type: 'integer' } } }), ...errors(400, 401, 404) } },
        put: { summary: 'Put a key (If-Match: the store\'s ETag)', parameters: [ifMatch], requestBody: body({ type: 'object', required: ['value'], additionalProperties: false, properties: { value: str } }), responses: { 200: ok('the store\'s new ETag', ref('KvsWrite')), ...errors(400, 401, 402, 404, 409, 412, 413) } },
        delete: { summary: 'Delete a key (If-Match: the store\'s ETag)', parameters: [ifMatch], responses: { 200: ok('the store\'s new ETag', ref('KvsWrite')), ...errors(400, 401, 404, 409, 412) } },
      },
      '/v1/key-value-stores/{name}/import-crl': {
        parameters: [kvsName],
        post: { summary: 'Import the revoked serials of a CRL verified against a trust store (If-Match: the store\'s ETag)', parameters: [ifMatch], requestBody: body({ type: 'object', required: ['trustStore'], additionalProperties: false, properties: { crlPem: str, crlDerBase64: str, trustStore: { type: 'string', description: 'trust store name or id' }, issuerChainPem: { type: 'string', description: 'optional PEM of intermediate CA certificates that chain to the trust store: a CRL signed by one of them is accepted (each must be a valid CA certificate signed by a trust-store certificate or another given intermediate)' } } }), responses: { 200: ok('what was imported', { type: 'object' }), ...errors(400, 401, 402, 404, 409, 412, 413) } },
      },
      '/v1/connection-functions': {
        post: { summary: 'Create a function (DEVELOPMENT stage, UNPUBLISHED); the code is compiled first', requestBody: body(ref('FunctionCreate')), responses: { 201: ok('created', ref('Function')), ...errors(400, 401, 404, 409, 413) } },
        get: { summary: 'List functions (one stage each)', parameters: [stage], responses: { 200: ok('functions', listOf('Function'), false), ...errors(400, 401) } },
      },
      '/v1/connection-functions/{id}': {
        parameters: [id('function')],
        get: { summary: 'Describe one stage (ETag: that stage\'s)', parameters: [stage], responses: { 200: ok('the stage', ref('Function')), ...errors(400, 401, 404) } },
        put: { summary: 'Update the DEVELOPMENT stage (If-Match: DEVELOPMENT ETag); keyValueStore null removes the association', parameters: [ifMatch], requestBody: body(ref('FunctionUpdate')), responses: { 200: ok('updated', ref('Function')), ...errors(400, 401, 404, 412, 413) } },
        delete: { summary: 'Delete both stages (If-Match: DEVELOPMENT ETag; refused while a distribution uses it)', parameters: [ifMatch], responses: { 204: { description: 'deleted' }, ...errors(400, 401, 404, 409, 412) } },
      },
      '/v1/connection-functions/{id}/code': {
        parameters: [id('function')],
        get: { summary: 'The code of one stage', parameters: [stage], responses: { 200: ok('the code', { type: 'object', properties: { Name: str, Stage: str, ETag: str, Code: str } }), ...errors(400, 401, 404) } },
      },
      '/v1/connection-functions/{id}/publish': {
        parameters: [id('function')],
        post: { summary: 'Copy DEVELOPMENT to LIVE (If-Match: DEVELOPMENT ETag); answers the LIVE stage', parameters: [ifMatch], responses: { 200: ok('the LIVE stage', ref('Function')), ...errors(400, 401, 404, 412) } },
      },
      '/v1/connection-functions/{id}/test': {
        parameters: [id('function')],
        post: { summary: 'Run one stage once in an isolated sandbox worker (with the associated KVS\'s current data)', requestBody: body(ref('FunctionTest')), responses: { 200: ok('the result (ETag: the stage tested)', ref('FunctionTestResult')), ...errors(400, 401, 404) } },
      },
      '/v1/connection-functions/{id}/matrix': {
        parameters: [id('function')],
        post: { summary: 'Decision matrix of one stage: leaf × intermediate OCSP status (Good, Revoked, Unknown, Error) × KVS hit/miss (the leaf serial\'s key added to or removed from the associated KVS\'s current data) × client IP, in an isolated sandbox worker; rows that admit a revoked certificate have revokedAllowed', requestBody: { required: false, ...json(ref('FunctionMatrix')) }, responses: { 200: ok('the rows (ETag: the stage run)', ref('FunctionMatrixResult')), ...errors(400, 401, 404, 413) } },
      },
      '/v1/certificates/inspect': {
        post: { summary: 'Describe the certificates of a PEM text (nothing is stored or logged): serial as the connection object shows it and its revocation-list KVS key', requestBody: body({ type: 'object', required: ['pem'], additionalProperties: false, properties: { pem: str } }), responses: { 200: ok('the certificates in PEM order', listOf('InspectedCertificate'), false), ...errors(400, 401) } },
      },
      '/v1/stats': {
        get: { summary: 'Live counters of this node (cluster: summed over workers): connections allowed (Success) and denied (Failed:*) and the OCSP cache hit rate over the last minute (windowSeconds is less while the node is younger), and totals since start', responses: { 200: ok('the counters', ref('Stats'), false), ...errors(401) } },
      },
      '/v1/connection-log/stream': {
        get: {
          summary: 'Live tail of the connection log as server-sent events: "ready" once subscribed (data: the filter), then one "connection" event per line (data: the SPEC section 7 JSON line). A client that falls 1 MiB behind is disconnected. Send the bearer header (use fetch() streaming in a browser; never put the token in the URL)',
          parameters: [query('distribution', 'distribution name or id'), query('status', 'allowed, denied, Success or Failed:<Code>'), query('serial', 'hex digits of the leaf serial (":" allowed), any part')],
          responses: { 200: { description: 'the event stream', content: { 'text/event-stream': { schema: str } } }, ...errors(400, 401, 429, 501) },
        },
      },
      '/v1/distributions': {
        post: { summary: 'Create a distribution: name plus the distribution document (defaults filled in)', requestBody: body({ type: 'object', required: ['name', 'listen', 'certificates', 'origin'], properties: { name: str }, additionalProperties: true }), responses: { 201: ok('created', ref('Distribution')), ...errors(400, 401, 404, 409) } },
        get: { summary: 'List distributions', responses: { 200: ok('distributions', listOf('Distribution'), false), ...errors(401) } },
      },
      '/v1/distributions/{id}': {
        parameters: [id('distribution')],
        get: { summary: 'Describe a distribution', responses: { 200: ok('the distribution', ref('Distribution')), ...errors(401, 404) } },
        put: { summary: 'Replace the distribution document (omitted fields take their defaults)', parameters: [ifMatch], requestBody: body({ type: 'object', additionalProperties: true }), responses: { 200: ok('updated', ref('Distribution')), ...errors(400, 401, 404, 409, 412) } },
        delete: { summary: 'Delete a distribution', parameters: [ifMatch], responses: { 204: { description: 'deleted' }, ...errors(400, 401, 404, 412) } },
      },
      '/v1/nodes': {
        get: {
          summary: 'The cluster\'s nodes: last heartbeat, applied change sequence, in sync with the latest sequence (stale when silent longer than cluster.staleAfterMs; a stale node is never in sync — it may still be serving older state — so AllInSync is false until it reports again or is removed with DELETE /v1/nodes/{name})',
          parameters: [
            query('waitForSequence', 'first wait until every node, stale ones included, has applied this change sequence (TimedOut: true when it did not within timeoutMs); a sequence beyond the latest committed is InvalidArgument at once', { type: 'integer' }),
            query('timeoutMs', 'how long waitForSequence waits, ms (default 10000, at most 60000)', { type: 'integer' }),
          ],
          responses: {
            200: ok('the nodes', { type: 'object', required: ['Items', 'Quantity', 'LatestSequence', 'AllInSync'], properties: { Items: { type: 'array', items: ref('Node') }, Quantity: { type: 'integer' }, LatestSequence: { type: 'integer' }, AllInSync: { type: 'boolean' }, TimedOut: { type: 'boolean' } } }, false),
            ...errors(400, 401, 503),
          },
        },
      },
      '/v1/nodes/{name}': {
        parameters: [pathParam('name', 'the node\'s name (nodeName)')],
        delete: { summary: 'Remove a node\'s row (a node taken out of the cluster; a running node writes it again at its next heartbeat)', responses: { 204: { description: 'removed' }, ...errors(401, 404, 503) } },
      },
      '/v1/ocsp-cache': {
        get: { summary: 'OCSP cache entries of this node (cluster: of every worker, each entry with its worker)', responses: { 200: ok('entries', listOf('OcspCacheEntry'), false), ...errors(401, 501) } },
        delete: { summary: 'Purge every entry, or those matching the filters', parameters: [query('serialNumber', 'serial, hex, ":" allowed'), query('responderUrl', 'responder URL'), query('key', 'one entry: its key from the list (CertID@responder)')], responses: { 200: ok('how many were removed', { type: 'object', properties: { Purged: { type: 'integer' }, Filter: { type: 'object' } } }, false), ...errors(400, 401, 501) } },
      },
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      parameters: { IfMatch: { name: 'If-Match', in: 'header', required: true, description: 'the current ETag', schema: str } },
      responses: Object.fromEntries([
        [400, 'InvalidArgument (message: "field.path: problem"; also InvalidTrustStoreBundle, InvalidCrl, InvalidFunctionCode) or InvalidIfMatchVersion'],
        [401, 'AccessDenied: no valid bearer token'], [402, 'ServiceQuotaExceeded: the KVS would exceed its total size'],
        [404, 'EntityNotFound'], [409, 'EntityAlreadyExists, CannotDeleteEntityWhileInUse, CNAMEAlreadyExists or EntityNotReady'],
        [412, 'PreconditionFailed: the If-Match ETag is stale'], [413, 'EntitySizeLimitExceeded or FunctionSizeLimitExceeded'],
        [429, 'TooManyRequests: too many connection-log streams are open on this server; retry later'],
        [501, 'NotImplemented: the OCSP cache (or the connection-log stream) is not reachable from this server'],
        [503, 'StoreUnavailable: the database is unreachable (writes are refused; the edge keeps serving its last applied state)'],
      ].map(([s, d]) => [`E${s}`, { description: d, ...json(ref('Error')) }])),
      schemas: {
        Error: { type: 'object', required: ['error'], properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: str, message: str } } } },
        Readiness: { type: 'object', properties: { ready: { type: 'boolean' }, status: str, reasons: { type: 'array', items: str }, details: { type: 'object' } } },
        TrustStoreCreate: { type: 'object', required: ['name', 'caBundlePem'], additionalProperties: false, properties: { name: str, caBundlePem: str, useClientCertificateOcspEndpoint: { type: 'boolean' }, comment: str } },
        TrustStoreUpdate: { type: 'object', additionalProperties: false, properties: { name: str, caBundlePem: str, useClientCertificateOcspEndpoint: { type: 'boolean' }, comment: str } },
        TrustStore: { type: 'object', properties: { Id: str, Name: str, ETag: str, Status: { type: 'string', enum: ['pending', 'active', 'failed'] }, StatusReason: str, CertificateCount: { type: 'integer' }, UseClientCertificateOcspEndpoint: { type: 'boolean' }, Comment: str, CaBundlePem: str, CreatedTime: str, LastModifiedTime: str } },
        KvsCreate: { type: 'object', required: ['name'], additionalProperties: false, description: 'at most one of importFile, importUrl, importData', properties: { name: str, comment: str, importFile: { type: 'string', description: 'a path on the server' }, importUrl: str, importData: { description: 'the {"data":[{"key","value"}]} document (or its JSON text)', oneOf: [{ type: 'object' }, str] } } },
        Kvs: { type: 'object', properties: { Name: str, Id: str, Comment: str, Status: { type: 'string', enum: ['PROVISIONING', 'READY', 'FAILED'] }, FailureReason: str, ItemCount: { type: 'integer' }, TotalSizeInBytes: { type: 'integer' }, ETag: str, Created: str, LastModified: str, CrlImport: { type: 'object' } } },
        KvsWrite: { type: 'object', properties: { ETag: str, ItemCount: { type: 'integer' }, TotalSizeInBytes: { type: 'integer' } } },
        FunctionCreate: { type: 'object', required: ['name', 'code'], additionalProperties: false, properties: { name: str, comment: str, runtime: { type: 'string', enum: ['cloudfront-js-2.0'] }, code: str, keyValueStore: { type: 'string', nullable: true } } },
        FunctionUpdate: { type: 'object', additionalProperties: false, properties: { name: str, comment: str, runtime: { type: 'string', enum: ['cloudfront-js-2.0'] }, code: str, keyValueStore: { type: 'string', nullable: true } } },
        Function: { type: 'object', properties: { Name: str, Id: str, Status: { type: 'string', enum: ['UNPUBLISHED', 'UNASSOCIATED', 'DEPLOYED'] }, Stage: { type: 'string', enum: ['DEVELOPMENT', 'LIVE'] }, ETag: str, FunctionConfig: { type: 'object' }, CreatedTime: str, LastModifiedTime: str } },
        FunctionTest: { type: 'object', additionalProperties: false, description: 'exactly one of connection, clientCertificatePem', properties: { stage: { type: 'string', enum: ['DEVELOPMENT', 'LIVE'] }, connection: { type: 'object' }, clientCertificatePem: str, clientIp: { type: 'string', description: 'an IPv4 or IPv6 address, no port (400 otherwise)' }, revocationStatus: { type: 'object' }, ocspStatus: { type: 'object', description: 'with clientCertificatePem, instead of revocationStatus: a synthetic OCSP result per certificate (default Good for all; intermediates default to the leaf\'s)', properties: { leaf: { type: 'string', enum: ['Good', 'Revoked', 'Unknown', 'Error'] }, intermediates: { type: 'string', enum: ['Good', 'Revoked', 'Unknown', 'Error'] } } } } },
        FunctionTestResult: { type: 'object', properties: { decision: { type: 'string', enum: ['allow', 'deny'] }, implicit: { type: 'boolean' }, customData: { type: 'string', nullable: true }, logs: { type: 'array', items: str }, computeUtilization: { type: 'number' }, error: { type: 'string', nullable: true } } },
        FunctionMatrix: { type: 'object', additionalProperties: false, properties: { stage: { type: 'string', enum: ['DEVELOPMENT', 'LIVE'] }, clientCertificatePem: { type: 'string', description: 'the chain every row presents (default: the built-in sample chain)' }, clientIps: { type: 'array', items: str, maxItems: 16, description: 'IPv4 or IPv6 addresses, no port (400 naming the entry otherwise); default 10.0.3.7, 192.0.2.10, 198.51.100.7, 8.8.8.8' } } },
        FunctionMatrixResult: { type: 'object', properties: { name: str, stage: str, etag: str, revokedAllowed: { type: 'integer', description: 'rows that admit a revoked certificate' }, rows: { type: 'array', items: { type: 'object', properties: { leafStatus: str, intermediateStatus: str, kvs: { type: 'string', enum: ['hit', 'miss'] }, clientIp: str, decision: { type: 'string', enum: ['allow', 'deny'] }, implicit: { type: 'boolean' }, customData: str, error: str, revokedAllowed: { type: 'boolean' } } } } } },
        InspectedCertificate: { type: 'object', properties: { Index: { type: 'integer' }, SerialNumber: { type: 'string', description: 'lowercase colon hex, as connection.clientCertificate.certificates.leaf.serialNumber' }, KvsKey: { type: 'string', description: 'the revocation-list key: colon-less lowercase hex' }, Subject: str, Issuer: str, NotBefore: str, NotAfter: str, KeyType: str, IsCA: { type: 'boolean' }, Sha256Fingerprint: str, EncodingProblem: str } },
        Stats: { type: 'object', properties: { sampledAt: str, windowSeconds: { type: 'integer' }, connections: { type: 'object', properties: { allowed: { type: 'integer' }, denied: { type: 'integer' }, byStatus: { type: 'object', additionalProperties: { type: 'integer' } } } }, ocspCache: { type: 'object', properties: { hits: { type: 'integer' }, misses: { type: 'integer' }, hitRate: { type: 'number', nullable: true } } }, totals: { type: 'object' }, appliedChangeSequence: { type: 'integer', nullable: true, description: 'change-feed sequence the data path has applied (cluster: the lowest among workers)' } } },
        Distribution: { type: 'object', properties: { Id: str, Name: str, ETag: str, CreatedTime: str, LastModifiedTime: str, DistributionConfig: { type: 'object' } } },
        Node: { type: 'object', properties: { Name: str, Status: { type: 'string', enum: ['ok', 'starting', 'degraded', 'stale'] }, Reasons: { type: 'array', items: str }, LastHeartbeat: str, HeartbeatAgeMs: { type: 'integer' }, AppliedSequence: { type: 'integer' }, InSync: { type: 'boolean' }, Stale: { type: 'boolean' }, StartedTime: str, Version: str, Host: str, Pid: { type: 'integer' }, AdminAddress: { type: 'string', nullable: true }, Listeners: { type: 'array', items: { type: 'object', properties: { distribution: str, address: str, port: { type: 'integer' } } } } } },
        OcspCacheEntry: { type: 'object', properties: { key: str, responderUrl: str, serialNumber: str, issuerNameHash: str, issuerKeyHash: str, state: { type: 'string', enum: ['good', 'revoked', 'unknown', 'failure'] }, errorType: str, errorDetail: str, thisUpdate: str, nextUpdate: str, fetchedAt: str, expiresAt: str, hits: { type: 'integer' }, lastRefreshError: str, refreshing: { type: 'boolean' }, worker: { type: 'integer' } } },
      },
    },
  };
}
