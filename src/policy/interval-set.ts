/**
 * A set of byte intervals compiled for lookups by binary search. The input intervals may
 * overlap; they are cut into sorted, disjoint segments, each remembering the most specific
 * input interval covering it (the one starting last, then ending first), so a decision can
 * name the rule that granted or denied it. Segments that touch form "runs"; each segment
 * knows where its run ends, so "is [a, b) covered with no gap" is one binary search.
 */
import { compareEnds, type KeyInterval } from './key-range.js';

/** An input interval and what it stands for (a rule of a role). */
export interface SourcedInterval<T> {
  readonly interval: KeyInterval;
  readonly source: T;
}

/** How much of a requested interval a set covers. */
export type Coverage<T> =
  | { readonly kind: 'full'; readonly source: T }
  | { readonly kind: 'partial' }
  | { readonly kind: 'none' };

/** Immutable, compiled set of intervals with attribution. */
export class IntervalSet<T> {
  /** Segment starts, strictly increasing. */
  readonly #starts: Buffer[] = [];
  /** Segment ends (null = +inf); ends[i] <= starts[i + 1]. */
  readonly #ends: (Buffer | null)[] = [];
  readonly #sources: T[] = [];
  /** End of the run of touching segments that segment i belongs to. */
  readonly #runEnds: (Buffer | null)[] = [];

  /** Compiles the intervals (empty ones are ignored). O(n log n). */
  constructor(entries: readonly SourcedInterval<T>[]) {
    const live = entries.filter((e) => e.interval.to === null || Buffer.compare(e.interval.from, e.interval.to) < 0);
    // Sorted by start, wider first on equal starts: in the sweep below the most specific
    // interval containing a point is then the topmost live one on the stack.
    live.sort((a, b) => Buffer.compare(a.interval.from, b.interval.from) || compareEnds(b.interval.to, a.interval.to));
    const points: (Buffer | null)[] = [];
    for (const e of live) points.push(e.interval.from, e.interval.to);
    points.sort(compareEnds);
    const cuts = points.filter((p, i) => i === 0 || compareEnds(points[i - 1] ?? null, p) !== 0);

    const stack: SourcedInterval<T>[] = [];
    let next = 0;
    for (let i = 0; i + 1 < cuts.length; i++) {
      const start = cuts[i];
      // +inf (null) can only be the last cut, so every segment start is a key.
      if (start === null || start === undefined) break;
      const end = cuts[i + 1] ?? null;
      for (let entry = live[next]; entry !== undefined && Buffer.compare(entry.interval.from, start) <= 0; entry = live[++next]) {
        stack.push(entry);
      }
      // Drop intervals that ended at or before this segment; lower ones are dropped lazily
      // when they surface, which is sound because only the top is ever consulted.
      let top = stack.at(-1);
      while (top !== undefined && compareEnds(top.interval.to, start) <= 0) {
        stack.pop();
        top = stack.at(-1);
      }
      if (top === undefined) continue; // a gap
      const last = this.#sources.length - 1;
      if (last >= 0 && this.#sources[last] === top.source && compareEnds(this.#ends[last] ?? null, start) === 0) {
        this.#ends[last] = end; // the same source continues: extend its segment
      } else {
        this.#starts.push(start);
        this.#ends.push(end);
        this.#sources.push(top.source);
      }
    }
    let runEnd: Buffer | null = null;
    for (let i = this.#starts.length - 1; i >= 0; i--) {
      const end = this.#ends[i] ?? null;
      const nextStart = this.#starts[i + 1];
      const touchesNext = nextStart !== undefined && end !== null && Buffer.compare(end, nextStart) === 0;
      runEnd = touchesNext ? runEnd : end;
      this.#runEnds[i] = runEnd;
    }
  }

  /** Number of disjoint segments (for tests and diagnostics). */
  get size(): number {
    return this.#starts.length;
  }

  /** Index of the last segment starting at or before `key`, or -1. */
  #floor(key: Buffer): number {
    let lo = 0;
    let hi = this.#starts.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      // mid is within [0, length): the element exists.
      if (Buffer.compare(this.#starts[mid] as Buffer, key) <= 0) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }

  /** The source of the most specific interval containing `key`, or undefined. */
  lookup(key: Buffer): T | undefined {
    const i = this.#floor(key);
    if (i < 0) return undefined;
    const end = this.#ends[i] ?? null;
    return end === null || Buffer.compare(key, end) < 0 ? this.#sources[i] : undefined;
  }

  /** Whether the union of the set covers all of `interval` with no gap. */
  coverage(interval: KeyInterval): Coverage<T> {
    const i = this.#floor(interval.from);
    if (i >= 0) {
      const end = this.#ends[i] ?? null;
      if (end === null || Buffer.compare(interval.from, end) < 0) {
        if (compareEnds(this.#runEnds[i] ?? null, interval.to) >= 0) return { kind: 'full', source: this.#sources[i] as T };
        return { kind: 'partial' };
      }
    }
    return this.intersecting(interval) === undefined ? { kind: 'none' } : { kind: 'partial' };
  }

  /** The source of some segment sharing at least one key with `interval`, or undefined. */
  intersecting(interval: KeyInterval): T | undefined {
    // The segment to inspect is the last one starting before interval.to: segments are
    // disjoint and sorted, so it has the greatest end among all candidates.
    let i: number;
    if (interval.to === null) {
      i = this.#starts.length - 1;
    } else {
      i = this.#floor(interval.to);
      if (i >= 0 && Buffer.compare(this.#starts[i] as Buffer, interval.to) === 0) i--;
    }
    if (i < 0) return undefined;
    const end = this.#ends[i] ?? null;
    return end === null || Buffer.compare(end, interval.from) > 0 ? this.#sources[i] : undefined;
  }

  /** The segments, in order (for explanations and tests). */
  segments(): { interval: KeyInterval; source: T }[] {
    return this.#starts.map((from, i) => ({ interval: { from, to: this.#ends[i] ?? null }, source: this.#sources[i] as T }));
  }
}
