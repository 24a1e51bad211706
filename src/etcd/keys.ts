/**
 * Key-range arithmetic on raw bytes, as etcd does it (see docs/authorization.md, "Key
 * ranges"). Keys are opaque byte strings, never JS strings.
 */
import { prefixEnd as intervalPrefixEnd } from '../policy/key-range.js';

/** The range end meaning "every key >= key" (etcd's `"\x00"`). */
export const ALL_KEYS_FROM: Buffer = Buffer.from([0]);

/** Byte appended to a lock or election name to form the prefix its keys live under. */
const SLASH = 0x2f;

/**
 * The exclusive end of the prefix range of `p` as etcd writes it on the wire: the policy's
 * increment rule (trailing 0xff bytes dropped, last byte incremented), with "no upper
 * bound" spelled `"\x00"`. Always returns a fresh buffer.
 */
export function prefixEnd(p: Buffer): Buffer {
  return intervalPrefixEnd(p) ?? Buffer.from(ALL_KEYS_FROM);
}

/** `name + "/"`: the prefix under which etcd's lock and election recipes create their keys. */
export function recipePrefix(name: Buffer): Buffer {
  const out = Buffer.allocUnsafe(name.length + 1);
  name.copy(out, 0);
  out[name.length] = SLASH;
  return out;
}
