/**
 * etcd down during a backup (issue 15, item 9): whether etcd is gone before the run or
 * dies in the middle of the snapshot stream, the run fails with reason
 * etcd_unavailable (counted, audited), leaves no partial file and no manifest, and the
 * next run, once etcd is back, succeeds.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { etcd3Client } from './support/etcd3-client.js';
import type { TestGateway } from './support/gateway.js';
import { filesIn, metric, recordsOfKind } from './support/backup.js';
import { useGatewayStack } from './support/stack.js';

const stack = useGatewayStack({ gateway: false });
let dir: string;
let gate: TestGateway;

const failures = (): Promise<number> => metric(gate.adminUrl, 'etcdgate_backup_failures_total', { reason: 'etcd_unavailable' });

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'etcdgate-down-'));
  // A database of ~60 MiB, so the snapshot stream lasts long enough to be cut.
  const direct = etcd3Client(stack.etcd.endpoints[0]!, stack.pki, 'root');
  try {
    const value = Buffer.alloc(1024 * 1024, 'd');
    for (let i = 0; i < 60; i += 1) await direct.put(`/bulk/${i}`).value(value);
  } finally {
    direct.close();
  }
  gate = await stack.startGateway({ overrides: { backup: { enabled: false, destinations: [{ directory: dir }], timeoutSeconds: 60 } } });
}, 60_000);

afterAll(async () => {
  await gate?.stop();
  await rm(dir, { recursive: true, force: true });
});

it('fails cleanly when etcd dies in the middle of the snapshot, and the next run succeeds', async () => {
  const member = stack.etcd.members[0]!;
  const before = await failures();
  let killed: Promise<void> | undefined;
  const outcome = await gate.gateway.backup!.runNow({
    // The first bytes have arrived (and been written): now etcd crashes.
    onProgress: () => {
      killed ??= member.kill();
    },
  });
  await killed;
  expect(killed).toBeDefined();
  expect(outcome).toMatchObject({ outcome: 'failure', reason: 'etcd_unavailable' });
  expect(filesIn(dir)).toEqual([]);
  expect(await failures()).toBe(before + 1);

  await member.start();
  const next = await gate.gateway.backup!.runNow();
  expect(next.outcome).toBe('success');
  expect(filesIn(dir).length).toBe(2);
}, 90_000);

it('fails cleanly when etcd is down before the run, and the next run succeeds', async () => {
  const member = stack.etcd.members[0]!;
  const files = filesIn(dir);
  const before = await failures();
  await member.stop();
  const outcome = await gate.gateway.backup!.runNow();
  expect(outcome).toMatchObject({ outcome: 'failure', reason: 'etcd_unavailable' });
  expect(filesIn(dir)).toEqual(files);
  expect(await failures()).toBe(before + 1);
  const failed = recordsOfKind(await gate.auditRecords(), 'backup.run').filter((r) => (r['event'] as { outcome: string }).outcome === 'failure');
  expect(failed.length).toBe(2);
  for (const record of failed) expect(record['event']).toMatchObject({ reason: 'etcd_unavailable' });

  await member.start();
  expect((await gate.gateway.backup!.runNow()).outcome).toBe('success');
  expect(filesIn(dir).length).toBe(files.length + 2);
  expect(await metric(gate.adminUrl, 'etcdgate_backup_last_success_timestamp_seconds')).toBeGreaterThan(await metric(gate.adminUrl, 'etcdgate_backup_last_failure_timestamp_seconds'));
}, 90_000);
