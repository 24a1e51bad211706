/**
 * How a policy denial is counted. `etcdgate_denials_total` is labelled with what an
 * operator needs to tell a misconfigured client from an over-reaching one, with bounded
 * cardinality: the first binding the caller matched (a name from the policy, or `none`),
 * the role whose deny rule refused (a role name, or `none` when no rule refused and the
 * access was simply not granted), and a reason from a fixed list.
 *
 * etcd's own health probe is counted apart. `etcdctl endpoint health` reads the key
 * `health` and counts "permission denied" as healthy (etcdctl/ctlv3/command/ep_command.go,
 * epHealthCommandFunc: the read went through consensus either way), so a monitoring
 * certificate without read on that key is refused on every probe by design. etcdgate
 * refuses it too (the policy decides, and the audit trail records it), but counts it in
 * `etcdgate_denied_health_probes_total` instead, so probes never feed the high-denial alert.
 */
import type { DecodedRequest } from '../etcd/types.js';
import type { Decision, Permissions } from '../policy/types.js';
import type { Metrics } from './metrics-types.js';

/** Why the policy denied, as a bounded label. `other` for a denial whose reason this list does not know. */
export const DENIAL_REASONS = ['no_binding', 'not_granted', 'not_covered', 'denied_by_rule', 'capability_not_granted', 'lease_keys', 'other'] as const;
export type DenialReason = (typeof DENIAL_REASONS)[number];

/** The labels of one denial. */
export interface DenialLabels {
  readonly binding: string;
  readonly role: string;
  readonly reason: DenialReason;
}

/** The policy's decision reasons (src/policy/compile.ts, src/policy/lease-decision.ts) as labels. */
const REASONS: ReadonlyMap<string, DenialReason> = new Map([
  ['no binding', 'no_binding'],
  ['not granted', 'not_granted'],
  ['range not fully covered', 'not_covered'],
  ['denied by rule', 'denied_by_rule'],
  ['capability not granted', 'capability_not_granted'],
]);
const LEASE_REASON = /^lease -?[0-9a-f]+ holds keys outside the grant$/u;

/** The label for a denial's reason. */
export function denialReason(decision: Decision): DenialReason {
  return REASONS.get(decision.reason) ?? (LEASE_REASON.test(decision.reason) ? 'lease_keys' : 'other');
}

/** The labels of a denial of `permissions`' caller. */
export function denialLabels(permissions: Permissions, decision: Decision): DenialLabels {
  return { binding: permissions.binding ?? 'none', role: decision.role ?? 'none', reason: denialReason(decision) };
}

const RANGE = '/etcdserverpb.KV/Range';
const HEALTH_KEY = Buffer.from('health');

/** Whether a request is etcdctl's health probe: a Range of exactly the key `health`. */
export function isHealthProbe(path: string, decoded: DecodedRequest | undefined): boolean {
  if (path !== RANGE || decoded === undefined || decoded.accesses.length !== 1) return false;
  const access = decoded.accesses[0];
  return access !== undefined && access.kind === 'read' && access.rangeEnd.length === 0 && access.key.equals(HEALTH_KEY);
}

/**
 * Counts one request the policy refused (the client got PERMISSION_DENIED): as a denied
 * health probe, or as a denial with its labels.
 */
export function countDenial(metrics: Metrics, permissions: Permissions, decision: Decision, path: string, decoded: DecodedRequest | undefined): void {
  if (isHealthProbe(path, decoded)) metrics.healthProbeDenied();
  else metrics.denied(denialLabels(permissions, decision));
}
