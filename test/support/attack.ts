/**
 * What every attack test (test/attack-*.test.ts) and bench/attacks.ts share:
 * - `runAttack`: one attack by the hostile Python HTTP/2 client (test/support/h2-attack.py,
 *   Debian's python3-hpack and python3-hyperframe under /usr/bin/python3), one process per
 *   attack, presenting a client certificate; resolves with its JSON report;
 * - `sampleRss`: etcdgate's resident memory (and CPU time), read from /proc while it runs
 *   as a child process;
 * - `legitimateClient`: a well-behaved caller running beside the attack (an ordinary
 *   Range every `intervalMs` through grpc-js, its own connection), whose every call must
 *   succeed; it keeps each call's latency for the benchmark's p50/p99;
 * - `useAttackTarget` / `underAttack`: the tests' target (a real etcd, etcdgate as a child
 *   process auditing to a file) and one attack run beside the legitimate client.
 * A missing python3-hpack or python3-hyperframe fails the attack with Python's error: the
 * tests never skip.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll } from 'vitest';
import type { EtcdCluster } from './etcd.js';
import { encode } from './etcd-messages.js';
import { gatewayDir, type GatewayProcess, type GatewayProcessOptions } from './gateway-process.js';
import type { Pki } from './pki.js';
import { rawClient } from './raw-client.js';
import { useGatewayStack } from './stack.js';

const SCRIPT = fileURLToPath(new URL('./h2-attack.py', import.meta.url));
/** Debian's interpreter: the one with python3-hpack and python3-hyperframe (a pyenv python3 on PATH may lack them). */
const PYTHON = '/usr/bin/python3';

/** A report as the Python client prints it (its fields are per attack: see h2-attack.py). */
export type AttackReport = Record<string, unknown>;

/** Counts over the streams of an attack (h2-attack.py's summarize). */
export interface StreamSummary {
  readonly streams: number;
  readonly finished: number;
  readonly rst: Record<string, number>;
  readonly grpcStatus: Record<string, number>;
  readonly httpStatus: Record<string, number>;
}

/** The first GOAWAY a connection received. */
export interface Goaway {
  readonly code: string;
  readonly lastStreamId: number;
  readonly debug: string;
  readonly at: number;
}

/** Runs `attack` with `params` against `endpoint` as client certificate `client`; rejects if the client fails. */
export function runAttack(endpoint: string, pki: Pki, client: string, attack: string, params: Record<string, unknown> = {}, timeoutMs = 120_000): Promise<AttackReport> {
  const url = new URL(endpoint);
  const pair = pki.client(client);
  const args = [SCRIPT, '--host', url.hostname, '--port', url.port, '--ca', pki.ca, '--cert', pair.cert, '--key', pair.key, attack, JSON.stringify(params)];
  return new Promise((resolve, reject) => {
    execFile(PYTHON, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error !== null) {
        reject(new Error(`h2-attack.py ${attack} failed: ${error.message}\n${stderr}`));
        return;
      }
      const line = stdout.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as AttackReport);
      } catch {
        reject(new Error(`h2-attack.py ${attack}: no JSON report\n${stdout}\n${stderr}`));
      }
    });
  });
}

/** A running sampler of one process's memory and CPU. */
export interface RssSampler {
  /** Highest resident set seen so far, MiB. */
  peakMiB(): number;
  /** The last sample, MiB. */
  currentMiB(): number;
  /** CPU seconds (user + system) the process has used so far. */
  cpuSeconds(): number;
  stop(): void;
}

const CLOCK_TICKS = 100;

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB/mu.exec(status);
  return match === null ? 0 : Number(match[1]) / 1024;
}

function cpuSeconds(pid: number): number {
  // Fields after the command (which may hold spaces) start after the last ')'.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** Samples `pid`'s resident memory every `intervalMs` until stopped (or the process is gone). */
export function sampleRss(pid: number, intervalMs = 100): RssSampler {
  let peak = rssMiB(pid);
  let current = peak;
  const timer = setInterval(() => {
    try {
      current = rssMiB(pid);
      peak = Math.max(peak, current);
    } catch {
      clearInterval(timer);
    }
  }, intervalMs);
  timer.unref();
  return {
    peakMiB: () => peak,
    currentMiB: () => current,
    cpuSeconds: () => cpuSeconds(pid),
    stop: () => clearInterval(timer),
  };
}

/** One call of the legitimate client. */
export interface LegitCall {
  readonly ok: boolean;
  readonly ms: number;
  /** gRPC code and details when it failed. */
  readonly error?: string;
}

/** What the legitimate client saw, once stopped. */
export interface LegitResult {
  readonly calls: readonly LegitCall[];
  readonly failures: readonly LegitCall[];
  readonly p50Ms: number;
  readonly p99Ms: number;
}

export interface LegitimateClient {
  /** Calls made so far. */
  readonly count: number;
  /** Stops after the call in flight and reports. */
  stop(): Promise<LegitResult>;
}

/** The value at quantile q (0..1) of `values`, or 0 for none. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}

const passThrough = (buffer: Buffer): Buffer => buffer;

/**
 * An ordinary caller: a Range on `key` every `intervalMs` on its own connection (grpc-js),
 * as client certificate `client`, each with a 10 s deadline. Started before an attack and
 * stopped after it: every one of its calls must have succeeded.
 */
export async function legitimateClient(endpoint: string, pki: Pki, client: string, options: { readonly key?: string; readonly intervalMs?: number } = {}): Promise<LegitimateClient> {
  const grpcClient = rawClient(endpoint, pki, client);
  const request = encode('etcdserverpb.RangeRequest', { key: Buffer.from(options.key ?? '/legit/probe') });
  const intervalMs = options.intervalMs ?? 50;
  const calls: LegitCall[] = [];
  const once = (): Promise<LegitCall> => {
    const started = performance.now();
    return new Promise((resolve) => {
      grpcClient.makeUnaryRequest('/etcdserverpb.KV/Range', passThrough, passThrough, request, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (error) => {
        const ms = performance.now() - started;
        resolve(error === null ? { ok: true, ms } : { ok: false, ms, error: `${grpc.status[error.code] ?? error.code}: ${error.details}` });
      });
    });
  };
  // The connection is made (and proven) before the attack starts.
  const first = await once();
  if (!first.ok) throw new Error(`legitimate client could not make its first call: ${first.error ?? ''}`);
  let running = true;
  const loop = (async () => {
    while (running) {
      const next = new Promise((resolve) => setTimeout(resolve, intervalMs));
      calls.push(await once());
      await next;
    }
  })();
  return {
    get count() {
      return calls.length;
    },
    stop: async () => {
      running = false;
      await loop;
      grpcClient.close();
      const times = calls.map((call) => call.ms);
      return { calls, failures: calls.filter((call) => !call.ok), p50Ms: quantile(times, 0.5), p99Ms: quantile(times, 0.99) };
    },
  };
}

/** Typed views of report fields the tests read. */
export function summaryOf(report: AttackReport, field = 'summary'): StreamSummary {
  return report[field] as StreamSummary;
}

export function goawayOf(report: AttackReport): Goaway | null {
  return (report['goaway'] as Goaway | null | undefined) ?? null;
}

/** root may do anything (the legitimate client); each tenant-* its own /tenants/<cn>/ prefix, with leases; nobody is bound to nothing. */
export const ATTACK_POLICY = {
  roles: {
    all: { keys: [{ all: true, access: 'readwrite' }], capabilities: ['lease'] },
    tenant: { keys: [{ prefix: '/tenants/{cn}/', access: 'readwrite' }], capabilities: ['lease'] },
  },
  bindings: [
    { match: { cn: 'root' }, roles: ['all'] },
    { match: { cn: 'tenant-*' }, roles: ['tenant'] },
  ],
};

/** A real etcd and etcdgate as a child process (so its RSS is its own), audit to a file; started in beforeAll. */
export interface AttackTarget {
  readonly pki: Pki;
  readonly gate: GatewayProcess;
  readonly etcd: EtcdCluster;
  /** Every audit record written so far. */
  auditRecords(): Record<string, unknown>[];
}

/** Registers the hooks that start (and stop) an attack target in the calling file. */
export function useAttackTarget(options: { readonly overrides?: GatewayProcessOptions['overrides']; readonly policy?: unknown } = {}): AttackTarget {
  const stack = useGatewayStack({ gateway: false });
  let gate: GatewayProcess | undefined;
  let auditFile = '';
  beforeAll(async () => {
    const dir = await gatewayDir();
    auditFile = path.join(dir, 'audit.jsonl');
    gate = await stack.startGatewayProcess({ dir, audit: { sink: `file:${auditFile}` }, policy: options.policy ?? ATTACK_POLICY, ...(options.overrides === undefined ? {} : { overrides: options.overrides }) });
  });
  afterAll(async () => {
    await gate?.stop();
  });
  return {
    get pki() {
      return stack.pki;
    },
    get etcd() {
      return stack.etcd;
    },
    get gate() {
      if (gate === undefined) throw new Error('attack target used before its beforeAll started it');
      return gate;
    },
    auditRecords: () => {
      if (!existsSync(auditFile)) return [];
      return readFileSync(auditFile, 'utf8')
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    },
  };
}

/** What happened to etcdgate and to the legitimate client while `attack` ran. */
export interface UnderAttack<T> {
  readonly result: T;
  readonly legit: LegitResult;
  readonly peakRssMiB: number;
}

/**
 * Runs `attack` while the legitimate client (root, a Range every 50 ms on its own
 * connection) is served and etcdgate's RSS is sampled; the client keeps going for
 * `afterMs` once the attack is over (what it left behind counts too).
 */
export async function underAttack<T>(target: AttackTarget, attack: () => Promise<T>, options: { readonly afterMs?: number } = {}): Promise<UnderAttack<T>> {
  const legit = await legitimateClient(target.gate.endpoint, target.pki, 'root');
  const rss = sampleRss(target.gate.child.pid as number);
  let stopped: LegitResult | undefined;
  try {
    const result = await attack();
    await new Promise((resolve) => setTimeout(resolve, options.afterMs ?? 500));
    stopped = await legit.stop();
    return { result, legit: stopped, peakRssMiB: rss.peakMiB() };
  } finally {
    rss.stop();
    if (stopped === undefined) await legit.stop();
  }
}

/** The generous memory bound of the attack tests (the issue's: RSS under 512 MiB). */
export const RSS_BOUND_MIB = 512;

/** Audit records of one event.action (e.g. 'etcd.kv.put'). */
export function recordsOf(records: readonly Record<string, unknown>[], action: string): Record<string, unknown>[] {
  return records.filter((record) => (record['event'] as { action?: string } | undefined)?.action === action);
}

/** A record's etcd.response (code, message). */
export function responseOf(record: Record<string, unknown>): { code?: number; message?: string } {
  return ((record['etcd'] as { response?: object } | undefined)?.response ?? {}) as { code?: number; message?: string };
}
