/**
 * Every way the policy denies maps to its own bounded reason label (none falls through
 * to `other`), the binding label is the caller's first binding (name or path), and only
 * a Range of exactly the key `health` counts as etcdctl's health probe.
 */
import { describe, expect, it } from 'vitest';
import { decodeRangeRequest } from '../src/etcd/kv.js';
import { denialLabels, denialReason, isHealthProbe } from '../src/observability/denials.js';
import { compilePolicy } from '../src/policy/compile.js';
import { leaseKeysDecision } from '../src/policy/lease-decision.js';
import { encode } from './support/etcd-messages.js';
import { cap, key, range, who } from './support/policy.js';

const policy = compilePolicy({
  roles: {
    tenant: { keys: [{ prefix: '/t/{cn}/', access: 'readwrite' }], deny: [{ prefix: '/t/{cn}/sealed/' }] },
  },
  bindings: [{ name: 'tenants', match: { cn: 'tenant-*' }, roles: ['tenant'] }],
});
const tenant = policy.permissionsFor(who({ cn: 'tenant-a' }));
const stranger = policy.permissionsFor(who({ cn: 'nobody' }));

describe('denial labels', () => {
  it.each([
    ['no_binding', () => stranger.check([key('read', '/t/tenant-a/x')])],
    ['not_granted', () => tenant.check([key('read', '/t/tenant-b/x')])],
    ['not_covered', () => tenant.check([range('read', '/t/tenant-a/x', '/t/tenant-b/')])],
    ['denied_by_rule', () => tenant.check([key('write', '/t/tenant-a/sealed/k')])],
    ['capability_not_granted', () => tenant.check([cap('status')])],
    ['lease_keys', () => leaseKeysDecision(tenant, { leaseId: '7587869143960716043', kind: 'write' }, [Buffer.from('/t/tenant-b/x')])],
  ] as const)('%s', (reason, decide) => {
    const decision = decide();
    expect(decision?.allowed).toBe(false);
    if (decision === undefined) return;
    expect(denialReason(decision)).toBe(reason);
  });

  it('names the first matching binding, the refusing role, and none when there is none', () => {
    expect(denialLabels(tenant, tenant.check([key('write', '/t/tenant-a/sealed/k')]))).toEqual({ binding: 'tenants', role: 'tenant', reason: 'denied_by_rule' });
    expect(denialLabels(tenant, tenant.check([key('read', '/x')]))).toEqual({ binding: 'tenants', role: 'none', reason: 'not_granted' });
    expect(denialLabels(stranger, stranger.check([key('read', '/x')]))).toEqual({ binding: 'none', role: 'none', reason: 'no_binding' });
    expect(denialReason({ allowed: false, reason: 'something new' })).toBe('other');
  });
});

describe('the health probe', () => {
  const rangeOf = (request: Record<string, unknown>) => decodeRangeRequest(encode('etcdserverpb.RangeRequest', request));
  it('is a Range of exactly the key health, nothing else', () => {
    expect(isHealthProbe('/etcdserverpb.KV/Range', rangeOf({ key: Buffer.from('health') }))).toBe(true);
    expect(isHealthProbe('/etcdserverpb.KV/Range', rangeOf({ key: Buffer.from('health'), serializable: true }))).toBe(true);
    expect(isHealthProbe('/etcdserverpb.KV/Range', rangeOf({ key: Buffer.from('health'), range_end: Buffer.from('healti') }))).toBe(false);
    expect(isHealthProbe('/etcdserverpb.KV/Range', rangeOf({ key: Buffer.from('/registry/health') }))).toBe(false);
    expect(isHealthProbe('/etcdserverpb.KV/DeleteRange', rangeOf({ key: Buffer.from('health') }))).toBe(false);
    expect(isHealthProbe('/etcdserverpb.KV/Range', undefined)).toBe(false);
  });
});
