/**
 * Byte intervals over etcd's key space, with etcd's conventions (docs/authorization.md,
 * "Key ranges"). An interval is `[from, to)`; `to === null` stands for +infinity. Keys are
 * compared as raw bytes with Buffer.compare, never as JS strings, so invalid UTF-8 and NUL
 * bytes order exactly as etcd orders them.
 */

/** A half-open byte interval `[from, to)`; `to === null` means unbounded above. */
export interface KeyInterval {
  readonly from: Buffer;
  readonly to: Buffer | null;
}

const EMPTY = Buffer.alloc(0);
const NUL = Buffer.from([0]);

/** True for the one-byte buffer `"\x00"`, etcd's "no upper bound" marker. */
export function isNulByte(b: Buffer): boolean {
  return b.length === 1 && b[0] === 0;
}

/**
 * End of the prefix range of `prefix`: the prefix with trailing 0xff bytes dropped and its
 * last byte incremented. Returns null (no upper bound) when every byte is 0xff or the
 * prefix is empty, since then every key >= prefix has it as a prefix.
 */
export function prefixEnd(prefix: Buffer): Buffer | null {
  for (let i = prefix.length - 1; i >= 0; i--) {
    const byte = prefix[i] ?? 0xff;
    if (byte < 0xff) {
      const end = Buffer.from(prefix.subarray(0, i + 1));
      end[i] = byte + 1;
      return end;
    }
  }
  return null;
}

/** The interval holding exactly one key: `[key, key + "\x00")`. */
export function singleKeyInterval(key: Buffer): KeyInterval {
  return { from: key, to: Buffer.concat([key, NUL]) };
}

/**
 * The interval an etcd request names with `key` and `rangeEnd`:
 * - empty rangeEnd: the single key;
 * - rangeEnd "\x00": every key >= key, and with key "\x00" too every key at all (from the
 *   empty key, which is the conservative reading: it asks for more, never less);
 * - rangeEnd <= key: etcd returns nothing for such a range; etcdgate does not treat it as
 *   "needs nothing" but as the single key `key` (the caller must hold the key itself).
 */
export function requestInterval(key: Buffer, rangeEnd: Buffer): KeyInterval {
  if (rangeEnd.length === 0) return singleKeyInterval(key);
  if (isNulByte(rangeEnd)) return { from: isNulByte(key) ? EMPTY : key, to: null };
  if (Buffer.compare(rangeEnd, key) <= 0) return singleKeyInterval(key);
  return { from: key, to: rangeEnd };
}

/** Compares two interval ends, null (+infinity) being the greatest. */
export function compareEnds(a: Buffer | null, b: Buffer | null): number {
  if (a === null) return b === null ? 0 : 1;
  if (b === null) return -1;
  return Buffer.compare(a, b);
}

/** The interval of every key. */
export const ALL_KEYS: KeyInterval = Object.freeze({ from: EMPTY, to: null });

/**
 * Renders a key for humans (rules, explanations, audit): printable ASCII as is, any other
 * byte (and the backslash) as `\xHH`, so binary keys stay unambiguous and one line.
 */
export function formatKey(key: Buffer): string {
  let out = '';
  for (const byte of key) {
    if (byte >= 0x20 && byte < 0x7f && byte !== 0x5c) out += String.fromCharCode(byte);
    else out += `\\x${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** Renders an interval for humans: `[from, to)` or `[from, +inf)`. */
export function formatInterval(interval: KeyInterval): string {
  const to = interval.to === null ? '+inf' : formatKey(interval.to);
  return `[${formatKey(interval.from)}, ${to})`;
}
