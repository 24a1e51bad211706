/**
 * Proves the file sink: every record lands as one JSON line in a file created with mode
 * 0600, appended to an existing file, and log rotation (rename + reopen()) loses and
 * duplicates nothing — every event.id is found exactly once across the two files. And
 * the file deleted or replaced under etcdgate: noticed by its identity (device, inode)
 * no longer matching the path, reopened, counted, reported not intact until it is, with
 * every record in a file that still exists.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createAuditor } from '../src/audit/auditor.js';
import type { AuditConfig } from '../src/config/types.js';
import type { AuditFileReopen, Metrics } from '../src/observability/metrics-types.js';
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

describe('the audit file deleted or replaced under etcdgate', () => {
  /** An auditor on `file` checking every 20 ms, and what it counted. */
  async function watched(file: string): Promise<{ auditor: Awaited<ReturnType<typeof createAuditor>>; reopens: AuditFileReopen[] }> {
    const reopens: AuditFileReopen[] = [];
    const metrics: Metrics = { ...NOOP_METRICS, auditFileReopened: (reason) => reopens.push(reason) };
    const auditor = await createAuditor(fileConfig(file), { metrics, version: '0.1.0', policyVersion: () => 'p1', fileCheckIntervalMs: 20 });
    return { auditor, reopens };
  }

  const idsIfAny = async (file: string): Promise<string[]> => (existsSync(file) ? readIds(file) : []);

  it('deleted: noticed, counted, reopened; the records written after it land in a new file', async () => {
    const file = path.join(dir, 'audit.jsonl');
    const { auditor, reopens } = await watched(file);
    for (let i = 0; i < 100; i += 1) auditor.record(callEvent());
    await auditor.flush();
    await unlink(file);
    // Records written now go to the deleted file until the next check: they must not be lost.
    const later: string[] = [];
    for (let i = 0; i < 50; i += 1) auditor.record(callEvent());
    await auditor.flush();
    await vi.waitFor(() => expect(reopens).toEqual(['deleted']), { timeout: 5000, interval: 20 });
    for (let i = 0; i < 50; i += 1) auditor.record(callEvent());
    await auditor.flush();
    later.push(...(await idsIfAny(file)));
    // Every record written after the deletion is in the new file, each once.
    expect(later.length).toBeGreaterThanOrEqual(100);
    expect(new Set(later).size).toBe(later.length);
    expect(auditor.sinkIntact).toBe(true);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    await auditor.close();
  });

  it('replaced by another file (renamed onto the path): counted as replaced, new records go to the file at the path, the old one keeps its own', async () => {
    const file = path.join(dir, 'audit.jsonl');
    const moved = path.join(dir, 'audit.jsonl.moved');
    const { auditor, reopens } = await watched(file);
    for (let i = 0; i < 30; i += 1) auditor.record(callEvent());
    await auditor.flush();
    await rename(file, moved);
    await writeFile(path.join(dir, 'other'), '');
    await rename(path.join(dir, 'other'), file);
    await vi.waitFor(() => expect(reopens).toEqual(['replaced']), { timeout: 5000, interval: 20 });
    for (let i = 0; i < 30; i += 1) auditor.record(callEvent());
    await auditor.close();
    const before = await readIds(moved);
    const after = await readIds(file);
    expect(before).toHaveLength(30);
    expect(after).toHaveLength(30);
    expect(new Set([...before, ...after]).size).toBe(60);
  });

  it('renamed away with nothing in its place (a rotation before its signal): left alone, nothing counted', async () => {
    const file = path.join(dir, 'audit.jsonl');
    const rotated = path.join(dir, 'audit.jsonl.1');
    const { auditor, reopens } = await watched(file);
    auditor.record(callEvent());
    await auditor.flush();
    await rename(file, rotated);
    auditor.record(callEvent());
    await auditor.flush();
    // Several checks pass: the renamed file is still written to, and nothing is created at the path.
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(reopens).toEqual([]);
    expect(existsSync(file)).toBe(false);
    expect(await readIds(rotated)).toHaveLength(2);
    expect(auditor.sinkIntact).toBe(true);
    await auditor.close();
  });

  it('while the path cannot be opened (a directory in its place): not intact, records kept, then all delivered once it can', async () => {
    const file = path.join(dir, 'audit.jsonl');
    const { auditor, reopens } = await watched(file);
    auditor.record(callEvent());
    await auditor.flush();
    await unlink(file);
    await mkdir(file);
    await vi.waitFor(() => expect(auditor.sinkIntact).toBe(false), { timeout: 5000, interval: 20 });
    // Something else (here a directory) now has the path: the file was replaced.
    expect(reopens).toEqual(['replaced']);
    for (let i = 0; i < 20; i += 1) auditor.record(callEvent());
    // Nothing can be written: the records wait in the queue.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(auditor.sinkIntact).toBe(false);
    await rm(file, { recursive: true });
    await vi.waitFor(() => expect(auditor.sinkIntact).toBe(true), { timeout: 5000, interval: 20 });
    await auditor.flush();
    const ids = await readIds(file);
    // The 20 waiting records, and the one only the deleted file held.
    expect(ids).toHaveLength(21);
    expect(new Set(ids).size).toBe(21);
    await auditor.close();
  });
});
