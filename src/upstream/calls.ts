/**
 * etcdgate's own calls to etcd, under its upstream identity: the lease-key lookups of
 * the policy, and the features that act on etcd themselves (backups, re-encryption,
 * health checks). This is the one interface those features use; how the calls travel
 * stays inside src/upstream.
 *
 * Every call fails with a Status-shaped error ({ code, details }); unary calls always
 * carry a deadline, so nothing waits forever on an etcd that stopped answering. Streams
 * are read with `for await`; reading slowly slows etcd down (the stream's window stays
 * closed), it never buffers without bound.
 */
import type { CallOutcome, ClientCallHandler, GrpcClientCall } from '../transport/grpc/client-call.js';
import { Code } from '../transport/grpc/status.js';
import type { Endpoint, UpstreamPool } from './pool.js';

/** The error every call rejects with: a gRPC status code and its message. */
export interface UpstreamError {
  readonly code: number;
  readonly details: string;
}

export interface UnaryOptions {
  /** Time the call may take, ms (default: the pool's lookup timeout). */
  readonly timeoutMs?: number;
  /** Whether the call may be repeated on another endpoint after it may have reached etcd (reads). */
  readonly idempotent?: boolean;
  /**
   * The configured URL of the one endpoint to ask (a question about that member, e.g.
   * its Status); no other endpoint is tried. Default: the pool's pick, with failover.
   */
  readonly endpoint?: string;
}

/** A stream of etcd's messages (server-streaming call); breaking out of the loop, or cancel(), ends the call. */
export interface MessageStream extends AsyncIterable<Buffer> {
  cancel(): void;
}

/** A bidirectional call (Watch, LeaseKeepAlive): write requests, read responses. */
export interface DuplexStream extends MessageStream {
  /** Sends one request message; false when the caller should wait before sending more. */
  write(message: Buffer): boolean;
  /** No more requests (half-close). */
  end(): void;
}

/** A bidirectional call whose answers are handed over as they arrive (for code that reacts synchronously). */
export interface Feed {
  write(message: Buffer): void;
  cancel(): void;
}

export interface UpstreamCalls {
  unary(path: string, request: Buffer, options?: UnaryOptions): Promise<Buffer>;
  serverStream(path: string, request: Buffer, options?: { readonly timeoutMs?: number }): MessageStream;
  duplex(path: string): DuplexStream;
  /** Opens a bidirectional call; undefined when no endpoint can take it. `onEnd` runs once, however it ends. */
  feed(path: string, onMessage: (message: Buffer) => void, onEnd: (error: UpstreamError | undefined) => void): Feed | undefined;
}

const NO_UPSTREAM: UpstreamError = { code: Code.UNAVAILABLE, details: 'etcdgate: no etcd endpoint available' };
/** Messages a stream reader may leave unread before etcd is held back. */
const STREAM_QUEUE = 8;

function upstreamError(outcome: CallOutcome): UpstreamError {
  return { code: outcome.code, details: outcome.details };
}

/** One unary call on `endpoint`; resolves with the response message or rejects with the outcome. */
function unaryOn(endpoint: Endpoint, path: string, request: Buffer, deadline: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let response: Buffer | undefined;
    const handler: ClientCallHandler = {
      onHeaders: () => undefined,
      onMessage: (_call, message) => {
        response = Buffer.from(message);
      },
      onEnd: (_call, outcome) => {
        if (outcome.code === Code.OK && response !== undefined) resolve(response);
        else if (outcome.code === Code.OK) reject({ code: Code.INTERNAL, details: 'etcdgate: etcd sent no response message', notSent: false });
        else reject(outcome);
      },
    };
    const call = endpoint.call(path, { deadline, maxRecvBytes: -1 }, handler);
    if (call === undefined) {
      reject({ ...NO_UPSTREAM, notSent: true });
      return;
    }
    call.sendMessage(request, true);
  });
}

/**
 * A call's messages as an async iterable, with backpressure: past STREAM_QUEUE unread
 * messages the call is paused, and resumed as the reader catches up.
 */
class MessageQueue implements AsyncIterator<Buffer> {
  private readonly messages: Buffer[] = [];
  private outcome: CallOutcome | undefined;
  private waiting: ((result: IteratorResult<Buffer>) => void) | undefined;
  private failWaiting: ((error: UpstreamError) => void) | undefined;
  call: GrpcClientCall | undefined;

  readonly handler: ClientCallHandler = {
    onHeaders: () => undefined,
    onMessage: (_call, message) => {
      const copy = Buffer.from(message);
      if (this.waiting !== undefined) {
        const wake = this.waiting;
        this.waiting = undefined;
        this.failWaiting = undefined;
        wake({ value: copy, done: false });
        return;
      }
      this.messages.push(copy);
      if (this.messages.length >= STREAM_QUEUE) this.call?.pause();
    },
    onEnd: (_call, outcome) => {
      this.outcome = outcome;
      if (this.waiting === undefined) return;
      const wake = this.waiting;
      const fail = this.failWaiting;
      this.waiting = undefined;
      this.failWaiting = undefined;
      if (outcome.code === Code.OK || outcome.code === Code.CANCELLED) wake({ value: undefined, done: true });
      else fail?.(upstreamError(outcome));
    },
  };

  next(): Promise<IteratorResult<Buffer>> {
    const message = this.messages.shift();
    if (message !== undefined) {
      if (this.messages.length < STREAM_QUEUE / 2) this.call?.resume();
      return Promise.resolve({ value: message, done: false });
    }
    const outcome = this.outcome;
    if (outcome !== undefined) {
      if (outcome.code === Code.OK || outcome.code === Code.CANCELLED) return Promise.resolve({ value: undefined, done: true });
      return Promise.reject(upstreamError(outcome));
    }
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.failWaiting = reject;
    });
  }

  return(): Promise<IteratorResult<Buffer>> {
    this.call?.cancel();
    return Promise.resolve({ value: undefined, done: true });
  }

  /** Ends the iteration with `error` before any call could start. */
  failNow(error: UpstreamError): void {
    this.outcome = { ...error, notSent: true };
  }
}

function openStream(pool: UpstreamPool, path: string, timeoutMs: number | undefined, first: Buffer | undefined): { queue: MessageQueue; call: GrpcClientCall | undefined } {
  const queue = new MessageQueue();
  const endpoint = pool.pick();
  const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
  const call = endpoint?.call(path, { deadline, maxRecvBytes: -1 }, queue.handler);
  if (call === undefined) queue.failNow(NO_UPSTREAM);
  else {
    queue.call = call;
    if (first !== undefined) call.sendMessage(first, true);
  }
  return { queue, call };
}

/** The calls, made through `pool`; `lookupTimeoutMs` is the default deadline of unary calls. */
export function upstreamCalls(pool: UpstreamPool, lookupTimeoutMs: number): UpstreamCalls {
  return {
    async unary(path, request, options = {}) {
      const deadline = Date.now() + (options.timeoutMs ?? lookupTimeoutMs);
      if (options.endpoint !== undefined) {
        const endpoint = pool.endpoints.find((candidate) => candidate.url === options.endpoint);
        if (endpoint === undefined) throw { code: Code.INVALID_ARGUMENT, details: `etcdgate: ${options.endpoint} is not a configured endpoint` } satisfies UpstreamError;
        try {
          return await unaryOn(endpoint, path, request, deadline);
        } catch (error: unknown) {
          throw upstreamError(error as CallOutcome);
        }
      }
      const tried = new Set<Endpoint>();
      let last: UpstreamError = NO_UPSTREAM;
      for (;;) {
        const endpoint = pool.pick(tried);
        if (endpoint === undefined) throw last;
        try {
          return await unaryOn(endpoint, path, request, deadline);
        } catch (error: unknown) {
          const outcome = error as CallOutcome;
          last = upstreamError(outcome);
          tried.add(endpoint);
          const retry = outcome.code === Code.UNAVAILABLE && (options.idempotent === true || outcome.notSent);
          if (!retry || tried.size >= pool.endpoints.length || Date.now() >= deadline) throw last;
        }
      }
    },
    serverStream(path, request, options = {}) {
      const { queue, call } = openStream(pool, path, options.timeoutMs, request);
      return { [Symbol.asyncIterator]: () => queue, cancel: () => call?.cancel() };
    },
    feed(path, onMessage, onEnd) {
      const call = pool.pick()?.call(path, { maxRecvBytes: -1 }, {
        onHeaders: () => undefined,
        onMessage: (_call, message) => onMessage(message),
        onEnd: (_call, outcome) => onEnd(outcome.code === Code.OK ? undefined : upstreamError(outcome)),
      });
      if (call === undefined) return undefined;
      return {
        write: (message) => {
          call.sendMessage(message);
        },
        cancel: () => call.cancel(),
      };
    },
    duplex(path) {
      const { queue, call } = openStream(pool, path, undefined, undefined);
      return {
        [Symbol.asyncIterator]: () => queue,
        cancel: () => call?.cancel(),
        write: (message) => call?.sendMessage(message) ?? false,
        end: () => call?.end(),
      };
    },
  };
}
