/**
 * Rate limiting of refusal audit records (refused handshakes, connections from sources
 * outside `server.allowedSources`, TCP connections that never speak TLS). Without it a
 * port scan or a load balancer's TCP health check writes one record per probe: 10,000
 * probes would fill the audit buffer and, with `audit.onFailure: deny`, refuse every
 * legitimate call. Counting is never limited (the metrics see every refusal); only the
 * records are.
 *
 * Each source has a token bucket (`burst` records at once, refilled at `perMinute`);
 * all sources together share one more bucket (`totalPerMinute`, a minute's worth at
 * once), so many sources cannot add up to a flood either. A refusal without a token is
 * counted as suppressed. Every SWEEP_MS a summary record per source says how many of its
 * refusals were not recorded (those summaries draw on the shared bucket too; what does
 * not fit, and what belonged to sources forgotten to keep the table bounded, goes into one
 * summary without a source). IPv6 sources are grouped by /64, the smallest block a
 * single attacker is commonly given.
 */
import { addressBits, normalizeAddress } from './cidr.js';

/** The limits, from config `limits.refusalRecords*`; a `perMinute` of 0 turns limiting off. */
export interface RefusalRecordLimits {
  /** Records per source per minute, sustained. */
  readonly perMinute: number;
  /** Records a source may produce at once. */
  readonly burst: number;
  /** Records per minute over all sources (also the shared bucket's size). */
  readonly totalPerMinute: number;
}

/** What the limiter needs from around it (all injected). */
export interface RefusalLimiterDeps<E extends { readonly address: string }> {
  /** Writes one refusal record. */
  readonly record: (event: E) => void;
  /** Writes a summary: `count` refusals from `address` ("" for all other sources) were not recorded since the last one. */
  readonly summary: (address: string, count: number) => void;
  /** Counts suppressed records (the metric). */
  readonly suppressed: () => void;
  /** Milliseconds on a monotonic clock. */
  readonly now: () => number;
  /** How often summaries are written, ms (default SWEEP_MS). */
  readonly sweepMs?: number;
  /** Sources remembered at most (default 10000). */
  readonly maxSources?: number;
}

/** How often summaries are written by default, ms. */
export const SWEEP_MS = 10_000;

interface Bucket {
  tokens: number;
  updated: number;
}

interface SourceState {
  readonly bucket: Bucket;
  /** The most recent address seen for this source (an IPv6 /64 groups many). */
  address: string;
  pending: number;
}

/** The source a refusal is attributed to: the IPv4 address, or the IPv6 /64 it falls in. */
export function sourceKey(address: string): string {
  const parsed = addressBits(address);
  if (parsed === undefined) return address;
  if (parsed.family === 4) return normalizeAddress(address);
  return `${(parsed.bits >> 64n).toString(16)}/64`;
}

/** Decides, refusal by refusal, whether it is recorded; see the file comment. */
export class RefusalLimiter<E extends { readonly address: string }> {
  readonly #limits: RefusalRecordLimits;
  readonly #deps: RefusalLimiterDeps<E>;
  readonly #sources = new Map<string, SourceState>();
  readonly #total: Bucket;
  readonly #maxSources: number;
  /** Suppressed refusals whose source was forgotten, or whose summary did not fit. */
  #others = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(limits: RefusalRecordLimits, deps: RefusalLimiterDeps<E>) {
    this.#limits = limits;
    this.#deps = deps;
    this.#maxSources = deps.maxSources ?? 10_000;
    this.#total = { tokens: limits.totalPerMinute, updated: deps.now() };
  }

  /** Starts writing summaries every sweep interval (the timer never keeps the process alive). */
  start(): void {
    if (this.#timer !== undefined || this.#limits.perMinute === 0) return;
    this.#timer = setInterval(() => this.sweep(), this.#deps.sweepMs ?? SWEEP_MS);
    this.#timer.unref();
  }

  /** Stops the timer and writes the summaries still owed (call before the audit trail closes). */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.sweep();
  }

  /** One refusal: recorded if its source and the total have a token, else counted as suppressed. */
  offer(event: E): void {
    if (this.#limits.perMinute === 0) {
      this.#deps.record(event);
      return;
    }
    const now = this.#deps.now();
    const key = sourceKey(event.address);
    let state = this.#sources.get(key);
    if (state === undefined) {
      this.#forgetOldest();
      state = { bucket: { tokens: this.#limits.burst, updated: now }, address: event.address, pending: 0 };
      this.#sources.set(key, state);
    }
    state.address = event.address;
    this.#refill(state.bucket, now, this.#limits.perMinute, this.#limits.burst);
    this.#refill(this.#total, now, this.#limits.totalPerMinute, this.#limits.totalPerMinute);
    if (state.bucket.tokens >= 1 && this.#total.tokens >= 1) {
      state.bucket.tokens -= 1;
      this.#total.tokens -= 1;
      this.#deps.record(event);
      return;
    }
    state.pending += 1;
    this.#deps.suppressed();
  }

  /** Writes the summaries owed and forgets sources that are idle again. */
  sweep(): void {
    const now = this.#deps.now();
    this.#refill(this.#total, now, this.#limits.totalPerMinute, this.#limits.totalPerMinute);
    for (const [key, state] of this.#sources) {
      if (state.pending > 0) {
        if (this.#total.tokens >= 1) {
          this.#total.tokens -= 1;
          this.#deps.summary(state.address, state.pending);
        } else {
          this.#others += state.pending;
        }
        state.pending = 0;
      }
      this.#refill(state.bucket, now, this.#limits.perMinute, this.#limits.burst);
      if (state.bucket.tokens >= this.#limits.burst) this.#sources.delete(key);
    }
    if (this.#others > 0) {
      this.#deps.summary('', this.#others);
      this.#others = 0;
    }
  }

  /** Sources currently remembered (for tests). */
  get sources(): number {
    return this.#sources.size;
  }

  #refill(bucket: Bucket, now: number, perMinute: number, capacity: number): void {
    const elapsed = Math.max(0, now - bucket.updated);
    bucket.tokens = Math.min(capacity, bucket.tokens + (elapsed * perMinute) / 60_000);
    bucket.updated = now;
  }

  /** Keeps the table bounded: the oldest source goes, its pending count into the sourceless summary. */
  #forgetOldest(): void {
    if (this.#sources.size < this.#maxSources) return;
    const oldest = this.#sources.entries().next().value;
    if (oldest === undefined) return;
    this.#others += oldest[1].pending;
    this.#sources.delete(oldest[0]);
  }
}
