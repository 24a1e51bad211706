/**
 * Requests that are never finished, from a bound certificate, sent by an independent
 * HTTP/2 client (test/support/h2-attack.py), while a legitimate client on its own
 * connection makes a Range every 50 ms:
 * - issue 13 item 2: 4 connections x 50 streams each announce a 10 MiB Put, send what the
 *   windows let them of 9 MiB, and stall. A message longer than a stream window is read
 *   only once its whole length is reserved in the connection's (16 MiB) and the process's
 *   request budget, so most wait with their window closed; each is ended after
 *   server.requestReadTimeoutMs (here 2 s) with DEADLINE_EXCEEDED and RST_STREAM, and
 *   gets one audit record saying so;
 * - issue 13 item 6, first bullet: 200 streams whose message is still being read when
 *   the TCP connection closes under them: each gets exactly one audit record.
 * Every legitimate call succeeds and etcdgate's RSS stays under 512 MiB.
 */
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it, vi } from 'vitest';
import { RSS_BOUND_MIB, recordsOf, responseOf, runAttack, summaryOf, underAttack, useAttackTarget } from './support/attack.js';

const MIB = 1024 * 1024;
const target = useAttackTarget({ overrides: { server: { requestReadTimeoutMs: 2000 } } });

/** tenant-a's Put records, from `from` on. */
function tenantPuts(from: number): Record<string, unknown>[] {
  return recordsOf(target.auditRecords().slice(from), 'etcd.kv.put').filter((record) => (record['user'] as { name?: string } | undefined)?.name === 'tenant-a');
}

describe('requests announced large and never finished', () => {
  it('200 streams announcing 10 MiB and stalling: each reset after requestReadTimeoutMs with DEADLINE_EXCEEDED, each audited once', async () => {
    const from = target.auditRecords().length;
    const { result, legit, peakRssMiB } = await underAttack(target, () =>
      runAttack(target.gate.endpoint, target.pki, 'tenant-a', 'stall', { connections: 4, streams: 50, declared: 10 * MIB, send: 9 * MIB, sendTimeoutMs: 1000, waitMs: 15_000 }),
    );
    expect(summaryOf(result)).toMatchObject({ streams: 200, finished: 200, grpcStatus: { '4': 200 }, rst: { NO_ERROR: 200 } });
    expect(result['goawayCodes']).toEqual({});
    await vi.waitFor(() => expect(tenantPuts(from)).toHaveLength(200), { timeout: 10_000, interval: 200 });
    for (const record of tenantPuts(from)) {
      expect(responseOf(record)).toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED, message: 'etcdgate: request not received within server.requestReadTimeoutMs (2000 ms)' });
      expect((record['event'] as { reason?: string }).reason).toBe('request not received in time');
    }
    expect(legit.failures).toEqual([]);
    expect(peakRssMiB).toBeLessThan(RSS_BOUND_MIB);
  });
});

describe('a connection that closes while requests are still being read', () => {
  it('200 such streams: exactly 200 audit records, each saying the connection was lost while the request was read', async () => {
    const from = target.auditRecords().length;
    const { result, legit } = await underAttack(target, () => runAttack(target.gate.endpoint, target.pki, 'tenant-a', 'close-mid-read', { streams: 200, beforeCloseMs: 300 }));
    expect(result['resetBeforeClose']).toBe(0);
    await vi.waitFor(() => expect(tenantPuts(from)).toHaveLength(200), { timeout: 10_000, interval: 200 });
    // Exactly one each: nothing more arrives later.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(tenantPuts(from)).toHaveLength(200);
    for (const record of tenantPuts(from)) expect((record['event'] as { reason?: string }).reason).toBe('connection lost while the request was read');
    expect(legit.failures).toEqual([]);
  });
});
