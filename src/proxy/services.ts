/**
 * Wires the services together, as etcd's grpcproxy does: for every method of the method
 * table, the flow that serves an admitted call. Each service's file says what is
 * particular to it (kv.ts, watch.ts, lease.ts, cluster.ts, maintenance.ts, auth.ts,
 * lock.ts, election.ts); every other unary method takes the generic unary flow.
 */
import type { Encryption } from '../encryption/encryption.js';
import type { MethodSpec } from '../etcd/types.js';
import type { UpstreamPool } from '../upstream/pool.js';
import { authFlows } from './auth.js';
import type { RpcCall } from './call.js';
import { memberUrlRewrite } from './cluster.js';
import { electionFlows } from './election.js';
import type { Caller, CallStart, Gate } from './gate.js';
import { kvCacheHooks } from './kv.js';
import { KeepAliveFlow } from './lease.js';
import { lockFlows } from './lock.js';
import { maintenanceFlows } from './maintenance.js';
import type { RangeCache } from './range-cache.js';
import { UnaryFlow, type UnaryServices } from './unary.js';
import { WatchFlow } from './watch.js';

/** Starts serving one admitted call of `spec`. */
export type FlowFactory = (spec: MethodSpec, caller: Caller, call: RpcCall, started: CallStart) => void;

export interface ServiceDeps {
  readonly gate: Gate;
  readonly pool: UpstreamPool;
  /** server.maxSendBytes; -1 for none. */
  readonly maxSendBytes: number;
  /** limits.maxWatcherBufferBytes. */
  readonly maxWatcherBufferBytes: number;
  readonly advertiseClientUrls: readonly string[];
  readonly cache: RangeCache | undefined;
  readonly encryption: Encryption | undefined;
}

/** A served method: its table entry and the flow that serves it. */
export interface Service {
  readonly spec: MethodSpec;
  readonly open: FlowFactory;
}

/** Every method of `methods` with its flow; throws for a method shape no flow serves (a table error). */
export function buildServices(deps: ServiceDeps, methods: ReadonlyMap<string, MethodSpec>): ReadonlyMap<string, Service> {
  const cache = kvCacheHooks(deps.cache);
  const unaryServices: UnaryServices = {
    cacheLookup: cache.cacheLookup,
    invalidate: cache.invalidate,
    rewrite: memberUrlRewrite(deps.advertiseClientUrls),
  };
  const unaryDeps = { gate: deps.gate, pool: deps.pool, services: unaryServices, maxSendBytes: deps.maxSendBytes, encryption: deps.encryption };
  const particular: Readonly<Record<string, Readonly<Record<string, FlowFactory>>>> = {
    'etcdserverpb.Watch': { Watch: (spec, caller, call, started) => new WatchFlow(deps, spec, caller, call, started) },
    'etcdserverpb.Lease': { LeaseKeepAlive: (spec, caller, call, started) => new KeepAliveFlow(deps, spec, caller, call, started) },
    'etcdserverpb.Maintenance': maintenanceFlows(deps),
    'etcdserverpb.Auth': authFlows(),
    'v3lockpb.Lock': lockFlows(),
    'v3electionpb.Election': electionFlows(deps),
  };
  const unary: FlowFactory = (spec, caller, call, started) => new UnaryFlow(unaryDeps, spec, caller, call, started);
  const services = new Map<string, Service>();
  for (const spec of methods.values()) {
    const open = particular[spec.service]?.[spec.method] ?? (spec.shape === 'unary' ? unary : undefined);
    if (open === undefined) throw new Error(`no flow serves ${spec.shape} method ${spec.path}`);
    services.set(spec.path, { spec, open });
  }
  return services;
}
