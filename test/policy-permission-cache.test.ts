/** PermissionCache resolves an identity once per policy version and fingerprint. */
import { describe, expect, it } from 'vitest';
import { PermissionCache } from '../src/policy/cache.js';
import { compilePolicy } from '../src/policy/compile.js';
import type { Identity } from '../src/tls/identity.js';
import type { CompiledPolicy, Permissions } from '../src/policy/types.js';
import { key, who } from './support/policy.js';

function counting(policy: CompiledPolicy): { policy: CompiledPolicy; calls: () => number } {
  let calls = 0;
  return {
    policy: {
      version: policy.version,
      ruleCount: policy.ruleCount,
      permissionsFor(identity: Identity): Permissions {
        calls++;
        return policy.permissionsFor(identity);
      },
    },
    calls: () => calls,
  };
}

const v1 = compilePolicy({ roles: { r: { keys: [{ prefix: '/a/', access: 'read' }] } }, bindings: [{ match: { cn: 'c' }, roles: ['r'] }] });
const v2 = compilePolicy({ roles: { r: { keys: [{ prefix: '/b/', access: 'read' }] } }, bindings: [{ match: { cn: 'c' }, roles: ['r'] }] });

describe('PermissionCache', () => {
  it('resolves once per fingerprint and returns the cached permissions after', () => {
    const cache = new PermissionCache();
    const { policy, calls } = counting(v1);
    const c = who({ cn: 'c', fingerprint: '01' });
    const first = cache.get(policy, c);
    expect(cache.get(policy, c)).toBe(first);
    expect(calls()).toBe(1);
    expect(first.check([key('read', '/a/x')])).toMatchObject({ allowed: true });
    cache.get(policy, who({ cn: 'c', fingerprint: '02' }));
    expect(calls()).toBe(2);
    expect(cache.size).toBe(2);
  });

  it('misses after a reload to a new policy version', () => {
    const cache = new PermissionCache();
    const c = who({ cn: 'c', fingerprint: '01' });
    expect(cache.get(v1, c).check([key('read', '/b/x')])).toMatchObject({ allowed: false });
    expect(cache.get(v2, c).check([key('read', '/b/x')])).toMatchObject({ allowed: true });
  });

  it('never caches an identity without a fingerprint', () => {
    const cache = new PermissionCache();
    const { policy, calls } = counting(v1);
    cache.get(policy, who({ cn: 'c' }));
    cache.get(policy, who({ cn: 'c' }));
    expect(calls()).toBe(2);
    expect(cache.size).toBe(0);
  });

  it('is bounded', () => {
    const cache = new PermissionCache({ max: 2 });
    for (const fp of ['01', '02', '03']) cache.get(v1, who({ cn: 'c', fingerprint: fp }));
    expect(cache.size).toBe(2);
    cache.clear();
    expect(cache.size).toBe(0);
  });
});
