/**
 * The serializable-Range cache (cache.serializableRange), against real etcd:
 *  - a write through etcdgate invalidates the cached answer at once;
 *  - a write made directly to etcd is seen through the upstream watch, long before the
 *    (deliberately huge) staleness bound would expire the entry;
 *  - an identity the policy denies never receives an answer another identity cached;
 * and, on the cache alone (fake clock, fake watch): entries expire after maxStalenessMs,
 * a read that raced an overlapping write is not stored, a range entry is invalidated by
 * a write inside it, and nothing is stored before the upstream watch is established.
 */
import { EventEmitter } from 'node:events';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { RangeCache } from '../src/proxy/range-cache.js';
import { decode, encode } from './support/etcd-messages.js';
import { useGatewayStack } from './support/stack.js';
import { parseExposition, sampleValue } from './support/prometheus-text.js';
import { rawClient, rawUnary } from './support/raw-client.js';

const POLICY = {
  roles: {
    all: { keys: [{ all: true, access: 'readwrite' }] },
    'tenant-b-only': { keys: [{ prefix: '/tenants/tenant-b/', access: 'readwrite' }] },
  },
  bindings: [
    { match: { cn: 'root' }, roles: ['all'] },
    { match: { cn: 'tenant-b' }, roles: ['tenant-b-only'] },
  ],
};

// A staleness bound far beyond the test's length: only invalidation can refresh an entry.
const stack = useGatewayStack({ policy: POLICY, overrides: { cache: { serializableRange: { enabled: true, maxEntries: 100, maxStalenessMs: 600_000 } } } });

const clients: grpc.Client[] = [];
afterAll(() => {
  for (const client of clients) client.close();
});

function client(name: string, endpoint = stack.gate.endpoint): grpc.Client {
  const c = rawClient(endpoint, stack.pki, name);
  clients.push(c);
  return c;
}

const serializableRead = (key: string): Buffer => encode('etcdserverpb.RangeRequest', { key: Buffer.from(key), serializable: true });

async function readValue(c: grpc.Client, key: string): Promise<string | undefined> {
  const response = decode('etcdserverpb.RangeResponse', await rawUnary(c, '/etcdserverpb.KV/Range', serializableRead(key)));
  const kvs = response['kvs'] as { value: Buffer }[] | undefined;
  return kvs?.[0]?.value.toString('utf8');
}

async function put(c: grpc.Client, key: string, value: string): Promise<void> {
  await rawUnary(c, '/etcdserverpb.KV/Put', encode('etcdserverpb.PutRequest', { key: Buffer.from(key), value: Buffer.from(value) }));
}

/** Range calls etcdgate has forwarded to etcd so far. */
async function upstreamRanges(): Promise<number> {
  const text = await (await fetch(`${stack.gate.adminUrl}/metrics`)).text();
  return sampleValue(parseExposition(text), 'etcdgate_upstream_request_duration_seconds_count', { method: 'Range' });
}

async function eventually(probe: () => Promise<string | undefined>, want: string, timeoutMs = 10_000): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value === want || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('serializable-Range cache through etcdgate', () => {
  it('serves the new value after a write through etcdgate', async () => {
    const root = client('root');
    await put(root, '/cache/a', 'one');
    // Let the cache's upstream watch come up (until then nothing is cached).
    await eventually(() => readValue(root, '/cache/a'), 'one');
    await readValue(root, '/cache/a');
    // A cached answer: etcd is not asked again.
    const before = await upstreamRanges();
    expect(await readValue(root, '/cache/a')).toBe('one');
    expect(await upstreamRanges()).toBe(before);
    await put(root, '/cache/a', 'two');
    expect(await readValue(root, '/cache/a')).toBe('two');
    expect(await upstreamRanges()).toBe(before + 1);
  });

  it('sees a write made directly to etcd through the upstream watch', async () => {
    const root = client('root');
    const direct = client('root', stack.etcd.endpoints[0]);
    await put(root, '/cache/b', 'one');
    expect(await eventually(() => readValue(root, '/cache/b'), 'one')).toBe('one');
    expect(await readValue(root, '/cache/b')).toBe('one');
    await put(direct, '/cache/b', 'two');
    expect(await eventually(() => readValue(root, '/cache/b'), 'two')).toBe('two');
  });

  it('never gives a denied identity an answer another identity cached', async () => {
    const root = client('root');
    const tenantB = client('tenant-b');
    await put(root, '/tenants/tenant-a/secret', 'hidden');
    // Populate the cache twice over, as the identity allowed to read it.
    expect(await eventually(() => readValue(root, '/tenants/tenant-a/secret'), 'hidden')).toBe('hidden');
    expect(await readValue(root, '/tenants/tenant-a/secret')).toBe('hidden');
    const refused = await rawUnary(tenantB, '/etcdserverpb.KV/Range', serializableRead('/tenants/tenant-a/secret')).then(
      () => undefined,
      (error: grpc.ServiceError) => error,
    );
    expect(refused?.code).toBe(7);
    // The allowed identity's own reads still work from the same cache.
    await put(tenantB, '/tenants/tenant-b/x', 'mine');
    expect(await readValue(tenantB, '/tenants/tenant-b/x')).toBe('mine');
  });
});

/** A Watch stream stand-in: the cache writes its create request and reads answers. */
class FakeWatch extends EventEmitter {
  readonly written: Buffer[] = [];
  onMessage: (message: Buffer) => void = () => undefined;
  onEnd: () => void = () => undefined;
  /** The opener RangeCache.follow takes. */
  readonly open = (onMessage: (message: Buffer) => void, onEnd: () => void): FakeWatch => {
    this.onMessage = onMessage;
    this.onEnd = onEnd;
    return this;
  };
  write(message: Buffer): void {
    this.written.push(message);
  }
  cancel(): void {
    this.onEnd();
  }
  /** etcd answers on the watch. */
  answer(message: Buffer): void {
    this.onMessage(message);
  }
}

const CREATED = encode('etcdserverpb.WatchResponse', { created: true });

function readyCache(now: () => number, maxStalenessMs = 1000): { cache: RangeCache; watch: FakeWatch; stop: () => void } {
  const cache = new RangeCache({ maxEntries: 10, maxStalenessMs, now });
  const watch = new FakeWatch();
  const stop = cache.follow(watch.open);
  watch.answer(CREATED);
  return { cache, watch, stop };
}

describe('RangeCache', () => {
  const answer = Buffer.from('answer');

  it('stops serving an entry after maxStalenessMs', () => {
    let t = 0;
    const { cache, stop } = readyCache(() => t, 1000);
    const read = cache.cacheable(serializableRead('/k'));
    if (read === undefined) throw new Error('serializable read not cacheable');
    cache.store(read, answer);
    t = 999;
    expect(cache.get(read)).toEqual(answer);
    t = 1001;
    expect(cache.get(read)).toBeUndefined();
    stop();
  });

  it('ignores linearizable reads', () => {
    const { cache, stop } = readyCache(() => 0);
    expect(cache.cacheable(encode('etcdserverpb.RangeRequest', { key: Buffer.from('/k') }))).toBeUndefined();
    stop();
  });

  it('does not store a read that raced an overlapping write, but does store one that raced an unrelated write', () => {
    const { cache, stop } = readyCache(() => 0);
    const read = cache.cacheable(serializableRead('/k'));
    const other = cache.cacheable(serializableRead('/other'));
    if (read === undefined || other === undefined) throw new Error('not cacheable');
    cache.invalidate({ start: Buffer.from('/k'), end: Buffer.alloc(0) });
    cache.store(read, answer);
    cache.store(other, answer);
    expect(cache.get(read)).toBeUndefined();
    expect(cache.get(other)).toEqual(answer);
    stop();
  });

  it('invalidates a prefix entry when a key inside it is written, via the upstream watch', () => {
    const { cache, watch, stop } = readyCache(() => 0);
    const prefixRead = cache.cacheable(encode('etcdserverpb.RangeRequest', { key: Buffer.from('/p/'), range_end: Buffer.from('/p0'), serializable: true }));
    if (prefixRead === undefined) throw new Error('not cacheable');
    cache.store(prefixRead, answer);
    expect(cache.get(prefixRead)).toEqual(answer);
    watch.answer(encode('etcdserverpb.WatchResponse', { events: [{ type: 'PUT', kv: { key: Buffer.from('/q/x') } }] }));
    expect(cache.get(prefixRead)).toEqual(answer);
    watch.answer(encode('etcdserverpb.WatchResponse', { events: [{ type: 'PUT', kv: { key: Buffer.from('/p/x') } }] }));
    expect(cache.get(prefixRead)).toBeUndefined();
    stop();
  });

  it('stores nothing before the watch is established, and clears everything when it is lost', () => {
    const cache = new RangeCache({ maxEntries: 10, maxStalenessMs: 1000, now: () => 0 });
    const watch = new FakeWatch();
    const stop = cache.follow(watch.open, 60_000);
    const read = cache.cacheable(serializableRead('/k'));
    if (read === undefined) throw new Error('not cacheable');
    cache.store(read, answer);
    expect(cache.size).toBe(0);
    watch.answer(CREATED);
    cache.store(cache.cacheable(serializableRead('/k')) ?? read, answer);
    expect(cache.size).toBe(1);
    watch.onEnd();
    expect(cache.size).toBe(0);
    stop();
  });
});
