/**
 * Per-identity abuse limits enforced by the handlers: a token bucket of requests per
 * second and a count of open watchers, both keyed by the client certificate's SHA-256
 * fingerprint (two certificates with the same CN are two identities), plus the bound on
 * unread watch data. Connection-level limits (connections, streams per connection,
 * handshake time) are enforced by the TLS listener and the gRPC server instead.
 */
import type { LimitsConfig } from '../config/types.js';
import type { Decision } from '../policy/types.js';

/** Buckets kept before full (idle) ones are dropped; a full bucket is the same as none. */
const MAX_IDLE_BUCKETS = 10_000;

/** The audit decision for a request refused by the rate limit (not a policy denial). */
export const RATE_LIMITED_DECISION: Decision = { allowed: false, reason: 'rate limited' };

/** The audit decision for a watch create refused by the per-identity watcher limit. */
export const TOO_MANY_WATCHERS_DECISION: Decision = { allowed: false, reason: 'too many watchers' };

interface Bucket {
  tokens: number;
  /** Clock reading (ms) of the last refill. */
  at: number;
}

/** The limits the handlers enforce, with their per-identity state. */
export class AbuseLimits {
  private readonly buckets = new Map<string, Bucket>();
  private readonly watcherCounts = new Map<string, number>();

  constructor(
    private readonly config: Pick<LimitsConfig, 'requestsPerSecond' | 'burst' | 'maxWatchersPerIdentity' | 'maxWatcherBufferBytes'>,
    private readonly now: () => number = () => performance.now(),
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
