/**
 * The bounded in-memory queue between record() and a sink. Records wait here while the
 * sink is slow or down; one writer drains them in batches, retrying failed writes with
 * backoff, so a sink that comes back recovers by itself. Nothing leaves the queue until
 * the sink has taken it. When the queue is full, onFailure decides: "deny" reports
 * not-accepting (the proxy then refuses new calls) until it has drained to half,
 * "allow" keeps accepting; in both cases records beyond the bound are dropped and counted.
 * Records wait as strings and are encoded to UTF-8 a batch at a time, one buffer per
 * write rather than one per record. Before a batch the writer waits for the end of the
 * event-loop turn, or `lingerMs` when set, so that more records share a write (a write
 * costs far more than a record); it stops waiting at once for flush(), close() or a full
 * batch, and never delays a retry.
 */
import type { Metrics } from '../observability/metrics-types.js';

/** The logging the audit trail needs; a pino logger fits. */
export interface AuditLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** Where a queue delivers its bytes: a file, stdout, a syslog connection. */
export interface Transport {
  /** For logs, e.g. "file /var/log/etcdgate/audit.jsonl". Never holds a secret. */
  readonly description: string;
  /**
   * Writes all of `chunk`; resolves once the sink has taken it. Rejects on failure; a
   * PartialWriteError says how many leading bytes were taken before it failed.
   */
  write(chunk: Buffer): Promise<void>;
  /** Opens the destination anew (after log rotation); a no-op where there is none. */
  reopen(): void;
  /** False while the destination is known to be lost (the audit file deleted or replaced, not yet reopened). */
  readonly intact?: boolean;
  close(): Promise<void>;
}

/** A write that failed after the sink had already taken `written` bytes of the chunk. */
export class PartialWriteError extends Error {
  override readonly name = 'PartialWriteError';
  constructor(
    readonly written: number,
    cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : 'write failed', { cause });
  }
}

/** Backoff between failed writes: starts at initialMs, doubles up to maxMs. */
export interface RetryOptions {
  readonly initialMs: number;
  readonly maxMs: number;
}

/** Default backoff: quick first retries, then at most every 5 s. */
export const DEFAULT_RETRY: RetryOptions = Object.freeze({ initialMs: 100, maxMs: 5_000 });

export interface DeliveryQueueOptions {
  /** Records held at most (AuditConfig.bufferRecords). */
  readonly capacity: number;
  readonly onFailure: 'deny' | 'allow';
  readonly metrics: Metrics;
  readonly logger?: AuditLogger | undefined;
  readonly retry?: RetryOptions | undefined;
  /** Largest batch handed to the transport at once, bytes (a single larger record is sent alone). */
  readonly maxBatchBytes?: number | undefined;
  /** How long a batch may wait for more records before it is written, ms (default 0: no wait). */
  readonly lingerMs?: number | undefined;
}

interface FlushWaiter {
  /** Resolved once this many records (counted since creation) have been written. */
  readonly target: number;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

/** The batch being written; after a partial write, `chunk` is what is left of it. */
interface Batch {
  chunk: Buffer;
  readonly records: number;
  /** UTF-16 length of its records (for the linger's rough size count). */
  readonly chars: number;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Bounded, retrying queue of encoded records in front of one transport. */
export class DeliveryQueue {
  readonly #transport: Transport;
  readonly #capacity: number;
  readonly #lowWater: number;
  readonly #deny: boolean;
  readonly #metrics: Metrics;
  readonly #logger: AuditLogger | undefined;
  readonly #retry: RetryOptions;
  readonly #maxBatchBytes: number;
  readonly #lingerMs: number;

  // Encoded records (complete lines or frames) in order; the first #head entries are
  // written, emptied and awaiting compaction.
  #records: string[] = [];
  #head = 0;
  /** UTF-16 length of the records waiting: a lower bound on their UTF-8 size, so a full batch waits once it reaches maxBatchBytes. */
  #chars = 0;
  #batch: Batch | null = null;
  #enqueued = 0;
  #written = 0;
  #waiters: FlushWaiter[] = [];

  #pumping = false;
  #blocked = false;
  #failedAttempts = 0;
  #dropping = false;
  #closed = false;
  #closing: Promise<void> | null = null;
  #backoffMs: number;
  #wake: (() => void) | null = null;
  #endLinger: (() => void) | null = null;

  constructor(transport: Transport, options: DeliveryQueueOptions) {
    if (!Number.isInteger(options.capacity) || options.capacity < 1) {
      throw new RangeError(`audit buffer must hold at least one record (got ${String(options.capacity)})`);
    }
    this.#transport = transport;
    this.#capacity = options.capacity;
    this.#lowWater = Math.floor(options.capacity / 2);
    this.#deny = options.onFailure === 'deny';
    this.#metrics = options.metrics;
    this.#logger = options.logger;
    this.#retry = options.retry ?? DEFAULT_RETRY;
    this.#maxBatchBytes = options.maxBatchBytes ?? 1024 * 1024;
    this.#lingerMs = options.lingerMs ?? 0;
    this.#backoffMs = this.#retry.initialMs;
  }

  /** Records waiting, including the batch being written. */
  get size(): number {
    return this.#records.length - this.#head;
  }

  /** False while the queue is full and onFailure is "deny" (until it drains to half). */
  get accepting(): boolean {
    return !this.#blocked;
  }

  /**
   * Queues one encoded record (a complete line or frame, written as UTF-8); false (and
   * counted as a failure) when it had to be dropped.
   */
  push(record: string): boolean {
    if (this.#closed || this.size >= this.#capacity) {
      this.#drop(1, this.#closed ? 'audit trail closed: record dropped' : 'audit buffer full: records dropped');
      return false;
    }
    this.#records.push(record);
    this.#enqueued += 1;
    this.#chars += record.length;
    // A full batch is worth writing now (a UTF-16 unit is at least one byte).
    if (this.#chars >= this.#maxBatchBytes) this.#endLinger?.();
    if (this.#deny && !this.#blocked && this.size >= this.#capacity) {
      this.#blocked = true;
      this.#logger?.error({ sink: this.#transport.description, buffered: this.size }, 'audit buffer full: refusing new calls until the sink catches up');
    }
    this.#metrics.auditQueueDepth(this.size);
    if (!this.#pumping) void this.#pump();
    return true;
  }

  /** Resolves when every record queued so far has been written; waits through sink outages. */
  flush(): Promise<void> {
    if (this.#written >= this.#enqueued) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#waiters.push({ target: this.#enqueued, resolve, reject });
      this.#endLinger?.();
    });
  }

  /** False while the transport's destination is lost (see Transport.intact). */
  get sinkIntact(): boolean {
    return this.#transport.intact ?? true;
  }

  /** Asks the transport to reopen its destination (log rotation). */
  reopen(): void {
    this.#transport.reopen();
  }

  /**
   * Stops taking records, writes what is queued, closes the transport. If the sink is
   * failing, one more attempt is made at once; whatever it cannot take is dropped,
   * counted and logged, so shutdown never waits on a dead sink.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    this.#wake?.();
    this.#endLinger?.();
    try {
      await this.flush();
    } catch {
      // Already counted and logged by the pump.
    }
    try {
      await this.#transport.close();
    } catch (err: unknown) {
      this.#logger?.warn({ sink: this.#transport.description, error: errorText(err) }, 'audit sink did not close cleanly');
    }
  }

  #drop(count: number, message: string): void {
    for (let i = 0; i < count; i += 1) this.#metrics.auditFailure();
    if (!this.#dropping) {
      this.#dropping = true;
      this.#logger?.error({ sink: this.#transport.description, dropped: count }, message);
    }
  }

  /** The records at the head of the queue, up to maxBatchBytes, encoded into one buffer. */
  #takeBatch(): Batch {
    const first = this.#records[this.#head];
    if (first === undefined) return { chunk: Buffer.alloc(0), records: 0, chars: 0 };
    let bytes = Buffer.byteLength(first, 'utf8');
    let end = this.#head + 1;
    for (; end < this.#records.length; end += 1) {
      const record = this.#records[end] as string;
      const size = Buffer.byteLength(record, 'utf8');
      if (bytes + size > this.#maxBatchBytes) break;
      bytes += size;
    }
    if (end === this.#head + 1) return { chunk: Buffer.from(first, 'utf8'), records: 1, chars: first.length };
    const chunk = Buffer.allocUnsafe(bytes);
    let offset = 0;
    let chars = 0;
    for (let i = this.#head; i < end; i += 1) {
      const record = this.#records[i] as string;
      offset += chunk.write(record, offset, 'utf8');
      chars += record.length;
    }
    return { chunk, records: end - this.#head, chars };
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      while (this.#batch !== null || this.size > 0) {
        const lingering = this.#batch === null ? this.#linger() : undefined;
        if (lingering !== undefined) await lingering;
        const batch = this.#batch ?? this.#takeBatch();
        this.#batch = batch;
        try {
          await this.#transport.write(batch.chunk);
        } catch (err: unknown) {
          if (err instanceof PartialWriteError && err.written > 0) batch.chunk = batch.chunk.subarray(err.written);
          this.#onFailure(err);
          if (this.#closed) {
            this.#abandon();
            return;
          }
          await this.#sleep(this.#backoffMs);
          this.#backoffMs = Math.min(this.#backoffMs * 2, this.#retry.maxMs);
          continue;
        }
        this.#batch = null;
        this.#chars -= batch.chars;
        this.#onWritten(batch.records);
      }
    } finally {
      this.#pumping = false;
    }
  }

  #onFailure(err: unknown): void {
    this.#metrics.auditFailure();
    this.#failedAttempts += 1;
    if (this.#failedAttempts === 1) {
      this.#logger?.warn(
        { sink: this.#transport.description, error: errorText(err), buffered: this.size },
        'audit sink write failed; buffering and retrying',
      );
    }
  }

  #onWritten(count: number): void {
    // Let go of written records at once. Held until the next compaction (a thousand or
    // more of them), they outlived young-generation collections and were copied and
    // promoted (docs/performance.md, "Garbage collection").
    const records = this.#records;
    for (let i = this.#head, end = this.#head + count; i < end; i += 1) records[i] = '';
    this.#head += count;
    this.#written += count;
    // Compact once the written prefix dominates, keeping push and drain amortized O(1).
    if (this.#head > 1024 && this.#head * 2 > this.#records.length) {
      this.#records = this.#records.slice(this.#head);
      this.#head = 0;
    }
    for (let i = 0; i < count; i += 1) this.#metrics.auditWritten();
    this.#metrics.auditQueueDepth(this.size);
    if (this.#failedAttempts > 0) {
      this.#logger?.info({ sink: this.#transport.description, failedAttempts: this.#failedAttempts }, 'audit sink recovered');
      this.#failedAttempts = 0;
      this.#backoffMs = this.#retry.initialMs;
    }
    if (this.size < this.#capacity) this.#dropping = false;
    if (this.#blocked && this.size <= this.#lowWater) {
      this.#blocked = false;
      this.#logger?.info({ sink: this.#transport.description, buffered: this.size }, 'audit buffer drained: accepting calls again');
    }
    this.#settleWaiters();
  }

  #settleWaiters(): void {
    if (this.#waiters.length === 0) return;
    const pending: FlushWaiter[] = [];
    for (const waiter of this.#waiters) {
      if (waiter.target <= this.#written) waiter.resolve();
      else pending.push(waiter);
    }
    this.#waiters = pending;
  }

  /** Closing with a failing sink: drop what is left, count it, fail pending flushes. */
  #abandon(): void {
    const lost = this.size;
    this.#records = [];
    this.#head = 0;
    this.#chars = 0;
    this.#batch = null;
    // Nothing is pending any more: later flush() calls resolve at once.
    this.#enqueued = this.#written;
    for (let i = 0; i < lost; i += 1) this.#metrics.auditFailure();
    this.#metrics.auditQueueDepth(0);
    this.#logger?.error({ sink: this.#transport.description, lost }, 'audit sink failed at shutdown: records lost');
    const error = new Error(`audit sink failed: ${String(lost)} records not written`);
    for (const waiter of this.#waiters) waiter.reject(error);
    this.#waiters = [];
  }

  /**
   * Before a new batch: waits up to lingerMs for more records, unless someone waits for
   * them; with no linger, until the end of the current event-loop turn, so the records of
   * all the calls that one turn finished share one write.
   */
  #linger(): Promise<void> | undefined {
    if (this.#closed || this.#waiters.length > 0 || this.#chars >= this.#maxBatchBytes) return undefined;
    return new Promise<void>((resolve) => {
      const end = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        if (immediate !== undefined) clearImmediate(immediate);
        this.#endLinger = null;
        resolve();
      };
      const timer = this.#lingerMs > 0 ? setTimeout(end, this.#lingerMs) : undefined;
      const immediate = this.#lingerMs > 0 ? undefined : setImmediate(end);
      this.#endLinger = end;
    });
  }

  /** Waits ms, or less if close() wakes it. */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = () => {
        this.#wake = null;
        done();
      };
    });
  }
}
