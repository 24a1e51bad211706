/**
 * The one place where etcdgate's own refusals become gRPC statuses. etcd clients match
 * errors by their exact text and retry only on UNAVAILABLE, so denials use etcd's own
 * wording and are never UNAVAILABLE.
 */
import * as grpc from '@grpc/grpc-js';
import type { Undecryptable, ValueRefusal } from '../encryption/encryption.js';
import { formatKey } from '../policy/key-range.js';

/** etcd's text for ErrGRPCPermissionDenied; clients compare against it. */
export const PERMISSION_DENIED_MESSAGE = 'etcdserver: permission denied';

export interface Status {
  readonly code: grpc.status;
  readonly details: string;
  readonly metadata?: grpc.Metadata;
}

export const PERMISSION_DENIED: Status = { code: grpc.status.PERMISSION_DENIED, details: PERMISSION_DENIED_MESSAGE };
export const UNAUTHENTICATED: Status = { code: grpc.status.UNAUTHENTICATED, details: 'etcdgate: no verified client certificate' };
export const MALFORMED: Status = { code: grpc.status.INVALID_ARGUMENT, details: 'etcdgate: malformed request message' };
export const NO_UPSTREAM: Status = { code: grpc.status.UNAVAILABLE, details: 'etcdgate: no etcd endpoint available' };
export const SHUTTING_DOWN: Status = { code: grpc.status.UNAVAILABLE, details: 'etcdgate: shutting down' };
export const AUDIT_UNAVAILABLE: Status = { code: grpc.status.UNAVAILABLE, details: 'etcdgate: audit sink unavailable' };
export const INTERNAL_ERROR: Status = { code: grpc.status.INTERNAL, details: 'etcdgate: internal error' };
export const RATE_LIMITED: Status = { code: grpc.status.RESOURCE_EXHAUSTED, details: 'etcdgate: rate limit exceeded' };
export const TOO_MANY_WATCHERS_MESSAGE = 'etcdgate: too many watchers';
export const WATCHER_TOO_SLOW: Status = { code: grpc.status.RESOURCE_EXHAUSTED, details: 'etcdgate: watcher too slow' };

/** A Status from whatever an upstream call failed with (keeps code, message and trailers). */
export function statusFromError(error: unknown): Status {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'number') {
    const details = 'details' in error && typeof error.details === 'string' ? error.details : '';
    const metadata = 'metadata' in error && error.metadata instanceof grpc.Metadata ? error.metadata : undefined;
    return { code: error.code, details, ...(metadata === undefined ? {} : { metadata }) };
  }
  return { code: grpc.status.UNAVAILABLE, details: 'etcdgate: upstream call failed' };
}

/** Ends a server stream with a status (grpc-js turns an 'error' event into the trailers). */
export function endWithStatus(call: { emit(event: 'error', status: Status): boolean }, status: Status): void {
  call.emit('error', status);
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
    code: grpc.status.FAILED_PRECONDITION,
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
  return { code: grpc.status.DATA_LOSS, details: `etcdgate: ${what} cannot be decrypted: ${failure.detail}` };
}
