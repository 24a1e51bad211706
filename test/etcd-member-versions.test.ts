/**
 * etcdgate exports every etcd member's version (Maintenance.Status, asked of each
 * configured endpoint) and whether it is below the minimum of its release line. The
 * judgement is unit-tested on the default minimums (the first releases with all of
 * etcd's 2026 RBAC fixes); against the real etcd here (Debian's 3.4.23) the default
 * flags the member, and a configured minimum it meets does not. An endpoint that does
 * not answer gets no version series rather than a made-up one.
 */
import { afterAll, describe, expect, it, vi } from 'vitest';
import { DEFAULT_MINIMUM_VERSIONS, compareVersions, judgeVersion, parseEtcdVersion, type EtcdVersion } from '../src/health/etcd-version.js';
import type { TestGateway } from './support/gateway.js';
import { freePort } from './support/ports.js';
import { findSamples, parseExposition } from './support/prometheus-text.js';
import { useGatewayStack } from './support/stack.js';

const defaults = DEFAULT_MINIMUM_VERSIONS.map((v) => parseEtcdVersion(v)).filter((v): v is EtcdVersion => v !== undefined);

describe('judging a version against the minimums of its line', () => {
  it.each([
    ['3.4.23', true, '3.5.33'],
    ['3.4.45', true, '3.5.33'],
    ['3.5.30', true, '3.5.33'],
    ['3.5.33', false, '3.5.33'],
    ['3.5.40', false, '3.5.33'],
    ['3.6.11', true, '3.6.14'],
    ['v3.6.14', false, '3.6.14'],
    ['3.7.0', true, '3.7.1'],
    ['3.7.1-rc.0', true, '3.7.1'],
    ['3.7.1', false, '3.7.1'],
    ['3.8.0', false, ''],
    ['4.0.0', false, ''],
    ['not a version', true, '3.5.33'],
  ])('%s: below %s (minimum %s)', (version, below, minimum) => {
    expect(judgeVersion(version, defaults)).toEqual({ below, minimum });
  });

  it('orders pre-releases before their release', () => {
    const [rc, release] = ['3.7.0-rc.0', '3.7.0'].map((v) => parseEtcdVersion(v));
    if (rc === undefined || release === undefined) throw new Error('parse');
    expect(compareVersions(rc, release)).toBe(-1);
    expect(compareVersions(release, rc)).toBe(1);
  });
});

const stack = useGatewayStack({ gateway: false });
const gates: TestGateway[] = [];

afterAll(async () => {
  await Promise.all(gates.map((g) => g.stop()));
});

async function memberSeries(gate: TestGateway): Promise<{ info: Record<string, string>[]; below: [Record<string, string>, number][] }> {
  const exposition = parseExposition(await (await fetch(`${gate.adminUrl}/metrics`)).text());
  return {
    info: findSamples(exposition, 'etcdgate_etcd_member_info').map((s) => s.labels),
    below: findSamples(exposition, 'etcdgate_etcd_member_below_minimum_version').map((s) => [s.labels, s.value]),
  };
}

describe('member versions of a live etcd', () => {
  it('flags etcd 3.4.23 under the default minimums, and not under a minimum it meets', async () => {
    const endpoint = stack.etcd.endpoints[0] ?? '';
    // A second endpoint where nothing listens: it must simply have no version series.
    const dead = `https://127.0.0.1:${await freePort()}`;
    const byDefault = await stack.startGateway({ upstream: [endpoint, dead] });
    gates.push(byDefault);
    const series = await vi.waitFor(async () => {
      const found = await memberSeries(byDefault);
      if (found.info.length === 0) throw new Error('no member reported yet');
      return found;
    }, { timeout: 15_000, interval: 200 });
    expect(series.info).toEqual([{ endpoint, member_id: expect.stringMatching(/^[0-9a-f]+$/u) as unknown as string, version: '3.4.23' }]);
    expect(series.below).toEqual([[{ endpoint, version: '3.4.23', minimum: '3.5.33' }, 1]]);

    const accepting = await stack.startGateway({ overrides: { upstream: { versionCheck: { minimumVersions: ['3.4.23', '3.5.33'] } } } });
    gates.push(accepting);
    const met = await vi.waitFor(async () => {
      const found = await memberSeries(accepting);
      if (found.below.length === 0) throw new Error('no member reported yet');
      return found;
    }, { timeout: 15_000, interval: 200 });
    expect(met.below).toEqual([[{ endpoint, version: '3.4.23', minimum: '3.4.23' }, 0]]);
  }, 60_000);
});
