/**
 * What one audit record costs. First building, serializing and encoding the record of a
 * realistic Put and Range (the object tree + JSON.stringify reference against the direct
 * text builder the auditor uses); then the whole auditor, to a stream that discards and
 * to a real file (with each linger given), under calls paced like the gateway's: some
 * work, one record, the next event-loop turn. About a minute on one core; run:
 * `node --import ./scripts/ts-loader.mjs bench/audit-record.ts [--records=N] [--calls=N]
 * [--work-us=N] [--linger=0,2]`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { createAuditor } from '../src/audit/auditor.js';
import * as record from '../src/audit/record.js';
import type { RecordContext } from '../src/audit/record.js';
import type { Auditor, CallEvent } from '../src/audit/types.js';
import { NOOP_METRICS } from '../src/observability/metrics-types.js';
import type { Identity } from '../src/tls/identity.js';
import { callEvent } from '../test/support/audit-events.js';

const RECORDS = Number(/^--records=(\d+)$/u.exec(process.argv.find((a) => a.startsWith('--records=')) ?? '')?.[1] ?? 200_000);

const identity: Identity = Object.freeze({
  cn: 'kube-apiserver-etcd-client',
  o: Object.freeze(['system:masters']),
  ou: Object.freeze([]),
  dns: Object.freeze(['kube-apiserver.kube-system.svc']),
  uri: Object.freeze(['spiffe://cluster.local/ns/kube-system/sa/kube-apiserver']),
  ip: Object.freeze(['10.0.0.12']),
  serial: '5F3A9C0E1B2D4F6A8C0E1B2D4F6A8C0E1B2D4F6A',
  fingerprint: '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
  issuer: 'O=example\nCN=etcd-ca',
  subject: 'O=system:masters\nCN=kube-apiserver-etcd-client',
  notBefore: new Date('2024-01-01T00:00:00Z'),
  notAfter: new Date('2025-01-01T00:00:00Z'),
});

const peer = { address: '10.0.0.12', port: 51234, tlsVersion: 'TLSv1.3', identity };
const roles = Object.freeze(['kube-apiserver']);

/** One call's event; `i` varies the key, time and revision as a stream of calls would. */
function event(i: number, overrides: Partial<CallEvent>): CallEvent {
  return callEvent({
    start: new Date(1_705_312_800_000 + i),
    durationNs: 812_345n + BigInt(i % 1000),
    peer,
    roles,
    decision: { allowed: true, role: 'kube-apiserver', rule: 'prefix /registry/ readwrite', reason: 'granted' },
    result: { code: 0, message: '', revision: String(1_000_000 + i) },
    ...overrides,
  });
}

function putEvent(i: number): CallEvent {
  return event(i, {
    request: { op: 'put', key: Buffer.from(`/registry/pods/default/nginx-7c5ddbdf54-${String(i % 10_000)}`), details: { lease: '7587869843012345678' } },
  });
}

function rangeEvent(i: number): CallEvent {
  return event(i, {
    service: 'etcdserverpb.KV',
    method: 'Range',
    action: 'etcd.kv.range',
    eventType: 'access',
    request: { op: 'range', key: Buffer.from('/registry/pods/default/'), rangeEnd: Buffer.from('/registry/pods/default0'), details: { limit: '500' } },
    result: { code: 0, message: '', revision: String(1_000_000 + i), count: 500 },
  });
}

function context(i: number): RecordContext {
  return { eventId: `3f2b9c1e-8d4a-4c7e-9a1b-${i.toString(16).padStart(12, '0')}`, version: '0.1.0', policyVersion: 'abcdef012345' };
}

/** Median of five timed runs of `run(n)`, in ns per record. */
function nsPerRecord(run: (n: number) => number): number {
  run(Math.min(RECORDS, 20_000)); // warm-up
  const samples: number[] = [];
  let sink = 0;
  for (let round = 0; round < 5; round += 1) {
    const t0 = process.hrtime.bigint();
    sink += run(RECORDS);
    samples.push(Number(process.hrtime.bigint() - t0) / RECORDS);
  }
  if (sink === -1) console.log(sink);
  samples.sort((a, b) => a - b);
  return samples[2] ?? Number.NaN;
}

const events = { put: Array.from({ length: 1024 }, (_, i) => putEvent(i)), range: Array.from({ length: 1024 }, (_, i) => rangeEvent(i)) };

type Builder = (event: CallEvent, ctx: RecordContext) => string;
const builders: [string, Builder][] = [
  ['object tree + JSON.stringify + Buffer', (e, c) => record.serializeRecord(record.buildCallRecord(e, c))],
];
// The direct string builder, when this build has it.
const direct = (record as Record<string, unknown>)['serializeCallRecord'];
if (typeof direct === 'function') builders.push(['direct string + Buffer', direct as Builder]);

for (const [kind, list] of Object.entries(events)) {
  for (const [name, build] of builders) {
    const ns = nsPerRecord((n) => {
      let bytes = 0;
      for (let i = 0; i < n; i += 1) bytes += Buffer.from(`${build(list[i & 1023] as CallEvent, context(i))}\n`, 'utf8').length;
      return bytes;
    });
    console.log(`${kind.padEnd(5)} build+serialize+encode  ${name.padEnd(40)} ${ns.toFixed(0).padStart(6)} ns/record`);
  }
}

/**
 * The gateway's rhythm: each call does some work of its own (WORK_US of spinning) and
 * completes in its own event-loop turn, leaving one record. What the audit trail costs
 * per call is the CPU of that loop (all threads: the file writes run on the thread pool)
 * minus the CPU of the same loop without an auditor.
 */
const WORK_US = Number(/^--work-us=(\d+)$/u.exec(process.argv.find((a) => a.startsWith('--work-us=')) ?? '')?.[1] ?? 300);
const CALLS = Number(/^--calls=(\d+)$/u.exec(process.argv.find((a) => a.startsWith('--calls=')) ?? '')?.[1] ?? 8000);

function spin(us: number): void {
  const until = process.hrtime.bigint() + BigInt(us * 1000);
  while (process.hrtime.bigint() < until);
}

async function paced(auditor: Auditor | undefined): Promise<number> {
  const run = async (n: number): Promise<number> => {
    const before = process.cpuUsage();
    for (let i = 0; i < n; i += 1) {
      spin(WORK_US);
      auditor?.record(events.put[i & 1023] as CallEvent);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await auditor?.flush();
    const used = process.cpuUsage(before);
    return ((used.user + used.system) * 1000) / n;
  };
  await run(1000);
  const samples = [await run(CALLS), await run(CALLS), await run(CALLS)];
  samples.sort((a, b) => a - b);
  return samples[1] ?? Number.NaN;
}

const level = { read: 'metadata', write: 'metadata', admin: 'metadata', auth: 'metadata' } as const;
const deps = { metrics: NOOP_METRICS, version: '0.1.0', policyVersion: (): string => 'abcdef012345' };
const baseline = await paced(undefined);
console.log(`paced calls (${String(WORK_US)} µs of work each), no auditor: ${baseline.toFixed(0)} ns CPU per call`);

const discard = new Writable({ write: (_chunk, _enc, done) => done() });
const stream = await createAuditor({ sink: { kind: 'stdout' }, onFailure: 'deny', level, bufferRecords: 100_000 }, { ...deps, stdout: discard });
console.log(`put   auditor -> discarding stream: ${((await paced(stream)) - baseline).toFixed(0)} ns CPU per call over no auditor`);
await stream.close();

const dir = await mkdtemp(path.join(tmpdir(), 'etcdgate-audit-bench-'));
try {
  const lingers = (/^--linger=([\d,.]+)$/u.exec(process.argv.find((a) => a.startsWith('--linger=')) ?? '')?.[1] ?? '0,2').split(',').map(Number);
  for (const linger of lingers) {
    const file = await createAuditor({ sink: { kind: 'file', path: path.join(dir, `audit-${String(linger)}.jsonl`) }, onFailure: 'deny', level, bufferRecords: 100_000 }, { ...deps, fileLingerMs: linger });
    const ns = (await paced(file)) - baseline;
    await file.close();
    console.log(`put   auditor -> file, linger ${String(linger)} ms: ${ns.toFixed(0)} ns CPU per call over no auditor`);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
