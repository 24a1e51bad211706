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
import type { DecodedRequest } from '../etcd/types.js';
import { leaseKeysDecision } from '../policy/lease-decision.js';
import type { Decision } from '../policy/types.js';
import type { Caller, ProxyContext } from './context.js';
import { leaseKeys } from './lease-keys.js';

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
    // ops: the rule itself is shared with `etcdgate explain` (src/policy/lease-decision.ts).
    const leaseDecision = leaseKeysDecision(caller.permissions, check, await leaseKeys(context, check.leaseId));
    if (leaseDecision === undefined) continue;
    if (!leaseDecision.allowed) return leaseDecision;
    last = leaseDecision;
  }
  return last;
}
