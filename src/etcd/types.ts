/**
 * The method table's vocabulary: for every etcd v3 RPC, how it streams, what it is
 * called in audit records, and how to decode a request message into the accesses the
 * policy must allow. Decoders read only the fields a decision needs, from the original
 * bytes; the bytes themselves are forwarded untouched.
 */
import type { KeySummary } from '../audit/types.js';
import type { Access } from '../policy/types.js';

/** A lease whose attached keys the caller must hold `kind` access on (resolved upstream). */
export interface LeaseKeysCheck {
  /** The lease ID as a decimal int64 string (as etcd prints it). */
  readonly leaseId: string;
  readonly kind: 'read' | 'write';
}

/** What one request message needs and how it will be described in the audit record. */
export interface DecodedRequest {
  readonly accesses: readonly Access[];
  readonly summary: KeySummary;
  /** Further checks that need etcd's view of a lease (Put with lease, LeaseRevoke, KeepAlive, TimeToLive keys=true). */
  readonly leaseChecks: readonly LeaseKeysCheck[];
}

/** Thrown by a decoder for bytes that are not a valid message of its type: the call is refused with INVALID_ARGUMENT. */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
}

/** Decodes one request message. Throws DecodeError on malformed input; never returns partial accesses. */
export type RequestDecoder = (message: Buffer) => DecodedRequest;

export type CallShape = 'unary' | 'serverStream' | 'clientStream' | 'bidi';

/**
 * Which of etcd's messages a method carries values in, so that encryption at rest
 * (src/encryption) knows which transform its request and its responses need without
 * looking at paths: 'range', 'put', 'delete-range' and 'txn' name the KV message pair,
 * 'watch' the WatchResponse events, 'election' the election recipes (whose values
 * etcdgate does not transform and refuses under an encrypted prefix), 'none' a method
 * whose messages never hold a value.
 */
export type ValueCarrier = 'none' | 'range' | 'put' | 'delete-range' | 'txn' | 'watch' | 'election';

export interface MethodSpec {
  /** Full gRPC path, e.g. "/etcdserverpb.KV/Put". */
  readonly path: string;
  /** Fully-qualified service, e.g. "etcdserverpb.KV". */
  readonly service: string;
  /** Method name, e.g. "Put". */
  readonly method: string;
  readonly shape: CallShape;
  /** Audit action, e.g. "etcd.kv.put". */
  readonly action: string;
  /** ECS event.category: "iam" for the Auth service, "database" otherwise. */
  readonly category: 'database' | 'iam';
  /** ECS event.type: "access" for reads, "change" for writes, "admin"/"info" for the rest. */
  readonly eventType: 'access' | 'change' | 'admin' | 'info';
  /** Decoder of the request message (for bidi methods: of each client message). */
  readonly decode: RequestDecoder;
  /** Where its messages carry values (encryption at rest). */
  readonly values: ValueCarrier;
}
