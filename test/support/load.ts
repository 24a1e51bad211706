/**
 * Steady client load for the reliability tests and the soak run: a Put loop that behaves
 * like an etcd client (retries a call that failed with UNAVAILABLE, possibly on another
 * endpoint) and records which writes were acknowledged, and a watcher that re-creates
 * its watch from the revision after the last event it saw when its stream ends, the way
 * clientv3 resumes. Both talk etcd's wire format through raw grpc-js clients.
 */
import * as grpc from '@grpc/grpc-js';
import { decode, encode } from './etcd-messages.js';
import { prefixEnd as wirePrefixEnd } from '../../src/etcd/keys.js';

const passThrough = (buffer: Buffer): Buffer => buffer;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A gRPC failure as the load saw it. */
export class CallError extends Error {
  override readonly name = 'CallError';
  constructor(readonly code: number, readonly details: string) {
    super(`${grpc.status[code] ?? code}: ${details}`);
  }
}

/** One unary etcd call with objects in and out and a deadline; rejects with a CallError. */
export function unary(
  client: grpc.Client,
  service: string,
  method: string,
  request: [type: string, value: Record<string, unknown>],
  responseType: string,
  options: { readonly deadlineMs?: number; readonly metadata?: grpc.Metadata } = {},
): Promise<Record<string, unknown>> {
  const bytes = encode(`etcdserverpb.${request[0]}`, request[1]);
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      `/etcdserverpb.${service}/${method}`,
      passThrough,
      passThrough,
      bytes,
      options.metadata ?? new grpc.Metadata(),
      { deadline: Date.now() + (options.deadlineMs ?? 10_000) },
      (error, response) => {
        if (error !== null) reject(new CallError(error.code, error.details));
        else if (response === undefined) reject(new CallError(grpc.status.INTERNAL, 'no response'));
        else resolve(decode(`etcdserverpb.${responseType}`, response));
      },
    );
  });
}

/** The revision in a response's header (0 when absent). */
export function headerRevision(response: Record<string, unknown>): number {
  const header = response['header'] as { revision?: string } | undefined;
  return Number(header?.revision ?? 0);
}

/** One attempt of the Put load. */
export interface Attempt {
  /** Date.now() when the attempt finished. */
  readonly at: number;
  /** gRPC code (0 = acknowledged). */
  readonly code: number;
  /** Which of the clients it went to. */
  readonly client: number;
}

/** A running Put load. */
export interface PutLoad {
  /** Keys whose Put was acknowledged (OK), with the client index that acknowledged it. */
  readonly acked: ReadonlyMap<string, number>;
  /** Every attempt so far, in completion order. */
  readonly attempts: readonly Attempt[];
  /** Attempts that failed, by gRPC code name. */
  errorsByCode(): Record<string, number>;
  /** Stops issuing Puts and resolves once every worker has finished its call in flight. */
  stop(): Promise<void>;
}

/** How startPutLoad writes. */
export interface PutLoadOptions {
  /** Key prefix; keys are `${prefix}${worker}-${seq}`. */
  readonly prefix: string;
  /** Concurrent workers (default 4). */
  readonly workers?: number;
  /** Per-call deadline (default 5 s). */
  readonly deadlineMs?: number;
  /** Pause between a failed attempt and its retry (default 100 ms). */
  readonly retryDelayMs?: number;
  /** Pause after each acknowledged Put (default 0: as fast as the worker can). */
  readonly pauseMs?: number;
}

/**
 * Starts `workers` loops, each writing unique keys through `clients[current]`. A Put that
 * fails with UNAVAILABLE is retried with the same key and value, moving to the next
 * client (clients with several endpoints do that); other failures are recorded and the
 * worker moves on to a new key. A retried Put may have been applied already: the key
 * then simply holds the same value twice, which etcd records as two revisions.
 */
export function startPutLoad(clients: readonly grpc.Client[], options: PutLoadOptions): PutLoad {
  const acked = new Map<string, number>();
  const attempts: Attempt[] = [];
  let running = true;
  const worker = async (id: number): Promise<void> => {
    let current = id % clients.length;
    for (let seq = 0; running; seq++) {
      const key = `${options.prefix}${id}-${seq}`;
      for (;;) {
        const client = clients[current];
        if (client === undefined) throw new Error('startPutLoad needs at least one client');
        try {
          await unary(client, 'KV', 'Put', ['PutRequest', { key: Buffer.from(key), value: Buffer.from(key) }], 'PutResponse', {
            deadlineMs: options.deadlineMs ?? 5_000,
          });
          attempts.push({ at: Date.now(), code: 0, client: current });
          acked.set(key, current);
          if ((options.pauseMs ?? 0) > 0) await sleep(options.pauseMs ?? 0);
          break;
        } catch (error: unknown) {
          const code = error instanceof CallError ? error.code : grpc.status.UNKNOWN;
          attempts.push({ at: Date.now(), code, client: current });
          if (!running) break;
          await sleep(options.retryDelayMs ?? 100);
          if (code !== grpc.status.UNAVAILABLE && code !== grpc.status.DEADLINE_EXCEEDED) break;
          current = (current + 1) % clients.length;
        }
      }
    }
  };
  const done = Promise.all(Array.from({ length: options.workers ?? 4 }, (_, id) => worker(id)));
  return {
    acked,
    attempts,
    errorsByCode: () => {
      const counts: Record<string, number> = {};
      for (const attempt of attempts) {
        if (attempt.code === 0) continue;
        const name = grpc.status[attempt.code] ?? String(attempt.code);
        counts[name] = (counts[name] ?? 0) + 1;
      }
      return counts;
    },
    stop: async () => {
      running = false;
      await done;
    },
  };
}

/**
 * Waits (up to `limitMs`) until the load has run `quietMs` with no failed attempt and at
 * least one acknowledged Put, all of it after the moment this is called (the fault);
 * resolves with whether that happened.
 */
export async function waitForQuiet(load: PutLoad, quietMs: number, limitMs: number): Promise<boolean> {
  const from = Date.now();
  const limit = from + limitMs;
  while (Date.now() < limit) {
    await sleep(250);
    const since = Date.now() - quietMs;
    if (since < from) continue;
    let failed = false;
    let ok = 0;
    let lastFailure = 0;
    for (const attempt of load.attempts) {
      if (attempt.code !== 0) lastFailure = Math.max(lastFailure, attempt.at);
      if (attempt.at < since) continue;
      if (attempt.code === 0) ok += 1;
      else failed = true;
    }
    if (!failed && ok > 0 && lastFailure < since) return true;
  }
  return false;
}

/** One watch event as a client sees it. */
export interface SeenEvent {
  readonly type: 'PUT' | 'DELETE';
  readonly key: string;
  readonly modRevision: number;
}

/** A watcher that survives stream failures. */
export interface ResumingWatch {
  readonly events: readonly SeenEvent[];
  /** How many times the stream ended and the watch was re-created. */
  readonly restarts: number;
  /** Highest revision known to be fully delivered (last event's, or a progress/created header's). */
  readonly revision: number;
  /** Resolves once `revision` reaches `target` (false after `limitMs`). */
  waitFor(target: number, limitMs: number): Promise<boolean>;
  close(): void;
}

/** What startResumingWatch watches, and how. */
export interface ResumingWatchOptions {
  readonly prefix: string;
  /** First revision to watch from. */
  readonly startRevision: number;
  /** Send `hasleader: true`, as clientv3's WithRequireLeader does (default true). */
  readonly requireLeader?: boolean;
  /** Pause before re-creating a failed watch (default 200 ms). */
  readonly retryDelayMs?: number;
}

/** Key after the last key with `prefix` (etcd's prefix range end). */
export function prefixEnd(prefix: string): Buffer {
  return wirePrefixEnd(Buffer.from(prefix));
}

/** The keys etcd holds under `prefix`, read with one keys-only Range through `client`. */
export async function keysUnder(client: grpc.Client, prefix: string): Promise<Set<string>> {
  const stored = await unary(client, 'KV', 'Range', ['RangeRequest', { key: Buffer.from(prefix), range_end: prefixEnd(prefix), keys_only: true }], 'RangeResponse');
  return new Set(((stored['kvs'] as { key: Buffer }[] | undefined) ?? []).map((kv) => kv.key.toString()));
}

/**
 * Watches `prefix` from `startRevision` and keeps watching: whenever the stream ends or
 * etcd cancels the watcher (no leader, member gone), it opens a new stream from the
 * revision after the last event seen. `clients` are tried in turn across restarts.
 */
export function startResumingWatch(clients: readonly grpc.Client[], options: ResumingWatchOptions): ResumingWatch {
  const events: SeenEvent[] = [];
  let next = options.startRevision;
  let delivered = options.startRevision - 1;
  let restarts = 0;
  let closed = false;
  let attempt = 0;
  let stream: grpc.ClientDuplexStream<Buffer, Buffer> | undefined;

  const open = (): void => {
    if (closed) return;
    const client = clients[attempt % clients.length];
    attempt += 1;
    if (client === undefined) throw new Error('startResumingWatch needs at least one client');
    const metadata = new grpc.Metadata();
    if (options.requireLeader ?? true) metadata.set('hasleader', 'true');
    const current = client.makeBidiStreamRequest('/etcdserverpb.Watch/Watch', passThrough, passThrough, metadata);
    stream = current;
    let ended = false;
    const restart = (): void => {
      if (ended) return;
      ended = true;
      current.cancel();
      if (closed) return;
      restarts += 1;
      setTimeout(open, options.retryDelayMs ?? 200);
    };
    current.on('error', () => restart());
    current.on('end', () => restart());
    current.on('data', (chunk: Buffer) => {
      const response = decode('etcdserverpb.WatchResponse', chunk) as {
        canceled?: boolean;
        created?: boolean;
        header?: { revision?: string };
        events?: { type?: string; kv?: { key?: Buffer; mod_revision?: string } }[];
      };
      if (response.canceled === true) return restart();
      const batch = response.events ?? [];
      for (const event of batch) {
        const modRevision = Number(event.kv?.mod_revision ?? 0);
        events.push({ type: event.type === 'DELETE' ? 'DELETE' : 'PUT', key: event.kv?.key?.toString() ?? '', modRevision });
        next = modRevision + 1;
        delivered = Math.max(delivered, modRevision);
      }
      // A progress notification (no events, not a creation) means everything up to its header revision was sent.
      if (batch.length === 0 && response.created !== true) {
        delivered = Math.max(delivered, Number(response.header?.revision ?? 0));
      }
    });
    current.write(
      encode('etcdserverpb.WatchRequest', {
        create_request: { key: Buffer.from(options.prefix), range_end: prefixEnd(options.prefix), start_revision: String(next), progress_notify: true },
      }),
    );
  };
  open();

  return {
    events,
    get restarts() {
      return restarts;
    },
    get revision() {
      return delivered;
    },
    waitFor: async (target, limitMs) => {
      const limit = Date.now() + limitMs;
      while (delivered < target) {
        if (Date.now() > limit) return false;
        await sleep(100);
      }
      return true;
    },
    close: () => {
      closed = true;
      stream?.cancel();
    },
  };
}
