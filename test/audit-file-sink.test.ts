/**
 * Proves the file sink: every record lands as one JSON line in a file created with mode
 * 0600, appended to an existing file, and log rotation (rename + reopen()) loses and
 * duplicates nothing — every event.id is found exactly once across the two files.
 */
import { mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAuditor } from '../src/audit/auditor.js';
import type { AuditConfig } from '../src/config/types.js';
import type { Metrics } from '../src/observability/metrics-types.js';
import { NOOP_METRICS } from '../src/observability/metrics-types.js';
import { callEvent } from './support/audit-events.js';

let dir = '';

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'etcdgate-audit-file-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function fileConfig(file: string): AuditConfig {
  return {
    sink: { kind: 'file', path: file },
    onFailure: 'deny',
    level: { read: 'metadata', write: 'metadata', admin: 'metadata', auth: 'metadata' },
    bufferRecords: 100_000,
  };
}

async function readIds(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8');
  expect(text.endsWith('\n')).toBe(true);
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const record = JSON.parse(line) as { event: { id: string } };
      return record.event.id;
    });
}

describe('file sink', () => {
  it('writes one parseable line per record to a new file with mode 0600', async () => {
    const file = path.join(dir, 'logs', 'audit.jsonl');
    let written = 0;
    const metrics: Metrics = { ...NOOP_METRICS, auditWritten: () => (written += 1) };
    const auditor = await createAuditor(fileConfig(file), { metrics, version: '0.1.0', policyVersion: () => 'p1' });
    const n = 5000;
    for (let i = 0; i < n; i += 1) auditor.record(callEvent());
    await auditor.flush();
    const ids = await readIds(file);
    expect(ids).toHaveLength(n);
    expect(new Set(ids).size).toBe(n);
    expect(written).toBe(n);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    await auditor.close();
  });

  it('appends to an existing file', async () => {
    const file = path.join(dir, 'audit.jsonl');
    await writeFile(file, '{"earlier":true}\n', { mode: 0o600 });
    const auditor = await createAuditor(fileConfig(file), { metrics: NOOP_METRICS, version: '0.1.0', policyVersion: () => 'p1' });
    auditor.record(callEvent());
    await auditor.close();
    const lines = (await readFile(file, 'utf8')).split('\n').filter((line) => line !== '');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe('{"earlier":true}');
  });

  it('loses and duplicates nothing across rename + reopen()', async () => {
    const file = path.join(dir, 'audit.jsonl');
    const rotated = path.join(dir, 'audit.jsonl.1');
    const auditor = await createAuditor(fileConfig(file), { metrics: NOOP_METRICS, version: '0.1.0', policyVersion: () => 'p1' });
    const total = 6000;
    for (let i = 0; i < total; i += 1) {
      auditor.record(callEvent());
      // Rotate mid-stream, with writes still in flight, as logrotate would.
      if (i === 2500) {
        await rename(file, rotated);
        auditor.reopen();
      }
    }
    await auditor.flush();
    const before = await readIds(rotated);
    const after = await readIds(file);
    expect(after.length).toBeGreaterThan(0);
    const all = [...before, ...after];
    expect(all).toHaveLength(total);
    expect(new Set(all).size).toBe(total);
    expect((await stat(file)).mode & 0o777).toBe(0o600);

    // close() writes what was recorded just before it.
    auditor.record(callEvent());
    await auditor.close();
    expect((await readIds(rotated)).length + (await readIds(file)).length).toBe(total + 1);
  });
});
