/**
 * Unary calls on the wire: what etcdgate's own HTTP/2 unary path (src/proxy/unary-call.ts,
 * behind src/proxy/stream-router.ts) accepts and refuses, seen byte for byte by a bare
 * node:http2 client over mTLS, with one real etcd behind one gateway.
 *
 * It proves that gzip and deflate requests are decompressed and served, other encodings
 * and decompression bombs refused before anything reaches etcd; that a unary call takes
 * exactly one message; that grpc-timeout is parsed per the gRPC spec and a deadline ends
 * the call with DEADLINE_EXCEEDED; what an OK answer looks like (headers, one frame,
 * trailers, none of etcd's HTTP-only headers); that server.maxSendBytes holds; that
 * grpc-message is percent-encoded as the spec says; and that a client resetting its
 * streams does not stop the gateway from serving. Refusals are checked in etcd's state and
 * in the audit log as well as on the wire; policy cases check the allowed and the denied
 * caller.
 */
import { readFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import { deflateSync, gzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeGrpcMessage as grpcMessage } from '../src/transport/grpc/status.js';
import { b, valueInEtcd } from './support/enforcement.js';
import { decode, encode } from './support/etcd-messages.js';
import { startEtcd, type EtcdCluster } from './support/etcd.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { ROOT_AND_TENANT_B } from './support/policies.js';
import { makePki, type CertPair, type Pki } from './support/pki.js';
import { callEtcd, rawClient } from './support/raw-client.js';

const POLICY = ROOT_AND_TENANT_B;

const MAX_RECV_BYTES = 4096;
const MAX_SEND_BYTES = 8192;

const PUT = '/etcdserverpb.KV/Put';
const RANGE = '/etcdserverpb.KV/Range';
const REFUSED_WHILE_READING = 'message refused while being read';
const DENIED_TEXT = 'etcdserver: permission denied';

type Caller = 'root' | 'tenant-b';

let pki: Pki;
let etcd: EtcdCluster;
let gate: TestGateway;
/** A grpc-js client straight to etcd, to seed keys and to prove what etcd holds. */
let direct: grpc.Client;

beforeAll(async () => {
  pki = await makePki();
  etcd = await startEtcd(pki);
  gate = await startTestGateway({
    pki,
    upstream: etcd.endpoints,
    policy: POLICY,
    overrides: { server: { maxRecvBytes: MAX_RECV_BYTES, maxSendBytes: MAX_SEND_BYTES } },
  });
  direct = rawClient(etcd.endpoints[0] as string, pki, 'root');
}, 60_000);

afterAll(async () => {
  direct?.close();
  await gate?.stop();
  await etcd?.stop();
  await pki?.remove();
});

// ---------------------------------------------------------------------------------------
// Wire helpers

/** What one HTTP/2 exchange brought back, as node:http2 hands it over. */
interface WireReply {
  readonly headers: http2.IncomingHttpHeaders;
  /** Undefined for a trailers-only answer (the status is in `headers`). */
  readonly trailers: http2.IncomingHttpHeaders | undefined;
  readonly body: Buffer;
  /** grpc-status from the trailers, or from the headers of a trailers-only answer. */
  readonly grpcStatus: number | undefined;
  /** grpc-message exactly as it travelled (percent-encoding kept). */
  readonly rawMessage: string | undefined;
}

interface ExchangeOptions {
  /** Extra request headers (grpc-timeout, grpc-encoding, ...). */
  readonly headers?: http2.OutgoingHttpHeaders;
  /** Send the body only once the response headers are in (so the call cannot finish first). */
  readonly bodyAfterResponse?: boolean;
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** An mTLS HTTP/2 session presenting `pair` (default: to the gateway). */
function connect(pair: CertPair, endpoint = gate.endpoint): http2.ClientHttp2Session {
  const session = http2.connect(endpoint, { ca: readFileSync(pki.ca), cert: readFileSync(pair.cert), key: readFileSync(pair.key), servername: 'localhost' });
  session.on('error', () => undefined);
  return session;
}

/** One gRPC request with exact body bytes on `session`; resolves when the stream closes. */
function exchange(session: http2.ClientHttp2Session, path: string, body: Buffer, options: ExchangeOptions = {}): Promise<WireReply> {
  return new Promise((resolve, reject) => {
    const request = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...options.headers });
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      request.close(http2.constants.NGHTTP2_CANCEL);
      reject(new Error(`no answer to ${path} within 10 s`));
    }, 10_000);
    request.on('response', (received) => {
      headers = received;
      if (options.bodyAfterResponse === true) request.end(body);
    });
    request.on('trailers', (received) => {
      trailers = received;
    });
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('error', () => undefined);
    request.on('close', () => {
      clearTimeout(timer);
      const status = single((trailers ?? headers)['grpc-status']);
      resolve({
        headers,
        trailers,
        body: Buffer.concat(chunks),
        grpcStatus: status === undefined ? undefined : Number(status),
        rawMessage: single((trailers ?? headers)['grpc-message']),
      });
    });
    if (options.bodyAfterResponse !== true) request.end(body);
  });
}

/** One call on its own session as `as`. */
async function wire(as: Caller, path: string, body: Buffer, options: ExchangeOptions = {}): Promise<WireReply> {
  const session = connect(pki.client(as));
  try {
    return await exchange(session, path, body, options);
  } finally {
    session.close();
  }
}

/** The Compressed-Flag of a gRPC frame saying the payload is in the request's grpc-encoding. */
const COMPRESSED = 1;

/** A gRPC length-prefixed message: flag byte (0 plain, 1 compressed), 32-bit length, payload. */
function frame(payload: Buffer, flag: 0 | typeof COMPRESSED = 0): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(flag, 0);
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

const putRequest = (key: string, value: string | Buffer): Buffer => encode('etcdserverpb.PutRequest', { key: b(key), value: typeof value === 'string' ? b(value) : value });
const rangeRequest = (key: string, rangeEnd?: string): Buffer =>
  encode('etcdserverpb.RangeRequest', rangeEnd === undefined ? { key: b(key) } : { key: b(key), range_end: b(rangeEnd) });

// ---------------------------------------------------------------------------------------
// Audit helpers

type AuditRecord = Record<string, unknown>;
interface EtcdFields {
  readonly request?: { readonly key?: unknown };
  readonly decision?: { readonly reason?: string };
  readonly response?: { readonly code?: number; readonly message?: string };
}

const etcdOf = (record: AuditRecord): EtcdFields => (record['etcd'] ?? {}) as EtcdFields;
const reasonOf = (record: AuditRecord): string | undefined => etcdOf(record).decision?.reason;
const codeOf = (record: AuditRecord): number | undefined => etcdOf(record).response?.code;
const messageOf = (record: AuditRecord): string => etcdOf(record).response?.message ?? '';
/** The request key, when it is printable text (audit records show other keys as base64). */
const keyOf = (record: AuditRecord): string | undefined => {
  const key = etcdOf(record).request?.key;
  return typeof key === 'string' ? key : undefined;
};

/** Records matching `predicate`, waiting a little for those written after the stream closed. */
async function recordsEventually(predicate: (record: AuditRecord) => boolean): Promise<AuditRecord[]> {
  for (let attempt = 0; attempt < 30; attempt += 1) {
    const found = (await gate.auditRecords()).filter(predicate);
    if (found.length > 0) return found;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return [];
}

/** The records of calls refused while their message was read, whose status message contains `text`. */
function refusalRecords(text: string): Promise<AuditRecord[]> {
  return recordsEventually((r) => reasonOf(r) === REFUSED_WHILE_READING && messageOf(r).includes(text));
}

// ---------------------------------------------------------------------------------------

describe('compressed requests', () => {
  it('a gzip-compressed Put (flag 1, grpc-encoding: gzip) is decompressed and reaches etcd', async () => {
    const reply = await wire('root', PUT, frame(gzipSync(putRequest('/t/gzip', 'zipped')), COMPRESSED), { headers: { 'grpc-encoding': 'gzip' } });
    expect(reply.grpcStatus).toBe(grpc.status.OK);
    expect(await valueInEtcd(direct, '/t/gzip')).toBe('zipped');
  });

  it('a deflate-compressed Put (grpc-encoding: deflate) is decompressed and reaches etcd', async () => {
    const reply = await wire('root', PUT, frame(deflateSync(putRequest('/t/deflate', 'deflated')), COMPRESSED), { headers: { 'grpc-encoding': 'deflate' } });
    expect(reply.grpcStatus).toBe(grpc.status.OK);
    expect(await valueInEtcd(direct, '/t/deflate')).toBe('deflated');
  });

  it('the policy judges the decompressed message: tenant-b may gzip-Put under /t/, not /secret', async () => {
    const gzipHeaders = { headers: { 'grpc-encoding': 'gzip' } };
    const allowed = await wire('tenant-b', PUT, frame(gzipSync(putRequest('/t/gzip-tenant', 'mine')), COMPRESSED), gzipHeaders);
    expect(allowed.grpcStatus).toBe(grpc.status.OK);
    expect(await valueInEtcd(direct, '/t/gzip-tenant')).toBe('mine');

    const denied = await wire('tenant-b', PUT, frame(gzipSync(putRequest('/secret-gzip', 'stolen')), COMPRESSED), gzipHeaders);
    expect(denied.grpcStatus).toBe(grpc.status.PERMISSION_DENIED);
    expect(denied.rawMessage).toBe(DENIED_TEXT);
    expect(await valueInEtcd(direct, '/secret-gzip')).toBeUndefined();
  });

  it('a request compressed in an unsupported encoding (snappy) gets UNIMPLEMENTED, the supported ones named, and nothing reaches etcd', async () => {
    const reply = await wire('root', PUT, frame(gzipSync(putRequest('/t/snappy', 'v')), COMPRESSED), { headers: { 'grpc-encoding': 'snappy' } });
    expect(reply.grpcStatus).toBe(grpc.status.UNIMPLEMENTED);
    expect(reply.rawMessage).toMatch(/^etcdgate: /u);
    expect(reply.headers['grpc-accept-encoding']).toBe('identity,deflate,gzip');
    expect(await valueInEtcd(direct, '/t/snappy')).toBeUndefined();
    expect(await refusalRecords('unsupported encoding "snappy"')).toHaveLength(1);
  });

  it('a gzip request that inflates past server.maxRecvBytes gets RESOURCE_EXHAUSTED, is not written, and is audited as refused while being read', async () => {
    const inflated = putRequest('/t/bomb', Buffer.alloc(4 * MAX_RECV_BYTES));
    const compressed = gzipSync(inflated);
    // The frame itself is small: only decompressing it exceeds the limit.
    expect(compressed.length).toBeLessThan(MAX_RECV_BYTES);
    const reply = await wire('root', PUT, frame(compressed, COMPRESSED), { headers: { 'grpc-encoding': 'gzip' } });
    expect(reply.grpcStatus).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(reply.rawMessage).toMatch(/^etcdgate: /u);
    expect(await valueInEtcd(direct, '/t/bomb')).toBeUndefined();
    const records = await refusalRecords('decompresses to more than server.maxRecvBytes');
    expect(records).toHaveLength(1);
    expect(codeOf(records[0] as AuditRecord)).toBe(grpc.status.RESOURCE_EXHAUSTED);
  });

  it('a gzip-flagged payload that is not gzip gets INTERNAL and nothing is written', async () => {
    const reply = await wire('root', PUT, frame(putRequest('/t/not-gzip', 'v'), COMPRESSED), { headers: { 'grpc-encoding': 'gzip' } });
    expect(reply.grpcStatus).toBe(grpc.status.INTERNAL);
    expect(reply.rawMessage).toMatch(/^etcdgate: /u);
    expect(await valueInEtcd(direct, '/t/not-gzip')).toBeUndefined();
  });

  it.each([
    ['no grpc-encoding', {}],
    ['grpc-encoding: identity', { 'grpc-encoding': 'identity' }],
  ])('a compressed-flag frame with %s (identity) is a protocol error: INTERNAL, nothing written', async (_label, headers) => {
    const reply = await wire('root', PUT, frame(putRequest('/t/flag-identity', 'v'), COMPRESSED), { headers });
    expect(reply.grpcStatus).toBe(grpc.status.INTERNAL);
    expect(reply.rawMessage).toBe('etcdgate: request flagged compressed without a grpc-encoding');
    expect(await valueInEtcd(direct, '/t/flag-identity')).toBeUndefined();
  });
});

describe('exactly one request message', () => {
  it('two complete Put messages in one unary call get UNIMPLEMENTED, neither reaches etcd, and the call is audited', async () => {
    const body = Buffer.concat([frame(putRequest('/t/two/a', '1')), frame(putRequest('/t/two/b', '2'))]);
    const reply = await wire('root', PUT, body);
    expect(reply.grpcStatus).toBe(grpc.status.UNIMPLEMENTED);
    expect(reply.rawMessage).toMatch(/^etcdgate: /u);
    expect(await valueInEtcd(direct, '/t/two/a')).toBeUndefined();
    expect(await valueInEtcd(direct, '/t/two/b')).toBeUndefined();
    const records = await refusalRecords('exactly one request message');
    expect(records).toHaveLength(1);
    expect(codeOf(records[0] as AuditRecord)).toBe(grpc.status.UNIMPLEMENTED);
  });

  it('a call that ends with no message at all gets UNIMPLEMENTED and is audited', async () => {
    const reply = await wire('root', RANGE, Buffer.alloc(0));
    expect(reply.grpcStatus).toBe(grpc.status.UNIMPLEMENTED);
    expect(reply.rawMessage).toMatch(/^etcdgate: /u);
    const records = await refusalRecords('ended without a complete request message');
    expect(records).toHaveLength(1);
    expect(codeOf(records[0] as AuditRecord)).toBe(grpc.status.UNIMPLEMENTED);
  });
});

describe('grpc-timeout', () => {
  it.each(['abc', '1.5S', '123456789S', '5s', '-1S'])('a malformed grpc-timeout "%s" gets INTERNAL and is audited', async (timeout) => {
    const reply = await wire('root', RANGE, frame(rangeRequest('/t/timeout')), { headers: { 'grpc-timeout': timeout } });
    expect(reply.grpcStatus).toBe(grpc.status.INTERNAL);
    expect(reply.rawMessage).toMatch(/^etcdgate: invalid grpc-timeout/u);
    const records = await refusalRecords(`invalid grpc-timeout "${timeout}"`);
    expect(records).toHaveLength(1);
    expect(codeOf(records[0] as AuditRecord)).toBe(grpc.status.INTERNAL);
  });

  it.each(['5000000u', '99999999n', '30S', '1H', '1000H', '99999999S'])('a valid grpc-timeout "%s" is served OK', async (timeout) => {
    await callEtcd(direct, 'KV', 'Put', ['PutRequest', { key: b('/t/timeout-ok'), value: b('in time') }], 'PutResponse');
    const reply = await wire('root', RANGE, frame(rangeRequest('/t/timeout-ok')), { headers: { 'grpc-timeout': timeout } });
    expect(reply.grpcStatus).toBe(grpc.status.OK);
    const kvs = decode('etcdserverpb.RangeResponse', reply.body.subarray(5))['kvs'] as { value: Buffer }[];
    expect(kvs[0]?.value.toString()).toBe('in time');
  });

  it('a deadline that passes while the request is still being read ends the call with DEADLINE_EXCEEDED', async () => {
    // The body goes out only after the answer arrived, so the deadline always passes first.
    const reply = await wire('root', PUT, frame(putRequest('/t/late', 'v')), { headers: { 'grpc-timeout': '1n' }, bodyAfterResponse: true });
    expect(reply.grpcStatus).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(await valueInEtcd(direct, '/t/late')).toBeUndefined();
    // No decision was made, but the call is audited all the same.
    const records = await recordsEventually((r) => reasonOf(r) === 'deadline passed while the request was read');
    expect(records.length).toBeGreaterThan(0);
    expect(codeOf(records[0] as AuditRecord)).toBe(grpc.status.DEADLINE_EXCEEDED);
  });

  it('a call whose 1 µs deadline races etcd gets OK or DEADLINE_EXCEEDED, and its audit record says which', async () => {
    const reply = await wire('root', RANGE, frame(rangeRequest('/t/deadline-race')), { headers: { 'grpc-timeout': '1u' } });
    expect([grpc.status.OK, grpc.status.DEADLINE_EXCEEDED]).toContain(reply.grpcStatus);
    const records = await recordsEventually((r) => keyOf(r) === '/t/deadline-race');
    expect(records).toHaveLength(1);
    expect(codeOf(records[0] as AuditRecord)).toBe(reply.grpcStatus);
  });
});

describe('the OK answer', () => {
  it('is HTTP 200, application/grpc+proto, one frame holding the RangeResponse, then grpc-status 0 in the trailers', async () => {
    await callEtcd(direct, 'KV', 'Put', ['PutRequest', { key: b('/t/shape'), value: b('framed') }], 'PutResponse');
    const reply = await wire('root', RANGE, frame(rangeRequest('/t/shape')));
    expect(reply.headers[':status']).toBe(200);
    expect(reply.headers['content-type']).toBe('application/grpc+proto');
    expect(reply.headers['grpc-status']).toBeUndefined();
    expect(reply.trailers?.['grpc-status']).toBe('0');

    expect(reply.body.readUInt8(0)).toBe(0);
    expect(reply.body.readUInt32BE(1)).toBe(reply.body.length - 5);
    const response = decode('etcdserverpb.RangeResponse', reply.body.subarray(5));
    const kvs = response['kvs'] as { key: Buffer; value: Buffer }[];
    expect(kvs).toHaveLength(1);
    expect(kvs[0]?.key.toString()).toBe('/t/shape');
    expect(kvs[0]?.value.toString()).toBe('framed');
  });

  it("does not relay etcd's HTTP-only headers (trailer, access-control-*), which etcd itself sends", async () => {
    const isHttpOnly = (name: string): boolean => name === 'trailer' || name.startsWith('access-control-');

    // Straight to etcd: the headers are there, so their absence below is etcdgate's doing.
    const session = connect(pki.upstreamClient, etcd.endpoints[0]);
    let fromEtcd: WireReply;
    try {
      fromEtcd = await exchange(session, RANGE, frame(rangeRequest('/t/shape')));
    } finally {
      session.close();
    }
    expect(fromEtcd.grpcStatus).toBe(grpc.status.OK);
    expect(Object.keys(fromEtcd.headers).some(isHttpOnly)).toBe(true);

    const reply = await wire('root', RANGE, frame(rangeRequest('/t/shape')));
    expect(reply.grpcStatus).toBe(grpc.status.OK);
    expect(Object.keys(reply.headers).filter(isHttpOnly)).toEqual([]);
    expect(Object.keys(reply.trailers ?? {}).filter(isHttpOnly)).toEqual([]);
  });
});

describe('server.maxSendBytes', () => {
  const big = Buffer.alloc(6 * 1024, 0x62);

  it('a Range answer larger than maxSendBytes gets RESOURCE_EXHAUSTED from etcdgate, audited with code 8; a smaller one is served', async () => {
    // Written straight to etcd: each value alone is over the gateway's maxRecvBytes.
    for (const key of ['/t/big/1', '/t/big/2']) {
      await callEtcd(direct, 'KV', 'Put', ['PutRequest', { key: b(key), value: big }], 'PutResponse');
    }

    for (const as of ['root', 'tenant-b'] as const) {
      const both = await wire(as, RANGE, frame(rangeRequest('/t/big/', '/t/big0')));
      expect(both.grpcStatus).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(both.rawMessage).toMatch(/^etcdgate:/u);
      expect(both.body).toHaveLength(0);

      const one = await wire(as, RANGE, frame(rangeRequest('/t/big/1')));
      expect(one.grpcStatus).toBe(grpc.status.OK);
      const kvs = decode('etcdserverpb.RangeResponse', one.body.subarray(5))['kvs'] as { value: Buffer }[];
      expect(kvs[0]?.value.equals(big)).toBe(true);
    }

    const records = await recordsEventually((r) => keyOf(r) === '/t/big/' && codeOf(r) === grpc.status.RESOURCE_EXHAUSTED);
    expect(records).toHaveLength(2);
    expect(records.every((r) => messageOf(r).startsWith('etcdgate:'))).toBe(true);
  });

  it('the policy comes first: tenant-b ranging outside /t/ is denied, not told the answer is too large', async () => {
    await callEtcd(direct, 'KV', 'Put', ['PutRequest', { key: b('/big/1'), value: big }], 'PutResponse');
    await callEtcd(direct, 'KV', 'Put', ['PutRequest', { key: b('/big/2'), value: big }], 'PutResponse');
    const denied = await wire('tenant-b', RANGE, frame(rangeRequest('/big/', '/big0')));
    expect(denied.grpcStatus).toBe(grpc.status.PERMISSION_DENIED);
    const tooLarge = await wire('root', RANGE, frame(rangeRequest('/big/', '/big0')));
    expect(tooLarge.grpcStatus).toBe(grpc.status.RESOURCE_EXHAUSTED);
  });
});

describe('grpc-message encoding', () => {
  it('a denial reads exactly "etcdserver: permission denied" on the wire (no percent-encoding of ":" or " "); root is allowed the same key', async () => {
    await callEtcd(direct, 'KV', 'Put', ['PutRequest', { key: b('/secret'), value: b('s') }], 'PutResponse');
    const denied = await wire('tenant-b', RANGE, frame(rangeRequest('/secret')));
    expect(denied.grpcStatus).toBe(grpc.status.PERMISSION_DENIED);
    expect(denied.rawMessage).toBe(DENIED_TEXT);

    const allowed = await wire('root', RANGE, frame(rangeRequest('/secret')));
    expect(allowed.grpcStatus).toBe(grpc.status.OK);
    const kvs = decode('etcdserverpb.RangeResponse', allowed.body.subarray(5))['kvs'] as { value: Buffer }[];
    expect(kvs[0]?.value.toString()).toBe('s');
  });

  it('a "%" in a status message is sent as %25 on the wire', async () => {
    const reply = await wire('root', RANGE, frame(rangeRequest('/t/percent')), { headers: { 'grpc-timeout': '1%S' } });
    expect(reply.grpcStatus).toBe(grpc.status.INTERNAL);
    expect(reply.rawMessage).toBe('etcdgate: invalid grpc-timeout "1%25S"');
  });

  it('grpcMessage() leaves printable ASCII alone and percent-encodes "%", controls and non-ASCII as UTF-8 bytes', () => {
    expect(grpcMessage(DENIED_TEXT)).toBe(DENIED_TEXT);
    expect(grpcMessage('plain ASCII: ~!@#$^&*()_+{}|"<>?`-=[]\\;\',./')).toBe('plain ASCII: ~!@#$^&*()_+{}|"<>?`-=[]\\;\',./');
    expect(grpcMessage('é')).toBe('%C3%A9');
    expect(grpcMessage('%')).toBe('%25');
    expect(grpcMessage('café 100%')).toBe('caf%C3%A9 100%25');
    expect(grpcMessage('line\nbreak\x7f')).toBe('line%0Abreak%7F');
    expect(grpcMessage('€')).toBe('%E2%82%AC');
    expect(decodeURIComponent(grpcMessage('ünïcödé % done'))).toBe('ünïcödé % done');
  });
});

describe('client resets', () => {
  it('after a client resets (RST_STREAM CANCEL) Ranges whose answers are not back yet, the gateway keeps serving on that connection and new ones', async () => {
    await callEtcd(direct, 'KV', 'Put', ['PutRequest', { key: b('/t/after-reset'), value: b('still here') }], 'PutResponse');
    const session = connect(pki.client('tenant-b'));
    try {
      const resets: Promise<void>[] = [];
      for (let i = 0; i < 20; i += 1) {
        const request = session.request({ ':method': 'POST', ':path': RANGE, 'content-type': 'application/grpc', te: 'trailers' });
        request.on('error', () => undefined);
        request.end(frame(rangeRequest(`/t/reset/${i}`)));
        // Reset in the same tick: no answer can have arrived. Node sends the DATA first, then RST_STREAM.
        request.close(http2.constants.NGHTTP2_CANCEL);
        resets.push(new Promise((resolve) => request.on('close', () => resolve())));
      }
      await Promise.all(resets);

      const same = await exchange(session, RANGE, frame(rangeRequest('/t/after-reset')));
      expect(same.grpcStatus).toBe(grpc.status.OK);
      const kvs = decode('etcdserverpb.RangeResponse', same.body.subarray(5))['kvs'] as { value: Buffer }[];
      expect(kvs[0]?.value.toString()).toBe('still here');
    } finally {
      session.close();
    }

    const fresh = await wire('root', RANGE, frame(rangeRequest('/t/after-reset')));
    expect(fresh.grpcStatus).toBe(grpc.status.OK);

    // A reset call leaves at most one record, saying either OK (etcd's answer came first) or CANCELLED.
    const records = (await gate.auditRecords()).filter((r) => keyOf(r)?.startsWith('/t/reset/') === true);
    const perKey = new Map<string, number>();
    for (const record of records) perKey.set(keyOf(record) as string, (perKey.get(keyOf(record) as string) ?? 0) + 1);
    expect([...perKey.values()].every((count) => count === 1)).toBe(true);
    expect(records.every((r) => codeOf(r) === grpc.status.OK || codeOf(r) === grpc.status.CANCELLED)).toBe(true);
  });
});
