/**
 * What the rest of etcdgate reports to its metrics. Modules receive a Metrics object
 * (injected, never imported as a global); NOOP_METRICS lets tests and the hot path pay
 * nothing when metrics are off. Labels are bounded: never a key, never a certificate name.
 */

export type StreamKind = 'watch' | 'keepalive' | 'snapshot' | 'observe';
export type Outcome = 'allow' | 'deny';
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
  /** The audit file was reopened at its path; `deleted`/`replaced`: it was found not to be the file open. */
  auditFileReopened(reason: AuditFileReopen): void;
  /** A record not written because the audit level or an audit rule says `none` (denials never are). */
  auditSkipped(): void;
  /** Not-after time of a certificate etcdgate relies on; `subject` is the certificate's CN or fingerprint prefix. */
  certificateNotAfter(role: CertificateRole, subject: string, notAfter: Date): void;
  handshakeRefused(reason: HandshakeFailure): void;
  /**
   * Encryption at rest. `resource`, `provider` and `key` come from the encryption config
   * (bounded); a key name read from a stored value never becomes a label.
   */
  valueEncrypted(resource: string, provider: string, key: string): void;
  valueDecrypted(resource: string, provider: string, key: string): void;
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
  auditFileReopened: noop,
  auditSkipped: noop,
  certificateNotAfter: noop,
  handshakeRefused: noop,
  valueEncrypted: noop,
  valueDecrypted: noop,
  decryptionFailed: noop,
  plaintextRead: noop,
  encryptionReload: noop,
  encryptionWriteKeys: noop,
  connectionRevoked: noop,
  refusalRecordSuppressed: noop,
});
