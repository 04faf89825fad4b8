/**
 * Stored documents of the two resources that belong to no other domain: trust stores
 * and distributions (SPEC section 1). These shapes are what `Store.trustStores` and
 * `Store.distributions` hold as `ResourceRecord.document`, what the change feed carries,
 * and what the edge reads from its replica. Paths are absolute (the config loader and
 * the admin API resolve them before writing).
 */

/** SPEC section 1 TrustStore status. */
export type TrustStoreStatus = 'pending' | 'active' | 'failed';

/** The stored document of a trust store (SPEC sections 1 and 2). */
export interface TrustStoreDocument {
  /** The CA bundle as given (PEM, `#` comment lines allowed). */
  caBundlePem: string;
  /** When true, client certificates are checked over OCSP at the responder in their AIA (SPEC section 3). */
  useClientCertificateOcspEndpoint: boolean;
  /** `active` when the bundle parsed and passed every rule; `failed` with `statusReason` otherwise. */
  status: TrustStoreStatus;
  /** Why the status is `failed` (names the offending block and line); absent otherwise. */
  statusReason?: string;
  /** Distinct certificates in the bundle (0 when failed). */
  certificateCount: number;
  comment?: string;
}

/** Viewer mTLS modes (SPEC section 2). */
export type ViewerMtlsMode = 'required' | 'optional' | 'passthrough';

/** A server certificate of a distribution: PEM files on the node, reloaded when they change. */
export interface DistributionCertificateFiles {
  /** Absolute path of the PEM certificate (chain allowed: leaf first). */
  certFile: string;
  /** Absolute path of the PEM private key (RSA or ECDSA). */
  keyFile: string;
}

/** Origin of a distribution (SPEC section 6). */
export interface DistributionOrigin {
  /** `http://host:port[/base]` or `https://…`. */
  url: string;
  /** TCP+TLS connect timeout to the origin, ms. Default 5000. */
  connectTimeoutMs: number;
  /** Time to the response headers from the origin, ms (504 after it). Default 30000. */
  responseTimeoutMs: number;
  /** For https origins: verify the origin's certificate (default true). */
  verifyTls: boolean;
  /** For https origins: extra CA bundle file (absolute path) trusted for the origin. */
  caFile?: string;
}

/** Viewer mTLS settings of a distribution (SPEC section 2; CloudFront `ViewerMtlsConfig`). */
export interface DistributionViewerMtls {
  mode: ViewerMtlsMode;
  /** Trust store name; required unless mode is `passthrough`. */
  trustStore?: string;
  ignoreCertificateExpiry: boolean;
  advertiseTrustStoreCaNames: boolean;
  /**
   * TLS session resumption (tickets and session cache). Off by default: a resumed session
   * would skip validation; when on, every resumed connection runs the whole gate again.
   */
  sessionResumption: boolean;
}

/** Abuse limits of a distribution's listener; all have safe defaults. */
export interface DistributionLimits {
  /** TCP accept → TLS handshake done, ms. Default 10000. */
  handshakeTimeoutMs: number;
  /** Concurrent connections on this distribution's listener. Default 10000. */
  maxConnections: number;
  /** Largest HTTP/1.1 request head (and HTTP/2 header list), bytes. Default 16384. */
  maxHeaderBytes: number;
  /** An idle admitted connection is closed after this long, ms. Default 60000. */
  idleTimeoutMs: number;
}

/** The stored document of a distribution (SPEC section 1). */
export interface DistributionDocument {
  /** `host:port` the listener binds (IPv6 as `[::1]:8443`). Several distributions may share one; SNI chooses. */
  listen: string;
  /** SNI host names (lowercase; `*.example.com` wildcards allowed). */
  aliases: string[];
  /** Server certificates (one per key type, e.g. RSA and ECDSA); at least one. */
  certificates: DistributionCertificateFiles[];
  origin: DistributionOrigin;
  viewerMtls: DistributionViewerMtls;
  /**
   * The associated connection function (functions/ `DISTRIBUTION_FUNCTION_FIELD`); its
   * LIVE stage runs. Null when none.
   */
  connectionFunctionAssociation: { name: string; id?: string } | null;
  /**
   * Which `CloudFront-Viewer-Cert-*` headers go to the origin (pki/ `VIEWER_CERT_HEADER_NAMES`,
   * canonical case). Default: all of them.
   */
  forwardCertificateHeaders: string[];
  limits: DistributionLimits;
  comment?: string;
}
