/**
 * `npm run bench`: etcdgate beside direct etcd and etcd's own grpc-proxy, under the
 * same load, in one run. Starts one etcd, the proxies as child processes (so each one's
 * CPU time is its own), and drives every workload through each target in turn, round
 * after round (A B C A B C ...), so slow drift on a shared machine hits all alike.
 * Load comes from worker threads (lib/load-worker.ts); the report says how much CPU
 * they used. Outputs go to bench-results/ and the Markdown table and SVG chart are also
 * copied to docs/bench/.
 *
 * Flags:
 *   --rounds N, --duration-seconds S (per point), --quick (a short smoke run)
 *   --only=WORKLOAD[,WORKLOAD] (range-linearizable, range-serializable, range-hot, put,
 *     txn, watch, watch-memory), --clients=1,64, --workers N
 *   --targets=a,b: a subset of grpc-proxy, etcdgate, etcdgate-audit-off, etcdgate-cache
 *     (direct always runs)
 *   --cpu-prof: etcdgate (and etcdgate-audit-off) write V8 CPU profiles to bench-results/profiles/ on exit
 *   --no-docs: docs/bench/ is left alone. A partial run (--only, --targets, --quick, a
 *     baseline) leaves it alone anyway unless --docs is given: it holds the full run
 *     the README quotes.
 *   --passthrough: adds "grpc-js-passthrough", a bare grpc-js pass-through with no
 *     policy and no audit (unary workloads only)
 *   --http2-passthrough: adds "http2-passthrough", the same on bare node:http2 at both ends
 *   --http2-canned: adds "http2-canned", a node:http2 server answering every call with a
 *     canned Range answer and no etcd: the floor of a Node server's cost
 *   --baseline=PATH/dist/src/main.js: adds "etcdgate-baseline", another build, for A/B
 *     comparisons of an optimization in the same run
 *   --baseline-node-args="ARGS": the baseline (this build unless --baseline) runs with
 *     these Node/V8 flags, for A/B of a runtime setting
 *   --together=a,b: these targets take their unary load at the same time, `clients`
 *     each, instead of in turn: an A/B (etcdgate,etcdgate-baseline or
 *     etcdgate,grpc-proxy) then sees one machine, not two moments
 *   --encryption, --value-bytes=N: adds "etcdgate-encrypted" (see docs/performance.md)
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import * as grpc from '@grpc/grpc-js';
import { firstValue, PATHS, putRequest, rangeRequest } from './lib/messages.js';
import { benchPolicy, benchPolicyRules } from './lib/policy.js';
import { cpuSeconds, grpcProxyAvailable, makePki, rssBytes, startEtcd, startGateway, startGrpcProxy, type BenchPki, type Measured } from './lib/processes.js';
import type { LoadJob, UnaryResult, UnaryWorkload, WatchResult } from './lib/protocol.js';
import { checkGoals, markdown, quantile, summarize, svgChart, type MemoryPoint, type Point, type WatchPoint } from './lib/report.js';

const UNARY: readonly UnaryWorkload[] = ['range-linearizable', 'range-serializable', 'put', 'txn', 'range-hot'];
const ALL = [...UNARY, 'watch', 'watch-memory'];
const KEY_COUNT = 1000;
// Issue 12: no higher than the 154 MiB measured before the transport was replaced.
const MEMORY_BOUND_MIB = 154;

function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'package.json');
    if (existsSync(candidate) && (JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string }).name === 'etcdgate') return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('package root not found');
    dir = parent;
  }
}

const { values: flags } = parseArgs({
  options: {
    rounds: { type: 'string' },
    'duration-seconds': { type: 'string' },
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    clients: { type: 'string' },
    workers: { type: 'string' },
    'clients-per-connection': { type: 'string' },
    'watchers': { type: 'string' },
    'puts': { type: 'string' },
    'cpu-prof': { type: 'boolean', default: false },
    'no-docs': { type: 'boolean', default: false },
    docs: { type: 'boolean', default: false },
    targets: { type: 'string' },
    baseline: { type: 'string' },
    'baseline-node-args': { type: 'string' },
    passthrough: { type: 'boolean' },
    'http2-passthrough': { type: 'boolean' },
    'http2-canned': { type: 'boolean' },
    encryption: { type: 'boolean' },
    'value-bytes': { type: 'string' },
    together: { type: 'string' },
  },
});
/** --together: targets measured at the same time rather than in turn. */
const together = new Set(flags.together?.split(',').filter((name) => name !== '') ?? []);

const quick = flags.quick === true;
const VALUE_BYTES = Number(flags['value-bytes'] ?? 512);
/** Keys of the encrypted target (--encryption): its own keyspace, encrypted by etcdgate-encrypted. */
const ENCRYPTED_BASE = '/registry/secrets/';
const ENCRYPTED_WORKLOADS: ReadonlySet<string> = new Set(['range-linearizable', 'range-serializable', 'put']);
const rounds = Number(flags.rounds ?? (quick ? 1 : 3));
const durationMs = Number(flags['duration-seconds'] ?? (quick ? 1 : 4)) * 1000;
const warmupMs = quick ? 300 : 1000;
const workloads = (flags.only ?? ALL.join(',')).split(',').filter((w) => w !== '');
for (const w of workloads) if (!ALL.includes(w)) throw new Error(`unknown workload ${w}; one of ${ALL.join(', ')}`);
const clientCounts = (flags.clients ?? '1,64').split(',').map(Number);
const workerCount = Number(flags.workers ?? 2);
const clientsPerConnection = Number(flags['clients-per-connection'] ?? 8);
const watchers = Number(flags.watchers ?? (quick ? 50 : 200));
const puts = Number(flags.puts ?? (quick ? 200 : 1000));

/** Reference proxies with no policy or audit: unary workloads only. */
const PASSTHROUGHS: ReadonlySet<string> = new Set(['grpc-js-passthrough', 'http2-passthrough', 'http2-canned']);

const root = packageRoot();
const workerFile = fileURLToPath(new URL('./lib/load-worker.js', import.meta.url));

interface Target {
  readonly name: string;
  readonly address: string;
  /** The proxy process whose CPU is measured; undefined for direct etcd. */
  readonly proxy: Measured | undefined;
  /** Where its workloads' keys live (default /registry/). */
  readonly keyBase?: string;
}

function spawnWorkers(jobs: readonly LoadJob[]): Worker[] {
  return jobs.map((job) => new Worker(workerFile, { workerData: job }));
}

function nextMessage<T>(worker: Worker, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: { type: string; error?: string }): void => {
      if (message.type === 'failed') {
        cleanup();
        reject(new Error(`load worker failed: ${message.error ?? ''}`));
      } else if (message.type === type) {
        cleanup();
        resolve(message as T);
      }
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const cleanup = (): void => {
      worker.off('message', onMessage);
      worker.off('error', onError);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
  });
}

function split(total: number, parts: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < parts; i++) out.push(Math.floor(total / parts) + (i < total % parts ? 1 : 0));
  return out.filter((n) => n > 0);
}

function baseJob(target: Target, pki: BenchPki): Pick<LoadJob, 'address' | 'tls' | 'keyCount' | 'valueBytes' | 'warmupMs' | 'keyBase'> {
  return { address: target.address, tls: { ca: pki.ca, cert: pki.client.cert, key: pki.client.key }, keyCount: KEY_COUNT, valueBytes: VALUE_BYTES, warmupMs, ...(target.keyBase === undefined ? {} : { keyBase: target.keyBase }) };
}

const cpuOf = (measured: Measured | undefined): number => (measured === undefined ? 0 : cpuSeconds(measured.pid));
const selfCpu = (): number => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
};

/**
 * The workload through each target at the same time, `clients` clients each (one target
 * for the usual rotation; several for --together, so they see the same machine: on a shared
 * 2-core VM, the drift between rounds is larger than the differences an A/B looks for).
 */
async function measureUnaryTogether(targets: readonly Target[], etcd: Measured, pki: BenchPki, workload: UnaryWorkload, clients: number, round: number): Promise<Point[]> {
  const perWorker = split(clients, Math.min(workerCount, clients));
  const groups = targets.map((target) => {
    let offset = 0;
    const jobs: LoadJob[] = perWorker.map((n) => {
      const job: LoadJob = { ...baseJob(target, pki), kind: 'unary', workload, clients: n, clientOffset: offset, totalClients: clients, connections: Math.max(1, Math.ceil(n / clientsPerConnection)) };
      offset += n;
      return job;
    });
    return { target, workers: spawnWorkers(jobs) };
  });
  const workers = groups.flatMap((g) => g.workers);
  await Promise.all(workers.map((w) => nextMessage(w, 'warm')));
  const proxyBefore = groups.map((g) => cpuOf(g.target.proxy));
  const etcdBefore = cpuOf(etcd);
  const selfBefore = selfCpu();
  const wallBefore = performance.now();
  const resultsPromise = Promise.all(groups.map((g) => Promise.all(g.workers.map((w) => nextMessage<UnaryResult>(w, 'result')))));
  for (const w of workers) w.postMessage({ type: 'measure', durationMs });
  const byGroup = await resultsPromise;
  const wall = (performance.now() - wallBefore) / 1000;
  const proxyCpu = groups.map((g, i) => cpuOf(g.target.proxy) - (proxyBefore[i] as number));
  const etcdCpu = cpuOf(etcd) - etcdBefore;
  const loadgenCpu = selfCpu() - selfBefore;
  await Promise.all(workers.map((w) => w.terminate()));
  const totalRequests = byGroup.flat().reduce((sum, r) => sum + r.count, 0);
  return groups.map((g, i) => {
    const results = byGroup[i] as UnaryResult[];
    const requests = results.reduce((sum, r) => sum + r.count, 0);
    const seconds = Math.max(...results.map((r) => r.elapsedMs)) / 1000;
    const all = new Float64Array(requests);
    let at = 0;
    for (const r of results) {
      all.set(r.latencies, at);
      at += r.latencies.length;
    }
    const firstError = results.find((r) => r.firstError !== undefined)?.firstError;
    return {
      workload,
      clients,
      target: g.target.name,
      round,
      requests,
      errors: results.reduce((sum, r) => sum + r.errors, 0),
      seconds,
      throughput: requests / seconds,
      p50Ms: quantile(all, 0.5),
      p99Ms: quantile(all, 0.99),
      proxyCpuUs: g.target.proxy === undefined ? undefined : ((proxyCpu[i] as number) * 1e6) / requests,
      // Shared when measured together: etcd and the load generator served every target.
      etcdCpuUs: (etcdCpu * 1e6) / totalRequests,
      loadgenCores: loadgenCpu / wall,
      ...(firstError === undefined ? {} : { firstError }),
    };
  });
}

async function measureWatch(target: Target, direct: Target, pki: BenchPki, round: number): Promise<WatchPoint> {
  const prefix = `/registry/watchbench/r${round}-${target.name}/`;
  const perWorker = split(watchers, Math.min(workerCount, watchers));
  let offset = 0;
  const jobs: LoadJob[] = perWorker.map((n) => {
    const job: LoadJob = { ...baseJob(target, pki), kind: 'watch', workload: 'put', clients: 0, clientOffset: offset, totalClients: 0, watchers: n, connections: Math.max(1, Math.ceil(n / 20)), watchPrefix: prefix, expectedEvents: puts };
    offset += n;
    return job;
  });
  const watchWorkers = spawnWorkers(jobs);
  const ready = await Promise.all(watchWorkers.map((w) => nextMessage<{ created: number }>(w, 'ready')));
  const created = ready.reduce((sum, r) => sum + r.created, 0);
  // Writes go straight to etcd: only the fan-out path is under test.
  const [putter] = spawnWorkers([{ ...baseJob(direct, pki), kind: 'putter', workload: 'put', clients: 4, clientOffset: 0, totalClients: 4, connections: 1, watchPrefix: prefix, expectedEvents: puts, valueBytes: 64 }]);
  if (putter === undefined) throw new Error('no putter');
  await nextMessage(putter, 'warm');
  const proxyBefore = cpuOf(target.proxy);
  const completes = Promise.race([Promise.all(watchWorkers.map((w) => nextMessage(w, 'complete'))), new Promise((resolve) => setTimeout(resolve, 30_000 + puts * 5))]);
  const putsDone = nextMessage<{ startedAt: number; endedAt: number }>(putter, 'puts-done');
  putter.postMessage({ type: 'go' });
  const { startedAt } = await putsDone;
  await completes;
  const endedAt = performance.timeOrigin + performance.now();
  const proxyCpu = cpuOf(target.proxy) - proxyBefore;
  const resultsPromise = Promise.all(watchWorkers.map((w) => nextMessage<WatchResult>(w, 'watch-result')));
  for (const w of watchWorkers) w.postMessage({ type: 'stop' });
  const results = await resultsPromise;
  await Promise.all([...watchWorkers, putter].map((w) => w.terminate()));
  const delivered = results.reduce((sum, r) => sum + r.events, 0);
  const all = new Float64Array(delivered);
  let at = 0;
  for (const r of results) {
    all.set(r.latencies.subarray(0, Math.min(r.latencies.length, all.length - at)), at);
    at += Math.min(r.latencies.length, all.length - at);
  }
  const expected = created * puts;
  return {
    target: target.name,
    round,
    watchers: created,
    puts,
    delivered,
    expected,
    complete: created === watchers && delivered === expected && results.every((r) => r.complete === r.watchers),
    inOrder: results.every((r) => r.inOrder),
    eventsPerSecond: delivered / ((endedAt - startedAt) / 1000),
    p50Ms: quantile(all.subarray(0, at), 0.5),
    p99Ms: quantile(all.subarray(0, at), 0.99),
    proxyCpuUs: target.proxy === undefined || delivered === 0 ? undefined : (proxyCpu * 1e6) / delivered,
  };
}

async function measureMemory(target: Target, etcd: Measured, pki: BenchPki): Promise<MemoryPoint> {
  const total = quick ? 2000 : 10_000;
  const connections = quick ? 20 : 100;
  const measured = target.proxy ?? etcd;
  const rssBefore = rssBytes(measured.pid);
  const perWorker = split(connections, workerCount);
  let offset = 0;
  const jobs: LoadJob[] = perWorker.map((conns) => {
    const n = Math.round((total * conns) / connections);
    const job: LoadJob = { ...baseJob(target, pki), kind: 'watch', workload: 'put', clients: 0, clientOffset: offset, totalClients: 0, watchers: n, connections: conns, streamsPerConnection: 10, watchPrefix: `/registry/memwatch/${target.name}/`, distinctKeys: true };
    offset += n;
    return job;
  });
  const workers = spawnWorkers(jobs);
  const ready = await Promise.all(workers.map((w) => nextMessage<{ created: number }>(w, 'ready')));
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const rssWith = rssBytes(measured.pid);
  const done = Promise.all(workers.map((w) => nextMessage(w, 'watch-result')));
  for (const w of workers) w.postMessage({ type: 'stop' });
  await done;
  await Promise.all(workers.map((w) => w.terminate()));
  return { target: target.name, watchers: total, connections, created: ready.reduce((s, r) => s + r.created, 0), rssBeforeBytes: rssBefore, rssWithWatchersBytes: rssWith };
}

function unaryCall(client: grpc.Client, path: string, request: Buffer): Promise<Buffer> {
  const id = (b: Buffer): Buffer => b;
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(path, id, id, request, new grpc.Metadata(), {}, (error, response) => {
      if (error !== null || response === undefined) reject(error ?? new Error('empty'));
      else resolve(response);
    });
  });
}

/**
 * Writes the keys the read and Txn workloads expect to exist, through `address` (etcd
 * itself, or the encrypted etcdgate for its own keyspace, so etcd holds ciphertext there).
 * Resolves with the value of the first key as read back.
 */
async function populate(address: string, pki: BenchPki, base = '/registry/'): Promise<Buffer> {
  const credentials = grpc.credentials.createSsl(readFileSync(pki.ca), readFileSync(pki.client.key), readFileSync(pki.client.cert));
  const client = new grpc.Client(address, credentials, { 'grpc.ssl_target_name_override': 'localhost' });
  const value = Buffer.alloc(VALUE_BYTES, 0x62);
  for (let from = 0; from < KEY_COUNT; from += 100) {
    const writes: Promise<Buffer>[] = [];
    for (let k = from; k < Math.min(KEY_COUNT, from + 100); k++) writes.push(unaryCall(client, PATHS.put, putRequest(`${base}pods/bench/pod-${k}`, value)));
    await Promise.all(writes);
  }
  const writes: Promise<Buffer>[] = [];
  for (let c = 0; c < Math.max(...clientCounts, 64); c++) writes.push(unaryCall(client, PATHS.put, putRequest(`${base}bench-txn/${c}`, value)));
  await Promise.all(writes);
  const first = firstValue(await unaryCall(client, PATHS.range, rangeRequest(`${base}pods/bench/pod-0`, false)));
  client.close();
  return first;
}

/** The value of `key`, read through `address`. */
async function readValue(address: string, pki: BenchPki, key: string): Promise<Buffer> {
  const credentials = grpc.credentials.createSsl(readFileSync(pki.ca), readFileSync(pki.client.key), readFileSync(pki.client.cert));
  const client = new grpc.Client(address, credentials, { 'grpc.ssl_target_name_override': 'localhost' });
  try {
    return firstValue(await unaryCall(client, PATHS.range, rangeRequest(key, false)));
  } finally {
    client.close();
  }
}

/** An encrypted target's config section and key file: aesgcm over ENCRYPTED_BASE. */
async function encryptionSection(dir: string): Promise<Record<string, unknown>> {
  const keyFile = path.join(dir, 'bench-key');
  await writeFile(keyFile, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  return { resources: [{ name: 'bench', prefixes: [ENCRYPTED_BASE], providers: [{ aesgcm: { keys: [{ name: 'bench1', file: keyFile }] } }] }] };
}

async function main(): Promise<void> {
  const started = new Date();
  const dir = await mkdtemp(path.join(tmpdir(), 'etcdgate-bench-'));
  const resultsDir = path.join(root, 'bench-results');
  const profileDir = path.join(resultsDir, 'profiles');
  const logDir = path.join(resultsDir, 'logs');
  mkdirSync(profileDir, { recursive: true });
  mkdirSync(logDir, { recursive: true });
  const stops: (() => Promise<void>)[] = [];
  const notes: string[] = [];
  const interrupted = (): void => {
    void Promise.all(stops.map((stop) => stop().catch(() => undefined))).finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    const pki = await makePki(root, path.join(dir, 'pki'));
    const etcd = await startEtcd(dir, pki);
    stops.push(() => etcd.stop());
    await populate(etcd.address, pki);
    const policyFile = path.join(dir, 'policy.yaml');
    await writeFile(policyFile, benchPolicy());

    const targets: Target[] = [{ name: 'direct', address: etcd.address, proxy: undefined }];
    const wanted = flags.targets?.split(',');
    const want = (name: string): boolean => wanted === undefined || wanted.includes(name) || name === 'etcdgate-baseline' || PASSTHROUGHS.has(name);
    if (want('grpc-proxy')) {
      if (grpcProxyAvailable()) {
        const proxy = await startGrpcProxy(dir, pki, etcd);
        stops.push(() => proxy.stop());
        targets.push({ name: 'grpc-proxy', address: proxy.address, proxy });
      } else {
        notes.push('etcd grpc-proxy not available in this etcd binary: not measured');
      }
    }
    const nodeArgs = flags['cpu-prof'] === true ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
    for (const variant of [
      { name: 'etcdgate', audit: true, cache: false, nodeArgs },
      { name: 'etcdgate-audit-off', audit: false, cache: false, nodeArgs },
      // The default rate limit (10000/s per identity) would cap what the cache can show.
      { name: 'etcdgate-cache', audit: true, cache: true, extra: { limits: { requestsPerSecond: 0 } } },
      ...(flags.baseline === undefined && flags['baseline-node-args'] === undefined
        ? []
        : [
            {
              name: 'etcdgate-baseline',
              audit: true,
              cache: false,
              main: path.resolve(flags.baseline ?? path.join(root, 'dist/src/main.js')),
              nodeArgs: (flags['baseline-node-args'] ?? '').split(' ').filter((arg) => arg !== ''),
            },
          ]),
      // The issue's reference point: bare grpc-js, identity codecs, no policy, no audit (unary only).
      ...(flags.passthrough === true ? [{ name: 'grpc-js-passthrough', audit: false, cache: false, main: path.join(root, 'dist-bench/bench/lib/passthrough-main.js') }] : []),
      // The least a Node proxy can cost: bare node:http2 on both legs (unary only).
      ...(flags['http2-passthrough'] === true ? [{ name: 'http2-passthrough', audit: false, cache: false, main: path.join(root, 'dist-bench/bench/lib/http2-passthrough-main.js') }] : []),
      // No proxy at all: a canned answer, for the floor of a Node server's cost (reads only).
      ...(flags['http2-canned'] === true ? [{ name: 'http2-canned', audit: false, cache: false, main: path.join(root, 'dist-bench/bench/lib/http2-canned-main.js') }] : []),
      // Encryption at rest on its own keyspace, audit on: compared with "etcdgate" (Put and Range).
      ...(flags.encryption === true ? [{ name: 'etcdgate-encrypted', audit: true, cache: false, nodeArgs, extra: { encryption: await encryptionSection(dir) } }] : []),
    ]) {
      if (!want(variant.name)) continue;
      const gateway = await startGateway(root, dir, pki, etcd, policyFile, variant, logDir);
      stops.push(() => gateway.stop());
      const encrypted = variant.name === 'etcdgate-encrypted';
      targets.push({ name: variant.name, address: gateway.address, proxy: gateway, ...(encrypted ? { keyBase: ENCRYPTED_BASE } : {}) });
      if (encrypted) {
        // Its keyspace is written through it, so what etcd holds is ciphertext; checked both ways.
        const plain = await populate(gateway.address, pki, ENCRYPTED_BASE);
        const stored = await readValue(etcd.address, pki, `${ENCRYPTED_BASE}pods/bench/pod-0`);
        if (!plain.equals(Buffer.alloc(VALUE_BYTES, 0x62)) || stored.includes(plain)) throw new Error('etcdgate-encrypted: values are not encrypted in etcd as expected');
      }
    }

    const points: Point[] = [];
    const watchPoints: WatchPoint[] = [];
    const memoryPoints: MemoryPoint[] = [];
    const direct = targets[0] as Target;
    const log = (text: string): void => {
      process.stdout.write(`${text}\n`);
    };
    for (const workload of workloads.filter((w): w is UnaryWorkload => (UNARY as readonly string[]).includes(w))) {
      // The cache only changes serializable reads; elsewhere it would measure etcdgate twice.
      const eligible = targets.filter(
        (t) =>
          (t.name !== 'etcdgate-cache' || workload === 'range-serializable' || workload === 'range-hot') &&
          // Its canned answer is a RangeResponse: it stands in for reads only.
          (t.name !== 'http2-canned' || workload.startsWith('range-')) &&
          (t.name !== 'etcdgate-encrypted' || ENCRYPTED_WORKLOADS.has(workload)),
      );
      for (const clients of clientCounts) {
        for (let round = 1; round <= rounds; round++) {
          // Rotate the order each round so no target always runs first (warm caches, drift).
          const order = eligible.map((_, i) => eligible[(i + round - 1) % eligible.length] as Target);
          for (const target of order) {
            // The first of the --together targets in this round's order brings the others along.
            const group = together.has(target.name) ? order.filter((t) => together.has(t.name)) : [target];
            if (group[0] !== target) continue;
            for (const point of await measureUnaryTogether(group, etcd, pki, workload, clients, round)) {
              points.push(point);
              log(`${workload} x${clients} r${round} ${point.target}: ${point.throughput.toFixed(0)} req/s p50 ${point.p50Ms.toFixed(3)} ms p99 ${point.p99Ms.toFixed(3)} ms proxy ${point.proxyCpuUs?.toFixed(0) ?? '-'} µs/req etcd ${point.etcdCpuUs.toFixed(0)} µs/req loadgen ${point.loadgenCores.toFixed(2)} cores${point.errors > 0 ? ` errors ${point.errors} (${point.firstError ?? ''})` : ''}`);
            }
          }
        }
      }
    }
    if (workloads.includes('watch')) {
      const eligible = targets.filter((t) => t.name !== 'etcdgate-cache' && t.name !== 'etcdgate-encrypted' && !PASSTHROUGHS.has(t.name));
      for (let round = 1; round <= rounds; round++) {
        for (const target of eligible) {
          const point = await measureWatch(target, direct, pki, round);
          watchPoints.push(point);
          log(`watch r${round} ${target.name}: ${point.delivered}/${point.expected} in order ${point.inOrder} ${point.eventsPerSecond.toFixed(0)} ev/s p50 ${point.p50Ms.toFixed(2)} ms p99 ${point.p99Ms.toFixed(2)} ms`);
        }
      }
    }
    if (workloads.includes('watch-memory')) {
      for (const target of targets.filter((t) => ['direct', 'grpc-proxy', 'etcdgate', 'etcdgate-baseline'].includes(t.name))) {
        const point = await measureMemory(target, etcd, pki);
        memoryPoints.push(point);
        log(`watch-memory ${target.name}: ${point.created}/${point.watchers} watchers, RSS ${(point.rssBeforeBytes / 2 ** 20).toFixed(0)} -> ${(point.rssWithWatchersBytes / 2 ** 20).toFixed(0)} MiB`);
      }
    }

    const summaries = summarize(points);
    const goals = checkGoals(summaries, watchPoints, memoryPoints, MEMORY_BOUND_MIB);
    const command = `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim();
    notes.push(
      `${cpus().length} CPU cores (${cpus()[0]?.model ?? 'unknown'}); etcd, the proxies and the load generator share them.`,
      `Closed-loop clients, one request in flight each, ${clientsPerConnection} clients per TLS connection, ${workerCount} load-generator threads; ${rounds} round(s) of ${durationMs / 1000} s per point, targets rotated each round; medians over rounds.`,
      `Policy: ${benchPolicyRules()} key rules; etcdgate audits to a file (metadata level); "etcdgate-audit-off" sets audit.level none; "etcdgate-cache" enables the serializable-Range cache. Values are ${VALUE_BYTES} bytes.`,
      `"proxy CPU" is the proxy process's user+system time over the window divided by requests; "load gen cores" is the load generator's CPU as a share of one core.`,
      `Watch fan-out: ${watchers} watchers over ${Math.ceil(watchers / 20)} connections on one prefix, ${puts} puts written directly to etcd; latency is put-sent to event-received.`,
    );
    const report = markdown({ command, date: started.toISOString(), host: hostname(), notes }, summaries, watchPoints, memoryPoints, goals);
    const chart = svgChart(summaries, 'Throughput relative to direct etcd (higher is better)');
    const stamp = started.toISOString().replace(/[:.]/gu, '-');
    const json = JSON.stringify({ command, started: started.toISOString(), notes, points, summaries, watch: watchPoints, memory: memoryPoints, goals }, null, 2);
    writeFileSync(path.join(resultsDir, `bench-${stamp}.json`), json);
    writeFileSync(path.join(resultsDir, `bench-${stamp}.md`), report);
    writeFileSync(path.join(resultsDir, 'latest.json'), json);
    writeFileSync(path.join(resultsDir, 'latest.md'), report);
    writeFileSync(path.join(resultsDir, 'latest.svg'), chart);
    // docs/bench holds the full run the README quotes: a partial run (--only, --targets,
    // --quick, a baseline) stays in bench-results/ unless --docs asks otherwise.
    const partial = flags.together !== undefined || flags.only !== undefined || flags.targets !== undefined || flags.quick === true || flags.baseline !== undefined || flags['baseline-node-args'] !== undefined;
    if (flags['no-docs'] !== true && (!partial || flags.docs === true)) {
      const docs = path.join(root, 'docs/bench');
      mkdirSync(docs, { recursive: true });
      copyFileSync(path.join(resultsDir, 'latest.md'), path.join(docs, 'latest.md'));
      copyFileSync(path.join(resultsDir, 'latest.svg'), path.join(docs, 'ratios.svg'));
    }
    log(`\n${report}`);
    log(`results: ${resultsDir}/latest.{json,md,svg}`);
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
