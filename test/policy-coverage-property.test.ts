/**
 * Property: the compiled interval check agrees with a slow reference that enumerates keys.
 *
 * Why enumeration over a tiny alphabet is exact: every rule and request key is drawn from
 * bytes A = {00, 01, fe, ff}, at most 3 long. All interval endpoints (keys, prefix ends
 * (which increment a byte), key + 00) are then strings over A ∪ {02, ff} of length <= 4, and
 * any gap in coverage, or overlap with a deny rule, starts at such an endpoint. So checking
 * every string of E = (A ∪ {02})^<=4 finds every gap and every overlap there is.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../src/policy/compile.js';
import type { Access } from '../src/policy/types.js';
import { who } from './support/policy.js';

const ALPHABET = [0x00, 0x01, 0xfe, 0xff];
const ENUMERATED = [0x00, 0x01, 0x02, 0xfe, 0xff];

const universe: Buffer[] = [];
(function enumerate(prefix: number[]): void {
  universe.push(Buffer.from(prefix));
  if (prefix.length === 4) return;
  for (const b of ENUMERATED) enumerate([...prefix, b]);
})([]);

type Rule =
  | { kind: 'key'; key: number[] }
  | { kind: 'prefix'; prefix: number[] }
  | { kind: 'range'; from: number[]; to: number[] | 'open' }
  | { kind: 'all' };

const keyArb = (min: number) => fc.array(fc.constantFrom(...ALPHABET), { minLength: min, maxLength: 3 });
const ruleArb: fc.Arbitrary<Rule> = fc.oneof(
  { weight: 3, arbitrary: keyArb(1).map((key): Rule => ({ kind: 'key', key })) },
  { weight: 3, arbitrary: keyArb(1).map((prefix): Rule => ({ kind: 'prefix', prefix })) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(keyArb(0), fc.oneof(keyArb(1), fc.constant('open' as const)))
      .filter(([from, to]) => to === 'open' || Buffer.compare(Buffer.from(from), Buffer.from(to)) < 0)
      // A literal end of [0x00] is etcd's "no upper bound" marker, exactly like 'open'.
      .map(([from, to]): Rule => ({ kind: 'range', from, to: to !== 'open' && to.length === 1 && to[0] === 0 ? 'open' : to })),
  },
  { weight: 1, arbitrary: fc.constant<Rule>({ kind: 'all' }) },
);

const requestArb = fc.tuple(fc.constantFrom<'read' | 'write'>('read', 'write'), keyArb(0), fc.oneof(keyArb(0), fc.constant([0x00])));

function ruleDocument(rule: Rule, access: string | undefined): Record<string, unknown> {
  const b64 = (v: number[]) => ({ base64: Buffer.from(v).toString('base64') });
  const acc = access === undefined ? {} : { access };
  switch (rule.kind) {
    case 'key':
      return { key: b64(rule.key), ...acc };
    case 'prefix':
      return { prefix: b64(rule.prefix), ...acc };
    case 'range':
      return { range: { from: b64(rule.from), to: rule.to === 'open' ? '\0' : b64(rule.to) }, ...acc };
    case 'all':
      return { all: true, ...acc };
  }
}

/** Reference membership, written from the definitions rather than from interval ends. */
function ruleContains(rule: Rule, k: Buffer): boolean {
  switch (rule.kind) {
    case 'key':
      return k.equals(Buffer.from(rule.key));
    case 'prefix':
      return k.subarray(0, rule.prefix.length).equals(Buffer.from(rule.prefix));
    case 'range': {
      const from = Buffer.from(rule.from);
      // etcd: from "\0" with to "\0" is every key.
      const allKeys = rule.to === 'open' && from.equals(Buffer.from([0]));
      if (!allKeys && Buffer.compare(k, from) < 0) return false;
      return rule.to === 'open' || Buffer.compare(k, Buffer.from(rule.to)) < 0;
    }
    case 'all':
      return true;
  }
}

function requestContains(keyBytes: Buffer, end: Buffer, k: Buffer): boolean {
  const single = end.length === 0 || (!(end.length === 1 && end[0] === 0) && Buffer.compare(end, keyBytes) <= 0);
  if (single) return k.equals(keyBytes);
  if (end.length === 1 && end[0] === 0) return keyBytes.equals(Buffer.from([0])) || Buffer.compare(k, keyBytes) >= 0;
  return Buffer.compare(k, keyBytes) >= 0 && Buffer.compare(k, end) < 0;
}

describe('range coverage matches an enumerating reference', () => {
  it('for random allow and deny rules and requests', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(ruleArb, fc.constantFrom('read', 'write', 'readwrite')), { maxLength: 6 }),
        fc.array(fc.tuple(ruleArb, fc.constantFrom('read', 'write', undefined)), { maxLength: 2 }),
        fc.array(requestArb, { minLength: 1, maxLength: 8 }),
        (allows, denies, requests) => {
          const policy = compilePolicy({
            roles: { r: { keys: allows.map(([rule, access]) => ruleDocument(rule, access)), deny: denies.map(([rule, access]) => ruleDocument(rule, access)) } },
            bindings: [{ match: { cn: 'c' }, roles: ['r'] }],
          });
          const permissions = policy.permissionsFor(who({ cn: 'c' }));
          for (const [kind, k, e] of requests) {
            const keyBytes = Buffer.from(k);
            const end = Buffer.from(e);
            const inRequest = universe.filter((u) => requestContains(keyBytes, end, u));
            const applies = (access: string | undefined) => access === undefined || access === 'readwrite' || access === kind;
            const denied = inRequest.some((u) => denies.some(([rule, access]) => applies(access) && ruleContains(rule, u)));
            const covered = inRequest.every((u) => allows.some(([rule, access]) => applies(access) && ruleContains(rule, u)));
            const access: Access = { kind, key: keyBytes, rangeEnd: end };
            const decision = permissions.check([access]);
            expect(decision.allowed, `${kind} [${keyBytes.toString('hex')}, ${end.toString('hex')})`).toBe(!denied && covered);
            if (denied) expect(decision.reason).toBe('denied by rule');
          }
        },
      ),
      { numRuns: 400 },
    );
  });
});
