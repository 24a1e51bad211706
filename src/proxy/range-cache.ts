/**
 * An optional cache of serializable Range answers (config `cache.serializableRange`,
 * off by default). Serializable reads already accept a possibly stale answer from
 * whichever member serves them; the cache adds at most `maxStalenessMs` to that.
 *
 * Invariants:
 * - The cache is consulted only after the caller's policy allowed the request, so an
 *   identity never receives an answer it could not have asked etcd for (etcd's own
 *   grpc-proxy cache shares answers across identities: etcd issue 22065). Entries are
 *   keyed by the exact request bytes, so an answer is only ever reused for the same
 *   question.
 * - Every write etcdgate forwards invalidates each cached entry whose key range overlaps
 *   a range the write touches (the decoded write accesses: conservative for Txn). An
 *   upstream watch on every key invalidates on writes made through other proxies or
 *   directly to etcd; while that watch is not established nothing is stored, and losing
 *   it clears the cache.
 * - A Range that was in flight while an overlapping write was invalidated is not stored:
 *   recent invalidations are kept in a ring and checked against the read's start.
 */
import { LRUCache } from 'lru-cache';
import { WireReader } from '../etcd/wire.js';
import type { Access } from '../policy/types.js';

/** A key range as etcd defines it: `end` empty = the single key, "\0" = every key from `start`. */
interface KeyRange {
  readonly start: Buffer;
  readonly end: Buffer;
}

interface Entry {
  readonly response: Buffer;
  readonly storedAt: number;
  readonly range: KeyRange;
}

/** The upstream Watch stream the cache follows: it writes its create request and cancels it when stopped. */
export interface WatchFeed {
  write(message: Buffer): void;
  cancel(): void;
}

/** What the cache needs from a serializable RangeRequest. */
export interface CacheableRange {
  /** The cache key: the request bytes, as a string. */
  readonly id: string;
  readonly range: KeyRange;
  /** Invalidation counter when the read started. */
  readonly epoch: number;
}

export interface RangeCacheOptions {
  readonly maxEntries: number;
  readonly maxStalenessMs: number;
  /** Monotonic clock, ms (tests inject one). */
  readonly now?: () => number;
}

const EMPTY = Buffer.alloc(0);
/** Invalidations remembered for in-flight reads; older reads than the ring covers are not stored. */
const RING_SIZE = 1024;

function isAllFrom(end: Buffer): boolean {
  return end.length === 1 && end[0] === 0;
}

/** Whether two etcd key ranges share a key. */
export function rangesOverlap(a: KeyRange, b: KeyRange): boolean {
  // A single key k is the range [k, k + "\0").
  const aSingle = a.end.length === 0;
  const bSingle = b.end.length === 0;
  if (aSingle && bSingle) return a.start.equals(b.start);
  if (aSingle) return contains(b, a.start);
  if (bSingle) return contains(a, b.start);
  // [s1, e1) and [s2, e2) overlap iff s1 < e2 and s2 < e1 (with "\0" meaning no end).
  const aBeforeBEnd = isAllFrom(b.end) || Buffer.compare(a.start, b.end) < 0;
  const bBeforeAEnd = isAllFrom(a.end) || Buffer.compare(b.start, a.end) < 0;
  return aBeforeBEnd && bBeforeAEnd;
}

function contains(range: KeyRange, key: Buffer): boolean {
  if (Buffer.compare(key, range.start) < 0) return false;
  return isAllFrom(range.end) || Buffer.compare(key, range.end) < 0;
}

/** The serializable Range cache; see the module comment for its invariants. */
export class RangeCache {
  private readonly entries: LRUCache<string, Entry>;
  private readonly now: () => number;
  private readonly maxStalenessMs: number;
  /** Entries by their single key (point reads, the common case), for cheap invalidation. */
  private readonly byKey = new Map<string, Set<string>>();
  /** Entries over a key range (everything that is not a point read). */
  private readonly ranged = new Map<string, KeyRange>();
  private readonly ring: (KeyRange | undefined)[] = new Array<KeyRange | undefined>(RING_SIZE);
  private epoch = 0;
  private ready = false;

  constructor(options: RangeCacheOptions) {
    this.now = options.now ?? (() => performance.now());
    this.maxStalenessMs = options.maxStalenessMs;
    this.entries = new LRUCache<string, Entry>({
      max: options.maxEntries,
      dispose: (entry, id) => this.unindex(id, entry.range),
    });
  }

  /** Number of entries held (tests, metrics). */
  get size(): number {
    return this.entries.size;
  }

  /**
   * Reads what the cache needs from a RangeRequest, or undefined when the request is not
   * cacheable (linearizable, or malformed: the decoder upstream already refused those).
   */
  cacheable(request: Buffer): CacheableRange | undefined {
    let key: Buffer = EMPTY;
    let end: Buffer = EMPTY;
    let serializable = false;
    try {
      const r = new WireReader(request);
      while (r.next()) {
        if (r.field === 1) key = r.bytes();
        else if (r.field === 2) end = r.bytes();
        else if (r.field === 7) serializable = r.bool();
      }
    } catch {
      return undefined;
    }
    if (!serializable) return undefined;
    return { id: request.toString('latin1'), range: { start: Buffer.from(key), end: Buffer.from(end) }, epoch: this.epoch };
  }

  /** The cached answer to exactly this request, if fresh. Call only after the policy allowed it. */
  get(read: CacheableRange): Buffer | undefined {
    const entry = this.entries.get(read.id);
    if (entry === undefined) return undefined;
    if (this.now() - entry.storedAt > this.maxStalenessMs) {
      this.entries.delete(read.id);
      return undefined;
    }
    return entry.response;
  }

  /** Stores etcd's answer, unless an overlapping write was seen since the read started or the watch is down. */
  store(read: CacheableRange, response: Buffer): void {
    if (!this.ready) return;
    if (this.epoch - read.epoch >= RING_SIZE) return;
    for (let e = read.epoch; e < this.epoch; e++) {
      const invalidated = this.ring[e % RING_SIZE];
      if (invalidated !== undefined && rangesOverlap(invalidated, read.range)) return;
    }
    this.entries.set(read.id, { response, storedAt: this.now(), range: read.range });
    this.index(read.id, read.range);
  }

  /** Drops every entry overlapping `range` (a write etcdgate forwarded or the watch saw). */
  invalidate(range: KeyRange): void {
    this.ring[this.epoch % RING_SIZE] = range;
    this.epoch++;
    if (range.end.length === 0) {
      const ids = this.byKey.get(range.start.toString('latin1'));
      if (ids !== undefined) for (const id of [...ids]) this.entries.delete(id);
    } else {
      for (const [id, entryRange] of [...this.byKeyEntries()]) if (rangesOverlap(range, entryRange)) this.entries.delete(id);
    }
    for (const [id, entryRange] of [...this.ranged]) if (rangesOverlap(range, entryRange)) this.entries.delete(id);
  }

  /** Invalidates what the write accesses of an allowed request touch. */
  invalidateWrites(accesses: readonly Access[]): void {
    for (const access of accesses) if (access.kind === 'write') this.invalidate({ start: access.key, end: access.rangeEnd });
  }

  /** Empties the cache (watch lost, shutdown). */
  clear(): void {
    this.entries.clear();
    this.epoch += RING_SIZE;
  }

  /**
   * Keeps an upstream watch on every key open, invalidating on each event. `open` starts
   * a Watch stream to etcd (etcdgate's own) whose answers go to `onMessage` and whose end
   * to `onEnd`; undefined when no endpoint can take it. Returns the function that stops it.
   */
  follow(open: (onMessage: (message: Buffer) => void, onEnd: () => void) => WatchFeed | undefined, retryMs = 1000): () => void {
    let feed: WatchFeed | undefined;
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const lost = (): void => {
      this.ready = false;
      this.clear();
      feed = undefined;
      if (stopped) return;
      timer = setTimeout(connect, retryMs);
      timer.unref();
    };
    const connect = (): void => {
      if (stopped) return;
      const current: WatchFeed | undefined = open(
        (message) => {
          if (feed === current) this.onWatchResponse(message);
        },
        () => {
          if (feed === current) lost();
        },
      );
      if (current === undefined) return lost();
      feed = current;
      // Watch every key from the current revision: WatchCreateRequest{key "\0", range_end "\0"}.
      current.write(Buffer.from([0x0a, 0x06, 0x0a, 0x01, 0x00, 0x12, 0x01, 0x00]));
    };
    connect();
    return () => {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      this.ready = false;
      const current = feed;
      feed = undefined;
      current?.cancel();
      this.clear();
    };
  }

  private onWatchResponse(message: Buffer): void {
    let created = false;
    let canceled = false;
    const keys: Buffer[] = [];
    try {
      const r = new WireReader(message);
      while (r.next()) {
        if (r.field === 3) created = r.bool();
        else if (r.field === 4) canceled = r.bool();
        else if (r.field === 11) {
          const event = new WireReader(r.bytes());
          while (event.next()) {
            if (event.field !== 2) continue;
            const kv = new WireReader(event.bytes());
            while (kv.next()) if (kv.field === 1) keys.push(Buffer.from(kv.bytes()));
          }
        }
      }
    } catch {
      // An answer the cache cannot read: trust nothing it holds.
      this.clear();
      return;
    }
    if (canceled) {
      // etcd ended the watch (compaction, for one): events may be missed from here on.
      this.ready = false;
      this.clear();
      return;
    }
    if (created) this.ready = true;
    for (const key of keys) this.invalidate({ start: key, end: EMPTY });
  }

  private *byKeyEntries(): Generator<[string, KeyRange]> {
    for (const ids of this.byKey.values()) {
      for (const id of ids) {
        const entry = this.entries.peek(id);
        if (entry !== undefined) yield [id, entry.range];
      }
    }
  }

  private index(id: string, range: KeyRange): void {
    if (range.end.length !== 0) {
      this.ranged.set(id, range);
      return;
    }
    const key = range.start.toString('latin1');
    let ids = this.byKey.get(key);
    if (ids === undefined) {
      ids = new Set();
      this.byKey.set(key, ids);
    }
    ids.add(id);
  }

  private unindex(id: string, range: KeyRange): void {
    if (range.end.length !== 0) {
      this.ranged.delete(id);
      return;
    }
    const key = range.start.toString('latin1');
    const ids = this.byKey.get(key);
    ids?.delete(id);
    if (ids?.size === 0) this.byKey.delete(key);
  }
}
