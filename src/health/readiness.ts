/**
 * Whether etcd can serve linearizable requests, as /readyz reports it. A connected
 * endpoint is not enough: a member that lost quorum (a member added that never started,
 * a partition) keeps its connections up and answers nothing that needs consensus.
 *
 * The check is etcd's own: `etcdctl endpoint health` makes a linearizable Get of the key
 * `health` and counts success or "permission denied" as healthy, since either answer
 * came back through the read-index path that needs a leader and a quorum
 * (etcdctl/ctlv3/command/ep_command.go, epHealthCommandFunc). etcdgate sends the same
 * read (count_only, so no value travels) through its upstream calls under its own
 * identity, with a deadline, every `intervalMs`; /readyz reads the last result, so a
 * probe never waits on etcd and the answer is at most intervalMs + timeoutMs old.
 * Checks never overlap (the next one is scheduled when one ends), and until the first
 * result the answer is "not ready" (fail closed).
 */
import { WireWriter } from '../etcd/wire-writer.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics-types.js';
import type { UpstreamCalls } from '../upstream/calls.js';

const RANGE = '/etcdserverpb.KV/Range';
/** RangeRequest { key = "health", count_only = true }: linearizable (serializable unset). */
const HEALTH_READ = new WireWriter().bytes(1, 'health').int(9, true).finish();
const PERMISSION_DENIED = 7;

/** Timing of the check (config upstream.healthCheck). */
export interface ReadinessOptions {
  readonly intervalMs: number;
  readonly timeoutMs: number;
}

/** What the check needs: the upstream calls, and where to report. */
export interface ReadinessDeps {
  readonly upstream: UpstreamCalls;
  readonly metrics: Metrics;
  readonly logger: Logger;
}

/** The linearizable readiness of etcd behind etcdgate, refreshed in the background. */
export class LinearizableReadiness {
  #serving = false;
  #checked = false;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #running: Promise<void> | undefined;

  constructor(private readonly options: ReadinessOptions, private readonly deps: ReadinessDeps) {}

  /** True when the last check got an answer from etcd's consensus path. */
  get serving(): boolean {
    return this.#serving;
  }

  /** Starts checking now and then every intervalMs. */
  start(): void {
    this.#stopped = false;
    this.#schedule(0);
  }

  /** Runs one check now (also what the timer runs); resolves when its result is in. */
  check(): Promise<void> {
    this.#running ??= this.#checkOnce().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** Stops the checks (an ongoing one finishes on its own deadline). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      void this.check().then(() => this.#schedule(this.options.intervalMs));
    }, delayMs);
    this.#timer.unref();
  }

  async #checkOnce(): Promise<void> {
    let serving: boolean;
    let failure: string | undefined;
    try {
      await this.deps.upstream.unary(RANGE, HEALTH_READ, { timeoutMs: this.options.timeoutMs, idempotent: true });
      serving = true;
    } catch (error: unknown) {
      const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
      serving = code === PERMISSION_DENIED;
      if (!serving) failure = typeof error === 'object' && error !== null && 'details' in error ? String(error.details) : String(error);
    }
    if (this.#stopped) return;
    if (serving !== this.#serving || !this.#checked) {
      // Only changes are logged: a lost quorum is one line, not one per interval.
      if (serving) this.deps.logger.info('etcd serves linearizable reads: ready');
      else this.deps.logger.warn({ error: failure }, 'etcd does not serve linearizable reads: not ready');
    }
    this.#serving = serving;
    this.#checked = true;
    this.deps.metrics.upstreamServing(serving);
  }
}
