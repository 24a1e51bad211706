/**
 * The client-facing TLS settings of the benchmark's reference servers
 * (http2-passthrough-main.ts, http2-canned-main.ts): etcdgate's own server certificate,
 * and a client certificate from the configured CA required, as etcdgate requires it.
 */
import { readFileSync } from 'node:fs';
import type { SecureServerOptions } from 'node:http2';

export interface ServerTls {
  readonly cert: string;
  readonly key: string;
  readonly clientCA: string;
}

/** Options for http2.createSecureServer from the `server.tls` section of etcdgate's config. */
export function mtlsServerOptions(tls: ServerTls, extra: SecureServerOptions = {}): SecureServerOptions {
  return { cert: readFileSync(tls.cert), key: readFileSync(tls.key), ca: readFileSync(tls.clientCA), requestCert: true, rejectUnauthorized: true, ...extra };
}
