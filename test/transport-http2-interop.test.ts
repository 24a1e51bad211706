/**
 * etcdgate's HTTP/2 server and gRPC calls (src/transport) against an independent
 * client: Node's own node:http2 (nghttp2 underneath), over mTLS, with a small gRPC echo
 * service built on GrpcServerCall. What a gRPC client relies on: framing, trailers and
 * trailers-only answers, grpc-timeout, compressed requests, limits, flow control with
 * messages larger than every window, many streams at once, and the peer going away.
 */
import { readFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Budget } from '../src/transport/budget.js';
import { GrpcServerCall, type ServerCallHandler } from '../src/transport/grpc/server-call.js';
import { DEFAULT_CONNECTION_OPTIONS } from '../src/transport/http2/connection.js';
import { Http2Server } from '../src/transport/http2/server.js';
import { makePki, type Pki } from './support/pki.js';

let pki: Pki;
let server: tls.Server;
let h2: Http2Server;
let port = 0;
/** Room for two of the 3 MiB messages at once: the other two wait their turn, none is cut off. */
const budget = new Budget(8 * 1024 * 1024, 64 * 1024 * 1024);

const LIMITS = { maxRecvBytes: 4 * 1024 * 1024, maxSendBytes: -1, readTimeoutMs: 10_000, maxInflateRatio: 100, smallMessageBytes: 64 * 1024 };

/** Echo: answers each message with itself; '/test/Fail' answers with a status; '/test/Stream' echoes every message. */
function serve(call: GrpcServerCall): void {
  const messages: Buffer[] = [];
  const handler: ServerCallHandler = {
    onMessage: (_call, message) => {
      if (call.path === '/test/Stream') call.sendMessage(Buffer.from(message));
      else messages.push(Buffer.from(message));
    },
    onHalfClose: () => {
      if (call.path === '/test/Fail') {
        call.end({ code: 7, details: 'denied: é %' });
        return;
      }
      if (call.path === '/test/Slow') return; // never answers: the deadline does
      if (call.path === '/test/Many') {
        // As many numbered answers as the request asks for, queued at once whatever the window.
        const count = Number(String(messages[0] ?? '0'));
        for (let i = 0; i < count; i++) call.sendMessage(Buffer.from(`n${i}`));
        call.end({ code: 0, details: '' });
        return;
      }
      for (const message of messages) call.sendMessage(message);
      call.end({ code: 0, details: '', metadata: ['x-echo-count', String(messages.length)] });
    },
    onCancel: () => undefined,
    onDrain: () => undefined,
  };
  call.attach(handler, call.path === '/test/Stream');
}

beforeAll(async () => {
  pki = await makePki();
  h2 = new Http2Server(
    { connection: { ...DEFAULT_CONNECTION_OPTIONS, streamWindow: 64 * 1024 }, idleTimeoutMs: 0 },
    { onStream: (_connection, stream, fields) => serve(new GrpcServerCall(stream, fields, LIMITS, budget)) },
  );
  server = tls.createServer(
    { cert: readFileSync(pki.gateServer.cert), key: readFileSync(pki.gateServer.key), ca: readFileSync(pki.ca), requestCert: true, rejectUnauthorized: true, ALPNProtocols: ['h2'] },
    (socket) => h2.accept(socket),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  h2.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await pki.remove();
});

function session(settings: http2.Settings = {}): http2.ClientHttp2Session {
  const root = pki.client('root');
  return http2.connect(`https://localhost:${port}`, { ca: readFileSync(pki.ca), cert: readFileSync(root.cert), key: readFileSync(root.key), settings });
}

function frame(message: Buffer, compressed = false): Buffer {
  const out = Buffer.alloc(5 + message.length);
  out[0] = compressed ? 1 : 0;
  out.writeUInt32BE(message.length, 1);
  message.copy(out, 5);
  return out;
}

function unframe(body: Buffer): Buffer[] {
  const messages: Buffer[] = [];
  for (let at = 0; at < body.length; ) {
    const length = body.readUInt32BE(at + 1);
    messages.push(body.subarray(at + 5, at + 5 + length));
    at += 5 + length;
  }
  return messages;
}

interface Answer {
  readonly headers: http2.IncomingHttpHeaders;
  readonly trailers: http2.IncomingHttpHeaders;
  readonly messages: Buffer[];
}

function request(client: http2.ClientHttp2Session, path: string, body: Buffer, extra: http2.OutgoingHttpHeaders = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const stream = client.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...extra });
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      headers = h;
    });
    stream.on('trailers', (t) => {
      trailers = t;
    });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve({ headers, trailers, messages: unframe(Buffer.concat(chunks)) }));
    stream.on('error', reject);
    stream.end(body);
  });
}

describe('etcdgate HTTP/2 server with a node:http2 client', () => {
  it('answers a unary call: headers, one message, then trailers with grpc-status and metadata', async () => {
    const client = session();
    try {
      const answer = await request(client, '/test/Echo', frame(Buffer.from('hello')));
      expect(answer.headers[':status']).toBe(200);
      expect(answer.headers['content-type']).toBe('application/grpc+proto');
      expect(answer.messages.map(String)).toEqual(['hello']);
      expect(answer.trailers['grpc-status']).toBe('0');
      expect(answer.trailers['x-echo-count']).toBe('1');
    } finally {
      client.close();
    }
  });

  it('a status with nothing sent is a trailers-only answer, grpc-message percent-encoded', async () => {
    const client = session();
    try {
      const answer = await request(client, '/test/Fail', frame(Buffer.from('x')));
      expect(answer.messages).toEqual([]);
      expect(answer.headers['grpc-status']).toBe('7');
      expect(answer.headers['grpc-message']).toBe('denied: %C3%A9 %25');
    } finally {
      client.close();
    }
  });

  it('carries messages larger than every flow-control window, both ways, many streams at once', async () => {
    const client = session();
    try {
      const big = Buffer.alloc(3 * 1024 * 1024, 7);
      big.writeUInt32BE(0xdeadbeef, big.length - 4);
      const answers = await Promise.all(Array.from({ length: 4 }, () => request(client, '/test/Echo', frame(big))));
      for (const answer of answers) {
        expect(answer.messages.length).toBe(1);
        expect(answer.messages[0]?.equals(big)).toBe(true);
      }
      const small = await Promise.all(Array.from({ length: 200 }, (_v, i) => request(client, '/test/Echo', frame(Buffer.from(`m${i}`)))));
      expect(small.map((a) => String(a.messages[0]))).toEqual(Array.from({ length: 200 }, (_v, i) => `m${i}`));
    } finally {
      client.close();
    }
  });

  it('inflates a gzip request, and refuses one that inflates past the ratio', async () => {
    const client = session();
    try {
      const text = Buffer.from('etcdgate '.repeat(100));
      const ok = await request(client, '/test/Echo', frame(gzipSync(text), true), { 'grpc-encoding': 'gzip' });
      expect(ok.messages[0]?.equals(text)).toBe(true);
      const bomb = gzipSync(Buffer.alloc(3 * 1024 * 1024));
      const refused = await request(client, '/test/Echo', frame(bomb, true), { 'grpc-encoding': 'gzip' });
      expect(refused.headers['grpc-status']).toBe('8');
      expect(String(refused.headers['grpc-message'])).toContain('decompresses more than 100 times');
    } finally {
      client.close();
    }
  });

  it('refuses a message above maxRecvBytes from its prefix', async () => {
    const client = session();
    try {
      const prefix = Buffer.alloc(5);
      prefix.writeUInt32BE(LIMITS.maxRecvBytes + 1, 1);
      const answer = await request(client, '/test/Echo', prefix);
      expect(answer.headers['grpc-status']).toBe('8');
      expect(String(answer.headers['grpc-message'])).toContain('server.maxRecvBytes');
    } finally {
      client.close();
    }
  });

  it('ends a call at its grpc-timeout with DEADLINE_EXCEEDED', async () => {
    const client = session();
    try {
      const answer = await request(client, '/test/Slow', frame(Buffer.from('x')), { 'grpc-timeout': '200m' });
      expect(answer.headers['grpc-status']).toBe('4');
    } finally {
      client.close();
    }
  });

  it('a queue of 40,000 small answers behind a 1 KiB window leaves whole and in order', async () => {
    // Sent buffers leave the queue's front by an index, cut off in batches; partial DATA
    // frames split buffers. Every byte must still go out once, in order.
    const client = session({ initialWindowSize: 1024 });
    try {
      const count = 40_000;
      const answer = await request(client, '/test/Many', frame(Buffer.from(String(count))));
      expect(answer.trailers['grpc-status']).toBe('0');
      expect(answer.messages.length).toBe(count);
      const wrong = answer.messages.findIndex((message, i) => String(message) !== `n${i}`);
      expect(wrong).toBe(-1);
    } finally {
      client.close();
    }
  });

  it('streams: every message echoed in order', async () => {
    const client = session();
    try {
      const stream = client.request({ ':method': 'POST', ':path': '/test/Stream', 'content-type': 'application/grpc', te: 'trailers' });
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      for (let i = 0; i < 100; i++) stream.write(frame(Buffer.from(`s${i}`)));
      await expect.poll(() => unframe(Buffer.concat(chunks)).length).toBe(100);
      expect(unframe(Buffer.concat(chunks)).map(String)).toEqual(Array.from({ length: 100 }, (_v, i) => `s${i}`));
      stream.close();
    } finally {
      client.close();
    }
  });
});
