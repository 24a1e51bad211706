/**
 * The Maintenance service's proxy side. Snapshot streams the whole database: relayed
 * message by message with backpressure, so a slow reader never makes etcdgate hold the
 * snapshot, and recorded when it starts and when it ends (messages and bytes). Status,
 * Hash, HashKV, Defragment, Alarm, MoveLeader and Downgrade are plain unary calls behind
 * their capabilities.
 */
import type { FlowFactory, ServiceDeps } from './services.js';
import { ServerStreamFlow } from './stream-flow.js';

export function maintenanceFlows(deps: ServiceDeps): Readonly<Record<string, FlowFactory>> {
  return {
    Snapshot: (spec, caller, call, started) => new ServerStreamFlow(deps, spec, caller, call, started, 'snapshot'),
  };
}
