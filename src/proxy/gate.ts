/**
 * The gate every call passes, unary or streaming, whatever protocol carried it:
 *
 *   admit (identity, shutdown, audit sink, binding, rate limit: before any message is read)
 *   -> decode (only the fields a decision needs) -> authorize (policy, then lease lookups)
 *   -> forward (src/proxy/forward.ts) -> record (metrics and one audit record).
 *
 * Refusals are decisions (src/proxy/status.ts turns them into statuses, in one place).
 * A caller with no binding, or over its rate limit, is refused at admission, so no byte
 * of its message is buffered or decompressed.
 */
import type { Auditor, CallEvent, HttpTransport, KeySummary, UpstreamProgress } from '../audit/types.js';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import { DecodeError, type DecodedRequest, type MethodSpec } from '../etcd/types.js';
import { countDenial } from '../observability/denials.js';
import type { Metrics } from '../observability/metrics-types.js';
import { leaseKeysDecision } from '../policy/lease-decision.js';
import type { Access, Decision, Permissions } from '../policy/types.js';
import type { Connection } from '../tls/client-listener.js';
import type { AbuseLimits } from './limits.js';
import type { PolicyState } from './policy-state.js';
import {
  AUDIT_UNAVAILABLE_DECISION,
  MALFORMED_DECISION,
  RATE_LIMITED_DECISION,
  SHUTTING_DOWN_DECISION,
  UNAUTHENTICATED_DECISION,
  isPolicyDenial,
  type Status,
} from './status.js';

/** A verified client connection as the proxy keeps it: the listener's facts, and its permissions per policy version. */
export class Client {
  private permissionsOf: Permissions | undefined;
  private policyVersion = '';

  constructor(readonly connection: Connection) {}

  /** The connection's permissions under the policy in force (resolved once per policy version). */
  permissions(policy: PolicyState): Permissions {
    const current = policy.current;
    if (this.permissionsOf === undefined || this.policyVersion !== current.version) {
      // The client's address too: bindings may match on it (match.source).
      this.permissionsOf = policy.permissionsFor(this.connection.identity, this.connection.address);
      this.policyVersion = current.version;
    }
    return this.permissionsOf;
  }
}

/** Who is calling, with the permissions that decide the call. */
export interface Caller {
  readonly client: Client;
  readonly connection: Connection;
  readonly permissions: Permissions;
}

/** An open stream that shutdown or a policy reload may need to end. */
export interface OpenStream {
  /** Ends the stream with `status` (UNAVAILABLE on shutdown, so clients reconnect elsewhere). */
  abort(status: Status): void;
  /** Re-checks the stream's standing grants against the current policy (watchers). */
  revalidate?(): void;
}

/** The start of a call: wall clock for the record, monotonic for its duration. */
export interface CallStart {
  readonly date: Date;
  readonly at: number;
}

/** Parts of a record that only some calls have. */
export interface CallExtra {
  readonly watchId?: string;
  readonly traceId?: string | undefined;
  /** The call came over the JSON gateway (src/gateway). */
  readonly http?: HttpTransport | undefined;
  /** Unary calls that were forwarded (or tried to be): how far the request got. */
  readonly upstream?: UpstreamProgress | undefined;
  /** Range reads that waited for a range-read slot: ms waited (until granted, or until the call ended). */
  readonly rangeReadWaitMs?: number | undefined;
}

/** What a call's audit record says about its result. */
export type CallResult = CallEvent['result'];

export interface GateDeps {
  readonly policy: PolicyState;
  readonly limits: AbuseLimits;
  readonly auditor: Auditor;
  readonly metrics: Metrics;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The keys attached to a lease (decimal int64 id), asked of etcd under etcdgate's identity. */
  readonly leaseKeys: (leaseId: string) => Promise<Buffer[]>;
}

const NOTHING: readonly Access[] = [];

export class Gate {
  /** Streams open now (ended on shutdown, re-checked on policy reload). */
  readonly streams = new Set<OpenStream>();
  shuttingDown = false;

  constructor(readonly deps: GateDeps) {}

  get clock(): Clock {
    return this.deps.clock;
  }

  get metrics(): Metrics {
    return this.deps.metrics;
  }

  get limits(): AbuseLimits {
    return this.deps.limits;
  }

  get policy(): PolicyState {
    return this.deps.policy;
  }

  start(): CallStart {
    const clock = this.deps.clock;
    return { date: new Date(clock.now()), at: clock.monotonic() };
  }

  /**
   * Admission, before any message of the call is read: the caller must be a verified
   * connection, etcdgate not stopping, the audit sink able to take the record, the
   * identity bound to at least one role, and within its rate limit. Returns the caller,
   * or the refusal (with the caller when one is known, for the record).
   */
  admit(client: Client | undefined): { caller?: Caller; refusal?: Decision } {
    if (client === undefined) return { refusal: UNAUTHENTICATED_DECISION };
    const caller = this.callerOf(client);
    if (this.shuttingDown) return { caller, refusal: SHUTTING_DOWN_DECISION };
    if (!this.deps.auditor.accepting) return { caller, refusal: AUDIT_UNAVAILABLE_DECISION };
    const bound = caller.permissions.check(NOTHING);
    if (!bound.allowed) return { caller, refusal: bound };
    if (!this.deps.limits.takeRequest(caller.connection.identity.fingerprint)) return { caller, refusal: RATE_LIMITED_DECISION };
    return { caller };
  }

  /** The caller on `client` under the policy in force now (a stream outlives reloads: ask again per message). */
  callerOf(client: Client): Caller {
    return { client, connection: client.connection, permissions: client.permissions(this.deps.policy) };
  }

  /** Decodes a request message; undefined for bytes that are not a valid message of its type. */
  decode(spec: MethodSpec, message: Buffer): DecodedRequest | undefined {
    try {
      return spec.decode(message);
    } catch (error: unknown) {
      if (error instanceof DecodeError) return undefined;
      throw error;
    }
  }

  /**
   * Decides a decoded request. Most requests name no lease and are decided at once; only
   * those that do return a promise (rejected with the upstream status when a lookup fails).
   *
   * Check-then-act window: between the lease lookup and etcd executing the call, another
   * client may attach a key to the same lease. etcd 3.6.11 closes this inside its apply
   * loop; a proxy cannot. The window is one round trip, and attaching a key needs write
   * access to that key, so it only matters between two callers who share a lease ID.
   */
  authorize(caller: Caller, decoded: DecodedRequest): Decision | Promise<Decision> {
    const decision = caller.permissions.check(decoded.accesses);
    if (!decision.allowed || decoded.leaseChecks.length === 0) return decision;
    return this.checkLeases(caller, decoded.leaseChecks, decision);
  }

  private async checkLeases(caller: Caller, checks: DecodedRequest['leaseChecks'], decision: Decision): Promise<Decision> {
    let last = decision;
    for (const check of checks) {
      // The rule itself is shared with `etcdgate explain` (src/policy/lease-decision.ts).
      const leaseDecision = leaseKeysDecision(caller.permissions, check, await this.deps.leaseKeys(check.leaseId));
      if (leaseDecision === undefined) continue;
      if (!leaseDecision.allowed) return leaseDecision;
      last = leaseDecision;
    }
    return last;
  }

  /**
   * Counts a refusal that is a policy denial, by binding, role and reason (other
   * refusals show in the request code only; etcd's health probe is counted apart).
   */
  countDenial(caller: Caller, spec: MethodSpec, decision: Decision, decoded: DecodedRequest | undefined): void {
    if (isPolicyDenial(decision)) countDenial(this.deps.metrics, caller.permissions, decision, spec.path, decoded);
  }

  /** Metrics for one finished call (or stream); `http` when the call came over the JSON gateway. */
  finished(spec: MethodSpec, decision: Decision, code: number, start: CallStart, http?: HttpTransport): void {
    const seconds = (this.deps.clock.monotonic() - start.at) / 1000;
    this.deps.metrics.requestFinished(spec.service, spec.method, decision.allowed ? 'allow' : 'deny', code, seconds, http === undefined ? 'grpc' : 'http');
  }

  /**
   * The metric and record of a call refused before it reached a flow (admission, an
   * unknown method, a body that could not be read). Connections are verified, so there
   * is always a caller to attribute it to.
   */
  refused(spec: MethodSpec, client: Client, request: KeySummary, decision: Decision, sent: { readonly code: number; readonly details: string }, start: CallStart, http?: HttpTransport): void {
    const caller = this.callerOf(client);
    this.finished(spec, decision, sent.code, start, http);
    if (sent.code === 7) this.countDenial(caller, spec, decision, undefined);
    this.audit(spec, caller, 'call', start, request, decision, { code: sent.code, message: sent.details }, { http });
  }

  /** Writes the audit record of one call or stream milestone. */
  audit(
    spec: MethodSpec,
    caller: Caller,
    kind: CallEvent['kind'],
    start: CallStart,
    request: KeySummary,
    decision: Decision,
    result: CallResult,
    extra?: CallExtra,
  ): void {
    this.deps.auditor.record(this.event(spec, caller, kind, start, request, decision, result, extra));
  }

  /** The audit event of one call (or stream milestone). */
  event(
    spec: MethodSpec,
    caller: Caller,
    kind: CallEvent['kind'],
    start: CallStart,
    request: KeySummary,
    decision: Decision,
    result: CallResult,
    extra?: CallExtra,
  ): CallEvent {
    const { connection } = caller;
    const durationMs = this.deps.clock.monotonic() - start.at;
    return {
      kind,
      service: spec.service,
      method: spec.method,
      action: spec.action,
      category: spec.category,
      eventType: spec.eventType,
      start: start.date,
      durationNs: BigInt(Math.max(0, Math.round(durationMs * 1e6))),
      peer: { address: connection.address, port: connection.port, tlsVersion: connection.tlsVersion, identity: connection.identity, connectionId: connection.id },
      roles: caller.permissions.roles,
      request,
      decision,
      result,
      ...(extra?.watchId === undefined ? {} : { watchId: extra.watchId }),
      ...(extra?.traceId === undefined ? {} : { traceId: extra.traceId }),
      ...(extra?.http === undefined ? {} : { http: extra.http }),
      ...(extra?.upstream === undefined ? {} : { upstream: extra.upstream }),
      ...(extra?.rangeReadWaitMs === undefined ? {} : { rangeReadWaitMs: extra.rangeReadWaitMs }),
    };
  }
}

export { MALFORMED_DECISION };
