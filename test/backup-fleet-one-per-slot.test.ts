/**
 * One backup per fleet (issue 15, item 6): two etcdgate instances share one etcd and
 * the same schedule (every second). Each scheduled slot is taken by exactly one of
 * them: no slot appears in both instances' backups, every slot taken has its claim
 * key in etcd, and both instances really contended (each saw slots taken by the other).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { etcdctl } from './support/etcdctl.js';
import type { TestGateway } from './support/gateway.js';
import { backupFields, manifestsIn, metric, recordsOfKind } from './support/backup.js';
import { useGatewayStack } from './support/stack.js';

const stack = useGatewayStack({ gateway: false });
const dirs: string[] = [];
const gates: TestGateway[] = [];

beforeAll(async () => {
  for (const name of ['a', 'b']) {
    const dir = await mkdtemp(path.join(tmpdir(), `etcdgate-fleet-${name}-`));
    dirs.push(dir);
    gates.push(await stack.startGateway({ overrides: { backup: { schedule: { intervalSeconds: 1 }, destinations: [{ directory: dir, name }], retention: { keepLast: 1000 } } } }));
  }
}, 60_000);

afterAll(async () => {
  await Promise.all(gates.map((gate) => gate.stop()));
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

it('takes each scheduled slot exactly once across two instances', async () => {
  const contended = async (gate: TestGateway): Promise<number> => metric(gate.adminUrl, 'etcdgate_backup_runs_total', { result: 'other_instance' });
  await vi.waitFor(
    async () => {
      const taken = dirs.reduce((sum, dir) => sum + manifestsIn(dir).length, 0);
      expect(taken).toBeGreaterThanOrEqual(8);
      // Both must have lost at least one race, or the test proves nothing about contention.
      expect(await contended(gates[0]!)).toBeGreaterThan(0);
      expect(await contended(gates[1]!)).toBeGreaterThan(0);
    },
    { timeout: 40_000, interval: 500 },
  );
  await Promise.all(gates.map((gate) => gate.gateway.backup?.stop()));

  const slotsOf = async (gate: TestGateway): Promise<string[]> =>
    recordsOfKind(await gate.auditRecords(), 'backup.run')
      .filter((r) => (r['event'] as { outcome?: string }).outcome === 'success')
      .map((r) => String(backupFields(r)['slot']));
  const a = await slotsOf(gates[0]!);
  const b = await slotsOf(gates[1]!);
  expect(a.length + b.length).toBeGreaterThanOrEqual(8);
  const all = [...a, ...b];
  expect(new Set(all).size).toBe(all.length);
  // Slots are whole seconds, as the schedule says, and each has its claim in etcd.
  for (const slot of all) expect(slot).toMatch(/T\d\d:\d\d:\d\d\.000Z$/u);
  const claims = await etcdctl(['get', '/.etcdgate/backup/slots/', '--prefix', '--keys-only'], { endpoint: stack.etcd.endpoints[0]!, cacert: stack.pki.ca, ...stack.pki.client('root') });
  const claimed = new Set(claims.stdout.split('\n').filter(Boolean).map((k) => k.slice('/.etcdgate/backup/slots/'.length)));
  for (const slot of all) expect(claimed.has(slot), slot).toBe(true);
  // The files agree with the records: one backup per slot taken, in the taker's directory.
  expect(manifestsIn(dirs[0]!).length + manifestsIn(dirs[1]!).length).toBe(all.length);
}, 90_000);
