/**
 * Helpers for backup tests: a `backup` config section over a temp directory, the
 * snapshot files and manifests a directory holds, and one metric read from a live
 * etcdgate's /metrics.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseManifest, type Manifest } from '../../src/backup/manifest.js';
import { parseExposition, sampleValue } from './prometheus-text.js';

/** Every file in `dir` (snapshots, manifests and anything a run may have left), sorted. */
export function filesIn(dir: string): string[] {
  return readdirSync(dir).sort();
}

/** The manifests in `dir`, oldest first. */
export function manifestsIn(dir: string): Manifest[] {
  return filesIn(dir)
    .filter((name) => name.endsWith('.json'))
    .map((name) => parseManifest(readFileSync(path.join(dir, name), 'utf8')));
}

/** A metric's value from etcdgate's admin endpoint (throws unless exactly one series matches). */
export async function metric(adminUrl: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  return sampleValue(parseExposition(text), name, labels);
}

/** Audit records of one kind. */
export function recordsOfKind(records: readonly Record<string, unknown>[], kind: string): Record<string, unknown>[] {
  return records.filter((r) => (r['etcdgate'] as { event_kind?: unknown } | undefined)?.event_kind === kind);
}

/** The `etcdgate.backup` object of a backup record. */
export function backupFields(record: Record<string, unknown>): Record<string, unknown> {
  return ((record['etcdgate'] as Record<string, unknown> | undefined)?.['backup'] ?? {}) as Record<string, unknown>;
}
