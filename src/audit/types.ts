/**
 * What the proxy hands to the audit trail. The proxy describes each call as a CallEvent
 * (plain data, raw key bytes, no values ever); src/audit turns it into an ECS JSON record
 * and delivers it to the configured sink. Values, passwords and tokens are never part of
 * a CallEvent, so they cannot reach the audit log.
 */
import type { Decision } from '../policy/types.js';
import type { Identity } from '../tls/identity.js';
import type { BackupAuditEvent } from './backup-record.js';

/** A key operation inside a request, for the record (Txn lists one per compare/op). */
export interface KeySummary {
  /** "range" | "put" | "delete_range" | "txn" | "compare" | "watch" | ... */
  readonly op: string;
  readonly key?: Buffer;
  readonly rangeEnd?: Buffer;
  /** Extra scalar details: lease id, revision, limit, compare target/result, flags. */
  readonly details?: Readonly<Record<string, string | number | boolean>>;
  /** Txn only: the nested operations of each branch and the compares. */
  readonly compare?: readonly KeySummary[];
  readonly success?: readonly KeySummary[];
  readonly failure?: readonly KeySummary[];
}

/** Who called and over what connection. */
export interface Peer {
  readonly address: string;
  readonly port: number;
  readonly tlsVersion: string;
  readonly identity: Identity;
  /** The id of the connection (its `connection.open` record has the certificate in full). */
  readonly connectionId?: string;
}

/**
 * How far an allowed unary call got towards etcd, once etcdgate tried to forward it.
 * `sent`: the request was handed to etcd, which may have applied it; `code`: etcd's own
 * gRPC status, when etcd answered. Sent without a code means etcd's answer never came
 * (client reset, deadline, connection lost): the record's outcome is then `unknown`.
 */
export interface UpstreamProgress {
  readonly sent: boolean;
  readonly code?: number;
  /** etcd answered, and etcdgate refused to pass the answer on (a value it cannot decrypt). */
  readonly withheld?: true;
}

export type CallEventKind =
  | 'call'              // a unary RPC (and a whole server stream other than snapshot)
  | 'watch.create'      // a watcher was created or refused
  | 'watch.end'         // a watcher ended
  | 'keepalive.open'
  | 'keepalive.close'
  | 'keepalive.deny'
  | 'snapshot.start'
  | 'snapshot.end'
  | 'encryption.status'  // one run of `etcdgate encryption status` (src/encryption)
  | 'encryption.rewrite'; // one run of `etcdgate encryption rewrite`

/** How a call reached etcdgate when it came as JSON over HTTP (src/gateway), not as gRPC. */
export interface HttpTransport {
  /** "1.1" or "2". */
  readonly version: '1.1' | '2';
  /** The request path the client used, e.g. "/v3/kv/range" (at most 256 characters). */
  readonly path: string;
}

export interface CallEvent {
  readonly kind: CallEventKind;
  /** gRPC service and method, e.g. "etcdserverpb.KV" and "Put". */
  readonly service: string;
  readonly method: string;
  /** Audit action from the method table, e.g. "etcd.kv.put". */
  readonly action: string;
  /** ECS event.category and event.type from the method table. */
  readonly category: 'database' | 'iam';
  readonly eventType: 'access' | 'change' | 'admin' | 'info';
  /** Wall-clock start. */
  readonly start: Date;
  readonly durationNs: bigint;
  readonly peer: Peer;
  readonly roles: readonly string[];
  readonly request: KeySummary;
  readonly decision: Decision;
  readonly result: {
    readonly code: number;
    readonly message: string;
    readonly revision?: string;
    /** Keys returned (Range), deleted (DeleteRange), events delivered (watch.end), keepalives (keepalive.close). */
    readonly count?: number;
    /** Snapshot bytes sent. */
    readonly bytes?: number;
  };
  readonly watchId?: string;
  readonly traceId?: string;
  /** Present for calls made through the JSON gateway; absent for gRPC calls. */
  readonly http?: HttpTransport;
  /** Unary calls that were forwarded (or tried to be): how far the request got. */
  readonly upstream?: UpstreamProgress;
  /** Unary range reads that waited for one of the identity's range-read slots (limits.maxRangeReadsPerIdentity): ms waited. */
  readonly rangeReadWaitMs?: number;
}

/**
 * Refused TLS handshake (or TCP connection before TLS): what could be learned of the peer.
 * The same shape carries, with `kind`, an open connection closed because its certificate
 * failed a re-check, and the summary of refusal records not written (rate limit).
 */
export interface HandshakeEvent {
  readonly start: Date;
  readonly address: string;
  readonly port: number;
  readonly reason: string;
  readonly error: string;
  /** What the refused certificate claims: never verified, so never recorded as the user. */
  readonly identity?: Identity;
  /** Default `handshake.refused`; `connection.revoked` (src/tls/recheck.ts); `refusals.suppressed` (src/network/refusal-limiter.ts). */
  readonly kind?: 'handshake.refused' | 'connection.revoked' | 'refusals.suppressed';
  /** refusals.suppressed: refusal records from this source (all other sources when no address) not written. */
  readonly suppressed?: number;
  /** connection.revoked: the id of the connection closed (its connection.open record has the certificate). */
  readonly connectionId?: string;
}

/**
 * A verified client connection opened or closed. The open record carries the client
 * certificate in full; call records carry only its searchable fields and the connection id.
 */
export interface ConnectionEvent {
  readonly kind: 'connection.open' | 'connection.close';
  /** When the connection was verified (open) or closed (close). */
  readonly start: Date;
  readonly connectionId: string;
  readonly address: string;
  readonly port: number;
  readonly tlsVersion: string;
  readonly identity: Identity;
  /** Roles the policy in force binds the certificate to. */
  readonly roles: readonly string[];
  /** close only: how long the connection was open. */
  readonly durationNs?: bigint;
  /** close only, when etcdgate closed it: why (e.g. "revoked", "shutting down"). */
  readonly reason?: string;
}

/** The audit trail as the proxy sees it. Implementations never throw from record(). */
export interface Auditor {
  record(event: CallEvent): void;
  handshakeRefused(event: HandshakeEvent): void;
  /** A backup run or a retention deletion by etcdgate itself (src/backup). */
  backup(event: BackupAuditEvent): void;
  /** A verified connection opened or closed (recorded under the `auth` group). */
  connection(event: ConnectionEvent): void;
  /** False while the sink cannot take records and onFailure is "deny": new calls are refused. */
  readonly accepting: boolean;
  /** False while the audit file at its path is not the one written (deleted or replaced) and not yet reopened. */
  readonly sinkIntact: boolean;
  /** Flushes everything recorded so far; resolves when it is durable in the sink. */
  flush(): Promise<void>;
  close(): Promise<void>;
}
