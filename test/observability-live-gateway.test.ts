/**
 * The metrics a live etcdgate serves, after real traffic through it to a real etcd:
 * every metric name the Grafana dashboard and the alert rules query is on the page,
 * the counters count what happened (allowed and denied calls, open watchers), and the
 * page passes `promtool check metrics`.
 */
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { encode } from './support/etcd-messages.js';
import { useGatewayStack } from './support/stack.js';
import { exposedNames, parseExposition, sampleValue } from './support/prometheus-text.js';
import { promtoolCheckMetrics } from './support/promtool.js';
import { familyName, metricNamesInPromQL } from './support/promql-names.js';
import { callEtcd, collectWatch, rawClient, rawWatch } from './support/raw-client.js';

const dashboard = readFileSync(fileURLToPath(new URL('../config/grafana/etcdgate-dashboard.json', import.meta.url)), 'utf8');
const rules = readFileSync(fileURLToPath(new URL('../config/prometheus/etcdgate-rules.yaml', import.meta.url)), 'utf8');

/** Every PromQL expression in the dashboard and the alert rules. */
function queriedExpressions(): string[] {
  const fromDashboard = [...dashboard.matchAll(/"expr": ("(?:[^"\\]|\\.)*")/gu)].map((m) => JSON.parse(m[1] ?? '""') as string);
  const doc = parseYaml(rules) as { groups: { rules: { expr: string }[] }[] };
  return [...fromDashboard, ...doc.groups.flatMap((g) => g.rules.map((r) => r.expr))];
}

const POLICY = {
  roles: { app: { keys: [{ prefix: '/app/', access: 'readwrite' }] } },
  bindings: [{ match: { cn: 'tenant-a' }, roles: ['app'] }],
};

// Backups configured but not scheduled: their metrics (the max age included) are exported, no run is made.
const stack = useGatewayStack({ policy: POLICY, overrides: { backup: { enabled: false, destinations: [{ directory: tmpdir() }] } } });

describe('metrics of a live etcdgate', () => {
  it('counts real traffic and serves every metric the dashboard and alerts query', async () => {
    const client = rawClient(stack.gate.endpoint, stack.pki, 'tenant-a');
    const stream = rawWatch(client);
    try {
      for (let i = 0; i < 3; i += 1) {
        await callEtcd(client, 'KV', 'Put', ['PutRequest', { key: Buffer.from(`/app/${i}`), value: Buffer.from('v') }], 'PutResponse');
      }
      await expect(callEtcd(client, 'KV', 'Put', ['PutRequest', { key: Buffer.from('/other'), value: Buffer.from('v') }], 'PutResponse')).rejects.toMatchObject({ code: 7 });
      const created = collectWatch(stream, (rs) => rs.some((r) => r['created'] === true));
      stream.write(encode('etcdserverpb.WatchRequest', { create_request: { key: Buffer.from('/app/'), range_end: Buffer.from('/app0') } }));
      await created;

      const page = await (await fetch(`${stack.gate.adminUrl}/metrics`)).text();
      const exposition = parseExposition(page);
      expect(sampleValue(exposition, 'etcdgate_requests_total', { method: 'Put', decision: 'allow', code: 'OK' })).toBe(3);
      expect(sampleValue(exposition, 'etcdgate_requests_total', { method: 'Put', decision: 'deny', code: 'PERMISSION_DENIED' })).toBe(1);
      expect(sampleValue(exposition, 'etcdgate_denials_total', { binding: 'bindings[0]', role: 'none', reason: 'not_granted' })).toBe(1);
      expect(sampleValue(exposition, 'etcdgate_watchers', {})).toBe(1);
      expect(sampleValue(exposition, 'etcdgate_client_connections', {})).toBe(1);
      expect(sampleValue(exposition, 'etcdgate_upstream_up', { endpoint: stack.etcd.endpoints[0]! })).toBe(1);
      expect(sampleValue(exposition, 'etcdgate_certificate_not_after_seconds', { role: 'server', subject: 'etcdgate-server' })).toBeGreaterThan(Date.now() / 1000);

      const exposed = exposedNames(exposition);
      const missing = queriedExpressions()
        .flatMap((expr) => metricNamesInPromQL(expr))
        .map((name) => familyName(name))
        .filter((name) => name !== 'up' && !exposed.has(name));
      expect([...new Set(missing)]).toEqual([]);

      const lint = await promtoolCheckMetrics(page);
      expect(lint).toEqual({ code: 0, output: '' });
    } finally {
      stream.cancel();
      client.close();
    }
  });
});
