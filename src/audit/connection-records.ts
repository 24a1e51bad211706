/**
 * The `connection.open` and `connection.close` records of verified client connections.
 * The listener reports connections (src/tls/client-listener.ts); this keeps each one's
 * start so the close record can say how long it lasted, and asks the policy in force for
 * the roles the certificate is bound to. Call records then carry only the connection id
 * and the certificate's searchable fields; the full certificate is in the open record.
 */
import type { Identity } from '../tls/identity.js';
import type { Auditor } from './types.js';

/** What the records need of a connection (src/tls/client-listener.ts Connection fits). */
export interface AuditedConnection {
  readonly id: string;
  readonly identity: Identity;
  readonly address: string;
  readonly port: number;
  readonly tlsVersion: string;
}

/** The two hooks the composition root calls from the listener's callbacks. */
export interface ConnectionAudit {
  opened(connection: AuditedConnection): void;
  /** etcdgate is closing the connection, for `reason`: its close record will say so. */
  closing(connection: AuditedConnection, reason: string): void;
  /** `reason`: why etcdgate closed it, when it did (revoked, shutting down...). */
  closed(connection: AuditedConnection, reason?: string): void;
}

/** Clock readings the records use; injected so tests can pin them. */
export interface ConnectionClock {
  now(): Date;
  /** Monotonic nanoseconds. */
  monotonicNs(): bigint;
}

const SYSTEM_CLOCK: ConnectionClock = { now: () => new Date(), monotonicNs: () => process.hrtime.bigint() };

/** Connection records for `auditor`; `roles` resolves an identity's roles under the current policy. */
export function connectionAudit(auditor: Auditor, roles: (identity: Identity) => readonly string[], clock: ConnectionClock = SYSTEM_CLOCK): ConnectionAudit {
  const opened = new WeakMap<AuditedConnection, bigint>();
  const closingFor = new WeakMap<AuditedConnection, string>();
  const base = (connection: AuditedConnection): Omit<Parameters<Auditor['connection']>[0], 'kind'> => ({
    start: clock.now(),
    connectionId: connection.id,
    address: connection.address,
    port: connection.port,
    tlsVersion: connection.tlsVersion,
    identity: connection.identity,
    roles: roles(connection.identity),
  });
  return {
    opened(connection) {
      opened.set(connection, clock.monotonicNs());
      auditor.connection({ kind: 'connection.open', ...base(connection) });
    },
    closing(connection, reason) {
      closingFor.set(connection, reason);
    },
    closed(connection, given) {
      const start = opened.get(connection);
      opened.delete(connection);
      const reason = given ?? closingFor.get(connection);
      auditor.connection({
        kind: 'connection.close',
        ...base(connection),
        ...(start === undefined ? {} : { durationNs: clock.monotonicNs() - start }),
        ...(reason === undefined ? {} : { reason }),
      });
    },
  };
}
