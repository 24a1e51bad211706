/**
 * `npm run soak -- --minutes N`: a long mixed load through one etcdgate process in front
 * of one etcd, to find leaks. KV workers (Put, Range, prefix Range, Txn) run at a steady
 * rate; two watchers follow every Put; watch streams and leases are created and torn
 * down all along (a watcher waits for its event, a lease gets keepalives, then is
 * revoked), and one lease is kept alive for the whole run. Every minute it prints
 * etcdgate's RSS and open file descriptors (from /proc), operation and error counts;
 * at the end, a verdict on RSS drift after the first (warm-up) minute. Exits 1 when any
 * call failed, or RSS kept growing over at least 3 minutes after the warm-up (shorter
 * runs print the verdict as indicative only). Not part of `npm test`.
 *
 * Flags: --minutes N (default 1, fractions allowed), --rate OPS (KV ops per second, default 300).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { decode, encode } from '../test/support/etcd-messages.js';
import { startEtcd } from '../test/support/etcd.js';
import { startGatewayProcess } from '../test/support/gateway-process.js';
import { CallError, headerRevision, prefixEnd, unary } from '../test/support/load.js';
import { makePki } from '../test/support/pki.js';
import { rawClient } from '../test/support/raw-client.js';

const passThrough = (buffer: Buffer): Buffer => buffer;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const MIB = 1024 * 1024;
/** How often RSS is sampled for the drift verdict. */
const SAMPLE_MS = 10_000;
const WARM_UP_MS = 60_000;
/** Post-warm-up span from which a growing RSS fails the run. */
const CONCLUSIVE_MS = 3 * 60_000;

/** Counters of one run. */
class Tally {
  readonly ops = new Map<string, number>();
  readonly errors = new Map<string, number>();
  watchEvents = 0;

  ok(kind: string): void {
    this.ops.set(kind, (this.ops.get(kind) ?? 0) + 1);
  }

  failed(kind: string, error: unknown): void {
    const code = error instanceof CallError ? (grpc.status[error.code] ?? String(error.code)) : error instanceof Error ? error.message : 'unknown';
    const label = `${kind}:${code}`;
    this.errors.set(label, (this.errors.get(label) ?? 0) + 1);
  }

  /** Runs `op`, counting its success or failure under `kind`. */
  async run(kind: string, op: () => Promise<unknown>): Promise<void> {
    try {
      await op();
      this.ok(kind);
    } catch (error: unknown) {
      this.failed(kind, error);
    }
  }
}

/** VmRSS of a process in bytes. */
function rssOf(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/mu.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1] ?? 0) * 1024;
}

/** Open file descriptors of a process (sockets, files, pipes). */
function fdsOf(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** A sample's value from etcdgate's own /metrics (prom-client's process and Node.js metrics), or NaN. */
async function metricOf(adminUrl: string, name: string): Promise<number> {
  try {
    const text = await (await fetch(`${adminUrl}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    return line === undefined ? Number.NaN : Number(line.split(' ')[1]);
  } catch {
    return Number.NaN;
  }
}

function format(map: ReadonlyMap<string, number>): string {
  return map.size === 0 ? 'none' : [...map].map(([name, count]) => `${name}=${count}`).join(' ');
}

/** Paces a loop to `perSecond` iterations per second. */
function pacer(perSecond: number): () => Promise<void> {
  const interval = 1000 / perSecond;
  let next = Date.now();
  return async () => {
    next += interval;
    const wait = next - Date.now();
    if (wait > 0) await sleep(wait);
    else if (wait < -1000) next = Date.now();
  };
}

/** Opens a bidi stream and returns it with a queue of decoded responses. */
function openStream(client: grpc.Client, method: string, responseType: string): { stream: grpc.ClientDuplexStream<Buffer, Buffer>; next: (timeoutMs: number) => Promise<Record<string, unknown>> } {
  const stream = client.makeBidiStreamRequest(method, passThrough, passThrough, new grpc.Metadata());
  const queue: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  let failure: Error | undefined;
  stream.on('data', (chunk: Buffer) => {
    queue.push(decode(`etcdserverpb.${responseType}`, chunk));
    waiters.shift()?.();
  });
  stream.on('error', (error: grpc.ServiceError) => {
    failure = new CallError(error.code, error.details);
    for (const wake of waiters.splice(0)) wake();
  });
  const next = async (timeoutMs: number): Promise<Record<string, unknown>> => {
    const limit = Date.now() + timeoutMs;
    while (queue.length === 0) {
      if (failure !== undefined) throw failure;
      const left = limit - Date.now();
      if (left <= 0) throw new Error('stream timeout');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return queue.shift() as Record<string, unknown>;
  };
  return { stream, next };
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { minutes: { type: 'string', default: '1' }, rate: { type: 'string', default: '300' } } });
  const minutes = Number(values.minutes);
  const rate = Number(values.rate);
  if (!(minutes > 0) || !(rate > 0)) throw new Error('--minutes and --rate must be positive numbers');
  const durationMs = minutes * 60_000;

  const pki = await makePki();
  const etcd = await startEtcd(pki);
  const auditDir = await mkdtemp(path.join(tmpdir(), 'etcdgate-soak-'));
  const gate = await startGatewayProcess({ pki, upstream: etcd.endpoints, audit: { sink: `file:${path.join(auditDir, 'audit.jsonl')}` }, logLevel: 'info' });
  const pid = gate.child.pid;
  if (pid === undefined) throw new Error('etcdgate process has no pid');
  const client = rawClient(gate.endpoint, pki, 'root');
  const tally = new Tally();
  let running = true;
  const cleanup = async (): Promise<void> => {
    running = false;
    client.close();
    await gate.stop();
    await etcd.stop();
    await pki.remove();
    await rm(auditDir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    void cleanup().finally(() => process.exit(130));
  });
  process.stdout.write(`soak: ${minutes} min, ${rate} KV ops/s, etcdgate pid ${pid}, start RSS ${(rssOf(pid) / MIB).toFixed(1)} MiB, fds ${fdsOf(pid)}\n`);

  const value = Buffer.alloc(100, 'v');
  const kv = async (worker: number, workers: number): Promise<void> => {
    const pace = pacer(rate / workers);
    for (let n = worker; running; n += workers) {
      const key = Buffer.from(`/soak/kv/${n % 2000}`);
      switch (n % 4) {
        case 0:
          await tally.run('put', () => unary(client, 'KV', 'Put', ['PutRequest', { key, value }], 'PutResponse', { deadlineMs: 5_000 }));
          break;
        case 1:
          await tally.run('range', () => unary(client, 'KV', 'Range', ['RangeRequest', { key }], 'RangeResponse', { deadlineMs: 5_000 }));
          break;
        case 2:
          await tally.run('range-prefix', () =>
            unary(client, 'KV', 'Range', ['RangeRequest', { key: Buffer.from('/soak/kv/'), range_end: prefixEnd('/soak/kv/'), limit: 20 }], 'RangeResponse', { deadlineMs: 5_000 }),
          );
          break;
        default:
          await tally.run('txn', () =>
            unary(
              client,
              'KV',
              'Txn',
              ['TxnRequest', { compare: [{ key, target: 'MOD', result: 'GREATER', mod_revision: '0' }], success: [{ request_put: { key, value } }], failure: [{ request_range: { key } }] }],
              'TxnResponse',
              { deadlineMs: 5_000 },
            ),
          );
      }
      await pace();
    }
  };

  // Two watchers that see every KV Put for the whole run.
  const follow = (): grpc.ClientDuplexStream<Buffer, Buffer> => {
    const { stream } = openStream(client, '/etcdserverpb.Watch/Watch', 'WatchResponse');
    stream.on('data', (chunk: Buffer) => {
      const response = decode('etcdserverpb.WatchResponse', chunk) as { events?: unknown[]; canceled?: boolean };
      tally.watchEvents += response.events?.length ?? 0;
      if (response.canceled === true) tally.failed('watch-follow', new Error('canceled'));
    });
    stream.on('error', (error: grpc.ServiceError) => {
      if (running) tally.failed('watch-follow', new CallError(error.code, error.details));
    });
    stream.write(encode('etcdserverpb.WatchRequest', { create_request: { key: Buffer.from('/soak/kv/'), range_end: prefixEnd('/soak/kv/') } }));
    return stream;
  };
  const followers = [follow(), follow()];

  // Short-lived watch streams: create, see one event, then cancel or end gracefully.
  const watchChurn = async (): Promise<void> => {
    for (let n = 0; running; n++) {
      const key = Buffer.from(`/soak/churn/${n % 500}`);
      const { stream, next } = openStream(client, '/etcdserverpb.Watch/Watch', 'WatchResponse');
      stream.on('error', () => undefined);
      await tally.run('watch-cycle', async () => {
        stream.write(encode('etcdserverpb.WatchRequest', { create_request: { key } }));
        const created = (await next(5_000)) as { created?: boolean; watch_id?: string };
        if (created.created !== true) throw new Error('watch not created');
        await unary(client, 'KV', 'Put', ['PutRequest', { key, value }], 'PutResponse', { deadlineMs: 5_000 });
        const event = (await next(5_000)) as { events?: unknown[] };
        if ((event.events?.length ?? 0) === 0) throw new Error('watch event missing');
        if (n % 2 === 0) {
          stream.write(encode('etcdserverpb.WatchRequest', { cancel_request: { watch_id: created.watch_id ?? '0' } }));
          await next(5_000);
          stream.end();
        }
      });
      stream.cancel();
      await sleep(100);
    }
  };

  // Leases: one kept alive all along, and many granted, kept alive briefly, revoked.
  const longLease = async (): Promise<void> => {
    const grant = await unary(client, 'Lease', 'LeaseGrant', ['LeaseGrantRequest', { TTL: '10' }], 'LeaseGrantResponse');
    const id = String(grant['ID']);
    await unary(client, 'KV', 'Put', ['PutRequest', { key: Buffer.from('/soak/lease/long'), value, lease: id }], 'PutResponse');
    const { stream, next } = openStream(client, '/etcdserverpb.Lease/LeaseKeepAlive', 'LeaseKeepAliveResponse');
    stream.on('error', () => undefined);
    while (running) {
      await tally.run('keepalive-long', async () => {
        stream.write(encode('etcdserverpb.LeaseKeepAliveRequest', { ID: id }));
        const response = await next(5_000);
        if (!(Number(response['TTL'] ?? 0) > 0)) throw new Error('lease lost');
      });
      await sleep(2_000);
    }
    stream.cancel();
  };
  const leaseChurn = async (): Promise<void> => {
    for (let n = 0; running; n++) {
      await tally.run('lease-cycle', async () => {
        const grant = await unary(client, 'Lease', 'LeaseGrant', ['LeaseGrantRequest', { TTL: '30' }], 'LeaseGrantResponse', { deadlineMs: 5_000 });
        const id = String(grant['ID']);
        await unary(client, 'KV', 'Put', ['PutRequest', { key: Buffer.from(`/soak/lease/${n % 500}`), value, lease: id }], 'PutResponse', { deadlineMs: 5_000 });
        const { stream, next } = openStream(client, '/etcdserverpb.Lease/LeaseKeepAlive', 'LeaseKeepAliveResponse');
        stream.on('error', () => undefined);
        try {
          for (let i = 0; i < 2; i++) {
            stream.write(encode('etcdserverpb.LeaseKeepAliveRequest', { ID: id }));
            if (!(Number((await next(5_000))['TTL'] ?? 0) > 0)) throw new Error('keepalive refused');
          }
        } finally {
          if (n % 2 === 0) stream.end();
          else stream.cancel();
        }
        await unary(client, 'Lease', 'LeaseRevoke', ['LeaseRevokeRequest', { ID: id }], 'LeaseRevokeResponse', { deadlineMs: 5_000 });
      });
      await sleep(100);
    }
  };

  // Compaction keeps etcd's history (and so its own memory) bounded on long runs.
  const compactor = async (): Promise<void> => {
    while (running) {
      await sleep(30_000);
      if (!running) break;
      await tally.run('compact', async () => {
        const revision = headerRevision(await unary(client, 'KV', 'Range', ['RangeRequest', { key: Buffer.from('/soak/none') }], 'RangeResponse'));
        await unary(client, 'KV', 'Compact', ['CompactionRequest', { revision: String(revision) }], 'CompactionResponse', { deadlineMs: 10_000 });
      });
    }
  };

  const samples: { at: number; rss: number }[] = [];
  const started = Date.now();
  const tasks = [kv(0, 4), kv(1, 4), kv(2, 4), kv(3, 4), watchChurn(), longLease(), leaseChurn(), compactor()];
  let nextReport = 60_000;
  while (Date.now() - started < durationMs) {
    await sleep(Math.min(SAMPLE_MS, durationMs - (Date.now() - started)));
    const elapsed = Date.now() - started;
    samples.push({ at: elapsed, rss: rssOf(pid) });
    if (elapsed >= nextReport - 500 || elapsed >= durationMs) {
      nextReport += 60_000;
      const heap = await metricOf(gate.adminUrl, 'nodejs_heap_size_used_bytes');
      process.stdout.write(
        `minute ${(elapsed / 60_000).toFixed(1)}: rss ${(rssOf(pid) / MIB).toFixed(1)} MiB, heap used ${(heap / MIB).toFixed(1)} MiB, fds ${fdsOf(pid)}, ops ${format(tally.ops)}, watch events ${tally.watchEvents}, errors ${format(tally.errors)}\n`,
      );
    }
  }
  running = false;
  await Promise.all(tasks);
  for (const stream of followers) stream.cancel();

  const steady = samples.filter((s) => s.at >= WARM_UP_MS);
  let verdictOk = true;
  if (steady.length < 2) {
    process.stdout.write('verdict: run shorter than warm-up plus two samples; no RSS drift verdict (use --minutes 2 or more)\n');
  } else {
    // Lowest RSS of the first and of the last third: the troughs after collections, which a
    // leak lifts and the garbage collector's sawtooth does not.
    const third = Math.max(1, Math.floor(steady.length / 3));
    const lowest = (xs: readonly { rss: number }[]): number => Math.min(...xs.map((x) => x.rss));
    const early = lowest(steady.slice(0, third));
    const late = lowest(steady.slice(-third));
    const growth = late - early;
    // Flat: less than 10% or 16 MiB of growth, whichever is larger (V8's heap breathes).
    const flat = growth < Math.max(0.1 * early, 16 * MIB);
    const spanMs = (steady.at(-1)?.at ?? 0) - (steady[0]?.at ?? 0);
    // V8 keeps growing its old space for the first few minutes; shorter runs only hint.
    const conclusive = spanMs >= CONCLUSIVE_MS;
    verdictOk = flat || !conclusive;
    process.stdout.write(
      `verdict: RSS after warm-up ${(early / MIB).toFixed(1)} -> ${(late / MIB).toFixed(1)} MiB (${growth >= 0 ? '+' : ''}${(growth / MIB).toFixed(1)} MiB over ${Math.round(spanMs / 1000)} s): ${flat ? 'flat' : 'GROWING'}${conclusive ? '' : ' (short run: indicative only, run 5+ minutes for a verdict)'}\n`,
    );
  }
  const errorCount = [...tally.errors.values()].reduce((a, b) => a + b, 0);
  process.stdout.write(`errors: ${errorCount}${errorCount === 0 ? '' : ` (${format(tally.errors)})`}\n`);
  await cleanup();
  return verdictOk && errorCount === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`soak: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
