/**
 * Denials on a live etcdgate are labelled by what matched, so an operator can tell who
 * over-reaches: the first binding the caller matched (its `name`, else its path, `none`
 * without one), the role whose deny rule refused (`none` when nothing granted it) and
 * the reason. Each labelled series is checked against a caller that is allowed the same
 * kind of request. etcdctl's `endpoint health` from a certificate that may not read the
 * key `health` is still refused and audited, but counted apart as a denied probe, so it
 * does not raise the denial rate; etcdctl itself reports the endpoint healthy.
 */
import type * as grpc from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { etcdctl } from './support/etcdctl.js';
import { findSamples, parseExposition, sampleValue, type Exposition } from './support/prometheus-text.js';
import { callEtcd, rawClient } from './support/raw-client.js';
import { useGatewayStack } from './support/stack.js';

const POLICY = {
  roles: {
    tenant: {
      keys: [{ prefix: '/tenants/{cn}/', access: 'readwrite' }],
      deny: [{ prefix: '/tenants/{cn}/sealed/' }],
    },
    auditor: { keys: [{ prefix: '/tenants/', access: 'read' }] },
    ops: { capabilities: ['status'] },
  },
  bindings: [
    { name: 'tenants', match: { cn: 'tenant-*' }, roles: ['tenant'] },
    { match: { cn: 'auditor' }, roles: ['auditor'] },
    { name: 'operators', match: { cn: 'root' }, roles: ['ops'] },
  ],
};

const stack = useGatewayStack({ policy: POLICY });
const clients = new Map<string, grpc.Client>();

function client(name: string): grpc.Client {
  let c = clients.get(name);
  if (c === undefined) {
    c = rawClient(stack.gate.endpoint, stack.pki, name);
    clients.set(name, c);
  }
  return c;
}

afterAll(() => {
  for (const c of clients.values()) c.close();
});

async function metrics(): Promise<Exposition> {
  return parseExposition(await (await fetch(`${stack.gate.adminUrl}/metrics`)).text());
}

const range = (caller: string, key: string, rangeEnd?: string): Promise<Record<string, unknown>> =>
  callEtcd(client(caller), 'KV', 'Range', ['RangeRequest', { key: Buffer.from(key), ...(rangeEnd === undefined ? {} : { range_end: Buffer.from(rangeEnd) }) }], 'RangeResponse');
const status = (caller: string): Promise<Record<string, unknown>> => callEtcd(client(caller), 'Maintenance', 'Status', ['StatusRequest', {}], 'StatusResponse');

describe('denials by binding, role and reason', () => {
  it('labels each denial with the caller’s binding, the refusing role and the reason', async () => {
    // Allowed counterparts first: each denied kind of request is fine for someone.
    await range('tenant-a', '/tenants/tenant-a/x');
    await range('auditor', '/tenants/', '/tenants0');
    await status('root');

    await expect(range('tenant-a', '/tenants/tenant-b/x')).rejects.toMatchObject({ code: 7 });
    await expect(range('tenant-a', '/tenants/tenant-a/sealed/k')).rejects.toMatchObject({ code: 7 });
    // Runs from its own prefix into tenant-b's (and stays clear of its sealed keys).
    await expect(range('tenant-a', '/tenants/tenant-a/x', '/tenants/tenant-b/')).rejects.toMatchObject({ code: 7 });
    await expect(status('auditor')).rejects.toMatchObject({ code: 7 });
    await expect(range('nobody', '/tenants/tenant-a/x')).rejects.toMatchObject({ code: 7 });

    const exposition = await metrics();
    const series = findSamples(exposition, 'etcdgate_denials_total').map((s) => ({ ...s.labels, value: s.value }));
    expect(series).toEqual(
      expect.arrayContaining([
        { binding: 'tenants', role: 'none', reason: 'not_granted', value: 1 },
        { binding: 'tenants', role: 'tenant', reason: 'denied_by_rule', value: 1 },
        { binding: 'tenants', role: 'none', reason: 'not_covered', value: 1 },
        { binding: 'bindings[1]', role: 'none', reason: 'capability_not_granted', value: 1 },
        { binding: 'none', role: 'none', reason: 'no_binding', value: 1 },
      ]),
    );
    expect(series).toHaveLength(5);
    // The allowed callers left no denial behind.
    expect(series.some((s) => (s as Record<string, unknown>)['binding'] === 'operators')).toBe(false);
  });

  it('counts etcdctl endpoint health from a certificate without read on `health` as a probe, not a denial', async () => {
    const before = await metrics();
    const denialsBefore = findSamples(before, 'etcdgate_denials_total').reduce((sum, s) => sum + s.value, 0);
    const probesBefore = sampleValue(before, 'etcdgate_denied_health_probes_total');
    const tenant = stack.pki.client('tenant-a');
    const health = await etcdctl(['endpoint', 'health'], { endpoint: stack.gate.endpoint, cacert: stack.pki.ca, cert: tenant.cert, key: tenant.key });
    // etcdctl counts "permission denied" as healthy: the read went through etcd's consensus path.
    expect(health.code, health.stderr).toBe(0);
    expect(`${health.stdout}${health.stderr}`).toMatch(/is healthy/u);

    const after = await metrics();
    expect(sampleValue(after, 'etcdgate_denied_health_probes_total')).toBe(probesBefore + 1);
    expect(findSamples(after, 'etcdgate_denials_total').reduce((sum, s) => sum + s.value, 0)).toBe(denialsBefore);
    expect(sampleValue(after, 'etcdgate_requests_total', { method: 'Range', decision: 'deny', code: 'PERMISSION_DENIED' })).toBeGreaterThan(0);

    // Still refused and audited as the denial it is.
    const records = await stack.gate.auditRecords();
    const probe = records.find((r) => {
      const etcd = r['etcd'] as { request?: { key?: string } } | undefined;
      return etcd?.request?.key === 'health' && (r['user'] as { name?: string } | undefined)?.name === 'tenant-a';
    });
    expect(probe).toMatchObject({ event: { outcome: 'failure' }, etcd: { response: { code_name: 'PERMISSION_DENIED' } } });

    // Only the exact key `health` is the probe: a denied read of `/health` is a denial.
    await expect(range('tenant-a', '/health')).rejects.toMatchObject({ code: 7 });
    const last = await metrics();
    expect(sampleValue(last, 'etcdgate_denied_health_probes_total')).toBe(probesBefore + 1);
    expect(findSamples(last, 'etcdgate_denials_total').reduce((sum, s) => sum + s.value, 0)).toBe(denialsBefore + 1);
  });
});
