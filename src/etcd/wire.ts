/**
 * A minimal protobuf wire-format reader: just enough to pull the fields a policy
 * decision or an audit record needs out of an etcd request, straight from the bytes
 * the client sent. Nothing is copied (byte fields are `subarray` views) and nothing is
 * re-encoded: the proxy forwards the original buffer.
 *
 * Invariant: on any input, the only exception this module throws is DecodeError.
 * Malformed input (truncated varint or field, a length past the end, a field number 0,
 * group or reserved wire types, a known field with the wrong wire type) is refused
 * rather than guessed at; etcd's own (gogo) decoder refuses the same shapes, except
 * groups, which no etcd message uses.
 */
import { DecodeError } from './types.js';

/** Wire type of varint-encoded fields (int32/64, uint32/64, bool, enum). */
export const WIRE_VARINT = 0;
/** Wire type of 8-byte fields (fixed64, sfixed64, double). */
export const WIRE_FIXED64 = 1;
/** Wire type of length-delimited fields (bytes, string, messages, packed repeated). */
export const WIRE_LEN = 2;
/** Wire type of 4-byte fields (fixed32, sfixed32, float). */
export const WIRE_FIXED32 = 5;

const TWO_POW_32 = 4294967296;
const TEN_POW_7 = 10_000_000;
/** Highest `hi` word for which `hi * 2^32 + lo` is still an exact JS number. */
const SAFE_HI = 0x1fffff;
const MAX_FIELD_NUMBER = 0x1fffffff;

/**
 * Iterates over the fields of one message. Typical use:
 * `while (r.next()) switch (r.field) { case 1: key = r.bytes(); break; default: r.skip(); }`
 * Scalars read later overwrite earlier ones (last one wins, as protobuf requires);
 * repeated fields are collected by the caller in order.
 */
export class WireReader {
  readonly #buf: Buffer;
  #pos = 0;
  /** Low and high 32 bits (unsigned) of the last varint read. */
  #lo = 0;
  #hi = 0;
  /** Field number of the current field (valid after next() returned true). */
  field = 0;
  /** Wire type of the current field (valid after next() returned true). */
  wireType = 0;
  /** Whether the current field's value has been consumed (read or skipped). */
  #consumed = true;
  /** Offset of the current field's tag in the message (valid after next() returned true). */
  fieldStart = 0;

  constructor(buf: Buffer) {
    this.#buf = buf;
  }

  /** Advances to the next field; false at the end of the message. Skips an unread previous value. */
  next(): boolean {
    if (!this.#consumed) this.skip();
    if (this.#pos >= this.#buf.length) return false;
    this.fieldStart = this.#pos;
    this.#varint();
    if (this.#hi !== 0) throw new DecodeError('malformed protobuf: tag out of range');
    const tag = this.#lo;
    const field = Math.floor(tag / 8);
    const wireType = tag & 7;
    if (field === 0 || field > MAX_FIELD_NUMBER) {
      throw new DecodeError('malformed protobuf: invalid field number');
    }
    if (wireType !== WIRE_VARINT && wireType !== WIRE_FIXED64 && wireType !== WIRE_LEN && wireType !== WIRE_FIXED32) {
      throw new DecodeError(`malformed protobuf: field ${field} has unsupported wire type ${wireType}`);
    }
    this.field = field;
    this.wireType = wireType;
    this.#consumed = false;
    return true;
  }

  /**
   * Offset just past what has been read: after the current field's value once it has been
   * read or skipped. With fieldStart it delimits a field's exact bytes, which is how a
   * message is rewritten with every other field kept byte for byte.
   */
  get offset(): number {
    return this.#pos;
  }

  /** Skips the current field's value, whatever its wire type. */
  skip(): void {
    this.#consumed = true;
    switch (this.wireType) {
      case WIRE_VARINT:
        this.#varint();
        return;
      case WIRE_FIXED64:
        this.#advance(8);
        return;
      case WIRE_FIXED32:
        this.#advance(4);
        return;
      case WIRE_LEN:
        this.#advance(this.#length());
        return;
      default:
        // next() admits only the four types above; kept for exhaustiveness.
        throw new DecodeError(`malformed protobuf: unsupported wire type ${this.wireType}`);
    }
  }

  /** The current length-delimited field as a view into the message (bytes, string, sub-message). */
  bytes(): Buffer {
    this.#expect(WIRE_LEN, 'length-delimited');
    const len = this.#length();
    const start = this.#pos;
    this.#advance(len);
    return this.#buf.subarray(start, start + len);
  }

  /** The current length-delimited field decoded as UTF-8 (invalid sequences become U+FFFD). */
  string(): string {
    return this.bytes().toString('utf8');
  }

  /** The current varint field as a bool (any non-zero value is true). */
  bool(): boolean {
    this.#expect(WIRE_VARINT, 'varint');
    this.#varint();
    return (this.#lo | this.#hi) !== 0;
  }

  /** The current varint field as an int32 or enum value (low 32 bits, signed). */
  int32(): number {
    this.#expect(WIRE_VARINT, 'varint');
    this.#varint();
    return this.#lo | 0;
  }

  /** The current varint field as a signed int64, exactly, in decimal (as etcd prints IDs and revisions). */
  int64(): string {
    this.#expect(WIRE_VARINT, 'varint');
    this.#varint();
    const lo = this.#lo;
    const hi = this.#hi;
    if (hi < 0x80000000) return uint64Decimal(hi, lo);
    // Negative: print the two's-complement magnitude.
    const negLo = (~lo + 1) >>> 0;
    const negHi = (~hi + (negLo === 0 ? 1 : 0)) >>> 0;
    return `-${uint64Decimal(negHi, negLo)}`;
  }

  /** The current varint field as an unsigned uint64, exactly, in decimal (member IDs). */
  uint64(): string {
    this.#expect(WIRE_VARINT, 'varint');
    this.#varint();
    return uint64Decimal(this.#hi, this.#lo);
  }

  /**
   * The current repeated enum/int32 field: accepts both the packed (length-delimited)
   * and the unpacked (one varint) encoding, as protobuf parsers must.
   */
  int32s(): number[] {
    if (this.wireType === WIRE_VARINT) return [this.int32()];
    const packed = new WireReader(this.bytes());
    const out: number[] = [];
    while (packed.#pos < packed.#buf.length) {
      packed.#varint();
      out.push(packed.#lo | 0);
    }
    return out;
  }

  #expect(wireType: number, what: string): void {
    if (this.wireType !== wireType) {
      throw new DecodeError(`malformed protobuf: field ${this.field} is not ${what}`);
    }
    this.#consumed = true;
  }

  #advance(n: number): void {
    if (n > this.#buf.length - this.#pos) throw new DecodeError('malformed protobuf: field past end of message');
    this.#pos += n;
  }

  /** Reads a length prefix, checked against the bytes left. */
  #length(): number {
    this.#varint();
    const len = this.#lo;
    if (this.#hi !== 0 || len > this.#buf.length - this.#pos) {
      throw new DecodeError('malformed protobuf: length past end of message');
    }
    return len;
  }

  /**
   * Reads a varint of at most 10 bytes into #lo/#hi. Bits beyond 64 in the tenth byte
   * are dropped, as Go's decoders do; an eleventh byte is an error.
   */
  #varint(): void {
    const buf = this.#buf;
    const end = buf.length;
    let pos = this.#pos;
    let lo = 0;
    let hi = 0;
    let b = 0;
    // Bytes 0-3 fill bits 0-27 of lo.
    for (let shift = 0; shift < 28; shift += 7) {
      if (pos >= end) throw new DecodeError('malformed protobuf: truncated varint');
      b = buf[pos++]!;
      lo |= (b & 0x7f) << shift;
      if (b < 0x80) return this.#setVarint(pos, lo, 0);
    }
    // Byte 4 straddles the words: 4 bits into lo, 3 into hi.
    if (pos >= end) throw new DecodeError('malformed protobuf: truncated varint');
    b = buf[pos++]!;
    lo |= (b & 0x0f) << 28;
    hi = (b & 0x7f) >> 4;
    if (b < 0x80) return this.#setVarint(pos, lo, hi);
    // Bytes 5-9 fill hi from bit 3; the tenth byte contributes only bit 31.
    for (let shift = 3; shift <= 31; shift += 7) {
      if (pos >= end) throw new DecodeError('malformed protobuf: truncated varint');
      b = buf[pos++]!;
      hi |= (b & 0x7f) << shift;
      if (b < 0x80) return this.#setVarint(pos, lo, hi);
    }
    throw new DecodeError('malformed protobuf: varint longer than 10 bytes');
  }

  #setVarint(pos: number, lo: number, hi: number): void {
    this.#pos = pos;
    this.#lo = lo >>> 0;
    this.#hi = hi >>> 0;
  }
}

/**
 * Decimal text of the unsigned 64-bit value `hi * 2^32 + lo`, exact, without BigInt
 * (etcd lease IDs are usually above 2^53, and this runs per KeepAlive message).
 * Above 2^53 the value is split into 24-bit limbs l + m*2^24 + h*2^48 and re-based
 * to 10^7 "digits": 2^24 = 1*10^7 + 6777216 and 2^48 = 2*10^14 + 8147497*10^7 + 6710656.
 * Every intermediate stays below 2^53.
 */
export function uint64Decimal(hi: number, lo: number): string {
  if (hi <= SAFE_HI) return String(hi * TWO_POW_32 + lo);
  const l = lo & 0xffffff;
  const m = ((lo >>> 24) | (hi << 8)) & 0xffffff;
  const h = hi >>> 16;
  let d0 = l + m * 6777216 + h * 6710656;
  let d1 = m + h * 8147497;
  let d2 = h * 2;
  d1 += Math.floor(d0 / TEN_POW_7);
  d0 %= TEN_POW_7;
  d2 += Math.floor(d1 / TEN_POW_7);
  d1 %= TEN_POW_7;
  // hi > 2^21 means the value is >= 2^53 > 10^14, so d2 > 0 and leads.
  return `${d2}${String(d1).padStart(7, '0')}${String(d0).padStart(7, '0')}`;
}
