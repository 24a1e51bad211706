/**
 * Retention on disk (issue 15, item 9): with keepLast 3, five runs leave exactly the
 * three newest snapshots and their manifests in the directory, nothing else (no
 * temporary files), and each of the two deletions is an audit record.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { TestGateway } from './support/gateway.js';
import { filesIn, recordsOfKind } from './support/backup.js';
import { useGatewayStack } from './support/stack.js';

const stack = useGatewayStack({ gateway: false });
const KEEP = 3;
let dir: string;
let gate: TestGateway;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'etcdgate-retention-'));
  gate = await stack.startGateway({ overrides: { backup: { enabled: false, destinations: [{ directory: dir, name: 'local' }], retention: { keepLast: KEEP } } } });
});

afterAll(async () => {
  await gate?.stop();
  await rm(dir, { recursive: true, force: true });
});

it(`leaves exactly the ${KEEP} newest backups after ${KEEP + 2} runs`, async () => {
  const files: string[] = [];
  for (let i = 0; i < KEEP + 2; i += 1) {
    const outcome = await gate.gateway.backup!.runNow();
    if (outcome.outcome !== 'success') throw new Error(`run ${i} failed: ${outcome.message}`);
    files.push(outcome.manifest.file);
    // Retention runs after each stored and verified backup: never more than KEEP remain.
    expect(filesIn(dir).length).toBe(2 * Math.min(i + 1, KEEP));
  }
  const kept = files.slice(-KEEP);
  expect(filesIn(dir)).toEqual(kept.flatMap((file) => [file, `${file}.json`]).sort());

  const deletions = recordsOfKind(await gate.auditRecords(), 'backup.delete');
  expect(deletions.map((r) => (r['file'] as { name: string }).name)).toEqual(files.slice(0, 2));
  for (const record of deletions) expect(record['event']).toMatchObject({ action: 'etcdgate.backup.delete', outcome: 'success', type: ['deletion'] });
}, 60_000);
