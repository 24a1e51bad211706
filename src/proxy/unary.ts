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
import { authorize } from './authorize.js';
import { callerAt, callEvent, startClock, type ProxyContext } from './context.js';
import type { UpstreamProgress } from '../audit/types.js';
import { forwardUnary, upstreamProgressOf, type UpstreamReply } from './forward.js';
import { forwardedHeaders, traceIdOfHeader } from './metadata.js';
import { RATE_LIMITED_DECISION } from './limits.js';
import { CANCELLED_BY_CLIENT, type UnaryCall } from './unary-call.js';
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
/** etcd answered OK: even if the client is gone by then, the request was carried out. */
const ANSWERED_OK: UpstreamProgress = { sent: true, code: 0 };
const UNTOUCHED: CallPlan = { kind: 'untouched' };
const MALFORMED_DECISION: Decision = { allowed: false, reason: 'malformed request' };

/** Serves one unary call whose request message has been read. */
export function serveUnary(context: ProxyContext, spec: MethodSpec, call: UnaryCall): void {
  handleUnary(context, spec, call).catch((error: unknown) => {
    // A bug, not a client's or etcd's doing: answer rather than leave the call hanging.
    context.logger.error({ err: error, method: spec.path }, 'unexpected error in a unary handler');
    call.fail(INTERNAL_ERROR);
  });
}

async function handleUnary(context: ProxyContext, spec: MethodSpec, call: UnaryCall): Promise<void> {
  const start = startClock();
  const request = call.request;
  context.metrics.bytes('in', request.length);
  const caller = callerAt(context, call.peer);
  if ('code' in caller) {
    const sent = call.fail(caller);
    context.metrics.requestFinished(spec.service, spec.method, 'deny', sent.code, 0);
    return;
  }
  const traceId = traceIdOfHeader(call.headers.traceparent);

  let decoded: DecodedRequest | undefined;
  let decision = NOT_DECIDED;
  /**
   * Answers the client (a response, or a status) and records what it got; `upstream` says
   * how far a forwarded request got (audit: etcd's answer, or `unknown` without one).
   */
  const finish = (status: Status | undefined, response?: Buffer, reply?: UpstreamReply, upstream?: UpstreamProgress): void => {
    let sent: Status | undefined;
    if (status === undefined && response !== undefined) {
      sent = call.respond(response, reply?.response === response ? reply.framed : undefined, reply?.headers, reply?.trailers);
      if (sent === undefined) context.metrics.bytes('out', response.length);
    } else {
      sent = call.fail(status ?? MALFORMED);
    }
    const code = sent?.code ?? 0;
    const seconds = Number(process.hrtime.bigint() - start.ns) / 1e9;
    context.metrics.requestFinished(spec.service, spec.method, decision.allowed ? 'allow' : 'deny', code, seconds);
    // A rate-limited call is refused, not denied by the policy: it shows in the request code only.
    if (!decision.allowed && decision !== RATE_LIMITED_DECISION) context.metrics.denied(decision.role ?? 'none');
    const summary = sent === undefined && response !== undefined ? summarizeResponse(spec.path, response) : {};
    context.auditor.record(
      callEvent(spec, caller, 'call', start, decoded?.summary ?? { op: spec.method }, decision, {
        code,
        message: sent?.details ?? '',
        ...summary,
      }, { traceId, ...(upstream === undefined ? {} : { upstream }) }),
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

  // [audit] A client gone while the call was decided gets nothing: do not hand its request
  // to etcd (where it could be applied unseen); its record says it was never sent.
  if (call.isEnded) return finish(CANCELLED_BY_CLIENT, undefined, undefined, { sent: false });

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
    finish(undefined, response, reply, ANSWERED_OK);
  } catch (error: unknown) {
    finish(statusFromError(error), undefined, undefined, upstreamProgressOf(error));
  } finally {
    // A write that failed may still have been applied: invalidate either way.
    if (cache !== undefined && spec.eventType === 'change') {
      // Revoking a lease deletes its keys, which the request does not name.
      if (spec.method === 'LeaseRevoke') cache.clear();
      else cache.invalidateWrites(decoded.accesses);
    }
  }
}
