/**
 * Everything a forwarding handler needs, built once by the composition root (src/app.ts)
 * and shared by every handler. Handlers hold no global state of their own.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Auditor, CallEvent } from '../audit/types.js';
import type { Encryption } from '../encryption/encryption.js';
import type { DecodedRequest, MethodSpec } from '../etcd/types.js';
import type { Metrics } from '../observability/metrics-types.js';
import type { Decision, Permissions } from '../policy/types.js';
import type { Connection } from '../tls/client-listener.js';
import type { UpstreamCalls } from '../upstream/calls.js';
import type { UpstreamPool } from '../upstream/pool.js';
import type { AbuseLimits } from './limits.js';
import type { PolicyState } from './policy-state.js';
import type { RangeCache } from './range-cache.js';
import { UNAUTHENTICATED, type Status } from './status.js';

/** An open stream that shutdown or a policy reload may need to end. */
export interface OpenStream {
  /** Ends the stream with the given status (UNAVAILABLE on shutdown so clients reconnect elsewhere). */
  abort(status: Status): void;
  /** Re-checks the stream's standing grants against the current policy (watchers). */
  revalidate?(): void;
}

export interface ProxyContext {
  readonly pool: UpstreamPool;
  readonly policy: PolicyState;
  readonly auditor: Auditor;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly advertiseClientUrls: readonly string[];
  /** Verified connections by peer address ("ip:port" as grpc-js's getPeer() prints it). */
  readonly connections: ReadonlyMap<string, Connection>;
  readonly streams: Set<OpenStream>;
  readonly state: { shuttingDown: boolean };
  /** etcdgate's own calls to etcd (lease-key lookups), under its upstream identity. */
  readonly upstream: UpstreamCalls;
  /** Per-identity request rate and watcher limits, and the bound on unread watch data. */
  readonly limits: AbuseLimits;
  /** The serializable-Range cache, when enabled (config cache.serializableRange). */
  readonly rangeCache?: RangeCache;
  /** Encryption at rest of values under configured ranges, when the config has an `encryption` section. */
  readonly encryption?: Encryption;
}

/** What a handler knows about the caller once the connection is identified. */
export interface Caller {
  readonly connection: Connection;
  readonly permissions: Permissions;
}

/** Resolves the caller of a grpc-js call, or the status to refuse it with. */
export function callerOf(context: ProxyContext, call: { getPeer(): string }): Caller | Status {
  return callerAt(context, call.getPeer());
}

/** Resolves the caller on the connection from `peer` ("address:port"), or the status to refuse it with. */
export function callerAt(context: ProxyContext, peer: string): Caller | Status {
  const connection = context.connections.get(peer);
  if (connection === undefined) return UNAUTHENTICATED;
  return { connection, permissions: context.policy.permissionsFor(connection.identity, connection.address) };
}

/**
 * The caller re-resolved against the policy in force now. A stream outlives policy
 * reloads, so each message that needs a decision (a watch create, a lease renewal) asks
 * here instead of using the permissions the stream started with.
 */
export function currentCaller(context: ProxyContext, caller: Caller): Caller {
  const permissions = context.policy.permissionsFor(caller.connection.identity, caller.connection.address);
  return permissions === caller.permissions ? caller : { connection: caller.connection, permissions };
}

/** Builds the audit event for one call (or stream milestone). */
export function callEvent(
  spec: MethodSpec,
  caller: Caller,
  kind: CallEvent['kind'],
  start: { date: Date; ns: bigint },
  request: DecodedRequest['summary'],
  decision: Decision,
  result: CallEvent['result'],
  extra?: { watchId?: string; traceId?: string | undefined; upstream?: CallEvent['upstream'] },
): CallEvent {
  const { connection } = caller;
  return {
    kind,
    service: spec.service,
    method: spec.method,
    action: spec.action,
    category: spec.category,
    eventType: spec.eventType,
    start: start.date,
    durationNs: process.hrtime.bigint() - start.ns,
    peer: { address: connection.address, port: connection.port, tlsVersion: connection.tlsVersion, identity: connection.identity, connectionId: connection.id },
    roles: caller.permissions.roles,
    request,
    decision,
    result,
    ...(extra?.watchId === undefined ? {} : { watchId: extra.watchId }),
    ...(extra?.traceId === undefined ? {} : { traceId: extra.traceId }),
    ...(extra?.upstream === undefined ? {} : { upstream: extra.upstream }),
  };
}

/** The start of a call, in wall-clock and monotonic time. */
export function startClock(): { date: Date; ns: bigint } {
  return { date: new Date(), ns: process.hrtime.bigint() };
}

/** Deadline option for an upstream call, propagated from the client's. */
export function deadlineOf(call: { getDeadline(): grpc.Deadline }): { deadline?: grpc.Deadline } {
  const deadline = call.getDeadline();
  return deadline === Infinity ? {} : { deadline };
}
