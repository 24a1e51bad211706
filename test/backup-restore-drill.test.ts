/**
 * The restore drill (issue 15, item 9): keys with known values are written through
 * etcdgate, a backup is taken by the cron schedule, restored with etcd's own tool
 * (`etcdctl snapshot restore`) into a new data directory, an etcd member is started on
 * it, and every key reads back equal, at a revision no lower than the manifest's. The
 * run is one audit record and shows in the metrics.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { etcd3Client } from './support/etcd3-client.js';
import { etcdctl } from './support/etcdctl.js';
import { startRestoredEtcd } from './support/etcd.js';
import type { TestGateway } from './support/gateway.js';
import { backupFields, filesIn, manifestsIn, metric, recordsOfKind } from './support/backup.js';
import { useGatewayStack } from './support/stack.js';

const stack = useGatewayStack({ gateway: false });
let dir: string;
let gate: TestGateway;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'etcdgate-drill-'));
  gate = await stack.startGateway({
    // Every 2 seconds, by croner (6 fields: seconds first).
    overrides: { backup: { schedule: { cron: '*/2 * * * * *' }, destinations: [{ directory: dir, name: 'local' }], retention: { keepLast: 50 } } },
  });
});

afterAll(async () => {
  await gate?.stop();
  await rm(dir, { recursive: true, force: true });
});

it('restores a scheduled backup with etcdctl snapshot restore and reads every key back', async () => {
  const client = etcd3Client(gate.endpoint, stack.pki, 'root');
  const written = new Map<string, string>();
  let revision = 0;
  try {
    for (let i = 0; i < 50; i += 1) {
      const value = `value-${i}-${'x'.repeat(i)}`;
      const put = await client.put(`/drill/key-${String(i).padStart(2, '0')}`).value(value);
      written.set(`/drill/key-${String(i).padStart(2, '0')}`, value);
      revision = Number(put.header.revision);
    }
  } finally {
    client.close();
  }

  // A scheduled run that started after the last write.
  const manifest = await vi.waitFor(
    () => {
      const found = manifestsIn(dir).find((m) => Number(m.etcd.revision) >= revision);
      if (found === undefined) throw new Error('no backup of the written keys yet');
      return found;
    },
    { timeout: 20_000, interval: 200 },
  );
  expect(manifest).toMatchObject({ trigger: 'schedule', etcd: { version: expect.stringMatching(/^3\.4\./u), endpoint: stack.etcd.endpoints[0] } });
  expect(manifest.etcd.memberId).toMatch(/^[0-9a-f]{16}$/u);
  expect(filesIn(dir)).toContain(manifest.file);
  expect(filesIn(dir).filter((name) => name.includes('.partial'))).toEqual([]);

  const restored = await startRestoredEtcd(stack.pki, path.join(dir, manifest.file));
  try {
    const root = { endpoint: restored.endpoints[0]!, cacert: stack.pki.ca, ...stack.pki.client('root') };
    const got = await etcdctl(['get', '/drill/', '--prefix', '-w', 'json'], root);
    expect(got.code, got.stderr).toBe(0);
    const answer = JSON.parse(got.stdout) as { header: { revision: number }; kvs?: { key: string; value: string }[] };
    const read = new Map((answer.kvs ?? []).map((kv) => [Buffer.from(kv.key, 'base64').toString(), Buffer.from(kv.value, 'base64').toString()]));
    expect(read).toEqual(written);
    expect(answer.header.revision).toBeGreaterThanOrEqual(Number(manifest.etcd.revision));
  } finally {
    await restored.stop();
  }

  // One audit record per run, and the last-success metrics describe a stored backup.
  const runs = recordsOfKind(await gate.auditRecords(), 'backup.run');
  const thisRun = runs.filter((r) => (r['file'] as { name?: string } | undefined)?.name === manifest.file);
  expect(thisRun).toHaveLength(1);
  expect(thisRun[0]?.['event']).toMatchObject({ outcome: 'success', action: 'etcdgate.backup.run' });
  expect(backupFields(thisRun[0]!)).toMatchObject({ trigger: 'schedule', destinations: ['local'], size_bytes: manifest.sizeBytes, sha256: manifest.sha256, encrypted: false });
  expect(await metric(gate.adminUrl, 'etcdgate_backup_last_success_timestamp_seconds')).toBeGreaterThanOrEqual(Date.parse(manifest.createdAt) / 1000);
  expect(await metric(gate.adminUrl, 'etcdgate_backup_runs_total', { result: 'success' })).toBeGreaterThanOrEqual(1);
  expect(await metric(gate.adminUrl, 'etcdgate_backup_max_age_seconds')).toBe(4);
}, 90_000);
