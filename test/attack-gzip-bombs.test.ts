/**
 * Issue 13 item 1: gzip bombs. Unary Puts marked grpc-encoding: gzip whose message is
 * about 10 KB on the wire and 10 MiB inflated, 1,000 of them over 2 connections, sent by
 * an independent HTTP/2 client (test/support/h2-attack.py), while a legitimate client on
 * its own connection makes a Range every 50 ms:
 * - from a certificate with no binding: every one refused PERMISSION_DENIED at admission,
 *   before any of its message is read, let alone inflated: the refusal arrives even when
 *   only half of the compressed message was sent and the stream left open;
 * - over the caller's rate limit: refused RESOURCE_EXHAUSTED the same way;
 * - from a bound caller, to its own key: inflation is streamed and stopped at 100 times
 *   the compressed size or when the connection's or the process's request budget is
 *   spent (RESOURCE_EXHAUSTED); nothing is written to etcd.
 * Every legitimate call succeeds and etcdgate's RSS stays under 512 MiB.
 */
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it, vi } from 'vitest';
import { RSS_BOUND_MIB, recordsOf, responseOf, runAttack, summaryOf, underAttack, useAttackTarget } from './support/attack.js';
import { decode, encode } from './support/etcd-messages.js';
import { rawClient, rawUnary } from './support/raw-client.js';

const MIB = 1024 * 1024;

function putRecords(records: readonly Record<string, unknown>[], cn: string): Record<string, unknown>[] {
  return recordsOf(records, 'etcd.kv.put').filter((record) => (record['user'] as { name?: string } | undefined)?.name === cn);
}

describe('gzip bombs', () => {
  const target = useAttackTarget();

  it('1,000 bombs from a certificate with no binding: all PERMISSION_DENIED, audited, others served', async () => {
    const before = putRecords(target.auditRecords(), 'nobody').length;
    const { result, legit, peakRssMiB } = await underAttack(target, () => runAttack(target.gate.endpoint, target.pki, 'nobody', 'gzip-bombs', { total: 1000, connections: 2, inflated: 10 * MIB }));
    expect(result['compressedBytes']).toBeLessThan(20_000);
    expect(summaryOf(result)).toMatchObject({ streams: 1000, finished: 1000, grpcStatus: { '7': 1000 } });
    expect(result['unanswered']).toBe(0);
    await vi.waitFor(() => expect(putRecords(target.auditRecords(), 'nobody').length - before).toBe(1000), { timeout: 10_000, interval: 200 });
    expect(legit.failures).toEqual([]);
    expect(peakRssMiB).toBeLessThan(RSS_BOUND_MIB);
  });

  it('with only half of each compressed message sent and the stream left open, the refusal still comes: nothing of the message was needed', async () => {
    const { result, legit } = await underAttack(target, () => runAttack(target.gate.endpoint, target.pki, 'nobody', 'gzip-bombs', { total: 200, connections: 2, partial: true }));
    expect(summaryOf(result)).toMatchObject({ streams: 200, finished: 200, grpcStatus: { '7': 200 } });
    expect(legit.failures).toEqual([]);
  });

  it('1,000 bombs from a bound caller to its own key: each stopped while inflating (ratio or budget), none written, others served', async () => {
    const key = '/tenants/tenant-a/bomb';
    const { result, legit, peakRssMiB } = await underAttack(target, () => runAttack(target.gate.endpoint, target.pki, 'tenant-a', 'gzip-bombs', { total: 1000, connections: 2, key, inflated: 10 * MIB }));
    expect(summaryOf(result)).toMatchObject({ streams: 1000, finished: 1000, grpcStatus: { '8': 1000 } });
    const messages = Object.keys(result['messages'] as Record<string, number>);
    for (const message of messages) expect(message).toMatch(/decompresses more than 100 times its size|too many request bytes held/u);
    // The allowed caller's own key is still unwritten: no bomb got through.
    const root = rawClient(target.gate.endpoint, target.pki, 'root');
    const answer = decode('etcdserverpb.RangeResponse', await rawUnary(root, '/etcdserverpb.KV/Range', encode('etcdserverpb.RangeRequest', { key: Buffer.from(key) })));
    root.close();
    expect(answer['kvs'] ?? []).toEqual([]);
    expect(legit.failures).toEqual([]);
    expect(peakRssMiB).toBeLessThan(RSS_BOUND_MIB);
  });
});

describe('gzip bombs over the rate limit', () => {
  const target = useAttackTarget({ overrides: { limits: { requestsPerSecond: 5, burst: 20 } } });

  it('past the burst, bombs are refused RESOURCE_EXHAUSTED before their message is read', async () => {
    const { result } = await underAttack(target, () => runAttack(target.gate.endpoint, target.pki, 'tenant-a', 'gzip-bombs', { total: 200, connections: 1, inFlight: 200, partial: true, key: '/tenants/tenant-a/bomb' }));
    const summary = summaryOf(result);
    // Half a message each and the stream left open: only a refusal at admission answers before the read timeout.
    expect(summary.grpcStatus['8']).toBeGreaterThanOrEqual(170);
    const rateLimited = putRecords(target.auditRecords(), 'tenant-a').filter((record) => responseOf(record).message === 'etcdgate: rate limit exceeded');
    expect(rateLimited.length).toBeGreaterThanOrEqual(170);
    expect(rateLimited.every((record) => responseOf(record).code === grpc.status.RESOURCE_EXHAUSTED)).toBe(true);
  });
});
