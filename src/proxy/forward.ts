/**
 * Sending one unary call to etcd, bytes in and bytes out, with failover: if the chosen
 * endpoint fails the call before the request could have reached etcd (no connection,
 * stream refused), or the call is a read that is safe to repeat and etcd was
 * unavailable, the next endpoint is tried. Writes are never repeated once they may have
 * reached etcd: the client sees UNAVAILABLE and decides, as it would talking to etcd
 * directly.
 */
import * as grpc from '@grpc/grpc-js';
import type { UpstreamProgress } from '../audit/types.js';
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

function answered(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'answered' in error && error.answered === true;
}

/** What forwardUnary rejects with: the client's Status and how far the request got (for the audit). */
export interface ForwardFailure extends Status {
  readonly upstream: UpstreamProgress;
}

/** How far a failed forwardUnary got towards etcd; undefined for anything else. */
export function upstreamProgressOf(error: unknown): UpstreamProgress | undefined {
  if (typeof error !== 'object' || error === null || !('upstream' in error)) return undefined;
  const progress = error.upstream;
  return typeof progress === 'object' && progress !== null && 'sent' in progress ? (progress as UpstreamProgress) : undefined;
}

/**
 * Forwards a unary call; rejects with a ForwardFailure: the Status to return to the
 * client, and whether any attempt may have reached etcd (then etcd may have applied the
 * request, whatever the client is told) and whether the last one got etcd's own answer.
 */
export async function forwardUnary(context: ProxyContext, path: string, request: Buffer, options: UpstreamCallOptions): Promise<UpstreamReply> {
  const method = path.slice(path.lastIndexOf('/') + 1);
  // Allocated only when a call fails over: most calls succeed on the first endpoint.
  let tried: Set<Endpoint> | undefined;
  let lastStatus: Status = NO_UPSTREAM;
  let sent = false;
  const failed = (lastAnswered: boolean): ForwardFailure => ({
    ...lastStatus,
    upstream: lastAnswered ? { sent: true, code: lastStatus.code } : { sent },
  });
  for (;;) {
    const endpoint = context.pool.pick(tried);
    if (endpoint === undefined) throw failed(false);
    const started = process.hrtime.bigint();
    try {
      const reply = await endpoint.unary.call(path, request, options);
      context.metrics.upstreamCall(method, Number(process.hrtime.bigint() - started) / 1e9);
      return reply;
    } catch (error: unknown) {
      lastStatus = statusFromError(error);
      if (!notSent(error)) sent = true;
      context.metrics.upstreamCall(method, Number(process.hrtime.bigint() - started) / 1e9);
      const retry = lastStatus.code === grpc.status.UNAVAILABLE && (options.idempotent || notSent(error));
      tried ??= new Set();
      tried.add(endpoint);
      if (!retry || tried.size >= context.pool.endpoints.length) throw failed(answered(error));
      context.metrics.upstreamFailover();
    }
  }
}
