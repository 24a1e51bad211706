/**
 * The HPACK encoder (RFC 7541): header lists to header blocks, with a dynamic table kept in
 * step with the peer's decoder, and `encodeStateless` for blocks computed once and sent on
 * any connection.
 *
 * Choices per field, in order:
 * 1. a name in NEVER_INDEXED (credentials) is sent as a never-indexed literal (RFC 7541
 *    6.2.3, 7.1.3), so neither this table nor any intermediary's ever holds it;
 * 2. an exact match in the static, then the dynamic table is sent as an index;
 * 3. otherwise a literal, with the name as an index when the static (preferred: it never
 *    moves) or dynamic table has it. It is added to the table (incremental indexing) unless
 *    its name is in UNINDEXED_NAMES (values that change on every message) or the entry
 *    would take more than half the table (it would flush what is worth keeping).
 * Strings are Huffman-coded when that is strictly shorter (a tie goes raw: cheaper to decode).
 * Strings are latin1, one JavaScript char per octet; names must be lower-case (RFC 9113 8.2.1).
 *
 * Composing blocks: encodeStateless output touches no table, so it may follow `encode`
 * output inside one block, or follow `takeTableSizeUpdate()` (which must open a block
 * that `encode` does not open).
 */
import { huffmanEncode, huffmanLength } from './huffman.js';
import { ENTRY_OVERHEAD, STATIC_BY_NAME, STATIC_TABLE_LENGTH } from './static-table.js';

/** Names whose values are credentials: always never-indexed literals, never in any table. */
export const NEVER_INDEXED: ReadonlySet<string> = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  // etcd's auth token travels as gRPC metadata "token" (clientv3, etcdctl).
  'token',
]);

/** Names whose values rarely repeat: sent without indexing so they do not evict useful entries. */
export const UNINDEXED_NAMES: ReadonlySet<string> = new Set(['grpc-timeout', 'grpc-message', 'content-length']);

/** The HTTP/2 default SETTINGS_HEADER_TABLE_SIZE, and the most this encoder ever uses. */
export const DEFAULT_TABLE_SIZE = 4096;

// ---------------------------------------------------------------------------- output

// The block being written. Shared by every encoder: encoding is synchronous and never
// re-entered, and one buffer for all connections keeps memory flat.
let out = Buffer.allocUnsafe(4096);
let pos = 0;

/** What takeTableSizeUpdate returns when nothing is pending (never written to). */
const NO_UPDATE = Buffer.alloc(0);

/** Octets a field can take at most beyond its name and value: flags, index and two lengths. */
const FIELD_OVERHEAD = 1 + 5 + 6 + 6;

/** Below this many octets, copying in a loop beats the native calls' fixed cost. */
const SHORT = 32;

/** Makes room for `octets` more octets at `pos`. */
function reserve(octets: number): void {
  if (pos + octets <= out.length) return;
  let size = out.length * 2;
  while (size < pos + octets) size *= 2;
  const bigger = Buffer.allocUnsafe(size);
  out.copy(bigger, 0, 0, pos);
  out = bigger;
}

/** Writes `value` with an N-bit prefix whose upper bits are `flags` (RFC 7541 5.1). */
function writeInteger(flags: number, prefixBits: number, value: number): void {
  const limit = (1 << prefixBits) - 1;
  if (value < limit) {
    out[pos++] = flags | value;
    return;
  }
  out[pos++] = flags | limit;
  value -= limit;
  while (value >= 128) {
    out[pos++] = (value & 0x7f) | 0x80;
    value = Math.floor(value / 128);
  }
  out[pos++] = value;
}

/** Writes a string literal (RFC 7541 5.2), Huffman-coded when strictly shorter. */
function writeString(s: string): void {
  const length = s.length;
  const encoded = huffmanLength(s);
  if (encoded < length) {
    writeInteger(0x80, 7, encoded);
    pos = huffmanEncode(s, out, pos);
  } else if (length < SHORT) {
    out[pos++] = length;
    for (let i = 0; i < length; i++) out[pos++] = s.charCodeAt(i);
  } else {
    writeInteger(0, 7, length);
    pos += out.write(s, pos, length, 'latin1');
  }
}

/** Copies precomputed octets to the output. */
function writeOctets(octets: Buffer): void {
  for (let i = 0; i < octets.length; i++) out[pos++] = octets[i] as number;
}

/** The written block as a buffer of its own (the shared one is reused by the next call). */
function takeBlock(): Buffer {
  const block = Buffer.allocUnsafe(pos);
  if (pos < SHORT) for (let i = 0; i < pos; i++) block[i] = out[i] as number;
  else out.copy(block, 0, 0, pos);
  pos = 0;
  return block;
}

/** Checks the flat-list shape every encode takes. */
function checkFields(fields: readonly string[]): void {
  if (fields.length % 2 !== 0) throw new RangeError('HPACK encode: fields must be name, value pairs');
}

// ---------------------------------------------------------------------------- names

/** Everything the encoder decides from a name alone, for names it knows in advance. */
interface NamePolicy {
  /** Static index of the name, 0 when the static table lacks it. */
  readonly index: number;
  /** value -> static index, for exact static matches. */
  readonly values: ReadonlyMap<string, number> | undefined;
  readonly neverIndexed: boolean;
  readonly unindexed: boolean;
  /**
   * For names sent as literals every time and absent from the static table (credentials,
   * UNINDEXED_NAMES): the name's string literal, encoded once here.
   */
  readonly literal: Buffer | undefined;
}

/** Policies of static names, NEVER_INDEXED and UNINDEXED_NAMES; any other name has none. */
const POLICIES = new Map<string, NamePolicy>();
for (const name of new Set([...STATIC_BY_NAME.keys(), ...NEVER_INDEXED, ...UNINDEXED_NAMES])) {
  const known = STATIC_BY_NAME.get(name);
  const neverIndexed = NEVER_INDEXED.has(name);
  const unindexed = UNINDEXED_NAMES.has(name);
  let literal: Buffer | undefined;
  if (known === undefined) {
    pos = 0;
    writeString(name);
    literal = takeBlock();
  }
  POLICIES.set(name, { index: known?.index ?? 0, values: neverIndexed ? undefined : known?.values, neverIndexed, unindexed, literal });
}

/** Writes a literal field: `flags`/`prefixBits` select the kind; nameIndex 0 sends the name as a literal. */
function writeLiteral(flags: number, prefixBits: number, nameIndex: number, policy: NamePolicy | undefined, name: string, value: string): void {
  if (nameIndex !== 0) {
    writeInteger(flags, prefixBits, nameIndex);
  } else {
    out[pos++] = flags;
    const literal = policy?.literal;
    if (literal !== undefined) writeOctets(literal);
    else writeString(name);
  }
  writeString(value);
}

/**
 * A block that touches no dynamic table (static-table indexes and literals without indexing),
 * so it can be computed once and sent on any connection, and several such blocks concatenated
 * form one valid block. Used for precomputed request and response headers.
 */
export function encodeStateless(fields: readonly string[]): Buffer {
  checkFields(fields);
  pos = 0;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i] as string;
    const value = fields[i + 1] as string;
    reserve(name.length + value.length + FIELD_OVERHEAD);
    const policy = POLICIES.get(name);
    const index = policy?.values?.get(value);
    if (index !== undefined) writeInteger(0x80, 7, index);
    else writeLiteral(policy?.neverIndexed === true ? 0x10 : 0x00, 4, policy?.index ?? 0, policy, name, value);
  }
  return takeBlock();
}

// ---------------------------------------------------------------------------- encoder

/** The dynamic entries carrying one name: value -> newest seq, and the newest seq of all. */
interface DynamicName {
  readonly values: Map<string, number>;
  newest: number;
}

/** Encodes the header blocks of one direction of one connection, in order. */
export class HpackEncoder {
  // The dynamic table, by insertion number: entry `seq` lives in slot seq & mask. The
  // newest is seq inserted - 1 (index 62), the oldest inserted - count.
  private names: string[] = new Array<string>(16).fill('');
  private values: string[] = new Array<string>(16).fill('');
  private mask = 15;
  private inserted = 0;
  private count = 0;
  private size = 0;
  /** name -> its entries in the table; a name is here exactly while the table holds it. */
  private readonly byName = new Map<string, DynamicName>();

  /** The maximum size the peer's decoder currently assumes (RFC 9113: 4096 until told otherwise). */
  private maxSize = DEFAULT_TABLE_SIZE;
  /** The size the next block will announce, and the smallest size set since the last block. */
  private targetSize = DEFAULT_TABLE_SIZE;
  private lowestSize = DEFAULT_TABLE_SIZE;

  /** `maxTableSize`: the peer's SETTINGS_HEADER_TABLE_SIZE (the encoder may use less; default 4096). */
  constructor(maxTableSize: number = DEFAULT_TABLE_SIZE) {
    this.setMaxTableSize(maxTableSize);
  }

  /** Octets the dynamic table holds now. */
  get dynamicTableSize(): number {
    return this.size;
  }

  /** The dynamic table, newest entry first, flat as name, value, name, value... (for tests and diagnostics). */
  dynamicTableEntries(): string[] {
    const entries: string[] = [];
    for (let seq = this.inserted - 1; seq >= this.inserted - this.count; seq--) {
      entries.push(this.names[seq & this.mask] as string, this.values[seq & this.mask] as string);
    }
    return entries;
  }

  /** The peer changed SETTINGS_HEADER_TABLE_SIZE: a size update is emitted at the start of the next block. */
  setMaxTableSize(size: number): void {
    if (!Number.isInteger(size) || size < 0 || size > 0x7fffffff) {
      throw new RangeError('HpackEncoder: table size must be an integer in [0, 2^31-1]');
    }
    // Using less than the peer allows is always permitted (RFC 7541 4.2).
    this.targetSize = Math.min(size, DEFAULT_TABLE_SIZE);
    this.lowestSize = Math.min(this.lowestSize, this.targetSize);
  }

  /**
   * The size updates the next block must open with (RFC 7541 4.2), as a block prefix, and
   * marks them sent; empty when there are none. For blocks built without `encode`: prepend
   * it to `encodeStateless` output (`encode` emits them itself).
   */
  takeTableSizeUpdate(): Buffer {
    if (this.lowestSize >= this.maxSize && this.targetSize === this.maxSize) return NO_UPDATE;
    pos = 0;
    reserve(12);
    this.writeSizeUpdates();
    return takeBlock();
  }

  /**
   * Encodes a flat list [name, value, ...]. Names must be lower-case. Uses the static table,
   * incremental indexing for fields worth repeating, never-indexed literals for names in
   * `NEVER_INDEXED` (authorization, token, cookie...), Huffman when it is shorter.
   */
  encode(fields: readonly string[]): Buffer {
    checkFields(fields);
    pos = 0;
    reserve(12);
    this.writeSizeUpdates();
    for (let i = 0; i < fields.length; i += 2) {
      const name = fields[i] as string;
      const value = fields[i + 1] as string;
      reserve(name.length + value.length + FIELD_OVERHEAD);
      const policy = POLICIES.get(name);
      if (policy !== undefined) {
        if (policy.neverIndexed) {
          writeLiteral(0x10, 4, policy.index !== 0 ? policy.index : this.dynamicNameIndex(name), policy, name, value);
          continue;
        }
        const index = policy.values?.get(value);
        if (index !== undefined) {
          writeInteger(0x80, 7, index);
          continue;
        }
      }
      const dynamic = this.byName.get(name);
      if (dynamic !== undefined) {
        const seq = dynamic.values.get(value);
        if (seq !== undefined) {
          writeInteger(0x80, 7, this.indexOf(seq));
          continue;
        }
      }
      const nameIndex = policy !== undefined && policy.index !== 0 ? policy.index : dynamic !== undefined ? this.indexOf(dynamic.newest) : 0;
      const entrySize = name.length + value.length + ENTRY_OVERHEAD;
      if (entrySize * 2 <= this.maxSize && policy?.unindexed !== true) {
        writeLiteral(0x40, 6, nameIndex, policy, name, value);
        this.insert(name, value, entrySize);
      } else {
        writeLiteral(0x00, 4, nameIndex, policy, name, value);
      }
    }
    return takeBlock();
  }

  /** RFC 7541 4.2: announce the smallest size set since the last block, then the final one. */
  private writeSizeUpdates(): void {
    if (this.lowestSize < this.maxSize) {
      this.resize(this.lowestSize);
      writeInteger(0x20, 5, this.lowestSize);
    }
    if (this.targetSize !== this.maxSize) {
      this.resize(this.targetSize);
      writeInteger(0x20, 5, this.targetSize);
    }
    this.lowestSize = this.targetSize;
  }

  private resize(size: number): void {
    this.maxSize = size;
    this.evictTo(size);
  }

  /** Index of the newest dynamic entry with this name, or 0. */
  private dynamicNameIndex(name: string): number {
    const dynamic = this.byName.get(name);
    return dynamic === undefined ? 0 : this.indexOf(dynamic.newest);
  }

  private indexOf(seq: number): number {
    return STATIC_TABLE_LENGTH + this.inserted - seq;
  }

  /** Adds an entry the caller checked fits (entrySize <= maxSize), evicting from the oldest end. */
  private insert(name: string, value: string, entrySize: number): void {
    this.evictTo(this.maxSize - entrySize);
    if (this.count > this.mask) this.grow();
    const seq = this.inserted++;
    this.names[seq & this.mask] = name;
    this.values[seq & this.mask] = value;
    this.count++;
    this.size += entrySize;
    const dynamic = this.byName.get(name);
    if (dynamic === undefined) {
      this.byName.set(name, { values: new Map([[value, seq]]), newest: seq });
    } else {
      dynamic.values.set(value, seq);
      dynamic.newest = seq;
    }
  }

  /** Evicts oldest entries until the table holds at most `size` octets; forgets them in the lookups. */
  private evictTo(size: number): void {
    while (this.size > size) {
      const seq = this.inserted - this.count;
      const slot = seq & this.mask;
      const name = this.names[slot] as string;
      const value = this.values[slot] as string;
      this.size -= name.length + value.length + ENTRY_OVERHEAD;
      this.names[slot] = '';
      this.values[slot] = '';
      this.count--;
      const dynamic = this.byName.get(name);
      if (dynamic === undefined) continue;
      // Eviction is oldest first: if this was the newest entry with the name, it was the last.
      if (dynamic.newest === seq) this.byName.delete(name);
      else if (dynamic.values.get(value) === seq) dynamic.values.delete(value);
    }
  }

  /** Doubles the ring; bounded because count <= maxSize / 32. */
  private grow(): void {
    const capacity = (this.mask + 1) * 2;
    const mask = capacity - 1;
    const names = new Array<string>(capacity).fill('');
    const values = new Array<string>(capacity).fill('');
    for (let seq = this.inserted - this.count; seq < this.inserted; seq++) {
      names[seq & mask] = this.names[seq & this.mask] as string;
      values[seq & mask] = this.values[seq & this.mask] as string;
    }
    this.names = names;
    this.values = values;
    this.mask = mask;
  }
}
