/**
 * Sending one unary call to etcd, bytes in and bytes out, with failover: if the chosen
 * endpoint fails the call before the request could have reached etcd (no connection,
 * stream refused), or the call is a read that is safe to repeat and etcd was
 * unavailable, the next endpoint is tried. Writes are never repeated once they may have
 * reached etcd: the client sees UNAVAILABLE and decides, as it would talking to etcd
 * directly.
 */
import * as grpc from '@grpc/grpc-js';
import type { Endpoint } from '../upstream/pool.js';
import type { UnaryCallOptions, UnaryReply } from '../upstream/unary-connection.js';
import type { ProxyContext } from './context.js';
import { NO_UPSTREAM, statusFromError, type Status } from './status.js';

export type UpstreamReply = UnaryReply;

export interface UpstreamCallOptions extends UnaryCallOptions {
  /** Whether the call may be repeated on another endpoint after it may have reached etcd. */
  readonly idempotent: boolean;
}

function notSent(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'notSent' in error && error.notSent === true;
}

/** Forwards a unary call; rejects with the Status to return to the client. */
export async function forwardUnary(context: ProxyContext, path: string, request: Buffer, options: UpstreamCallOptions): Promise<UpstreamReply> {
  const method = path.slice(path.lastIndexOf('/') + 1);
  // Allocated only when a call fails over: most calls succeed on the first endpoint.
  let tried: Set<Endpoint> | undefined;
  let lastStatus: Status = NO_UPSTREAM;
  for (;;) {
    const endpoint = context.pool.pick(tried);
    if (endpoint === undefined) throw lastStatus;
    const started = process.hrtime.bigint();
    try {
      const reply = await endpoint.unary.call(path, request, options);
      context.metrics.upstreamCall(method, Number(process.hrtime.bigint() - started) / 1e9);
      return reply;
    } catch (error: unknown) {
      lastStatus = statusFromError(error);
      context.metrics.upstreamCall(method, Number(process.hrtime.bigint() - started) / 1e9);
      const retry = lastStatus.code === grpc.status.UNAVAILABLE && (options.idempotent || notSent(error));
      tried ??= new Set();
      tried.add(endpoint);
      if (!retry || tried.size >= context.pool.endpoints.length) throw lastStatus;
      context.metrics.upstreamFailover();
    }
  }
}
