/**
 * One backup per fleet: when several etcdgate instances share an etcd cluster, each
 * scheduled slot is claimed through etcd itself, and only the instance whose claim
 * lands takes the snapshot. A claim is a Txn "create `/.etcdgate/backup/slots/<slot>`
 * if it does not exist", with the key on a lease that outlives the slot, so:
 *
 * - exactly one claim per slot succeeds (etcd serializes Txns; the compare is on the
 *   key's create revision, 0 while it does not exist);
 * - an instance whose clock runs late finds the key still there and stands down;
 * - the keys clean themselves up when their leases expire.
 *
 * The key is under etcdgate's reserved prefix (src/policy/reserved.ts): no client
 * policy can read, write, delete it or revoke its lease, so no client can steal,
 * block or double a slot. The claim goes through etcdgate's own upstream calls, which
 * the client policy does not govern.
 */
import { RESERVED_PREFIX } from '../policy/reserved.js';
import type { UpstreamCalls } from '../upstream/calls.js';
import { grantLease, putIfAbsent, revokeLease } from './etcd-calls.js';

/** The key that claims `slot`. */
export function slotKey(slot: Date): Buffer {
  return Buffer.concat([RESERVED_PREFIX, Buffer.from(`backup/slots/${slot.toISOString()}`, 'utf8')]);
}

/**
 * How long a claim lives: twice the longest gap between slots (so it outlasts any
 * clock skew smaller than a gap), at least 60 s, at most 30 days.
 */
export function claimTtlSeconds(longestGapSeconds: number): number {
  return Math.min(30 * 86_400, Math.max(60, 2 * longestGapSeconds));
}

/**
 * Claims `slot` for `owner` (an instance description, stored as the key's value).
 * True: this instance takes the slot. False: another instance already has. Rejects
 * (an UpstreamError) when etcd cannot be asked, in which case nobody may have it.
 */
export async function claimSlot(upstream: UpstreamCalls, slot: Date, owner: string, ttlSeconds: number, timeoutMs: number): Promise<boolean> {
  const lease = await grantLease(upstream, ttlSeconds, timeoutMs);
  let claimed = false;
  try {
    claimed = await putIfAbsent(upstream, slotKey(slot), Buffer.from(owner, 'utf8'), lease, timeoutMs);
    return claimed;
  } finally {
    // A lease that holds no key is useless; one that holds the claim must live on.
    if (!claimed) await revokeLease(upstream, lease, timeoutMs).catch(() => undefined);
  }
}
