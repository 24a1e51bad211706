/**
 * Parser for the optional `backup` section: when snapshots are taken (cron through
 * croner, or a fixed interval), where they go (directories, S3-compatible storage),
 * how many are kept, and who can decrypt them (age recipients). Absent means no
 * backups. Cron expressions, time zones and age recipients are checked here with the
 * same libraries that use them later, so a typo fails at start, not at 3 a.m.
 */
import fs from 'node:fs';
import { Encrypter } from 'age-encryption';
import { Cron } from 'croner';
import type { BackupConfig, BackupDestinationConfig, BackupSchedule } from './types.js';
import type { Mapping, Reader } from './read.js';
import { at, describe, index, isAbsent, isMapping } from './read.js';

const BACKUP_KEYS = ['enabled', 'schedule', 'destinations', 'retention', 'encryption', 'stagingDir', 'timeoutSeconds', 'maxAgeSeconds'];
const SCHEDULE_KEYS = ['cron', 'timezone', 'intervalSeconds'];
const DIRECTORY_KEYS = ['directory', 'name'];
const S3_KEYS = ['s3', 'name'];
const S3_FIELDS = ['bucket', 'prefix', 'endpoint', 'region', 'forcePathStyle', 'partSizeBytes'];
const RETENTION_KEYS = ['keepLast', 'keepDailyDays', 'keepWeeklyWeeks'];
const ENCRYPTION_KEYS = ['recipients'];

/** S3's smallest multipart part (all but the last), and the default etcdgate uses. */
const MIN_PART_BYTES = 5 * 1024 * 1024;
const DEFAULT_PART_BYTES = 16 * 1024 * 1024;
/** S3 bucket names: 3 to 63 lower-case letters, digits, dots and hyphens. */
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/u;
const DAY_SECONDS = 86_400;

/** Reads the `backup` section; undefined when there is none. */
export function readBackup(reader: Reader, value: unknown): BackupConfig | undefined {
  if (isAbsent(value)) return undefined;
  const base = 'backup';
  const raw = reader.mapping(value, base, BACKUP_KEYS);
  const enabled = reader.boolean(raw['enabled'], at(base, 'enabled'), true);
  const schedule = readSchedule(reader, raw['schedule'], at(base, 'schedule'), enabled);
  const destinations = readDestinations(reader, raw['destinations'], at(base, 'destinations'));
  const retentionRaw = reader.optionalMapping(raw['retention'], at(base, 'retention'), RETENTION_KEYS);
  const retention = {
    keepLast: reader.integer(retentionRaw['keepLast'], at(base, 'retention.keepLast'), { min: 1, max: 100_000, fallback: 7 }),
    keepDailyDays: reader.integer(retentionRaw['keepDailyDays'], at(base, 'retention.keepDailyDays'), { min: 0, max: 36_500, fallback: 0 }),
    keepWeeklyWeeks: reader.integer(retentionRaw['keepWeeklyWeeks'], at(base, 'retention.keepWeeklyWeeks'), { min: 0, max: 5_200, fallback: 0 }),
  };
  const encryption = readEncryption(reader, raw['encryption'], at(base, 'encryption'));
  const stagingDir = readStagingDir(reader, raw['stagingDir'], at(base, 'stagingDir'), destinations);
  const timeoutSeconds = reader.integer(raw['timeoutSeconds'], at(base, 'timeoutSeconds'), { min: 1, max: 7 * DAY_SECONDS, fallback: 21_600 });
  const maxAgeSeconds = reader.integer(raw['maxAgeSeconds'], at(base, 'maxAgeSeconds'), {
    min: 1,
    max: 366 * DAY_SECONDS,
    fallback: schedule === undefined ? 2 * DAY_SECONDS : 2 * longestGapSeconds(schedule),
  });
  return {
    enabled,
    ...(schedule === undefined ? {} : { schedule }),
    destinations,
    retention,
    ...(encryption === undefined ? {} : { encryption }),
    stagingDir,
    timeoutSeconds,
    maxAgeSeconds,
  };
}

/** `{ cron, timezone? }` or `{ intervalSeconds }`; required when scheduled runs are on. */
function readSchedule(reader: Reader, value: unknown, fieldPath: string, enabled: boolean): BackupSchedule | undefined {
  if (isAbsent(value)) {
    if (enabled) reader.report(fieldPath, 'is required when backup.enabled is true (cron or intervalSeconds)');
    return undefined;
  }
  const raw = reader.mapping(value, fieldPath, SCHEDULE_KEYS);
  const hasCron = !isAbsent(raw['cron']);
  const hasInterval = !isAbsent(raw['intervalSeconds']);
  if (hasCron === hasInterval) {
    reader.report(fieldPath, 'needs exactly one of cron and intervalSeconds');
    return undefined;
  }
  if (hasInterval) {
    if (!isAbsent(raw['timezone'])) reader.report(at(fieldPath, 'timezone'), 'applies to cron only');
    return { kind: 'interval', seconds: reader.integer(raw['intervalSeconds'], at(fieldPath, 'intervalSeconds'), { min: 1, max: 366 * DAY_SECONDS }) };
  }
  const expression = reader.requiredString(raw['cron'], at(fieldPath, 'cron'));
  const timezone = reader.optionalString(raw['timezone'], at(fieldPath, 'timezone')) ?? 'UTC';
  try {
    // Paused: only parsed and asked for one run, never started.
    const cron = new Cron(expression, { paused: true, timezone });
    if (cron.nextRun() === null) reader.report(at(fieldPath, 'cron'), 'never runs');
  } catch (error: unknown) {
    const message = error instanceof Error ? error.message : String(error);
    reader.report(at(fieldPath, /timezone/iu.test(message) ? 'timezone' : 'cron'), `is not valid: ${message.split('. ')[0] ?? message}`);
  }
  return { kind: 'cron', expression, timezone };
}

/**
 * The longest gap between consecutive runs: the interval, or over the next 200 cron
 * runs (enough to see a weekday-only or monthly pattern's long gap).
 */
export function longestGapSeconds(schedule: BackupSchedule): number {
  if (schedule.kind === 'interval') return schedule.seconds;
  let runs: Date[];
  try {
    runs = new Cron(schedule.expression, { paused: true, timezone: schedule.timezone }).nextRuns(200);
  } catch {
    return DAY_SECONDS;
  }
  let longest = 0;
  for (let i = 1; i < runs.length; i++) longest = Math.max(longest, ((runs[i]?.getTime() ?? 0) - (runs[i - 1]?.getTime() ?? 0)) / 1000);
  return Math.max(1, Math.ceil(longest || DAY_SECONDS));
}

/** A non-empty list of `{ directory: PATH }` and `{ s3: {...} }` entries with distinct names. */
function readDestinations(reader: Reader, value: unknown, fieldPath: string): BackupDestinationConfig[] {
  if (!Array.isArray(value) || value.length === 0) {
    reader.report(fieldPath, isAbsent(value) ? 'is required (at least one directory or s3 destination)' : `must be a non-empty list, got ${describe(value)}`);
    return [];
  }
  const out: BackupDestinationConfig[] = [];
  const names = new Map<string, string>();
  value.forEach((entry: unknown, i) => {
    const entryPath = index(fieldPath, i);
    const destination = readDestination(reader, entry, entryPath);
    if (destination === undefined) return;
    const earlier = names.get(destination.name);
    if (earlier !== undefined) reader.report(at(entryPath, 'name'), `"${destination.name}" is already the name of ${earlier}`);
    names.set(destination.name, entryPath);
    out.push(destination);
  });
  return out;
}

function readDestination(reader: Reader, value: unknown, fieldPath: string): BackupDestinationConfig | undefined {
  if (!isMapping(value) || isAbsent(value['directory']) === isAbsent(value['s3'])) {
    reader.report(fieldPath, 'must be a mapping with exactly one of directory or s3');
    return undefined;
  }
  if (!isAbsent(value['directory'])) {
    const raw = reader.mapping(value, fieldPath, DIRECTORY_KEYS);
    const dir = readWritableDirectory(reader, raw['directory'], at(fieldPath, 'directory'));
    const name = reader.optionalString(raw['name'], at(fieldPath, 'name')) ?? `dir:${dir}`;
    return { kind: 'directory', name, path: dir };
  }
  const outer = reader.mapping(value, fieldPath, S3_KEYS);
  const s3Path = at(fieldPath, 's3');
  const raw: Mapping = reader.mapping(outer['s3'], s3Path, S3_FIELDS);
  const bucket = reader.requiredString(raw['bucket'], at(s3Path, 'bucket'));
  if (bucket !== '' && !BUCKET_NAME.test(bucket)) reader.report(at(s3Path, 'bucket'), 'must be 3 to 63 lower-case letters, digits, dots and hyphens');
  const prefix = isAbsent(raw['prefix']) ? '' : reader.requiredString(raw['prefix'], at(s3Path, 'prefix'));
  if (prefix !== '' && (!prefix.endsWith('/') || prefix.startsWith('/'))) reader.report(at(s3Path, 'prefix'), 'must end with "/" and not start with one');
  const endpoint = reader.optionalString(raw['endpoint'], at(s3Path, 'endpoint'));
  if (endpoint !== undefined && !/^https?:\/\/[^/]+\/?$/u.test(endpoint)) reader.report(at(s3Path, 'endpoint'), 'must be an http:// or https:// URL with no path');
  const region = reader.optionalString(raw['region'], at(s3Path, 'region')) ?? 'us-east-1';
  const forcePathStyle = reader.boolean(raw['forcePathStyle'], at(s3Path, 'forcePathStyle'), endpoint !== undefined);
  const partSizeBytes = reader.integer(raw['partSizeBytes'], at(s3Path, 'partSizeBytes'), { min: MIN_PART_BYTES, max: 5 * 1024 ** 3, fallback: DEFAULT_PART_BYTES });
  const name = reader.optionalString(outer['name'], at(fieldPath, 'name')) ?? `s3:${bucket}/${prefix}`;
  return { kind: 's3', name, bucket, prefix, ...(endpoint === undefined ? {} : { endpoint: endpoint.replace(/\/$/u, '') }), region, forcePathStyle, partSizeBytes };
}

/** `recipients: [age1..., ...]`: each must be a recipient age-encryption accepts. */
function readEncryption(reader: Reader, value: unknown, fieldPath: string): BackupConfig['encryption'] {
  if (isAbsent(value)) return undefined;
  const raw = reader.mapping(value, fieldPath, ENCRYPTION_KEYS);
  const list = raw['recipients'];
  const listPath = at(fieldPath, 'recipients');
  if (!Array.isArray(list) || list.length === 0) {
    reader.report(listPath, isAbsent(list) ? 'is required (age public keys, age1...)' : `must be a non-empty list, got ${describe(list)}`);
    return undefined;
  }
  const recipients: string[] = [];
  list.forEach((entry: unknown, i) => {
    const entryPath = index(listPath, i);
    const recipient = reader.requiredString(entry, entryPath).trim();
    if (recipient === '') return;
    if (recipient.startsWith('AGE-SECRET-KEY-')) {
      // Never echo it: this is a private key in the wrong place.
      reader.report(entryPath, 'is an age identity (private key), not a recipient; give the public key (age-keygen -y)');
      return;
    }
    try {
      new Encrypter().addRecipient(recipient);
      recipients.push(recipient);
    } catch {
      reader.report(entryPath, 'is not an age recipient (expected age1...)');
    }
  });
  return { recipients };
}

/** Staging: given, or the first directory destination; S3-only configs must name one. */
function readStagingDir(reader: Reader, value: unknown, fieldPath: string, destinations: readonly BackupDestinationConfig[]): string {
  if (!isAbsent(value)) return readWritableDirectory(reader, value, fieldPath);
  const firstDirectory = destinations.find((d) => d.kind === 'directory');
  if (firstDirectory !== undefined) return firstDirectory.path;
  if (destinations.length > 0) reader.report(fieldPath, 'is required when no destination is a directory (the snapshot is written there before upload)');
  return '';
}

/** A directory that exists and is writable now; returns its absolute path. */
function readWritableDirectory(reader: Reader, value: unknown, fieldPath: string): string {
  const given = reader.requiredString(value, fieldPath);
  if (given === '') return '';
  const dir = reader.resolve(given);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dir);
  } catch {
    reader.report(fieldPath, `directory does not exist: ${dir}`);
    return dir;
  }
  if (!stat.isDirectory()) {
    reader.report(fieldPath, `not a directory: ${dir}`);
    return dir;
  }
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch {
    reader.report(fieldPath, `directory is not writable: ${dir}`);
  }
  return dir;
}
