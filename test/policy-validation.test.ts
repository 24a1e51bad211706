/**
 * Policy validation reports every problem at once, each with its path; a valid policy
 * compiles; the version identifies the content.
 */
import { describe, expect, it } from 'vitest';
import { compilePolicy, compilePolicyText } from '../src/policy/compile.js';
import { PolicyError, type PolicyIssue } from '../src/policy/policy-error.js';

function issuesOf(document: unknown): readonly PolicyIssue[] {
  try {
    compilePolicy(document);
  } catch (error: unknown) {
    if (error instanceof PolicyError) return error.issues;
    throw error;
  }
  throw new Error('expected a PolicyError');
}

const bad = {
  rolez: {},
  roles: {
    tenant: {
      keys: [
        { prefix: '/a/', access: 'read' },
        { prefix: '/b/' },
        { prefix: '/c/', access: 'all' },
        { key: '/d', prefix: '/d/', access: 'read' },
        { access: 'read' },
        { range: { from: 'b', to: 'a' }, access: 'read' },
        { range: { from: 'a' }, access: 'read' },
        { key: '', access: 'read' },
        { prefix: '', access: 'read' },
        { all: false, access: 'read' },
        { key: { base64: 'not base64!' }, access: 'read' },
        { key: 42, access: 'read' },
        { prefix: '/x/', access: 'read', colour: 'red' },
        { prefix: '/t/{tenant}/', access: 'read' },
        'prefix /a/',
      ],
      deny: [{ prefix: '/s/', access: 'delete' }, {}],
      capabilities: ['lease', 'superpowers'],
      extra: true,
    },
    'bad name!': {},
    ok: { keys: [{ range: { from: 'a', to: '\0' }, access: 'read' }] },
  },
  bindings: [
    { match: {}, roles: ['ok'] },
    { match: { cn: 'x' }, roles: ['missing'] },
    { match: { email: 'x@y' }, roles: ['ok'] },
    { match: { cn: '' }, roles: ['ok'] },
    { match: { fingerprint: 'xyz' }, roles: ['ok'] },
    { match: { cn: 'x' }, roles: [] },
    { roles: ['ok'] },
    { match: { cn: 'x' }, roles: ['ok'], who: 'me' },
    'tenant',
  ],
};

const expected: [string, RegExp][] = [
  ['rolez', /unknown key/u],
  ['roles.tenant.extra', /unknown key/u],
  ['roles.tenant.keys[1].access', /is required/u],
  ['roles.tenant.keys[2].access', /must be read, write or readwrite/u],
  ['roles.tenant.keys[3]', /exactly one selector/u],
  ['roles.tenant.keys[4]', /needs one of key, prefix, range, all/u],
  ['roles.tenant.keys[5].range', /from must be less than to/u],
  ['roles.tenant.keys[6].range.to', /is required/u],
  ['roles.tenant.keys[7].key', /must not be empty/u],
  ['roles.tenant.keys[8].prefix', /all: true/u],
  ['roles.tenant.keys[9].all', /must be true/u],
  ['roles.tenant.keys[10].key.base64', /base64/u],
  ['roles.tenant.keys[11].key', /must be a string or \{ base64/u],
  ['roles.tenant.keys[12].colour', /unknown key/u],
  ['roles.tenant.keys[13].prefix', /unknown placeholder \{tenant\}/u],
  ['roles.tenant.keys[14]', /must be a mapping/u],
  ['roles.tenant.deny[0].access', /must be read, write or readwrite/u],
  ['roles.tenant.deny[1]', /needs one of/u],
  ['roles.tenant.capabilities[1]', /must be one of lease, status/u],
  ['roles.bad name!', /role names/u],
  ['bindings[0].match', /at least one field/u],
  ['bindings[1].roles[0]', /unknown role "missing"/u],
  ['bindings[2].match.email', /unknown key/u],
  ['bindings[3].match.cn', /non-empty string/u],
  ['bindings[4].match.fingerprint', /must be hex/u],
  ['bindings[5].roles', /non-empty list/u],
  ['bindings[6].match', /is required/u],
  ['bindings[7].who', /unknown key/u],
  ['bindings[8]', /must be a mapping/u],
];

describe('an invalid policy', () => {
  const issues = issuesOf(bad);

  it.each(expected)('reports %s', (path, message) => {
    const found = issues.filter((i) => i.path === path);
    expect(found.length, `issues: ${JSON.stringify(issues, null, 1)}`).toBeGreaterThan(0);
    expect(found.map((i) => i.message).join(' | ')).toMatch(message);
  });

  it('reports all of them at once and nothing more', () => {
    expect(issues.map((i) => i.path).sort()).toEqual(expected.map(([p]) => p).sort());
  });

  it('lists every issue in the error message', () => {
    expect(() => compilePolicy(bad)).toThrow(/roles\.tenant\.keys\[2\]\.access: must be read, write or readwrite/u);
  });
});

describe('document shape', () => {
  it.each([
    ['null', null, ''],
    ['a list', [], ''],
    ['missing roles', { bindings: [] }, 'roles'],
    ['missing bindings', { roles: {} }, 'bindings'],
    ['roles as a list', { roles: [], bindings: [] }, 'roles'],
    ['bindings as a mapping', { roles: {}, bindings: {} }, 'bindings'],
  ])('rejects %s', (_what, document, path) => {
    expect(issuesOf(document).map((i) => i.path)).toContain(path);
  });

  it('accepts an empty policy, which binds nobody', () => {
    const policy = compilePolicy({ roles: {}, bindings: [] });
    expect(policy.ruleCount).toBe(0);
    expect(policy.permissionsFor({ cn: 'x', o: [], ou: [], dns: [], uri: [], ip: [], serial: '', fingerprint: '', issuer: '', subject: '', notBefore: new Date(0), notAfter: new Date(0) }).roles).toEqual([]);
  });
});

describe('binding names', () => {
  const who = { cn: 'a', o: [], ou: [], dns: [], uri: [], ip: [], serial: '', fingerprint: '', issuer: '', subject: '', notBefore: new Date(0), notAfter: new Date(0) };
  it('label the first matching binding (by name, else by path) and must be unique and plain', () => {
    const roles = { r: { capabilities: ['status'] } };
    const named = compilePolicy({ roles, bindings: [{ match: { cn: 'b' }, roles: ['r'] }, { name: 'alpha', match: { cn: 'a' }, roles: ['r'] }, { match: { cn: '*' }, roles: ['r'] }] });
    expect(named.permissionsFor(who).binding).toBe('alpha');
    const unnamed = compilePolicy({ roles, bindings: [{ match: { cn: 'b' }, roles: ['r'] }, { match: { cn: 'a' }, roles: ['r'] }] });
    expect(unnamed.permissionsFor(who).binding).toBe('bindings[1]');
    expect(unnamed.permissionsFor({ ...who, cn: 'z' }).binding).toBeUndefined();
    const issues = issuesOf({ roles, bindings: [{ name: 'x', match: { cn: 'a' }, roles: ['r'] }, { name: 'x', match: { cn: 'b' }, roles: ['r'] }, { name: 'has space', match: { cn: 'c' }, roles: ['r'] }] });
    expect(issues.map((i) => i.path)).toEqual(['bindings[1].name', 'bindings[2].name']);
  });
});

describe('YAML text', () => {
  const text = [
    'roles:',
    '  r:',
    '    keys:',
    '      - { prefix: /a/, access: read }',
    '      - { key: { base64: "/w==" }, access: write }',
    '    deny:',
    '      - { prefix: "/a/\\0" }',
    'bindings:',
    '  - match: { cn: c }',
    '    roles: [r]',
    '',
  ].join('\n');

  it('compiles, counting allow and deny rules', () => {
    const policy = compilePolicyText(text);
    expect(policy.ruleCount).toBe(3);
    expect(policy.version).toMatch(/^[0-9a-f]{12}$/u);
  });

  it('gets a version from the text: same text, same version; another text, another', () => {
    expect(compilePolicyText(text).version).toBe(compilePolicyText(text).version);
    expect(compilePolicyText(`${text}# comment\n`).version).not.toBe(compilePolicyText(text).version);
  });

  it('without text, versions a canonical form of the document (key order does not matter)', () => {
    const a = compilePolicy({ roles: { r: { capabilities: ['status'] } }, bindings: [{ match: { cn: 'c' }, roles: ['r'] }] });
    const b = compilePolicy({ bindings: [{ roles: ['r'], match: { cn: 'c' } }], roles: { r: { capabilities: ['status'] } } });
    const c = compilePolicy({ roles: { r: { capabilities: ['lease'] } }, bindings: [{ match: { cn: 'c' }, roles: ['r'] }] });
    expect(a.version).toBe(b.version);
    expect(a.version).not.toBe(c.version);
  });

  it('reports YAML syntax errors and duplicate keys as a PolicyError', () => {
    expect(() => compilePolicyText('roles: [\n')).toThrow(PolicyError);
    expect(() => compilePolicyText('roles: {}\nroles: {}\nbindings: []\n')).toThrow(PolicyError);
  });

  it('requires quoting numbers used as keys', () => {
    expect(() => compilePolicyText('roles:\n  r:\n    keys: [{ key: 123, access: read }]\nbindings: []\n')).toThrow(/roles\.r\.keys\[0\]\.key/u);
  });
});
