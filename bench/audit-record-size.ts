/**
 * How large audit records are, as a real etcdgate writes them in front of a real etcd,
 * for a kube-apiserver-shaped mix of calls plus tenants and streams: gets and paged
 * lists, count-only ranges, the health read, optimistic updates and creates as Txns on
 * mod_revision (with leases on events), deletes, lease grants, a tenant's Puts (SPIFFE
 * certificate) and some of its denied reads, watches and a keepalive stream. Prints the
 * median, p90, p99 and mean record size in bytes (a record is one line, newline
 * included), per kind and overall, and the bytes per call (connection records
 * included). Not a test; about half a minute: `node --import ./scripts/ts-loader.mjs
 * bench/audit-record-size.ts [--calls=N]`.
 */
import { readFileSync } from 'node:fs';
import type * as grpc from '@grpc/grpc-js';
import { encode } from '../test/support/etcd-messages.js';
import { startEtcd } from '../test/support/etcd.js';
import { startTestGateway } from '../test/support/gateway.js';
import { makePki } from '../test/support/pki.js';
import { callEtcd, rawClient, rawWatch } from '../test/support/raw-client.js';

const CALLS = Number(/^--calls=(\d+)$/u.exec(process.argv.find((a) => a.startsWith('--calls=')) ?? '')?.[1] ?? 4000);

const POLICY = {
  roles: {
    'kube-apiserver': {
      keys: [{ prefix: '/registry/', access: 'readwrite' }, { key: 'compact_rev_key', access: 'readwrite' }],
      capabilities: ['lease', 'status', 'compact'],
    },
    tenant: { keys: [{ prefix: '/tenants/{cn}/', access: 'readwrite' }], capabilities: ['lease'] },
  },
  bindings: [
    { match: { cn: 'kube-apiserver-etcd-client' }, roles: ['kube-apiserver'] },
    { match: { uri: 'spiffe://example.org/tenant/*' }, roles: ['tenant'] },
  ],
};

const b = (text: string): Buffer => Buffer.from(text);
const passThrough = (buffer: Buffer): Buffer => buffer;

/** Deterministic pseudo-random numbers, so two runs send the same mix. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

function stats(sizes: number[]): string {
  const sorted = [...sizes].sort((x, y) => x - y);
  const mean = sorted.reduce((sum, n) => sum + n, 0) / sorted.length;
  return `n=${String(sorted.length).padStart(5)}  median ${String(quantile(sorted, 0.5)).padStart(5)}  p90 ${String(quantile(sorted, 0.9)).padStart(5)}  p99 ${String(quantile(sorted, 0.99)).padStart(5)}  mean ${mean.toFixed(0).padStart(5)}`;
}

async function main(): Promise<void> {
  const pki = await makePki();
  const etcd = await startEtcd(pki);
  const gate = await startTestGateway({ pki, upstream: etcd.endpoints, policy: POLICY });
  const kube = rawClient(gate.endpoint, pki, 'kube-apiserver');
  const tenant = rawClient(gate.endpoint, pki, 'tenant-a');
  const rand = random(42);
  const revisions = new Map<string, string>();
  const pods = Array.from({ length: 200 }, (_, i) => `/registry/pods/default/web-7c5ddbdf54-${i.toString(36).padStart(5, 'x')}`);
  const nodes = Array.from({ length: 20 }, (_, i) => `/registry/leases/kube-node-lease/node-${String(i)}`);
  const call = (client: grpc.Client, method: string, type: string, request: Record<string, unknown>, response: string): Promise<Record<string, unknown>> =>
    callEtcd(client, 'KV', method, [type, request], response);
  const revisionOf = (response: Record<string, unknown>): string => (response['header'] as { revision: string }).revision;

  try {
    const lease = await callEtcd(kube, 'Lease', 'LeaseGrant', ['LeaseGrantRequest', { TTL: 3600 }], 'LeaseGrantResponse');
    const leaseId = lease['ID'] as string;
    // Streams: a few prefix watches (created now, ended at the end) and a keepalive stream.
    const watches = ['/registry/pods/', '/registry/leases/', '/registry/events/'].map((prefix) => {
      const stream = rawWatch(kube);
      stream.write(encode('etcdserverpb.WatchRequest', { create_request: { key: b(prefix), range_end: b(`${prefix.slice(0, -1)}0`), prev_kv: true, progress_notify: true } }));
      return stream;
    });
    const keepalive = kube.makeBidiStreamRequest('/etcdserverpb.Lease/LeaseKeepAlive', passThrough, passThrough);
    keepalive.on('error', () => undefined);
    keepalive.on('data', () => undefined);

    for (let i = 0; i < CALLS; i += 1) {
      const r = rand();
      const pod = pods[Math.floor(rand() * pods.length)] as string;
      if (r < 0.35) {
        await call(kube, 'Range', 'RangeRequest', { key: b(pod) }, 'RangeResponse');
      } else if (r < 0.45) {
        await call(kube, 'Range', 'RangeRequest', { key: b('/registry/pods/'), range_end: b('/registry/pods0'), limit: 500 }, 'RangeResponse');
      } else if (r < 0.48) {
        await call(kube, 'Range', 'RangeRequest', { key: b('/registry/pods/'), range_end: b('/registry/pods0'), count_only: true }, 'RangeResponse');
      } else if (r < 0.5) {
        await call(kube, 'Range', 'RangeRequest', { key: b('/registry/health') }, 'RangeResponse');
      } else if (r < 0.75) {
        // Optimistic update (node heartbeats and pod status); a create when the key is new.
        const key = rand() < 0.5 ? (nodes[Math.floor(rand() * nodes.length)] as string) : pod;
        const mod = revisions.get(key) ?? '0';
        const response = await call(kube, 'Txn', 'TxnRequest', {
          compare: [{ key: b(key), target: 'MOD', result: 'EQUAL', mod_revision: mod }],
          success: [{ request_put: { key: b(key), value: Buffer.alloc(300, 1) } }],
          failure: [{ request_range: { key: b(key) } }],
        }, 'TxnResponse');
        if (response['succeeded'] === true) revisions.set(key, revisionOf(response));
        else revisions.delete(key);
      } else if (r < 0.82) {
        // An event: created once, with the lease that expires it.
        const key = `/registry/events/default/web.${i.toString(16)}`;
        await call(kube, 'Txn', 'TxnRequest', {
          compare: [{ key: b(key), target: 'MOD', result: 'EQUAL', mod_revision: 0 }],
          success: [{ request_put: { key: b(key), value: Buffer.alloc(200, 2), lease: leaseId } }],
          failure: [],
        }, 'TxnResponse');
      } else if (r < 0.85) {
        const key = `/registry/events/default/web.${Math.max(0, i - 50).toString(16)}`;
        await call(kube, 'Txn', 'TxnRequest', {
          compare: [{ key: b(key), target: 'MOD', result: 'GREATER', mod_revision: 0 }],
          success: [{ request_delete_range: { key: b(key) } }],
          failure: [{ request_range: { key: b(key) } }],
        }, 'TxnResponse');
      } else if (r < 0.87) {
        await callEtcd(kube, 'Lease', 'LeaseGrant', ['LeaseGrantRequest', { TTL: 3660 }], 'LeaseGrantResponse');
      } else if (r < 0.88) {
        keepalive.write(encode('etcdserverpb.LeaseKeepAliveRequest', { ID: leaseId }));
      } else if (r < 0.97) {
        await call(tenant, 'Put', 'PutRequest', { key: b(`/tenants/tenant-a/config/${String(i % 50)}`), value: b('v') }, 'PutResponse');
      } else {
        await call(tenant, 'Range', 'RangeRequest', { key: b('/tenants/tenant-b/'), range_end: b('/tenants/tenant-b0') }, 'RangeResponse').catch(() => undefined);
      }
    }
    for (const stream of watches) stream.cancel();
    keepalive.end();
    kube.close();
    tenant.close();
    await new Promise((resolve) => setTimeout(resolve, 500));
    await gate.gateway.flushAudit();

    const lines = readFileSync(gate.auditFile, 'utf8').split('\n').filter((line) => line !== '');
    const byKind = new Map<string, number[]>();
    const all: number[] = [];
    const calls: number[] = [];
    let total = 0;
    for (const line of lines) {
      const size = Buffer.byteLength(line, 'utf8') + 1;
      total += size;
      const record = JSON.parse(line) as { etcdgate?: { event_kind?: string } };
      const kind = record.etcdgate?.event_kind ?? 'unknown';
      all.push(size);
      if (kind === 'call') calls.push(size);
      const list = byKind.get(kind) ?? [];
      list.push(size);
      byKind.set(kind, list);
    }
    console.log(`audit record sizes in bytes, ${String(lines.length)} records, ${String(CALLS)} calls`);
    for (const [kind, sizes] of [...byKind].sort()) console.log(`  ${kind.padEnd(16)} ${stats(sizes)}`);
    console.log(`  ${'all records'.padEnd(16)} ${stats(all)}`);
    console.log(`  ${'call records'.padEnd(16)} ${stats(calls)}`);
    console.log(`  audit bytes per call: ${(total / CALLS).toFixed(0)}`);
  } finally {
    await gate.stop();
    await etcd.stop();
    await pki.remove();
  }
}

await main();
