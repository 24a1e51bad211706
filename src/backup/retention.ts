/**
 * Retention, as a pure decision: given the backups a destination holds and the rules
 * (the newest N, plus the newest of each of the last D days and of the last W weeks),
 * which ones go. Days and ISO weeks are counted in UTC from `now`, so every instance
 * of a fleet decides the same. Callers apply it only after a new backup has been
 * stored and verified, and the newest backup is always kept (N >= 1), so retention can
 * never leave a destination with fewer good backups than before the run.
 */
import type { BackupConfig } from '../config/types.js';

/** What retention needs to know of one backup. */
export interface RetainedItem {
  readonly file: string;
  /** When it was stored. */
  readonly createdAt: Date;
}

const DAY_MS = 86_400_000;

/** Days since the epoch of the UTC date of `time`. */
function utcDay(time: Date): number {
  return Math.floor(time.getTime() / DAY_MS);
}

/** The Monday (UTC day number) of the ISO week holding `time`. */
function isoWeekStart(time: Date): number {
  const day = utcDay(time);
  // 1970-01-01 was a Thursday: (day + 3) mod 7 is 0 on Mondays.
  return day - (((day + 3) % 7) + 7) % 7;
}

/**
 * The files to delete: every item not kept by a rule, oldest first. Items in the future
 * (clock skew between instances) count as today's.
 */
export function expiredBackups(items: readonly RetainedItem[], rules: BackupConfig['retention'], now: Date): string[] {
  const newestFirst = [...items].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.file < b.file ? 1 : -1));
  const keep = new Set<string>(newestFirst.slice(0, rules.keepLast).map((item) => item.file));
  const today = utcDay(now);
  const thisWeek = isoWeekStart(now);
  const seenDays = new Set<number>();
  const seenWeeks = new Set<number>();
  for (const item of newestFirst) {
    const day = Math.min(utcDay(item.createdAt), today);
    if (today - day < rules.keepDailyDays && !seenDays.has(day)) {
      seenDays.add(day);
      keep.add(item.file);
    }
    const week = Math.min(isoWeekStart(item.createdAt), thisWeek);
    if ((thisWeek - week) / 7 < rules.keepWeeklyWeeks && !seenWeeks.has(week)) {
      seenWeeks.add(week);
      keep.add(item.file);
    }
  }
  return newestFirst.filter((item) => !keep.has(item.file)).reverse().map((item) => item.file);
}
