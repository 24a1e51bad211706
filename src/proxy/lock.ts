/**
 * The Lock service's proxy side (etcd's v3lock recipe): Lock and Unlock are plain unary
 * calls; their decoders (src/etcd/lock.ts) name the lock's key prefix and the lease the
 * lock is held with, which the policy checks like any write.
 */
import type { FlowFactory } from './services.js';

export function lockFlows(): Readonly<Record<string, FlowFactory>> {
  return {};
}
