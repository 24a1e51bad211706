/**
 * A kube-apiserver-shaped workload through etcdgate with config/policies/kube-apiserver.yaml,
 * request for request in the shapes kube-apiserver's etcd3 storage sends: create-if-absent
 * and optimistic updates as Txns on mod_revision, paged lists at a fixed revision,
 * count_only and keys_only ranges, leases on events, prefix watches with prev_kv,
 * progress_notify, a start revision and progress requests (with `hasleader` metadata),
 * the compaction handshake on compact_rev_key, Status and the /registry/health Get.
 * The same certificate reading outside /registry/ is refused.
 */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decode, encode } from './support/etcd-messages.js';
import { b, DENIED_TEXT, expectDenied } from './support/enforcement.js';
import { useGatewayStack } from './support/stack.js';
import { callEtcd, rawClient, rawWatch } from './support/raw-client.js';

const KUBE_POLICY = fileURLToPath(new URL('../config/policies/kube-apiserver.yaml', import.meta.url));
const PODS = '/registry/pods/';
const PODS_END = '/registry/pods0';

const stack = useGatewayStack({ policy: KUBE_POLICY });
let apiserver: grpc.Client;
let direct: grpc.Client;

beforeAll(() => {
  apiserver = rawClient(stack.gate.endpoint, stack.pki, 'kube-apiserver');
  direct = rawClient(stack.etcd.endpoints[0]!, stack.pki, 'root');
});

afterAll(() => {
  apiserver?.close();
  direct?.close();
});

type Message = Record<string, unknown>;
interface KeyValue {
  key: Buffer;
  value?: Buffer;
  mod_revision?: string;
  version?: string;
}

const range = (request: Message): Promise<Message> => callEtcd(apiserver, 'KV', 'Range', ['RangeRequest', request], 'RangeResponse');
const txn = (request: Message): Promise<Message> => callEtcd(apiserver, 'KV', 'Txn', ['TxnRequest', request], 'TxnResponse');

function revisionOf(response: Message): string {
  return (response['header'] as { revision: string }).revision;
}

function kvsOf(response: Message): KeyValue[] {
  return (response['kvs'] ?? []) as KeyValue[];
}

/** kube-apiserver's create: put only if the key has never existed (mod_revision == 0). */
async function create(key: string, value: string, lease?: string): Promise<Message> {
  const put: Message = { key: b(key), value: b(value), ...(lease === undefined ? {} : { lease }) };
  return txn({
    compare: [{ key: b(key), target: 'MOD', result: 'EQUAL', mod_revision: 0 }],
    success: [{ request_put: put }],
    failure: [{ request_range: { key: b(key) } }],
  });
}

/** kube-apiserver's guaranteed update: put if mod_revision is still the one read, else read the current object. */
function update(key: string, value: string, modRevision: string): Promise<Message> {
  return txn({
    compare: [{ key: b(key), target: 'MOD', result: 'EQUAL', mod_revision: modRevision }],
    success: [{ request_put: { key: b(key), value: b(value) } }],
    failure: [{ request_range: { key: b(key) } }],
  });
}

describe('kube-apiserver workload', () => {
  it('creates objects, lists them in pages at one revision, counts them and lists keys only', async () => {
    for (let i = 0; i < 10; i += 1) {
      const created = await create(`${PODS}default/pod-${i}`, `{"pod":${i}}`);
      expect(created['succeeded']).toBe(true);
    }
    // Creating an existing object fails the compare and returns the stored one.
    const again = await create(`${PODS}default/pod-0`, 'dup');
    expect(again['succeeded']).toBeUndefined();
    const existing = (again['responses'] as Array<{ response_range: { kvs: KeyValue[] } }>)[0]?.response_range.kvs[0];
    expect(existing?.value?.toString()).toBe('{"pod":0}');

    const keys: string[] = [];
    let revision = '0';
    let from = b(PODS);
    for (let page = 0; page < 10; page += 1) {
      const response = await range({ key: from, range_end: b(PODS_END), limit: 4, revision });
      if (revision === '0') revision = revisionOf(response);
      const kvs = kvsOf(response);
      keys.push(...kvs.map((kv) => kv.key.toString()));
      if (response['more'] !== true) break;
      const last = kvs[kvs.length - 1]!.key;
      from = Buffer.concat([last, Buffer.from([0])]);
      // A write after the first page must not show up in later pages of this list.
      if (page === 0) await create(`${PODS}default/pod-late`, 'late');
    }
    expect(keys).toEqual(Array.from({ length: 10 }, (_, i) => `${PODS}default/pod-${i}`));

    const counted = await range({ key: b(PODS), range_end: b(PODS_END), count_only: true });
    expect(counted['count']).toBe('11');
    expect(counted['kvs']).toBeUndefined();

    const keysOnly = await range({ key: b(PODS), range_end: b(PODS_END), keys_only: true, limit: 3 });
    expect(kvsOf(keysOnly)).toHaveLength(3);
    expect(kvsOf(keysOnly).every((kv) => kv.value === undefined)).toBe(true);
    expect(keysOnly['more']).toBe(true);
  });

  it('updates optimistically on mod_revision: success, then a conflict answered with the current object', async () => {
    const key = `${PODS}default/pod-1`;
    const [current] = kvsOf(await range({ key: b(key) }));
    const modRevision = current!.mod_revision!;
    const updated = await update(key, '{"pod":1,"v":2}', modRevision);
    expect(updated['succeeded']).toBe(true);

    const conflict = await update(key, '{"pod":1,"v":"stale"}', modRevision);
    expect(conflict['succeeded']).toBeUndefined();
    const latest = (conflict['responses'] as Array<{ response_range: { kvs: KeyValue[] } }>)[0]?.response_range.kvs[0];
    expect(latest?.value?.toString()).toBe('{"pod":1,"v":2}');
  });

  it('grants a lease, puts an event with it, and deletes an object in a Txn', async () => {
    const granted = await callEtcd(apiserver, 'Lease', 'LeaseGrant', ['LeaseGrantRequest', { TTL: 3600 }], 'LeaseGrantResponse');
    const lease = granted['ID'] as string;
    const event = await create('/registry/events/default/pod-2.1', '{"reason":"Scheduled"}', lease);
    expect(event['succeeded']).toBe(true);
    const ttl = await callEtcd(direct, 'Lease', 'LeaseTimeToLive', ['LeaseTimeToLiveRequest', { ID: lease, keys: true }], 'LeaseTimeToLiveResponse');
    expect((ttl['keys'] as Buffer[]).map((k) => k.toString())).toEqual(['/registry/events/default/pod-2.1']);
    // A second event on the same lease: the lease only holds keys this caller may write.
    expect((await create('/registry/events/default/pod-3.1', '{}', lease))['succeeded']).toBe(true);

    const key = `${PODS}default/pod-9`;
    const [current] = kvsOf(await range({ key: b(key) }));
    const deleted = await txn({
      compare: [{ key: b(key), target: 'MOD', result: 'EQUAL', mod_revision: current!.mod_revision! }],
      success: [{ request_delete_range: { key: b(key) } }],
      failure: [{ request_range: { key: b(key) } }],
    });
    expect(deleted['succeeded']).toBe(true);
    expect(kvsOf(await range({ key: b(key) }))).toEqual([]);
  });

  it('watches a prefix from a revision with prev_kv and progress_notify, and answers a progress request', async () => {
    const start = revisionOf(await range({ key: b('/registry/health') }));
    const metadata = new grpc.Metadata();
    metadata.set('hasleader', 'true');
    const stream = rawWatch(apiserver, metadata);
    const responses: Message[] = [];
    const waiters = new Set<() => void>();
    stream.on('data', (chunk: Buffer) => {
      responses.push(decode('etcdserverpb.WatchResponse', chunk));
      for (const wake of waiters) wake();
    });
    const waitFor = (what: string, predicate: () => boolean): Promise<void> =>
      new Promise((resolve, reject) => {
        const wake = (): void => {
          if (!predicate()) return;
          waiters.delete(wake);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(wake);
          reject(new Error(`${what}: not seen in ${JSON.stringify(responses)}`));
        }, 10_000);
        waiters.add(wake);
        wake();
      });
    try {
      const nextRevision = String(Number(start) + 1);
      stream.write(encode('etcdserverpb.WatchRequest', {
        create_request: { key: b(PODS), range_end: b(PODS_END), start_revision: nextRevision, prev_kv: true, progress_notify: true },
      }));
      stream.write(encode('etcdserverpb.WatchRequest', { create_request: { key: b('compact_rev_key'), start_revision: nextRevision } }));
      // Outside /registry/: refused in-band, the stream stays up.
      stream.write(encode('etcdserverpb.WatchRequest', { create_request: { key: b('/'), range_end: b('0') } }));
      await waitFor('three creates', () => responses.filter((r) => r['created'] === true).length === 3);
      const [pods, compactKey, refused] = responses.filter((r) => r['created'] === true);
      expect(pods?.['canceled']).toBeUndefined();
      expect(compactKey?.['canceled']).toBeUndefined();
      expect(refused).toMatchObject({ canceled: true, watch_id: '-1', cancel_reason: DENIED_TEXT });
      const podsId = String(pods?.['watch_id'] ?? '0');

      const key = `${PODS}default/pod-4`;
      const [current] = kvsOf(await range({ key: b(key) }));
      expect((await update(key, '{"pod":4,"v":2}', current!.mod_revision!))['succeeded']).toBe(true);
      await waitFor('update event', () => responses.some((r) => String(r['watch_id'] ?? '0') === podsId && Array.isArray(r['events'])));
      const event = responses.find((r) => Array.isArray(r['events']))?.['events'] as Array<{ kv: KeyValue; prev_kv?: KeyValue }>;
      expect(event[0]?.kv.key.toString()).toBe(key);
      expect(event[0]?.prev_kv?.value?.toString()).toBe('{"pod":4}');

      const seen = responses.length;
      stream.write(encode('etcdserverpb.WatchRequest', { progress_request: {} }));
      await waitFor('progress response', () => responses.slice(seen).some((r) => r['created'] !== true && r['events'] === undefined));
      const progress = responses.slice(seen).find((r) => r['created'] !== true && r['events'] === undefined);
      expect(Number(revisionOf(progress!))).toBeGreaterThan(Number(start));
    } finally {
      stream.cancel();
    }
  });

  it('runs the compaction handshake on compact_rev_key, then compacts', async () => {
    // First compactor: compact_rev_key has never been written (version 0).
    const revision = revisionOf(await range({ key: b('/registry/health') }));
    const claim = await txn({
      compare: [{ key: b('compact_rev_key'), target: 'VERSION', result: 'EQUAL', version: 0 }],
      success: [{ request_put: { key: b('compact_rev_key'), value: b(revision) } }],
      failure: [{ request_range: { key: b('compact_rev_key') } }],
    });
    expect(claim['succeeded']).toBe(true);
    // A second apiserver racing with the same expectation loses and reads the winner's value.
    const lost = await txn({
      compare: [{ key: b('compact_rev_key'), target: 'VERSION', result: 'EQUAL', version: 0 }],
      success: [{ request_put: { key: b('compact_rev_key'), value: b('0') } }],
      failure: [{ request_range: { key: b('compact_rev_key') } }],
    });
    expect(lost['succeeded']).toBeUndefined();

    await callEtcd(apiserver, 'KV', 'Compact', ['CompactionRequest', { revision }], 'CompactionResponse');
    const old = range({ key: b(PODS), range_end: b(PODS_END), revision: String(Number(revision) - 1) });
    await expect(old).rejects.toMatchObject({ code: grpc.status.OUT_OF_RANGE });
  });

  it('answers Status and the /registry/health Get', async () => {
    const status = await callEtcd(apiserver, 'Maintenance', 'Status', ['StatusRequest', {}], 'StatusResponse');
    expect(status['version']).toMatch(/^3\.4\./u);
    expect(status['leader']).toBeDefined();
    const health = await range({ key: b('/registry/health') });
    expect(health['count']).toBeUndefined();
    expect(revisionOf(health)).toMatch(/^\d+$/u);
  });

  it('refuses the same certificate outside /registry/ and admin calls it has no capability for', async () => {
    await callEtcd(direct, 'KV', 'Put', ['PutRequest', { key: b('/other/secret'), value: b('x') }], 'PutResponse');
    await expectDenied(range({ key: b('/other/secret') }));
    await expectDenied(range({ key: b('/registry/'), range_end: b('/registry0\u0000') }));
    await expectDenied(range({ key: b('\0'), range_end: b('\0'), count_only: true }));
    await expectDenied(txn({ success: [{ request_put: { key: b('/other/secret'), value: b('y') } }] }));
    await expectDenied(callEtcd(apiserver, 'Maintenance', 'Defragment', ['DefragmentRequest', {}], 'DefragmentResponse'));
    const stored = await callEtcd(direct, 'KV', 'Range', ['RangeRequest', { key: b('/other/secret') }], 'RangeResponse');
    expect(kvsOf(stored)[0]?.value?.toString()).toBe('x');
  });
});
