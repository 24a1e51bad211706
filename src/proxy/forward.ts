/**
 * Sending one unary call to etcd and bringing its answer back, with failover: if the
 * chosen endpoint fails the call before the request could have reached etcd (no
 * connection, stream refused, a GOAWAY below it), or the call is a read that is safe to
 * repeat and etcd was unavailable, the next endpoint is tried, as long as nothing of the
 * answer has reached the client yet. Writes are never repeated once they may have
 * reached etcd: the client sees UNAVAILABLE and decides, as it would talking to etcd.
 *
 * Two ways back:
 * - relay: etcd's framed answer goes to the client as it arrives, in etcd's bytes, with
 *   backpressure both ways (a client that does not read leaves etcd's stream window
 *   closed; nothing accumulates here beyond the two windows). Most calls go this way.
 * - assemble: the whole answer is gathered first (at most `maxResponseBytes`), for the
 *   calls whose answer etcdgate changes or keeps (MemberList's URLs, the cache).
 */
import type { Clock } from '../clock.js';
import type { Metrics } from '../observability/metrics-types.js';
import type { CallOutcome, ClientCallHandler, GrpcClientCall } from '../transport/grpc/client-call.js';
import { Code } from '../transport/grpc/status.js';
import type { Endpoint, UpstreamPool } from '../upstream/pool.js';
import { NO_UPSTREAM } from './status.js';

/** Where the answer goes. */
export interface ForwardSink {
  /** Relay: etcd's response headers (application metadata only). */
  headers(metadata: string[]): void;
  /** Relay: framed response bytes as they arrive; false asks the forwarder to pause. Assemble: the one message. */
  data(bytes: Buffer): boolean;
  /** The call ended: etcd's status (or the failure), and whether the request may have reached etcd. */
  end(outcome: CallOutcome): void;
}

export interface ForwardRequest {
  readonly path: string;
  /** Method name, for the upstream latency metric. */
  readonly method: string;
  /** The request message as the client framed it (or framed here). */
  readonly framed: Buffer;
  readonly deadline: number | undefined;
  /** Allowlisted client metadata (flat list). */
  readonly metadata: readonly string[] | undefined;
  /** Whether the call may be repeated on another endpoint after it may have reached etcd. */
  readonly idempotent: boolean;
  readonly mode: 'relay' | 'assemble';
  /** Largest answer passed on (server.maxSendBytes); -1 for none. */
  readonly maxResponseBytes: number;
}

export interface Forwarding {
  /** Whether the request may have reached etcd (a stream was opened for it). */
  readonly sent: boolean;
  /** etcd's own status code, once its answer arrived (whatever the client then got). */
  readonly answeredCode: number | undefined;
  /** Abandons the call (the client went away): etcd's stream is reset. */
  cancel(): void;
  /** Relay: the client caught up; etcd may send more. */
  resume(): void;
}

/** Forwards one unary call; the sink hears the outcome exactly once. */
export function forwardUnary(pool: UpstreamPool, metrics: Metrics, clock: Clock, request: ForwardRequest, sink: ForwardSink): Forwarding {
  const forwarder = new Forwarder(pool, metrics, clock, request, sink);
  forwarder.next();
  return forwarder;
}

class Forwarder implements ClientCallHandler, Forwarding {
  private call: GrpcClientCall | undefined;
  private tried: Set<Endpoint> | undefined;
  private startedAt = 0;
  /** Bytes of the answer passed to the sink (after which failover is impossible). */
  private relayed = 0;
  private prefix = 0;
  private answer: Buffer | undefined;
  private done = false;
  sent = false;
  answeredCode: number | undefined;

  constructor(
    private readonly pool: UpstreamPool,
    private readonly metrics: Metrics,
    private readonly clock: Clock,
    private readonly request: ForwardRequest,
    private readonly sink: ForwardSink,
  ) {}

  /** Starts the call on the next endpoint, or fails with the last status. */
  next(last: CallOutcome = { ...NO_UPSTREAM, notSent: true }): void {
    for (;;) {
      const endpoint = this.pool.pick(this.tried);
      if (endpoint === undefined) return this.finish(last);
      this.startedAt = this.clock.monotonic();
      const { request } = this;
      const call = endpoint.call(
        request.path,
        { deadline: request.deadline, metadata: request.metadata, maxRecvBytes: request.mode === 'assemble' ? request.maxResponseBytes : -1, mode: request.mode === 'relay' ? 'raw' : 'messages' },
        this,
      );
      if (call === undefined) {
        (this.tried ??= new Set()).add(endpoint);
        if (this.tried.size >= this.pool.endpoints.length) return this.finish(last);
        continue;
      }
      (this.tried ??= new Set()).add(endpoint);
      this.call = call;
      this.sent = true;
      call.sendFramed(request.framed, true);
      return;
    }
  }

  onHeaders(_call: GrpcClientCall, metadata: string[]): void {
    if (this.request.mode === 'relay') this.sink.headers(metadata);
  }

  onMessage(call: GrpcClientCall, bytes: Buffer): void {
    if (this.done) return;
    if (this.request.mode === 'assemble') {
      this.answer = bytes;
      return;
    }
    // The first prefix tells the answer's size: one too large for the client is refused before any of it is sent.
    if (this.relayed === 0 && this.prefix === 0 && bytes.length >= 5) {
      this.prefix = bytes.readUInt32BE(1);
      const max = this.request.maxResponseBytes;
      if (max >= 0 && this.prefix > max) {
        this.finish({ code: Code.RESOURCE_EXHAUSTED, details: `etcdgate: response larger than server.maxSendBytes (${this.prefix} vs ${max})`, notSent: false });
        call.cancel();
        return;
      }
    }
    this.relayed += bytes.length;
    const more = this.sink.data(bytes);
    call.consume(bytes.length);
    if (!more) call.pause();
  }

  onEnd(_call: GrpcClientCall, outcome: CallOutcome): void {
    if (this.done) return;
    this.metrics.upstreamCall(this.request.method, (this.clock.monotonic() - this.startedAt) / 1000);
    if (outcome.code === Code.UNAVAILABLE && this.relayed === 0 && (this.request.idempotent || outcome.notSent)) {
      if (outcome.notSent) this.sent = false;
      if ((this.tried?.size ?? 0) < this.pool.endpoints.length) {
        this.metrics.upstreamFailover();
        this.next(outcome);
        return;
      }
    }
    if (outcome.notSent) this.sent = false;
    if (outcome.code === Code.OK && this.request.mode === 'assemble') {
      if (this.answer === undefined) return this.finish({ code: Code.INTERNAL, details: 'etcdgate: etcd sent no response message', notSent: false });
      this.sink.data(this.answer);
    }
    this.finish(outcome);
  }

  private finish(outcome: CallOutcome): void {
    if (this.done) return;
    this.done = true;
    if (outcome.answered === true) this.answeredCode = outcome.code;
    this.sink.end(outcome);
  }

  cancel(): void {
    if (this.done) return;
    this.done = true;
    this.call?.cancel('etcdgate: call cancelled by the client');
  }

  resume(): void {
    this.call?.resume();
  }
}
