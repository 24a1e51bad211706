/**
 * One backup run, start to end:
 *
 * 1. Maintenance.Status from the member etcdgate's calls go to (revision, version, ID);
 * 2. Maintenance.Snapshot streamed to a temporary dot-file in the staging directory,
 *    encrypted on the way when recipients are configured, counted and hashed as it is
 *    written; etcd's own trailing SHA-256 checked at the end; the file fsynced;
 * 3. the file and its manifest stored in every destination, each stored file read back
 *    and hashed again (verified) before it counts;
 * 4. only then retention, per destination that verified, each deletion audited.
 *
 * A run that fails at any step leaves no partial file and no manifest (in any
 * destination), and is reported with a bounded reason. The outcome is a value; the run
 * never throws. Metrics and the audit record (one per run) are written here.
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { BackupAuditEvent } from '../audit/backup-record.js';
import type { BackupConfig } from '../config/types.js';
import type { Logger } from '../observability/logger.js';
import type { BackupFailure, Metrics } from '../observability/metrics-types.js';
import type { UpstreamCalls } from '../upstream/calls.js';
import type { Destination } from './destination.js';
import { partialName } from './directory-destination.js';
import { encryptChunks } from './encryption.js';
import { memberStatus, SnapshotDigestError, snapshotChunks, type MemberStatus } from './etcd-calls.js';
import { MANIFEST_FORMAT, snapshotFileName, type BackupTrigger, type Manifest } from './manifest.js';
import { expiredBackups } from './retention.js';

/** Everything a run needs; built once by ./service.ts (or the CLI). */
export interface BackupDeps {
  readonly config: BackupConfig;
  readonly upstream: UpstreamCalls;
  /** URL of the endpoint etcdgate's calls go to now (for the manifest). */
  readonly endpoint: () => string;
  readonly destinations: readonly Destination[];
  readonly metrics: Metrics;
  readonly audit: (event: BackupAuditEvent) => void;
  readonly logger: Logger;
  readonly now: () => Date;
  readonly version: string;
}

export interface RunOptions {
  readonly trigger: BackupTrigger;
  /** The scheduled time, for scheduled runs. */
  readonly slot?: Date;
  /** Called as snapshot bytes arrive from etcd (total so far). */
  readonly onProgress?: (bytes: number) => void;
  /** Aborts the run (etcdgate stopping). */
  readonly signal?: AbortSignal;
}

export type RunOutcome =
  | { readonly outcome: 'success'; readonly manifest: Manifest; readonly destinations: readonly string[]; readonly deleted: readonly string[]; readonly seconds: number }
  | { readonly outcome: 'failure'; readonly reason: BackupFailure; readonly message: string; readonly seconds: number };

/** A failure with its metric reason. */
class RunFailure extends Error {
  constructor(
    readonly reason: BackupFailure,
    message: string,
  ) {
    super(message);
  }
}

function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === 'object' && error !== null && 'details' in error && typeof error.details === 'string') return error.details;
  return String(error);
}

/** An upstream call's failure (a Status-shaped error) becomes "etcd unavailable". */
function fromUpstream(error: unknown, what: string): RunFailure {
  if (error instanceof RunFailure) return error;
  if (error instanceof SnapshotDigestError) return new RunFailure('snapshot_checksum', error.message);
  const details = messageOf(error);
  return new RunFailure('etcd_unavailable', `${what}: ${details === '' ? 'etcd did not answer' : details}`);
}

/** SHA-256 and size of a stored file, read back from its destination. */
async function hashStored(destination: Destination, file: string, signal: AbortSignal): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of destination.read(file, signal)) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { sha256: hash.digest('hex'), size };
}

/** The instance description kept with fleet claims and in logs. */
export function instanceName(): string {
  return `${hostname()}/${process.pid}`;
}

/** Takes one backup; see the module comment. Never throws. */
export async function runBackup(deps: BackupDeps, options: RunOptions): Promise<RunOutcome> {
  const { config, logger, metrics } = deps;
  const start = deps.now();
  const timeout = AbortSignal.timeout(config.timeoutSeconds * 1000);
  const signal = options.signal === undefined ? timeout : AbortSignal.any([timeout, options.signal]);
  const deadline = start.getTime() + config.timeoutSeconds * 1000;
  const remainingMs = (): number => Math.max(1, deadline - Date.now());
  const file = snapshotFileName(start, config.encryption !== undefined);
  const staged = path.join(config.stagingDir, partialName(file));
  const stored: Destination[] = [];
  let status: MemberStatus | undefined;
  let manifest: Manifest | undefined;
  logger.info({ trigger: options.trigger, slot: options.slot?.toISOString(), file }, 'backup started');
  try {
    try {
      status = await memberStatus(deps.upstream, Math.min(remainingMs(), 30_000));
    } catch (error: unknown) {
      throw fromUpstream(error, 'Status');
    }
    const endpoint = deps.endpoint();
    const taken = await writeSnapshot(deps, staged, signal, remainingMs(), options.onProgress);
    manifest = {
      format: MANIFEST_FORMAT,
      file,
      startedAt: start.toISOString(),
      createdAt: deps.now().toISOString(),
      trigger: options.trigger,
      etcd: { revision: status.revision, version: status.version, memberId: status.memberId, endpoint },
      sizeBytes: taken.sizeBytes,
      sha256: taken.sha256,
      snapshotBytes: taken.snapshotBytes,
      ...(config.encryption === undefined ? {} : { encryption: { format: 'age', recipients: [...config.encryption.recipients] } }),
      etcdgateVersion: deps.version,
    };
    // A destination that can take the staged file by rename goes last, when nothing else needs it.
    const ordered = [...deps.destinations].sort((a, b) => Number(a.canMove(staged)) - Number(b.canMove(staged)));
    for (const [i, destination] of ordered.entries()) {
      try {
        await destination.store(staged, manifest, { mayMove: i === ordered.length - 1, signal });
      } catch (error: unknown) {
        await destination.discard(file);
        throw new RunFailure(signal.aborted ? 'timeout' : 'destination', `${destination.name}: ${messageOf(error)}`);
      }
      stored.push(destination);
      let readBack: { sha256: string; size: number };
      try {
        readBack = await hashStored(destination, file, signal);
      } catch (error: unknown) {
        throw new RunFailure(signal.aborted ? 'timeout' : 'verification', `${destination.name}: reading the stored file back failed: ${messageOf(error)}`);
      }
      if (readBack.sha256 !== manifest.sha256 || readBack.size !== manifest.sizeBytes) {
        throw new RunFailure('verification', `${destination.name}: the stored file differs from what was written`);
      }
    }
  } catch (error: unknown) {
    // Nothing of a failed run stays: not the staged file, not a copy in any destination.
    await rm(staged, { force: true }).catch(() => undefined);
    await Promise.all(stored.map((destination) => destination.discard(file)));
    const failure = error instanceof RunFailure ? error : signal.aborted ? new RunFailure('timeout', `run aborted: ${messageOf(error)}`) : fromUpstream(error, 'Snapshot');
    const end = deps.now();
    const seconds = (end.getTime() - start.getTime()) / 1000;
    metrics.backupFailed(failure.reason, end);
    metrics.backupRun('failure');
    deps.audit({
      kind: 'backup.run',
      start,
      end,
      outcome: 'failure',
      reason: failure.reason,
      message: failure.message,
      trigger: options.trigger,
      ...(options.slot === undefined ? {} : { slot: options.slot }),
      destinations: deps.destinations.map((d) => d.name),
      file,
      ...(status === undefined ? {} : { etcd: { ...status, endpoint: deps.endpoint() } }),
    });
    logger.error({ reason: failure.reason, error: failure.message, file }, 'backup failed; nothing of it was kept');
    return { outcome: 'failure', reason: failure.reason, message: failure.message, seconds };
  }
  await rm(staged, { force: true }).catch(() => undefined);

  const end = deps.now();
  const seconds = (end.getTime() - start.getTime()) / 1000;
  metrics.backupSucceeded({ finishedAt: end, sizeBytes: manifest.sizeBytes, seconds, revision: manifest.etcd.revision });
  metrics.backupRun('success');
  deps.audit({
    kind: 'backup.run',
    start,
    end,
    outcome: 'success',
    trigger: options.trigger,
    ...(options.slot === undefined ? {} : { slot: options.slot }),
    destinations: stored.map((d) => d.name),
    file,
    sizeBytes: manifest.sizeBytes,
    sha256: manifest.sha256,
    encrypted: manifest.encryption !== undefined,
    etcd: manifest.etcd,
  });
  logger.info({ file, sizeBytes: manifest.sizeBytes, revision: manifest.etcd.revision, seconds, destinations: stored.map((d) => d.name) }, 'backup stored and verified');
  const deleted = await applyRetention(deps, stored, options.trigger);
  return { outcome: 'success', manifest, destinations: stored.map((d) => d.name), deleted, seconds };
}

/** Streams the snapshot into `staged` (encrypting it when configured), fsyncs it; throws a RunFailure. */
async function writeSnapshot(
  deps: BackupDeps,
  staged: string,
  signal: AbortSignal,
  timeoutMs: number,
  onProgress: ((bytes: number) => void) | undefined,
): Promise<{ sizeBytes: number; sha256: string; snapshotBytes: number }> {
  let snapshotBytes = 0;
  let sizeBytes = 0;
  const hash = createHash('sha256');
  const recipients = deps.config.encryption?.recipients;
  async function* counted(): AsyncGenerator<Buffer> {
    for await (const chunk of snapshotChunks(deps.upstream, timeoutMs)) {
      snapshotBytes += chunk.length;
      onProgress?.(snapshotBytes);
      yield chunk;
    }
  }
  async function* hashed(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    for await (const chunk of source) {
      hash.update(chunk);
      sizeBytes += chunk.length;
      yield chunk;
    }
  }
  try {
    const plain = counted();
    const source = recipients === undefined ? plain : encryptChunks(plain, recipients);
    // 'wx': never overwrite; `flush`: fsync before the stream closes (pipeline resolves after both).
    await pipeline(hashed(source), createWriteStream(staged, { flags: 'wx', mode: 0o600, flush: true }), { signal });
  } catch (error: unknown) {
    if (error instanceof RunFailure) throw error;
    if (signal.aborted) throw new RunFailure('timeout', `snapshot not finished in time: ${messageOf(error)}`);
    if (isFileSystemError(error)) throw new RunFailure('destination', `staging file ${staged}: ${messageOf(error)}`);
    throw fromUpstream(error, 'Snapshot');
  }
  return { sizeBytes, sha256: hash.digest('hex'), snapshotBytes };
}

function isFileSystemError(error: unknown): boolean {
  return error instanceof Error && 'syscall' in error;
}

/** Deletes what retention says, per destination that now holds the new backup; each deletion audited. */
async function applyRetention(deps: BackupDeps, destinations: readonly Destination[], trigger: BackupTrigger): Promise<string[]> {
  const deleted: string[] = [];
  for (const destination of destinations) {
    let expired: string[];
    try {
      const listing = await destination.list();
      const items = listing.manifests.map((m) => ({ file: m.file, createdAt: new Date(m.createdAt) }));
      expired = expiredBackups(items, deps.config.retention, deps.now());
    } catch (error: unknown) {
      deps.logger.warn({ destination: destination.name, error: messageOf(error) }, 'retention: cannot list backups; nothing deleted');
      continue;
    }
    for (const file of expired) {
      const start = deps.now();
      try {
        await destination.remove(file);
        deleted.push(`${destination.name}:${file}`);
        deps.audit({ kind: 'backup.delete', start, end: deps.now(), outcome: 'success', trigger, destinations: [destination.name], file });
      } catch (error: unknown) {
        deps.audit({ kind: 'backup.delete', start, end: deps.now(), outcome: 'failure', reason: 'destination', message: messageOf(error), trigger, destinations: [destination.name], file });
        deps.logger.warn({ destination: destination.name, file, error: messageOf(error) }, 'retention: deletion failed');
      }
    }
  }
  return deleted;
}
