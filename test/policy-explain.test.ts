/** `explain` says which bindings and roles apply and why each request is allowed or denied. */
import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../src/policy/compile.js';
import { describeAccess, explain } from '../src/policy/explain.js';
import { cap, key, prefix, range, who } from './support/policy.js';

const policy = compilePolicy({
  roles: {
    reader: { keys: [{ prefix: '/config/', access: 'read' }], deny: [{ prefix: '/config/secrets/' }] },
    ops: { capabilities: ['status'] },
  },
  bindings: [
    { match: { cn: 'svc' }, roles: ['reader'] },
    { match: { o: 'ops' }, roles: ['ops'] },
  ],
});

describe('explain', () => {
  it('names bindings, roles, grants and the rule behind each decision for an allowed caller', () => {
    const result = explain(policy, who({ cn: 'svc', o: ['ops'] }), [key('read', '/config/a'), cap('status')]);
    expect(result.decision).toMatchObject({ allowed: true });
    expect(result.roles).toEqual(['ops', 'reader']);
    const text = result.lines.join('\n');
    expect(text).toContain(`policy version ${policy.version}`);
    expect(text).toContain('bindings: bindings[0], bindings[1]');
    expect(text).toContain('read allow [/config/, /config0) by role reader (roles.reader.keys[0]: prefix /config/ read)');
    expect(text).toContain('request 1: read key /config/a -> ALLOW: granted by role reader (prefix /config/ read)');
    expect(text).toContain('request 2: capability status -> ALLOW: granted by role ops (capability status)');
    expect(result.lines.at(-1)).toMatch(/^decision: ALLOW/u);
  });

  it('shows the deny rule and the first denial for a denied request', () => {
    const result = explain(policy, who({ cn: 'svc' }), [key('read', '/config/a'), prefix('read', '/config/')]);
    expect(result.decision).toMatchObject({ allowed: false, reason: 'denied by rule' });
    expect(result.lines).toContain('request 2: read prefix /config/ -> DENY: denied by rule by role reader (deny prefix /config/secrets/)');
    expect(result.lines.at(-1)).toBe('decision: DENY: denied by rule by role reader (deny prefix /config/secrets/)');
  });

  it('says when no binding matches', () => {
    const result = explain(policy, who({ cn: 'nobody' }), [key('read', '/config/a')]);
    expect(result.decision).toMatchObject({ allowed: false, reason: 'no binding' });
    expect(result.roles).toEqual([]);
    expect(result.lines).toContain('bindings: none match, so every access is denied');
  });
});

describe('describeAccess', () => {
  it.each([
    [key('write', [0x61, 0xff]), 'write key a\\xff'],
    [prefix('read', '/a/'), 'read prefix /a/'],
    [range('read', '/a', [0]), 'read keys from /a'],
    [range('read', [0], [0]), 'read all keys'],
    [range('read', '/a', '/b/'), 'read range [/a, /b/)'],
    [{ kind: 'authenticated' } as const, 'authenticated caller'],
  ])('%#: %s', (access, text) => {
    expect(describeAccess(access)).toBe(text);
  });
});
