/**
 * etcdgate's reserved key prefix: keys etcdgate itself keeps in etcd (today the claims
 * that let one instance of a fleet take each scheduled backup, src/backup/fleet-lock.ts).
 * No client may write under it, whatever its roles grant (`all: true` and the `admin`
 * capability included): a client that could write there could steal or block a backup
 * slot, and one that could delete there could make two instances back up at once.
 * Reading follows the roles as for any key: the claims hold an instance name and a time,
 * nothing secret, and whole-keyspace reads (etcdctl get "" --prefix, a watch on every
 * key, a backup operator's listing) keep working. etcdgate's own upstream calls
 * (src/upstream/calls.ts) never pass through the policy.
 *
 * Consequence, by etcd's range semantics (a range is allowed only if all of it is): a
 * write over the whole key space, or any delete range that spans the prefix, is refused.
 */
import type { Decision } from './types.js';
import { formatKey, prefixEnd, requestInterval } from './key-range.js';

/** The prefix; its text is chosen to sort before `/registry/` and to look like nothing a client would use. */
export const RESERVED_PREFIX: Buffer = Buffer.from('/.etcdgate/', 'utf8');

// The prefix ends in '/', so its end is the same text with '0' in place of the slash.
const RESERVED_END = prefixEnd(RESERVED_PREFIX) ?? Buffer.alloc(0);
const PREFIX_LENGTH = RESERVED_PREFIX.length;

/** What every write touching the reserved prefix is told. */
export const RESERVED_DENIAL: Decision = Object.freeze({
  allowed: false,
  rule: `reserved prefix ${formatKey(RESERVED_PREFIX)}`,
  reason: 'reserved for etcdgate',
});

/** True when the etcd range `[key, rangeEnd)` (etcd's conventions) holds any key under the reserved prefix. */
export function touchesReserved(key: Buffer, rangeEnd: Buffer): boolean {
  // Single key (the hot path): a bounded compare, no allocation.
  if (rangeEnd.length === 0) return key.length >= PREFIX_LENGTH && key.compare(RESERVED_PREFIX, 0, PREFIX_LENGTH, 0, PREFIX_LENGTH) === 0;
  const interval = requestInterval(key, rangeEnd);
  // Two half-open intervals meet when each starts before the other ends.
  return Buffer.compare(interval.from, RESERVED_END) < 0 && (interval.to === null || Buffer.compare(interval.to, RESERVED_PREFIX) > 0);
}
