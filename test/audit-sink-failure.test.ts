/**
 * Proves how the audit trail behaves when its sink cannot write: records are buffered
 * up to bufferRecords; with onFailure "deny" the auditor stops accepting once the buffer
 * is full and accepts again by itself after the sink recovers and the buffer drains
 * (nothing buffered is lost); with onFailure "allow" it keeps accepting and counts the
 * records it had to drop.
 */
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditor } from '../src/audit/auditor.js';
import type { AuditConfig } from '../src/config/types.js';
import type { Metrics } from '../src/observability/metrics-types.js';
import { NOOP_METRICS } from '../src/observability/metrics-types.js';
import { callEvent } from './support/audit-events.js';
import { makePki } from './support/pki.js';
import type { Pki } from './support/pki.js';
import { freePort } from './support/ports.js';
import { startSyslogReceiver, type SyslogReceiver } from './support/syslog-receiver.js';

const RETRY = { initialMs: 10, maxMs: 50 };
const LEVELS = { read: 'metadata', write: 'metadata', admin: 'metadata', auth: 'metadata' } as const;

let pki: Pki;
let dir = '';

beforeAll(async () => {
  pki = await makePki();
  dir = await mkdtemp(path.join(tmpdir(), 'etcdgate-audit-failure-'));
});

afterAll(async () => {
  await pki.remove();
  await rm(dir, { recursive: true, force: true });
});

/** Metrics that count what the audit trail reports. */
function countingMetrics(): Metrics & { written: number; failures: number; depth: number } {
  const counts = { written: 0, failures: 0, depth: 0 };
  return Object.assign(counts, {
    ...NOOP_METRICS,
    auditWritten: () => {
      counts.written += 1;
    },
    auditFailure: () => {
      counts.failures += 1;
    },
    auditQueueDepth: (depth: number) => {
      counts.depth = depth;
    },
  });
}

/** Polls `condition` until it holds; fails the test if it never does within a generous bound. */
async function eventually(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1000; i += 1) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`never happened: ${what}`);
}

/** The event ids of the records a receiver got, in arrival order. */
const idsOf = (receiver: SyslogReceiver): string[] => receiver.records.map((record) => (record as { event: { id: string } }).event.id);

function syslogConfig(port: number, onFailure: 'deny' | 'allow', bufferRecords: number): AuditConfig {
  return {
    sink: { kind: 'syslog', host: '127.0.0.1', port },
    onFailure,
    level: LEVELS,
    bufferRecords,
    syslog: { ca: pki.ca, appName: 'etcdgate' },
  };
}

describe('a syslog sink that is down', () => {
  it('with onFailure deny: stops accepting when the buffer is full, recovers once the server is up, loses nothing buffered', async () => {
    const port = await freePort();
    const metrics = countingMetrics();
    const auditor = await createAuditor(syslogConfig(port, 'deny', 10), { metrics, version: '0.1.0', policyVersion: () => 'p1', retry: RETRY });
    for (let i = 0; i < 9; i += 1) auditor.record(callEvent());
    expect(auditor.accepting).toBe(true);
    auditor.record(callEvent());
    expect(auditor.accepting).toBe(false);
    expect(metrics.depth).toBe(10);
    await eventually(() => metrics.failures > 0, 'a failed connection attempt is counted');

    // A record beyond the buffer (from a call already in flight) is dropped and counted.
    const failuresBefore = metrics.failures;
    auditor.record(callEvent());
    expect(metrics.failures).toBeGreaterThan(failuresBefore);

    const receiver = await startSyslogReceiver(port, pki.etcdServer);
    try {
      await eventually(() => auditor.accepting, 'accepting again after the server came up');
      await auditor.flush();
      expect(metrics.written).toBe(10);
      expect(metrics.depth).toBe(0);
      await eventually(() => idsOf(receiver).length === 10, 'the receiver has all ten buffered records');
      expect(new Set(idsOf(receiver)).size).toBe(10);

      auditor.record(callEvent());
      await auditor.flush();
      await eventually(() => idsOf(receiver).length === 11, 'a new record arrives');
      await auditor.close();
    } finally {
      await receiver.close();
    }
  });

  it('with onFailure allow: keeps accepting and counts the records it drops', async () => {
    const port = await freePort();
    const metrics = countingMetrics();
    const auditor = await createAuditor(syslogConfig(port, 'allow', 5), { metrics, version: '0.1.0', policyVersion: () => 'p1', retry: RETRY });
    for (let i = 0; i < 20; i += 1) auditor.record(callEvent());
    expect(auditor.accepting).toBe(true);
    expect(metrics.depth).toBe(5);
    // Fifteen records did not fit the buffer: each is a counted failure.
    expect(metrics.failures).toBeGreaterThanOrEqual(15);
    await auditor.close();
    expect(metrics.written).toBe(0);
    // close() with a dead sink gives up on the five buffered records and counts them.
    expect(metrics.failures).toBeGreaterThanOrEqual(20);
  });
});

describe('a file sink that cannot write', () => {
  it('with onFailure deny: stops accepting while the path is a directory, recovers once it is a file', async () => {
    const file = path.join(dir, 'blocked.jsonl');
    await mkdir(file);
    const metrics = countingMetrics();
    const config: AuditConfig = { sink: { kind: 'file', path: file }, onFailure: 'deny', level: LEVELS, bufferRecords: 4 };
    const auditor = await createAuditor(config, { metrics, version: '0.1.0', policyVersion: () => 'p1', retry: RETRY });
    for (let i = 0; i < 4; i += 1) auditor.record(callEvent());
    expect(auditor.accepting).toBe(false);
    await eventually(() => metrics.failures >= 2, 'failed writes are counted and retried');
    expect(auditor.accepting).toBe(false);

    await rm(file, { recursive: true });
    await eventually(() => auditor.accepting, 'accepting again once the file can be opened');
    await auditor.close();
    const lines = (await readFile(file, 'utf8')).split('\n').filter((line) => line !== '');
    expect(lines).toHaveLength(4);
    expect(metrics.written).toBe(4);
  });
});
