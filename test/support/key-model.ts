/**
 * A slow reference model of etcd key ranges for property tests: keys drawn from a tiny
 * alphabet, rule membership written from the definitions in docs/authorization.md "Key
 * ranges", and request ranges resolved by enumerating every key in a finite universe.
 *
 * Why enumeration is exact: rule and request keys are strings over A = {00, 01, fe, ff}
 * of length <= 3, so every interval end (a key, a prefix end, key + 00) is a string over
 * A ∪ {02} of length <= 4, and any gap in coverage or overlap with a deny rule starts at
 * such a string. `KEY_UNIVERSE` holds all of them.
 */
import fc from 'fast-check';

/** The bytes generated keys are made of. */
export const KEY_ALPHABET: readonly number[] = [0x00, 0x01, 0xfe, 0xff];

function enumerate(into: Buffer[], prefix: number[]): Buffer[] {
  into.push(Buffer.from(prefix));
  if (prefix.length < 4) for (const b of [0x00, 0x01, 0x02, 0xfe, 0xff]) enumerate(into, [...prefix, b]);
  return into;
}

/**
 * The first key of etcdgate's reserved prefix (src/policy/reserved.ts), written out here
 * rather than imported so the model states it independently. Every key the generators
 * make starts with a byte of KEY_ALPHABET, never '/', so a generated range meets the
 * reserved prefix exactly when it contains this key: one more member keeps the
 * enumeration exact.
 */
export const RESERVED_KEY: Buffer = Buffer.from('/.etcdgate/');

/** True for keys under the reserved prefix, which no client may write whatever its roles. */
export function isReserved(k: Buffer): boolean {
  return k.subarray(0, RESERVED_KEY.length).equals(RESERVED_KEY);
}

/** Every string over KEY_ALPHABET ∪ {02} of length <= 4, in enumeration order, then RESERVED_KEY. */
export const KEY_UNIVERSE: readonly Buffer[] = [...enumerate([], []), RESERVED_KEY];

/** A key rule as the model sees it (`to: 'open'` is etcd's "\0", no upper bound). */
export type ModelRule =
  | { kind: 'key' | 'prefix'; bytes: number[] }
  | { kind: 'range'; from: number[]; to: number[] | 'open' }
  | { kind: 'all' };

/** Keys over KEY_ALPHABET, `min` to 3 bytes long. */
export const keyArb = (min: number): fc.Arbitrary<number[]> => fc.array(fc.constantFrom(...KEY_ALPHABET), { minLength: min, maxLength: 3 });

/** Random rules; `weights` are those of key, prefix, range and all (default equal). */
export function modelRuleArb(weights: readonly [number, number, number, number] = [1, 1, 1, 1]): fc.Arbitrary<ModelRule> {
  return fc.oneof(
    { weight: weights[0], arbitrary: keyArb(1).map((bytes): ModelRule => ({ kind: 'key', bytes })) },
    { weight: weights[1], arbitrary: keyArb(1).map((bytes): ModelRule => ({ kind: 'prefix', bytes })) },
    {
      weight: weights[2],
      arbitrary: fc
        .tuple(keyArb(0), fc.oneof(keyArb(1), fc.constant('open' as const)))
        .filter(([from, to]) => to === 'open' || Buffer.compare(Buffer.from(from), Buffer.from(to)) < 0)
        // A literal end of [0x00] is etcd's "no upper bound" marker, exactly like 'open'.
        .map(([from, to]): ModelRule => ({ kind: 'range', from, to: to !== 'open' && to.length === 1 && to[0] === 0 ? 'open' : to })),
    },
    { weight: weights[3], arbitrary: fc.constant<ModelRule>({ kind: 'all' }) },
  );
}

/** The rule as a policy `keys`/`deny` entry (keys in base64), with `access` when given. */
export function ruleDocument(rule: ModelRule, access: string | undefined): Record<string, unknown> {
  const b64 = (v: number[]): { base64: string } => ({ base64: Buffer.from(v).toString('base64') });
  const acc = access === undefined ? {} : { access };
  switch (rule.kind) {
    case 'key':
      return { key: b64(rule.bytes), ...acc };
    case 'prefix':
      return { prefix: b64(rule.bytes), ...acc };
    case 'range':
      return { range: { from: b64(rule.from), to: rule.to === 'open' ? '\0' : b64(rule.to) }, ...acc };
    case 'all':
      return { all: true, ...acc };
  }
}

/** Whether the rule covers key `k`, from the definitions rather than from interval ends. */
export function ruleContains(rule: ModelRule, k: Buffer): boolean {
  switch (rule.kind) {
    case 'key':
      return k.equals(Buffer.from(rule.bytes));
    case 'prefix':
      return k.subarray(0, rule.bytes.length).equals(Buffer.from(rule.bytes));
    case 'range': {
      const from = Buffer.from(rule.from);
      // etcd: from "\0" with to "\0" is every key.
      if (rule.to === 'open') return from.equals(Buffer.from([0])) || Buffer.compare(k, from) >= 0;
      return Buffer.compare(k, from) >= 0 && Buffer.compare(k, Buffer.from(rule.to)) < 0;
    }
    case 'all':
      return true;
  }
}

/**
 * The keys of KEY_UNIVERSE a request's (key, range_end) names. An empty range_end is the
 * single key; "\0" is every key >= key (all keys when key is "\0"). A range_end at or
 * below the key names an empty range in etcd; etcdgate conservatively checks the key
 * itself, and so does the model.
 */
export function requestKeys(key: Buffer, end: Buffer): Buffer[] {
  const open = end.length === 1 && end[0] === 0;
  if (end.length === 0 || (!open && Buffer.compare(end, key) <= 0)) return KEY_UNIVERSE.filter((u) => u.equals(key));
  if (open) return KEY_UNIVERSE.filter((u) => key.equals(Buffer.from([0])) || Buffer.compare(u, key) >= 0);
  return KEY_UNIVERSE.filter((u) => Buffer.compare(u, key) >= 0 && Buffer.compare(u, end) < 0);
}
