/**
 * /readyz follows whether etcd can serve linearizable requests, not only whether a
 * connection is up: a 1-member etcd that gets a second member added which never starts
 * has lost quorum (no leader can be kept), while etcdgate's connection to it stays up.
 * /readyz turns 503 with `linearizable: false` (and `upstream: true`), the
 * etcdgate_upstream_serving gauge drops to 0, and both come back once the new member is
 * started and the cluster has its quorum again. The check interval is shortened for the
 * test (upstream.healthCheck); the waits are bounds, not timing goals.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { PlannedMember } from './support/etcd.js';
import { etcdctl } from './support/etcdctl.js';
import type { TestGateway } from './support/gateway.js';
import { parseExposition, sampleValue } from './support/prometheus-text.js';
import { useGatewayStack } from './support/stack.js';

const stack = useGatewayStack({ gateway: false });
let gate: TestGateway;
let joining: PlannedMember | undefined;

interface Readyz {
  readonly status: number;
  readonly checks: Record<string, boolean>;
}

async function readyz(): Promise<Readyz> {
  const response = await fetch(`${gate.adminUrl}/readyz`);
  const body = (await response.json()) as { checks: Record<string, boolean> };
  return { status: response.status, checks: body.checks };
}

async function serving(): Promise<number> {
  return sampleValue(parseExposition(await (await fetch(`${gate.adminUrl}/metrics`)).text()), 'etcdgate_upstream_serving');
}

/** etcdctl straight to etcd, as etcdgate's upstream identity (etcd auth is off). */
function etcdctlDirect(args: string[]): ReturnType<typeof etcdctl> {
  const endpoint = stack.etcd.endpoints[0] ?? '';
  return etcdctl(args, { endpoint, cacert: stack.pki.ca, cert: stack.pki.upstreamClient.cert, key: stack.pki.upstreamClient.key, timeoutMs: 10_000 });
}

beforeAll(async () => {
  gate = await stack.startGateway({ overrides: { upstream: { healthCheck: { intervalMs: 500, timeoutMs: 400 } } } });
}, 60_000);

afterAll(async () => {
  await gate?.stop();
});

describe('readiness and quorum', () => {
  it('turns /readyz 503 when etcd loses quorum with its connection up, and 200 when quorum returns', async () => {
    await vi.waitFor(async () => expect(await readyz()).toMatchObject({ status: 200, checks: { linearizable: true, upstream: true } }), { timeout: 15_000, interval: 200 });
    expect(await serving()).toBe(1);

    joining = await stack.etcd.planMember();
    const added = await etcdctlDirect(['member', 'add', joining.name, `--peer-urls=${joining.peerUrl}`]);
    expect(added.code, added.stderr).toBe(0);

    // Two voters, one running: no quorum. The TCP/TLS connection to the old member stays up.
    await vi.waitFor(async () => expect(await readyz()).toMatchObject({ status: 503, checks: { linearizable: false, upstream: true } }), { timeout: 20_000, interval: 200 });
    expect(await serving()).toBe(0);
    const health = await etcdctlDirect(['endpoint', 'health']);
    expect(health.code).not.toBe(0);

    await joining.start();
    await vi.waitFor(async () => expect(await readyz()).toMatchObject({ status: 200, checks: { linearizable: true } }), { timeout: 30_000, interval: 200 });
    expect(await serving()).toBe(1);
  }, 90_000);
});
