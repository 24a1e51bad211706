/**
 * Bad input through etcdgate in front of a real etcd: malformed protobuf, a length
 * prefix declaring 4 GiB, a truncated frame, a wrong content-type (the JSON gateway's
 * then, or grpc-js's 415 with the gateway off), a message over
 * server.maxRecvBytes, an unknown method, binary and invalid-UTF-8 keys, an empty key,
 * absurd range ends. Each gets a clear gRPC status; what etcdgate refuses itself says so
 * ("etcdgate: ..."), so it provably never reached etcd; what reaches a handler is
 * audited; and etcdgate still serves a normal call afterwards.
 */
import { readFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { encode } from './support/etcd-messages.js';
import { startEtcd, type EtcdCluster } from './support/etcd.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { ROOT_AND_TENANT_B } from './support/policies.js';
import { makePki, type Pki } from './support/pki.js';
import { callEtcd, rawClient, rawUnary } from './support/raw-client.js';

const POLICY = ROOT_AND_TENANT_B;

let pki: Pki;
let etcd: EtcdCluster;
let gate: TestGateway;
let root: grpc.Client;
let tenant: grpc.Client;

beforeAll(async () => {
  pki = await makePki();
  etcd = await startEtcd(pki);
  gate = await startTestGateway({ pki, upstream: etcd.endpoints, policy: POLICY, overrides: { server: { maxRecvBytes: 4096 } } });
  root = rawClient(gate.endpoint, pki, 'root');
  tenant = rawClient(gate.endpoint, pki, 'tenant-b');
}, 60_000);

afterAll(async () => {
  root?.close();
  tenant?.close();
  await gate?.stop();
  await etcd?.stop();
  await pki?.remove();
});

interface RawReply {
  readonly httpStatus: number;
  readonly grpcStatus: number | undefined;
  readonly grpcMessage: string;
}

/** One HTTP/2 request with exact bytes, over mTLS as root. */
function rawHttp2(path: string, body: Buffer, contentType = 'application/grpc', target: TestGateway = gate): Promise<RawReply> {
  const pair = pki.client('root');
  const session = http2.connect(target.endpoint, { ca: readFileSync(pki.ca), cert: readFileSync(pair.cert), key: readFileSync(pair.key), servername: 'localhost' });
  session.on('error', () => undefined);
  return new Promise((resolve, reject) => {
    const request = session.request({ ':method': 'POST', ':path': path, 'content-type': contentType, te: 'trailers' });
    let httpStatus = 0;
    let grpcStatus: number | undefined;
    let grpcMessage = '';
    const take = (headers: http2.IncomingHttpHeaders): void => {
      if (headers['grpc-status'] !== undefined) grpcStatus = Number(headers['grpc-status']);
      if (typeof headers['grpc-message'] === 'string') grpcMessage = decodeURIComponent(headers['grpc-message']);
    };
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error(`no answer to ${path}`));
    }, 10_000);
    request.on('response', (headers) => {
      httpStatus = Number(headers[':status']);
      take(headers);
    });
    request.on('trailers', take);
    request.on('data', () => undefined);
    request.on('error', () => undefined);
    request.on('close', () => {
      clearTimeout(timer);
      session.close();
      resolve({ httpStatus, grpcStatus, grpcMessage });
    });
    request.end(body);
  });
}

/** A gRPC frame: uncompressed flag, 32-bit length (declared, may lie), payload. */
function frame(payload: Buffer, declared = payload.length): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(declared, 1);
  return Buffer.concat([head, payload]);
}

function failure(promise: Promise<unknown>): Promise<grpc.ServiceError> {
  return promise.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (error: grpc.ServiceError) => error,
  );
}

/** Records written when the refused HTTP/2 stream closes, which can be just after the client saw its status. */
async function recordsEventually(predicate: (record: Record<string, unknown>) => boolean): Promise<Record<string, unknown>[]> {
  for (let attempt = 0; attempt < 30; attempt += 1) {
    const found = await recordsMatching(predicate);
    if (found.length > 0) return found;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return [];
}

async function recordsMatching(predicate: (record: Record<string, unknown>) => boolean): Promise<Record<string, unknown>[]> {
  return (await gate.auditRecords()).filter(predicate);
}

const reasonOf = (record: Record<string, unknown>): string | undefined => (record['etcd'] as { decision?: { reason?: string } } | undefined)?.decision?.reason;

describe('refused by etcdgate itself, never forwarded', () => {
  it('malformed protobuf -> INVALID_ARGUMENT from etcdgate, audited', async () => {
    // Field 1 (key), length-delimited, declaring 127 bytes with 1 present.
    const error = await failure(rawUnary(root, '/etcdserverpb.KV/Put', Buffer.from([0x0a, 0x7f, 0x61])));
    expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error.details).toMatch(/^etcdgate: /u);
    expect(await recordsMatching((r) => reasonOf(r) === 'malformed request')).not.toHaveLength(0);
  });

  it('a Txn op that sets two operations at once is malformed, not guessed at', async () => {
    const op = Buffer.concat([encode('etcdserverpb.RequestOp', { request_range: { key: Buffer.from('/t/a') } }), encode('etcdserverpb.RequestOp', { request_put: { key: Buffer.from('/secret') } })]);
    const txn = Buffer.concat([Buffer.from([0x12, op.length]), op]);
    const error = await failure(rawUnary(tenant, '/etcdserverpb.KV/Txn', txn));
    expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error.details).toMatch(/^etcdgate: /u);
  });

  it('a frame declaring 4 GiB -> RESOURCE_EXHAUSTED', async () => {
    const reply = await rawHttp2('/etcdserverpb.KV/Range', frame(Buffer.from([0x0a, 0x01, 0x61]), 0xffff_ffff));
    expect(reply.grpcStatus).toBe(grpc.status.RESOURCE_EXHAUSTED);
    const records = await recordsEventually((r) => reasonOf(r) === 'message refused while being read' && JSON.stringify(r).includes('"action":"etcd.kv.range"'));
    expect(records).not.toHaveLength(0);
  });

  it('a message over server.maxRecvBytes -> RESOURCE_EXHAUSTED', async () => {
    const big = encode('etcdserverpb.PutRequest', { key: Buffer.from('/big'), value: Buffer.alloc(8192, 0x62) });
    const error = await failure(rawUnary(root, '/etcdserverpb.KV/Put', big));
    expect(error.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    const records = await recordsEventually((r) => reasonOf(r) === 'message refused while being read' && JSON.stringify(r).includes('"action":"etcd.kv.put"'));
    expect(records).not.toHaveLength(0);
    const got = await callEtcd(root, 'KV', 'Range', ['RangeRequest', { key: Buffer.from('/big'), count_only: true }], 'RangeResponse');
    expect(got['count']).toBeUndefined();
  });

  it('a truncated frame then END_STREAM -> an error status, nothing forwarded', async () => {
    const put = encode('etcdserverpb.PutRequest', { key: Buffer.from('/truncated'), value: Buffer.from('v') });
    const reply = await rawHttp2('/etcdserverpb.KV/Put', frame(put, put.length + 50));
    expect(reply.grpcStatus).toBeDefined();
    expect(reply.grpcStatus).not.toBe(grpc.status.OK);
    const got = await callEtcd(root, 'KV', 'Range', ['RangeRequest', { key: Buffer.from('/truncated'), count_only: true }], 'RangeResponse');
    expect(got['count']).toBeUndefined();
  });

  it('content-type text/plain is not gRPC: the JSON gateway answers it (a gRPC path is no HTTP route: 404, as etcd)', async () => {
    const reply = await rawHttp2('/etcdserverpb.KV/Range', frame(encode('etcdserverpb.RangeRequest', { key: Buffer.from('/x') })), 'text/plain');
    expect(reply.httpStatus).toBe(404);
    expect(reply.grpcStatus).toBeUndefined();
  });

  it('content-type text/plain with the JSON gateway off: refused (415) and audited', async () => {
    const off = await startTestGateway({ pki, upstream: etcd.endpoints, policy: POLICY, overrides: { gateway: { enabled: false } } });
    try {
      const reply = await rawHttp2('/etcdserverpb.KV/Range', frame(encode('etcdserverpb.RangeRequest', { key: Buffer.from('/x') })), 'text/plain', off);
      expect(reply.httpStatus === 415 || (reply.grpcStatus !== undefined && reply.grpcStatus !== grpc.status.OK)).toBe(true);
      await vi.waitFor(async () => expect((await off.auditRecords()).filter((r) => reasonOf(r) === 'not a gRPC request')).not.toHaveLength(0));
    } finally {
      await off.stop();
    }
  });

  it('an unknown method -> UNIMPLEMENTED', async () => {
    const error = await failure(rawUnary(root, '/etcdserverpb.KV/RangeStream', encode('etcdserverpb.RangeRequest', { key: Buffer.from('/x') })));
    expect(error.code).toBe(grpc.status.UNIMPLEMENTED);
    const raw = await rawHttp2('/not.a.Service/Nothing', frame(Buffer.alloc(0)));
    expect(raw.grpcStatus).toBe(grpc.status.UNIMPLEMENTED);
    const records = await recordsEventually((r) => reasonOf(r) === 'unknown method');
    const paths = records.map((r) => JSON.stringify(r));
    expect(paths.some((p) => p.includes('/etcdserverpb.KV/RangeStream'))).toBe(true);
    expect(paths.some((p) => p.includes('/not.a.Service/Nothing'))).toBe(true);
    expect(records[0]).toMatchObject({ user: { name: 'root' }, etcd: { response: { code: 12 } } });
  });
});

describe('odd but valid keys', () => {
  it('binary and invalid-UTF-8 keys are served and audited as base64', async () => {
    const key = Buffer.from([0x2f, 0x74, 0x2f, 0xff, 0xfe, 0x00, 0x80]);
    await callEtcd(tenant, 'KV', 'Put', ['PutRequest', { key, value: Buffer.from('v') }], 'PutResponse');
    const got = await callEtcd(tenant, 'KV', 'Range', ['RangeRequest', { key }], 'RangeResponse');
    expect((got['kvs'] as { key: Buffer }[])[0]?.key.equals(key)).toBe(true);
    const records = await recordsMatching((r) => JSON.stringify(r).includes(key.toString('base64')));
    expect(records.length).toBeGreaterThanOrEqual(2);
  });

  it('an empty key is authorized like any other and etcd answers it', async () => {
    // Only root may touch "" (tenant's grant is /t/): the tenant is refused by etcdgate.
    const denied = await failure(callEtcd(tenant, 'KV', 'Put', ['PutRequest', { key: Buffer.alloc(0), value: Buffer.from('v') }], 'PutResponse'));
    expect(denied.code).toBe(grpc.status.PERMISSION_DENIED);
    const fromEtcd = await failure(callEtcd(root, 'KV', 'Put', ['PutRequest', { key: Buffer.alloc(0), value: Buffer.from('v') }], 'PutResponse'));
    expect(fromEtcd.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(fromEtcd.details).toMatch(/^etcdserver: /u);
  });

  it('a range_end far past the grant is denied whole; one below the key names just the key', async () => {
    const wide = await failure(callEtcd(tenant, 'KV', 'Range', ['RangeRequest', { key: Buffer.from('/t/'), range_end: Buffer.from([0xff, 0xff, 0xff]) }], 'RangeResponse'));
    expect(wide.code).toBe(grpc.status.PERMISSION_DENIED);
    const everything = await failure(callEtcd(tenant, 'KV', 'DeleteRange', ['DeleteRangeRequest', { key: Buffer.from([0]), range_end: Buffer.from([0]) }], 'DeleteRangeResponse'));
    expect(everything.code).toBe(grpc.status.PERMISSION_DENIED);
    const backwards = await callEtcd(tenant, 'KV', 'Range', ['RangeRequest', { key: Buffer.from('/t/b'), range_end: Buffer.from('/t/a') }], 'RangeResponse');
    expect(backwards['kvs']).toBeUndefined();
    const backwardsOutside = await failure(callEtcd(tenant, 'KV', 'Range', ['RangeRequest', { key: Buffer.from('/u'), range_end: Buffer.from('/t/a') }], 'RangeResponse'));
    expect(backwardsOutside.code).toBe(grpc.status.PERMISSION_DENIED);
  });
});

describe('after all of it', () => {
  it('etcdgate still serves a normal call', async () => {
    await callEtcd(root, 'KV', 'Put', ['PutRequest', { key: Buffer.from('/alive'), value: Buffer.from('yes') }], 'PutResponse');
    const got = await callEtcd(root, 'KV', 'Range', ['RangeRequest', { key: Buffer.from('/alive') }], 'RangeResponse');
    expect((got['kvs'] as { value: Buffer }[])[0]?.value.toString()).toBe('yes');
  });
});
