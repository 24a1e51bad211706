/**
 * A minimal protobuf encoder for the few messages etcdgate writes itself: its lookups
 * (LeaseTimeToLive), in-band watch answers, the MemberList it rewrites, and the calls
 * of its backups and re-encryption (Status, leases, guarded Txns). Everything else is
 * forwarded as the bytes the peer sent; encryption at rest changes values in place with
 * src/etcd/wire-splice.ts.
 */
import { WIRE_LEN, WIRE_VARINT } from './wire.js';

export class WireWriter {
  private readonly chunks: Buffer[] = [];

  private varint(value: bigint): void {
    let v = BigInt.asUintN(64, value);
    const bytes: number[] = [];
    while (v >= 0x80n) {
      bytes.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    bytes.push(Number(v));
    this.chunks.push(Buffer.from(bytes));
  }

  /** A varint of a non-negative safe integer (tags, lengths) without BigInt. */
  private uvarint(value: number): void {
    const bytes: number[] = [];
    let v = value;
    while (v >= 0x80) {
      bytes.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    bytes.push(v);
    this.chunks.push(Buffer.from(bytes));
  }

  private tag(field: number, wireType: number): void {
    this.uvarint(field * 8 + wireType);
  }

  /**
   * An int64/uint64/bool/enum field; zero values are omitted, as proto3 does, unless
   * `always` (a oneof member, whose presence is meaningful even at zero).
   */
  int(field: number, value: bigint | number | boolean, always = false): this {
    const v = typeof value === 'bigint' ? value : BigInt(Number(value));
    if (v === 0n && !always) return this;
    this.tag(field, WIRE_VARINT);
    this.varint(v);
    return this;
  }

  /** A bytes/string/sub-message field. `always` writes it even when empty (a present, empty message). */
  bytes(field: number, value: Buffer | string, always = false): this {
    const buf = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    if (buf.length === 0 && !always) return this;
    this.tag(field, WIRE_LEN);
    this.uvarint(buf.length);
    this.chunks.push(buf);
    return this;
  }

  /** Bytes that are already encoded fields (a span copied from another message), as they are. */
  raw(bytes: Buffer): this {
    if (bytes.length > 0) this.chunks.push(bytes);
    return this;
  }

  finish(): Buffer {
    return Buffer.concat(this.chunks);
  }
}
