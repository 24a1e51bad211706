/**
 * Deny rules beat every allow, in the same role or another one bound to the identity, and
 * a request touching any denied key is denied whole. Each scenario has an allowed request
 * next to the denied one.
 */
import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../src/policy/compile.js';
import { key, prefix, range, who } from './support/policy.js';

const policy = compilePolicy({
  roles: {
    'config-reader': {
      keys: [{ prefix: '/config/', access: 'readwrite' }],
      deny: [{ prefix: '/config/secrets/' }, { key: '/config/readonly', access: 'write' }],
    },
    admin: { keys: [{ all: true, access: 'readwrite' }] },
    fenced: { deny: [{ range: { from: '/z/', to: '\0' }, access: 'read' }] },
  },
  bindings: [
    { match: { cn: 'reader' }, roles: ['config-reader'] },
    { match: { cn: 'admin-reader' }, roles: ['admin', 'config-reader'] },
    { match: { cn: 'fenced-admin' }, roles: ['admin', 'fenced'] },
    { match: { cn: 'admin' }, roles: ['admin'] },
  ],
});

const reader = policy.permissionsFor(who({ cn: 'reader' }));

describe('deny rules', () => {
  it('beat an allow of the same role, naming the deny rule', () => {
    expect(reader.check([key('read', '/config/app')])).toMatchObject({ allowed: true, role: 'config-reader' });
    expect(reader.check([key('read', '/config/secrets/db')])).toMatchObject({ allowed: false, role: 'config-reader', rule: 'deny prefix /config/secrets/', reason: 'denied by rule', refused: key('read', '/config/secrets/db') });
  });

  it('hold across roles: another role granting everything does not lift them', () => {
    const both = policy.permissionsFor(who({ cn: 'admin-reader' }));
    expect(both.check([key('read', '/config/secrets/db')])).toMatchObject({ allowed: false, reason: 'denied by rule' });
    expect(both.check([key('write', '/anything')])).toMatchObject({ allowed: true, role: 'admin' });
    const admin = policy.permissionsFor(who({ cn: 'admin' }));
    expect(admin.check([key('read', '/config/secrets/db')])).toMatchObject({ allowed: true });
  });

  it('deny a range that touches one denied key, whole', () => {
    expect(reader.check([prefix('read', '/config/')])).toMatchObject({ allowed: false, reason: 'denied by rule' });
    expect(reader.check([range('read', '/config/s', '/config/secrets/\u0000')])).toMatchObject({ allowed: false, reason: 'denied by rule' });
    // Ending exactly where the denied prefix starts touches none of it.
    expect(reader.check([range('read', '/config/', '/config/secrets/')])).toMatchObject({ allowed: true });
    // Starting right after it neither.
    expect(reader.check([range('read', '/config/secrets0', '/config0')])).toMatchObject({ allowed: true });
  });

  it('apply to the access they name only', () => {
    expect(reader.check([key('read', '/config/readonly')])).toMatchObject({ allowed: true });
    expect(reader.check([key('write', '/config/readonly')])).toMatchObject({ allowed: false, role: 'config-reader', rule: 'deny key /config/readonly write', reason: 'denied by rule', refused: key('write', '/config/readonly') });
  });

  it('work in a role with no allow rules, and with open ranges', () => {
    const fenced = policy.permissionsFor(who({ cn: 'fenced-admin' }));
    expect(fenced.check([key('read', '/y')])).toMatchObject({ allowed: true });
    expect(fenced.check([key('write', '/z/1')])).toMatchObject({ allowed: true });
    expect(fenced.check([key('read', '/z/1')])).toMatchObject({ allowed: false, role: 'fenced', rule: 'deny range [/z/, +inf) read' });
    expect(fenced.check([range('read', [0], [0])])).toMatchObject({ allowed: false, reason: 'denied by rule' });
  });

  it('are checked before coverage, so a denied access reports the deny rule', () => {
    expect(reader.check([range('read', '/', '/z')])).toMatchObject({ allowed: false, reason: 'denied by rule' });
  });

  it('with `all` deny everything of that access', () => {
    const p = compilePolicy({
      roles: { r: { keys: [{ all: true, access: 'readwrite' }], deny: [{ all: true, access: 'write' }] } },
      bindings: [{ match: { cn: 'c' }, roles: ['r'] }],
    });
    const permissions = p.permissionsFor(who({ cn: 'c' }));
    expect(permissions.check([range('read', [0], [0])])).toMatchObject({ allowed: true });
    expect(permissions.check([key('write', '')])).toMatchObject({ allowed: false, rule: 'deny all keys write' });
  });
});
