/**
 * etcdgate's own calls to etcd, under its upstream identity: the lease-key lookups of
 * the policy, and the features that act on etcd themselves (backups, re-encryption,
 * health checks). This is the one interface those features use; how the calls travel
 * (which connection, which HTTP/2 code) stays inside src/upstream.
 *
 * Every call fails with a Status-shaped error ({ code, details }); a deadline is
 * always set, so nothing waits forever on an etcd that stopped answering.
 */
import * as grpc from '@grpc/grpc-js';
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

/**
 * A stream of etcd's messages (server-streaming call). Messages are read with
 * `for await`; reading slowly slows etcd down (backpressure), it never buffers
 * without bound. Breaking out of the loop, or `cancel()`, ends the call.
 */
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

export interface UpstreamCalls {
  unary(path: string, request: Buffer, options?: UnaryOptions): Promise<Buffer>;
  serverStream(path: string, request: Buffer, options?: { readonly timeoutMs?: number }): MessageStream;
  duplex(path: string): DuplexStream;
}

const passThrough = (buffer: Buffer): Buffer => buffer;

function statusError(code: number, details: string): UpstreamError {
  return { code, details };
}

function toUpstreamError(error: unknown): UpstreamError {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'number') {
    const details = 'details' in error && typeof error.details === 'string' ? error.details : '';
    return statusError(error.code, details);
  }
  return statusError(grpc.status.UNAVAILABLE, 'etcdgate: upstream call failed');
}

/**
 * Turns a readable object stream of messages into an async iterable that rejects with
 * the call's final status when it is not OK.
 */
async function* messagesOf(call: grpc.ClientReadableStream<Buffer> | grpc.ClientDuplexStream<Buffer, Buffer>): AsyncGenerator<Buffer> {
  let failure: UpstreamError | undefined;
  call.on('error', (error: unknown) => {
    failure = toUpstreamError(error);
  });
  try {
    for await (const message of call as AsyncIterable<Buffer>) yield message;
  } catch (error: unknown) {
    throw failure ?? toUpstreamError(error);
  } finally {
    call.cancel();
  }
  if (failure !== undefined && failure.code !== grpc.status.CANCELLED) throw failure;
}

function messageStream(call: grpc.ClientReadableStream<Buffer> | grpc.ClientDuplexStream<Buffer, Buffer>): MessageStream {
  const iterator = messagesOf(call);
  return {
    [Symbol.asyncIterator]: () => iterator,
    cancel: () => call.cancel(),
  };
}

/** The calls, made through `pool`; `lookupTimeoutMs` is the default deadline of unary calls. */
export function upstreamCalls(pool: UpstreamPool, lookupTimeoutMs: number): UpstreamCalls {
  return {
    async unary(path, request, options = {}) {
      const timeoutMs = options.timeoutMs ?? lookupTimeoutMs;
      const deadline = Date.now() + timeoutMs;
      if (options.endpoint !== undefined) {
        const endpoint = pool.endpoints.find((candidate) => candidate.url === options.endpoint);
        if (endpoint === undefined) throw statusError(grpc.status.INVALID_ARGUMENT, `etcdgate: ${options.endpoint} is not a configured endpoint`);
        try {
          return (await endpoint.unary.call(path, request, { deadline })).response;
        } catch (error: unknown) {
          throw toUpstreamError(error);
        }
      }
      const tried = new Set<Endpoint>();
      let last: UpstreamError = statusError(grpc.status.UNAVAILABLE, 'etcdgate: no etcd endpoint available');
      for (;;) {
        const endpoint = pool.pick(tried);
        if (endpoint === undefined) throw last;
        try {
          const reply = await endpoint.unary.call(path, request, { deadline });
          return reply.response;
        } catch (error: unknown) {
          last = toUpstreamError(error);
          const notSent = typeof error === 'object' && error !== null && 'notSent' in error && error.notSent === true;
          tried.add(endpoint);
          const retry = last.code === grpc.status.UNAVAILABLE && (options.idempotent === true || notSent);
          if (!retry || tried.size >= pool.endpoints.length || Date.now() >= deadline) throw last;
        }
      }
    },
    serverStream(path, request, options = {}) {
      const endpoint = pool.pick();
      if (endpoint === undefined) {
        const failed: MessageStream = {
          [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(statusError(grpc.status.UNAVAILABLE, 'etcdgate: no etcd endpoint available')) }),
          cancel: () => undefined,
        };
        return failed;
      }
      const callOptions = options.timeoutMs === undefined ? {} : { deadline: Date.now() + options.timeoutMs };
      return messageStream(endpoint.client.makeServerStreamRequest(path, passThrough, passThrough, request, new grpc.Metadata(), callOptions));
    },
    duplex(path) {
      const endpoint = pool.pick();
      if (endpoint === undefined) throw statusError(grpc.status.UNAVAILABLE, 'etcdgate: no etcd endpoint available');
      const call = endpoint.client.makeBidiStreamRequest(path, passThrough, passThrough, new grpc.Metadata());
      const stream = messageStream(call);
      return {
        ...stream,
        [Symbol.asyncIterator]: stream[Symbol.asyncIterator],
        write: (message) => call.write(message),
        end: () => call.end(),
      };
    },
  };
}
