/**
 * What the rest of etcdgate reports to its metrics. Modules receive a Metrics object
 * (injected, never imported as a global); NOOP_METRICS lets tests and the hot path pay
 * nothing when metrics are off. Labels are bounded: never a key, never a certificate name.
 */

export type StreamKind = 'watch' | 'keepalive' | 'snapshot' | 'observe';
export type Outcome = 'allow' | 'deny';
export type CertificateRole = 'server' | 'client-ca' | 'upstream-client' | 'upstream-ca';
export type HandshakeFailure = 'no_certificate' | 'unknown_ca' | 'expired' | 'not_yet_valid' | 'revoked' | 'bad_usage' | 'protocol' | 'timeout' | 'connection_limit' | 'other';

/** Why a backup run failed (bounded: the label of etcdgate_backup_failures_total). */
export type BackupFailure = 'etcd_unavailable' | 'snapshot_checksum' | 'destination' | 'verification' | 'timeout' | 'other';
/** How a scheduled slot or manual run ended (etcdgate_backup_runs_total's label). */
export type BackupRunResult = 'success' | 'failure' | 'other_instance' | 'still_running';

/** The figures of a successful backup run. */
export interface BackupSuccess {
  /** When it was stored. */
  readonly finishedAt: Date;
  readonly sizeBytes: number;
  readonly seconds: number;
  /** etcd store revision (decimal; reported as a number, exact below 2^53). */
  readonly revision: string;
}

export interface Metrics {
  /** One finished RPC (unary) or stream. `code` is the gRPC status code sent to the client. */
  requestFinished(service: string, method: string, outcome: Outcome, code: number, seconds: number): void;
  /** Message bytes received from clients / sent to clients (gRPC message payloads). */
  bytes(direction: 'in' | 'out', count: number): void;
  connectionOpened(): void;
  connectionClosed(): void;
  streamOpened(kind: StreamKind): void;
  streamClosed(kind: StreamKind): void;
  /** Active watchers changed by `delta`. */
  watchers(delta: number): void;
  upstreamUp(endpoint: string, up: boolean): void;
  upstreamCall(method: string, seconds: number): void;
  upstreamFailover(): void;
  /** A denial; `role` is the deciding role or "none". Bounded by the policy's role count. */
  denied(role: string): void;
  policyReload(result: 'success' | 'failure'): void;
  policyInfo(version: string, ruleCount: number): void;
  /** A reload of the TLS material (server certificate, client CA, CRL, upstream credentials). */
  tlsReload(result: 'success' | 'failure'): void;
  auditWritten(): void;
  auditFailure(): void;
  auditQueueDepth(depth: number): void;
  /** Not-after time of a certificate etcdgate relies on; `subject` is the certificate's CN or fingerprint prefix. */
  certificateNotAfter(role: CertificateRole, subject: string, notAfter: Date): void;
  handshakeRefused(reason: HandshakeFailure): void;
  /** Backups are configured; `maxAgeSeconds` is the age EtcdgateBackupTooOld alerts at. */
  backupConfigured(maxAgeSeconds: number): void;
  /** A backup run (or a slot) ended. */
  backupRun(result: BackupRunResult): void;
  /** The newest backup known to be stored (after a run, or found at start). */
  backupSucceeded(success: BackupSuccess): void;
  backupFailed(reason: BackupFailure, at: Date): void;
}

const noop = (): void => {};

/** A Metrics that records nothing. */
export const NOOP_METRICS: Metrics = Object.freeze({
  requestFinished: noop,
  bytes: noop,
  connectionOpened: noop,
  connectionClosed: noop,
  streamOpened: noop,
  streamClosed: noop,
  watchers: noop,
  upstreamUp: noop,
  upstreamCall: noop,
  upstreamFailover: noop,
  denied: noop,
  policyReload: noop,
  policyInfo: noop,
  tlsReload: noop,
  auditWritten: noop,
  auditFailure: noop,
  auditQueueDepth: noop,
  certificateNotAfter: noop,
  handshakeRefused: noop,
  backupConfigured: noop,
  backupRun: noop,
  backupSucceeded: noop,
  backupFailed: noop,
});
