/**
 * Property: the real request decoder (the KV decoders of the method table) followed by
 * the real compiled policy decides every KV request exactly as a slow reference model of
 * docs/authorization.md does, for random policies and random Range / Put / DeleteRange /
 * Txn requests (nested Txns, compares on keys and ranges, prev_kv) encoded to wire bytes.
 * The reference reads the request back with protobufjs (an independent decoder) and
 * enumerates keys; it never looks at interval ends the way the policy engine does.
 *
 * Why enumeration is exact: rule and request keys are strings over A = {00, 01, fe, ff}
 * of length <= 3, so every interval end is a string over A ∪ {02} of length <= 4, and a
 * gap in coverage or an overlap with a deny rule starts at such a string; the universe
 * of test/support/key-model.ts holds all of them (the argument is spelled out there).
 *
 * Mutated messages (bytes flipped, cut, inserted) must either decode (and then still
 * agree with the reference whenever protobufjs reads the same bytes) or throw
 * DecodeError, never anything else, so a malformed request is always refused, never
 * forwarded.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { METHODS } from '../src/etcd/methods.js';
import { DecodeError, type DecodedRequest } from '../src/etcd/types.js';
import { compilePolicy } from '../src/policy/compile.js';
import type { Permissions } from '../src/policy/types.js';
import { decode, encode } from './support/etcd-messages.js';
import { isReserved, KEY_ALPHABET, keyArb, requestKeys, modelRuleArb, ruleContains, ruleDocument, type ModelRule } from './support/key-model.js';
import { who } from './support/policy.js';

type Access = 'read' | 'write' | 'readwrite';
const ruleArb = modelRuleArb();

type Need = { kind: 'read' | 'write'; keys: Buffer[] };
type Plain = Record<string, unknown>;
const bytesOf = (value: unknown): Buffer => (Buffer.isBuffer(value) ? value : Buffer.alloc(0));

/** What a decoded (protobufjs) KV request needs, per the RPC table of docs/authorization.md. */
function needs(method: string, request: Plain): Need[] {
  const key = bytesOf(request['key']);
  const end = bytesOf(request['range_end']);
  switch (method) {
    case 'Range':
      return [{ kind: 'read', keys: requestKeys(key, end) }];
    case 'Put':
      return [{ kind: 'write', keys: requestKeys(key, Buffer.alloc(0)) }, ...(request['prev_kv'] === true ? [{ kind: 'read' as const, keys: requestKeys(key, Buffer.alloc(0)) }] : [])];
    case 'DeleteRange':
      return [{ kind: 'write', keys: requestKeys(key, end) }, ...(request['prev_kv'] === true ? [{ kind: 'read' as const, keys: requestKeys(key, end) }] : [])];
    case 'Txn': {
      const out: Need[] = [];
      for (const compare of (request['compare'] as Plain[] | undefined) ?? []) out.push({ kind: 'read', keys: requestKeys(bytesOf(compare['key']), bytesOf(compare['range_end'])) });
      for (const op of [...((request['success'] as Plain[] | undefined) ?? []), ...((request['failure'] as Plain[] | undefined) ?? [])]) {
        if (op['request_range'] !== undefined) out.push(...needs('Range', op['request_range'] as Plain));
        else if (op['request_put'] !== undefined) out.push(...needs('Put', op['request_put'] as Plain));
        else if (op['request_delete_range'] !== undefined) out.push(...needs('DeleteRange', op['request_delete_range'] as Plain));
        else if (op['request_txn'] !== undefined) out.push(...needs('Txn', op['request_txn'] as Plain));
      }
      return out;
    }
    default:
      throw new Error(`no model for ${method}`);
  }
}

function referenceAllows(allows: readonly [ModelRule, Access][], denies: readonly [ModelRule, Access | undefined][], request: Need[]): boolean {
  const applies = (access: Access | undefined, kind: 'read' | 'write'): boolean => access === undefined || access === 'readwrite' || access === kind;
  return request.every(({ kind, keys }) =>
    keys.every((k) => !(kind === 'write' && isReserved(k)) && !denies.some(([rule, access]) => applies(access, kind) && ruleContains(rule, k)) && allows.some(([rule, access]) => applies(access, kind) && ruleContains(rule, k))),
  );
}

// Request generators: plain objects for protobufjs.
const bytesArb = keyArb(0).map((v) => Buffer.from(v));
const endArb = fc.oneof(fc.constant(Buffer.alloc(0)), fc.constant(Buffer.from([0])), bytesArb);
const rangeArb = fc.record({ key: keyArb(1).map((v) => Buffer.from(v)), range_end: endArb });
const putArb = fc.record({ key: keyArb(1).map((v) => Buffer.from(v)), value: fc.constant(Buffer.from('v')), prev_kv: fc.boolean() });
const deleteArb = fc.record({ key: keyArb(1).map((v) => Buffer.from(v)), range_end: endArb, prev_kv: fc.boolean() });
const compareArb = fc.record({ key: keyArb(1).map((v) => Buffer.from(v)), range_end: endArb, target: fc.constant(0), version: fc.constant(1) });
const { txnArb } = fc.letrec<{ txnArb: Plain; opArb: Plain }>((tie) => ({
  opArb: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    rangeArb.map((r) => ({ request_range: r })),
    putArb.map((r) => ({ request_put: r })),
    deleteArb.map((r) => ({ request_delete_range: r })),
    tie('txnArb').map((r) => ({ request_txn: r })),
  ),
  txnArb: fc.record({
    compare: fc.array(compareArb, { maxLength: 2 }),
    success: fc.array(tie('opArb'), { maxLength: 2 }),
    failure: fc.array(tie('opArb'), { maxLength: 2 }),
  }),
}));
const requestArb: fc.Arbitrary<[string, Plain]> = fc.oneof(
  rangeArb.map((r): [string, Plain] => ['Range', r]),
  putArb.map((r): [string, Plain] => ['Put', r]),
  deleteArb.map((r): [string, Plain] => ['DeleteRange', r]),
  txnArb.map((r): [string, Plain] => ['Txn', r]),
);
const policyArb = fc.tuple(
  fc.array(fc.tuple(ruleArb, fc.constantFrom<Access>('read', 'write', 'readwrite')), { maxLength: 5 }),
  fc.array(fc.tuple(ruleArb, fc.constantFrom<Access | undefined>('read', 'write', undefined)), { maxLength: 2 }),
);

function permissionsOf(allows: readonly [ModelRule, Access][], denies: readonly [ModelRule, Access | undefined][]): Permissions {
  const policy = compilePolicy({
    roles: { r: { keys: allows.map(([rule, access]) => ruleDocument(rule, access)), deny: denies.map(([rule, access]) => ruleDocument(rule, access)) } },
    bindings: [{ match: { cn: 'c' }, roles: ['r'] }],
  });
  return policy.permissionsFor(who({ cn: 'c' }));
}

/** The real path: the method table's decoder on the wire bytes, then the compiled permissions. */
function realDecision(method: string, bytes: Buffer, permissions: Permissions): { decoded: DecodedRequest; allowed: boolean } {
  const spec = METHODS.get(`/etcdserverpb.KV/${method}`);
  if (spec === undefined) throw new Error(`method table lacks KV/${method}`);
  const decoded = spec.decode(bytes);
  return { decoded, allowed: decoded.leaseChecks.length === 0 && permissions.check(decoded.accesses).allowed };
}

describe('decoder + authorizer agree with the reference model', () => {
  it('for random policies and KV requests', () => {
    fc.assert(
      fc.property(policyArb, fc.array(requestArb, { minLength: 1, maxLength: 6 }), ([allows, denies], requests) => {
        const permissions = permissionsOf(allows, denies);
        for (const [method, request] of requests) {
          const bytes = encode(`etcdserverpb.${method}Request`, request);
          const expected = referenceAllows(allows, denies, needs(method, decode(`etcdserverpb.${method}Request`, bytes)));
          expect(realDecision(method, bytes, permissions).allowed, `${method} ${bytes.toString('hex')}`).toBe(expected);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('for mutated messages: DecodeError or the same decision, never anything else', () => {
    const mutationArb = fc.oneof(
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
    );
    let decodedCount = 0;
    let refusedCount = 0;
    fc.assert(
      fc.property(policyArb, requestArb, fc.array(mutationArb, { minLength: 1, maxLength: 4 }), ([allows, denies], [method, request], mutations) => {
        let bytes = encode(`etcdserverpb.${method}Request`, request);
        for (const m of mutations) {
          const at = bytes.length === 0 ? 0 : m.at % (bytes.length + 1);
          if (m.kind === 'flip' && at < bytes.length) bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from([m.value]), bytes.subarray(at + 1)]);
          else if (m.kind === 'cut') bytes = bytes.subarray(0, at);
          else if (m.kind === 'insert') bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from([m.value]), bytes.subarray(at)]);
        }
        const permissions = permissionsOf(allows, denies);
        let real: { decoded: DecodedRequest; allowed: boolean };
        try {
          real = realDecision(method, bytes, permissions);
        } catch (error: unknown) {
          expect(error).toBeInstanceOf(DecodeError);
          refusedCount += 1;
          return;
        }
        decodedCount += 1;
        let reference: Plain;
        try {
          reference = decode(`etcdserverpb.${method}Request`, bytes);
        } catch {
          // protobufjs is laxer or stricter elsewhere; only bytes both read are compared.
          return;
        }
        // Keys outside the tiny alphabet fall outside the exact universe: compare only inside it.
        // A lease on a Put needs etcd's view of the lease (refused here without it): not modelled.
        if (!allKeysInAlphabet(reference) || real.decoded.leaseChecks.length > 0) return;
        expect(real.allowed, `${method} ${bytes.toString('hex')}`).toBe(referenceAllows(allows, denies, needs(method, reference)));
      }),
      { numRuns: 1500 },
    );
    // The property must have exercised both outcomes.
    expect(decodedCount).toBeGreaterThan(0);
    expect(refusedCount).toBeGreaterThan(0);
  });
});

/** True when every key and range_end in the (nested) request is over the alphabet and at most 3 bytes. */
function allKeysInAlphabet(value: unknown): boolean {
  if (Buffer.isBuffer(value)) return true;
  if (Array.isArray(value)) return value.every(allKeysInAlphabet);
  if (typeof value !== 'object' || value === null) return true;
  for (const [name, field] of Object.entries(value)) {
    if ((name === 'key' || name === 'range_end') && Buffer.isBuffer(field)) {
      if (field.length > 3 || ![...field].every((b) => KEY_ALPHABET.includes(b))) return false;
    } else if (!allKeysInAlphabet(field)) return false;
  }
  return true;
}
