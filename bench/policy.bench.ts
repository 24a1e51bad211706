/**
 * Policy check speed with a 1,000-rule policy: single-key checks and a 64-key Txn-like
 * check. Run: `npx vitest bench --run bench/policy.bench.ts`. The first describe block also
 * prints the median nanoseconds per single-key check (goal: under 1 µs).
 */
import { bench, describe } from 'vitest';
import { compilePolicy } from '../src/policy/compile.js';
import { identityFromFields } from '../src/policy/test-cases.js';
import type { Access } from '../src/policy/types.js';

const RULES = 1000;

/** 900 prefix rules, 50 exact keys and 50 deny rules in one role, plus 50 tenant roles. */
function buildPolicy(): unknown {
  const keys: unknown[] = [];
  const deny: unknown[] = [];
  for (let i = 0; i < 900; i++) keys.push({ prefix: `/registry/kind-${String(i).padStart(4, '0')}/`, access: i % 3 === 0 ? 'read' : 'readwrite' });
  for (let i = 0; i < 50; i++) keys.push({ key: `/singletons/key-${i}`, access: 'readwrite' });
  for (let i = 0; i < 50; i++) deny.push({ prefix: `/registry/kind-${String(i * 18).padStart(4, '0')}/secret/`, access: 'write' });
  const roles: Record<string, unknown> = { big: { keys, deny, capabilities: ['lease', 'status'] } };
  const bindings: unknown[] = [{ match: { cn: 'bench-client' }, roles: ['big'] }];
  return { roles, bindings, description: `${RULES} rules` };
}

const policy = compilePolicy(buildPolicy());
const permissions = policy.permissionsFor(identityFromFields({ cn: 'bench-client', fingerprint: 'ab' }));

const singleKeys: Access[] = Array.from({ length: 1024 }, (_, i) => ({
  kind: i % 2 === 0 ? 'read' : 'write',
  key: Buffer.from(`/registry/kind-${String((i * 7) % 900).padStart(4, '0')}/namespace-${i}/object-${i}`),
  rangeEnd: Buffer.alloc(0),
}));

const txn: Access[] = Array.from({ length: 64 }, (_, i) => ({
  kind: i % 4 === 0 ? 'write' : 'read',
  key: Buffer.from(`/registry/kind-${String(i * 13 + 1).padStart(4, '0')}/ns/obj-${i}`),
  rangeEnd: Buffer.alloc(0),
}));
const prefixRange: Access = {
  kind: 'read',
  key: Buffer.from('/registry/kind-0001/'),
  rangeEnd: Buffer.from('/registry/kind-00010'),
};

/** Median ns per single-key check over several batches, measured with hrtime. */
function medianSingleKeyNs(): number {
  const batch = 100_000;
  const samples: number[] = [];
  let sink = 0;
  for (let round = 0; round < 25; round++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) {
      if (permissions.check([singleKeys[i & 1023] as Access]).allowed) sink++;
    }
    samples.push(Number(process.hrtime.bigint() - start) / batch);
  }
  if (sink === 0) throw new Error('every check was denied: the bench policy is wrong');
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)] ?? Number.NaN;
}

describe(`policy with ${policy.ruleCount} rules`, () => {
  // A plain measurement besides vitest's table, printed once when the file is collected.
  console.log(`median single-key check: ${medianSingleKeyNs().toFixed(0)} ns (goal < 1000 ns)`);

  let n = 0;
  bench('single-key check', () => {
    permissions.check([singleKeys[n++ & 1023] as Access]);
  });

  bench('64-key Txn-like check', () => {
    permissions.check(txn);
  });

  bench('prefix range check', () => {
    permissions.check([prefixRange]);
  });

  bench('resolve permissions for an identity (uncached)', () => {
    policy.permissionsFor(identityFromFields({ cn: 'bench-client' }));
  });
});
