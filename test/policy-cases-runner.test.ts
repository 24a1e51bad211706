/**
 * `runPolicyCases` reports failing cases with what was expected and what was decided, and
 * rejects malformed cases documents with every problem's path.
 */
import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../src/policy/compile.js';
import { PolicyError } from '../src/policy/policy-error.js';
import { identityFromFields, parsePolicyCases, runPolicyCases } from '../src/policy/test-cases.js';

const policy = compilePolicy({
  roles: { r: { keys: [{ prefix: '/a/', access: 'read' }], capabilities: ['status'] } },
  bindings: [{ match: { cn: 'c' }, roles: ['r'] }],
});

describe('runPolicyCases', () => {
  it('counts passing cases and lists failing ones', () => {
    const result = runPolicyCases(policy, {
      cases: [
        { name: 'reads /a/', identity: { cn: 'c' }, request: { access: 'read', prefix: '/a/' }, expect: 'allow' },
        { name: 'status', identity: { cn: 'c' }, request: { access: 'capability', capability: 'status' }, expect: 'allow' },
        { name: 'wrongly expects a write', identity: { cn: 'c' }, request: { access: 'write', key: '/a/x' }, expect: 'allow' },
        { name: 'right outcome, wrong reason', identity: { cn: 'x' }, request: { access: 'read', key: '/a/x' }, expect: 'deny', reason: 'not granted' },
        { name: 'list with one denial', identity: { cn: 'c' }, request: [{ access: 'read', key: '/a/x' }, { access: 'readwrite', key: '/a/y' }], expect: 'deny' },
      ],
    });
    expect(result.passed).toBe(3);
    expect(result.failed).toEqual([
      { name: 'wrongly expects a write', expected: 'allow', got: { allowed: false, reason: 'not granted', refused: { kind: 'write', key: Buffer.from('/a/x'), rangeEnd: Buffer.alloc(0) } } },
      { name: 'right outcome, wrong reason', expected: 'deny (not granted)', got: { allowed: false, reason: 'no binding' } },
    ]);
  });

  it('understands every request form', () => {
    const cases = parsePolicyCases({
      cases: [
        { name: 'forms', identity: { cn: 'c' }, expect: 'allow', request: [
          { access: 'read', key: '/k' },
          { access: 'read', key: '/k', rangeEnd: '/l' },
          { access: 'read', key: '/k', prefix: true },
          { access: 'read', prefix: { base64: '/w==' } },
          { access: 'read', key: '/k', fromKey: true },
          { access: 'write', all: true },
          { access: 'authenticated' },
        ] },
      ],
    });
    const accesses = cases[0]?.accesses ?? [];
    expect(accesses.map((a) => (a.kind === 'read' || a.kind === 'write' ? [a.kind, a.key.toString('hex'), a.rangeEnd.toString('hex')] : [a.kind]))).toEqual([
      ['read', '2f6b', ''],
      ['read', '2f6b', '2f6c'],
      ['read', '2f6b', '2f6c'],
      ['read', 'ff', '00'],
      ['read', '2f6b', '00'],
      ['write', '00', '00'],
      ['authenticated'],
    ]);
  });

  it('rejects a malformed document with every problem at once', () => {
    let error: unknown;
    try {
      runPolicyCases(policy, {
        cases: [
          { name: '', identity: { cn: 1 }, request: { access: 'delete', key: '/a' }, expect: 'maybe' },
          { name: 'x', identity: { o: 'ops', color: 'red' }, request: { access: 'capability', capability: 'fly' }, expect: 'allow' },
        ],
      });
    } catch (e: unknown) {
      error = e;
    }
    expect(error).toBeInstanceOf(PolicyError);
    expect((error as PolicyError).issues.map((i) => i.path)).toEqual([
      'cases[0].name',
      'cases[0].identity.cn',
      'cases[0].request.access',
      'cases[0].expect',
      'cases[1].identity.color',
      'cases[1].request.capability',
    ]);
    expect(() => runPolicyCases(policy, [])).toThrow(PolicyError);
  });
});

describe('identityFromFields', () => {
  it('fills every field, normalizing hex like identityFromDer', () => {
    const identity = identityFromFields({ cn: 'c', o: ['o1'], serial: '0a:bc', fingerprint: 'AB:CD' });
    expect(identity).toMatchObject({ cn: 'c', o: ['o1'], ou: [], dns: [], uri: [], ip: [], serial: '0ABC', fingerprint: 'abcd', subject: 'CN=c\nO=o1' });
    expect(identity.notBefore).toBeInstanceOf(Date);
    expect(Object.isFrozen(identity)).toBe(true);
    expect(identityFromFields({})).toMatchObject({ cn: '', fingerprint: '', serial: '' });
  });
});
