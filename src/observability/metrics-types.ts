/**
 * What the rest of etcdgate reports to its metrics. Modules receive a Metrics object
 * (injected, never imported as a global); NOOP_METRICS lets tests and the hot path pay
 * nothing when metrics are off. Labels are bounded: never a key, never a certificate name.
 */
import type { DenialLabels } from './denials.js';

export type StreamKind = 'watch' | 'keepalive' | 'snapshot' | 'observe';
export type Outcome = 'allow' | 'deny';
/** How a call reached etcdgate: gRPC, or JSON over HTTP through the gateway (src/gateway). */
export type CallProtocol = 'grpc' | 'http';
export type CertificateRole = 'server' | 'client-ca' | 'upstream-client' | 'upstream-ca';
/** Why the audit file was reopened: a signal (log rotation), or the file at its path was deleted or replaced under etcdgate. */
export type AuditFileReopen = 'signal' | 'deleted' | 'replaced';
/** Why a stored value under an encrypted prefix could not be turned back into its value. */
export type DecryptionFailure = 'unknown_key' | 'authentication' | 'malformed' | 'plaintext';
export type HandshakeFailure =
  | 'no_certificate'
  | 'unknown_ca'
  | 'expired'
  | 'not_yet_valid'
  | 'revoked'
  | 'bad_usage'
  | 'protocol'
  | 'timeout'
  | 'connection_limit'
  // Before TLS (src/tls/front-door.ts): never spoke TLS, source outside server.allowedSources, bad PROXY header.
  | 'no_tls'
  | 'source_not_allowed'
  | 'proxy_protocol'
  // A subject that is not one identity (src/tls/subject.ts).
  | 'ambiguous_subject'
  | 'other';
/** Why an open connection was closed after a re-check of its certificate (src/tls/recheck.ts). */
export type RecheckFailure = 'revoked' | 'expired' | 'untrusted';

/** What one etcd member reported (src/health/member-versions.ts), judged against its line's minimum. */
export interface EtcdMemberReport {
  readonly version: string;
  /** Hex, as etcdctl prints it. */
  readonly memberId: string;
  /** The minimum version this member is held to ("" when none applies). */
  readonly minimum: string;
  readonly below: boolean;
}

/** One certificate's expiry as the metrics see it. */
export interface CertificateExpiry {
  readonly subject: string;
  readonly notAfter: Date;
}

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
  /** One finished RPC (unary) or stream. `code` is the gRPC status code sent to the client; `protocol` defaults to grpc. */
  requestFinished(service: string, method: string, outcome: Outcome, code: number, seconds: number, protocol?: CallProtocol): void;
  /** Message bytes received from clients / sent to clients (gRPC message payloads). */
  bytes(direction: 'in' | 'out', count: number): void;
  connectionOpened(): void;
  connectionClosed(): void;
  streamOpened(kind: StreamKind): void;
  streamClosed(kind: StreamKind): void;
  /** Active watchers changed by `delta`. */
  watchers(delta: number): void;
  /** Calls reading a key range at etcd (`at_etcd`) or waiting for a slot of their identity (`waiting`) changed by `delta`. */
  rangeReads(state: 'at_etcd' | 'waiting', delta: number): void;
  upstreamUp(endpoint: string, up: boolean): void;
  upstreamCall(method: string, seconds: number): void;
  upstreamFailover(): void;
  /** A request the policy refused, by binding, deciding role and reason (src/observability/denials.ts). Bounded by the policy. */
  denied(labels: DenialLabels): void;
  /** A refused Range of the key `health`: etcdctl's health probe, counted apart from denials (denials.ts). */
  healthProbeDenied(): void;
  policyReload(result: 'success' | 'failure'): void;
  policyInfo(version: string, ruleCount: number): void;
  /** A reload of the TLS material (server certificate, client CA, CRL, upstream credentials). */
  tlsReload(result: 'success' | 'failure'): void;
  auditWritten(): void;
  auditFailure(): void;
  auditQueueDepth(depth: number): void;
  /**
   * The certificates etcdgate relies on under `role` now (at start and after each TLS
   * reload): their not-after times, by subject (the CN or a fingerprint prefix). Series
   * of certificates of that role no longer in use are removed, so a rotated-away
   * certificate cannot raise an expiry alert.
   */
  certificatesInUse(role: CertificateRole, certificates: readonly CertificateExpiry[]): void;
  /** The audit file was reopened at its path; `deleted`/`replaced`: it was found not to be the file open. */
  auditFileReopened(reason: AuditFileReopen): void;
  /** A record not written because the audit level or an audit rule says `none` (denials never are). */
  auditSkipped(): void;
  handshakeRefused(reason: HandshakeFailure): void;
  /** The result of the readiness check: whether etcd answered a linearizable read (src/health/readiness.ts). */
  upstreamServing(serving: boolean): void;
  /** The version the member at `endpoint` (a configured URL) reported; replaces what it reported before. */
  etcdMember(endpoint: string, report: EtcdMemberReport): void;
  /**
   * Encryption at rest. `resource`, `provider` and `key` come from the encryption config
   * (bounded); a key name read from a stored value never becomes a label.
   */
  valueEncrypted(resource: string, provider: string, key: string): void;
  valueDecrypted(resource: string, provider: string, key: string): void;
  /** A value served by the decrypted-value cache (also counted by valueDecrypted). */
  decryptCacheHit(resource: string): void;
  decryptionFailed(resource: string, reason: DecryptionFailure): void;
  /** A plaintext value read under an encrypted prefix (allowed by `identity`, or refused). */
  plaintextRead(resource: string): void;
  encryptionReload(result: 'success' | 'failure'): void;
  /** The provider and key that new values of each resource are written with, replacing the previous set. */
  encryptionWriteKeys(writers: readonly { readonly resource: string; readonly provider: string; readonly key: string }[]): void;
  /** An open connection closed because its certificate no longer passes. */
  connectionRevoked(reason: RecheckFailure): void;
  /** A refusal record not written because its source (or all sources) were over the refusal record limit. */
  refusalRecordSuppressed(): void;
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
  rangeReads: noop,
  upstreamUp: noop,
  upstreamCall: noop,
  upstreamFailover: noop,
  denied: noop,
  healthProbeDenied: noop,
  policyReload: noop,
  policyInfo: noop,
  tlsReload: noop,
  auditWritten: noop,
  auditFailure: noop,
  auditQueueDepth: noop,
  certificatesInUse: noop,
  auditFileReopened: noop,
  auditSkipped: noop,
  handshakeRefused: noop,
  upstreamServing: noop,
  etcdMember: noop,
  valueEncrypted: noop,
  valueDecrypted: noop,
  decryptCacheHit: noop,
  decryptionFailed: noop,
  plaintextRead: noop,
  encryptionReload: noop,
  encryptionWriteKeys: noop,
  connectionRevoked: noop,
  refusalRecordSuppressed: noop,
  backupConfigured: noop,
  backupRun: noop,
  backupSucceeded: noop,
  backupFailed: noop,
});
