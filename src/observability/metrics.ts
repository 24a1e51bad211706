/**
 * Observability: the Prometheus implementation of the Metrics contract, the JSON logger
 * and the admin HTTP server (/metrics, /healthz, /readyz). Everything here is built
 * from explicit arguments: the registry is a fresh one per gateway (never prom-client's
 * global), and nothing registers or starts anything at import time.
 *
 * Every metric is named `etcdgate_*`, and every label is bounded: service/method by the
 * etcd method table, codes by gRPC's 17 names, roles by the policy, endpoints and
 * certificate subjects by the configuration. Label children whose set is known in
 * advance are resolved once so the request path only looks up a cached child.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { BackupFailure, BackupRunResult, BackupSuccess, CallProtocol, CertificateExpiry, CertificateRole, DecryptionFailure, EtcdMemberReport, HandshakeFailure, Metrics, Outcome, RecheckFailure, StreamKind } from './metrics-types.js';
import { codeName as grpcCodeName } from '../transport/grpc/status.js';
import type { DenialLabels } from './denials.js';

/** Request latency buckets, seconds: 100 µs (a cached local denial) up to 10 s (a slow etcd). */
export const LATENCY_BUCKETS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

const STREAM_KINDS: readonly StreamKind[] = ['watch', 'keepalive', 'snapshot', 'observe'];
const HANDSHAKE_FAILURES: readonly HandshakeFailure[] = [
  'no_certificate',
  'unknown_ca',
  'expired',
  'not_yet_valid',
  'revoked',
  'bad_usage',
  'protocol',
  'timeout',
  'connection_limit',
  'no_tls',
  'source_not_allowed',
  'proxy_protocol',
  'ambiguous_subject',
  'other',
];
const RECHECK_FAILURES: readonly RecheckFailure[] = ['revoked', 'expired', 'untrusted'];

const BACKUP_FAILURES: readonly BackupFailure[] = ['etcd_unavailable', 'snapshot_checksum', 'destination', 'verification', 'timeout', 'other'];
const BACKUP_RESULTS: readonly BackupRunResult[] = ['success', 'failure', 'other_instance', 'still_running'];
const BACKUP_MAX_AGE = 'etcdgate_backup_max_age_seconds';

const LINT_FAILING_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/** Options for createPromMetrics. */
export interface PromMetricsOptions {
  /** Registry to fill; a fresh one is created when absent. */
  readonly registry?: Registry;
  /** etcdgate's version, reported by etcdgate_build_info. */
  readonly version: string;
}

/**
 * Looks a child up in `cache`, creating it with `make(key)` the first time a key is seen.
 * `make` is a function built once per metric, so a hit allocates nothing.
 */
function cached<T>(cache: Map<string, T>, key: string, make: (key: string) => T): T {
  let child = cache.get(key);
  if (child === undefined) {
    child = make(key);
    cache.set(key, child);
  }
  return child;
}

/**
 * Builds the Prometheus-backed Metrics and the registry that exposes it. The registry
 * also carries prom-client's default process/Node metrics (unprefixed, as exporters
 * conventionally name them).
 */
export function createPromMetrics(options?: PromMetricsOptions): { metrics: Metrics; registry: Registry } {
  const registry = options?.registry ?? new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });
  // prom-client exports these three as gauges with a `_total` suffix, which Prometheus
  // naming rules (and `promtool check metrics`) reject; the per-type
  // nodejs_active_handles/requests/resources gauges carry the same information.
  for (const misnamed of LINT_FAILING_DEFAULTS) registry.removeSingleMetric(misnamed);

  const requests = new Counter({
    name: 'etcdgate_requests_total',
    help: 'Finished etcd RPCs and streams, by service, method, policy decision, gRPC status code name and protocol (grpc, or http for the JSON gateway).',
    labelNames: ['service', 'method', 'decision', 'code', 'protocol'] as const,
    registers,
  });
  const requestDuration = new Histogram({
    name: 'etcdgate_request_duration_seconds',
    help: 'Time from receiving an RPC to finishing it (for streams: the stream lifetime), by method.',
    labelNames: ['method'] as const,
    buckets: [...LATENCY_BUCKETS],
    registers,
  });
  const receivedBytes = new Counter({
    name: 'etcdgate_received_bytes_total',
    help: 'gRPC message payload bytes received from clients.',
    registers,
  });
  const sentBytes = new Counter({
    name: 'etcdgate_sent_bytes_total',
    help: 'gRPC message payload bytes sent to clients.',
    registers,
  });
  const connections = new Gauge({
    name: 'etcdgate_client_connections',
    help: 'Client TLS connections currently open.',
    registers,
  });
  const streams = new Gauge({
    name: 'etcdgate_streams',
    help: 'Client streams currently open, by kind.',
    labelNames: ['kind'] as const,
    registers,
  });
  const watchers = new Gauge({
    name: 'etcdgate_watchers',
    help: 'Watchers currently active across all watch streams.',
    registers,
  });
  const rangeReads = new Gauge({
    name: 'etcdgate_range_reads',
    help: 'Calls reading a key range: at etcd, or waiting for one of their identity\'s limits.maxRangeReadsPerIdentity slots.',
    labelNames: ['state'] as const,
    registers,
  });
  const rangeReadsAtEtcd = rangeReads.labels('at_etcd');
  const rangeReadsWaiting = rangeReads.labels('waiting');
  const upstreamUp = new Gauge({
    name: 'etcdgate_upstream_up',
    help: 'Whether an etcd endpoint is reachable (1) or not (0).',
    labelNames: ['endpoint'] as const,
    registers,
  });
  const upstreamDuration = new Histogram({
    name: 'etcdgate_upstream_request_duration_seconds',
    help: 'Time etcd took to answer a forwarded unary RPC, by method.',
    labelNames: ['method'] as const,
    buckets: [...LATENCY_BUCKETS],
    registers,
  });
  const upstreamFailovers = new Counter({
    name: 'etcdgate_upstream_failovers_total',
    help: 'Times etcdgate switched to another etcd endpoint.',
    registers,
  });
  const denials = new Counter({
    name: 'etcdgate_denials_total',
    help: 'Requests denied by the policy, by the first binding the caller matched ("none": no binding), the role whose deny rule refused ("none": not granted by any role) and reason. etcd health probes are counted apart.',
    labelNames: ['binding', 'role', 'reason'] as const,
    registers,
  });
  const deniedProbes = new Counter({
    name: 'etcdgate_denied_health_probes_total',
    help: 'Refused reads of the key "health": etcdctl endpoint health from a certificate without read on it, which etcdctl counts as healthy. Not in etcdgate_denials_total.',
    registers,
  });
  const policyReloads = new Counter({
    name: 'etcdgate_policy_reloads_total',
    help: 'Policy reload attempts, by result.',
    labelNames: ['result'] as const,
    registers,
  });
  const tlsReloads = new Counter({
    name: 'etcdgate_tls_reloads_total',
    help: 'TLS material reload attempts (server certificate, client CA, CRL, upstream credentials), by result.',
    labelNames: ['result'] as const,
    registers,
  });
  // As Prometheus's own prometheus_config_last_reload_successful: an alert on these fires
  // for as long as the files on disk are broken, not only for a while after the attempt.
  const policyLastReload = new Gauge({
    name: 'etcdgate_policy_last_reload_successful',
    help: 'Whether the last policy reload attempt succeeded (1) or failed and the previous policy is still enforced (0); 1 at start.',
    registers,
  });
  const tlsLastReload = new Gauge({
    name: 'etcdgate_tls_last_reload_successful',
    help: 'Whether the last TLS material reload attempt succeeded (1) or failed and the previous material is still in use (0); 1 at start.',
    registers,
  });
  policyLastReload.set(1);
  tlsLastReload.set(1);
  const policyRules = new Gauge({
    name: 'etcdgate_policy_rules',
    help: 'Rules in the policy currently enforced.',
    registers,
  });
  const policyInfo = new Gauge({
    name: 'etcdgate_policy_info',
    help: 'Always 1; the version label names the policy currently enforced.',
    labelNames: ['version'] as const,
    registers,
  });
  const auditRecords = new Counter({
    name: 'etcdgate_audit_records_total',
    help: 'Audit records handed to the sink.',
    registers,
  });
  const auditFailures = new Counter({
    name: 'etcdgate_audit_sink_failures_total',
    help: 'Failures of the audit sink to take or write records.',
    registers,
  });
  const auditQueueDepth = new Gauge({
    name: 'etcdgate_audit_queue_depth',
    help: 'Audit records buffered in memory, waiting for the sink.',
    registers,
  });
  const auditFileReopens = new Counter({
    name: 'etcdgate_audit_file_reopens_total',
    help: 'Reopens of the audit file at its path: on a signal (rotation), or because the file there was deleted or replaced under etcdgate.',
    labelNames: ['reason'] as const,
    registers,
  });
  const auditSkipped = new Counter({
    name: 'etcdgate_audit_records_skipped_total',
    help: 'Records not written because audit.level or an audit.rules entry says none (denials are always written).',
    registers,
  });
  const certificateNotAfter = new Gauge({
    name: 'etcdgate_certificate_not_after_seconds',
    help: 'Expiry (not-after) of a certificate etcdgate uses, seconds since the Unix epoch, by role and subject.',
    labelNames: ['role', 'subject'] as const,
    registers,
  });
  const handshakeFailures = new Counter({
    name: 'etcdgate_tls_handshake_failures_total',
    help: 'Client TLS handshakes refused, by reason.',
    labelNames: ['reason'] as const,
    registers,
  });
  const upstreamServing = new Gauge({
    name: 'etcdgate_upstream_serving',
    help: 'Whether etcd answered etcdgate\'s last linearizable read of the key "health" (1; permission denied counts, as for etcdctl endpoint health) or not (0: no leader, no quorum, unreachable). /readyz follows it.',
    registers,
  });
  const healthChecks = new Counter({
    name: 'etcdgate_upstream_health_checks_total',
    help: 'Linearizable health reads etcdgate made, by result (ok or failed).',
    labelNames: ['result'] as const,
    registers,
  });
  const memberInfo = new Gauge({
    name: 'etcdgate_etcd_member_info',
    help: 'Always 1; labels name the etcd version and member ID the member at each configured endpoint last reported (Maintenance.Status).',
    labelNames: ['endpoint', 'member_id', 'version'] as const,
    registers,
  });
  const memberBelow = new Gauge({
    name: 'etcdgate_etcd_member_below_minimum_version',
    help: 'Whether the member at an endpoint runs a version below the configured minimum for its release line (upstream.versionCheck.minimumVersions): 1 yes, 0 no.',
    labelNames: ['endpoint', 'version', 'minimum'] as const,
    registers,
  });
  const encrypted = new Counter({
    name: 'etcdgate_encryption_values_encrypted_total',
    help: 'Values encrypted on their way to etcd, by encryption resource, provider and key name.',
    labelNames: ['resource', 'provider', 'key'] as const,
    registers,
  });
  const decrypted = new Counter({
    name: 'etcdgate_encryption_values_decrypted_total',
    help: 'Values decrypted on their way from etcd (those served by the decrypted-value cache included), by encryption resource, provider and key name.',
    labelNames: ['resource', 'provider', 'key'] as const,
    registers,
  });
  const decryptCacheHits = new Counter({
    name: 'etcdgate_encryption_decrypt_cache_hits_total',
    help: 'Values whose stored bytes were those of a value opened before (cache.decryptedValues): served without a decipher, by resource.',
    labelNames: ['resource'] as const,
    registers,
  });
  const decryptionFailures = new Counter({
    name: 'etcdgate_encryption_decryption_failures_total',
    help: 'Values under an encrypted prefix that could not be decrypted (the call failed), by resource and reason.',
    labelNames: ['resource', 'reason'] as const,
    registers,
  });
  const plaintextReads = new Counter({
    name: 'etcdgate_encryption_plaintext_reads_total',
    help: 'Plaintext values read under an encrypted prefix (not yet rewritten), by resource.',
    labelNames: ['resource'] as const,
    registers,
  });
  const encryptionReloads = new Counter({
    name: 'etcdgate_encryption_reloads_total',
    help: 'Encryption configuration and key reload attempts, by result.',
    labelNames: ['result'] as const,
    registers,
  });
  const writeKeys = new Gauge({
    name: 'etcdgate_encryption_write_key_info',
    help: 'Always 1; labels name the provider and key each encryption resource writes new values with.',
    labelNames: ['resource', 'provider', 'key'] as const,
    registers,
  });
  const connectionsRevoked = new Counter({
    name: 'etcdgate_tls_connections_revoked_total',
    help: 'Open client connections closed because a re-check found their certificate revoked, expired or no longer trusted, by reason.',
    labelNames: ['reason'] as const,
    registers,
  });
  const refusalRecordsSuppressed = new Counter({
    name: 'etcdgate_audit_refusal_records_suppressed_total',
    help: 'Refusal audit records (handshakes, connections) not written because of the per-source or total refusal record limit; each source gets a summary record.',
    registers,
  });
  const buildInfo = new Gauge({
    name: 'etcdgate_build_info',
    help: 'Always 1; labels name the etcdgate and Node.js versions.',
    labelNames: ['version', 'node_version'] as const,
    registers,
  });
  buildInfo.labels(options?.version ?? 'unknown', process.versions.node).set(1);

  // Backups (src/backup). The counters exist at 0 from the start whether or not backups
  // are configured; etcdgate_backup_max_age_seconds exists only when they are, so the
  // EtcdgateBackupTooOld rule (which compares against it) is silent for instances without.
  const backupRuns = new Counter({
    name: 'etcdgate_backup_runs_total',
    help: 'Backup runs and scheduled slots, by result (other_instance: another etcdgate of the fleet took the slot; still_running: the previous run had not ended).',
    labelNames: ['result'] as const,
    registers,
  });
  const backupFailures = new Counter({
    name: 'etcdgate_backup_failures_total',
    help: 'Failed backup runs, by reason.',
    labelNames: ['reason'] as const,
    registers,
  });
  const backupLastSuccess = new Gauge({
    name: 'etcdgate_backup_last_success_timestamp_seconds',
    help: 'When the newest stored backup was stored, seconds since the Unix epoch (0: none known).',
    registers,
  });
  const backupLastFailure = new Gauge({
    name: 'etcdgate_backup_last_failure_timestamp_seconds',
    help: 'When the last failed backup run ended, seconds since the Unix epoch (0: none since start).',
    registers,
  });
  const backupLastSize = new Gauge({
    name: 'etcdgate_backup_last_success_size_bytes',
    help: 'Size of the newest stored backup as stored (after encryption), bytes.',
    registers,
  });
  const backupLastDuration = new Gauge({
    name: 'etcdgate_backup_last_success_duration_seconds',
    help: 'How long the newest successful backup run took, seconds.',
    registers,
  });
  const backupLastRevision = new Gauge({
    name: 'etcdgate_backup_last_success_revision',
    help: 'etcd store revision of the newest stored backup.',
    registers,
  });
  const backupMaxAge = new Gauge({
    name: BACKUP_MAX_AGE,
    help: 'Configured age (backup.maxAgeSeconds) past which the newest backup is too old; present only when backups are configured.',
    registers: [],
  });
  const backupRunChildren = new Map(BACKUP_RESULTS.map((result) => [result, backupRuns.labels(result)] as const));
  for (const child of backupRunChildren.values()) child.inc(0);
  const backupFailureChildren = new Map(BACKUP_FAILURES.map((reason) => [reason, backupFailures.labels(reason)] as const));
  for (const child of backupFailureChildren.values()) child.inc(0);
  let lastSuccessSeconds = 0;

  // Children with a fixed label set are resolved now; they also make every series exist
  // at 0 from the first scrape, so rate()/increase() see the first event.
  const streamChildren = new Map(STREAM_KINDS.map((kind) => [kind, streams.labels(kind)] as const));
  for (const child of streamChildren.values()) child.set(0);
  const handshakeChildren = new Map(HANDSHAKE_FAILURES.map((reason) => [reason, handshakeFailures.labels(reason)] as const));
  for (const child of handshakeChildren.values()) child.inc(0);
  upstreamServing.set(0);
  const healthOk = healthChecks.labels('ok');
  const healthFailed = healthChecks.labels('failed');
  healthOk.inc(0);
  healthFailed.inc(0);
  /** Per endpoint, the label sets last exported, removed when the member reports something else. */
  const memberSeries = new Map<string, { info: [string, string, string]; below: [string, string, string] }>();
  const revokedChildren = new Map(RECHECK_FAILURES.map((reason) => [reason, connectionsRevoked.labels(reason)] as const));
  for (const child of revokedChildren.values()) child.inc(0);
  // Every reopen reason exported from the start, so an alert on an increase sees the first one.
  for (const reason of ['signal', 'deleted', 'replaced'] as const) auditFileReopens.labels(reason).inc(0);
  const reloadSuccess = policyReloads.labels('success');
  const reloadFailure = policyReloads.labels('failure');
  reloadSuccess.inc(0);
  reloadFailure.inc(0);
  const tlsReloadSuccess = tlsReloads.labels('success');
  const tlsReloadFailure = tlsReloads.labels('failure');
  tlsReloadSuccess.inc(0);
  tlsReloadFailure.inc(0);

  const encryptionReloadSuccess = encryptionReloads.labels('success');
  const encryptionReloadFailure = encryptionReloads.labels('failure');
  encryptionReloadSuccess.inc(0);
  encryptionReloadFailure.inc(0);

  // Children whose labels come from bounded but open sets (method table, policy roles,
  // configured endpoints) are cached on first use.
  const requestChildren = new Map<string, ReturnType<typeof requests.labels>>();
  const durationChildren = new Map<string, ReturnType<typeof requestDuration.labels>>();
  const upstreamDurationChildren = new Map<string, ReturnType<typeof upstreamDuration.labels>>();
  const upstreamUpChildren = new Map<string, ReturnType<typeof upstreamUp.labels>>();
  const denialChildren = new Map<string, ReturnType<typeof denials.labels>>();
  const encryptedChildren = new Map<string, ReturnType<typeof encrypted.labels>>();
  const decryptedChildren = new Map<string, ReturnType<typeof decrypted.labels>>();
  const keyLabels = (key: string): [string, string, string] => key.split('\u0000') as [string, string, string];
  const encryptedChild = (key: string): ReturnType<typeof encrypted.labels> => encrypted.labels(...keyLabels(key));
  const decryptedChild = (key: string): ReturnType<typeof decrypted.labels> => decrypted.labels(...keyLabels(key));
  const decryptCacheHitChildren = new Map<string, ReturnType<typeof decryptCacheHits.labels>>();
  const decryptCacheHitChild = (resource: string): ReturnType<typeof decryptCacheHits.labels> => decryptCacheHits.labels(resource);
  const durationChild = (method: string): ReturnType<typeof requestDuration.labels> => requestDuration.labels(method);
  const upstreamDurationChild = (method: string): ReturnType<typeof upstreamDuration.labels> => upstreamDuration.labels(method);
  const upstreamUpChild = (endpoint: string): ReturnType<typeof upstreamUp.labels> => upstreamUp.labels(endpoint);
  const denialChild = (key: string): ReturnType<typeof denials.labels> => {
    const [binding = 'none', role = 'none', reason = 'other'] = key.split('\u0000');
    return denials.labels(binding, role, reason);
  };
  let currentPolicyVersion: string | undefined;
  /** Subjects exported per certificate role, so that those no longer in use can be removed. */
  const certificateSubjects = new Map<CertificateRole, ReadonlySet<string>>();

  const metrics: Metrics = {
    requestFinished(service: string, method: string, outcome: Outcome, code: number, seconds: number, protocol: CallProtocol = 'grpc'): void {
      const codeName = grpcCodeName(code);
      const key = `${service}\u0000${method}\u0000${outcome}\u0000${codeName}\u0000${protocol}`;
      let child = requestChildren.get(key);
      if (child === undefined) {
        child = requests.labels(service, method, outcome, codeName, protocol);
        requestChildren.set(key, child);
      }
      child.inc();
      // A negative or NaN duration (clock oddity) is dropped rather than thrown on the hot path.
      if (seconds >= 0) cached(durationChildren, method, durationChild).observe(seconds);
    },
    bytes(direction: 'in' | 'out', count: number): void {
      if (!(count > 0) || !Number.isFinite(count)) return;
      (direction === 'in' ? receivedBytes : sentBytes).inc(count);
    },
    connectionOpened(): void {
      connections.inc();
    },
    connectionClosed(): void {
      connections.dec();
    },
    streamOpened(kind: StreamKind): void {
      streamChildren.get(kind)?.inc();
    },
    streamClosed(kind: StreamKind): void {
      streamChildren.get(kind)?.dec();
    },
    watchers(delta: number): void {
      if (Number.isFinite(delta)) watchers.inc(delta);
    },
    rangeReads(state, delta): void {
      (state === 'at_etcd' ? rangeReadsAtEtcd : rangeReadsWaiting).inc(delta);
    },
    upstreamUp(endpoint: string, up: boolean): void {
      cached(upstreamUpChildren, endpoint, upstreamUpChild).set(up ? 1 : 0);
    },
    upstreamCall(method: string, seconds: number): void {
      if (seconds >= 0) cached(upstreamDurationChildren, method, upstreamDurationChild).observe(seconds);
    },
    upstreamFailover(): void {
      upstreamFailovers.inc();
    },
    denied(labels: DenialLabels): void {
      cached(denialChildren, `${labels.binding}\u0000${labels.role}\u0000${labels.reason}`, denialChild).inc();
    },
    healthProbeDenied(): void {
      deniedProbes.inc();
    },
    policyReload(result: 'success' | 'failure'): void {
      (result === 'success' ? reloadSuccess : reloadFailure).inc();
      policyLastReload.set(result === 'success' ? 1 : 0);
    },
    policyInfo(version: string, ruleCount: number): void {
      // Only the enforced version has a series; dropping the old one keeps
      // `etcdgate_policy_info == 1` answering "which policy is live" unambiguously.
      if (version !== currentPolicyVersion) {
        policyInfo.reset();
        policyInfo.labels(version).set(1);
        currentPolicyVersion = version;
      }
      policyRules.set(ruleCount);
    },
    tlsReload(result: 'success' | 'failure'): void {
      (result === 'success' ? tlsReloadSuccess : tlsReloadFailure).inc();
      tlsLastReload.set(result === 'success' ? 1 : 0);
    },
    auditWritten(): void {
      auditRecords.inc();
    },
    auditFailure(): void {
      auditFailures.inc();
    },
    auditFileReopened(reason): void {
      auditFileReopens.inc({ reason });
    },
    auditSkipped(): void {
      auditSkipped.inc();
    },
    auditQueueDepth(depth: number): void {
      if (Number.isFinite(depth)) auditQueueDepth.set(depth);
    },
    certificatesInUse(role: CertificateRole, certificates: readonly CertificateExpiry[]): void {
      // Two certificates with one subject (a cross-signed CA) share a series: the earlier expiry is the one to alert on.
      const seconds = new Map<string, number>();
      for (const { subject, notAfter } of certificates) {
        const value = notAfter.getTime() / 1000;
        if (Number.isFinite(value)) seconds.set(subject, Math.min(value, seconds.get(subject) ?? Infinity));
      }
      for (const subject of certificateSubjects.get(role) ?? []) {
        if (!seconds.has(subject)) certificateNotAfter.remove(role, subject);
      }
      for (const [subject, value] of seconds) certificateNotAfter.labels(role, subject).set(value);
      certificateSubjects.set(role, new Set(seconds.keys()));
    },
    handshakeRefused(reason: HandshakeFailure): void {
      (handshakeChildren.get(reason) ?? handshakeChildren.get('other'))?.inc();
    },
    upstreamServing(serving: boolean): void {
      upstreamServing.set(serving ? 1 : 0);
      (serving ? healthOk : healthFailed).inc();
    },
    etcdMember(endpoint: string, report: EtcdMemberReport): void {
      const info: [string, string, string] = [endpoint, report.memberId, report.version];
      const below: [string, string, string] = [endpoint, report.version, report.minimum];
      const previous = memberSeries.get(endpoint);
      if (previous !== undefined && previous.info.join('\u0000') !== info.join('\u0000')) memberInfo.remove(...previous.info);
      if (previous !== undefined && previous.below.join('\u0000') !== below.join('\u0000')) memberBelow.remove(...previous.below);
      memberInfo.labels(...info).set(1);
      memberBelow.labels(...below).set(report.below ? 1 : 0);
      memberSeries.set(endpoint, { info, below });
    },
    valueEncrypted(resource: string, provider: string, key: string): void {
      cached(encryptedChildren, `${resource}\u0000${provider}\u0000${key}`, encryptedChild).inc();
    },
    valueDecrypted(resource: string, provider: string, key: string): void {
      cached(decryptedChildren, `${resource}\u0000${provider}\u0000${key}`, decryptedChild).inc();
    },
    decryptCacheHit(resource: string): void {
      cached(decryptCacheHitChildren, resource, decryptCacheHitChild).inc();
    },
    decryptionFailed(resource: string, reason: DecryptionFailure): void {
      decryptionFailures.labels(resource, reason).inc();
    },
    plaintextRead(resource: string): void {
      plaintextReads.labels(resource).inc();
    },
    encryptionReload(result: 'success' | 'failure'): void {
      (result === 'success' ? encryptionReloadSuccess : encryptionReloadFailure).inc();
    },
    encryptionWriteKeys(writers): void {
      writeKeys.reset();
      for (const writer of writers) {
        writeKeys.labels(writer.resource, writer.provider, writer.key).set(1);
        // Every series exists from the first scrape, so rate() sees the first value.
        cached(encryptedChildren, `${writer.resource}\u0000${writer.provider}\u0000${writer.key}`, encryptedChild).inc(0);
      }
    },
    connectionRevoked(reason: RecheckFailure): void {
      revokedChildren.get(reason)?.inc();
    },
    refusalRecordSuppressed(): void {
      refusalRecordsSuppressed.inc();
    },
    backupConfigured(maxAgeSeconds: number): void {
      if (registry.getSingleMetric(BACKUP_MAX_AGE) === undefined) registry.registerMetric(backupMaxAge);
      backupMaxAge.set(maxAgeSeconds);
    },
    backupRun(result: BackupRunResult): void {
      backupRunChildren.get(result)?.inc();
    },
    backupSucceeded(success: BackupSuccess): void {
      const seconds = success.finishedAt.getTime() / 1000;
      // Only ever forward: a listing found at start must not undo a newer run's figures.
      if (!Number.isFinite(seconds) || seconds < lastSuccessSeconds) return;
      lastSuccessSeconds = seconds;
      backupLastSuccess.set(seconds);
      backupLastSize.set(success.sizeBytes);
      if (success.seconds >= 0) backupLastDuration.set(success.seconds);
      const revision = Number(success.revision);
      if (Number.isFinite(revision)) backupLastRevision.set(revision);
    },
    backupFailed(reason: BackupFailure, at: Date): void {
      (backupFailureChildren.get(reason) ?? backupFailureChildren.get('other'))?.inc();
      const seconds = at.getTime() / 1000;
      if (Number.isFinite(seconds)) backupLastFailure.set(seconds);
    },
  };
  return { metrics, registry };
}

/** The label a certificate is reported under: its subject CN, else the first 16 hex digits of its SHA-256 fingerprint. */
export function certificateLabel(cert: X509Certificate): string {
  for (const line of cert.subject.split('\n')) {
    if (line.startsWith('CN=') && line.length > 3) return line.slice(3);
  }
  return createHash('sha256').update(cert.raw).digest('hex').slice(0, 16);
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * Reports the certificates of a PEM bundle as the ones in use under `role` (replacing
 * what that role reported before). Returns how many were reported; a block that does
 * not parse is skipped (the TLS loader, not the metrics, is what rejects a broken file).
 */
export function reportCertificateBundle(metrics: Metrics, role: CertificateRole, pem: string): number {
  const certificates: CertificateExpiry[] = [];
  for (const block of pem.match(PEM_CERTIFICATE) ?? []) {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(block);
    } catch {
      continue;
    }
    certificates.push({ subject: certificateLabel(cert), notAfter: new Date(cert.validTo) });
  }
  metrics.certificatesInUse(role, certificates);
  return certificates.length;
}

