/**
 * The one place where etcdgate's decisions become the gRPC statuses clients get. etcd
 * clients match errors by their exact text and retry only on UNAVAILABLE, so policy
 * denials use etcd's own wording and are never UNAVAILABLE.
 *
 * A refusal that is not the policy's (rate limit, shutdown, audit sink down, malformed
 * request) is a Decision with a `refusal` kind; the policy's own denials have none.
 */
import type { Undecryptable, ValueRefusal } from '../encryption/encryption.js';
import { formatKey } from '../policy/key-range.js';
import type { Decision } from '../policy/types.js';
import { Code, type Status } from '../transport/grpc/status.js';

export type { Status } from '../transport/grpc/status.js';

/** etcd's text for ErrGRPCPermissionDenied; clients compare against it. */
export const PERMISSION_DENIED_MESSAGE = 'etcdserver: permission denied';
export const TOO_MANY_WATCHERS_MESSAGE = 'etcdgate: too many watchers';

/** Why etcdgate refused a call before or beside the policy. */
export type RefusalKind =
  | 'unauthenticated'
  | 'shutting-down'
  | 'audit-unavailable'
  | 'rate-limited'
  | 'too-many-watchers'
  | 'malformed'
  | 'unknown-method'
  | 'not-grpc'
  | 'unreadable'
  | 'precondition';

/** A decision that is not the policy's. */
export interface Refusal extends Decision {
  readonly allowed: false;
  readonly refusal: RefusalKind;
}

function refusal(refusalKind: RefusalKind, reason: string): Refusal {
  return Object.freeze({ allowed: false, reason, refusal: refusalKind });
}

export const UNAUTHENTICATED_DECISION = refusal('unauthenticated', 'no verified client certificate');
export const SHUTTING_DOWN_DECISION = refusal('shutting-down', 'shutting down');
export const AUDIT_UNAVAILABLE_DECISION = refusal('audit-unavailable', 'audit sink unavailable');
export const RATE_LIMITED_DECISION = refusal('rate-limited', 'rate limited');
export const TOO_MANY_WATCHERS_DECISION = refusal('too-many-watchers', 'too many watchers');
export const MALFORMED_DECISION = refusal('malformed', 'malformed request');
export const UNKNOWN_METHOD_DECISION = refusal('unknown-method', 'unknown method');
export const NOT_GRPC_DECISION = refusal('not-grpc', 'not a gRPC request');
export const UNREADABLE_DECISION = refusal('unreadable', 'message refused while being read');

/** A refusal whose status is given (a precondition etcdgate cannot meet, e.g. a value compare on ciphertext). */
export function preconditionRefusal(reason: string): Refusal {
  return refusal('precondition', reason);
}

function fixed(code: number, details: string): Status {
  return Object.freeze({ code, details });
}

export const PERMISSION_DENIED = fixed(Code.PERMISSION_DENIED, PERMISSION_DENIED_MESSAGE);
export const UNAUTHENTICATED = fixed(Code.UNAUTHENTICATED, 'etcdgate: no verified client certificate');
export const MALFORMED = fixed(Code.INVALID_ARGUMENT, 'etcdgate: malformed request message');
export const NO_UPSTREAM = fixed(Code.UNAVAILABLE, 'etcdgate: no etcd endpoint available');
export const SHUTTING_DOWN = fixed(Code.UNAVAILABLE, 'etcdgate: shutting down');
export const AUDIT_UNAVAILABLE = fixed(Code.UNAVAILABLE, 'etcdgate: audit sink unavailable');
export const INTERNAL_ERROR = fixed(Code.INTERNAL, 'etcdgate: internal error');
export const RATE_LIMITED = fixed(Code.RESOURCE_EXHAUSTED, 'etcdgate: rate limit exceeded');
export const TOO_MANY_WATCHERS = fixed(Code.RESOURCE_EXHAUSTED, TOO_MANY_WATCHERS_MESSAGE);
export const WATCHER_TOO_SLOW = fixed(Code.RESOURCE_EXHAUSTED, 'etcdgate: watcher too slow');
export const UNKNOWN_METHOD = fixed(Code.UNIMPLEMENTED, 'etcdgate: unknown method');
export const CANCELLED_BY_CLIENT = fixed(Code.CANCELLED, 'etcdgate: call cancelled by the client');

const BY_REFUSAL: Readonly<Record<RefusalKind, Status>> = {
  unauthenticated: UNAUTHENTICATED,
  'shutting-down': SHUTTING_DOWN,
  'audit-unavailable': AUDIT_UNAVAILABLE,
  'rate-limited': RATE_LIMITED,
  'too-many-watchers': TOO_MANY_WATCHERS,
  malformed: MALFORMED,
  'unknown-method': UNKNOWN_METHOD,
  'not-grpc': UNKNOWN_METHOD,
  unreadable: MALFORMED,
  precondition: fixed(Code.FAILED_PRECONDITION, 'etcdgate: precondition not met'),
};

/** Whether a decision is a policy denial (counted in etcdgate_denials_total) rather than another refusal. */
export function isPolicyDenial(decision: Decision): boolean {
  return !decision.allowed && !('refusal' in decision);
}

/** The status a refused call gets: the one mapping from decisions to statuses. */
export function statusOf(decision: Decision): Status {
  if (decision.allowed) return fixed(Code.OK, '');
  if (!('refusal' in decision)) return PERMISSION_DENIED;
  const kind = (decision as Refusal).refusal;
  if (kind === 'precondition') return fixed(Code.FAILED_PRECONDITION, `etcdgate: ${decision.reason}`);
  return BY_REFUSAL[kind];
}

const REFUSED_BECAUSE_ENCRYPTED: Readonly<Record<ValueRefusal['kind'], string>> = {
  'value-compare': 'a Txn cannot compare the value of',
  'value-sort': 'a Range cannot sort by value over',
  election: 'the election recipes are not supported over',
};

/**
 * A request that cannot work on values stored encrypted: FAILED_PRECONDITION (the
 * system is not in the state the operation needs; retrying will not help), naming the
 * key and the resource, never a value.
 */
export function encryptedValueRefusal(refusal: ValueRefusal): Status {
  return {
    code: Code.FAILED_PRECONDITION,
    details: `etcdgate: ${REFUSED_BECAUSE_ENCRYPTED[refusal.kind]} "${formatKey(refusal.key)}": its values are stored encrypted (encryption resource ${refusal.resource})`,
  };
}

/**
 * A stored value that cannot be decrypted: DATA_LOSS, "unrecoverable data loss or
 * corruption", which is what a tampered, relabelled or unknown-key value is from the
 * client's side. Not INTERNAL, which clients and operators read as a fault of etcdgate
 * or etcd; not retried by etcd clients either. Names the key, never the value.
 */
export function undecryptableStatus(failure: Undecryptable): Status {
  const what = failure.key === undefined ? 'a value' : `the value of key "${formatKey(failure.key)}"`;
  return { code: Code.DATA_LOSS, details: `etcdgate: ${what} cannot be decrypted: ${failure.detail}` };
}
