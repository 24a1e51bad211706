/**
 * A raw TLS connection (with a client certificate) that writes exactly the bytes a
 * test gives it and records every byte that comes back: for HTTP/1.1 attacks no
 * well-behaved client would send (request smuggling, slow headers, oversized heads).
 */
import { readFileSync } from 'node:fs';
import * as tls from 'node:tls';
import type { CertPair } from './pki.js';

export interface RawConnection {
  /** Everything received so far, as latin1 text. */
  readonly received: () => string;
  /** True once the server closed the connection (or it failed). */
  readonly closed: () => boolean;
  /** The protocol ALPN settled on (false: none). */
  readonly alpn: () => string | false;
  write(bytes: string | Buffer): void;
  destroy(): void;
}

export interface RawOptions {
  readonly ca: string;
  readonly client: CertPair;
  /** ALPN offered; default ['http/1.1']; [] offers none. */
  readonly alpn?: readonly string[];
}

/** Connects to 127.0.0.1:`port` and resolves once the handshake is done. */
export function rawTls(port: number, options: RawOptions): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const alpn = options.alpn ?? ['http/1.1'];
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: readFileSync(options.ca),
      cert: readFileSync(options.client.cert),
      key: readFileSync(options.client.key),
      ...(alpn.length === 0 ? {} : { ALPNProtocols: [...alpn] }),
    });
    const chunks: Buffer[] = [];
    let closed = false;
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('close', () => {
      closed = true;
    });
    socket.once('error', (error) => {
      closed = true;
      reject(error);
    });
    socket.once('secureConnect', () =>
      resolve({
        received: () => Buffer.concat(chunks).toString('latin1'),
        closed: () => closed,
        alpn: () => socket.alpnProtocol ?? false,
        write: (bytes) => socket.write(bytes),
        destroy: () => socket.destroy(),
      }),
    );
  });
}

/** The status codes of every HTTP/1.1 response head in `text`, in order. */
export function statuses(text: string): number[] {
  return [...text.matchAll(/HTTP\/1\.1 (\d{3}) /gu)].map((match) => Number(match[1]));
}
