/**
 * Property: the compiled interval check agrees with a slow reference that enumerates keys.
 * The reference (rules over a tiny alphabet, every key of a finite universe checked) is
 * test/support/key-model.ts, which says why that enumeration finds every gap in coverage
 * and every overlap with a deny rule.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../src/policy/compile.js';
import type { Access } from '../src/policy/types.js';
import { isReserved, keyArb, requestKeys, modelRuleArb, ruleContains, ruleDocument } from './support/key-model.js';
import { who } from './support/policy.js';

const ruleArb = modelRuleArb([3, 3, 3, 1]);

const requestArb = fc.tuple(fc.constantFrom<'read' | 'write'>('read', 'write'), keyArb(0), fc.oneof(keyArb(0), fc.constant([0x00])));

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
            const inRequest = requestKeys(keyBytes, end);
            const applies = (access: string | undefined) => access === undefined || access === 'readwrite' || access === kind;
            const denied = inRequest.some((u) => denies.some(([rule, access]) => applies(access) && ruleContains(rule, u)));
            const covered = inRequest.every((u) => allows.some(([rule, access]) => applies(access) && ruleContains(rule, u)));
            // Writes under etcdgate's reserved prefix are refused before any role is consulted.
            const reserved = kind === 'write' && inRequest.some(isReserved);
            const access: Access = { kind, key: keyBytes, rangeEnd: end };
            const decision = permissions.check([access]);
            expect(decision.allowed, `${kind} [${keyBytes.toString('hex')}, ${end.toString('hex')})`).toBe(!reserved && !denied && covered);
            if (reserved) expect(decision.reason).toBe('reserved for etcdgate');
            else if (denied) expect(decision.reason).toBe('denied by rule');
          }
        },
      ),
      { numRuns: 400 },
    );
  });
});
