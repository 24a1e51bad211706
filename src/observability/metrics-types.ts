/**
 * What the rest of etcdgate reports to its metrics. Modules receive a Metrics object
 * (injected, never imported as a global); NOOP_METRICS lets tests and the hot path pay
 * nothing when metrics are off. Labels are bounded: never a key, never a certificate name.
 */
import type { DenialLabels } from './denials.js';

export type StreamKind = 'watch' | 'keepalive' | 'snapshot' | 'observe';
export type Outcome = 'allow' | 'deny';
export type CertificateRole = 'server' | 'client-ca' | 'upstream-client' | 'upstream-ca';
export type HandshakeFailure = 'no_certificate' | 'unknown_ca' | 'expired' | 'not_yet_valid' | 'revoked' | 'bad_usage' | 'protocol' | 'timeout' | 'connection_limit' | 'other';

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
  handshakeRefused(reason: HandshakeFailure): void;
  /** The result of the readiness check: whether etcd answered a linearizable read (src/health/readiness.ts). */
  upstreamServing(serving: boolean): void;
  /** The version the member at `endpoint` (a configured URL) reported; replaces what it reported before. */
  etcdMember(endpoint: string, report: EtcdMemberReport): void;
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
  healthProbeDenied: noop,
  policyReload: noop,
  policyInfo: noop,
  tlsReload: noop,
  auditWritten: noop,
  auditFailure: noop,
  auditQueueDepth: noop,
  certificatesInUse: noop,
  handshakeRefused: noop,
  upstreamServing: noop,
  etcdMember: noop,
});
