/**
 * Unary calls: identify, decode, authorize, forward, audit. The request frame the client
 * sent is the frame etcd receives; etcd's response frame is the one the client gets
 * (MemberList is the single exception: its client URLs become etcdgate's own). The call
 * itself, reading its message and writing its answer, is src/proxy/unary-call.ts.
 */
import type { CallPlan } from '../encryption/encryption.js';
import { rewriteMemberListUrls, summarizeResponse } from '../etcd/responses.js';
import { DecodeError, type DecodedRequest, type MethodSpec } from '../etcd/types.js';
import type { Decision } from '../policy/types.js';
import { countDenial } from '../observability/denials.js';
import { authorize } from './authorize.js';
import { callerAt, callEvent, startClock, type ProxyContext } from './context.js';
import { forwardUnary, type UpstreamReply } from './forward.js';
import { forwardedHeaders, traceIdOfHeader } from './metadata.js';
import { RATE_LIMITED_DECISION } from './limits.js';
import type { HttpTransport } from '../audit/types.js';
import type { UnaryCall } from './unary-call.js';
import { AUDIT_UNAVAILABLE, encryptedValueRefusal, INTERNAL_ERROR, MALFORMED, PERMISSION_DENIED, RATE_LIMITED, SHUTTING_DOWN, statusFromError, undecryptableStatus, type Status } from './status.js';

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
const UNTOUCHED: CallPlan = { kind: 'untouched' };
const MALFORMED_DECISION: Decision = { allowed: false, reason: 'malformed request' };

/**
 * What serveUnary needs of a call: a gRPC call on its HTTP/2 stream (UnaryCall), or a
 * JSON gateway call (src/gateway/unary.ts, which sets `http`: the audit record and the
 * metric's protocol label say how the call came).
 */
export type UnaryCallPort = Pick<UnaryCall, 'request' | 'framedRequest' | 'peer' | 'headers' | 'deadline' | 'respond' | 'fail' | 'onCancel'> & {
  readonly http?: HttpTransport;
};

/** Serves one unary call whose request message has been read. */
export function serveUnary(context: ProxyContext, spec: MethodSpec, call: UnaryCallPort): void {
  handleUnary(context, spec, call).catch((error: unknown) => {
    // A bug, not a client's or etcd's doing: answer rather than leave the call hanging.
    context.logger.error({ err: error, method: spec.path }, 'unexpected error in a unary handler');
    call.fail(INTERNAL_ERROR);
  });
}

async function handleUnary(context: ProxyContext, spec: MethodSpec, call: UnaryCallPort): Promise<void> {
  const start = startClock();
  const protocol = call.http === undefined ? 'grpc' : 'http';
  const request = call.request;
  context.metrics.bytes('in', request.length);
  const caller = callerAt(context, call.peer);
  if ('code' in caller) {
    const sent = call.fail(caller);
    context.metrics.requestFinished(spec.service, spec.method, 'deny', sent.code, 0, protocol);
    return;
  }
  const traceId = traceIdOfHeader(call.headers.traceparent);

  let decoded: DecodedRequest | undefined;
  let decision = NOT_DECIDED;
  /** Answers the client (a response, or a status) and records what it got. */
  const finish = (status: Status | undefined, response?: Buffer, reply?: UpstreamReply): void => {
    let sent: Status | undefined;
    if (status === undefined && response !== undefined) {
      sent = call.respond(response, reply?.response === response ? reply.framed : undefined, reply?.headers, reply?.trailers);
      if (sent === undefined) context.metrics.bytes('out', response.length);
    } else {
      sent = call.fail(status ?? MALFORMED);
    }
    const code = sent?.code ?? 0;
    const seconds = Number(process.hrtime.bigint() - start.ns) / 1e9;
    context.metrics.requestFinished(spec.service, spec.method, decision.allowed ? 'allow' : 'deny', code, seconds, protocol);
    // ops: only a refusal by the policy is a denial (a rate-limited or malformed call shows in the request code only).
    if (!decision.allowed && code === PERMISSION_DENIED.code) countDenial(context.metrics, caller.permissions, decision, spec.path, decoded);
    const summary = sent === undefined && response !== undefined ? summarizeResponse(spec.path, response) : {};
    context.auditor.record(
      callEvent(spec, caller, 'call', start, decoded?.summary ?? { op: spec.method }, decision, {
        code,
        message: sent?.details ?? '',
        ...summary,
      }, { traceId, http: call.http }),
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

  // >>> Encryption at rest (src/encryption): the values the request writes are sealed, and
  // what cannot work on sealed values is refused; `plan` then opens etcd's answer.
  let plan = UNTOUCHED;
  if (context.encryption !== undefined) {
    try {
      plan = context.encryption.plan(spec, decoded, request);
    } catch (error: unknown) {
      if (!(error instanceof DecodeError)) throw error;
      return finish(MALFORMED);
    }
    if (plan.kind === 'refused') return finish(encryptedValueRefusal(plan.refusal));
  }
  const forwarded = plan.kind === 'transform' && plan.request !== undefined ? plan.request : request;
  // <<< Encryption at rest

  // Only now, with the caller's own request allowed, may a cached answer be used.
  const cache = context.rangeCache;
  const cacheable = cache !== undefined && spec.path === RANGE ? cache.cacheable(request) : undefined;
  if (cacheable !== undefined) {
    const hit = cache?.get(cacheable);
    if (hit !== undefined) return finish(undefined, hit);
  }

  let cancel: (() => void) | undefined;
  call.onCancel(() => cancel?.());
  try {
    const reply = await forwardUnary(context, spec.path, forwarded, {
      metadata: forwardedHeaders(call.headers),
      // A rewritten request is framed anew; the client's frame holds the plaintext.
      framed: forwarded === request ? call.framedRequest : undefined,
      deadline: call.deadline,
      idempotent: IDEMPOTENT.has(spec.path),
      onCancel: (fn) => {
        cancel = fn;
      },
    });
    let response = spec.path === MEMBER_LIST ? rewriteMemberListUrls(reply.response, context.advertiseClientUrls) : reply.response;
    // >>> Encryption at rest: etcd's answer opened. The cache below stores the plaintext
    // answer (docs/encryption.md says why), so a hit costs no decryption.
    if (plan.kind === 'transform') {
      const opened = plan.response(response);
      if (!opened.ok) return finish(undecryptableStatus(opened.failure));
      response = opened.message;
    }
    // <<< Encryption at rest
    if (cacheable !== undefined) cache?.store(cacheable, response);
    finish(undefined, response, reply);
  } catch (error: unknown) {
    finish(statusFromError(error));
  } finally {
    // A write that failed may still have been applied: invalidate either way.
    if (cache !== undefined && spec.eventType === 'change') {
      // Revoking a lease deletes its keys, which the request does not name.
      if (spec.method === 'LeaseRevoke') cache.clear();
      else cache.invalidateWrites(decoded.accesses);
    }
  }
}
