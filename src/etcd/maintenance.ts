/**
 * Decoders of the Maintenance service: each method needs one capability; Alarm needs
 * `status` to read alarms and `alarm` to raise or clear one.
 */
import { capability, capabilityOnly, decoded, Details, enumName, keySummary } from './decoded.js';
import type { DecodedRequest } from './types.js';
import { WireReader } from './wire.js';

const ALARM_ACTIONS = ['GET', 'ACTIVATE', 'DEACTIVATE'] as const;
const ALARM_TYPES = ['NONE', 'NOSPACE', 'CORRUPT'] as const;
const DOWNGRADE_ACTIONS = ['VALIDATE', 'ENABLE', 'CANCEL'] as const;

/** Maintenance.Alarm: GET needs `status`; any other action (ACTIVATE, DEACTIVATE, unknown) needs `alarm`. */
export function decodeAlarmRequest(message: Buffer): DecodedRequest {
  let action = 0;
  let memberId = '0';
  let alarm = 0;
  const r = new WireReader(message);
  while (r.next()) {
    switch (r.field) {
      case 1: action = r.int32(); break;
      case 2: memberId = r.uint64(); break;
      case 3: alarm = r.int32(); break;
      default: r.skip();
    }
  }
  const details = new Details()
    .always('action', enumName(ALARM_ACTIONS, action))
    .int('memberID', memberId);
  if (alarm !== 0) details.always('alarm', enumName(ALARM_TYPES, alarm));
  // Fail closed: an action value this table does not know is treated as a change.
  const needed = action === 0 ? capability('status') : capability('alarm');
  return decoded([needed], keySummary('alarm', undefined, undefined, details));
}

/** Maintenance.Status: the `status` capability. */
export const decodeStatusRequest = capabilityOnly('status', 'status');
/** Maintenance.Defragment: the `defragment` capability. */
export const decodeDefragmentRequest = capabilityOnly('defragment', 'defragment');
/** Maintenance.Hash: the `hash` capability. */
export const decodeHashRequest = capabilityOnly('hash', 'hash');
/** Maintenance.Snapshot: the `snapshot` capability (a snapshot holds every key and value). */
export const decodeSnapshotRequest = capabilityOnly('snapshot', 'snapshot');

/** Maintenance.HashKV: the `hash` capability. */
export function decodeHashKVRequest(message: Buffer): DecodedRequest {
  let revision = '0';
  const r = new WireReader(message);
  while (r.next()) {
    if (r.field === 1) revision = r.int64();
    else r.skip();
  }
  return decoded([capability('hash')], keySummary('hash_kv', undefined, undefined, new Details().int('revision', revision)));
}

/** Maintenance.MoveLeader: the `move-leader` capability. */
export function decodeMoveLeaderRequest(message: Buffer): DecodedRequest {
  let target = '0';
  const r = new WireReader(message);
  while (r.next()) {
    if (r.field === 1) target = r.uint64();
    else r.skip();
  }
  return decoded(
    [capability('move-leader')],
    keySummary('move_leader', undefined, undefined, new Details().always('targetID', target)),
  );
}

/** Maintenance.Downgrade: the `downgrade` capability. */
export function decodeDowngradeRequest(message: Buffer): DecodedRequest {
  let action = 0;
  let version = '';
  const r = new WireReader(message);
  while (r.next()) {
    switch (r.field) {
      case 1: action = r.int32(); break;
      case 2: version = r.string(); break;
      default: r.skip();
    }
  }
  const details = new Details().always('action', enumName(DOWNGRADE_ACTIONS, action)).text('version', version);
  return decoded([capability('downgrade')], keySummary('downgrade', undefined, undefined, details));
}
