/**
 * A unary call once admitted (src/proxy/gate.ts): its one request message is decoded,
 * authorized, answered from the cache or forwarded, and recorded. What differs between
 * methods comes from the method table's columns (idempotent, rewrite, cacheable,
 * invalidates), implemented by the services' files (kv.ts: the cache; cluster.ts: the
 * MemberList rewrite), never from path checks here.
 *
 * The request the client framed is the request etcd receives, and etcd's framed answer
 * is what the client gets (relayed as it arrives), except where a column says otherwise
 * or encryption at rest (src/encryption, the `values` column) seals the request's
 * values and opens the answer's: such answers are gathered whole first.
 * A call ends exactly once and gets exactly one audit record, whatever ends it.
 */
import type { KeySummary, UpstreamProgress } from '../audit/types.js';
import type { CallPlan, Encryption } from '../encryption/encryption.js';
import { ResponseScanner } from '../etcd/response-scanner.js';
import type { ResponseSummary } from '../etcd/responses.js';
import { summarizeResponse } from '../etcd/responses.js';
import { DecodeError, type DecodedRequest, type MethodSpec } from '../etcd/types.js';
import type { Splice } from '../etcd/wire-splice.js';
import type { Decision } from '../policy/types.js';
import type { CallOutcome } from '../transport/grpc/client-call.js';
import { frameMessage } from '../transport/grpc/message-reader.js';
import { Code } from '../transport/grpc/status.js';
import type { UpstreamPool } from '../upstream/pool.js';
import type { CancelReason, RpcCall, RpcHandler } from './call.js';
import { forwardUnary, type ForwardSink, type Forwarding } from './forward.js';
import type { Caller, CallStart, Gate } from './gate.js';
import type { RangeReadTicket } from './limits.js';
import { forwardedMetadata, traceIdOf } from './metadata.js';
import { INTERNAL_ERROR, MALFORMED_DECISION, UNREADABLE_DECISION, encryptedValueRefusal, preconditionRefusal, statusOf, undecryptableStatus, type Status } from './status.js';

/** The service behaviours the unary path applies, by method table column. */
export interface UnaryServices {
  /** `cacheable`: a cached answer for this request, or a function to store etcd's; undefined when not cacheable. */
  cacheLookup(spec: MethodSpec, request: Buffer): { readonly hit: Buffer | undefined; readonly store: (response: Buffer) => void } | undefined;
  /** `invalidates`: what a forwarded write may have changed (run whatever the outcome: a failed write may be applied). */
  invalidate(spec: MethodSpec, decoded: DecodedRequest): void;
  /** `rewrite`: etcd's answer as the client gets it. */
  rewrite(spec: MethodSpec, response: Buffer): Buffer;
}

export interface UnaryDeps {
  readonly gate: Gate;
  readonly pool: UpstreamPool;
  readonly services: UnaryServices;
  /** server.maxSendBytes; -1 for none. */
  readonly maxSendBytes: number;
  /** Encryption at rest, when configured. */
  readonly encryption: Encryption | undefined;
}

const UNTOUCHED: CallPlan = { kind: 'untouched' };

const NOT_DECIDED: Decision = { allowed: false, reason: 'not decided' };
const ENDED_WHILE_READING: Readonly<Record<CancelReason, Decision>> = {
  unreadable: UNREADABLE_DECISION,
  'read-timeout': { ...UNREADABLE_DECISION, reason: 'request not received in time' },
  deadline: { ...UNREADABLE_DECISION, reason: 'deadline passed while the request was read' },
  'client-reset': { ...UNREADABLE_DECISION, reason: 'cancelled by the client while the request was read' },
  'connection-lost': { ...UNREADABLE_DECISION, reason: 'connection lost while the request was read' },
};
const ONE_MESSAGE: Status = { code: Code.UNIMPLEMENTED, details: 'etcdgate: a unary call takes exactly one request message' };
const NO_MESSAGE: Status = { code: Code.UNIMPLEMENTED, details: 'etcdgate: the call ended without a complete request message' };

/** `waiting`: allowed, waiting for one of its identity's range-read slots (src/proxy/limits.ts). */
type Phase = 'reading' | 'deciding' | 'waiting' | 'forwarding' | 'done';

/** One admitted unary call; it attaches itself to the call and runs to its end. */
export class UnaryFlow implements RpcHandler, ForwardSink {
  private message: Buffer | undefined;
  private framed: Buffer | undefined;
  private messages = 0;
  private phase: Phase = 'reading';
  /** etcd answered OK and the answer was not passed on (a value that cannot be decrypted). */
  private withheld = false;
  private decoded: DecodedRequest | undefined;
  private decision: Decision = NOT_DECIDED;
  private forwarding: Forwarding | undefined;
  private scanner: ResponseScanner | undefined;
  private summary: ResponseSummary = {};
  private store: ((response: Buffer) => void) | undefined;
  private assembled: Buffer | undefined;
  private plan: CallPlan = UNTOUCHED;
  private rangeRead: RangeReadTicket | undefined;
  /** Monotonic ms when the call began waiting for a range-read slot, and when it got one. */
  private waitingSince: number | undefined;
  private grantedAt: number | undefined;

  constructor(
    private readonly deps: UnaryDeps,
    private readonly spec: MethodSpec,
    private readonly caller: Caller,
    private readonly call: RpcCall,
    private readonly started: CallStart,
  ) {
    call.attach(this, false);
  }

  onMessage(_call: RpcCall, message: Buffer, framed: Buffer | undefined): void {
    if (this.phase !== 'reading') return;
    this.messages += 1;
    if (this.messages > 1) {
      this.refuse(UNREADABLE_DECISION, ONE_MESSAGE);
      return;
    }
    this.message = message;
    this.framed = framed;
  }

  onHalfClose(): void {
    if (this.phase !== 'reading') return;
    const message = this.message;
    if (message === undefined) {
      this.refuse(UNREADABLE_DECISION, NO_MESSAGE);
      return;
    }
    this.phase = 'deciding';
    this.deps.gate.metrics.bytes('in', message.length);
    const decoded = this.deps.gate.decode(this.spec, message);
    if (decoded === undefined) {
      this.refuse(MALFORMED_DECISION, statusOf(MALFORMED_DECISION));
      return;
    }
    this.decoded = decoded;
    let pending: Decision | Promise<Decision>;
    try {
      pending = this.deps.gate.authorize(this.caller, decoded);
    } catch (error: unknown) {
      this.failInternal(error);
      return;
    }
    if (pending instanceof Promise) {
      pending.then(
        (decision) => this.decided(decision),
        (error: unknown) => this.lookupFailed(error),
      );
    } else this.decided(pending);
  }

  onCancel(_call: RpcCall, reason: CancelReason, status: Status): void {
    if (this.phase === 'done') return;
    if (this.phase === 'reading') {
      this.decision = ENDED_WHILE_READING[reason];
      this.complete(status);
      return;
    }
    // Decided or forwarding: the client left (or its deadline passed); etcd's stream is reset.
    this.forwarding?.cancel();
    this.complete(status);
  }

  onDrain(): void {
    this.forwarding?.resume();
  }

  private decided(decision: Decision): void {
    if (this.phase !== 'deciding') return;
    this.decision = decision;
    if (!decision.allowed) {
      this.deps.gate.countDenial(this.caller, this.spec, decision, this.decoded);
      this.complete(this.call.end(statusOf(decision)));
      return;
    }
    const { services } = this.deps;
    const message = this.message as Buffer;
    // Encryption at rest: the values the request writes are sealed, and what cannot work
    // on sealed values is refused; the plan then opens etcd's answer.
    let framed = this.framed;
    const encryption = this.deps.encryption;
    if (encryption !== undefined && this.decoded !== undefined) {
      try {
        this.plan = encryption.plan(this.spec, this.decoded, message);
      } catch (error: unknown) {
        if (!(error instanceof DecodeError)) throw error;
        this.refuse(MALFORMED_DECISION, statusOf(MALFORMED_DECISION));
        return;
      }
      if (this.plan.kind === 'refused') {
        const status = encryptedValueRefusal(this.plan.refusal);
        this.refuse(preconditionRefusal(status.details.replace(/^etcdgate: /u, '')), status);
        return;
      }
      // A sealed request is framed anew; the client's frame holds the plaintext.
      if (this.plan.kind === 'transform' && this.plan.request !== undefined) framed = this.plan.request.framed;
    }
    const cached = this.spec.cacheable ? services.cacheLookup(this.spec, message) : undefined;
    if (cached?.hit !== undefined) {
      this.answer(cached.hit);
      return;
    }
    this.store = cached?.store;
    const sending = framed ?? frameMessage(message);
    // etcd builds a range's whole answer before any of it is sent: one identity has only
    // so many of those at etcd at once (limits.maxRangeReadsPerIdentity); the rest wait.
    if (this.decoded !== undefined && readsKeyRange(this.decoded)) {
      this.phase = 'waiting';
      const ticket = this.deps.gate.deps.limits.acquireRangeRead(this.caller.connection.identity.fingerprint, () => {
        if (this.waitingSince !== undefined) this.grantedAt = this.deps.gate.clock.monotonic();
        this.forward(sending);
      });
      this.rangeRead = ticket;
      // Not granted at once: the record will say how long it waited.
      if (ticket.state === 'waiting') this.waitingSince = this.deps.gate.clock.monotonic();
      return;
    }
    this.forward(sending);
  }

  /** Sends the request (`framed`, as etcd gets it) to etcd, its answer to come back through this sink. */
  private forward(framed: Buffer): void {
    if (this.phase === 'done') return;
    this.phase = 'forwarding';
    const assemble = this.spec.rewrite !== 'none' || this.store !== undefined || this.plan.kind === 'transform';
    if (!assemble) this.scanner = new ResponseScanner(this.spec.path);
    this.forwarding = forwardUnary(
      this.deps.pool,
      this.deps.gate.metrics,
      this.deps.gate.clock,
      {
        path: this.spec.path,
        method: this.spec.method,
        framed,
        deadline: this.call.deadline,
        metadata: forwardedMetadata(this.call),
        idempotent: this.spec.idempotent,
        mode: assemble ? 'assemble' : 'relay',
        maxResponseBytes: this.deps.maxSendBytes,
      },
      this,
    );
  }

  /**
   * An answer etcdgate has whole (cache hit, rewritten answer), with etcd's trailing
   * metadata when it came from etcd. `opened`: the answer is `response` with its values
   * opened, sent as the splice's parts (never written out whole); the revision and count
   * the record takes are the same in both.
   */
  private answer(response: Buffer, trailers?: readonly string[], opened?: Splice): void {
    const max = this.deps.maxSendBytes;
    const length = opened?.length ?? response.length;
    if (max >= 0 && length > max) {
      this.complete(this.call.end({ code: Code.RESOURCE_EXHAUSTED, details: `etcdgate: response larger than server.maxSendBytes (${length} vs ${max})` }));
      return;
    }
    this.summary = summarizeResponse(this.spec.path, response);
    if (opened === undefined) this.call.sendMessage(response);
    else this.call.sendMessageParts(opened.parts(), length);
    this.deps.gate.metrics.bytes('out', length);
    this.complete(this.call.end(withMetadata(OK, trailers)));
  }

  // ------------------------------------------------------------ ForwardSink

  headers(metadata: string[]): void {
    this.call.sendHeaders(metadata);
  }

  data(bytes: Buffer): boolean {
    if (this.scanner === undefined) {
      // Assembled: the whole message, handled once the status is known (end).
      this.assembled = bytes;
      return true;
    }
    this.scanner.push(bytes);
    this.deps.gate.metrics.bytes('out', bytes.length);
    return this.call.sendFramed(bytes);
  }

  end(outcome: CallOutcome): void {
    if (this.phase !== 'forwarding') return;
    if (outcome.code === Code.OK && this.assembled !== undefined) {
      // Opened (encryption), rewritten and kept as the columns say, then answered like a
      // cache hit: the cache holds plaintext (docs/encryption.md says why).
      const response = this.deps.services.rewrite(this.spec, this.assembled);
      let rewritten: Splice | undefined;
      if (this.plan.kind === 'transform') {
        const opened = this.plan.response(response);
        if (!opened.ok) {
          this.withheld = true;
          this.complete(this.call.end(undecryptableStatus(opened.failure)));
          return;
        }
        rewritten = opened.rewritten;
      }
      if (this.store !== undefined) {
        // The cache keeps the answer whole.
        const whole = rewritten?.finish() ?? response;
        this.store(whole);
        this.answer(whole, outcome.metadata);
        return;
      }
      this.answer(response, outcome.metadata, rewritten);
      return;
    }
    if (this.scanner !== undefined) this.summary = this.scanner.summary();
    const status: Status = outcome.code === Code.OK ? withMetadata(OK, outcome.metadata) : outcome;
    this.complete(this.call.end(status));
  }

  // ------------------------------------------------------------ ending

  private lookupFailed(error: unknown): void {
    if (this.phase !== 'deciding') return;
    const status = upstreamStatus(error);
    this.complete(this.call.end(status));
  }

  private failInternal(error: unknown): void {
    // A bug, not a client's or etcd's doing: answer rather than leave the call hanging.
    this.deps.gate.deps.logger.error({ err: error, method: this.spec.path }, 'unexpected error in a unary call');
    this.complete(this.call.end(INTERNAL_ERROR));
  }

  private refuse(decision: Decision, status: Status): void {
    this.decision = decision;
    this.complete(this.call.end(status));
  }

  /** The call has ended with `sent` (the status the client got): invalidate, count, record. */
  private complete(sent: Status): void {
    if (this.phase === 'done') return;
    const forwarded = this.phase === 'forwarding';
    this.phase = 'done';
    if (this.rangeRead !== undefined) this.deps.gate.deps.limits.releaseRangeRead(this.rangeRead);
    const { gate, services } = this.deps;
    if (forwarded && this.decoded !== undefined && this.spec.invalidates !== 'none') services.invalidate(this.spec, this.decoded);
    gate.finished(this.spec, this.decision, sent.code, this.started, this.call.http);
    // How far the request got: etcd's own answer, or handed over without one (etcd may
    // have applied it: the record's outcome is then unknown), or never sent.
    const forwarding = this.forwarding;
    const upstream: UpstreamProgress | undefined =
      !forwarded || forwarding === undefined
        ? undefined
        : forwarding.answeredCode !== undefined
          ? { sent: true, code: forwarding.answeredCode, ...(this.withheld ? { withheld: true } : {}) }
          : { sent: forwarding.sent };
    gate.audit(
      this.spec,
      this.caller,
      'call',
      this.started,
      this.decoded?.summary ?? requestOnly(this.spec),
      this.decision,
      { code: sent.code, message: sent.code === 0 ? '' : sent.details, ...(sent.code === 0 ? this.summary : {}) },
      { traceId: traceIdOf(this.call.header('traceparent')), http: this.call.http, upstream, rangeReadWaitMs: this.waitedMs() },
    );
  }

  /** How long the call waited for a range-read slot (until granted, or until it ended waiting), ms; undefined if it did not wait. */
  private waitedMs(): number | undefined {
    if (this.waitingSince === undefined) return undefined;
    const until = this.grantedAt ?? this.deps.gate.clock.monotonic();
    return Math.round((until - this.waitingSince) * 1000) / 1000;
  }
}

const OK: Status = Object.freeze({ code: 0, details: '' });

function withMetadata(status: Status, metadata: readonly string[] | undefined): Status {
  return metadata === undefined || metadata.length === 0 ? status : { ...status, metadata };
}

/** Whether the request reads a key range (an access with a range end), whose answer etcd builds whole. */
function readsKeyRange(decoded: DecodedRequest): boolean {
  for (const access of decoded.accesses) if (access.kind === 'read' && access.rangeEnd.length > 0) return true;
  return false;
}

function requestOnly(spec: MethodSpec): KeySummary {
  return { op: spec.method };
}

/** The status of an upstream lookup that failed (it rejects with a Status-shaped error). */
function upstreamStatus(error: unknown): Status {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'number') {
    const details = 'details' in error && typeof error.details === 'string' ? error.details : '';
    return { code: error.code, details };
  }
  return { code: Code.UNAVAILABLE, details: 'etcdgate: upstream call failed' };
}
