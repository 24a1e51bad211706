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
import type { Auditor, CallEvent, KeySummary } from '../audit/types.js';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import { DecodeError, type DecodedRequest, type MethodSpec } from '../etcd/types.js';
import type { Metrics } from '../observability/metrics-types.js';
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
      this.permissionsOf = policy.permissionsFor(this.connection.identity);
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
const EMPTY = Buffer.alloc(0);

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
      const keys = await this.deps.leaseKeys(check.leaseId);
      if (keys.length === 0) continue;
      const accesses: Access[] = keys.map((key) => ({ kind: check.kind, key, rangeEnd: EMPTY }));
      const leaseDecision = caller.permissions.check(accesses);
      if (!leaseDecision.allowed) return { ...leaseDecision, reason: `lease ${check.leaseId} holds keys outside the grant` };
      last = leaseDecision;
    }
    return last;
  }

  /** Counts a refusal that is a policy denial (other refusals show in the request code only). */
  countDenial(decision: Decision): void {
    if (isPolicyDenial(decision)) this.deps.metrics.denied(decision.role ?? 'none');
  }

  /** Metrics for one finished call (or stream). */
  finished(spec: MethodSpec, decision: Decision, code: number, start: CallStart): void {
    const seconds = (this.deps.clock.monotonic() - start.at) / 1000;
    this.deps.metrics.requestFinished(spec.service, spec.method, decision.allowed ? 'allow' : 'deny', code, seconds);
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
    extra?: { readonly watchId?: string; readonly traceId?: string | undefined },
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
    extra?: { readonly watchId?: string; readonly traceId?: string | undefined },
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
      peer: { address: connection.address, port: connection.port, tlsVersion: connection.tlsVersion, identity: connection.identity },
      roles: caller.permissions.roles,
      request,
      decision,
      result,
      ...(extra?.watchId === undefined ? {} : { watchId: extra.watchId }),
      ...(extra?.traceId === undefined ? {} : { traceId: extra.traceId }),
    };
  }
}

export { MALFORMED_DECISION };
