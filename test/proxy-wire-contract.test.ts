/**
 * The wire contract etcdgate keeps with clients: etcd's response bytes reach the client
 * unchanged, many watchers share one stream with progress requests forwarded, unknown
 * methods are UNIMPLEMENTED, responses beyond 4 MiB pass, and a connection without a
 * client certificate gets nothing.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encode } from './support/etcd-messages.js';
import { etcd3Client } from './support/etcd3-client.js';
import { useGatewayStack } from './support/stack.js';
import { callEtcd, collectWatch, rawClient, rawUnary, rawWatch } from './support/raw-client.js';

const stack = useGatewayStack();
let viaGate: grpc.Client;

beforeAll(() => {
  viaGate = rawClient(stack.gate.endpoint, stack.pki, 'root');
});

afterAll(() => {
  viaGate?.close();
});

describe('wire contract', () => {
  it("returns etcd's response bytes unchanged", async () => {
    await callEtcd(viaGate, 'KV', 'Put', ['PutRequest', { key: Buffer.from('/bytes/k'), value: Buffer.from([0, 255, 1]) }], 'PutResponse');
    const direct = rawClient(stack.etcd.endpoints[0]!, stack.pki, 'root');
    try {
      // A serializable read at a fixed revision is answered identically by the same member.
      const put = await callEtcd(viaGate, 'KV', 'Put', ['PutRequest', { key: Buffer.from('/bytes/k2'), value: Buffer.from('x') }], 'PutResponse');
      const revision = (put['header'] as { revision: string }).revision;
      const request = encode('etcdserverpb.RangeRequest', { key: Buffer.from('/bytes/'), range_end: Buffer.from('/bytes0'), serializable: true, revision });
      const [fromGate, fromEtcd] = await Promise.all([rawUnary(viaGate, '/etcdserverpb.KV/Range', request), rawUnary(direct, '/etcdserverpb.KV/Range', request)]);
      expect(fromGate.equals(fromEtcd)).toBe(true);
      expect(fromGate.length).toBeGreaterThan(20);
    } finally {
      direct.close();
    }
  });

  it('answers an unknown method (etcd 3.7 RangeStream) with UNIMPLEMENTED', async () => {
    const error = await rawUnary(viaGate, '/etcdserverpb.KV/RangeStream', Buffer.alloc(0)).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: grpc.status.UNIMPLEMENTED });
  });

  it('refuses a connection without a client certificate', async () => {
    const anonymous = rawClient(stack.gate.endpoint, stack.pki, null);
    try {
      const error = await rawUnary(anonymous, '/etcdserverpb.KV/Range', encode('etcdserverpb.RangeRequest', { key: Buffer.from('/bytes/k') })).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: grpc.status.UNAVAILABLE });
    } finally {
      anonymous.close();
    }
  });

  it('carries several watchers on one stream and forwards progress requests', async () => {
    const stream = rawWatch(viaGate);
    try {
      const created = collectWatch(stream, (rs) => rs.filter((r) => r['created'] === true).length === 2);
      stream.write(encode('etcdserverpb.WatchRequest', { create_request: { key: Buffer.from('/w/a/'), range_end: Buffer.from('/w/a0'), prev_kv: true } }));
      stream.write(encode('etcdserverpb.WatchRequest', { create_request: { key: Buffer.from('/w/b/'), range_end: Buffer.from('/w/b0'), progress_notify: true } }));
      const ids = (await created).map((r) => String(r['watch_id'] ?? '0'));
      expect(new Set(ids).size).toBe(2);

      const events = collectWatch(stream, (rs) => rs.filter((r) => Array.isArray(r['events'])).length === 2);
      await callEtcd(viaGate, 'KV', 'Put', ['PutRequest', { key: Buffer.from('/w/a/1'), value: Buffer.from('1') }], 'PutResponse');
      await callEtcd(viaGate, 'KV', 'Put', ['PutRequest', { key: Buffer.from('/w/b/1'), value: Buffer.from('2') }], 'PutResponse');
      const withEvents = await events;
      expect(withEvents.map((r) => String(r['watch_id'] ?? '0')).sort()).toEqual([...ids].sort());

      // A progress request is answered by etcd with a header-only response (watch_id -1 in 3.4).
      const progress = collectWatch(stream, (rs) => rs.some((r) => r['events'] === undefined && r['created'] !== true));
      stream.write(encode('etcdserverpb.WatchRequest', { progress_request: {} }));
      const [answer] = await progress;
      expect(answer?.['header']).toBeDefined();
    } finally {
      stream.cancel();
    }
  });

  it('passes a Range answer larger than 20 MiB', async () => {
    const client = etcd3Client(stack.gate.endpoint, stack.pki, 'root', { grpcOptions: { 'grpc.ssl_target_name_override': 'localhost', 'grpc.max_receive_message_length': -1 } });
    try {
      const value = Buffer.alloc(1024 * 1024, 'v');
      for (let i = 0; i < 21; i += 1) await client.put(`/big/${String(i).padStart(2, '0')}`).value(value);
      const all = await client.getAll().prefix('/big/').buffers();
      expect(Object.keys(all)).toHaveLength(21);
      const total = Object.values(all).reduce((sum, v) => sum + v.length, 0);
      expect(total).toBe(21 * 1024 * 1024);
      expect(await client.getAll().prefix('/big/').count()).toBe(21);
    } finally {
      client.close();
    }
  });
});
