/**
 * `etcdgate explain --method Txn` describes its transaction either compactly on the
 * command line (--txn) or in a YAML/JSON file (--txn-file); both become the same
 * TxnDescription, which is encoded into a real TxnRequest so that the proxy's own
 * decoder (src/etcd/kv.ts) says what it needs. Values are never part of a description:
 * no decision depends on them.
 *
 * Compact form (keys must not contain whitespace, "," or ";"; use a file for those and
 * for nested transactions):
 *
 *   compare: KEY [TARGET] [RANGE], ...; success: OP, ...; failure: OP, ...
 *   TARGET  version (default) | create | mod | value | lease
 *   OP      range KEY [RANGE] | put KEY [prev_kv] [lease] | delete KEY [RANGE] [prev_kv]
 *   RANGE   prefix | from-key | end=KEY
 *
 * e.g. `compare: /a mod; success: put /a; failure: range /b prefix`.
 *
 * File form: { compare: [{ key, target?, rangeEnd? | prefix? | fromKey? }],
 * success: [OP], failure: [OP] } where OP is one of { range: KEY, ...range },
 * { put: KEY, prevKv?, lease? }, { delete: KEY, ...range, prevKv? } or
 * { txn: { compare, success, failure } }.
 */
import { parse as parseYaml } from 'yaml';
import { ALL_KEYS_FROM, prefixEnd } from '../etcd/keys.js';
import { WireWriter } from '../etcd/wire-writer.js';
import { UsageError } from './usage-error.js';

export const COMPARE_TARGETS = ['version', 'create', 'mod', 'value', 'lease'] as const;
export type CompareTarget = (typeof COMPARE_TARGETS)[number];

/** One compare: the key (or range) it observes. */
export interface CompareDescription {
  readonly key: Buffer;
  readonly rangeEnd: Buffer;
  readonly target: CompareTarget;
}

/** One operation of a branch. `lease` on a put means "with the lease of --lease / --lease-key". */
export type OpDescription =
  | { readonly op: 'range'; readonly key: Buffer; readonly rangeEnd: Buffer }
  | { readonly op: 'put'; readonly key: Buffer; readonly prevKv: boolean; readonly lease: boolean }
  | { readonly op: 'delete'; readonly key: Buffer; readonly rangeEnd: Buffer; readonly prevKv: boolean }
  | { readonly op: 'txn'; readonly txn: TxnDescription };

export interface TxnDescription {
  readonly compare: readonly CompareDescription[];
  readonly success: readonly OpDescription[];
  readonly failure: readonly OpDescription[];
}

const EMPTY: Buffer = Buffer.alloc(0);
const SECTIONS = ['compare', 'success', 'failure'] as const;
type Section = (typeof SECTIONS)[number];

const utf8 = (text: string): Buffer => Buffer.from(text, 'utf8');

/** The range end of a RANGE word, or undefined when `word` is not one. */
function rangeWord(word: string, key: Buffer): Buffer | undefined {
  if (word === 'prefix') return prefixEnd(key);
  if (word === 'from-key') return Buffer.from(ALL_KEYS_FROM);
  if (word.startsWith('end=') && word.length > 4) return utf8(word.slice(4));
  return undefined;
}

function compactCompare(words: readonly string[], where: string): CompareDescription {
  const [keyWord, ...rest] = words;
  if (keyWord === undefined) throw new UsageError(`${where}: a compare needs a key`);
  const key = utf8(keyWord);
  let target: CompareTarget = 'version';
  let rangeEnd = EMPTY;
  for (const word of rest) {
    const end = rangeWord(word, key);
    const asTarget = COMPARE_TARGETS.find((t) => t === word);
    if (end !== undefined) rangeEnd = end;
    else if (asTarget !== undefined) target = asTarget;
    else throw new UsageError(`${where}: unknown word "${word}" (a target ${COMPARE_TARGETS.join('|')}, or prefix, from-key, end=KEY)`);
  }
  return { key, rangeEnd, target };
}

function compactOp(words: readonly string[], where: string): OpDescription {
  const [verb, keyWord, ...rest] = words;
  if (verb === undefined) throw new UsageError(`${where}: empty operation`);
  if (keyWord === undefined) throw new UsageError(`${where}: "${verb}" needs a key`);
  const key = utf8(keyWord);
  let rangeEnd = EMPTY;
  let prevKv = false;
  let lease = false;
  for (const word of rest) {
    const end = verb === 'put' ? undefined : rangeWord(word, key);
    if (end !== undefined) rangeEnd = end;
    else if (word === 'prev_kv' || word === 'prev-kv') prevKv = true;
    else if (word === 'lease' && verb === 'put') lease = true;
    else throw new UsageError(`${where}: "${word}" does not apply to ${verb}`);
  }
  switch (verb) {
    case 'range':
    case 'get':
      if (prevKv) throw new UsageError(`${where}: prev_kv does not apply to range`);
      return { op: 'range', key, rangeEnd };
    case 'put':
      return { op: 'put', key, prevKv, lease };
    case 'delete':
    case 'del':
      return { op: 'delete', key, rangeEnd, prevKv };
    default:
      throw new UsageError(`${where}: unknown operation "${verb}" (range, put or delete; nested txn only in --txn-file)`);
  }
}

/** Parses the compact form (see the file comment). */
export function parseCompactTxn(text: string): TxnDescription {
  const sections: Partial<Record<Section, string[][]>> = {};
  for (const part of text.split(';')) {
    if (part.trim() === '') continue;
    const colon = part.indexOf(':');
    const name = (colon === -1 ? part : part.slice(0, colon)).trim();
    const section = SECTIONS.find((s) => s === name);
    if (colon === -1 || section === undefined) {
      throw new UsageError(`--txn: "${part.trim()}" does not start with compare:, success: or failure:`);
    }
    if (sections[section] !== undefined) throw new UsageError(`--txn: ${section}: given twice`);
    const items = part.slice(colon + 1).split(',').map((item) => item.trim().split(/\s+/u).filter((w) => w !== ''));
    sections[section] = items.filter((words) => words.length > 0);
  }
  return {
    compare: (sections.compare ?? []).map((words, i) => compactCompare(words, `--txn compare[${i}]`)),
    success: (sections.success ?? []).map((words, i) => compactOp(words, `--txn success[${i}]`)),
    failure: (sections.failure ?? []).map((words, i) => compactOp(words, `--txn failure[${i}]`)),
  };
}

type Mapping = Record<string, unknown>;

function isMapping(value: unknown): value is Mapping {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function onlyKeys(value: Mapping, where: string, allowed: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw new UsageError(`${where}.${key}: unknown key (allowed: ${allowed.join(', ')})`);
  }
}

function keyText(value: unknown, where: string): Buffer {
  if (typeof value !== 'string' || value === '') throw new UsageError(`${where}: must be a non-empty key string`);
  return utf8(value);
}

function flag(value: unknown, where: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw new UsageError(`${where}: must be true or false`);
  return value;
}

/** rangeEnd / prefix / fromKey of a file entry: at most one. */
function fileRange(entry: Mapping, key: Buffer, where: string): Buffer {
  const given = ['rangeEnd', 'prefix', 'fromKey'].filter((name) => entry[name] !== undefined && entry[name] !== false);
  if (given.length > 1) throw new UsageError(`${where}: give at most one of rangeEnd, prefix, fromKey`);
  if (entry['rangeEnd'] !== undefined) return keyText(entry['rangeEnd'], `${where}.rangeEnd`);
  if (flag(entry['prefix'], `${where}.prefix`)) return prefixEnd(key);
  if (flag(entry['fromKey'], `${where}.fromKey`)) return Buffer.from(ALL_KEYS_FROM);
  return EMPTY;
}

function fileCompare(entry: unknown, where: string): CompareDescription {
  if (!isMapping(entry)) throw new UsageError(`${where}: must be a mapping { key, target }`);
  onlyKeys(entry, where, ['key', 'target', 'rangeEnd', 'prefix', 'fromKey']);
  const key = keyText(entry['key'], `${where}.key`);
  const target = entry['target'] === undefined ? 'version' : COMPARE_TARGETS.find((t) => t === entry['target']);
  if (target === undefined) throw new UsageError(`${where}.target: must be one of ${COMPARE_TARGETS.join(', ')}`);
  return { key, rangeEnd: fileRange(entry, key, where), target };
}

function fileOp(entry: unknown, where: string, depth: number): OpDescription {
  if (!isMapping(entry)) throw new UsageError(`${where}: must be a mapping such as { put: /a }`);
  const verbs = ['range', 'put', 'delete', 'txn'].filter((verb) => entry[verb] !== undefined);
  if (verbs.length !== 1) throw new UsageError(`${where}: must name exactly one of range, put, delete, txn`);
  switch (verbs[0]) {
    case 'range': {
      onlyKeys(entry, where, ['range', 'rangeEnd', 'prefix', 'fromKey']);
      const key = keyText(entry['range'], `${where}.range`);
      return { op: 'range', key, rangeEnd: fileRange(entry, key, where) };
    }
    case 'put':
      onlyKeys(entry, where, ['put', 'prevKv', 'lease']);
      return { op: 'put', key: keyText(entry['put'], `${where}.put`), prevKv: flag(entry['prevKv'], `${where}.prevKv`), lease: flag(entry['lease'], `${where}.lease`) };
    case 'delete': {
      onlyKeys(entry, where, ['delete', 'rangeEnd', 'prefix', 'fromKey', 'prevKv']);
      const key = keyText(entry['delete'], `${where}.delete`);
      return { op: 'delete', key, rangeEnd: fileRange(entry, key, where), prevKv: flag(entry['prevKv'], `${where}.prevKv`) };
    }
    default:
      onlyKeys(entry, where, ['txn']);
      return { op: 'txn', txn: fileTxn(entry['txn'], `${where}.txn`, depth + 1) };
  }
}

/** Nesting deeper than this is refused here; the proxy's own limit is src/etcd/kv.ts MAX_TXN_DEPTH. */
const MAX_FILE_DEPTH = 64;

function fileTxn(value: unknown, where: string, depth: number): TxnDescription {
  if (depth > MAX_FILE_DEPTH) throw new UsageError(`${where}: nested deeper than ${MAX_FILE_DEPTH}`);
  if (!isMapping(value)) throw new UsageError(`${where}: must be a mapping { compare, success, failure }`);
  onlyKeys(value, where, SECTIONS);
  const list = (name: Section): unknown[] => {
    const items = value[name];
    if (items === undefined || items === null) return [];
    if (!Array.isArray(items)) throw new UsageError(`${where}${where === '' ? '' : '.'}${name}: must be a list`);
    return items;
  };
  const at = (name: Section, i: number): string => `${where}${where === '' ? '' : '.'}${name}[${i}]`;
  return {
    compare: list('compare').map((entry, i) => fileCompare(entry, at('compare', i))),
    success: list('success').map((entry, i) => fileOp(entry, at('success', i), depth)),
    failure: list('failure').map((entry, i) => fileOp(entry, at('failure', i), depth)),
  };
}

/** Parses the file form from YAML or JSON text. */
export function parseTxnFile(text: string): TxnDescription {
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error: unknown) {
    throw new UsageError(`--txn-file: not YAML or JSON (${error instanceof Error ? (error.message.split('\n', 1)[0] ?? '') : String(error)})`);
  }
  return fileTxn(document, '', 0);
}

// Field numbers and enum values are etcd's (api/etcdserverpb/rpc.proto).
function encodeOp(op: OpDescription, leaseId: bigint): Buffer {
  switch (op.op) {
    case 'range':
      return new WireWriter().bytes(1, new WireWriter().bytes(1, op.key).bytes(2, op.rangeEnd).finish(), true).finish();
    case 'put': {
      const put = new WireWriter().bytes(1, op.key).int(3, op.lease ? leaseId : 0n).int(4, op.prevKv).finish();
      return new WireWriter().bytes(2, put, true).finish();
    }
    case 'delete': {
      const del = new WireWriter().bytes(1, op.key).bytes(2, op.rangeEnd).int(3, op.prevKv).finish();
      return new WireWriter().bytes(3, del, true).finish();
    }
    case 'txn':
      return new WireWriter().bytes(4, encodeTxn(op.txn, leaseId), true).finish();
  }
}

/**
 * The TxnRequest for `txn`. Puts marked `lease` carry `leaseId` (which must not be 0:
 * lease 0 means "no lease" on the wire).
 */
export function encodeTxn(txn: TxnDescription, leaseId: bigint): Buffer {
  const out = new WireWriter();
  for (const compare of txn.compare) {
    const target = COMPARE_TARGETS.indexOf(compare.target);
    out.bytes(1, new WireWriter().int(2, target).bytes(3, compare.key).bytes(64, compare.rangeEnd).finish(), true);
  }
  for (const op of txn.success) out.bytes(2, encodeOp(op, leaseId), true);
  for (const op of txn.failure) out.bytes(3, encodeOp(op, leaseId), true);
  return out.finish();
}

/** Whether any put in `txn` (nested ones included) names the lease. */
export function txnUsesLease(txn: TxnDescription): boolean {
  const uses = (op: OpDescription): boolean => (op.op === 'put' ? op.lease : op.op === 'txn' ? txnUsesLease(op.txn) : false);
  return txn.success.some(uses) || txn.failure.some(uses);
}
