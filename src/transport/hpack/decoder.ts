/**
 * The HPACK decoder (RFC 7541 sections 2-6): turns one complete header block into a flat
 * list of fields and keeps the connection's dynamic table in step with the peer's encoder.
 *
 * Invariants, whatever the input:
 * - the dynamic table never holds more than `limits.maxTableSize` octets (RFC 7541 4.1
 *   sizes: name + value + 32 per entry), so at most maxTableSize / 32 entries;
 * - the returned list never exceeds `limits.maxHeaderListSize` (RFC 9113 6.5.2 size); past
 *   it the block is still decoded to the end, without keeping fields, because the table
 *   must still see every insertion;
 * - every string is bounded by the block (a length past the block's end is an error) and
 *   a Huffman string by 8/5 of its encoded length, so work and memory are linear in the
 *   block's size.
 * Strings are latin1, one JavaScript char per octet, so `s.length` is the octet count.
 */
import { HpackError } from './errors.js';
import { huffmanDecode, huffmanDecodedMax } from './huffman.js';
import { ENTRY_OVERHEAD, STATIC_NAMES, STATIC_TABLE_LENGTH, STATIC_VALUES } from './static-table.js';

/** What the decoder allows the peer to make it hold. */
export interface DecodeLimits {
  /** SETTINGS_HEADER_TABLE_SIZE we advertise: the largest dynamic table the peer may make us keep. */
  readonly maxTableSize: number;
  /** Largest decoded header list, RFC 9113 6.5.2 size (sum of name + value + 32 per field). */
  readonly maxHeaderListSize: number;
}

/** The result of decoding one header block. */
export interface DecodedBlock {
  /** Flat list: name0, value0, name1, value1, ... in block order. Strings are latin1 (lossless for any octet). */
  readonly fields: string[];
  /** True when the list exceeded maxHeaderListSize: `fields` is then incomplete (decoding went on only to keep the dynamic table in step). */
  readonly tooLarge: boolean;
}

/** Largest integer accepted anywhere in a block (indexes, lengths, table sizes). */
const MAX_INTEGER = 0x7fffffff;
/**
 * Continuation octets an integer may use: 5 carry 35 bits, enough for MAX_INTEGER after
 * any prefix; a 6th can only be zero padding or an overflow.
 */
const MAX_CONTINUATION_OCTETS = 5;

const EMPTY = Buffer.alloc(0);

/** Huffman output goes here before becoming a string; shared, as decoding never yields. */
let scratch = Buffer.allocUnsafe(4096);
/** Beyond this a larger scratch is allocated for the one string instead of being kept. */
const SCRATCH_KEEP_LIMIT = 64 * 1024;

/** Decodes the header blocks of one direction of one connection, in order. */
export class HpackDecoder {
  private readonly maxTableLimit: number;
  private readonly maxListSize: number;

  // The dynamic table: a ring of `capacity` (a power of two) slots, the newest entry at
  // `head`, older ones after it. Dynamic index d (1 = newest) is slot (head + d - 1) & mask.
  private names: string[] = new Array<string>(16).fill('');
  private values: string[] = new Array<string>(16).fill('');
  private mask = 15;
  private head = 0;
  private count = 0;
  /** Octets the table holds (RFC 7541 4.1). */
  private size = 0;
  /** The table's current maximum, as the peer last set it (initially the advertised limit). */
  private maxSize: number;

  // The block being decoded (released when decode returns, so no block outlives its call),
  // the read position in it, and the length of the string literal readStringHeader just read.
  private block: Buffer = EMPTY;
  private pos = 0;
  private stringLength = 0;

  constructor(limits: DecodeLimits) {
    if (!Number.isInteger(limits.maxTableSize) || limits.maxTableSize < 0 || limits.maxTableSize > MAX_INTEGER) {
      throw new RangeError('HpackDecoder: maxTableSize must be an integer in [0, 2^31-1]');
    }
    if (!(limits.maxHeaderListSize >= 0)) throw new RangeError('HpackDecoder: maxHeaderListSize must be >= 0');
    this.maxTableLimit = limits.maxTableSize;
    this.maxListSize = limits.maxHeaderListSize;
    this.maxSize = limits.maxTableSize;
  }

  /** Octets the dynamic table holds now. */
  get dynamicTableSize(): number {
    return this.size;
  }

  /** The dynamic table's current maximum size (the last size update, or the advertised limit). */
  get dynamicTableMaxSize(): number {
    return this.maxSize;
  }

  /** The dynamic table, newest entry first, flat as name, value, name, value... (for tests and diagnostics). */
  dynamicTableEntries(): string[] {
    const out: string[] = [];
    for (let d = 0; d < this.count; d++) {
      const slot = (this.head + d) & this.mask;
      out.push(this.names[slot] as string, this.values[slot] as string);
    }
    return out;
  }

  /** Decodes one complete header block (HEADERS + CONTINUATION payloads joined). Throws HpackError. */
  decode(block: Buffer): DecodedBlock {
    this.block = block;
    this.pos = 0;
    const end = block.length;
    const fields: string[] = [];
    let listSize = 0;
    let tooLarge = false;
    let sawField = false;
    try {
      while (this.pos < end) {
        const first = block[this.pos] as number;
        let name: string;
        let value: string;
        if (first >= 0x80) {
          // 6.1 indexed header field
          const index = this.readInteger(7);
          if (index === 0) throw new HpackError(`index 0 at octet ${this.pos - 1}`);
          if (index <= STATIC_TABLE_LENGTH) {
            name = STATIC_NAMES[index - 1] as string;
            value = STATIC_VALUES[index - 1] as string;
          } else {
            const slot = this.dynamicSlot(index);
            name = this.names[slot] as string;
            value = this.values[slot] as string;
          }
        } else if (first >= 0x40) {
          // 6.2.1 literal with incremental indexing
          name = this.readName(6);
          value = this.readString();
          this.insert(name, value);
        } else if (first >= 0x20) {
          // 6.3 dynamic table size update: RFC 7541 4.2 only at the start of a block
          const at = this.pos;
          if (sawField) throw new HpackError(`dynamic table size update after a field (octet ${at})`);
          const size = this.readInteger(5);
          if (size > this.maxTableLimit) {
            throw new HpackError(`dynamic table size update to ${size} above the limit ${this.maxTableLimit} (octet ${at})`);
          }
          this.maxSize = size;
          this.evictTo(size);
          continue;
        } else {
          // 6.2.2 literal without indexing (0000) / 6.2.3 never indexed (0001). The
          // never-indexed mark is not reported: etcdgate re-encodes every field it
          // forwards, and its encoder never indexes sensitive names.
          if (tooLarge) {
            // Nothing to keep and nothing enters the table: validate and skip.
            this.skipName(4);
            this.skipString();
            sawField = true;
            continue;
          }
          name = this.readName(4);
          value = this.readString();
        }
        sawField = true;
        if (!tooLarge) {
          listSize += name.length + value.length + ENTRY_OVERHEAD;
          if (listSize > this.maxListSize) tooLarge = true;
          else fields.push(name, value);
        }
      }
    } finally {
      this.block = EMPTY;
    }
    return { fields, tooLarge };
  }

  /** Reads an integer with an N-bit prefix (RFC 7541 5.1) at `pos`, checking range and length. */
  private readInteger(prefixBits: number): number {
    const block = this.block;
    const limit = (1 << prefixBits) - 1;
    let value = (block[this.pos++] as number) & limit;
    if (value < limit) return value;
    let multiplier = 1;
    for (let octets = 1; ; octets++) {
      if (this.pos >= block.length) throw new HpackError('integer truncated at the end of the block');
      if (octets > MAX_CONTINUATION_OCTETS) throw new HpackError(`integer longer than ${MAX_CONTINUATION_OCTETS} continuation octets (octet ${this.pos})`);
      const octet = block[this.pos++] as number;
      value += (octet & 0x7f) * multiplier;
      if (octet < 0x80) break;
      multiplier *= 128;
    }
    if (value > MAX_INTEGER) throw new HpackError(`integer above 2^31-1 (ending at octet ${this.pos - 1})`);
    return value;
  }

  /** The ring slot of dynamic-or-static `index` (> 61); throws when no such entry exists. */
  private dynamicSlot(index: number): number {
    const d = index - STATIC_TABLE_LENGTH;
    if (d > this.count) throw new HpackError(`index ${index} beyond the ${this.count}-entry dynamic table`);
    return (this.head + d - 1) & this.mask;
  }

  /** The name of a literal field: an index in the prefix, or (index 0) a string literal after it. */
  private readName(prefixBits: number): string {
    const index = this.readInteger(prefixBits);
    if (index === 0) return this.readString();
    if (index <= STATIC_TABLE_LENGTH) return STATIC_NAMES[index - 1] as string;
    return this.names[this.dynamicSlot(index)] as string;
  }

  /** As readName, but only validates. */
  private skipName(prefixBits: number): void {
    const index = this.readInteger(prefixBits);
    if (index === 0) this.skipString();
    else if (index > STATIC_TABLE_LENGTH) this.dynamicSlot(index);
  }

  /** Reads a string literal (RFC 7541 5.2) and returns its octets as latin1. */
  private readString(): string {
    const huffman = this.readStringHeader();
    const start = this.pos;
    const length = this.stringLength;
    this.pos += length;
    if (length === 0) return '';
    if (!huffman) return this.block.toString('latin1', start, start + length);
    const out = scratchFor(length);
    const written = huffmanDecode(this.block, start, start + length, out);
    return out.toString('latin1', 0, written);
  }

  /** As readString, but only validates. */
  private skipString(): void {
    const huffman = this.readStringHeader();
    const start = this.pos;
    const length = this.stringLength;
    this.pos += length;
    if (huffman && length > 0) huffmanDecode(this.block, start, start + length, scratchFor(length));
  }

  /** Reads a string literal's H flag and length; checks the octets are in the block. */
  private readStringHeader(): boolean {
    if (this.pos >= this.block.length) throw new HpackError('string literal missing at the end of the block');
    const huffman = (this.block[this.pos] as number) >= 0x80;
    const length = this.readInteger(7);
    if (length > this.block.length - this.pos) {
      throw new HpackError(`string literal of ${length} octets runs past the block's end (octet ${this.pos})`);
    }
    this.stringLength = length;
    return huffman;
  }

  /** Adds an entry (RFC 7541 4.4): evicts from the oldest end; an entry larger than the table empties it. */
  private insert(name: string, value: string): void {
    const entrySize = name.length + value.length + ENTRY_OVERHEAD;
    if (entrySize > this.maxSize) {
      this.evictTo(0);
      return;
    }
    this.evictTo(this.maxSize - entrySize);
    if (this.count > this.mask) this.grow();
    this.head = (this.head - 1) & this.mask;
    this.names[this.head] = name;
    this.values[this.head] = value;
    this.count++;
    this.size += entrySize;
  }

  /** Evicts oldest entries until the table holds at most `size` octets. */
  private evictTo(size: number): void {
    while (this.size > size) {
      const slot = (this.head + this.count - 1) & this.mask;
      this.size -= (this.names[slot] as string).length + (this.values[slot] as string).length + ENTRY_OVERHEAD;
      this.names[slot] = '';
      this.values[slot] = '';
      this.count--;
    }
  }

  /** Doubles the ring, keeping entry order; bounded because count <= maxTableSize / 32. */
  private grow(): void {
    const capacity = (this.mask + 1) * 2;
    const names = new Array<string>(capacity).fill('');
    const values = new Array<string>(capacity).fill('');
    for (let d = 0; d < this.count; d++) {
      const slot = (this.head + d) & this.mask;
      names[d] = this.names[slot] as string;
      values[d] = this.values[slot] as string;
    }
    this.names = names;
    this.values = values;
    this.mask = capacity - 1;
    this.head = 0;
  }
}

/** A buffer that can take the Huffman decoding of `encodedLength` octets. */
function scratchFor(encodedLength: number): Buffer {
  const needed = huffmanDecodedMax(encodedLength);
  if (needed <= scratch.length) return scratch;
  if (needed > SCRATCH_KEEP_LIMIT) return Buffer.allocUnsafe(needed);
  let size = scratch.length;
  while (size < needed) size *= 2;
  scratch = Buffer.allocUnsafe(size);
  return scratch;
}
