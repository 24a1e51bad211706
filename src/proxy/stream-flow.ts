/**
 * What the streaming flows share (Watch, LeaseKeepAlive, and the server streams
 * Snapshot and Observe): opening the call's stream to etcd, and relaying etcd's
 * messages to the client with backpressure both ways (a client that does not read
 * pauses etcd's stream; one that sends faster than etcd takes is paused itself).
 */
import type { Encryption } from '../encryption/encryption.js';
import type { DecodedRequest, MethodSpec } from '../etcd/types.js';
import type { Decision } from '../policy/types.js';
import type { ClientCallHandler, GrpcClientCall } from '../transport/grpc/client-call.js';
import { Code } from '../transport/grpc/status.js';
import type { UpstreamPool } from '../upstream/pool.js';
import type { CancelReason, RpcCall, RpcHandler } from './call.js';
import type { Caller, CallResult, CallStart, Gate, OpenStream } from './gate.js';
import { forwardedMetadata, traceIdOf } from './metadata.js';
import { MALFORMED, MALFORMED_DECISION, NO_UPSTREAM, UNREADABLE_DECISION, encryptedValueRefusal, statusOf, type Status } from './status.js';

export interface StreamDeps {
  readonly gate: Gate;
  readonly pool: UpstreamPool;
  /** Encryption at rest, when configured: Observe over an encrypted range is refused. */
  readonly encryption: Encryption | undefined;
}

/** Opens `spec`'s stream to the first usable endpoint; undefined when none can take it. */
export function openUpstream(pool: UpstreamPool, spec: MethodSpec, call: RpcCall, handler: ClientCallHandler): GrpcClientCall | undefined {
  const endpoint = pool.pick();
  return endpoint?.call(spec.path, { deadline: call.deadline, metadata: forwardedMetadata(call), maxRecvBytes: -1 }, handler);
}

/** Sends an etcd message on to the client (its framed bytes when whole); false asks to pause etcd's stream. */
export function relayToClient(call: RpcCall, message: Buffer, framed: Buffer | undefined): boolean {
  return framed === undefined ? call.sendMessage(message) : call.sendFramed(framed);
}

/**
 * A server-streaming call (Snapshot, Observe): the one request is authorized like a
 * unary call, then etcd's messages are relayed as they come. Snapshot gets a record when
 * it starts and one when it ends (messages and bytes sent); Observe one when it ends.
 */
export class ServerStreamFlow implements RpcHandler, OpenStream {
  private message: Buffer | undefined;
  private messages = 0;
  private decoded: DecodedRequest | undefined;
  private decision: Decision = { allowed: false, reason: 'not decided' };
  private upstream: GrpcClientCall | undefined;
  private sentMessages = 0;
  private sentBytes = 0;
  private phase: 'reading' | 'deciding' | 'streaming' | 'done' = 'reading';

  constructor(
    private readonly deps: StreamDeps,
    private readonly spec: MethodSpec,
    private readonly caller: Caller,
    private readonly call: RpcCall,
    private readonly started: CallStart,
    private readonly kind: 'snapshot' | 'observe',
  ) {
    call.attach(this, false);
  }

  onMessage(_call: RpcCall, message: Buffer): void {
    this.messages += 1;
    this.message = message;
  }

  onHalfClose(): void {
    if (this.phase !== 'reading') return;
    const { gate } = this.deps;
    if (this.message === undefined || this.messages !== 1) {
      this.end(this.call.end(this.messages === 0 ? NO_MESSAGE : ONE_MESSAGE), UNREADABLE_DECISION);
      return;
    }
    gate.metrics.bytes('in', this.message.length);
    const decoded = gate.decode(this.spec, this.message);
    if (decoded === undefined) {
      this.end(this.call.end(MALFORMED), MALFORMED_DECISION);
      return;
    }
    this.decoded = decoded;
    this.phase = 'deciding';
    Promise.resolve(gate.authorize(this.caller, decoded)).then(
      (decision) => this.decided(decision),
      (error: unknown) => {
        const status = error as Status;
        this.end(this.call.end({ code: typeof status.code === 'number' ? status.code : 14, details: String(status.details) }), this.decision);
      },
    );
  }

  private decided(decision: Decision): void {
    if (this.phase !== 'deciding') return;
    this.decision = decision;
    const { gate } = this.deps;
    if (!decision.allowed) {
      gate.countDenial(this.caller, this.spec, decision, this.decoded);
      this.end(this.call.end(statusOf(decision)), decision);
      return;
    }
    // Encryption at rest: Observe over an encrypted range is refused (the method table's
    // `values` column; Snapshot carries none it could open).
    const plan = this.decoded === undefined ? undefined : this.deps.encryption?.plan(this.spec, this.decoded, this.message as Buffer);
    if (plan?.kind === 'refused') {
      this.end(this.call.end(encryptedValueRefusal(plan.refusal)), decision);
      return;
    }
    const upstream = openUpstream(this.deps.pool, this.spec, this.call, {
      onHeaders: (_upstream, metadata) => this.call.sendHeaders(metadata),
      onMessage: (_upstream, message, framed) => {
        this.sentMessages += 1;
        this.sentBytes += message.length;
        gate.metrics.bytes('out', message.length);
        if (!relayToClient(this.call, message, framed)) this.upstream?.pause();
      },
      onEnd: (_upstream, outcome) => {
        const status = { code: outcome.code, details: outcome.details, metadata: outcome.metadata };
        this.end(this.call.end(status), decision);
      },
    });
    if (upstream === undefined) {
      this.end(this.call.end(NO_UPSTREAM), decision);
      return;
    }
    this.upstream = upstream;
    this.phase = 'streaming';
    gate.streams.add(this);
    gate.metrics.streamOpened(this.kind);
    if (this.kind === 'snapshot') this.record('snapshot.start', { code: 0, message: '' });
    upstream.sendMessage(this.message as Buffer, true);
  }

  onCancel(_call: RpcCall, _reason: CancelReason, status: Status): void {
    this.upstream?.cancel();
    this.end(status, this.decision);
  }

  onDrain(): void {
    this.upstream?.resume();
  }

  abort(status: Status): void {
    this.upstream?.cancel();
    this.end(this.call.end(status), this.decision);
  }

  private end(sent: Status, decision: Decision): void {
    if (this.phase === 'done') return;
    const streamed = this.phase === 'streaming';
    this.phase = 'done';
    this.decision = decision;
    const { gate } = this.deps;
    if (streamed) {
      gate.streams.delete(this);
      gate.metrics.streamClosed(this.kind);
    }
    gate.finished(this.spec, decision, sent.code, this.started, this.call.http);
    const counts = streamed ? { count: this.sentMessages, bytes: this.sentBytes } : {};
    this.record(this.kind === 'snapshot' ? 'snapshot.end' : 'call', { code: sent.code, message: sent.code === 0 ? '' : sent.details, ...counts });
  }

  private record(kind: 'snapshot.start' | 'snapshot.end' | 'call', result: CallResult): void {
    this.deps.gate.audit(this.spec, this.caller, kind, this.started, this.decoded?.summary ?? { op: this.spec.method }, this.decision, result, {
      traceId: traceIdOf(this.call.header('traceparent')),
      http: this.call.http,
    });
  }
}

const ONE_MESSAGE: Status = { code: Code.UNIMPLEMENTED, details: 'etcdgate: a server-streaming call takes exactly one request message' };
const NO_MESSAGE: Status = { code: Code.UNIMPLEMENTED, details: 'etcdgate: the call ended without a complete request message' };
