/**
 * `etcdgate backup now|list|verify`: backups from the command line, without starting
 * the proxy. `now` and `list` read the same config as the gateway and reach etcd
 * exactly as it does (the UpstreamPool and UpstreamCalls built from `upstream`, i.e.
 * etcdgate's own upstream identity); `now` writes the same audit record a scheduled run
 * does. `verify` needs no config: a file, and an age identity for encrypted files.
 *
 * Output: one result line per run or file on stdout, problems on stderr; progress only
 * when stderr is a terminal. Exit codes: 0 good, 1 the backup or the check failed,
 * 2 invalid input (config, arguments).
 */
import { UsageError } from './usage-error.js';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createAuditor } from '../audit/auditor.js';
import { createDestination } from '../backup/destination.js';
import { createBackupService } from '../backup/service.js';
import { identitiesOf } from '../backup/encryption.js';
import { formatBytes, terminalProgress, type ProgressTarget } from '../backup/progress.js';
import { verifyBackupFile } from '../backup/verify.js';
import { loadConfig } from '../config/load.js';
import type { BackupConfig, Config } from '../config/types.js';
import { createLogger } from '../observability/logger.js';
import { NOOP_METRICS } from '../observability/metrics-types.js';
import { loadConfiguredPolicy } from '../config/policy-file.js';
import { upstreamCalls } from '../upstream/calls.js';
import { UpstreamPool } from '../upstream/pool.js';
import { VERSION } from '../version.js';

/** Where a command writes; main.ts passes process.stdout/stderr. */
export interface CommandIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: ProgressTarget;
}

export const BACKUP_USAGE = `  etcdgate backup now --config FILE
  etcdgate backup list --config FILE [--json]
  etcdgate backup verify FILE [--identity AGE_KEY_FILE]`;

export { UsageError };

function backupSection(config: Config): BackupConfig {
  if (config.backup === undefined) throw new UsageError(`${config.source}: no backup section`);
  return config.backup;
}

/** Runs `etcdgate backup SUBCOMMAND ...`; resolves with the exit status. */
export async function backupCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'now':
      return backupNow(rest, io);
    case 'list':
      return backupList(rest, io);
    case 'verify':
      return backupVerify(rest, io);
    default:
      throw new UsageError(`backup needs one of now, list, verify\nUsage:\n${BACKUP_USAGE}`);
  }
}

function configArg(argv: readonly string[], extra: { json?: boolean } = {}): { config: Config; json: boolean } {
  const { values } = parseArgs({
    args: [...argv],
    options: { config: { type: 'string', short: 'c' }, ...(extra.json === true ? { json: { type: 'boolean' as const } } : {}) },
  });
  if (typeof values.config !== 'string') throw new UsageError(`--config FILE is required\nUsage:\n${BACKUP_USAGE}`);
  return { config: loadConfig(values.config), json: 'json' in values && values.json === true };
}

/** One run now, audited, with retention; the result line names the file and where it went. */
async function backupNow(argv: readonly string[], io: CommandIo): Promise<number> {
  const { config } = configArg(argv);
  const backup = backupSection(config);
  // The proxy's own log stays quiet: the command prints its result itself.
  const logger = createLogger('silent');
  const policyVersion = loadConfiguredPolicy(config.policy).version;
  const auditor = await createAuditor(config.audit, { metrics: NOOP_METRICS, logger, version: VERSION, policyVersion: () => policyVersion });
  const pool = new UpstreamPool(config.upstream, NOOP_METRICS);
  try {
    const service = createBackupService({
      config: backup,
      upstream: upstreamCalls(pool, config.upstream.dialTimeoutMs),
      endpoint: () => pool.pick()?.url ?? '',
      metrics: NOOP_METRICS,
      audit: (event) => auditor.backup(event),
      logger,
      version: VERSION,
    });
    const progress = terminalProgress(io.stderr, 'snapshot');
    const outcome = await service.runNow({ onProgress: (bytes) => progress.update(bytes) });
    progress.done();
    if (outcome.outcome === 'failure') {
      io.stderr.write(`etcdgate: backup failed (${outcome.reason}): ${outcome.message}\n`);
      return 1;
    }
    const { manifest } = outcome;
    io.stdout.write(
      `stored ${manifest.file} (${formatBytes(manifest.sizeBytes)}, revision ${manifest.etcd.revision}, ${outcome.seconds.toFixed(1)} s) in ${outcome.destinations.join(', ')}` +
        `${outcome.deleted.length === 0 ? '' : `; retention deleted ${outcome.deleted.join(', ')}`}\n`,
    );
    return 0;
  } finally {
    pool.close();
    await auditor.close();
  }
}

/** Every backup each destination holds, from the manifests, oldest first. */
async function backupList(argv: readonly string[], io: CommandIo): Promise<number> {
  const { config, json } = configArg(argv, { json: true });
  const backup = backupSection(config);
  const destinations = backup.destinations.map(createDestination);
  let status = 0;
  const rows: { destination: string; manifest: unknown }[] = [];
  for (const destination of destinations) {
    let listing;
    try {
      listing = await destination.list();
    } catch (error: unknown) {
      io.stderr.write(`etcdgate: ${destination.name}: cannot list: ${error instanceof Error ? error.message : String(error)}\n`);
      status = 1;
      continue;
    }
    for (const problem of listing.problems) {
      io.stderr.write(`etcdgate: ${destination.name}: ${problem}\n`);
      status = 1;
    }
    for (const manifest of listing.manifests) {
      rows.push({ destination: destination.name, manifest });
      if (!json) {
        const encrypted = manifest.encryption === undefined ? 'plain' : 'age';
        io.stdout.write(`${destination.name}\t${manifest.file}\t${manifest.createdAt}\t${manifest.sizeBytes}\trevision ${manifest.etcd.revision}\tetcd ${manifest.etcd.version}\t${encrypted}\n`);
      }
    }
  }
  if (json) io.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
  return status;
}

/** Checks a stored file (see src/backup/verify.ts); exit 1 when any check fails. */
async function backupVerify(argv: readonly string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parseArgs({ args: [...argv], options: { identity: { type: 'string', short: 'i' } }, allowPositionals: true });
  const file = positionals[0];
  if (file === undefined || positionals.length > 1) throw new UsageError(`verify needs exactly one FILE\nUsage:\n${BACKUP_USAGE}`);
  let identities: string[] | undefined;
  if (values.identity !== undefined) {
    identities = identitiesOf(readFileSync(values.identity, 'utf8'));
    if (identities.length === 0) throw new UsageError(`${values.identity}: no age identity (AGE-SECRET-KEY-1...) in the file`);
  }
  const progress = terminalProgress(io.stderr, 'verify');
  const report = await verifyBackupFile(file, { ...(identities === undefined ? {} : { identities }), onProgress: (bytes) => progress.update(bytes) });
  progress.done();
  for (const check of report.checks) io.stdout.write(`${check.result.padEnd(7)} ${check.name}: ${check.detail}\n`);
  io.stdout.write(`${file}: ${report.ok ? 'OK' : 'FAILED'}\n`);
  return report.ok ? 0 : 1;
}
