/**
 * Clients that ask for data and do not read it, from a certificate bound to its own
 * prefix, sent by an independent HTTP/2 client (test/support/h2-attack.py), each while a
 * legitimate client on its own connection makes a Range every 50 ms:
 * - readers that never open their window (SETTINGS_INITIAL_WINDOW_SIZE 0): 300 Ranges of
 *   the caller's own 1 MiB range (issue 13 item 2 asks 300 x 10 MB: that is
 *   bench/attacks.ts's zero-window-ranges; here a tenth, so etcd, which builds every answer
 *   whole, stays small on a shared CI machine). Flow control keeps etcd's streams paused,
 *   so etcdgate holds at most a stream window and a queue per call; and since nothing
 *   moves, each stream is reset (RST_STREAM ENHANCE_YOUR_CALM) after
 *   limits.sendStallTimeoutMs and its call to etcd cancelled, audited RESOURCE_EXHAUSTED.
 *   etcd builds every answer whole whatever the flow control, so only
 *   limits.maxRangeReadsPerIdentity of them are at etcd at once (counted by etcdgate's
 *   gauge etcdgate_range_reads: etcd's own grpc_server_handled_total counts a unary call
 *   handled once its answer is built, before it is sent, so it cannot show them); the
 *   others wait in etcdgate, and those still waiting when the attacker leaves are
 *   audited CANCELLED;
 * - a client that stops reading its socket at all (the TCP window closes): the same;
 * - zero-window watchers on a prefix receiving events, with the stall timeout off: once
 *   the response bytes queued on all connections pass limits.totalBufferBytes, the
 *   streams that have waited longest are reset, while a watcher that reads, on another
 *   connection, keeps getting every event.
 * Every legitimate call succeeds and etcdgate's RSS stays under 512 MiB.
 */
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it, vi } from 'vitest';
import { RSS_BOUND_MIB, recordsOf, responseOf, runAttack, summaryOf, underAttack, useAttackTarget, type AttackTarget } from './support/attack.js';
import { decode, encode } from './support/etcd-messages.js';
import { findSamples, parseExposition } from './support/prometheus-text.js';
import { rawClient, rawUnary, rawWatch } from './support/raw-client.js';

const KIB = 1024;
const MIB = 1024 * KIB;
const NOT_READING = 'etcdgate: stream reset: the client is not reading its responses';

async function put(target: AttackTarget, key: string, value: Buffer): Promise<void> {
  const client = rawClient(target.gate.endpoint, target.pki, 'root');
  try {
    await rawUnary(client, '/etcdserverpb.KV/Put', encode('etcdserverpb.PutRequest', { key: Buffer.from(key), value }));
  } finally {
    client.close();
  }
}

/** Range records of tenant-a ended because the client did not read. */
function notReadingRanges(target: AttackTarget): number {
  return recordsOf(target.auditRecords(), 'etcd.kv.range').filter((record) => {
    const response = responseOf(record);
    return response.code === grpc.status.RESOURCE_EXHAUSTED && response.message === NOT_READING;
  }).length;
}

/** Range records of tenant-a's big range that ended because the client left (CANCELLED: waiting for a slot, or at etcd). */
function cancelledRanges(target: AttackTarget): number {
  return recordsOf(target.auditRecords(), 'etcd.kv.range').filter((record) => responseOf(record).code === grpc.status.CANCELLED && JSON.stringify(record).includes('/tenants/tenant-a/big/')).length;
}

/** etcdgate's gauge of range reads by state, from its own /metrics. */
async function rangeReads(target: AttackTarget): Promise<{ atEtcd: number; waiting: number }> {
  const response = await fetch(`${target.gate.adminUrl}/metrics`);
  expect(response.status).toBe(200);
  const samples = parseExposition(await response.text());
  const value = (state: string): number => findSamples(samples, 'etcdgate_range_reads', { state }).reduce((total, sample) => total + sample.value, 0);
  return { atEtcd: value('at_etcd'), waiting: value('waiting') };
}

/** Samples rangeReads every 100 ms until stopped; resolves to the largest counts seen. */
function sampleRangeReads(target: AttackTarget): { stop(): Promise<{ atEtcd: number; waiting: number }> } {
  const most = { atEtcd: 0, waiting: 0 };
  let running = true;
  const loop = (async () => {
    while (running) {
      const now = await rangeReads(target);
      most.atEtcd = Math.max(most.atEtcd, now.atEtcd);
      most.waiting = Math.max(most.waiting, now.waiting);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return most;
    },
  };
}

describe('readers that do not read: reset after limits.sendStallTimeoutMs', () => {
  const target = useAttackTarget({ overrides: { limits: { sendStallTimeoutMs: 2000 } } });

  it('300 Ranges of the caller\'s own 1 MiB range, never read (window 0): at most limits.maxRangeReadsPerIdentity reach etcd at once, those are reset ENHANCE_YOUR_CALM, and every stream is audited', async () => {
    for (let i = 0; i < 8; i += 1) await put(target, `/tenants/tenant-a/big/${i}`, Buffer.alloc(128 * KIB, 0x61));
    const records = target.auditRecords().length;
    const before = { notReading: notReadingRanges(target), cancelled: cancelledRanges(target) };
    const sampler = sampleRangeReads(target);
    const { result, legit, peakRssMiB } = await underAttack(target, () =>
      runAttack(target.gate.endpoint, target.pki, 'tenant-a', 'zero-window', { kind: 'range', key: '/tenants/tenant-a/big/', streams: 300, holdMs: 9000 }),
    );
    const most = await sampler.stop();
    expect(result['dataBytes']).toBe(0);
    const summary = summaryOf(result);
    expect(summary.streams).toBe(300);
    expect(result['goawayCodes']).toEqual({});
    // 16 slots, reset every 2 s (sendStallTimeoutMs) and passed on: about 4 rounds in 9 s.
    const reset = summary.rst['ENHANCE_YOUR_CALM'] ?? 0;
    expect(reset).toBeGreaterThanOrEqual(16);
    expect(reset).toBeLessThan(300);
    // At most 16 at etcd at once (the legitimate client reads single keys); the rest waited.
    expect(most.atEtcd).toBe(16);
    expect(most.waiting).toBeGreaterThanOrEqual(200);
    expect(await rangeReads(target)).toEqual({ atEtcd: 0, waiting: 0 });
    // Every stream has its record: reset for not reading, or cancelled when the attacker left.
    await vi.waitFor(
      () => {
        const notReading = notReadingRanges(target) - before.notReading;
        expect(notReading).toBe(reset);
        expect(notReading + cancelledRanges(target) - before.cancelled).toBe(300);
      },
      { timeout: 10_000, interval: 200 },
    );
    expect(target.auditRecords().length).toBeGreaterThanOrEqual(records + 300);
    // The records of those that waited for a slot say how long: all but the first 16,
    // granted at once; the ones that got a slot freed by the first resets waited 2 s.
    const attack = recordsOf(target.auditRecords().slice(records), 'etcd.kv.range').filter((record) => JSON.stringify(record).includes('/tenants/tenant-a/big/'));
    expect(attack).toHaveLength(300);
    const waits = attack.map((record) => (record['etcdgate'] as { range_read_wait_ms?: number }).range_read_wait_ms);
    expect(waits.filter((wait) => wait === undefined)).toHaveLength(16);
    const waited = waits.filter((wait): wait is number => wait !== undefined);
    expect(waited.every((wait) => wait > 0)).toBe(true);
    expect(Math.max(...waited)).toBeGreaterThan(1500);
    expect(legit.failures).toEqual([]);
    expect(peakRssMiB).toBeLessThan(RSS_BOUND_MIB);
  });

  it('a client that stops reading its socket: its Ranges are reset and audited the same way', async () => {
    const before = { notReading: notReadingRanges(target), cancelled: cancelledRanges(target) };
    const { legit, peakRssMiB } = await underAttack(target, () => runAttack(target.gate.endpoint, target.pki, 'tenant-a', 'no-read', { key: '/tenants/tenant-a/big/', streams: 50, holdMs: 6000 }));
    await vi.waitFor(
      () => {
        const notReading = notReadingRanges(target) - before.notReading;
        expect(notReading).toBeGreaterThanOrEqual(16);
        expect(notReading + cancelledRanges(target) - before.cancelled).toBe(50);
      },
      { timeout: 10_000, interval: 200 },
    );
    expect(legit.failures).toEqual([]);
    expect(peakRssMiB).toBeLessThan(RSS_BOUND_MIB);
  });
});

describe('response bytes queued past limits.totalBufferBytes', () => {
  const target = useAttackTarget({ overrides: { limits: { sendStallTimeoutMs: 0, totalBufferBytes: 32 * MIB } } });

  it('400 zero-window watchers of a busy prefix: the longest-waiting streams are reset ENHANCE_YOUR_CALM; a watcher that reads gets every event', async () => {
    const events = '/tenants/tenant-a/events/';
    // A reader that keeps up, on its own connection: root watching the same prefix.
    const reader = rawClient(target.gate.endpoint, target.pki, 'root');
    const watch = rawWatch(reader);
    let seen = 0;
    let readerError: unknown;
    watch.on('data', (chunk: Buffer) => {
      const response = decode('etcdserverpb.WatchResponse', chunk);
      if (response['canceled'] === true) readerError = response['cancel_reason'];
      seen += ((response['events'] as unknown[] | undefined) ?? []).length;
    });
    watch.on('error', (error: unknown) => (readerError = error));
    watch.write(encode('etcdserverpb.WatchRequest', { create_request: { key: Buffer.from(events), range_end: Buffer.from('/tenants/tenant-a/events0') } }));

    let writing = true;
    let puts = 0;
    const writer = (async () => {
      const client = rawClient(target.gate.endpoint, target.pki, 'root');
      const value = Buffer.alloc(100 * KIB, 0x62);
      while (writing) {
        await rawUnary(client, '/etcdserverpb.KV/Put', encode('etcdserverpb.PutRequest', { key: Buffer.from(`${events}${puts % 10}`), value }));
        puts += 1;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      client.close();
    })();
    try {
      const { result, legit, peakRssMiB } = await underAttack(target, () =>
        runAttack(target.gate.endpoint, target.pki, 'tenant-a', 'zero-window', { kind: 'watch', key: events, connections: 4, streams: 100, holdMs: 8000 }),
      );
      const summary = summaryOf(result);
      expect(summary.streams).toBe(400);
      // Most of them: those still open hold little (each paused etcd's stream), under the bound's last quarter.
      expect(summary.rst['ENHANCE_YOUR_CALM'] ?? 0).toBeGreaterThanOrEqual(300);
      expect(legit.failures).toEqual([]);
      expect(peakRssMiB).toBeLessThan(RSS_BOUND_MIB);
    } finally {
      writing = false;
      await writer;
    }
    await vi.waitFor(() => expect(seen).toBe(puts), { timeout: 10_000, interval: 100 });
    expect(readerError).toBeUndefined();
    watch.cancel();
    reader.close();
  });
});
