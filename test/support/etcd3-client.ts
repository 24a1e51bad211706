/**
 * An `etcd3` npm client (the library Node services use) authenticated by one of the
 * test PKI's client certificates, for scenarios that go through etcdgate or etcd.
 */
import { Etcd3 } from 'etcd3';
import type { IOptions } from 'etcd3';
import { readFileSync } from 'node:fs';
import type { Pki } from './pki.js';

/**
 * Builds a client for `endpoint` (https://127.0.0.1:PORT) presenting client-NAME.crt and
 * trusting pki.ca. `extra` overrides options (e.g. faultHandling to disable retries).
 * The caller must close() it.
 */
export function etcd3Client(endpoint: string, pki: Pki, name: string, extra: Partial<IOptions> = {}): Etcd3 {
  const pair = pki.client(name);
  return new Etcd3({
    hosts: endpoint,
    credentials: {
      rootCertificate: readFileSync(pki.ca),
      certChain: readFileSync(pair.cert),
      privateKey: readFileSync(pair.key),
    },
    // SNI with an IP is deprecated in Node; every test server certificate also names localhost.
    grpcOptions: { 'grpc.ssl_target_name_override': 'localhost' },
    ...extra,
  });
}
