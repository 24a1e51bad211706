/**
 * Key-range arithmetic on raw bytes, as etcd does it (see shared/etcd-authz.md, "Key
 * ranges"). Keys are opaque byte strings, never JS strings.
 */

/** The range end meaning "every key >= key" (etcd's `"\x00"`). */
export const ALL_KEYS_FROM: Buffer = Buffer.from([0]);

/** Byte appended to a lock or election name to form the prefix its keys live under. */
const SLASH = 0x2f;

/**
 * The exclusive end of the prefix range of `p`: `p` with its last byte below 0xff
 * incremented, after dropping trailing 0xff bytes. When no byte can be incremented
 * (empty, or all 0xff) the prefix covers every key from `p`, so the end is `"\x00"`.
 * Always returns a fresh buffer.
 */
export function prefixEnd(p: Buffer): Buffer {
  for (let i = p.length - 1; i >= 0; i--) {
    const b = p[i]!;
    if (b < 0xff) {
      const end = Buffer.allocUnsafe(i + 1);
      p.copy(end, 0, 0, i);
      end[i] = b + 1;
      return end;
    }
  }
  return Buffer.from([0]);
}

/** `name + "/"`: the prefix under which etcd's lock and election recipes create their keys. */
export function recipePrefix(name: Buffer): Buffer {
  const out = Buffer.allocUnsafe(name.length + 1);
  name.copy(out, 0);
  out[name.length] = SLASH;
  return out;
}
