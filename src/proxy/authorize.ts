/**
 * Authorization of one decoded request: the caller's compiled permissions first, then,
 * only if those allow it, the checks that need etcd's view of a lease (which keys are
 * attached to it). The lease lookup runs under etcdgate's own upstream identity.
 *
 * Check-then-act window: between the lookup and etcd executing the call, another client
 * may attach a new key to the same lease. etcd 3.6.11 closes this inside its apply loop;
 * a proxy cannot. The window is one round trip, and attaching a key to a lease needs
 * write access to that key, so it only matters between two callers who share a lease ID.
 */
import { leaseIdHex } from '../etcd/decoded.js';
import type { DecodedRequest } from '../etcd/types.js';
import type { Access, Decision } from '../policy/types.js';
import type { Caller, ProxyContext } from './context.js';
import { leaseKeys } from './lease-keys.js';

const EMPTY = Buffer.alloc(0);

/**
 * Decides a request. Most requests name no lease and are decided at once; only those
 * that do return a promise (rejected when a lease lookup fails, with that upstream status).
 */
export function authorize(context: ProxyContext, caller: Caller, decoded: DecodedRequest): Decision | Promise<Decision> {
  const decision = caller.permissions.check(decoded.accesses);
  if (!decision.allowed || decoded.leaseChecks.length === 0) return decision;
  return checkLeases(context, caller, decoded.leaseChecks, decision);
}

/** The lease part of a decision: every key attached to each lease must be allowed too. */
async function checkLeases(context: ProxyContext, caller: Caller, checks: DecodedRequest['leaseChecks'], decision: Decision): Promise<Decision> {
  let last = decision;
  for (const check of checks) {
    const keys = await leaseKeys(context, check.leaseId);
    if (keys.length === 0) continue;
    const accesses: Access[] = keys.map((key) => ({ kind: check.kind, key, rangeEnd: EMPTY }));
    const leaseDecision = caller.permissions.check(accesses);
    if (!leaseDecision.allowed) {
      return { ...leaseDecision, reason: `lease ${leaseIdHex(check.leaseId)} holds keys outside the grant` };
    }
    last = leaseDecision;
  }
  return last;
}
