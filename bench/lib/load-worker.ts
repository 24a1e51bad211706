/**
 * One load-generator thread. The main thread starts a few of these so that generating
 * load never competes with the bookkeeping, and so the generator can use every core it
 * is given. Each runs one job (see LoadJob) against one target and reports raw
 * latencies back; the main thread merges them.
 *
 * Unary jobs are closed loops: each simulated client has exactly one request in flight
 * and sends the next as soon as the answer arrives. Requests are encoded once up front
 * (Txn excepted: its compare names the revision the previous write produced).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { BenchConnection } from './h2-client.js';
import { firstModRevision, headerRevision, PATHS, prefixEnd, putRequest, rangeRequest, readWatch, txnRequest, txnSucceeded, watchCreateRequest } from './messages.js';
import type { LoadJob, ToWorker, UnaryResult, WatchResult } from './protocol.js';

const now = (): number => performance.timeOrigin + performance.now();

/** `count` connections to the job's target, each its own TCP+TLS connection; resolves once all are up. */
async function connect(job: LoadJob, count: number): Promise<BenchConnection[]> {
  const connections: BenchConnection[] = [];
  for (let i = 0; i < count; i++) connections.push(new BenchConnection(job.address, job.tls));
  await Promise.all(connections.map((connection) => connection.ready));
  return connections;
}

function unary(client: BenchConnection, path: string, request: Buffer): Promise<Buffer> {
  return client.unary(path, request);
}

/** Growable latency record (ms). */
class Samples {
  values: Float64Array<ArrayBuffer> = new Float64Array(1 << 14);
  length = 0;
  push(value: number): void {
    if (this.length === this.values.length) {
      const bigger = new Float64Array(this.values.length * 2);
      bigger.set(this.values);
      this.values = bigger;
    }
    this.values[this.length++] = value;
  }
  take(): Float64Array<ArrayBuffer> {
    return this.values.slice(0, this.length);
  }
}

async function runUnary(job: LoadJob): Promise<void> {
  const port = parentPort;
  if (port === null) return;
  const clients = await connect(job, job.connections);
  const value = Buffer.alloc(job.valueBytes, 0x61);
  const keys = job.keyCount;
  const base = job.keyBase ?? '/registry/';
  const ranges: Buffer[] = [];
  if (job.workload === 'range-linearizable' || job.workload === 'range-serializable') {
    for (let k = 0; k < keys; k++) ranges.push(rangeRequest(`${base}pods/bench/pod-${k}`, job.workload === 'range-serializable'));
  }
  const hot = rangeRequest(`${base}pods/bench/pod-0`, true);

  let measuring = false;
  let stopping = false;
  let count = 0;
  let errors = 0;
  let firstError: string | undefined;
  const samples = new Samples();

  const loop = async (index: number): Promise<void> => {
    const client = clients[index % clients.length] as BenchConnection;
    const global = job.clientOffset + index;
    const putKey = `${base}bench-put/${global}`;
    const put = putRequest(putKey, value);
    const txnKey = `${base}bench-txn/${global}`;
    let modRevision = '0';
    if (job.workload === 'txn') modRevision = firstModRevision(await unary(client, PATHS.range, rangeRequest(txnKey, false)));
    let n = 0;
    while (!stopping) {
      let path: string;
      let request: Buffer;
      switch (job.workload) {
        case 'range-linearizable':
        case 'range-serializable':
          path = PATHS.range;
          request = ranges[(global + n * job.totalClients) % keys] as Buffer;
          break;
        case 'range-hot':
          path = PATHS.range;
          request = hot;
          break;
        case 'put':
          path = PATHS.put;
          request = put;
          break;
        case 'txn':
          path = PATHS.txn;
          request = txnRequest(txnKey, modRevision, value);
          break;
      }
      n++;
      const started = now();
      try {
        const response = await unary(client, path, request);
        if (job.workload === 'txn') {
          if (txnSucceeded(response)) modRevision = headerRevision(response);
          else modRevision = firstModRevision(await unary(client, PATHS.range, rangeRequest(txnKey, false)));
        }
        if (measuring) {
          count++;
          samples.push(now() - started);
        }
      } catch (error: unknown) {
        if (measuring) {
          errors++;
          firstError ??= error instanceof Error ? error.message : String(error);
        }
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
  };

  const loops: Promise<void>[] = [];
  for (let i = 0; i < job.clients; i++) loops.push(loop(i));
  setTimeout(() => port.postMessage({ type: 'warm' }), job.warmupMs);
  port.on('message', (message: ToWorker) => {
    if (message.type !== 'measure') return;
    const started = now();
    measuring = true;
    setTimeout(() => {
      measuring = false;
      const elapsedMs = now() - started;
      stopping = true;
      const latencies = samples.take();
      const result: UnaryResult = { type: 'result', count, errors, elapsedMs, latencies, ...(firstError === undefined ? {} : { firstError }) };
      port.postMessage(result, [latencies.buffer]);
      // The main thread terminates this worker; requests still in flight are abandoned.
      for (const client of clients) client.close();
    }, message.durationMs);
  });
}

/**
 * Opens `watchers` watchers over `connections` connections (one Watch stream per
 * connection unless streamsPerConnection says more), each on the whole bench prefix,
 * and checks every event: all arrive, each watcher's revisions strictly increase.
 */
async function runWatch(job: LoadJob): Promise<void> {
  const port = parentPort;
  if (port === null) return;
  const clients = await connect(job, job.connections);
  const streamsPerConnection = job.streamsPerConnection ?? 1;
  const handlers: Array<(message: Buffer) => void> = [];
  const streams: Array<{ write(message: Buffer): void; cancel(): void }> = [];
  for (const client of clients) {
    for (let s = 0; s < streamsPerConnection; s++) {
      const index = streams.length;
      streams.push(client.stream(PATHS.watch, (message) => handlers[index]?.(message)));
    }
  }
  const prefix = job.watchPrefix ?? '/registry/watchbench/';
  const expected = job.expectedEvents ?? 0;
  const latencies = new Samples();
  const received = new Map<string, { count: number; last: number; inOrder: boolean }>();
  let created = 0;
  let canceled = 0;
  let completed = 0;
  const watchers = job.watchers ?? 0;

  await new Promise<void>((resolve) => {
    streams.forEach((_stream, index) => {
      handlers[index] = (message: Buffer) => {
        const info = readWatch(message);
        if (info.created) {
          if (info.canceled) canceled++;
          else created++;
          if (created + canceled === watchers) resolve();
          return;
        }
        const key = `${index}/${info.watchId}`;
        let state = received.get(key);
        if (state === undefined) {
          state = { count: 0, last: 0, inOrder: true };
          received.set(key, state);
        }
        const t = now();
        for (const event of info.events) {
          if (event.modRevision <= state.last) state.inOrder = false;
          state.last = event.modRevision;
          state.count++;
          if (event.value.length >= 8) latencies.push(t - event.value.readDoubleLE(0));
          if (state.count === expected) completed++;
        }
        if (expected > 0 && completed === watchers) port.postMessage({ type: 'complete' });
      };
    });
    for (let w = 0; w < watchers; w++) {
      const stream = streams[w % streams.length] as { write(message: Buffer): void };
      const key = job.distinctKeys === true ? `${prefix}${job.clientOffset + w}` : prefix;
      stream.write(watchCreateRequest(key, job.distinctKeys === true ? '' : prefixEnd(prefix)));
    }
  });
  port.postMessage({ type: 'ready', created, canceled });
  port.on('message', (message: ToWorker) => {
    if (message.type !== 'stop') return;
    let allInOrder = true;
    let events = 0;
    for (const state of received.values()) {
      allInOrder &&= state.inOrder;
      events += state.count;
    }
    const samples = latencies.take();
    const result: WatchResult = { type: 'watch-result', watchers: created, complete: completed, events, inOrder: allInOrder, latencies: samples };
    port.postMessage(result, [samples.buffer]);
    for (const stream of streams) stream.cancel();
    for (const client of clients) client.close();
  });
}

/** Writes `puts` keys under the watch prefix, `clients` at a time, values stamped with the send time. */
async function runPutter(job: LoadJob): Promise<void> {
  const port = parentPort;
  if (port === null) return;
  const [client] = await connect(job, 1);
  if (client === undefined) return;
  const prefix = job.watchPrefix ?? '/registry/watchbench/';
  const total = job.expectedEvents ?? 0;
  await unary(client, PATHS.range, rangeRequest(prefix, true));
  port.postMessage({ type: 'warm' });
  await new Promise<void>((resolve) => port.once('message', () => resolve()));
  let next = 0;
  const started = now();
  const one = async (): Promise<void> => {
    while (next < total) {
      const index = next++;
      const value = Buffer.alloc(job.valueBytes);
      value.writeDoubleLE(now(), 0);
      await unary(client, PATHS.put, putRequest(`${prefix}${index % 100}`, value));
    }
  };
  await Promise.all(Array.from({ length: job.clients }, () => one()));
  port.postMessage({ type: 'puts-done', startedAt: started, endedAt: now() });
  client.close();
}

const job = workerData as LoadJob;
const main = job.kind === 'unary' ? runUnary : job.kind === 'watch' ? runWatch : runPutter;
main(job).catch((error: unknown) => {
  parentPort?.postMessage({ type: 'failed', error: error instanceof Error ? error.message : String(error) });
});
