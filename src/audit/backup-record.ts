/**
 * Audit records of etcdgate's own backups: one per backup run (started, ended, outcome,
 * destinations, file, size, revision) and one per backup deleted by retention. They
 * describe files, never what is in them. Built here, apart from the call records of
 * ./record.ts, so the two can change independently; the common parts (`@timestamp`,
 * `ecs`, `event.id/kind/module/dataset`, the `etcdgate` object) follow the same layout.
 */
import { AUDIT_SCHEMA_VERSION, ECS_VERSION, serializeRecord, type JsonObject, type RecordContext } from './record.js';

/** What src/backup reports of one run or one deletion. */
export interface BackupAuditEvent {
  readonly kind: 'backup.run' | 'backup.delete';
  readonly start: Date;
  readonly end: Date;
  readonly outcome: 'success' | 'failure';
  /** Failure reason code (etcdgate_backup_failures_total's label), failures only. */
  readonly reason?: string;
  /** What failed, in words (an error message; never file contents). */
  readonly message?: string;
  readonly trigger: 'schedule' | 'manual';
  /** The scheduled time a scheduled run was for. */
  readonly slot?: Date;
  /** Destination names: where the backup was stored (run) or deleted from (delete). */
  readonly destinations: readonly string[];
  readonly file?: string;
  readonly sizeBytes?: number;
  /** SHA-256 (hex) of the file as stored. */
  readonly sha256?: string;
  readonly encrypted?: boolean;
  readonly etcd?: { readonly revision: string; readonly version: string; readonly memberId: string; readonly endpoint: string };
}

/** Builds the record of a backup event as a JSON object. */
export function buildBackupRecord(event: BackupAuditEvent, context: RecordContext): JsonObject {
  const run = event.kind === 'backup.run';
  const eventFields: JsonObject = {
    id: context.eventId,
    kind: 'event',
    module: 'etcdgate',
    dataset: 'etcdgate.audit',
    category: [run ? 'database' : 'file'],
    type: [run ? 'info' : 'deletion'],
    action: run ? 'etcdgate.backup.run' : 'etcdgate.backup.delete',
    outcome: event.outcome,
    start: event.start.toISOString(),
    end: event.end.toISOString(),
    duration: Math.max(0, event.end.getTime() - event.start.getTime()) * 1_000_000,
  };
  if (event.reason !== undefined) eventFields['reason'] = event.reason;

  const backup: JsonObject = { trigger: event.trigger, destinations: [...event.destinations] };
  if (event.slot !== undefined) backup['slot'] = event.slot.toISOString();
  if (event.sizeBytes !== undefined) backup['size_bytes'] = event.sizeBytes;
  if (event.sha256 !== undefined) backup['sha256'] = event.sha256;
  if (event.encrypted !== undefined) backup['encrypted'] = event.encrypted;
  if (event.etcd !== undefined) {
    backup['etcd'] = { revision: event.etcd.revision, version: event.etcd.version, member_id: event.etcd.memberId, endpoint: event.etcd.endpoint };
  }

  const record: JsonObject = { '@timestamp': event.start.toISOString(), ecs: { version: ECS_VERSION }, event: eventFields };
  if (event.file !== undefined) record['file'] = { name: event.file };
  if (event.message !== undefined && event.message !== '') record['error'] = { message: event.message.slice(0, 1024) };
  record['etcdgate'] = {
    schema_version: AUDIT_SCHEMA_VERSION,
    version: context.version,
    policy_version: context.policyVersion,
    event_kind: event.kind,
    backup,
  };
  return record;
}

/** The record as one line of JSON. */
export function serializeBackupRecord(event: BackupAuditEvent, context: RecordContext): string {
  return serializeRecord(buildBackupRecord(event, context));
}
