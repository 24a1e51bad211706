/**
 * LeaseKeepAlive: a bidirectional stream of lease renewals. Each renewal is authorized
 * like LeaseRevoke: the caller needs write on every key attached to the lease (current
 * etcd's rule). Renewals are checked one at a time, in order, because each check asks
 * etcd for the lease's keys. A refused renewal ends the stream with PERMISSION_DENIED,
 * as etcd does when a renewal fails.
 */
import type * as grpc from '@grpc/grpc-js';
import type { DecodedRequest, MethodSpec } from '../etcd/types.js';
import type { Decision } from '../policy/types.js';
import { countDenial } from '../observability/denials.js';
import { authorize } from './authorize.js';
import { callEvent, currentCaller, startClock, type Caller, type OpenStream, type ProxyContext } from './context.js';
import { traceIdOf } from './metadata.js';
import { bidiHandler, decodeStreamMessage } from './bidi.js';
import { endWithStatus, PERMISSION_DENIED, statusFromError, type Status } from './status.js';

const OPENED: Decision = { allowed: true, reason: 'stream opened' };

/** Builds the grpc-js handler for Lease.LeaseKeepAlive. */
export function leaseKeepAliveHandler(context: ProxyContext, spec: MethodSpec): grpc.handleBidiStreamingCall<Buffer, Buffer> {
  return bidiHandler(context, spec, (caller, call, upstream) => new KeepAliveStream(context, spec, caller, call, upstream));
}

class KeepAliveStream implements OpenStream {
  private readonly start = startClock();
  private readonly traceId: string | undefined;
  private readonly leases = new Set<string>();
  private renewals = 0;
  /** Renewals are authorized strictly in arrival order. */
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly context: ProxyContext,
    private readonly spec: MethodSpec,
    private readonly caller: Caller,
    private readonly call: grpc.ServerDuplexStream<Buffer, Buffer>,
    private readonly upstream: grpc.ClientDuplexStream<Buffer, Buffer>,
  ) {
    this.traceId = traceIdOf(call.metadata);
    context.streams.add(this);
    context.metrics.streamOpened('keepalive');
    this.audit('keepalive.open', { op: 'lease_keep_alive' }, OPENED, { code: 0, message: '' });

    call.on('data', (message: Buffer) => {
      this.queue = this.queue.then(() => this.renew(message));
    });
    call.on('end', () => {
      this.queue = this.queue.then(() => {
        upstream.end();
      });
    });
    call.on('cancelled', () => {
      upstream.cancel();
      this.finish({ code: 1, details: 'cancelled by client' }, false);
    });
    upstream.on('metadata', (metadata: grpc.Metadata) => call.sendMetadata(metadata));
    upstream.on('data', (message: Buffer) => {
      this.context.metrics.bytes('out', message.length);
      if (!call.write(message)) {
        upstream.pause();
        call.once('drain', () => upstream.resume());
      }
    });
    upstream.on('error', () => {
      // The final status arrives in 'status'; this listener only keeps the error handled.
    });
    upstream.on('status', (status: grpc.StatusObject) => this.finish({ code: status.code, details: status.details, metadata: status.metadata }, true));
  }

  private async renew(message: Buffer): Promise<void> {
    if (this.closed) return;
    this.context.metrics.bytes('in', message.length);
    const decoded = decodeStreamMessage(this.spec, message, this);
    if (decoded === undefined) return;
    let decision: Decision;
    // The policy in force now, not the one the stream was opened under.
    const caller = currentCaller(this.context, this.caller);
    try {
      decision = await authorize(this.context, caller, decoded);
    } catch (error: unknown) {
      this.abort(statusFromError(error));
      return;
    }
    if (this.closed) return;
    if (!decision.allowed) {
      countDenial(this.context.metrics, caller.permissions, decision, this.spec.path, decoded); // ops
      this.audit('keepalive.deny', decoded.summary, decision, { code: PERMISSION_DENIED.code, message: PERMISSION_DENIED.details });
      this.abort(PERMISSION_DENIED);
      return;
    }
    this.renewals += 1;
    for (const check of decoded.leaseChecks) this.leases.add(check.leaseId);
    this.upstream.write(message);
  }

  abort(status: Status): void {
    this.finish(status, true);
    this.upstream.cancel();
  }

  private finish(status: Status, tellClient: boolean): void {
    if (this.closed) return;
    this.closed = true;
    this.context.streams.delete(this);
    this.context.metrics.streamClosed('keepalive');
    const seconds = Number(process.hrtime.bigint() - this.start.ns) / 1e9;
    this.context.metrics.requestFinished(this.spec.service, this.spec.method, 'allow', status.code, seconds);
    this.audit('keepalive.close', { op: 'lease_keep_alive', details: { leases: this.leases.size } }, OPENED, {
      code: status.code,
      message: status.details,
      count: this.renewals,
    });
    if (!tellClient) return;
    if (status.code === 0) this.call.end(status.metadata);
    else endWithStatus(this.call, status);
  }

  private audit(kind: 'keepalive.open' | 'keepalive.close' | 'keepalive.deny', summary: DecodedRequest['summary'], decision: Decision, result: { code: number; message: string; count?: number }): void {
    this.context.auditor.record(callEvent(this.spec, this.caller, kind, this.start, summary, decision, result, { traceId: this.traceId }));
  }
}
