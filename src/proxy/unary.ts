/**
 * Unary calls: identify, decode, authorize, forward, audit. The request buffer the client
 * sent is the buffer etcd receives; etcd's response buffer is the one the client gets
 * (MemberList is the single exception: its client URLs become etcdgate's own).
 */
import * as grpc from '@grpc/grpc-js';
import { rewriteMemberListUrls, summarizeResponse } from '../etcd/responses.js';
import { DecodeError, type DecodedRequest, type MethodSpec } from '../etcd/types.js';
import type { Decision } from '../policy/types.js';
import { authorize } from './authorize.js';
import { callerOf, callEvent, deadlineOf, startClock, type ProxyContext } from './context.js';
import { forwardUnary } from './forward.js';
import { forwardedMetadata, traceIdOf } from './metadata.js';
import { RATE_LIMITED_DECISION } from './limits.js';
import { AUDIT_UNAVAILABLE, MALFORMED, PERMISSION_DENIED, RATE_LIMITED, SHUTTING_DOWN, statusFromError, type Status } from './status.js';

const MEMBER_LIST = '/etcdserverpb.Cluster/MemberList';
const RANGE = '/etcdserverpb.KV/Range';

/** Reads that etcd answers the same however often they are asked: safe to repeat on another endpoint. */
const IDEMPOTENT = new Set([
  '/etcdserverpb.KV/Range',
  MEMBER_LIST,
  '/etcdserverpb.Maintenance/Status',
  '/etcdserverpb.Maintenance/Hash',
  '/etcdserverpb.Maintenance/HashKV',
  '/etcdserverpb.Lease/LeaseTimeToLive',
  '/etcdserverpb.Lease/LeaseLeases',
  '/etcdserverpb.Auth/AuthStatus',
  '/v3electionpb.Election/Leader',
]);

const NOT_DECIDED: Decision = { allowed: false, reason: 'not decided' };
const MALFORMED_DECISION: Decision = { allowed: false, reason: 'malformed request' };

/** Builds the grpc-js handler for one unary method. */
export function unaryHandler(context: ProxyContext, spec: MethodSpec): grpc.handleUnaryCall<Buffer, Buffer> {
  return (call, callback) => {
    handleUnary(context, spec, call, callback).catch((error: unknown) => {
      // A bug, not a client's or etcd's doing: answer rather than leave the call hanging.
      context.logger.error({ err: error, method: spec.path }, 'unexpected error in a unary handler');
      callback({ code: grpc.status.INTERNAL, details: 'etcdgate: internal error' });
    });
  };
}

async function handleUnary(
  context: ProxyContext,
  spec: MethodSpec,
  call: grpc.ServerUnaryCall<Buffer, Buffer>,
  callback: grpc.sendUnaryData<Buffer>,
): Promise<void> {
  const start = startClock();
  const request = call.request;
  context.metrics.bytes('in', request.length);
  const caller = callerOf(context, call);
  if ('code' in caller) {
    callback(caller);
    context.metrics.requestFinished(spec.service, spec.method, 'deny', caller.code, 0);
    return;
  }
  const traceId = traceIdOf(call.metadata);

  let decoded: DecodedRequest | undefined;
  let decision = NOT_DECIDED;
  const finish = (status: Status | undefined, response?: Buffer, trailers?: grpc.Metadata): void => {
    if (status === undefined && response !== undefined) {
      callback(null, response, trailers);
      context.metrics.bytes('out', response.length);
    } else {
      callback(status ?? MALFORMED);
    }
    const code = status?.code ?? 0;
    const seconds = Number(process.hrtime.bigint() - start.ns) / 1e9;
    context.metrics.requestFinished(spec.service, spec.method, decision.allowed ? 'allow' : 'deny', code, seconds);
    // A rate-limited call is refused, not denied by the policy: it shows in the request code only.
    if (!decision.allowed && decision !== RATE_LIMITED_DECISION) context.metrics.denied(decision.role ?? 'none');
    const summary = status === undefined && response !== undefined ? summarizeResponse(spec.path, response) : {};
    context.auditor.record(
      callEvent(spec, caller, 'call', start, decoded?.summary ?? { op: spec.method }, decision, {
        code,
        message: status?.details ?? '',
        ...summary,
      }, { traceId }),
    );
  };

  try {
    decoded = spec.decode(request);
  } catch (error: unknown) {
    if (!(error instanceof DecodeError)) throw error;
    decision = MALFORMED_DECISION;
    finish(MALFORMED);
    return;
  }
  if (context.state.shuttingDown) return finish(SHUTTING_DOWN);
  if (!context.auditor.accepting) return finish(AUDIT_UNAVAILABLE);
  if (!context.limits.takeRequest(caller.connection.identity.fingerprint)) {
    decision = RATE_LIMITED_DECISION;
    return finish(RATE_LIMITED);
  }

  try {
    const pending = authorize(context, caller, decoded);
    decision = pending instanceof Promise ? await pending : pending;
  } catch (error: unknown) {
    return finish(statusFromError(error));
  }
  if (!decision.allowed) return finish(PERMISSION_DENIED);

  // Only now, with the caller's own request allowed, may a cached answer be used.
  const cache = context.rangeCache;
  const cacheable = cache !== undefined && spec.path === RANGE ? cache.cacheable(request) : undefined;
  if (cacheable !== undefined) {
    const hit = cache?.get(cacheable);
    if (hit !== undefined) return finish(undefined, hit);
  }

  let cancel: (() => void) | undefined;
  const onCancelled = (): void => cancel?.();
  call.once('cancelled', onCancelled);
  try {
    const reply = await forwardUnary(context, spec.path, request, {
      metadata: forwardedMetadata(call.metadata),
      ...deadlineOf(call),
      idempotent: IDEMPOTENT.has(spec.path),
      onCancel: (fn) => {
        cancel = fn;
      },
    });
    if (reply.headers !== undefined) call.sendMetadata(reply.headers);
    const response = spec.path === MEMBER_LIST ? rewriteMemberListUrls(reply.response, context.advertiseClientUrls) : reply.response;
    if (cacheable !== undefined) cache?.store(cacheable, response);
    finish(undefined, response, reply.trailers);
  } catch (error: unknown) {
    finish(statusFromError(error));
  } finally {
    // A write that failed may still have been applied: invalidate either way.
    if (cache !== undefined && spec.eventType === 'change') {
      // Revoking a lease deletes its keys, which the request does not name.
      if (spec.method === 'LeaseRevoke') cache.clear();
      else cache.invalidateWrites(decoded.accesses);
    }
    call.removeListener('cancelled', onCancelled);
  }
}
