/**
 * Backups inside a running etcdgate: the scheduler, the fleet claim of each slot, and
 * the runs. src/app.ts builds one BackupService when the config has a `backup` section
 * and starts it once etcdgate listens; stop() disarms the schedule and aborts a run in
 * progress (which then leaves nothing behind, like any failed run).
 *
 * At start the newest backup already stored is looked up, so the "last success"
 * metrics (and the EtcdgateBackupTooOld alert) survive restarts of etcdgate.
 */
import type { BackupAuditEvent } from '../audit/backup-record.js';
import type { BackupConfig } from '../config/types.js';
import { longestGapSeconds } from '../config/backup-section.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics-types.js';
import type { UpstreamCalls } from '../upstream/calls.js';
import { createDestination, type Destination } from './destination.js';
import { claimSlot, claimTtlSeconds } from './fleet-lock.js';
import { instanceName, runBackup, type BackupDeps, type RunOutcome, type RunOptions } from './run.js';
import { Scheduler, SYSTEM_CLOCK, type SchedulerClock } from './schedule.js';

/** What the service is built from. */
export interface BackupServiceDeps {
  readonly config: BackupConfig;
  readonly upstream: UpstreamCalls;
  readonly endpoint: () => string;
  readonly metrics: Metrics;
  readonly audit: (event: BackupAuditEvent) => void;
  readonly logger: Logger;
  readonly version: string;
  /** Timers and clock (tests may drive them). */
  readonly clock?: SchedulerClock;
  /** Built from the config when absent. */
  readonly destinations?: readonly Destination[];
}

export interface BackupService {
  readonly destinations: readonly Destination[];
  /** Reports the configuration to the metrics, finds the newest stored backup, arms the schedule. */
  start(): Promise<void>;
  /** One run now, outside the schedule and without a fleet claim. */
  runNow(options?: Omit<RunOptions, 'trigger' | 'slot'>): Promise<RunOutcome>;
  /** The slot the schedule waits for next (null: none armed). */
  readonly nextSlot: Date | null;
  stop(): Promise<void>;
}

/** Newest backup over every destination, reported as the last success (best effort). */
async function reportNewestStored(deps: BackupServiceDeps, destinations: readonly Destination[]): Promise<void> {
  for (const destination of destinations) {
    try {
      const { manifests } = await destination.list();
      const newest = manifests.at(-1);
      if (newest === undefined) continue;
      const seconds = (Date.parse(newest.createdAt) - Date.parse(newest.startedAt)) / 1000;
      deps.metrics.backupSucceeded({ finishedAt: new Date(newest.createdAt), sizeBytes: newest.sizeBytes, seconds, revision: newest.etcd.revision });
    } catch (error: unknown) {
      deps.logger.warn({ destination: destination.name, error: error instanceof Error ? error.message : String(error) }, 'backup: cannot list the destination at start');
    }
  }
}

export function createBackupService(deps: BackupServiceDeps): BackupService {
  const { config, logger, metrics } = deps;
  const clock = deps.clock ?? SYSTEM_CLOCK;
  const destinations = deps.destinations ?? config.destinations.map(createDestination);
  const runDeps: BackupDeps = {
    config,
    upstream: deps.upstream,
    endpoint: deps.endpoint,
    destinations,
    metrics,
    audit: deps.audit,
    logger,
    now: () => clock.now(),
    version: deps.version,
  };
  const stopping = new AbortController();
  const owner = instanceName();
  const ttlSeconds = config.schedule === undefined ? 60 : claimTtlSeconds(longestGapSeconds(config.schedule));

  const runSlot = async (slot: Date): Promise<void> => {
    let claimed: boolean;
    try {
      claimed = await claimSlot(deps.upstream, slot, owner, ttlSeconds, 10_000);
    } catch (error: unknown) {
      // etcd cannot be asked: nobody can take a snapshot now either. A failed run.
      const message = typeof error === 'object' && error !== null && 'details' in error ? String(error.details) : String(error);
      const now = clock.now();
      metrics.backupFailed('etcd_unavailable', now);
      metrics.backupRun('failure');
      deps.audit({
        kind: 'backup.run',
        start: now,
        end: now,
        outcome: 'failure',
        reason: 'etcd_unavailable',
        message: `claiming the slot: ${message}`,
        trigger: 'schedule',
        slot,
        destinations: destinations.map((d) => d.name),
      });
      logger.error({ slot: slot.toISOString(), error: message }, 'backup slot could not be claimed (etcd unavailable); no backup for this slot');
      return;
    }
    if (!claimed) {
      metrics.backupRun('other_instance');
      logger.info({ slot: slot.toISOString() }, 'backup slot taken by another etcdgate instance');
      return;
    }
    await runBackup(runDeps, { trigger: 'schedule', slot, signal: stopping.signal });
  };

  const scheduler =
    config.enabled && config.schedule !== undefined
      ? new Scheduler(
          config.schedule,
          {
            run: runSlot,
            busy: (slot) => {
              metrics.backupRun('still_running');
              logger.warn({ slot: slot.toISOString() }, 'backup slot skipped: the previous run is still going');
            },
          },
          clock,
        )
      : undefined;

  return {
    destinations,
    async start() {
      metrics.backupConfigured(config.maxAgeSeconds);
      await reportNewestStored(deps, destinations);
      scheduler?.start();
      logger.info({ next: scheduler?.next?.toISOString() ?? null, destinations: destinations.map((d) => d.name) }, scheduler === undefined ? 'backups configured, not scheduled' : 'backups scheduled');
    },
    runNow: (options = {}) => runBackup(runDeps, { ...options, trigger: 'manual', signal: options.signal ?? stopping.signal }),
    get nextSlot() {
      return scheduler?.next ?? null;
    },
    async stop() {
      stopping.abort();
      await scheduler?.stop();
    },
  };
}
