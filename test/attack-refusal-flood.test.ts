/**
 * Answers etcdgate makes itself, asked for and not read. A refused watch create is
 * answered in-band by etcdgate, not by etcd, so pausing etcd's stream does not slow it:
 * before this test, a client that sent refused creates without reading had each answer
 * queued (up to limits.maxWatcherBufferBytes, 16 MiB of ~50-byte messages), and draining
 * that queue took time growing with the square of its length (each sent buffer shifted
 * out of the front of an array).
 *
 * Performed by an independent HTTP/2 client (test/support/h2-attack.py, refusal-flood):
 * one Watch stream with a zero window, 200,000 refused creates sent as fast as etcdgate's
 * windows take them, then the window opened and everything read. Checked: etcdgate stops
 * reading the stream once its answers back up (it takes a bounded number of creates, not
 * all of them); every create it took is answered, none lost; the legitimate client on
 * another connection is served throughout; RSS stays bounded. The attacker sends whole
 * creates only (a half-sent one meets server.requestReadTimeoutMs, another defence).
 */
import { describe, expect, it, vi } from 'vitest';
import { RSS_BOUND_MIB, recordsOf, runAttack, underAttack, useAttackTarget } from './support/attack.js';

const CREATES = 200_000;

const target = useAttackTarget();

/** Audit records of tenant-a's watch creates refused on tenant-b's prefix. */
function refusedCreates(attack: typeof target): number {
  return recordsOf(attack.auditRecords(), 'etcd.watch.watch').filter((record) => {
    const own = record['etcdgate'] as { event_kind?: string } | undefined;
    const request = (record['etcd'] as { request?: { key?: string } } | undefined)?.request;
    return own?.event_kind === 'watch.create' && record['event'] !== undefined && (record['event'] as { outcome?: string }).outcome === 'failure' && request?.key === '/tenants/tenant-b/';
  }).length;
}

describe('refused watch creates, not read', () => {
  it('etcdgate stops taking creates once its answers back up, answers every one it took, and keeps serving others', async () => {
    const { result, legit, peakRssMiB } = await underAttack(target, () =>
      runAttack(target.gate.endpoint, target.pki, 'tenant-a', 'refusal-flood', { key: '/tenants/tenant-b/', creates: CREATES, holdMs: 2000 }),
    );
    const sent = result['sent'] as number;
    const refusals = result['refusals'] as number;
    // Backpressure: etcdgate took what its windows and its queue hold, far from all of them.
    expect(sent).toBeGreaterThan(1000);
    expect(sent).toBeLessThan(CREATES / 4);
    // Nothing taken is lost: every create etcdgate read was answered, in-band.
    expect(refusals).toBe(sent);
    expect((result['stream'] as { rst: string | null }).rst).toBeNull();
    expect(legit.failures).toEqual([]);
    expect(legit.calls.length).toBeGreaterThan(10);
    expect(peakRssMiB).toBeLessThan(RSS_BOUND_MIB);
    // Each refusal is audited as a refused watch create of tenant-a's.
    await vi.waitFor(() => expect(refusedCreates(target)).toBe(sent), { timeout: 15_000, interval: 250 });
  });
});
