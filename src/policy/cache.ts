/**
 * Caches resolved permissions per (policy version, certificate fingerprint). Resolving is
 * cheap but not free (bindings, templates, interval sets); a connection's identity never
 * changes, and neither does a policy version, so the entry can never be stale. After a
 * reload the new version misses and old entries age out of the LRU. When the policy
 * matches on source addresses, the connection's address is part of the key (a connection's
 * address never changes either).
 */
import { LRUCache } from 'lru-cache';
import type { Identity } from '../tls/identity.js';
import type { CompiledPolicy, Permissions } from './types.js';

/** Options for PermissionCache. */
export interface PermissionCacheOptions {
  /** Most identities kept (default 10000). */
  readonly max?: number;
}

/** An LRU of compiled permissions keyed by policy version and certificate fingerprint. */
export class PermissionCache {
  readonly #cache: LRUCache<string, Permissions>;

  constructor(options: PermissionCacheOptions = {}) {
    this.#cache = new LRUCache<string, Permissions>({ max: options.max ?? 10_000 });
  }

  /** The identity's permissions under `policy`, resolved at most once per fingerprint and version. */
  get(policy: CompiledPolicy, identity: Identity, source?: string): Permissions {
    // Without a fingerprint two different identities could share a key: never cache those.
    if (identity.fingerprint === '') return policy.permissionsFor(identity, source);
    const key = policy.usesSource === true ? `${policy.version}\u0000${identity.fingerprint}\u0000${source ?? ''}` : `${policy.version}\u0000${identity.fingerprint}`;
    let permissions = this.#cache.get(key);
    if (permissions === undefined) {
      permissions = policy.permissionsFor(identity, source);
      this.#cache.set(key, permissions);
    }
    return permissions;
  }

  /** Number of cached entries. */
  get size(): number {
    return this.#cache.size;
  }

  /** Drops every entry. */
  clear(): void {
    this.#cache.clear();
  }
}
