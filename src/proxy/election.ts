/**
 * The Election service's proxy side (etcd's v3election recipes). Observe streams the
 * leader's changes like a watch, relayed with backpressure; Campaign, Proclaim, Leader
 * and Resign are unary calls whose decoders (src/etcd/election.ts) name the election's
 * keys and the lease each one acts on.
 */
import type { FlowFactory, ServiceDeps } from './services.js';
import { ServerStreamFlow } from './stream-flow.js';

export function electionFlows(deps: ServiceDeps): Readonly<Record<string, FlowFactory>> {
  return {
    Observe: (spec, caller, call, started) => new ServerStreamFlow(deps, spec, caller, call, started, 'observe'),
  };
}
