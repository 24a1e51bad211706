/**
 * Floods from a client with a valid certificate, sent by an independent HTTP/2 client
 * (test/support/h2-attack.py), each against etcdgate as a child process while a
 * legitimate client on its own connection makes a Range every 50 ms:
 * - rapid reset (CVE-2023-44487): streams opened with their request and reset at once;
 *   past the reset budget (1,000, then 200 a second) GOAWAY ENHANCE_YOUR_CALM;
 * - frames that carry no request: SETTINGS, PING, empty DATA, WINDOW_UPDATE (connection
 *   and stream), PRIORITY, unknown types, and frames on a stream etcdgate has reset:
 *   past the budget (10,000, then 1,000 a second) GOAWAY ENHANCE_YOUR_CALM;
 * - more streams than SETTINGS_MAX_CONCURRENT_STREAMS: RST_STREAM REFUSED_STREAM
 *   (RFC 9113 5.1.2) for each one over, then GOAWAY ENHANCE_YOUR_CALM once refusals
 *   pass the reset budget.
 * Each time every legitimate call succeeds and etcdgate's RSS stays under 512 MiB.
 */
import { describe, expect, it } from 'vitest';
import { RSS_BOUND_MIB, goawayOf, runAttack, summaryOf, underAttack, useAttackTarget } from './support/attack.js';

const target = useAttackTarget();

describe('rapid reset (CVE-2023-44487)', () => {
  it('50,000 streams opened with a Range and reset at once: GOAWAY ENHANCE_YOUR_CALM after about the 1,000-reset budget', async () => {
    const { result, legit, peakRssMiB } = await underAttack(target, () => runAttack(target.gate.endpoint, target.pki, 'tenant-a', 'rapid-reset', { streams: 50_000, key: '/tenants/tenant-a/rr' }));
    const goaway = goawayOf(result);
    expect(goaway?.code).toBe('ENHANCE_YOUR_CALM');
    // The last stream etcdgate processed: about the budget's worth, far fewer than were sent.
    expect(goaway?.lastStreamId).toBeGreaterThan(2 * 900);
    expect(goaway?.lastStreamId).toBeLessThan(2 * 5_000);
    expect(result['closed']).toBe(true);
    expect(legit.failures).toEqual([]);
    expect(peakRssMiB).toBeLessThan(RSS_BOUND_MIB);
  });
});

describe('frames that carry no request', () => {
  it.each(['settings', 'ping', 'empty-data', 'window-update', 'window-update-stream', 'priority', 'unknown', 'closed-stream-data'])(
    '%s flood: GOAWAY ENHANCE_YOUR_CALM, the connection closed, others served',
    async (kind) => {
      const { result, legit, peakRssMiB } = await underAttack(target, () => runAttack(target.gate.endpoint, target.pki, 'tenant-a', 'flood', { kind, frames: 2_000_000 }), { afterMs: 200 });
      expect(goawayOf(result)?.code).toBe('ENHANCE_YOUR_CALM');
      expect(goawayOf(result)?.debug).toBe('too many frames that carry no request');
      expect(result['closed']).toBe(true);
      // It took at least the burst to get there, and far less than the 2,000,000 the client would send.
      expect(result['sent']).toBeGreaterThanOrEqual(10_000);
      expect(result['sent']).toBeLessThan(2_000_000);
      expect(legit.failures).toEqual([]);
      expect(peakRssMiB).toBeLessThan(RSS_BOUND_MIB);
    },
  );
});

describe('too many concurrent streams', () => {
  it('beyond SETTINGS_MAX_CONCURRENT_STREAMS each stream gets REFUSED_STREAM and the rest stay open; a further Range on the full connection is refused too', async () => {
    const { result, legit } = await underAttack(target, () => runAttack(target.gate.endpoint, target.pki, 'tenant-a', 'concurrent-streams', { streams: 1500, expectResets: 500 }));
    expect((result['serverSettings'] as Record<string, number>)['3']).toBe(1000);
    // 1,500 opened, 1,000 allowed: 500 refused, plus the probe Range that found the connection full.
    expect(summaryOf(result).rst).toEqual({ REFUSED_STREAM: 501 });
    expect(goawayOf(result)).toBeNull();
    expect(legit.failures).toEqual([]);
  });

  it('refusals past the reset budget end the connection: GOAWAY ENHANCE_YOUR_CALM', async () => {
    const { result, legit, peakRssMiB } = await underAttack(target, () => runAttack(target.gate.endpoint, target.pki, 'tenant-a', 'concurrent-streams', { streams: 4000, expectResets: 3000 }));
    expect(goawayOf(result)?.code).toBe('ENHANCE_YOUR_CALM');
    expect(goawayOf(result)?.debug).toBe('too many refused streams');
    expect(summaryOf(result).rst['REFUSED_STREAM']).toBeGreaterThanOrEqual(1000);
    expect(legit.failures).toEqual([]);
    expect(peakRssMiB).toBeLessThan(RSS_BOUND_MIB);
  });
});
