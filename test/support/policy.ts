/** Small builders for policy unit tests: accesses over raw bytes and identities. */
import type { Access, Capability } from '../../src/policy/types.js';
import { prefixEnd } from '../../src/policy/key-range.js';

export { identityFromFields as who } from '../../src/policy/test-cases.js';

/** Bytes of a string (UTF-8) or of a byte list. */
export function bytes(value: string | readonly number[]): Buffer {
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
}

/** A single-key access. */
export function key(kind: 'read' | 'write', k: string | readonly number[]): Access {
  return { kind, key: bytes(k), rangeEnd: Buffer.alloc(0) };
}

/** A `[from, to)` access; pass "\0" as `to` for "every key >= from". */
export function range(kind: 'read' | 'write', from: string | readonly number[], to: string | readonly number[]): Access {
  return { kind, key: bytes(from), rangeEnd: bytes(to) };
}

/** A prefix access, as etcdctl --prefix sends it. */
export function prefix(kind: 'read' | 'write', p: string | readonly number[]): Access {
  const k = bytes(p);
  return { kind, key: k, rangeEnd: prefixEnd(k) ?? Buffer.from([0]) };
}

/** A capability access. */
export function cap(capability: Capability): Access {
  return { kind: 'capability', capability };
}

/** Base64 of a byte list, for `{ base64: ... }` keys in policies. */
export function b64(value: readonly number[]): string {
  return Buffer.from(value).toString('base64');
}
