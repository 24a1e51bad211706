/**
 * Calls every method of the Metrics contract once, so that every metric family etcdgate
 * can export has at least one series. The table is keyed by `keyof Metrics`: a method
 * added to the contract fails to compile here until it is exercised too.
 */
import type { Metrics } from '../../src/observability/metrics-types.js';

const CALLS: { readonly [K in keyof Metrics]: (metrics: Metrics) => void } = {
  requestFinished: (m) => m.requestFinished('etcdserverpb.KV', 'Range', 'allow', 0, 0.002),
  bytes: (m) => {
    m.bytes('in', 10);
    m.bytes('out', 20);
  },
  connectionOpened: (m) => m.connectionOpened(),
  connectionClosed: (m) => m.connectionClosed(),
  streamOpened: (m) => m.streamOpened('watch'),
  streamClosed: (m) => m.streamClosed('watch'),
  watchers: (m) => m.watchers(1),
  rangeReads: (m) => m.rangeReads('waiting', 1),
  upstreamUp: (m) => m.upstreamUp('https://127.0.0.1:2379', true),
  upstreamCall: (m) => m.upstreamCall('Range', 0.001),
  upstreamFailover: (m) => m.upstreamFailover(),
  denied: (m) => m.denied({ binding: 'readers', role: 'none', reason: 'not_granted' }),
  healthProbeDenied: (m) => m.healthProbeDenied(),
  policyReload: (m) => m.policyReload('failure'),
  policyInfo: (m) => m.policyInfo('test-policy-1', 4),
  tlsReload: (m) => m.tlsReload('failure'),
  auditWritten: (m) => m.auditWritten(),
  auditFailure: (m) => m.auditFailure(),
  auditQueueDepth: (m) => m.auditQueueDepth(2),
  certificatesInUse: (m) => m.certificatesInUse('server', [{ subject: 'etcdgate-test', notAfter: new Date('2031-01-01T00:00:00Z') }]),
  auditFileReopened: (m) => m.auditFileReopened('deleted'),
  auditSkipped: (m) => m.auditSkipped(),
  handshakeRefused: (m) => m.handshakeRefused('unknown_ca'),
  upstreamServing: (m) => m.upstreamServing(true),
  etcdMember: (m) => m.etcdMember('https://127.0.0.1:2379', { version: '3.4.23', memberId: '8e9e05c52164694d', minimum: '3.5.33', below: true }),
  valueEncrypted: (m) => m.valueEncrypted('secrets', 'aesgcm', 'key1'),
  valueDecrypted: (m) => m.valueDecrypted('secrets', 'aesgcm', 'key1'),
  decryptCacheHit: (m) => m.decryptCacheHit('secrets'),
  decryptionFailed: (m) => m.decryptionFailed('secrets', 'authentication'),
  plaintextRead: (m) => m.plaintextRead('secrets'),
  encryptionReload: (m) => m.encryptionReload('failure'),
  encryptionWriteKeys: (m) => m.encryptionWriteKeys([{ resource: 'secrets', provider: 'aesgcm', key: 'key1' }]),
  connectionRevoked: (m) => m.connectionRevoked('revoked'),
  refusalRecordSuppressed: (m) => m.refusalRecordSuppressed(),
  backupConfigured: (m) => m.backupConfigured(86_400),
  backupRun: (m) => m.backupRun('success'),
  backupSucceeded: (m) => m.backupSucceeded({ finishedAt: new Date('2026-01-01T03:00:00Z'), sizeBytes: 4096, seconds: 1.5, revision: '42' }),
  backupFailed: (m) => m.backupFailed('etcd_unavailable', new Date('2026-01-01T04:00:00Z')),
};

/** Names of every Metrics method, in contract order. */
export const METRICS_METHODS = Object.keys(CALLS) as (keyof Metrics)[];

/** Calls each Metrics method once with plausible arguments. */
export function exerciseEveryMetric(metrics: Metrics): void {
  for (const call of Object.values(CALLS)) call(metrics);
}
