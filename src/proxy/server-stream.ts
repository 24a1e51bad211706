/**
 * Server-streaming calls (Maintenance.Snapshot, Election.Observe): the single request is
 * authorized like a unary call, then etcd's messages are relayed as they come, with
 * backpressure (a slow client pauses the upstream stream instead of filling memory).
 * The client going away cancels the upstream call; the upstream ending ends the client's.
 */
import type * as grpc from '@grpc/grpc-js';
import type { StreamKind } from '../observability/metrics-types.js';
import { DecodeError, type DecodedRequest, type MethodSpec } from '../etcd/types.js';
import type { Decision } from '../policy/types.js';
import { authorize } from './authorize.js';
import { callerOf, callEvent, deadlineOf, startClock, type OpenStream, type ProxyContext } from './context.js';
import { traceIdOf, upstreamMetadata } from './metadata.js';
import { RATE_LIMITED_DECISION } from './limits.js';
import { passThrough } from './bidi.js';
import { AUDIT_UNAVAILABLE, encryptedValueRefusal, endWithStatus, MALFORMED, NO_UPSTREAM, PERMISSION_DENIED, RATE_LIMITED, SHUTTING_DOWN, statusFromError, type Status } from './status.js';


/** Builds the grpc-js handler for one server-streaming method. */
export function serverStreamHandler(context: ProxyContext, spec: MethodSpec): grpc.handleServerStreamingCall<Buffer, Buffer> {
  const kind: StreamKind = spec.method === 'Snapshot' ? 'snapshot' : 'observe';
  return (call) => {
    void handleServerStream(context, spec, kind, call);
  };
}

async function handleServerStream(context: ProxyContext, spec: MethodSpec, kind: StreamKind, call: grpc.ServerWritableStream<Buffer, Buffer>): Promise<void> {
  const start = startClock();
  const caller = callerOf(context, call);
  if ('code' in caller) return endWithStatus(call, caller);
  const traceId = traceIdOf(call.metadata);
  context.metrics.bytes('in', call.request.length);

  let decoded: DecodedRequest | undefined;
  let decision: Decision = { allowed: false, reason: 'malformed request' };
  const audit = (eventKind: 'call' | 'snapshot.start' | 'snapshot.end', status: Status | undefined, counts: { count?: number; bytes?: number } = {}): void => {
    context.auditor.record(
      callEvent(spec, caller, eventKind, start, decoded?.summary ?? { op: spec.method }, decision, {
        code: status?.code ?? 0,
        message: status?.details ?? '',
        ...counts,
      }, { traceId }),
    );
  };
  const refuse = (status: Status): void => {
    endWithStatus(call, status);
    context.metrics.requestFinished(spec.service, spec.method, decision.allowed ? 'allow' : 'deny', status.code, Number(process.hrtime.bigint() - start.ns) / 1e9);
    if (!decision.allowed && decision !== RATE_LIMITED_DECISION) context.metrics.denied(decision.role ?? 'none');
    audit(kind === 'snapshot' ? 'snapshot.end' : 'call', status);
  };

  try {
    decoded = spec.decode(call.request);
  } catch (error: unknown) {
    if (!(error instanceof DecodeError)) throw error;
    return refuse(MALFORMED);
  }
  if (context.state.shuttingDown) return refuse(SHUTTING_DOWN);
  if (!context.auditor.accepting) return refuse(AUDIT_UNAVAILABLE);
  if (!context.limits.takeRequest(caller.connection.identity.fingerprint)) {
    decision = RATE_LIMITED_DECISION;
    return refuse(RATE_LIMITED);
  }
  try {
    decision = await authorize(context, caller, decoded);
  } catch (error: unknown) {
    return refuse(statusFromError(error));
  }
  if (!decision.allowed) return refuse(PERMISSION_DENIED);
  // >>> Encryption at rest (src/encryption): Observe over an encrypted range is refused
  // (the method table's `values` column; Snapshot carries none it could open).
  const plan = context.encryption?.plan(spec, decoded, call.request);
  if (plan?.kind === 'refused') return refuse(encryptedValueRefusal(plan.refusal));
  // <<< Encryption at rest
  const endpoint = context.pool.pick();
  if (endpoint === undefined) return refuse(NO_UPSTREAM);

  if (kind === 'snapshot') audit('snapshot.start', undefined);
  const upstream = endpoint.client.makeServerStreamRequest(spec.path, passThrough, passThrough, call.request, upstreamMetadata(call.metadata), deadlineOf(call));
  let messages = 0;
  let bytes = 0;
  let ended = false;
  const open: OpenStream = {
    abort: (status) => {
      end(status);
      upstream.cancel();
    },
  };
  context.streams.add(open);
  context.metrics.streamOpened(kind);

  const end = (status: Status): void => {
    if (ended) return;
    ended = true;
    context.streams.delete(open);
    context.metrics.streamClosed(kind);
    if (status.code === 0) call.end(status.metadata);
    else endWithStatus(call, status);
    context.metrics.requestFinished(spec.service, spec.method, 'allow', status.code, Number(process.hrtime.bigint() - start.ns) / 1e9);
    audit(kind === 'snapshot' ? 'snapshot.end' : 'call', status, { count: messages, bytes });
  };

  upstream.on('metadata', (metadata: grpc.Metadata) => call.sendMetadata(metadata));
  upstream.on('data', (chunk: Buffer) => {
    messages += 1;
    bytes += chunk.length;
    context.metrics.bytes('out', chunk.length);
    if (!call.write(chunk)) {
      upstream.pause();
      call.once('drain', () => upstream.resume());
    }
  });
  upstream.on('error', () => {
    // The final status arrives in 'status'; this listener only keeps the error handled.
  });
  upstream.on('status', (status: grpc.StatusObject) => end({ code: status.code, details: status.details, metadata: status.metadata }));
  call.on('cancelled', () => {
    upstream.cancel();
    end({ code: 1, details: 'cancelled by client' });
  });
}
