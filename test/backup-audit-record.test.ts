/**
 * The audit records of backups, field by field: one per run (start, end, outcome,
 * reason, destinations, file, size, hash, revision) and one per retention deletion;
 * they describe files and never carry what is in them.
 */
import { describe, expect, it } from 'vitest';
import { buildBackupRecord, serializeBackupRecord, type BackupAuditEvent } from '../src/audit/backup-record.js';

const context = { eventId: 'id-1', version: '0.1.0', policyVersion: 'abcdef012345' };
const start = new Date('2026-03-18T03:00:00.000Z');
const end = new Date('2026-03-18T03:00:02.500Z');

const success: BackupAuditEvent = {
  kind: 'backup.run',
  start,
  end,
  outcome: 'success',
  trigger: 'schedule',
  slot: start,
  destinations: ['dir:/var/backups/etcd', 'offsite'],
  file: 'etcd-snapshot-20260318T030000.000Z.db.age',
  sizeBytes: 123_456,
  sha256: 'a'.repeat(64),
  encrypted: true,
  etcd: { revision: '987', version: '3.4.23', memberId: '8e9e05c52164694d', endpoint: 'https://10.0.0.1:2379' },
};

describe('backup audit records', () => {
  it('a successful run: when, what, where, how big, which revision', () => {
    expect(buildBackupRecord(success, context)).toEqual({
      '@timestamp': '2026-03-18T03:00:00.000Z',
      ecs: { version: '8.11.0' },
      event: {
        id: 'id-1',
        kind: 'event',
        module: 'etcdgate',
        dataset: 'etcdgate.audit',
        category: ['database'],
        type: ['info'],
        action: 'etcdgate.backup.run',
        outcome: 'success',
        start: '2026-03-18T03:00:00.000Z',
        end: '2026-03-18T03:00:02.500Z',
        duration: 2_500_000_000,
      },
      file: { name: 'etcd-snapshot-20260318T030000.000Z.db.age' },
      etcdgate: {
        schema_version: 2,
        version: '0.1.0',
        policy_version: 'abcdef012345',
        event_kind: 'backup.run',
        backup: {
          trigger: 'schedule',
          destinations: ['dir:/var/backups/etcd', 'offsite'],
          slot: '2026-03-18T03:00:00.000Z',
          size_bytes: 123_456,
          sha256: 'a'.repeat(64),
          encrypted: true,
          etcd: { revision: '987', version: '3.4.23', member_id: '8e9e05c52164694d', endpoint: 'https://10.0.0.1:2379' },
        },
      },
    });
  });

  it('a failed run: outcome failure, the reason code and the error text', () => {
    const record = buildBackupRecord({ kind: 'backup.run', start, end, outcome: 'failure', reason: 'etcd_unavailable', message: 'Snapshot: connection refused', trigger: 'manual', destinations: ['d'] }, context);
    expect(record['event']).toMatchObject({ outcome: 'failure', reason: 'etcd_unavailable', action: 'etcdgate.backup.run' });
    expect(record['error']).toEqual({ message: 'Snapshot: connection refused' });
    expect(record['etcdgate']).toMatchObject({ event_kind: 'backup.run', backup: { trigger: 'manual', destinations: ['d'] } });
    expect(record['file']).toBeUndefined();
  });

  it('a retention deletion: a file event of type deletion', () => {
    const record = buildBackupRecord({ kind: 'backup.delete', start, end, outcome: 'success', trigger: 'schedule', destinations: ['d'], file: 'etcd-snapshot-20260311T030000.000Z.db' }, context);
    expect(record['event']).toMatchObject({ category: ['file'], type: ['deletion'], action: 'etcdgate.backup.delete', outcome: 'success' });
    expect(record['file']).toEqual({ name: 'etcd-snapshot-20260311T030000.000Z.db' });
  });

  it('serializes to one line of JSON that holds only the fields above', () => {
    const line = serializeBackupRecord(success, context);
    expect(line).not.toContain('\n');
    expect(JSON.parse(line)).toEqual(buildBackupRecord(success, context));
  });
});
