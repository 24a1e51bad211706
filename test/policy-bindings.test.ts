/**
 * Bindings: each identity field, glob wildcards, multi-valued fields, several fields (AND),
 * the union of every matching binding, and no binding at all. Each row has a matching and
 * a non-matching identity.
 */
import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../src/policy/compile.js';
import type { IdentityFields } from '../src/policy/test-cases.js';
import { cap, key, who } from './support/policy.js';

interface Row {
  readonly name: string;
  readonly match: Record<string, unknown>;
  readonly bound: IdentityFields;
  readonly unbound: IdentityFields;
}

const FP = 'ab'.repeat(32);

const rows: Row[] = [
  { name: 'cn exact', match: { cn: 'svc' }, bound: { cn: 'svc' }, unbound: { cn: 'svc2' } },
  { name: 'cn is case-sensitive', match: { cn: 'svc' }, bound: { cn: 'svc' }, unbound: { cn: 'SVC' } },
  { name: 'o, any of several values', match: { o: 'ops' }, bound: { o: ['dev', 'ops'] }, unbound: { o: ['dev', 'ops2'] } },
  { name: 'ou', match: { ou: 'security' }, bound: { ou: ['security'] }, unbound: { ou: ['secure'], o: ['security'] } },
  { name: 'dns SAN', match: { dns: 'api.example.com' }, bound: { dns: ['x.example.com', 'api.example.com'] }, unbound: { cn: 'api.example.com' } },
  { name: 'uri SAN', match: { uri: 'spiffe://td/a' }, bound: { uri: ['spiffe://td/a'] }, unbound: { uri: ['spiffe://td/a/b'] } },
  { name: 'fingerprint, case-insensitive with colons', match: { fingerprint: FP.toUpperCase().replace(/(..)(?!$)/gu, '$1:') }, bound: { fingerprint: FP }, unbound: { fingerprint: 'ac'.repeat(32) } },
  { name: 'serial, case, colons and leading zeros ignored', match: { serial: '00:0a:FF' }, bound: { serial: 'AFF' }, unbound: { serial: 'AFE' } },
  { name: 'a list of patterns is any-of', match: { cn: ['a', 'b'] }, bound: { cn: 'b' }, unbound: { cn: 'c' } },
  { name: '* spans any run, "/" included', match: { uri: 'spiffe://example.org/tenant/*' }, bound: { uri: ['spiffe://example.org/tenant/a/b'] }, unbound: { uri: ['spiffe://example.org/tenants/a'] } },
  { name: 'globs are anchored at both ends', match: { cn: 'tenant-*' }, bound: { cn: 'tenant-a' }, unbound: { cn: 'xtenant-a' } },
  { name: 'a glob in the middle', match: { dns: '*.prod.example.com' }, bound: { dns: ['a.prod.example.com'] }, unbound: { dns: ['a.prod.example.com.evil'] } },
  { name: 'regex metacharacters are literal', match: { cn: 'a.b+c' }, bound: { cn: 'a.b+c' }, unbound: { cn: 'axbbc' } },
  { name: '* does not match a missing value', match: { cn: '*' }, bound: { cn: 'anyone' }, unbound: { cn: '', uri: ['spiffe://td/x'] } },
  { name: 'several fields must all hold', match: { cn: 'backup-*', o: 'backup-operators' }, bound: { cn: 'backup-1', o: ['backup-operators'] }, unbound: { cn: 'intern', o: ['backup-operators'] } },
];

describe.each(rows)('match on $name', ({ match, bound, unbound }) => {
  const policy = compilePolicy({
    roles: { r: { keys: [{ prefix: '/p/', access: 'read' }] } },
    bindings: [{ match, roles: ['r'] }],
  });

  it('binds the matching identity', () => {
    const permissions = policy.permissionsFor(who(bound));
    expect(permissions.roles).toEqual(['r']);
    expect(permissions.check([key('read', '/p/x')])).toMatchObject({ allowed: true, role: 'r' });
  });

  it('does not bind the other identity', () => {
    const permissions = policy.permissionsFor(who(unbound));
    expect(permissions.roles).toEqual([]);
    expect(permissions.check([key('read', '/p/x')])).toMatchObject({ allowed: false, reason: 'no binding' });
  });
});

describe('several bindings', () => {
  const policy = compilePolicy({
    roles: {
      reader: { keys: [{ prefix: '/a/', access: 'read' }] },
      writer: { keys: [{ prefix: '/b/', access: 'write' }] },
      status: { capabilities: ['status'] },
    },
    bindings: [
      { match: { o: 'team' }, roles: ['reader'] },
      { match: { cn: 'svc' }, roles: ['writer', 'reader'] },
      { match: { ou: 'monitoring' }, roles: ['status'] },
    ],
  });

  it('give an identity the union of every binding it matches, roles sorted and unique', () => {
    const permissions = policy.permissionsFor(who({ cn: 'svc', o: ['team'], ou: ['monitoring'] }));
    expect(permissions.roles).toEqual(['reader', 'status', 'writer']);
    expect(permissions.check([key('read', '/a/1'), key('write', '/b/1'), cap('status')])).toMatchObject({ allowed: true });
  });

  it('give nothing from bindings it does not match', () => {
    const permissions = policy.permissionsFor(who({ cn: 'other', o: ['team'] }));
    expect(permissions.roles).toEqual(['reader']);
    expect(permissions.check([key('read', '/a/1')])).toMatchObject({ allowed: true });
    expect(permissions.check([key('write', '/b/1')])).toMatchObject({ allowed: false, reason: 'not granted', refused: key('write', '/b/1') });
    expect(permissions.check([cap('status')])).toMatchObject({ allowed: false, reason: 'capability not granted', refused: cap('status') });
  });

  it('deny everything, even "authenticated", to an identity with no binding', () => {
    const permissions = policy.permissionsFor(who({ cn: 'nobody' }));
    expect(permissions.roles).toEqual([]);
    for (const access of [key('read', '/a/1'), cap('status'), { kind: 'authenticated' } as const]) {
      expect(permissions.check([access])).toMatchObject({ allowed: false, reason: 'no binding' });
    }
    expect(policy.permissionsFor(who({ cn: 'svc' })).check([{ kind: 'authenticated' }])).toMatchObject({ allowed: true });
  });
});

describe('capabilities', () => {
  const policy = compilePolicy({
    roles: { ops: { capabilities: ['lease', 'status'] }, boss: { capabilities: ['admin'] } },
    bindings: [
      { match: { cn: 'ops' }, roles: ['ops'] },
      { match: { cn: 'boss' }, roles: ['boss'] },
    ],
  });

  it('grant exactly the listed ones', () => {
    const ops = policy.permissionsFor(who({ cn: 'ops' }));
    expect(ops.check([cap('lease')])).toEqual({ allowed: true, role: 'ops', rule: 'capability lease', reason: 'granted' });
    expect(ops.check([cap('snapshot')])).toMatchObject({ allowed: false, reason: 'capability not granted', refused: cap('snapshot') });
    expect(ops.check([cap('admin')])).toMatchObject({ allowed: false, reason: 'capability not granted', refused: cap('admin') });
  });

  it('admin includes every capability, and `admin` itself needs admin', () => {
    const boss = policy.permissionsFor(who({ cn: 'boss' }));
    expect(boss.check([cap('members'), cap('defragment'), cap('auth'), cap('admin')])).toMatchObject({ allowed: true, role: 'boss' });
    expect(boss.check([cap('snapshot')])).toEqual({ allowed: true, role: 'boss', rule: 'capability admin (includes snapshot)', reason: 'granted' });
  });
});
