/**
 * The `backup` config section: off when absent, defaults filled in, and every mistake
 * reported at its field path (cron syntax and time zones checked by croner, recipients
 * by age-encryption, directories for existence and write access), all in one round.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../src/config/load.js';
import type { Config } from '../src/config/types.js';

/** A real X25519 recipient (age-keygen); its identity is not needed here. */
const RECIPIENT = 'age1j3cm98lvcqajtm2t0pywh4n6kyrp3kn3lwyld97sdjcx3ewcdfnszlkll2';

let dir: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdgate-backup-config-'));
  fs.mkdirSync(path.join(dir, 'pki'));
  for (const name of ['ca.crt', 'server.crt', 'server.key', 'policy.yaml']) fs.writeFileSync(path.join(dir, 'pki', name), 'placeholder\n');
  fs.mkdirSync(path.join(dir, 'backups'));
  fs.mkdirSync(path.join(dir, 'readonly'), { mode: 0o500 });
  fs.writeFileSync(path.join(dir, 'not-a-dir'), 'x');
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function parse(backup: unknown): Config {
  return parseConfig(
    {
      server: { listen: '127.0.0.1:2379', advertiseClientUrls: ['https://127.0.0.1:2379'], tls: { cert: 'pki/server.crt', key: 'pki/server.key', clientCA: 'pki/ca.crt' } },
      upstream: { endpoints: ['https://127.0.0.1:12379'], tls: { ca: 'pki/ca.crt' } },
      policy: 'pki/policy.yaml',
      ...(backup === undefined ? {} : { backup }),
    },
    { source: '', baseDir: dir },
  );
}

function issues(backup: unknown): Record<string, string> {
  try {
    parse(backup);
  } catch (error: unknown) {
    if (!(error instanceof ConfigError)) throw error;
    return Object.fromEntries(error.issues.map((issue) => [issue.path, issue.message]));
  }
  throw new Error('expected a ConfigError');
}

describe('backup config', () => {
  it('is absent (no backups) when the section is', () => {
    expect(parse(undefined).backup).toBeUndefined();
  });

  it('fills in the defaults of a minimal section', () => {
    const backup = parse({ schedule: { cron: '0 3 * * *' }, destinations: [{ directory: 'backups' }] }).backup;
    expect(backup).toEqual({
      enabled: true,
      schedule: { kind: 'cron', expression: '0 3 * * *', timezone: 'UTC' },
      destinations: [{ kind: 'directory', name: `dir:${path.join(dir, 'backups')}`, path: path.join(dir, 'backups') }],
      retention: { keepLast: 7, keepDailyDays: 0, keepWeeklyWeeks: 0 },
      stagingDir: path.join(dir, 'backups'),
      timeoutSeconds: 21_600,
      // Twice the longest gap between runs of a daily schedule.
      maxAgeSeconds: 2 * 86_400,
    });
    expect(Object.isFrozen(backup?.destinations)).toBe(true);
  });

  it('reads an interval schedule, S3 destinations and encryption', () => {
    const backup = parse({
      schedule: { intervalSeconds: 900 },
      destinations: [{ s3: { bucket: 'etcd-backups', prefix: 'prod/', endpoint: 'http://127.0.0.1:8080' }, name: 'offsite' }],
      stagingDir: 'backups',
      encryption: { recipients: [RECIPIENT] },
      retention: { keepLast: 3, keepDailyDays: 7, keepWeeklyWeeks: 4 },
    }).backup;
    expect(backup?.schedule).toEqual({ kind: 'interval', seconds: 900 });
    expect(backup?.maxAgeSeconds).toBe(1800);
    expect(backup?.destinations).toEqual([
      { kind: 's3', name: 'offsite', bucket: 'etcd-backups', prefix: 'prod/', endpoint: 'http://127.0.0.1:8080', region: 'us-east-1', forcePathStyle: true, partSizeBytes: 16 * 1024 * 1024 },
    ]);
    expect(backup?.encryption).toEqual({ recipients: [RECIPIENT] });
  });

  it('needs no schedule when scheduled runs are off (backup now still works)', () => {
    expect(parse({ enabled: false, destinations: [{ directory: 'backups' }] }).backup?.enabled).toBe(false);
  });

  it('reports every mistake at its field path', () => {
    const found = issues({
      schedul: 1,
      schedule: { cron: '61 * * * *' },
      destinations: [
        { directory: 'missing' },
        { directory: 'not-a-dir' },
        { directory: 'readonly' },
        { s3: { bucket: 'No_Such', prefix: '/x' } },
        { s3: { bucket: 'ok-bucket', endpoint: 'ftp://x' }, name: 'dup' },
        { directory: 'backups', name: 'dup' },
        { both: true },
      ],
      retention: { keepLast: 0, keepDailyDays: -1 },
      encryption: { recipients: ['age1notakey', 'AGE-SECRET-KEY-1QQQQ'] },
      timeoutSeconds: 0,
    });
    expect(found).toMatchObject({
      'backup.schedul': expect.stringContaining('did you mean "schedule"'),
      'backup.schedule.cron': expect.stringMatching(/not valid.*minute/u),
      'backup.destinations[0].directory': expect.stringContaining('does not exist'),
      'backup.destinations[1].directory': expect.stringContaining('not a directory'),
      'backup.destinations[3].s3.bucket': expect.stringContaining('lower-case'),
      'backup.destinations[3].s3.prefix': expect.stringContaining('must end with "/"'),
      'backup.destinations[4].s3.endpoint': expect.stringContaining('http://'),
      'backup.destinations[5].name': expect.stringContaining('already the name of backup.destinations[4]'),
      'backup.destinations[6]': expect.stringContaining('exactly one of directory or s3'),
      'backup.retention.keepLast': expect.stringContaining('from 1'),
      'backup.retention.keepDailyDays': expect.stringContaining('from 0'),
      'backup.encryption.recipients[0]': expect.stringContaining('not an age recipient'),
      'backup.encryption.recipients[1]': expect.stringContaining('private key'),
      'backup.timeoutSeconds': expect.stringContaining('from 1'),
    });
    // Never echo what looks like a private key.
    expect(JSON.stringify(found)).not.toContain('AGE-SECRET-KEY-1QQQQ');
    // Root can write anywhere: the write check is meaningful only for other users.
    if (process.getuid?.() !== 0) expect(found['backup.destinations[2].directory']).toContain('not writable');
  });

  it('names the schedule problems: missing, both kinds, a bad time zone', () => {
    expect(issues({ destinations: [{ directory: 'backups' }] })).toEqual({ 'backup.schedule': expect.stringContaining('is required') });
    expect(issues({ schedule: { cron: '0 3 * * *', intervalSeconds: 60 }, destinations: [{ directory: 'backups' }] })).toEqual({ 'backup.schedule': 'needs exactly one of cron and intervalSeconds' });
    expect(issues({ schedule: { cron: '0 3 * * *', timezone: 'Nowhere/Land' }, destinations: [{ directory: 'backups' }] })).toEqual({ 'backup.schedule.timezone': expect.stringContaining('not valid') });
    expect(issues({ schedule: { intervalSeconds: 60, timezone: 'UTC' }, destinations: [{ directory: 'backups' }] })).toEqual({ 'backup.schedule.timezone': 'applies to cron only' });
  });

  it('needs a destination, and a staging directory when none is a directory', () => {
    expect(issues({ schedule: { intervalSeconds: 60 } })).toEqual({ 'backup.destinations': expect.stringContaining('is required') });
    expect(issues({ schedule: { intervalSeconds: 60 }, destinations: [{ s3: { bucket: 'etcd-backups' } }] })).toEqual({ 'backup.stagingDir': expect.stringContaining('is required') });
  });
});
