/** Messages between the benchmark's main thread and its load-generator workers. */

/** The unary workloads. */
export type UnaryWorkload = 'range-linearizable' | 'range-serializable' | 'range-hot' | 'put' | 'txn';

/** What one worker does; see load-worker.ts. */
export interface LoadJob {
  readonly kind: 'unary' | 'watch' | 'putter';
  readonly address: string;
  readonly tls: { readonly ca: string; readonly cert: string; readonly key: string };
  readonly workload: UnaryWorkload;
  /** Simulated clients in this worker (one request in flight each), or concurrent putters. */
  readonly clients: number;
  /** Index of this worker's first client among all workers' clients. */
  readonly clientOffset: number;
  readonly totalClients: number;
  /** TCP+TLS connections this worker opens; clients are spread over them. */
  readonly connections: number;
  readonly keyCount: number;
  readonly valueBytes: number;
  /** Where the unary workloads' keys live (default /registry/; the encrypted target uses /registry/secrets/). */
  readonly keyBase?: string;
  readonly warmupMs: number;
  readonly watchers?: number;
  readonly streamsPerConnection?: number;
  readonly watchPrefix?: string;
  /** Watch fan-out: events each watcher must see; putter: puts to make. */
  readonly expectedEvents?: number;
  /** Memory mode: each watcher on its own key instead of the shared prefix. */
  readonly distinctKeys?: boolean;
}

export type ToWorker = { readonly type: 'measure'; readonly durationMs: number } | { readonly type: 'stop' } | { readonly type: 'go' };

export interface UnaryResult {
  readonly type: 'result';
  readonly count: number;
  readonly errors: number;
  readonly elapsedMs: number;
  /** Per-request latency, ms. */
  readonly latencies: Float64Array;
  readonly firstError?: string;
}

export interface WatchResult {
  readonly type: 'watch-result';
  readonly watchers: number;
  /** Watchers that saw every expected event. */
  readonly complete: number;
  readonly events: number;
  readonly inOrder: boolean;
  /** Put-to-delivery latency per event, ms. */
  readonly latencies: Float64Array;
}
