/**
 * Sending one unary call to etcd, bytes in and bytes out, with failover: if the chosen
 * endpoint answers UNAVAILABLE before anything was sent (no connection), or the call is
 * a read that is safe to repeat, the next endpoint is tried. Writes are never repeated
 * once they may have reached etcd: the client sees UNAVAILABLE and decides, as it would
 * talking to etcd directly.
 */
import * as grpc from '@grpc/grpc-js';
import type { Endpoint } from '../upstream/pool.js';
import type { ProxyContext } from './context.js';
import { passThrough } from './bidi.js';
import { NO_UPSTREAM, statusFromError, type Status } from './status.js';


export interface UpstreamReply {
  readonly response: Buffer;
  readonly headers: grpc.Metadata | undefined;
  readonly trailers: grpc.Metadata;
}

export interface UpstreamCallOptions {
  readonly metadata: grpc.Metadata;
  readonly deadline?: grpc.Deadline;
  /** Whether the call may be repeated on another endpoint after it may have reached etcd. */
  readonly idempotent: boolean;
  /** Registers the function that cancels the call in flight (client went away). */
  readonly onCancel: (cancel: () => void) => void;
}

function isConnectionFailure(status: Status): boolean {
  // grpc-js reports calls that never left the process as UNAVAILABLE with these texts.
  return status.code === grpc.status.UNAVAILABLE && /No connection established|ECONNREFUSED/u.test(status.details);
}

function callOnce(endpoint: Endpoint, path: string, request: Buffer, options: UpstreamCallOptions): Promise<UpstreamReply> {
  return new Promise((resolve, reject) => {
    let response: Buffer | undefined;
    let headers: grpc.Metadata | undefined;
    const call = endpoint.client.makeUnaryRequest(
      path,
      passThrough,
      passThrough,
      request,
      options.metadata,
      options.deadline === undefined ? {} : { deadline: options.deadline },
      (error, value) => {
        if (error === null) response = value;
      },
    );
    options.onCancel(() => call.cancel());
    call.on('metadata', (metadata: grpc.Metadata) => {
      headers = metadata;
    });
    // grpc-js invokes the callback and then emits 'status' synchronously: the trailers
    // are only known here, so the reply is settled here.
    call.on('status', (status: grpc.StatusObject) => {
      if (status.code === grpc.status.OK && response !== undefined) resolve({ response, headers, trailers: status.metadata });
      else reject({ code: status.code, details: status.details, metadata: status.metadata } satisfies Status);
    });
  });
}

/** Forwards a unary call; rejects with the Status to return to the client. */
export async function forwardUnary(context: ProxyContext, path: string, request: Buffer, options: UpstreamCallOptions): Promise<UpstreamReply> {
  const method = path.slice(path.lastIndexOf('/') + 1);
  const tried = new Set<Endpoint>();
  let lastStatus: Status = NO_UPSTREAM;
  for (;;) {
    const endpoint = context.pool.pick(tried);
    if (endpoint === undefined) throw lastStatus;
    tried.add(endpoint);
    const started = process.hrtime.bigint();
    try {
      const reply = await callOnce(endpoint, path, request, options);
      context.metrics.upstreamCall(method, Number(process.hrtime.bigint() - started) / 1e9);
      return reply;
    } catch (error: unknown) {
      lastStatus = statusFromError(error);
      context.metrics.upstreamCall(method, Number(process.hrtime.bigint() - started) / 1e9);
      const retry = lastStatus.code === grpc.status.UNAVAILABLE && (options.idempotent || isConnectionFailure(lastStatus));
      if (!retry || tried.size >= context.pool.endpoints.length) throw lastStatus;
      context.metrics.upstreamFailover();
    }
  }
}
