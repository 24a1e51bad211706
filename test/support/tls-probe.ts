/**
 * A bare TLS connection to etcdgate's client port, for certificate-lifecycle tests:
 * which certificate the server presented, which TLS version was negotiated, and whether
 * the connection was served (etcdgate's gRPC server speaks first, with its HTTP/2
 * SETTINGS frame, only on a connection it accepted) or closed unserved.
 */
import { readFileSync } from 'node:fs';
import * as tls from 'node:tls';
import type { CertPair, Pki } from './pki.js';

export interface ProbeResult {
  /** Whether the server sent application data (its HTTP/2 preface) before closing. */
  readonly served: boolean;
  /** The client's local port: the `source.port` of the refusal's audit record. */
  readonly localPort: number;
  /** Negotiated protocol ("TLSv1.3"), or "" when the handshake failed on the client side. */
  readonly protocol: string;
  /** Serial of the server certificate, upper-case hex, or "" when none was seen. */
  readonly serverSerial: string;
}

export interface ProbeOptions {
  readonly minVersion?: tls.SecureVersion;
  readonly maxVersion?: tls.SecureVersion;
  /** How long to wait for the server to speak (ms); default 3000. */
  readonly waitMs?: number;
  /** Local address to connect from (127.0.0.2, 127.0.0.3: a source inside or outside a rule). */
  readonly localAddress?: string;
}

/** Connects with `pair` (or no client certificate), waits for the server's first bytes or the close, and hangs up. */
export function probeTls(port: number, pki: Pki, pair: CertPair | undefined, options: ProbeOptions = {}): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let protocol = '';
    let serverSerial = '';
    let localPort = 0;
    let settled = false;
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: readFileSync(pki.ca),
      ALPNProtocols: ['h2'],
      ...(pair === undefined ? {} : { cert: readFileSync(pair.cert), key: readFileSync(pair.key) }),
      ...(options.minVersion === undefined ? {} : { minVersion: options.minVersion }),
      ...(options.maxVersion === undefined ? {} : { maxVersion: options.maxVersion }),
      ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
    });
    const done = (served: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ served, localPort, protocol, serverSerial });
    };
    const timer = setTimeout(() => done(false), options.waitMs ?? 3000);
    socket.on('connect', () => {
      localPort = socket.localPort ?? 0;
    });
    socket.on('secureConnect', () => {
      protocol = socket.getProtocol() ?? '';
      serverSerial = socket.getPeerCertificate(false).serialNumber ?? '';
      // The HTTP/2 client preface; etcdgate answers with SETTINGS only if it serves this connection.
      socket.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
    });
    socket.on('data', () => done(true));
    socket.on('error', () => done(false));
    socket.on('close', () => done(false));
  });
}
