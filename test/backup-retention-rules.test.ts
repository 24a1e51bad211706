/**
 * Retention as a pure decision: the newest N are kept, plus the newest of each of the
 * last D days and W ISO weeks (UTC); everything else goes, oldest first, and the
 * newest backup always stays.
 */
import { describe, expect, it } from 'vitest';
import { expiredBackups, type RetainedItem } from '../src/backup/retention.js';

const at = (iso: string): RetainedItem => ({ file: `etcd-snapshot-${iso}`, createdAt: new Date(iso) });
const NOW = new Date('2026-03-18T12:00:00Z'); // a Wednesday

describe('retention', () => {
  it('keeps the newest N and deletes the rest, oldest first', () => {
    const items = ['2026-03-18T10:00:00Z', '2026-03-18T11:00:00Z', '2026-03-18T08:00:00Z', '2026-03-18T09:00:00Z'].map(at);
    expect(expiredBackups(items, { keepLast: 2, keepDailyDays: 0, keepWeeklyWeeks: 0 }, NOW)).toEqual([
      'etcd-snapshot-2026-03-18T08:00:00Z',
      'etcd-snapshot-2026-03-18T09:00:00Z',
    ]);
    expect(expiredBackups(items, { keepLast: 10, keepDailyDays: 0, keepWeeklyWeeks: 0 }, NOW)).toEqual([]);
  });

  it('also keeps the newest backup of each of the last D days', () => {
    const items = ['2026-03-18T11:00:00Z', '2026-03-18T10:00:00Z', '2026-03-17T23:00:00Z', '2026-03-17T01:00:00Z', '2026-03-16T05:00:00Z', '2026-03-15T05:00:00Z'].map(at);
    // keepLast 1: today's 11:00. Days: today (11:00), yesterday (23:00), the day before (16th).
    expect(expiredBackups(items, { keepLast: 1, keepDailyDays: 3, keepWeeklyWeeks: 0 }, NOW)).toEqual([
      'etcd-snapshot-2026-03-15T05:00:00Z',
      'etcd-snapshot-2026-03-17T01:00:00Z',
      'etcd-snapshot-2026-03-18T10:00:00Z',
    ]);
  });

  it('and the newest of each of the last W ISO weeks (Monday to Sunday, UTC)', () => {
    // Weeks: this one from Mon 16th; the one before from Mon 9th (Sun 15th in it); then from Mon 2nd.
    const items = ['2026-03-16T00:30:00Z', '2026-03-15T23:30:00Z', '2026-03-10T00:00:00Z', '2026-03-03T00:00:00Z', '2026-02-24T00:00:00Z'].map(at);
    expect(expiredBackups(items, { keepLast: 1, keepDailyDays: 0, keepWeeklyWeeks: 3 }, NOW)).toEqual([
      'etcd-snapshot-2026-02-24T00:00:00Z',
      'etcd-snapshot-2026-03-10T00:00:00Z',
    ]);
  });

  it('never deletes the newest backup, even one from a clock ahead of ours', () => {
    const items = ['2026-03-18T13:00:00Z', '2026-01-01T00:00:00Z'].map(at);
    expect(expiredBackups(items, { keepLast: 1, keepDailyDays: 1, keepWeeklyWeeks: 0 }, NOW)).toEqual(['etcd-snapshot-2026-01-01T00:00:00Z']);
  });
});
