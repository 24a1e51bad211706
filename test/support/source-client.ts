/**
 * Clients that connect from a chosen loopback address (127.0.0.2, 127.0.0.3 are the
 * test's "other hosts"), for source-address rules: one gRPC unary call over node:http2
 * with a client certificate, and bare TCP probes (nothing sent, or non-TLS bytes) like a
 * port scanner or a load balancer's health check.
 */
import { readFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { decode, encode } from './etcd-messages.js';
import type { Pki } from './pki.js';

/** What a unary call got back. */
export interface SourceCallResult {
  readonly grpcStatus: number | undefined;
  readonly grpcMessage: string;
  /** The client's local port (source.port in records). */
  readonly localPort: number;
  readonly response?: Record<string, unknown>;
  /** The connection failed before any answer (refused at the handshake or before). */
  readonly connectionError?: string;
}

/**
 * One etcd unary call from `localAddress` to `port` on 127.0.0.1 presenting client-NAME,
 * e.g. callFrom(port, pki, 'tenant-a', '127.0.0.2', 'KV', 'Put', ['PutRequest', {...}], 'PutResponse').
 */
export function callFrom(
  port: number,
  pki: Pki,
  name: string,
  localAddress: string,
  service: string,
  method: string,
  request: [type: string, value: Record<string, unknown>],
  responseType: string,
  preface?: Buffer,
): Promise<SourceCallResult> {
  const pair = pki.client(name);
  let localPort = 0;
  return new Promise((resolve) => {
    const connectTls = (socket?: net.Socket): tls.TLSSocket =>
      tls.connect({
        ...(socket === undefined ? { host: '127.0.0.1', port, localAddress } : { socket }),
        servername: 'localhost',
        ca: readFileSync(pki.ca),
        cert: readFileSync(pair.cert),
        key: readFileSync(pair.key),
        ALPNProtocols: ['h2'],
      });
    const session = http2.connect(`https://localhost:${port}`, {
      createConnection: () => {
        if (preface === undefined) {
          const socket = connectTls();
          socket.once('connect', () => (localPort = socket.localPort ?? 0));
          return socket;
        }
        // A PROXY protocol header first, then TLS on the same TCP connection.
        const raw = net.connect({ host: '127.0.0.1', port, localAddress });
        raw.once('connect', () => (localPort = raw.localPort ?? 0));
        raw.write(preface);
        return connectTls(raw);
      },
    });
    let settled = false;
    const finish = (result: Omit<SourceCallResult, 'localPort'>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.destroy();
      resolve({ ...result, localPort });
    };
    const timer = setTimeout(() => finish({ grpcStatus: undefined, grpcMessage: '', connectionError: 'timeout' }), 10_000);
    session.on('error', (error: Error) => finish({ grpcStatus: undefined, grpcMessage: '', connectionError: error.message }));
    session.on('close', () => finish({ grpcStatus: undefined, grpcMessage: '', connectionError: 'closed' }));
    const stream = session.request({ ':method': 'POST', ':path': `/etcdserverpb.${service}/${method}`, 'content-type': 'application/grpc', te: 'trailers' });
    const chunks: Buffer[] = [];
    let grpcStatus: number | undefined;
    let grpcMessage = '';
    const take = (headers: http2.IncomingHttpHeaders): void => {
      if (headers['grpc-status'] !== undefined) grpcStatus = Number(headers['grpc-status']);
      if (typeof headers['grpc-message'] === 'string') grpcMessage = decodeURIComponent(headers['grpc-message']);
    };
    stream.on('response', take);
    stream.on('trailers', take);
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('error', () => undefined);
    stream.on('close', () => {
      const body = Buffer.concat(chunks);
      const response = body.length >= 5 && grpcStatus === 0 ? decode(`etcdserverpb.${responseType}`, body.subarray(5)) : undefined;
      if (grpcStatus === undefined) finish({ grpcStatus, grpcMessage, connectionError: 'no answer' });
      else finish({ grpcStatus, grpcMessage, ...(response === undefined ? {} : { response }) });
    });
    const message = encode(`etcdserverpb.${request[0]}`, request[1]);
    const head = Buffer.alloc(5);
    head.writeUInt32BE(message.length, 1);
    stream.end(Buffer.concat([head, message]));
  });
}

/**
 * A TCP connection from `localAddress` that sends `bytes` (nothing when empty) and waits
 * until the server closes it (or `waitMs`, then hangs up itself). Resolves with the local
 * port and whether the server closed first.
 */
export function tcpProbe(port: number, localAddress: string, bytes: Buffer, options: { waitMs?: number; hangUp?: boolean } = {}): Promise<{ localPort: number; closedByServer: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress });
    let localPort = 0;
    let settled = false;
    const done = (closedByServer: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ localPort, closedByServer });
    };
    const timer = setTimeout(() => done(false), options.waitMs ?? 5_000);
    socket.on('connect', () => {
      localPort = socket.localPort ?? 0;
      if (bytes.length > 0) socket.write(bytes);
      if (options.hangUp === true) done(false);
    });
    socket.on('data', () => undefined);
    socket.on('error', () => done(true));
    socket.on('close', () => done(true));
  });
}
