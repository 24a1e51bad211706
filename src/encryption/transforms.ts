/**
 * Transforms of etcd messages on the protobuf wire, with no I/O (the keyring counts what
 * it seals and opens): values under an encrypted range are sealed in requests on their
 * way to etcd and opened in responses on their way back. Field numbers are etcd's
 * (rpc.proto, kv.proto).
 *
 * Invariants:
 * - Only the value fields of KeyValues and PutRequests under an encrypted range change,
 *   and the length prefixes of the messages that hold them. Every other byte, unknown
 *   fields included, is copied as it was (spans between fields are copied whole), and a
 *   message with nothing to change comes back as `undefined`: the caller forwards the
 *   original buffer. A rewritten message is written once, in one buffer, however deep
 *   the value sits (src/etcd/wire-splice.ts).
 * - A value that cannot be opened never comes back as a value: the transform fails
 *   naming the key (never the value), and the caller fails the call.
 * - An empty or absent value passes as it is: a keys_only answer, a delete event and a
 *   value written empty directly to etcd all look alike, and none holds data.
 * - A Txn comparing VALUE, or a Range sorting by VALUE, over an encrypted range cannot
 *   work on ciphertext (the compare would always fail, the order would be the
 *   ciphertexts'): it is refused instead of answered wrongly.
 */
import type { DecryptionFailure } from '../observability/metrics-types.js';
import { DecodeError } from '../etcd/types.js';
import { MAX_TXN_DEPTH } from '../etcd/kv.js';
import { WireReader } from '../etcd/wire.js';
import { Splice } from '../etcd/wire-splice.js';
import type { EncryptedResource, Keyring } from './keyring.js';

const EMPTY: Buffer = Buffer.alloc(0);
/** A gRPC message prefix: compressed flag and length (the transport's framing, reserved here). */
const GRPC_PREFIX = 5;

/** Compare.target VALUE and RangeRequest.sort_target VALUE (rpc.proto enums). */
const COMPARE_VALUE = 3;
const SORT_BY_VALUE = 4;

/** A request etcdgate refuses because it cannot work on encrypted values. */
export interface ValueRefusal {
  readonly kind: 'value-compare' | 'value-sort' | 'election';
  /** The key (or range start) the refused operation names. */
  readonly key: Buffer;
  /** The encryption resource it falls under. */
  readonly resource: string;
}

/** A value in a response that cannot be opened. */
export interface Undecryptable {
  /** The key whose value it is; undefined when etcd's response itself could not be read. */
  readonly key: Buffer | undefined;
  readonly resource: string | undefined;
  readonly reason: DecryptionFailure;
  readonly detail: string;
}

/** What becomes of a request: forwarded as sent, forwarded rewritten, or refused. */
export type RequestOutcome =
  | { readonly kind: 'unchanged' }
  /** `framed` is `message` behind the 5-byte gRPC prefix of an uncompressed message, in one buffer. */
  | { readonly kind: 'rewritten'; readonly message: Buffer; readonly framed: Buffer }
  | { readonly kind: 'refused'; readonly refusal: ValueRefusal };

/** What becomes of a response: `message` is the original buffer when nothing changed. */
export type ResponseOutcome = { readonly ok: true; readonly message: Buffer } | { readonly ok: false; readonly failure: Undecryptable };

/**
 * What becomes of a response, not yet written out: `rewritten` is undefined when nothing
 * changed, else the response with its values opened (Splice.parts to send it without
 * writing it whole, Splice.finish for one buffer).
 */
export type OpenOutcome = { readonly ok: true; readonly rewritten: Splice | undefined } | { readonly ok: false; readonly failure: Undecryptable };

/** Request messages that carry values or value-dependent operations. */
export type RequestKind = 'put' | 'txn' | 'range';
/** Response messages that carry KeyValues. */
export type ResponseKind = 'range' | 'put' | 'delete-range' | 'txn' | 'watch';

/** Unwinds a walk as soon as a request must be refused (caught at the entry points). */
class Refused extends Error {
  constructor(readonly refusal: ValueRefusal) {
    super(refusal.kind);
  }
}

/** Unwinds a walk as soon as a value cannot be opened (caught at the entry points). */
class Failed extends Error {
  constructor(readonly failure: Undecryptable) {
    super(failure.reason);
  }
}

// ---- requests ---------------------------------------------------------------------

/**
 * Seals the values a request writes under encrypted ranges, or refuses it.
 * @throws DecodeError when the message is not a valid one of its kind.
 */
export function encryptRequest(ring: Keyring, kind: RequestKind, message: Buffer): RequestOutcome {
  try {
    let rewritten: Splice | undefined;
    if (kind === 'put') rewritten = putRequest(ring, message);
    else if (kind === 'txn') rewritten = txnRequest(ring, message, 0);
    else rangeRequest(ring, message);
    if (rewritten === undefined) return { kind: 'unchanged' };
    const framed = rewritten.finish(GRPC_PREFIX);
    framed[0] = 0;
    framed.writeUInt32BE(framed.length - GRPC_PREFIX, 1);
    return { kind: 'rewritten', message: framed.subarray(GRPC_PREFIX), framed };
  } catch (error: unknown) {
    if (error instanceof Refused) return { kind: 'refused', refusal: error.refusal };
    throw error;
  }
}

/** PutRequest { key = 1, value = 2, lease = 3, prev_kv = 4, ignore_value = 5, ignore_lease = 6 }. */
function putRequest(ring: Keyring, message: Buffer): Splice | undefined {
  let key = EMPTY;
  let ignoreValue = false;
  const values: { start: number; end: number; bytes: Buffer }[] = [];
  const r = new WireReader(message);
  while (r.next()) {
    if (r.field === 1) key = r.bytes();
    else if (r.field === 2) {
      const start = r.fieldStart;
      const bytes = r.bytes();
      values.push({ start, end: r.offset, bytes });
    } else if (r.field === 5) ignoreValue = r.bool();
  }
  // ignore_value keeps the value etcd holds (already sealed for this key): nothing to seal.
  if (ignoreValue) return undefined;
  const resource = ring.resourceFor(key);
  if (resource === undefined || !resource.encrypts) return undefined;
  // The last occurrence is the value (protobuf: last one wins); earlier ones are dropped.
  const last = values.at(-1);
  const sealed = resource.encryptParts(key, last?.bytes ?? EMPTY);
  const splice = new Splice(message);
  for (const occurrence of values) splice.replace(occurrence.start, occurrence.end, 2, occurrence === last ? sealed : null);
  // proto3 leaves an empty value out: the sealed one is added at the end.
  if (last === undefined) splice.append(2, sealed);
  return splice;
}

/** RangeRequest { key = 1, range_end = 2, sort_target = 6 }: sorting by value is refused over encrypted ranges. */
function rangeRequest(ring: Keyring, message: Buffer): void {
  let key = EMPTY;
  let rangeEnd = EMPTY;
  let sortTarget = 0;
  const r = new WireReader(message);
  while (r.next()) {
    if (r.field === 1) key = r.bytes();
    else if (r.field === 2) rangeEnd = r.bytes();
    else if (r.field === 6) sortTarget = r.int32();
  }
  if (sortTarget !== SORT_BY_VALUE) return;
  const resource = ring.intersecting(key, rangeEnd);
  if (resource !== undefined) throw new Refused({ kind: 'value-sort', key, resource: resource.name });
}

/** Compare { target = 2, key = 3, range_end = 64 }: a VALUE compare over an encrypted range is refused. */
function compare(ring: Keyring, message: Buffer): void {
  let target = 0;
  let key = EMPTY;
  let rangeEnd = EMPTY;
  const r = new WireReader(message);
  while (r.next()) {
    if (r.field === 2) target = r.int32();
    else if (r.field === 3) key = r.bytes();
    else if (r.field === 64) rangeEnd = r.bytes();
  }
  if (target !== COMPARE_VALUE) return;
  const resource = ring.intersecting(key, rangeEnd);
  if (resource !== undefined) throw new Refused({ kind: 'value-compare', key, resource: resource.name });
}

/** TxnRequest { compare = 1, success = 2, failure = 3 }: both branches, nested Txns included. */
function txnRequest(ring: Keyring, message: Buffer, depth: number): Splice | undefined {
  if (depth > MAX_TXN_DEPTH) throw new DecodeError(`txn: nested deeper than ${MAX_TXN_DEPTH}`);
  const splice = new Splice(message);
  const r = new WireReader(message);
  while (r.next()) {
    if (r.field === 1) compare(ring, r.bytes());
    else if (r.field === 2 || r.field === 3) {
      const start = r.fieldStart;
      const op = requestOp(ring, r.bytes(), depth);
      if (op !== undefined) splice.replace(start, r.offset, r.field, op);
    }
  }
  return splice.changed ? splice : undefined;
}

/** RequestOp { request_range = 1, request_put = 2, request_delete_range = 3, request_txn = 4 }. */
function requestOp(ring: Keyring, message: Buffer, depth: number): Splice | undefined {
  const splice = new Splice(message);
  const r = new WireReader(message);
  while (r.next()) {
    const field = r.field;
    if (field === 1) rangeRequest(ring, r.bytes());
    else if (field === 2 || field === 4) {
      const start = r.fieldStart;
      const body = r.bytes();
      const rewritten = field === 2 ? putRequest(ring, body) : txnRequest(ring, body, depth + 1);
      if (rewritten !== undefined) splice.replace(start, r.offset, field, rewritten);
    }
  }
  return splice.changed ? splice : undefined;
}

// ---- responses --------------------------------------------------------------------

/** Where KeyValues sit in a response: field number -> a nested message shape, or a KeyValue. */
type Shape = ReadonlyMap<number, Shape | 'kv'>;

const RANGE_RESPONSE: Shape = new Map([[2, 'kv']]); // kvs
const PUT_RESPONSE: Shape = new Map([[2, 'kv']]); // prev_kv
const DELETE_RANGE_RESPONSE: Shape = new Map([[3, 'kv']]); // prev_kvs
const RESPONSE_OP = new Map<number, Shape | 'kv'>([
  [1, RANGE_RESPONSE],
  [2, PUT_RESPONSE],
  [3, DELETE_RANGE_RESPONSE],
]);
const TXN_RESPONSE: Shape = new Map([[3, RESPONSE_OP]]); // responses
RESPONSE_OP.set(4, TXN_RESPONSE); // response_txn: Txns nest
const EVENT: Shape = new Map([[2, 'kv'], [3, 'kv']]); // kv, prev_kv
const WATCH_RESPONSE: Shape = new Map([[11, EVENT]]); // events

const RESPONSE_SHAPES: Readonly<Record<ResponseKind, Shape>> = {
  range: RANGE_RESPONSE,
  put: PUT_RESPONSE,
  'delete-range': DELETE_RANGE_RESPONSE,
  txn: TXN_RESPONSE,
  watch: WATCH_RESPONSE,
};

/** Nesting allowed in a response: a Txn response is two levels per Txn level. */
const MAX_RESPONSE_DEPTH = 2 * MAX_TXN_DEPTH + 4;

/** Opens every value under an encrypted range in a response, in one buffer. Never throws. */
export function decryptResponse(ring: Keyring, kind: ResponseKind, message: Buffer): ResponseOutcome {
  const opened = openResponse(ring, kind, message);
  return opened.ok ? { ok: true, message: opened.rewritten?.finish() ?? message } : opened;
}

/** Opens every value under an encrypted range in a response, leaving the writing to the caller. Never throws. */
export function openResponse(ring: Keyring, kind: ResponseKind, message: Buffer): OpenOutcome {
  try {
    return { ok: true, rewritten: walk(ring, message, RESPONSE_SHAPES[kind], 0) };
  } catch (error: unknown) {
    if (error instanceof Failed) return { ok: false, failure: error.failure };
    if (error instanceof DecodeError) {
      return { ok: false, failure: { key: undefined, resource: undefined, reason: 'malformed', detail: 'etcd\'s response could not be read' } };
    }
    throw error;
  }
}

function walk(ring: Keyring, message: Buffer, shape: Shape, depth: number): Splice | undefined {
  if (depth > MAX_RESPONSE_DEPTH) throw new DecodeError('response nested too deep');
  let splice: Splice | undefined;
  const r = new WireReader(message);
  while (r.next()) {
    const child = shape.get(r.field);
    if (child === undefined) continue;
    const start = r.fieldStart;
    const body = r.bytes();
    const rewritten = child === 'kv' ? keyValue(ring, body) : walk(ring, body, child, depth + 1);
    if (rewritten === undefined) continue;
    splice ??= new Splice(message);
    splice.replace(start, r.offset, r.field, rewritten);
  }
  return splice;
}

/** KeyValue { key = 1, create_revision = 2, mod_revision = 3, version = 4, value = 5, lease = 6 }. */
function keyValue(ring: Keyring, message: Buffer): Splice | undefined {
  let key = EMPTY;
  let value: { start: number; end: number; bytes: Buffer } | undefined;
  let values = 0;
  const r = new WireReader(message);
  while (r.next()) {
    if (r.field === 1) key = r.bytes();
    else if (r.field === 5) {
      const start = r.fieldStart;
      const bytes = r.bytes();
      value = { start, end: r.offset, bytes };
      values += 1;
    }
  }
  if (value === undefined || value.bytes.length === 0) return undefined;
  const resource: EncryptedResource | undefined = ring.resourceFor(key);
  if (resource === undefined) return undefined;
  // etcd writes one value field; several would let a reader pick another one than we open.
  if (values > 1) throw new Failed({ key, resource: resource.name, reason: 'malformed', detail: 'the key-value holds more than one value' });
  const outcome = resource.decrypt(key, value.bytes);
  if (!outcome.ok) throw new Failed({ key, resource: resource.name, reason: outcome.reason, detail: outcome.detail });
  if (outcome.value === value.bytes) return undefined;
  const splice = new Splice(message);
  // An empty value is left out, as etcd (proto3) writes it.
  splice.replace(value.start, value.end, 5, outcome.value.length === 0 ? null : outcome.value);
  return splice;
}
