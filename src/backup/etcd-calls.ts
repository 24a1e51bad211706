/**
 * The etcd calls a backup makes under etcdgate's own identity, through UpstreamCalls:
 * Maintenance.Status (who serves, at which revision and version), Maintenance.Snapshot
 * (the database as a stream), LeaseGrant/LeaseRevoke and the Txn that claims a slot
 * for one instance of a fleet. Messages are written with WireWriter and read with
 * WireReader; field numbers are etcd's (protos/etcdserverpb/rpc.proto).
 */
import { createHash } from 'node:crypto';
import { WireReader } from '../etcd/wire.js';
import { WireWriter } from '../etcd/wire-writer.js';
import type { UpstreamCalls } from '../upstream/calls.js';

const STATUS = '/etcdserverpb.Maintenance/Status';
const SNAPSHOT = '/etcdserverpb.Maintenance/Snapshot';
const LEASE_GRANT = '/etcdserverpb.Lease/LeaseGrant';
const LEASE_REVOKE = '/etcdserverpb.Lease/LeaseRevoke';
const TXN = '/etcdserverpb.KV/Txn';

/** What Maintenance.Status says about the member that answered. */
export interface MemberStatus {
  /** Member ID, 16 hex digits (as etcdctl prints it). */
  readonly memberId: string;
  /** The store revision when the member answered (decimal). */
  readonly revision: string;
  /** etcd's version, e.g. "3.4.23". */
  readonly version: string;
}

/** Hex of a uint64 field as etcdctl shows member IDs. */
function hex16(decimal: string): string {
  return BigInt(decimal).toString(16).padStart(16, '0');
}

/** StatusResponse { header = 1 { member_id = 2, revision = 3 }, version = 2 }. */
export function parseStatus(response: Buffer): MemberStatus {
  const reader = new WireReader(response);
  let memberId = '0';
  let revision = '0';
  let version = '';
  while (reader.next()) {
    if (reader.field === 1) {
      const header = new WireReader(reader.bytes());
      while (header.next()) {
        if (header.field === 2) memberId = header.uint64();
        else if (header.field === 3) revision = header.int64();
        else header.skip();
      }
    } else if (reader.field === 2) version = reader.string();
    else reader.skip();
  }
  return { memberId: hex16(memberId), revision, version };
}

/** Asks the member etcdgate's calls go to for its status. */
export async function memberStatus(upstream: UpstreamCalls, timeoutMs: number): Promise<MemberStatus> {
  return parseStatus(await upstream.unary(STATUS, Buffer.alloc(0), { timeoutMs, idempotent: true }));
}

/** SnapshotResponse { remaining_bytes = 2, blob = 3 }: the blob (empty when absent). */
export function snapshotBlob(message: Buffer): Buffer {
  const reader = new WireReader(message);
  let blob: Buffer = Buffer.alloc(0);
  while (reader.next()) {
    if (reader.field === 3) blob = reader.bytes();
    else reader.skip();
  }
  return blob;
}

/** SHA-256 length: etcd ends every snapshot stream with the digest of the bytes before it. */
export const SNAPSHOT_DIGEST_BYTES = 32;

/** The snapshot stream did not end with the SHA-256 of the database bytes before it. */
export class SnapshotDigestError extends Error {
  override readonly name = 'SnapshotDigestError';
}

/**
 * The snapshot as etcd sends it, chunk by chunk, exactly as `etcdctl snapshot save`
 * stores it: the database followed by its SHA-256 (which `snapshot restore` checks).
 * Read with `for await`; each chunk is read from etcd only when the previous one has
 * been consumed, so nothing accumulates in memory whatever the database size. After
 * the last chunk the digest is checked; a mismatch or a stream too short to hold one
 * throws SnapshotDigestError, so a consumer that commits only when the loop completes
 * never commits a corrupt snapshot.
 */
export async function* snapshotChunks(upstream: UpstreamCalls, timeoutMs: number): AsyncGenerator<Buffer> {
  const stream = upstream.serverStream(SNAPSHOT, Buffer.alloc(0), { timeoutMs });
  const hash = createHash('sha256');
  // The last 32 bytes seen: the digest if the stream ends now, else database bytes.
  let tail: Buffer = Buffer.alloc(0);
  try {
    for await (const message of stream) {
      const blob = snapshotBlob(message);
      if (blob.length === 0) continue;
      const joined = tail.length === 0 ? blob : Buffer.concat([tail, blob]);
      const cut = Math.max(0, joined.length - SNAPSHOT_DIGEST_BYTES);
      hash.update(joined.subarray(0, cut));
      tail = Buffer.from(joined.subarray(cut));
      yield blob;
    }
  } finally {
    stream.cancel();
  }
  if (tail.length < SNAPSHOT_DIGEST_BYTES) throw new SnapshotDigestError('snapshot stream ended before its SHA-256 digest');
  if (!hash.digest().equals(tail)) throw new SnapshotDigestError('snapshot SHA-256 digest does not match the data etcd sent');
}

/** LeaseGrant(TTL) -> lease ID (decimal). */
export async function grantLease(upstream: UpstreamCalls, ttlSeconds: number, timeoutMs: number): Promise<string> {
  const response = await upstream.unary(LEASE_GRANT, new WireWriter().int(1, ttlSeconds).finish(), { timeoutMs });
  const reader = new WireReader(response);
  let id = '0';
  let error = '';
  while (reader.next()) {
    if (reader.field === 2) id = reader.int64();
    else if (reader.field === 4) error = reader.string();
    else reader.skip();
  }
  if (error !== '' || id === '0') throw new Error(`etcd granted no lease${error === '' ? '' : `: ${error}`}`);
  return id;
}

/** LeaseRevoke(ID); the keys attached to the lease go with it. */
export async function revokeLease(upstream: UpstreamCalls, leaseId: string, timeoutMs: number): Promise<void> {
  await upstream.unary(LEASE_REVOKE, new WireWriter().int(1, BigInt(leaseId)).finish(), { timeoutMs });
}

/**
 * Txn: if `key` does not exist (create_revision == 0), put `value` with `leaseId`.
 * Returns whether the put happened (TxnResponse.succeeded). Written out:
 * Compare { result EQUAL(0), target CREATE(1), key, create_revision = 0 (present: a oneof) },
 * success: RequestOp { request_put = 2: PutRequest { key, value, lease } }.
 */
export async function putIfAbsent(upstream: UpstreamCalls, key: Buffer, value: Buffer, leaseId: string, timeoutMs: number): Promise<boolean> {
  const compare = new WireWriter().int(2, 1).bytes(3, key).int(5, 0, true).finish();
  const put = new WireWriter().bytes(1, key).bytes(2, value).int(3, BigInt(leaseId)).finish();
  const op = new WireWriter().bytes(2, put, true).finish();
  const request = new WireWriter().bytes(1, compare, true).bytes(2, op, true).finish();
  const response = await upstream.unary(TXN, request, { timeoutMs });
  const reader = new WireReader(response);
  let succeeded = false;
  while (reader.next()) {
    if (reader.field === 2) succeeded = reader.bool();
    else reader.skip();
  }
  return succeeded;
}
