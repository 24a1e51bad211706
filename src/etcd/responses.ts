/**
 * What etcdgate reads from, and writes in place of, etcd's responses: the revision and
 * counts that go into audit records, the keys a lease holds, MemberList's client URLs,
 * and the in-band watch answers. Field numbers are etcd's (rpc.proto).
 */
import { WIRE_LEN, WIRE_VARINT, WireReader } from './wire.js';
import { WireWriter } from './wire-writer.js';

/** Revision and count of a response, for the audit record. Never throws. */
export interface ResponseSummary {
  revision?: string;
  count?: number;
}

/** ResponseHeader.revision from the header message's bytes. Throws on bytes that are not a message. */
export function headerRevision(header: Buffer): string | undefined {
  const reader = new WireReader(header);
  let revision: string | undefined;
  while (reader.next()) {
    if (reader.field === 3) revision = reader.int64();
    else reader.skip();
  }
  return revision;
}

const RANGE = '/etcdserverpb.KV/Range';
const DELETE_RANGE = '/etcdserverpb.KV/DeleteRange';

/** Reads ResponseHeader.revision and, for Range and DeleteRange, the key count. */
export function summarizeResponse(path: string, response: Buffer): ResponseSummary {
  const summary: ResponseSummary = {};
  try {
    const reader = new WireReader(response);
    let kvs = 0;
    let count: number | undefined;
    while (reader.next()) {
      if (reader.field === 1) {
        const revision = headerRevision(reader.bytes());
        if (revision !== undefined) summary.revision = revision;
      }
      else if (path === RANGE && reader.field === 2) {
        kvs += 1;
        reader.skip();
      } else if ((path === RANGE && reader.field === 4) || (path === DELETE_RANGE && reader.field === 2)) count = Number(reader.int64());
      else reader.skip();
    }
    // A Range returns kvs (or only a count when count_only): report what was returned.
    if (path === RANGE) summary.count = kvs > 0 ? kvs : (count ?? 0);
    else if (path === DELETE_RANGE) summary.count = count ?? 0;
  } catch {
    // A response etcdgate cannot read is still forwarded; the record just lacks these.
  }
  return summary;
}

/** LeaseTimeToLiveRequest { ID = 1; keys = 2 }. */
export function encodeLeaseTimeToLiveRequest(leaseId: string, keys: boolean): Buffer {
  return new WireWriter().int(1, BigInt(leaseId)).int(2, keys).finish();
}

/** LeaseTimeToLiveResponse.keys (field 5); an unknown lease (TTL -1) has none. */
export function leaseKeysOf(response: Buffer): Buffer[] {
  const keys: Buffer[] = [];
  const reader = new WireReader(response);
  while (reader.next()) {
    if (reader.field === 5) keys.push(reader.bytes());
    else reader.skip();
  }
  return keys;
}

/**
 * MemberListResponse with every member's clientURLs (Member field 4) replaced by
 * etcdgate's advertised URLs, so clients that sync endpoints keep using the proxy.
 * Member IDs, names, peer URLs and learner flags are kept.
 */
export function rewriteMemberListUrls(response: Buffer, urls: readonly string[]): Buffer {
  const out = new WireWriter();
  const reader = new WireReader(response);
  while (reader.next()) {
    if (reader.field === 2) out.bytes(2, rewriteMember(reader.bytes(), urls), true);
    else if (reader.wireType === WIRE_LEN) out.bytes(reader.field, reader.bytes(), true);
    else if (reader.wireType === WIRE_VARINT) out.int(reader.field, BigInt(reader.uint64()));
    else reader.skip();
  }
  return out.finish();
}

function rewriteMember(member: Buffer, urls: readonly string[]): Buffer {
  const out = new WireWriter();
  const reader = new WireReader(member);
  while (reader.next()) {
    if (reader.field === 4) reader.skip();
    else if (reader.wireType === WIRE_LEN) out.bytes(reader.field, reader.bytes(), true);
    else if (reader.wireType === WIRE_VARINT) out.int(reader.field, BigInt(reader.uint64()));
    else reader.skip();
  }
  for (const url of urls) out.bytes(4, url, true);
  return out.finish();
}

/** The fields of a WatchResponse the proxy tracks. */
export interface WatchResponseInfo {
  readonly watchId: string;
  readonly created: boolean;
  readonly canceled: boolean;
  readonly cancelReason: string;
  readonly compactRevision: string;
  readonly events: number;
  readonly revision: string | undefined;
}

/** Reads WatchResponse { header=1, watch_id=2, created=3, canceled=4, compact_revision=5, cancel_reason=6, events=11 }. */
export function readWatchResponse(response: Buffer): WatchResponseInfo {
  const reader = new WireReader(response);
  let watchId = '0';
  let created = false;
  let canceled = false;
  let cancelReason = '';
  let compactRevision = '0';
  let events = 0;
  let revision: string | undefined;
  while (reader.next()) {
    switch (reader.field) {
      case 1:
        revision = headerRevision(reader.bytes());
        break;
      case 2:
        watchId = reader.int64();
        break;
      case 3:
        created = reader.bool();
        break;
      case 4:
        canceled = reader.bool();
        break;
      case 5:
        compactRevision = reader.int64();
        break;
      case 6:
        cancelReason = reader.string();
        break;
      case 11:
        events += 1;
        reader.skip();
        break;
      default:
        reader.skip();
    }
  }
  return { watchId, created, canceled, cancelReason, compactRevision, events, revision };
}

/**
 * A WatchResponse written by etcdgate: a refused create (created and canceled, watch_id
 * -1) or a watcher revoked after a policy reload (canceled). It carries an empty header
 * because Go clients dereference it.
 */
export function encodeWatchCanceled(watchId: string, created: boolean, reason: string): Buffer {
  return new WireWriter()
    .bytes(1, Buffer.alloc(0), true)
    .int(2, BigInt(watchId))
    .int(3, created)
    .int(4, true)
    .bytes(6, reason)
    .finish();
}

/** WatchRequest { cancel_request = 2: WatchCancelRequest { watch_id = 1 } }. */
export function encodeWatchCancelRequest(watchId: string): Buffer {
  return new WireWriter().bytes(2, new WireWriter().int(1, BigInt(watchId)).finish(), true).finish();
}
