/**
 * Decoders of etcd's lock service (v3lockpb.Lock). Locking `name` creates the key
 * `name/<lease in hex>` with the caller's lease and reads the whole `name/` prefix to
 * find its turn, so it needs read and write on that prefix; unlocking deletes the key it
 * names.
 */
import { decoded, Details, EMPTY, keyAccess, keySummary } from './decoded.js';
import { prefixEnd, recipePrefix } from './keys.js';
import type { DecodedRequest } from './types.js';
import { WireReader } from './wire.js';

/**
 * Lock and Campaign alike (field 1 name, field 2 lease; Campaign's value, field 3, is
 * never read): they put `name/<lease in hex>` with the lease attached and read the whole
 * `name/` prefix, so they need read and write on it, and the lease rule of KV.Put.
 */
export function decodeRecipeEntry(op: 'lock' | 'campaign', message: Buffer): DecodedRequest {
  let name = EMPTY;
  let lease = '0';
  const r = new WireReader(message);
  while (r.next()) {
    switch (r.field) {
      case 1: name = r.bytes(); break;
      case 2: lease = r.int64(); break;
      default: r.skip();
    }
  }
  const key = recipePrefix(name);
  const end = prefixEnd(key);
  return decoded(
    [keyAccess('read', key, end), keyAccess('write', key, end)],
    keySummary(op, key, end, new Details().lease('lease', lease)),
    lease !== '0' ? [{ leaseId: lease, kind: 'write' }] : [],
  );
}

/** Lock.Lock: read and write on the prefix `name/`; a lease adds a write check on its keys. */
export function decodeLockRequest(message: Buffer): DecodedRequest {
  return decodeRecipeEntry('lock', message);
}

/** Lock.Unlock: write on the key it names (the key Lock returned). */
export function decodeUnlockRequest(message: Buffer): DecodedRequest {
  let key = EMPTY;
  const r = new WireReader(message);
  while (r.next()) {
    if (r.field === 1) key = r.bytes();
    else r.skip();
  }
  return decoded([keyAccess('write', key, EMPTY)], keySummary('unlock', key));
}
