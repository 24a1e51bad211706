/**
 * Per-identity abuse limits enforced by the handlers: a token bucket of requests per
 * second, a count of open watchers and slots for calls that read a key range, all keyed
 * by the client certificate's SHA-256 fingerprint (two certificates with the same CN are
 * two identities), plus the bound on unread watch data.
 *
 * Range-read slots exist because etcd builds every answer whole, in its own memory,
 * before flow control applies: 300 Ranges of 10 MiB that are never read made etcd hold
 * 5 GiB and stalled every other client of etcd for seconds (docs/attacks.md), and
 * etcdgate's backpressure cannot help once etcd has built them. So an identity has at
 * most `maxRangeReadsPerIdentity` such calls at etcd; further ones wait, in arrival
 * order, until one of its own ends. A caller that does not read holds only its own
 * slots, and only until limits.sendStallTimeoutMs resets its streams.
 *
 * Connection-level limits (connections, streams per connection, handshake time) are
 * enforced by the TLS listener and the gRPC server instead.
 */
import type { LimitsConfig } from '../config/types.js';
import { NOOP_METRICS, type Metrics } from '../observability/metrics-types.js';
import type { Decision } from '../policy/types.js';

/** Buckets kept before full (idle) ones are dropped; a full bucket is the same as none. */
const MAX_IDLE_BUCKETS = 10_000;

/** The audit decision for a request refused by the rate limit (not a policy denial). */
export const RATE_LIMITED_DECISION: Decision = { allowed: false, reason: 'rate limited' };

/** The audit decision for a watch create refused by the per-identity watcher limit. */
export const TOO_MANY_WATCHERS_DECISION: Decision = { allowed: false, reason: 'too many watchers' };

/** One call's claim on a range-read slot (see AbuseLimits.acquireRangeRead). */
export interface RangeReadTicket {
  readonly fingerprint: string;
  readonly granted: () => void;
  state: 'waiting' | 'holding' | 'ended';
}

interface RangeReadSlots {
  holding: number;
  readonly waiting: RangeReadTicket[];
}

interface Bucket {
  tokens: number;
  /** Clock reading (ms) of the last refill. */
  at: number;
}

/** The limits the handlers enforce, with their per-identity state. */
export class AbuseLimits {
  private readonly buckets = new Map<string, Bucket>();
  private readonly watcherCounts = new Map<string, number>();
  private readonly rangeReads = new Map<string, RangeReadSlots>();

  constructor(
    private readonly config: Pick<LimitsConfig, 'requestsPerSecond' | 'burst' | 'maxWatchersPerIdentity' | 'maxWatcherBufferBytes' | 'maxRangeReadsPerIdentity'>,
    private readonly now: () => number = () => performance.now(),
    private readonly metrics: Pick<Metrics, 'rangeReads'> = NOOP_METRICS,
  ) {}

  /** Bytes a watch stream may leave unread by its client. */
  get maxWatcherBufferBytes(): number {
    return this.config.maxWatcherBufferBytes;
  }

  /** Takes one request token for `fingerprint`; false when the bucket is empty (refuse the request). */
  takeRequest(fingerprint: string): boolean {
    const { requestsPerSecond, burst } = this.config;
    if (requestsPerSecond <= 0) return true;
    const now = this.now();
    let bucket = this.buckets.get(fingerprint);
    if (bucket === undefined) {
      if (this.buckets.size >= MAX_IDLE_BUCKETS) this.dropFullBuckets(now);
      bucket = { tokens: burst, at: now };
      this.buckets.set(fingerprint, bucket);
    } else {
      bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * requestsPerSecond);
      bucket.at = now;
    }
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** Reserves a watcher slot for `fingerprint`; false when it already has the maximum open. */
  acquireWatcher(fingerprint: string): boolean {
    const max = this.config.maxWatchersPerIdentity;
    const open = this.watcherCounts.get(fingerprint) ?? 0;
    if (max > 0 && open >= max) return false;
    this.watcherCounts.set(fingerprint, open + 1);
    return true;
  }

  /** Gives back a slot taken by acquireWatcher (exactly once per successful acquire). */
  releaseWatcher(fingerprint: string): void {
    const open = this.watcherCounts.get(fingerprint) ?? 0;
    if (open <= 1) this.watcherCounts.delete(fingerprint);
    else this.watcherCounts.set(fingerprint, open - 1);
  }

  /**
   * A slot for one call of `fingerprint` that reads a key range: `granted` runs once
   * the call may go to etcd (at once when a slot is free, else when one of the
   * identity's calls gives its slot back). Every ticket is ended exactly once with
   * `releaseRangeRead`, whether it was granted or is still waiting.
   */
  acquireRangeRead(fingerprint: string, granted: () => void): RangeReadTicket {
    const ticket: RangeReadTicket = { fingerprint, granted, state: 'waiting' };
    const max = this.config.maxRangeReadsPerIdentity;
    let slots = this.rangeReads.get(fingerprint);
    if (slots === undefined) {
      slots = { holding: 0, waiting: [] };
      this.rangeReads.set(fingerprint, slots);
    }
    if (max <= 0 || slots.holding < max) {
      slots.holding += 1;
      ticket.state = 'holding';
      this.metrics.rangeReads('at_etcd', 1);
      granted();
    } else {
      slots.waiting.push(ticket);
      this.metrics.rangeReads('waiting', 1);
    }
    return ticket;
  }

  /** Ends `ticket`: a held slot goes to the identity's longest-waiting call; a waiting ticket leaves the queue. */
  releaseRangeRead(ticket: RangeReadTicket): void {
    const state = ticket.state;
    ticket.state = 'ended';
    const slots = this.rangeReads.get(ticket.fingerprint);
    if (slots === undefined || state === 'ended') return;
    if (state === 'waiting') {
      const index = slots.waiting.indexOf(ticket);
      if (index >= 0) slots.waiting.splice(index, 1);
      this.metrics.rangeReads('waiting', -1);
    } else {
      const next = slots.waiting.shift();
      if (next === undefined) {
        slots.holding -= 1;
        this.metrics.rangeReads('at_etcd', -1);
      } else {
        this.metrics.rangeReads('waiting', -1);
        next.state = 'holding';
        // The slot passes on directly; the next call starts in its own turn, not inside
        // the end of the call that gave the slot back.
        queueMicrotask(next.granted);
      }
    }
    if (slots.holding === 0 && slots.waiting.length === 0) this.rangeReads.delete(ticket.fingerprint);
  }

  /** Range reads of `fingerprint` at etcd and waiting (for tests and diagnostics). */
  rangeReadsOf(fingerprint: string): { readonly holding: number; readonly waiting: number } {
    const slots = this.rangeReads.get(fingerprint);
    return { holding: slots?.holding ?? 0, waiting: slots?.waiting.length ?? 0 };
  }

  /** Open watchers of `fingerprint` (for tests and diagnostics). */
  watchersOf(fingerprint: string): number {
    return this.watcherCounts.get(fingerprint) ?? 0;
  }

  private dropFullBuckets(now: number): void {
    const { requestsPerSecond, burst } = this.config;
    for (const [key, bucket] of this.buckets) {
      if (bucket.tokens + ((now - bucket.at) / 1000) * requestsPerSecond >= burst) this.buckets.delete(key);
    }
  }
}
