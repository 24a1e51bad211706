/**
 * Proves that what the admin server serves on /metrics, with every Metrics method
 * exercised, passes `promtool check metrics` (Prometheus's naming and format lint)
 * without a single complaint. Skipped locally without promtool; fails under CI.
 */
import { describe, expect, it } from 'vitest';
import { startAdminServer } from '../src/observability/admin-server.js';
import { createPromMetrics } from '../src/observability/metrics.js';
import { exerciseEveryMetric } from './support/exercise-metrics.js';
import { commandPresent, promtoolCheckMetrics, runningInCI } from './support/promtool.js';

const promtoolPresent = commandPresent('promtool');
const inCI = runningInCI();

if (!promtoolPresent && !inCI) {
  console.warn('metrics-promtool-lint: promtool not found (apt-get install prometheus); skipping');
}

describe.skipIf(!promtoolPresent && !inCI)('promtool check metrics', () => {
  it('reports no problem with the served exposition', async () => {
    expect(promtoolPresent, 'promtool must be installed in CI (apt-get install prometheus)').toBe(true);
    const { metrics, registry } = createPromMetrics({ version: 'lint-test' });
    exerciseEveryMetric(metrics);
    const admin = await startAdminServer({ host: '127.0.0.1', port: 0, registry, readiness: () => ({ ready: true, checks: {} }) });
    try {
      const res = await fetch(`http://127.0.0.1:${admin.port}/metrics`);
      const text = await res.text();
      expect(text).toContain('etcdgate_requests_total');
      const { code, output } = await promtoolCheckMetrics(text);
      expect(output.trim()).toBe('');
      expect(code).toBe(0);
    } finally {
      await admin.close();
    }
  });

  it('does complain about a misnamed metric (the lint is live)', async () => {
    const bad = '# HELP etcdgate_bad_total A gauge wrongly named like a counter.\n# TYPE etcdgate_bad_total gauge\netcdgate_bad_total 1\n';
    const { code, output } = await promtoolCheckMetrics(bad);
    expect(code).not.toBe(0);
    expect(output).toContain('etcdgate_bad_total');
  });
});
