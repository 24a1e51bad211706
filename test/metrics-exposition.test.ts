/**
 * Proves that every Metrics method lands in the Prometheus exposition under its
 * documented `etcdgate_*` name, type and exact label set, with the value the calls
 * imply; that gRPC codes are exported by name; that only the live policy version has a
 * series; and that certificate bundles are reported per certificate.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeName as grpcCodeName } from '../src/transport/grpc/status.js';
import { createPromMetrics, LATENCY_BUCKETS, reportCertificateBundle } from '../src/observability/metrics.js';
import { NOOP_METRICS } from '../src/observability/metrics-types.js';
import { METRICS_METHODS, exerciseEveryMetric } from './support/exercise-metrics.js';
import type { Exposition } from './support/prometheus-text.js';
import { findSamples, parseExposition, sampleValue } from './support/prometheus-text.js';

/** The documented families: type and label names (histograms list theirs without `le`). */
const FAMILIES: Record<string, { type: string; labels: string[] }> = {
  etcdgate_requests_total: { type: 'counter', labels: ['code', 'decision', 'method', 'protocol', 'service'] },
  etcdgate_request_duration_seconds: { type: 'histogram', labels: ['method'] },
  etcdgate_received_bytes_total: { type: 'counter', labels: [] },
  etcdgate_sent_bytes_total: { type: 'counter', labels: [] },
  etcdgate_client_connections: { type: 'gauge', labels: [] },
  etcdgate_streams: { type: 'gauge', labels: ['kind'] },
  etcdgate_watchers: { type: 'gauge', labels: [] },
  etcdgate_range_reads: { type: 'gauge', labels: ['state'] },
  etcdgate_upstream_up: { type: 'gauge', labels: ['endpoint'] },
  etcdgate_upstream_request_duration_seconds: { type: 'histogram', labels: ['method'] },
  etcdgate_upstream_failovers_total: { type: 'counter', labels: [] },
  etcdgate_denials_total: { type: 'counter', labels: ['binding', 'reason', 'role'] },
  etcdgate_denied_health_probes_total: { type: 'counter', labels: [] },
  etcdgate_policy_reloads_total: { type: 'counter', labels: ['result'] },
  etcdgate_tls_reloads_total: { type: 'counter', labels: ['result'] },
  etcdgate_policy_last_reload_successful: { type: 'gauge', labels: [] },
  etcdgate_tls_last_reload_successful: { type: 'gauge', labels: [] },
  etcdgate_encryption_values_encrypted_total: { type: 'counter', labels: ['resource', 'provider', 'key'] },
  etcdgate_encryption_values_decrypted_total: { type: 'counter', labels: ['resource', 'provider', 'key'] },
  etcdgate_encryption_decrypt_cache_hits_total: { type: 'counter', labels: ['resource'] },
  etcdgate_encryption_decryption_failures_total: { type: 'counter', labels: ['resource', 'reason'] },
  etcdgate_encryption_plaintext_reads_total: { type: 'counter', labels: ['resource'] },
  etcdgate_encryption_reloads_total: { type: 'counter', labels: ['result'] },
  etcdgate_encryption_write_key_info: { type: 'gauge', labels: ['resource', 'provider', 'key'] },
  etcdgate_policy_rules: { type: 'gauge', labels: [] },
  etcdgate_policy_info: { type: 'gauge', labels: ['version'] },
  etcdgate_audit_records_total: { type: 'counter', labels: [] },
  etcdgate_audit_sink_failures_total: { type: 'counter', labels: [] },
  etcdgate_audit_queue_depth: { type: 'gauge', labels: [] },
  etcdgate_audit_file_reopens_total: { type: 'counter', labels: ['reason'] },
  etcdgate_audit_records_skipped_total: { type: 'counter', labels: [] },
  etcdgate_certificate_not_after_seconds: { type: 'gauge', labels: ['role', 'subject'] },
  etcdgate_tls_handshake_failures_total: { type: 'counter', labels: ['reason'] },
  etcdgate_tls_connections_revoked_total: { type: 'counter', labels: ['reason'] },
  etcdgate_audit_refusal_records_suppressed_total: { type: 'counter', labels: [] },
  etcdgate_build_info: { type: 'gauge', labels: ['node_version', 'version'] },
  etcdgate_upstream_serving: { type: 'gauge', labels: [] },
  etcdgate_upstream_health_checks_total: { type: 'counter', labels: ['result'] },
  etcdgate_etcd_member_info: { type: 'gauge', labels: ['endpoint', 'member_id', 'version'] },
  etcdgate_etcd_member_below_minimum_version: { type: 'gauge', labels: ['endpoint', 'minimum', 'version'] },
  etcdgate_backup_runs_total: { type: 'counter', labels: ['result'] },
  etcdgate_backup_failures_total: { type: 'counter', labels: ['reason'] },
  etcdgate_backup_last_success_timestamp_seconds: { type: 'gauge', labels: [] },
  etcdgate_backup_last_failure_timestamp_seconds: { type: 'gauge', labels: [] },
  etcdgate_backup_last_success_size_bytes: { type: 'gauge', labels: [] },
  etcdgate_backup_last_success_duration_seconds: { type: 'gauge', labels: [] },
  etcdgate_backup_last_success_revision: { type: 'gauge', labels: [] },
  etcdgate_backup_max_age_seconds: { type: 'gauge', labels: [] },
};

/** The family a sample belongs to, and whether it carries the histogram `le` label. */
function familyOf(name: string): { family: string; bucket: boolean } {
  if (FAMILIES[name] !== undefined) return { family: name, bucket: false };
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (name.endsWith(suffix)) return { family: name.slice(0, -suffix.length), bucket: suffix === '_bucket' };
  }
  return { family: name, bucket: false };
}

async function scrape(registry: Registry): Promise<Exposition> {
  return parseExposition(await registry.metrics());
}

describe('createPromMetrics exposition', () => {
  const { metrics, registry } = createPromMetrics({ version: '9.8.7-test' });
  let exposition: Exposition;

  beforeAll(async () => {
    metrics.requestFinished('etcdserverpb.KV', 'Range', 'allow', 0, 0.003);
    metrics.requestFinished('etcdserverpb.KV', 'Range', 'allow', 0, 0.004);
    metrics.requestFinished('etcdserverpb.KV', 'Put', 'deny', 7, 0.0002);
    metrics.requestFinished('etcdserverpb.Maintenance', 'Status', 'allow', 99, 20);
    metrics.bytes('in', 100);
    metrics.bytes('in', 50);
    metrics.bytes('out', 7);
    metrics.bytes('in', -5);
    metrics.bytes('out', Number.NaN);
    metrics.connectionOpened();
    metrics.connectionOpened();
    metrics.connectionClosed();
    metrics.streamOpened('watch');
    metrics.streamOpened('watch');
    metrics.streamClosed('watch');
    metrics.streamOpened('keepalive');
    metrics.watchers(3);
    metrics.watchers(-1);
    metrics.upstreamUp('https://127.0.0.1:23791', true);
    metrics.upstreamUp('https://127.0.0.1:23792', true);
    metrics.upstreamUp('https://127.0.0.1:23792', false);
    metrics.upstreamCall('Range', 0.002);
    metrics.upstreamCall('Range', 0.02);
    metrics.upstreamFailover();
    metrics.denied({ binding: 'readers', role: 'reader', reason: 'denied_by_rule' });
    metrics.denied({ binding: 'readers', role: 'reader', reason: 'denied_by_rule' });
    metrics.denied({ binding: 'none', role: 'none', reason: 'no_binding' });
    metrics.healthProbeDenied();
    metrics.policyReload('success');
    metrics.policyReload('failure');
    metrics.policyReload('failure');
    metrics.policyInfo('sha256:aaaa', 3);
    metrics.policyInfo('sha256:bbbb', 5);
    metrics.auditWritten();
    metrics.auditWritten();
    metrics.auditWritten();
    metrics.auditFailure();
    metrics.auditQueueDepth(42);
    metrics.certificatesInUse('server', [{ subject: 'gw.example', notAfter: new Date('2030-01-01T00:00:00Z') }]);
    metrics.handshakeRefused('unknown_ca');
    metrics.handshakeRefused('unknown_ca');
    metrics.handshakeRefused('expired');
    metrics.upstreamServing(true);
    metrics.upstreamServing(false);
    metrics.etcdMember('https://etcd-a:2379', { version: '3.5.30', memberId: 'a1', minimum: '3.5.33', below: true });
    metrics.etcdMember('https://etcd-a:2379', { version: '3.5.33', memberId: 'a1', minimum: '3.5.33', below: false });
    metrics.etcdMember('https://etcd-b:2379', { version: '3.6.14', memberId: 'b2', minimum: '3.6.14', below: false });
    metrics.backupConfigured(7200);
    metrics.backupRun('success');
    metrics.backupRun('other_instance');
    metrics.backupSucceeded({ finishedAt: new Date('2026-01-01T03:00:00Z'), sizeBytes: 4096, seconds: 2.5, revision: '42' });
    // An older backup found later (a listing at start) must not move the figures back.
    metrics.backupSucceeded({ finishedAt: new Date('2025-12-31T03:00:00Z'), sizeBytes: 1, seconds: 1, revision: '7' });
    metrics.backupFailed('etcd_unavailable', new Date('2026-01-01T04:00:00Z'));
    exposition = await scrape(registry);
  });

  it('reports backups: runs and failures from 0, the newest success only ever forward, the configured max age', async () => {
    expect(sampleValue(exposition, 'etcdgate_backup_runs_total', { result: 'success' })).toBe(1);
    expect(sampleValue(exposition, 'etcdgate_backup_runs_total', { result: 'still_running' })).toBe(0);
    expect(sampleValue(exposition, 'etcdgate_backup_failures_total', { reason: 'etcd_unavailable' })).toBe(1);
    expect(sampleValue(exposition, 'etcdgate_backup_failures_total', { reason: 'timeout' })).toBe(0);
    expect(sampleValue(exposition, 'etcdgate_backup_last_success_timestamp_seconds')).toBe(Date.parse('2026-01-01T03:00:00Z') / 1000);
    expect(sampleValue(exposition, 'etcdgate_backup_last_success_revision')).toBe(42);
    expect(sampleValue(exposition, 'etcdgate_backup_last_success_size_bytes')).toBe(4096);
    expect(sampleValue(exposition, 'etcdgate_backup_last_failure_timestamp_seconds')).toBe(Date.parse('2026-01-01T04:00:00Z') / 1000);
    expect(sampleValue(exposition, 'etcdgate_backup_max_age_seconds')).toBe(7200);
    // Without backups configured, no max age: EtcdgateBackupTooOld compares against nothing.
    const fresh = createPromMetrics({ version: 'x' });
    expect((await scrape(fresh.registry)).types.has('etcdgate_backup_max_age_seconds')).toBe(false);
  });

  it('exports exactly the documented etcdgate families with their types', () => {
    const exported = [...exposition.types.keys()].filter((name) => name.startsWith('etcdgate_')).sort();
    expect(exported).toEqual(Object.keys(FAMILIES).sort());
    for (const [name, { type }] of Object.entries(FAMILIES)) expect(exposition.types.get(name), name).toBe(type);
  });

  it('gives every etcdgate sample exactly its documented label set', () => {
    const etcdgateSamples = exposition.samples.filter((sample) => sample.name.startsWith('etcdgate_'));
    expect(etcdgateSamples.length).toBeGreaterThan(40);
    for (const sample of etcdgateSamples) {
      const { family, bucket } = familyOf(sample.name);
      const documented = FAMILIES[family];
      expect(documented, `${sample.name} belongs to a documented family`).toBeDefined();
      const expected = [...(documented?.labels ?? []), ...(bucket ? ['le'] : [])].sort();
      expect(Object.keys(sample.labels).sort(), sample.name).toEqual(expected);
    }
  });

  it('counts requests by service, method, decision and gRPC code name', () => {
    const labels = { service: 'etcdserverpb.KV', method: 'Range', decision: 'allow', code: 'OK' };
    expect(sampleValue(exposition, 'etcdgate_requests_total', labels)).toBe(2);
    expect(
      sampleValue(exposition, 'etcdgate_requests_total', { method: 'Put', decision: 'deny', code: 'PERMISSION_DENIED' }),
    ).toBe(1);
    // A code outside gRPC's table is still a bounded label.
    expect(sampleValue(exposition, 'etcdgate_requests_total', { method: 'Status', code: 'UNKNOWN' })).toBe(1);
    expect(findSamples(exposition, 'etcdgate_requests_total')).toHaveLength(3);
    // Calls made without a protocol are gRPC calls; the JSON gateway's say http.
    expect(findSamples(exposition, 'etcdgate_requests_total', { protocol: 'grpc' })).toHaveLength(3);
  });

  it('records request latency in a histogram with buckets from 100 µs to 10 s', () => {
    const buckets = findSamples(exposition, 'etcdgate_request_duration_seconds_bucket', { method: 'Range' });
    expect(buckets.map((b) => b.labels['le'])).toEqual([...LATENCY_BUCKETS.map(String), '+Inf']);
    expect(sampleValue(exposition, 'etcdgate_request_duration_seconds_bucket', { method: 'Range', le: '0.0025' })).toBe(0);
    expect(sampleValue(exposition, 'etcdgate_request_duration_seconds_bucket', { method: 'Range', le: '0.005' })).toBe(2);
    expect(sampleValue(exposition, 'etcdgate_request_duration_seconds_count', { method: 'Range' })).toBe(2);
    expect(sampleValue(exposition, 'etcdgate_request_duration_seconds_sum', { method: 'Range' })).toBeCloseTo(0.007, 9);
    expect(sampleValue(exposition, 'etcdgate_request_duration_seconds_bucket', { method: 'Put', le: '0.00025' })).toBe(1);
    expect(sampleValue(exposition, 'etcdgate_request_duration_seconds_bucket', { method: 'Status', le: '10' })).toBe(0);
    expect(sampleValue(exposition, 'etcdgate_request_duration_seconds_bucket', { method: 'Status', le: '+Inf' })).toBe(1);
  });

  it('counts payload bytes per direction and ignores nonsense counts', () => {
    expect(sampleValue(exposition, 'etcdgate_received_bytes_total')).toBe(150);
    expect(sampleValue(exposition, 'etcdgate_sent_bytes_total')).toBe(7);
  });

  it('tracks connections, streams per kind and watchers', () => {
    expect(sampleValue(exposition, 'etcdgate_client_connections')).toBe(1);
    expect(sampleValue(exposition, 'etcdgate_streams', { kind: 'watch' })).toBe(1);
    expect(sampleValue(exposition, 'etcdgate_streams', { kind: 'keepalive' })).toBe(1);
    // Every kind has a series from the start.
    expect(sampleValue(exposition, 'etcdgate_streams', { kind: 'snapshot' })).toBe(0);
    expect(sampleValue(exposition, 'etcdgate_streams', { kind: 'observe' })).toBe(0);
    expect(sampleValue(exposition, 'etcdgate_watchers')).toBe(2);
  });

  it('reports upstream state, latency and failovers', () => {
    expect(sampleValue(exposition, 'etcdgate_upstream_up', { endpoint: 'https://127.0.0.1:23791' })).toBe(1);
    expect(sampleValue(exposition, 'etcdgate_upstream_up', { endpoint: 'https://127.0.0.1:23792' })).toBe(0);
    expect(sampleValue(exposition, 'etcdgate_upstream_request_duration_seconds_count', { method: 'Range' })).toBe(2);
    expect(sampleValue(exposition, 'etcdgate_upstream_request_duration_seconds_bucket', { method: 'Range', le: '0.0025' })).toBe(1);
    expect(sampleValue(exposition, 'etcdgate_upstream_failovers_total')).toBe(1);
  });

  it('counts denials by binding, role and reason, health probes apart, and policy reloads per result', () => {
    expect(sampleValue(exposition, 'etcdgate_denials_total', { binding: 'readers', role: 'reader', reason: 'denied_by_rule' })).toBe(2);
    expect(sampleValue(exposition, 'etcdgate_denials_total', { binding: 'none', role: 'none', reason: 'no_binding' })).toBe(1);
    expect(findSamples(exposition, 'etcdgate_denials_total')).toHaveLength(2);
    expect(sampleValue(exposition, 'etcdgate_denied_health_probes_total')).toBe(1);
    expect(sampleValue(exposition, 'etcdgate_policy_reloads_total', { result: 'success' })).toBe(1);
    expect(sampleValue(exposition, 'etcdgate_policy_reloads_total', { result: 'failure' })).toBe(2);
    // The last policy reload failed; no TLS reload was attempted.
    expect(sampleValue(exposition, 'etcdgate_policy_last_reload_successful')).toBe(0);
    expect(sampleValue(exposition, 'etcdgate_tls_last_reload_successful')).toBe(1);
  });

  it('keeps a policy_info series only for the policy version in force', () => {
    const info = findSamples(exposition, 'etcdgate_policy_info');
    expect(info).toEqual([{ name: 'etcdgate_policy_info', labels: { version: 'sha256:bbbb' }, value: 1 }]);
    expect(sampleValue(exposition, 'etcdgate_policy_rules')).toBe(5);
  });

  it('reports audit records, sink failures and queue depth', () => {
    expect(sampleValue(exposition, 'etcdgate_audit_records_total')).toBe(3);
    expect(sampleValue(exposition, 'etcdgate_audit_sink_failures_total')).toBe(1);
    expect(sampleValue(exposition, 'etcdgate_audit_queue_depth')).toBe(42);
  });

  it('reports certificate expiry in seconds since the epoch', () => {
    expect(sampleValue(exposition, 'etcdgate_certificate_not_after_seconds', { role: 'server', subject: 'gw.example' })).toBe(
      Date.UTC(2030, 0, 1) / 1000,
    );
  });

  it('counts handshake failures per reason, every reason present from the start', () => {
    expect(sampleValue(exposition, 'etcdgate_tls_handshake_failures_total', { reason: 'unknown_ca' })).toBe(2);
    expect(sampleValue(exposition, 'etcdgate_tls_handshake_failures_total', { reason: 'expired' })).toBe(1);
    expect(sampleValue(exposition, 'etcdgate_tls_handshake_failures_total', { reason: 'no_certificate' })).toBe(0);
    expect(findSamples(exposition, 'etcdgate_tls_handshake_failures_total')).toHaveLength(14);
  });

  it('reports the readiness check and one version series per member, the latest report only', () => {
    expect(sampleValue(exposition, 'etcdgate_upstream_serving')).toBe(0);
    expect(sampleValue(exposition, 'etcdgate_upstream_health_checks_total', { result: 'ok' })).toBe(1);
    expect(sampleValue(exposition, 'etcdgate_upstream_health_checks_total', { result: 'failed' })).toBe(1);
    expect(findSamples(exposition, 'etcdgate_etcd_member_info').map((s) => s.labels)).toEqual([
      { endpoint: 'https://etcd-a:2379', member_id: 'a1', version: '3.5.33' },
      { endpoint: 'https://etcd-b:2379', member_id: 'b2', version: '3.6.14' },
    ]);
    expect(findSamples(exposition, 'etcdgate_etcd_member_below_minimum_version').map((s) => [s.labels['version'], s.value])).toEqual([
      ['3.5.33', 0],
      ['3.6.14', 0],
    ]);
  });

  it('exports build info and unprefixed default process metrics', () => {
    expect(
      sampleValue(exposition, 'etcdgate_build_info', { version: '9.8.7-test', node_version: process.versions.node }),
    ).toBe(1);
    expect(exposition.types.get('process_cpu_user_seconds_total')).toBe('counter');
    expect(exposition.types.has('nodejs_heap_size_used_bytes')).toBe(true);
    expect([...exposition.types.keys()].some((name) => name.startsWith('etcdgate_process_'))).toBe(false);
  });
});

describe('createPromMetrics registries', () => {
  it('uses a fresh registry per call, never the global one', async () => {
    const a = createPromMetrics({ version: 'a' });
    const b = createPromMetrics({ version: 'b' });
    expect(a.registry).not.toBe(b.registry);
    a.metrics.auditWritten();
    expect(sampleValue(await scrape(a.registry), 'etcdgate_audit_records_total')).toBe(1);
    expect(sampleValue(await scrape(b.registry), 'etcdgate_audit_records_total')).toBe(0);
  });

  it('fills a registry it is given', async () => {
    const registry = new Registry();
    const result = createPromMetrics({ registry, version: 'given' });
    expect(result.registry).toBe(registry);
    result.metrics.upstreamFailover();
    expect(sampleValue(await scrape(registry), 'etcdgate_upstream_failovers_total')).toBe(1);
  });

  it('gives every Metrics method a series once each is exercised', async () => {
    const { metrics, registry } = createPromMetrics({ version: 'x' });
    exerciseEveryMetric(metrics);
    const exposition = await scrape(registry);
    for (const family of Object.keys(FAMILIES)) {
      const samples = exposition.samples.filter((sample) => familyOf(sample.name).family === family);
      expect(samples.length, family).toBeGreaterThan(0);
    }
    // The contract's methods and the no-op agree, so nothing was missed in the table.
    expect(METRICS_METHODS.sort()).toEqual(Object.keys(NOOP_METRICS).sort());
  });
});

describe('grpcCodeName', () => {
  it('names every gRPC code and folds unknown numbers into UNKNOWN', () => {
    expect(grpcCodeName(0)).toBe('OK');
    expect(grpcCodeName(7)).toBe('PERMISSION_DENIED');
    expect(grpcCodeName(14)).toBe('UNAVAILABLE');
    expect(grpcCodeName(16)).toBe('UNAUTHENTICATED');
    expect(grpcCodeName(17)).toBe('UNKNOWN');
    expect(grpcCodeName(-1)).toBe('UNKNOWN');
  });
});

describe('reportCertificateBundle', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'etcdgate-certmetrics-'));
    const make = (name: string, subject: string, days: string): void => {
      execFileSync('openssl', [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
        '-subj', subject, '-days', days,
        '-keyout', path.join(dir, `${name}.key`), '-out', path.join(dir, `${name}.crt`),
      ], { stdio: 'ignore' });
    };
    make('named', '/CN=etcd-clients-ca/O=etcdgate-test', '30');
    make('anonymous', '/O=etcdgate-test/OU=no-common-name', '400');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reports each certificate of a bundle under its CN or fingerprint prefix', async () => {
    const named = readFileSync(path.join(dir, 'named.crt'), 'utf8');
    const anonymous = readFileSync(path.join(dir, 'anonymous.crt'), 'utf8');
    const anonymousCert = new X509Certificate(anonymous);
    const fingerprintPrefix = anonymousCert.fingerprint256.replaceAll(':', '').toLowerCase().slice(0, 16);

    const { metrics, registry } = createPromMetrics({ version: 'x' });
    const count = reportCertificateBundle(metrics, 'client-ca', `${named}\n${anonymous}`);
    expect(count).toBe(2);

    const exposition = await scrape(registry);
    const namedNotAfter = Date.parse(new X509Certificate(named).validTo) / 1000;
    expect(sampleValue(exposition, 'etcdgate_certificate_not_after_seconds', { role: 'client-ca', subject: 'etcd-clients-ca' })).toBe(
      namedNotAfter,
    );
    expect(
      sampleValue(exposition, 'etcdgate_certificate_not_after_seconds', { role: 'client-ca', subject: fingerprintPrefix }),
    ).toBe(Date.parse(anonymousCert.validTo) / 1000);
    // About 30 days out, within the one-day granularity openssl uses.
    expect(Math.abs(namedNotAfter - (Date.now() / 1000 + 30 * 86400))).toBeLessThan(2 * 86400);
    expect(findSamples(exposition, 'etcdgate_certificate_not_after_seconds')).toHaveLength(2);
  });

  it('skips blocks that are not certificates', () => {
    const calls: string[] = [];
    const spy = { ...NOOP_METRICS, certificatesInUse: (_role: string, list: readonly { subject: string }[]) => calls.push(...list.map((c) => c.subject)) };
    const garbage = '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n';
    expect(reportCertificateBundle(spy, 'server', garbage)).toBe(0);
    expect(reportCertificateBundle(spy, 'server', '')).toBe(0);
    expect(calls).toEqual([]);
  });

  it('removes the series of a role’s certificates no longer in use, and only of that role', async () => {
    const named = readFileSync(path.join(dir, 'named.crt'), 'utf8');
    const anonymous = readFileSync(path.join(dir, 'anonymous.crt'), 'utf8');
    const { metrics, registry } = createPromMetrics({ version: 'x' });
    reportCertificateBundle(metrics, 'server', named);
    reportCertificateBundle(metrics, 'client-ca', named);
    expect(findSamples(await scrape(registry), 'etcdgate_certificate_not_after_seconds')).toHaveLength(2);
    reportCertificateBundle(metrics, 'server', anonymous);
    const after = findSamples(await scrape(registry), 'etcdgate_certificate_not_after_seconds');
    expect(after.map((s) => `${s.labels['role']}/${s.labels['subject']}`).sort()).toEqual(
      ['client-ca/etcd-clients-ca', `server/${new X509Certificate(anonymous).fingerprint256.replaceAll(':', '').toLowerCase().slice(0, 16)}`].sort(),
    );
  });
});
