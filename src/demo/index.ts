/**
 * demo/: a throwaway PKI with real `openssl ocsp` responders, for the quickstart
 * (`portcullis ocsp check --demo`) and integration tests. Entry file.
 */
export { OpensslDemoPki, freePort } from './openssl-pki.js';
export type { DemoCertificate, DemoResponder, OpensslDemoPkiOptions } from './openssl-pki.js';
