/**
 * limits.maxRangeReadsPerIdentity in AbuseLimits: each identity has that many calls
 * reading a key range at etcd; the next ones wait in arrival order, leave the queue when
 * they end while waiting, and never take another identity's slots. The gauge
 * etcdgate_range_reads follows every step.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../src/config/limits-section.js';
import { AbuseLimits } from '../src/proxy/limits.js';

function limitsWith(max: number): { limits: AbuseLimits; gauge: { at_etcd: number; waiting: number } } {
  const gauge = { at_etcd: 0, waiting: 0 };
  const limits = new AbuseLimits({ ...DEFAULT_LIMITS, maxRangeReadsPerIdentity: max }, () => 0, {
    rangeReads: (state, delta) => {
      gauge[state] += delta;
    },
  });
  return { limits, gauge };
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('range-read slots per identity', () => {
  it('grants up to the limit at once, queues the rest, and passes each freed slot to the longest-waiting call', async () => {
    const { limits, gauge } = limitsWith(2);
    const granted: string[] = [];
    const ticket = (name: string) => limits.acquireRangeRead('tenant-a', () => granted.push(name));
    const a = ticket('a');
    const b = ticket('b');
    const c = ticket('c');
    const d = ticket('d');
    expect(granted).toEqual(['a', 'b']);
    expect(gauge).toEqual({ at_etcd: 2, waiting: 2 });
    limits.releaseRangeRead(a);
    await settle();
    expect(granted).toEqual(['a', 'b', 'c']);
    expect(gauge).toEqual({ at_etcd: 2, waiting: 1 });
    limits.releaseRangeRead(b);
    limits.releaseRangeRead(c);
    await settle();
    expect(granted).toEqual(['a', 'b', 'c', 'd']);
    expect(gauge).toEqual({ at_etcd: 1, waiting: 0 });
    limits.releaseRangeRead(d);
    // Released twice: counted once.
    limits.releaseRangeRead(d);
    expect(gauge).toEqual({ at_etcd: 0, waiting: 0 });
    expect(limits.rangeReadsOf('tenant-a')).toEqual({ holding: 0, waiting: 0 });
  });

  it('a call that ends while waiting leaves the queue and is never granted', async () => {
    const { limits, gauge } = limitsWith(1);
    const granted: string[] = [];
    const a = limits.acquireRangeRead('tenant-a', () => granted.push('a'));
    const gone = limits.acquireRangeRead('tenant-a', () => granted.push('gone'));
    const c = limits.acquireRangeRead('tenant-a', () => granted.push('c'));
    limits.releaseRangeRead(gone);
    expect(gauge).toEqual({ at_etcd: 1, waiting: 1 });
    limits.releaseRangeRead(a);
    await settle();
    expect(granted).toEqual(['a', 'c']);
    limits.releaseRangeRead(c);
    expect(gauge).toEqual({ at_etcd: 0, waiting: 0 });
  });

  it('a granted call that ends before its turn ran gives the slot on (a cancel racing the grant)', async () => {
    const { limits, gauge } = limitsWith(1);
    const granted: string[] = [];
    const a = limits.acquireRangeRead('tenant-a', () => granted.push('a'));
    const b = limits.acquireRangeRead('tenant-a', () => granted.push('b'));
    const c = limits.acquireRangeRead('tenant-a', () => granted.push('c'));
    limits.releaseRangeRead(a);
    // b holds the slot now, its grant not yet run; it ends at once.
    limits.releaseRangeRead(b);
    await settle();
    expect(granted).toContain('c');
    expect(gauge).toEqual({ at_etcd: 1, waiting: 0 });
    limits.releaseRangeRead(c);
    expect(gauge).toEqual({ at_etcd: 0, waiting: 0 });
  });

  it('one identity with every slot taken does not hold up another', () => {
    const { limits } = limitsWith(1);
    const granted: string[] = [];
    limits.acquireRangeRead('tenant-a', () => granted.push('a1'));
    limits.acquireRangeRead('tenant-a', () => granted.push('a2'));
    limits.acquireRangeRead('tenant-b', () => granted.push('b1'));
    expect(granted).toEqual(['a1', 'b1']);
    expect(limits.rangeReadsOf('tenant-a')).toEqual({ holding: 1, waiting: 1 });
    expect(limits.rangeReadsOf('tenant-b')).toEqual({ holding: 1, waiting: 0 });
  });

  it('0 means no limit, still counted', () => {
    const { limits, gauge } = limitsWith(0);
    let granted = 0;
    const tickets = Array.from({ length: 50 }, () => limits.acquireRangeRead('tenant-a', () => (granted += 1)));
    expect(granted).toBe(50);
    expect(gauge).toEqual({ at_etcd: 50, waiting: 0 });
    for (const ticket of tickets) limits.releaseRangeRead(ticket);
    expect(gauge).toEqual({ at_etcd: 0, waiting: 0 });
  });
});
