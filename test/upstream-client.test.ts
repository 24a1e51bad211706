/**
 * The upstream client (src/upstream/pool.ts Endpoint, src/transport/grpc/client-call.ts,
 * src/transport/http2/client.ts) on its own: against a real etcd for answers, errors and
 * the response size limit, and against a scripted HTTP/2 server (Node's own, an
 * independent implementation) for what etcd will not do on demand (never answer, refuse
 * a stream, reset, go away, stop answering pings). Each failure must come back as the
 * status a gRPC client would see, and say whether etcd can have seen the request (only
 * then may a write not be repeated).
 */
import { readFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UpstreamConfig } from '../src/config/types.js';
import { DEFAULT_HEALTH_CHECK, DEFAULT_VERSION_CHECK } from '../src/config/upstream-health-section.js';
import type { CallOutcome } from '../src/transport/grpc/client-call.js';
import { Code } from '../src/transport/grpc/status.js';
import { Endpoint, readUpstreamMaterial } from '../src/upstream/pool.js';
import { decode, encode } from './support/etcd-messages.js';
import { startEtcd, type EtcdCluster } from './support/etcd.js';
import { makePki, type Pki } from './support/pki.js';

const RANGE = '/etcdserverpb.KV/Range';
const PUT = '/etcdserverpb.KV/Put';

let pki: Pki;
let etcd: EtcdCluster;
const opened: Endpoint[] = [];

beforeAll(async () => {
  pki = await makePki();
  etcd = await startEtcd(pki);
}, 60_000);

afterAll(async () => {
  for (const endpoint of opened) endpoint.close();
  await etcd.stop();
  await pki.remove();
});

interface Options {
  readonly cert?: string;
  readonly key?: string;
  readonly keepaliveTimeMs?: number;
  readonly keepaliveTimeoutMs?: number;
}

function connect(url: string, options: Options = {}): Endpoint {
  const config: UpstreamConfig = {
    endpoints: [url],
    tls: { ca: pki.ca, cert: options.cert ?? pki.upstreamClient.cert, key: options.key ?? pki.upstreamClient.key },
    keepaliveTimeMs: options.keepaliveTimeMs ?? 30_000,
    keepaliveTimeoutMs: options.keepaliveTimeoutMs ?? 10_000,
    dialTimeoutMs: 2_000,
    maxRecvBytes: -1,
    healthCheck: DEFAULT_HEALTH_CHECK,
    versionCheck: DEFAULT_VERSION_CHECK,
  };
  const endpoint = new Endpoint(url, config, readUpstreamMaterial(config), () => undefined);
  opened.push(endpoint);
  return endpoint;
}

interface Reply {
  readonly response: Buffer;
  readonly headers: string[];
  readonly trailers: readonly string[] | undefined;
}

interface CallOptions {
  readonly deadline?: number;
  readonly metadata?: string[];
  readonly maxRecvBytes?: number;
  readonly onStart?: (cancel: () => void) => void;
}

/** One unary call on `endpoint`: etcd's answer, or a rejection with the call's outcome. */
function call(endpoint: Endpoint, path: string, request: Buffer, options: CallOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    let response: Buffer | undefined;
    let headers: string[] = [];
    const started = endpoint.call(
      path,
      { deadline: options.deadline, metadata: options.metadata, maxRecvBytes: options.maxRecvBytes ?? -1 },
      {
        onHeaders: (_call, metadata) => {
          headers = metadata;
        },
        onMessage: (_call, message) => {
          response = Buffer.from(message);
        },
        onEnd: (_call, outcome) => {
          if (outcome.code === 0 && response !== undefined) resolve({ response, headers, trailers: outcome.metadata });
          else reject(outcome);
        },
      },
    );
    if (started === undefined) {
      reject({ code: Code.UNAVAILABLE, details: 'no connection', notSent: true } satisfies CallOutcome);
      return;
    }
    options.onStart?.(() => started.cancel());
    started.sendMessage(request, true);
  });
}

/** The outcome a call rejected with (fails the test if it succeeded). */
async function failureOf(pending: Promise<Reply>): Promise<CallOutcome> {
  return pending.then(
    () => expect.fail('the call was expected to fail'),
    (error: CallOutcome) => error,
  );
}

function etcdUrl(): string {
  const url = etcd.endpoints[0];
  if (url === undefined) throw new Error('no etcd endpoint');
  return url;
}

describe('against a real etcd', () => {
  it("returns etcd's response bytes for a write and a read", async () => {
    const connection = connect(etcdUrl());
    const put = await call(connection, PUT, encode('etcdserverpb.PutRequest', { key: Buffer.from('/uc/a'), value: Buffer.from('one') }));
    const putHeader = decode('etcdserverpb.PutResponse', put.response)['header'] as { revision: string };
    const range = await call(connection, RANGE, encode('etcdserverpb.RangeRequest', { key: Buffer.from('/uc/a') }));
    const decoded = decode('etcdserverpb.RangeResponse', range.response) as { kvs: { key: Buffer; value: Buffer }[]; header: { revision: string } };
    expect(decoded.kvs.map((kv) => kv.value.toString())).toEqual(['one']);
    expect(decoded.header.revision).toBe(putHeader.revision);
    // etcd's trailers hold only grpc-status and grpc-message: nothing to relay.
    expect(range.trailers).toBeUndefined();
  });

  it("keeps etcd's own error code and message", async () => {
    const connection = connect(etcdUrl());
    const failure = await failureOf(call(connection, RANGE, encode('etcdserverpb.RangeRequest', { key: Buffer.from('/uc/a'), revision: 1_000_000 })));
    expect(failure.code).toBe(Code.OUT_OF_RANGE);
    expect(failure.details).toBe('etcdserver: mvcc: required revision is a future revision');
    expect(failure.notSent).toBe(false);
  });

  it('refuses a response larger than maxRecvBytes, and takes it without a limit', async () => {
    const big = Buffer.alloc(64 * 1024, 'x');
    await call(connect(etcdUrl()), PUT, encode('etcdserverpb.PutRequest', { key: Buffer.from('/uc/big'), value: big }));
    const request = encode('etcdserverpb.RangeRequest', { key: Buffer.from('/uc/big') });
    const failure = await failureOf(call(connect(etcdUrl()), RANGE, request, { maxRecvBytes: 1024 }));
    expect(failure.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(failure.details).toContain('upstream.maxRecvBytes');
    const whole = await call(connect(etcdUrl()), RANGE, request);
    const decoded = decode('etcdserverpb.RangeResponse', whole.response) as { kvs: { value: Buffer }[] };
    expect(decoded.kvs[0]?.value.equals(big)).toBe(true);
  });

  it('a client certificate etcd does not trust is UNAVAILABLE and marked not sent', async () => {
    const rogue = pki.client('rogue');
    const connection = connect(etcdUrl(), { cert: rogue.cert, key: rogue.key });
    const failure = await failureOf(call(connection, PUT, encode('etcdserverpb.PutRequest', { key: Buffer.from('/uc/rogue'), value: Buffer.from('v') })));
    expect(failure.code).toBe(Code.UNAVAILABLE);
    expect(failure.notSent).toBe(true);
  });

  it('a closed port is UNAVAILABLE and marked not sent', async () => {
    const port = await closedPort();
    const failure = await failureOf(call(connect(`https://127.0.0.1:${port}`), RANGE, encode('etcdserverpb.RangeRequest', { key: Buffer.from('/uc/a') })));
    expect(failure.code).toBe(Code.UNAVAILABLE);
    expect(failure.notSent).toBe(true);
  });
});

/** How the scripted server treats each stream. */
type Script = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void;

/** A TLS HTTP/2 server with etcd's certificate that runs `script` on every stream. */
async function scriptedServer(script: Script): Promise<{ url: string; sessionsOpened(): number; close(): Promise<void> }> {
  const server = http2.createSecureServer({ cert: readFileSync(pki.etcdServer.cert), key: readFileSync(pki.etcdServer.key) });
  const sessions = new Set<http2.ServerHttp2Session>();
  let opened = 0;
  server.on('session', (session) => {
    opened += 1;
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
  });
  server.on('stream', (stream, headers) => {
    // Resetting a stream on purpose makes it emit 'error' on this side too.
    stream.on('error', () => undefined);
    script(stream, headers);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    sessionsOpened: () => opened,
    close: () =>
      new Promise((resolve) => {
        for (const session of sessions) session.destroy();
        server.close(() => resolve());
      }),
  };
}

async function closedPort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/**
 * A peer that completes the TLS and HTTP/2 handshakes (its SETTINGS, and the ACK of the
 * client's) and then never answers anything: no stream, no PING acknowledgement. Node's
 * own HTTP/2 server always answers pings, so this one speaks just enough HTTP/2 by hand.
 */
async function silentPeer(): Promise<{ url: string; connections(): number; pings(): number; close(): Promise<void> }> {
  const PREFACE_BYTES = 24;
  const SETTINGS = Buffer.from([0, 0, 0, 0x04, 0x00, 0, 0, 0, 0]);
  const SETTINGS_ACK = Buffer.from([0, 0, 0, 0x04, 0x01, 0, 0, 0, 0]);
  const PING = 0x06;
  let connections = 0;
  let pings = 0;
  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer({ cert: readFileSync(pki.etcdServer.cert), key: readFileSync(pki.etcdServer.key), ALPNProtocols: ['h2'] }, (socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    socket.write(Buffer.concat([SETTINGS, SETTINGS_ACK]));
    // Count the PING frames (not acknowledgements) behind the client's preface.
    let pending = Buffer.alloc(0);
    let prefaceSeen = false;
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      if (!prefaceSeen) {
        if (pending.length < PREFACE_BYTES) return;
        pending = pending.subarray(PREFACE_BYTES);
        prefaceSeen = true;
      }
      while (pending.length >= 9) {
        const length = pending.readUIntBE(0, 3);
        if (pending.length < 9 + length) return;
        if (pending[3] === PING && ((pending[4] ?? 0) & 0x01) === 0) pings += 1;
        pending = pending.subarray(9 + length);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    connections: () => connections,
    pings: () => pings,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('against a scripted HTTP/2 server', () => {
  it('sends a gRPC request: POST, content-type, te, grpc-timeout, user-agent and the forwarded metadata', async () => {
    let seen: http2.IncomingHttpHeaders | undefined;
    let body = Buffer.alloc(0);
    const server = await scriptedServer((stream, headers) => {
      seen = headers;
      stream.on('data', (chunk: Buffer) => {
        body = Buffer.concat([body, chunk]);
      });
      stream.on('end', () => {
        // As etcd behind TLS answers: Go's HTTP server adds `trailer` and CORS headers.
        stream.respond(
          { ':status': 200, 'content-type': 'application/grpc', 'x-from-etcd': 'h', trailer: 'Grpc-Status, Grpc-Message', 'access-control-allow-origin': '*' },
          { waitForTrailers: true },
        );
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'x-trailer': 't' }));
        stream.end(Buffer.from([0, 0, 0, 0, 2, 0x08, 0x01]));
      });
    });
    try {
      const reply = await call(connect(server.url), RANGE, Buffer.from([0x0a, 0x01, 0x61]), { metadata: ['hasleader', 'true'], deadline: Date.now() + 5_000 });
      expect(reply.response).toEqual(Buffer.from([0x08, 0x01]));
      // etcd's HTTP-only headers (trailer, CORS) are not the call's metadata.
      expect(reply.headers).toEqual(['x-from-etcd', 'h']);
      expect(reply.trailers).toEqual(['x-trailer', 't']);
      expect(seen?.[':method']).toBe('POST');
      expect(seen?.[':path']).toBe(RANGE);
      expect(seen?.['content-type']).toBe('application/grpc');
      expect(seen?.['te']).toBe('trailers');
      expect(seen?.['user-agent']).toMatch(/^etcdgate\//u);
      expect(seen?.['hasleader']).toBe('true');
      expect(seen?.['grpc-timeout']).toMatch(/^\d+m$/u);
      // The request went out framed: uncompressed flag, 4-byte length, the bytes themselves.
      expect(body).toEqual(Buffer.from([0, 0, 0, 0, 3, 0x0a, 0x01, 0x61]));
    } finally {
      await server.close();
    }
  });

  it('a server that never answers: DEADLINE_EXCEEDED at the deadline, and the stream is cancelled', async () => {
    let reset: number | undefined;
    const server = await scriptedServer((stream) => {
      stream.on('close', () => {
        reset = stream.rstCode;
      });
    });
    try {
      const failure = await failureOf(call(connect(server.url), PUT, Buffer.alloc(3), { deadline: Date.now() + 300 }));
      expect(failure.code).toBe(Code.DEADLINE_EXCEEDED);
      expect(failure.notSent).toBe(false);
      await expect.poll(() => reset).toBe(http2.constants.NGHTTP2_CANCEL);
    } finally {
      await server.close();
    }
  });

  it('cancelling a call resets its stream and rejects with CANCELLED', async () => {
    let reset: number | undefined;
    let arrive = (): void => undefined;
    const arrived = new Promise<void>((resolve) => {
      arrive = resolve;
    });
    const server = await scriptedServer((stream) => {
      arrive();
      stream.on('close', () => {
        reset = stream.rstCode;
      });
    });
    try {
      let cancel: (() => void) | undefined;
      const pending = call(connect(server.url), RANGE, Buffer.alloc(0), {
        onStart: (fn) => {
          cancel = fn;
        },
      });
      await arrived;
      cancel?.();
      const failure = await failureOf(pending);
      expect(failure.code).toBe(Code.CANCELLED);
      await expect.poll(() => reset).toBe(http2.constants.NGHTTP2_CANCEL);
    } finally {
      await server.close();
    }
  });

  it('a refused stream is UNAVAILABLE and not sent; another reset is INTERNAL and may have been', async () => {
    const server = await scriptedServer((stream, headers) => {
      stream.close(headers['x-test'] === 'refuse' ? http2.constants.NGHTTP2_REFUSED_STREAM : http2.constants.NGHTTP2_INTERNAL_ERROR);
    });
    try {
      const connection = connect(server.url);
      const refused = await failureOf(call(connection, PUT, Buffer.alloc(0), { metadata: ['x-test', 'refuse'] }));
      expect(refused.code).toBe(Code.UNAVAILABLE);
      expect(refused.notSent).toBe(true);
      const reset = await failureOf(call(connection, PUT, Buffer.alloc(0)));
      expect(reset.code).toBe(Code.INTERNAL);
      expect(reset.notSent).toBe(false);
    } finally {
      await server.close();
    }
  });

  it('a non-gRPC answer or a malformed frame is an error, never a response', async () => {
    const server = await scriptedServer((stream, headers) => {
      if (headers[':path'] === '/http') {
        stream.respond({ ':status': 502 });
        stream.end('bad gateway');
        return;
      }
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      // Declares 10 bytes, carries 2.
      stream.end(Buffer.from([0, 0, 0, 0, 10, 1, 2]));
    });
    try {
      const connection = connect(server.url);
      const http = await failureOf(call(connection, '/http', Buffer.alloc(0)));
      // gRPC's mapping of HTTP 502 (a gateway in the way) is UNAVAILABLE.
      expect(http.code).toBe(Code.UNAVAILABLE);
      expect(http.details).toContain('HTTP 502');
      const malformed = await failureOf(call(connection, RANGE, Buffer.alloc(0)));
      expect(malformed.code).toBe(Code.INTERNAL);
      expect(malformed.details).toContain('malformed response frame');
    } finally {
      await server.close();
    }
  });

  it('a peer that stops answering keepalive pings is dropped: the call in flight fails UNAVAILABLE, the next call reconnects', async () => {
    const peer = await silentPeer();
    try {
      const connection = connect(peer.url, { keepaliveTimeMs: 500, keepaliveTimeoutMs: 300 });
      const started = Date.now();
      // No deadline: only the keepalive can end this call.
      const lost = await failureOf(call(connection, RANGE, Buffer.alloc(0)));
      expect(lost.code).toBe(Code.UNAVAILABLE);
      expect(lost.details).toMatch(/lost/u);
      // The peer had accepted the connection, so the request may have reached it.
      expect(lost.notSent).toBe(false);
      // Dropped by the first unanswered ping, 500 + 300 ms in (with room for a slow
      // machine), not by Node giving up after 10 outstanding pings (~5 s here).
      expect(peer.pings()).toBeGreaterThanOrEqual(1);
      expect(peer.pings()).toBeLessThanOrEqual(3);
      expect(Date.now() - started).toBeGreaterThanOrEqual(700);
      expect(Date.now() - started).toBeLessThan(3_000);

      // The endpoint reconnects by itself; the next call rides the new connection.
      await expect.poll(() => peer.connections(), { timeout: 5_000 }).toBe(2);
      const next = await failureOf(call(connection, RANGE, Buffer.alloc(0), { deadline: Date.now() + 300 }));
      expect(next.code).toBe(Code.DEADLINE_EXCEEDED);
    } finally {
      await peer.close();
    }
  });

  it('after the server goes away, the next call opens a new connection', async () => {
    const server = await scriptedServer((stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(Buffer.from([0, 0, 0, 0, 0]));
      stream.session?.close();
    });
    try {
      const connection = connect(server.url);
      // Each answer comes with a GOAWAY; each call still succeeds, on its own session.
      for (let i = 0; i < 3; i += 1) {
        await expect.poll(() => connection.ready).toBe(true);
        const reply = await call(connection, RANGE, Buffer.alloc(0));
        expect(reply.response.length).toBe(0);
      }
      expect(server.sessionsOpened()).toBe(3);
    } finally {
      await server.close();
    }
  });
});
