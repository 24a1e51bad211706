/**
 * Decoders of the KV service: Range, Put, DeleteRange, Txn, Compact.
 * What each needs follows docs/authorization.md ("RPC by RPC"), as strict as etcd after its
 * 2026 RBAC fixes: a Txn is checked on every compare and on both branches, whichever
 * would run, recursively.
 */
import type { KeySummary } from '../audit/types.js';
import type { Access, AccessOrigin } from '../policy/types.js';
import {
  capability,
  decoded,
  Details,
  EMPTY,
  enumName,
  keyAccess,
  keySummary,
  LeaseChecks,
} from './decoded.js';
import { DecodeError } from './types.js';
import type { DecodedRequest } from './types.js';
import { WireReader } from './wire.js';

/** Deepest Txn nesting accepted; deeper is refused rather than recursed into. */
export const MAX_TXN_DEPTH = 64;

const SORT_ORDERS = ['NONE', 'ASCEND', 'DESCEND'] as const;
const SORT_TARGETS = ['KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE'] as const;
const COMPARE_RESULTS = ['EQUAL', 'GREATER', 'LESS', 'NOT_EQUAL'] as const;
const COMPARE_TARGETS = ['VERSION', 'CREATE', 'MOD', 'VALUE', 'LEASE'] as const;

/**
 * Where the operations of one request (and its nested ones) put what they need. `at` is
 * the Txn position of the operation being decoded (undefined outside a Txn): every access
 * it needs carries it, so a denial can name the operation it stopped at.
 */
interface Sink {
  readonly accesses: Access[];
  readonly leases: LeaseChecks;
  at: AccessOrigin | undefined;
}

function newSink(): Sink {
  return { accesses: [], leases: new LeaseChecks(), at: undefined };
}

function rangeOp(message: Buffer, sink: Sink): KeySummary {
  let key = EMPTY;
  let rangeEnd = EMPTY;
  let limit = '0';
  let revision = '0';
  let sortOrder = 0;
  let sortTarget = 0;
  let serializable = false;
  let keysOnly = false;
  let countOnly = false;
  let minMod = '0';
  let maxMod = '0';
  let minCreate = '0';
  let maxCreate = '0';
  const r = new WireReader(message);
  while (r.next()) {
    switch (r.field) {
      case 1: key = r.bytes(); break;
      case 2: rangeEnd = r.bytes(); break;
      case 3: limit = r.int64(); break;
      case 4: revision = r.int64(); break;
      case 5: sortOrder = r.int32(); break;
      case 6: sortTarget = r.int32(); break;
      case 7: serializable = r.bool(); break;
      case 8: keysOnly = r.bool(); break;
      case 9: countOnly = r.bool(); break;
      case 10: minMod = r.int64(); break;
      case 11: maxMod = r.int64(); break;
      case 12: minCreate = r.int64(); break;
      case 13: maxCreate = r.int64(); break;
      default: r.skip();
    }
  }
  // count_only and keys_only still reveal which keys exist: a read like any other.
  sink.accesses.push(keyAccess('read', key, rangeEnd, sink.at));
  const details = new Details()
    .int('limit', limit)
    .int('revision', revision)
    .flag('serializable', serializable)
    .flag('keys_only', keysOnly)
    .flag('count_only', countOnly)
    .int('min_mod_revision', minMod)
    .int('max_mod_revision', maxMod)
    .int('min_create_revision', minCreate)
    .int('max_create_revision', maxCreate);
  if (sortOrder !== 0) details.always('sort_order', enumName(SORT_ORDERS, sortOrder));
  if (sortTarget !== 0) details.always('sort_target', enumName(SORT_TARGETS, sortTarget));
  return keySummary('range', key, rangeEnd, details);
}

function putOp(message: Buffer, sink: Sink): KeySummary {
  let key = EMPTY;
  let lease = '0';
  let prevKv = false;
  let ignoreValue = false;
  let ignoreLease = false;
  const r = new WireReader(message);
  while (r.next()) {
    switch (r.field) {
      case 1: key = r.bytes(); break;
      // Field 2 (value) is skipped on purpose: values never reach a decision or a record.
      case 3: lease = r.int64(); break;
      case 4: prevKv = r.bool(); break;
      case 5: ignoreValue = r.bool(); break;
      case 6: ignoreLease = r.bool(); break;
      default: r.skip();
    }
  }
  sink.accesses.push(keyAccess('write', key, EMPTY, sink.at));
  if (prevKv) sink.accesses.push(keyAccess('read', key, EMPTY, sink.at));
  // Attaching a key to a lease needs write on the keys already on it. Checked even with
  // ignore_lease set: etcd refuses that combination anyway, and this errs on the safe side.
  if (lease !== '0') sink.leases.add(lease, 'write');
  const details = new Details()
    .lease('lease', lease)
    .flag('prev_kv', prevKv)
    .flag('ignore_value', ignoreValue)
    .flag('ignore_lease', ignoreLease);
  return keySummary('put', key, EMPTY, details);
}

function deleteRangeOp(message: Buffer, sink: Sink): KeySummary {
  let key = EMPTY;
  let rangeEnd = EMPTY;
  let prevKv = false;
  const r = new WireReader(message);
  while (r.next()) {
    switch (r.field) {
      case 1: key = r.bytes(); break;
      case 2: rangeEnd = r.bytes(); break;
      case 3: prevKv = r.bool(); break;
      default: r.skip();
    }
  }
  sink.accesses.push(keyAccess('write', key, rangeEnd, sink.at));
  if (prevKv) sink.accesses.push(keyAccess('read', key, rangeEnd, sink.at));
  return keySummary('delete_range', key, rangeEnd, new Details().flag('prev_kv', prevKv));
}

function compareOp(message: Buffer, sink: Sink): KeySummary {
  let result = 0;
  let target = 0;
  let key = EMPTY;
  let rangeEnd = EMPTY;
  // The last member of the target_union oneof seen, for the record (never the value).
  let operand: readonly [string, string] | undefined;
  const r = new WireReader(message);
  while (r.next()) {
    switch (r.field) {
      case 1: result = r.int32(); break;
      case 2: target = r.int32(); break;
      case 3: key = r.bytes(); break;
      case 4: operand = ['version', r.int64()]; break;
      case 5: operand = ['create_revision', r.int64()]; break;
      case 6: operand = ['mod_revision', r.int64()]; break;
      case 7: r.skip(); operand = undefined; break;
      case 8: operand = ['lease', r.int64()]; break;
      case 64: rangeEnd = r.bytes(); break;
      default: r.skip();
    }
  }
  // A compare observes the key (or range): it needs read.
  sink.accesses.push(keyAccess('read', key, rangeEnd, sink.at));
  const details = new Details()
    .always('target', enumName(COMPARE_TARGETS, target))
    .always('result', enumName(COMPARE_RESULTS, result));
  if (operand?.[0] === 'lease') details.lease('lease', operand[1], true);
  else if (operand !== undefined) details.always(operand[0], operand[1]);
  return keySummary('compare', key, rangeEnd, details);
}

/**
 * One RequestOp of a Txn branch. Exactly one known member of the `request` oneof is
 * required: an empty op is refused by etcd anyway, and one we cannot see (a member added
 * by a later etcd) could touch keys unchecked. Repeated oneof members are refused too,
 * because protobuf implementations disagree on whether they merge.
 */
/** The `request` oneof member numbers of RequestOp, by the name records use. */
const REQUEST_OPS = ['', 'range', 'put', 'delete_range', 'txn'] as const;

function requestOp(message: Buffer, sink: Sink, depth: number, branch: 'success' | 'failure', index: number, parent: AccessOrigin | undefined): KeySummary {
  let member = 0;
  let body = EMPTY;
  const r = new WireReader(message);
  while (r.next()) {
    if (r.field >= 1 && r.field <= 4) {
      if (member !== 0) throw new DecodeError('txn: request op sets more than one operation');
      member = r.field;
      body = r.bytes();
    } else {
      r.skip();
    }
  }
  sink.at = originAt(branch, index, REQUEST_OPS[member] ?? '', parent);
  switch (member) {
    case 1: return rangeOp(body, sink);
    case 2: return putOp(body, sink);
    case 3: return deleteRangeOp(body, sink);
    case 4: return txnOp(body, sink, depth + 1);
    default: throw new DecodeError('txn: request op without a known operation');
  }
}

function originAt(branch: AccessOrigin['branch'], index: number, op: string, parent: AccessOrigin | undefined): AccessOrigin {
  return parent === undefined ? { branch, index, op } : { branch, index, op, parent };
}

function txnOp(message: Buffer, sink: Sink, depth: number): KeySummary {
  if (depth > MAX_TXN_DEPTH) throw new DecodeError(`txn: nested deeper than ${MAX_TXN_DEPTH}`);
  const compare: KeySummary[] = [];
  const success: KeySummary[] = [];
  const failure: KeySummary[] = [];
  // The operation this Txn is (undefined for the request itself): its parts nest under it.
  const parent = sink.at;
  const r = new WireReader(message);
  while (r.next()) {
    switch (r.field) {
      case 1:
        sink.at = originAt('compare', compare.length, 'compare', parent);
        compare.push(compareOp(r.bytes(), sink));
        break;
      // Both branches are checked, whichever would run (docs/authorization.md, KV.Txn).
      case 2: success.push(requestOp(r.bytes(), sink, depth, 'success', success.length, parent)); break;
      case 3: failure.push(requestOp(r.bytes(), sink, depth, 'failure', failure.length, parent)); break;
      default: r.skip();
    }
  }
  sink.at = parent;
  return { op: 'txn', compare, success, failure };
}

function finish(summary: KeySummary, sink: Sink): DecodedRequest {
  return decoded(sink.accesses, summary, sink.leases.list);
}

/** KV.Range: read on `[key, range_end)`. */
export function decodeRangeRequest(message: Buffer): DecodedRequest {
  const sink = newSink();
  return finish(rangeOp(message, sink), sink);
}

/** KV.Put: write on the key; prev_kv adds read; a lease adds a write check on the lease's keys. */
export function decodePutRequest(message: Buffer): DecodedRequest {
  const sink = newSink();
  return finish(putOp(message, sink), sink);
}

/** KV.DeleteRange: write on the range; prev_kv adds read. */
export function decodeDeleteRangeRequest(message: Buffer): DecodedRequest {
  const sink = newSink();
  return finish(deleteRangeOp(message, sink), sink);
}

/** KV.Txn: read on every compare target, plus every operation of both branches, recursively. */
export function decodeTxnRequest(message: Buffer): DecodedRequest {
  const sink = newSink();
  return finish(txnOp(message, sink, 0), sink);
}

/** KV.Compact: the `compact` capability. */
export function decodeCompactionRequest(message: Buffer): DecodedRequest {
  let revision = '0';
  let physical = false;
  const r = new WireReader(message);
  while (r.next()) {
    switch (r.field) {
      case 1: revision = r.int64(); break;
      case 2: physical = r.bool(); break;
      default: r.skip();
    }
  }
  const details = new Details().always('revision', revision).flag('physical', physical);
  return decoded([capability('compact')], keySummary('compact', undefined, undefined, details));
}
