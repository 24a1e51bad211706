/**
 * Placeholders in key selectors are filled from the verified identity and never widen
 * access: an unusable value (empty, "/", "*", NUL, control characters) fills nothing.
 */
import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../src/policy/compile.js';
import { PolicyError } from '../src/policy/policy-error.js';
import { key, prefix, range, who } from './support/policy.js';

const tenants = compilePolicy({
  roles: { tenant: { keys: [{ prefix: '/tenants/{cn}/', access: 'readwrite' }] } },
  bindings: [{ match: { cn: '*' }, roles: ['tenant'] }, { match: { o: 'tenants' }, roles: ['tenant'] }],
});

describe('{cn}', () => {
  it('fills the prefix with the caller CN', () => {
    const a = tenants.permissionsFor(who({ cn: 'tenant-a' }));
    expect(a.check([key('write', '/tenants/tenant-a/x')])).toEqual({ allowed: true, role: 'tenant', rule: 'prefix /tenants/tenant-a/ readwrite', reason: 'granted' });
    expect(a.check([prefix('read', '/tenants/tenant-a/')])).toMatchObject({ allowed: true });
  });

  it('keeps tenant-a out of tenant-b and out of the parent prefix', () => {
    const a = tenants.permissionsFor(who({ cn: 'tenant-a' }));
    expect(a.check([key('read', '/tenants/tenant-b/x')])).toMatchObject({ allowed: false, reason: 'not granted' });
    expect(a.check([key('read', '/tenants/tenant-ab/x')])).toMatchObject({ allowed: false, reason: 'not granted' });
    expect(a.check([prefix('read', '/tenants/')])).toMatchObject({ allowed: false, reason: 'range not fully covered' });
    const b = tenants.permissionsFor(who({ cn: 'tenant-b' }));
    expect(b.check([key('read', '/tenants/tenant-b/x')])).toMatchObject({ allowed: true });
  });

  it.each([
    ['a slash', 'a/b', '/tenants/a/b/x'],
    ['a wildcard', '*', '/tenants/*/x'],
    ['a NUL', 'a\u0000b', '/tenants/a\u0000b/x'],
    ['a newline', 'a\nb', '/tenants/a\nb/x'],
    ['DEL', 'a\u007f', '/tenants/a\u007f/x'],
  ])('with %s fills nothing, so the caller gets no tenant keys', (_what, cn, target) => {
    const permissions = tenants.permissionsFor(who({ cn }));
    expect(permissions.roles).toEqual(['tenant']);
    expect(permissions.check([key('read', target)])).toMatchObject({ allowed: false, reason: 'not granted' });
    expect(permissions.check([key('read', '/tenants/x')])).toMatchObject({ allowed: false, reason: 'not granted' });
    expect(tenants.permissionsFor(who({ cn: 'ok' })).check([key('read', '/tenants/ok/x')])).toMatchObject({ allowed: true });
  });

  it('an empty CN fills nothing (the caller is bound by O, yet has no keys)', () => {
    const permissions = tenants.permissionsFor(who({ cn: '', o: ['tenants'] }));
    expect(permissions.roles).toEqual(['tenant']);
    expect(permissions.check([key('read', '/tenants//x')])).toMatchObject({ allowed: false, reason: 'not granted' });
    expect(permissions.check([prefix('read', '/tenants/')])).toMatchObject({ allowed: false, reason: 'not granted' });
  });

  it('fills UTF-8 CNs byte for byte', () => {
    const permissions = tenants.permissionsFor(who({ cn: 'é' }));
    expect(permissions.check([key('read', [...Buffer.from('/tenants/'), 0xc3, 0xa9, 0x2f, 0x78])])).toMatchObject({ allowed: true });
    expect(permissions.check([key('read', [...Buffer.from('/tenants/'), 0xe9, 0x2f, 0x78])])).toMatchObject({ allowed: false, reason: 'not granted' });
  });
});

describe('multi-valued placeholders', () => {
  const policy = compilePolicy({
    roles: { team: { keys: [{ prefix: '/teams/{o}/', access: 'read' }, { key: '/hosts/{dns}', access: 'write' }] } },
    bindings: [{ match: { cn: '*' }, roles: ['team'] }],
  });

  it('apply once per usable value and skip the unusable ones', () => {
    const permissions = policy.permissionsFor(who({ cn: 'x', o: ['red', 'blue', 'bad/one', ''], dns: ['h1.example'] }));
    expect(permissions.check([key('read', '/teams/red/1'), key('read', '/teams/blue/1'), key('write', '/hosts/h1.example')])).toMatchObject({ allowed: true });
    expect(permissions.check([key('read', '/teams/bad/one/1')])).toMatchObject({ allowed: false, reason: 'not granted' });
    expect(permissions.check([key('read', '/teams//1')])).toMatchObject({ allowed: false, reason: 'not granted' });
    expect(permissions.check([key('read', '/teams/green/1')])).toMatchObject({ allowed: false, reason: 'not granted' });
  });

  it('give nothing when the field has no value', () => {
    const permissions = policy.permissionsFor(who({ cn: 'x' }));
    expect(permissions.check([key('read', '/teams/red/1')])).toMatchObject({ allowed: false, reason: 'not granted' });
  });
});

describe('{spiffe.path.last}', () => {
  const policy = compilePolicy({
    roles: { t: { keys: [{ prefix: '/t/{spiffe.path.last}/', access: 'read' }, { range: { from: '/r/{cn}/a', to: '/r/{cn}/m' }, access: 'read' }] } },
    bindings: [{ match: { cn: '*' }, roles: ['t'] }, { match: { uri: '*' }, roles: ['t'] }],
  });

  it('is the last path segment of a spiffe:// URI', () => {
    const permissions = policy.permissionsFor(who({ uri: ['https://example.org/x/other', 'spiffe://example.org/tenant/acme'] }));
    expect(permissions.check([key('read', '/t/acme/1')])).toMatchObject({ allowed: true });
    expect(permissions.check([key('read', '/t/other/1')])).toMatchObject({ allowed: false, reason: 'not granted' });
  });

  it('is unusable for a SPIFFE ID without a path', () => {
    const permissions = policy.permissionsFor(who({ uri: ['spiffe://example.org'] }));
    expect(permissions.check([prefix('read', '/t/')])).toMatchObject({ allowed: false, reason: 'not granted' });
  });

  it('fills both ends of a range', () => {
    const permissions = policy.permissionsFor(who({ cn: 'c' }));
    expect(permissions.check([range('read', '/r/c/b', '/r/c/l')])).toMatchObject({ allowed: true });
    expect(permissions.check([range('read', '/r/c/b', '/r/c/z')])).toMatchObject({ allowed: false, reason: 'range not fully covered' });
  });
});

describe('placeholders in deny rules', () => {
  const policy = compilePolicy({
    roles: { r: { keys: [{ all: true, access: 'read' }], deny: [{ prefix: '/private/{ou}/' }] } },
    bindings: [{ match: { cn: '*' }, roles: ['r'] }],
  });

  it('deny per value', () => {
    const permissions = policy.permissionsFor(who({ cn: 'x', ou: ['hr'] }));
    expect(permissions.check([key('read', '/private/hr/salaries')])).toMatchObject({ allowed: false, reason: 'denied by rule', rule: 'deny prefix /private/hr/' });
    expect(permissions.check([key('read', '/private/eng/x')])).toMatchObject({ allowed: true });
  });

  it('fail closed when a present value cannot fill them: every key is denied', () => {
    const permissions = policy.permissionsFor(who({ cn: 'x', ou: ['a/b'] }));
    expect(permissions.check([key('read', '/private/a/b/x')])).toMatchObject({ allowed: false, reason: 'denied by rule' });
    expect(permissions.check([key('read', '/public')])).toMatchObject({ allowed: false, reason: 'denied by rule' });
  });

  it('deny nothing when the field has no value', () => {
    expect(policy.permissionsFor(who({ cn: 'x' })).check([key('read', '/private/hr/x')])).toMatchObject({ allowed: true });
  });
});

describe('template syntax', () => {
  it('"{{" is a literal brace', () => {
    const policy = compilePolicy({ roles: { r: { keys: [{ key: '/a{{b}', access: 'read' }] } }, bindings: [{ match: { cn: '*' }, roles: ['r'] }] });
    const permissions = policy.permissionsFor(who({ cn: 'x' }));
    expect(permissions.check([key('read', '/a{b}')])).toMatchObject({ allowed: true });
    expect(permissions.check([key('read', '/a{{b}')])).toMatchObject({ allowed: false, reason: 'not granted' });
  });

  it('rejects unknown placeholders and a placeholder that ends a prefix', () => {
    const attempt = () =>
      compilePolicy({
        roles: { r: { keys: [{ prefix: '/a/{uri}/', access: 'read' }, { prefix: '/t/{cn}', access: 'read' }, { key: '/b/{nope', access: 'read' }] } },
        bindings: [{ match: { cn: '*' }, roles: ['r'] }],
      });
    expect(attempt).toThrow(PolicyError);
    try {
      attempt();
    } catch (error: unknown) {
      const issues = (error as PolicyError).issues;
      expect(issues.map((i) => i.path)).toEqual(['roles.r.keys[0].prefix', 'roles.r.keys[1].prefix', 'roles.r.keys[2].key']);
      expect(issues[0]?.message).toMatch(/unknown placeholder \{uri\}/u);
      expect(issues[1]?.message).toMatch(/must not end a prefix/u);
      expect(issues[2]?.message).toMatch(/unclosed/u);
    }
  });
});
