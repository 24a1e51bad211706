/**
 * Proves that the method table covers exactly the RPCs declared in protos/ (plus the
 * documented extras), with their streaming shapes, and names each one consistently
 * for the audit trail.
 */
import { loadSync } from '@grpc/proto-loader';
import type { MethodDefinition } from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { METHODS, snakeCase } from '../src/etcd/methods.js';

const protoRoot = fileURLToPath(new URL('../protos/', import.meta.url));

/** RPCs in the table that protos/ does not declare (none today). */
const EXTRAS = new Set<string>();

function declaredMethods(): Map<string, MethodDefinition<object, object>> {
  const pkg = loadSync(
    ['etcdserverpb/rpc.proto', 'v3lockpb/v3lock.proto', 'v3electionpb/v3election.proto'],
    { includeDirs: [protoRoot], keepCase: true },
  );
  const out = new Map<string, MethodDefinition<object, object>>();
  for (const def of Object.values(pkg)) {
    // Services are the entries whose members carry a gRPC path; messages and enums are not.
    if (typeof def !== 'object' || def === null || 'format' in def) continue;
    for (const m of Object.values(def as Record<string, unknown>)) {
      if (typeof m === 'object' && m !== null && 'path' in m) {
        const method = m as MethodDefinition<object, object>;
        out.set(method.path, method);
      }
    }
  }
  return out;
}

function shapeOf(def: MethodDefinition<object, object>): string {
  if (def.requestStream && def.responseStream) return 'bidi';
  if (def.responseStream) return 'serverStream';
  if (def.requestStream) return 'clientStream';
  return 'unary';
}

describe('METHODS', () => {
  const declared = declaredMethods();

  it('covers every RPC declared in protos/, and nothing else but the documented extras', () => {
    expect(declared.size).toBeGreaterThan(40);
    const expected = new Set([...declared.keys(), ...EXTRAS]);
    expect([...METHODS.keys()].sort()).toEqual([...expected].sort());
  });

  it('gives every declared RPC its streaming shape', () => {
    for (const [path, def] of declared) {
      expect(METHODS.get(path)?.shape, path).toBe(shapeOf(def));
    }
    expect(METHODS.get('/etcdserverpb.Watch/Watch')?.shape).toBe('bidi');
    expect(METHODS.get('/etcdserverpb.Lease/LeaseKeepAlive')?.shape).toBe('bidi');
    expect(METHODS.get('/etcdserverpb.Maintenance/Snapshot')?.shape).toBe('serverStream');
    expect(METHODS.get('/v3electionpb.Election/Observe')?.shape).toBe('serverStream');
  });

  it('keys each spec by its own path, service and method', () => {
    for (const [path, spec] of METHODS) {
      expect(spec.path).toBe(path);
      expect(path).toBe(`/${spec.service}/${spec.method}`);
    }
  });

  it('names actions etcd.<service>.<snake_case method>', () => {
    const actions: Record<string, string> = {
      '/etcdserverpb.KV/Put': 'etcd.kv.put',
      '/etcdserverpb.KV/DeleteRange': 'etcd.kv.delete_range',
      '/etcdserverpb.Watch/Watch': 'etcd.watch.watch',
      '/etcdserverpb.Lease/LeaseKeepAlive': 'etcd.lease.lease_keep_alive',
      '/etcdserverpb.Lease/LeaseTimeToLive': 'etcd.lease.lease_time_to_live',
      '/etcdserverpb.Maintenance/Snapshot': 'etcd.maintenance.snapshot',
      '/etcdserverpb.Maintenance/HashKV': 'etcd.maintenance.hash_kv',
      '/etcdserverpb.Cluster/MemberList': 'etcd.cluster.member_list',
      '/etcdserverpb.Auth/UserAdd': 'etcd.auth.user_add',
      '/etcdserverpb.Auth/UserChangePassword': 'etcd.auth.user_change_password',
      '/v3lockpb.Lock/Lock': 'etcd.lock.lock',
      '/v3electionpb.Election/Campaign': 'etcd.election.campaign',
    };
    for (const [path, action] of Object.entries(actions)) expect(METHODS.get(path)?.action).toBe(action);
    const all = [...METHODS.values()].map((s) => s.action);
    expect(new Set(all).size).toBe(all.length);
    for (const a of all) expect(a).toMatch(/^etcd\.(kv|watch|lease|cluster|maintenance|auth|lock|election)\.[a-z]+(_[a-z]+)*$/);
    expect(snakeCase('HashKV')).toBe('hash_kv');
  });

  it('puts the Auth service, and only it, in the iam category', () => {
    for (const spec of METHODS.values()) {
      expect(spec.category, spec.path).toBe(spec.service === 'etcdserverpb.Auth' ? 'iam' : 'database');
    }
  });

  it('records reads as access and writes as change', () => {
    const types = (paths: string[]): string[] => paths.map((p) => METHODS.get(p)?.eventType ?? 'missing');
    expect(types(['/etcdserverpb.KV/Range', '/etcdserverpb.Watch/Watch', '/v3electionpb.Election/Observe'])).toEqual(['access', 'access', 'access']);
    expect(types(['/etcdserverpb.KV/Put', '/etcdserverpb.KV/DeleteRange', '/etcdserverpb.KV/Txn'])).toEqual(['change', 'change', 'change']);
    expect(types(['/etcdserverpb.KV/Compact', '/etcdserverpb.Maintenance/Defragment'])).toEqual(['admin', 'admin']);
    expect(types(['/etcdserverpb.Maintenance/Status', '/etcdserverpb.Cluster/MemberList'])).toEqual(['info', 'info']);
  });

  it('does not know RPCs etcd has not got or that etcdgate does not serve', () => {
    expect(METHODS.has('/etcdserverpb.KV/RangeStream')).toBe(false);
    expect(METHODS.has('/etcdserverpb.Lease/LeaseCheckpoint')).toBe(false);
    expect(METHODS.has('/grpc.health.v1.Health/Check')).toBe(false);
  });

  it('names the methods whose messages carry values (encryption at rest), and only them', () => {
    const carriers = [...METHODS.values()].filter((spec) => spec.values !== 'none').map((spec) => `${spec.path} ${spec.values}`);
    expect(carriers.sort()).toEqual(
      [
        '/etcdserverpb.KV/DeleteRange delete-range',
        '/etcdserverpb.KV/Put put',
        '/etcdserverpb.KV/Range range',
        '/etcdserverpb.KV/Txn txn',
        '/etcdserverpb.Watch/Watch watch',
        '/v3electionpb.Election/Campaign election',
        '/v3electionpb.Election/Leader election',
        '/v3electionpb.Election/Observe election',
        '/v3electionpb.Election/Proclaim election',
      ].sort(),
    );
  });
});
