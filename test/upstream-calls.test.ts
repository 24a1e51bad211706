/**
 * etcdgate's own calls to etcd (src/upstream/calls.ts), the interface its features use
 * (lease lookups, backups, re-encryption): unary calls, a server stream read with
 * backpressure, a duplex stream, and failures as { code, details } statuses.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NOOP_METRICS } from '../src/observability/metrics-types.js';
import { upstreamCalls, type UpstreamCalls } from '../src/upstream/calls.js';
import { UpstreamPool } from '../src/upstream/pool.js';
import { parseConfig } from '../src/config/load.js';
import { decode, encode } from './support/etcd-messages.js';
import { startEtcd, type EtcdCluster } from './support/etcd.js';
import { makePki, type Pki } from './support/pki.js';

let pki: Pki;
let etcd: EtcdCluster;
let pool: UpstreamPool;
let calls: UpstreamCalls;

function upstreamConfig(endpoints: readonly string[]) {
  return parseConfig(
    {
      server: { listen: '127.0.0.1:0', advertiseClientUrls: ['https://127.0.0.1:1'], tls: { cert: pki.gateServer.cert, key: pki.gateServer.key, clientCA: pki.ca } },
      upstream: { endpoints: [...endpoints], tls: { ca: pki.ca, cert: pki.upstreamClient.cert, key: pki.upstreamClient.key } },
      policy: { roles: {}, bindings: [] },
    },
    { source: '', baseDir: '/' },
  ).upstream;
}

beforeAll(async () => {
  pki = await makePki();
  etcd = await startEtcd(pki);
  pool = new UpstreamPool(upstreamConfig(etcd.endpoints), NOOP_METRICS);
  calls = upstreamCalls(pool, 5_000);
}, 60_000);

afterAll(async () => {
  pool.close();
  await etcd.stop();
  await pki.remove();
});

describe('upstream calls', () => {
  it('makes unary calls and returns etcd\'s response message', async () => {
    await calls.unary('/etcdserverpb.KV/Put', encode('etcdserverpb.PutRequest', { key: Buffer.from('/calls/a'), value: Buffer.from('one') }));
    const response = decode('etcdserverpb.RangeResponse', await calls.unary('/etcdserverpb.KV/Range', encode('etcdserverpb.RangeRequest', { key: Buffer.from('/calls/a') }), { idempotent: true }));
    const kvs = response['kvs'] as Array<{ value: Buffer }>;
    expect(kvs.map((kv) => kv.value.toString())).toEqual(['one']);
  });

  it('rejects with etcd\'s status', async () => {
    const future = encode('etcdserverpb.RangeRequest', { key: Buffer.from('/calls/a'), revision: 1_000_000 });
    await expect(calls.unary('/etcdserverpb.KV/Range', future)).rejects.toMatchObject({ code: 11, details: expect.stringContaining('future revision') as unknown });
  });

  it('streams a snapshot message by message', async () => {
    let bytes = 0;
    let messages = 0;
    for await (const message of calls.serverStream('/etcdserverpb.Maintenance/Snapshot', Buffer.alloc(0))) {
      messages += 1;
      const blob = decode('etcdserverpb.SnapshotResponse', message)['blob'] as Buffer | undefined;
      bytes += blob?.length ?? 0;
    }
    expect(messages).toBeGreaterThan(0);
    // A database holds at least a few pages, and etcd appends a 32-byte SHA-256.
    expect(bytes).toBeGreaterThan(4096);
  });

  it('carries a duplex watch: create, then an event', async () => {
    const watch = calls.duplex('/etcdserverpb.Watch/Watch');
    watch.write(encode('etcdserverpb.WatchRequest', { create_request: { key: Buffer.from('/calls/w') } }));
    const seen: Array<Record<string, unknown>> = [];
    for await (const message of watch) {
      const response = decode('etcdserverpb.WatchResponse', message);
      seen.push(response);
      if (response['created'] === true) await calls.unary('/etcdserverpb.KV/Put', encode('etcdserverpb.PutRequest', { key: Buffer.from('/calls/w'), value: Buffer.from('x') }));
      if (Array.isArray(response['events'])) break;
    }
    expect(seen[0]?.['created']).toBe(true);
    const events = seen.at(-1)?.['events'] as Array<{ kv: { key: Buffer } }>;
    expect(events[0]?.kv.key.toString()).toBe('/calls/w');
  });

  it('fails with UNAVAILABLE when no endpoint answers', async () => {
    const deadPool = new UpstreamPool({ ...upstreamConfig(['https://127.0.0.1:1']), dialTimeoutMs: 500 }, NOOP_METRICS);
    try {
      const dead = upstreamCalls(deadPool, 1_000);
      await expect(dead.unary('/etcdserverpb.KV/Range', encode('etcdserverpb.RangeRequest', { key: Buffer.from('x') }))).rejects.toMatchObject({ code: 14 });
    } finally {
      deadPool.close();
    }
  });
});
