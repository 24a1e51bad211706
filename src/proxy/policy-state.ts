/**
 * The policy in force, swapped atomically on reload. Permissions are resolved once per
 * certificate (cached by fingerprint and policy version), so a call pays for a cache hit
 * and a few binary searches. Listeners hear about every swap; open watchers use it to
 * re-check the ranges they were granted.
 */
import { PermissionCache } from '../policy/cache.js';
import type { CompiledPolicy, Permissions } from '../policy/types.js';
import type { Identity } from '../tls/identity.js';

export class PolicyState {
  private currentPolicy: CompiledPolicy;
  private readonly cache = new PermissionCache();
  private readonly listeners = new Set<(policy: CompiledPolicy) => void>();

  constructor(initial: CompiledPolicy) {
    this.currentPolicy = initial;
  }

  get current(): CompiledPolicy {
    return this.currentPolicy;
  }

  /** `source`: the connection's client address (bindings with match.source need it). */
  permissionsFor(identity: Identity, source?: string): Permissions {
    return this.cache.get(this.currentPolicy, identity, source);
  }

  /** Puts a new, already compiled and validated policy in force. */
  replace(policy: CompiledPolicy): void {
    this.currentPolicy = policy;
    for (const listener of this.listeners) listener(policy);
  }

  onChange(listener: (policy: CompiledPolicy) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
