/**
 * The lease part of a decision, shared by the proxy (src/proxy/authorize.ts, which asks
 * etcd which keys a lease holds) and `etcdgate explain` (which is told them with
 * --lease-key): once a request's own accesses are allowed, every key attached to each
 * lease it names must be allowed too, with the access the request implies (write for
 * Put-with-lease, LeaseRevoke and LeaseKeepAlive; read for LeaseTimeToLive keys=true).
 * Pure: the keys are an argument.
 */
import { leaseIdHex } from '../etcd/decoded.js';
import type { Access, Decision, Permissions } from './types.js';

const EMPTY = Buffer.alloc(0);

/** A lease a request names, and the access its attached keys need. */
export interface LeaseCheck {
  /** The lease ID as a decimal int64 string (as etcd's protobuf decoders give it). */
  readonly leaseId: string;
  readonly kind: 'read' | 'write';
}

/**
 * The decision on the keys attached to one lease: undefined when it holds none (nothing
 * more to check: an unknown or empty lease), else the check of all of them, a denial
 * saying which lease it was.
 */
export function leaseKeysDecision(permissions: Permissions, check: LeaseCheck, keys: readonly Buffer[]): Decision | undefined {
  if (keys.length === 0) return undefined;
  const accesses: Access[] = keys.map((key) => ({ kind: check.kind, key, rangeEnd: EMPTY }));
  const decision = permissions.check(accesses);
  return decision.allowed ? decision : { ...decision, reason: `lease ${leaseIdHex(check.leaseId)} holds keys outside the grant` };
}
