/**
 * The Lease service's proxy side. Unary lease calls go the generic unary way (the method
 * table says LeaseRevoke invalidates every cached key: revoking deletes keys the request
 * does not name). Here: the lease-key lookups the policy needs, and LeaseKeepAlive.
 *
 * Lookups (which keys are attached to a lease: LeaseTimeToLive(keys=true) under
 * etcdgate's own identity) are coalesced per lease ID: while one is in flight, every
 * other check of that lease waits for its answer instead of asking again.
 *
 * LeaseKeepAlive: a bidirectional stream of renewals. Each renewal is authorized like
 * LeaseRevoke (write on every key attached to the lease, current etcd's rule) and counts
 * against the caller's rate limit. Renewals are checked in order, one at a time; while
 * more than a few wait, the client's stream is paused instead of queueing more. A
 * refused renewal ends the stream (PERMISSION_DENIED, or RESOURCE_EXHAUSTED past the
 * rate limit), as etcd ends it when a renewal fails.
 */
import { encodeLeaseTimeToLiveRequest, leaseKeysOf } from '../etcd/responses.js';
import type { DecodedRequest, MethodSpec } from '../etcd/types.js';
import type { Decision } from '../policy/types.js';
import type { CallOutcome, ClientCallHandler, GrpcClientCall } from '../transport/grpc/client-call.js';
import type { UpstreamCalls } from '../upstream/calls.js';
import type { CancelReason, RpcCall, RpcHandler } from './call.js';
import type { Caller, CallStart, OpenStream } from './gate.js';
import { traceIdOf } from './metadata.js';
import { MALFORMED, NO_UPSTREAM, PERMISSION_DENIED, RATE_LIMITED, RATE_LIMITED_DECISION, type Status } from './status.js';
import { openUpstream, relayToClient, type StreamDeps } from './stream-flow.js';

const TIME_TO_LIVE = '/etcdserverpb.Lease/LeaseTimeToLive';

/** Lease-key lookups, one in flight per lease ID. */
export class LeaseKeyLookups {
  private readonly inFlight = new Map<string, Promise<Buffer[]>>();

  constructor(private readonly upstream: UpstreamCalls) {}

  /** The keys attached to `leaseId` (decimal int64); [] when the lease does not exist. Rejects with a Status. */
  keys(leaseId: string): Promise<Buffer[]> {
    const pending = this.inFlight.get(leaseId);
    if (pending !== undefined) return pending;
    const lookup = this.upstream
      .unary(TIME_TO_LIVE, encodeLeaseTimeToLiveRequest(leaseId, true), { idempotent: true })
      .then(leaseKeysOf)
      .finally(() => this.inFlight.delete(leaseId));
    this.inFlight.set(leaseId, lookup);
    return lookup;
  }

  /** Lookups in flight (tests, diagnostics). */
  get pending(): number {
    return this.inFlight.size;
  }
}

const OPENED: Decision = { allowed: true, reason: 'stream opened' };
/** Renewals waiting for their check before the client's stream is paused. */
const MAX_WAITING = 16;

/** Serves one LeaseKeepAlive stream. */
export class KeepAliveFlow implements RpcHandler, OpenStream {
  private readonly traceId: string | undefined;
  private readonly leases = new Set<string>();
  private readonly upstream: GrpcClientCall | undefined;
  private readonly waiting: Array<{ message: Buffer; framed: Buffer | undefined }> = [];
  private checking = false;
  private halfClosed = false;
  private renewals = 0;
  private closed = false;
  /** etcd is slow to take renewals: the client's stream waits until they go out. */
  private etcdBackedUp = false;

  constructor(
    private readonly deps: StreamDeps,
    private readonly spec: MethodSpec,
    private readonly caller: Caller,
    private readonly call: RpcCall,
    private readonly started: CallStart,
  ) {
    this.traceId = traceIdOf(call.header('traceparent'));
    const fromEtcd: ClientCallHandler = {
      onHeaders: (_upstream, metadata) => call.sendHeaders(metadata),
      onMessage: (_upstream, message, framed) => {
        deps.gate.metrics.bytes('out', message.length);
        if (!relayToClient(call, message, framed)) this.upstream?.pause();
      },
      onEnd: (_upstream, outcome) => this.finish(outcome, true),
      onDrain: () => {
        this.etcdBackedUp = false;
        this.updateReading();
      },
    };
    this.upstream = openUpstream(deps.pool, spec, call, fromEtcd);
    if (this.upstream === undefined) {
      this.closed = true;
      const sent = call.end(NO_UPSTREAM);
      deps.gate.finished(spec, OPENED, sent.code, started, call.http);
      return;
    }
    deps.gate.streams.add(this);
    deps.gate.metrics.streamOpened('keepalive');
    this.audit('keepalive.open', { op: 'lease_keep_alive' }, OPENED, { code: 0, message: '' });
    // Attached once etcd's stream exists: messages the call already holds go straight to it.
    call.attach(this, true);
  }

  onMessage(_call: RpcCall, message: Buffer, framed: Buffer | undefined): void {
    if (this.closed) return;
    this.waiting.push({ message, framed });
    this.updateReading();
    if (!this.checking) void this.drain();
  }

  onHalfClose(): void {
    this.halfClosed = true;
    if (!this.checking && this.waiting.length === 0) this.upstream?.end();
  }

  onCancel(_call: RpcCall, _reason: CancelReason, status: Status): void {
    this.upstream?.cancel();
    this.finish(status, false);
  }

  onDrain(): void {
    this.upstream?.resume();
  }

  /** Reads the client's renewals while few wait for their check and etcd takes what is sent (with hysteresis). */
  private updateReading(): void {
    if (this.etcdBackedUp || this.waiting.length > MAX_WAITING) this.call.pause();
    else if (this.waiting.length <= MAX_WAITING / 2) this.call.resume();
  }

  /** Checks waiting renewals in order, forwarding each allowed one. */
  private async drain(): Promise<void> {
    this.checking = true;
    try {
      for (let next = this.waiting.shift(); next !== undefined && !this.closed; next = this.waiting.shift()) {
        this.updateReading();
        if (!(await this.renew(next.message, next.framed))) return;
      }
    } finally {
      this.checking = false;
    }
    // Renewals sent before the client's half-close go first; then etcd hears it.
    if (!this.closed && this.halfClosed) this.upstream?.end();
  }

  /** One renewal: true when it was forwarded. */
  private async renew(message: Buffer, framed: Buffer | undefined): Promise<boolean> {
    const { gate } = this.deps;
    gate.metrics.bytes('in', message.length);
    const decoded = gate.decode(this.spec, message);
    if (decoded === undefined) {
      this.abort(MALFORMED);
      return false;
    }
    const caller = gate.callerOf(this.caller.client);
    if (!gate.limits.takeRequest(caller.connection.identity.fingerprint)) {
      this.refuse(decoded, RATE_LIMITED_DECISION, RATE_LIMITED);
      return false;
    }
    let decision: Decision;
    try {
      // The policy in force now, not the one the stream was opened under.
      decision = await gate.authorize(caller, decoded);
    } catch (error: unknown) {
      const status = error as Status;
      this.abort({ code: typeof status.code === 'number' ? status.code : 14, details: typeof status.details === 'string' ? status.details : 'etcdgate: lease lookup failed' });
      return false;
    }
    if (this.closed) return false;
    if (!decision.allowed) {
      gate.countDenial(caller, this.spec, decision, decoded);
      this.refuse(decoded, decision, PERMISSION_DENIED);
      return false;
    }
    this.renewals += 1;
    for (const check of decoded.leaseChecks) this.leases.add(check.leaseId);
    const upstream = this.upstream;
    if (upstream !== undefined) {
      const more = framed === undefined ? upstream.sendMessage(message) : upstream.sendFramed(framed);
      if (!more) {
        this.etcdBackedUp = true;
        this.updateReading();
      }
    }
    return true;
  }

  private refuse(decoded: DecodedRequest, decision: Decision, status: Status): void {
    this.audit('keepalive.deny', decoded.summary, decision, { code: status.code, message: status.details });
    this.abort(status);
  }

  abort(status: Status): void {
    this.finish(status, true);
    this.upstream?.cancel();
  }

  private finish(status: Status | CallOutcome, tellClient: boolean): void {
    if (this.closed) return;
    this.closed = true;
    this.waiting.length = 0;
    const { gate } = this.deps;
    gate.streams.delete(this);
    gate.metrics.streamClosed('keepalive');
    const sent = tellClient ? this.call.end({ code: status.code, details: status.details, metadata: status.metadata }) : status;
    gate.finished(this.spec, OPENED, sent.code, this.started, this.call.http);
    this.audit('keepalive.close', { op: 'lease_keep_alive', details: { leases: this.leases.size } }, OPENED, { code: sent.code, message: sent.details, count: this.renewals });
  }

  private audit(kind: 'keepalive.open' | 'keepalive.close' | 'keepalive.deny', summary: DecodedRequest['summary'], decision: Decision, result: { code: number; message: string; count?: number }): void {
    this.deps.gate.audit(this.spec, this.caller, kind, this.started, summary, decision, result, { traceId: this.traceId, http: this.call.http });
  }
}
