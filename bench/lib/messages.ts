/**
 * The etcd messages the load generator sends, encoded once with etcdgate's own wire
 * writer, and the few response fields it reads (revisions, watch events). Keeping this
 * hand-rolled keeps the generator cheap: no protobuf library on its hot path.
 */
import { WireReader } from '../../src/etcd/wire.js';
import { WireWriter } from '../../src/etcd/wire-writer.js';

/** etcd's gRPC method paths the benchmark calls. */
export const PATHS = {
  range: '/etcdserverpb.KV/Range',
  put: '/etcdserverpb.KV/Put',
  txn: '/etcdserverpb.KV/Txn',
  watch: '/etcdserverpb.Watch/Watch',
} as const;

/** RangeRequest for one key; serializable reads skip etcd's quorum round. */
export function rangeRequest(key: string, serializable: boolean): Buffer {
  return new WireWriter().bytes(1, key).int(7, serializable).finish();
}

/** PutRequest. */
export function putRequest(key: string, value: Buffer): Buffer {
  return new WireWriter().bytes(1, key).bytes(2, value).finish();
}

/**
 * kube-apiserver's optimistic update (GuaranteedUpdate): if the key's mod_revision is
 * still `modRevision`, put the new value; otherwise read the key back.
 */
export function txnRequest(key: string, modRevision: string, value: Buffer): Buffer {
  // Compare{result EQUAL(0), target MOD(2), key, mod_revision}: a zero revision would be
  // dropped by proto3 encoding, so callers only compare against existing keys.
  const compare = new WireWriter().int(2, 2).bytes(3, key).int(6, BigInt(modRevision)).finish();
  const success = new WireWriter().bytes(2, putRequest(key, value), true).finish();
  const failure = new WireWriter().bytes(1, rangeRequest(key, false), true).finish();
  return new WireWriter().bytes(1, compare).bytes(2, success).bytes(3, failure).finish();
}

/** WatchRequest{create_request{key, range_end, start_revision}}. */
export function watchCreateRequest(key: string, rangeEnd: string): Buffer {
  const create = new WireWriter().bytes(1, key).bytes(2, rangeEnd).finish();
  return new WireWriter().bytes(1, create, true).finish();
}

/** The end of the range covering every key starting with `prefix`. */
export function prefixEnd(prefix: string): string {
  const bytes = Buffer.from(prefix, 'utf8');
  for (let i = bytes.length - 1; i >= 0; i--) {
    const b = bytes[i] ?? 0;
    if (b < 0xff) {
      bytes[i] = b + 1;
      return bytes.subarray(0, i + 1).toString('latin1');
    }
  }
  return '\0';
}

/** The revision in a response's header (field 1 of every etcd response). */
export function headerRevision(response: Buffer): string {
  const r = new WireReader(response);
  while (r.next()) {
    if (r.field !== 1) continue;
    const header = new WireReader(r.bytes());
    while (header.next()) if (header.field === 3) return header.int64();
  }
  return '0';
}

/** TxnResponse.succeeded. */
export function txnSucceeded(response: Buffer): boolean {
  const r = new WireReader(response);
  let succeeded = false;
  while (r.next()) if (r.field === 2) succeeded = r.bool();
  return succeeded;
}

/** mod_revision of the first kv in a RangeResponse, or "0" when the key is absent. */
export function firstModRevision(response: Buffer): string {
  const r = new WireReader(response);
  while (r.next()) {
    if (r.field !== 2) continue;
    const kv = new WireReader(r.bytes());
    while (kv.next()) if (kv.field === 3) return kv.int64();
  }
  return '0';
}

/** value of the first kv in a RangeResponse, or an empty buffer when the key is absent. */
export function firstValue(response: Buffer): Buffer {
  const r = new WireReader(response);
  while (r.next()) {
    if (r.field !== 2) continue;
    const kv = new WireReader(r.bytes());
    while (kv.next()) if (kv.field === 5) return Buffer.from(kv.bytes());
  }
  return Buffer.alloc(0);
}

/** What the generator reads from one WatchResponse. */
export interface WatchMessage {
  readonly watchId: string;
  readonly created: boolean;
  readonly canceled: boolean;
  /** mod_revision and value of each event, in order. */
  readonly events: { readonly modRevision: number; readonly value: Buffer }[];
}

/** Reads a WatchResponse: ids, flags, and each event's kv mod_revision and value. */
export function readWatch(message: Buffer): WatchMessage {
  const r = new WireReader(message);
  let watchId = '0';
  let created = false;
  let canceled = false;
  const events: { modRevision: number; value: Buffer }[] = [];
  while (r.next()) {
    switch (r.field) {
      case 2:
        watchId = r.int64();
        break;
      case 3:
        created = r.bool();
        break;
      case 4:
        canceled = r.bool();
        break;
      case 11: {
        const event = new WireReader(r.bytes());
        let modRevision = 0;
        let value: Buffer = Buffer.alloc(0);
        while (event.next()) {
          if (event.field !== 2) continue;
          const kv = new WireReader(event.bytes());
          while (kv.next()) {
            if (kv.field === 3) modRevision = Number(kv.int64());
            else if (kv.field === 5) value = kv.bytes();
          }
        }
        events.push({ modRevision, value });
        break;
      }
      default:
        break;
    }
  }
  return { watchId, created, canceled, events };
}
