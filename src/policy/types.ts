/**
 * The vocabulary shared by the request decoder (src/etcd) and the authorizer
 * (src/policy): what a request touches, and what the policy decided about it.
 * Everything here is plain data; decisions are values, never exceptions.
 */
import type { Identity } from '../tls/identity.js';

/** Admin capabilities a role can grant. `admin` grants every one of them. */
export const CAPABILITIES = [
  'lease',
  'status',
  'compact',
  'snapshot',
  'defragment',
  'hash',
  'alarm',
  'members',
  'move-leader',
  'downgrade',
  'auth',
  'admin',
] as const;
export type Capability = (typeof CAPABILITIES)[number];

/**
 * One thing a request needs permission for.
 * Key ranges follow etcd: `[key, rangeEnd)`; an empty rangeEnd means the single key;
 * rangeEnd "\x00" means every key >= key. Keys are raw bytes.
 */
export type Access =
  | { readonly kind: 'read' | 'write'; readonly key: Buffer; readonly rangeEnd: Buffer; readonly origin?: AccessOrigin }
  /** Needs this capability (a role with `admin` has every capability; `admin` itself needs `admin`). */
  | { readonly kind: 'capability'; readonly capability: Capability }
  /** Any caller with a verified certificate (e.g. Cluster.MemberList). */
  | { readonly kind: 'authenticated' };

/**
 * Where an access comes from inside a Txn: the operation at `index` of `branch` (its
 * compares, or the success or failure operations), inside the operation `parent` when
 * the Txn is nested. Requests other than Txn leave it out: the request is the operation.
 */
export interface AccessOrigin {
  readonly branch: 'compare' | 'success' | 'failure';
  readonly index: number;
  /** "compare", "range", "put", "delete_range" or "txn". */
  readonly op: string;
  readonly parent?: AccessOrigin;
}

/** The outcome of authorizing a list of accesses. */
export interface Decision {
  readonly allowed: boolean;
  /** Role that granted (allowed) or whose deny rule refused (denied), when one did. */
  readonly role?: string;
  /** Human-readable rule, e.g. `prefix /registry/ readwrite` or `deny prefix /config/secrets/`. */
  readonly rule?: string;
  /** Why, in a few words: "granted", "no binding", "range not covered", "denied by rule", ... */
  readonly reason: string;
  /** Denials: the first access that was refused (with its Txn position, if any). */
  readonly refused?: Access;
}

/** Permissions of one identity, resolved from the bindings and compiled for fast checks. */
export interface Permissions {
  /** Roles bound to the identity (sorted, unique). */
  readonly roles: readonly string[];
  /**
   * The first binding the identity matched, as metrics name it (its `name`, else its path
   * such as `bindings[2]`); absent when none matched. Bounded by the policy.
   */
  readonly binding?: string;
  /** All accesses must be allowed; the first denial is returned. An empty list is allowed. */
  check(accesses: readonly Access[]): Decision;
}

/** A policy compiled once at load; immutable. */
export interface CompiledPolicy {
  /** Content hash (first 12 hex chars of SHA-256 of the source text) identifying this policy. */
  readonly version: string;
  /** Number of key rules (allow and deny) over all roles. */
  readonly ruleCount: number;
  /** Whether bindings match on the caller's address (`match.source`): a cache must then key on it too. */
  readonly usesSource?: boolean;
  /**
   * Resolves an identity's permissions (callers cache the result by fingerprint, and by
   * source when usesSource). `source` is the connection's client address; bindings with
   * `match.source` never match without one.
   */
  permissionsFor(identity: Identity, source?: string): Permissions;
}
