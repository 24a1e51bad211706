/**
 * The work behind `etcdgate encryption status` and `etcdgate encryption rewrite`, done
 * through etcdgate's own upstream calls (src/upstream/calls.ts) under its upstream
 * identity, never through the client-facing proxy.
 *
 * - status pages through every configured range (or one prefix) and counts how each
 *   value is held: by provider and key name, plaintext, or unreadable.
 * - rewrite pages through one prefix and puts every value that is not yet in the form
 *   its resource writes (primary key, or plaintext when identity is first) back in that
 *   form. Each key is written by a Txn guarded by the mod_revision it was read at, so a
 *   client's concurrent write is never overwritten: the Txn fails, its failure branch
 *   returns the key's current value, and that key is tried again. The lease is kept
 *   (ignore_lease). A value that cannot be decrypted is left alone and reported.
 *
 * Pages are read linearizably, in key order, `PAGE_SIZE` keys at a time, so memory stays
 * bounded whatever the prefix holds.
 */
import { WireReader } from '../etcd/wire.js';
import { WireWriter } from '../etcd/wire-writer.js';
import { prefixEnd } from '../etcd/keys.js';
import type { UpstreamCalls } from '../upstream/calls.js';
import type { EncryptedResource, Keyring } from './keyring.js';

const RANGE = '/etcdserverpb.KV/Range';
const TXN = '/etcdserverpb.KV/Txn';
/** Keys read per page. */
export const PAGE_SIZE = 500;
/** Keys rewritten concurrently. */
const CONCURRENCY = 8;
/** Times one key is retried after a concurrent write before it is reported as failed. */
const MAX_RETRIES = 50;
/** Keys whose values could not be decrypted that a summary names (the count is always exact). */
const MAX_LISTED = 20;

const EMPTY: Buffer = Buffer.alloc(0);
const NUL = Buffer.from([0]);

/** One key-value as read for maintenance. */
interface StoredKv {
  readonly key: Buffer;
  readonly value: Buffer;
  readonly modRevision: string;
}

/** RangeRequest { key = 1, range_end = 2, limit = 3 }. */
function rangeRequest(key: Buffer, rangeEnd: Buffer, limit: number): Buffer {
  return new WireWriter().bytes(1, key, true).bytes(2, rangeEnd).int(3, limit).finish();
}

/** KeyValue { key = 1, mod_revision = 3, value = 5 }. */
function readKv(message: Buffer): StoredKv {
  let key = EMPTY;
  let value = EMPTY;
  let modRevision = '0';
  const r = new WireReader(message);
  while (r.next()) {
    if (r.field === 1) key = r.bytes();
    else if (r.field === 3) modRevision = r.int64();
    else if (r.field === 5) value = r.bytes();
  }
  return { key, value, modRevision };
}

/** RangeResponse { kvs = 2, more = 3 }. */
function readRange(message: Buffer): { kvs: StoredKv[]; more: boolean } {
  const kvs: StoredKv[] = [];
  let more = false;
  const r = new WireReader(message);
  while (r.next()) {
    if (r.field === 2) kvs.push(readKv(r.bytes()));
    else if (r.field === 3) more = r.bool();
  }
  return { kvs, more };
}

/** Every key-value in [from, end), page by page, in key order. */
async function* scan(calls: UpstreamCalls, from: Buffer, end: Buffer): AsyncGenerator<StoredKv[]> {
  let start = from;
  for (;;) {
    const page = readRange(await calls.unary(RANGE, rangeRequest(start, end, PAGE_SIZE), { idempotent: true }));
    if (page.kvs.length > 0) yield page.kvs;
    const last = page.kvs.at(-1);
    if (!page.more || last === undefined) return;
    // The next page starts right after the last key read.
    start = Buffer.concat([last.key, NUL]);
  }
}

/** The ranges to visit: the prefix given, or each configured prefix and range. */
export interface ScanTarget {
  readonly from: Buffer;
  readonly end: Buffer;
}

/** A prefix as a scan target. */
export function prefixTarget(prefix: Buffer): ScanTarget {
  return { from: prefix, end: prefixEnd(prefix) };
}

/** How the values of one resource are held: label ("aesgcm:key1", "plaintext", ...) -> count. */
export interface ResourceStatus {
  readonly resource: string;
  /** What new values are written with ("aesgcm:key1", or "identity"). */
  readonly writesWith: string;
  readonly counts: Map<string, number>;
}

/** `encryption status`: counts per resource of how values are held under `targets`. */
export async function encryptionStatus(calls: UpstreamCalls, keyring: Keyring, targets: readonly ScanTarget[], onPage?: (scanned: number) => void): Promise<{ resources: ResourceStatus[]; scanned: number; outside: number }> {
  const byName = new Map<string, ResourceStatus>();
  for (const resource of keyring.resources) byName.set(resource.name, { resource: resource.name, writesWith: writesWith(resource), counts: new Map() });
  let scanned = 0;
  let outside = 0;
  for (const target of targets) {
    for await (const page of scan(calls, target.from, target.end)) {
      for (const kv of page) {
        scanned += 1;
        const resource = keyring.resourceFor(kv.key);
        const status = resource === undefined ? undefined : byName.get(resource.name);
        if (resource === undefined || status === undefined) {
          outside += 1;
          continue;
        }
        const label = holderLabel(resource, kv.value);
        status.counts.set(label, (status.counts.get(label) ?? 0) + 1);
      }
      onPage?.(scanned);
    }
  }
  return { resources: [...byName.values()], scanned, outside };
}

function writesWith(resource: EncryptedResource): string {
  const { provider, keyName } = resource.writesWith;
  return provider === 'identity' ? 'identity' : `${provider}:${keyName}`;
}

function holderLabel(resource: EncryptedResource, value: Buffer): string {
  if (value.length === 0) return 'empty';
  const holder = resource.holder(value);
  if (holder.kind === 'sealed') return `${holder.provider}:${holder.keyName}${holder.known ? '' : ' (key not configured)'}`;
  return holder.kind;
}

/** What a rewrite did. */
export interface RewriteSummary {
  /** Key-values read under the prefix. */
  scanned: number;
  /** Put back in the resource's write form. */
  rewritten: number;
  /** Already in the write form, or empty. */
  unchanged: number;
  /** Outside every encryption resource (left alone). */
  outside: number;
  /** Writes retried after a concurrent write to the same key. */
  retried: number;
  /** Deleted by someone else before they could be rewritten. */
  gone: number;
  /** Values that could not be decrypted (left alone), and the first keys among them. */
  failed: number;
  readonly failedKeys: Buffer[];
}

/** `encryption rewrite`: every value under `prefix` put back in its resource's write form. */
export async function rewritePrefix(calls: UpstreamCalls, keyring: Keyring, prefix: Buffer, onProgress?: (summary: RewriteSummary) => void): Promise<RewriteSummary> {
  const summary: RewriteSummary = { scanned: 0, rewritten: 0, unchanged: 0, outside: 0, retried: 0, gone: 0, failed: 0, failedKeys: [] };
  const target = prefixTarget(prefix);
  for await (const page of scan(calls, target.from, target.end)) {
    summary.scanned += page.length;
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let kv = page[next++]; kv !== undefined; kv = page[next++]) await rewriteOne(calls, keyring, kv, summary);
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, page.length) }, worker));
    onProgress?.(summary);
  }
  return summary;
}

async function rewriteOne(calls: UpstreamCalls, keyring: Keyring, first: StoredKv, summary: RewriteSummary): Promise<void> {
  const resource = keyring.resourceFor(first.key);
  if (resource === undefined) {
    summary.outside += 1;
    return;
  }
  let kv: StoredKv | undefined = first;
  for (let attempt = 0; kv !== undefined; attempt++) {
    if (kv.value.length === 0 || resource.isCurrent(kv.value)) {
      summary.unchanged += 1;
      return;
    }
    const opened = resource.decrypt(kv.key, kv.value);
    if (!opened.ok || attempt > MAX_RETRIES) {
      summary.failed += 1;
      if (summary.failedKeys.length < MAX_LISTED) summary.failedKeys.push(Buffer.from(kv.key));
      return;
    }
    const stored = resource.encrypt(kv.key, opened.value);
    const answer = readTxn(await calls.unary(TXN, guardedPut(kv.key, kv.modRevision, stored)));
    if (answer.succeeded) {
      summary.rewritten += 1;
      return;
    }
    // Someone wrote (or deleted) the key since it was read: go again from its current value.
    summary.retried += 1;
    kv = answer.current;
  }
  summary.gone += 1;
}

/**
 * Txn { compare: mod_revision(key) == modRevision, success: put(key, stored,
 * ignore_lease), failure: range(key) }. Compare { result = 1 (EQUAL = 0), target = 2
 * (MOD = 2), key = 3, mod_revision = 6 }; PutRequest { key = 1, value = 2, ignore_lease = 6 }.
 */
function guardedPut(key: Buffer, modRevision: string, stored: Buffer): Buffer {
  const compare = new WireWriter().int(2, 2).bytes(3, key, true).int(6, BigInt(modRevision)).finish();
  const put = new WireWriter().bytes(1, key, true).bytes(2, stored, true).int(6, true).finish();
  const range = rangeRequest(key, EMPTY, 0);
  return new WireWriter()
    .bytes(1, compare, true)
    .bytes(2, new WireWriter().bytes(2, put, true).finish(), true)
    .bytes(3, new WireWriter().bytes(1, range, true).finish(), true)
    .finish();
}

/** TxnResponse { succeeded = 2, responses = 3: ResponseOp { response_range = 1 } }. */
function readTxn(message: Buffer): { succeeded: boolean; current: StoredKv | undefined } {
  let succeeded = false;
  let current: StoredKv | undefined;
  const r = new WireReader(message);
  while (r.next()) {
    if (r.field === 2) succeeded = r.bool();
    else if (r.field === 3) {
      const op = new WireReader(r.bytes());
      while (op.next()) if (op.field === 1) current = readRange(op.bytes()).kvs[0];
    }
  }
  return { succeeded, current };
}
